#!/usr/bin/env bash
# Run the benchmarks (every peer, ntex-mqtt included), write benches/RESULTS.md, and
# refresh the summary table in the root README.md from it.
#
#   benches/report.sh            # about 7 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p mqttkit-benches --bench codec --features peer-ntex
cargo run -q -p mqttkit-benches --release --features peer-ntex --bin bench-report
python3 - <<'PY'
import re
results = open("benches/RESULTS.md").read()
meta = dict(re.findall(r"^\| (report date|CPU|CPUs \(`nproc`\)|rustc) \| (.*?) \|$", results, re.M))

def table(title):
    block = results.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = [l for l in block.splitlines() if l.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return {r[0]: dict(zip(header, r)) for r in ([c.strip() for c in row.strip("|").split("|")] for row in rows[2:])}

decode = table("Decode — median time per packet (allocations per packet)")
encode = table("Encode — median time per packet (allocations per packet)")
lines = [
    f"Measured {meta.get('report date', '?')} on {meta.get('CPU', '?')} ({meta.get('CPUs (`nproc`)', '?')} cores, shared), "
    f"{meta.get('rustc', '?')}; median per packet (allocations per packet); ratios against the fastest other "
    "Rust codec in the same run. Full tables: [`benches/RESULTS.md`](benches/RESULTS.md); where the time goes: "
    "[`benches/PROFILE.md`](benches/PROFILE.md).",
    "",
    "| class | bytes | decode | decode vs fastest peer | encode | encode vs fastest peer |",
    "|---|---:|---:|---|---:|---|",
]
for sample, d in decode.items():
    e = encode.get(sample, {})
    enc = e.get("mqttkit", "—").replace("**", "")
    if e.get("mqttkit_vectored", "—") not in ("—", ""):
        enc += f"; vectored {e['mqttkit_vectored'].replace('**', '')}"
    lines.append(f"| {sample} | {d['bytes']} | {d['mqttkit'].replace('**', '')} | {d['mqttkit vs fastest peer']} | {enc} | {e.get('mqttkit vs fastest peer', '—')} |")
readme = open("README.md").read()
readme = re.sub(r"(<!-- bench:begin -->\n).*?(\n<!-- bench:end -->)", lambda m: m.group(1) + "\n".join(lines) + m.group(2), readme, flags=re.S)
open("README.md", "w").write(readme)
print("\n".join(lines))
PY
