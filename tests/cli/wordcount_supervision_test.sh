#!/usr/bin/env bash
# Supervision seen from the command line: the wordcount demo with a poison word
# (--fail-on), its dead letter listed by `eddy deadletters`, re-processed by a fixed run with
# --supervision.replay-dead-letters, and the policy flags' errors and exit codes.
#
# Usage: wordcount_supervision_test.sh WORDCOUNT_BIN EDDY_BIN SAMPLE_JSONL
set -u
export LC_ALL=C

wordcount=${1:?usage: wordcount_supervision_test.sh WORDCOUNT_BIN EDDY_BIN SAMPLE_JSONL}
eddy=${2:?usage: wordcount_supervision_test.sh WORDCOUNT_BIN EDDY_BIN SAMPLE_JSONL}
sample=${3:?usage: wordcount_supervision_test.sh WORDCOUNT_BIN EDDY_BIN SAMPLE_JSONL}
source "$(dirname "$0")/checks.sh"

run() {
  run_as "$(basename "$1")" "$@"
}

# "windows" occurs once in the sample: one poison record.
fast=(--supervision.backoff-ms 5 --data-dir "$work/data")

run "$wordcount" "$sample" "${fast[@]}" --fail-on windows --top 400
[ "$rc" -eq 0 ] || fail "a poison record must not fail the job"
grep -q '^3 restarts; 1 records whose processing failed went to the dead-letter journal' \
  "$work/out" || fail "the summary does not report 3 restarts and 1 dead letter"
grep -Eq '^ +windows ' "$work/out" && fail "the poison word was counted"
grep "count/[0-9]* key 'windows' record" "$work/err" | grep -q 'failed 3 times' ||
  fail "no log line names the poison record and its attempts"

run "$eddy" deadletters --data-dir "$work/data" --json
[ "$rc" -eq 0 ] || fail "eddy deadletters failed"
[ "$(wc -l < "$work/out")" -eq 1 ] || fail "expected exactly one dead letter"
for field in '"key":"windows"' '"attempts":3' '"op":"count"' '"job":"wordcount"' \
             "\"error\":\"--fail-on: cannot count 'windows'\"" '"replayed":false'; do
  grep -qF "$field" "$work/out" || fail "the dead letter lacks $field"
done

# The fixed program re-processes it: "windows" is counted once, and only once.
run "$wordcount" "$sample" "${fast[@]}" --supervision.replay-dead-letters --top 400
[ "$rc" -eq 0 ] || fail "the replaying run failed"
grep -Eq '^ +windows +1$' "$work/out" || fail "the replayed word was not counted once"
grep -q 're-processed 1 dead letters' "$work/err" || fail "no log line of the replay"
run "$eddy" deadletters --data-dir "$work/data"
grep -q '^1 dead letter (0 pending)$' "$work/out" ||
  fail "the replayed dead letter is still pending"
run "$wordcount" "$sample" "${fast[@]}" --supervision.replay-dead-letters --top 400
grep -Eq '^ +windows ' "$work/out" && fail "a dead letter was replayed twice"

# escalate: the first failure stops the job, exit status 1, the error names the partition.
run "$wordcount" "$sample" --data-dir "$work/data2" --fail-on windows \
  --supervision.policy count=escalate
[ "$rc" -eq 1 ] || fail "escalate: expected exit status 1"
grep -q "wordcount: error: user_code_failed: 'count/[0-9]*' failed: --fail-on: cannot count" \
  "$work/err" || fail "escalate: the error does not name the partition and the cause"

# A policy for a node the job does not have, or an unknown policy: exit 2, one line.
run "$wordcount" "$sample" --data-dir "$work/data3" --supervision.policy nosuch=stop
[ "$rc" -eq 2 ] || fail "unknown node in --supervision.policy: expected exit status 2"
grep -q "names node 'nosuch'" "$work/err" || fail "the error does not name the node"
run "$wordcount" "$sample" --data-dir "$work/data3" --supervision.policy count=retry
[ "$rc" -eq 2 ] || fail "unknown policy: expected exit status 2"
[ "$(wc -l < "$work/err")" -eq 1 ] || fail "a usage error is one line"

verdict "poison word dead-lettered, listed, replayed once; policy errors exit 1 and 2"
