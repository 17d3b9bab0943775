#!/usr/bin/env bash
# Cluster membership with real processes on loopback: three wordcount nodes join through
# their seeds; every node lists the three as up with the first seed as coordinator. A node
# killed with -9 shows as down (CAF's lost connection) and the next seed becomes the
# coordinator; a node stopped with SIGSTOP (connected but hung) shows as unreachable once
# heartbeats time out, and up again after SIGCONT; the killed node restarted on its address
# rejoins as a member (the coordinator keeps its role while it is up, and with it the job
# it took over) and gets partitions again by the leader's rebalance. Along the way the coordinator's assignment table
# (`placement`): the same version on every node, every partition with a primary and a
# standby on another node; after the kill a newer epoch from the new coordinator in which
# the dead node's partitions went to their standbys; after the rejoin the returned node owns
# partitions again.
#
# Usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

read -r p1 p2 p3 < <(free_ports 3)
seeds=127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3
declare -A pid

# start N PORT: node nN on PORT, reading its own FIFO (kept open by fd 1N).
start() {
  local n=$1 port=$2
  [ -p "$work/in$n" ] || mkfifo "$work/in$n"
  eval "exec 1$n<> \"$work/in$n\""
  "$wordcount" - --data-dir "$work/d$n" --node.id "n$n" --node.port "$port" \
    --node.seeds "$seeds" --node.heartbeat-ms 200 --node.timeout-ms 1000 --job.partitions 4 \
    < "$work/in$n" > "$work/out$n" 2> "$work/err$n" &
  pid[$n]=$!
}
cleanup() {
  for n in 1 2 3; do
    kill -CONT "${pid[$n]:-0}" 2> /dev/null
    kill -9 "${pid[$n]:-0}" 2> /dev/null
  done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# expect_nodes PORT PATTERN WHAT: waits up to 10 s until `nodes` on PORT matches every line
# of PATTERN (extended regexps, one per line).
expect_nodes() {
  local port=$1 patterns=$2 what=$3
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    run_as eddy "$eddy" console "127.0.0.1:$port" -c nodes
    local all=1
    while IFS= read -r p; do
      grep -Eq "$p" "$work/out" || all=0
    done <<< "$patterns"
    [ "$all" -eq 1 ] && return 0
    sleep 0.1
  done
  fail "$what"
}

# table PORT: the assignment table on the node at PORT, one "primary standby" line per
# partition after a first line "epoch coordinator" (empty output when it has none).
table() {
  "$eddy" console "127.0.0.1:$1" -c placement --json 2> /dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)
print(rows[0]["epoch"], rows[0]["coordinator"])
for r in rows:
    print(r["primary"], r["standby"])' 2> /dev/null
}

# wait_table PORT CONDITION WHAT: waits up to 10 s until the table on PORT satisfies the
# python CONDITION over t (list of (primary, standby)), epoch and coordinator.
wait_table() {
  local port=$1 cond=$2 what=$3
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    table "$port" > "$work/table.$port"
    if python3 "$(dirname "$0")/table_check.py" "$work/table.$port" "$cond"; then
      return 0
    fi
    sleep 0.1
  done
  echo "--- the table on $port"; cat "$work/table.$port"
  fail "$what"
}

start 1 "$p1"
start 2 "$p2"
start 3 "$p3"
for port in $p1 $p2 $p3; do
  expect_nodes "$port" "^n1 +127.0.0.1:$p1 +up +coordinator
^n2 +127.0.0.1:$p2 +up +member
^n3 +127.0.0.1:$p3 +up +member" "the node on $port does not list all three up with n1 coordinating"
done
grep -Eq "^n3 .* +[0-9]+ +1 +8 +\*$" "$work/out" || fail "nodes does not mark this node with its job"

sound='len(t) == 4 and all(len(o) == 2 and o[0] != o[1] for o in t)'
wait_table "$p1" "coordinator == 'n1' and $sound and {o[0] for o in t} == {'n1', 'n2', 'n3'}" \
  "n1 does not coordinate a sound table spreading primaries over all three"
cp "$work/table.$p1" "$work/table.first"
for port in $p2 $p3; do
  wait_table "$port" "open('$work/table.first').read() == open(sys.argv[1]).read()" \
    "the node on $port does not have the coordinator's table"
done

kill -9 "${pid[1]}"
expect_nodes "$p2" "^n1 +127.0.0.1:$p1 +down
^n2 +127.0.0.1:$p2 +up +coordinator" "n2 does not see n1 down and take over as coordinator"
expect_nodes "$p3" "^n1 +127.0.0.1:$p1 +down
^n2 +127.0.0.1:$p2 +up +coordinator" "n3 does not agree that n2 coordinates"
# Failover in the table: n1's partitions went to their standbys, the others kept theirs.
first="read_table('$work/table.first')[2]"
wait_table "$p3" "coordinator == 'n2' and $sound and all('n1' not in o for o in t) and \
all(t[i][0] == (f[1] if f[0] == 'n1' else f[0]) for i, f in enumerate($first))" \
  "n3's table after the kill: n1's partitions did not fail over to their standbys"

kill -STOP "${pid[3]}"
expect_nodes "$p2" "^n3 +127.0.0.1:$p3 +unreachable" "a hung n3 is not unreachable after the timeout"
kill -CONT "${pid[3]}"
expect_nodes "$p2" "^n3 +127.0.0.1:$p3 +up" "n3 is not up again after SIGCONT"
grep -q "member n3 (127.0.0.1:$p3) is unreachable" "$work/err2" || fail "n2 did not log n3 unreachable"

start 1 "$p1"
expect_nodes "$p2" "^n1 +127.0.0.1:$p1 +up +member
^n2 +127.0.0.1:$p2 +up +coordinator" "a restarted n1 does not rejoin as a member under n2"
expect_nodes "$p1" "^n1 +127.0.0.1:$p1 +up +member
^n2 +127.0.0.1:$p2 +up +coordinator
^n3 +127.0.0.1:$p3 +up" "the restarted n1 does not know the others or who coordinates"
wait_table "$p2" "coordinator == 'n2' and $sound and 'n1' in {o[0] for o in t}" \
  "after the rejoin n1 does not own partitions again (the leader's rebalance)"
verdict "cluster membership: join through seeds, down, unreachable, coordinator takeover, rejoin"
