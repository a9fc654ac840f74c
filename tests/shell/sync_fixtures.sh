#!/bin/bash
# Every fixture that needs a sync finishes it and ends as real md ended:
# the interrupted resync and the crashed array resync after `active`; the
# stale member catches up by bitmap once re-added; a spare, and a blank
# image for a missing slot, recover.  Each then has the md0 sha256 real md
# wrote, and a check finds no mismatch.  A bitmap-guided catch-up copies
# only the chunks written while the member was away.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

start_daemon

# finish FIXTURE: wait for the sync, then compare with the fixture.
finish() {
	wait_idle md0
	expect_eq "$(attr md0/md/degraded)" 0 "$1: degraded"
	expect_eq "$(attr md0/md/resync_start)" none "$1: resync_start"
	expect_eq "$(md_sha md0)" "$(create_sha "$1")" "$1: md0 sha256"
	check_clean md0 "$1"
}

for fx in raid1-interrupted-resync raid1-crash-bitmap; do
	log "$fx: resync after assembly"
	unpack "$fx" "$T/$fx"
	# mdstat lists members in reverse bind order; mdadm bound vdb first.
	new_array md0 "$T/$fx/vdb" "$T/$fx/vda"
	put md0/md/array_state read-auto
	expect_eq "$(attr md0/md/resync_start)" "$(summary "$fx" assembled_resync_start)" "$fx: resync_start"
	expect_eq "$(mdstat_line md0)" "$(summary "$fx" assembled_mdstat)" "$fx: mdstat"
	# With a bitmap md resyncs from 0, skipping clean chunks: hold the
	# resync back to see where it starts.
	put md0/md/sync_speed_max 1000
	put md0/md/array_state active
	wait_started md0 >/dev/null
	# Past the moment it reads "0 / TOTAL" whatever the start (see
	# wait_resumed), before the first checkpoint.
	sleep 0.3
	expect_eq "$(attr md0/md/sync_completed)" "0 / 30720" "$fx: resync start"
	expect_eq "$(attr md0/md/sync_action)" resync "$fx: sync_action"
	put md0/md/sync_speed_max system
	finish "$fx"
	expect_eq "$(attr md0/md/last_sync_action)" check "$fx"
	grep -q "md: resync of RAID array md0" "$MNT/log" || fail "$fx: no resync logged"
	grep -q "md: md0: resync done." "$MNT/log" || fail "$fx: resync not done"
	put md0/md/array_state clear
done

fx=raid1-stale-member
log "$fx: the stale member catches up by bitmap"
unpack "$fx" "$T/$fx"
new_array md0 "$T/$fx/vda"
put md0/md/array_state active
expect_eq "$(attr md0/md/degraded)" 1 "$fx: degraded before re-add"
put md0/md/new_dev "$T/$fx/vdb"
finish "$fx"
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "$fx: vdb state"
expect_eq "$(attr md0/md/dev-vdb/slot)" 1 "$fx: vdb slot"
# One 64 MiB bitmap chunk covers the 15 MiB array: all of it is copied.
w=$(io_writes md0 vdb)
log "$fx: $((w * 512)) bytes written to vdb"
[ "$w" -ge 30720 ] && [ "$w" -lt $((30720 + 64)) ] || fail "$fx: $w sectors written to vdb"
put md0/md/array_state clear
legs_identical "$T/$fx/vda" "$T/$fx/vdb" || fail "$fx: legs differ"

fx=raid1-spare
log "$fx: a failed leg's slot recovers onto the spare"
unpack "$fx" "$T/$fx"
new_array md0 "$T/$fx/vda" "$T/$fx/vdb" "$T/$fx/vdc"
put md0/md/array_state active
expect_eq "$(attr md0/md/dev-vdc/state)" spare "$fx: vdc before"
put md0/md/dev-vda/state faulty
finish "$fx"
expect_eq "$(attr md0/md/dev-vdc/state)" in_sync "$fx: vdc state"
expect_eq "$(attr md0/md/dev-vdc/slot)" 0 "$fx: vdc slot"
expect_eq "$(attr md0/md/dev-vda/state)" faulty "$fx: vda state"
grep -q "md: recovery of RAID array md0" "$MNT/log" || fail "$fx: no recovery logged"
w=$(io_writes md0 vdc)
[ "$w" -ge 30720 ] || fail "$fx: only $w sectors written to vdc"
put md0/md/dev-vda/state remove
put md0/md/array_state clear
legs_identical "$T/$fx/vdb" "$T/$fx/vdc" || fail "$fx: legs differ"

fx=raid1-degraded-missing
log "$fx: a blank image fills the missing slot"
unpack "$fx" "$T/$fx"
truncate -s 16M "$T/$fx/vdb"
new_array md0 "$T/$fx/vda"
put md0/md/array_state active
put md0/md/new_dev "$T/$fx/vdb"
finish "$fx"
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "$fx: vdb state"
put md0/md/array_state clear
legs_identical "$T/$fx/vda" "$T/$fx/vdb" || fail "$fx: legs differ"

log "bitmap-guided catch-up copies only the chunks written meanwhile"
cd "$T"
"$MDFUSE" create -l1 -n2 --image-size=256M --bitmap-chunk=1M --assume-clean a.img b.img >/dev/null 2>&1 ||
	fail "create"
new_array md0 "$T/a.img" "$T/b.img"
put md0/md/array_state active
# mdadm sets every bit at create; md loads them as clean (not NEEDED) on
# an array in sync, so they do not count for the catch-up.
put md0/md/dev-b.img/state faulty
put md0/md/dev-b.img/state remove
# 1 MiB chunks (2048 sectors): chunks 3, 50, 51 (one write across the
# boundary) and 200.
dd if=/dev/urandom of="$MNT/md0/data" bs=64K count=2 seek=$((3 * 16 + 4)) oflag=direct conv=notrunc status=none
dd if=/dev/urandom of="$MNT/md0/data" bs=64K count=2 seek=$((51 * 16 - 1)) oflag=direct conv=notrunc status=none
dd if=/dev/urandom of="$MNT/md0/data" bs=4K count=1 seek=$((200 * 256 + 7)) oflag=direct conv=notrunc status=none
put md0/md/new_dev "$T/b.img"
wait_idle md0
expect_eq "$(attr md0/md/dev-b.img/state)" in_sync "b.img state"
w=$(io_writes md0 b.img)
log "catch-up: $((w * 512)) bytes written to b.img for 4 dirty 1 MiB chunks"
# 4 chunks of 2048 sectors, plus metadata (superblocks, bitmap pages).
[ "$w" -ge $((4 * 2048)) ] && [ "$w" -le $((4 * 2048 + 64)) ] || fail "catch-up wrote $w sectors"
check_clean md0 "bitmap catch-up"
put md0/md/array_state clear
legs_identical "$T/a.img" "$T/b.img" || fail "legs differ after the catch-up"
