#!/bin/bash
# Write-behind on a RAID1 of a local image and an NBD member (qemu-nbd on
# a unix socket), made by `mdfuse create --write-behind` with the NBD
# member write-mostly, its data area slowed by a delay rule.  fio's write
# latency through md0/data: its 99th percentile with write-behind stays
# near the fast leg's, without (backlog 0) it is the slow leg's; both are
# printed.  max_backlog_used records the peak, never past backlog.  After
# a flush and a stop (which waits for the writes behind) the members
# hold the same bytes.  A kill -9 with writes behind leaves their bitmap
# bits set, and the next assembly copies them to the write-mostly member.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/nbd_lib.sh"
need_nbd_tools
command -v fio >/dev/null || fail "fio is not installed"

# What the slow leg adds to each data write, milliseconds.
SLOW_MS=200

mkdir -p "$T/img"
truncate -s 256M "$T/img/vdb"
SOCK=$T/vdb.sock
URI="nbd+unix:///vdb?socket=$SOCK"
qemu_serve "$T/img/vdb" "$SOCK" vdb

log "create: --write-behind=64, the NBD member write-mostly"
"$MDFUSE" create --level=1 --raid-devices=2 --assume-clean --image-size=256M \
	--bitmap-chunk=4M --write-behind=64 "$T/img/vda" --write-mostly "$URI" ||
	fail "create"
for d in "$T/img/vda" "$URI"; do
	"$MDFUSE" examine -X "$d" | grep_q -F "Write Mode : Allow write behind, max 64" ||
		fail "$d: no write-behind in the bitmap: $("$MDFUSE" examine -X "$d")"
done
"$MDFUSE" examine "$URI" | grep_q -F "Flags : write-mostly" || fail "$URI is not write-mostly"

start_daemon
new_array md0 "$T/img/vda" "$URI"
put md0/md/array_state active
[[ $(mdstat_line md0) == "md0 : active raid1 vdb[1](W) vda[0] | "* ]] || fail "mdstat: $(mdstat_line md0)"
expect_eq "$(attr md0/md/bitmap/backlog)" 64 backlog
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync,write_mostly "vdb state"
OFF=$(attr md0/md/dev-vdb/offset)
SECTORS=$(($(attr md0/md/component_size) * 2))
[ "$(attr md0/md/dev-vda/offset)" == "$OFF" ] || fail "the legs' data offsets differ"
# Only the data area is slowed: md writes the bitmap and the superblocks
# to every member and waits, write-behind or not.
SLOW_RULE="delay $SLOW_MS write $OFF-$((OFF + SECTORS - 1))"

# fio_p99 NAME [FIO ARGS...]: 4 KiB random O_DIRECT writes through md0/data
# at 50 a second for 5 s; prints the 99th percentile of their latency
# (microseconds).
fio_p99() {
	local name=$1
	shift
	fio --name="$name" --filename="$MNT/md0/data" --direct=1 --ioengine=psync \
		--rw=randwrite --bs=4k --offset=0 --size=128M --time_based --runtime=5 \
		--rate_iops=50 --output-format=json "$@" >"$T/$name.json" ||
		fail "fio $name"
	python3 -c '
import json, sys
w = json.load(open(sys.argv[1]))["jobs"][0]["write"]
assert w["total_ios"] > 0, "no writes"
print(int(w["clat_ns"]["percentile"]["99.000000"] / 1000))' "$T/$name.json"
}

log "fio, both legs fast"
fast=$(fio_p99 fast)
put md0/md/dev-vdb/fault "$SLOW_RULE"
log "fio, vdb's writes $SLOW_MS ms slower, write-behind (backlog 64)"
put md0/md/bitmap/max_backlog_used 0
behind=$(fio_p99 behind)
used=$(attr md0/md/bitmap/max_backlog_used)
[ "$used" -gt 0 ] && [ "$used" -le 64 ] || fail "max_backlog_used $used with backlog 64"
log "fio, vdb's writes $SLOW_MS ms slower, no write-behind (backlog 0)"
put md0/md/bitmap/backlog 0
put md0/md/bitmap/max_backlog_used 0
sync_p99=$(fio_p99 sync)
expect_eq "$(attr md0/md/bitmap/max_backlog_used)" 0 "max_backlog_used with backlog 0"
log "write latency p99: both legs fast $fast us; vdb slow: write-behind $behind us, without $sync_p99 us (max_backlog_used $used)"
[ "$sync_p99" -ge $((SLOW_MS * 1000)) ] ||
	fail "without write-behind the p99 ($sync_p99 us) is under the slow leg's $SLOW_MS ms"
[ "$behind" -lt $((SLOW_MS * 1000 / 2)) ] ||
	fail "with write-behind the p99 ($behind us) is not under half the slow leg's $SLOW_MS ms"

log "backlog 4 with eight writers at once: at most 4 behind"
put md0/md/bitmap/backlog 4
put md0/md/bitmap/max_backlog_used 0
fio --name=burst --filename="$MNT/md0/data" --direct=1 --ioengine=psync --rw=randwrite \
	--bs=4k --offset=0 --size=128M --numjobs=8 --time_based --runtime=3 \
	--output="$T/burst.out" || fail "fio burst"
used=$(attr md0/md/bitmap/max_backlog_used)
log "max_backlog_used $used"
[ "$used" -ge 1 ] && [ "$used" -le 4 ] || fail "max_backlog_used $used with backlog 4"

log "a flush, then a stop waits for the writes behind: the members agree"
put md0/md/bitmap/backlog 64
# Each writer its own 16 MiB: two writes in flight at once to the same
# block may land in either order on each leg, in md as here.
fio --name=last --filename="$MNT/md0/data" --direct=1 --ioengine=psync --rw=randwrite \
	--bs=64k --offset=128M --size=16M --offset_increment=16M --numjobs=4 --time_based --runtime=2 \
	--output="$T/last.out" || fail "fio last"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$MNT/md0/data" ||
	fail "fsync of md0/data"
# One more write, 2 s behind: the stop must wait for it.
put md0/md/dev-vdb/fault clear
put md0/md/dev-vdb/fault "delay 2000 write $OFF-$((OFF + SECTORS - 1))"
dd if=/dev/urandom of="$MNT/md0/data" bs=64k seek=3200 count=1 oflag=direct conv=notrunc status=none ||
	fail "the last write"
t0=$(date +%s%N)
put md0/md/array_state inactive
ms=$(ms_since "$t0")
log "stopped in $ms ms"
[ "$ms" -ge 1000 ] || fail "the stop did not wait for the write behind ($ms ms)"
cmp <(leg_data "$T/img/vda" "$OFF" "$SECTORS") <(leg_data "$T/img/vdb" "$OFF" "$SECTORS") ||
	fail "the members differ after the stop"
"$MDFUSE" examine "$T/img/vdb" | grep_q -F "State : clean" || fail "vdb not clean after the stop"

log "kill -9 with writes behind: the bits stay set, the next run copies them"
put md0/md/array_state active
put md0/md/dev-vdb/fault clear
put md0/md/dev-vdb/fault "delay 5000 write $OFF-$((OFF + SECTORS - 1))"
dd if=/dev/urandom of="$T/blk" bs=64k count=8 status=none
t0=$(date +%s%N)
for i in $(seq 0 7); do
	# One 64 KiB piece in each of eight 4 MiB bitmap chunks.
	dd if="$T/blk" of="$MNT/md0/data" bs=64k skip="$i" seek=$((i * 64 + 1)) count=1 \
		oflag=direct conv=notrunc status=none || fail "write $i"
done
ms=$(ms_since "$t0")
log "8 writes answered in $ms ms"
[ "$ms" -lt 2500 ] || fail "the writes waited for the slow leg ($ms ms)"
# Past the safe-mode delay (200 ms): the array stays dirty while writes
# are behind.
sleep 0.5
expect_eq "$(attr md0/md/array_state)" active "array_state with writes behind"
kill9_daemon
dirty=$("$MDFUSE" examine -X "$T/img/vda" | sed -n 's/.*Bitmap : .* bits (chunks), \([0-9]*\) dirty.*/\1/p')
log "dirty bits after the kill: $dirty"
[ "$dirty" -ge 8 ] || fail "$dirty bits set for 8 chunks written behind"
for i in $(seq 0 7); do
	cmp -s <(dd if="$T/blk" bs=64k skip="$i" count=1 status=none) \
		<(leg_data "$T/img/vda" $((OFF + (i * 64 + 1) * 128)) 128) || fail "vda lacks write $i"
	! cmp -s <(dd if="$T/blk" bs=64k skip="$i" count=1 status=none) \
		<(leg_data "$T/img/vdb" $((OFF + (i * 64 + 1) * 128)) 128) || fail "vdb got write $i before the kill"
done

start_daemon
new_array md0 "$T/img/vda" "$URI"
log_mark
put md0/md/array_state active
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync,write_mostly "vdb state after the crash"
wait_idle md0
log_has "md: resync of RAID array md0"
for i in $(seq 0 7); do
	cmp <(dd if="$T/blk" bs=64k skip="$i" count=1 status=none) \
		<(dd if="$MNT/md0/data" bs=64k skip=$((i * 64 + 1)) count=1 iflag=direct status=none) ||
		fail "md0/data lacks write $i"
done
put md0/md/array_state inactive
cmp <(leg_data "$T/img/vda" "$OFF" "$SECTORS") <(leg_data "$T/img/vdb" "$OFF" "$SECTORS") ||
	fail "the members differ after the resync"
put md0/md/array_state clear
