#!/bin/bash
# mdadm's tests/01replace for RAID1 (probe_replace.sh), through the tree:
# each mdadm command becomes the writes mdadm makes.  `--replace X
# --with Y` (Manage_subdevs, Manage_replace, Manage_with) freezes
# sync_action when it reads idle or recover, writes want_replacement to
# X's state, Y's slot number to Y's slot, and sets sync_action back to
# idle; frozen, md's thread starts nothing in between, so the slot write
# finds no recovery running (without the freeze, real md's thread makes
# another spare the replacement first and the slot write gets EBUSY, as
# here).  `--add` is new_dev, `--remove` and `--fail` are state writes,
# `-S` is clear.  expected/mdadm_01replace.txt is the same steps run by
# real mdadm on real md (oracle/mdadm_01replace.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_replace.sh"

IMGS=()
for d in $r_names; do
	truncate -s 20000K "$T/$d"
	IMGS+=("$T/$d")
done
start_daemon
S=$MNT/md0/md

r_dev() { echo "$T/$(r_name "$1")"; }
r_create() {
	"$MDFUSE" create -f -l1 -n4 -x2 --bitmap=none "${IMGS[@]}" >/dev/null 2>&1 || return 1
	new_array md0 "${IMGS[@]}"
	put md0/md/array_state active
}
# w FILE VALUE: one write into md0/md, its success as the exit status.
w() { (printf '%s\n' "$2" >"$S/$1") 2>/dev/null; }
r_replace() {
	local x y frozen= slot
	x=$(r_name "$1")
	case $(cat "$S/sync_action") in
	idle | recover) w sync_action frozen && frozen=1 ;;
	esac
	slot=$(cat "$S/dev-$x/slot")
	local rc=0
	if [ "$slot" == none ] || ! w "dev-$x/state" want_replacement; then
		rc=1
	elif [ -n "${2:-}" ]; then
		y=$(r_name "$2")
		if [[ $(cat "$S/dev-$y/state") == *faulty* ]] || [ "$(cat "$S/dev-$y/slot")" != none ] ||
			! w "dev-$y/slot" "$slot"; then
			rc=1
		fi
	fi
	[ -z "$frozen" ] || w sync_action idle
	return $rc
}
r_remove() {
	local n
	for n in "$@"; do w "dev-$(r_name "$n")/state" remove || return 1; done
}
r_add() {
	local n
	for n in "$@"; do w new_dev "$(r_dev "$n")" || return 1; done
}
r_fail() {
	local n
	for n in "$@"; do w "dev-$(r_name "$n")/state" faulty || return 1; done
}
r_stop() { w array_state clear; }
r_zero() { dd if=/dev/zero of="$(r_dev "$1")" bs=1K count=20000 conv=notrunc status=none; }
r_fill() {
	head -c "$(stat -c %s "$MNT/md0/data")" /dev/urandom |
		dd of="$MNT/md0/data" bs=1M iflag=fullblock conv=notrunc status=none
}
r_sum() { sha1sum <"$MNT/md0/data" | cut -d' ' -f1; }
r_speed() { printf '%s\n' "$1" >"$MNT/speed_limit_max"; }
r_mdstat() { mdstat_line md0; }

log "01replace, level 1"
probe_replace >"$T/ours.txt" 2>&1 || true
diff -u "$(dirname "$0")/expected/mdadm_01replace.txt" "$T/ours.txt" || fail "01replace differs from real md's"
stop_daemon
log "ok"
