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

# verdict PASS_MESSAGE: exits 1 if a check failed, else prints the message.
verdict() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "PASS: $*"
}
