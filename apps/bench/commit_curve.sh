#!/usr/bin/env bash
# Throughput and latency of durable state against the commit interval: for each interval,
# eddy-bench's durable_keyed_count (events/s of memory, process, machine and their ratios)
# and its latency case (p50/p99 from a record's making to its transactional sink's commit,
# at a fixed rate), each with RUNS runs. Prints one markdown table.
#
# Usage: apps/bench/commit_curve.sh EDDY_BENCH_BIN [RUNS] [INTERVALS] [-- EDDY_BENCH OPTIONS...]
#   apps/bench/commit_curve.sh build/bin/eddy-bench 3 "0 10 100 1000"
#   apps/bench/commit_curve.sh build/bin/eddy-bench 3 "0 100" -- --data-dir /mnt/ssd
set -u
export LC_ALL=C
bin=${1:?usage: commit_curve.sh EDDY_BENCH_BIN [RUNS] [INTERVALS] [-- OPTIONS...]}
runs=${2:-3}
intervals=${3:-0 10 100 1000}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
extra=("$@")
results=$(mktemp) || exit 2
trap 'rm -f "$results"' EXIT

for ms in $intervals; do
  for c in durable_keyed_count latency; do
    line=$("$bin" "$c" --runs "$runs" --state.commit-interval-ms "$ms" "${extra[@]}" 2> /dev/null |
      grep "^case=$c ")
    [ -n "$line" ] || { echo "commit_curve: $c at $ms ms failed" >&2; exit 1; }
    echo "interval_ms=$ms $line" >> "$results"
    echo "$ms ms: $line" >&2
  done
done

python3 - "$results" "$runs" << 'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in l.split()) for l in open(sys.argv[1])]
print(f"medians of {sys.argv[2]} runs\n")
print("| interval ms | memory ev/s | process ev/s | machine ev/s | process/memory | machine/memory "
      "| latency p50/p99 ms: memory | process | machine |")
print("|---:|---:|---:|---:|---:|---:|---|---|---|")
by = {}
for r in rows:
    by.setdefault(r["interval_ms"], {})[r["case"]] = r
for ms, cs in by.items():
    t, l = cs["durable_keyed_count"], cs["latency"]
    mem, pro, mac = (float(t[k]) for k in ("events_per_s", "process_events_per_s",
                                           "machine_events_per_s"))
    lat = lambda p: f"{float(l[p + 'latency_p50_ms']):.1f} / {float(l[p + 'latency_p99_ms']):.1f}"
    print(f"| {ms} | {mem / 1e6:.2f} M | {pro / 1e6:.2f} M | {mac / 1e6:.2f} M | {pro / mem:.3f} "
          f"| {mac / mem:.3f} | {lat('')} | {lat('process_')} | {lat('machine_')} |")
PY
