#!/bin/bash
# Member state and slot writes: every state word on a member in a slot of
# a running array, failing members (the last one kept unless fail_last_dev),
# remove, binding again, re-add, a spare's slot writes and recovery into a
# freed slot, want_replacement, and the same writes before the array runs
# -- each step's errno, and what sysfs, mdstat and the superblocks on disk
# show after it.  expected/member_state.txt is the same scenarios
# (probe_member.sh) run by real md (oracle/member_state.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_member.sh"

start_daemon
M_TMP=$T/examine
letter=0
# Each scenario's images get the names real md gives them in the oracle,
# where every image of the run is one more virtio disk: vda, vdb, ...
m_bind() {
	local name=$1 fx=$2 img d
	M_NAME=$name
	unpack "$fx" "$T/unpack"
	put new_array "$name"
	S=$MNT/$name/md
	DATA=$MNT/$name/data
	put "$name/md/metadata_version" 1.2
	DEVS=
	for img in "$T"/unpack/vd?; do
		d=vd$(printf "\\x$(printf %x $((97 + letter)))")
		letter=$((letter + 1))
		mv "$img" "$T/$d"
		put "$name/md/new_dev" "$T/$d"
		DEVS="$DEVS $d"
	done
	set -- $DEVS
	D1=$1 D2=$2 D3=${3:-}
}
m_examine() { mdadm --examine "$T/$1"; }
m_mdstat() { mdstat_line "$M_NAME"; }

# How many superblock updates a recovery makes depends on how fast it
# runs against md's thread (a checkpoint every 1/16 of the way asks for
# one; those that come while one is being written share it): the events
# after a recovery are left out, everything else on those lines is kept.
after_recovery() {
	sed -E '/^(spare (- \(sync_action idle\)|recovered|replaced|vdg )|replace (rebuilt|vdl ))/s#\| [0-9]+/#| E/#g' "$1"
}

log "member scenarios"
(set +e +o pipefail; probe_members) >"$T/ours.txt" 2>&1 || true
after_recovery "$(dirname "$0")/expected/member_state.txt" >"$T/theirs.f.txt"
after_recovery "$T/ours.txt" >"$T/ours.f.txt"
diff -u "$T/theirs.f.txt" "$T/ours.f.txt" || fail "member states differ from the kernel's"

# mdfuse's own: new_dev on a running array is how a member is added back
# (mdadm --add/--re-add, which on Linux go through the ADD_NEW_DISK ioctl:
# the kernel's sysfs new_dev only binds a spare).  A member that failed
# and was removed returns to its old slot and catches up by the bitmap.
log "a removed member bound again"
unpack raid1-v1.2-bitmap "$T/again"
new_array md9 "$T/again/vda" "$T/again/vdb"
put md9/md/array_state active
put md9/md/dev-vda/state faulty
wait_for md9/md/dev-vda/slot none
put md9/md/dev-vda/state remove
[ ! -e "$MNT/md9/md/dev-vda" ] || fail "dev-vda still there after remove"
[ ! -e "$MNT/md9/md/rd0" ] || fail "rd0 still there after remove"
dd if=/dev/urandom of="$MNT/md9/data" bs=64k count=4 seek=3 conv=notrunc,fsync status=none
put md9/md/new_dev "$T/again/vda"
wait_idle md9
expect_eq "$(attr md9/md/dev-vda/state)" in_sync "vda back"
expect_eq "$(attr md9/md/dev-vda/slot)" 0 "vda's slot"
expect_eq "$(readlink "$MNT/md9/md/rd0")" dev-vda "rd0"
grep -q "md: recovery of RAID array md9" "$MNT/log" || fail "no recovery logged"
put md9/md/sync_action check
sleep 0.5
wait_idle md9
expect_eq "$(attr md9/md/mismatch_cnt)" 0 "mismatch_cnt after catching up"
put md9/md/array_state clear

# writemostly on a member of an array not yet running: nothing is written
# to the members then (md has no level, size or roles to write yet: a
# superblock written now would wipe theirs; Linux 6.1 oopses), and the
# run takes the members' flags from their superblocks, as md's
# super_1_validate does.
log "writemostly before the array runs"
unpack raid1-v1.2-bitmap "$T/wm"
before=$(head -c 1M "$T/wm/vdb" | sha256sum)
new_array md9 "$T/wm/vda" "$T/wm/vdb"
put md9/md/dev-vdb/state writemostly
expect_eq "$(head -c 1M "$T/wm/vdb" | sha256sum)" "$before" "vdb's metadata before the run"
"$MDFUSE" examine "$T/wm/vdb" | grep_q "Raid Level : raid1" || fail "vdb's superblock lost"
put md9/md/array_state active
expect_eq "$(attr md9/md/dev-vdb/state)" in_sync "vdb after the run"
expect_eq "$(attr md9/md/degraded)" 0 "degraded after the run"
put md9/md/array_state clear
