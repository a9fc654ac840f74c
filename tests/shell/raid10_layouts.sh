#!/bin/bash
# raid10 layouts mdadm's --layout cannot name, read back by real md: the
# layout word of a 4-member array made by mdadm is rewritten to near×far
# and near×offset mixes and to far sets (use_far_sets), mdfuse writes the
# whole array (fio verify), and real md, assembling the same images,
# reads the same bytes and finds every copy equal.  Also: a discard
# (punched hole) reaches every copy, ext4 on a loop device over md0/data
# passes e2fsck, and garbage into every file of a running raid10 does not
# bring the daemon down.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

SBPATCH="python3 $(dirname "$0")/sbpatch.py"
DIR=$CACHE/raid10-n2-16M-nobitmap
mkdir -p "$CACHE"
(
	flock 9
	if [ ! -f "$DIR/d3.img" ]; then
		rm -rf "$DIR"
		"$REALMD" create --size 16M --disks 4 --pattern none "$DIR" \
			--metadata=1.2 --assume-clean --level=10 --layout=n2 --raid-devices=4 \
			--chunk=64 --bitmap=none >"$CACHE/raid10-n2-16M-nobitmap.log" 2>&1 ||
			{ cat "$CACHE/raid10-n2-16M-nobitmap.log" >&2; exit 1; }
	fi
) 9>"$CACHE/.lock" || fail "realmd create raid10-n2-16M-nobitmap"

start_daemon

# images LAYOUT: fresh copies in $T/img with the layout word LAYOUT.
images() {
	rm -rf "$T/img"
	mkdir -p "$T/img"
	local i=0 d
	for d in vda vdb vdc vdd; do
		cp --sparse=always "$DIR/d$i.img" "$T/img/$d"
		$SBPATCH "$T/img/$d" 8 layout="$1"
		i=$((i + 1))
	done
}

write_verify() {
	local bytes=$(($(attr md0/size) * 512))
	fio --name=w --filename="$MNT/md0/data" --direct=1 --ioengine=psync --rw=randwrite \
		--bs=4k --size="$bytes" --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--aux-path="$T" --output="$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio failed"; }
	grep -q 'err= 0' "$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio had an error"; }
}

# layout WORD STATUS SECTORS: run it, check mdstat and the size, write
# it all, and let real md read it back.
layout() {
	local word=$1 status=$2 sectors=$3 ours s
	log "layout $(printf %#x "$word"): $status"
	images "$word"
	new_array md0 "$T/img"/vd?
	put md0/md/array_state active
	expect_eq "$(attr md0/md/layout)" "$word" "layout"
	mdstat_line md0 | grep_q -F "$status" || fail "mdstat: $(mdstat_line md0)"
	expect_eq "$(attr md0/size)" "$sectors" "size"
	write_verify
	ours=$(sha "$MNT/md0/data")
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$word" "$T/img"/vd?
	s=$T/orc-$word/summary.txt
	expect_eq "$(sed -n 's/^assembled_mdstat: //p' "$s" | sed 's/.*blocks super 1.2 //')" "$status" "real md's status"
	expect_eq "$(sed -n 's/^md_size_bytes: //p' "$s")" $((sectors * 512)) "real md's size"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$ours" "real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "real md's mismatch_cnt"
}

# 30720 sectors per member; four copies of each block over four members
# leave a quarter.
layout $((0x202)) "64K chunks 2 near-copies 2 far-copies [4/4] [UUUU]" 30720
layout $((0x10202)) "64K chunks 2 near-copies 2 offset-copies [4/4] [UUUU]" 30720
layout $((2 << 17 | 0x201)) "64K chunks 2 far-copies 2 devices per set [4/4] [UUUU]" 61440
layout $((2 << 17 | 0x10201)) "64K chunks 2 offset-copies 2 devices per set [4/4] [UUUU]" 61440
layout $((0x103)) "64K chunks 3 near-copies [4/4] [UUUU]" 40960

log "a discard reaches every copy"
images $((0x201))
new_array md0 "$T/img"/vd?
put md0/md/array_state active
head -c $((1024 * 1024)) /dev/urandom >"$T/mb"
dd if="$T/mb" of="$MNT/md0/data" bs=1M count=1 conv=notrunc oflag=direct status=none
python3 - "$MNT/md0/data" <<'PY' || fail "punch hole"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
import ctypes
# FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 KiB at 128 KiB
libc = ctypes.CDLL(None, use_errno=True)
if libc.fallocate(fd, 3, ctypes.c_long(131072), ctypes.c_long(262144)) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
PY
cmp <(dd if="$MNT/md0/data" bs=128k skip=1 count=2 iflag=direct status=none) <(head -c 262144 /dev/zero) ||
	fail "the discarded range does not read as zeroes"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after the discard"
put md0/md/array_state clear

log "ext4 over a loop device on md0/data"
images $((0x102))
new_array md0 "$T/img"/vd?
put md0/md/array_state active
dev=$(loop_attach "$MNT/md0/data")
mkfs.ext4 -q -F "$dev" || fail mkfs
mkdir -p "$T/fs"
mount "$dev" "$T/fs"
MOUNTS+=("$T/fs")
cp -r "$(dirname "$0")" "$T/fs/files"
sync
umount "$T/fs"
MOUNTS=()
e2fsck -fn "$dev" >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out" >&2; fail "e2fsck"; }
loop_detach "$dev"
put md0/md/array_state clear

log "garbage into every writable file of a running raid10: no crash"
images $((0x10201))
new_array md0 "$T/img"/vd?
put md0/md/array_state active
files=$(cd "$MNT/md0/md" && find . -type f -perm -u+w | sed 's#^\./##' | grep -vE '^(array_state|new_dev)$|/fault$' | sort)
for f in $files; do
	for v in "" 0 1 -1 3 4 7 4096 65536 18446744073709551616 none garbage faulty remove want_replacement idle repair; do
		(printf '%s\n' "$v" >"$MNT/md0/md/$f") 2>/dev/null || true
	done
done
kill -0 "$DPID" || fail "the daemon died"
! grep -q panicked "$T/daemon.log" || { grep -A5 panicked "$T/daemon.log" >&2; fail "a panic"; }
attr md0/md/array_state >/dev/null
head -c 65536 "$MNT/md0/data" >/dev/null 2>&1 || true
put md0/md/array_state clear

stop_daemon
final_checks
log "raid10: near×far and near×offset mixes and far sets read back by real md, discard, ext4"
