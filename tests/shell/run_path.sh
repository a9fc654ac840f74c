#!/bin/bash
# The run path (do_md_run) and the kernel's messages for it, each case
# checked first in the oracle's VM with real md (the same images, bound
# through sysfs and run with "active"):
#   - a member one event too old: "md: kicking non-fresh vdb from array!"
#   - a superblock changed on disk after binding: md keeps the copy it
#     read at bind and runs with it (so "md: fatal superblock inconsistency
#     in X -- removing from array" cannot be reached through sysfs: every
#     bind compares with the member bound before it, and nothing is read
#     again); the next superblock write puts the right one back
#   - level 9: "md: personality for level 9 is not loaded!" (no
#     personality has it, in Linux either); level 5 on members without a
#     chunk size: raid456 refuses it ("md/raid:md0: invalid chunk size 0")
#   - a 1.0 member whose size runs into its superblock: "md: md0: data
#     overlaps metadata"
#   - a dirty array: "md/raid1:md0: not clean -- starting background
#     reconstruction", then a resync; dirty and degraded: RAID1 starts it
#     with resync_start none (only RAID4/5/6 consult start_dirty_degraded)
#   - no members: EINVAL; active on a running array: nothing to do (0)
#   - two partitions of one disk: "md0: WARNING: loop0p1 appears to be on
#     the same physical disk as loop0p2." and "True protection against
#     single-disk failure might be compromised."
. "$(dirname "$0")/lib.sh"
SBPATCH=$(dirname "$0")/sbpatch.py

start_daemon

# logged TEXT: the tree's log has a line ending in TEXT (after the
# timestamp), since the last mark.
mark() { LOGMARK=$(wc -l <"$MNT/log"); }
LOGMARK=0
logged() {
	tail -n +$((LOGMARK + 1)) "$MNT/log" | sed 's/^\[[ 0-9.]*\] //' | grep_q -xF "$1" ||
		fail "log lacks '$1'"
}
not_logged() {
	! tail -n +$((LOGMARK + 1)) "$MNT/log" | grep_q -F "$1" || fail "log has '$1'"
}
# run_md0 WANT: echo active into md0's array_state; WANT is "ok" or the
# error text.  Marks the log first.
run_md0() {
	local out r
	mark
	if out=$( (echo active >"$MNT/md0/md/array_state") 2>&1); then r=ok; else r=${out##*: }; fi
	expect_eq "$r" "$1" "running md0"
}
done_md0() { put md0/md/array_state clear; }
# The first two lines of md0's mdstat stanza.
stanza() { mdstat_line md0 | cut -d'|' -f1-2 | sed 's/ *$//'; }

log "a member one event too old is kicked"
unpack raid1-stale-member "$T/stale"
new_array md0 "$T/stale/vda" "$T/stale/vdb"
run_md0 ok
logged "md: kicking non-fresh vdb from array!"
logged "md/raid1:md0: active with 1 out of 2 mirrors"
[ ! -e "$MNT/md0/md/dev-vdb" ] || fail "vdb still bound"
expect_eq "$(stanza)" "md0 : active raid1 vda[0] | 15360 blocks super 1.2 [2/1] [U_]" "mdstat"
done_md0

log "superblocks changed on disk after binding"
unpack raid1-v1.2-nobitmap "$T/changed"
new_array md0 "$T/changed/vda" "$T/changed/vdb"
python3 "$SBPATCH" --corrupt "$T/changed/vdb" 8
python3 "$SBPATCH" "$T/changed/vda" 8 level=5
run_md0 ok
not_logged "inconsistency"
not_logged "checksum"
expect_eq "$(stanza)" "md0 : active raid1 vdb[1] vda[0] | 15360 blocks super 1.2 [2/2] [UU]" "mdstat"
dd if=/dev/zero of="$MNT/md0/data" bs=4096 count=1 conv=notrunc,fsync status=none
for d in vda vdb; do
	mdadm --examine "$T/changed/$d" | grep_q 'Checksum : .* - correct' || fail "$d: checksum"
	mdadm --examine "$T/changed/$d" | grep_q 'Raid Level : raid1' || fail "$d: level"
done
done_md0

log "a level no personality runs"
unpack raid1-v1.2-nobitmap "$T/r9"
for d in vda vdb; do python3 "$SBPATCH" "$T/r9/$d" 8 level=9; done
new_array md0 "$T/r9/vda" "$T/r9/vdb"
run_md0 "Invalid argument"
logged "md: personality for level 9 is not loaded!"
expect_eq "$(attr md0/md/array_state)" inactive "array_state"
done_md0

log "raid5 members without a chunk size"
unpack raid1-v1.2-nobitmap "$T/r5"
for d in vda vdb; do python3 "$SBPATCH" "$T/r5/$d" 8 level=5; done
new_array md0 "$T/r5/vda" "$T/r5/vdb"
run_md0 "Invalid argument"
logged "md/raid:md0: invalid chunk size 0"
expect_eq "$(attr md0/md/array_state)" inactive "array_state"
done_md0

log "data overlapping metadata"
unpack raid1-v1.0-bitmap "$T/overlap"
sb=$(mdadm --examine "$T/overlap/vda" | sed -n 's/ *Super Offset : \([0-9]*\) sectors/\1/p')
for d in vda vdb; do python3 "$SBPATCH" "$T/overlap/$d" "$sb" size=$((sb + 8)); done
put new_array md0
put md0/md/metadata_version 1.0
put md0/md/new_dev "$T/overlap/vda"
put md0/md/new_dev "$T/overlap/vdb"
run_md0 "Invalid argument"
logged "md: md0: data overlaps metadata"
expect_eq "$(attr md0/md/array_state)" inactive "array_state"
expect_eq "$(stanza)" "md0 : inactive vdb[1] vda[0] | 32736 blocks super 1.0" "mdstat"
done_md0

log "a dirty array resyncs"
unpack raid1-crash-bitmap "$T/crash"
cp "$T/crash/vda" "$T/crash-vda"
new_array md0 "$T/crash/vda" "$T/crash/vdb"
run_md0 ok
logged "md/raid1:md0: not clean -- starting background reconstruction"
logged "md/raid1:md0: active with 2 out of 2 mirrors"
wait_idle md0
logged "md: resync of RAID array md0"
logged "md: md0: resync done."
expect_eq "$(attr md0/md/last_sync_action)" resync "last_sync_action"
expect_eq "$(attr md0/md/resync_start)" none "resync_start"
done_md0

log "a dirty degraded array starts, with nothing to resync"
new_array md0 "$T/crash-vda"
run_md0 ok
logged "md/raid1:md0: active with 1 out of 2 mirrors"
not_logged "not clean"
expect_eq "$(attr md0/md/resync_start)" none "resync_start"
expect_eq "$(attr md0/md/degraded)" 1 "degraded"
sleep 1
expect_eq "$(attr md0/md/array_state)" clean "array_state"
expect_eq "$(attr md0/md/last_sync_action)" none "last_sync_action"
done_md0

log "no members; running twice"
put new_array md0
run_md0 "Invalid argument"
expect_eq "$(attr md0/md/array_state)" clear "array_state"
unpack raid1-v1.2-nobitmap "$T/twice"
put md0/md/new_dev "$T/twice/vda"
put md0/md/new_dev "$T/twice/vdb"
run_md0 ok
run_md0 ok
expect_eq "$(attr md0/md/array_state)" clean "array_state"
done_md0

log "two partitions of one disk"
truncate -s 40M "$T/disk"
python3 "$SBPATCH" --mbr "$T/disk" 2048:32768 36864:32768
unpack raid1-v1.2-nobitmap "$T/parts"
dd if="$T/parts/vda" of="$T/disk" bs=512 seek=2048 conv=notrunc status=none
dd if="$T/parts/vdb" of="$T/disk" bs=512 seek=36864 conv=notrunc status=none
loop_attach -P "$T/disk" >"$T/loop"
loop=$(cat "$T/loop")
lname=$(basename "$loop")
partx -a "$loop" 2>/dev/null || true
wait_for_part() { for _ in $(seq 50); do [ -e "/sys/block/$lname/$lname$1/dev" ] && return; sleep 0.1; done; fail "no partition $1"; }
# Device nodes of their own (nothing here makes them in /dev).
for p in 1 2; do
	wait_for_part p$p
	IFS=: read -r maj min <"/sys/block/$lname/${lname}p$p/dev"
	mknod "$T/${lname}p$p" b "$maj" "$min"
done
new_array md0 "$T/${lname}p1" "$T/${lname}p2"
[ -d "$MNT/md0/md/dev-${lname}p1" ] || fail "no dev-${lname}p1"
run_md0 ok
logged "md0: WARNING: ${lname}p1 appears to be on the same physical disk as ${lname}p2."
logged "True protection against single-disk failure might be compromised."
done_md0
