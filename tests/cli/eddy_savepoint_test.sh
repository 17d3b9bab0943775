#!/usr/bin/env bash
# End-to-end test of `eddy savepoint list|info|verify|delete` on savepoints that seed_savepoint
# writes from real journals: usage errors, the listing (complete and partial), the manifest
# shown as text and JSON, a verify that passes and one that names each damaged file, and a
# delete that removes a savepoint but refuses a directory that is not one.
#
# Usage: eddy_savepoint_test.sh EDDY_BIN SEED_SAVEPOINT_BIN
set -u
export LC_ALL=C

eddy=${1:?usage: eddy_savepoint_test.sh EDDY_BIN SEED_SAVEPOINT_BIN}
seed=${2:?usage: eddy_savepoint_test.sh EDDY_BIN SEED_SAVEPOINT_BIN}
source "$(dirname "$0")/checks.sh"

run() {
  run_as eddy "$eddy" "$@"
}

# --- usage
expect_usage_error "missing subcommand" savepoint
expect_usage_error "unknown subcommand 'take'" savepoint take
expect_usage_error "unknown option '--bogus'" savepoint list --bogus
expect_usage_error "verify takes one savepoint" savepoint verify
expect_usage_error "info takes one savepoint" savepoint info a b
expect_usage_error "--json goes with list and info" savepoint verify x --json
run savepoint --help
expect_status 0
expect_out "usage: eddy savepoint list" "verify PATH" "delete PATH" "manifest.json"
run --help
expect_out "savepoint"

# --- nothing there yet
run savepoint list "$work/none"
expect_status 0
expect_out "no savepoints in $work/none"
[ ! -e "$work/none" ] || fail "listing created the directory"

# --- a complete savepoint and a partial one
sp_root="$work/savepoints"
run_as seed_savepoint "$seed" "$sp_root"
expect_status 0
sp="$sp_root/wc-20261207T101500Z-0001"
[ -f "$sp/manifest.json" ] || fail "the seeded savepoint has no manifest"

run savepoint list "$sp_root"
expect_status 0
expect_out "wc-20261207T101500Z-0001  job wc  2026-12-07T10:15:00.000Z  console  P 2  2 files" \
  "wc-20261207T111500Z-0002.partial  partial"
run savepoint list "$sp_root" --json
expect_status 0
expect_out '"status":"complete"' '"id":"wc-20261207T101500Z-0001"' '"status":"partial"'

run savepoint info "$sp"
expect_status 0
expect_out "savepoint  wc-20261207T101500Z-0001" "job        wc" "partitions 2" \
  "count  keyed x2  key std::string  state version 1  n: value<int64_t>" \
  "lines  offset 42  of words.jsonl (420 bytes read)" "out  counts.jsonl at 300 bytes" \
  "count/p0.db" "count/p1.db" "11 keys"
run savepoint info "$sp/manifest.json" --json
expect_status 0
expect_out '"format": 1' '"crc32c": "' '"path": "count/p1.db"'
if command -v python3 > /dev/null; then
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert len(m["files"]) == 2' \
    "$work/out" || fail "info --json is not the manifest"
fi

run savepoint verify "$sp"
expect_status 0
expect_out "savepoint wc-20261207T101500Z-0001 verifies: 2 files"

# --- damage: one byte changed in one file, another file gone
cp "$sp/count/p0.db" "$work/p0.keep"
printf 'X' | dd of="$sp/count/p0.db" bs=1 seek=200 conv=notrunc status=none
mv "$sp/count/p1.db" "$work/p1.keep"
run savepoint verify "$sp"
expect_status 1
expect_err "eddy: error: savepoint wc-20261207T101500Z-0001 does not verify (2 files):" \
  "count/p0.db: CRC32C " "count/p1.db: missing or unreadable"
cp "$work/p0.keep" "$sp/count/p0.db"
mv "$work/p1.keep" "$sp/count/p1.db"
run savepoint verify "$sp"
expect_status 0

# --- a manifest that cannot be read is named
mkdir "$work/broken" && echo '{"format": 1}' > "$work/broken/manifest.json"
run savepoint info "$work/broken"
expect_status 1
expect_err "invalid_savepoint: savepoint manifest $work/broken/manifest.json is not valid: id is missing"
run savepoint verify "$work/nothing-here"
expect_status 1
expect_err "cannot read savepoint manifest $work/nothing-here/manifest.json"

# --- delete: a savepoint goes; a directory that is not one stays
mkdir -p "$work/mine" && echo keep > "$work/mine/notes.txt"
run savepoint delete "$work/mine"
expect_status 1
expect_err "is not a savepoint" "nothing deleted"
[ -f "$work/mine/notes.txt" ] || fail "delete removed a directory that is not a savepoint"
run savepoint delete "$sp"
expect_status 0
expect_out "deleted $sp"
[ ! -e "$sp" ] || fail "the savepoint is still there"
run savepoint list "$sp_root"
expect_status 0
expect_out "wc-20261207T111500Z-0002.partial  partial"
grep -qF "wc-20261207T101500Z-0001" "$work/out" && fail "the deleted savepoint is still listed"

verdict "eddy savepoint"
