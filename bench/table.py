"""Turns bench/run.sh's result lines (key=value, one measurement each) into one table of
medians, Markdown, on standard output. Usage: python3 bench/table.py RESULTS_FILE, or
python3 bench/table.py --compare RECORDED_FILE NEW_FILE for Sotto's figures against a recorded
run (bench/run.sh --compare)."""

import math
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
    """Median of the lines that have the key; None if none does (older lines lack some)."""
    values = []
    for r in rows:
        try:
            v = float(r[key])
        except (KeyError, ValueError):
            continue
        if math.isfinite(v):
            values.append(v)
    return statistics.median(values) if values else None


def cpu(rows):
    """The server's and the generator's CPU, as a share of a core and per message; a result
    whose generator ran above 90% of its core in any run says so: it may have set the pace."""
    own = med(rows, "server_user_us_per_msg")
    own = f", {own:.1f} in its own code" if own is not None else ""
    text = (f"server CPU {med(rows, 'server_cpu'):.2f} ({med(rows, 'server_us_per_msg'):.1f} us/msg{own}), "
            f"generator {med(rows, 'generator_cpu'):.2f} ({med(rows, 'generator_us_per_msg'):.1f} us/msg)")
    if any(r.get("generator_bound") == "true" for r in rows):
        text += ", **generator-bound**"
    return text


def loads(rows):
    values = [float(r["load"]) for r in rows]
    return f"{min(values):.2f}-{max(values):.2f}"


# The relay columns (and the charts' series), in this order: Sotto's relay on one worker
# thread and on two, then the others. A line from before runs recorded the thread count is
# Sotto on one thread.
SERIES = [("sotto", "1"), ("sotto", "2"), ("matchbox", None), ("peerjs", None)]
LABELS = {("sotto", "1"): "Sotto", ("sotto", "2"): "Sotto, 2 threads",
          ("matchbox", None): "matchbox_server", ("peerjs", None): "PeerJS"}


def series(r):
    """(server, threads), None for a server not compared here."""
    s = r.get("server")
    if s not in SERVERS:
        return None
    return (s, r.get("threads", "1")) if s == "sotto" else (s, None)


def relay_groups(rows):
    """The relay results by what they measured: (scenario, series, clients, size, of_closed).
    split=true lines are two relays of a cluster (bench/cluster.sh), another experiment."""
    by = defaultdict(list)
    for r in rows:
        if r["scenario"] in ("pingpong", "openloop", "idle", "flood") and r.get("split") != "true":
            by[(r["scenario"], series(r), r.get("clients"), r.get("size"), r.get("of_closed"))].append(r)
    return by


def relay_row(label, by, key, cell):
    """One table row: `cell(rows)` for each series that has results for `key(series)`."""
    present = [s for s in SERIES if any(k[1] == s for k in by)]
    cells, runs = [], []
    for s in present:
        rs = by.get(key(s), [])
        runs += rs
        cells.append(cell(rs) if rs else "-")
    print(f"| {label} | " + " | ".join(cells) + f" | {loads(runs) if runs else '-'} |")


def relays(rows):
    by = relay_groups(rows)
    present = [s for s in SERIES if any(k[1] == s for k in by)]
    rounds = max((len(v) for k, v in by.items() if k[0] == "pingpong"), default=0)
    print(f"### Relays (median of {rounds} runs each; server on core 0, generator on core 1; "
          "Sotto with 2 threads on both cores)\n")
    print("| scenario | " + " | ".join(LABELS[s] for s in present) + " | load (1 min) |")
    print("|---|" + "---|" * (len(present) + 1))
    for clients in ("200", "2000"):
        for size in ("1024", "4096"):
            relay_row(
                f"ping-pong, {int(clients):,} clients, {int(size) // 1024} KiB", by,
                lambda s: ("pingpong", s, clients, size, None),
                lambda rs: f"{med(rs, 'msgs_per_s'):,.0f} msg/s, p50 {med(rs, 'p50_ms'):.1f} / "
                           f"p99 {med(rs, 'p99_ms'):.1f} ms, {cpu(rs)}")
    for pct in ("25", "50", "75"):
        relay_row(
            f"open loop, 2,000 clients, 1 KiB, at {pct}% of that relay's ping-pong rate", by,
            lambda s: ("openloop", s, "2000", "1024", pct),
            lambda rs: f"{med(rs, 'msgs_per_s'):,.0f} msg/s, p50 {med(rs, 'p50_ms'):.1f} / "
                       f"p99 {med(rs, 'p99_ms'):.1f} / p99.9 {med(rs, 'p999_ms'):.1f} ms, "
                       f"{sum(int(r['lost']) for r in rs)} lost, {cpu(rs)}")
    for clients in ("1000", "10000"):
        relay_row(f"idle, {int(clients):,} joined connections: RSS per connection", by,
                  lambda s: ("idle", s, clients, None, None),
                  lambda rs: f"{med(rs, 'kib_per_conn'):.1f} KiB/conn")
    relay_row("flood: 3 s of 4 KiB messages into a peer that never reads", by,
              lambda s: ("flood", s, None, "4096", None),
              lambda rs: f"peak RSS {med(rs, 'peak_rss_kib') / 1024:,.0f} MiB, silent peer "
                         f"dropped in {sum(r['reader_dropped'] == 'true' for r in rs)}/{len(rs)} runs")


# What --compare reports for Sotto's relay on one thread: (label, group key, field, which way
# is better: +1 higher, -1 lower).
COMPARED = (
    [(f"ping-pong {int(c):,} clients {int(z) // 1024} KiB: {what}", ("pingpong", c, z, None), f, better)
     for c in ("200", "2000") for z in ("1024", "4096")
     for what, f, better in (("msg/s", "msgs_per_s", 1), ("p99 ms", "p99_ms", -1),
                             ("server us/msg", "server_us_per_msg", -1),
                             ("server us/msg in its own code", "server_user_us_per_msg", -1))]
    + [(f"open loop 50%: {what}", ("openloop", "2000", "1024", "50"), f, -1)
       for what, f in (("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("p99.9 ms", "p999_ms"),
                       ("server us/msg", "server_us_per_msg"))]
    + [("idle 1,000: KiB/conn", ("idle", "1000", None, None), "kib_per_conn", -1),
       ("flood: peak RSS KiB", ("flood", None, "4096", None), "peak_rss_kib", -1)]
)


def figure(x):
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"


def compare(recorded_path, now_path):
    """Each figure of Sotto's relay (one thread) now against the recorded run's median."""
    recorded, now = relay_groups(parse(recorded_path)), relay_groups(parse(now_path))
    print("| figure | recorded | now | change |")
    print("|---|---|---|---|")
    for label, (scenario, clients, size, pct), field, better in COMPARED:
        key = (scenario, ("sotto", "1"), clients, size, pct)
        was, rs = recorded.get(key), now.get(key)
        if not was or not rs:
            continue
        a, b = med(was, field), med(rs, field)
        if a is None or b is None:
            continue
        change = (b - a) / a * 100 if a else 0.0
        # Runs on this VM differ by 10-20% with nothing changed: only more than that is flagged.
        verdict = " **worse**" if change * better < -20 else (" better" if change * better > 20 else "")
        print(f"| {label} | {figure(a)} | {figure(b)} | {change:+.0f}%{verdict} |")


def main(path):
    rows = parse(path)
    by = defaultdict(list)
    for r in rows:
        by[(r["scenario"], r.get("server"), r.get("clients"), r.get("size"))].append(r)
    relays(rows)

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
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1])
