#!/usr/bin/env bash
# Partitions move between the nodes of a running 3-node cluster, and a 4th node that joins
# gets its share, while the job keeps processing; the result is exactly a single node's.
# The wordcount source is paced (--runtime.source-rate) so that the moves happen under
# load. From the console of the leader (n1):
#   1. partition 0 moves to the member that is neither its primary nor its standby: its
#      journal is copied there while it runs (warm copy), then the job switches;
#   2. it moves back to where it came from (now its standby: a switch only);
#   3. a move to a member that is not up, and one of a partition that does not exist, are
#      refused with a reason;
#   4. n4 starts and joins: the leader rebalances, moving partitions to n4 with a reason
#      for each (`moves` lists them), until every member runs one;
#   5. n2 leaves gracefully (SIGTERM): it is drained (its partitions and standby copies
#      moved to the others) before it exits, and no partition is lost;
# then the input ends and the leader's output must equal the single-node output line for
# line (sorted), and n4 must have run a partition.
#
# Usage: cluster_move_test.sh WORDCOUNT_BIN EDDY_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: cluster_move_test.sh WORDCOUNT_BIN EDDY_BIN}
eddy=${2:?usage: cluster_move_test.sh WORDCOUNT_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

words "$work/in.jsonl" 11 300 400000 6

read -r p1 p2 p3 p4 < <(free_ports 4)
seeds=127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3
declare -A pid port=([1]=$p1 [2]=$p2 [3]=$p3 [4]=$p4)

# start N: node nN (its data in $work/dN); 400 000 lines at 20 000 per second keep the job
# running for 20 s at least.
start() {
  local n=$1
  "$wordcount" "$work/in.jsonl" --output "$work/out$n.jsonl" --data-dir "$work/d$n" \
    --node.id "n$n" --node.port "${port[$n]}" --node.seeds "$seeds" --node.heartbeat-ms 200 \
    --node.timeout-ms 1000 --job.partitions 4 --runtime.source-rate 20000 \
    > "$work/o$n" 2> "$work/e$n" &
  pid[$n]=$!
}
# exited N WHAT: waits for node nN to exit; its status in $rc, its log shown by a failure.
exited() {
  wait "${pid[$1]}"
  rc=$?
  last_cmd=$2
  cp "$work/e$1" "$work/err"
  : > "$work/out"
}
trap kill_nodes EXIT

single_node_reference "$wordcount" "$work/in.jsonl"

# console COMMAND [FLAGS...]: runs a console command on the leader; its output in $work/out.
console() {
  local cmd=$1
  shift
  run_as eddy "$eddy" console "127.0.0.1:$p1" -c "$cmd" "$@"
}
# owners P: "primary standby" of partition P in the leader's table.
owners() {
  "$eddy" console "127.0.0.1:$p1" -c placement --json 2> /dev/null |
    python3 -c 'import json, sys; r = json.load(sys.stdin)[int(sys.argv[1])]; print(r["primary"], r["standby"])' "$1"
}
# wait_moves WHAT: waits up to 20 s until no move is queued or under way, then checks
# that none failed.
wait_moves() {
  local deadline=$((SECONDS + 20))
  while [ "$SECONDS" -lt "$deadline" ]; do
    console moves --json
    if python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
sys.exit(0 if rows and all(r["phase"] in ("done", "failed", "aborted") for r in rows) else 1)' "$work/out"; then
      grep -q '"failed"' "$work/out" && fail "$1: a move failed"
      return 0
    fi
    sleep 0.1
  done
  fail "$1: the moves did not finish within 20 s"
}

for n in 1 2 3; do start "$n"; done
# The job runs once the leader placed the partitions.
deadline=$((SECONDS + 20))
until grep -q "runs here, on the coordinator n1" "$work/e1" 2> /dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.1
done
sleep 1

# 1. Partition 0 to the third member: a warm copy, then the switch.
read -r primary standby < <(owners 0)
for n in n1 n2 n3; do
  [ "$n" != "$primary" ] && [ "$n" != "$standby" ] && target=$n
done
console "move 0 $target"
[ "$rc" -eq 0 ] || fail "move 0 $target was refused"
wait_moves "move 0 to $target"
read -r now _ < <(owners 0)
[ "$now" = "$target" ] || fail "partition 0 runs on $now after its move to $target"
grep -q "count/0: standby copy current" "$work/e$((${primary#n}))" ||
  fail "partition 0 was not copied to $target while it ran on $primary"
console moves
grep -Eq "^ +1 +0 +$primary +$target +done +[1-9][0-9]* +[1-9]" "$work/out" ||
  fail "moves does not show the bytes copied by move 1"

# 2. And back: $primary is its standby now.
console "move 0 $primary"
wait_moves "move 0 back to $primary"
read -r now _ < <(owners 0)
[ "$now" = "$primary" ] || fail "partition 0 runs on $now after its move back to $primary"

# 3. Moves that cannot be.
console "move 0 n9"
[ "$rc" -ne 0 ] && grep -q "member n9 is not up" "$work/err" ||
  fail "a move to a member that is not up was not refused with the reason"
console "move 7 n2"
[ "$rc" -ne 0 ] && grep -q "no partition 7" "$work/err" ||
  fail "a move of a partition that does not exist was not refused with the reason"
console "rebalance --dry-run"
[ "$rc" -eq 0 ] || fail "rebalance --dry-run failed"

# 4. n4 joins: it gets one partition of the four.
start 4
deadline=$((SECONDS + 20))
until grep -q "member n4 joined: rebalancing" "$work/e1" 2> /dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.1
done
grep -q "member n4 joined: rebalancing with 1 moves" "$work/e1" ||
  fail "the leader did not rebalance when n4 joined"
wait_moves "the rebalance onto n4"
console moves
grep -Eq "n4 +done .*member n4 joined; n[123] has 2 primaries, n4 has 0" "$work/out" ||
  fail "moves does not show the move to n4 with its reason"
running_on_n4=$(for p in 0 1 2 3; do owners "$p"; done | grep -c "^n4 ")
[ "$running_on_n4" -eq 1 ] || fail "n4 runs $running_on_n4 partitions after the rebalance, not 1"

# 5. n2 leaves gracefully (SIGTERM): the leader moves its partitions and standby copies to
# the others first, then n2 exits 0; the job never loses a partition.
kill -TERM "${pid[2]}"
exited 2 "n2 leaving"
[ "$rc" -eq 0 ] || fail "n2 exited with $rc when it left"
grep -q "left the cluster: drained" "$work/e2" || fail "n2 left without being drained"
grep -q "member n2 is drained" "$work/e1" || fail "the leader did not drain n2"
holding_n2=$(for p in 0 1 2 3; do owners "$p"; done | grep -c "n2")
[ "$holding_n2" -eq 0 ] || fail "n2 still holds $holding_n2 partitions or copies after it left"
if grep -q "was lost with its node\|its partitions are given up" "$work/e1"; then
  fail "the job lost partitions when n2 left gracefully"
fi

# The input ends; every node exits once the job completed on the leader.
exited 1 "the leader"
[ "$rc" -eq 0 ] || fail "the leader exited with $rc"
for n in 3 4; do
  wait "${pid[$n]}" || fail "n$n exited with $? after the job completed"
done
grep -q "job wordcount switched to the new placement" "$work/e1" || fail "the job never switched"
sort "$work/out1.jsonl" > "$work/sorted"
if ! cmp -s "$work/sorted" "$work/single.sorted"; then
  diff "$work/sorted" "$work/single.sorted" | head -5 > "$work/out"
  fail "the output after the moves differs from a single node's ($(wc -l < "$work/sorted") updates)"
fi
grep "relocation" "$work/e1" | grep "done in" | sed 's/.*msg="//; s/"$//'
verdict "partitions move between nodes, onto a joining node and off a leaving one under load; output exact"
