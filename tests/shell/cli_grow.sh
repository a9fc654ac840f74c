#!/bin/bash
# mdfuse grow's refusals, word for word as mdadm 4.2 --grow says them,
# with its exit statuses, and nothing changed where it refuses:
#  - sizes as mdadm.c reads --size (util.c parse_size: strtoll's white
#    space and sign, then at least 8 sectors): "invalid size: S" (2);
#    a number past long long is LLONG_MAX doubled, which md refuses;
#  - --raid-devices 0 and, without --force, 1 (mdadm.c, status 2);
#  - Grow_reshape's checks before it freezes the array: size with other
#    changes, a size under the chunk (raid4/5/6/10), more devices than
#    spares to fill them (--force goes on);
#  - a resync running: "... is performing resync/recovery and cannot be
#    reshaped" (1), no member's size written.
. "$(dirname "$0")/lib.sh"

start_daemon
mdf() { "$MDFUSE" grow --tree "$MNT" "$@"; }
# expect_grow STATUS OUTPUT ARGS...: mdfuse grow ARGS exits with STATUS
# and prints OUTPUT (stdout and stderr).
expect_grow() {
	local want_rc=$1 want=$2 rc=0
	shift 2
	mdf "$@" >"$T/o" 2>&1 || rc=$?
	expect_eq "$(cat "$T/o")" "$want" "grow $* said"
	expect_eq "$rc" "$want_rc" "grow $*: exit status"
}

log "sizes as mdadm reads them"
"$MDFUSE" create --level=1 -n 2 --bitmap=none --assume-clean --size=8M --image-size=32M \
	"$T/a" "$T/b" >/dev/null 2>&1 || fail "create raid1"
new_array md0 "$T/a" "$T/b"
put md0/md/array_state active
member_a=$(attr md0/md/dev-a/size)
for s in 1s 7s 3 0 -5 -0 "5 " 5k K "+ 5" ""; do
	expect_grow 2 "mdfuse: invalid size: $s" md0 --size "$s"
	expect_eq "$(attr md0/md/component_size)" 8192 "component_size after --size '$s'"
done
expect_eq "$(attr md0/md/dev-a/size)" "$member_a" "dev-a/size after the refused sizes"
expect_grow 0 "mdfuse: component size of /dev/md0 has been set to 4K" md0 --size 8s
expect_grow 0 "mdfuse: component size of /dev/md0 has been set to 6000K" md0 --size +6000
# The part grown is resynced; meanwhile mdadm would not reshape.
wait_idle md0
expect_grow 0 "mdfuse: component size of /dev/md0 has been set to 8192K" md0 --size " 8M"
wait_idle md0
# strtoll holds a number too long at LLONG_MAX; doubled, the size is
# far past what the members hold.
expect_grow 1 "mdfuse: Cannot set device size for /dev/md0: No space left on device" \
	md0 --size 99999999999999999999
expect_eq "$(attr md0/md/component_size)" 8192 "component_size after a 20-digit size"
expect_grow 1 "mdfuse: cannot change component size at the same time as other changes.
   Change size first, then check data is intact before making other changes." \
	md0 --size 4M --raid-devices 3

log "the number of devices"
expect_grow 2 "mdfuse: invalid number of raid devices: 0" md0 --raid-devices 0
expect_grow 2 "mdfuse: invalid number of raid devices: -1" md0 -n -1
expect_grow 2 "mdfuse: '1' is an unusual number of drives for an array, so it is probably
     a mistake.  If you really mean it you will need to specify --force before
     setting the number of drives." md0 --raid-devices 1
expect_grow 1 "mdfuse: Need 1 spare to avoid degraded array, and only have 0.
       Use --force to over-ride this check." md0 --raid-devices 3
expect_grow 1 "mdfuse: Need 2 spares to avoid degraded array, and only have 0.
       Use --force to over-ride this check." md0 -n 4
expect_eq "$(attr md0/md/raid_disks)" 2 "raid_disks after the refusals"
expect_eq "$(attr md0/md/degraded)" 0 "degraded after the refusals"
# A spare is enough for one more device.
truncate -s 32M "$T/c"
"$MDFUSE" manage --tree "$MNT" md0 --add "$T/c" >/dev/null 2>&1 || fail "--add c"
expect_grow 1 "mdfuse: Need 2 spares to avoid degraded array, and only have 1.
       Use --force to over-ride this check." md0 -n 4
expect_grow 0 "raid_disks for /dev/md0 set to 3" md0 -n 3
wait_idle md0
expect_eq "$(attr md0/md/degraded)" 0 "degraded after growing onto the spare"
# --force: as many devices as asked, the array degraded.
expect_grow 0 "raid_disks for /dev/md0 set to 4" md0 -n 4 --force
expect_eq "$(attr md0/md/degraded)" 1 "degraded after a forced growth"
put md0/md/array_state inactive
put md0/md/array_state clear

log "a size under the chunk"
"$MDFUSE" create --level=5 -n 3 --bitmap=none --assume-clean --force --image-size=16M \
	"$T/r0" "$T/r1" "$T/r2" >/dev/null 2>&1 || fail "create raid5"
new_array md0 "$T/r0" "$T/r1" "$T/r2"
put md0/md/array_state active
expect_eq "$(attr md0/md/chunk_size)" $((512 * 1024)) "the raid5's chunk"
size=$(attr md0/md/component_size)
for s in 4K 511 1022s; do
	expect_grow 1 "mdfuse: component size must be larger than chunk size." md0 --size "$s"
	expect_eq "$(attr md0/md/component_size)" "$size" "component_size after --size $s"
done
expect_grow 0 "mdfuse: component size of /dev/md0 has been set to 512K" md0 --size 512
put md0/md/array_state inactive
put md0/md/array_state clear

log "a resync running"
"$MDFUSE" create --level=1 -n 2 --bitmap=none --size=8M --image-size=32M \
	"$T/s0" "$T/s1" >/dev/null 2>&1 || fail "create raid1 to resync"
put speed_limit_max 1000
new_array md0 "$T/s0" "$T/s1"
put md0/md/array_state active
wait_for md0/md/sync_action resync
member_s0=$(attr md0/md/dev-s0/size)
for args in "--size 4M" "-n 3 --force" "--size max"; do
	# shellcheck disable=SC2086
	expect_grow 1 "mdfuse: /dev/md0 is performing resync/recovery and cannot be reshaped" md0 $args
done
# The spares are counted before the sync is looked at.
expect_grow 1 "mdfuse: Need 1 spare to avoid degraded array, and only have 0.
       Use --force to over-ride this check." md0 -n 3
expect_eq "$(attr md0/md/sync_action)" resync "sync_action after the refusals"
expect_eq "$(attr md0/md/component_size)" 8192 "component_size after the refusals"
expect_eq "$(attr md0/md/raid_disks)" 2 "raid_disks after the refusals"
# Nothing written to the members either.
expect_eq "$(attr md0/md/dev-s0/size)" "$member_s0" "dev-s0/size after the refusals"
put speed_limit_max 200000
wait_idle md0
expect_grow 0 "mdfuse: component size of /dev/md0 has been set to 4096K" md0 --size 4M
expect_eq "$(attr md0/md/sync_action)" idle "sync_action after a shrink"
put md0/md/array_state inactive
put md0/md/array_state clear
log "ok"
