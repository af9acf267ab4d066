#!/usr/bin/env bash
# Run the conformance suite against the embedded reference broker and against a local
# mosquitto (Debian's package), and print the compatibility table (per broker and
# version: pass / fail / skip / known deviation / inconclusive / error).
#
#   conformance/compat.sh            # print the table
#   conformance/compat.sh --readme   # also rewrite the table in README.md
#
# Exits non-zero if the reference broker fails a MUST scenario, or mosquitto fails a MUST
# scenario that conformance/brokers/mosquitto.toml does not record as a deviation.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/conformance
mkdir -p "$out"
cargo build --release -q -p mqttkit-conformance
runner=target/release/mqttkit-conformance
status=0

echo "--- embedded reference broker"
"$runner" --no-progress --report "json=$out/embedded.json" --report "md=$out/embedded.md" \
    --report "junit=$out/embedded.junit.xml" --report "html=$out/embedded.html" || status=$?

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf="$out/mosquitto.conf"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n' "$port" > "$conf"
mosquitto -c "$conf" 2> "$out/mosquitto.log" &
mosquitto_pid=$!
trap 'kill "$mosquitto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
mosquitto_version=$( (mosquitto -h 2>/dev/null || true) | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)
mosquitto_version=${mosquitto_version:-unknown}

echo "--- mosquitto $mosquitto_version on 127.0.0.1:$port"
"$runner" "mqtt://127.0.0.1:$port" --broker-profile conformance/brokers/mosquitto.toml --no-progress \
    --report "json=$out/mosquitto.json" --report "md=$out/mosquitto.md" \
    --report "junit=$out/mosquitto.junit.xml" --report "html=$out/mosquitto.html" || status=$?

python3 - "$out" "$mosquitto_version" "${1:-}" <<'PY'
import collections, datetime, json, re, sys
out, mosquitto_version, mode = sys.argv[1], sys.argv[2], sys.argv[3]
kinds = ["pass", "fail", "skip", "known-deviation", "inconclusive", "error"]
rows = []
for name, file in [("mqttkit-broker (reference, embedded)", "embedded"), (f"mosquitto {mosquitto_version}", "mosquitto")]:
    report = json.load(open(f"{out}/{file}.json"))
    counts = collections.defaultdict(collections.Counter)
    for r in report["results"]:
        counts[r["version"]][r["outcome"]["kind"]] += 1
    coverage = {c["version"]: f'{c["observable_covered"]}/{c["observable_total"]}' for c in report["coverage"]}
    for version in sorted(counts):
        c = counts[version]
        rows.append(f"| {name} | {version} | " + " | ".join(str(c.get(k, 0)) for k in kinds) + f" | {coverage.get(version, '')} |")
table = "\n".join([
    f"Generated {datetime.date.today()} by `conformance/compat.sh --readme` (scenarios run once per version).",
    "",
    "| broker | version | pass | fail | skip | known deviation | inconclusive | error | observable statements covered |",
    "|---|---|---|---|---|---|---|---|---|",
    *rows,
])
print(table)
if mode == "--readme":
    readme = open("README.md").read()
    new = re.sub(r"(<!-- compat:begin -->\n).*?(\n<!-- compat:end -->)", lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
    open("README.md", "w").write(new)
PY
exit "$status"
