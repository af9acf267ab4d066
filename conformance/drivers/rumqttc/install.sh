#!/usr/bin/env bash
# Build the rumqttc driver (its own cargo project, rumqttc pinned in Cargo.toml) into
# $CACHE/target (set by ../driver.sh); cargo skips the work when nothing changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CARGO_TARGET_DIR="$CACHE/target" cargo build --release --quiet --manifest-path "$here/Cargo.toml"
