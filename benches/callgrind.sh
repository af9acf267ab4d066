#!/usr/bin/env bash
# Instructions per packet (callgrind), which do not depend on the machine's load: only
# the adapter call is counted (the profile example's `measured_call`, callgrind
# --toggle-collect), not input building or the loop around it.
#
#   benches/callgrind.sh                       # mqttkit, every sample, decode and encode
#   CODECS="mqttkit mqttrs rumqttc rmqtt" benches/callgrind.sh publish_v4_31b puback_v4
#
# Prints `direction sample codec instructions-per-packet`; a codec that does not support
# a sample is skipped. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
# PROFILE=<binary>: measure another build of the profile example (e.g. an older commit's).
if [[ -z "${PROFILE:-}" ]]; then
    cargo build -q -p mqttkit-benches --profile bench --example profile
fi
profile="${PROFILE:-target/release/examples/profile}"
codecs="${CODECS:-mqttkit}"
samples=("$@")
if ((${#samples[@]} == 0)); then
    samples=(publish_v4_31b publish_v4_1k publish_v4_64k publish_v5_32b publish_v5_1k publish_v5_props
        connect_v4 connect_v5 subscribe_v4_10 subscribe_v5_10 puback_v4 puback_v5 stream_v4_10k stream_v5_10k)
fi

instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*measured_call*' \
        "$profile" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

for sample in "${samples[@]}"; do
    case "$sample" in
        stream_*) n=20 packets=10000 ;;
        *_64k) n=1000 packets=1 ;;
        *) n=20000 packets=1 ;;
    esac
    for direction in decode encode; do
        [[ $direction == encode && $sample == stream_* ]] && continue
        for codec in $codecs; do
            "$profile" "$direction" "$codec" "$sample" 1 >/dev/null 2>&1 || continue
            total=$(instructions "$direction" "$codec" "$sample" "$n")
            echo "$direction $sample $codec $(( total / n / packets ))"
        done
    done
done
