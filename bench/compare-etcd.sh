#!/usr/bin/env bash
# Compares Almanac with etcd on this machine, side by side, in one run.
# It starts a three-member etcd and a three-node Almanac on 127.0.0.1 with
# their data in one directory on the same disk, and runs 1, 64 and 256
# concurrent clients against each in turns. Failover is measured the same
# way for both: kill -9 of the leader or primary under a one-client write
# loop, then the longest pause between two acknowledged writes. It prints
# one table and one line per target with the measured ratio and whether it
# is met.
#
#   bench/compare-etcd.sh [--rounds N] [--seconds S] [--trials T] [--no-calendar]
#
#   --rounds N     alternating rounds per client count; medians are shown (default 3)
#   --seconds S    measured seconds per load run (default 5)
#   --trials T     failover trials per system (default 10)
#   --no-calendar  skip the in-process calendar and restart benchmarks (agenda,
#                  memory, restart)
#
# Installs etcd-server, etcd-client and protobuf-compiler with apt-get when
# they are missing, builds both load generators in release mode (unless
# ALMANAC_BIN or ETCD_LOAD_BIN name ready binaries), and stops
# every process it started, by PID. Uses ports 22379-22580 (etcd) and
# 19601-19703 (Almanac). The data lives under $BENCH_DIR (default: the
# target directory), which should be on the disk being measured.
set -euo pipefail

rounds=3
seconds=5
trials=10
calendar=1
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --no-calendar) calendar=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown option $1; see --help" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}

# --- tools --------------------------------------------------------------------
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v python3 >/dev/null || { echo "error: python3 is missing; install it (apt-get install python3)" >&2; exit 2; }

almanac=${ALMANAC_BIN:-}
etcd_load=${ETCD_LOAD_BIN:-}
if [[ -z $almanac ]]; then
  echo "building almanac (release)"
  cargo build --release --quiet --bin almanac --target-dir "$target"
  almanac=$target/release/almanac
fi
if [[ -z $etcd_load ]]; then
  echo "building etcd-load (release)"
  cargo build --release --quiet --manifest-path bench/etcd-load/Cargo.toml \
    --target-dir "$target/etcd-load"
  etcd_load=$target/etcd-load/release/etcd-load
fi

# --- processes ----------------------------------------------------------------
mkdir -p "${BENCH_DIR:-$target}"
work=$(mktemp -d "${BENCH_DIR:-$target}/compare-etcd.XXXXXX")
results=$work/results
mkdir -p "$results"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

etcd_endpoints=http://127.0.0.1:22379,http://127.0.0.1:22479,http://127.0.0.1:22579
etcd_cluster=m1=http://127.0.0.1:22380,m2=http://127.0.0.1:22480,m3=http://127.0.0.1:22580
almanac_cluster=127.0.0.1:19601,127.0.0.1:19602,127.0.0.1:19603
# Every load client connects from 127.0.0.1, so the client port must admit
# more than the default 64 connections per address for the 256-client runs.
{
  echo "client_connections_per_address = 1024"
  sed 's/74\([0-9][0-9]\)/196\1/; s/75\([0-9][0-9]\)/197\1/' examples/cluster.toml
} >"$work/cluster.toml"

# Member PIDs of each running cluster, by member number 1-3.
etcd_members=()
almanac_members=()

start_etcd() {
  rm -rf "$work"/etcd-*
  etcd_members=()
  for i in 1 2 3; do
    local client=$((22279 + 100 * i)) peer=$((22280 + 100 * i))
    etcd --name "m$i" --data-dir "$work/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$etcd_cluster" --initial-cluster-state new \
      --initial-cluster-token compare-etcd >"$work/etcd-$i.log" 2>&1 &
    pids+=($!)
    etcd_members+=($!)
  done
  for _ in $(seq 1 100); do
    if etcdctl --endpoints "$etcd_endpoints" endpoint health >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "error: etcd did not become healthy within 10 s; see $work/etcd-1.log" >&2
  exit 1
}

start_almanac() {
  rm -rf "$work"/almanac-*
  almanac_members=()
  for i in 1 2 3; do
    "$almanac" server --config "$work/cluster.toml" --id "$i" --data "$work/almanac-$i" --init \
      >"$work/almanac-$i.log" 2>&1 &
    pids+=($!)
    almanac_members+=($!)
  done
  for _ in $(seq 1 100); do
    if [[ -n $(almanac_primary 2>/dev/null) ]]; then return 0; fi
    sleep 0.1
  done
  echo "error: Almanac elected no primary within 10 s; see $work/almanac-1.log" >&2
  exit 1
}

# stop_members SYSTEM: kill -9 the members of one cluster and reap them.
stop_members() {
  local -n members=$1_members
  for pid in "${members[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${members[@]}"; do wait "$pid" 2>/dev/null || true; done
  members=()
}

# Prints the member number (1-3) of etcd's leader.
etcd_leader() {
  etcdctl --endpoints "$etcd_endpoints" endpoint status -w json | python3 -c '
import json, sys
for status in json.load(sys.stdin):
    header = status["Status"]["header"]
    if header["member_id"] == status["Status"]["leader"]:
        print(int(status["Endpoint"].rsplit(":", 1)[1]) // 100 - 222)
        break'
}

# Prints the node id (1-3) of Almanac's primary, or nothing.
almanac_primary() {
  "$almanac" status --cluster "$almanac_cluster" --output json | python3 -c '
import json, sys
print(next((n["id"] for n in json.load(sys.stdin) if n.get("role") == "primary"), ""))'
}

# load SYSTEM CLIENTS SECONDS WARMUP: one load run, JSON on stdout.
load() {
  local log=$work/$1-load.log status=0
  case $1 in
    etcd) "$etcd_load" put --endpoints "$etcd_endpoints" --clients "$2" --seconds "$3" \
            --warmup "$4" --output json 2>>"$log" || status=$? ;;
    almanac) "$almanac" bench --cluster "$almanac_cluster" --clients "$2" --seconds "$3" \
               --warmup "$4" --output json 2>>"$log" || status=$? ;;
  esac
  if ((status)); then
    echo "error: the $1 load run with $2 clients failed (exit $status); its log ends:" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
}

# summarize FILE: one line from a load report.
summarize() {
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("%.0f writes/s, p50 %.2f ms, p99 %.2f ms, %d errors, longest pause %.0f ms" % (
    r["writes_per_second"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"],
    r["longest_pause_us"] / 1000))' "$1"
}

# --- throughput and latency ---------------------------------------------------
# `almanac bench` registers its users before the warmup starts, so both
# systems get the same one-second warmup.
warmup=1

echo "starting etcd and Almanac"
start_etcd
start_almanac
for round in $(seq 1 "$rounds"); do
  # Alternate which system goes first, so drifting load from elsewhere on
  # the machine falls on both.
  if ((round % 2)); then order="etcd almanac"; else order="almanac etcd"; fi
  # The floor is measured once per round (fdatasync in $work, loopback round
  # trips) and the lowest is used, because others' disk use only adds to it.
  "$etcd_load" floor --dir "$work" --samples 1000 --output json >"$results/floor-$round.json"
  echo "  round $round, floor: $(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("fdatasync p50 %d us, round trip p50 %d us, fdatasync p50 with three writers %d us"
      % (r["fdatasync_p50_us"], r["round_trip_p50_us"], r["shared_disk_fdatasync_p50_us"]))' \
    "$results/floor-$round.json")"
  for clients in 1 64 256; do
    for system in $order; do
      load "$system" "$clients" "$seconds" "$warmup" \
        >"$results/load-$system-$clients-$round.json"
      echo "  round $round, $clients clients, $system: $(summarize "$results/load-$system-$clients-$round.json")"
    done
  done
done
stop_members etcd
stop_members almanac

# --- failover -----------------------------------------------------------------
for trial in $(seq 1 "$trials"); do
  for system in etcd almanac; do
    "start_$system"
    sleep 0.5
    # Five measured seconds leave at least 4 s after the kill, longer than
    # etcd's slowest election seen here.
    load "$system" 1 5 0.5 >"$results/failover-$system-$trial.json" &
    loader=$!
    pids+=("$loader")
    sleep 1.5
    if [[ $system == etcd ]]; then leader=$(etcd_leader); else leader=$(almanac_primary); fi
    if [[ ! $leader =~ ^[123]$ ]]; then
      echo "error: cannot tell the leader of $system (got '$leader')" >&2
      exit 1
    fi
    local_members=("${etcd_members[@]}")
    [[ $system == almanac ]] && local_members=("${almanac_members[@]}")
    kill -9 "${local_members[$((leader - 1))]}"
    # Reaping the killed member here, with its status discarded, keeps bash
    # from printing a "Killed" line for it.
    wait "${local_members[$((leader - 1))]}" 2>/dev/null || true
    wait "$loader"
    stop_members "$system"
    echo "  failover trial $trial, $system: killed member $leader; $(summarize "$results/failover-$system-$trial.json")"
  done
done

# --- the state machine alone --------------------------------------------------
if ((calendar)); then
  echo "running the calendar benchmark (1,000,000 events, 10,000 users)"
  "$almanac" bench --calendar --users 10000 --events 1000000 --output json \
    >"$results/calendar.json"
  # The worst case of the default snapshot policy: the newest snapshot is
  # 99,999 ops behind the log's end, so a restart loads it and replays them.
  echo "running the restart benchmark (1,099,999 committed ops on disk)"
  "$almanac" bench --restart --ops 1099999 --data "$work/restart" --output json \
    >"$results/restart.json"
fi

# --- report -------------------------------------------------------------------
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$rounds rounds of $seconds s, $trials failover trials"
python3 - "$results" "$rounds" "$trials" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

results, rounds, trials = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def read(name):
    return json.loads((results / name).read_text())

def median_of(system, clients, field):
    values = [read(f"load-{system}-{clients}-{r}.json")[field] for r in range(1, rounds + 1)]
    return statistics.median(values)

def pauses(system):
    return sorted(read(f"failover-{system}-{t}.json")["longest_pause_us"] / 1000
                  for t in range(1, trials + 1))

rows = []
for clients in (1, 64, 256):
    for field, label, scale, unit in (("writes_per_second", "writes/s", 1, ""),
                                      ("p50_us", "p50", 1000, " ms"),
                                      ("p99_us", "p99", 1000, " ms")):
        etcd = median_of("etcd", clients, field) / scale
        almanac = median_of("almanac", clients, field) / scale
        rows.append((f"{clients} clients, {label}", etcd, almanac, unit))
etcd_pauses, almanac_pauses = pauses("etcd"), pauses("almanac")
for label, pick in (("failover median", statistics.median), ("failover max", max)):
    rows.append((label, pick(etcd_pauses), pick(almanac_pauses), " ms"))

def fmt(value, unit):
    return f"{value:,.0f}" if not unit else f"{value:.2f}{unit}"

print("| measure | etcd | Almanac | Almanac / etcd |")
print("| --- | --- | --- | --- |")
for label, etcd, almanac, unit in rows:
    ratio = almanac / etcd if etcd else float("nan")
    print(f"| {label} | {fmt(etcd, unit)} | {fmt(almanac, unit)} | {ratio:.2f} |")

floor = min((read(f"floor-{r}.json") for r in range(1, rounds + 1)), key=lambda f: f["floor_us"])
print(f"\nfloor (lowest of {rounds} rounds): fdatasync p50 {floor['fdatasync_p50_us']} us + 2 x loopback round trip "
      f"p50 {floor['round_trip_p50_us']} us = {floor['floor_us'] / 1000:.3f} ms")
print(f"the same round, three writers syncing at once on the disk: fdatasync p50 "
      f"{floor['shared_disk_fdatasync_p50_us']} us")
print()

def target(text, met):
    print(f"{text}: {'met' if met else 'NOT MET'}")

wps = lambda s: median_of(s, 64, "writes_per_second")
p99 = lambda s: median_of(s, 64, "p99_us")
p50 = lambda s: median_of(s, 1, "p50_us")
ratio = wps("almanac") / wps("etcd")
target(f"64 clients: writes/s {ratio:.2f}x etcd (target at least 3x)", ratio >= 3)
ratio = p99("almanac") / p99("etcd")
target(f"64 clients: p99 {ratio:.2f}x etcd (target at most 1x)", ratio <= 1)
ratio = p50("almanac") / p50("etcd")
target(f"1 client: p50 {ratio:.2f}x etcd (target at most 0.5x)", ratio <= 0.5)
ratio = p50("almanac") / floor["floor_us"]
target(f"1 client: p50 {ratio:.2f}x the floor (target at most 1.5x)", ratio <= 1.5)
median = statistics.median(almanac_pauses)
target(f"failover: median {median:.0f} ms (target below 300 ms)", median < 300)
worst = max(almanac_pauses)
target(f"failover: every trial below 500 ms, max {worst:.0f} ms", worst < 500)

path = results / "calendar.json"
if path.exists():
    calendar = json.loads(path.read_text())
    p99_ms = calendar["agenda_p99_us"] / 1000
    target(f"reads: one-week agenda p99 {p99_ms:.3f} ms at 1,000,000 events (target below 1 ms)",
           p99_ms < 1)
    per_event = calendar["resident_bytes_per_event"]
    target(f"memory: {per_event:.0f} resident bytes per event (target below 1024)",
           per_event < 1024)
    restart = json.loads((results / "restart.json").read_text())
    target(f"restart: {restart['ops']:,} ops on disk, {restart['replayed_ops']:,} of them after "
           f"the snapshot, serving again in {restart['restart_seconds']:.2f} s (target 2 s)",
           restart["restart_seconds"] <= 2)
EOF
