#!/usr/bin/env bash
# Install the client libraries the conformance runner drives, each into its own folder of
# target/client-drivers/ (MQTTKIT_DRIVERS_DIR overrides it), so `.ci/run` can call this on a
# fresh machine and later runs reuse the install.
#
#   conformance/drivers/driver.sh install NAME...   # install (skipped when already there)
#   conformance/drivers/driver.sh list              # drivers shipped
#
# NAME is a folder of conformance/drivers/ with a driver.toml and an install.sh, e.g.
# paho-python, paho-golang, mqttjs, rumqttc, mosquitto. Then:
#   cargo run -p mqttkit-conformance -- client NAME
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MQTTKIT_DRIVERS_DIR:-$repo/target/client-drivers}

die() { echo "driver.sh: $*" >&2; exit 1; }

case "${1:-}" in
    install)
        shift
        [ $# -gt 0 ] || die "usage: driver.sh install NAME..."
        for name in "$@"; do
            [ -f "$here/$name/driver.toml" ] || die "no driver $name (see: driver.sh list)"
            mkdir -p "$cache/$name"
            echo "driver.sh: installing $name into $cache/$name" >&2
            # One install at a time per driver (parallel CI steps, several agents).
            (
                flock 9
                CACHE="$cache/$name" REPO="$repo" "$here/$name/install.sh"
            ) 9>"$cache/$name.lock"
        done ;;
    list)
        for dir in "$here"/*/; do
            [ -f "$dir/driver.toml" ] && basename "$dir"
        done ;;
    *) die "usage: driver.sh install NAME... | list" ;;
esac
