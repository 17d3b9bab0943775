# Shared by the cli test scripts (sourced, bash): a work directory removed on exit, failure
# reporting that shows the last command's output, and the final verdict.

work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-cli.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
failures=0
last_cmd=
rc=0

# fail MESSAGE: counts a failed check and shows the last command with its output.
fail() {
  echo "FAIL: $*"
  echo "--- command: $last_cmd (exit status $rc)"
  echo "--- stdout"; cat "$work/out"
  echo "--- stderr"; tail -40 "$work/err"
  failures=$((failures + 1))
}

# run_as NAME COMMAND ARGS...: runs COMMAND, keeps its stdout and stderr in $work/out and
# $work/err and its exit status in $rc; failures show it as "NAME ARGS...".
run_as() {
  local name=$1
  shift
  last_cmd="$name ${*:2}"
  "$@" > "$work/out" 2> "$work/err"
  rc=$?
}

# start_node WORDCOUNT ARGS...: runs the wordcount demo on a FIFO (fd 3 writes to it, so
# that the job keeps running until `stop_node`) with --inspect on a free loopback port, and
# sets $node (its pid) and $addr (HOST:PORT of its inspector). Its stdout and stderr are in
# $work/node.out and $work/node.err.
start_node() {
  local bin=$1
  shift
  mkfifo "$work/in"
  exec 3<> "$work/in"
  "$bin" - --inspect --node.port 0 "$@" < "$work/in" > "$work/node.out" 2> "$work/node.err" 3>&- &
  node=$!
  trap 'stop_node; rm -rf "$work"' EXIT
  wait_for_inspector
}

# wait_for_inspector: sets $addr to the inspector a node started with --inspect names in
# $work/node.err, waiting up to 10 s for it.
wait_for_inspector() {
  local port=
  for _ in $(seq 100); do
    port=$(grep -o 'eddy console 127.0.0.1:[0-9]*' "$work/node.err" | grep -o '[0-9]*$')
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "FAIL: the node did not publish its inspector"
    cat "$work/node.err"
    exit 1
  fi
  addr=127.0.0.1:$port
}

# stop_node: closes the node's input (the job drains and the node exits), waiting up to
# 10 s before kill -9.
stop_node() {
  exec 3>&-
  for _ in $(seq 100); do
    kill -0 "$node" 2> /dev/null || break
    sleep 0.1
  done
  kill -9 "$node" 2> /dev/null
  wait "$node" 2> /dev/null
}

# verdict PASS_MESSAGE: exits 1 if a check failed, else prints the message.
verdict() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "PASS: $*"
}

# free_ports N: prints N free loopback ports (a small race with other programs is possible,
# not likely).
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# words FILE SEED VOCABULARY LINES PER_LINE: generated wordcount input (see words.py).
words() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/words.py" "$@"
}

# single_node_reference WORDCOUNT INPUT: the single-node run every cluster run is compared
# with; its output, sorted, in $work/single.sorted.
single_node_reference() {
  run_as single "$1" "$2" --output "$work/single.jsonl" --data-dir "$work/ds" --job.partitions 4
  [ "$rc" -eq 0 ] || fail "the single-node run failed"
  sort "$work/single.jsonl" > "$work/single.sorted"
}

# kill_nodes: kills every process in the associative array `pid` and removes $work (the
# EXIT trap of the cluster tests).
kill_nodes() {
  for p in "${pid[@]}"; do
    kill -9 "$p" 2> /dev/null
  done
  wait 2> /dev/null
  rm -rf "$work"
}

# wait_lines FILE N: waits up to 60 s until FILE has N lines at least.
wait_lines() {
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(cat "$1" 2> /dev/null | wc -l)" -ge "$2" ] && return 0
    sleep 0.05
  done
}

# For scripts of one eddy subcommand, which define run ARGS... (see run_as):
# expect_status N: the last command exited with N.
expect_status() {
  [ "$rc" -eq "$1" ] || fail "exit status $rc, expected $1"
}

# expect_out TEXT...: stdout contains each TEXT (fixed strings).
expect_out() {
  for text in "$@"; do
    grep -qF -- "$text" "$work/out" || fail "stdout lacks '$text'"
  done
}

# expect_err TEXT...: stderr contains each TEXT (fixed strings).
expect_err() {
  for text in "$@"; do
    grep -qF -- "$text" "$work/err" || fail "stderr lacks '$text'"
  done
}

# expect_usage_error WHAT ARGS...: `run ARGS...` is a usage error: status 2, nothing on
# stdout, exactly one line on stderr naming WHAT.
expect_usage_error() {
  local what=$1
  shift
  run "$@"
  expect_status 2
  [ ! -s "$work/out" ] || fail "a usage error printed on stdout"
  [ "$(wc -l < "$work/err")" -eq 1 ] || fail "a usage error must be one line on stderr"
  grep -q '^eddy: error: ' "$work/err" || fail "stderr does not start with 'eddy: error: '"
  grep -qF -- "$what" "$work/err" || fail "stderr does not name '$what'"
}
