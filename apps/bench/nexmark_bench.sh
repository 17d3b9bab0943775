#!/usr/bin/env bash
# The Nexmark benchmark: every query RUNS times on EVENTS generated events, each run in its
# own process with durable state (--state.durability process) under DATA_DIR, alternating
# with the query's reference computation (`nexmark --reference`: the same events generated
# and the query computed by a plain single-threaded C++ loop over them in memory) as the
# baseline of the same run. Prints the medians per query and the ratio engine / reference
# in events per CPU-second, as a markdown table and as key=value lines.
#
# Usage: nexmark_bench.sh NEXMARK_BIN [EVENTS] [RUNS] [QUERIES] [-- NEXMARK OPTIONS...]
#   apps/bench/nexmark_bench.sh build/bin/nexmark 10000000 3
#   apps/bench/nexmark_bench.sh build/bin/nexmark 2000000 3 "q5 q7" -- --parallelism 2
set -u
export LC_ALL=C
bin=${1:?usage: nexmark_bench.sh NEXMARK_BIN [EVENTS] [RUNS] [QUERIES] [-- OPTIONS...]}
events=${2:-10000000}
runs=${3:-3}
queries=${4:-q0 q1 q2 q3 q4 q5 q7 q8 q11 q12}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = "--" ] && shift
extra=("$@")
data=${DATA_DIR:-./data}/nexmark-bench
mkdir -p "$data" || exit 2
results=$(mktemp) || exit 2
trap 'rm -rf "$data" "$results"' EXIT

for q in $queries; do
  for r in $(seq 1 "$runs"); do
    # The engine first in odd runs, the reference first in even runs.
    order="engine reference"
    [ $((r % 2)) -eq 0 ] && order="reference engine"
    for who in $order; do
      if [ "$who" = engine ]; then
        line=$("$bin" --query "$q" --events "$events" --data-dir "$data" --no-progress \
          --state.durability process "${extra[@]}" 2> /dev/null | grep '^query=')
      else
        line=$("$bin" --query "$q" --events "$events" --reference "${extra[@]}" 2> /dev/null |
          grep '^query=')
      fi
      [ -n "$line" ] || { echo "nexmark_bench: $q ($who, run $r) failed" >&2; exit 1; }
      echo "$line" >> "$results"
      echo "$q run $r $who: $line" >&2
    done
  done
done

python3 - "$results" "$events" "$runs" << 'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in l.split()) for l in open(sys.argv[1])]
targets = {"q0": 1e6, "q1": 1e6, "q2": 1e6, "q3": 4e5, "q8": 4e5, "q4": 6e4,
           "q5": 1.5e5, "q7": 1.5e5, "q11": 1.5e5, "q12": 1.5e5}
def med(q, key):
    values = [float(r[key]) for r in rows if r["query"] == q and r[key] != "na"]
    return statistics.median(values) if values else float("nan")
def fmt(v):
    return "n/a" if v != v else f"{v:.2f}"
queries = []
for r in rows:
    if not r["query"].endswith("-reference") and r["query"] not in queries:
        queries.append(r["query"])
print(f"events={sys.argv[2]} runs={sys.argv[3]} (medians)\n")
print("| query | events/s | events/CPU-s | target | met | peak RSS MB | p50 ms | p99 ms | reference events/CPU-s | ratio |")
print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
lines = []
for q in queries:
    eps, epc = med(q, "events_per_s"), med(q, "events_per_cpu_s")
    rss = max(float(r["peak_rss_mb"]) for r in rows if r["query"] == q)
    p50, p99 = med(q, "latency_p50_ms"), med(q, "latency_p99_ms")
    ref = med(q + "-reference", "events_per_cpu_s")
    t = targets.get(q, 0)
    print(f"| {q} | {eps:,.0f} | {epc:,.0f} | {t:,.0f} | {'yes' if epc >= t else 'NO'} | {rss:.1f} | {fmt(p50)} | {fmt(p99)} | {ref:,.0f} | {epc / ref:.2f} |")
    lines.append(f"query={q} events_per_s={eps:.0f} events_per_cpu_s={epc:.0f} target={t:.0f} "
                 f"met={'yes' if epc >= t else 'no'} peak_rss_mb={rss:.1f} latency_p50_ms={fmt(p50)} "
                 f"latency_p99_ms={fmt(p99)} reference_events_per_cpu_s={ref:.0f} ratio={epc / ref:.3f}")
print()
print("\n".join(lines))
PY
