#!/bin/bash
# The write-intent bitmap on disk while md0/data is written: a write sets
# its chunk's bit on every leg, the bit is cleared 2-3 daemon periods
# (time_base) after the last write, events_cleared follows events; with a
# failed leg the written chunks' bits stay and events_cleared stops; the
# re-added leg then recovers only those chunks.  mdadm --examine-bitmap,
# md/bitmap/* and mdstat's bitmap line agree throughout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon
fresh_array "$(cached_images raid1-64M-c1M 64M --bitmap=internal --bitmap-chunk=1M)"
D=$MNT/md0/data

# bits IMG: "events events_cleared chunk chunk ..." from a leg's bitmap
# (1.2 superblock at sector 8, bitmap at md/bitmap/location from it).
bits() {
	python3 - "$1" "$(attr md0/md/bitmap/location)" <<'PY'
import struct, sys
img, loc = sys.argv[1], int(sys.argv[2])
with open(img, "rb") as f:
    f.seek((8 + loc) * 512)
    sb = f.read(4096)
magic, _ = struct.unpack_from("<II", sb, 0)
assert magic == 0x6D746962, hex(magic)
events, cleared, sync_size = struct.unpack_from("<QQQ", sb, 24)
chunk = struct.unpack_from("<I", sb, 52)[0]
n = -(-sync_size * 512 // chunk)
on = [i for i in range(n) if sb[256 + i // 8] >> (i % 8) & 1]
print(events, cleared, *on)
PY
}
# set_bits IMG: only the chunk numbers
set_bits() { bits "$1" | cut -d' ' -f3-; }

# examine_bitmap IMG: the host's mdadm --examine-bitmap of a leg, through
# a fresh read-only loop device.
examine_bitmap() {
	local l
	l=$(loop_attach -r "$1")
	mdadm --examine-bitmap "$l" >"$T/xb.txt" 2>&1 || { cat "$T/xb.txt" >&2; fail "mdadm -X"; }
	loop_detach "$l"
	cat "$T/xb.txt"
}
xb_field() { sed -n "s/^ *$1 : //p" "$T/xb.txt"; }

# write_chunks N...: 4 KiB into each chunk N (1 MiB chunks)
write_chunks() {
	for c in "$@"; do
		dd if=/dev/urandom of="$D" bs=4096 count=1 seek=$((c * 256 + 1)) oflag=direct conv=notrunc status=none ||
			fail "write to chunk $c"
	done
}

# wait_clean IMG SECONDS [SINCE]: until no bit is set on the leg; prints
# the seconds since SINCE (an $EPOCHREALTIME, default now)
wait_clean() {
	local t0=${3:-$EPOCHREALTIME}
	until [ -z "$(set_bits "$1")" ]; do
		(($(echo "$EPOCHREALTIME - $t0 < $2" | bc))) || fail "$(basename "$1"): bits still set: $(set_bits "$1")"
		sleep 0.05
	done
	echo "$EPOCHREALTIME - $t0" | bc
}

log "attributes and the bitmap as real mdadm wrote it"
expect_eq "$(attr md0/md/bitmap/location)" +8 location
expect_eq "$(attr md0/md/bitmap/chunksize)" 1048576 chunksize
expect_eq "$(attr md0/md/bitmap/time_base)" 5 time_base
expect_eq "$(attr md0/md/bitmap/backlog)" 0 backlog
expect_eq "$(attr md0/md/bitmap/metadata)" internal metadata
expect_eq "$(attr md0/md/bitmap/can_clear)" true can_clear
[[ $(mdstat_line md0) == *" | bitmap: 0/1 pages [0KB], 1024KB chunk" ]] || fail "mdstat: $(mdstat_line md0)"
expect_eq "$(set_bits "$T/img/vda")" "" "bits before writing"
put md0/md/bitmap/time_base 1

# snap IMG: a copy of the leg's metadata area as it is now
snap() { dd if="$1" of="$1.snap" bs=64k count=1 status=none; }

log "a write sets its chunk's bit on every leg before it returns"
write_chunks 0 5 10
written=$EPOCHREALTIME
# Look at once: the daemon clears the bits two periods (2 s) later.
mdstat=$(mdstat_line md0)
snap "$T/img/vda"
snap "$T/img/vdb"
for leg in vda vdb; do expect_eq "$(set_bits "$T/img/$leg.snap")" "0 5 10" "$leg bits after the writes"; done
[[ $mdstat == *" | bitmap: 1/1 pages [4KB], 1024KB chunk" ]] || fail "mdstat: $mdstat"
examine_bitmap "$T/img/vda.snap" >/dev/null
expect_eq "$(xb_field Bitmap)" "63 bits (chunks), 3 dirty (4.8%)" "mdadm -X Bitmap"
expect_eq "$(xb_field Chunksize)" "1 MB" "mdadm -X Chunksize"
expect_eq "$(xb_field Daemon)" "1s flush period" "mdadm -X Daemon (time_base)"
expect_eq "$(xb_field "Write Mode")" Normal "mdadm -X Write Mode (backlog 0)"
expect_eq "$(xb_field "Sync Size" | cut -d' ' -f1)" "$(attr md0/md/component_size)" "mdadm -X Sync Size"
read -r ev_dirty ec _ <<<"$(bits "$T/img/vda.snap")"
expect_eq "$(xb_field Events)" "$ev_dirty" "mdadm -X Events"

log "idle: the bits clear after 2-3 daemon periods"
t=$(wait_clean "$T/img/vda" 8 "$written")
(($(echo "$t >= 1" | bc))) || fail "bits cleared after ${t}s, before two daemon periods"
wait_clean "$T/img/vdb" 2 >/dev/null
[[ $(mdstat_line md0) == *" | bitmap: 0/1 pages [0KB], 1024KB chunk" ]] || fail "mdstat: $(mdstat_line md0)"
wait_for md0/md/array_state clean 5
sleep 1.5
# Writes that reached every leg set events_cleared to the events of the
# dirty array they were written in (bitmap_endwrite).
for leg in vda vdb; do
	read -r ev ec _ <<<"$(bits "$T/img/$leg")"
	expect_eq "$ec" "$ev_dirty" "$leg events_cleared after idle"
	[ "$ev" -ge "$ec" ] || fail "$leg events $ev below events_cleared $ec"
done
examine_bitmap "$T/img/vdb" >/dev/null
expect_eq "$(xb_field Bitmap)" "63 bits (chunks), 0 dirty (0.0%)" "mdadm -X Bitmap after idle"
expect_eq "$(xb_field "Events Cleared")" "$ec" "mdadm -X Events Cleared"

log "a failed leg: written chunks stay dirty, events_cleared stops"
put md0/md/dev-vdb/state faulty
read -r ev0 ec0 _ <<<"$(bits "$T/img/vda")"
write_chunks 20 30
sleep 4
expect_eq "$(set_bits "$T/img/vda")" "20 30" "vda bits while degraded"
expect_eq "$(set_bits "$T/img/vdb")" "" "vdb bits (no longer written)"
read -r ev ec _ <<<"$(bits "$T/img/vda")"
expect_eq "$ec" "$ec0" "events_cleared while degraded"
[ "$ev" -gt "$ec" ] || fail "events $ev not past events_cleared $ec"
[[ $(mdstat_line md0) == *" | bitmap: 1/1 pages [4KB], 1024KB chunk" ]] || fail "mdstat: $(mdstat_line md0)"
examine_bitmap "$T/img/vda" >/dev/null
expect_eq "$(xb_field Bitmap)" "63 bits (chunks), 2 dirty (3.2%)" "mdadm -X Bitmap while degraded"
expect_eq "$(xb_field "Events Cleared")" "$ec0" "mdadm -X Events Cleared while degraded"

log "re-added, vdb recovers only the dirty chunks"
put md0/md/dev-vdb/state remove
# A stale block outside the dirty chunks: a bitmap-guided recovery leaves it.
off=$(attr md0/md/dev-vda/offset)
printf 'STALE' | dd of="$T/img/vdb" bs=512 seek=$((off + 40 * 2048)) conv=notrunc status=none
put md0/md/new_dev "$T/img/vdb"
wait_for md0/md/dev-vdb/state in_sync 60
wait_idle md0 60
expect_eq "$(attr md0/md/last_sync_action)" recovery "last_sync_action (6.1 words)"
expect_eq "$(attr md0/md/degraded)" 0 degraded
for c in 20 30; do
	cmp <(leg_data "$T/img/vda" $((off + c * 2048)) 2048) <(leg_data "$T/img/vdb" $((off + c * 2048)) 2048) ||
		fail "chunk $c not recovered"
done
[ "$(leg_data "$T/img/vdb" $((off + 40 * 2048)) 1 | head -c 5)" == STALE ] || fail "chunk 40 was copied: recovery was not bitmap-guided"
wait_clean "$T/img/vda" 6 >/dev/null
wait_clean "$T/img/vdb" 6 >/dev/null
stop_daemon
final_checks
log "ok"
