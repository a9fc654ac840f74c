#!/bin/bash
# Read errors under fio's crc32c verification of md0/data: each failed
# read is retried on the other leg and the range rewritten on the failing
# one (fix_read_error), `errors` counts the corrected sectors, a read-only
# array only redirects, the 21st read error of a leg fails it ("exceeded
# read_error threshold"), and a read error on the last working leg goes
# to the reader.  No block may fail verification.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
start_daemon
fresh_array "$IMG"
fio_jobs "$T/job.fio"
D=$MNT/md0/data

log "write and verify, no faults"
fio_start "$T/job.fio" "$T/write.out"
fio_wait "$T/write.out"
want=$(sha256sum <"$D" | cut -d' ' -f1)
off=$(attr md0/md/dev-vda/offset)

log "readonly array: a read error is only redirected"
put md0/md/array_state readonly
log_mark
put md0/md/dev-vda/fault "read-error count=1"
expect_eq "$(sha256sum <"$D" | cut -d' ' -f1)" "$want" "md0 read while readonly"
log_has "md/raid1:md0: vda: rescheduling sector "
log_has "to other mirror: vdb"
log_lacks "read error corrected"
expect_eq "$(attr md0/md/dev-vda/errors)" 0 "vda errors"
expect_eq "$(attr md0/md/dev-vda/bad_blocks)" "" "vda bad_blocks"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state"
put md0/md/dev-vda/fault clear
put md0/md/array_state active

# vdb write-mostly: reads go to vda while it works, to vdb only when
# nothing else can serve them (read_balance).
put md0/md/dev-vdb/state writemostly
log "a read error that a rewrite cures: redirected and corrected"
log_mark
x=8000
# What the range holds, read before the fault (a reader beside the one
# under test would meet the fault too, and reschedule as well).
dd if="$D" bs=4096 skip=$((x / 8 - 1)) count=3 iflag=direct status=none >"$T/want" ||
	fail "read before the fault"
put md0/md/dev-vda/fault "read-error $((x + off))-$((x + off + 7)) count=2"
dd if="$D" bs=4096 skip=$((x / 8 - 1)) count=3 iflag=direct status=none | cmp - "$T/want" ||
	fail "read across the bad page"
expect_eq "$(attr md0/md/dev-vda/fault)" "read-error $((x + off))-$((x + off + 7)) count=0" "fault left"
expect_eq "$(log_count "rescheduling sector")" 1 "reschedulings"
sect=$(log_new | sed -n 's/.*md\/raid1:md0: vda: rescheduling sector \([0-9]*\)$/\1/p')
expect_eq "$sect" "$x" "rescheduled sector"
log_has "md/raid1:md0: read error corrected (8 sectors at $((x + off)) on vda)"
expect_eq "$(log_count "read error corrected")" 1 "corrections"
# Rewritten, vda serves the read again.
log_has "md/raid1:md0: redirecting sector $sect to other mirror: vda"
expect_eq "$(attr md0/md/dev-vda/errors)" 8 "vda errors (corrected sectors)"
expect_eq "$(attr md0/md/dev-vda/state)" in_sync "vda state"
expect_eq "$(attr md0/md/dev-vda/bad_blocks)" "" "vda bad_blocks"
expect_eq "$(attr md0/md/degraded)" 0 degraded
put md0/md/dev-vda/fault clear

log "a read error the first re-read does not see: nothing to correct"
log_mark
put md0/md/dev-vda/fault "read-error count=1"
fio_start "$T/job.fio" "$T/v1.out" --verify_only
fio_wait "$T/v1.out"
expect_eq "$(log_count "rescheduling sector")" 1 "reschedulings"
log_lacks "read error corrected"
expect_eq "$(attr md0/md/dev-vda/errors)" 8 "vda errors"
log_lacks "Disk failure"
fixed=8

log "a leg that keeps failing reads: failed at the 21st error"
log_mark
put md0/md/dev-vda/fault read-error
fio_start "$T/job.fio" "$T/v2.out" --verify_only
fio_wait "$T/v2.out"
log_has "md/raid1:md0: vda: Raid device exceeded read_error threshold [cur 21:max 20]"
log_has "md/raid1:md0: vda: Failing raid device"
log_has "md/raid1:md0: Disk failure on vda, disabling device."
log_has "md/raid1:md0: Operation continuing on 1 devices."
n=$(log_new | sed '/exceeded read_error threshold/q' | grep -c "rescheduling sector")
# Two read errors were fixed before: 19 more make 21 (more may have been
# rescheduled meanwhile by concurrent readers).
[ "$n" -ge 19 ] || fail "$n read errors before the threshold"
log_lacks "read error corrected"
expect_eq "$(attr md0/md/dev-vda/state)" faulty "vda state"
expect_eq "$(attr md0/md/dev-vda/errors)" "$fixed" "vda errors"
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync,write_mostly "vdb state"
expect_eq "$(attr md0/md/dev-vdb/errors)" 0 "vdb errors"
expect_eq "$(attr md0/md/degraded)" 1 degraded
line=$(mdstat_line md0)
[[ $line == "md0 : active raid1 vdb[1](W) vda[0](F) | "*" [2/1] [_U] | "* ]] || fail "mdstat: $line"
expect_eq "$(sha256sum <"$D" | cut -d' ' -f1)" "$want" "md0 read after the failure"

put md0/md/dev-vdb/state -writemostly
log "a read error on the last working leg reaches the reader"
log_mark
put md0/md/dev-vdb/fault "read-error count=1"
out=$(dd if="$D" of=/dev/null bs=4096 count=1 skip=100 iflag=direct 2>&1) && fail "read of a failing last leg succeeded"
[[ $out == *"Input/output error"* ]] || fail "read of a failing last leg: $out"
log_lacks "rescheduling sector"
expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "vdb state"
expect_eq "$(attr md0/md/dev-vdb/errors)" 0 "vdb errors"
expect_eq "$(sha256sum <"$D" | cut -d' ' -f1)" "$want" "md0 read after the transient error"

put md0/md/array_state inactive
oracle_inspect "$T/orc" "$T/img/vda" "$T/img/vdb"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc/summary.txt")" "$want" "oracle md0_sha256"
expect_eq "$(sed -n 's/^synced_degraded: //p' "$T/orc/summary.txt")" 1 "oracle degraded"
term_daemon
final_checks
log "ok"
