#!/bin/bash
# raid4/5/6 replacement: `want_replacement` on a member while a spare is
# bound makes the spare the member's replacement in the same slot; it is
# rebuilt (from the member it replaces, else from parity) while writes go
# on, then takes the slot, and the old member ends faulty.  md0/data then
# reads what was written, a check is clean, the data reads the same with
# any member left out, and real md assembles the images with the same
# data and a clean check.  Also: a member that fails a read while it is
# replaced, a replacement interrupted by stopping the array (it resumes
# from its recovery_start once reassembled), and a member failing while
# it is replaced (its replacement recovers the slot as an ordinary
# spare), and a replacement failing (the member keeps its slot).  Real
# md, given the same sysfs writes, shows the same member states, mdstat
# and superblock roles, for a replacement done, for one whose member
# fails and for one that fails itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon --threads 8

# state DEV: "state slot" of a member of md0.
state() { echo "$(attr "md0/md/dev-$1/state") $(attr "md0/md/dev-$1/slot")"; }

# members DIR: the images of DIR that are md0's members (not vdx's old
# member OLD, given as $2).
members() { ls "$1"/vd? | grep -vx "$1/$2"; }

# judge NAME DIR OLD WANT: the replacement done, OLD faulty and out of its
# slot, the data WANT, a clean check; then, with OLD removed and the
# array stopped, any member may be left out, and real md agrees.
judge() {
	local name=$1 dir=$2 old=$3 want=$4 slot=$5 m
	expect_eq "$(state vdx)" "in_sync $slot" "$name: the replacement after recovery"
	expect_eq "$(state "$old")" "faulty none" "$name: the replaced member"
	expect_eq "$(attr md0/md/degraded)" 0 "$name: degraded"
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$name: md0/data after the replacement"
	check_clean md0 "$name"
	put "md0/md/dev-$old/state" remove
	[ ! -e "$MNT/md0/md/dev-$old" ] || fail "$name: $old still there"
	put md0/md/array_state clear
	for m in $(members "$dir" "$old"); do
		new_array md0 $(members "$dir" "$old" | grep -vx "$m")
		put md0/md/array_state readonly
		expect_eq "$(sha "$MNT/md0/data")" "$want" "$name: md0/data without $(basename "$m")"
		put md0/md/array_state clear
	done
	oracle_inspect "$T/orc-$name" $(members "$dir" "$old")
	local s=$T/orc-$name/summary.txt
	expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "$name: real md assembles it"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "$name: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$name: real md's mismatch_cnt"
	expect_eq "$(sed -n 's/^synced_degraded: //p' "$s")" 0 "$name: real md's degraded"
}

# start DIR: md0 from DIR's images, running, idle, a blank spare vdx bound,
# the sync held back.
start() {
	local dir=$1
	new_array md0 "$dir"/vd?
	put md0/md/array_state active
	wait_idle md0
	truncate -s "$(stat -c %s "$dir/vda")" "$dir/vdx"
	put md0/md/new_dev "$dir/vdx"
	expect_eq "$(state vdx)" "spare none" "vdx bound"
	put md0/md/sync_speed_max 1000
}

# replace NAME DIR OLD SLOT SEED: replace OLD by vdx with writes going on.
replace() {
	local name=$1 dir=$2 old=$3 slot=$4 seed=$5 want
	log "$name: replace $old"
	start "$dir"
	put "md0/md/dev-$old/state" want_replacement
	wait_started md0 >/dev/null
	expect_eq "$(state vdx)" "spare,replacement $slot" "$name: vdx while replacing"
	expect_eq "$(state "$old")" "in_sync,want_replacement $slot" "$name: $old while replaced"
	expect_eq "$(attr md0/md/sync_action)" recover "$name: sync_action"
	expect_eq "$(attr md0/md/degraded)" 0 "$name: degraded while replacing"
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" "$seed" 120) || fail "$name: writes failed"
	expect_eq "$(attr md0/md/sync_action)" recover "$name: the replacement ended before the writes did"
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$name: md0/data during the replacement"
	put md0/md/sync_speed_max system
	wait_idle md0
	judge "$name" "$dir" "$old" "$want" "$slot"
	rm -rf "${dir:?}"
}

# The same sysfs writes on real md (the oracle) and here: the members'
# states and slots during and after the replacement, mdstat and the
# superblocks' roles agree.
fx=raid5-ls-bitmap
unpack "$fx" "$T/vm"
truncate -s "$(stat -c %s "$T/vm/vda")" "$T/vm/vdd"
cp -r "$T/vm" "$T/ours"
STATE_FN='states() {
	for d in vda vdb vdc vdd; do
		[ -d "$1/dev-$d" ] && echo "$d: $(cat "$1/dev-$d/state") slot $(cat "$1/dev-$d/slot")"
	done
	echo "degraded $(cat "$1/degraded") sync_action $(cat "$1/sync_action")"
}'
eval "$STATE_FN"
log "real md: $fx, vdb replaced by vdd"
"$REALMD" shell-script --out "$T/vm/out" "$T/vm/vda" "$T/vm/vdb" "$T/vm/vdc" "$T/vm/vdd" -c "$STATE_FN"'
mdadm --assemble /dev/md0 --run $D0 $D1 $D2 >/dev/null 2>&1
S=/sys/block/md0/md
echo active > $S/array_state
mdadm /dev/md0 --add $D3 >/dev/null 2>&1
echo 1000 > $S/sync_speed_max
echo want_replacement > $S/dev-vdb/state
sleep 1
states $S >$OUT/during.txt
grep -A1 "^md0" /proc/mdstat | head -2 >>$OUT/during.txt
echo system > $S/sync_speed_max
wait_idle
sleep 0.5
states $S >$OUT/after.txt
grep -A1 "^md0" /proc/mdstat >>$OUT/after.txt
for d in $D0 $D1 $D2 $D3; do mdadm --examine $d | grep -E "Feature Map|Device Role|Array State"; done >$OUT/examine.txt
echo remove > $S/dev-vdb/state
states $S >$OUT/removed.txt
md_sha256 >$OUT/sha.txt' >"$T/vm.log" 2>&1 || { cat "$T/vm.log" >&2; fail "oracle run"; }
[ -f "$T/vm/out/removed.txt" ] || { cat "$T/vm.log" >&2; fail "oracle gave no result"; }
log "mdfuse: $fx, vdb replaced by vdd"
# Bound in the order mdadm binds them, for mdstat's member order.
new_array md0 "$T/ours/vdb" "$T/ours/vdc" "$T/ours/vda"
put md0/md/array_state active
put md0/md/new_dev "$T/ours/vdd"
put md0/md/sync_speed_max 1000
put md0/md/dev-vdb/state want_replacement
sleep 1
{
	states "$MNT/md0/md"
	grep -A1 "^md0" "$MNT/mdstat" | head -2
} >"$T/during.txt"
diff -u "$T/vm/out/during.txt" "$T/during.txt" || fail "during the replacement"
put md0/md/sync_speed_max system
wait_idle md0
{
	states "$MNT/md0/md"
	grep -A1 "^md0" "$MNT/mdstat"
} >"$T/after.txt"
diff -u "$T/vm/out/after.txt" "$T/after.txt" || fail "after the replacement"
for d in vda vdb vdc vdd; do "$MDFUSE" examine "$T/ours/$d" | grep -E "Feature Map|Device Role|Array State"; done >"$T/examine.txt"
diff -u "$T/vm/out/examine.txt" "$T/examine.txt" || fail "superblocks after the replacement"
put md0/md/dev-vdb/state remove
states "$MNT/md0/md" >"$T/removed.txt"
diff -u "$T/vm/out/removed.txt" "$T/removed.txt" || fail "after removing vdb"
expect_eq "$(md_sha md0)" "$(summary "$fx" md0_sha256)" "md0 sha256"
expect_eq "$(cat "$T/vm/out/sha.txt")" "$(summary "$fx" md0_sha256)" "oracle: md0 sha256"
put md0/md/array_state clear
rm -rf "$T/vm" "$T/ours"

for fx in raid5-ls-bitmap raid6-bitmap; do
	unpack "$fx" "$T/$fx"
	replace "$fx" "$T/$fx" vdb 1 21
done
# raid4's parity member.
unpack raid4 "$T/raid4"
replace raid4 "$T/raid4" vdc 2 26

mkdir -p "$T/c5"
"$MDFUSE" create -l 5 -n 4 --image-size=12M "$T"/c5/vd{a,b,c,d} >/dev/null 2>&1 || fail "create of a raid5"
new_array md0 "$T"/c5/vd?
put md0/md/array_state active
wait_idle md0
put md0/md/array_state clear
# The parity member of row 0 (left-symmetric: the last).
replace "created raid5" "$T/c5" vdd 3 22

mkdir -p "$T/c6"
"$MDFUSE" create -l 6 -n 5 --bitmap=none -c 64 --image-size=12M "$T"/c6/vd{a,b,c,d,e} >/dev/null 2>&1 ||
	fail "create of a raid6"
new_array md0 "$T"/c6/vd?
put md0/md/array_state active
wait_idle md0
put md0/md/array_state clear
replace "created raid6" "$T/c6" vda 0 23

# The member being replaced fails a read: the replacement's block is
# rebuilt from parity, and the member's is written back, cured.
fx=raid5-ls-bitmap
dir=$T/rerr
unpack "$fx" "$dir"
log "$fx: the replaced member fails a read"
start "$dir"
log_mark
at=$(($(attr md0/md/dev-vdb/offset) + 4096))
put md0/md/dev-vdb/fault "read-error $at-$((at + 7)) count=1"
put md0/md/dev-vdb/state want_replacement
wait_started md0 >/dev/null
put md0/md/sync_speed_max system
wait_idle md0
log_has "read error corrected"
log_lacks "read error NOT corrected"
judge "$fx read error" "$dir" vdb "$(summary "$fx" md0_sha256)" 1
rm -rf "${dir:?}"

# Stopped while replacing: the superblocks record vdx as the replacement
# of vdc, recovered so far; reassembled, it goes on from there.
fx=raid5-ls-bitmap
dir=$T/stop
unpack "$fx" "$dir"
log "$fx: a replacement interrupted by a stop"
start "$dir"
put md0/md/dev-vdc/state want_replacement
wait_started md0 >/dev/null
want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" 24 60) || fail "writes failed"
wait_progress md0 4096
put md0/md/array_state clear
expect_eq "$(sb_field "$dir/vdx" feature_map | python3 -c 'import sys; print(int(sys.stdin.read(), 0) & 0x12)')" 18 \
	"vdx's superblock: a replacement with a recovery offset"
rs=$(sb_field "$dir/vdx" recovery_offset)
[ "$rs" -gt 0 ] || fail "vdx's recovery offset '$rs'"
new_array md0 "$dir"/vd?
put md0/md/array_state read-auto
expect_eq "$(state vdx)" "spare,replacement 2" "vdx reassembled"
expect_eq "$(attr md0/md/dev-vdx/recovery_start)" "$rs" "vdx's recovery_start reassembled"
put md0/md/sync_speed_max 1000
put md0/md/array_state active
expect_eq "$(state vdx)" "spare,replacement 2" "vdx reassembled"
expect_eq "$(state vdc)" "in_sync 2" "vdc reassembled (want_replacement is not kept)"
read -r done _ < <(wait_resumed md0)
[ "$done" -ge "$rs" ] || fail "the replacement restarted at $done, below $rs"
expect_eq "$(sha "$MNT/md0/data")" "$want" "md0/data reassembled mid-replacement"
put md0/md/sync_speed_max system
wait_idle md0
judge "$fx stopped" "$dir" vdc "$want" 2
rm -rf "${dir:?}"

# Sequences run on real md (the oracle) and here, on copies of one
# fixture: vda's replacement by a blank vdd started slowly, STEPS, then
# the sync let go; the member states, mdstat, superblock roles and data
# must then agree.
ORACLE_START='mdadm --assemble /dev/md0 --run $D0 $D1 $D2 >/dev/null 2>&1
S=/sys/block/md0/md
echo active > $S/array_state
mdadm /dev/md0 --add $D3 >/dev/null 2>&1
echo 1000 > $S/sync_speed_max
echo want_replacement > $S/dev-vda/state
sleep 1'
ORACLE_END='echo system > $S/sync_speed_max
wait_idle
sleep 0.5
states $S >$OUT/after.txt
grep -A1 "^md0" /proc/mdstat >>$OUT/after.txt
for d in $D0 $D1 $D2 $D3; do mdadm --examine $d | grep -E "Feature Map|Device Role|Array State"; done >$OUT/examine.txt
md_sha256 >$OUT/sha.txt'

# oracle_replace WHAT STEPS: real md runs the sequence on $T/vm; md0 is
# then made from $T/ours up to the same point (STEPS are left to the
# caller).
oracle_replace() {
	fx=raid5-ls-bitmap
	unpack "$fx" "$T/vm"
	truncate -s "$(stat -c %s "$T/vm/vda")" "$T/vm/vdd"
	cp -r "$T/vm" "$T/ours"
	log "real md: $fx, $1"
	"$REALMD" shell-script --out "$T/vm/out" "$T/vm/vda" "$T/vm/vdb" "$T/vm/vdc" "$T/vm/vdd" \
		-c "$STATE_FN
$ORACLE_START
$2
$ORACLE_END" >"$T/vm.log" 2>&1 || { cat "$T/vm.log" >&2; fail "oracle run"; }
	[ -f "$T/vm/out/examine.txt" ] || { cat "$T/vm.log" >&2; fail "oracle gave no result"; }
	log "mdfuse: $fx, $1"
	new_array md0 "$T/ours/vdb" "$T/ours/vdc" "$T/ours/vda"
	put md0/md/array_state active
	put md0/md/new_dev "$T/ours/vdd"
	put md0/md/sync_speed_max 1000
	put md0/md/dev-vda/state want_replacement
	sleep 1
}

# same_as_real_md WHAT: the sync let go and done, md0 as real md ended.
same_as_real_md() {
	local d
	put md0/md/sync_speed_max system
	wait_idle md0
	sleep 0.5
	{
		states "$MNT/md0/md"
		grep -A1 "^md0" "$MNT/mdstat"
	} >"$T/after.txt"
	diff -u "$T/vm/out/after.txt" "$T/after.txt" || fail "$1"
	for d in vda vdb vdc vdd; do "$MDFUSE" examine "$T/ours/$d" | grep -E "Feature Map|Device Role|Array State"; done >"$T/examine.txt"
	diff -u "$T/vm/out/examine.txt" "$T/examine.txt" || fail "superblocks $1"
	expect_eq "$(md_sha md0)" "$(summary "$fx" md0_sha256)" "md0 sha256"
	expect_eq "$(cat "$T/vm/out/sha.txt")" "$(summary "$fx" md0_sha256)" "oracle: md0 sha256"
	put md0/md/array_state clear
	rm -rf "$T/vm" "$T/ours"
}

# real_md_reads NAME DIR GONE WANT: md0 checks clean; GONE removed and
# md0 stopped, real md reads WANT from the rest of DIR and checks clean.
real_md_reads() {
	local name=$1 dir=$2 gone=$3 want=$4 s
	check_clean md0 "$name"
	put "md0/md/dev-$gone/state" remove
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$name" $(members "$dir" "$gone")
	s=$T/orc-$name/summary.txt
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "$name: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$name: real md's mismatch_cnt"
	rm -rf "${dir:?}"
}

# The member being replaced fails: the replacement takes its slot as an
# ordinary recovering spare and goes on from where it was.  First the
# member states against real md's for the same sysfs writes.
oracle_replace "vda replaced by vdd fails" 'echo faulty > $S/dev-vda/state
sleep 1
states $S >$OUT/during.txt
grep -A1 "^md0" /proc/mdstat | head -2 >>$OUT/during.txt'
put md0/md/dev-vda/state faulty
sleep 1
{
	states "$MNT/md0/md"
	grep -A1 "^md0" "$MNT/mdstat" | head -2
} >"$T/during.txt"
diff -u "$T/vm/out/during.txt" "$T/during.txt" || fail "once the replaced member failed"
same_as_real_md "after the recovery"

for fx in raid5-ls-bitmap raid6-bitmap; do
	dir=$T/failed-$fx
	unpack "$fx" "$dir"
	log "$fx: the replaced member fails"
	start "$dir"
	put md0/md/dev-vda/state want_replacement
	wait_started md0 >/dev/null
	wait_progress md0 2048
	put md0/md/dev-vda/state faulty
	wait_for md0/md/dev-vdx/state spare
	expect_eq "$(attr md0/md/dev-vdx/slot)" 0 "$fx: vdx's slot once vda failed"
	expect_eq "$(attr md0/md/degraded)" 1 "$fx: degraded once vda failed"
	read -r done _ < <(wait_resumed md0)
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" 25 60) || fail "$fx: writes failed"
	expect_eq "$(attr md0/md/sync_action)" recover "$fx: the recovery ended before the writes did"
	put md0/md/sync_speed_max system
	wait_idle md0
	expect_eq "$(state vdx)" "in_sync 0" "$fx: vdx after the recovery"
	expect_eq "$(attr md0/md/dev-vda/state)" faulty "$fx: vda"
	expect_eq "$(attr md0/md/degraded)" 0 "$fx: degraded after the recovery"
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$fx: md0/data after the recovery"
	real_md_reads "failed-$fx" "$dir" vda "$want"
done

# The replacement fails: the member it replaces keeps its slot, in sync,
# and nothing is lost.  First the states against real md's (the
# replacement marked faulty), then write errors on the replacement under
# writes.
oracle_replace "vdd replacing vda fails" 'echo faulty > $S/dev-vdd/state'
put md0/md/dev-vdd/state faulty
same_as_real_md "once the replacement failed"

for fx in raid5-ls-bitmap raid6-bitmap; do
	dir=$T/rfail-$fx
	unpack "$fx" "$dir"
	log "$fx: the replacement fails its writes"
	start "$dir"
	put md0/md/dev-vda/state want_replacement
	wait_started md0 >/dev/null
	wait_progress md0 2048
	put md0/md/dev-vdx/fault write-error
	wait_for md0/md/dev-vdx/slot none
	expect_eq "$(attr md0/md/dev-vdx/state | cut -d, -f1)" faulty "$fx: vdx once its writes failed"
	expect_eq "$(state vda)" "in_sync,want_replacement 0" "$fx: vda once its replacement failed"
	expect_eq "$(attr md0/md/degraded)" 0 "$fx: degraded once the replacement failed"
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" 26 60) || fail "$fx: writes failed"
	put md0/md/sync_speed_max system
	wait_idle md0
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$fx: md0/data after the replacement failed"
	real_md_reads "rfail-$fx" "$dir" vdx "$want"
done
log "replaced; real md agrees"
