#!/bin/bash
# A member whose image lives on a file system that fills up under fio
# (images are sparse: writing the array allocates them): its writes fail
# with ENOSPC, which md handles as any write error.  raid1 rewrites the
# failed range block by block and records what still fails as bad blocks
# (narrow_write_error); the write completes once the superblock records
# them.  Where that superblock write cannot be done -- the bad-block log's
# page is a hole in the image, as mdadm leaves it, and the file system has
# no room for it -- super_written fails the member; where it can, the
# member keeps serving with bad blocks until its log (512 entries) is
# full, and is failed then (rdev_set_badblocks fails).  Either way fio
# verifies every block, the array keeps running on the other leg, which
# holds all of it, and SIGTERM then stops the daemon by itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
fio_jobs "$T/job.fio" 24m
MIB=1048576

# small_fs KIND DIR FREE_MIB IMG: a KIND (tmpfs or ext4) file system on
# DIR holding a sparse copy of IMG, with FREE_MIB MiB left free.
small_fs() {
	local kind=$1 dir=$2 free=$3 img=$4 avail
	mkdir -p "$dir"
	case $kind in
	tmpfs) mount -t tmpfs -o size=64m tmpfs "$dir" ;;
	ext4)
		truncate -s 96M "$T/ext4.img"
		mkfs.ext4 -q -m 0 -E nodiscard "$T/ext4.img"
		mount -o loop "$T/ext4.img" "$dir"
		;;
	esac
	MOUNTS+=("$dir")
	cp --sparse=always "$img" "$dir/$(basename "$img")"
	avail=$(df -B1 --output=avail "$dir" | tail -n 1)
	[ "$avail" -gt $((free * MIB)) ] || fail "$dir: only $avail bytes free"
	fallocate -l $((avail - free * MIB)) "$dir/filler"
	sync -f "$dir"
	avail=$(df -B1 --output=avail "$dir" | tail -n 1)
	log "$kind on $dir: $((avail / 1024)) KiB free for $(basename "$img")"
}

# drop_fs DIR: unmount a file system small_fs made.
drop_fs() {
	umount "$1" || fail "umount $1"
	local keep=() m
	for m in "${MOUNTS[@]}"; do [ "$m" == "$1" ] || keep+=("$m"); done
	MOUNTS=("${keep[@]}")
}

# failed_full LEG SURVIVOR_IMG: LEG was failed, the survivor carries on
# and holds everything fio wrote.
failed_full() {
	local leg=$1 surv=$2 other line
	other=$(basename "$2")
	wait_log "md/raid1:md0: Disk failure on $leg, disabling device." 10
	log_has "md/raid1:md0: Operation continuing on 1 devices."
	expect_eq "$(log_count "Disk failure on")" 1 "failures logged"
	expect_eq "$(attr md0/md/degraded)" 1 degraded
	expect_eq "$(attr "md0/md/dev-$leg/state")" faulty,write_error "$leg state"
	expect_eq "$(attr "md0/md/dev-$leg/slot")" none "$leg slot"
	expect_eq "$(attr "md0/md/dev-$other/state")" in_sync "$other state"
	expect_eq "$(attr "md0/md/dev-$other/errors")" 0 "$other errors"
	expect_eq "$(attr "md0/md/dev-$other/bad_blocks")" "" "$other bad_blocks"
	case $(attr md0/md/array_state) in active | clean) ;; *) fail "array_state $(attr md0/md/array_state)" ;; esac
	line=$(mdstat_line md0)
	[[ $line == *" [2/1] "* ]] || fail "mdstat: $line"
	head -c $((192 * MIB)) "$MNT/md0/data" >"$T/md0.head" || fail "reading md0/data"
	cmp <(leg_data "$surv" "$(attr "md0/md/dev-$other/offset")" $((192 * 2048))) "$T/md0.head" ||
		fail "$other differs from md0/data"
	MD0_SHA=$(sha256sum <"$MNT/md0/data" | cut -d' ' -f1) || fail "reading all of md0/data"
}

# full DIR: the file system on DIR has (next to) no room left.
full() {
	local avail
	avail=$(df -B1 --output=avail "$1" | tail -n 1)
	[ "$avail" -lt $((256 * 1024)) ] || fail "$1 did not fill up: $avail bytes free"
}

# sb_json IMG KEY: a top-level field (or a.b) of `mdfuse examine --json`
sb_json() {
	"$MDFUSE" examine --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$2"
}

log "vdb on a full tmpfs; its bad-block log is a hole: the superblock write fails"
small_fs tmpfs "$T/small1" 24 "$IMG/d1.img"
cp --sparse=always "$IMG/d0.img" "$T/vda"
ln -s "$T/small1/d1.img" "$T/vdb"
start_daemon
new_array md0 "$T/vda" "$T/vdb"
put md0/md/array_state active
log_mark
fio_start "$T/job.fio" "$T/a.out"
fio_wait "$T/a.out"
failed_full vdb "$T/vda"
full "$T/small1"
log_has "md: super_written gets error=-28"
term_daemon
expect_eq "$(sb_json "$T/vda" state)" clean "vda's superblock after SIGTERM"
drop_fs "$T/small1"

log "vda on a full ext4; its bad-block log allocated: bad blocks until the log is full"
small_fs ext4 "$T/small2" 24 "$IMG/d0.img"
rm -f "$T/vda" "$T/vdb"
ln -s "$T/small2/d0.img" "$T/vda"
cp --sparse=always "$IMG/d1.img" "$T/vdb"
# The bad-block log's page, written (with the zeros it reads as) so that
# recording bad blocks needs no new space.
bblog=$(($(sb_json "$T/vda" super_offset) + $(sb_json "$T/vda" bad_block_log.offset)))
dd if="$T/vda" of="$T/vda" bs=512 skip="$bblog" seek="$bblog" count=8 conv=notrunc status=none
start_daemon
new_array md0 "$T/vda" "$T/vdb"
put md0/md/array_state active
log_mark
fio_start "$T/job.fio" "$T/b.out"
fio_wait "$T/b.out"
failed_full vda "$T/vdb"
full "$T/small2"
log_lacks "super_written"
expect_eq "$(sb_json "$T/vda" bad_block_log.bad_blocks_present)" True "vda's superblock: bad blocks recorded"
term_daemon
expect_eq "$(sb_json "$T/vdb" state)" clean "vdb's superblock after SIGTERM"
log "real md assembles what is left: vda is stale, vdb holds the array"
oracle_inspect "$T/orc" "$T/vda" "$T/vdb"
expect_eq "$(sed -n 's/^assembled: //p' "$T/orc/summary.txt")" yes "oracle: assembled"
line=$(sed -n 's/^assembled_mdstat: //p' "$T/orc/summary.txt")
[[ $line == *" vdb[1] "*"[2/1] [_U]"* && $line != *"vda["* ]] || fail "oracle mdstat: $line"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc/summary.txt")" "$MD0_SHA" "oracle md0_sha256"
drop_fs "$T/small2"

final_checks
log "ok"
