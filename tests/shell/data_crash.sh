#!/bin/bash
# Durability of md0/data: fsync is an fdatasync of every leg (none when
# nothing was written since the last one succeeded); a daemon
# killed with -9 in the middle of writes leaves the bit of every write
# that returned on every leg and dirty superblocks; reassembled, the
# array starts dirty as real md starts the same images, resyncs (bitmap
# guided), checks clean, and real md agrees on the result.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon
fresh_array "$(cached_images raid1-64M-c1M 64M --bitmap=internal --bitmap-chunk=1M)"
D=$MNT/md0/data

# legs_synced PYTHON: the legs the daemon fdatasync'ed while PYTHON ran
# (with D set), by name, sorted.
legs_synced() {
	strace -f -qq -p "$DPID" -e trace=fsync,fdatasync -o "$T/strace.out" &
	local strace=$!
	# Until strace has attached to every thread of the daemon.
	traced() { ! grep -qx 'TracerPid:[[:space:]]*0' /proc/"$DPID"/task/*/status; }
	for _ in $(seq 100); do traced && break; sleep 0.1; done
	traced || fail "strace never attached to every daemon thread"
	python3 -c "import os, sys; D = sys.argv[1]; $1" "$D"
	sleep 0.3
	kill "$strace"
	wait "$strace" 2>/dev/null || true
	# The legs' flushes overlap: strace may print a call "<unfinished ...>".
	sed -n 's/.*fdatasync(\([0-9]*\)[) ].*/\1/p' "$T/strace.out" | while read -r fd; do
		basename "$(readlink "/proc/$DPID/fd/$fd")"
	done | sort | tr '\n' ' '
}
FSYNC='fd = os.open(D, os.O_RDONLY); os.fsync(fd); os.close(fd)'

log "fsync of md0/data: an fdatasync of every leg"
expect_eq "$(legs_synced "$FSYNC")" "vda vdb " "legs fdatasync'ed by one fsync"
log "a flush with nothing written since the last is durable already: no fdatasync"
expect_eq "$(legs_synced "$FSYNC")" "" "legs fdatasync'ed by a second fsync"
# (The write's bitmap bit is flushed before it, so each leg may be
# fdatasync'ed more than once.)
expect_eq "$(legs_synced "fd = os.open(D, os.O_WRONLY | os.O_DIRECT); m = __import__('mmap').mmap(-1, 4096); os.pwrite(fd, m, 1 << 20); os.fsync(fd); os.close(fd)" | tr ' ' '\n' | sort -u | paste -sd' ')" \
	"vda vdb" "legs fdatasync'ed by an fsync after a write"

# sb_field IMG OFFSET: a little-endian u64 of a leg's 1.2 superblock
sb_field() {
	python3 -c 'import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(8 * 512 + int(sys.argv[2]))
    print(struct.unpack("<Q", f.read(8))[0])' "$1" "$2"
}
# set_bits IMG: the chunks whose bit is set on a leg
set_bits() {
	python3 - "$1" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(16 * 512)
    sb = f.read(4096)
sync_size, = struct.unpack_from("<Q", sb, 40)
chunk, = struct.unpack_from("<I", sb, 52)
n = -(-sync_size * 512 // chunk)
print(*[i for i in range(n) if sb[256 + i // 8] >> (i % 8) & 1])
PY
}

log "kill -9 while writes run"
fio --aux-path="$T" --name=crash --filename="$D" --direct=1 --ioengine=psync --rw=randwrite --bs=64k \
	--offset=0 --size=40M --time_based --runtime=30 --output="$T/fio.out" >/dev/null 2>&1 &
FIO=$!
sleep 1.5
dd if=/dev/urandom of="$D" bs=4096 count=1 seek=$((50 * 256)) oflag=direct conv=notrunc status=none ||
	fail "write to chunk 50"
kill9_daemon
wait "$FIO" 2>/dev/null || true
for leg in vda vdb; do
	bits=" $(set_bits "$T/img/$leg") "
	[[ $bits == *" 50 "* ]] || fail "$leg: the bit of a write that returned is not on disk: $bits"
	[[ $bits =~ \ [0-9]\  || $bits =~ \ [1-3][0-9]\  ]] || fail "$leg: no bit set where fio wrote: $bits"
	# resync_offset 0: the superblock says the array was active.
	expect_eq "$(sb_field "$T/img/$leg" 208)" 0 "$leg resync_offset"
done

log "real md assembles a copy of the crashed images"
mkdir -p "$T/copy"
cp --sparse=always "$T/img/vda" "$T/img/vdb" "$T/copy/"
oracle_inspect "$T/orc1" "$T/copy/vda" "$T/copy/vdb"
S=$T/orc1/summary.txt
want_sha=$(sed -n 's/^md0_sha256: //p' "$S")
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$S")" 0 "oracle mismatch_cnt after its resync"

log "reassembled: dirty as the kernel says, resynced, checked"
start_daemon
# mdadm bound vdb first (mdstat lists members in reverse bind order).
new_array md0 "$T/img/vdb" "$T/img/vda"
put md0/md/array_state read-auto
expect_eq "$(attr md0/md/resync_start)" "$(sed -n 's/^assembled_resync_start: //p' "$S")" "resync_start"
expect_eq "$(mdstat_line md0)" "$(sed -n 's/^assembled_mdstat: //p' "$S")" "mdstat stanza (read-auto)"
put md0/md/array_state active
# The md thread starts the resync: wait for it to begin, then to end.
wait_for md0/md/last_sync_action "$(sed -n 's/^synced_last_sync_action: //p' "$S")" 30
wait_idle md0 120
expect_eq "$(attr md0/md/resync_start)" none "resync_start after the resync"
put md0/md/sync_action check
wait_for md0/md/last_sync_action check 30
wait_idle md0 120
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt"
expect_eq "$(sha256sum <"$D" | cut -d' ' -f1)" "$want_sha" "md0 after the resync (vda's data wins, as in real md)"
put md0/md/array_state inactive
stop_daemon

log "real md finds our resynced images clean"
oracle_inspect "$T/orc2" "$T/img/vda" "$T/img/vdb"
S=$T/orc2/summary.txt
expect_eq "$(sed -n 's/^assembled_resync_start: //p' "$S")" none "oracle resync_start"
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$S")" 0 "oracle mismatch_cnt"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$S")" "$want_sha" "oracle md0_sha256"
final_checks
log "ok"
