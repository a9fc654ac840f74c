#!/bin/bash
# The NBD export of each running array (md0/nbd reads its URI): sizes and
# flags as nbdinfo sees them, qemu-img compare and nbdcopy against
# md0/data, qemu-io writes (aligned, unaligned, FUA) landing on every
# member, flush, trim and write-zeroes reaching the members, several
# clients at once, a connected client holding the array open, read-only
# for a read-only array, and the sockets gone when the arrays stop.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/nbd_lib.sh"
need_nbd_tools

mkdir -p "$T/img"
"$MDFUSE" create --level=1 --raid-devices=2 --image-size=64M --assume-clean \
	"$T/img/vda" "$T/img/vdb" >/dev/null || fail "create"
start_daemon --nbd-dir "$T/nbd"
new_array md0 "$T/img/vda" "$T/img/vdb"
# no_uri: md0/nbd reads ENODEV (no export while the array is stopped)
no_uri() {
	[ "$(cat "$MNT/md0/nbd" 2>&1)" == "cat: $MNT/md0/nbd: No such device" ] ||
		fail "md0/nbd of a stopped array: $(cat "$MNT/md0/nbd" 2>&1)"
}
no_uri
put md0/md/array_state active
U=$(attr md0/nbd)
expect_eq "$U" "nbd+unix:///md0?socket=$T/nbd/md0.sock" "md0/nbd"
wait_uri "$U"

log "nbdinfo: size and flags"
nbdinfo "$U" >"$T/info" || fail "nbdinfo"
expect_eq "$(nbdinfo --size "$U")" $(($(attr md0/size) * 512)) "export size"
for f in "can_flush: true" "can_fua: true" "can_trim: true" "can_zero: true" \
	"can_multi_conn: true" "is_read_only: false"; do
	grep -qF "$f" "$T/info" || { cat "$T/info" >&2; fail "nbdinfo lacks $f"; }
done
expect_eq "$(qemu-img info --output=json "$U" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')" \
	$(($(attr md0/size) * 512)) "qemu-img virtual size"

log "qemu-img compare and nbdcopy equal md0/data"
dd if=/dev/urandom of="$MNT/md0/data" bs=1M count=16 seek=4 oflag=direct conv=notrunc status=none
qemu-img compare -f raw -F raw "$MNT/md0/data" "$U" >/dev/null || fail "qemu-img compare"
nbdcopy "$U" "$T/copy" || fail "nbdcopy out"
cmp "$T/copy" "$MNT/md0/data" || fail "nbdcopy's copy differs from md0/data"

log "writes through the export land on every member"
off=$(attr md0/md/dev-vda/offset)
offb=$(attr md0/md/dev-vdb/offset)
qemu-io -f raw -c "write -q -P 0xab 1M 64k" "$U" || fail "qemu-io write"
python3 -c 'import sys; sys.stdout.buffer.write(b"\xab" * 65536)' >"$T/ab"
cmp <(dd if="$MNT/md0/data" bs=64k skip=16 count=1 status=none) "$T/ab" || fail "md0/data after the write"
cmp <(leg_data "$T/img/vda" $((off + 2048)) 128) "$T/ab" || fail "vda after the write"
cmp <(leg_data "$T/img/vdb" $((offb + 2048)) 128) "$T/ab" || fail "vdb after the write"
# Unaligned: 3000 bytes at 1000.
qemu-io -f raw -c "write -q -P 0xcd 1000 3000" "$U" || fail "qemu-io unaligned write"
python3 - "$MNT/md0/data" "$T/copy" <<'PY' || fail "unaligned write"
import sys
new = open(sys.argv[1], "rb").read(8192)
old = open(sys.argv[2], "rb").read(8192)
want = old[:1000] + b"\xcd" * 3000 + old[4000:]
sys.exit(0 if new == want else 1)
PY

log "flush and FUA reach every member"
read -r _ _ fa0 _ < <(attr md0/md/dev-vda/io)
read -r _ _ fb0 _ < <(attr md0/md/dev-vdb/io)
qemu-io -f raw -c "flush" "$U" || fail "qemu-io flush"
read -r _ _ fa1 _ < <(attr md0/md/dev-vda/io)
read -r _ _ fb1 _ < <(attr md0/md/dev-vdb/io)
[ "$fa1" -gt "$fa0" ] && [ "$fb1" -gt "$fb0" ] || fail "flush: vda $fa0 -> $fa1, vdb $fb0 -> $fb1"
qemu-io -f raw -c "write -q -f -P 0x11 2M 4k" "$U" || fail "qemu-io FUA write"
read -r _ _ fa2 _ < <(attr md0/md/dev-vda/io)
read -r _ _ fb2 _ < <(attr md0/md/dev-vdb/io)
[ "$fa2" -gt "$fa1" ] && [ "$fb2" -gt "$fb1" ] || fail "FUA: vda $fa1 -> $fa2, vdb $fb1 -> $fb2"

log "trim and write-zeroes"
read -r _ _ _ da0 < <(attr md0/md/dev-vda/io)
qemu-io -f raw -c "discard -q 8M 1M" "$U" || fail "qemu-io discard"
read -r _ _ _ da1 < <(attr md0/md/dev-vda/io)
expect_eq $((da1 - da0)) 2048 "sectors discarded on vda"
cmp <(dd if="$MNT/md0/data" bs=1M skip=8 count=1 status=none) <(head -c 1M /dev/zero) || fail "trimmed range"
cmp <(leg_data "$T/img/vdb" $((offb + 8 * 2048)) 2048) <(head -c 1M /dev/zero) || fail "trimmed range on vdb"
qemu-io -f raw -c "write -q -z 10M 1M" -c "write -q -z 12345 1000" "$U" || fail "qemu-io write -z"
cmp <(dd if="$MNT/md0/data" bs=1M skip=10 count=1 status=none) <(head -c 1M /dev/zero) || fail "zeroed range"
cmp <(dd if="$MNT/md0/data" bs=1 skip=12345 count=1000 status=none) <(head -c 1000 /dev/zero) || fail "zeroed bytes"
cmp <(leg_data "$T/img/vda" $((off + 10 * 2048)) 2048) <(head -c 1M /dev/zero) || fail "zeroed range on vda"

log "several clients at once: nbdcopy in (multi-conn) and qemu-io readers"
head -c 64M /dev/urandom >"$T/src"
size=$(($(attr md0/size) * 512))
head -c "$size" "$T/src" >"$T/src.trim"
qemu-io -f raw -c "sleep 500" -c "read -q 0 16M" "$U" &
R1=$!
nbdcopy --connections=4 "$T/src.trim" "$U" || fail "nbdcopy in"
wait "$R1" || fail "a concurrent reader"
cmp "$MNT/md0/data" "$T/src.trim" || fail "md0/data after nbdcopy in"
check_legs md0 "$T/src.trim" "$T/img/vda" "$T/img/vdb"
put md0/md/sync_action check
wait_for md0/md/sync_action idle 30
expect_eq "$(attr md0/md/mismatch_cnt)" 0 mismatch_cnt

log "a connected client holds the array open"
qemu-io -f raw -c "sleep 2000" "$U" &
R2=$!
sleep 0.5
expect_err "Device or resource busy" md0/md/array_state inactive
wait "$R2" || fail "the client"
sleep 0.3
put md0/md/array_state inactive
sleep 0.3
[ ! -e "$T/nbd/md0.sock" ] || fail "the socket outlives the array"
no_uri

log "a read-only array is exported read-only"
put md0/md/array_state readonly
U=$(attr md0/nbd)
wait_uri "$U"
nbdinfo "$U" | grep_q -F "is_read_only: true" || fail "read-only export not read-only"
qemu-img compare -f raw -F raw "$T/src.trim" "$U" >/dev/null || fail "read-only export's data"
out=$(qemu-io -f raw -c "write -q 0 4k" "$U" 2>&1) && fail "a write to a read-only export: $out"
cmp "$MNT/md0/data" "$T/src.trim" || fail "md0/data changed"
put md0/md/array_state inactive

log "without --nbd-dir: a directory of the daemon's own, removed at the end"
term_daemon
[ -d "$T/nbd" ] && [ -z "$(ls -A "$T/nbd")" ] || fail "--nbd-dir left: $(ls -A "$T/nbd")"
start_daemon
new_array md0 "$T/img/vda" "$T/img/vdb"
put md0/md/array_state active
U=$(attr md0/nbd)
dir=$(dirname "${U#*socket=}")
[ -d "$dir" ] || fail "no export directory $dir"
qemu-img compare -f raw -F raw "$T/src.trim" "$U" >/dev/null || fail "export in the default directory"
term_daemon
[ ! -e "$dir" ] || fail "$dir left behind"
final_checks
log "ok"
