#!/bin/bash
# mdfuse monitor against mdadm --monitor on real md: while a leg fails,
# is removed and a blank image recovers in its place, the events passed
# to --program are mdadm's, in mdadm's order (Fail, RebuildStarted,
# RebuildNN, RebuildFinished, SpareActive; the RebuildNN percentages
# depend on timing and are compared as one); then --oneshot with --test,
# with --scan (NewArray), on a degraded array (DegradedArray) and on a
# stopped one (DeviceDisappeared).  expected/cli_monitor.txt is the same
# sequence with mdadm (oracle/cli_monitor.sh).
. "$(dirname "$0")/lib.sh"

start_daemon
DEV=$T/dev
mkdir -p "$DEV"
unpack raid1-v1.2-bitmap "$DEV"
truncate -s 16M "$DEV/vdc"
cat >"$T/prog" <<P
#!/bin/sh
echo "\$*" >>"$T/events"
P
chmod +x "$T/prog"
mdf() { "$MDFUSE" "$@" --tree "$MNT"; }
show() { sed "s#$DEV/#/dev/#g; s#^mdfuse: #mdadm: #"; }
MP=
# The monitor this script starts goes with it, whatever happens.
trap 'rc=$?; [ -z "$MP" ] || kill "$MP" 2>/dev/null; (exit $rc); cleanup' EXIT
{
	mdf assemble md0 "$DEV/vda" "$DEV/vdb" 2>&1
	put md0/md/sync_speed_max 2000
} >"$T/raw.txt"
"$MDFUSE" monitor --tree "$MNT" --delay 1 --program "$T/prog" md0 &
MP=$!
{
	sleep 2
	mdf manage md0 --fail "$DEV/vdb" --remove "$DEV/vdb" 2>&1
	sleep 2
	mdf manage md0 --add "$DEV/vdc" 2>&1
	for _ in $(seq 60); do grep -q SpareActive "$T/events" 2>/dev/null && break; sleep 1; done
	sleep 2
	kill "$MP"
	wait "$MP" || true
	MP=
	echo "--- events"
	sed 's/^Rebuild[0-9][0-9] /RebuildNN /' "$T/events" | uniq
	mdf monitor --oneshot --test md0 2>&1 | sed 's/^.*: TestMessage/TestMessage/'
	mdf monitor --oneshot --scan --program "$T/prog" 2>&1
	: >"$T/events"
	mdf monitor --oneshot --scan --program "$T/prog" 2>&1
	cat "$T/events"
	mdf manage md0 --fail "$DEV/vda" 2>&1
	: >"$T/events"
	mdf monitor --oneshot --program "$T/prog" md0 2>&1
	cat "$T/events"
	mdf stop md0 2>&1
	: >"$T/events"
	mdf monitor --oneshot --program "$T/prog" md0 2>&1
	cat "$T/events"
} >>"$T/raw.txt"
show <"$T/raw.txt" >"$T/ours.txt"
diff -u "$(dirname "$0")/expected/cli_monitor.txt" "$T/ours.txt" || fail "monitor's events differ from mdadm's"
log "monitor reports mdadm's events"
