#!/usr/bin/env bash
# Run the conformance suite against the embedded reference broker and against real brokers
# started on 127.0.0.1 by conformance/peers/peer.sh (installed on first use into
# target/peers/), and print the compatibility table: one row per broker, version and
# profile (pass / fail / skip / known deviation / inconclusive / error).
#
#   conformance/compat.sh            # print the table
#   conformance/compat.sh --readme   # also rewrite the table in README.md
#
# Brokers: mqttkit-broker (embedded), mosquitto (apt), aedes (npm), amqtt (PyPI), and with
# COMPAT_RUMQTTD=1 rumqttd (crates.io; its first build takes about 5 minutes on 2 cores):
# its 3.1.1 listener with --protocol 3.1.1 and its 5.0 listener with --protocol 5.
# COMPAT_BROKERS="mosquitto aedes" picks a subset (names: embedded mosquitto aedes amqtt rumqttd).
# COMPAT_JOBS sets --jobs (default: the runner's).
#
# Every real broker runs once without a profile (what a new user sees) and, where
# conformance/brokers/<name>.toml exists, once with it. Each run gets a fresh broker.
# Reports (JSON, Markdown, HTML, JUnit) go to target/conformance/<name>[-profile].*, the broker's
# log to <name>[-profile].broker.log, and the matrix of statements x runs to compat.html.
#
# Exit status: non-zero if the reference broker fails a MUST scenario, or a broker run WITH
# its profile fails a MUST scenario that the profile does not record. Runs without a profile
# only inform the table: their verdicts never fail the script, but a broker that cannot be
# installed or started, or a run that writes no report, does.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/conformance
peer=conformance/peers/peer.sh
mkdir -p "$out"
cargo build --release -q -p mqttkit-conformance
runner=target/release/mqttkit-conformance
status=0
jobs=()
[ -z "${COMPAT_JOBS:-}" ] || jobs=(--jobs "$COMPAT_JOBS")

default_brokers="embedded mosquitto aedes amqtt"
[ "${COMPAT_RUMQTTD:-0}" = 0 ] || default_brokers+=" rumqttd"
brokers=${COMPAT_BROKERS:-$default_brokers}

started=()
cleanup() { [ ${#started[@]} -eq 0 ] || "$peer" stop "${started[@]}" || true; }
trap cleanup EXIT

# One line per run for the table: report file, broker label, profile label, exit status.
runs_file=$out/runs.tsv
: >"$runs_file"

# run NAME LABEL PROFILE_FILE|"" URL|"" [runner args...]
run() {
    local name=$1 label=$2 profile=$3 url=$4
    shift 4
    local file=$name args=()
    if [ -n "$profile" ]; then
        file=$name-profile
        args+=(--broker-profile "$profile")
    fi
    [ -z "$url" ] || args+=("$url")
    echo "--- $label${profile:+ with $profile}${url:+ at $url}"
    rm -f "$out/$file.json"
    local rc=0
    "$runner" "${args[@]}" "${jobs[@]}" "$@" --no-progress \
        --report "json=$out/$file.json" --report "md=$out/$file.md" \
        --report "junit=$out/$file.junit.xml" --report "html=$out/$file.html" || rc=$?
    echo "    exit status $rc"
    if [ ! -f "$out/$file.json" ]; then
        echo "    no report written: counted as a failure" >&2
        status=1
        return
    fi
    # The verdict rule applies to the reference broker and to runs with a profile.
    if [ "$rc" != 0 ] && { [ "$name" = embedded ] || [ -n "$profile" ]; }; then status=1; fi
    local profile_label=${profile:+${profile#conformance/}}
    [ "$name" != embedded ] || profile_label="(built-in)"
    [ -n "$profile_label" ] || profile_label=-  # tabs around an empty field would collapse
    printf '%s\t%s\t%s\t%s\n' "$file" "$label" "$profile_label" "$rc" >>"$runs_file"
}

# peer_runs NAME RUN_NAME PORT_VAR LISTENER_LABEL [runner args...]: one run without a profile
# and, where conformance/brokers/NAME.toml exists, one with it; a fresh broker for each run.
peer_runs() {
    local name=$1 run_name=$2 port_var=$3 listener=$4
    shift 4
    local profile=conformance/brokers/$name.toml variants=("")
    [ ! -f "$profile" ] || variants+=("$profile")
    for variant in "${variants[@]}"; do
        local start_output
        if ! start_output=$("$peer" start "$name"); then
            echo "--- $name: could not be started" >&2
            status=1
            return
        fi
        eval "$start_output"
        started+=("$PEER_PID")
        run "$run_name" "$name $PEER_VERSION$listener" "$variant" "mqtt://127.0.0.1:${!port_var}" "$@"
        "$peer" stop "$PEER_PID"
        cp "$PEER_LOG" "$out/$run_name${variant:+-profile}.broker.log"
    done
}

for broker in $brokers; do
    case "$broker" in
        embedded) run embedded "mqttkit-broker (reference, embedded)" "" "" ;;
        mosquitto | aedes | amqtt) peer_runs "$broker" "$broker" PEER_PORT "" ;;
        rumqttd)
            peer_runs rumqttd rumqttd-v4 PEER_PORT " (3.1.1 listener)" --protocol 3.1.1
            peer_runs rumqttd rumqttd-v5 PEER_PORT5 " (5.0 listener)" --protocol 5 ;;
        *) echo "unknown broker '$broker' in COMPAT_BROKERS" >&2; exit 2 ;;
    esac
done

# The table (README) and the statements x brokers matrix (compat.html), from the JSON reports.
matrix_args=()
while IFS=$'\t' read -r file label profile _; do
    name=$label
    case "$profile" in -|"(built-in)") ;; *) name+=" + profile" ;; esac
    matrix_args+=("$name=$out/$file.json")
done <"$runs_file"
cargo build --release -q -p mqttkit-conformance --bin compat-matrix
target/release/compat-matrix --html "$out/compat.html" --markdown "$out/compat.md" "${matrix_args[@]}"
table="Generated $(date -u +%F) by \`conformance/compat.sh --readme\` on $(nproc) cores (scenarios run once per version; each real broker freshly started on 127.0.0.1 by \`conformance/peers/peer.sh\`; \"+ profile\" rows use \`conformance/brokers/NAME.toml\`).

$(cat "$out/compat.md")"
echo "$table"
if [ "${1:-}" = --readme ]; then
    TABLE="$table" python3 - <<'PY'
import os, re
readme = open("README.md").read()
table = os.environ["TABLE"]
readme = re.sub(r"(<!-- compat:begin -->\n).*?(\n<!-- compat:end -->)", lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
open("README.md", "w").write(readme)
PY
fi
exit "$status"
