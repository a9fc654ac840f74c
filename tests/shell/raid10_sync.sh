#!/bin/bash
# raid10 checkpoints and spares, with real md on the other side: a resync
# mdfuse interrupts is resumed by real md from the recorded resync_offset,
# and one real md interrupted is resumed by mdfuse from it; a member that
# returns after writes to the degraded array catches up by the bitmap
# alone; a replacement (want_replacement, then a spare) takes its
# member's place; two spares recover in one pass.  Every time real md, or a check, finds the copies
# equal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/sync_lib.sh"

SBPATCH="python3 $(dirname "$0")/sbpatch.py"

# sb_resync IMG: the superblock's resync_offset ("none" for MaxSector).
sb_resync() {
	"$MDFUSE" examine --json "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]["resync_offset"]
print("none" if v is None else v)'
}

start_daemon

# (Without a bitmap: with one, a resync covers only the chunks its bits
# mark, and the fixtures' bitmaps are clean.)
for fx in raid10-f2 raid10-o2; do
	log "$fx: a resync mdfuse interrupts, real md resumes"
	rm -rf "${T:?}/a"
	unpack "$fx" "$T/a"
	for d in "$T/a"/vd?; do $SBPATCH "$d" 8 resync_offset=0; done
	new_array md0 "$T/a"/vd?
	put speed_limit_max 2000
	put md0/md/array_state active
	read -r _ total < <(wait_started md0)
	wait_progress md0 $((total / 3))
	put md0/md/array_state inactive
	put speed_limit_max 200000
	cp=$(sb_resync "$T/a/vda")
	[[ $cp =~ ^[0-9]+$ ]] && [ "$cp" -gt 0 ] && [ "$cp" -lt "$total" ] ||
		fail "$fx: resync_offset after the stop: $cp (of $total)"
	put md0/md/array_state clear
	oracle_inspect "$T/orc-a-$fx" "$T/a"/vd?
	s=$T/orc-a-$fx/summary.txt
	expect_eq "$(sed -n 's/^assembled_resync_start: //p' "$s")" "$cp" "$fx: real md's resync_start"
	expect_eq "$(sed -n 's/^synced_last_sync_action: //p' "$s")" resync "$fx: real md resynced"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$(summary "$fx" md0_sha256)" "$fx: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$fx: real md's mismatch_cnt"
done

log "a resync real md interrupted, mdfuse resumes"
DIR=$CACHE/raid10-f2-interrupted
mkdir -p "$CACHE"
(
	flock 9
	if [ ! -f "$DIR/d2.img" ]; then
		rm -rf "$DIR"
		"$REALMD" create --size 32M --disks 3 --interrupt-resync 30 "$DIR" \
			--metadata=1.2 --level=10 --layout=f2 --raid-devices=3 --chunk=64 \
			--bitmap=none >"$CACHE/raid10-f2-interrupted.log" 2>&1 ||
			{ cat "$CACHE/raid10-f2-interrupted.log" >&2; exit 1; }
	fi
) 9>"$CACHE/.lock" || fail "realmd create raid10-f2-interrupted"
rm -rf "${T:?}/b"
mkdir -p "$T/b"
i=0
for d in vda vdb vdc; do
	cp --sparse=always "$DIR/d$i.img" "$T/b/$d"
	i=$((i + 1))
done
cp=$(sb_resync "$T/b/vda")
[[ $cp =~ ^[0-9]+$ ]] && [ "$cp" -gt 0 ] || fail "real md left resync_offset $cp"
oracle_inspect "$T/orc-b" "$T/b"/vd?
theirs=$(sed -n 's/^md0_sha256: //p' "$T/orc-b/summary.txt")
new_array md0 "$T/b"/vd?
put speed_limit_max 5000
log_mark
put md0/md/array_state active
expect_eq "$(attr md0/md/resync_start)" "$cp" "resync_start from real md's checkpoint"
read -r start _ < <(wait_resumed md0)
[ "$start" -ge "$cp" ] || fail "the resync restarted at $start, below the checkpoint $cp"
put speed_limit_max 200000
wait_log "md: md0: resync done." 120
wait_idle md0
log_has "md: resync of RAID array md0"
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after the resync"
expect_eq "$(sha "$MNT/md0/data")" "$theirs" "sha256 as real md's after its own resync"
put md0/md/array_state clear

log "a member comes back: by the bitmap, nothing to copy when nothing was written"
rm -rf "${T:?}/c"
unpack raid10-n2-bitmap "$T/c"
new_array md0 "$T/c"/vd?
put md0/md/array_state active
# gone_and_back: vdc failed, removed and bound again, recovered.
gone_and_back() {
	put md0/md/dev-vdc/state faulty
	wait_for md0/md/dev-vdc/slot none
	put md0/md/dev-vdc/state remove
	"$@"
	log_mark
	put md0/md/new_dev "$T/c/vdc"
	wait_log "md: md0: recovery done."
	wait_idle md0
	log_has "md: recovery of RAID array md0"
	expect_eq "$(attr md0/md/dev-vdc/state)" in_sync "vdc after its return"
	expect_eq "$(attr md0/md/dev-vdc/slot)" 2 "vdc's slot"
}
gone_and_back true
# Only its superblock and bitmap were written: no data copied.
w=$(io_writes md0 vdc)
[ "$w" -lt 1024 ] || fail "vdc took $w sectors with nothing to recover"
log "and after writes to the degraded array, the dirty chunk"
# 64 KiB into the array's chunk 1 (on vdc and vdd) and chunk 4 (vda, vdb).
head -c 65536 /dev/urandom >"$T/w1"
write_degraded() {
	dd if="$T/w1" of="$MNT/md0/data" bs=64k seek=1 conv=notrunc oflag=direct status=none
	dd if="$T/w1" of="$MNT/md0/data" bs=64k seek=4 conv=notrunc oflag=direct status=none
}
gone_and_back write_degraded
# The bitmap's one 64 MiB chunk covers the whole small array.
w=$(io_writes md0 vdc)
[ "$w" -ge 30720 ] || fail "vdc took only $w sectors"
log "re-add while bound, after writes, one with all its copies on the others"
# Chunk 4's write completes on vda and vdb while vdc is away: vdc holds no
# copy of it, so it still comes back by the bitmap, as in Linux.
put md0/md/dev-vdc/state faulty
wait_for md0/md/dev-vdc/slot none
write_degraded
log_mark
put md0/md/dev-vdc/state re-add || fail "re-add of vdc refused"
wait_log "md: md0: recovery done."
wait_idle md0
expect_eq "$(attr md0/md/dev-vdc/state)" in_sync "vdc after its re-add"
expect_eq "$(attr md0/md/dev-vdc/slot)" 2 "vdc's slot after its re-add"
ours=$(sha "$MNT/md0/data")
cmp <(dd if="$MNT/md0/data" bs=64k skip=1 count=1 status=none) "$T/w1" || fail "chunk 1"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after the return"
oracle_same() {
	local name=$1 want=$2
	shift 2
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$name" "$@"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc-$name/summary.txt")" "$want" "$name: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$T/orc-$name/summary.txt")" 0 "$name: real md's mismatch_cnt"
	expect_eq "$(sed -n 's/^assembled_degraded: //p' "$T/orc-$name/summary.txt")" 0 "$name: real md's degraded"
}
oracle_same returned "$ours" "$T/c"/vd?

log "a replacement takes vdb's place"
rm -rf "${T:?}/d"
unpack raid10-f2 "$T/d"
new_array md0 "$T/d"/vd?
put md0/md/array_state active
put md0/md/dev-vdb/state want_replacement
truncate -s 16M "$T/d/vdd"
log_mark
put md0/md/new_dev "$T/d/vdd"
wait_log "md: md0: recovery done."
wait_idle md0
wait_for md0/md/dev-vdb/slot none
expect_eq "$(attr md0/md/dev-vdd/slot)" 1 "the replacement's slot"
expect_eq "$(attr md0/md/dev-vdd/state)" in_sync "the replacement's state"
expect_eq "$(attr md0/md/dev-vdb/state)" faulty "vdb's state"
expect_eq "$(attr md0/md/degraded)" 0 degraded
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after the replacement"
expect_eq "$(sha "$MNT/md0/data")" "$(summary raid10-f2 md0_sha256)" "sha256 after the replacement"
oracle_same replaced "$(summary raid10-f2 md0_sha256)" "$T/d/vda" "$T/d/vdd" "$T/d/vdc"

log "two spares recovered in one pass"
rm -rf "${T:?}/e"
unpack raid10-n2-bitmap "$T/e"
new_array md0 "$T/e"/vd?
put md0/md/array_state active
for d in vdb vdc; do
	put md0/md/dev-$d/state faulty
	wait_for md0/md/dev-$d/slot none
	put md0/md/dev-$d/state remove
	rm -f "$T/e/$d"
	truncate -s 16M "$T/e/$d"
done
expect_eq "$(attr md0/md/degraded)" 2 "degraded before"
# Both spares are in their slots before the recovery starts.
put md0/md/sync_action frozen
log_mark
put md0/md/new_dev "$T/e/vdb"
put md0/md/new_dev "$T/e/vdc"
put md0/md/sync_action idle
wait_log "md: md0: recovery done."
wait_idle md0
expect_eq "$(log_count "md: recovery of RAID array md0")" 1 "recovery passes"
expect_eq "$(attr md0/md/degraded)" 0 "degraded after"
mdstat_line md0 | grep_q -F "[4/4] [UUUU]" || fail "mdstat: $(mdstat_line md0)"
oracle_same two-spares "$(summary raid10-n2-bitmap md0_sha256)" "$T/e"/vd?

stop_daemon
final_checks
log "raid10: checkpoints both ways with real md, a member back by the bitmap, a replacement, two spares at once"
