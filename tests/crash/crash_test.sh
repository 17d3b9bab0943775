#!/usr/bin/env bash
# Crash test of the wordcount demo: kill -9 it again and again while it runs, restart it with
# the same --data-dir and the same arguments each time, and expect the final JSONL output to
# equal that of a run that was never killed (exactly-once recovery of the keyed state and of
# the file sink).
#
# Usage: crash_test.sh WORDCOUNT_BIN [LINES] [KILLS]
#   LINES  input lines to generate (default 200000: a clean run takes a few seconds)
#   KILLS  kill -9 that must land on a running process (default 12)
# Environment:
#   CRASH_SEED=N      seed of $RANDOM for the kill delays (default: random, printed)
#   CRASH_NO_KILL=1   self-check of the harness: the crash run is done without any kill and
#                     must compare equal to the reference
#   CRASH_KEEP=1      keep the work directory (its path is printed) instead of removing it
#   CRASH_RUN_TIMEOUT seconds a run to completion may take (default 80)
#   CRASH_DURABILITY  --state.durability of every run (default process)
#   CRASH_COMMIT_INTERVAL_MS  --state.commit-interval-ms of every run (default: the option's)
#
# Needs only bash and coreutils/awk/grep/sort.
set -u
export LC_ALL=C

bin=${1:?usage: crash_test.sh WORDCOUNT_BIN [LINES] [KILLS]}
lines=${2:-200000}
kills_wanted=${3:-12}
run_timeout=${CRASH_RUN_TIMEOUT:-80}
no_kill=${CRASH_NO_KILL:-0}
seed=${CRASH_SEED:-$(( $(date +%s%N) % 32768 ))}
RANDOM=$seed

[ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/eddy-crash.XXXXXX") || exit 2
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  if [ "${CRASH_KEEP:-0}" = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM HUP

# Arguments of every run (reference, killed attempts and the final one).
common_args=(--job.partitions 16 --split-parallelism 2
             --state.durability "${CRASH_DURABILITY:-process}")
if [ -n "${CRASH_COMMIT_INTERVAL_MS:-}" ]; then
  common_args+=(--state.commit-interval-ms "$CRASH_COMMIT_INTERVAL_MS")
fi
crash_args=(--state.compact-every 3)

now_ms() { local us=${EPOCHREALTIME/./}; echo $(( us / 1000 )); }

fail() {
  echo "FAIL: $*"
  exit 1
}

# Prints the last lines of a run's logs, for a failure message.
show_logs() {
  local prefix=$1
  echo "--- stdout of $(basename "$prefix") (last 10 lines)"
  tail -n 10 "$prefix.out" 2>/dev/null
  echo "--- stderr of $(basename "$prefix") (last 20 lines)"
  tail -n 20 "$prefix.err" 2>/dev/null
  echo "---"
}

# Runs wordcount to completion: run_to_end DATA_DIR OUTPUT LOG_PREFIX [EXTRA ARGS...]
# It runs in the background (so that a signal to this script is handled at once and the
# cleanup finds it in $pid) and is killed after $run_timeout seconds.
run_to_end() {
  local data=$1 out=$2 log=$3 rc deadline
  shift 3
  "$bin" "$work/input.jsonl" --data-dir "$data" --output "$out" "${common_args[@]}" "$@" \
    > "$log.out" 2> "$log.err" &
  pid=$!
  deadline=$(( SECONDS + run_timeout ))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  pid=
  if [ "$rc" -eq 137 ]; then
    show_logs "$log"
    fail "$(basename "$log"): wordcount did not finish within ${run_timeout}s (killed)"
  elif [ "$rc" -ne 0 ]; then
    show_logs "$log"
    [ "$rc" -gt 128 ] && rc="$rc (signal $(( rc - 128 )))"
    fail "$(basename "$log"): wordcount exited with status $rc"
  fi
}

# --- 1. deterministic input: a vocabulary of real words (with apostrophes and capitals) and
# a long tail of generated ones, plus malformed lines that go to the dead letters.
cat > "$work/gen.awk" <<'EOF'
BEGIN {
  srand(20240611)
  nv = split("The the of and to a in is it you that he was for on are with as I his they " \
             "be at one have this from or had by hot word but what some we can out other " \
             "were all there when up use your how said an each she which do their time if " \
             "will way about many then them write would like so these her long make thing " \
             "see him two has look more day could go come did number sound no most people " \
             "my over know water than call first who may down side been now find don't " \
             "it's O'Brien Stream STREAM stream", vocab, " ")
  for (i = 1; i <= n; i++) {
    if (i % 1009 == 0) { print "not json"; continue }
    if (i % 4999 == 0) { print "{\"text\": \"unterminated"; continue }
    if (i % 7001 == 0) { print "{\"text\": 42}"; continue }
    nw = 1 + int(rand() * 10)
    s = ""
    for (j = 0; j < nw; j++) {
      if (rand() < 0.5) w = vocab[1 + int(rand() * nv)]
      else w = "w" int(exp(rand() * log(20000)))
      s = s (j ? (rand() < 0.1 ? ", " : " ") : "") w
    }
    printf "{\"text\":\"%s\"}\n", s
  }
}
EOF
awk -v n="$lines" -f "$work/gen.awk" > "$work/input.jsonl" || fail "could not generate the input"
echo "input: $lines lines ($(grep -a -c -v '^{"text":"' "$work/input.jsonl") malformed), kill seed $seed"

# --- 2. reference: one run, never killed, fresh data dir.
t0=$(now_ms)
run_to_end "$work/ref-data" "$work/ref.jsonl" "$work/ref"
ref_ms=$(( $(now_ms) - t0 ))
ref_lines=$(wc -l < "$work/ref.jsonl")
[ "$ref_lines" -gt 0 ] || fail "the reference run wrote no output"
# The comparison of final counts parses this format; a change of it must not go unnoticed.
odd=$(grep -a -c -v '^{"count":[0-9][0-9]*,"word":"[^"]*"}$' "$work/ref.jsonl")
[ "$odd" -eq 0 ] || fail "$odd reference output lines are not {\"count\":N,\"word\":\"W\"}, e.g." \
  "$(grep -a -v -m 1 '^{"count":[0-9][0-9]*,"word":"[^"]*"}$' "$work/ref.jsonl" | cut -c 1-200)"
echo "reference: $ref_lines output lines in ${ref_ms} ms"

# --- 3. crash run: kill -9 at random moments, restart with the same data dir and arguments.
# A quarter of the kills come a fixed lo..early ms after the start, during start-up and
# recovery. The others wait until the attempt has written new output (so that every such
# attempt makes progress however long the start-up takes) and then 0..hi ms more, to land
# anywhere in the processing and commits. hi is derived from the reference time so that the
# attempts together cover about half of the job; when an attempt finishes on its own before
# enough kills landed, the crash run starts over with fresh dirs and halved delays.
lo=20
early=120
hi=$(( 2 * ref_ms * 6 / 10 / kills_wanted ))
[ "$hi" -gt 600 ] && hi=600
[ "$hi" -lt 60 ] && hi=60
# How long a progress kill waits for new output at most before it kills anyway.
grow_wait_ms=$(( ref_ms > 2000 ? ref_ms : 2000 ))
max_tries=4
kills=0
attempts=0
finished=0
try=0
crash_data=
crash_out=
while :; do
  try=$(( try + 1 ))
  crash_data="$work/crash-data-$try"
  crash_out="$work/crash-$try.jsonl"
  kills=0
  attempts=0
  finished=0
  points=
  sizes=
  if [ "$no_kill" = 1 ]; then
    echo "crash run without kills (CRASH_NO_KILL=1: harness self-check)"
    break
  fi
  echo "crash run $try: $kills_wanted kills wanted; early kills at ${lo}..${early} ms, the others" \
       "0..${hi} ms after new output appeared"
  t0=$(now_ms)
  while [ "$kills" -lt "$kills_wanted" ]; do
    attempts=$(( attempts + 1 ))
    log="$work/crash-$try-attempt-$attempts"
    size0=$(stat -c %s "$crash_out" 2>/dev/null || echo 0)
    start=$(now_ms)
    "$bin" "$work/input.jsonl" --data-dir "$crash_data" --output "$crash_out" \
      "${common_args[@]}" "${crash_args[@]}" > "$log.out" 2> "$log.err" &
    pid=$!
    if [ $(( RANDOM % 4 )) -eq 0 ]; then
      kind='*'
      delay=$(( lo + RANDOM % ((early < hi ? early : hi) - lo + 1) ))
    else
      kind=
      delay=$(( RANDOM % (hi + 1) ))
      while kill -0 "$pid" 2>/dev/null &&
            [ "$(stat -c %s "$crash_out" 2>/dev/null || echo 0)" -le "$size0" ] &&
            [ $(( $(now_ms) - start )) -lt "$grow_wait_ms" ]; do
        sleep 0.01
      done
    fi
    sleep "$(( delay / 1000 )).$(printf '%03d' $(( delay % 1000 )))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    pid=
    at=$(( $(now_ms) - start ))
    size=$(stat -c %s "$crash_out" 2>/dev/null || echo 0)
    if [ "$rc" -eq 137 ]; then
      # Killed by our SIGKILL: the process was still running when it arrived.
      kills=$(( kills + 1 ))
      points="$points $at$kind"
      sizes="$sizes $(( size / 1024 ))"
    elif [ "$rc" -eq 0 ]; then
      finished=1
      echo "  attempt $attempts finished on its own before the kill at $at ms" \
           "(output $size bytes, $kills kills so far)"
      break
    else
      show_logs "$log"
      [ "$rc" -gt 128 ] && rc="$rc (signal $(( rc - 128 )))"
      fail "crash run $try, attempt $attempts: wordcount exited with status $rc on its own" \
           "(not killed; after $kills kills) - recovery failed?"
    fi
  done
  if [ "$finished" = 0 ]; then
    echo "  $kills kills in $attempts attempts, $(( $(now_ms) - t0 )) ms"
    echo "  killed at (ms after start, *: early kill):$points"
    echo "  output size after each kill (KiB):$sizes"
    break
  fi
  if [ "$try" -ge "$max_tries" ]; then
    fail "the job finished before $kills_wanted kills landed in $max_tries tries" \
         "(last hi ${hi} ms, reference ${ref_ms} ms): use a larger LINES"
  fi
  hi=$(( hi / 2 ))
  [ "$hi" -lt 60 ] && hi=60
  echo "  starting over with fresh dirs and shorter delays"
done

# The last run goes to completion with the same data dir and arguments. A copy of the output
# as the kills left it shows afterwards how much of it the final run kept (resume check).
if [ "$no_kill" != 1 ]; then
  if [ -f "$crash_out" ]; then
    cp "$crash_out" "$work/before-final.jsonl" || fail "could not copy $crash_out"
  else
    : > "$work/before-final.jsonl"
  fi
fi
t0=$(now_ms)
run_to_end "$crash_data" "$crash_out" "$work/crash-final" "${crash_args[@]}"
echo "final run to completion: $(( $(now_ms) - t0 )) ms"

# --- 4. compare with the reference.
verdict=0

# Bytes at the start that two files have in common.
common_prefix() {
  local a=$1 b=$2 msg
  msg=$(cmp "$a" "$b" 2>&1)
  case $msg in
    "") wc -c < "$a" ;;                                  # identical
    *" differ: "*) msg=${msg##* differ: }; msg=${msg#* }; echo $(( ${msg%%,*} - 1 )) ;;
    *"EOF on "*" after "*) msg=${msg##* after }; msg=${msg#* }; echo "${msg%%,*}" ;;
    *) echo 0 ;;                                         # an empty file or an error
  esac
}

# Resume check: exactly-once recovery truncates the output to its last committed length and
# appends to it, so the final output starts with what the killed runs committed. A job that
# starts over from scratch on every restart rewrites the file instead (in another order: two
# fresh runs agree on at most a few batches at the start) - and would pass the comparison
# below, since its final run is simply a complete run.
ref_bytes=$(wc -c < "$work/ref.jsonl")
if [ "$no_kill" != 1 ]; then
  before=$(wc -c < "$work/before-final.jsonl")
  kept=$(common_prefix "$work/before-final.jsonl" "$crash_out")
  echo "resume: the final run kept $kept of the $before bytes the killed runs left" \
       "($(( kept * 100 / ref_bytes ))% of the $ref_bytes bytes of the complete output)"
  # 0.5% of the output (~150 KB by default) is far more than two fresh runs agree on by chance
  # (their first batch at most, ~30 KB).
  if [ $(( kept * 200 )) -lt "$ref_bytes" ]; then
    echo "NO RESUME: less than 0.5% of the output survived $kills kills and restarts: the job" \
         "starts over instead of resuming from its last commit (or commits too rarely to make" \
         "progress between kills)"
    verdict=1
  fi
fi

sort "$work/ref.jsonl" > "$work/ref.sorted" || fail "sort failed"
sort "$crash_out" > "$work/crash.sorted" || fail "sort failed"
crash_lines=$(wc -l < "$crash_out")

# Dead letters are not part of the exactly-once output; shown for information only.
dl_ref=$(cat "$work/ref-data/deadletters.jsonl" 2>/dev/null | wc -l)
dl_crash=$(cat "$crash_data/deadletters.jsonl" 2>/dev/null | wc -l)
echo "dead letters (informational): reference $dl_ref, crash run $dl_crash"

# Final count of every word: the largest count seen in an output. Prints "word count" lines.
final_state() {
  awk '{
    w = $0; c = $0
    if (!sub(/.*"word":"/, "", w) || !sub(/".*/, "", w)) next
    if (!sub(/.*"count":/, "", c)) next
    sub(/[^0-9].*/, "", c)
    if (!(w in max) || c + 0 > max[w]) max[w] = c + 0
  } END { for (w in max) print w, max[w] }' "$1" | sort
}

if cmp -s "$work/ref.sorted" "$work/crash.sorted"; then
  if [ "$verdict" -ne 0 ]; then
    fail "the output after $kills kill -9 and restarts equals the never-killed run's" \
         "($crash_lines lines), but the job did not resume: it was recomputed from scratch"
  fi
  echo "crash test passed: $kills kills, $crash_lines output lines identical"
  exit 0
fi

echo "MISMATCH: crash run output ($crash_lines lines) != reference output ($ref_lines lines)" \
     "after $kills kills"
missing=$(comm -23 "$work/ref.sorted" "$work/crash.sorted" | wc -l)
extra=$(comm -13 "$work/ref.sorted" "$work/crash.sorted" | wc -l)
echo "  lines only in the reference (lost):           $missing"
echo "  lines only in the crash run (duplicated/bad): $extra"
dups=$(uniq -d "$work/crash.sorted" | wc -l)
echo "  distinct lines repeated in the crash run:     $dups"
bad=$(grep -a -c -v '^{"count":[0-9][0-9]*,"word":"[^"]*"}$' "$crash_out")
echo "  malformed (e.g. torn) lines in the crash run: $bad"
if [ "$bad" -gt 0 ]; then
  grep -a -n -v '^{"count":[0-9][0-9]*,"word":"[^"]*"}$' "$crash_out" | head -n 5 |
    cut -c 1-200 | tr -c '[:print:]\n' '?' | sed 's/^/    /'
fi
echo "  first differences (comm -3; -: only in the reference, +: only in the crash run):"
comm -3 "$work/ref.sorted" "$work/crash.sorted" | head -n 20 | cut -c 1-200 |
  tr -c '\t[:print:]\n' '?' | sed 's/^\t/    + /; t; s/^/    - /'

final_state "$work/ref.jsonl" > "$work/ref.state"
final_state "$crash_out" > "$work/crash.state"
awk '
  FNR == NR { ref[$1] = $2; next }
  { seen[$1] = 1
    if (!($1 in ref)) { extra++; if (shown++ < 10) ex = ex "\n    " $1 ": crash " $2 ", reference none" }
    else if (ref[$1] != $2) {
      diff++; if ($2 > ref[$1]) high++; else low++
      if (shown++ < 10) ex = ex "\n    " $1 ": crash " $2 ", reference " ref[$1]
    } }
  END {
    for (w in ref) { total++; if (!(w in seen)) { missing++; if (shown++ < 10) ex = ex "\n    " w ": crash none, reference " ref[w] } }
    printf "  final counts: %d of %d words differ (%d counted too high, %d too low, %d missing, %d unknown)%s\n",
           diff + missing + extra, total, high, low, missing, extra, ex
  }' "$work/ref.state" "$work/crash.state"
fail "the output after $kills kill -9 and restarts differs from the never-killed run"
