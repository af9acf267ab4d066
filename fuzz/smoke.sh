#!/usr/bin/env bash
# Fuzz smoke test: run every cargo-fuzz target for $FUZZ_SECONDS seconds (default 60),
# starting from the committed seeds, and exit non-zero if any target finds a crash
# (panic, sanitizer report, timeout or out-of-memory: whatever makes libFuzzer fail).
#
#   fuzz/smoke.sh                                  # 60 s per target
#   FUZZ_SECONDS=600 FUZZ_TARGETS=decode fuzz/smoke.sh
#
# Reuses an installed cargo-fuzz and installs it only when missing. cargo-fuzz passes
# nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets a stable toolchain accept them.
# New corpus entries go to fuzz/corpus-grown/<target>/ (git-ignored), crash reproducers to
# fuzz/artifacts/<target>/ (git-ignored); fuzz/corpus/ is only read.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-decode roundtrip stream_split broker_core}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

for target in $targets; do
    cargo fuzz build "$target"
done

failed=()
for target in $targets; do
    grown="$root/fuzz/corpus-grown/$target"
    mkdir -p "$grown"
    echo "=== fuzz $target for ${seconds}s"
    if ! cargo fuzz run "$target" "$grown" "$root/fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
        echo "!!! fuzz target $target failed; reproducer in fuzz/artifacts/$target/" >&2
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz smoke FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke passed: $targets (${seconds}s each)"
