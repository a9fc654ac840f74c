#!/bin/bash
# raid1-mismatch: real md overwrote 4 KiB of d1's data at 1 MiB into the
# array.  A check counts 128 (the kernel's unit: the whole 64 KiB step of
# each differing leg) as the kernel did, `mismatches` names the 4 KiB
# (array sector 2048, 8 sectors), and a check changes nothing.  A repair
# copies the first in-sync leg over the others by default; `repair_source`
# chooses which copy wins instead, even the damaged one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

fx=raid1-mismatch
want_sha=$(create_sha $fx)
start_daemon

# assemble: a fresh copy of the fixture, running read-write.
assemble() {
	rm -rf "$T/m"
	unpack $fx "$T/m"
	new_array md0 "$T/m/vdb" "$T/m/vda"
	put md0/md/array_state active
}

# leg_block IMG: a hash of the 4 KiB at 1 MiB into the array on a leg.
leg_block() { dd if="$1" bs=512 skip=$((2048 + 2048)) count=8 status=none | sha256sum | cut -c1-16; }

assemble
good=$(leg_block "$T/m/vda")
bad=$(leg_block "$T/m/vdb")
[ "$good" != "$bad" ] || fail "the fixture's legs do not differ"

log "check finds the damaged 4 KiB and leaves it"
expect_eq "$(attr md0/md/mismatches)" "" "mismatches before any check"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" "$(summary $fx mismatch_cnt)" "mismatch_cnt (kernel: 128)"
expect_eq "$(attr md0/md/mismatches)" "2048 8" "mismatches"
expect_eq "$(attr md0/md/last_sync_action)" check "last_sync_action"
expect_eq "$(leg_block "$T/m/vdb")" "$bad" "vdb after check"
expect_eq "$(attr md0/md/repair_source)" auto "repair_source"

log "repair copies from the first leg: the pattern is back"
put md0/md/sync_action repair
wait_idle md0
expect_eq "$(attr md0/md/last_sync_action)" repair "last_sync_action"
# A repair counts what it fixed, as the kernel's does.
expect_eq "$(attr md0/md/mismatch_cnt)" 128 "mismatch_cnt of the repair"
expect_eq "$(attr md0/md/mismatches)" "2048 8" "mismatches of the repair"
expect_eq "$(md_sha md0)" "$want_sha" "md0 after repair"
check_clean md0 "after repair"
expect_eq "$(attr md0/md/mismatches)" "" "mismatches after a clean check"
expect_eq "$(leg_block "$T/m/vdb")" "$good" "vdb after repair"
grep -q "md: requested-resync of RAID array md0" "$MNT/log" || fail "repair not logged as the kernel does"
put md0/md/array_state clear

log "repair_source names the leg that wins"
assemble
expect_err "No such file or directory" md0/md/repair_source vdz
put md0/md/repair_source vdb
expect_eq "$(attr md0/md/repair_source)" vdb "repair_source"
put md0/md/sync_action repair
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 128 "mismatch_cnt of the repair from vdb"
expect_eq "$(leg_block "$T/m/vda")" "$bad" "vda after repair from vdb"
[ "$(md_sha md0)" != "$want_sha" ] || fail "repair from vdb left the pattern"
check_clean md0 "after repair from vdb"
put md0/md/repair_source auto
expect_eq "$(attr md0/md/repair_source)" auto "repair_source reset"
put md0/md/array_state clear
