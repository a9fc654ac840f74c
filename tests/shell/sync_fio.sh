#!/bin/bash
# Writes during a sync: fio writes and verifies (crc32c, O_DIRECT, several
# jobs) through md0/data while a resync, then a recovery, copies the same
# region (held to 500 KiB/s so it lasts).  RAID1's barrier keeps the sync
# from copying stale data over a fresh write: no verify error, neither
# during the sync nor after it, and a check afterwards finds the legs
# identical.
#
# To make the race the barrier prevents likely, the sync copies from slot 1
# to slot 0 while writes reach slot 0 first and slot 1 20 ms later (a fault
# rule delays slot 1's writes): without the barrier a sync step that reads
# slot 1 before a write lands there, and writes slot 0 after it landed
# there, leaves slot 0 stale.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

start_daemon
cd "$T"

# writer PHASE: fio over the first 2 MiB of md0 (4 jobs, 512 KiB each,
# twice, while the sync crosses that region at 500 KiB/s);
# PHASE "write" writes and verifies, "verify" only verifies what the same
# jobs wrote before.
writer() {
	local extra=()
	[ "$1" == verify ] && extra=(--verify_only)
	fio --aux-path="$T" --name=w --filename="$MNT/md0/data" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=psync --numjobs=4 --size=512k --offset_increment=512k \
		--verify=crc32c --verify_fatal=1 --randseed=1234 --group_reporting --loops=2 \
		"${extra[@]}" >"$T/fio-$1.log" 2>&1 || {
		cat "$T/fio-$1.log" >&2
		fail "fio $1 failed"
	}
	! grep -qi "verify.*bad\|crc32c.*bad\|verify failed" "$T/fio-$1.log" || fail "fio $1: verify error"
}

# during WHAT DEV SLOW: run the writer while the sync (writing to DEV) runs,
# then let it finish and lift the delay on SLOW.
during() {
	local t0 w0 w1
	read -r done total < <(wait_started md0)
	w0=$(io_writes md0 "$2")
	t0=$SECONDS
	writer write
	w1=$(io_writes md0 "$2")
	v=$(attr md0/md/sync_completed)
	log "fio wrote and verified for $((SECONDS - t0)) s while the $1 went on ($(((w1 - w0) / 2)) KiB written to $2, sync_completed $v)"
	[ "$v" != none ] || fail "the $1 ended before fio did"
	put "md0/md/dev-$3/fault" clear
	put md0/md/sync_speed_max system
	wait_idle md0
	writer verify
	check_clean md0 "after fio during the $1"
}

log "resync (bitmap, every bit set by create)"
"$MDFUSE" create -l1 -n2 --image-size=64M a.img b.img >/dev/null 2>&1 || fail create
new_array md0 "$T/a.img" "$T/b.img"
put md0/md/array_state read-auto
# The resync reads the first leg that is not write-mostly: b.img.
put md0/md/dev-a.img/state writemostly
put md0/md/dev-b.img/fault "delay 20 write"
put md0/md/sync_speed_max 500
put md0/md/sync_speed_min 500
put md0/md/array_state active
during resync a.img b.img
expect_eq "$(attr md0/md/last_sync_action)" check "last action"
put md0/md/array_state clear
legs_identical a.img b.img || fail "legs differ after the resync"

log "recovery onto a blank image (no bitmap)"
"$MDFUSE" create -l1 -n2 --bitmap=none --assume-clean --image-size=64M c.img d.img >/dev/null 2>&1 || fail create
new_array md0 "$T/c.img" "$T/d.img"
put md0/md/array_state active
dd if=/dev/urandom of="$MNT/md0/data" bs=1M count=16 oflag=direct status=none
# e.img takes slot 0 and is rebuilt from d.img.
put md0/md/dev-c.img/state faulty
put md0/md/dev-c.img/state remove
put md0/md/dev-d.img/fault "delay 20 write"
truncate -s 64M e.img
put md0/md/sync_speed_max 500
put md0/md/sync_speed_min 500
put md0/md/new_dev "$T/e.img"
during recovery e.img d.img
expect_eq "$(attr md0/md/dev-e.img/state)" in_sync "e.img after recovery"
put md0/md/array_state clear
legs_identical d.img e.img || fail "legs differ after the recovery"
