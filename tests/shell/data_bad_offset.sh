#!/bin/bash
# A 1.0 pair where one member's superblock gives an absurd data_offset
# (2^64-1, checksum recomputed): that member's data lies beyond the end of
# the device, so every read or write of it fails as I/O beyond the device
# (never wraps around to some other place of the image), and md0 is served
# by the other member.  Read-only, the failed reads are only redirected;
# read-write, the repair cannot record a bad block beyond the device and
# fails the member.  Real md 6.1 (realmd shell-script, dd of md0's first
# 1 MiB) reads it with rc 0 and ends with vda faulty,write_error, [_U].
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

FX=raid1-v1.0-bitmap
unpack "$FX" "$T/img"
VA=$T/img/vda
VB=$T/img/vdb
sectors=$(($(stat -c %s "$VA") / 512))
python3 "$(dirname "$0")/sbpatch.py" "$VA" $(((sectors - 16) & ~7)) data_offset=0xffffffffffffffff
data=$(($(summary "$FX" md_size_bytes) / 512))
# 1.0 keeps the data at the start of the device.
leg_data "$VB" 0 "$data" >"$T/want"
va_data=$(leg_data "$VA" 0 "$data" | sha256sum)

# read_at SECTOR COUNT: COUNT sectors of md0 at SECTOR, O_DIRECT, compared
# with what vdb holds there.
read_at() {
	dd if="$MNT/md0/data" bs=512 skip="$1" count="$2" iflag=direct status=none >"$T/got" ||
		fail "read of $2 sectors at $1"
	leg_data "$T/want" "$1" "$2" | cmp - "$T/got" || fail "md0 at sector $1 differs from vdb"
}

start_daemon

log "read-only: reads of vda fail and go to vdb, vda stays in sync"
new_array md0 "$VA" "$VB"
put md0/md/array_state readonly
expect_eq "$(attr md0/md/dev-vda/offset)" 18446744073709551615 "vda offset"
log_mark
read_at 0 2048
# Reads that do not start at sector 0, where a wrapped offset would land
# inside the image.
read_at 8 8
read_at 1000 100
read_at $((data - 8)) 8
cmp "$MNT/md0/data" "$T/want" || fail "md0 differs from vdb"
log_has "md/raid1:md0: vda: rescheduling sector 0"
log_has "md/raid1:md0: redirecting sector 0 to other mirror: vdb"
log_lacks "unrecoverable"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state, read-only"
expect_eq "$(attr md0/md/degraded)" 0 "degraded, read-only"
put md0/md/array_state clear

log "read-write: the first read fails vda and is served by vdb"
new_array md0 "$VA" "$VB"
put md0/md/array_state active
log_mark
read_at 0 2048
log_has "md/raid1:md0: vda: rescheduling sector 0"
log_has "md/raid1:md0: Disk failure on vda, disabling device."
log_has "md/raid1:md0: redirecting sector 0 to other mirror: vdb"
log_lacks "unrecoverable"
wait_for md0/md/dev-vda/state faulty,write_error
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "vdb state"
expect_eq "$(attr md0/md/degraded)" 1 degraded
line=$(mdstat_line md0)
[[ $line == "md0 : active raid1 "*" [2/1] [_U]"* ]] || fail "mdstat: $line"
cmp "$MNT/md0/data" "$T/want" || fail "md0 differs from vdb"

log "writes go to vdb only"
head -c 65536 /dev/urandom >"$T/new"
dd if="$T/new" of="$MNT/md0/data" bs=64k seek=3 conv=notrunc,fsync status=none ||
	fail "write to md0"
dd if="$T/new" of="$T/want" bs=64k seek=3 conv=notrunc status=none
cmp "$MNT/md0/data" "$T/want" || fail "md0 after the write"
leg_data "$VB" 0 "$data" | cmp - "$T/want" || fail "vdb after the write"
put md0/md/array_state clear

# Nothing reached vda's data area through the absurd offset.
expect_eq "$(leg_data "$VA" 0 "$data" | sha256sum)" "$va_data" "vda's data area"
stop_daemon
final_checks
log "ok"
