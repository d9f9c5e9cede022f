#!/usr/bin/env bash
# Benchmarks, never part of the test suite: Sotto's relay (on one worker thread and on two)
# beside matchbox_server 0.15 and the PeerJS server 1.0.2 (installed here into bench/.peers,
# which git ignores), the SFrame layer beside raw AES-128-GCM, SFrame's bytes per frame, call
# set-up native and in Chromium, file transfer, and a four-person group call in Chromium.
# Prints every measurement as it comes (with the load average), then one table of medians, and
# draws the relay figures as SVG charts into target/bench-charts/.
#
#   bash bench/run.sh            # SOTTO_BENCH_ROUNDS (3) rounds, SOTTO_BENCH_SECONDS (10) per run
#   bash bench/run.sh --compare  # Sotto's relay only, one short round, against the recorded run
#
# Servers are pinned to core 0 and the load generator to core 1 (taskset); within a round the
# servers take turns on each scenario, so slow drifts of the machine hit all of them alike.
# Sotto's relay with two worker threads runs on both cores and so shares core 1 with the
# generator: its rows say what a second core buys when the generator takes part of it.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPARE=false
case "${1:-}" in
  --compare) COMPARE=true ;;
  "") ;;
  *) echo "usage: bash bench/run.sh [--compare]" >&2; exit 2 ;;
esac
ROUNDS="${SOTTO_BENCH_ROUNDS:-3}"
SECS="${SOTTO_BENCH_SECONDS:-10}"
CALLS="${SOTTO_BENCH_CALLS:-10}"
PEERS=bench/.peers
RESULTS=target/bench-results.txt
RECORDED="${SOTTO_BENCH_RECORDED:-docs/bench/results.txt}"
if $COMPARE; then
  ROUNDS=1
  SECS="${SOTTO_BENCH_SECONDS:-5}"
  RESULTS=target/bench-compare.txt
fi
step() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "installing what is missing"
need_apt=()
command -v taskset >/dev/null || need_apt+=(util-linux)
if ! $COMPARE; then
  command -v cmake >/dev/null || need_apt+=(cmake)
  pkg-config --exists alsa 2>/dev/null || need_apt+=(pkg-config libasound2-dev)
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
if ! $COMPARE; then
  mkdir -p "$PEERS"
  [ -x "$PEERS/bin/matchbox_server" ] ||
    cargo install --quiet --locked --root "$PEERS" matchbox_server --version 0.15.0
  [ -f "$PEERS/peerjs/node_modules/peer/package.json" ] ||
    npm install --prefix "$PEERS/peerjs" --no-audit --no-fund --loglevel=error --save-exact peer@1.0.2
  [ -d tests/browser/node_modules/playwright-core ] ||
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

step "building (release)"
if $COMPARE; then
  cargo build --quiet --release --locked --bin sotto-relay --bin relay-load
else
  # The benchmark-only relay first (its web client sends media without the transform), kept
  # aside; then the real one, which is what target/release/sotto-relay must be afterwards.
  cargo build --quiet --release --locked -p sotto-signaling --features bench-no-e2ee
  cp target/release/sotto-relay "$PEERS/sotto-relay-no-e2ee"
  cargo build --quiet --release --locked --bin sotto-relay --bin sotto \
    --bin relay-load --bin call-setup --bin frame-overhead --bin file-transfer
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
: >"$RESULTS"
emit() { echo "$1 load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RESULTS"; }

port=18180
server_pid=
start_server() { # NAME: starts it pinned to core 0 on $port; sets $server_pid.
  case "$1" in
    sotto | sotto2)
      local cores=0 threads=1
      [ "$1" = sotto2 ] && cores=0,1 threads=2
      taskset -c "$cores" target/release/sotto-relay --listen "127.0.0.1:$port" --log warn \
        --threads "$threads" --rate 1000000 --burst 1000000 --max-connections 30000 &;;
    matchbox) RUST_LOG=warn taskset -c 0 "$PEERS/bin/matchbox_server" "127.0.0.1:$port" >/dev/null &;;
    peerjs) taskset -c 0 node "$PEERS/peerjs/node_modules/peer/dist/bin/peerjs.js" \
        --host 127.0.0.1 --port "$port" --concurrent_limit 30000 --alive_timeout 3600000 >/dev/null &;;
  esac
  server_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "$1 did not start" >&2
  exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  port=$((port + 1)) # no waiting for TIME_WAIT sockets of the last run
}
trap stop_server EXIT
load() { # SERVER SCENARIO ARGS... (with $tag, more key=value pairs for the line)
  local server=$1 threads=
  shift
  case "$server" in
    sotto) threads=threads=1 ;;
    sotto2) server=sotto threads=threads=2 ;;
  esac
  emit "$(taskset -c 1 target/release/relay-load --server "$server" --addr "127.0.0.1:$port" \
    --server-pid "$server_pid" "$@") $threads ${tag:-}"
}

# The relay rounds. sotto2 is Sotto's relay with two worker threads (ping-pong and open loop).
if $COMPARE; then
  SERVERS=(sotto)
  IDLE=(1000)
else
  SERVERS=(sotto sotto2 matchbox peerjs)
  IDLE=(1000 10000)
fi
for round in $(seq "$ROUNDS"); do
  step "relay round $round of $ROUNDS"
  for server in "${SERVERS[@]}"; do
    start_server "$server"
    for clients in 200 2000; do
      for size in 1024 4096; do
        load "$server" pingpong --clients "$clients" --size "$size" --seconds "$SECS"
      done
    done
    # Open loop: 2,000 clients sending 1 KiB at 25, 50 and 75% of the rate this server reached
    # in this round's ping-pong, whatever its answers (the newest such line is this server's:
    # its ping-pongs have just run).
    reached=$(grep "scenario=pingpong .* clients=2000 size=1024 " "$RESULTS" | tail -n 1 |
      sed 's/.*msgs_per_s=\([0-9]*\).*/\1/')
    for pct in 25 50 75; do
      tag="of_closed=$pct" load "$server" openloop --clients 2000 --size 1024 \
        --rate $((reached * pct / 100)) --seconds "$SECS"
    done
    stop_server
  done
  for clients in "${IDLE[@]}"; do
    for server in "${SERVERS[@]}"; do
      [ "$server" = sotto2 ] && continue # the same connections, the same memory
      # A fresh server each time: memory freed by earlier runs would hide what connections cost.
      start_server "$server"
      load "$server" idle --clients "$clients"
      stop_server
    done
  done
  for server in "${SERVERS[@]}"; do
    [ "$server" = sotto2 ] && continue
    start_server "$server" # fresh: the flood reports the process's peak memory
    load "$server" flood --size 4096 --seconds 3
    stop_server
  done
done

MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date +%F)"
if $COMPARE; then
  step "against the recorded run ($RECORDED)"
  python3 bench/table.py --compare "$RECORDED" "$RESULTS"
  exit 0
fi

step "media: SFrame beside raw AES-128-GCM (criterion)"
cargo bench --quiet --locked -p sotto-e2ee --bench sframe >/dev/null 2>&1
for size in 60 1200 30000; do
  for op in seal open; do
    raw=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'])" \
      "target/criterion/sframe/raw_aes128gcm_$op/$size/new/estimates.json")
    sf=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'])" \
      "target/criterion/sframe/sframe_$op/$size/new/estimates.json")
    emit "scenario=sframe op=$op size=$size raw_ns=${raw%.*} sframe_ns=${sf%.*}"
  done
done

step "media: bytes SFrame adds per frame"
target/release/frame-overhead | while read -r line; do emit "$line"; done

step "call set-up: native, $CALLS calls on loopback"
start_server sotto
emit "$(target/release/call-setup --relay "http://127.0.0.1:$port" --calls "$CALLS")"
stop_server

step "call set-up: Chromium to Chromium, $CALLS calls with and $CALLS without the transform"
node bench/browser-setup.mjs target/release/sotto-relay "$PEERS/sotto-relay-no-e2ee" "$CALLS" |
  while read -r line; do emit "$line"; done

step "file transfer: sealed and raw over the same data channel, native, Chromium and Firefox"
emit "$(target/release/file-transfer --megabytes 64 --rounds "$ROUNDS")"
node bench/file-transfer.mjs target/release/sotto-relay 64 "$ROUNDS" |
  while read -r line; do emit "$line"; done

step "group call: a mesh of four Chromiums, CPU and memory per participant, a newcomer's wait"
node bench/group-mesh.mjs target/release/sotto-relay "$ROUNDS" 15 |
  while read -r line; do emit "$line"; done

step "table (medians of $ROUNDS rounds; machine: $MACHINE)"
python3 bench/table.py "$RESULTS"
python3 bench/charts.py "$RESULTS" target/bench-charts "$MACHINE"
