#!/usr/bin/env bash
# A cluster of relays sharing their rooms through Redis (--redis), on this machine: how many
# joined connections it holds, how fast they join, what each costs in memory (the relays' and
# Redis's), and ping-pong latency for pairs split across two relays beside pairs on one relay,
# measured while the connections are held. Never part of the test suite.
#
#   bash bench/cluster.sh        # SOTTO_CLUSTER_CONNECTIONS (100000) over SOTTO_CLUSTER_RELAYS (6)
#
# Each process may open at most 20,000 files here, so the connections are spread over several
# relays, each loaded by a generator process of its own (relay-load hold). Generators come in
# pairs: the two of a pair join the same rooms, one seat each, through two different relays, so
# every room spans two relays and every join goes through Redis (rooms from 2,000,000 on, clear
# of the ping-pong rooms). Results go to
# target/cluster-results.txt, one key=value line each.
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL="${SOTTO_CLUSTER_CONNECTIONS:-100000}"
RELAYS="${SOTTO_CLUSTER_RELAYS:-6}"
SECS="${SOTTO_BENCH_SECONDS:-10}"
RESULTS=target/cluster-results.txt
step() { printf '\n==> %s\n' "$*" >&2; }
[ $((RELAYS % 2)) = 0 ] || { echo "SOTTO_CLUSTER_RELAYS must be even" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 2; }

step "building (release)"
cargo build --quiet --release --locked --bin sotto-relay --bin relay-load
ulimit -n "$(ulimit -Hn)"
mkdir -p target
: >"$RESULTS"
emit() { echo "$1 load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RESULTS"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system) of processes, in seconds: what took the machine's two cores.
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; awk "BEGIN { print $t / $(getconf CLK_TCK) }"; }
share() { awk "BEGIN { printf \"%.2f\", ($2 - $1) / $3 }"; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

per=$((TOTAL / RELAYS))
# Below the ephemeral range (32768-60999), where a port may be taken by an outgoing connection.
base=$((20000 + RANDOM % 12000))
step "redis-server on 127.0.0.1:$base, $RELAYS relays of $per connections"
redis-server --port "$base" --bind 127.0.0.1 --save '' --appendonly no --maxclients 1000 \
  --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
until redis-cli -p "$base" ping >/dev/null 2>&1; do sleep 0.1; done
relay_pids=()
for i in $(seq 0 $((RELAYS - 1))); do
  target/release/sotto-relay --listen "127.0.0.1:$((base + 1 + i))" --log warn \
    --redis "redis://127.0.0.1:$base" --max-connections $((per + 2500)) \
    --rate 1000000 --burst 1000000 2>"$work/relay-$i.log" &
  relay_pids+=($!)
  pids+=($!)
done
for i in $(seq 0 $((RELAYS - 1))); do
  until curl -fs "http://127.0.0.1:$((base + 1 + i))/healthz" >/dev/null; do
    kill -0 "${relay_pids[$i]}" 2>/dev/null || { cat "$work/relay-$i.log" >&2; exit 1; }
    sleep 0.1
  done
done
sum_rss() { local s=0; for p in "$@"; do s=$((s + $(rss "$p"))); done; echo "$s"; }
relays_before=$(sum_rss "${relay_pids[@]}")
redis_before=$(rss "$redis_pid")

step "joining $TOTAL connections"
gen_pids=()
holds=()
relay_cpu0=$(cpu "${relay_pids[@]}")
redis_cpu0=$(cpu "$redis_pid")
start=$(date +%s.%N)
for g in $(seq 0 $((RELAYS - 1))); do
  mkfifo "$work/in-$g"
  target/release/relay-load --addr "127.0.0.1:$((base + 1 + g))" hold --clients "$per" \
    --first-room $((2000000 + (g / 2) * per)) --seat $((g % 2)) <"$work/in-$g" >"$work/gen-$g.out" &
  gen_pids+=($!)
  pids+=($!)
  exec {fd}>"$work/in-$g"
  holds+=("$fd")
done
for g in $(seq 0 $((RELAYS - 1))); do
  until grep -q 'scenario=hold' "$work/gen-$g.out" 2>/dev/null; do
    if ! kill -0 "${gen_pids[$g]}" 2>/dev/null; then
      echo "generator $g failed:" >&2; cat "$work/gen-$g.out" >&2; exit 1
    fi
    sleep 0.2
  done
done
joined=$(date +%s.%N)
gen_cpu=$(cpu "${gen_pids[@]}")
relay_cpu1=$(cpu "${relay_pids[@]}")
redis_cpu1=$(cpu "$redis_pid")
took=$(awk "BEGIN { print $joined - $start }")
open=0
for i in $(seq 0 $((RELAYS - 1))); do
  n=$(curl -fs "http://127.0.0.1:$((base + 1 + i))/metrics" | awk '$1 == "sotto_connections" {print $2}')
  open=$((open + n))
done
relays_after=$(sum_rss "${relay_pids[@]}")
redis_after=$(rss "$redis_pid")
redis_mem=$(redis-cli -p "$base" info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
rooms=$(redis-cli -p "$base" --scan --pattern 'sotto:room:*' | wc -l)
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
emit "scenario=cluster-hold relays=$RELAYS connections_open=$open rooms_in_redis=$rooms \
join_seconds=$(calc %.1f "$joined - $start") joins_per_s=$(calc %.0f "$open / ($joined - $start)") \
relay_kib_per_conn=$(calc %.2f "($relays_after - $relays_before) / $open") \
redis_kib_per_conn=$(calc %.3f "($redis_after - $redis_before) / $open") \
redis_used_memory_bytes=$redis_mem relays_cpu=$(share "$relay_cpu0" "$relay_cpu1" "$took") \
redis_cpu=$(share "$redis_cpu0" "$redis_cpu1" "$took") generators_cpu=$(share 0 "$gen_cpu" "$took")"
for g in $(seq 0 $((RELAYS - 1))); do emit "$(cat "$work/gen-$g.out") generator=$g"; done

step "ping-pong while $open connections are held: pairs on one relay, then split across two"
r0="127.0.0.1:$((base + 1))"
r1="127.0.0.1:$((base + 2))"
# CPU shares (1.0 = one core) of the two relays in use and of Redis during each run.
pingpong() {
  local r c0 d0 t0 line
  r=$(cpu "${relay_pids[0]}" "${relay_pids[1]}"); d0=$(cpu "$redis_pid"); t0=$(date +%s.%N)
  line=$(target/release/relay-load "$@" pingpong --clients 1000 --seconds "$SECS")
  c0=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
  echo "$line relays_cpu=$(share "$r" "$(cpu "${relay_pids[0]}" "${relay_pids[1]}")" "$c0") \
redis_cpu=$(share "$d0" "$(cpu "$redis_pid")" "$c0")"
}
for round in 1 2 3; do
  emit "$(pingpong --addr "$r0") round=$round"
  emit "$(pingpong --addr "$r0" --addr2 "$r1") round=$round"
done

step "letting go"
for fd in "${holds[@]}"; do exec {fd}>&-; done
for g in $(seq 0 $((RELAYS - 1))); do
  wait "${gen_pids[$g]}" || true
  emit "$(tail -n 1 "$work/gen-$g.out") generator=$g"
done
echo "results: $RESULTS"
