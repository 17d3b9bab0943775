# Sourced by the crash tests. Needs $bin (the program), $work (a scratch dir) and a `fail`
# function from the test.
#
# killed_run NAME ARGS...: runs "$bin" ARGS --output $work/NAME.crash.jsonl --data-dir
# $work/NAME.crash, kills it with -9 three times while it runs (after 0.5, 0.6 and 0.7 s;
# with kill_late=1 after a random 1.0-2.9 s each, for runs that commit once a second; the
# restarts add "${restart_args[@]}", e.g. --resume, and reuse the data dir), then lets the
# fourth run finish; the kills that hit a running job end up in $kills.
restart_args=()
kill_late=0
killed_run() {
  local name=$1 attempt pid more=()
  shift
  kills=0
  for attempt in 1 2 3 4 5 6; do
    "$bin" "$@" "${more[@]}" --output "$work/$name.crash.jsonl" --data-dir "$work/$name.crash" \
      > /dev/null 2>> "$work/$name.crash.err" &
    pid=$!
    more=("${restart_args[@]}")
    if [ "$kills" -lt 3 ]; then
      if [ "$kill_late" = 1 ]; then
        sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
      else
        sleep 0.$((4 + attempt))
      fi
      if kill -9 "$pid" 2> /dev/null; then
        kills=$((kills + 1))
      fi
      wait "$pid" 2> /dev/null
    else
      wait "$pid" || fail "$name: the last run exited with $?"
      break
    fi
  done
  [ "$kills" -eq 3 ] || fail "$name: only $kills kills hit a running job"
}
