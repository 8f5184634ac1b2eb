#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each and reports
# which ones crashed.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  time budget of each target (default 60)
#   TARGET              run only these targets (default: all, from `cargo fuzz list`)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly
# `-Z` flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them. A crash leaves its input in fuzz/artifacts/TARGET/; turn it into a
# regression test beside the code that failed.
#
# Seeds in fuzz/seeds/TARGET/ start a target's corpus: the iCalendar files
# of tests/data/ical for ical_import, and a backup of a small calendar (a
# snapshot file) for snapshot_file and snapshot_transfer.
set -euo pipefail

budget="${1:-60}"
shift || true
if ! [[ "$budget" =~ ^[0-9]+$ ]] || [[ "$budget" -eq 0 ]]; then
    echo "error: SECONDS_PER_TARGET must be a positive whole number, got '$budget'" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}"
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir="$CARGO_TARGET_DIR/fuzz"
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Builds every target once, so that the time budgets below are all fuzzing.
echo "building the fuzz targets in $target_dir"
cargo fuzz build --target-dir "$target_dir"

failed=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    if [[ -d "seeds/$target" ]]; then
        seeds=("seeds/$target")
    fi
    echo "fuzzing $target for ${budget} s"
    # -rss_limit_mb bounds memory per run; -timeout flags one input that
    # takes longer than 10 s as a hang.
    if cargo fuzz run --target-dir "$target_dir" "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$budget" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$target_dir/$target.log" 2>&1; then
        echo "  $target: no crash ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$target_dir/$target.log" | grep -o '[0-9]*$' || echo '?') runs)"
    else
        echo "  $target: FAILED; see $target_dir/$target.log and fuzz/artifacts/$target/"
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${budget} s each without a crash"
