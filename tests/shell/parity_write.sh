#!/bin/bash
# raid4/5/6 writes: seeded writes of every size and alignment, and
# concurrent writers sharing stripes, into real md's fixtures (whole and
# degraded): md0/data then reads what was written, a check finds no
# mismatch, the data reads the same with any member left out, and real
# md assembles the images with the same data and a clean check.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon --threads 8

# write_and_check FIXTURE SEED ORACLE: write into the fixture's array (or
# the images already in $T/FIXTURE) and judge it; ORACLE=1 lets real md
# judge the images too.  RMW (default 1) is the rmw_level the writes
# run with.
write_and_check() {
	local fx=$1 seed=$2 oracle=$3 rmw=${4:-1} imgs=$T/$1 want m
	[ -d "$imgs" ] || unpack "$fx" "$imgs"
	new_array md0 "$imgs"/vd?
	put md0/md/array_state active
	wait_idle md0
	put md0/md/rmw_level "$rmw"
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" "$seed") || fail "$fx: writes failed"
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$fx: md0/data after the writes"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after the writes"
	put md0/md/array_state inactive
	put md0/md/array_state clear
	for m in "$imgs"/vd?; do
		new_array md0 $(ls "$imgs"/vd? | grep -vx "$m")
		if printf 'readonly\n' >"$MNT/md0/md/array_state" 2>/dev/null; then
			expect_eq "$(sha "$MNT/md0/data")" "$want" "$fx: md0/data without $(basename "$m")"
		fi
		put md0/md/array_state clear
	done
	if [ "$oracle" == 1 ]; then
		oracle_inspect "$T/orc-$fx" "$imgs"/vd?
		local s=$T/orc-$fx/summary.txt
		expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "$fx: real md assembles it"
		expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "$fx: real md's sha256"
		expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "$fx: real md's mismatch_cnt"
	fi
	rm -rf "${imgs:?}"
}

log "raid5, 3 members, left-symmetric"
write_and_check raid5-ls-bitmap 1 1
log "raid6, 4 members"
write_and_check raid6-bitmap 2 1
log "raid5 degraded (one slot empty)"
write_and_check raid5-degraded 3 1
log "raid4"
write_and_check raid4 4 0
log "raid5, 4 members, right-asymmetric, 128 KiB chunk"
write_and_check raid5-ra 5 0
log "raid6 with two slots empty"
write_and_check raid6-degraded2 6 0
# rmw_level 2 takes read-modify-write wherever it reads no more than
# reconstruct-write: for every write short of a row on these.
log "raid5, 4 members, read-modify-write preferred"
write_and_check raid5-ra 7 1 2
log "raid6, 4 members, read-modify-write preferred"
write_and_check raid6-bitmap 8 1 2
log "raid5 degraded, read-modify-write preferred"
write_and_check raid5-degraded 9 0 2
# With small chunks most writes cover several whole rows, which go out
# at once (each row's parity computed beside the data's writes).
for spec in "5 3 8" "6 5 4"; do
	read -r level n chunk <<<"$spec"
	log "raid$level, $n members, $chunk KiB chunks: writes of many whole rows"
	dir=$T/small$level
	mkdir -p "$dir"
	imgs=()
	for d in vda vdb vdc vdd vde; do
		if [ ${#imgs[@]} -lt "$n" ]; then imgs+=("$dir/$d"); fi
	done
	"$MDFUSE" create -l "$level" -n "$n" --chunk="$chunk" --assume-clean --image-size=8M "${imgs[@]}" \
		>/dev/null 2>&1 || fail "create of a raid$level with $chunk KiB chunks"
	write_and_check "small$level" "1$level" 1
done

# The method a 4 KiB write takes, by what it reads (dev-*/io's first
# field): on 5 members read-modify-write reads the old block and the
# parity (2 reads against 3) and is md's choice at rmw_level 1;
# rmw_level 0 forbids it.  Row 0 of left-symmetric: data on vda..vdd,
# parity on vde.
log "raid5, 5 members: the method by rmw_level"
mkdir -p "$T/r5x5"
"$MDFUSE" create -l 5 -n 5 --assume-clean --image-size=8M "$T"/r5x5/vd{a,b,c,d,e} >/dev/null 2>&1 ||
	fail "create of a 5-member raid5"
new_array md0 "$T"/r5x5/vd?
put md0/md/array_state active
reads() { for d in a b c d e; do attr "md0/md/dev-vd$d/io" | cut -d' ' -f1; done | paste -sd' '; }
# delta BEFORE AFTER: the sectors each member read in between.
delta() { paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") | awk '{printf "%s%d", (NR > 1 ? " " : ""), $2 - $1}'; }
for level in 1 0; do
	put md0/md/rmw_level $level
	before=$(reads)
	dd if=/dev/urandom of="$MNT/md0/data" bs=4096 count=1 seek=1 oflag=direct conv=notrunc status=none ||
		fail "a 4 KiB write"
	got=$(delta "$before" "$(reads)")
	case $level in
	1) expect_eq "$got" "8 0 0 0 8" "reads of a 4 KiB write at rmw_level 1 (read-modify-write)" ;;
	0) expect_eq "$got" "0 8 8 8 0" "reads of a 4 KiB write at rmw_level 0 (reconstruct-write)" ;;
	esac
done
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 "mismatch_cnt after both methods"
put md0/md/array_state clear
rm -rf "$T/r5x5"

# Writes while a repair rewrites every stripe's parity, slowly: the two
# take each row's stripe lock, so no parity is left stale.
for fx in raid5-ls-bitmap raid6-bitmap; do
	log "$fx: writes during a repair"
	imgs=$T/$fx
	unpack "$fx" "$imgs"
	new_array md0 "$imgs"/vd?
	put md0/md/array_state active
	wait_idle md0
	put md0/md/sync_speed_max 2000
	put md0/md/sync_action repair
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" 11 150) || fail "$fx: writes failed"
	[ "$(attr md0/md/sync_action)" == repair ] || fail "$fx: the repair ended before the writes did"
	put md0/md/sync_speed_max system
	wait_idle md0
	expect_eq "$(sha "$MNT/md0/data")" "$want" "$fx: md0/data after writes during a repair"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after writes during a repair"
	put md0/md/array_state clear
	rm -rf "${imgs:?}"
done
log "written and read back; real md agrees"
