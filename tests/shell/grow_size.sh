#!/bin/bash
# Growing the space used on each member of a running array (mdadm --grow
# --size, `component_size`) for the levels that keep their data at fixed
# places as the size changes: raid10 near and offset layouts (rounded as
# raid10's calc_sectors rounds), raid5 and raid6 (whole chunks).  The
# data already there stays, the new part is resynced from the old end,
# a check finds nothing, and real md assembles the grown images with the
# same size, data and a clean check.  A far layout cannot grow (EINVAL).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon

# grow NAME CREATE_OPTIONS...: a 4-member array on 16 MiB images using
# 8 MiB of each, filled, grown to all they hold.
grow() {
	local name=$1 imgs=() i old new want
	shift
	log "$name"
	for i in 0 1 2 3; do imgs+=("$T/$name-d$i"); done
	"$MDFUSE" create "$@" -n 4 --chunk=64 --size=8M --bitmap=none --image-size=16M "${imgs[@]}" \
		>"$T/create.log" 2>&1 || fail "$name: create: $(cat "$T/create.log")"
	new_array md0 "${imgs[@]}"
	put md0/md/array_state active
	# An array made without --assume-clean resyncs first; until md's
	# thread has started that, sync_action still reads idle.
	wait_for md0/md/resync_start none 120
	wait_idle md0
	old=$(($(attr md0/size) * 512))
	head -c "$old" /dev/urandom >"$T/old.bin"
	dd if="$T/old.bin" of="$MNT/md0/data" bs=1M oflag=direct status=none conv=notrunc
	"$MDFUSE" grow --tree "$MNT" md0 --size max >"$T/grow.log" 2>&1 || fail "$name: grow: $(cat "$T/grow.log")"
	new=$(($(attr md0/size) * 512))
	[ "$new" -gt "$old" ] || fail "$name: size $old -> $new"
	expect_eq "$(stat -c %s "$MNT/md0/data")" "$new" "$name: md0/data's size"
	wait_idle md0
	expect_eq "$(attr md0/md/last_sync_action)" resync "$name: the new part resynced"
	expect_eq "$(head -c "$old" "$MNT/md0/data" | sha256sum | cut -d' ' -f1)" "$(sha "$T/old.bin")" \
		"$name: the data before the growth"
	head -c $((new - old)) /dev/urandom | dd of="$MNT/md0/data" bs=1M seek="$old" oflag=direct,seek_bytes \
		status=none conv=notrunc
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$name: mismatch_cnt"
	want=$(sha "$MNT/md0/data")
	put md0/md/array_state inactive
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$name" "${imgs[@]}"
	local s=$T/orc-$name/summary.txt
	expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "$name: real md assembles it"
	expect_eq "$(sed -n 's/^md_size_bytes: //p' "$s")" "$new" "$name: real md's size"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "$name: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$name: real md's mismatch_cnt"
	rm -f "${imgs[@]}"
}

grow raid10-n2 --level=10 --layout=n2
grow raid10-o2 --level=10 --layout=o2
if "$MDFUSE" create --help | grep_q "raid5"; then
	grow raid5 --level=5 --assume-clean
	grow raid6 --level=6
fi

log "members grown while the array was stopped: --size max takes their room"
# What a user does after enlarging a VM's disks: the superblocks (1.2)
# still say how much each member held; a member's size of 0 takes what
# its device holds now (rdev_size_change), as mdadm --grow writes first.
imgs=()
for i in 0 1 2; do imgs+=("$T/gm-d$i"); done
"$MDFUSE" create --level=5 -n 3 --chunk=64 --bitmap=none --assume-clean --image-size=8M \
	"${imgs[@]}" >/dev/null 2>&1 || fail "gm: create"
new_array md0 "${imgs[@]}"
put md0/md/array_state active
old=$(($(attr md0/size) * 512))
old_member=$(attr md0/md/dev-gm-d0/size)
head -c "$old" /dev/urandom >"$T/old.bin"
dd if="$T/old.bin" of="$MNT/md0/data" bs=1M oflag=direct status=none conv=notrunc
put md0/md/array_state inactive
put md0/md/array_state clear
truncate -s 16M "${imgs[@]}"
new_array md0 "${imgs[@]}"
put md0/md/array_state active
expect_eq "$(attr md0/md/dev-gm-d0/size)" "$old_member" "gm: a member's size as its superblock says"
"$MDFUSE" grow --tree "$MNT" md0 --size max >"$T/grow.log" 2>&1 || fail "gm: grow: $(cat "$T/grow.log")"
member=$(attr md0/md/dev-gm-d0/size)
[ "$member" -gt $((old_member + 7000)) ] || fail "gm: member size $old_member -> $member"
new=$(($(attr md0/size) * 512))
expect_eq "$new" $((member / 64 * 64 * 2 * 1024)) "gm: the array uses what the members hold, whole chunks"
wait_idle md0
expect_eq "$(head -c "$old" "$MNT/md0/data" | sha256sum | cut -d' ' -f1)" "$(sha "$T/old.bin")" \
	"gm: the data before the growth"
"$MDFUSE" grow --tree "$MNT" md0 --size max >"$T/grow.log" 2>&1
grep_q "unchanged at $((new / 2048))K" "$T/grow.log" || fail "gm: a second max: $(cat "$T/grow.log")"
want=$(sha "$MNT/md0/data")
put md0/md/array_state inactive
put md0/md/array_state clear
oracle_inspect "$T/orc-gm" "${imgs[@]}"
s=$T/orc-gm/summary.txt
expect_eq "$(sed -n 's/^md_size_bytes: //p' "$s")" "$new" "gm: real md's size"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "gm: real md's sha256"
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "gm: real md's mismatch_cnt"
rm -f "${imgs[@]}"

log "a far layout keeps its size"
imgs=()
for i in 0 1 2 3; do imgs+=("$T/f2-d$i"); done
"$MDFUSE" create --level=10 --layout=f2 -n 4 --chunk=64 --size=8M --bitmap=none --image-size=16M \
	"${imgs[@]}" >/dev/null 2>&1 || fail "f2: create"
new_array md0 "${imgs[@]}"
put md0/md/array_state active
wait_idle md0
expect_err "Invalid argument" md0/md/component_size 12000
put md0/md/array_state clear
log "ok"
