#!/usr/bin/env bash
# Cluster figures for docs/benchmarks.md, on loopback (all nodes on this machine):
#   1. throughput: wordcount over the same input on one node and on a 3-node cluster,
#      RUNS times each, alternating; words/s as each leader reports it;
#   2. relocation: a 3-node cluster with one partition whose journal holds STATE_LINES x 4
#      distinct keys (about 100 MB with the default), moved to the member that holds no
#      copy of it while the job runs; the time of the move, the bytes copied and the job's
#      pause at the switch, beside the baseline of copying the same journal file with cp.
#
# Usage: cluster_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [STATE_LINES]
# (Release build: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2)
set -u
export LC_ALL=C
wordcount=${1:?usage: cluster_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [STATE_LINES]}
eddy=${2:?usage: cluster_bench.sh WORDCOUNT_BIN EDDY_BIN [RUNS] [STATE_LINES]}
runs=${3:-3}
state_lines=${4:-90000}
work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-bench.XXXXXX") || exit 2
declare -A pid
cleanup() {
  for p in "${pid[@]}"; do kill -9 "$p" 2> /dev/null; done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ports() {
  python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}
# words_per_s FILE: the words/s of a wordcount summary line in FILE.
words_per_s() {
  sed -n 's/.* words in .* s: \([0-9]*\) words\/s.*/\1/p' "$1" | tail -1
}

python3 "$(dirname "$0")/../../tests/cli/words.py" "$work/in.jsonl" 7 400 400000 8

echo "== throughput: 400 000 lines (3.2 M words), 4 partitions, $runs runs each"
for r in $(seq "$runs"); do
  rm -rf "$work/single"
  "$wordcount" "$work/in.jsonl" --output "$work/single.out" --data-dir "$work/single" \
    --job.partitions 4 > "$work/single.log" 2> /dev/null
  single=$(words_per_s "$work/single.log")
  read -r p1 p2 p3 < <(ports)
  seeds=127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3
  rm -rf "$work/c"
  n=0
  for port in $p1 $p2 $p3; do
    n=$((n + 1))
    "$wordcount" "$work/in.jsonl" --output "$work/c$n.out" --data-dir "$work/c/d$n" \
      --node.id "n$n" --node.port "$port" --node.seeds "$seeds" --node.heartbeat-ms 200 \
      --node.timeout-ms 1000 --job.partitions 4 > "$work/c$n.log" 2> /dev/null &
    pid[$n]=$!
  done
  wait "${pid[1]}" "${pid[2]}" "${pid[3]}"
  cluster=$(words_per_s "$work/c1.log")
  python3 -c "import sys; s, c = int(sys.argv[1]), int(sys.argv[2]); print('run %s: single node %d words/s, 3 nodes %d words/s, ratio %.2f' % (sys.argv[3], s, c, c / s))" \
    "$single" "$cluster" "$r"
done

echo "== relocation: one partition holding $((state_lines * 4)) keys"
python3 - "$work/state.jsonl" "$state_lines" << 'PYEOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"text": "%s"}\n' % " ".join("k%030d" % (i * 4 + j) for j in range(4)))
PYEOF
read -r p1 p2 p3 < <(ports)
seeds=127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3
mkfifo "$work/feed"
n=0
for port in $p1 $p2 $p3; do
  n=$((n + 1))
  # The leader reads the FIFO (the job runs until it closes); the others never read input.
  input="$work/state.jsonl"
  stdin=/dev/null
  [ "$n" -eq 1 ] && input=- && stdin="$work/feed"
  "$wordcount" "$input" --output "$work/r$n.out" --data-dir "$work/r/d$n" --node.id "n$n" \
    --node.port "$port" --node.seeds "$seeds" --node.heartbeat-ms 200 --node.timeout-ms 1000 \
    --job.partitions 1 < "$stdin" > "$work/r$n.log" 2> "$work/r$n.err" &
  pid[r$n]=$!
done
exec 3> "$work/feed"
cat "$work/state.jsonl" >&3
# Every key counted once: the state is in place.
until [ "$(cat "$work/r1.out" 2> /dev/null | wc -l)" -ge $((state_lines * 4)) ]; do sleep 0.2; done
placement=$("$eddy" console "127.0.0.1:$p1" -c placement --json)
target=$(python3 -c '
import json, sys
row = json.loads(sys.argv[1])[0]
print([n for n in ("n1", "n2", "n3") if n not in (row["primary"], row["standby"])][0])' "$placement")
primary=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[0]["primary"])' "$placement")
journal=$(ls "$work"/r/d"${primary#n}"/wordcount/count/p0.db)
"$eddy" console "127.0.0.1:$p1" -c "move 0 $target" > /dev/null
until "$eddy" console "127.0.0.1:$p1" -c moves --json | grep -q '"phase":"\(done\|failed\)"'; do
  sleep 0.05
done
"$eddy" console "127.0.0.1:$p1" -c moves
exec 3>&-
wait "${pid[r1]}" "${pid[r2]}" "${pid[r3]}"
start=$(date +%s%N)
cp "$journal" "$work/baseline.db" && sync "$work/baseline.db"
end=$(date +%s%N)
echo "baseline: cp + sync of the $(stat -c %s "$journal")-byte journal file: $(((end - start) / 1000000)) ms"
