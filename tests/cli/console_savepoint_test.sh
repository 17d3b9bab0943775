#!/usr/bin/env bash
# The console's `savepoint` and `savepoints` against a live wordcount node: a savepoint taken
# while the job runs (its answer, the listing, `eddy savepoint list` and `verify` agree), a
# usage error, `savepoint --stop` ending the job at the cut (exit 0, the output as long as the
# savepoint says), a job on stdin refused with the reason, and --restore.from refusing a
# savepoint of another partition count before anything changes.
#
# Usage: console_savepoint_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C
wordcount=${1:?usage: console_savepoint_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: console_savepoint_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

# console COMMAND [FLAGS...]: one console command line, with the console's own flags.
console() {
  local cmd=$1
  shift
  run_as "console -c '$cmd' $*" "$eddy" console "$addr" -c "$cmd" --timeout-ms 20000 "$@"
}

awk 'BEGIN { for (i = 0; i < 40000; i++) printf "{\"text\":\"w%d w%d\"}\n", i % 997, i % 13 }' \
  > "$work/input.jsonl"

# A paced run (about 8 s) with its inspector on a free port: sets $node and $addr.
start_paced() {
  "$wordcount" "$work/input.jsonl" --data-dir "$work/data" --output "$work/counts.jsonl" \
    --job.partitions 4 --runtime.source-rate 5000 --inspect --node.port 0 "$@" \
    > "$work/node.out" 2> "$work/node.err" &
  node=$!
  wait_for_inspector
}

start_paced
sleep 0.5
console savepoint
expect_status 0
expect_out "pause_ms" "$work/data/savepoints/wordcount-"
first=$(grep -o "$work/data/savepoints/wordcount-[0-9TZ-]*" "$work/out" | head -1)
[ -f "$first/manifest.json" ] || fail "the answer names $first, which has no manifest"

console "savepoint --bogus"
expect_err "usage: savepoint [--stop] [JOB]"

console savepoints --json
expect_status 0
expect_out '"state":"complete"' "\"path\":\"$first\""

run_as "eddy savepoint verify" "$eddy" savepoint verify "$first"
expect_status 0
run_as "eddy savepoint list" "$eddy" savepoint list "$work/data/savepoints"
expect_out "$(basename "$first")  job wordcount"

# --stop: the job ends at the cut, normally.
console "savepoint --stop"
expect_status 0
second=$(grep -o "$work/data/savepoints/wordcount-[0-9TZ-]*" "$work/out" | head -1)
wait "$node"
node_rc=$?
[ "$node_rc" -eq 0 ] || fail "wordcount exited with $node_rc after savepoint --stop"
length=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sinks"][0]["length"])' \
  "$second/manifest.json")
[ "$(stat -c %s "$work/counts.jsonl")" = "$length" ] ||
  fail "after savepoint --stop the output has $(stat -c %s "$work/counts.jsonl") bytes, the savepoint $length"
[ "$(wc -l < "$work/counts.jsonl")" -lt 80000 ] || fail "savepoint --stop did not stop the job early"

# A restore into another partition count is refused, and the data dir is left as it is.
run_as "wordcount --restore.from (P 8)" "$wordcount" "$work/input.jsonl" --data-dir "$work/other" \
  --output "$work/other.jsonl" --job.partitions 8 --restore.from "$second"
[ "$rc" -ne 0 ] || fail "a restore into 8 partitions of a 4-partition savepoint was accepted"
expect_err "taken with 4 partitions and job wordcount runs 8"
[ ! -e "$work/other/wordcount" ] || fail "the refused restore created $work/other/wordcount"

# A job reading stdin cannot be restored: its savepoint is refused with the reason.
start_node "$wordcount" --data-dir "$work/stdin-data" --output "$work/stdin.jsonl"
console savepoint
[ "$rc" -ne 0 ] || fail "a savepoint of a job on stdin was taken"
expect_err "cannot be restored from a savepoint" "cannot replay its input"
stop_node

verdict "console savepoint and savepoints"
