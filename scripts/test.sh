#!/usr/bin/env bash
# Runs every check and test of Sotto on a fresh machine of the project's kind (Debian with the
# Rust toolchain): installs what is missing, then formatting, lints, the test suites and a short
# run of every fuzz target. `.ci/run` calls this script; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${SOTTO_FUZZ_SECONDS:-30}"
step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: coturn (a real TURN server for the credential test), cmake (the opus crate
# builds libopus with it), ALSA headers (cpal), PulseAudio with its ALSA plugin (a null sink is
# the clocked sound card of the audio-device test).
need_apt=()
command -v turnserver >/dev/null || need_apt+=(coturn)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
pkg-config --exists alsa 2>/dev/null || need_apt+=(libasound2-dev)
command -v pulseaudio >/dev/null || need_apt+=(pulseaudio)
command -v pactl >/dev/null || need_apt+=(pulseaudio-utils)
dpkg -s libasound2-plugins >/dev/null 2>&1 || need_apt+=(libasound2-plugins)
# Debian's Chromium and Firefox ESR for the browser tests (no browser download is possible or
# wanted).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
# openssl makes the private CA of the browsers' HTTPS test, NSS's certutil puts it in the Firefox
# profile's certificate store; tmux is the terminal of the CLI's status-line test.
command -v openssl >/dev/null || need_apt+=(openssl)
command -v certutil >/dev/null || need_apt+=(libnss3-tools)
command -v tmux >/dev/null || need_apt+=(tmux)
# redis-server: relays that share rooms (--redis) are tested against the real one.
command -v redis-server >/dev/null || need_apt+=(redis-server)
# python3: the benchmark's table and charts scripts are tested on the recorded run.
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing ${need_apt[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# cargo-fuzz builds the fuzz targets; libFuzzer's flags need RUSTC_BOOTSTRAP on stable Rust.
if ! command -v cargo-fuzz >/dev/null; then
  step "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

step "formatting"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The relay's benchmark-only build (bench/README.md) must compile and lint clean too.
cargo clippy -p sotto-signaling --features bench-no-e2ee --locked -- -D warnings

step "tests"
test_log="$(mktemp)"
cargo test --workspace --locked 2>&1 | tee "$test_log"
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$test_log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$test_log" | awk '{s += $1} END {print s + 0}')
rm -f "$test_log"

step "the vendored web modules (web/vendor/) are exactly the pinned packages' (scripts/web-vendor)"
vendor_check="$(mktemp -d)"
scripts/web-vendor/vendor.sh "$vendor_check/vendor"
diff -r web/vendor "$vendor_check/vendor"
rm -rf "$vendor_check"

step "browser modules under node (the shared vectors, the conference member on ts-mls; WebCrypto only)"
node_log="$(mktemp)"
node --import ./web/test/vendor-map.mjs --test web/test/ 2>&1 | tee "$node_log" | grep -E '^# (tests|pass|fail)'
passed=$((passed + $(awk '/^# pass/ {print $3}' "$node_log")))
failed=$((failed + $(awk '/^# fail/ {print $3}' "$node_log")))
rm -f "$node_log"

# Runs `node --test` in a folder of tests (with these environment assignments), its npm
# packages installed first; adds its counts to the summary, and on a failure prints what failed
# and why (the progress shows only the names) and stops.
node_suite() {
  local dir=$1
  shift
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  local log suite_failed=0
  log="$(mktemp)"
  (cd "$dir" && env "$@" node --test) 2>&1 | tee "$log" | grep -E '^(not )?ok |^# (tests|pass|fail)' || suite_failed=1
  passed=$((passed + $(awk '/^# pass/ {print $3}' "$log")))
  failed=$((failed + $(awk '/^# fail/ {print $3}' "$log")))
  if [ "$suite_failed" = 1 ]; then
    awk '/^not ok /{p=1} p{print} /^  \.\.\.$/{p=0}' "$log"
    echo "summary: ${passed} passed, ${failed} failed"
    exit 1
  fi
  rm -f "$log"
}

step "fuzzing the browser's parsers of peer and relay bytes under node (fast-check), ${FUZZ_SECONDS}s budget"
node_suite tests/fuzz-js SOTTO_FUZZ_SECONDS="$FUZZ_SECONDS"

step "browser tests: Debian's chromium (playwright-core) and firefox-esr (puppeteer-core), against the relay binary"
node_suite tests/browser

step "fuzzing each target for ${FUZZ_SECONDS}s"
for target in $(cd fuzz && cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" \
          -- -max_total_time="$FUZZ_SECONDS") >"$log" 2>&1; then
    cat "$log"
    echo "fuzz target $target FAILED (reproducer under fuzz/artifacts/$target)"
    exit 1
  fi
  echo "$target: $(grep -E '^Done [0-9]+ runs' "$log" || tail -n 1 "$log")"
  rm -f "$log"
done

step "all checks passed"
# One closing line for whoever reads this log last: Rust and node tests, summed.
echo "summary: ${passed} passed, ${failed} failed"
