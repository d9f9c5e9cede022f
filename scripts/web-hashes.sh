#!/usr/bin/env bash
# Prints the Subresource Integrity hash (sha256, base64) of every script of the web client in
# this checkout, and, given a relay's address, the hashes that relay's page pins, so the two
# can be compared: `bash scripts/web-hashes.sh https://call.example.org`.
set -euo pipefail
cd "$(dirname "$0")/../web"
echo "In this checkout:"
find . -name '*.js' -not -path './test/*' | sort | while read -r f; do
  printf '  %-22s sha256-%s\n' "${f#.}" "$(openssl dgst -sha256 -binary "$f" | base64)"
done
if [ $# -gt 0 ]; then
  echo "Pinned by $1 (import map and entry script of its page):"
  curl -fsS "${1%/}/" | grep -oE '"\./[^"]+\.js":"sha256-[^"]+"|src="app.js" integrity="[^"]+"' | sed 's/^/  /'
  echo "Served by $1:"
  find . -name '*.js' -not -path './test/*' | sort | while read -r f; do
    printf '  %-22s sha256-%s\n' "${f#.}" "$(curl -fsS "${1%/}${f#.}" | openssl dgst -sha256 -binary | base64)"
  done
fi
