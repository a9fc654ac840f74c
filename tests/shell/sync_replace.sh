#!/bin/bash
# Replacement: `want_replacement` on a member while a spare is bound makes
# the spare a replacement in the same slot; it copies the data, then takes
# the slot, and the old member is marked faulty and leaves the slot.  The
# same sysfs writes on real md (the oracle) give the same member states,
# slots, recovery_start, rdN links, mdstat and superblock roles.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

fx=raid1-spare
unpack $fx "$T/img"
mkdir -p "$T/vm"
for d in vda vdb vdc; do cp "$T/img/$d" "$T/vm/$d"; done

# state DIR: one line per member (state, slot, recovery_start), the rdN
# links, degraded and sync_action, from a sysfs md/ directory.
STATE_FN='state() {
	for d in vda vdb vdc; do
		[ -d "$1/dev-$d" ] && echo "$d: $(cat "$1/dev-$d/state") slot $(cat "$1/dev-$d/slot") recovery_start $(cat "$1/dev-$d/recovery_start")"
	done
	for l in rd0 rd1; do [ -L "$1/$l" ] && echo "$l -> $(readlink "$1/$l")"; done
	echo "degraded $(cat "$1/degraded") sync_action $(cat "$1/sync_action")"
}'
eval "$STATE_FN"

log "real md"
"$REALMD" shell-script --out "$T/vm/out" "$T/vm/vda" "$T/vm/vdb" "$T/vm/vdc" -c "$STATE_FN"'
mdadm --assemble /dev/md0 --run $D0 $D1 $D2 >/dev/null 2>&1
S=/sys/block/md0/md
echo 1000 > $S/sync_speed_max
echo active > $S/array_state
echo want_replacement > $S/dev-vda/state
sleep 1
state $S >$OUT/during.txt
grep -A3 "^md0" /proc/mdstat | head -2 >>$OUT/during.txt
echo system > $S/sync_speed_max
wait_idle
sleep 0.5
state $S >$OUT/after.txt
grep -A1 "^md0" /proc/mdstat >>$OUT/after.txt
cat $S/last_sync_action >>$OUT/after.txt
for d in $D0 $D1 $D2; do mdadm --examine $d | grep -E "Feature Map|Device Role|Array State"; done >$OUT/examine.txt
echo remove > $S/dev-vda/state
grep -A1 "^md0" /proc/mdstat >$OUT/removed.txt
state $S >>$OUT/removed.txt
md_sha256 >$OUT/sha.txt' >"$T/vm.log" 2>&1 || { cat "$T/vm.log" >&2; fail "oracle run"; }
[ -f "$T/vm/out/after.txt" ] || { cat "$T/vm.log" >&2; fail "oracle gave no result"; }

log "mdfuse"
start_daemon
# Bound in the order mdadm binds them, for mdstat's member order.
new_array md0 "$T/img/vdb" "$T/img/vdc" "$T/img/vda"
put md0/md/array_state read-auto
put md0/md/sync_speed_max 1000
put md0/md/array_state active
put md0/md/dev-vda/state want_replacement
sleep 1
{
	state "$MNT/md0/md"
	grep -A3 "^md0" "$MNT/mdstat" | head -2
} >"$T/during.txt"
# Progress differs with speed; compare the shape.
sed -i -E 's/(vdc: spare,replacement slot 0 recovery_start) [0-9]+/\1 N/' "$T/during.txt" "$T/vm/out/during.txt"
diff -u "$T/vm/out/during.txt" "$T/during.txt" || fail "during the replacement"
grep -q "vdc: spare,replacement slot 0 recovery_start N" "$T/during.txt" || fail "vdc is not replacing"
put md0/md/sync_speed_max system
wait_idle md0
{
	state "$MNT/md0/md"
	grep -A1 "^md0" "$MNT/mdstat"
	attr md0/md/last_sync_action
} >"$T/after.txt"
diff -u "$T/vm/out/after.txt" "$T/after.txt" || fail "after the replacement"
grep -q "vda: faulty slot none" "$T/after.txt" || fail "vda did not leave its slot"
grep -q "vdc: in_sync slot 0" "$T/after.txt" || fail "vdc did not take slot 0"
for d in vda vdb vdc; do "$MDFUSE" examine "$T/img/$d" | grep -E "Feature Map|Device Role|Array State"; done >"$T/examine.txt"
diff -u "$T/vm/out/examine.txt" "$T/examine.txt" || fail "superblocks after the replacement"
want=$(create_sha $fx)
expect_eq "$(md_sha md0)" "$want" "md0 sha256"
expect_eq "$(cat "$T/vm/out/sha.txt")" "$want" "oracle: md0 sha256"
check_clean md0
put md0/md/dev-vda/state remove
{
	grep -A1 "^md0" "$MNT/mdstat"
	state "$MNT/md0/md"
} >"$T/removed.txt"
diff -u "$T/vm/out/removed.txt" "$T/removed.txt" || fail "after removing vda"
put md0/md/array_state clear
legs_identical "$T/img/vdb" "$T/img/vdc" || fail "vdb and vdc differ"
