#!/usr/bin/env bash
# `eddy console` against a live node: the wordcount demo reading stdin (so that it keeps
# running) with --inspect on a free loopback port. One-shot commands with their printed
# facts, --json, the errors (unknown command with a suggestion, unknown operator, node
# unreachable, usage), then an interactive session through a pseudo-terminal
# (console_pty.py): tab completion, a command, history.
#
# Usage: console_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: console_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: console_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

run() {
  run_as eddy "$eddy" "$@"
}

start_node "$wordcount" --data-dir "$work/data" --job.partitions 8
printf '{"text":"a b a"}\n{"text":"c a"}\n' >&3

run console "$addr" -c jobs
[ "$rc" -eq 0 ] || fail "jobs failed"
grep -Eq '^wordcount +running +12 ' "$work/out" ||
  fail "jobs does not show wordcount running on 12 actors (1 source, 2 split, 8 count, 1 sink)"

run console "$addr" -c "actors count"
[ "$rc" -eq 0 ] || fail "actors count failed"
[ "$(grep -c '^count/' "$work/out")" -eq 8 ] || fail "actors count does not list 8 partitions"
[ "$(grep -c ' running ' "$work/out")" -eq 8 ] || fail "not every partition is running"

# Counters move with the input: 5 words reached the partitions.
tries=0
while :; do
  run console "$addr" -c stats --json
  words=$(grep -o '"operator":"count","kind":"keyed","actors":8,"events_in":[0-9]*' "$work/out" |
          grep -o '[0-9]*$')
  [ "${words:-0}" -eq 5 ] && break
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || { fail "stats --json: count did not receive the 5 words"; break; }
  sleep 0.1
done

run console "$addr" -c "partitions count"
[ "$rc" -eq 0 ] || fail "partitions count failed"
[ "$(grep -Ec "^ *[0-7] +wordcount +$addr +primary +running " "$work/out")" -eq 8 ] ||
  fail "partitions count does not list 8 running primaries on this node"
run console "$addr" -c "partitions split"
[ "$rc" -eq 1 ] || fail "partitions of a stateless operator must exit 1"
grep -q "'split' (operator) is not a keyed operator" "$work/err" || fail "partitions split"

run console "$addr" -c graph
grep -Eq '^count +keyed +8 +split +by key +restart$' "$work/out" || fail "graph lacks the keyed edge"
run console "$addr" -c "graph --dot"
grep -q '"split" -> "count" \[label="by key"\];' "$work/out" || fail "graph --dot lacks the edge"

run console "$addr" -c nodes
grep -Eq "^$addr +$addr +up +coordinator +[0-9]+ +1 +12 +\*$" "$work/out" || fail "nodes does not show this node"

run console "$addr" -c actros
[ "$rc" -eq 1 ] || fail "an unknown command must exit 1"
grep -q "unknown command 'actros'; did you mean 'actors'?" "$work/err" ||
  fail "no suggestion for a mistyped command"

run console "$addr" -c "actors cuont"
[ "$rc" -eq 1 ] || fail "an unknown operator must exit 1"
grep -q "no operator 'cuont'; did you mean 'count'?" "$work/err" || fail "unknown operator"

run console "$addr" -c "help stats"
grep -q '^stats ' "$work/out" || fail "help stats does not describe stats"

# kill: this job reads stdin, which cannot be replayed, so supervision cannot restart it:
# the job stops with the killed actor named.
run console "$addr" -c "kill count/9"
[ "$rc" -eq 1 ] || fail "kill of an unknown actor must exit 1"
grep -q "no running actor 'count/9'; did you mean 'count/" "$work/err" || fail "kill count/9"

# Errors before any answer: an unreachable node names the address; bad usage exits 2.
run console 127.0.0.1:1 -c jobs
[ "$rc" -eq 1 ] || fail "an unreachable node must exit 1"
grep -q "cannot reach the inspector at 127.0.0.1:1" "$work/err" || fail "the address tried"
run console localhost -c jobs
[ "$rc" -eq 2 ] || fail "an address without a port must exit 2"
run console 127.0.0.1:99999 -c jobs
[ "$rc" -eq 2 ] || fail "a port out of range must exit 2"

# Interactive, through a pseudo-terminal.
if command -v python3 > /dev/null; then
  run_as console_pty python3 "$(dirname "$0")/console_pty.py" "$eddy" "$addr" "$work/history"
  [ "$rc" -eq 0 ] || fail "the interactive session failed"
  grep -qx 'jobs' "$work/history" || fail "the history file does not keep the command"
else
  echo "SKIP: interactive session (no python3)"
fi

run console "$addr" -c "kill count/3"
[ "$rc" -eq 0 ] || fail "kill count/3 failed"
grep -q '^count/3 ' "$work/out" || fail "kill does not name the actor"
stop_node
grep -q "'count/3' killed from the console" "$work/node.err" ||
  fail "the node did not fail with the killed actor"
grep -q "cannot restart the job: source 'lines' cannot replay its input" "$work/node.err" ||
  fail "the node does not say why it could not restart"
verdict "eddy console: one-shot commands, errors, interactive session"
