# Shared helpers for mdfuse's shell-driven tests.  Sourced by each script.
# The runner (tests/shell.rs) sets MDFUSE to the built binary and SHARED to
# the shared material; scripts can also be run by hand:
#   MDFUSE=target/release/mdfuse bash tests/shell/NAME.sh
set -euo pipefail

: "${MDFUSE:?set MDFUSE to the mdfuse binary}"
SHARED=${SHARED:-${MDFUSE_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../shared" && pwd)}}
FIXTURES=$SHARED/oracle/fixtures
REALMD=$SHARED/oracle/realmd

T=$(mktemp -d "${TMPDIR:-/tmp}/mdfuse-test.XXXXXX")
MNT=$T/mnt
mkdir -p "$MNT"
DPID=
DCONN=
LOOPS=()
MOUNTS=()

log() { echo "== $*" >&2; }
fail() {
	echo "FAIL: $*" >&2
	[ -z "$DPID" ] || daemon_state >&2
	if [ -f "$MNT/log" ]; then echo "--- mdfuse log:" >&2; tail -n 40 "$MNT/log" >&2 || true; fi
	if [ -s "$T/daemon.log" ]; then echo "--- daemon stderr:" >&2; tail -n 20 "$T/daemon.log" >&2 || true; fi
	if [ -f "$MNT/mdstat" ]; then echo "--- mdstat:" >&2; timeout 5 cat "$MNT/mdstat" >&2 || true; fi
	# Said again last: a report that keeps only the tail still has it.
	echo "FAIL: $*" >&2
	exit 1
}

# Undo everything this script set up, in reverse order, even on failure.
cleanup() {
	local rc=$?
	set +e
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}"; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	stop_daemon
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

# start_daemon [OPTIONS...]: mount the tree on $MNT in the foreground, as a
# child of this script, and wait until it answers.  MDFUSE_TEST_DATA_CACHE
# (none, writeback) runs a script under that --data-cache.
start_daemon() {
	DAEMON_ARGS=("$@")
	"$MDFUSE" mount -f ${MDFUSE_TEST_DATA_CACHE:+--data-cache="$MDFUSE_TEST_DATA_CACHE"} "$@" "$MNT" 2>>"$T/daemon.log" &
	DPID=$!
	DCONN=
	for _ in $(seq 100); do
		if [ -e "$MNT/mdstat" ]; then
			DCONN=$(fuse_conn "$MNT")
			return 0
		fi
		kill -0 "$DPID" 2>/dev/null || { cat "$T/daemon.log" >&2; fail "daemon exited"; }
		sleep 0.05
	done
	fail "mount did not come up"
}

# stop_daemon: SIGTERM the daemon this script started; it stops the arrays
# and unmounts.
stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$DPID" 2>/dev/null; then
		echo "--- the daemon still runs 10 s after SIGTERM:" >&2
		daemon_state >&2
		kill -KILL "$DPID"
		reap_killed || true
	fi
	[ -z "$DPID" ] || wait "$DPID" 2>/dev/null
	DPID=
	if grep -q " $MNT " /proc/mounts; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; fi
}

# reap_killed: after SIGKILL, until the daemon can be reaped (at most
# 10 s).  One that SIGKILL cannot end has a thread in an uninterruptible
# wait, as a rule a request to a FUSE connection nobody serves any more:
# it is described and its own connection aborted, so that `wait` cannot
# hang, and reap_killed fails.
reap_killed() {
	for _ in $(seq 100); do
		[ "$(live_threads "$DPID")" -gt 0 ] || return 0
		sleep 0.1
	done
	echo "--- the daemon still runs 10 s after SIGKILL:" >&2
	daemon_state >&2
	if [ -n "$DCONN" ]; then
		local ctl=/sys/fs/fuse/connections ours=
		if [ ! -e "$ctl/$DCONN" ] && mount -t fusectl fusectl "$ctl" 2>/dev/null; then ours=1; fi
		echo "--- aborting its FUSE connection $DCONN" >&2
		echo 1 >"$ctl/$DCONN/abort" 2>/dev/null || echo "--- cannot abort $ctl/$DCONN" >&2
		[ -z "$ours" ] || umount "$ctl" 2>/dev/null || true
	fi
	for _ in $(seq 100); do
		[ "$(live_threads "$DPID")" -gt 0 ] || return 1
		sleep 0.1
	done
	daemon_state >&2
	echo "--- not reaped: left behind (pid $DPID)" >&2
	DPID=
	return 1
}

# live_threads PID: how many of the process's threads have not exited
# (0: it can be reaped; a leader that exited before its other threads
# shows as a zombie while they live on).
live_threads() {
	grep -h '^State:' /proc/"$1"/task/*/status 2>/dev/null | grep -vc 'Z (zombie)'
}

# fuse_conn DIR: the number of the FUSE connection mounted on DIR (its
# entry in /sys/fs/fuse/connections: the minor of the mount's st_dev).
fuse_conn() {
	local dev
	dev=$(stat -c %d "$1" 2>/dev/null) || return 0
	echo $(((dev & 0xff) | ((dev >> 12) & ~0xff)))
}

# daemon_state: what the daemon is doing: its threads' states and wait
# channels, pending signals, whether its mount is there and answers.
daemon_state() {
	local p=$DPID t
	[ -n "$p" ] && [ -d "/proc/$p" ] || { echo "--- daemon $p: gone"; return 0; }
	echo "--- daemon $p: $(grep -E '^(State|SigPnd|ShdPnd)' "/proc/$p/status" 2>/dev/null | tr '\t\n' '  ')"
	for t in /proc/"$p"/task/*; do
		echo "    $(cat "$t/comm" 2>/dev/null): $(sed -n 's/^State:\t//p' "$t/status" 2>/dev/null), wchan $(cat "$t/wchan" 2>/dev/null)"
	done
	if grep -q " $MNT " /proc/mounts; then
		echo "    $MNT mounted (connection ${DCONN:-?}, waiting requests $(cat "/sys/fs/fuse/connections/$DCONN/waiting" 2>/dev/null))"
		echo "    stat of mdstat: $(timeout 2 stat -c %s "$MNT/mdstat" 2>&1 || echo "no answer in 2 s")"
	else
		echo "    $MNT not mounted"
	fi
}

# term_daemon [SECONDS]: SIGTERM the daemon; it must stop its arrays and
# exit by itself, with status 0, within SECONDS (default 10), and leave
# nothing mounted.  (stop_daemon, for cleanup, falls back on SIGKILL.)
term_daemon() {
	[ -n "$DPID" ] || fail "term_daemon: no daemon running"
	local limit=${1:-10} start=$SECONDS rc=0
	kill -TERM "$DPID"
	while kill -0 "$DPID" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			grep -B2 -A20 panicked "$T/daemon.log" >&2 || true
			fail "the daemon still runs $limit s after SIGTERM"
		fi
		sleep 0.05
	done
	wait "$DPID" || rc=$?
	DPID=
	[ $rc == 0 ] || fail "the daemon exited with status $rc after SIGTERM"
	! grep -q " $MNT " /proc/mounts || fail "$MNT still mounted after the daemon exited"
}

# restart_daemon: SIGTERM the daemon, judged as term_daemon judges it (it
# stops in time, with status 0, its mount gone), and start it again with
# the same options: a fault case ends in a clean stop.
restart_daemon() {
	term_daemon
	start_daemon "${DAEMON_ARGS[@]}"
}

# kill9_daemon: crash the daemon (no clean stop) and drop its mount.
kill9_daemon() {
	kill -KILL "$DPID"
	if ! reap_killed; then
		[ -z "$DPID" ] || wait "$DPID" 2>/dev/null || true
		DPID=
		fail "the daemon did not end on SIGKILL"
	fi
	wait "$DPID" 2>/dev/null || true
	DPID=
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}

# unpack FIXTURE DIR: the fixture's images as DIR/vda, DIR/vdb, ...
unpack() {
	local fx=$1 dir=$2 i=0
	mkdir -p "$dir"
	for z in "$FIXTURES/$fx"/d*.img.zst; do
		zstd -q -d -f "$z" -o "$dir/vd$(printf "\\x$(printf %x $((97 + i)))")"
		i=$((i + 1))
	done
}

# summary FIXTURE KEY [STAGE]: a value from the fixture's summary.txt
summary() { sed -n "s/^$2: //p" "$FIXTURES/$1/${3:-inspect}/summary.txt"; }

# attr PATH: the value of a tree file, without the trailing newline
attr() { cat "$MNT/$1"; }

# put PATH VALUE: write VALUE into a tree file (fails the test on error)
put() { printf '%s\n' "$2" >"$MNT/$1" || fail "echo $2 > $1"; }

# expect_err ERRTEXT PATH VALUE: writing VALUE must fail with ERRTEXT
# (e.g. "Invalid argument"); prints nothing on success.
expect_err() {
	local want=$1 path=$2 value=$3 out
	if out=$( (printf '%s' "$value" >"$MNT/$path") 2>&1); then
		fail "writing $(printf %q "$value") to $path succeeded, wanted: $want"
	fi
	case "$out" in
	*"$want"*) ;;
	*) fail "writing $(printf %q "$value") to $path: got '$out', wanted '$want'" ;;
	esac
}

# grep_q ARGS...: `grep -q` at the end of a pipeline.  grep -q exits at
# the first match; a producer still writing then dies of SIGPIPE, and
# under pipefail the pipeline fails though the line was there (bash's
# echo writes line by line).  This reads all of its input.
grep_q() { grep "$@" >/dev/null; }

expect_eq() {
	[ "$1" == "$2" ] || fail "${3:-value}: got '$1', wanted '$2'"
}

# new_array NAME DEV...: create the array and bind the devices in order.
new_array() {
	local name=$1 d
	shift
	put new_array "$name"
	for d in "$@"; do put "$name/md/new_dev" "$d"; done
}

# sysfs_dump DIR: like the oracle's sysfs_dump, every readable file below
# DIR as "relpath: value", sorted (mdfuse's own extra files left out).
sysfs_dump() {
	python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
# Also files of kernels newer than the 6.1 the fixtures were written by.
skip = {"fault", "io", "mismatches", "repair_source", "logical_block_size", "bitmap_type"}
out = []
for dp, dn, fn in os.walk(root):
    dn[:] = [d for d in dn if not os.path.islink(os.path.join(dp, d))]
    for f in fn:
        p = os.path.join(dp, f)
        if os.path.islink(p) or f in skip or not (os.stat(p).st_mode & 0o444):
            continue
        try:
            v = open(p).read()
        except OSError:
            continue
        if v.endswith("\n"):
            v = v[:-1]
        out.append("%s: %s" % (os.path.relpath(p, root), v.replace("\n", "\\n")))
print("\n".join(sorted(out)))
PY
}

# mdstat_line NAME: the array's mdstat stanza on one line, " | "-joined,
# as the oracle's mdstat_line prints it.
mdstat_line() {
	awk -v n="$1" '
		$1 == n { on = 1; printf "%s", $0; next }
		on && NF == 0 { on = 0 }
		on { sub(/^[ \t]+/, ""); printf " | %s", $0 }
		END { printf "\n" }' "$MNT/mdstat"
}

# wait_for PATH VALUE [SECONDS]: poll a tree file until it reads VALUE.
wait_for() {
	local deadline=$((SECONDS + ${3:-30}))
	while [ "$(cat "$MNT/$1" 2>/dev/null)" != "$2" ]; do
		# A read that fails says why (the file gone, the mount dead).
		[ $SECONDS -lt $deadline ] || fail "$1 stayed '$(cat "$MNT/$1" 2>&1)', wanted '$2'"
		sleep 0.1
	done
}

# wait_idle NAME [SECONDS]: until no sync runs or is pending.  Right
# after a run, sync_action still reads idle until md's thread has looked
# at the array (as in Linux); a writable, unfrozen array whose
# resync_start is not none has a resync coming, so that is waited for.
wait_idle() {
	local secs=${2:-120} state action
	state=$(cat "$MNT/$1/md/array_state" 2>/dev/null)
	action=$(cat "$MNT/$1/md/sync_action" 2>/dev/null)
	if [ -e "$MNT/$1/md/resync_start" ] && [ "$action" != frozen ] &&
		[[ $state == @(clean|active|active-idle|write-pending) ]]; then
		wait_for "$1/md/resync_start" none "$secs"
	fi
	wait_for "$1/md/sync_action" idle "$secs"
	wait_for "$1/md/sync_completed" none "$secs"
}

# oracle_inspect OUTDIR IMG...: let real Linux md judge the images (on
# copies); the summary lands in OUTDIR/summary.txt.
oracle_inspect() {
	local out=$1
	shift
	"$REALMD" inspect --out "$out" "$@" >"$out.log" 2>&1 || true
	[ -f "$out/summary.txt" ] || { cat "$out.log" >&2; fail "oracle produced no report"; }
}

# loop_attach FILE: attach a loop device (recorded for cleanup) and print it.
loop_attach() {
	local dev
	dev=$(losetup -f --show "$@")
	LOOPS+=("$dev")
	echo "$dev"
}

loop_detach() {
	losetup -d "$1"
	local keep=()
	for l in "${LOOPS[@]}"; do [ "$l" == "$1" ] || keep+=("$l"); done
	LOOPS=("${keep[@]}")
}
