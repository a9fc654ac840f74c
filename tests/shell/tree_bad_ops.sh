#!/bin/bash
# Operations the tree refuses, on a running array, with the errno sysfs
# (or, for md0/data, a block device) gives: nothing can be created,
# removed, renamed or linked (EPERM, EACCES for a new file as sysfs);
# truncating an attribute (what `echo x > attr` does) is accepted and
# changes nothing; truncating md0/data is EINVAL as on /dev/md0, an
# O_TRUNC open of it changes nothing, a write past its end is ENOSPC.
# Where the tree deliberately differs from sysfs: modes and owners are
# fixed (sysfs lets root chmod and chown), and md0/data has no shared
# writable mmap (ENODEV; it bypasses the page cache) unless mounted with
# --data-cache=writethrough|writeback (MDFUSE_TEST_DATA_CACHE).  After all of it the
# data and every attribute are as before, and the daemon still serves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$T/img
mkdir -p "$IMG"
"$MDFUSE" create -l1 -n2 --image-size=20000K "$IMG/a" "$IMG/b" >/dev/null 2>&1 || fail "mdfuse create"
start_daemon
new_array md0 "$IMG/a" "$IMG/b"
put md0/md/array_state active
wait_idle md0
D=$MNT/md0/data
M=$MNT/md0/md
size=$(stat -c %s "$D")
head -c "$size" /dev/urandom >"$T/want"
dd if="$T/want" of="$D" bs=1M oflag=direct conv=notrunc status=none || fail "filling md0"
sysfs_dump "$M" | grep -v -E '^(array_state|sync_speed|dev-[ab]/io):' >"$T/before"

# refused ERRTEXT CMD...: CMD fails, saying ERRTEXT.
refused() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then fail "$* succeeded, wanted: $want"; fi
	[[ $out == *"$want"* ]] || fail "$*: got '$out', wanted '$want'"
}

log "nothing is created, removed, renamed or linked"
refused "Operation not permitted" mkdir "$M/x"
refused "Operation not permitted" mkdir "$MNT/md9"
refused "Operation not permitted" rm -f "$M/safe_mode_delay"
refused "Operation not permitted" rm -f "$D"
refused "Operation not permitted" rm -f "$M/rd0"
refused "Operation not permitted" rmdir "$M/bitmap"
refused "Operation not permitted" rm -rf "$MNT/md0"
refused "Operation not permitted" mv "$M/safe_mode_delay" "$M/y"
refused "Operation not permitted" mv "$MNT/md0" "$MNT/md9"
refused "Operation not permitted" ln -s "$M/level" "$M/l"
refused "Operation not permitted" ln "$M/level" "$M/h"
refused "Operation not permitted" mknod "$M/n" p
refused "Permission denied" touch "$M/newfile"

log "truncate and O_TRUNC"
truncate -s 0 "$M/safe_mode_delay" || fail "truncate of an attribute"
expect_eq "$(attr md0/md/safe_mode_delay)" 0.204 "safe_mode_delay after truncate"
refused "Invalid argument" truncate -s 0 "$D"
refused "Invalid argument" truncate -s 1G "$D"
: >"$D" || fail "O_TRUNC open of md0/data"
expect_eq "$(stat -c %s "$D")" "$size" "md0 size after O_TRUNC"
refused "No space left on device" dd if=/dev/zero of="$D" bs=4096 seek=$((size / 4096)) count=1 conv=notrunc status=none

log "modes and owners are fixed"
refused "Operation not permitted" chmod 600 "$M/safe_mode_delay"
refused "Operation not permitted" chmod 666 "$D"
refused "Operation not permitted" chown nobody "$M/array_state"
chmod 644 "$M/safe_mode_delay" || fail "chmod to the mode it has"

log "no shared writable mmap of md0/data"
out=$(python3 - "$D" <<'PY' 2>&1
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    m = mmap.mmap(fd, 4096)
    m[0:4] = b"abcd"
    m.flush()
    print("mapped")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
if [ "${MDFUSE_TEST_DATA_CACHE:-none}" != none ]; then
	# Through the page cache, as a block device's.
	expect_eq "$out" mapped "mmap of md0/data with --data-cache=$MDFUSE_TEST_DATA_CACHE"
	printf abcd | dd of="$T/want" conv=notrunc status=none
	# The write made the array active; clean again after safe_mode_delay.
	wait_for md0/md/array_state clean 10
else
	expect_eq "$out" "No such device" "mmap of md0/data"
fi

log "data and attributes unchanged, the daemon serves"
cmp "$D" "$T/want" || fail "md0/data changed"
sysfs_dump "$M" | grep -v -E '^(array_state|sync_speed|dev-[ab]/io):' >"$T/after"
diff -u "$T/before" "$T/after" || fail "attributes changed"
expect_eq "$(attr md0/md/array_state)" clean "array_state"
put md0/md/array_state inactive
stop_daemon
final_checks
log "ok"
