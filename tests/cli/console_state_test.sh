#!/usr/bin/env bash
# `eddy console` reading and changing a live job's keyed state: the wordcount demo with
# durable state reads words from a FIFO; the test feeds known words and checks what the
# console prints: a key's state, its journaled history, an audited edit (visible in history
# and used by the next records), a replay to an older sequence number, a record injected
# with send, pause and resume of the partition that owns a key, tail filtered by key,
# snapshot; then the job's final output agrees with all of it, an edit survives kill -9, and
# a console whose node dies offers to reconnect.
#
# Usage: console_state_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: console_state_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: console_state_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

run() {
  run_as eddy "$eddy" "$@"
}

# json_field FIELD: the first value of "FIELD" in $work/out (numbers and simple strings).
json_field() {
  grep -o "\"$1\":\"\\?[^,\"}]*" "$work/out" | head -1 | sed 's/.*:"\{0,1\}//'
}

# wait_state WORD COUNT: waits until `state count WORD` shows COUNT.
wait_state() {
  for _ in $(seq 100); do
    run console "$addr" -c "state count $1" --json
    [ "$(json_field value)" = "$2" ] && return 0
    sleep 0.1
  done
  fail "state count $1 did not become $2"
}

start_node "$wordcount" --data-dir "$work/data" --job.partitions 4 --output "$work/counts.jsonl"
printf '{"text":"apple pear apple"}\n{"text":"apple"}\n' >&3

# state: apple was counted 3 times.
wait_state apple 3
grep -q '"key":"apple","actor":"count/[0-3]","state":"n","value":3' "$work/out" ||
  fail "state count apple does not show n = 3 on a count partition"
owner=$(json_field actor)
run console "$addr" -c "state count apple"
grep -Eq "^apple +$owner +n +3$" "$work/out" || fail "state count apple as a table"

# history: the journaled changes, newest first, with sequence numbers.
run console "$addr" -c "history count apple" --json
[ "$rc" -eq 0 ] || fail "history count apple failed"
seq3=$(grep -o '"seq":[0-9]*,"at":"[^"]*","state":"n","value":3' "$work/out" | head -1 |
       grep -o '"seq":[0-9]*' | grep -o '[0-9]*')
[ -n "$seq3" ] || fail "history does not show the change to 3 with its seq"

# set: an audited edit, through the journal.
run console "$addr" -c 'set count apple {"n": 10} --why "recount after the outage"'
[ "$rc" -eq 0 ] || fail "set failed"
grep -Eq "^apple +$owner +n +3 +10 +[0-9]+$" "$work/out" || fail "set does not show old 3, new 10"
run console "$addr" -c "state count apple"
grep -Eq "^apple +$owner +n +10$" "$work/out" || fail "state after set is not 10"
run console "$addr" -c "history count apple --limit 1" --json
grep -q '"value":10' "$work/out" || fail "the newest history entry is not the edit"
grep -q 'recount after the outage' "$work/out" || fail "history does not say why"
grep -q '\\"admin\\":\\"set\\"' "$work/out" || fail "history does not mark the edit as admin"
grep -q '\\"old\\":{\\"n\\":3}' "$work/out" || fail "history does not keep the old value"
grep -q "\\\\\"by\\\\\":\\\\\"${USER:-unknown}@" "$work/out" || fail "history does not say who"

# The keyed function goes on from the edited value.
printf '{"text":"apple"}\n' >&3
wait_state apple 11

# replay: the state as of the change to 3, rebuilt aside; the live state is untouched.
run console "$addr" -c "replay count apple --to $seq3"
[ "$rc" -eq 0 ] || fail "replay failed"
grep -Eq "^apple +$owner +n +3 +$seq3$" "$work/out" || fail "replay --to $seq3 is not 3"
wait_state apple 11
run console "$addr" -c "replay count apple --to 0"
[ "$rc" -eq 1 ] || fail "replay before the first change must exit 1"
grep -q "had no state at seq 0" "$work/err" || fail "replay --to 0"

# Errors: unknown key, a stateless operator, bad JSON.
run console "$addr" -c "state count durian"
[ "$rc" -eq 1 ] || fail "state of an unknown key must exit 1"
grep -q "no state for key 'durian' in 'count'" "$work/err" || fail "unknown key message"
run console "$addr" -c "state split apple"
grep -q "'split' (operator) is not a keyed operator" "$work/err" || fail "state of split"
run console "$addr" -c 'set count apple {"n": "ten"}'
[ "$rc" -eq 1 ] || fail "set with a value of the wrong type must exit 1"
wait_state apple 11

# send: a record injected into the source is counted like any other.
run console "$addr" -c 'send lines {"text": "kiwi"}'
[ "$rc" -eq 0 ] || fail "send failed"
wait_state kiwi 1
kiwi_owner=$(json_field actor)
run console "$addr" -c 'send lines {"txt": 1}'
[ "$rc" -eq 1 ] || fail "send of a record of the wrong shape must exit 1"

# pause: kiwi's partition takes no input until resume.
run console "$addr" -c "pause $kiwi_owner"
grep -Eq "^$kiwi_owner +paused" "$work/out" || fail "pause $kiwi_owner"
printf '{"text":"kiwi"}\n' >&3
sleep 0.5
run console "$addr" -c "state count kiwi" --json
[ "$(json_field value)" = "1" ] || fail "a paused partition counted kiwi"
run console "$addr" -c "actors count"
grep -Eq "^$kiwi_owner +wordcount +keyed +paused" "$work/out" || fail "actors does not show paused"
run console "$addr" -c stats --json
grep -Eq '"operator":"count"[^}]*"lag":[1-9][0-9]*,"mailbox":[1-9]' "$work/out" ||
  fail "stats does not show the word waiting in front of the paused partition (lag, mailbox)"
run console "$addr" -c "resume $kiwi_owner"
wait_state kiwi 2

# tail: live records of one key, until stdin ends.
( sleep 0.7; printf '{"text":"kiwi fig"}\n{"text":"fig kiwi"}\n' >&3 ) &
feeder=$!
sleep 2 | "$eddy" console "$addr" -c "tail count kiwi" > "$work/tail.out" 2>&1
wait "$feeder"
[ "$(grep -c "^$kiwi_owner  kiwi  \"kiwi\"$" "$work/tail.out")" -eq 2 ] ||
  { cat "$work/tail.out"; fail "tail count kiwi does not show the 2 kiwi records"; }
grep -q fig "$work/tail.out" && fail "tail count kiwi shows another key"
wait_state kiwi 4

# snapshot: every partition commits and compacts; the state is the same afterwards.
run console "$addr" -c snapshot
[ "$rc" -eq 0 ] || fail "snapshot failed"
[ "$(grep -Ec '^count/[0-3] +[0-9]+ ' "$work/out")" -eq 4 ] || fail "snapshot lists 4 partitions"
wait_state apple 11

# The job's own output agrees: the last count of each word.
stop_node
last() {
  grep "\"word\":\"$1\"" "$work/counts.jsonl" | tail -1 | grep -o '"count":[0-9]*' | grep -o '[0-9]*'
}
[ "$(last apple)" = 11 ] || fail "the job's output ends with apple $(last apple), not 11"
[ "$(last kiwi)" = 4 ] || fail "the job's output ends with kiwi $(last kiwi), not 4"
[ "$(last pear)" = 1 ] || fail "the job's output ends with pear $(last pear), not 1"
# An audited edit is durable like any change: kill -9 right after it, and the next node on
# the same data directory has it, with its history.
rm -f "$work/in"
start_node "$wordcount" --data-dir "$work/data" --job.partitions 4 --output "$work/counts.jsonl"
wait_state apple 11
run console "$addr" -c 'set count pear {"n": 7} --why "before the crash"'
[ "$rc" -eq 0 ] || fail "set before the crash failed"
kill -9 "$node"
wait "$node" 2> /dev/null
exec 3>&-
rm -f "$work/in"
start_node "$wordcount" --data-dir "$work/data" --job.partitions 4 --output "$work/counts.jsonl"
wait_state pear 7
run console "$addr" -c "history count pear --limit 1"
grep -q 'before the crash' "$work/out" || fail "the edit's history did not survive kill -9"

# The node dies under an interactive console: it offers to reconnect and names the address.
if command -v python3 > /dev/null; then
  run_as console_pty python3 "$(dirname "$0")/console_pty.py" "$eddy" "$addr" "$work/history" \
    --lost "$node"
  [ "$rc" -eq 0 ] || fail "the lost connection was not handled"
else
  echo "SKIP: lost connection (no python3)"
fi
stop_node
verdict "eddy console: state, history, audited set, replay, send, pause/resume, tail, snapshot"
