#!/usr/bin/env bash
# Savepoints against the state's size: wordcount (128 partitions) is populated with KEYS
# distinct words, then restarted paced (20 000 lines/s of common words) with --inspect, and
# RUNS savepoints are taken from the console while it runs. For each: the pause (the longest
# alignment of a stage, `pause_ms`), the seconds until complete, and its MB/s; the baseline in
# the same run is `cp -r` + `sync` of the same journals (the job stopped), so the ratio is
# savepoint MB/s over a plain file copy's. Then the first savepoint is restored RUNS times into
# a fresh data dir (same shape), timed by the engine's log line, against the same baseline.
# Prints one markdown table of medians.
#
# Usage: apps/bench/savepoint_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [KEYS...]
#   apps/bench/savepoint_bench.sh build/bin/wordcount build/bin/eddy 3 100000 1000000
set -u
export LC_ALL=C
wordcount=${1:?usage: savepoint_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [KEYS...]}
eddy=${2:?usage: savepoint_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [KEYS...]}
runs=${3:-3}
shift $(($# < 3 ? $# : 3))
sizes=${*:-100000 1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-savepoint-bench.XXXXXX") || exit 2
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2> /dev/null; rm -rf "$work"' EXIT
results=$work/results

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for keys in $sizes; do
  data=$work/data-$keys
  # KEYS distinct words, ten a line, then a long tail of twenty common ones.
  awk -v k="$keys" 'BEGIN { for (i = 0; i < k; i += 10) { s = "";
    for (j = i; j < i + 10 && j < k; j++) s = s (j > i ? " " : "") "k" j;
    printf "{\"text\":\"%s\"}\n", s } }' > "$work/keys.jsonl"
  awk 'BEGIN { for (i = 0; i < 2000000; i++) printf "{\"text\":\"c%d c%d\"}\n", i % 20, i % 7 }' \
    > "$work/tail.jsonl"
  "$wordcount" "$work/keys.jsonl" --data-dir "$data" --output "$work/out.jsonl" \
    > /dev/null 2> "$work/populate.err" || { echo "populating failed" >&2; exit 1; }
  # The same job over the keys and the tail: it resumes after the keys, paced.
  cat "$work/keys.jsonl" "$work/tail.jsonl" > "$work/all.jsonl"
  "$wordcount" "$work/all.jsonl" --data-dir "$data" --output "$work/out.jsonl" \
    --runtime.source-rate 20000 --inspect --node.port 0 > /dev/null 2> "$work/run.err" &
  pid=$!
  port=
  for _ in $(seq 300); do
    port=$(grep -o 'eddy console 127.0.0.1:[0-9]*' "$work/run.err" | grep -o '[0-9]*$')
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "no inspector: $(tail -3 "$work/run.err")" >&2; exit 1; }
  sleep 2
  for r in $(seq "$runs"); do
    "$eddy" console "127.0.0.1:$port" -c savepoint --json --timeout-ms 600000 > "$work/sp.json" ||
      { echo "savepoint failed: $(cat "$work/sp.json")" >&2; exit 1; }
    python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))[0]
print(sys.argv[2], a["pause_ms"], a["seconds"], a["bytes"], a["copy_s"], a["fold_s"],
      a["finalize_s"])' "$work/sp.json" "$keys" >> "$results"
    sp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["path"])' "$work/sp.json")
    [ "$r" -eq 1 ] && mv "$sp" "$work/kept" || rm -rf "$sp"
    sleep 1
  done
  kill "$pid"
  wait "$pid" 2> /dev/null
  pid=
  # A same-shape restore of the first savepoint into a fresh data dir, RUNS times: the time the
  # engine logs for placing its files (verified before, then copied and synced).
  for r in $(seq "$runs"); do
    rm -rf "$work/restored"
    sync
    cp "$work/out.jsonl" "$work/restored.jsonl"
    timeout 600 "$wordcount" "$work/keys.jsonl" --data-dir "$work/restored" \
      --output "$work/restored.jsonl" --restore.from "$work/kept" > /dev/null 2> "$work/restore.err"
    grep -o 'files, [0-9]* bytes in [0-9.]* s' "$work/restore.err" |
      awk -v k="$keys" '{ print "restore", k, $2, $5 }' >> "$results"
  done
  rm -rf "$work/kept" "$work/restored"
  # Baseline: the same journals copied as files, synced.
  for r in $(seq "$runs"); do
    rm -rf "$work/copy"
    sync
    t0=$(date +%s%N)
    cp -r "$data/wordcount" "$work/copy" && sync
    t1=$(date +%s%N)
    echo "cp $keys $(( (t1 - t0) / 1000 )) $(du -sb "$data/wordcount" | cut -f1)" >> "$results"
  done
  rm -rf "$data" "$work/copy"
done

python3 - "$results" "$runs" << 'PY'
import statistics, sys
sp, cp, rs = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "cp":
        cp.setdefault(f[1], []).append(int(f[3]) / (int(f[2]) / 1e6) / 1e6)
    elif f[0] == "restore":
        rs.setdefault(f[1], []).append(int(f[2]) / float(f[3]) / 1e6)
    else:
        sp.setdefault(f[0], []).append((float(f[1]), float(f[2]), int(f[3]), float(f[4]),
                                        float(f[5]), float(f[6])))
print(f"medians of {sys.argv[2]} savepoints per size, wordcount at 128 partitions, paced at"
      " 20 000 lines/s\n")
print("| keys | journals MB | pause ms | savepoint s | of it copy / fold / finalize s "
      "| savepoint MB/s | cp -r + sync MB/s | ratio | restore MB/s | ratio |")
print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for keys, xs in sp.items():
    pause = statistics.median(x[0] for x in xs)
    secs = statistics.median(x[1] for x in xs)
    mb = statistics.median(x[2] for x in xs) / 1e6
    base = statistics.median(cp[keys])
    parts = " / ".join(f"{statistics.median(x[i] for x in xs):.2f}" for i in (3, 4, 5))
    restore = statistics.median(rs.get(keys, [0]))
    print(f"| {int(keys):,} | {mb:.1f} | {pause:.1f} | {secs:.2f} | {parts} | {mb / secs:.0f} "
          f"| {base:.0f} | {mb / secs / base:.2f} | {restore:.0f} | {restore / base:.2f} |")
PY
