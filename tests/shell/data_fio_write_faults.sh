#!/bin/bash
# fio with crc32c verification through md0/data while a leg fails
# mid-run: marked faulty, write errors on a range (recorded as bad blocks,
# the leg stays), write errors everywhere and a vanished leg (the
# superblock write fails too, so the leg is failed), and finally write
# errors on the last working leg (never failed: the writer gets EIO, the
# array is broken).  No block may fail verification, the array keeps
# running, and states and messages are the kernel's (raid1_error,
# narrow_write_error, super_written, md_error).  Also: an fsync flushes
# the legs at once, and a leg whose flush fails is failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
start_daemon
fio_jobs "$T/job.fio" 24m

# fio_with_fault OUT ATTR VALUE: run the jobs, write VALUE to ATTR a
# second in, while every job is still writing.
fio_with_fault() {
	log_mark
	fio_start "$T/job.fio" "$1"
	sleep 1
	fio_running || fail "fio ended before the fault"
	put "$2" "$3"
	fio_running || fail "fio ended before the fault took effect"
	fio_wait "$1"
}

# expect_failed_vdb [VDB_STATES]: vdb failed (removed from its slot), vda
# carries on; its state is one of VDB_STATES (|-separated).
expect_failed_vdb() {
	log_has "md/raid1:md0: Disk failure on vdb, disabling device."
	log_has "md/raid1:md0: Operation continuing on 1 devices."
	expect_eq "$(log_count "Disk failure on")" 1 "failures logged"
	expect_eq "$(attr md0/md/degraded)" 1 degraded
	local state
	state=$(attr md0/md/dev-vdb/state)
	[[ "|${1:-faulty}|" == *"|$state|"* ]] || fail "vdb state: got '$state', wanted ${1:-faulty}"
	expect_eq "$(attr md0/md/dev-vdb/slot)" none "vdb slot"
	[ ! -e "$MNT/md0/md/rd1" ] || fail "rd1 still there"
	expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state"
	expect_eq "$(attr md0/md/dev-vda/errors)" 0 "vda errors"
	expect_eq "$(attr md0/md/dev-vdb/errors)" 0 "vdb errors"
	local line
	line=$(mdstat_line md0)
	[[ $line == "md0 : active raid1 vdb[1](F) vda[0] | "*" [2/1] [U_] | "* ]] || fail "mdstat: $line"
	case $(attr md0/md/array_state) in active | clean) ;; *) fail "array_state $(attr md0/md/array_state)" ;; esac
	# The survivor holds everything fio wrote (it verified through md0).
	cmp <(leg_data "$T/img/vda" "$(attr md0/md/dev-vda/offset)" $((192 * 2048))) \
		<(head -c $((192 * 1048576)) "$MNT/md0/data") || fail "vda differs from md0/data"
}

log "vdb marked faulty mid-run"
fresh_array "$IMG"
fio_with_fault "$T/faulty.out" md0/md/dev-vdb/state faulty
expect_failed_vdb

log "write errors on a range of vdb: recorded as bad blocks, vdb stays"
fresh_array "$IMG"
off=$(attr md0/md/dev-vdb/offset)
# Where job seq2 (128 KiB sequential from 128 MiB, 24 MiB/s) writes at
# about two seconds, after the fault.
bad=$((off + (128 + 48) * 2048))
fio_with_fault "$T/range.out" md0/md/dev-vdb/fault "write-error $bad-$((bad + 255))"
log_lacks "Disk failure on"
expect_eq "$(attr md0/md/degraded)" 0 degraded
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync,write_error,want_replacement "vdb state"
expect_eq "$(attr md0/md/dev-vdb/bad_blocks)" "$bad 256" "vdb bad_blocks"
expect_eq "$(attr md0/md/dev-vdb/unacknowledged_bad_blocks)" "" "vdb unacknowledged_bad_blocks"
expect_eq "$(attr md0/md/dev-vda/bad_blocks)" "" "vda bad_blocks"
line=$(mdstat_line md0)
[[ $line == *" [2/2] [UU] | "* ]] || fail "mdstat: $line"
# Outside the bad range vdb holds the data; inside it the old contents.
sha256sum <"$MNT/md0/data" | cut -d' ' -f1 >"$T/want"
head -c $((192 * 1048576)) "$MNT/md0/data" >"$T/md0.head"
arr=$((bad - off))
cmp <(leg_data "$T/img/vdb" "$off" "$arr") <(head -c $((arr * 512)) "$T/md0.head") ||
	fail "vdb before the bad range"
cmp <(leg_data "$T/img/vdb" $((bad + 256)) $((192 * 2048 - arr - 256))) \
	<(tail -c +$(((arr + 256) * 512 + 1)) "$T/md0.head") || fail "vdb after the bad range"
cmp -s <(leg_data "$T/img/vdb" "$bad" 256) <(head -c $((arr * 512 + 131072)) "$T/md0.head" | tail -c 131072) &&
	fail "vdb took the write it failed"
put md0/md/array_state inactive
log "real md loads the bad-block log and reads the same content"
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc/summary.txt")" "$(cat "$T/want")" "oracle md0_sha256"
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$T/orc/summary.txt")" 0 "oracle mismatch_cnt"
grep -qx "dev-vdb/bad_blocks: $bad 256" "$T/orc/assembled.sysfs.txt" ||
	fail "oracle: $(grep dev-vdb/bad_blocks "$T/orc/assembled.sysfs.txt")"

log "write errors everywhere on vdb: the superblock write fails, vdb is failed"
fresh_array "$IMG"
fio_with_fault "$T/werr.out" md0/md/dev-vdb/fault write-error
log_has "md: super_written gets error=-5"
# Whether a data write (write_error) or the superblock write (md_error
# alone, as super_written does) fails first is a matter of timing.
expect_failed_vdb "faulty,write_error|faulty"

log "vdb vanishes mid-run"
fresh_array "$IMG"
fio_with_fault "$T/vanish.out" md0/md/dev-vdb/fault vanish
log_has "md: super_written gets error=-5"
expect_failed_vdb "faulty,write_error|faulty"

log "vdb slows down mid-run (20 ms per request for 3 s): nothing fails, nothing is lost"
fresh_array "$IMG"
log_mark
fio_start "$T/job.fio" "$T/slow.out"
sleep 1
fio_running || fail "fio ended before the slowdown"
put md0/md/dev-vdb/fault "delay 20"
sleep 3
fio_running || fail "fio ended during the slowdown"
put md0/md/dev-vdb/fault clear
fio_wait "$T/slow.out"
log_lacks "Disk failure on"
expect_eq "$(attr md0/md/degraded)" 0 degraded
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "vdb state"
expect_eq "$(attr md0/md/dev-vdb/errors)" 0 "vdb errors"
# Both legs hold what fio wrote and verified.
cmp <(leg_data "$T/img/vda" "$(attr md0/md/dev-vda/offset)" $((192 * 2048))) \
	<(leg_data "$T/img/vdb" "$(attr md0/md/dev-vdb/offset)" $((192 * 2048))) ||
	fail "the legs differ after the slowdown"

# fsync_data: fsync of md0/data; prints the milliseconds it took.
fsync_data() {
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
t = time.monotonic()
os.fsync(fd)
print(int((time.monotonic() - t) * 1000))' "$MNT/md0/data"
}

log "fsync flushes the legs at once (md sends its preflush to all)"
fresh_array "$IMG"
dd if=/dev/urandom of="$MNT/md0/data" bs=64k count=16 oflag=direct conv=notrunc status=none ||
	fail "write before the flush"
put md0/md/dev-vda/fault "delay 1500 write"
put md0/md/dev-vdb/fault "delay 1500 write"
ms=$(fsync_data) || fail "fsync with slow legs"
put md0/md/dev-vda/fault clear
put md0/md/dev-vdb/fault clear
# One after the other would take 3 s.
[ "$ms" -ge 1500 ] && [ "$ms" -lt 2700 ] || fail "fsync took $ms ms with two 1.5 s leg flushes"

log "a leg whose flush fails is failed; the fsync succeeds on the rest"
log_mark
put md0/md/dev-vdb/fault write-error
fsync_data >/dev/null || fail "fsync with one failing leg"
put md0/md/dev-vdb/fault clear
# A failed flush is no failed write: no write_error.
expect_failed_vdb faulty

log "write errors on the last working leg: EIO, never failed, broken"
log_mark
put md0/md/dev-vda/fault write-error
out=$(dd if=/dev/zero of="$MNT/md0/data" bs=4096 count=1 seek=10 oflag=direct conv=notrunc 2>&1) &&
	fail "write to the failing last leg succeeded"
[[ $out == *"Input/output error"* ]] || fail "write to the failing last leg: $out"
log_lacks "Disk failure on vda"
wait_for md0/md/array_state broken 10
expect_eq "$(attr md0/md/dev-vda/state)" in_sync,write_error,want_replacement "vda state"
expect_eq "$(attr md0/md/degraded)" 1 degraded
out=$(dd if=/dev/zero of="$MNT/md0/data" bs=4096 count=1 seek=20 oflag=direct conv=notrunc 2>&1) &&
	fail "write to a broken array succeeded"
[[ $out == *"Input/output error"* ]] || fail "write to a broken array: $out"
# Reads still work (where no bad block was recorded).
head -c 4096 "$MNT/md0/data" >/dev/null || fail "read from a broken array"
put md0/md/dev-vda/fault clear

# SIGTERM still stops the daemon by itself, broken array and all.
term_daemon
final_checks
log "ok"
