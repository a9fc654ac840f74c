#!/bin/bash
# Recovery onto a blank image: a leg is failed and removed, a blank image
# of the same size is added through new_dev (md writes a spare's
# superblock, as mdadm --add does) and md rebuilds onto it, showing its
# progress in sync_completed and mdstat's `recovery =` line, until the new
# leg is in_sync in the old slot.  Both legs are then identical, and real
# md assembles the result [UU] with the same contents and no mismatch.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

start_daemon
cd "$T"
"$MDFUSE" create -l1 -n2 --image-size=32M --assume-clean a.img b.img >/dev/null 2>&1 || fail "create"
new_array md0 "$T/a.img" "$T/b.img"
put md0/md/array_state active
sectors=$(attr md0/size)
head -c $((sectors * 512)) /dev/urandom >"$T/content"
dd if="$T/content" of="$MNT/md0/data" bs=1M oflag=direct conv=notrunc status=none
want=$(sha256sum <"$T/content" | cut -d' ' -f1)
expect_eq "$(md_sha md0)" "$want" "md0 after writing"

log "fail and remove b.img"
put md0/md/dev-b.img/state faulty
expect_eq "$(attr md0/md/degraded)" 1 "degraded"
put md0/md/dev-b.img/state remove
[ ! -e "$MNT/md0/md/dev-b.img" ] || fail "dev-b.img still there"

log "add a blank image: recovery"
truncate -s 32M c.img
put md0/md/sync_speed_max 4000
put md0/md/new_dev "$T/c.img"
read -r done total < <(wait_started md0)
expect_eq "$total" "$sectors" "sync_completed total (dev_sectors)"
expect_eq "$(attr md0/md/sync_action)" recover "sync_action"
expect_eq "$(attr md0/md/dev-c.img/state)" spare "c.img while recovering"
expect_eq "$(attr md0/md/dev-c.img/slot)" 1 "c.img slot"
expect_eq "$(readlink "$MNT/md0/md/rd1")" dev-c.img "rd1"
wait_progress md0 $((sectors / 4))
line=$(grep -A2 '^md0 :' "$MNT/mdstat" | sed -n 3p)
log "mdstat: $line"
echo "$line" | grep_q -E '^      \[=*>\.*\]  recovery = *[0-9]+\.[0-9]% \([0-9]+/'"$((sectors / 2))"'\) finish=[0-9]+\.[0-9]min speed=[0-9]+K/sec$' ||
	fail "mdstat progress line: '$line'"
expect_eq "$(mdstat_line md0 | cut -d'|' -f1-2)" \
	"md0 : active raid1 c.img[2] a.img[0] | 31744 blocks super 1.2 [2/1] [U_] " "mdstat while recovering"
v=$(attr md0/md/sync_completed)
[ "${v% / *}" -gt 0 ] && [ "${v% / *}" -lt "$sectors" ] || fail "sync_completed '$v' mid-recovery"
rs=$(attr md0/md/dev-c.img/recovery_start)
[ "$rs" -gt 0 ] && [ "$rs" -lt "$sectors" ] || fail "recovery_start '$rs' mid-recovery"
put md0/md/sync_speed_max system
wait_idle md0
expect_eq "$(attr md0/md/dev-c.img/state)" in_sync "c.img after recovery"
expect_eq "$(attr md0/md/dev-c.img/recovery_start)" none "c.img recovery_start"
expect_eq "$(attr md0/md/degraded)" 0 "degraded after recovery"
expect_eq "$(attr md0/md/last_sync_action)" recovery "last_sync_action"
expect_eq "$(mdstat_line md0 | cut -d'|' -f1-2)" \
	"md0 : active raid1 c.img[2] a.img[0] | 31744 blocks super 1.2 [2/2] [UU] " "mdstat after recovery"
grep -q "md: md0: recovery done." "$MNT/log" || fail "recovery not logged done"
w=$(io_writes md0 c.img)
[ "$w" -ge "$sectors" ] || fail "only $w sectors written to c.img"
expect_eq "$(md_sha md0)" "$want" "md0 after recovery"
check_clean md0
put md0/md/array_state clear
legs_identical a.img c.img || fail "a.img and c.img differ"
expect_eq "$(sb_field c.img device_role)" 1 "c.img role"
expect_eq "$(sb_field c.img dev_number)" 2 "c.img dev_number"

log "real md assembles a.img + c.img"
oracle_inspect "$T/oracle" a.img c.img
s=$T/oracle/summary.txt
expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "oracle: assembled"
sed -n 's/^assembled_mdstat: //p' "$s" | grep_q '\[2/2\] \[UU\]' || fail "oracle: $(grep assembled_mdstat "$s")"
expect_eq "$(sed -n 's/^assembled_resync_start: //p' "$s")" none "oracle: resync_start"
expect_eq "$(sed -n 's/^assembled_dev_state: //p' "$s")" "vda=in_sync vdb=in_sync" "oracle: dev states"
expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "oracle: md0 sha256"
expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "oracle: mismatch_cnt"
