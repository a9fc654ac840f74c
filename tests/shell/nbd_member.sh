#!/bin/bash
# A RAID1 with one local leg and one on an NBD export (qemu-nbd on a unix
# socket, nbdkit on loopback TCP): fio verify through md0/data while the
# server is killed with -9 (fio passes, the leg fails at once, degraded
# reads 1), a server that hangs (requests past the member's deadline fail
# it, within the deadline), the connection's state in dev-NAME/, and real
# md assembling the member images afterwards with the same data.  Then
# nbdkit's filters: a server without flush is refused, writes delayed past
# the deadline fail the leg at run, write errors from a live server fail
# it as a disk's do (and, the link being fine, it is not taken back).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/nbd_lib.sh"
need_nbd_tools

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
images_from "$IMG" "$T/img"
SOCK=$T/vdb.sock
URI="nbd+unix:///vdb?socket=$SOCK"

log "examine and create take NBD URIs"
qemu_serve "$T/img/vdb" "$SOCK" vdb
QPID=$SERVER_PID
"$MDFUSE" examine "$URI" >"$T/ex.nbd" || fail "examine $URI"
"$MDFUSE" examine "$T/img/vdb" >"$T/ex.img"
diff <(tail -n +2 "$T/ex.nbd") <(tail -n +2 "$T/ex.img") || fail "examine through NBD differs"
head -1 "$T/ex.nbd" | grep_q -xF "$URI:" || fail "examine names $(head -1 "$T/ex.nbd")"
out=$("$MDFUSE" examine "nbd+unix:///vdb?socket=$T/nothing.sock" 2>&1) && fail "examine of a dead socket succeeded"
[[ $out == *"No such file or directory"* ]] || fail "examine of a dead socket: $out"
out=$("$MDFUSE" create --level=1 --raid-devices=2 "$T/new.img" "$URI" --image-size=64M 2>&1) &&
	fail "create over a member: $out"
[[ $out == *"$URI appears to be part of a raid array"* ]] || fail "create over a member: $out"

start_daemon
log "bind: a local leg and an NBD leg"
new_array md0 "$T/img/vda" "$URI"
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" connected nbd_state
expect_eq "$(attr md0/md/dev-vdb/nbd_server)" "unix:$SOCK vdb" nbd_server
expect_eq "$(attr md0/md/dev-vdb/nbd_timeout_ms)" 5000 "default deadline"
expect_eq "$(attr md0/slaves/vdb/path)" "$URI" "slaves/vdb/path"
[ ! -e "$MNT/md0/md/dev-vda/nbd_state" ] || fail "a local leg has nbd_state"
expect_err "Invalid argument" md0/md/dev-vdb/nbd_timeout_ms 0
expect_err "Invalid argument" md0/md/dev-vdb/nbd_timeout_ms 600001
expect_err "Invalid argument" md0/md/dev-vdb/nbd_timeout_ms soon
put md0/md/dev-vdb/nbd_timeout_ms 2000
expect_eq "$(attr md0/md/dev-vdb/nbd_timeout_ms)" 2000 "deadline set"
# The same export twice is the same device twice.
expect_err "Device or resource busy" md0/md/new_dev "nbd+unix:///vdb?socket=$SOCK"
expect_err "Invalid argument" md0/md/new_dev "nbd+unix:///vdb"
expect_err "Invalid argument" md0/md/new_dev "nbd://"
expect_err "No such file or directory" md0/md/new_dev "nbd+unix:///x?socket=$T/none.sock"
put md0/md/array_state active
line=$(mdstat_line md0)
[[ $line == "md0 : active raid1 vdb[1] vda[0] | "*" [2/2] [UU] | "* ]] || fail "mdstat: $line"
rtt=$(attr md0/md/dev-vdb/nbd_rtt_us)
[ "$rtt" -gt 0 ] || fail "nbd_rtt_us $rtt"

log "fio verify through md0/data; kill -9 of the server mid-run"
fio_jobs "$T/job.fio" 24m
log_mark
fio_start "$T/job.fio" "$T/fio.out"
sleep 1.5
fio_running || fail "fio ended before the kill"
read -r _ w0 _ < <(attr md0/md/dev-vdb/io)
[ "$w0" -gt 1000 ] || fail "the NBD leg took no writes ($w0 sectors)"
server_kill "$QPID"
ms=$(wait_attr_ms md0/md/degraded 1 2000)
log "degraded 1 after $ms ms"
fio_running || fail "fio ended before the failure took effect"
fio_wait "$T/fio.out"
log_has "md/raid1:md0: Disk failure on vdb, disabling device."
# A data write or the superblock write meets the dead link first.
state=$(attr md0/md/dev-vdb/state)
[[ $state == faulty || $state == faulty,write_error ]] || fail "vdb state: $state"
# The daemon tries the export again (nbd_readd.sh follows that up).
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" reconnecting nbd_state
err=$(attr md0/md/dev-vdb/nbd_last_error)
# The connection's end, or since then the daemon's next try.
[[ $err == *"closed the connection"* || $err == *"send:"* || $err == *"read:"* ||
	$err == *"Connection refused"* ]] || fail "nbd_last_error: $err"
grep -qF "$URI: connection lost: " "$T/daemon.log" ||
	fail "the daemon did not log the lost connection"
sha256sum <"$MNT/md0/data" | cut -d' ' -f1 >"$T/want"
cmp <(leg_data "$T/img/vda" "$(attr md0/md/dev-vda/offset)" $((192 * 2048))) \
	<(head -c $((192 * 1048576)) "$MNT/md0/data") || fail "vda differs from md0/data"
put md0/md/dev-vdb/state remove
put md0/md/array_state inactive
timeout 5 cat "$MNT/mdstat" >/dev/null || fail "the tree hangs"

log "real md assembles the member images with the same data"
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
expect_eq "$(sed -n 's/^assembled: //p' "$T/orc/summary.txt")" yes "oracle assembled"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc/summary.txt")" "$(cat "$T/want")" "oracle md0_sha256"

log "a server that hangs (nbdkit on TCP, stopped): the deadline fails the leg"
put md0/md/array_state clear
rm -rf "$T/img"
images_from "$IMG" "$T/img"
PORT=$(free_port)
nbdkit_serve "$PORT" "$T/img/vdb"
KPID=$SERVER_PID
TURI="nbd://127.0.0.1:$PORT/vdb"
new_array md0 "$T/img/vda" "$TURI"
expect_eq "$(attr md0/md/dev-vdb/nbd_server)" "127.0.0.1:$PORT vdb" nbd_server
put md0/md/dev-vdb/nbd_timeout_ms 1500
# Nobody tries the export again: nbd_last_error stays the timeout's.
put md0/md/dev-vdb/nbd_auto_readd 0
put md0/md/array_state active
dd if=/dev/urandom of="$T/blk" bs=64k count=16 status=none
log_mark
kill -STOP "$KPID"
t0=$(date +%s%N)
timeout 20 dd if="$T/blk" of="$MNT/md0/data" bs=64k seek=100 oflag=direct conv=notrunc status=none ||
	fail "write with a hung server"
ms=$(ms_since "$t0")
log "write done in $ms ms with the server stopped"
[ "$ms" -ge 1400 ] && [ "$ms" -lt 4000 ] || fail "the write took $ms ms with a 1500 ms deadline"
expect_eq "$(attr md0/md/degraded)" 1 degraded
state=$(attr md0/md/dev-vdb/state)
[[ $state == faulty || $state == faulty,write_error ]] || fail "vdb state: $state"
[[ $(attr md0/md/dev-vdb/nbd_last_error) == *"timed out"* ]] ||
	fail "nbd_last_error: $(attr md0/md/dev-vdb/nbd_last_error)"
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" failed "nbd_state, auto re-add off"
cmp <(dd if="$MNT/md0/data" bs=64k skip=100 count=16 status=none) "$T/blk" || fail "read back"
kill -CONT "$KPID"
put md0/md/array_state inactive

log "a server that cannot flush is refused"
put md0/md/array_state clear
nbdkit -f -U "$T/noflush.sock" eval get_size='echo 1048576' \
	pread='dd if=/dev/zero count=$3 iflag=count_bytes status=none' \
	can_write='exit 0' pwrite='cat >/dev/null' can_flush='exit 3' 2>>"$T/nbdkit.log" &
SERVERS+=("$!")
wait_uri "nbd+unix:///?socket=$T/noflush.sock"
put new_array md0
expect_err "Operation not supported" md0/md/new_dev "nbd+unix:///?socket=$T/noflush.sock"
grep -qF "cannot flush" "$MNT/log" || fail "no log line for the server without flush"

log "nbdkit's delay filter: writes slower than the deadline fail the leg at run"
rm -rf "$T/img"
images_from "$IMG" "$T/img"
nbdkit -f -U "$T/slow.sock" --filter=delay file file="$T/img/vdb" delay-write=3 2>>"$T/nbdkit.log" &
SERVERS+=("$!")
SURI="nbd+unix:///vdb?socket=$T/slow.sock"
wait_uri "$SURI"
put md0/md/new_dev "$T/img/vda"
put md0/md/new_dev "$SURI"
put md0/md/dev-vdb/nbd_timeout_ms 500
put md0/md/dev-vdb/nbd_auto_readd 0
log_mark
t0=$(date +%s%N)
put md0/md/array_state active
wait_attr_ms md0/md/degraded 1 2000 >/dev/null
ms=$(ms_since "$t0")
log "the slow leg failed $ms ms after the run"
[[ $(attr md0/md/dev-vdb/nbd_last_error) == *"timed out"* ]] ||
	fail "nbd_last_error: $(attr md0/md/dev-vdb/nbd_last_error)"
dd if=/dev/urandom of="$T/blk2" bs=64k count=4 status=none
timeout 5 dd if="$T/blk2" of="$MNT/md0/data" bs=64k oflag=direct conv=notrunc status=none ||
	fail "write after the slow leg failed"
cmp <(head -c 262144 "$MNT/md0/data") "$T/blk2" || fail "read back"
put md0/md/array_state inactive

log "nbdkit's error filter: write errors from a live server fail the leg as a disk's do"
put md0/md/array_state clear
rm -rf "$T/img"
images_from "$IMG" "$T/img"
PORT=$(free_port)
nbdkit -f -i 127.0.0.1 -p "$PORT" --filter=error file file="$T/img/vdb" \
	error-pwrite=EIO error-pwrite-rate=100% error-file="$T/inject" 2>>"$T/nbdkit.log" &
SERVERS+=("$!")
EURI="nbd://127.0.0.1:$PORT/vdb"
wait_uri "$EURI"
new_array md0 "$T/img/vda" "$EURI"
put md0/md/array_state active
log_mark
fio_start "$T/job.fio" "$T/fio3.out"
sleep 1
fio_running || fail "fio ended before the errors"
touch "$T/inject"
wait_attr_ms md0/md/degraded 1 5000 >/dev/null
fio_wait "$T/fio3.out"
state=$(attr md0/md/dev-vdb/state)
[[ $state == faulty || $state == faulty,write_error ]] || fail "vdb state: $state"
# The link is fine: the member is not taken back (the export did not go
# away, its disk failed).
expect_eq "$(attr md0/md/dev-vdb/nbd_state)" connected "nbd_state after write errors"
[[ $(attr md0/md/dev-vdb/nbd_last_error) == *"write at byte"*"Input/output error"* ]] ||
	fail "nbd_last_error: $(attr md0/md/dev-vdb/nbd_last_error)"
rm -f "$T/inject"
sleep 1
expect_eq "$(attr md0/md/degraded)" 1 "degraded after the errors stopped"
log_lacks "is back: adding vdb again"
put md0/md/array_state inactive

term_daemon
final_checks
log "ok"
