#!/bin/bash
# raid4/5/6 sync against real md's fixtures: run active, every fixture
# syncs as the kernel synced it (resync of a dirty array, recovery of a
# spare), ends with the kernel's degraded count and last_sync_action,
# and a check finds the kernel's mismatch_cnt (raid5-mismatch: 8); a
# repair then makes the check clean without changing the data.  What a
# recovery wrote is proven by reading it back with a member left out,
# and raid6-degraded2 recovers two blank images at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

start_daemon

# bind_listed DIR FIXTURE SKIP...: as in parity.sh.
bind_listed() {
	local dir=$1 fx=$2 want n
	shift 2
	want=$(summary "$fx" assembled_mdstat)
	local listed order=()
	listed=$(echo "$want" | cut -d'|' -f1 | grep -o 'vd[a-z]\[' | tr -d '[' | tac)
	for img in "$dir"/vd?; do
		n=$(basename "$img")
		echo "$listed" | grep_q -x "$n" || order+=("$img")
	done
	for n in $listed; do order+=("$dir/$n"); done
	put new_array md0
	for img in "${order[@]}"; do
		n=$(basename "$img")
		[[ " $* " == *" $n "* ]] && continue
		put md0/md/new_dev "$img"
	done
}

check_clean_as() {
	local fx=$1 want=$2
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/last_sync_action)" check "$fx: last_sync_action after check"
	expect_eq "$(attr md0/md/mismatch_cnt)" "$want" "$fx: mismatch_cnt"
}

n=0
for dir in "$FIXTURES"/raid[456]*/; do
	fx=$(basename "$dir")
	imgs=$T/$fx
	unpack "$fx" "$imgs"
	want_sha=$(summary "$fx" md0_sha256)
	log "$fx"
	bind_listed "$imgs" "$fx"
	put md0/md/array_state active
	wait_idle md0
	expect_eq "$(attr md0/md/degraded)" "$(summary "$fx" synced_degraded)" "$fx: degraded after sync"
	expect_eq "$(attr md0/md/last_sync_action)" "$(summary "$fx" synced_last_sync_action)" "$fx: last_sync_action"
	expect_eq "$(attr md0/md/resync_start)" none "$fx: resync_start after sync"
	check_clean_as "$fx" "$(summary "$fx" mismatch_cnt)"
	if [ "$(attr md0/md/mismatch_cnt)" != 0 ]; then
		# raid5-mismatch's damage: 4 KiB of vdb's parity at member sector
		# 2048, the stripe of array chunks 32 (on vdc) and 33 (on vda).
		[ "$fx" != raid5-mismatch ] || expect_eq "$(attr md0/md/mismatches | tr '\n' ' ')" "4096 8 4224 8 " "$fx: mismatches"
		put md0/md/sync_action repair
		wait_idle md0
		check_clean_as "$fx" 0
	fi
	expect_eq "$(sha "$MNT/md0/data")" "$want_sha" "$fx: md0/data after sync"
	if [ "$fx" == raid6-degraded2 ]; then
		# Two blank images recover both empty slots at once.
		truncate -s 16M "$imgs/vdc" "$imgs/vdd"
		put md0/md/new_dev "$imgs/vdc"
		put md0/md/new_dev "$imgs/vdd"
		wait_for md0/md/degraded 0 120
		wait_idle md0
		expect_eq "$(mdstat_line md0 | grep -o '\[4/4\] \[UUUU\]')" "[4/4] [UUUU]" "$fx: mdstat after recovery"
		check_clean_as "$fx" 0
	fi
	put md0/md/array_state inactive
	put md0/md/array_state clear
	# Whatever the sync wrote: every member can now be left out.
	if [ "$(summary "$fx" synced_degraded)" == 0 ] || [ "$fx" == raid6-degraded2 ]; then
		for m in "$imgs"/vd?; do
			m=$(basename "$m")
			bind_listed "$imgs" "$fx" "$m"
			put md0/md/array_state readonly
			expect_eq "$(sha "$MNT/md0/data")" "$want_sha" "$fx: md0/data without $m after sync"
			put md0/md/array_state clear
		done
	fi
	rm -rf "${imgs:?}"
	n=$((n + 1))
done
[ $n == 10 ] || fail "only $n fixtures"
log "$n parity fixtures synced and checked as the kernel did"
