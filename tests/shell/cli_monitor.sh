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
trap 'rc=$?; set +e; [ -z "$MP" ] || kill "$MP" 2>/dev/null; (exit $rc); cleanup' EXIT
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

log "status and watch"
mdf assemble --run md0 "$DEV/vdc" 2>/dev/null || fail "assemble vdc alone"
expect_eq "$(mdf status)" "$(cat "$MNT/mdstat")" "status is mdstat"
mdf status --json | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert len(a) == 1 and a[0]["array"] == "md0" and "_" in a[0]["pattern"], a
assert [m["name"] for m in a[0]["members"]] == ["vdc"], a
' || fail "status --json"
truncate -s 16M "$T/blank2"
put md0/md/sync_speed_max 4000
mdf manage md0 --add "$T/blank2" 2>/dev/null
# The recovery starts when md's thread next looks at the array, as in
# Linux (until then sync_action reads idle): watch what runs.
wait_for md0/md/sync_action recover 10
mdf watch md0 >"$T/watch.txt" || fail "watch exited $?"
grep -Eq '^md0 recover +[0-9.]+% \([0-9]+/30720\) ' "$T/watch.txt" || { cat "$T/watch.txt"; fail "watch showed no progress"; }
grep -Eq '^md0 recover +finished' "$T/watch.txt" || { cat "$T/watch.txt"; fail "watch did not see the end"; }
expect_eq "$(attr md0/md/degraded)" 0 "degraded after watch returned"
expect_eq "$(mdf watch md0)" "no sync running" "watch with nothing running"
mdf stop md0 2>/dev/null
