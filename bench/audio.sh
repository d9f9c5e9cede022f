#!/usr/bin/env bash
# The terminal client's sound (issue 16), never part of the test suite:
#  1. the processing chain's cost per 10 ms frame (audio-bench cost);
#  2. a call of SOTTO_AUDIO_MINUTES (10) minutes between two `sotto` clients on this machine:
#     A sends a burst every second from a WAV file and writes what it hears to a WAV file; B's
#     speakers are a PulseAudio null sink at 44.1 kHz whose monitor is B's microphone (no
#     processing: a perfect loop), so every burst comes back to A through B's whole device path.
#     The round trip of each burst, from A's two files (written in step), is mouth to ear and
#     back; how it moves over the call is any growth of delay.
#
#   bash bench/audio.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${SOTTO_AUDIO_MINUTES:-10}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --quiet --release --locked --bin sotto --bin sotto-relay --bin audio-bench
bin=target/release

echo "==> processing cost" >&2
"$bin/audio-bench" cost

echo "==> a ${MINUTES}-minute call through a 44.1 kHz null sink" >&2
export PULSE_RUNTIME_PATH="$work/pulse" PULSE_SERVER="unix:$work/pulse/native"
mkdir -p "$PULSE_RUNTIME_PATH"
pulseaudio --daemonize=no -n --use-pid-file=no --exit-idle-time=-1 --log-level=error \
  "--load=module-native-protocol-unix auth-anonymous=1 socket=$work/pulse/native" \
  "--load=module-null-sink sink_name=loop rate=44100" &
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-sink loop
pactl set-default-source loop.monitor

"$bin/sotto-relay" --listen 127.0.0.1:18480 >/dev/null 2>&1 &
for _ in $(seq 100); do curl -sf http://127.0.0.1:18480/healthz >/dev/null && break; sleep 0.1; done
"$bin/audio-bench" markers "$work/sent.wav" "$MINUTES"
link="http://127.0.0.1:18480/#$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
export XDG_DATA_HOME="$work/data"
secs=$((MINUTES * 60))
"$bin/sotto" call "$link" --loopback --incognito --no-aec --no-ns --no-agc \
  --duration "$((secs + 5))" >/dev/null 2>&1 </dev/null &
b=$!
"$bin/sotto" call "$link" --loopback --incognito --input "$work/sent.wav" \
  --output "$work/heard.wav" --duration "$secs" >/dev/null 2>&1 </dev/null
kill "$b" 2>/dev/null || true
"$bin/audio-bench" delay "$work/sent.wav" "$work/heard.wav"
