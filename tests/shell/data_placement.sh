#!/bin/bash
# Data written through md0/data, at aligned and unaligned offsets and
# lengths (a block device takes any, so the data file must), lands at
# data_offset on every leg byte for byte, reads back the same, and real md
# assembles the images to exactly that content with nothing to repair.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

unpack raid1-v1.2-bitmap "$T/img"
start_daemon
new_array md0 "$T/img/vda" "$T/img/vdb"
put md0/md/array_state active
D=$MNT/md0/data
size=$(stat -c %s "$D")
expect_eq "$size" $(($(attr md0/size) * 512)) "data file size"
cp "$D" "$T/ref"
cmp "$D" "$T/ref" || fail "two reads differ"

# put_at OFFSET LENGTH [DD_FLAGS]: LENGTH random bytes at byte OFFSET, in
# one write, to md0/data and to the reference copy.
n=0
put_at() {
	local off=$1 len=$2 flags=${3:-}
	n=$((n + 1))
	head -c "$len" /dev/urandom >"$T/chunk$n"
	# shellcheck disable=SC2086
	dd if="$T/chunk$n" of="$D" bs="$len" count=1 seek="$off" oflag=seek_bytes$flags \
		conv=notrunc status=none || fail "write of $len bytes at $off"
	dd if="$T/chunk$n" of="$T/ref" bs="$len" count=1 seek="$off" oflag=seek_bytes \
		conv=notrunc status=none
}

log "aligned writes, buffered and O_DIRECT"
put_at 0 4096
put_at 1048576 1048576
put_at 8192 65536 ,direct
put_at $((5 * 1048576)) $((2 * 1048576)) ,direct
log "unaligned writes: read-modify-write of the edge sectors"
put_at 100 1
put_at 511 2
put_at 4095 4098
put_at 2000000 333333
put_at $((3 * 1048576 + 7)) $((3 * 1048576))
put_at 1536 512
put_at $((size - 300)) 300
put_at $((size - 4096 - 1)) 2
# Many one-byte writes (dd bs=1): one request each.
head -c 600 /dev/urandom >"$T/bytes"
dd if="$T/bytes" of="$D" bs=1 seek=700001 conv=notrunc status=none || fail "bs=1 writes"
dd if="$T/bytes" of="$T/ref" bs=1 seek=700001 conv=notrunc status=none

log "concurrent unaligned writers sharing sectors"
pids=()
for s in 9000 9001 9002; do
	for i in $(seq 0 7); do
		off=$((s * 512 + i * 64))
		head -c 64 /dev/urandom >"$T/c$s.$i"
		dd if="$T/c$s.$i" of="$T/ref" bs=64 count=1 seek="$off" oflag=seek_bytes conv=notrunc status=none
		dd if="$T/c$s.$i" of="$D" bs=64 count=1 seek="$off" oflag=seek_bytes conv=notrunc status=none &
		pids+=($!)
	done
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent writer failed"; done

log "reads: whole, unaligned, O_DIRECT"
cmp "$D" "$T/ref" || fail "md0/data differs from what was written"
for spec in "777 12345" "0 1" "511 1" "4095 3" "$((size - 10)) 10" "1048575 1048577"; do
	set -- $spec
	a=$(dd if="$D" bs=65536 skip="$1" count="$2" iflag=skip_bytes,count_bytes status=none | sha256sum)
	b=$(dd if="$T/ref" bs=65536 skip="$1" count="$2" iflag=skip_bytes,count_bytes status=none | sha256sum)
	expect_eq "$a" "$b" "read of $2 bytes at $1"
done
a=$(dd if="$D" bs=1M iflag=direct status=none | sha256sum)
expect_eq "$a" "$(sha256sum <"$T/ref")" "O_DIRECT read of md0/data"
# A read crossing the end is cut short; at the end it reads nothing.
expect_eq "$(dd if="$D" bs=4096 skip=$((size - 1000)) iflag=skip_bytes status=none | wc -c)" 1000 "read crossing the end"
expect_eq "$(dd if="$D" bs=4096 skip="$size" iflag=skip_bytes status=none | wc -c)" 0 "read at the end"

log "every in-sync leg holds the data at data_offset"
check_legs md0 "$T/ref" "$T/img/vda" "$T/img/vdb"
want=$(sha "$T/ref")
expect_eq "$(sha256sum <"$D" | cut -d' ' -f1)" "$want" "sha256 of md0/data"

put md0/md/array_state inactive
check_legs md0 "$T/ref" "$T/img/vda" "$T/img/vdb"
log "real md assembles our images"
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
S=$T/orc/summary.txt
expect_eq "$(sed -n 's/^assembled: //p' "$S")" yes "oracle assembled"
expect_eq "$(sed -n 's/^assembled_resync_start: //p' "$S")" none "oracle resync_start (clean)"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$S")" "$want" "oracle md0_sha256"
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$S")" 0 "oracle mismatch_cnt"
stop_daemon
final_checks
log "ok"
