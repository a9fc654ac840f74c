#!/bin/bash
# A damaged superblock is input, not a reason to die.  Superblock fields
# set to absurd values with the checksum recomputed (as a bad sector or a
# buggy tool leaves them) once aborted the whole daemon on an allocation
# the size of the value, taking every other array down.  Through one
# daemon, with another array running beside: each damaged array is
# refused with the kernel's errno and a log line naming the field, or
# runs as real md runs it; the daemon and the other array live on.
# (tests/damaged_metadata.rs sweeps every field in-process.)
. "$(dirname "$0")/lib.sh"

start_daemon
SBPATCH="python3 $(dirname "$0")/sbpatch.py"

# The bystander: a healthy array that must stay up throughout.
unpack raid1-v1.2-bitmap "$T/ok"
new_array md0 "$T/ok/vda" "$T/ok/vdb"
put md0/md/array_state active
sum0=$(timeout 20 sha256sum <"$MNT/md0/data" | cut -d' ' -f1)
expect_eq "$sum0" "$(summary raid1-v1.2-bitmap md0_sha256)" "md0 content"

# attempt N FIXTURE FIELD=VALUE: bind both members with FIELD damaged on
# both (1.2 superblock at sector 8) and try to run mdN; OUT is the error
# of the run ("" when it ran).  Every step is bounded.
OUT=
attempt() {
	local n=$1 fx=$2 set=$3 d
	rm -rf "$T/c$n"
	unpack "$fx" "$T/c$n"
	for d in vda vdb; do $SBPATCH "$T/c$n/$d" 8 "$set"; done
	timeout 20 bash -c "echo md$n >'$MNT/new_array'" || fail "new_array md$n"
	timeout 20 bash -c "echo 1.2 >'$MNT/md$n/md/metadata_version'" || fail "md$n metadata_version"
	for d in vda vdb; do
		timeout 20 bash -c "echo '$T/c$n/$d' >'$MNT/md$n/md/new_dev'" || fail "md$n: new_dev $d ($set)"
	done
	OUT=$(timeout 20 bash -c "echo active >'$MNT/md$n/md/array_state'" 2>&1) && OUT=
	kill -0 "$DPID" 2>/dev/null || fail "the daemon died on $fx $set"
}

# expect_refused N FIXTURE FIELD=VALUE ERRTEXT LOGTEXT
expect_refused() {
	attempt "$1" "$2" "$3"
	case $OUT in
	*"$4"*) ;;
	*) fail "md$1 ($2 $3): run gave '$OUT', wanted '$4'" ;;
	esac
	grep -qF "$5" "$MNT/log" || fail "md$1 ($2 $3): no '$5' in the log"
	expect_eq "$(attr "md$1/md/array_state")" inactive "md$1 array_state"
	timeout 20 bash -c "echo clear >'$MNT/md$1/md/array_state'" || fail "clear md$1"
}

log "raid_disks beyond what setup_conf can allocate: ENOMEM, as real md"
expect_refused 1 raid1-v1.2-bitmap raid_disks=2147483647 "Cannot allocate memory" \
	"md/raid1:md1: cannot allocate the mirrors of raid_disks 2147483647"
expect_refused 2 raid1-v1.2-bitmap raid_disks=2147483648 "Cannot allocate memory" \
	"md/raid1:md2: cannot allocate the mirrors of raid_disks -2147483648"
expect_refused 3 raid1-v1.2-bitmap raid_disks=4294967295 "Cannot allocate memory" \
	"md/raid1:md3: cannot allocate the mirrors of raid_disks -1"

log "size past anything a bitmap can cover: ENOMEM"
expect_refused 4 raid1-v1.2-bitmap size=9223372036854775808 "Cannot allocate memory" \
	"md4: bitmap of 70368744177664 chunks (array size 9223372036854775808 sectors"
expect_refused 5 raid1-v1.2-bitmap size=18446744073709551615 "Cannot allocate memory" \
	"md5: bitmap of 140737488355328 chunks (array size 18446744073709551615 sectors"

log "size 2^63 without a bitmap: real md runs it, and its block device is empty"
attempt 6 raid1-v1.2-nobitmap size=9223372036854775808
expect_eq "$OUT" "" "md6 run"
expect_eq "$(attr md6/md/array_state)" clean "md6 array_state"
expect_eq "$(attr md6/md/component_size)" 4611686018427387904 "md6 component_size"
expect_eq "$(timeout 20 cat "$MNT/md6/data" | wc -c)" 0 "md6 data bytes"
put md6/md/array_state clear

log "the daemon and the other array lived through it"
expect_eq "$(attr md0/md/array_state)" clean "md0 array_state"
expect_eq "$(timeout 20 sha256sum <"$MNT/md0/data" | cut -d' ' -f1)" "$sum0" "md0 content after"
put md0/md/array_state clear
