#!/bin/bash
# md0/data in each array mode, as /dev/md0 on Linux 6.1 (checked in the
# oracle): readonly refuses writes with EPERM (the open succeeds), read-auto
# turns active at the first write and clean once idle, and the end of the
# array behaves as the end of a block device; O_DSYNC and O_SYNC writes
# flush every member before they return.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

unpack raid1-v1.2-bitmap "$T/img"
before=$(cat "$T/img/vda" "$T/img/vdb" | sha256sum)
start_daemon
new_array md0 "$T/img/vda" "$T/img/vdb"
D=$MNT/md0/data

log "inactive: no capacity"
expect_eq "$(stat -c %s "$D")" 0 "size while inactive"
expect_eq "$(wc -c <"$D")" 0 "read while inactive"
out=$(dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc 2>&1) && fail "write while inactive succeeded"
[[ $out == *"No space left on device"* ]] || fail "write while inactive: $out"

log "readonly: open for writing works, writes fail with EPERM"
put md0/md/array_state readonly
expect_eq "$(attr md0/md/array_state)" readonly
exec 3<>"$D" || fail "open for writing of a readonly array"
exec 3>&-
for flags in "" ",direct"; do
	out=$(dd if=/dev/zero of="$D" bs=4096 count=1 conv=notrunc oflag=sync$flags 2>&1) &&
		fail "write to a readonly array succeeded"
	[[ $out == *"Operation not permitted"* ]] || fail "write to a readonly array: $out"
done
cp "$D" "$T/ref"
expect_eq "$(stat -c %s "$T/ref")" $(($(attr md0/size) * 512)) "readable while readonly"
expect_eq "$(cat "$T/img/vda" "$T/img/vdb" | sha256sum)" "$before" "images after readonly"

log "read-auto: the first write switches to active, idle makes it clean"
put md0/md/array_state read-auto
expect_eq "$(attr md0/md/array_state)" read-auto
expect_eq "$(cat "$T/img/vda" "$T/img/vdb" | sha256sum)" "$before" "images while read-auto"
head -c 8192 /dev/urandom >"$T/chunk"
exec 3<>"$D"
dd if="$T/chunk" of="$D" bs=8192 seek=1 conv=notrunc status=none || fail "write in read-auto"
st=$(attr md0/md/array_state)
case $st in active | write-pending) ;; *) fail "array_state after the first write: $st" ;; esac
log "open descriptor: readonly is refused"
expect_err "Device or resource busy" md0/md/array_state readonly
exec 3>&-
wait_for md0/md/array_state clean 5
dd if="$T/chunk" of="$T/ref" bs=8192 seek=1 conv=notrunc status=none
cmp "$D" "$T/ref" || fail "contents after the read-auto write"

log "the end of the array"
size=$(stat -c %s "$D")
for flags in "" ",direct"; do
	out=$(dd if=/dev/zero of="$D" bs=512 seek=$((size / 512)) count=1 conv=notrunc oflag=sync$flags 2>&1) &&
		fail "write at the end succeeded"
	[[ $out == *"No space left on device"* ]] || fail "write at the end: $out"
done
# A write crossing the end is cut short there, then dd's next write fails.
head -c 2048 /dev/urandom >"$T/cross"
out=$(dd if="$T/cross" of="$D" bs=2048 seek=$((size - 1024)) oflag=seek_bytes conv=notrunc 2>&1) &&
	fail "write crossing the end succeeded"
[[ $out == *"No space left on device"* ]] || fail "write crossing the end: $out"
head -c 1024 "$T/cross" | dd of="$T/ref" bs=1024 seek=$((size - 1024)) oflag=seek_bytes conv=notrunc status=none
cmp "$D" "$T/ref" || fail "contents after the write crossing the end"
expect_eq "$(dd if="$D" bs=1M skip=$((size - 512)) iflag=skip_bytes status=none | wc -c)" 512 "read crossing the end"
expect_eq "$(dd if="$D" bs=1M skip="$size" iflag=skip_bytes status=none | wc -c)" 0 "read at the end"
expect_eq "$(stat -c %s "$D")" "$size" "size after writes at the end"

log "O_DSYNC and O_SYNC: a write is durable before it returns (every member flushed)"
# flushes: the members' flush counts (dev-*/io's third field), summed.
flushes() { for m in vda vdb; do attr "md0/md/dev-$m/io" | cut -d' ' -f3; done | paste -sd' '; }
head -c 65536 /dev/urandom >"$T/chunk"
for flags in dsync dsync,direct sync sync,direct ""; do
	f0=$(flushes)
	dd if="$T/chunk" of="$D" bs=65536 seek=3 conv=notrunc status=none ${flags:+oflag=$flags} ||
		fail "write with oflag=$flags"
	f1=$(flushes)
	if [ -n "$flags" ]; then
		read -r a0 b0 <<<"$f0"
		read -r a1 b1 <<<"$f1"
		[ "$a1" -gt "$a0" ] && [ "$b1" -gt "$b0" ] ||
			fail "oflag=$flags: member flushes $f0 -> $f1 (wanted each to grow)"
	fi
done
dd if="$T/chunk" of="$T/ref" bs=65536 seek=3 conv=notrunc status=none
cmp "$D" "$T/ref" || fail "contents after the O_DSYNC writes"

log "a close just made does not hold the array: the stop follows it"
# close(2) of /dev/md0 is done when it returns; FUSE's RELEASE comes after,
# possibly to another serving thread than the stop's write.
for i in $(seq 1 100); do
	head -c 4096 "$D" >/dev/null || fail "read $i"
	put md0/md/array_state readonly
	put md0/md/array_state active
done

put md0/md/array_state inactive
check_legs md0 "$T/ref" "$T/img/vda" "$T/img/vdb"
stop_daemon
final_checks
log "ok"
