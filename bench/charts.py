"""Draws bench/run.sh's result lines as four SVG charts of medians over the rounds: one-way
latency distribution, ping-pong throughput, relay CPU per message, memory per idle connection.
Standard library only, so it runs wherever the benchmark ran. Usage:
python3 bench/charts.py RESULTS_FILE OUT_DIR "CAPTION"   (CAPTION: machine and date, e.g.
"2 vCPUs (AMD EPYC), 2026-12-03", printed under every chart's title)"""

import math
import os
import statistics
import sys
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import LABELS, SERIES, med, parse, relay_groups  # noqa: E402

# The same colour for a series in every chart (Okabe-Ito: the four stay apart with colour
# blindness too); series, labels and their order are table.py's.
COLOUR = dict(zip(SERIES, ["#0072B2", "#56B4E9", "#E69F00", "#009E73"]))
PCTS = [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]  # what dist_ms lists, in order
WIDTH, LEFT, RIGHT, TOP = 800, 84, 40, 112  # TOP: below title, caption, subtitle, legend


def pick(by, scenario, key, clients=None, size=None, of_closed=None):
    """The lines of one series in one group of table.relay_groups."""
    return by.get((scenario, key, clients, size, of_closed), [])


def dist(rows):
    """The median per percentile of dist_ms over the lines that carry all 13 values."""
    dists = []
    for r in rows:
        try:
            d = [float(v) for v in r.get("dist_ms", "").split(",")]
        except ValueError:
            continue
        if len(d) == len(PCTS):
            dists.append(d)
    return [statistics.median(col) for col in zip(*dists)] if dists else None


def group(by, scenario, value, inner=None, **want):
    """{series: (median of value, generator-bound in any run, median of inner or None)} for
    one group, and its run count."""
    out, runs = {}, 0
    for key in SERIES:
        rs = pick(by, scenario, key, **want)
        v = med(rs, value)
        if v is not None:
            bound = any(r.get("generator_bound") == "true" for r in rs)
            out[key] = (v, bound, med(rs, inner) if inner else None)
            runs = max(runs, len(rs))
    return out, runs


def text(x, y, s, size=12, anchor="start", fill="#222", weight="normal", rotate=False):
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}"{turn}>{escape(str(s))}</text>')


def line(x1, y1, x2, y2, stroke="#ccc", width=1):
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"/>')


def width_of(s, size):
    return 0.6 * size * len(s)  # about right for sans-serif digits; only used to avoid overlaps


def header(title, subtitle, caption, keys):
    parts = [text(LEFT - 60, 28, title, 18, weight="bold"),
             text(LEFT - 60, 48, caption, 12, fill="#555"),
             text(LEFT - 60, 68, subtitle, 13, fill="#333")]
    x = LEFT - 60
    for k in keys:
        parts.append(f'<rect x="{x}" y="81" width="14" height="14" fill="{COLOUR[k]}"/>')
        parts.append(text(x + 20, 93, LABELS[k], 13))
        x += 20 + 0.55 * 13 * len(LABELS[k]) + 22  # letters run narrower than digits
    return parts


def document(height, parts):
    # Hatching marks generator-bound bars; the white rectangle keeps dark text readable on
    # GitHub's dark theme too, which would otherwise show through.
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">\n'
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" '
            'stroke-width="2.5" stroke-opacity="0.7"/></pattern></defs>\n'
            f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


def nice_step(span, count=5):
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def bars(title, subtitle, caption, groups, ylabel, fmt, note):
    """Grouped bars. groups: [(label lines, {series: (value, generator-bound)})]. A series
    missing from a group is left out of it and the group's other bars close up."""
    keys = [k for k in SERIES if any(k in g for _, g in groups)]
    lines = max(len(label) for label, _ in groups)
    ph = 300
    flagged = any(b for _, g in groups for _, b, _ in g.values())
    height = TOP + ph + 16 * lines + 26 + (22 if flagged else 0)
    parts = header(title, subtitle, caption, keys)
    pw, bottom = WIDTH - LEFT - RIGHT, TOP + ph
    gw = pw / len(groups)
    bw = min(64, gw * 0.82 / max(len(keys), 1))
    values = [v for _, g in groups for v, _, _ in g.values()]
    if not values:
        parts.append(text(LEFT + pw / 2, TOP + ph / 2, "no data", 16, "middle", "#888"))
        return document(height, parts)
    # Value labels go above the bars, turned upright when wider than a bar; the axis leaves
    # room for them above the tallest bar.
    lw = max(width_of(fmt(v) + "*", 11) for v in values)
    upright = lw > bw - 2
    room = (lw if upright else 14) + 8
    # Seven groups of three-line labels (the CPU chart) touch at 12 px.
    size = 12 if max(width_of(s, 12) for label, _ in groups for s in label) < gw - 10 else 11
    vmax = max(max(values), 1e-9) * ph / (ph - room)
    step = nice_step(vmax)
    ymax = step * math.ceil(vmax / step)
    y = lambda v: bottom - v / ymax * ph  # noqa: E731
    for n in range(round(ymax / step) + 1):
        tick = n * step  # steps like 2.5 or 0.25 keep their decimals, whole ones show none
        parts.append(line(LEFT, y(tick), LEFT + pw, y(tick), "#e3e3e3"))
        parts.append(text(LEFT - 8, y(tick) + 4, f"{tick:,.3f}".rstrip("0").rstrip("."), 11,
                          "end", "#444"))
    parts.append(text(20, TOP + ph / 2, ylabel, 12, "middle", "#333", rotate=True))
    for i, (label, g) in enumerate(groups):
        present = [k for k in keys if k in g]
        centre = LEFT + gw * (i + 0.5)
        x0 = centre - bw * len(present) / 2
        for j, k in enumerate(present):
            v, bound, inner = g[k]
            x, top = x0 + j * bw + 1, y(max(v, 0))  # RSS can shrink: no bar below zero
            # With an inner part (the relay's own code within its CPU), the rest of the bar
            # is drawn paler.
            opacity = ' fill-opacity="0.4"' if inner is not None else ""
            parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{bw - 2:.1f}" '
                         f'height="{bottom - top:.1f}" fill="{COLOUR[k]}"{opacity}/>')
            if inner is not None:
                it = y(min(max(inner, 0), v))
                parts.append(f'<rect x="{x:.1f}" y="{it:.1f}" width="{bw - 2:.1f}" '
                             f'height="{bottom - it:.1f}" fill="{COLOUR[k]}"/>')
            if bound:
                parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{bw - 2:.1f}" '
                             f'height="{bottom - top:.1f}" fill="url(#hatch)"/>')
            s = fmt(v) + ("*" if bound else "")
            cx = x + (bw - 2) / 2
            parts.append(text(cx + 4, top - 5, s, 11, rotate=True) if upright
                         else text(cx, top - 5, s, 11, "middle"))
        if not present:
            parts.append(text(centre, bottom - 8, "no data", 11, "middle", "#999"))
        for n, part in enumerate(label):
            parts.append(text(centre, bottom + 18 + 16 * n, part, size, "middle", "#333"))
    parts.append(line(LEFT, bottom, LEFT + pw, bottom, "#555"))
    if flagged:
        parts.append(text(LEFT - 60, height - 12, note, 11, fill="#444"))
    return document(height, parts)


def px(p):
    """Percentiles on a log scale of 1/(1-p): p90 at 1, p99 at 2, ...; the maximum past p99.99."""
    return 4.6 if p == 100 else -math.log10(1 - p / 100)


def latency(by, caption):
    panels = []
    for name, scenario, want in [
        ("ping-pong, 2,000 clients, 1 KiB", "pingpong", {}),
        ("open loop at 50% of each relay's ping-pong rate, 2,000 clients, 1 KiB", "openloop",
         {"of_closed": "50"}),
    ]:
        found = {k: dist(pick(by, scenario, k, clients="2000", size="1024", **want))
                 for k in SERIES}
        panels.append((name, {k: d for k, d in found.items() if d}))
    keys = [k for k in SERIES if any(k in d for _, d in panels)]
    # One y range for both panels, so a height means the same in each; log of ms, 0 clamped.
    values = [max(v, 0.01) for _, d in panels for vs in d.values() for v in vs]
    lo = math.floor(math.log10(min(values))) if values else -1
    hi = math.ceil(math.log10(max(values))) if values else 3
    hi = max(hi, lo + 1)
    ph, pw, gap = 200, WIDTH - LEFT - RIGHT, 78
    height = TOP + 2 * (ph + gap) + 8
    parts = header("One-way latency distribution",
                   "Median of the runs at each percentile; both axes logarithmic; lower is better",
                   caption, keys)
    x = lambda p: LEFT + px(p) / px(100) * pw  # noqa: E731
    for i, (name, d) in enumerate(panels):
        top = TOP + 14 + i * (ph + gap)
        bottom = top + ph
        y = lambda v: bottom - (math.log10(max(v, 0.01)) - lo) / (hi - lo) * ph  # noqa: E731
        parts.append(text(LEFT, top - 8, name, 13, weight="bold"))
        for e in range(lo, hi + 1):
            for m in (1, 2, 5):
                v = m * 10.0 ** e
                if e == hi and m > 1:
                    break
                parts.append(line(LEFT, y(v), LEFT + pw, y(v), "#e3e3e3" if m == 1 else "#f3f3f3"))
                if m == 1 or hi - lo <= 2:
                    parts.append(text(LEFT - 8, y(v) + 4, f"{v:,.{max(0, -e)}f}", 11, "end",
                                      "#444" if m == 1 else "#888"))
        for p, s in [(0, "min"), (50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p99.9"),
                     (99.99, "p99.99"), (100, "max")]:
            parts.append(line(x(p), top, x(p), bottom, "#e3e3e3"))
            parts.append(text(x(p), bottom + 16, s, 11, "middle", "#444"))
        parts.append(line(LEFT, bottom, LEFT + pw, bottom, "#555"))
        parts.append(line(LEFT, top, LEFT, bottom, "#555"))
        parts.append(text(20, top + ph / 2, "latency (ms)", 12, "middle", "#333", rotate=True))
        if not d:
            parts.append(text(LEFT + pw / 2, top + ph / 2, "no data", 16, "middle", "#888"))
        for k in keys:
            if k in d:
                pts = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in zip(PCTS, d[k]))
                parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLOUR[k]}" '
                             'stroke-width="2" stroke-linejoin="round"/>')
                parts += [f'<circle cx="{x(p):.1f}" cy="{y(v):.1f}" r="2.8" fill="{COLOUR[k]}"/>'
                          for p, v in zip(PCTS, d[k])]
        parts.append(text(LEFT + pw / 2, bottom + 34,
                          "percentile (log scale of 1/(1-p); min to p25 crowd the left edge)",
                          12, "middle", "#333"))
    return document(height, parts)


PINGPONG = [(c, s, [f"{int(c):,} clients", f"{int(s) // 1024} KiB"])
            for c in ("200", "2000") for s in ("1024", "4096")]


def runs_text(n):
    return f"median of {n} runs" if n > 1 else "one run" if n else "no runs found"


BOUND_NOTE = "* generator-bound: the load generator, not the relay, may have set the pace"


def throughput(by, caption):
    groups, n = [], 0
    for c, s, label in PINGPONG:
        g, runs = group(by, "pingpong", "msgs_per_s", clients=c, size=s)
        groups.append((label, g))
        n = max(n, runs)
    return bars("Messages relayed per second (ping-pong)",
                f"Pairs of clients bounce a message back and forth; {runs_text(n)}; "
                "higher is better", caption, groups, "messages per second",
                lambda v: f"{v:,.0f}",
                BOUND_NOTE)


# The relay's CPU in its own code, drawn inside its whole CPU (the rest is the kernel's TCP).
USER = "server_user_us_per_msg"


def cpu(by, caption):
    groups, n = [], 0
    for c, s, label in PINGPONG:
        g, runs = group(by, "pingpong", "server_us_per_msg", USER, clients=c, size=s)
        groups.append((["ping-pong"] + label, g))
        n = max(n, runs)
    for pct in ("25", "50", "75"):
        g, runs = group(by, "openloop", "server_us_per_msg", USER, clients="2000",
                        size="1024", of_closed=pct)
        groups.append(([f"open loop {pct}%", "2,000 clients", "1 KiB"], g))
        n = max(n, runs)
    return bars("Relay CPU time per relayed message",
                f"Solid: in the relay's own code; pale: in the kernel for it; {runs_text(n)}; "
                "lower is better", caption, groups, "relay CPU per message (µs)",
                lambda v: f"{v:.1f}",
                BOUND_NOTE)


def memory(by, caption):
    groups, n = [], 0
    for c in ("1000", "10000"):
        g, runs = group(by, "idle", "kib_per_conn", clients=c)
        # Generator-bound means nothing for an idle server; no marks here.
        groups.append(([f"{int(c):,} connections"], {k: (v, False, None) for k, (v, _, _) in g.items()}))
        n = max(n, runs)
    return bars("Resident memory per idle joined connection",
                f"Growth of the relay's RSS over the connections, fresh server each time; "
                f"{runs_text(n)}; lower is better", caption, groups, "RSS per connection (KiB)",
                lambda v: f"{v:.1f}", "")


def main(path, out_dir, caption):
    by = relay_groups(parse(path))
    os.makedirs(out_dir, exist_ok=True)
    for name, draw in [("latency", latency), ("throughput", throughput), ("cpu", cpu),
                       ("memory", memory)]:
        out = os.path.join(out_dir, f"{name}.svg")
        with open(out, "w", encoding="utf-8") as f:
            f.write(draw(by, caption))
        print(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
