#!/bin/bash
# fio with crc32c verification through md0/data of a raid5 and a raid6
# while members fail mid-run, each way dev-NAME/fault and state offer:
# marked faulty, write errors, read errors, vanished; raid6 losing two.
# Read errors that a rewrite from parity cures leave the member in place.
# No block may fail verification; the array carries on degraded with the
# kernel's messages (raid5_error), and what it holds reads the same when
# assembled again without the failed members.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon --threads 8

# Four jobs over the fixtures' 30 MiB, slow enough for a fault mid-run.
cat >"$T/job.fio" <<EOF2
[global]
filename=$MNT/md0/data
direct=1
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
rate=,3m
[seq]
rw=write
bs=1M
offset=0
size=10M
[rand1]
rw=randwrite
bs=4k
offset=10M
size=6M
[rand2]
rw=randwrite
bs=4k
offset=16M
size=6M
[seq2]
rw=write
bs=128k
offset=22M
size=8M
EOF2

# run FIXTURE FAULT... : fresh array, fio, each fault (ATTR=VALUE) a
# second after the one before; then the checks.
run() {
	local fx=$1 f
	shift
	# Whatever the last case did to it, SIGTERM still stops the daemon.
	restart_daemon
	rm -rf "$T/img"
	unpack "$fx" "$T/img"
	new_array md0 "$T/img"/vd?
	put md0/md/array_state active
	wait_idle md0
	log_mark
	fio_start "$T/job.fio" "$T/fio.out"
	for f in "$@"; do
		sleep 1
		fio_running || fail "$fx: fio ended before the fault $f"
		put "${f%%=*}" "${f#*=}"
	done
	fio_wait "$T/fio.out"
}

# after FIXTURE DEGRADED GONE...: the failures are the kernel's, the
# array runs degraded, and reads the same assembled without GONE.
after() {
	local fx=$1 deg=$2 g sum
	shift 2
	for g in "$@"; do
		log_has "Disk failure on $g, disabling device."
		expect_eq "$(attr md0/md/dev-$g/state | cut -d, -f1)" faulty "$fx: $g state"
	done
	log_has "Operation continuing on"
	expect_eq "$(attr md0/md/degraded)" "$deg" "$fx: degraded"
	case $(attr md0/md/array_state) in active | clean) ;; *) fail "$fx: array_state $(attr md0/md/array_state)" ;; esac
	sum=$(sha "$MNT/md0/data")
	put md0/md/array_state inactive
	put md0/md/array_state clear
	local keep=()
	for img in "$T/img"/vd?; do
		[[ " $* " == *" $(basename "$img") "* ]] || keep+=("$img")
	done
	new_array md0 "${keep[@]}"
	put md0/md/array_state readonly
	expect_eq "$(sha "$MNT/md0/data")" "$sum" "$fx: md0/data reassembled without $*"
	put md0/md/array_state clear
}

log "raid5: vdb marked faulty mid-run"
run raid5-ls-bitmap md0/md/dev-vdb/state=faulty
after raid5-ls-bitmap 1 vdb
log "raid5: write errors on vdc"
run raid5-ls-bitmap "md0/md/dev-vdc/fault=write-error"
after raid5-ls-bitmap 1 vdc
log "raid5: read errors on vda (verification reads rebuild from parity)"
run raid5-ls-bitmap "md0/md/dev-vda/fault=read-error"
after raid5-ls-bitmap 1 vda
log "raid5: vdb vanishes"
run raid5-ls-bitmap "md0/md/dev-vdb/fault=vanish"
after raid5-ls-bitmap 1 vdb
log "raid6: vdb vanishes, then vdd has write errors"
run raid6-bitmap "md0/md/dev-vdb/fault=vanish" "md0/md/dev-vdd/fault=write-error"
after raid6-bitmap 2 vdb vdd
log "raid6: vda faulty, then read errors on vdc"
run raid6-bitmap md0/md/dev-vda/state=faulty "md0/md/dev-vdc/fault=read-error"
after raid6-bitmap 2 vda vdc
log "raid5: a few read errors are corrected, the member stays"
rm -rf "$T/img"
unpack raid5-ls-bitmap "$T/img"
new_array md0 "$T/img"/vd?
put md0/md/array_state active
wait_idle md0
log_mark
# The first read of vda's first sectors fails once: rebuilt from parity,
# written back, read again -- cured.  (mdfuse handles the whole piece of
# the request on that member, not the kernel's 4 KiB stripe pages.)
put md0/md/dev-vda/fault "read-error 2048-2055 count=1"
expect_eq "$(sha "$MNT/md0/data")" "$(summary raid5-ls-bitmap md0_sha256)" "md0/data through read errors"
log_new | grep_q -E "md/raid:md0: read error corrected \(([0-9]+) sectors at 2048 on vda\)" || fail "no correction logged"
sectors=$(log_new | sed -nE 's/.*read error corrected \(([0-9]+) sectors at 2048 on vda\).*/\1/p')
expect_eq "$(log_count "read error corrected")" 1 "corrections"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state after corrected read errors"
expect_eq "$(attr md0/md/dev-vda/errors)" "$sectors" "vda corrected errors"
expect_eq "$(attr md0/md/degraded)" 0 "degraded after corrected read errors"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after corrected read errors"
put md0/md/array_state clear
log "fio verified through every failure"
