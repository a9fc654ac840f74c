# Helpers for the sync tests (resync, recovery, check, repair).  Sourced
# after lib.sh.

# io_writes ARRAY DEV: sectors written to member DEV since it was bound
# (second field of dev-DEV/io).
io_writes() { awk '{ print $2 }' "$MNT/$1/md/dev-$2/io"; }

# md_sha ARRAY: sha256 of the array's contents.
md_sha() { sha256sum <"$MNT/$1/data" | cut -d' ' -f1; }

# create_sha FIXTURE: md0's sha256 when real md created the fixture.
create_sha() { summary "$1" md0_sha256 create; }

# check_clean ARRAY [WHAT]: run a check and expect no mismatch.
check_clean() {
	put "$1/md/sync_action" check
	wait_idle "$1"
	expect_eq "$(attr "$1/md/last_sync_action")" check "${2:-$1}: last_sync_action after check"
	expect_eq "$(attr "$1/md/mismatch_cnt")" 0 "${2:-$1}: mismatch_cnt after check"
}

# wait_started ARRAY [SECONDS]: until a sync has started (sync_completed
# shows numbers); prints them as "DONE TOTAL".
wait_started() {
	local deadline=$((SECONDS + ${2:-30})) v
	while :; do
		v=$(attr "$1/md/sync_completed")
		case "$v" in *" / "*)
			echo "${v% / *} ${v#* / }"
			return 0
			;;
		esac
		[ $SECONDS -lt $deadline ] || fail "$1: no sync started (sync_completed '$v')"
		sleep 0.02
	done
}

# wait_resumed ARRAY [SECONDS]: like wait_started, for a sync expected to
# resume from a checkpoint above 0: until sync_completed shows a start
# above 0.  (Between md starting the run and the worker setting its start,
# sync_completed reads "0 / TOTAL", on Linux too.)  Hold the sync back
# (sync_speed_max) so that a run wrongly started at 0 is still seen at 0,
# or at its first checkpoint, by then.
wait_resumed() {
	local deadline=$((SECONDS + ${2:-30})) v
	while :; do
		v=$(attr "$1/md/sync_completed")
		case "$v" in *" / "*)
			if [ "${v% / *}" != 0 ]; then
				echo "${v% / *} ${v#* / }"
				return 0
			fi
			;;
		esac
		[ $SECONDS -lt $deadline ] || fail "$1: no sync resumed (sync_completed '$v')"
		sleep 0.02
	done
}

# wait_progress ARRAY SECTORS [SECONDS]: until sync_completed reaches
# SECTORS (or the sync ends).
wait_progress() {
	local deadline=$((SECONDS + ${3:-60})) v
	while :; do
		v=$(attr "$1/md/sync_completed")
		case "$v" in
		*" / "*) [ "${v% / *}" -lt "$2" ] || return 0 ;;
		none) return 0 ;;
		esac
		[ $SECONDS -lt $deadline ] || fail "$1: sync_completed stayed '$v', wanted >= $2"
		sleep 0.05
	done
}

# sb_field IMG KEY: a field of `mdfuse examine --json` for one image
# ("none" when absent or null).
sb_field() {
	"$MDFUSE" examine --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)
v = v[0] if isinstance(v, list) else v
k = sys.argv[1]
for part in k.split("."):
    v = v.get(part) if isinstance(v, dict) else None
print("none" if v is None else v)' "$2"
}

# legs_identical IMG IMG: the data areas of two members are equal.
legs_identical() {
	local a=$1 b=$2 oa ob size
	oa=$(sb_field "$a" data_offset)
	ob=$(sb_field "$b" data_offset)
	size=$(sb_field "$a" used_dev_size)
	cmp -s <(dd if="$a" bs=512 skip="$oa" count="$size" status=none) \
		<(dd if="$b" bs=512 skip="$ob" count="$size" status=none)
}

# poll_arm PATH [SECONDS]: in the background, open a tree file, read it,
# and wait in select() for an exceptional condition as mdadm --monitor
# does (sysfs_notify); poll_woken then reports the value read afterwards.
poll_arm() {
	POLL_OUT=$T/poll.$BASHPID.$RANDOM
	python3 - "$MNT/$1" "${2:-10}" >"$POLL_OUT" <<'PY' &
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 4096)
print("armed", flush=True)
_, _, x = select.select([], [], [fd], float(sys.argv[2]))
if not x:
    print("timeout", flush=True)
    sys.exit(1)
os.lseek(fd, 0, os.SEEK_SET)
print("woken " + os.read(fd, 4096).decode().strip(), flush=True)
PY
	POLL_PID=$!
	local deadline=$((SECONDS + 10))
	until grep -q armed "$POLL_OUT" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || fail "poll on $1 did not start"
		sleep 0.01
	done
}

# poll_woken WHAT: wait for the armed poll; it must have woken.  Sets
# POLL_VALUE to the value it read after waking.  (Not in a $(...): the
# waiter is a child of this shell.)
poll_woken() {
	wait "$POLL_PID" || fail "$1: select() did not wake"
	POLL_VALUE=$(sed -n 's/^woken //p' "$POLL_OUT")
}

# poll_quiet WHAT: the armed poll must time out (nothing notified).
poll_quiet() {
	if wait "$POLL_PID"; then fail "$1: select() woke: $(cat "$POLL_OUT")"; fi
}
