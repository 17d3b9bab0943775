#!/usr/bin/env bash
# The coordinator dies and the job goes on: three wordcount nodes read the same generated
# file and write one output file (a path every node reaches, as a shared volume would be).
# n1 coordinates and leads the job; its sink's journal (the committed length of the output
# and what it consumed) has a standby copy on n2, the member that would coordinate next.
# n1 is killed with -9 while the job runs: n2 must take over as coordinator and leader,
# resume the job from the partitions' journals and the sink's copy, and cut the output back
# to what was committed. n1 restarts and joins as a member (the coordinator keeps its
# role) and gets partitions by rebalance; then n3 is killed, and n2 must fail over its
# partitions to the members left. The output must equal a single-node run's, line for line (sorted): no
# update lost, none twice. Prints the time from the kill of n1 to the job running on n2.
#
# Usage: cluster_takeover_test.sh WORDCOUNT_BIN
set -u
export LC_ALL=C

wordcount=${1:?usage: cluster_takeover_test.sh WORDCOUNT_BIN}
source "$(dirname "$0")/checks.sh"

words "$work/in.jsonl" 11 400 200000 8
expected_lines=1600000

read -r p1 p2 p3 < <(free_ports 3)
seeds=127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3
declare -A pid port=([1]=$p1 [2]=$p2 [3]=$p3)

# start N: node nN, its data in $work/dN; 200 000 lines at 20 000 per second keep the job
# running for 10 s at least.
start() {
  local n=$1
  "$wordcount" "$work/in.jsonl" --output "$work/out.jsonl" --data-dir "$work/d$n" \
    --node.id "n$n" --node.port "${port[$n]}" --node.seeds "$seeds" --node.heartbeat-ms 200 \
    --node.timeout-ms 1000 --job.partitions 4 --runtime.source-rate 20000 \
    > "$work/o$n" 2> "$work/e$n" &
  pid[$n]=$!
}
trap kill_nodes EXIT

single_node_reference "$wordcount" "$work/in.jsonl"
[ "$(wc -l < "$work/single.sorted")" -eq "$expected_lines" ] ||
  fail "the single-node run wrote $(wc -l < "$work/single.sorted") updates, not $expected_lines"

for n in 1 2 3; do start "$n"; done
wait_lines "$work/out.jsonl" $((expected_lines / 5))
last_cmd="grep the logs"
grep -q "runs here, on the coordinator n1" "$work/e1" || fail "n1 did not lead the job"
grep -q "standby copy of output/0 in place" "$work/e2" ||
  fail "n2 keeps no standby copy of the sink's journal"
kill -9 "${pid[1]}"
killed_at=$(date +%s.%N)

deadline=$((SECONDS + 30))
until grep -q "taken over by n2" "$work/e2" 2> /dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || { cp "$work/e2" "$work/err"; fail "n2 did not take the job over"; }
  sleep 0.05
done
taken=$(grep -m1 "taken over by n2" "$work/e2" | sed 's/^\([^ ]*\) .*/\1/')
python3 - "$killed_at" "$taken" << 'TIMING'
import sys, datetime
killed = float(sys.argv[1])
t = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print("takeover: n2 leads the job %.0f ms after kill -9 of the coordinator n1" % ((t.timestamp() - killed) * 1000))
TIMING

# n1 comes back: it joins as a member (n2 keeps coordinating and leading) and gets its
# share of the partitions by the leader's rebalance.
start 1
deadline=$((SECONDS + 30))
until grep -q "runs on the coordinator n2" "$work/e1" 2> /dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || { cp "$work/e1" "$work/err"; fail "the restarted n1 does not follow n2"; }
  sleep 0.05
done
until grep -q "member n1 joined: rebalancing" "$work/e2" 2> /dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || { cp "$work/e2" "$work/err"; fail "n2 did not rebalance onto n1"; }
  sleep 0.05
done

# A later failover still works: n3 dies while n2 leads (n1 and n2 are a majority).
wait_lines "$work/out.jsonl" $((expected_lines * 3 / 5))
[ "$(wc -l < "$work/out.jsonl")" -lt "$expected_lines" ] ||
  fail "the job completed before n3 could be killed"
kill -9 "${pid[3]}"
wait "${pid[2]}"
rc=$?
cp "$work/e2" "$work/err"
[ "$rc" -eq 0 ] || fail "n2 exited with $rc"
grep -q "was lost with its node" "$work/e2" ||
  fail "n2 did not see n3's partitions lost"
grep -q "job wordcount restarted" "$work/e2" || fail "the job did not restart after n3 was lost"
wait "${pid[1]}" || fail "the restarted n1 exited with $? after the job completed"
grep -q "runs here" "$work/e1" && fail "the restarted n1 led the job too"

last_cmd="compare out.jsonl with the single-node output"
sort "$work/out.jsonl" > "$work/sorted"
if ! cmp -s "$work/sorted" "$work/single.sorted"; then
  diff "$work/sorted" "$work/single.sorted" | head -5 > "$work/out"
  fail "the output differs from a single node's ($(wc -l < "$work/sorted") updates, $expected_lines expected)"
fi
verdict "the coordinator killed: n2 takes the job over, a later failover works, output exact"
