#!/bin/bash
# The daemon killed (SIGKILL) mid-resync and mid-recovery: the images hold
# the last checkpoint (resync_offset; the new member's recovery_offset),
# real md assembles them and resumes from there as mdfuse does, and both
# end with the same contents and no mismatch.  And the other way round: a
# resync real md stopped half-way is resumed by mdfuse from real md's
# checkpoint.  With a bitmap a resync restarts at 0 and skips clean chunks
# (sync_fixtures shows it on raid1-interrupted-resync): killed after a few
# writes, the array resyncs only the chunks they dirtied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

cd "$T"

# oracle_value DIR KEY: a value of the oracle's summary.
oracle_value() { sed -n "s/^$2: //p" "$1/summary.txt"; }

# ours_as_theirs LINE OLD... : our mdstat line with member names replaced by
# the oracle's (vda, vdb, ... in argument order).
ours_as_theirs() {
	local line=$1 i=0
	shift
	for n in "$@"; do
		line=${line//"$n["/"vd$(printf "\\x$(printf %x $((97 + i)))")["}
		i=$((i + 1))
	done
	echo "$line"
}

# members_sorted LINE: an mdstat line with its members in name order
# (mdadm binds them in an order that depends on their events, so which
# comes first varies with the moment of the crash).
members_sorted() {
	local head=${1%% | *} rest=${1#* | }
	local pre=${head%% raid1 *} mem=${head#* raid1 }
	echo "$pre raid1 $(echo $mem | tr ' ' '\n' | sort | xargs) | $rest"
}

log "SIGKILL mid-resync (no bitmap)"
start_daemon
"$MDFUSE" create -l1 -n2 --bitmap=none --image-size=64M a.img b.img >/dev/null 2>&1 || fail create
new_array md0 "$T/a.img" "$T/b.img"
put md0/md/array_state read-auto
put md0/md/sync_speed_max 8000
put md0/md/array_state active
wait_started md0 >/dev/null
wait_progress md0 30000
kill9_daemon
# The kill may fall between two members' superblock writes: the one with
# more events is the freshest, whose resync_offset counts.
fresh=a.img
[ "$(sb_field b.img events)" -le "$(sb_field a.img events)" ] || fresh=b.img
cp=$(sb_field $fresh resync_offset)
log "checkpoint on disk: resync_offset $cp (a.img: $(sb_field a.img resync_offset), b.img: $(sb_field b.img resync_offset))"
[ "$cp" != none ] && [ "$cp" -gt 0 ] && [ "$cp" -lt 129024 ] || fail "resync_offset '$cp' after SIGKILL"
oracle_inspect "$T/o1" a.img b.img
expect_eq "$(oracle_value "$T/o1" assembled)" yes "oracle: assembled"
expect_eq "$(oracle_value "$T/o1" assembled_resync_start)" "$cp" "oracle: resync_start"
start_daemon
new_array md0 "$T/a.img" "$T/b.img"
put md0/md/array_state read-auto
expect_eq "$(attr md0/md/resync_start)" "$cp" "resync_start"
expect_eq "$(members_sorted "$(ours_as_theirs "$(mdstat_line md0)" a.img b.img)")" \
	"$(members_sorted "$(oracle_value "$T/o1" assembled_mdstat)")" "mdstat"
put md0/md/sync_speed_max 1000
put md0/md/array_state active
read -r done total < <(wait_resumed md0)
expect_eq "$done" "$cp" "resync resumed at"
put md0/md/sync_speed_max system
wait_idle md0
expect_eq "$(attr md0/md/resync_start)" none "resync_start after the resync"
expect_eq "$(md_sha md0)" "$(oracle_value "$T/o1" md0_sha256)" "md0 sha256"
check_clean md0
expect_eq "$(oracle_value "$T/o1" mismatch_cnt)" 0 "oracle: mismatch_cnt"
put md0/md/array_state clear
stop_daemon

log "SIGKILL mid-recovery (bitmap)"
start_daemon
"$MDFUSE" create -l1 -n2 --assume-clean --image-size=64M c.img d.img >/dev/null 2>&1 || fail create
new_array md0 "$T/c.img" "$T/d.img"
put md0/md/array_state active
dd if=/dev/urandom of="$MNT/md0/data" bs=1M count=63 oflag=direct status=none
want=$(md_sha md0)
put md0/md/dev-d.img/state faulty
put md0/md/dev-d.img/state remove
truncate -s 64M e.img
put md0/md/sync_speed_max 8000
put md0/md/new_dev "$T/e.img"
wait_started md0 >/dev/null
wait_progress md0 30000
kill9_daemon
ro=$(sb_field e.img recovery_offset)
log "checkpoint on disk: e.img recovery_offset $ro"
[ "$ro" != none ] && [ "$ro" -gt 0 ] && [ "$ro" -lt 129024 ] || fail "recovery_offset '$ro' after SIGKILL"
expect_eq "$(sb_field e.img device_role)" 1 "e.img role"
oracle_inspect "$T/o2" c.img e.img
expect_eq "$(oracle_value "$T/o2" assembled)" yes "oracle: assembled"
expect_eq "$(oracle_value "$T/o2" assembled_dev_recovery_start)" "vda=none vdb=$ro" "oracle: recovery_start"
start_daemon
new_array md0 "$T/c.img" "$T/e.img"
put md0/md/array_state read-auto
expect_eq "$(attr md0/md/dev-e.img/recovery_start)" "$ro" "recovery_start"
expect_eq "$(attr md0/md/dev-e.img/state)" "$(oracle_value "$T/o2" assembled_dev_state | sed 's/.*vdb=//')" "e.img state"
expect_eq "$(members_sorted "$(ours_as_theirs "$(mdstat_line md0)" c.img e.img)")" \
	"$(members_sorted "$(oracle_value "$T/o2" assembled_mdstat)")" "mdstat"
put md0/md/sync_speed_max 1000
put md0/md/array_state active
read -r done total < <(wait_resumed md0)
expect_eq "$done" "$ro" "recovery resumed at"
put md0/md/sync_speed_max system
wait_idle md0
expect_eq "$(attr md0/md/dev-e.img/state)" in_sync "e.img after recovery"
expect_eq "$(md_sha md0)" "$want" "md0 sha256"
expect_eq "$(oracle_value "$T/o2" md0_sha256)" "$want" "oracle: md0 sha256"
expect_eq "$(oracle_value "$T/o2" mismatch_cnt)" 0 "oracle: mismatch_cnt"
check_clean md0
put md0/md/array_state clear
stop_daemon

log "real md stops a resync half-way (no bitmap); mdfuse resumes it"
truncate -s 32M f.img g.img
"$REALMD" shell-script --save-images "$T/k" f.img g.img -c '
echo 2000 > /proc/sys/dev/raid/speed_limit_max
mdadm --create /dev/md0 --run -l1 -n2 --bitmap=none $D0 $D1
sleep 4
cat /sys/block/md0/md/sync_completed
mdadm --stop /dev/md0' >"$T/k.log" 2>&1 || { cat "$T/k.log" >&2; fail "oracle run"; }
kp=$(sb_field "$T/k/d0.img" resync_offset)
log "real md's checkpoint: resync_offset $kp"
[ "$kp" != none ] && [ "$kp" -gt 0 ] || fail "real md left resync_offset '$kp'"
start_daemon
new_array md0 "$T/k/d0.img" "$T/k/d1.img"
put md0/md/array_state read-auto
expect_eq "$(attr md0/md/resync_start)" "$kp" "resync_start"
put md0/md/sync_speed_max 1000
put md0/md/array_state active
read -r done total < <(wait_resumed md0)
expect_eq "$done" "$kp" "resync resumed at"
put md0/md/sync_speed_max system
wait_idle md0
check_clean md0
stop_daemon

log "SIGKILL after writes (bitmap, 1 MiB chunks): the resync copies the dirty chunks only"
start_daemon
"$MDFUSE" create -l1 -n2 --assume-clean --bitmap-chunk=1M --image-size=256M h.img i.img >/dev/null 2>&1 || fail create
new_array md0 "$T/h.img" "$T/i.img"
put md0/md/array_state active
# Keep the array dirty after the writes (as realmd create --crash does),
# and let the bits mdadm set at create be cleared first (1 s daemon).
put md0/md/safe_mode_delay 3600
put md0/md/bitmap/time_base 1
deadline=$((SECONDS + 20))
until "$MDFUSE" examine -X h.img | grep_q " 0 dirty"; do
	[ $SECONDS -lt $deadline ] || fail "bits never cleared: $("$MDFUSE" examine -X h.img | grep Bitmap)"
	sleep 0.2
done
for c in 3 50 51 200; do
	dd if=/dev/urandom of="$MNT/md0/data" bs=4K count=1 seek=$((c * 256 + 9)) oflag=direct conv=notrunc status=none
done
kill9_daemon
expect_eq "$(sb_field h.img resync_offset)" 0 "resync_offset after the crash"
"$MDFUSE" examine -X h.img | grep_q " 4 dirty" || fail "bitmap: $("$MDFUSE" examine -X h.img | grep Bitmap)"
start_daemon
new_array md0 "$T/h.img" "$T/i.img"
put md0/md/array_state active
wait_idle md0
w=$(io_writes md0 i.img)
log "resync after the crash: $((w * 512)) bytes written to i.img for 4 dirty 1 MiB chunks"
[ "$w" -ge $((4 * 2048)) ] && [ "$w" -le $((4 * 2048 + 64)) ] || fail "resync wrote $w sectors"
check_clean md0
