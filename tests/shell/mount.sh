#!/bin/bash
# The mount itself: in the foreground and daemonized; ended by SIGTERM,
# umount and fusermount3 -u, each of which first stops the running arrays
# cleanly, as Linux's reboot notifier and md_stop do (a dirty array is
# written clean: events + 1, State clean; a clean one is not written);
# mounted by a normal user through fusermount3 (other users, root
# included, get EACCES); and poll on array_state, sync_action and
# degraded waking as mdadm --monitor expects.
. "$(dirname "$0")/lib.sh"

POLL=$T/poll.py
cat >"$POLL" <<'EOF'
# poll.py FILE SECONDS: read FILE, wait for an exceptional condition on it
# (select's third set: POLLPRI, what sysfs_notify raises), read it again.
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
before = os.read(fd, 4096).decode().strip()
print("ready", before, flush=True)
_, _, x = select.select([], [], [fd], float(sys.argv[2]))
os.lseek(fd, 0, os.SEEK_SET)
after = os.read(fd, 4096).decode().strip()
print("woke" if x else "timeout", after, flush=True)
EOF

# Besides what lib.sh cleans up: a daemonized mount, and the throwaway
# user with its mount and files.
user=mdfuse$$
bgpid= upid= U=
extra_cleanup() {
	set +e
	[ -n "$bgpid" ] && kill -TERM "$bgpid" 2>/dev/null && wait_exit "$bgpid"
	[ -n "$upid" ] && kill -TERM "$upid" 2>/dev/null && wait_exit "$upid"
	if [ -n "$U" ]; then
		grep -q " $U/mnt " /proc/mounts && { fusermount3 -u "$U/mnt" || umount -l "$U/mnt"; }
		rm -rf "$U"
	fi
	id "$user" >/dev/null 2>&1 && userdel "$user"
}
trap 'rc=$?; extra_cleanup; (exit $rc); cleanup' EXIT

# on_disk IMG: "events/state" of a member's superblock.
on_disk() {
	printf '%s/%s' "$(mdadm --examine "$1" | sed -n 's/ *Events : //p')" \
		"$(mdadm --examine "$1" | sed -n 's/ *State : //p' | head -n 1)"
}

# arrays DIR: two running arrays of fresh images: md1 dirty (safe mode
# off, then written: events 17, active on disk), md2 clean (16).
arrays() {
	local d=$1
	unpack raid1-v1.2-nobitmap "$d/1"
	unpack raid1-v1.2-nobitmap "$d/2"
	new_array md1 "$d/1/vda" "$d/1/vdb"
	new_array md2 "$d/2/vda" "$d/2/vdb"
	put md1/md/array_state active
	put md2/md/array_state active
	put md1/md/safe_mode_delay 0
	dd if=/dev/urandom of="$MNT/md1/data" bs=64k count=1 conv=notrunc,fsync status=none
	sleep 0.5
	expect_eq "$(on_disk "$d/1/vda")" 17/active "md1 before the end"
	expect_eq "$(on_disk "$d/2/vda")" 16/clean "md2 before the end"
}

# stopped_cleanly DIR HOW: after the mount ended, md1 was written clean
# (17 -> 18) and md2 left alone.
stopped_cleanly() {
	local d=$1 how=$2 img
	grep -q " $MNT " /proc/mounts && fail "$how: still mounted"
	for img in "$d"/1/vd?; do expect_eq "$(on_disk "$img")" 18/clean "$how: md1 $(basename "$img")"; done
	for img in "$d"/2/vd?; do expect_eq "$(on_disk "$img")" 16/clean "$how: md2 $(basename "$img")"; done
}

# wait_exit PID: until the process is gone (at most 10 s).
wait_exit() {
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	fail "process $1 did not exit"
}

log "foreground, ended by SIGTERM"
start_daemon
arrays "$T/term"
stop_daemon
stopped_cleanly "$T/term" SIGTERM

for how in umount "fusermount3 -u"; do
	log "foreground, ended by $how"
	start_daemon
	arrays "$T/${how%% *}"
	pid=$DPID
	$how "$MNT" || fail "$how failed"
	wait_exit "$pid"
	wait "$pid" || fail "the daemon exited with $? after $how"
	DPID=
	stopped_cleanly "$T/${how%% *}" "$how"
done

log "daemonized"
"$MDFUSE" mount "$MNT" 2>"$T/bg.log" || { cat "$T/bg.log" >&2; fail "mount failed"; }
# Mounted by the time the command returns.
grep -q " $MNT " /proc/mounts || fail "not mounted when mdfuse mount returned"
[ -e "$MNT/mdstat" ] || fail "no mdstat"
bgpid=$(pgrep -f "mdfuse mount.*$MNT" || true)
[ "$(echo "$bgpid" | wc -w)" = 1 ] || fail "daemon pids: '$bgpid'"
arrays "$T/bg"
kill -TERM "$bgpid"
wait_exit "$bgpid"
bgpid=
stopped_cleanly "$T/bg" "daemonized, SIGTERM"

log "poll wakes on array_state, sync_action and degraded"
start_daemon
unpack raid1-v1.2-bitmap "$T/poll"
new_array md0 "$T/poll/vda" "$T/poll/vdb"
# poll FILE SECONDS: start the helper on md0/md/FILE (PID in pp) and wait
# until it has read the file.
pn=0
poll() {
	pn=$((pn + 1))
	po=$T/poll.$pn
	python3 "$POLL" "$MNT/md0/md/$1" "$2" >"$po" &
	pp=$!
	for _ in $(seq 50); do grep -qs ready "$po" && break; sleep 0.1; done
	grep -q ready "$po" || fail "poll helper did not start"
}
poll array_state 1
wait "$pp"
expect_eq "$(tail -n 1 "$po")" "timeout inactive" "nothing to report"
poll array_state 10
put md0/md/array_state active
wait "$pp"
# md_run writes the superblocks (which notifies) before the array is
# ready, as in the kernel: a poller that runs at once may still read
# inactive; the state after the write is clean.
case $(tail -n 1 "$po") in "woke clean" | "woke inactive") ;; *) fail "array_state after active: $(cat "$po")" ;; esac
expect_eq "$(attr md0/md/array_state)" clean "array_state after active"
poll sync_action 10
put md0/md/sync_action check
wait "$pp"
case $(tail -n 1 "$po") in "woke "*) ;; *) fail "sync_action: $(cat "$po")" ;; esac
wait_idle md0
poll degraded 10
put md0/md/dev-vdb/state faulty
wait "$pp"
expect_eq "$(tail -n 1 "$po")" "woke 1" "degraded after a failure"
put md0/md/array_state clear
stop_daemon

log "an --allow-other mount: other users read the tree, write nothing, reach no data"
start_daemon --allow-other
unpack raid1-v1.2-nobitmap "$T/ao"
new_array md0 "$T/ao/vda" "$T/ao/vdb"
put md0/md/array_state active
want=$(sha256sum <"$MNT/md0/data" | cut -d' ' -f1)
before=$(sysfs_dump "$MNT/md0/md" | grep -v -E '^(sync_speed|dev-vd[ab]/io):')
as_nobody() { runuser -u nobody -- sh -c "$1" 2>&1; }
# The test's directory is private; the mount point must be reachable.
chmod o+x "$T"
expect_eq "$(as_nobody "cat $MNT/md0/md/array_state")" clean "array_state read by another user"
as_nobody "cat $MNT/mdstat" | grep_q "^md0 : active raid1" || fail "mdstat read by another user"
for f in md0/md/array_state md0/md/sync_action md0/md/dev-vdb/state new_array speed_limit_min; do
	out=$(as_nobody "echo idle > $MNT/$f") && fail "another user wrote $f"
	case $out in *"Permission denied"*) ;; *) fail "another user writing $f: $out" ;; esac
done
for op in "head -c 512 $MNT/md0/data" "dd if=/dev/zero of=$MNT/md0/data bs=512 count=1 conv=notrunc" \
	"mkdir $MNT/md0/x" "rm $MNT/md0/md/array_state"; do
	out=$(as_nobody "$op") && fail "another user: $op succeeded"
	case $out in *"Permission denied"* | *"Operation not permitted"*) ;; *) fail "another user: $op: $out" ;; esac
done
expect_eq "$(sha256sum <"$MNT/md0/data" | cut -d' ' -f1)" "$want" "md0/data after another user's attempts"
expect_eq "$(sysfs_dump "$MNT/md0/md" | grep -v -E '^(sync_speed|dev-vd[ab]/io):')" "$before" "the tree after another user's attempts"
put md0/md/array_state clear
stop_daemon

log "a normal user's mount"
U=$(mktemp -d /tmp/mdfuse-user.XXXXXX)
useradd --no-create-home --shell /bin/sh --user-group "$user"
unpack raid1-v1.2-nobitmap "$U"
mkdir "$U/mnt"
chmod 755 "$U"
chmod u+w "$U"/vd?
chown -R "$user:" "$U"
as_user() { runuser -u "$user" -- sh -c "$1"; }
runuser -u "$user" -- "$MDFUSE" mount -f "$U/mnt" 2>"$T/user.log" &
upid=$!
for _ in $(seq 100); do as_user "[ -e $U/mnt/mdstat ]" && break; sleep 0.05; done
as_user "[ -e $U/mnt/mdstat ]" || { cat "$T/user.log" >&2; fail "the user's mount did not come up"; }
grep " $U/mnt " /proc/mounts | grep_q "user_id=$(id -u "$user")" || fail "not the user's mount"
as_user "echo md0 > $U/mnt/new_array && echo $U/vda > $U/mnt/md0/md/new_dev &&
	echo $U/vdb > $U/mnt/md0/md/new_dev && echo active > $U/mnt/md0/md/array_state" ||
	fail "the user could not assemble"
expect_eq "$(as_user "cat $U/mnt/md0/md/array_state")" clean "the user's array"
# Everyone else, root included, is kept out of a mount without allow_other.
out=$(cat "$U/mnt/md0/md/array_state" 2>&1) && fail "root read the user's tree"
case $out in *"Permission denied"*) ;; *) fail "root reading: $out" ;; esac
out=$( (echo clear >"$U/mnt/md0/md/array_state") 2>&1) && fail "root wrote the user's tree"
case $out in *"Permission denied"*) ;; *) fail "root writing: $out" ;; esac
out=$(runuser -u nobody -- sh -c "echo clear > $U/mnt/md0/md/array_state" 2>&1) && fail "nobody wrote the user's tree"
case $out in *"Permission denied"*) ;; *) fail "nobody writing: $out" ;; esac
as_user "dd if=/dev/zero of=$U/mnt/md0/data bs=4k count=1 conv=notrunc,fsync 2>/dev/null" || fail "the user's write"
sleep 1
as_user "fusermount3 -u $U/mnt" || fail "the user's fusermount3 -u"
wait_exit "$upid"
upid=
for img in "$U"/vd?; do
	# 16, written dirty (17), marked clean again by safe mode (16).
	expect_eq "$(on_disk "$img")" 16/clean "the user's $(basename "$img") after unmount"
done
extra_cleanup
U=
id "$user" >/dev/null 2>&1 && fail "user $user still there"
! grep -q -e " $T/" -e " /tmp/mdfuse-user" /proc/mounts || fail "a mount was left behind"
