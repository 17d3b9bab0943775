#!/usr/bin/env bash
# `nexmark` from the command line: usage errors exit 2 naming what is wrong, --list names
# the ten queries, a run prints its figures and (with --output) results equal to
# --reference, and the first SIGINT stops the source and still prints the figures.
#
# Usage: nexmark_cli_test.sh NEXMARK_BIN
set -u
export LC_ALL=C
bin=${1:?usage: nexmark_cli_test.sh NEXMARK_BIN}
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-nexmark-cli.XXXXXX") || exit 2
trap 'pkill -9 -f "$work" 2> /dev/null; rm -rf "$work"' EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

# usage_error WHAT ARGS...: exits 2 with one line on stderr containing WHAT.
usage_error() {
  local what=$1
  shift
  "$bin" "$@" --data-dir "$work/data" > /dev/null 2> "$work/err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "nexmark $*: exit status $rc, expected 2"
  grep -q -- "$what" "$work/err" || fail "nexmark $*: stderr does not name '$what': $(cat "$work/err")"
}
usage_error "unknown query 'q9'" --query q9
usage_error "needs --query" --events 10
usage_error "--events" --query q1 --events 0
usage_error "--parallelism" --query q1 --parallelism 0
usage_error "bogus" --query q1 --bogus

"$bin" --list > "$work/list" || fail "--list failed"
[ "$(wc -l < "$work/list")" -eq 10 ] || fail "--list names $(wc -l < "$work/list") queries, not 10"
grep -q "^q5 .*sliding" "$work/list" || fail "--list does not describe q5"

# A run with --output: the figures, and results equal to the reference's.
"$bin" --query q2 --events 50000 --output "$work/q2.jsonl" --data-dir "$work/data" \
  --no-progress > "$work/run" 2> "$work/run.err" || fail "q2 run failed: $(tail -2 "$work/run.err")"
grep -Eq "^query=q2 events=50000 .*events_per_cpu_s=[0-9]+ .*results=[0-9]+" "$work/run" ||
  fail "q2 run: no figures line: $(cat "$work/run")"
results=$(sed -n 's/.* results=\([0-9]*\) .*/\1/p' "$work/run")
[ "$results" -gt 0 ] && [ "$results" -eq "$(wc -l < "$work/q2.jsonl")" ] ||
  fail "q2 run: $results results reported, $(wc -l < "$work/q2.jsonl") lines written"
"$bin" --query q2 --events 50000 --reference --output "$work/q2.ref" > /dev/null ||
  fail "q2 reference failed"
cmp -s <(sort "$work/q2.jsonl") <(sort "$work/q2.ref") || fail "q2 results differ from the reference"

# SIGINT: the source stops, the job drains, the figures cover what was read.
"$bin" --query q5 --events 100000000 --rate 20000 --data-dir "$work/data" --no-progress \
  > "$work/int" 2> "$work/int.err" &
pid=$!
sleep 1.5
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || fail "q5 after SIGINT: exit status $rc"
read_events=$(sed -n 's/^query=q5 events=\([0-9]*\) .*/\1/p' "$work/int")
[ -n "$read_events" ] && [ "$read_events" -gt 0 ] && [ "$read_events" -lt 100000000 ] ||
  fail "q5 after SIGINT: events '$read_events' (expected some, not all): $(cat "$work/int")"

[ "$failed" -eq 0 ] && echo "PASS: nexmark's usage, figures, output and SIGINT"
exit $failed
