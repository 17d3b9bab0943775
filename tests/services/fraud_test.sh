#!/usr/bin/env bash
# End-to-end tests of the fraud detector and its generator:
#   1. planted fraud: every case fraud-gen plants is flagged with its rule, and the clean
#      transactions raise at most 1% false positives (scored by fraud_gen_check.py);
#   2. blocking: a flagged card's next transaction is rejected until an unblock command;
#   3. bad input: malformed JSON becomes a dead letter, an invalid transaction a `rejected`
#      record, and the run still succeeds;
#   4. usage errors: exit 2 with one line on stderr;
#   5. kill -9 in the middle of a run, then a rerun on the same --data-dir: the output equals
#      the uninterrupted run's of test 1, line for line (exactly-once).
#
# Usage: fraud_test.sh FRAUD_DETECTOR FRAUD_GEN
# Needs bash, coreutils and python3. Prints PASS/FAIL per check; exits 1 if any failed.
set -u
export LC_ALL=C

detector=${1:?usage: fraud_test.sh FRAUD_DETECTOR FRAUD_GEN}
gen=${2:?usage: fraud_test.sh FRAUD_DETECTOR FRAUD_GEN}
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$detector" "$gen"; do
  [ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-fraud.XXXXXX") || exit 2
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM HUP
# Usage errors must not leave a ./data behind wherever the test runs.
cd "$work" || exit 2

failures=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  failures=$(( failures + 1 ))
}

# Few partitions: the inputs are small, and every partition opens a journal.
common_args=(--job.partitions 8)

# detect NAME INPUT [ARGS...]: runs the detector on INPUT with its state in NAME-data and its
# output in NAME-out.jsonl, stdout and stderr in NAME.out and NAME.err; returns its status.
detect() {
  local name=$1 input=$2
  shift 2
  "$detector" "$input" --data-dir "$work/$name-data" --output "$work/$name-out.jsonl" \
    "${common_args[@]}" "$@" > "$work/$name.out" 2> "$work/$name.err"
}

show_logs() {
  echo "--- stdout of $1"
  tail -n 5 "$work/$1.out"
  echo "--- stderr of $1"
  tail -n 10 "$work/$1.err"
  echo "---"
}

# same_lines WHAT EXPECTED ACTUAL: the files hold the same lines in the same order.
same_lines() {
  if diff "$2" "$3" > "$work/diff"; then
    return 0
  fi
  echo "$1: expected (<) and actual (>) lines differ:"
  head -n 20 "$work/diff"
  return 1
}

# --- 1. planted fraud is flagged, clean transactions are not.
test_planted() {
  if ! "$gen" --cards 500 --transactions 20000 --seed 7 --fraud-rate 0.01 \
         --out "$work/tx.jsonl" --truth "$work/truth.jsonl"; then
    fail "planted: fraud-gen failed"
    return
  fi
  if ! detect ref "$work/tx.jsonl"; then
    show_logs ref
    fail "planted: the detector exited with an error"
    return
  fi
  echo "summary: $(tail -n 1 "$work/ref.out")"
  if python3 "$here/fraud_gen_check.py" "$work/tx.jsonl" "$work/truth.jsonl" \
       "$work/ref-out.jsonl"; then
    pass "planted: every planted case is flagged with its rule, false positives within 1%"
  else
    fail "planted: a planted case was missed or too many false positives (scores above)"
  fi
}

# --- 2. a flagged card is blocked until an unblock command.
test_blocking() {
  # c1: three usual amounts, then 500 (amount rule), one transaction while blocked, the
  # unblock, and one more that must pass. c2 is quiet; unblocking it is refused.
  cat > "$work/block.jsonl" <<'JSONL'
{"tx":"a1","card":"c1","amount":10,"merchant":"m1","country":"DE","ts":1700000000000}
{"tx":"b1","card":"c2","amount":30,"merchant":"m2","country":"FR","ts":1700000060000}
{"tx":"a2","card":"c1","amount":12,"merchant":"m1","country":"DE","ts":1700003600000}
{"tx":"a3","card":"c1","amount":11,"merchant":"m1","country":"DE","ts":1700007200000}
{"tx":"a4","card":"c1","amount":500,"merchant":"m9","country":"DE","ts":1700010800000}
{"tx":"a5","card":"c1","amount":10,"merchant":"m1","country":"DE","ts":1700014400000}
{"tx":"b2","card":"c2","amount":31,"merchant":"m2","country":"FR","ts":1700014460000}
{"cmd":"unblock","card":"c1","ts":1700016000000}
{"tx":"a6","card":"c1","amount":12,"merchant":"m1","country":"DE","ts":1700018000000}
{"cmd":"unblock","card":"c2","ts":1700018500000}
JSONL
  cat > "$work/block-c1.expected" <<'JSONL'
{"card":"c1","evidence":{"amount":500.0,"factor":5.0,"mean":11.0,"transactions":3},"kind":"alert","rule":"amount","ts":1700010800000,"tx":"a4"}
{"card":"c1","kind":"rejected","reason":"card blocked since tx a4","ts":1700014400000,"tx":"a5"}
{"card":"c1","kind":"unblocked","ts":1700016000000}
JSONL
  cat > "$work/block-c2.expected" <<'JSONL'
{"card":"c2","kind":"rejected","reason":"unblock: card c2 is not blocked","ts":1700018500000}
JSONL
  if ! detect block "$work/block.jsonl"; then
    show_logs block
    fail "blocking: the detector exited with an error"
    return
  fi
  # The records of one card keep their order; those of different cards may interleave.
  grep -F '"card":"c1"' "$work/block-out.jsonl" > "$work/block-c1.actual"
  grep -F '"card":"c2"' "$work/block-out.jsonl" > "$work/block-c2.actual"
  if same_lines "blocking, card c1" "$work/block-c1.expected" "$work/block-c1.actual" &&
     same_lines "blocking, card c2" "$work/block-c2.expected" "$work/block-c2.actual" &&
     [ "$(wc -l < "$work/block-out.jsonl")" -eq 4 ]; then
    pass "blocking: alert, rejected while blocked, unblocked, next transaction accepted"
  else
    echo "output:"
    cat "$work/block-out.jsonl"
    fail "blocking: the output is not the expected 4 lines"
  fi
}

# --- 3. bad input: dead letters and rejections, and the run goes on.
test_bad_input() {
  # Line 2 is cut off (malformed JSON), line 6 is JSON but no object: both dead letters.
  cat > "$work/bad.jsonl" <<'JSONL'
{"tx":"g1","card":"c1","amount":10,"merchant":"m1","country":"DE","ts":1700000000000}
{"tx":"x1","card":"c1","amount":
{"tx":"n1","card":"c1","amount":-5,"merchant":"m1","country":"DE","ts":1700000100000}
{"tx":"n2","card":"c1","amount":7,"merchant":"m1","ts":1700000200000}
{"tx":"n3","card":"bad card!","amount":7,"merchant":"m1","country":"DE","ts":1700000300000}
[1,2,3]
{"tx":"g2","card":"c1","amount":11,"merchant":"m1","country":"DE","ts":1700000400000}
JSONL
  cat > "$work/bad.expected" <<'JSONL'
{"card":"c1","kind":"rejected","reason":"field 'amount' must be > 0, got -5","ts":1700000100000,"tx":"n1"}
{"card":"c1","kind":"rejected","reason":"missing field 'country'","ts":1700000200000,"tx":"n2"}
{"kind":"rejected","reason":"field 'card' must match [A-Za-z0-9_.-]{1,64}, got \"bad card!\"","ts":1700000300000,"tx":"n3"}
JSONL
  if ! detect bad "$work/bad.jsonl"; then
    show_logs bad
    fail "bad input: the detector exited with an error"
    return
  fi
  local ok=1
  sort "$work/bad-out.jsonl" > "$work/bad.actual"
  same_lines "bad input" "$work/bad.expected" "$work/bad.actual" || ok=0
  # What the user sees: the count and the file on stdout, the lines and reasons in the file.
  local letters="$work/bad-data/deadletters.jsonl"
  if ! grep -qxF "2 malformed lines went to $letters" "$work/bad.out"; then
    echo "stdout does not report the 2 malformed lines:"
    cat "$work/bad.out"
    ok=0
  fi
  if ! python3 - "$letters" <<'PY'; then
import json, sys
letters = [json.loads(line) for line in open(sys.argv[1])]
got = [(d["line"], d["raw"]) for d in letters]
want = [(2, '{"tx":"x1","card":"c1","amount":'), (6, "[1,2,3]")]
if got != want or not all(d["reason"] for d in letters):
    sys.exit(f"dead letters: got {letters}, want lines and raw text {want} with reasons")
PY
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    pass "bad input: malformed lines are dead letters, invalid transactions rejected with reasons"
  else
    fail "bad input"
  fi
}

# --- 4. usage errors: exit 2, one line on stderr.
# usage_case WHAT PATTERN COMMAND...: COMMAND exits 2 with one stderr line matching PATTERN.
usage_case() {
  local what=$1 pattern=$2 rc
  shift 2
  "$@" > "$work/usage.out" 2> "$work/usage.err"
  rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l < "$work/usage.err")" -eq 1 ] &&
     grep -qE "$pattern" "$work/usage.err"; then
    return 0
  fi
  echo "usage, $what: exit $rc (want 2), stderr:"
  cat "$work/usage.err"
  return 1
}

test_usage() {
  local ok=1
  usage_case "no input" '^fraud-detector: error: missing --input' \
    "$detector" --output "$work/u.jsonl" || ok=0
  usage_case "no output" '^fraud-detector: error: missing --output' \
    "$detector" "$work/block.jsonl" || ok=0
  usage_case "bad threshold" '^fraud-detector: error: --fraud.velocity-count must be' \
    "$detector" "$work/block.jsonl" --output "$work/u.jsonl" --fraud.velocity-count 0 || ok=0
  usage_case "fraud-gen without --out" '^fraud-gen: error: missing --out' "$gen" || ok=0
  usage_case "fraud-gen, negative count" '^fraud-gen: error: --cards' \
    "$gen" --out "$work/u.jsonl" --cards -3 || ok=0
  if [ "$ok" = 1 ]; then
    pass "usage: missing input/output and bad values exit 2 with one line on stderr"
  else
    fail "usage"
  fi
}

# --- 5. kill -9 in the middle, rerun to completion: exactly the uninterrupted output.
test_crash() {
  [ -s "$work/ref-out.jsonl" ] || { fail "crash: no reference output (test 1 failed)"; return; }
  # Paced so that the kill lands while the job runs: 20000 records at 5000/s take 4 s.
  "$detector" "$work/tx.jsonl" --data-dir "$work/crash-data" --output "$work/crash-out.jsonl" \
    "${common_args[@]}" --runtime.source-rate 5000 > "$work/crash1.out" 2> "$work/crash1.err" &
  pid=$!
  local deadline=$(( SECONDS + 10 )) rc
  # Kill once some output is committed, so that the rerun has something to resume from.
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] &&
        [ "$(cat "$work/crash-out.jsonl" 2>/dev/null | wc -l)" -lt 200 ]; do
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  pid=
  local at_kill
  at_kill=$(cat "$work/crash-out.jsonl" 2>/dev/null | wc -l)
  if [ "$rc" -ne 137 ]; then
    show_logs crash1
    fail "crash: the paced run was not killed in the middle (exit $rc)"
    return
  fi
  echo "killed with $at_kill of $(wc -l < "$work/ref-out.jsonl") output lines written"
  if ! detect crash "$work/tx.jsonl"; then
    show_logs crash
    fail "crash: the rerun after kill -9 exited with an error"
    return
  fi
  echo "rerun: $(head -n 1 "$work/crash.out")"
  local ok=1
  if ! grep -q '^resumed from the state' "$work/crash.out"; then
    echo "the rerun did not resume from the state of the killed run"
    ok=0
  fi
  sort "$work/ref-out.jsonl" > "$work/ref.sorted"
  sort "$work/crash-out.jsonl" > "$work/crash.sorted"
  if ! cmp -s "$work/ref.sorted" "$work/crash.sorted"; then
    echo "lines only in the uninterrupted run: $(comm -23 "$work/ref.sorted" "$work/crash.sorted" | wc -l)"
    echo "lines only after kill -9 and rerun:   $(comm -13 "$work/ref.sorted" "$work/crash.sorted" | wc -l)"
    comm -3 "$work/ref.sorted" "$work/crash.sorted" | head -n 5
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    pass "crash: after kill -9 and a rerun the output equals the uninterrupted run's"
  else
    fail "crash: not exactly-once"
  fi
}

start=$SECONDS
test_planted
test_blocking
test_bad_input
test_usage
test_crash
echo "$(( SECONDS - start )) s"
if [ "$failures" -gt 0 ]; then
  echo "FAIL: $failures of 5 fraud tests failed"
  exit 1
fi
echo "PASS: all 5 fraud tests"
