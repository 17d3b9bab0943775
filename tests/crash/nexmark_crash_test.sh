#!/usr/bin/env bash
# The Nexmark queries survive kill -9 exactly once: each stateful query runs on a fixed seed
# (out-of-order events within the watermark's bound) with durable state; the run is killed
# with -9 three times while it runs and restarted with --resume on the same --data-dir, and
# its results must equal, sorted, those of a run that was never killed and those of the
# query's straightforward reference computation (`nexmark --reference`). q4 is compared by
# its last average of each category (its updates in between depend on the order in which
# auctions close on the partitions).
#
# Usage: nexmark_crash_test.sh NEXMARK_BIN [QUERY...]
set -u
export LC_ALL=C
bin=${1:?usage: nexmark_crash_test.sh NEXMARK_BIN [QUERY...]}
shift
queries=${*:-q3 q4 q5 q7 q8 q11}
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-nexmark-crash.XXXXXX") || exit 2
trap 'pkill -9 -f "$work" 2> /dev/null; rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# 60 s of event time (six 10 s windows), 40 ms out of order, 4 partitions.
common=(--events 60000 --event-rate 1000 --out-of-order-ms 40 --seed 3 --job.partitions 4
  --no-progress)

# normalized QUERY FILE: sorted JSON lines with sorted keys; for q4 the last update of each
# category.
normalized() {
  python3 - "$1" "$2" << 'PY'
import json, sys
rows = [json.loads(x) for x in open(sys.argv[2]) if x.strip()]
if sys.argv[1] == "q4":
    last = {}
    for r in rows:
        if r["category"] not in last or r["auctions"] > last[r["category"]]["auctions"]:
            last[r["category"]] = r
    rows = list(last.values())
for l in sorted(json.dumps(r, sort_keys=True) for r in rows):
    print(l)
PY
}

# killed_run: see killed_run.sh; the restarts resume the killed run's state.
source "$(dirname "$0")/killed_run.sh"
restart_args=(--resume)

for q in $queries; do
  "$bin" --query "$q" "${common[@]}" --reference --output "$work/$q.ref.jsonl" > /dev/null ||
    fail "$q: the reference failed"
  "$bin" --query "$q" "${common[@]}" --output "$work/$q.calm.jsonl" --data-dir "$work/$q.calm" \
    > /dev/null 2> "$work/$q.calm.err" || fail "$q: the calm run failed"
  normalized "$q" "$work/$q.ref.jsonl" > "$work/$q.ref.sorted"
  normalized "$q" "$work/$q.calm.jsonl" > "$work/$q.calm.sorted"
  [ -s "$work/$q.ref.sorted" ] || fail "$q: the reference has no results"
  cmp -s "$work/$q.calm.sorted" "$work/$q.ref.sorted" ||
    fail "$q: the calm run differs from the reference ($(wc -l < "$work/$q.calm.sorted") vs $(wc -l < "$work/$q.ref.sorted") results)"
  killed_run "$q" --query "$q" "${common[@]}" --rate 15000
  normalized "$q" "$work/$q.crash.jsonl" > "$work/$q.crash.sorted"
  if ! cmp -s "$work/$q.crash.sorted" "$work/$q.calm.sorted"; then
    diff "$work/$q.crash.sorted" "$work/$q.calm.sorted" | head -5
    fail "$q: the killed run differs from the calm run ($(wc -l < "$work/$q.crash.sorted") vs $(wc -l < "$work/$q.calm.sorted") results)"
  else
    echo "ok: $q: $(wc -l < "$work/$q.crash.sorted") results after $kills kills equal the calm run and the reference"
  fi
done
exit $failed
