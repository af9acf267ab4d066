#!/usr/bin/env bash
# Run the client suite against every shipped driver (installing them on first use into
# target/client-drivers/) and print the client compatibility table: one row per library and
# version (pass / fail / skip / known deviation / inconclusive / error, statements covered).
#
#   conformance/client-compat.sh            # print the table
#   conformance/client-compat.sh --readme   # also rewrite it in README.md (<!-- client-compat -->)
#
# CLIENT_COMPAT_DRIVERS="embedded paho-golang paho-python" picks a subset (names: embedded
# paho-golang paho-python mqttjs rumqttc). Each library runs with its client profile
# (conformance/clients/<name>.toml) when there is one, so recorded deviations show as
# known deviation. Reports go to target/client-conformance/<name>.{json,md,html,junit.xml}.
#
# Exit status: non-zero if mqttkit-client fails a MUST scenario, a library fails a MUST
# scenario its profile does not record, a run errors, or a driver cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/client-conformance
mkdir -p "$out"
cargo build --release -q -p mqttkit-conformance
runner=target/release/mqttkit-conformance
drivers=${CLIENT_COMPAT_DRIVERS:-embedded paho-golang paho-python mqttjs rumqttc}
status=0
runs_file=$out/runs.tsv
: >"$runs_file"

for driver in $drivers; do
    args=(client)
    [ "$driver" = embedded ] || args+=("$driver")
    if [ "$driver" != embedded ]; then
        if ! conformance/drivers/driver.sh install "$driver"; then
            echo "--- $driver: could not be installed" >&2
            status=1
            continue
        fi
    fi
    profile=conformance/clients/$driver.toml
    [ ! -f "$profile" ] || args+=(--client-profile "$profile")
    echo "--- $driver${profile:+ ($([ -f "$profile" ] && echo "$profile" || echo "no profile"))}"
    rm -f "$out/$driver.json"
    rc=0
    "$runner" "${args[@]}" --no-progress \
        --report "json=$out/$driver.json" --report "md=$out/$driver.md" \
        --report "html=$out/$driver.html" --report "junit=$out/$driver.junit.xml" || rc=$?
    echo "    exit status $rc"
    if [ ! -f "$out/$driver.json" ]; then
        echo "    no report written: counted as a failure" >&2
        status=1
        continue
    fi
    [ "$rc" = 0 ] || status=1
    printf '%s\t%s\n' "$driver" "$([ -f "$profile" ] && echo "${profile#conformance/}" || echo "")" >>"$runs_file"
done

python3 - "$out" "${1:-}" <<'PY'
import collections, datetime, json, re, sys
out, mode = sys.argv[1], sys.argv[2]
kinds = ["pass", "fail", "skip", "known-deviation", "inconclusive", "error"]
rows = []
for line in open(f"{out}/runs.tsv"):
    if not line.strip():
        continue
    name, profile = line.rstrip("\n").split("\t")
    report = json.load(open(f"{out}/{name}.json"))
    library = report["target"].split(" (client")[0]
    counts = collections.defaultdict(collections.Counter)
    for result in report["results"]:
        counts[result["version"]][result["outcome"]["kind"]] += 1
    coverage = {c["version"]: f'{c["observable_covered"]}/{c["observable_total"]}' for c in report["coverage"]}
    profile_cell = f"`{profile}`" if profile else "—"
    for version in sorted(counts):
        c = counts[version]
        rows.append(f"| {library} | {version} | {profile_cell} | " + " | ".join(str(c.get(k, 0)) for k in kinds)
                    + f" | {coverage.get(version, '')} |")
table = "\n".join([
    f"Generated {datetime.date.today()} by `conformance/client-compat.sh --readme` (the runner plays the broker;"
    " each library driven through `conformance/drivers/`, with its client profile where there is one).",
    "",
    "| client library | version | profile | " + " | ".join(k.replace("-", " ") for k in kinds)
    + " | client-side statements covered |",
    "|---|---|---|" + "---|" * len(kinds) + "---|",
    *rows,
])
print(table)
if mode == "--readme":
    readme = open("README.md").read()
    new = re.sub(r"(<!-- client-compat:begin -->\n).*?(\n<!-- client-compat:end -->)",
                 lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
    open("README.md", "w").write(new)
PY
exit "$status"
