#!/usr/bin/env bash
# Cluster membership with real processes on loopback: three wordcount nodes join through
# their seeds; every node lists the three as up with the first seed as coordinator. A node
# killed with -9 shows as down (CAF's lost connection) and the next seed becomes the
# coordinator; a node stopped with SIGSTOP (connected but hung) shows as unreachable once
# heartbeats time out, and up again after SIGCONT; the killed node restarted on its address
# rejoins and is the coordinator again.
#
# Usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: cluster_membership_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

# Three free loopback ports (a small race with other programs is possible, not likely).
read -r p1 p2 p3 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
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
  for _ in $(seq 100); do
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

start 1 "$p1"
start 2 "$p2"
start 3 "$p3"
for port in $p1 $p2 $p3; do
  expect_nodes "$port" "^n1 +127.0.0.1:$p1 +up +coordinator
^n2 +127.0.0.1:$p2 +up +member
^n3 +127.0.0.1:$p3 +up +member" "the node on $port does not list all three up with n1 coordinating"
done
grep -Eq "^n3 .* +[0-9]+ +1 +8 +\*$" "$work/out" || fail "nodes does not mark this node with its job"

kill -9 "${pid[1]}"
expect_nodes "$p2" "^n1 +127.0.0.1:$p1 +down
^n2 +127.0.0.1:$p2 +up +coordinator" "n2 does not see n1 down and take over as coordinator"
expect_nodes "$p3" "^n1 +127.0.0.1:$p1 +down
^n2 +127.0.0.1:$p2 +up +coordinator" "n3 does not agree that n2 coordinates"

kill -STOP "${pid[3]}"
expect_nodes "$p2" "^n3 +127.0.0.1:$p3 +unreachable" "a hung n3 is not unreachable after the timeout"
kill -CONT "${pid[3]}"
expect_nodes "$p2" "^n3 +127.0.0.1:$p3 +up" "n3 is not up again after SIGCONT"
grep -q "member n3 (127.0.0.1:$p3) is unreachable" "$work/err2" || fail "n2 did not log n3 unreachable"

start 1 "$p1"
expect_nodes "$p2" "^n1 +127.0.0.1:$p1 +up +coordinator
^n2 +127.0.0.1:$p2 +up +member" "a restarted n1 does not rejoin as coordinator"
expect_nodes "$p1" "^n2 +127.0.0.1:$p2 +up
^n3 +127.0.0.1:$p3 +up" "the restarted n1 does not know the others"
verdict "cluster membership: join through seeds, down, unreachable, coordinator takeover, rejoin"
