#!/bin/bash
# md0/data with --data-cache=writeback: buffered opens go through the
# kernel's page cache and reach md at write-back, as a block device's do.
# Checked here: the size is the array's, never the kernel's own (an inode
# looked up while the array was inactive, a write past the end); fsync
# and fdatasync write the cache back to every member; a write-only open
# can write part of a page; a shared mmap works; O_DIRECT opens still reach md per request; a
# member failing during write-back is md's usual failure; a writer
# running past the end stops with ENOSPC; a repair that
# changes bytes under cached pages leaves no stale copy, nor does a write
# over NBD; the kernel stops asking for xattrs at every write; a loop
# device and ext4 on it pass e2fsck.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/data_cache_lib.sh"

cache_start writeback
DATA_INO=

log "inactive: no capacity, writes fail at once (not at write-back)"
expect_eq "$(stat -c %s "$D")" 0 "size while inactive"
expect_eq "$(wc -c <"$D")" 0 "read while inactive"
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc 2>&1) && fail "write while inactive succeeded"
[[ $out == *"No space left on device"* ]] || fail "write while inactive: $out"
exec 3<"$D" # held across the run: this inode said 0 bytes

log "running: the size is the array's, for a new lookup and an open descriptor"
put md0/md/array_state active
wait_idle md0
size=$(($(attr md0/size) * 512))
expect_eq "$(stat -c %s "$D")" "$size" "size once running"
expect_eq "$(stat -L -c %s /proc/self/fd/3)" "$size" "size on the descriptor opened while inactive"
exec 3<&-
head -c "$size" /dev/urandom >"$T/ref"
dd if="$T/ref" of="$D" bs=1M oflag=direct conv=notrunc status=none || fail "O_DIRECT fill"

log "buffered writes gather in the cache; fsync writes them to every member"
w0=$(requests write)
x0=$(requests getxattr)
head -c 1048576 /dev/urandom >"$T/chunk"
py "
fd = os.open(D, os.O_WRONLY)
c = open('$T/chunk', 'rb').read()
for i in range(256):
    os.pwrite(fd, c[i * 4096:(i + 1) * 4096], 4096 * (1024 + i))
os.fsync(fd)
os.close(fd)"
dd if="$T/chunk" of="$T/ref" bs=4096 seek=1024 conv=notrunc status=none
w=$(($(requests write) - w0))
[ "$w" -ge 1 ] && [ "$w" -le 32 ] || fail "256 buffered 4 KiB writes reached md as $w writes (wanted 1 to 32)"
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
x=$(($(requests getxattr) - x0))
[ "$x" -le 1 ] || fail "256 buffered writes asked for xattrs $x times"

log "fdatasync too"
head -c 65536 /dev/urandom >"$T/chunk2"
py "
fd = os.open(D, os.O_RDWR)
os.pwrite(fd, open('$T/chunk2', 'rb').read(), 5 << 20)
os.fdatasync(fd)
os.close(fd)"
dd if="$T/chunk2" of="$T/ref" bs=65536 seek=80 conv=notrunc status=none
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"

log "a write-only open writes part of a page (the kernel reads the rest)"
cache_partial_write

log "a shared writable mmap, as of a block device: msync writes it to every member"
cache_mmap_write

log "O_DIRECT opens reach md per request"
w0=$(requests write)
dd if="$T/chunk" of="$D" bs=4096 count=8 seek=2048 oflag=direct conv=notrunc status=none || fail "O_DIRECT write"
dd if="$T/chunk" of="$T/ref" bs=4096 count=8 seek=2048 conv=notrunc status=none
expect_eq "$(($(requests write) - w0))" 8 "write requests of 8 O_DIRECT writes"
cmp "$D" "$T/ref" || fail "buffered read after O_DIRECT writes"
dd if="$D" bs=1M iflag=direct status=none | cmp - "$T/ref" || fail "O_DIRECT read back"

log "the end: a buffered write past it fails (at close), never reaches md nor moves the end"
ino=$(stat -c %i "$D")
out=$(dd if=/dev/zero of="$D" bs=4096 seek=$((size / 4096)) count=1 conv=notrunc 2>&1) &&
	fail "buffered write at the end succeeded"
[[ $out == *"No space left on device"* ]] || fail "buffered write at the end: $out"
# Crossing the end: the part within is written, as a block device takes it.
head -c 8192 /dev/urandom >"$T/cross"
out=$(dd if="$T/cross" of="$D" bs=8192 seek=$((size - 4096)) oflag=seek_bytes conv=notrunc 2>&1) &&
	fail "buffered write crossing the end succeeded"
[[ $out == *"No space left on device"* ]] || fail "buffered write crossing the end: $out"
head -c 4096 "$T/cross" | dd of="$T/ref" bs=4096 seek=$((size / 4096 - 1)) conv=notrunc status=none
expect_eq "$(stat -c %s "$D")" "$size" "size after writes past the end"
[ "$(stat -c %i "$D")" != "$ino" ] || fail "the inode that saw a write past the end is still looked up"
expect_eq "$(dd if="$D" bs=1M skip="$size" iflag=skip_bytes status=none | wc -c)" 0 "read at the end"
cmp "$D" "$T/ref" || fail "contents after writes past the end"
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
refused_trunc=$(truncate -s $((size + 4096)) "$D" 2>&1) && fail "truncate of md0/data succeeded"
[[ $refused_trunc == *"Invalid argument"* ]] || fail "truncate: $refused_trunc"

log "a writer that goes on until the device is full (dd with no count) is stopped with ENOSPC"
# The first refused write-back retires the inode, and every write through
# it fails from then on; before, the writes went on for ever and each
# refused write-back left a thread waiting, thousands, until the daemon
# could start no more.  The cap (16 GiB) only ends a broken run.
py "
import errno
fd = os.open(D, os.O_WRONLY)
os.lseek(fd, $size, os.SEEK_SET)
buf = bytes(1 << 20)
n = 0
try:
    while n < 16 << 10:
        os.write(fd, buf)
        n += 1
    sys.exit('16 GiB written past the end without an error')
except OSError as e:
    if e.errno != errno.ENOSPC:
        raise
try:
    os.close(fd)
except OSError:
    pass
print('refused after', n, 'MiB past the end', file=sys.stderr)"
threads=$(live_threads "$DPID")
[ "$threads" -lt 200 ] || fail "the daemon has $threads threads after the refused write-backs"
expect_eq "$(stat -c %s "$D")" "$size" "size after a writer ran past the end"
cmp "$D" "$T/ref" || fail "contents after a writer ran past the end"
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 seek=$((size / 4096)) conv=notrunc 2>&1) &&
	fail "buffered write at the end through a new open succeeded"
[[ $out == *"No space left on device"* ]] || fail "buffered write at the end through a new open: $out"

# Every open of md0/data drops what the kernel cached of it, so a stale
# copy would show through a descriptor opened before the change: fd 4.
# (page_via_fd4 BLOCK reads it.)

log "a write over the array's NBD export: no stale copy, and no older dirty page lands over it"
U=$(attr md0/nbd)
exec 4<"$D"
page_via_fd4 300 >/dev/null # now cached
qemu-io -f raw -c "write -q -P 0x5a $((300 * 4096)) 4096" "$U" || fail "qemu-io write"
printf '\x5a%.0s' $(seq 4096) | dd of="$T/ref" bs=4096 seek=300 conv=notrunc status=none
cmp <(page_via_fd4 300) <(dd if="$T/ref" bs=4096 skip=300 count=1 status=none) ||
	fail "a page cached before a write over NBD still shows the older bytes"
# A page made dirty before the NBD write is written back before it (when
# the kernel has not written it back by itself already), never after.
py "
fd = os.open(D, os.O_WRONLY)
os.pwrite(fd, b'e' * 4096, 302 * 4096)
import subprocess
subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -q -P 0x5b $((301 * 4096)) 8192', '$U'], check=True)
os.fsync(fd)
os.close(fd)"
printf '\x5b%.0s' $(seq 8192) | dd of="$T/ref" bs=4096 seek=301 conv=notrunc status=none
exec 4<&-
cmp "$D" "$T/ref" || fail "md0/data after a write over NBD"
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"

log "a new open drops what the kernel cached; an O_DIRECT write lands after dirty pages"
exec 4<"$D"
page_via_fd4 400 >/dev/null # now cached
head -c 4096 /dev/urandom >"$T/behind"
for img in "$IMG/vda" "$IMG/vdb"; do
	dd if="$T/behind" of="$img" bs=512 seek=$(($(attr "md0/md/dev-$(basename "$img")/offset") + 8 * 400)) \
		conv=notrunc status=none
done
cmp -s <(page_via_fd4 400) "$T/behind" && fail "the page was not cached (nothing to show)"
exec 4<&-
cmp <(dd if="$D" bs=4096 skip=400 count=1 status=none) "$T/behind" || fail "a new open read a stale page"
dd if="$T/behind" of="$T/ref" bs=4096 seek=400 conv=notrunc status=none
head -c 4096 /dev/urandom >"$T/direct"
py "
fd = os.open(D, os.O_WRONLY)
os.pwrite(fd, b'o' * 4096, 401 * 4096)
d = os.open(D, os.O_WRONLY | os.O_DIRECT)
import mmap
buf = mmap.mmap(-1, 4096)
buf.write(open('$T/direct', 'rb').read())
os.pwrite(d, buf, 401 * 4096)
os.close(d)
os.fsync(fd)
os.close(fd)"
dd if="$T/direct" of="$T/ref" bs=4096 seek=401 conv=notrunc status=none
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"

log "an open while another is open keeps the cache: its dirty pages stay dirty"
# A block device's page cache lives from its first open to its last
# close; a second open neither writes back nor drops what the first made.
head -c 4096 /dev/urandom >"$T/kept"
leg_offset=$(($(attr md0/md/dev-vda/offset) * 512))
py "
fd = os.open(D, os.O_RDWR)
new = open('$T/kept', 'rb').read()
os.pwrite(fd, new, 500 * 4096)
r = os.open(D, os.O_RDONLY)
seen = os.pread(r, 4096, 500 * 4096)
with open('$IMG/vda', 'rb') as leg:
    leg.seek($leg_offset + 500 * 4096)
    on_leg = leg.read(4096)
os.close(r)
os.fsync(fd)
os.close(fd)
assert seen == new, 'the second open did not read what the first wrote'
assert on_leg != new, 'the second open wrote the dirty page back'"
dd if="$T/kept" of="$T/ref" bs=4096 seek=500 conv=notrunc status=none
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"

log "a repair that changes bytes under cached pages: no stale copy"
cache_repair

log "log, which grows: its size and end, by path and through a held descriptor"
exec 5<"$MNT/log"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(tail -n 1 "$MNT/log")" "$(cat "$MNT/log" | tail -n 1)" "tail of log"
expect_eq "$(stat -L -c %s /proc/self/fd/5)" "$(wc -c <"$MNT/log")" "size of log through a held descriptor"
exec 5<&-

log "a member failing during write-back: md's usual failure, nothing lost"
cache_member_fails

log "stop while open is refused; an inactive array's opens behave as before"
exec 3<"$D"
expect_err "Device or resource busy" md0/md/array_state inactive
exec 3<&-
put md0/md/array_state inactive
expect_eq "$(stat -c %s "$D")" 0 "size once stopped"
expect_eq "$(wc -c <"$D")" 0 "read once stopped"
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc 2>&1) && fail "write once stopped succeeded"
[[ $out == *"No space left on device"* ]] || fail "write once stopped: $out"

log "rerun (vdb re-added and recovered), a loop device, ext4, e2fsck"
cache_rerun_ext4
cache_read_ext4 --direct-io=on
log "SIGTERM: what is dirty in the cache reaches every member before the arrays stop"
cp "$D" "$T/ref" # what ext4 left
head -c 65536 /dev/urandom >"$T/chunk4"
python3 -c "
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, open('$T/chunk4', 'rb').read(), 9 << 20)
open('$T/dirty', 'w').close()
time.sleep(60)" "$D" &
HOLDER=$!
for _ in $(seq 100); do [ -e "$T/dirty" ] && break; sleep 0.05; done
[ -e "$T/dirty" ] || fail "the writer never wrote"
dd if="$T/chunk4" of="$T/ref" bs=65536 seek=144 conv=notrunc status=none
# The kernel may write it back by itself first (it does soon when much of
# the machine's memory is dirty); then this run shows nothing.
off=$(attr md0/md/dev-vda/offset)
if leg_data "$IMG/vda" $((off + (9 << 11))) 128 | cmp -s - "$T/chunk4"; then
	log "(written back before SIGTERM already: nothing to show this run)"
fi
kill -TERM "$DPID"
for _ in $(seq 200); do grep -qF "md: md0 stopped." "$T/daemon.log" && break; sleep 0.05; done
grep -qF "md: md0 stopped." "$T/daemon.log" || fail "md0 did not stop on SIGTERM"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
for _ in $(seq 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$DPID" 2>/dev/null || fail "the daemon still runs after SIGTERM"
DPID=
for img in "$IMG/vda" "$IMG/vdb"; do
	leg_data "$img" "$off" $((size / 512)) | cmp - "$T/ref" ||
		fail "$(basename "$img"): the dirty pages at SIGTERM did not reach it"
done
final_checks
log "ok"
