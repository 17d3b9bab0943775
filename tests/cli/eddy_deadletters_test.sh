#!/usr/bin/env bash
# End-to-end test of `eddy deadletters`: usage errors, an empty data directory, and the
# listing (text, --json, filters, --all, --limit) of three known dead letters that
# seed_deadletters writes through dead_letter_store, as a job would.
#
# Usage: eddy_deadletters_test.sh EDDY_BIN SEED_DEADLETTERS_BIN
# Needs only bash and coreutils/grep (jq, when installed, also parses every JSON line).
set -u
export LC_ALL=C

eddy=${1:?usage: eddy_deadletters_test.sh EDDY_BIN SEED_DEADLETTERS_BIN}
seed=${2:?usage: eddy_deadletters_test.sh EDDY_BIN SEED_DEADLETTERS_BIN}
source "$(dirname "$0")/checks.sh"

# run ARGS...: runs eddy with ARGS (see run_as).
run() {
  run_as eddy "$eddy" "$@"
}

# expect_no_out TEXT...: stdout contains none of them.
expect_no_out() {
  for text in "$@"; do
    if grep -qF -- "$text" "$work/out"; then
      fail "stdout has '$text'"
    fi
  done
}

expect_last_line() {
  local last
  last=$(tail -n 1 "$work/out")
  [ "$last" = "$1" ] || fail "last line is '$last', expected '$1'"
}

# --- usage
expect_usage_error "missing command"
expect_usage_error "frobnicate" frobnicate
expect_usage_error "--bogus" --bogus
expect_usage_error "--bogus" deadletters --bogus
expect_usage_error "--limit" deadletters --limit 0
expect_usage_error "--limit" deadletters --limit many
expect_usage_error "stray" deadletters stray
expect_usage_error "--data-dir" deadletters --data-dir

run --help
expect_status 0
expect_out "usage: eddy <command>" "deadletters"
run deadletters --help
expect_status 0
expect_out "usage: eddy deadletters" "--data-dir" "--job" "--operator" "--all" "--json" "--limit"

# --- no journal: nothing to list, and listing creates nothing
mkdir "$work/empty"
run deadletters --data-dir "$work/empty"
expect_status 0
expect_out "no dead letters in $work/empty"
[ -z "$(ls -A "$work/empty")" ] || fail "listing created files in an empty data directory"
run deadletters --data-dir "$work/missing"
expect_status 0
expect_out "no dead letters in $work/missing"
[ ! -e "$work/missing" ] || fail "listing created a missing data directory"
run deadletters --data-dir "$work/empty" --json
expect_status 0
[ ! -s "$work/out" ] || fail "--json printed something that is not a JSON line"

# --- three known dead letters; the second one (clicks/enrich) is replayed
data=$work/data
"$seed" "$data" || { echo "FAIL: seed_deadletters failed"; exit 1; }

run deadletters --data-dir "$data"
expect_status 0
expect_out "#1  2023-11-14T22:13:20.123Z  job clicks  operator count/3  attempts 3  pending" \
  "    key     alice" "    origin  1:42" "    error   division by zero" \
  '    record  {"user":"alice","n":7}' \
  "#3  2023-11-14T22:15:20.500Z  job orders  operator count/1  attempts 5  pending" \
  "    key     o-17" "    origin  unknown" "    error   bad amount" '    record  {"order":"o-17"}'
expect_no_out "#2" "enrich" "bob" "PAYLOAD"
expect_last_line "3 dead letters (2 pending)"

run deadletters --data-dir "$data" --all
expect_status 0
expect_out "#1  " "#3  " \
  "#2  2023-11-14T22:14:20.000Z  job clicks  operator enrich/0  attempts 1  replayed" \
  "    origin  2:7" "    error   'enrich/0' failed (restarted 6 times in 10 s)" '{"user":"bob"}'
expect_no_out "PAYLOAD"
expect_last_line "3 dead letters (2 pending)"

run deadletters --data-dir "$data" --operator enrich
expect_status 0
expect_no_out "#"
expect_last_line "1 dead letter (0 pending)"

run deadletters --data-dir "$data" --operator enrich --all
expect_status 0
expect_out "#2  " '{"user":"bob"}'
expect_no_out "#1" "#3"
expect_last_line "1 dead letter (0 pending)"

run deadletters --data-dir "$data" --job orders
expect_status 0
expect_out "#3  " "o-17"
expect_no_out "#1" "#2" "alice"
expect_last_line "1 dead letter (1 pending)"

run deadletters --data-dir "$data" --operator count --limit 1
expect_status 0
expect_out "#1  " "alice"
expect_no_out "#2" "#3"
expect_last_line "2 dead letters (2 pending), the oldest 1 listed (--limit)"

run deadletters --data-dir "$data" --json
expect_status 0
[ "$(wc -l < "$work/out")" -eq 2 ] || fail "--json: expected 2 lines, one per pending dead letter"
line1=$(sed -n 1p "$work/out")
for field in '"id":1,' '"at_ms":1700000000123,' '"time":"2023-11-14T22:13:20.123Z"' \
  '"job":"clicks"' '"op":"count"' '"partition":3,' '"origin":281474976710698,' '"key":"alice"' \
  '"record":"{\"user\":\"alice\",\"n\":7}"' '"error":"division by zero"' '"attempts":3,' \
  '"replayed":false'; do
  case $line1 in
    *"$field"*) ;;
    *) fail "--json: the first line lacks $field" ;;
  esac
done
case $line1 in
  "{"*"}") ;;
  *) fail "--json: the first line is not one JSON object" ;;
esac
expect_out '"id":3,' '"origin":0,' '"key":"o-17"'
expect_no_out "payload" "PAYLOAD" "dead letters ("
if command -v jq > /dev/null; then
  jq -e -c . "$work/out" > /dev/null || fail "--json: a line is not valid JSON"
fi

run deadletters --data-dir "$data" --json --all --job clicks
expect_status 0
[ "$(wc -l < "$work/out")" -eq 2 ] || fail "--json --all --job clicks: expected 2 lines"
expect_out '"id":2,' '"op":"enrich"' '"replayed":true' '"origin":562949953421319,'

# --- a damaged journal: a clear error (status 1, naming the file), the file left as it is
printf 'this is not a database\n%.0s' $(seq 100) > "$work/garbage"
mkdir "$work/bad" && cp "$work/garbage" "$work/bad/deadletters.db"
run deadletters --data-dir "$work/bad"
expect_status 1
[ "$(wc -l < "$work/err")" -eq 1 ] || fail "the error must be one line on stderr"
grep -qF "eddy: error: corrupt_journal: $work/bad/deadletters.db is not a valid Eddy" "$work/err" \
  || fail "the error does not name the damaged file"
cmp -s "$work/garbage" "$work/bad/deadletters.db" || fail "the damaged file was changed"

verdict "eddy deadletters"
