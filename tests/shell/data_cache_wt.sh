#!/bin/bash
# md0/data with --data-cache=writethrough: opens go through the kernel's
# page cache for reads, and every write reaches md before write(2)
# returns.  Checked here: reads are served from the cache (a second read
# of the same pages is no request); a buffered write is on every member
# when it returns, one request per write, its error the writer's; a write
# past the end fails at once and never moves the end; a write-only open
# writes part of a page; a shared mmap reaches every member at msync; an
# O_DIRECT write through another descriptor drops the pages it covers from
# a descriptor that cached them, and O_DIRECT still reaches md per
# request; a repair that changes bytes under cached pages leaves no stale
# copy; a member failing under a buffered write is md's usual failure;
# ext4 on a loop device passes e2fsck.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/data_cache_lib.sh"

cache_start writethrough

log "inactive: no capacity, writes fail at once"
expect_eq "$(stat -c %s "$D")" 0 "size while inactive"
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc 2>&1) && fail "write while inactive succeeded"
[[ $out == *"No space left on device"* ]] || fail "write while inactive: $out"

put md0/md/array_state active
wait_idle md0
size=$(($(attr md0/size) * 512))
expect_eq "$(stat -c %s "$D")" "$size" "size once running"
head -c "$size" /dev/urandom >"$T/ref"
dd if="$T/ref" of="$D" bs=1M oflag=direct conv=notrunc status=none || fail "O_DIRECT fill"

log "reads are cached: the same pages read again through one descriptor are no request"
exec 4<"$D"
r0=$(requests read)
cmp <(python3 -c "import os, sys; sys.stdout.buffer.write(os.pread(4, 1 << 20, 2 << 20))") \
	<(dd if="$T/ref" bs=1M skip=2 count=1 status=none) || fail "first read"
r1=$(requests read)
[ $((r1 - r0)) -ge 1 ] || fail "the first read reached md in no request"
cmp <(python3 -c "import os, sys; sys.stdout.buffer.write(os.pread(4, 1 << 20, 2 << 20))") \
	<(dd if="$T/ref" bs=1M skip=2 count=1 status=none) || fail "second read"
expect_eq "$(($(requests read) - r1))" 0 "requests of a second read of cached pages"

log "a buffered write is on every member when it returns, one request each"
head -c 1048576 /dev/urandom >"$T/chunk"
w0=$(requests write)
x0=$(requests getxattr)
py "
fd = os.open(D, os.O_WRONLY)
c = open('$T/chunk', 'rb').read()
for i in range(64):
    os.pwrite(fd, c[i * 4096:(i + 1) * 4096], 4096 * (1024 + 2 * i))
os.close(fd)"
for i in $(seq 0 63); do
	dd if="$T/chunk" of="$T/ref" bs=4096 skip="$i" seek=$((1024 + 2 * i)) count=1 conv=notrunc status=none
done
expect_eq "$(($(requests write) - w0))" 64 "write requests of 64 buffered writes"
[ $(($(requests getxattr) - x0)) -le 1 ] || fail "64 buffered writes asked for xattrs each time"
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"
# The pages written stay cached, with what was written.
cmp <(page_via_fd4 1026) <(dd if="$T/ref" bs=4096 skip=1026 count=1 status=none) ||
	fail "a descriptor open across the writes reads the old page"

log "the end: a write at it fails at once, one crossing it is cut there; the end stays"
out=$(dd if=/dev/zero of="$D" bs=4096 seek=$((size / 4096)) count=1 conv=notrunc 2>&1) &&
	fail "buffered write at the end succeeded"
[[ $out == *"No space left on device"* ]] || fail "buffered write at the end: $out"
head -c 8192 /dev/urandom >"$T/cross"
n=$(python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
print(os.pwrite(fd, open('$T/cross', 'rb').read(), $size - 4096))" "$D") || fail "write crossing the end"
expect_eq "$n" 4096 "bytes written by a write crossing the end"
head -c 4096 "$T/cross" | dd of="$T/ref" bs=4096 seek=$((size / 4096 - 1)) conv=notrunc status=none
expect_eq "$(stat -c %s "$D")" "$size" "size after writes past the end"
expect_eq "$(stat -L -c %s /proc/self/fd/4)" "$size" "size through a held descriptor"
expect_eq "$(dd if="$D" bs=1M skip="$size" iflag=skip_bytes status=none | wc -c)" 0 "read at the end"
cmp "$D" "$T/ref" || fail "contents after writes past the end"

log "a write-only open writes part of a page"
cache_partial_write

log "a shared writable mmap: msync writes it to every member"
cache_mmap_write

log "O_DIRECT reaches md per request and drops what another descriptor cached"
page_via_fd4 2048 >/dev/null
page_via_fd4 2049 >/dev/null
head -c 32768 /dev/urandom >"$T/direct"
w0=$(requests write)
dd if="$T/direct" of="$D" bs=4096 count=8 seek=2048 oflag=direct conv=notrunc status=none || fail "O_DIRECT write"
dd if="$T/direct" of="$T/ref" bs=4096 seek=2048 conv=notrunc status=none
expect_eq "$(($(requests write) - w0))" 8 "write requests of 8 O_DIRECT writes"
cmp <(page_via_fd4 2049) <(head -c 8192 "$T/direct" | tail -c 4096) ||
	fail "a descriptor that cached the page still reads what O_DIRECT replaced"
dd if="$D" bs=1M iflag=direct status=none | cmp - "$T/ref" || fail "O_DIRECT read back"
check_legs md0 "$T/ref" "$IMG/vda" "$IMG/vdb"

exec 4<&-
log "a repair that changes bytes under cached pages: no stale copy"
cache_repair

log "a member failing under a buffered write: md's usual failure, nothing lost, no error"
cache_member_fails

log "the last member failing: the writer gets the error"
put md0/md/dev-vda/fault write-error
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 seek=3000 conv=notrunc 2>&1) &&
	fail "a write with no member left to take it succeeded"
[[ $out == *"Input/output error"* ]] || fail "write with no member left: $out"
put md0/md/dev-vda/fault clear

log "rerun (vdb re-added and recovered), a loop device, ext4, e2fsck"
put md0/md/array_state inactive
cache_rerun_ext4
cache_read_ext4 -r
log "SIGTERM stops the arrays and unmounts"
stop_daemon
grep -qF "md: md0 stopped." "$T/daemon.log" || fail "md0 did not stop on SIGTERM"
final_checks
log "ok"
