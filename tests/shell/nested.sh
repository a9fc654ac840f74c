#!/bin/bash
# An array's own data file as a member of another array (md on md, as
# nested RAID 1+0 is built) would send md's I/O through the mount back
# into the daemon, and a stop would wait on itself.  Until mdfuse routes
# such I/O inside, it refuses them with EBUSY and a log line: the data file
# by its path, through a symlink from outside the mount, and a loop device
# over it.  Nothing is left open on the mount: SIGTERM still stops the
# daemon by itself, promptly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$T/img
mkdir -p "$IMG"
"$MDFUSE" create -l1 -n2 --image-size=20000K "$IMG/a" "$IMG/b" >/dev/null 2>&1 || fail "mdfuse create"
start_daemon
new_array md1 "$IMG/a" "$IMG/b"
put md1/md/array_state active
put new_array md0
put md0/md/metadata_version 1.2

log "md1/data as a member of md0: EBUSY"
log_mark
expect_err "Device or resource busy" md0/md/new_dev "$MNT/md1/data"
log_has "md: md0: $MNT/md1/data is served by this mdfuse itself"
expect_err "Device or resource busy" md0/md/new_dev "$MNT/md1/../md1/./data"

log "through a symlink from outside the mount"
ln -s "$MNT/md1" "$T/link"
expect_err "Device or resource busy" md0/md/new_dev "$T/link/data"

log "a loop device over md1/data"
L=$(loop_attach "$MNT/md1/data")
log_mark
expect_err "Device or resource busy" md0/md/new_dev "$L"
log_has "md: md0: $L is served by this mdfuse itself"
loop_detach "$L"

log "md0 is still empty, md1 serves, SIGTERM stops the daemon by itself"
[ ! -e "$MNT/md0/md/dev-data" ] || fail "md0 took md1/data"
head -c 4096 "$MNT/md1/data" >/dev/null || fail "reading md1"
kill -TERM "$DPID"
for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DPID" 2>/dev/null && fail "the daemon did not stop within 10 s of SIGTERM"
wait "$DPID" 2>/dev/null || true
DPID=
final_checks
log "ok"
