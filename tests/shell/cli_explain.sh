#!/bin/bash
# mdfuse explain: for the images of each telling fixture, the statements
# name what will happen and the on-disk fact behind it (the stale member
# left out for its events, the crashed array's resync over the bitmap,
# the interrupted resync's restart sector, the empty slot, the member
# being rebuilt (no --run needed), the spare, too
# few members of a RAID0); for a running array, what the tree shows (a
# pending resync, a failed member, a degraded array, a rebuild); JSON
# carries the same statements.  explain writes nothing.
. "$(dirname "$0")/lib.sh"

start_daemon
mdf() { "$MDFUSE" "$@" --tree "$MNT"; }
for fx in raid1-stale-member raid1-crash-bitmap raid1-interrupted-resync raid1-degraded-missing raid1-spare raid0-v1.2 raid1-v1.2-bitmap raid5-interrupted-resync; do
	unpack "$fx" "$T/$fx"
done
(cd "$T" && sha256sum */vd?) >"$T/before.sha"

# has FILE TEXT: a statement (or fact) in explain's output.
has() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "explain: no '$2'"; }; }

mdf explain "$T/raid1-stale-member" >"$T/o"
has "$T/o" "$T/raid1-stale-member/vda leads: it has the highest event count of the active members (21)"
has "$T/o" "$T/raid1-stale-member/vdb (slot 1) will be left out as non-fresh; \`mdfuse manage ARRAY --re-add $T/raid1-stale-member/vdb\` after assembly catches it up from the bitmap"
has "$T/o" "(events 16 < 21 of $T/raid1-stale-member/vda; bitmap events cleared 0)"
has "$T/o" "the leader's superblock no longer counts $T/raid1-stale-member/vdb (slot 1) as working"
has "$T/o" "it will run degraded (1 of 2 in sync: slot 1 empty)"

mdf explain "$T/raid1-crash-bitmap" >"$T/o"
has "$T/o" "it was not stopped cleanly: a resync will run, over the bitmap's dirty chunks only: 1 chunk(s) of 65536 KiB, 15360 KiB to resync"
has "$T/o" "(resync_offset 0 in the leader's superblock)"
has "$T/o" "all 2 slots have a fresh member: it will start whole"

mdf explain "$T/raid1-interrupted-resync" >"$T/o"
has "$T/o" "a resync was interrupted: it resumes from sector 10496"
has "$T/o" "(resync_offset 10496 in the leader's superblock)"

mdf explain "$T/raid1-degraded-missing" >"$T/o"
has "$T/o" "it will run degraded (1 of 2 in sync: slot 1 empty); \`mdfuse manage ARRAY --add DEVICE\` rebuilds onto a new device"

# A member being rebuilt counts toward starting (Assemble.c's
# rebuilding_cnt): mdadm starts it without --run, "with 2 drives (out of
# 3) and 1 rebuilding".
mdf explain "$T/raid5-interrupted-resync" >"$T/o"
has "$T/o" "it will run degraded (2 of 3 in sync: slot 2 rebuilding)"
grep -qF -- "--run" "$T/o" && { cat "$T/o" >&2; fail "explain asks for --run where mdadm needs none"; }

mdf explain "$T/raid1-spare" >"$T/o"
has "$T/o" "$T/raid1-spare/vdc is a spare: it joins as one"
has "$T/o" "(its role is spare (0xffff))"

mdf explain "$T/raid0-v1.2/vda" "$T/raid1-spare/vdb" >"$T/o"
has "$T/o" "it will not start: 1 fresh member(s) of 3, too few for raid0"
has "$T/o" "it needs \`--run\` to start, since its superblock says more were working"
has "$T/o" "devices of other arrays given with it are not its members"

truncate -s 1M "$T/stranger"
mdf explain "$T/stranger" >"$T/o"
has "$T/o" "$T/stranger holds no md superblock: assemble passes it over"

mdf explain --json "$T/raid1-stale-member" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert len(a) == 1, a
assert any("non-fresh" in s["statement"] and "events 16 < 21" in s["fact"] for s in a[0]["statements"]), a
' || fail "explain --json"
(cd "$T" && sha256sum */vd?) | diff - "$T/before.sha" || fail "explain changed the images"

log "a running array"
new_array md0 "$T/raid1-crash-bitmap"/vd?
put md0/md/array_state read-auto
mdf explain md0 >"$T/o"
has "$T/o" "a resync from sector 0 is pending: it starts with the first write, or \`mdfuse manage md0 --readwrite\`"
put md0/md/array_state clear
mdf assemble md0 "$T/raid1-v1.2-bitmap"/vd? 2>/dev/null
mdf explain md0 >"$T/o"
has "$T/o" "it is whole and idle: nothing to do"
put md0/md/dev-vdb/state faulty
mdf explain md0 >"$T/o"
has "$T/o" "$T/raid1-v1.2-bitmap/vdb has failed; \`mdfuse manage md0 --remove $T/raid1-v1.2-bitmap/vdb\` drops it"
has "$T/o" "it is degraded: slot 1 without an in-sync member"
has "$T/o" "(degraded 1)"
mdf manage md0 --remove "$T/raid1-v1.2-bitmap/vdb" 2>/dev/null
truncate -s 16M "$T/blank"
put md0/md/sync_speed_max 1000
mdf manage md0 --add "$T/blank" 2>/dev/null
wait_for md0/md/sync_action recover
mdf explain md0 >"$T/o"
has "$T/o" "$T/blank is being rebuilt into slot 1"
has "$T/o" "a recover is running:"
put md0/md/sync_speed_max system
wait_idle md0
rc=0; mdf explain md7 2>"$T/o" || rc=$?
expect_eq "$rc/$(cat "$T/o")" "1/mdfuse: cannot open md7: No such file or directory" "explain of a missing array"
log "explain says why, and from what"
