#!/usr/bin/env bash
# A node cut off the network (not killed) while a 3-node cluster runs a keyed job: n1 and
# n2 run in this network namespace, n3 in its own (`ip netns`), joined by a veth pair.
# The link goes down while the job runs: n3 stays alive but its connections carry nothing,
# so no down message comes; the leader must give its partitions up once it is unreachable
# and go on with the standbys. Then the link comes back: n3 rejoins and the leader
# rebalances a partition back onto it (a warm copy over its old journal). Whatever n3's old
# partitions still do then must not reach the output: it must equal a single node's, line
# for line (no update lost, none twice). Whether they try to write at all depends on what
# was in their mailboxes at the cut; the script prints how often one was refused (a commit
# whose standby did not answer, or a write fenced by a newer owner epoch; the fence itself
# is tested in tests/unit/state). Needs root and `ip netns`; exits 77 (skipped) without.
#
# Usage: cluster_netcut_test.sh WORDCOUNT_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: cluster_netcut_test.sh WORDCOUNT_BIN}
source "$(dirname "$0")/checks.sh"

ns=eddy$$
host_if=ev$$h
ns_if=ev$$n
subnet=10.213.$(($$ % 250)).
net_down() {
  ip link del "$host_if" 2> /dev/null
  ip netns del "$ns" 2> /dev/null
}
if ! { ip netns add "$ns" && ip link add "$host_if" type veth peer name "$ns_if" &&
  ip link set "$ns_if" netns "$ns" && ip addr add "${subnet}1/24" dev "$host_if" &&
  ip link set "$host_if" up && ip netns exec "$ns" ip addr add "${subnet}2/24" dev "$ns_if" &&
  ip netns exec "$ns" ip link set "$ns_if" up && ip netns exec "$ns" ip link set lo up; } \
  2> "$work/err"; then
  echo "SKIP: cannot make a network namespace here ($(head -1 "$work/err"))"
  net_down
  exit 77
fi

words "$work/in.jsonl" 5 300 300000 6
read -r p1 p2 p3 < <(free_ports 3)
seeds=${subnet}1:$p1,${subnet}1:$p2,${subnet}2:$p3
declare -A pid
cleanup() {
  kill_nodes
  net_down
}
trap cleanup EXIT

# start N HOST PORT [PREFIX...]: node nN listening on HOST:PORT, run by PREFIX (ip netns
# exec ...); 300 000 lines at 20 000 per second keep the job running for 15 s at least.
start() {
  local n=$1 host=$2 port=$3
  shift 3
  "$@" "$wordcount" "$work/in.jsonl" --output "$work/out$n.jsonl" --data-dir "$work/d$n" \
    --node.id "n$n" --node.host "$host" --node.port "$port" --node.seeds "$seeds" \
    --node.heartbeat-ms 200 --node.timeout-ms 1000 --job.partitions 4 \
    --runtime.source-rate 20000 > "$work/o$n" 2> "$work/e$n" &
  pid[$n]=$!
}
# logged N PATTERN [TIMES]: waits up to 20 s until node nN logged PATTERN (TIMES times).
logged() {
  local deadline=$((SECONDS + 20))
  until [ "$(grep -c "$2" "$work/e$1" 2> /dev/null)" -ge "${3:-1}" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

single_node_reference "$wordcount" "$work/in.jsonl"

start 1 "${subnet}1" "$p1"
start 2 "${subnet}1" "$p2"
start 3 "${subnet}2" "$p3" ip netns exec "$ns"
last_cmd="the leader's log"
logged 1 "runs here, on the coordinator n1" || fail "n1 did not lead the job"
wait_lines "$work/out1.jsonl" 300000

ip link set "$host_if" down
logged 1 "member n3 is unreachable: its partitions are given up" ||
  fail "n1 did not give up the partitions of the cut-off n3"
logged 1 "job wordcount restarted" || fail "the job did not restart without n3"
sleep 1
ip link set "$host_if" up
logged 1 "member n3 .* is up" 2 || fail "n3 did not rejoin after the link came back"
logged 1 "member n3 joined: rebalancing with" ||
  fail "the leader did not rebalance onto the rejoined n3"

wait "${pid[1]}"
rc=$?
cp "$work/e1" "$work/err"
[ "$rc" -eq 0 ] || fail "the leader exited with $rc"
sort "$work/out1.jsonl" > "$work/sorted"
if ! cmp -s "$work/sorted" "$work/single.sorted"; then
  diff "$work/sorted" "$work/single.sorted" | head -5 > "$work/out"
  fail "the output after the cut differs from a single node's ($(wc -l < "$work/sorted") updates)"
fi
stale=$(grep -c "fenced\|its standby copy cannot be kept" "$work/e3")
echo "n3's stale partitions refused a write $stale times after the cut"
verdict "a node cut off the network is given up and rejoins; output exact"
