#!/bin/bash
# mdfuse's verbs against mdadm's on real md: assemble (a member short,
# then with --run), manage (--fail, --remove twice, --re-add, --add of a
# member, of a stranger, of a missing device, several operations in one
# command, removing an active member, --re-add of another array's
# device), --readonly, stop twice, the verbs on an array that is not
# there, --add to a RAID0 and to a read-only array (refused), and
# --re-add of a member behind an array without a bitmap (refused; --add
# makes it a spare), and the words failed and detached.  expected/cli_manage.txt is the same sequence (probe_cli.sh) run
# with mdadm in the oracle (oracle/cli_manage.sh): messages, exit
# statuses, and detail's timing-free lines must be the same.  Then the
# tree agrees: each verb left what a user would see after the same
# writes by hand.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_cli.sh"

start_daemon
DEV=$T/dev
mkdir -p "$DEV" "$T/u1" "$T/u2"
unpack raid1-spare "$T/u1"
unpack raid1-v1.2-nobitmap "$T/u2"
mv "$T/u1/vda" "$T/u1/vdb" "$T/u1/vdc" "$DEV/"
mv "$T/u2/vda" "$DEV/vdd"
mv "$T/u2/vdb" "$DEV/vde"
unpack raid5-ls-bitmap "$T/u3"
unpack raid0-v1.2 "$T/u4"
mv "$T/u3/vda" "$DEV/vdf"
mv "$T/u3/vdb" "$DEV/vdg"
mv "$T/u3/vdc" "$DEV/vdh"
mv "$T/u4/vda" "$DEV/vdi"
mv "$T/u4/vdb" "$DEV/vdj"
mv "$T/u4/vdc" "$DEV/vdk"
truncate -s 16M "$DEV/vdl"
mdf() { "$MDFUSE" "$@" --tree "$MNT"; }
# Paths print as the guest's /dev/vdX.
say() { sed "s#$DEV/#/dev/#g" "$T/o"; echo "rc=$1"; }
devs() { for d in "$@"; do case $d in -*|failed|detached) echo "$d" ;; *) echo "$DEV/$d" ;; esac; done; }
c_assemble() { echo "+ assemble $*"; local rc=0; mdf assemble md0 $(devs "$@") >"$T/o" 2>&1 || rc=$?; say $rc; }
c_manage() { echo "+ manage $*"; local rc=0; mdf manage md0 $(devs "$@") >"$T/o" 2>&1 || rc=$?; say $rc; }
c_stop() { echo "+ stop"; local rc=0; mdf stop md0 >"$T/o" 2>&1 || rc=$?; say $rc; }
c_grow() { echo "+ grow $*"; local rc=0; mdf grow md0 "$@" >"$T/o" 2>&1 || rc=$?; say $rc; }
c_detail() { echo "+ detail"; mdf detail md0 2>&1 | sed "s#$DEV/#/dev/#g" | detail_filter || true; }
c_readonly() { echo "+ readonly"; local rc=0; mdf manage md0 --readonly >"$T/o" 2>&1 || rc=$?; say $rc; cat "$MNT/md0/md/array_state"; }
settle() { wait_idle md0; }

cli_sequence >"$T/ours.txt"
grep -v '^\[' "$(dirname "$0")/expected/cli_manage.txt" >"$T/theirs.txt"
diff -u "$T/theirs.txt" "$T/ours.txt" || fail "the verbs differ from mdadm on real md"
expect_eq "$(sha256sum <"$DEV/vdl")" "$(head -c 16M /dev/zero | sha256sum)" \
	"the blank device --add refused on a failed array was written"

log "the tree after the verbs"
c_assemble vda vdb vdc >/dev/null
mdf manage md0 --fail "$DEV/vdb" --remove "$DEV/vdb" 2>/dev/null
[ ! -e "$MNT/md0/md/dev-vdb" ] || fail "vdb still a member after --fail --remove"
wait_idle md0
expect_eq "$(attr md0/md/dev-vdc/slot)" 1 "the spare took the slot"
expect_eq "$(attr md0/md/degraded)" 0 "degraded after the spare recovered"
# The names the tree gives members work as DEV for --fail and --remove.
mdf manage md0 --fail vdc --remove vdc 2>/dev/null || fail "--fail NAME"
[ ! -e "$MNT/md0/md/dev-vdc" ] || fail "vdc still a member"
expect_eq "$(attr md0/md/degraded)" 1 "degraded after failing vdc"
# --add of a device holding nothing makes a spare that recovers.
truncate -s 16M "$T/blank"
mdf manage md0 --add "$T/blank" 2>"$T/o" || { cat "$T/o"; fail "--add blank"; }
expect_eq "$(cat "$T/o")" "mdfuse: added $T/blank" "--add message"
wait_idle md0
expect_eq "$(attr md0/md/degraded)" 0 "degraded after the blank image recovered"
# A read-only array takes no new member (md's ADD_NEW_DISK: EROFS), and
# nothing is written on it.
echo readonly >"$MNT/md0/md/array_state"
truncate -s 16M "$T/ro-new"
rc=0; echo "$T/ro-new" 2>"$T/o" >"$MNT/md0/md/new_dev" || rc=$?
expect_eq "$rc" 1 "new_dev on a read-only array"
grep -q "Read-only file system" "$T/o" || fail "new_dev on a read-only array: $(cat "$T/o")"
[ ! -e "$MNT/md0/md/dev-ro-new" ] || fail "a new member joined a read-only array"
expect_eq "$(sha256sum <"$T/ro-new")" "$(head -c 16M /dev/zero | sha256sum)" "new_dev on a read-only array wrote the device"
echo active >"$MNT/md0/md/array_state"
# --replace ... --with: the spare named takes over the slot.
mdf manage md0 --add "$DEV/vdc" 2>/dev/null
mdf manage md0 --replace "$DEV/vda" --with "$DEV/vdc" 2>"$T/o" || { cat "$T/o"; fail "--replace"; }
expect_eq "$(cat "$T/o")" "mdfuse: Marked $DEV/vda (device 0 in /dev/md0) for replacement
mdfuse: Marked $DEV/vdc in /dev/md0 as replacement for device 0" "--replace messages"
for _ in $(seq 100); do [ -e "$MNT/md0/md/dev-vda" ] && grep -q faulty "$MNT/md0/md/dev-vda/state" && break; sleep 0.1; done
wait_idle md0
expect_eq "$(attr md0/md/dev-vdc/slot)" 0 "the replacement took slot 0"
grep -q faulty "$MNT/md0/md/dev-vda/state" || fail "the replaced member is not faulty"
# Usage errors: status 2, nothing done.
rc=0; mdf manage md0 2>/dev/null || rc=$?
expect_eq $rc 2 "manage without an operation"
rc=0; mdf manage md0 "$DEV/vdd" 2>/dev/null || rc=$?
expect_eq $rc 2 "manage with a device before any operation"
rc=0; mdf manage md0 --frobnicate x 2>/dev/null || rc=$?
expect_eq $rc 2 "manage with an unknown operation"
rc=0; mdf manage md0 --add vdd 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "1/mdfuse: vdd only meaningful with -r or -f, not -a" "a member name with --add"
rc=0; mdf manage md0 --with "$DEV/vdd" 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "1/mdfuse: No matching --replace device for --with $DEV/vdd" "--with alone"
# mdadm measures a device before adding it (Manage_add's avail_size).
truncate -s 8M "$T/small"
rc=0; mdf manage md0 --add "$T/small" 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "1/mdfuse: $T/small not large enough to join array" "--add of a device too small"
expect_eq "$(sha256sum <"$T/small")" "$(head -c 8M /dev/zero | sha256sum)" "the device too small was written"
# Another array's member is written over only when md then takes it: one
# too small, or added to a read-only array, keeps its superblock.
"$MDFUSE" create -l1 -n2 --assume-clean --image-size 8M "$T/other-s1" "$T/other-s2" >/dev/null 2>&1 ||
	fail "create the small other array"
"$MDFUSE" create -l1 -n2 --assume-clean --image-size 16M "$T/other-f1" "$T/other-f2" >/dev/null 2>&1 ||
	fail "create the other array"
sum_s=$(sha256sum <"$T/other-s1")
rc=0; mdf manage md0 --add "$T/other-s1" 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "1/mdfuse: $T/other-s1 not large enough to join array" "--add of another array's member too small"
expect_eq "$(sha256sum <"$T/other-s1")" "$sum_s" "the other array's small member after a refused --add"
echo readonly >"$MNT/md0/md/array_state"
sum_f=$(sha256sum <"$T/other-f1")
rc=0; mdf manage md0 --add "$T/other-f1" 2>"$T/o" || rc=$?
expect_eq "$rc" 1 "--add of another array's member to a read-only array"
grep -q "Read-only file system" "$T/o" || fail "--add to a read-only array: $(cat "$T/o")"
expect_eq "$(sha256sum <"$T/other-f1")" "$sum_f" "the other array's member after a refused --add"
echo active >"$MNT/md0/md/array_state"
# 'detached': a member whose device has gone (its image file deleted).
rm -f "$T/blank"
rc=0; mdf manage md0 --fail detached --remove detached 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "0/mdfuse: set $T/blank faulty in /dev/md0
mdfuse: hot removed $T/blank from /dev/md0" "--fail detached --remove detached"
[ ! -e "$MNT/md0/md/dev-blank" ] || fail "the detached member is still there"
mdf stop --scan 2>"$T/o"
expect_eq "$(cat "$T/o")" "mdfuse: stopped /dev/md0" "stop --scan"
[ ! -e "$MNT/md0" ] || fail "md0 still there after stop --scan"
log "grow: component size and raid-devices through the tree"
mdf assemble md1 "$DEV/vdd" "$DEV/vde" 2>/dev/null || fail "assemble md1"
wait_idle md1
rc=0; mdf grow md1 --size 8M >"$T/out" 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "0/mdfuse: component size of /dev/md1 has been set to 8192K" "grow --size 8M"
expect_eq "$(attr md1/md/component_size)" 8192 "component_size after grow"
wait_idle md1
mdf grow md1 --size max 2>"$T/o" || fail "grow --size max"
expect_eq "$(cat "$T/o")" "mdfuse: component size of /dev/md1 has been set to 15360K" "grow --size max"
wait_idle md1
mdf grow md1 --size max 2>"$T/o" || fail "grow --size max again"
expect_eq "$(cat "$T/o")" "mdfuse: component size of /dev/md1 unchanged at 15360K" "grow --size max again"
# No spare for the third slot: mdadm wants --force to leave it degraded.
expect_eq "$(mdf grow md1 --raid-devices 3 --force)" "raid_disks for /dev/md1 set to 3" "grow --raid-devices 3"
expect_eq "$(attr md1/md/raid_disks)/$(attr md1/md/degraded)" "3/1" "raid_disks and degraded after growing"
expect_eq "$(mdf grow md1 --raid-devices 2)" "raid_disks for /dev/md1 set to 2" "grow --raid-devices 2"
rc=0; mdf grow md1 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "0/mdfuse: no changes to --grow" "grow without a change (mdadm.c: nothing done, status 0)"
rc=0; mdf grow md1 --size 12X 2>/dev/null || rc=$?
expect_eq $rc 2 "grow with a bad size"
mdf stop md1 2>/dev/null
log "the verbs agree with mdadm on real md"
