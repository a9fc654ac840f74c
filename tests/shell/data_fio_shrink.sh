#!/bin/bash
# A member that shrinks under the running array (an image truncated, a
# loop device's backing file cut and its capacity re-read) while fio
# writes and verifies md0/data with crc32c: its blocks past the new end
# are gone, so it is failed as a pulled disk is (md_error), the array goes
# on from the other leg, and no byte that differs from what fio wrote ever
# reaches a reader: no holes read as zeros, no "corrected" read errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
start_daemon
fio_jobs "$T/job.fio" 24m

# shrink_under_fio NAME SURVIVOR_IMG SHRINK_CMD...: run the jobs, run the
# command a second in while every job is still writing, then check that
# NAME was failed and everything fio wrote reads back, from md0/data and
# from the survivor.
shrink_under_fio() {
	local name=$1 survivor=$2 line
	shift 2
	log_mark
	fio_start "$T/job.fio" "$T/$name.out"
	sleep 1
	fio_running || fail "fio ended before the shrink"
	"$@" || fail "shrinking $name: $*"
	fio_running || fail "fio ended before the shrink took effect"
	fio_wait "$T/$name.out"
	wait_log "md/raid1:md0: Disk failure on $name, disabling device." 10
	log_has "md/raid1:md0: Operation continuing on 1 devices."
	log_lacks "read error corrected"
	expect_eq "$(log_count "Disk failure on")" 1 "failures logged"
	expect_eq "$(attr md0/md/degraded)" 1 degraded
	[[ $(attr "md0/md/dev-$name/state") == faulty* ]] ||
		fail "$name state: $(attr "md0/md/dev-$name/state")"
	local other
	other=$(basename "$survivor")
	expect_eq "$(attr "md0/md/dev-$other/state")" in_sync "$other state"
	line=$(mdstat_line md0)
	[[ $line == *" [2/1] "* ]] || fail "mdstat: $line"
	# Everything fio wrote, read back through md0 (fio verified it too)
	# and straight from the survivor.
	head -c $((192 * 1048576)) "$MNT/md0/data" >"$T/md0.head" || fail "reading md0/data"
	cmp <(leg_data "$survivor" "$(attr "md0/md/dev-$other/offset")" $((192 * 2048))) "$T/md0.head" ||
		fail "$other differs from md0/data"
	sha256sum <"$MNT/md0/data" >/dev/null || fail "reading all of md0/data"
}

log "the second leg's image truncated to 16 MiB mid-run"
fresh_array "$IMG"
shrink_under_fio vdb "$T/img/vda" truncate -s 16M "$T/img/vdb"

log "the first leg's image truncated to 16 MiB mid-run"
fresh_array "$IMG"
shrink_under_fio vda "$T/img/vdb" truncate -s 16M "$T/img/vda"

log "a loop device member whose backing file is cut and capacity re-read"
put md0/md/array_state clear
rm -rf "$T/img"
images_from "$IMG" "$T/img"
L=$(loop_attach "$T/img/vdb")
new_array md0 "$T/img/vda" "$L"
put md0/md/array_state active
shrink_under_fio "$(basename "$L")" "$T/img/vda" sh -c "truncate -s 16M '$T/img/vdb' && losetup -c '$L'"
put md0/md/array_state clear
loop_detach "$L"

stop_daemon
final_checks
log "ok"
