"""Turns bench/run.sh's result lines (key=value, one measurement each) into one table of
medians, Markdown, on standard output. Usage: python3 bench/table.py RESULTS_FILE"""

import shlex
import statistics
import sys
from collections import defaultdict

SERVERS = ["sotto", "matchbox", "peerjs"]


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            if "=" in line:
                rows.append(dict(part.split("=", 1) for part in shlex.split(line)))
    return rows


def med(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def cpu(rows):
    """The server's and the generator's CPU, as a share of a core and per message; a result
    whose generator ran above 90% of its core in any run says so: it may have set the pace."""
    text = (f"server CPU {med(rows, 'server_cpu'):.2f} ({med(rows, 'server_us_per_msg'):.1f} us/msg), "
            f"generator {med(rows, 'generator_cpu'):.2f} ({med(rows, 'generator_us_per_msg'):.1f} us/msg)")
    if any(r.get("generator_bound") == "true" for r in rows):
        text += ", **generator-bound**"
    return text


def loads(rows):
    values = [float(r["load"]) for r in rows]
    return f"{min(values):.2f}-{max(values):.2f}"


def main(path):
    rows = parse(path)
    by = defaultdict(list)
    for r in rows:
        by[(r["scenario"], r.get("server"), r.get("clients"), r.get("size"))].append(r)

    rounds = max((len(v) for k, v in by.items() if k[0] == "pingpong"), default=0)
    print(f"### Relays (median of {rounds} runs each; server on core 0, generator on core 1)\n")
    print("| scenario | " + " | ".join(SERVERS) + " | load (1 min) |")
    print("|---|" + "---|" * (len(SERVERS) + 1))
    for clients in ("200", "2000"):
        for size in ("1024", "4096"):
            cells, runs = [], []
            for s in SERVERS:
                rs = by.get(("pingpong", s, clients, size), [])
                runs += rs
                cells.append(
                    f"{med(rs, 'msgs_per_s'):,.0f} msg/s, p50 {med(rs, 'p50_ms'):.1f} / "
                    f"p99 {med(rs, 'p99_ms'):.1f} ms, {cpu(rs)}"
                    if rs
                    else "-"
                )
            label = f"ping-pong, {int(clients):,} clients, {int(size) // 1024} KiB"
            print(f"| {label} | " + " | ".join(cells) + f" | {loads(runs) if runs else '-'} |")
    for pct in ("25", "50", "75"):
        cells, runs = [], []
        for s in SERVERS:
            rs = [r for r in by.get(("openloop", s, "2000", "1024"), []) if r.get("of_closed") == pct]
            runs += rs
            cells.append(
                f"{med(rs, 'msgs_per_s'):,.0f} msg/s, p50 {med(rs, 'p50_ms'):.1f} / "
                f"p99 {med(rs, 'p99_ms'):.1f} / p99.9 {med(rs, 'p999_ms'):.1f} ms, "
                f"{sum(int(r['lost']) for r in rs)} lost, {cpu(rs)}"
                if rs
                else "-"
            )
        label = f"open loop, 2,000 clients, 1 KiB, at {pct}% of that relay's ping-pong rate"
        print(f"| {label} | " + " | ".join(cells) + f" | {loads(runs) if runs else '-'} |")
    for clients in ("1000", "10000"):
        cells, runs = [], []
        for s in SERVERS:
            rs = by.get(("idle", s, clients, None), [])
            runs += rs
            cells.append(f"{med(rs, 'kib_per_conn'):.1f} KiB/conn" if rs else "-")
        label = f"idle, {int(clients):,} joined connections: RSS per connection"
        print(f"| {label} | " + " | ".join(cells) + f" | {loads(runs) if runs else '-'} |")
    cells, runs = [], []
    for s in SERVERS:
        rs = by.get(("flood", s, None, "4096"), [])
        runs += rs
        if rs:
            dropped = sum(r["reader_dropped"] == "true" for r in rs)
            cells.append(
                f"peak RSS {med(rs, 'peak_rss_kib') / 1024:,.0f} MiB, "
                f"silent peer dropped in {dropped}/{len(rs)} runs"
            )
        else:
            cells.append("-")
    print("| flood: 3 s of 4 KiB messages into a peer that never reads | "
          + " | ".join(cells) + f" | {loads(runs) if runs else '-'} |")

    print("\n### Media and call set-up\n")
    print("| measurement | result | load (1 min) |")
    print("|---|---|---|")
    for size in ("60", "1200", "30000"):
        for op in ("seal", "open"):
            for r in by.get(("sframe", None, None, size), []):
                if r["op"] == op:
                    raw, sf = float(r["raw_ns"]), float(r["sframe_ns"])
                    print(f"| SFrame {op}, {int(size):,} B frame | {sf:,.0f} ns vs raw AES-128-GCM "
                          f"{raw:,.0f} ns: **{sf / raw:.2f}x** | {r['load']} |")
    for r in (r for r in rows if r["scenario"] == "overhead"):
        print(f"| SFrame bytes per frame, {r['stream']} | {r['first_frame_bytes']} B at the start "
              f"of a call, {r['after_1h_bytes']} B after an hour (trailer layouts: 28-30 B) "
              f"| {r['load']} |")
    for r in (r for r in rows if r["scenario"] == "call-setup"):
        if r["kind"] == "native":
            print(f"| call set-up, native to native on loopback (median of {r['calls']}) | "
                  f"keys confirmed {r['keys_confirmed_ms']} ms, connected {r['connected_ms']} ms, "
                  f"**first audio frame decoded on both sides {r['first_audio_ms']} ms** "
                  f"| {r['load']} |")
    browser = {r["mode"]: r for r in rows if r.get("kind") == "browser"}
    if "e2ee" in browser and "plain" in browser:
        e, p = float(browser["e2ee"]["first_video_ms"]), float(browser["plain"]["first_video_ms"])
        print(f"| call set-up, Chromium to Chromium: second page opened to first remote video "
              f"frame (median of {browser['e2ee']['calls']}) | E2EE {e:.0f} ms, without the "
              f"transform {p:.0f} ms: **{(e / p - 1) * 100:+.1f}%** | {browser['e2ee']['load']} |")
    for r in (r for r in rows if r["scenario"] == "file-transfer"):
        raw, sealed = float(r["raw_mbps"]), float(r["sealed_mbps"])
        where = ("the native client (webrtc 0.21.1), two peer connections of one process"
                 if r["browser"] == "native" else
                 f"{r['browser'].capitalize()}, page to page (each its own browser context)")
        print(f"| file transfer in {where}, one data channel ({r['megabytes']} MB, median of "
              f"{r['rounds']}) | raw "
              f"{raw:.1f} MB/s, sealed {sealed:.1f} MB/s: **{sealed / raw * 100:.0f}%** "
              f"| {r['load']} |")
    for r in (r for r in rows if r["scenario"] == "group-mesh-summary"):
        cells = ", ".join(
            f"{n} people: {float(r[f'people{n}_cpu']):.2f} cores, {r[f'people{n}_pss_mib']} MiB, "
            f"{r[f'people{n}_fps']} fps"
            for n in (2, 3, 4)
        )
        print(f"| group call in Chromium, each participant a browser of its own (median of "
              f"{r['rounds']} rounds): CPU, memory and received frame rate per participant | "
              f"{cells}; a fourth person sees everyone {float(r['newcomer_sees_ms']) / 1000:.1f} s "
              f"after Join | {r['load']} |")


if __name__ == "__main__":
    main(sys.argv[1])
