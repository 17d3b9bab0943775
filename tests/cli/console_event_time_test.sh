#!/usr/bin/env bash
# The console on event time: event-windows reads readings from a FIFO; after two readings
# of key k1, 70 s apart in event time, the first window has fired (the watermark passed
# it), `timers windows k1` lists the second window's event-time timer with its time and
# tag, `stats` shows the operators' watermark, and a key without timers is an error
# naming the partition that owns it.
#
# Usage: console_event_time_test.sh EVENT_WINDOWS_BIN EDDY_BIN
set -u
export LC_ALL=C
bin=${1:?usage: console_event_time_test.sh EVENT_WINDOWS_BIN EDDY_BIN}
eddy=${2:?usage: console_event_time_test.sh EVENT_WINDOWS_BIN EDDY_BIN}
source "$(dirname "$0")/checks.sh"

read -r port < <(free_ports 1)
mkfifo "$work/in"
exec 3<> "$work/in"
"$bin" - --output "$work/out.jsonl" --data-dir "$work/d" --inspect --node.port "$port" \
  --window tumbling:60000 --bound-ms 5000 < "$work/in" 2> "$work/svc.err" &
pid=$!
trap 'kill -9 "$pid" 2> /dev/null; rm -rf "$work"' EXIT
echo '{"key":"k1","ts":1700000000000,"value":5}' >&3
echo '{"key":"k1","ts":1700000070000,"value":2}' >&3

deadline=$((SECONDS + 20))
until grep -q '"result":5' "$work/out.jsonl" 2> /dev/null || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.1
done
grep -q '"result":5' "$work/out.jsonl" 2> /dev/null ||
  fail "the first window did not fire when the watermark passed it"

run_as timers "$eddy" console "127.0.0.1:$port" -c "timers windows k1"
[ "$rc" -eq 0 ] || fail "timers windows k1 failed"
grep -Eq "^k1 +windows/[0-9]+ +event +1700000099999 +2023-11-14T22:14:59.999Z +window fire 1700000040000 1700000100000$" \
  "$work/out" || fail "timers does not list the pending window's event-time timer"
grep -q "1700000040000 1700000100000" "$work/out" && ! grep -q "1699999980000" "$work/out" ||
  fail "timers lists the fired window's timer"

run_as stats "$eddy" console "127.0.0.1:$port" -c stats --json
python3 - "$work/out" << 'PY' || fail "stats does not show the watermark (highest ts - bound - 1) per operator"
import json, sys
rows = {r["operator"]: r for r in json.load(open(sys.argv[1]))}
assert rows["readings"]["watermark"] == 1700000070000 - 5000 - 1, rows["readings"]
assert rows["windows"]["watermark"] == 1700000070000 - 5000 - 1, rows["windows"]
PY

run_as nokey "$eddy" console "127.0.0.1:$port" -c "timers windows nokey"
[ "$rc" -ne 0 ] && grep -q "no timer of key 'nokey' in 'windows' (windows/[0-9]* owns it)" "$work/err" ||
  fail "timers of a key without timers does not say so"
kill -TERM "$pid"
wait "$pid" || fail "event-windows did not stop cleanly on SIGTERM"
grep -q '"result":2' "$work/out.jsonl" || fail "the last window did not fire at the end of the input"
verdict "the console shows a key's event-time timers and the operators' watermarks"
