#!/usr/bin/env bash
# Copies the pinned third-party ES modules the web client loads (package.json, package-lock.json)
# into web/vendor/ (or into $1): only their ES modules and licences, no source maps or types.
# web/vendor/importmap.json maps their bare names for the page and for node's tests.
# The relay serves them like our own modules, with Subresource Integrity. Run after changing a
# version; a test (web/test/vendor.test.js) checks that web/vendor/ is exactly this copy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../web/vendor}"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
nm="$here/node_modules"
rm -rf "$out"
copy() { # package, its folder of ES modules
  local pkg=$1 from="$nm/$1/$2"
  mkdir -p "$out/$pkg"
  (cd "$from" && find . -name '*.js' -print0 | while IFS= read -r -d '' f; do
    mkdir -p "$out/$pkg/$(dirname "$f")"
    cp "$f" "$out/$pkg/$f"
  done)
  cp "$nm/$pkg/LICENSE" "$out/$pkg/LICENSE" 2>/dev/null || cp "$nm/$pkg/LICENSE.md" "$out/$pkg/LICENSE"
}
copy ts-mls dist/src
copy @hpke/core esm
copy @hpke/common esm
# @noble: the package's top-level modules only (its src/ holds the TypeScript).
for pkg in @noble/hashes @noble/ciphers; do
  mkdir -p "$out/$pkg"
  cp "$nm/$pkg"/*.js "$out/$pkg/"
  cp "$nm/$pkg/LICENSE" "$out/$pkg/LICENSE"
done
cat > "$out/importmap.json" <<'JSON'
{
  "ts-mls": "./vendor/ts-mls/index.js",
  "ts-mls/": "./vendor/ts-mls/",
  "@hpke/core": "./vendor/@hpke/core/mod.js",
  "@hpke/common": "./vendor/@hpke/common/mod.js",
  "@noble/hashes/": "./vendor/@noble/hashes/",
  "@noble/ciphers/": "./vendor/@noble/ciphers/"
}
JSON
# Only what the page can load: the modules reachable by static imports from ts-mls' entry
# (optional dynamic imports of other suites stay out, and fail as ts-mls says if ever asked).
keep="$(mktemp)"
node "$here/reachable.mjs" "$out/.." | sed 's|^vendor/||' > "$keep"
(cd "$out" && find . -name '*.js' | sed 's|^\./||' | grep -vxF -f "$keep" | xargs -r rm)
find "$out" -type d -empty -delete
rm -f "$keep"
