#!/bin/bash
# The sync's controls: speed limits (per array and system-wide) and the
# throttle that holds them; the sync stepping aside for normal I/O above
# its minimum; sync_action frozen/idle and EBUSY; check resuming where an
# interrupted one stopped; sync_min/sync_max windows; select() waking on
# sync_action, sync_completed, degraded and array_state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

start_daemon
cd "$T"

# fresh NAME SIZE: a new 2-leg array without bitmap that needs a full
# resync, assembled read-auto (nothing runs yet).
fresh() {
	rm -f "$T/$1-a.img" "$T/$1-b.img"
	"$MDFUSE" create -l1 -n2 --bitmap=none --image-size="$2" "$T/$1-a.img" "$T/$1-b.img" >/dev/null 2>&1 ||
		fail "create $1"
	new_array md0 "$T/$1-a.img" "$T/$1-b.img"
	put md0/md/array_state read-auto
}

# rate ARRAY DEV SECONDS: KiB/s written to DEV over SECONDS.
rate() {
	local w0 w1 t0 t1
	w0=$(io_writes "$1" "$2")
	t0=$(date +%s%N)
	sleep "$3"
	w1=$(io_writes "$1" "$2")
	t1=$(date +%s%N)
	echo $(((w1 - w0) * 512 * 1000000 / (t1 - t0)))
}

log "speed limits"
fresh s 64M
expect_eq "$(attr md0/md/sync_speed_min)" "1000 (system)" sync_speed_min
expect_eq "$(attr md0/md/sync_speed_max)" "200000 (system)" sync_speed_max
expect_eq "$(attr speed_limit_min)" 1000 speed_limit_min
expect_eq "$(attr speed_limit_max)" 200000 speed_limit_max
put md0/md/sync_speed_min 5000
expect_eq "$(attr md0/md/sync_speed_min)" "5000 (local)" "local sync_speed_min"
put md0/md/sync_speed_min system
expect_eq "$(attr md0/md/sync_speed_min)" "1000 (system)" "sync_speed_min reset"
expect_err "Invalid argument" md0/md/sync_speed_max 0
expect_err "Invalid argument" md0/md/sync_speed_max fast
put speed_limit_max 150000
expect_eq "$(attr md0/md/sync_speed_max)" "150000 (system)" "sync_speed_max follows speed_limit_max"
put md0/md/sync_speed_max 4000
put speed_limit_max 200000
expect_eq "$(attr md0/md/sync_speed_max)" "4000 (local)" "local sync_speed_max"

log "the throttle holds the maximum (4000 KiB/s)"
expect_eq "$(attr md0/md/sync_speed)" none "sync_speed before"
put md0/md/array_state active
wait_started md0 >/dev/null
r=$(rate md0 s-b.img 2.5)
log "copied at $r KiB/s"
[ "$r" -le 4400 ] && [ "$r" -ge 2000 ] || fail "resync ran at $r KiB/s with sync_speed_max 4000"
for _ in 1 2 3; do
	v=$(attr md0/md/sync_speed)
	[ "$v" -le 4400 ] || fail "sync_speed $v over the maximum"
	sleep 0.3
done
grep -q "resync = .* speed=[0-9]*K/sec" "$MNT/mdstat" || fail "mdstat progress: $(cat "$MNT/mdstat")"

log "resync/recover/check/repair while a resync runs: EBUSY"
expect_eq "$(attr md0/md/sync_action)" resync sync_action
# Linux 6.1 says EBUSY to any word but idle and frozen then, even unknown ones.
for w in resync recover check repair reshape sleep; do expect_err "Device or resource busy" md0/md/sync_action $w; done
expect_err "Device or resource busy" md0/md/sync_min 0

log "frozen stops the resync and keeps it stopped; idle resumes it"
put md0/md/sync_action frozen
expect_eq "$(attr md0/md/sync_action)" frozen "sync_action frozen"
expect_eq "$(attr md0/md/sync_completed)" none "sync_completed when frozen"
cp=$(attr md0/md/resync_start)
[ "$cp" != none ] && [ "$cp" -gt 0 ] || fail "resync_start '$cp' after freezing"
w=$(io_writes md0 s-b.img)
sleep 0.5
expect_eq "$(io_writes md0 s-b.img)" "$w" "writes while frozen"
expect_eq "$(attr md0/md/sync_action)" frozen "still frozen"
expect_err "Invalid argument" md0/md/sync_action sleep
expect_err "Invalid argument" md0/md/sync_action reshape
expect_eq "$(attr md0/md/sync_action)" frozen "frozen after reshape"
grep -q "md: md0: resync interrupted." "$MNT/log" || fail "interruption not logged"
put md0/md/sync_action idle
read -r done total < <(wait_resumed md0)
expect_eq "$done" "$cp" "resync resumed at"
expect_eq "$(attr md0/md/sync_action)" resync "sync_action after idle"
put md0/md/sync_speed_max system
wait_idle md0
expect_eq "$(attr md0/md/resync_start)" none "resync_start after resync"
expect_eq "$(attr md0/md/sync_speed)" none "sync_speed after"

# put_settled PATH VALUE: as put, but md's thread may be looking at the
# array just then (after a run or an idle), with RUNNING set while it
# looks, and sync_min is EBUSY meanwhile (in Linux 6.1 too): retry that
# for up to 5 s.
put_settled() {
	local deadline=$((SECONDS + 5)) out
	until out=$( (printf '%s\n' "$2" >"$MNT/$1") 2>&1); do
		[[ $out == *"Device or resource busy"* && $SECONDS -lt $deadline ]] || fail "echo $2 > $1: $out"
		sleep 0.05
	done
}

log "an interrupted check leaves sync_min where it stopped"
put md0/md/sync_speed_max 4000
put md0/md/sync_action check
# Asked again before md has even started it: EBUSY already (Linux 6.1).
expect_err "Device or resource busy" md0/md/sync_action check
wait_started md0 >/dev/null
wait_progress md0 4096
expect_err "Device or resource busy" md0/md/sync_action check
put md0/md/sync_action idle
expect_eq "$(attr md0/md/sync_action)" idle "check is not restarted by idle"
min=$(attr md0/md/sync_min)
[ "$min" -gt 0 ] || fail "sync_min $min after an interrupted check"
grep -q "md: md0: data-check interrupted." "$MNT/log" || fail "check interruption not logged"
put md0/md/sync_action check
read -r done total < <(wait_resumed md0)
expect_eq "$done" "$min" "check resumed at"
put md0/md/sync_speed_max system
wait_idle md0
expect_eq "$(attr md0/md/sync_min)" 0 "sync_min after a complete check"
expect_eq "$(attr md0/md/mismatch_cnt)" 0 mismatch_cnt
put md0/md/array_state clear

log "a check between sync_min and sync_max"
unpack raid1-mismatch "$T/m"
new_array md0 "$T/m/vdb" "$T/m/vda"
put md0/md/array_state active
# The damage is at array sectors 2048-2055.
put_settled md0/md/sync_min 4096
expect_err "Invalid argument" md0/md/sync_max 100
put md0/md/sync_max 8192
put md0/md/sync_action check
wait_for md0/md/sync_completed "8192 / 30720"
expect_eq "$(attr md0/md/sync_action)" check "check paused at sync_max"
expect_err "Device or resource busy" md0/md/sync_max 6144
put md0/md/sync_max max
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatches outside the window"
expect_eq "$(attr md0/md/sync_min)" 0 "sync_min after the window"
expect_eq "$(attr md0/md/sync_max)" max "sync_max after the window"
put md0/md/sync_min 1000
expect_eq "$(attr md0/md/sync_min)" 1000 "sync_min"
put md0/md/sync_min 1001
expect_eq "$(attr md0/md/sync_min)" 1000 "sync_min rounded down to 8 sectors"
put md0/md/sync_max 4000
put md0/md/sync_action check
wait_for md0/md/sync_completed "4000 / 30720"
expect_eq "$(attr md0/md/mismatch_cnt)" 128 "mismatches inside the window"
expect_eq "$(attr md0/md/mismatches)" "2048 8" "mismatch range inside the window"
put md0/md/sync_action idle
expect_eq "$(attr md0/md/sync_min)" 4000 "sync_min after stopping at sync_max"
put md0/md/sync_max max
put_settled md0/md/sync_min 0
put md0/md/array_state clear

log "over its minimum the sync steps aside for normal I/O"
fresh y 256M
put md0/md/sync_speed_max 20000
put md0/md/array_state active
wait_started md0 >/dev/null
idle=$(rate md0 y-b.img 1)
# A reader that keeps md0 busy (direct I/O: every read reaches md).
fio --aux-path="$T" --name=reader --filename="$MNT/md0/data" --rw=randread --direct=1 --bs=64k \
	--ioengine=psync --size=128M --time_based --runtime=6 >"$T/fio.log" 2>&1 &
busy_pid=$!
# Measure once fio's job has md0/data open.
until for p in $busy_pid $(pgrep -P $busy_pid); do ls -l /proc/$p/fd 2>/dev/null; done | grep_q "md0/data"; do
	kill -0 $busy_pid 2>/dev/null || { cat "$T/fio.log" >&2; fail "reader"; }
	sleep 0.05
done
sleep 0.3
busy=$(rate md0 y-b.img 1)
log "resync at $idle KiB/s idle, $busy KiB/s while md0 is read"
[ "$busy" -le $((idle / 4)) ] || fail "the resync did not step aside ($idle KiB/s idle, $busy busy)"
# Below its minimum it does not.
put md0/md/sync_speed_min 19000
sleep 0.3
busy_min=$(rate md0 y-b.img 1)
log "with sync_speed_min 19000: $busy_min KiB/s while md0 is read"
[ "$busy_min" -ge 8000 ] || fail "the resync fell to $busy_min KiB/s under its minimum"
wait $busy_pid || { cat "$T/fio.log" >&2; fail "reader"; }
put md0/md/sync_action frozen
put md0/md/array_state clear

log "select() wakes on sync_action, sync_completed, degraded, array_state"
fresh p 64M
put md0/md/sync_action frozen
put md0/md/array_state active
poll_arm md0/md/sync_action 2
poll_quiet "sync_action while nothing happens"
poll_arm md0/md/sync_action
put md0/md/sync_speed_max 8000
put md0/md/sync_action idle
poll_woken sync_action
case "$POLL_VALUE" in resync | idle) ;; *) fail "sync_action read '$POLL_VALUE' after waking" ;; esac
wait_started md0 >/dev/null
poll_arm md0/md/sync_completed
poll_woken sync_completed
case "$POLL_VALUE" in *" / 129024") ;; *) fail "sync_completed read '$POLL_VALUE' after waking" ;; esac
poll_arm md0/md/sync_action 20
put md0/md/sync_speed_max system
poll_woken "sync_action at the end"
wait_idle md0
poll_arm md0/md/degraded
put md0/md/dev-p-b.img/state faulty
poll_woken degraded
expect_eq "$POLL_VALUE" 1 "degraded after waking"
poll_arm md0/md/array_state
put md0/md/array_state active
poll_woken array_state
put md0/md/array_state clear
