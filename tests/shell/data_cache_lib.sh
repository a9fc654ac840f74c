# Steps shared by the tests of md0/data through the page cache
# (data_cache.sh, written back; data_cache_wt.sh, written through).
# Sourced after lib.sh and data_lib.sh; they use D (md0/data), IMG (the
# directory of the legs vda and vdb) and T/ref (what md0/data must hold).

# cache_start MODE: a RAID1 of two 20000K images in IMG, bound to md0 of a
# daemon mounted with --data-cache=MODE whose log counts the requests
# that reach the tree (requests WORD).  Sets IMG and D.
cache_start() {
	IMG=$T/img
	mkdir -p "$IMG"
	"$MDFUSE" create -l1 -n2 --image-size=20000K "$IMG/vda" "$IMG/vdb" >/dev/null 2>&1 ||
		fail "mdfuse create"
	# The script chooses the mode itself.
	unset MDFUSE_TEST_DATA_CACHE
	RUST_LOG=info,sysfs_like::fs=debug start_daemon --data-cache="$1"
	new_array md0 "$IMG/vda" "$IMG/vdb"
	D=$MNT/md0/data
}

# requests WORD: how many WORD( requests reached the tree so far.
requests() { grep -c "sysfs_like::fs\] $1(" "$T/daemon.log" || true; }

# py BODY: run python BODY with D naming md0/data
py() { python3 -c "import os, sys; D = sys.argv[1]; $1" "$D" || fail "python: $1"; }

# page_via_fd4 BLOCK: 4 KiB block BLOCK of md0/data, read through fd 4.
page_via_fd4() { python3 -c "import os, sys; sys.stdout.buffer.write(os.pread(4, 4096, $1 * 4096))"; }

# cache_partial_write: a write-only open writes 100 bytes inside a page.
cache_partial_write() {
	py "
fd = os.open(D, os.O_WRONLY)
os.pwrite(fd, b'w' * 100, 10)
os.fsync(fd)
os.close(fd)"
	printf 'w%.0s' $(seq 100) | dd of="$T/ref" bs=1 seek=10 conv=notrunc status=none
	check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
	cmp "$D" "$T/ref" || fail "md0/data read back after the partial write"
}

# cache_mmap_write: a shared writable mapping, msync'ed.
cache_mmap_write() {
	py "
import mmap
fd = os.open(D, os.O_RDWR)
m = mmap.mmap(fd, 8192, offset=4096 * 600)
m[100:104] = b'mmap'
m.flush()
m.close()
os.close(fd)"
	printf mmap | dd of="$T/ref" bs=1 seek=$((4096 * 600 + 100)) conv=notrunc status=none
	check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
}

# cache_repair: a repair changes the bytes of page 100 under a
# descriptor (fd 4) that cached them; it must read the new ones.  Reads
# avoid vdb (write-mostly); vdb gets other bytes behind md's back; the page
# is read into the cache from vda; a repair from vdb then copies vdb's
# bytes over vda's.
cache_repair() {
	put md0/md/dev-vdb/state writemostly
	local off
	off=$(attr md0/md/dev-vdb/offset)
	head -c 4096 /dev/urandom >"$T/behind"
	dd if="$T/behind" of="$IMG/vdb" bs=512 seek=$((off + 8 * 100)) conv=notrunc status=none
	exec 4<"$D"
	cmp <(page_via_fd4 100) <(dd if="$T/ref" bs=4096 skip=100 count=1 status=none) ||
		fail "the page before the repair is not vda's"
	put md0/md/repair_source vdb
	put md0/md/sync_action repair
	wait_idle md0
	put md0/md/repair_source auto
	put md0/md/dev-vdb/state -writemostly
	dd if="$T/behind" of="$T/ref" bs=4096 seek=100 conv=notrunc status=none
	check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
	cmp <(page_via_fd4 100) "$T/behind" || fail "a cached page still shows what the repair replaced"
	exec 4<&-
	cmp "$D" "$T/ref" || fail "contents after the repair"
}

# cache_member_fails: vdb fails a 1 MiB write (then fsync) under way:
# md's usual failure, the data on vda, no error for the writer.
cache_member_fails() {
	head -c 1048576 /dev/urandom >"$T/chunk3"
	put md0/md/dev-vdb/fault write-error
	py "
fd = os.open(D, os.O_RDWR)
os.pwrite(fd, open('$T/chunk3', 'rb').read(), 8 << 20)
os.fsync(fd)
os.close(fd)"
	dd if="$T/chunk3" of="$T/ref" bs=1M seek=8 conv=notrunc status=none
	local state
	state=$(attr md0/md/dev-vdb/state)
	[[ $state == *faulty* ]] || fail "vdb after a write error: $state"
	expect_eq "$(attr md0/md/degraded)" 1 "degraded"
	check_legs md0 "$T/ref" "$IMG/vda"
	cmp "$D" "$T/ref" || fail "contents after the member failed"
}

# cache_rerun_ext4: md0, stopped with vdb failed, is run again on vda,
# vdb re-added and recovered; then ext4 on a loop device over md0/data,
# twenty files, e2fsck -fn.  Sets sha_fs to the files' sha256.
cache_rerun_ext4() {
	put md0/md/dev-vdb/state remove 2>/dev/null || true
	put md0/md/array_state clear
	new_array md0 "$IMG/vda"
	put md0/md/array_state active
	put md0/md/new_dev "$IMG/vdb"
	wait_for md0/md/degraded 0 120
	wait_idle md0
	cmp "$D" "$T/ref" || fail "contents after the recovery"
	check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
	local l
	l=$(losetup -f --show "$D") || fail "losetup"
	LOOPS+=("$l")
	expect_eq "$(blockdev --getsize64 "$l")" "$size" "loop device size"
	mkfs.ext4 -q -F "$l" >/dev/null || fail "mkfs.ext4"
	mkdir -p "$T/fs"
	mount "$l" "$T/fs" || fail "mount"
	MOUNTS+=("$T/fs")
	for i in $(seq 20); do head -c $((i * 10000)) /dev/urandom >"$T/fs/f$i"; done
	sha_fs=$(cat "$T"/fs/f* | sha256sum)
	umount "$T/fs"
	MOUNTS=()
	losetup -d "$l"
	LOOPS=()
	e2fsck -fn "$D" >"$T/fsck" 2>&1 || { cat "$T/fsck" >&2; fail "e2fsck -fn"; }
}

# cache_read_ext4 LOSETUP_OPTION: the files back through a new loop device
# made with LOSETUP_OPTION (mounted read-only).
cache_read_ext4() {
	local l
	l=$(losetup "$1" -f --show "$D") || fail "losetup $1"
	LOOPS+=("$l")
	if [ "$1" = --direct-io=on ]; then
		expect_eq "$(losetup -n -O DIO "$l" | tr -d ' ')" 1 "loop device direct I/O"
	fi
	mount -o ro "$l" "$T/fs" || fail "mount over the loop device ($1)"
	MOUNTS+=("$T/fs")
	expect_eq "$(cat "$T"/fs/f* | sha256sum)" "$sha_fs" "files through the loop device ($1)"
	umount "$T/fs"
	MOUNTS=()
	losetup -d "$l"
	LOOPS=()
}
