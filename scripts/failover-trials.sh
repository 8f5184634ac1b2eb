#!/usr/bin/env bash
# Measures failover as a client sees it: a three-node cluster on loopback,
# one benchmark client writing in a loop, `kill -9` of the primary in the
# middle, and the longest pause between two acknowledged writes.
#
#   scripts/failover-trials.sh [TRIALS]     (default 10; needs a release build)
#
# Uses ports 19401-19403 and 19501-19503 and a temporary directory; stops
# every process it started.
set -euo pipefail
trials=${1:-10}
bin=${ALMANAC_BIN:-target/release/almanac}
[[ -x $bin ]] || { echo "error: $bin not found; run cargo build --release first" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
sed 's/74\([0-9][0-9]\)/194\1/; s/75\([0-9][0-9]\)/195\1/' examples/cluster.toml > "$work/cluster.toml"
cluster=127.0.0.1:19401,127.0.0.1:19402,127.0.0.1:19403
pauses=()
for trial in $(seq 1 "$trials"); do
  pids=()
  rm -rf "$work"/data-*
  for id in 1 2 3; do
    "$bin" server --config "$work/cluster.toml" --id "$id" --data "$work/data-$id" --init \
      >"$work/node-$id.log" 2>&1 &
    pids+=($!)
  done
  sleep 1
  "$bin" bench --cluster "$cluster" --clients 1 --seconds 3 --warmup 0.5 --output json \
    >"$work/bench.json" &
  bench=$!
  sleep 1.5
  primary=$("$bin" status --cluster "$cluster" --output json |
    python3 -c 'import json,sys; print(next(n["id"] for n in json.load(sys.stdin) if n.get("role") == "primary"))')
  kill -9 "${pids[$((primary - 1))]}"
  wait "$bench"
  pause=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["longest_pause_us"] / 1000)' "$work/bench.json")
  echo "trial $trial: killed node $primary, longest pause ${pause} ms"
  pauses+=("$pause")
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
done
printf '%s\n' "${pauses[@]}" | python3 -c '
import statistics, sys
values = sorted(float(line) for line in sys.stdin)
print(f"failover over {len(values)} trials: median {statistics.median(values):.0f} ms, "
      f"min {values[0]:.0f} ms, max {values[-1]:.0f} ms")'
