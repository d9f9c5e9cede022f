#!/usr/bin/env bash
# Benchmarks (never part of the test suite). Runs the relay pinned to core 0 and the load
# generator pinned to core 1, and prints one line per measurement. So far: Sotto's relay only,
# the SFrame benchmark, and the load average with every result; matchbox_server and the PeerJS
# server come next (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SOTTO_BENCH_SECONDS:-10}"
cargo build --release --locked --bin sotto-relay --bin relay-load
ulimit -n 65536 2>/dev/null || true

port=18080
relay=
start_relay() {
  taskset -c 0 target/release/sotto-relay --listen "127.0.0.1:$port" --rate 1000000 --burst 1000000 \
    --max-connections 20000 --join-timeout 1h --log warn &
  relay=$!
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "relay did not start" >&2
  exit 1
}
stop_relay() {
  kill "$relay" 2>/dev/null || true
  wait "$relay" 2>/dev/null || true
}
trap stop_relay EXIT

echo "== relay: sotto (server on core 0, generator on core 1)"
start_relay
for clients in 200 2000; do
  for size in 1024 4096; do
    line=$(taskset -c 1 target/release/relay-load pingpong --url "ws://127.0.0.1:$port/ws" \
      --clients "$clients" --size "$size" --seconds "$SECONDS_PER_RUN")
    echo "$line load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
stop_relay
for clients in 1000 10000; do
  # A fresh relay each time: memory freed by earlier runs would hide what connections cost.
  start_relay
  line=$(taskset -c 1 target/release/relay-load idle --url "ws://127.0.0.1:$port/ws" \
    --clients "$clients" --server-pid "$relay")
  echo "$line load=$(cut -d' ' -f1 /proc/loadavg)"
  stop_relay
done

echo "== media: SFrame beside raw AES-128-GCM"
cargo bench -p sotto-e2ee --bench sframe >/dev/null 2>&1
python3 - <<'PY'
import json
est = lambda name, size: json.load(open(f"target/criterion/sframe/{name}/{size}/new/estimates.json"))["median"]["point_estimate"]
for size in (60, 1200, 30000):
    for op in ("seal", "open"):
        raw, sf = est(f"raw_aes128gcm_{op}", size), est(f"sframe_{op}", size)
        print(f"sframe {op} size={size} raw_ns={raw:.0f} sframe_ns={sf:.0f} ratio={sf / raw:.2f}")
PY
