#!/bin/bash
# mdfuse monitor's other ways to tell: --mail (mdadm's mail, through
# sendmail), --syslog (mdadm's lines at mdadm's priorities, facility
# daemon) and --daemonise with --pid-file (the command returns at once,
# the monitor runs on in the background until killed).
. "$(dirname "$0")/lib.sh"

start_daemon
DEV=$T/dev
mkdir -p "$DEV"
unpack raid1-v1.2-bitmap "$DEV"
mdf() { "$MDFUSE" "$@" --tree "$MNT"; }
MP= SP=
# What this script starts goes with it, whatever happens.
trap 'rc=$?; set +e; for p in $MP $SP; do kill "$p" 2>/dev/null; done; (exit $rc); cleanup' EXIT
mdf assemble md0 "$DEV/vda" "$DEV/vdb" >/dev/null 2>&1 || fail "assemble"
host=$(cat /proc/sys/kernel/hostname)

# A syslog socket of our own: every datagram, one per line.
python3 - "$T/syslog.sock" "$T/syslog" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(4096) + b"\n")
PY
SP=$!
for _ in $(seq 50); do [ -S "$T/syslog.sock" ] && break; sleep 0.1; done
export MDFUSE_SYSLOG=$T/syslog.sock MDFUSE_SENDMAIL="cat >>$T/mail"

log "--test with --mail and --syslog"
mdf monitor --oneshot --test --mail ops@example.org --syslog md0 >"$T/out" 2>&1 || fail "monitor: $(cat "$T/out")"
[ ! -s "$T/out" ] || fail "printed though mail and syslog were asked: $(cat "$T/out")"
grep -qx "To: ops@example.org" "$T/mail" || fail "mail: no To line: $(cat "$T/mail")"
grep -qx "Subject: TestMessage event on /dev/md0:$host" "$T/mail" || fail "mail: subject: $(cat "$T/mail")"
grep -qx "A TestMessage event had been detected on md device /dev/md0." "$T/mail" || fail "mail: body"
grep -qx "P.S. The /proc/mdstat file currently contains the following:" "$T/mail" || fail "mail: no mdstat"
grep -q "^md0 : active" "$T/mail" || fail "mail: mdstat lacks md0"
for _ in $(seq 50); do [ -s "$T/syslog" ] && break; sleep 0.1; done
grep -Eqx '<28>mdfuse\[[0-9]+\]: TestMessage event detected on md device /dev/md0' "$T/syslog" ||
	fail "syslog: $(cat "$T/syslog")"

log "a degraded array: DegradedArray mailed and logged as critical"
mdf manage md0 --fail "$DEV/vdb" >/dev/null 2>&1
: >"$T/mail"
: >"$T/syslog"
mdf monitor --oneshot --mail ops@example.org --syslog md0 >"$T/out" 2>&1 || fail "monitor: $(cat "$T/out")"
grep -qx "Subject: DegradedArray event on /dev/md0:$host" "$T/mail" || fail "mail: $(cat "$T/mail")"
for _ in $(seq 50); do [ -s "$T/syslog" ] && break; sleep 0.1; done
grep -Eq '^<26>mdfuse\[[0-9]+\]: DegradedArray event detected on md device /dev/md0' "$T/syslog" ||
	fail "syslog: $(cat "$T/syslog")"

log "--daemonise --pid-file: the command returns, the monitor runs on"
cat >"$T/prog" <<P
#!/bin/sh
echo "\$*" >>"$T/events"
P
chmod +x "$T/prog"
unset MDFUSE_SYSLOG MDFUSE_SENDMAIL
timeout 10 "$MDFUSE" monitor --tree "$MNT" --daemonise --pid-file "$T/pid" --delay 1 \
	--program "$T/prog" md0 >"$T/out" 2>&1 || fail "monitor --daemonise: $(cat "$T/out")"
MP=$(cat "$T/pid")
[ -n "$MP" ] && kill -0 "$MP" || fail "no monitor running (pid file: '$MP')"
[ "$(ps -o sid= -p "$MP" | tr -d ' ')" = "$MP" ] || fail "the monitor leads no session of its own"
mdf manage md0 --remove "$DEV/vdb" >/dev/null 2>&1
truncate -s 16M "$DEV/vdc"
mdf manage md0 --add "$DEV/vdc" >/dev/null 2>&1
for _ in $(seq 100); do grep -q SpareActive "$T/events" 2>/dev/null && break; sleep 0.2; done
grep -q "^SpareActive /dev/md0" "$T/events" || fail "the background monitor reported: $(cat "$T/events" 2>/dev/null)"
kill "$MP"
MP=
log "ok"
