#!/usr/bin/env python3
"""Write the compatibility matrix of every broker run by compat.sh: one row per normative statement
(per protocol version), one column per run, each cell the worst verdict of the statement's scenarios
in that run, with the scenarios and their verdicts in the cell's tooltip and a link to the run's report.

    python3 conformance/compat_matrix.py target/conformance   # reads runs.tsv + <run>.json, writes compat.html
"""
import datetime
import html
import json
import sys

# Worst first: a cell shows the first of these that any of its scenarios has.
SEVERITY = ["fail", "error", "inconclusive", "known-deviation", "skip", "pass"]
STYLE = {
    "fail": ("✗", "#f6c6c6"), "error": ("!", "#e3cdf2"), "inconclusive": ("?", "#fbefb5"),
    "known-deviation": ("≈", "#fbd9b0"), "skip": ("–", "#e6e6e6"), "pass": ("✓", "#cdeccd"),
}


def worst(outcomes):
    ranked = [k for k in SEVERITY if k in outcomes]
    unknown = [k for k in outcomes if k not in SEVERITY]
    return (unknown or ranked or ["none"])[0]


def main(out):
    runs = []
    for line in open(f"{out}/runs.tsv"):
        if line.strip():
            file, label, profile, status = line.rstrip("\n").split("\t")
            runs.append({"file": file, "label": label, "profile": profile, "status": status,
                         "report": json.load(open(f"{out}/{file}.json"))})
    versions = sorted({c["version"] for r in runs for c in r["report"].get("coverage", [])})
    runner = next((r["report"].get("runner") for r in runs if r["report"].get("runner")), "mqttkit-conformance")

    head = "".join(
        f'<th><a href="{html.escape(r["file"])}.html">{html.escape(r["label"])}</a>'
        f'<br><small>{html.escape(r["profile"] or "no profile")} · exit {html.escape(r["status"])}</small></th>'
        for r in runs)
    body = []
    for version in versions:
        statements = {}
        per_run = []
        for r in runs:
            cov = next((c for c in r["report"].get("coverage", []) if c["version"] == version), None)
            rows = {s["id"]: s for s in cov["statements"]} if cov else None
            per_run.append(rows)
            for s in (cov or {}).get("statements", []):
                statements.setdefault(s["id"], s)
        body.append(f'<tbody data-version="{version}"><tr class="section"><th colspan="{len(runs) + 2}">MQTT {version}</th></tr>')
        for sid, s in statements.items():
            cells, kinds = [], set()
            for rows in per_run:
                if rows is None:
                    cells.append('<td class="na">n/a</td>')
                    continue
                st = rows.get(sid, {})
                outcomes = st.get("outcomes", {})
                if not outcomes:
                    cells.append('<td class="none">not covered</td>')
                    continue
                kind = worst(set(outcomes.values()))
                kinds.add(kind)
                symbol, colour = STYLE.get(kind, ("?", "#ffffff"))
                bad = sum(1 for v in outcomes.values() if v != "pass")
                tip = "\n".join(f"{scenario}: {verdict}" for scenario, verdict in sorted(outcomes.items()))
                cells.append(f'<td style="background:{colour}" title="{html.escape(tip)}">{symbol} {html.escape(kind)}'
                             f'{f" ({bad}/{len(outcomes)})" if bad else ""}</td>')
            not_all_pass = "1" if kinds - {"pass"} else "0"
            text = f'{sid} {s.get("level", "")} {s.get("summary", "")}'.lower()
            body.append(f'<tr data-nonpass="{not_all_pass}" data-text="{html.escape(text)}"><th class="sid">{html.escape(sid)}'
                        f'<br><small>{html.escape(s.get("level", ""))}</small></th><td class="summary">{html.escape(s.get("summary", ""))}</td>'
                        + "".join(cells) + "</tr>")
        body.append("</tbody>")
    legend = " ".join(f'<span style="background:{c}">{sym} {k}</span>' for k, (sym, c) in STYLE.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MQTT broker compatibility matrix</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #bbb; padding: 3px 6px; vertical-align: top; }}
thead th {{ position: sticky; top: 0; background: #f4f4f4; }} td {{ white-space: nowrap; }}
td.summary {{ white-space: normal; max-width: 28em; }} td.na, td.none {{ color: #888; }}
tr.section th {{ text-align: left; background: #dde6f3; }} th.sid {{ text-align: left; white-space: nowrap; }}
.legend span {{ padding: 1px 6px; margin-right: 4px; border: 1px solid #bbb; }}
</style></head><body>
<h1>MQTT broker compatibility matrix</h1>
<p>Generated {datetime.date.today()} by <code>conformance/compat.sh</code> with {html.escape(runner)}: every normative
statement the suite covers × every broker run. A cell is the worst verdict of the statement's scenarios in that run
(hover for the scenarios; the column header links to the run's full report). Real brokers were started on 127.0.0.1,
each run on a fresh broker, without and with its profile.</p>
<p class="legend">{legend}</p>
<p><label><input type="checkbox" id="nonpass"> only statements where some run does not pass</label>
<label>version <select id="version"><option value="">all</option>{"".join(f"<option>{v}</option>" for v in versions)}</select></label>
<label>filter <input id="text" placeholder="id, level or words"></label> <span id="shown"></span></p>
<table><thead><tr><th>statement</th><th>summary</th>{head}</tr></thead>
{"".join(body)}
</table>
<script>
const rows = [...document.querySelectorAll('tbody tr[data-text]')];
function apply() {{
  const onlyBad = document.getElementById('nonpass').checked;
  const version = document.getElementById('version').value;
  const text = document.getElementById('text').value.toLowerCase();
  let shown = 0;
  for (const tbody of document.querySelectorAll('tbody')) tbody.hidden = version !== '' && tbody.dataset.version !== version;
  for (const row of rows) {{
    const visible = (!onlyBad || row.dataset.nonpass === '1') && (!text || row.dataset.text.includes(text));
    row.hidden = !visible;
    if (visible && !row.parentElement.hidden) shown++;
  }}
  document.getElementById('shown').textContent = shown + ' statements shown';
}}
for (const id of ['nonpass', 'version', 'text']) document.getElementById(id).addEventListener('input', apply);
apply();
</script>
</body></html>
"""
    with open(f"{out}/compat.html", "w") as f:
        f.write(page)
    print(f"wrote {out}/compat.html")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/conformance")
