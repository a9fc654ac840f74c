#!/bin/bash
# linear and raid0: the data of every fixture reads back as the kernel
# read it (md0_sha256); writes through md0/data (fio verify) land where
# real md reads them, on equal members and on unequal ones (linear, and
# multi-zone raid0 in both layouts); a member that is gone makes the array
# broken as in 6.1; a multi-zone raid0 whose superblock records no layout
# is refused unless raid0_default_layout names one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

SBPATCH="python3 $(dirname "$0")/sbpatch.py"
MD_FEATURE_RAID0_LAYOUT=4096

start_daemon

log "the fixtures' data"
for fx in linear-v1.2 raid0-v1.1 raid0-v1.2; do
	unpack "$fx" "$T/$fx"
	new_array md0 "$T/$fx"/vd?
	put md0/md/array_state read-auto
	expect_eq "$(attr md0/md/array_state)" clean "$fx: array_state"
	expect_eq "$(sha "$MNT/md0/data")" "$(summary "$fx" md0_sha256)" "$fx: md0 sha256"
	expect_eq "$(($(attr md0/size) * 512))" "$(summary "$fx" md_size_bytes)" "$fx: size"
	put md0/md/array_state clear
	rm -rf "${T:?}/$fx"
done

# write_verify: fio writes the whole of md0/data (1 MiB sequential over
# the first half, 4 KiB random over the rest) and verifies it.
write_verify() {
	local bytes half
	bytes=$(($(attr md0/size) * 512))
	half=$((bytes / 2 / 1048576 * 1048576))
	cat >"$T/job.fio" <<EOF
[global]
filename=$MNT/md0/data
direct=1
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
[seq]
rw=write
bs=1M
offset=0
size=$half
[rand]
rw=randwrite
bs=4k
offset=$half
size=$((bytes - half))
EOF
	fio --aux-path="$T" "$T/job.fio" --output="$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio failed"; }
	[ "$(grep -c 'err= 0' "$T/fio.out")" == 2 ] || { cat "$T/fio.out" >&2; fail "a fio job had an error"; }
	! grep -qiE 'verify.*fail|bad magic|bad header' "$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio verify error"; }
}

# oracle_same NAME IMG...: stop md0, let real md assemble the images and
# read the array: the same sha256 as ours.
oracle_same() {
	local name=$1 ours
	shift
	ours=$(sha "$MNT/md0/data")
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$name" "$@"
	expect_eq "$(sed -n 's/^assembled: //p' "$T/orc-$name/summary.txt")" yes "$name: real md assembles it"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc-$name/summary.txt")" "$ours" "$name: real md's sha256"
}

log "writes on equal members, read back by real md"
unpack raid0-v1.2 "$T/r0"
new_array md0 "$T/r0"/vd?
put md0/md/array_state active
write_verify
oracle_same raid0-equal "$T/r0"/vd?

log "linear of unequal members"
unpack linear-v1.2 "$T/lin"
# vda's data area ends 10 MiB early: 10240 + 15360 KiB.
$SBPATCH "$T/lin/vda" 8 data_size=20480
new_array md0 "$T/lin"/vd?
put md0/md/array_state active
expect_eq "$(attr md0/size)" $((20480 + 30720)) "linear size"
expect_eq "$(attr md0/md/dev-vda/size)" 10240 "linear: vda's size"
write_verify
oracle_same linear-unequal "$T/lin"/vd?

# multizone IMGDIR: raid0-v1.2 with vdc's data area cut to 20480
# sectors: zone 0 over three members, zone 1 over vda and vdb.
multizone() {
	rm -rf "$1"
	unpack raid0-v1.2 "$1"
	$SBPATCH "$1/vdc" 8 data_size=20480
}

for layout in 1 2; do
	log "raid0, two zones, layout $layout"
	multizone "$T/mz$layout"
	for d in "$T/mz$layout"/vd?; do
		$SBPATCH "$d" 8 feature_map=$MD_FEATURE_RAID0_LAYOUT layout=$layout
	done
	new_array md0 "$T/mz$layout"/vd?
	put md0/md/array_state active
	expect_eq "$(attr md0/md/layout)" $layout "layout"
	expect_eq "$(attr md0/size)" $((3 * 20480 + 2 * 10240)) "multi-zone size"
	mdstat_line md0 | grep_q -F "40960 blocks super 1.2 64k chunks" || fail "mdstat: $(mdstat_line md0)"
	write_verify
	oracle_same "raid0-layout$layout" "$T/mz$layout"/vd?
done

log "raid0, two zones, no layout recorded: refused"
multizone "$T/mz0"
new_array md0 "$T/mz0"/vd?
log_mark
expect_err "Operation not supported" md0/md/array_state active
log_has "md/raid0:md0: cannot assemble multi-zone RAID0 with default_layout setting"
log_has "md/raid0: please set raid0.default_layout to 1 or 2"
log_has "md: pers->run() failed ..."
expect_eq "$(attr md0/md/array_state)" inactive "refused array_state"
expect_eq "$(attr raid0_default_layout)" 0 "raid0_default_layout"
put raid0_default_layout 2
put md0/md/array_state active
expect_eq "$(attr md0/md/layout)" -1 "layout with the default"
put md0/md/array_state clear
put raid0_default_layout 0

log "a member gone makes raid0 broken"
rm -rf "$T/r0"
unpack raid0-v1.2 "$T/r0"
new_array md0 "$T/r0"/vd?
put md0/md/array_state active
# The first chunk (64 KiB) is on vda, the second on vdb.
dd if="$MNT/md0/data" of="$T/chunk1" bs=64k skip=1 count=1 status=none
log_mark
put md0/md/dev-vda/fault vanish
dd if="$MNT/md0/data" of=/dev/null bs=64k count=1 iflag=direct status=none 2>/dev/null &&
	fail "a read of the vanished member succeeded"
log_has "md/raid0md0: Disk failure on vda detected, failing array."
expect_eq "$(attr md0/md/array_state)" broken "array_state"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda's state"
# mdstat says "active" all the same, as 6.1's does.
mdstat_line md0 | grep_q "^md0 : active raid0 " || fail "mdstat: $(mdstat_line md0)"
# The other members still serve reads; writes fail on a broken array.
dd if="$MNT/md0/data" of="$T/chunk1.again" bs=64k skip=1 count=1 iflag=direct status=none ||
	fail "a read of vdb failed"
cmp "$T/chunk1" "$T/chunk1.again" || fail "vdb's chunk changed"
dd if=/dev/zero of="$MNT/md0/data" bs=64k seek=1 count=1 oflag=direct conv=notrunc status=none 2>/dev/null &&
	fail "a write to the broken array succeeded"
expect_eq "$(log_count "Disk failure on")" 1 "failure messages"
put md0/md/array_state clear

log "faulty on a raid0 or linear member: EBUSY, the array broken"
for fx in raid0-v1.2 linear-v1.2; do
	rm -rf "${T:?}/f"
	unpack "$fx" "$T/f"
	new_array md0 "$T/f"/vd?
	put md0/md/array_state active
	log_mark
	expect_err "Device or resource busy" md0/md/dev-vdb/state faulty
	level=$(attr md0/md/level)
	log_has "md/${level}md0: Disk failure on vdb detected, failing array."
	expect_eq "$(attr md0/md/array_state)" broken "$fx: array_state"
	expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "$fx: vdb's state"
	expect_err "Device or resource busy" md0/md/dev-vdb/state remove
	expect_err "Invalid argument" md0/md/dev-vdb/slot none
	[ ! -e "$MNT/md0/md/sync_action" ] || fail "$fx: sync_action exists"
	# No check_reshape: layout and chunk_size are EBUSY while it runs,
	# even for the chunk it has.
	expect_err "Device or resource busy" md0/md/layout 2
	expect_err "Device or resource busy" md0/md/chunk_size 65536
	put md0/md/array_state clear
done

log "raid0 takes no new member; linear and raid0 refuse reshapes"
rm -rf "${T:?}/f"
unpack raid0-v1.2 "$T/f"
new_array md0 "$T/f"/vda "$T/f"/vdb "$T/f"/vdc
put md0/md/array_state active
truncate -s 16M "$T/blank"
log_mark
expect_err "Invalid argument" md0/md/new_dev "$T/blank"
log_has "md0: personality does not support diskops!"
expect_err "Invalid argument" md0/md/component_size 1024
expect_err "Invalid argument" md0/md/raid_disks 4
put md0/md/array_state clear

log "a blank member extends a running linear array (mdadm --grow --add), and real md reads it"
rm -rf "${T:?}/g"
unpack linear-v1.2 "$T/g"
new_array md0 "$T/g"/vda "$T/g"/vdb
put md0/md/array_state active
before=$(attr md0/size)
head -c "$((before * 512))" "$MNT/md0/data" | sha256sum >"$T/g.before"
truncate -s 24M "$T/g/vdc"
log_mark
put md0/md/new_dev "$T/g/vdc"
expect_eq "$(attr md0/md/raid_disks)" 3 "raid_disks after growth"
expect_eq "$(attr md0/md/dev-vdc/slot)" 2 "the new member's slot"
expect_eq "$(attr md0/md/dev-vdc/state)" in_sync "the new member's state"
# 24 MiB less the 1 MiB data offset of a 1.2 superblock.
expect_eq "$(attr md0/size)" "$((before + 24 * 2048 - 2048))" "size after growth"
log_has "md0: detected capacity change from $before to $((before + 24 * 2048 - 2048))"
head -c "$((before * 512))" "$MNT/md0/data" | sha256sum | cmp -s - "$T/g.before" ||
	fail "the old part changed"
mdstat_line md0 | grep_q "vdc\[2\]" || fail "mdstat: $(mdstat_line md0)"
dd if=/dev/urandom of="$MNT/md0/data" bs=1M seek=$((before / 2048)) count=8 oflag=direct conv=notrunc status=none ||
	fail "a write to the new member failed"
# A member that is not blank, or one for a slot that is not the next,
# is not taken.
truncate -s 16M "$T/g/vdd"
"$MDFUSE" create --force --level=1 --raid-devices=2 --bitmap=none "$T/g/vdd" missing >/dev/null 2>&1 ||
	fail "create for the refusal case"
expect_err "Invalid argument" md0/md/new_dev "$T/g/vdd"
expect_eq "$(attr md0/md/raid_disks)" 3 "raid_disks after a refused member"
put md0/md/array_state inactive
put md0/md/array_state clear
new_array md0 "$T/g"/vdc "$T/g"/vda "$T/g"/vdb
put md0/md/array_state active
expect_eq "$(attr md0/md/raid_disks)" 3 "raid_disks reassembled"
oracle_same linear-grown "$T/g"/vda "$T/g"/vdb "$T/g"/vdc

stop_daemon
final_checks
log "linear and raid0: fixtures' data, writes, unequal members, broken arrays, layouts"
