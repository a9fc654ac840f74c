#!/bin/bash
# raid10 (near 2 over four members, made by real mdadm) under fio with
# crc32c verification while members fail mid-run: marked faulty, write
# errors on a range (recorded as bad blocks, the member stays), read
# errors on a range (repaired from the other copy), a
# vanished member (failed), and a second member of the other pair.  No
# block may fail verification, the array keeps running, a check finds the
# copies equal, and the messages are the kernel's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

DIR=$CACHE/raid10-n2-64M
mkdir -p "$CACHE"
(
	flock 9
	if [ ! -f "$DIR/d3.img" ]; then
		rm -rf "$DIR"
		"$REALMD" create --size 64M --disks 4 --pattern none "$DIR" \
			--metadata=1.2 --assume-clean --level=10 --layout=n2 --raid-devices=4 \
			--bitmap=internal >"$CACHE/raid10-n2-64M.log" 2>&1 ||
			{ cat "$CACHE/raid10-n2-64M.log" >&2; exit 1; }
	fi
) 9>"$CACHE/.lock" || fail "realmd create raid10-n2-64M"

start_daemon

# fresh: md0 from sparse copies of the cached images, running.
fresh() {
	# Whatever the last case did to it, SIGTERM still stops the daemon.
	if [ -e "$MNT/md0" ]; then restart_daemon; fi
	rm -rf "$T/img"
	mkdir -p "$T/img"
	local i=0 d
	for d in vda vdb vdc vdd; do
		cp --sparse=always "$DIR/d$i.img" "$T/img/$d"
		i=$((i + 1))
	done
	new_array md0 "$T/img"/vd?
	put md0/md/array_state active
}

cat >"$T/job.fio" <<EOF
[global]
filename=$MNT/md0/data
direct=1
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
rate=,6m
[seq]
rw=write
bs=1M
offset=0
size=24M
[rand1]
rw=randwrite
bs=4k
offset=24M
size=12M
[rand2]
rw=randwrite
bs=4k
offset=36M
size=12M
[seq2]
rw=write
bs=128k
offset=48M
size=24M
EOF

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

# check_copies: a check finds every copy equal.
check_copies() {
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt"
}

log "vdb marked faulty mid-run"
fresh
fio_with_fault "$T/faulty.out" md0/md/dev-vdb/state faulty
log_has "md/raid10:md0: Disk failure on vdb, disabling device."
log_has "md/raid10:md0: Operation continuing on 3 devices."
expect_eq "$(attr md0/md/degraded)" 1 degraded
wait_for md0/md/dev-vdb/slot none
mdstat_line md0 | grep_q -F "512K chunks 2 near-copies [4/3] [U_UU]" || fail "mdstat: $(mdstat_line md0)"
log "the other pair loses vdd too"
fio_with_fault "$T/faulty2.out" md0/md/dev-vdd/state faulty
expect_eq "$(attr md0/md/degraded)" 2 degraded
log "vda, the last copy of its chunks, is kept"
expect_err "Device or resource busy" md0/md/dev-vda/state faulty
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state"
head -c $((72 * 1048576)) "$MNT/md0/data" >/dev/null || fail "reading the degraded array"

log "write errors on a range of vdb: recorded as bad blocks, vdb stays"
fresh
fio_with_fault "$T/werr.out" md0/md/dev-vdb/fault "write-error 20000-30000"
# A write error asks for a replacement, as raid10_end_write_request does.
expect_eq "$(attr md0/md/dev-vdb/state)" "in_sync,write_error,want_replacement" "vdb state"
expect_eq "$(attr md0/md/degraded)" 0 degraded
log_lacks "Disk failure"
[ -n "$(attr md0/md/dev-vdb/bad_blocks)" ] || fail "no bad blocks recorded on vdb"
put md0/md/dev-vdb/fault clear

log "read errors on a range of vdc: repaired from vdd"
fresh
# Data there first, then the reads.
dd if=/dev/urandom of="$MNT/md0/data" bs=1M count=72 oflag=direct status=none
sha_before=$(sha "$MNT/md0/data")
log_mark
put md0/md/dev-vdc/fault "read-error 6000-6100 count=2"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
expect_eq "$(sha "$MNT/md0/data")" "$sha_before" "sha256 through read errors"
log_has "md/raid10:md0: vdc: rescheduling sector"
# Repaired, vdc serves the retry itself (read_balance takes the idle
# first copy of a near pair).
log_has "md/raid10:md0: vdc: redirecting sector"
log_has "md/raid10:md0: read error corrected"
expect_eq "$(attr md0/md/degraded)" 0 degraded
expect_eq "$(attr md0/md/dev-vdc/state)" in_sync "vdc state"
check_copies

log "vdc vanishes mid-run"
fresh
fio_with_fault "$T/vanish.out" md0/md/dev-vdc/fault vanish
wait_log "md/raid10:md0: Disk failure on vdc, disabling device."
expect_eq "$(attr md0/md/degraded)" 1 degraded
put md0/md/array_state clear

log "the only source of a recovery cut short: the recovery is not restarted over and over"
# d2 holds the last copy of what slot 3's spare recovers; cut, it can be
# neither read nor written, and md will not fail it (the array is
# broken).  Each pass then ends at once on a failed superblock write: it
# must not start again by itself.
imgs=()
for i in 0 1 2 3; do imgs+=("$T/cut-d$i.img"); done
"$MDFUSE" create --level=10 --layout=n2 -n 4 --assume-clean --bitmap=none --image-size=32M "${imgs[@]}" \
	>/dev/null 2>&1 || fail "cut: create"
new_array md0 "${imgs[@]}"
put md0/md/array_state active
dd if=/dev/urandom of="$MNT/md0/data" bs=1M oflag=direct status=none 2>/dev/null || true
put md0/md/sync_speed_max 3000
put md0/md/dev-cut-d3.img/state faulty
put md0/md/dev-cut-d3.img/state remove
truncate -s 32M "$T/cut-spare.img"
put md0/md/new_dev "$T/cut-spare.img"
sleep 2
truncate -s 28M "$T/cut-d2.img"
put md0/md/sync_speed_max 200000
sleep 5
n1=$(grep -c "md: recovery of RAID array md0" "$MNT/log" || true)
sleep 3
n2=$(grep -c "md: recovery of RAID array md0" "$MNT/log" || true)
[ "$n2" -le 3 ] && [ "$n2" = "$n1" ] || fail "recovery restarted: $n1 then $n2 starts logged"
expect_eq "$(attr md0/md/sync_action)" idle "sync_action after the cut"
put md0/md/array_state clear

stop_daemon
final_checks
log "raid10 under fio: faulty, write errors, read errors, vanish; a recovery's source cut"
