#!/usr/bin/env python3
"""Medians of the `mqttkit bench` reports written by compare.sh, as a Markdown table with
ratios (mqttkit-broker ÷ mosquitto, ÷ rumqttd) and the targets of issue 14.

    table.py DIR [--readme README.md --results RESULTS.md]

Prints the table; with --readme, replaces what lies between <!-- broker-bench:begin -->
and <!-- broker-bench:end --> in that file, and writes every median to --results.
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys

BROKERS = [("mqttkit", "mqttkit-broker"), ("mosquitto", "mosquitto"), ("rumqttd", "rumqttd")]


def get(report, path):
    value = report
    for key in path.split("."):
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def load(directory):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.basename(path)
        match = re.fullmatch(r"(\d+)-(.+)-(mqttkit|mosquitto|rumqttd)\.json", name)
        if not match:
            continue
        _, scenario, broker = match.groups()
        with open(path) as f:
            runs.setdefault((scenario, broker), []).append(json.load(f))
    return runs


def median(runs, scenario, broker, path):
    values = [get(r, path) for r in runs.get((scenario, broker), [])]
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def fmt(value, digits=3):
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


# (scenario, label, metric path, unit, kind of target, target parameter)
# Targets: "ahead" (throughput above both peers), "pct" (delivered % at least the value),
# "pct_vs_mosquitto" (delivered % at least mosquitto's), "ratio_max" (mqttkit ÷ mosquitto at
# most the value), "abs_max" (mqttkit's value at most the parameter).
THROUGHPUT = [
    ("p2p-q0", "1→1 QoS 0, flat out"),
    ("p2p-q1", "1→1 QoS 1, flat out"),
    ("p2p-q2", "1→1 QoS 2, flat out"),
    ("fanout100-q0", "fan-out 1→100 QoS 0, burst of 10,000"),
    ("fanout100-q1", "fan-out 1→100 QoS 1"),
    ("fanout1000-q0", "fan-out 1→1,000 QoS 0, burst of 1,000"),
    ("fanout1000-q1", "fan-out 1→1,000 QoS 1"),
    ("fanin100-q1", "fan-in 100→1 (bench/#) QoS 1"),
    ("fanin100-shared-q1-v5", "fan-in 100→$share (2 subscribers) QoS 1, 5.0"),
]

ROWS = []
for scenario, label in THROUGHPUT:
    ROWS.append((scenario, label, "messages.delivered_per_s", "deliveries/s", "ahead", None))
    if scenario == "p2p-q0":
        ROWS.append((scenario, label, "messages.delivered_pct", "% delivered", "pct", 99.9))
    if scenario.startswith("fanin"):
        ROWS.append((scenario, label, "messages.delivered_pct", "% delivered", "pct_vs_mosquitto", None))
    if not scenario.endswith("v5"):
        ROWS.append((scenario, label, "broker.cpu_s_per_100k_messages", "broker CPU s / 100k deliveries", "ratio_max", 1 / 3))
ROWS += [
    ("rate1000-q0", "1→1 QoS 0 at 1,000 msg/s", "latency_us.p50", "latency p50, µs", None, None),
    ("rate1000-q0", "1→1 QoS 0 at 1,000 msg/s", "latency_us.p99", "latency p99, µs", None, None),
    ("rate1000-q0", "1→1 QoS 0 at 1,000 msg/s", "broker.cpu_us_per_message", "broker CPU µs / message", "ratio_max", 1.0),
    ("idle10k", "10,000 idle connections", "memory.kib_per_connection", "KiB per connection", "ratio_max", 1.5),
    ("idle10k", "10,000 idle connections", "memory.after_close_vs_baseline", "RSS after closing ÷ before", "abs_max", 1.2),
    ("idle10k", "10,000 idle connections", "connections.rate_per_s", "connections accepted / s", None, None),
]

TARGET_TEXT = {
    "ahead": "ahead of both",
    "pct": "≥ {p}%",
    "pct_vs_mosquitto": "≥ mosquitto's",
    "ratio_max": "≤ {p:.2g}× mosquitto",
    "abs_max": "≤ {p}",
}


def verdict(kind, param, values):
    ours, mosq, rum = values.get("mqttkit"), values.get("mosquitto"), values.get("rumqttd")
    if kind is None or ours is None:
        return "—"
    if kind == "ahead":
        peers = [v for v in (mosq, rum) if v is not None]
        if not peers:
            return "—"
        return "✓" if all(ours > v for v in peers) else "✗"
    if kind == "pct":
        return "✓" if ours >= param else "✗"
    if kind == "pct_vs_mosquitto":
        return "—" if mosq is None else ("✓" if ours >= mosq else "✗")
    if kind == "ratio_max":
        return "—" if not mosq else ("✓" if ours / mosq <= param else "✗")
    if kind == "abs_max":
        return "✓" if ours <= param else "✗"
    return "—"


def ratio(ours, peer):
    if ours is None or not peer:
        return "—"
    return f"{ours / peer:.2f}×"


def table(runs, brokers):
    present = [(key, title) for key, title in BROKERS if key in brokers]
    head = "| scenario | measure | " + " | ".join(t for _, t in present)
    head += " | ÷ mosquitto | ÷ rumqttd | target | met |"
    lines = [head, "|---|---|" + "---:|" * len(present) + "---:|---:|---|:-:|"]
    for scenario, label, path, unit, kind, param in ROWS:
        if not any((scenario, b) in runs for b, _ in present):
            continue
        values = {b: median(runs, scenario, b, path) for b, _ in present}
        cells = []
        for b, _ in present:
            cell = fmt(values[b])
            pct = median(runs, scenario, b, "messages.delivered_pct")
            # CPU per delivery means little when most messages were not delivered.
            if path.startswith("broker.cpu") and pct is not None and pct < 50:
                values[b] = None
                cell = "n/a"
            # Throughput alone hides losses: show the share delivered beside it.
            if path == "messages.delivered_per_s":
                lost = median(runs, scenario, b, "disconnects.total")
                still = [r for r in runs.get((scenario, b), []) if get(r, "messages.drain") == "time limit"]
                if pct is not None and pct < 99.95:
                    cell += f" ({pct:.1f}%)"
                if lost:
                    cell += " ⚠"
                if still:
                    cell += " ⏳"
            cells.append(cell)
        target = TARGET_TEXT[kind].format(p=param) if kind else ""
        lines.append(
            f"| {label} | {unit} | "
            + " | ".join(cells)
            + f" | {ratio(values.get('mqttkit'), values.get('mosquitto'))}"
            + f" | {ratio(values.get('mqttkit'), values.get('rumqttd'))}"
            + f" | {target} | {verdict(kind, param, values)} |"
        )
    return "\n".join(lines)


def generator_note(runs, brokers):
    flat = [s for s, _ in THROUGHPUT]
    parts = []
    for b, title in BROKERS:
        if b not in brokers:
            continue
        # Per delivery means little where most messages were not delivered.
        delivered = [s for s in flat if (median(runs, s, b, "messages.delivered_pct") or 0) >= 50]
        gen = [median(runs, s, b, "generator.cpu_us_per_message") for s in delivered]
        brk = [median(runs, s, b, "broker.cpu_us_per_message") for s in delivered]
        pairs = [(g, k) for g, k in zip(gen, brk) if g is not None and k is not None]
        if pairs:
            g = statistics.median(p[0] for p in pairs)
            k = statistics.median(p[1] for p in pairs)
            parts.append(f"{g:.2f} µs against {title}'s {k:.2f} µs")
    if not parts:
        return ""
    return (
        "The generator spent per delivery, median over the flat-out scenarios with at least half the "
        "messages delivered: "
        + "; ".join(parts)
        + ". Per scenario, with each side's CPU utilisation: [`client-ref/bench/RESULTS.md`](client-ref/bench/RESULTS.md)."
    )


def results(runs, brokers, meta):
    scenarios = list(dict.fromkeys(s for s, _ in runs))
    lines = [
        "# Broker benchmark: every median",
        "",
        "Written by `client-ref/bench/compare.sh` (see the root README for the summary table).",
        "",
        header(meta),
        "",
        "| scenario | broker | runs | deliveries/s | delivered % | disconnects | latency p50 / p99 µs "
        "| broker CPU µs/msg | broker cores | generator CPU µs/msg | generator cores | bottleneck |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in scenarios:
        for b, title in BROKERS:
            reports = runs.get((s, b))
            if not reports:
                continue
            m = lambda path: median(runs, s, b, path)  # noqa: E731
            verdicts = sorted({r.get("bottleneck", "") for r in reports})
            lines.append(
                f"| {s} | {title} | {len(reports)} | {fmt(m('messages.delivered_per_s'))} "
                f"| {fmt(m('messages.delivered_pct'), 5)} | {fmt(m('disconnects.total'))} "
                f"| {fmt(m('latency_us.p50'))} / {fmt(m('latency_us.p99'))} "
                f"| {fmt(m('broker.cpu_us_per_message'))} | {fmt(m('broker.cpu_utilisation'))} "
                f"| {fmt(m('generator.cpu_us_per_message'))} | {fmt(m('generator.cpu_utilisation'))} "
                f"| {', '.join(verdicts)} |"
            )
    idle = [(b, t) for b, t in BROKERS if (("idle10k", b) in runs)]
    if idle:
        lines += ["", "| idle connections | broker | KiB each | RSS before / idle / after closing (MiB) | connections/s |",
                  "|---|---|---:|---|---:|"]
        for b, title in idle:
            m = lambda path: median(runs, "idle10k", b, path)  # noqa: E731
            mib = lambda path: fmt(None if m(path) is None else m(path) / 1024)  # noqa: E731
            lines.append(
                f"| {fmt(m('memory.connections'))} | {title} | {fmt(m('memory.kib_per_connection'))} "
                f"| {mib('memory.baseline_kib')} / {mib('memory.idle_kib')} / {mib('memory.after_close_kib')} "
                f"| {fmt(m('connections.rate_per_s'))} |"
            )
    errors = {}
    for (s, b), reports in runs.items():
        for r in reports:
            for kind in ("errors", "disconnects"):
                for reason, n in (get(r, kind + ".reasons") or {}).items():
                    key = (s, b, kind, reason)
                    errors[key] = errors.get(key, 0) + n
    if errors:
        lines += ["", "Errors and lost connections (all rounds):", ""]
        for (s, b, kind, reason), n in sorted(errors.items()):
            lines.append(f"* {s}, {b}: {n} {kind[:-1]}s: {reason}")
    return "\n".join(lines) + "\n"


def header(meta):
    versions = [f"mqttkit-broker at {meta.get('commit', '?')}"]
    if meta.get("mosquitto"):
        versions.append(f"mosquitto {meta['mosquitto']}")
    if meta.get("rumqttd"):
        versions.append(f"rumqttd {meta['rumqttd']}")
    rounds = meta.get("rounds", "?")
    return (
        f"Measured {meta.get('date', '?')} on {meta.get('cpu', '?')} ({meta.get('cores', '?')} cores, shared; "
        f"load average {meta.get('load_at_start', '?')} at the start), {meta.get('rustc', '')}; "
        f"{', '.join(versions)}; each broker with its defaults, a fresh process per run, on 127.0.0.1; "
        f"`mqttkit bench` (publishers on one thread, subscribers on another), 64-byte payloads, publishers' window 20, "
        f"flat out for 5 s unless noted, MQTT 3.1.1 unless noted; "
        f"{rounds} interleaved round{'s' if rounds != '1' else ''}, medians."
        + (" **Quick smoke run: not a measurement.**" if meta.get("quick") == "1" else "")
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--readme")
    parser.add_argument("--results")
    args = parser.parse_args()
    runs = load(args.directory)
    meta_path = os.path.join(args.directory, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    brokers = meta.get("brokers", "mqttkit mosquitto rumqttd").split()
    block = "\n\n".join(
        part
        for part in [
            header(meta),
            table(runs, brokers),
            "Ratios are mqttkit-broker's median ÷ the peer's (above 1: more deliveries, or more CPU, memory, "
            "latency). Deliveries per second run from the start to the last delivery or the last "
            "publication, whichever is later. A percentage after a throughput is the share of expected "
            "deliveries that arrived: missing ones were dropped by the broker or lost with a subscriber it "
            "cut off (⚠), except where ⏳ marks runs still delivering when the run stopped waiting (20 s "
            "after publishing ended). CPU per delivery is n/a below 50% delivered.",
            generator_note(runs, brokers),
        ]
        if part
    )
    print(block)
    if args.results:
        with open(args.results, "w") as f:
            f.write(results(runs, brokers, meta))
    if args.readme:
        text = open(args.readme).read()
        begin, end = "<!-- broker-bench:begin -->", "<!-- broker-bench:end -->"
        if begin not in text or end not in text:
            sys.exit(f"table.py: {args.readme} has no {begin} … {end} markers")
        start = text.index(begin) + len(begin)
        text = text[:start] + "\n" + block + "\n" + text[text.index(end):]
        with open(args.readme, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
