#!/bin/bash
# `mdfuse detail` against real `mdadm --detail`: every fixture of a level
# the tree runs (mdstat's Personalities line, so raid10/5/6 join by
# themselves once registered) is assembled by echo as mdadm assembled it
# (auto-read-only), and its detail compared line by line with the
# fixture's assembled.detail.txt; then made read-write and left to sync,
# and compared with synced.detail.txt.  Set aside, with the reason:
#  * the device column: mdadm names /dev/vdX, mdfuse the image file (the
#    basename is compared: the images are unpacked as vda, vdb, ...);
#  * Major/Minor: image files have no device number (mdfuse prints 0 0);
#  * after the sync, Update Time and Events: the superblock was written at
#    another moment than in the VM, and how many times during the sync
#    depends on its pace (checkpoints, safe-mode switches).
# The times are the superblocks' own, printed in UTC as in the VM.  The
# error cases give mdadm's messages and status.
. "$(dirname "$0")/lib.sh"

export TZ=UTC
start_daemon
registered=$(head -1 "$MNT/mdstat")

# norm FILE: the device table's Major/Minor masked and paths cut to their
# basename.
norm() {
	sed -E 's#^(   ( +[0-9]+| +-)) +[0-9]+ +[0-9]+ #\1   MAJ   MIN #; s#   /[^ ]*/([^/ ]+)$#   \1#' "$1"
}

detail_vs() {
	local fx=$1 stage=$2 extra=${3:-}
	"$MDFUSE" detail --tree "$MNT" --homehost realmd md0 >"$T/ours.txt" || fail "$fx: detail exited $?"
	norm "$FIXTURES/$fx/inspect/$stage.detail.txt" >"$T/theirs.n.txt"
	norm "$T/ours.txt" >"$T/ours.n.txt"
	if [ -n "$extra" ]; then
		sed -i -E "/$extra/d" "$T/theirs.n.txt" "$T/ours.n.txt"
	fi
	diff -u "$T/theirs.n.txt" "$T/ours.n.txt" || fail "$fx: $stage detail differs from mdadm's"
}

checked=0
for dir in "$FIXTURES"/*/; do
	fx=$(basename "$dir")
	[ -f "$dir/inspect/assembled.detail.txt" ] || continue
	level=$(sed -n 's/^level: //p' "$dir/inspect/assembled.sysfs.txt")
	[[ $registered == *"[$level]"* ]] || { log "$fx: $level not registered, skipped"; continue; }
	log "$fx"
	imgs=$T/$fx
	unpack "$fx" "$imgs"
	want_line=$(summary "$fx" assembled_mdstat)
	listed=$(echo "$want_line" | cut -d'|' -f1 | grep -o 'vd[a-z]\[' | tr -d '[' | tac)
	order=()
	for img in "$imgs"/vd?; do
		n=$(basename "$img")
		echo "$listed" | grep_q -x "$n" || order+=("$img")
	done
	for n in $listed; do order+=("$imgs/$n"); done
	new_array md0 "${order[@]}"
	put md0/md/array_state read-auto
	detail_vs "$fx" assembled
	# --test's status says what the State line says (Detail.c).
	case $(sed -n 's/^ *State : //p' "$FIXTURES/$fx/inspect/assembled.detail.txt") in
	*FAILED*) want_rc=2 ;;
	*degraded*) want_rc=1 ;;
	*) want_rc=0 ;;
	esac
	rc=0; "$MDFUSE" detail --test --tree "$MNT" md0 >/dev/null || rc=$?
	expect_eq $rc $want_rc "$fx: detail --test status"
	# --json carries the same facts.
	"$MDFUSE" detail --json --tree "$MNT" md0 >"$T/ours.json"
	python3 - "$T/ours.json" "$FIXTURES/$fx/inspect/assembled.detail.txt" <<'PY' || fail "$fx: --json disagrees"
import json, re, sys
j = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
def field(k):
    m = re.search(r"^ *%s : (.*)$" % k, t, re.M)
    return m.group(1).rstrip() if m else None
assert j["level"] == field("Raid Level"), j["level"]
assert str(j["raid_devices"]) == field("Raid Devices")
assert str(j["total_devices"]) == field("Total Devices")
assert j["state"] == field("State"), (j["state"], field("State"))
assert j["uuid"] == field("UUID").split()[0]
assert j["events"] == field("Events")
rows = [l.split() for l in t.splitlines() if re.match(r"^ +(\d+|-) +\d+ +\d+ +(\d+|-) +", l)]
assert len(rows) == len(j["devices"]), (rows, j["devices"])
for r, d in zip(rows, j["devices"]):
    assert r[4:-1] == d["state"] or (r[4:] == d["state"]), (r, d)
PY
	if [ -f "$dir/inspect/synced.detail.txt" ] && [ -e "$MNT/md0/md/sync_action" ]; then
		put md0/md/array_state active
		# md starts a pending resync from its thread: wait for its end.
		[ ! -e "$MNT/md0/md/resync_start" ] || wait_for md0/md/resync_start none 120
		# A spare md recovers (mdadm makes raid5 so) starts from md's
		# thread too: wait until as many members work as in the kernel's.
		want_degraded=$(summary "$fx" synced_degraded)
		[ -z "$want_degraded" ] || wait_for md0/md/degraded "$want_degraded" 120
		wait_idle md0
		detail_vs "$fx" synced "^ +(Update Time|Events) :"
	fi
	put md0/md/array_state clear
	rm -rf "${T:?}/$fx"
	checked=$((checked + 1))
done
[ $checked -ge 12 ] || fail "only $checked fixtures compared"

log "errors: mdadm's words and status"
expect_cmd() { # WANT_STATUS WANT_STDERR CMD...
	local want_rc=$1 want_err=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "$rc" "$want_rc" "status of $*"
	expect_eq "$(cat "$T/err")" "$want_err" "stderr of $*"
}
expect_cmd 1 "mdfuse: cannot open /dev/md9: No such file or directory" "$MDFUSE" detail --tree "$MNT" md9
expect_cmd 4 "mdfuse: cannot open /dev/md9: No such file or directory" "$MDFUSE" detail --test --tree "$MNT" md9
expect_cmd 1 "mdfuse: cannot open /dev/md/home: No such file or directory" "$MDFUSE" detail --tree "$MNT" /dev/md/home
expect_cmd 1 "mdfuse: sda does not appear to be an md device" "$MDFUSE" detail --tree "$MNT" sda
put new_array md3
expect_cmd 1 "mdfuse: Array associated with md device /dev/md3 does not exist." "$MDFUSE" detail --tree "$MNT" md3
put md3/md/array_state clear
rc=0; "$MDFUSE" detail --tree "$MNT" 2>/dev/null || rc=$?
expect_eq $rc 2 "detail without ARRAY"
# Nothing mounted there: no daemon is started to report that.
mkdir "$T/empty"
expect_cmd 1 "mdfuse: cannot open /dev/md0: No such file or directory" "$MDFUSE" detail --tree "$T/empty" md0
grep -q " $T/empty " /proc/mounts && fail "detail mounted a tree"
log "$checked fixtures: detail matches mdadm --detail"
