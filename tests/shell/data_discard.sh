#!/bin/bash
# Discard end to end: fallocate on md0/data (punch hole and zero range, as
# a block device takes them), a loop device over md0/data forwarding
# blkdiscard, the discards reaching every member (holes punched in image
# files; counted in dev-NAME/io), and the bitmap counting a discard as a
# write: on a degraded array with a 4 KiB bitmap chunk, blkdiscard of the
# whole device leaves every chunk dirty, as real md does (4736 of 4736
# on 20000 KiB members).  What reads back is what md reads back from the
# members: zeros where they were discarded, the data elsewhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$T/img
mkdir -p "$IMG"
"$MDFUSE" create -l1 -n2 --bitmap-chunk=4K --image-size=20000K "$IMG/a" "$IMG/b" >/dev/null 2>&1 ||
	fail "mdfuse create"
start_daemon
new_array md0 "$IMG/a" "$IMG/b"
put md0/md/array_state active
wait_idle md0
D=$MNT/md0/data
size=$(stat -c %s "$D")

# discarded NAME: the sectors discarded on member NAME so far
discarded() { awk '{ print $4 }' "$MNT/md0/md/dev-$1/io"; }

head -c "$size" /dev/urandom >"$T/want"
dd if="$T/want" of="$D" bs=1M oflag=direct conv=notrunc status=none || fail "filling md0"

log "punch hole: zeros in the range on md0 and on both members, data elsewhere"
fallocate -p -o 1048576 -l 262144 "$D" || fail "fallocate --punch-hole"
dd if=/dev/zero of="$T/want" bs=4096 seek=256 count=64 conv=notrunc status=none
cmp "$D" "$T/want" || fail "md0 after punch hole"
check_legs md0 "$T/want" "$IMG/a" "$IMG/b"
expect_eq "$(discarded a)" 512 "sectors discarded on a"
expect_eq "$(discarded b)" 512 "sectors discarded on b"
# A hole, not written zeros: the image files gave the blocks back.
[ "$(du -k --apparent-size "$IMG/a" | cut -f1)" -gt "$(du -k "$IMG/a" | cut -f1)" ] ||
	fail "no hole in a: $(du -k "$IMG/a")"

log "zero range: zeros written through md"
fallocate -z -o 4194304 -l 65536 "$D" || fail "fallocate --zero-range"
dd if=/dev/zero of="$T/want" bs=4096 seek=1024 count=16 conv=notrunc status=none
cmp "$D" "$T/want" || fail "md0 after zero range"
check_legs md0 "$T/want" "$IMG/a" "$IMG/b"
expect_eq "$(discarded a)" 512 "zero range is no discard"

log "refusals, as blkdev_fallocate: mode 0, unaligned, past the end"
out=$(fallocate -o 0 -l 4096 "$D" 2>&1) && fail "fallocate mode 0 succeeded"
[[ $out == *"Operation not supported"* ]] || fail "mode 0: $out"
out=$(fallocate -p -o 100 -l 4096 "$D" 2>&1) && fail "unaligned punch hole succeeded"
[[ $out == *"Invalid argument"* ]] || fail "unaligned: $out"
out=$(fallocate -z -o $((size - 4096)) -l 8192 "$D" 2>&1) && fail "zero range past the end succeeded"
[[ $out == *"Invalid argument"* ]] || fail "past the end: $out"
# With KEEP_SIZE (punch hole has it) a range past the end is cut there.
fallocate -p -o $((size - 4096)) -l 1048576 "$D" || fail "punch hole across the end"
dd if=/dev/zero of="$T/want" bs=4096 seek=$((size / 4096 - 1)) count=1 conv=notrunc status=none
cmp "$D" "$T/want" || fail "md0 after punch hole across the end"
expect_eq "$(stat -c %s "$D")" "$size" "md0 size"

log "a loop device over md0/data forwards blkdiscard"
L=$(loop_attach "$D")
blkdiscard -o 8388608 -l 1048576 "$L" || fail "blkdiscard on the loop device"
loop_detach "$L"
dd if=/dev/zero of="$T/want" bs=1M seek=8 count=1 conv=notrunc status=none
cmp "$D" "$T/want" || fail "md0 after blkdiscard"
check_legs md0 "$T/want" "$IMG/a" "$IMG/b"
[ "$(discarded b)" -gt 512 ] || fail "the loop device's discard did not reach b"

log "degraded, with a bitmap: a discard of everything leaves every chunk dirty"
put md0/md/bitmap/time_base 1
put md0/md/dev-a/state faulty
L=$(loop_attach "$D")
blkdiscard "$L" || fail "blkdiscard of the whole loop device"
loop_detach "$L"
cmp "$D" <(head -c "$size" /dev/zero) || fail "md0 after discarding everything"
# Let the bitmap daemon run (it would clear clean bits on a healthy array).
sleep 6
put md0/md/array_state inactive
bits=$("$MDFUSE" examine -X "$IMG/b" | sed -n 's/^ *Bitmap : //p')
[[ $bits == "4736 bits (chunks), 4736 dirty (100.0%)" ]] || fail "bitmap of b: $bits"
# Host mdadm reads the same bitmap (from a block device: an image file
# would be read as an external bitmap file).
L=$(loop_attach -r "$IMG/b")
mdadm --examine-bitmap "$L" 2>/dev/null | grep_q "4736 dirty (100.0%)" ||
	fail "mdadm: $(mdadm --examine-bitmap "$L" 2>&1 | grep Bitmap)"
loop_detach "$L"

stop_daemon
final_checks
log "ok"
