#!/bin/bash
# A member on an NBD export (qemu-nbd, unix socket) comes back by itself:
# while the server is down the member reads reconnecting with the
# connection's error; an export holding another superblock is not taken;
# once the right export is back the member is re-added in its slot and
# only the bitmap's dirty chunks are copied (dev-NAME/io counts them):
# the one written while it was gone, and the one whose write it took but
# no flush reached before the server died (it may have been lost with the
# server's cache; one flushed before is not copied); a
# check finds nothing; nbd_auto_readd=0 leaves it failed; fio verify runs
# across an outage and a re-add; real md assembles the images afterwards.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/nbd_lib.sh"
need_nbd_tools

mkdir -p "$T/img"
# 4 MiB bitmap chunks: a 1 MiB write dirties one.
"$MDFUSE" create --level=1 --raid-devices=2 --image-size=256M --assume-clean \
	--bitmap-chunk=4M "$T/img/vda" "$T/img/vdb" >/dev/null || fail "create"
SOCK=$T/vdb.sock
URI="nbd+unix:///vdb?socket=$SOCK"
qemu_serve "$T/img/vdb" "$SOCK" vdb
QPID=$SERVER_PID

start_daemon
new_array md0 "$T/img/vda" "$URI"
# bitmap_dirty IMG: the dirty bits of IMG's bitmap on disk.
bitmap_dirty() {
	"$MDFUSE" examine -X "$1" | sed -n 's/.*Bitmap : .* bits (chunks), \([0-9]*\) dirty.*/\1/p'
}
put md0/md/array_state active
expect_eq "$(attr md0/md/dev-vdb/nbd_auto_readd)" 1 "nbd_auto_readd default"
expect_err "Invalid argument" md0/md/dev-vdb/nbd_auto_readd maybe
put md0/md/dev-vdb/nbd_timeout_ms 3000
dd if=/dev/urandom of="$MNT/md0/data" bs=1M count=8 oflag=direct conv=notrunc,fsync status=none
# Until the bitmap is clean on disk, its daemon clears bits, and each
# page write clearing them flushes every member first.
deadline=$((SECONDS + 30))
until [ "$(bitmap_dirty "$T/img/vda")" == 0 ]; do
	[ $SECONDS -lt $deadline ] || fail "the bitmap stays dirty: $(bitmap_dirty "$T/img/vda")"
	sleep 0.5
done

log "a 1 MiB write reaches vdb, no flush follows it, the server dies"
dd if=/dev/urandom of="$T/unflushed" bs=1M count=1 status=none
# At 200 MiB: bitmap chunk 50.
dd if="$T/unflushed" of="$MNT/md0/data" bs=1M seek=200 oflag=direct conv=notrunc status=none
log_mark
server_kill "$QPID"
log "a 1 MiB write while it is down dirties one 4 MiB chunk"
dd if=/dev/urandom of="$T/blk" bs=1M count=1 status=none
# At 100 MiB: bitmap chunk 25.
dd if="$T/blk" of="$MNT/md0/data" bs=1M seek=100 oflag=direct conv=notrunc status=none ||
	fail "write with the server down"
wait_attr_ms md0/md/degraded 1 1000 >/dev/null
wait_attr_ms md0/md/dev-vdb/nbd_state reconnecting 1000 >/dev/null
sleep 1
err=$(attr md0/md/dev-vdb/nbd_last_error)
[[ $err == *"No such file or directory"* || $err == *"Connection refused"* ]] || fail "nbd_last_error: $err"

log "an export holding something else is not taken"
cp --sparse=always "$T/img/vdb" "$T/other"
dd if=/dev/zero of="$T/other" bs=4096 count=2 conv=notrunc status=none
qemu_serve "$T/other" "$SOCK" vdb
OPID=$SERVER_PID
sleep 6
expect_eq "$(attr md0/md/degraded)" 1 "degraded with a foreign export"
state=$(attr md0/md/dev-vdb/state)
[[ $state == faulty || $state == faulty,write_error ]] || fail "vdb state with a foreign export: $state"
[[ $(attr md0/md/dev-vdb/nbd_last_error) == *"no md superblock"* ]] ||
	fail "nbd_last_error: $(attr md0/md/dev-vdb/nbd_last_error)"
server_kill "$OPID"

log "the right export is back: re-added within the back-off's bound, bitmap catch-up only"
qemu_serve "$T/img/vdb" "$SOCK" vdb
QPID=$SERVER_PID
ms=$(wait_attr_ms md0/md/degraded 0 7000)
log "re-added after $ms ms"
wait_for md0/md/sync_action idle 30
log_has "md: md0: $URI is back: adding vdb again"
log_has "md: recovery of RAID array md0"
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "vdb state"
expect_eq "$(attr md0/md/dev-vdb/slot)" 1 "vdb slot"
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" connected "nbd_state"
expect_eq "$(attr md0/md/dev-vdb/nbd_timeout_ms)" 3000 "the deadline carried over"
off=$(attr md0/md/dev-vdb/offset)
read -r r w _ < <(attr md0/md/dev-vdb/io)
log "vdb io after the re-add: read $r, written $w sectors"
# Two 4 MiB chunks (8192 sectors each) plus superblock and bitmap
# writes; a full recovery would write 524288.
[ "$w" -ge 16384 ] && [ "$w" -lt $((16384 + 512)) ] || fail "recovery wrote $w sectors, wanted two chunks"
cmp <(leg_data "$T/img/vdb" $((off + 200 * 2048)) 2048) "$T/unflushed" || fail "vdb lacks the write no flush reached"
cmp <(leg_data "$T/img/vdb" $((off + 100 * 2048)) 2048) "$T/blk" || fail "vdb lacks the write it missed"
put md0/md/sync_action check
wait_for md0/md/sync_action idle 60
expect_eq "$(attr md0/md/mismatch_cnt)" 0 mismatch_cnt

log "nbd_auto_readd=0: the member stays failed"
put md0/md/dev-vdb/nbd_auto_readd 0
server_kill "$QPID"
dd if="$T/blk" of="$MNT/md0/data" bs=1M seek=50 oflag=direct conv=notrunc status=none
wait_attr_ms md0/md/degraded 1 1000 >/dev/null
qemu_serve "$T/img/vdb" "$SOCK" vdb
QPID=$SERVER_PID
sleep 3
expect_eq "$(attr md0/md/degraded)" 1 "degraded with auto re-add off"
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" failed "nbd_state with auto re-add off"
log "turned back on, it comes back"
put md0/md/dev-vdb/nbd_auto_readd 1
wait_attr_ms md0/md/degraded 0 7000 >/dev/null
wait_for md0/md/sync_action idle 30

log "fio verify across an outage and a re-add"
fio_jobs "$T/job.fio" 6m
log_mark
fio_start "$T/job.fio" "$T/fio.out"
sleep 1
server_kill "$QPID"
wait_attr_ms md0/md/degraded 1 2000 >/dev/null
sleep 1
qemu_serve "$T/img/vdb" "$SOCK" vdb
QPID=$SERVER_PID
wait_attr_ms md0/md/degraded 0 7000 >/dev/null
fio_running || fail "fio ended before the re-add"
fio_wait "$T/fio.out"
wait_for md0/md/sync_action idle 60
put md0/md/sync_action check
wait_for md0/md/sync_action idle 60
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after fio"
sha256sum <"$MNT/md0/data" | cut -d' ' -f1 >"$T/want"
put md0/md/array_state inactive

log "real md assembles both images, in sync, with the same data"
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
expect_eq "$(sed -n 's/^assembled_dev_state: //p' "$T/orc/summary.txt")" "vda=in_sync vdb=in_sync" "oracle dev state"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc/summary.txt")" "$(cat "$T/want")" "oracle md0_sha256"

log "a failed array takes no member back: their roles stay for assemble --force"
"$MDFUSE" create --level=5 --raid-devices=3 --image-size=16M --assume-clean \
	"$T/img/p0" "$T/img/p1" "$T/img/p2" >/dev/null || fail "create raid5"
qemu_serve "$T/img/p1" "$T/p1.sock" p1
P1=$SERVER_PID
qemu_serve "$T/img/p2" "$T/p2.sock" p2
P2=$SERVER_PID
new_array md1 "$T/img/p0" "nbd+unix:///p1?socket=$T/p1.sock" "nbd+unix:///p2?socket=$T/p2.sock"
put md1/md/array_state active
for d in p1 p2; do put md1/md/dev-$d/nbd_timeout_ms 1000; done
server_kill "$P1"
dd if=/dev/urandom of="$MNT/md1/data" bs=64k count=4 oflag=direct conv=notrunc status=none ||
	fail "a degraded write"
server_kill "$P2"
dd if=/dev/urandom of="$MNT/md1/data" bs=64k count=4 oflag=direct conv=notrunc status=none 2>/dev/null &&
	fail "a write with two of three members gone"
wait_attr_ms md1/md/degraded 2 2000 >/dev/null
qemu_serve "$T/img/p1" "$T/p1.sock" p1
qemu_serve "$T/img/p2" "$T/p2.sock" p2
sleep 3
for d in p1 p2; do
	[[ $(attr md1/md/dev-$d/state) == faulty* ]] || fail "$d was taken back into a failed array"
	[[ $(attr md1/md/dev-$d/nbd_last_error) == *"the array has failed"* ]] ||
		fail "$d nbd_last_error: $(attr md1/md/dev-$d/nbd_last_error)"
done
expect_eq "$("$MDFUSE" examine "$T/img/p1" | sed -n 's/ *Device Role : //p')" "Active device 1" "p1's role"
expect_eq "$("$MDFUSE" examine "$T/img/p2" | sed -n 's/ *Device Role : //p')" "Active device 2" "p2's role"

term_daemon
final_checks
log "ok"
