#!/usr/bin/env bash
# Windows over event time survive kill -9 exactly once: seeded out-of-order readings
# (delays within the out-of-orderness bound, so none is late) go through tumbling, sliding
# and session windows; each run is killed with -9 three times while it runs and restarted
# on the same --data-dir, and its output must equal, sorted, the output of a run that was
# never killed, and the windows' sums must equal a sort-by-event-time reference: every
# window once, no reading lost or counted twice. The window state and its event-time
# timers live in the partitions' journals. The same for an interval join of two streams.
#
# Usage: event_windows_crash_test.sh EVENT_WINDOWS_BIN
# Environment: CRASH_COMMIT_INTERVAL_MS, the --state.commit-interval-ms of every run
# (default: the option's); with one of 1000 ms or more the kills come after 1-3 s and the
# killed runs read more slowly.
set -u
export LC_ALL=C
bin=${1:?usage: event_windows_crash_test.sh EVENT_WINDOWS_BIN}
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-windows-crash.XXXXXX") || exit 2
trap 'pkill -9 -f "$work" 2> /dev/null; rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# 60 000 readings of 40 keys, 100 ms apart in event time, each delayed by up to 4 s.
python3 - "$work/in.jsonl" << 'PY'
import json, random, sys
rnd = random.Random(17)
with open(sys.argv[1], "w") as f:
    for i in range(60000):
        ts = 1_700_000_000_000 + i * 100 - rnd.randrange(4000)
        f.write(json.dumps({"key": "k%d" % rnd.randrange(40), "ts": ts, "value": rnd.randrange(1, 100)}) + "\n")
PY

# reference WINDOW: the sums per (key, window) computed from the readings sorted by time.
reference() {
  python3 - "$work/in.jsonl" "$1" << 'PY'
import json, sys
kind, *n = sys.argv[2].split(":")
n = [int(x) for x in n]
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["ts"])
sums = {}
if kind == "tumbling":
    for r in rows:
        s = r["ts"] // n[0] * n[0]
        sums[(r["key"], s, s + n[0])] = sums.get((r["key"], s, s + n[0]), 0) + r["value"]
elif kind == "sliding":
    size, slide = n
    for r in rows:
        last = r["ts"] // slide * slide
        s = last
        while s > r["ts"] - size:
            sums[(r["key"], s, s + size)] = sums.get((r["key"], s, s + size), 0) + r["value"]
            s -= slide
else:
    gap = n[0]
    by_key = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    for k, rs in by_key.items():
        start, end, total = None, None, 0
        for r in rs:
            if start is not None and r["ts"] < end:
                end = max(end, r["ts"] + gap)
                total += r["value"]
            else:
                if start is not None:
                    sums[(k, start, end)] = total
                start, end, total = r["ts"], r["ts"] + gap, r["value"]
        sums[(k, start, end)] = total
lines = [json.dumps({"end": e, "key": k, "kind": "result", "result": v, "start": s}, sort_keys=True)
         for (k, s, e), v in sums.items()]
for l in sorted(lines):
    print(l)
PY
}

# normalized FILE: the output as sorted JSON lines with sorted keys.
normalized() {
  python3 -c '
import json, sys
for l in sorted(json.dumps(json.loads(x), sort_keys=True) for x in open(sys.argv[1]) if x.strip()):
    print(l)' "$1"
}

# killed_run: see killed_run.sh.
source "$(dirname "$0")/killed_run.sh"
# Readings per second of the killed runs: slower with late kills, so that a run lasts
# longer than the time before its kill.
interval=()
rate=20000
join_rate=8000
if [ -n "${CRASH_COMMIT_INTERVAL_MS:-}" ]; then
  interval=(--state.commit-interval-ms "$CRASH_COMMIT_INTERVAL_MS")
  if [ "$CRASH_COMMIT_INTERVAL_MS" -ge 1000 ]; then
    kill_late=1
    rate=5000
    join_rate=2500
  fi
fi

for window in tumbling:60000 sliding:60000:20000 session:3000; do
  name=${window%%:*}
  args=(--window "$window" --bound-ms 5000 --job.partitions 8 "${interval[@]}")
  "$bin" "$work/in.jsonl" --output "$work/$name.calm.jsonl" --data-dir "$work/$name.calm" \
    "${args[@]}" > /dev/null 2> "$work/$name.calm.err" || fail "$name: the calm run failed"
  normalized "$work/$name.calm.jsonl" > "$work/$name.calm.sorted"
  reference "$window" > "$work/$name.ref"
  cmp -s "$work/$name.calm.sorted" "$work/$name.ref" ||
    fail "$name: the calm run differs from the reference ($(wc -l < "$work/$name.calm.sorted") vs $(wc -l < "$work/$name.ref") windows)"
  killed_run "$name" "$work/in.jsonl" "${args[@]}" --runtime.source-rate "$rate"
  normalized "$work/$name.crash.jsonl" > "$work/$name.crash.sorted"
  if ! cmp -s "$work/$name.crash.sorted" "$work/$name.calm.sorted"; then
    diff "$work/$name.crash.sorted" "$work/$name.calm.sorted" | head -5
    fail "$name: after $kills kills the output differs from the calm run's"
  else
    echo "$name: $(wc -l < "$work/$name.calm.sorted") windows, equal to the reference and after $kills kill -9"
  fi
done
# The interval join of two such streams (20 000 readings each, keys of 40), killed -9 three
# times: every pair of one key with right.ts - left.ts in [-200, 300] once.
python3 - "$work/left.jsonl" "$work/right.jsonl" << 'PY'
import json, random, sys
for path, seed in ((sys.argv[1], 3), (sys.argv[2], 4)):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for i in range(20000):
            ts = 1_700_000_000_000 + i * 100 - rnd.randrange(4000)
            f.write(json.dumps({"key": "k%d" % rnd.randrange(40), "ts": ts, "value": i}) + "\n")
PY
python3 - "$work/left.jsonl" "$work/right.jsonl" > "$work/join.ref" << 'PY'
import json, sys
left = [json.loads(l) for l in open(sys.argv[1])]
right = {}
for r in map(json.loads, open(sys.argv[2])):
    right.setdefault(r["key"], []).append(r)
lines = []
for a in left:
    for b in right.get(a["key"], []):
        if -200 <= b["ts"] - a["ts"] <= 300:
            lines.append(json.dumps({"key": a["key"], "left_ts": a["ts"], "right_ts": b["ts"],
                                     "left_value": a["value"], "right_value": b["value"]},
                                    sort_keys=True))
for l in sorted(lines):
    print(l)
PY
jargs=("$work/left.jsonl" --join "$work/right.jsonl" --join-lower-ms -200 --join-upper-ms 300
  --bound-ms 5000 --job.partitions 8 "${interval[@]}")
killed_run join "${jargs[@]}" --runtime.source-rate "$join_rate"
normalized "$work/join.crash.jsonl" > "$work/join.crash.sorted"
if ! cmp -s "$work/join.crash.sorted" "$work/join.ref"; then
  diff "$work/join.crash.sorted" "$work/join.ref" | head -5
  fail "join: after $kills kills the pairs differ from the brute force ($(wc -l < "$work/join.crash.sorted") vs $(wc -l < "$work/join.ref"))"
else
  echo "join: $(wc -l < "$work/join.ref") pairs, equal to the brute force after $kills kill -9"
fi
[ "$failed" -eq 0 ] && echo "PASS: windows and joins over event time, exactly once across kill -9"
exit "$failed"
