#!/bin/bash
# md0/data as a disk: a loop device on it (buffered and --direct-io=on)
# carries an ext4 file system through mkfs, files written and read back,
# and a clean e2fsck, on a complete array, while a leg fails mid-copy, and
# on the degraded array that leaves.  Real md then reads the same content.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon
fresh_array "$(cached_images raid1-256M 256M --bitmap=internal)"
D=$MNT/md0/data
FS=$T/fs
mkdir -p "$FS"
for i in 1 2 3; do head -c $((3 * 1048576 + i * 4097)) /dev/urandom >"$T/src$i"; done
head -c $((24 * 1048576)) /dev/urandom >"$T/big"

# with_fs LOSETUP_FLAGS STEP...: attach, run the steps with $L and $FS,
# detach.
with_loop() {
	local flags=$1
	shift
	# shellcheck disable=SC2086
	L=$(loop_attach $flags "$D")
	[ "$(blockdev --getsize64 "$L")" == "$(stat -c %s "$D")" ] || fail "loop size"
	"$@"
	loop_detach "$L"
}

mount_fs() {
	mount "$L" "$FS" || fail "mount $L"
	MOUNTS+=("$FS")
}

umount_fs() {
	umount "$FS" || fail "umount"
	unset 'MOUNTS[${#MOUNTS[@]}-1]'
}

fsck_clean() {
	e2fsck -fn "$L" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out" >&2; fail "e2fsck: not clean"; }
}

# files_roundtrip TAG: write the test files, read them back after a
# remount (nothing from the page cache), fsck.
files_roundtrip() {
	mount_fs
	mkdir -p "$FS/$1"
	for i in 1 2 3; do cp "$T/src$i" "$FS/$1/f$i"; done
	dd if="$T/big" of="$FS/$1/big" bs=1M oflag=direct status=none || fail "O_DIRECT copy"
	umount_fs
	mount_fs
	for i in 1 2 3; do cmp "$T/src$i" "$FS/$1/f$i" || fail "$1/f$i differs"; done
	cmp "$T/big" "$FS/$1/big" || fail "$1/big differs"
	umount_fs
	fsck_clean
}

mkfs_fs() {
	mkfs.ext4 -q -F "$L" || fail "mkfs.ext4"
	fsck_clean
}

log "complete array: buffered loop"
with_loop "" mkfs_fs
with_loop "" files_roundtrip plain
log "complete array: --direct-io=on"
with_loop "--direct-io=on" files_roundtrip dio

# A leg fails while a copy runs: slow vda's writes so the copy is still
# going when vdb fails.
fail_mid_copy() {
	mount_fs
	mkdir -p "$FS/mid"
	put md0/md/dev-vda/fault "delay 10 write"
	dd if="$T/big" of="$FS/mid/big" bs=256k oflag=direct status=none &
	local pid=$!
	wait_file_size "$FS/mid/big" $((4 * 1048576))
	kill -0 "$pid" 2>/dev/null || fail "the copy ended before the failure"
	put md0/md/dev-vdb/state faulty
	kill -0 "$pid" 2>/dev/null || fail "the copy ended before the failure took effect"
	wait "$pid" || fail "copy during the failure"
	put md0/md/dev-vda/fault clear
	cp "$T/src1" "$FS/mid/after"
	umount_fs
	mount_fs
	cmp "$T/big" "$FS/mid/big" || fail "mid/big differs"
	cmp "$T/src1" "$FS/mid/after" || fail "mid/after differs"
	for t in plain dio; do
		for i in 1 2 3; do cmp "$T/src$i" "$FS/$t/f$i" || fail "$t/f$i differs after the failure"; done
	done
	umount_fs
	fsck_clean
}

wait_file_size() {
	local deadline=$((SECONDS + 30))
	while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
		[ $SECONDS -lt $deadline ] || fail "$1 did not grow"
		sleep 0.02
	done
}

log "a leg fails mid-copy"
with_loop "--direct-io=on" fail_mid_copy
log_has "md/raid1:md0: Disk failure on vdb, disabling device."
log_has "md/raid1:md0: Operation continuing on 1 devices."
expect_eq "$(attr md0/md/degraded)" 1 degraded
expect_eq "$(attr md0/md/dev-vdb/state)" faulty "vdb state"
line=$(mdstat_line md0)
[[ $line == *"vdb[1](F)"* && $line == *"[2/1] [U_]"* ]] || fail "mdstat: $line"

log "degraded array (vdb removed): buffered and --direct-io=on"
put md0/md/dev-vdb/state remove
[ ! -e "$MNT/md0/md/dev-vdb" ] || fail "dev-vdb still there"
with_loop "" files_roundtrip degraded
with_loop "--direct-io=on" files_roundtrip degraded-dio
sha256sum <"$D" | cut -d' ' -f1 >"$T/want"

put md0/md/array_state inactive
stop_daemon
log "real md reads the same content from the surviving leg"
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
S=$T/orc/summary.txt
expect_eq "$(sed -n 's/^md0_sha256: //p' "$S")" "$(cat "$T/want")" "oracle md0_sha256"
expect_eq "$(sed -n 's/^synced_degraded: //p' "$S")" 1 "oracle degraded"
final_checks
log "ok"
