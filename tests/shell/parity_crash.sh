#!/bin/bash
# The write hole as md handles it without a journal: a daemon killed
# with -9 in the middle of writes to a raid5 and a raid6 leaves dirty
# superblocks; reassembled, the array says "not clean -- starting
# background reconstruction", resyncs its parity (bitmap guided), checks
# clean, and real md assembles the images with the same data and a clean
# check.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

crash_and_resync() {
	local fx=$1 imgs=$T/$1 writer want
	unpack "$fx" "$imgs"
	start_daemon --threads 4
	new_array md0 "$imgs"/vd?
	put md0/md/array_state active
	wait_idle md0
	# Writers of every size, until the kill.
	python3 - "$MNT/md0/data" <<'PY' &
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
rng = random.Random(7)
try:
    while True:
        n = rng.choice([512, 4096, 65536, 200000])
        off = rng.randrange(0, size - n) // 512 * 512
        os.pwrite(fd, rng.randbytes(n), off)
except OSError:
    pass
PY
	writer=$!
	sleep 1.5
	kill -0 "$writer" 2>/dev/null || fail "$fx: the writer ended before the kill"
	kill -KILL "$DPID"
	wait "$DPID" 2>/dev/null || true
	DPID=
	wait "$writer" 2>/dev/null || true
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
	start_daemon
	new_array md0 "$imgs"/vd?
	log_mark
	put md0/md/array_state active
	log_has "md/raid:md0: not clean -- starting background reconstruction"
	wait_idle md0
	expect_eq "$(attr md0/md/last_sync_action)" resync "$fx: last_sync_action"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after the resync"
	want=$(sha "$MNT/md0/data")
	put md0/md/array_state inactive
	put md0/md/array_state clear
	stop_daemon
	oracle_inspect "$T/orc-$fx" "$imgs"/vd?
	local s=$T/orc-$fx/summary.txt
	expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "$fx: real md assembles it"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "$fx: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$fx: real md's mismatch_cnt"
	rm -rf "${imgs:?}"
}

log "raid5 killed mid-write"
crash_and_resync raid5-ls-bitmap
log "raid6 killed mid-write"
crash_and_resync raid6-bitmap
log "resynced after kill -9; real md agrees"
