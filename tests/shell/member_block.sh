#!/bin/bash
# A member's `block` link: in sysfs it leads to the block device's
# directory, where `echo x > dev-NAME/block` fails with EISDIR.  Here it
# leads to mdN/slaves/NAME/, which tells what the member is (`dev` of a
# block device, `size`, `path`); nothing in the tree, links followed, is
# a member's image or device, so no write through the tree reaches a
# member's bytes but those md makes.
. "$(dirname "$0")/lib.sh"

unpack raid1-v1.2-bitmap "$T/img"
VA=$T/img/vda
VB=$T/img/vdb
start_daemon
new_array md0 "$VA" "$VB"
put md0/md/array_state active
S=$MNT/md0/md
sum_a=$(sha256sum <"$VA")

log "block leads to a directory describing the member"
[ -L "$S/dev-vda/block" ] || fail "dev-vda/block is not a link"
expect_eq "$(readlink "$S/dev-vda/block")" ../../slaves/vda "dev-vda/block"
[ -d "$S/dev-vda/block" ] || fail "dev-vda/block does not lead to a directory"
expect_eq "$(attr md0/md/dev-vda/block/path)" "$(realpath "$VA")" "vda path"
expect_eq "$(attr md0/slaves/vdb/path)" "$(realpath "$VB")" "vdb path"
expect_eq "$(attr md0/md/dev-vda/block/size)" $(($(stat -c %s "$VA") / 512)) "vda size"
# An image file has no device number.
[ ! -e "$S/dev-vda/block/dev" ] || fail "an image file has block/dev"
expect_eq "$(ls "$MNT/md0/slaves" | tr '\n' ' ')" "vda vdb " "slaves"

log "a write through block fails with EISDIR and leaves the member alone"
out=$( (echo x >"$S/dev-vda/block") 2>&1) && fail "echo x > dev-vda/block succeeded"
[[ $out == *"Is a directory"* ]] || fail "echo x > dev-vda/block: $out"
for f in path size; do
	(echo x >"$S/dev-vda/block/$f") 2>/dev/null && fail "echo x > dev-vda/block/$f succeeded"
done
expect_eq "$(stat -c %s "$VA")" $((16 << 20)) "vda's size"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state"
expect_eq "$(attr md0/md/degraded)" 0 degraded
put md0/md/array_state inactive
expect_eq "$(sha256sum <"$VA")" "$sum_a" "vda's bytes"
put md0/md/array_state clear

log "a block device member: block/dev is its device number"
unpack raid1-v1.2-bitmap "$T/loop"
LB=$(loop_attach "$T/loop/vdb")
lname=$(basename "$LB")
new_array md1 "$T/loop/vda" "$LB"
put md1/md/array_state active
S=$MNT/md1/md
expect_eq "$(readlink "$S/dev-$lname/block")" "../../slaves/$lname" "dev-$lname/block"
expect_eq "$(attr "md1/md/dev-$lname/block/dev")" "$(cat "/sys/class/block/$lname/dev")" "$lname dev"
expect_eq "$(attr "md1/md/dev-$lname/block/path")" "$LB" "$lname path"
expect_eq "$(attr "md1/md/dev-$lname/block/size")" "$(cat "/sys/class/block/$lname/size")" "$lname size"
out=$( (echo x >"$S/dev-$lname/block") 2>&1) && fail "echo x > dev-$lname/block succeeded"
[[ $out == *"Is a directory"* ]] || fail "echo x > dev-$lname/block: $out"

log "no path of the tree leads to a member"
for img in "$T/loop/vda" "$LB" "$VA" "$VB"; do
	hits=$(find -L "$MNT" -samefile "$img" 2>/dev/null || true)
	[ -z "$hits" ] || fail "$img reachable as: $hits"
done

log "unbinding a member takes its directory"
put "md1/md/dev-$lname/state" faulty
wait_for "md1/md/dev-$lname/slot" none
put "md1/md/dev-$lname/state" remove
[ ! -e "$MNT/md1/slaves/$lname" ] || fail "slaves/$lname left after remove"
expect_eq "$(ls "$MNT/md1/slaves" | tr '\n' ' ')" "vda " "md1 slaves"
put md1/md/array_state clear
loop_detach "$LB"
stop_daemon
log "ok"
