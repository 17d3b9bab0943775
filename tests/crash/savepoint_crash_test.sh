#!/usr/bin/env bash
# kill -9 at any moment of a savepoint: wordcount runs paced with --inspect, the console asks
# it for a savepoint, and the process is killed a random 0..SPREAD ms later (before the cut,
# while stages align, while the journals are copied, while the manifest is written, or after).
# Each attempt restarts on the same --data-dir. Afterwards:
#   - the job's own output, run to completion, equals a run that never had a savepoint nor a
#     kill (it resumed exactly once, however the savepoints were cut off);
#   - no partial savepoint is left (the start after a kill removes them);
#   - every complete savepoint verifies, and restored into a fresh data dir (its sink writing
#     to a copy of the output) runs to the same output.
#
# Usage: savepoint_crash_test.sh WORDCOUNT_BIN EDDY_BIN [ATTEMPTS]
# Environment: CRASH_SEED=N (seed of the kill delays), CRASH_KEEP=1 (keep the work dir).
set -u
export LC_ALL=C
bin=${1:?usage: savepoint_crash_test.sh WORDCOUNT_BIN EDDY_BIN [ATTEMPTS]}
eddy=${2:?usage: savepoint_crash_test.sh WORDCOUNT_BIN EDDY_BIN [ATTEMPTS]}
attempts=${3:-10}
spread=${CRASH_SPREAD_MS:-600}
seed=${CRASH_SEED:-$(($(date +%s%N) % 32768))}
RANDOM=$seed
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-savepoint-crash.XXXXXX") || exit 2
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2> /dev/null
  pkill -9 -f "$work" 2> /dev/null
  if [ "${CRASH_KEEP:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

common=(--job.partitions 8 --split-parallelism 2 --state.compact-every 5)
data=$work/data
out=$work/out.jsonl

# 120 000 lines of 1..8 words out of 100 000: enough state that copying it takes a while.
awk 'BEGIN { srand(7); for (i = 0; i < 120000; i++) { n = 1 + int(rand() * 8); s = "";
  for (j = 0; j < n; j++) s = s (j ? " " : "") "w" int(rand() * 100000);
  printf "{\"text\":\"%s\"}\n", s } }' > "$work/input.jsonl"
"$bin" "$work/input.jsonl" --data-dir "$work/ref-data" --output "$work/ref.jsonl" "${common[@]}" \
  > /dev/null 2> "$work/ref.err" || fail "the reference run failed: $(tail -3 "$work/ref.err")"
sort "$work/ref.jsonl" > "$work/ref.sorted"
echo "reference: $(wc -l < "$work/ref.jsonl") output lines; kill seed $seed"

# The inspector's port from a run's log, once it listens (empty after 10 s).
port_of() {
  local log=$1 i
  for i in $(seq 200); do
    grep -o 'eddy console 127.0.0.1:[0-9]*' "$log" 2> /dev/null | grep -o '[0-9]*$' && return
    sleep 0.05
  done
}

completed=0
during=0
killed=0
for a in $(seq "$attempts"); do
  log=$work/attempt-$a
  "$bin" "$work/input.jsonl" --data-dir "$data" --output "$out" "${common[@]}" \
    --runtime.source-rate 15000 --inspect --node.port 0 > /dev/null 2> "$log.err" &
  pid=$!
  port=$(port_of "$log.err")
  [ -n "$port" ] || fail "attempt $a: no inspector port in $log.err: $(tail -3 "$log.err")"
  sleep 0.$((RANDOM % 3 + 1))
  "$eddy" console "127.0.0.1:$port" -c savepoint --json --timeout-ms 3000 > "$log.sp" 2>&1 &
  console=$!
  delay=$((RANDOM % spread))
  sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  if kill -9 "$pid" 2> /dev/null; then
    killed=$((killed + 1))
  fi
  wait "$pid" 2> /dev/null
  pid=
  wait "$console" 2> /dev/null
  if grep -q '"path"' "$log.sp"; then
    completed=$((completed + 1))
    state=complete
  elif grep -q 'savepoint .* begins' "$log.err" && ! grep -q 'is complete' "$log.err"; then
    during=$((during + 1))
    state="cut off while it was written"
  else
    state="cut off"
  fi
  echo "attempt $a: killed ${delay} ms after the savepoint request; savepoint $state"
done
[ "$killed" -ge $((attempts / 2)) ] || fail "only $killed of $attempts kills hit a running job"
echo "$killed kills: $during while a savepoint was being written, $completed after one completed"

# The job resumes exactly once whatever the kills cut off.
"$bin" "$work/input.jsonl" --data-dir "$data" --output "$out" "${common[@]}" \
  > /dev/null 2> "$work/final.err" || fail "the final run failed: $(tail -3 "$work/final.err")"
sort "$out" > "$work/out.sorted"
cmp -s "$work/out.sorted" "$work/ref.sorted" ||
  fail "after $killed kills during savepoints the output differs from the reference" \
    "($(wc -l < "$out") vs $(wc -l < "$work/ref.jsonl") lines)"
echo "ok: the job's output after $killed kills equals the reference"

partials=$(find "$data/savepoints" -maxdepth 1 -name '*.partial' 2> /dev/null | wc -l)
[ "$partials" -eq 0 ] || fail "$partials partial savepoints were left in $data/savepoints"
n=0
for sp in "$data"/savepoints/*/; do
  [ -f "$sp/manifest.json" ] || continue
  n=$((n + 1))
  "$eddy" savepoint verify "$sp" > "$work/verify.out" 2>&1 ||
    fail "savepoint $sp does not verify: $(cat "$work/verify.out")"
  cp "$out" "$work/restore-$n.jsonl"
  "$bin" "$work/input.jsonl" --data-dir "$work/restore-data-$n" --output "$work/restore-$n.jsonl" \
    "${common[@]}" --restore.from "$sp" > /dev/null 2> "$work/restore-$n.err" ||
    fail "restoring $sp failed: $(tail -3 "$work/restore-$n.err")"
  sort "$work/restore-$n.jsonl" | cmp -s - "$work/ref.sorted" ||
    fail "the job restored from $sp differs from the reference"
done
# A kill can land after the rename and before the console got the answer: at least as many.
[ "$n" -ge "$completed" ] ||
  fail "the console saw $completed savepoints complete, the directory holds $n"
echo "ok: $n complete savepoints verify and restore to the reference; no partial one is left"
