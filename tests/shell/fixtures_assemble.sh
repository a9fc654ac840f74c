#!/bin/bash
# Every fixture written by real md: assemble it with echo (new_array,
# new_dev, read-auto) and compare every attribute of the kernel's
# assembled.sysfs.txt and its mdstat stanza with ours.  A fixture of a
# level no registered personality runs (mdstat's Personalities line) is
# refused as the kernel refuses it without the module: EINVAL and "md:
# personality for level N is not loaded!".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

# Values that cannot match, with the reason.  (None today: mdfuse uses
# HZ=250 like Debian's kernel, so even safe_mode_delay reads 0.204.)
declare -A CANNOT_MATCH=()

# The kernel's level numbers (md_p.h, md.h's LEVEL_LINEAR).
declare -A LEVEL_NUMBER=([linear]=-1 [raid0]=0 [raid1]=1 [raid4]=4 [raid5]=5 [raid6]=6 [raid10]=10)

start_daemon
registered=$(head -1 "$MNT/mdstat")
checked=0
refused=0
for dir in "$FIXTURES"/*/; do
	fx=$(basename "$dir")
	[ -f "$dir/inspect/assembled.sysfs.txt" ] || continue
	level=$(sed -n 's/^level: //p' "$dir/inspect/assembled.sysfs.txt")
	if [[ $registered != *"[$level]"* ]]; then
		log "$fx: $level is not registered"
		[ -n "${LEVEL_NUMBER[$level]:-}" ] || fail "$fx: unknown level $level"
		unpack "$fx" "$T/$fx"
		new_array md0 "$T/$fx"/vd?
		log_mark
		expect_err "Invalid argument" md0/md/array_state read-auto
		log_has "md: personality for level ${LEVEL_NUMBER[$level]} is not loaded!"
		expect_eq "$(attr md0/md/array_state)" inactive "$fx: array_state"
		put md0/md/array_state clear
		rm -rf "${T:?}/$fx"
		refused=$((refused + 1))
		continue
	fi
	log "$fx"
	imgs=$T/$fx
	unpack "$fx" "$imgs"
	want_line=$(summary "$fx" assembled_mdstat)
	# mdstat lists members in reverse bind order: bind in the order mdadm
	# did.  Members the kernel kicked (not in the line) are bound first.
	listed=$(echo "$want_line" | cut -d'|' -f1 | grep -o 'vd[a-z]\[' | tr -d '[' | tac)
	order=()
	for img in "$imgs"/vd?; do
		n=$(basename "$img")
		echo "$listed" | grep_q -x "$n" || order+=("$img")
	done
	for n in $listed; do order+=("$imgs/$n"); done
	new_array md0 "${order[@]}"
	put md0/md/array_state read-auto

	sysfs_dump "$MNT/md0/md" >"$T/ours.txt"
	grep -v -E "^($(IFS='|'; echo "${!CANNOT_MATCH[*]:-NONE}")):" "$dir/inspect/assembled.sysfs.txt" >"$T/theirs.txt" || true
	grep -v -E "^($(IFS='|'; echo "${!CANNOT_MATCH[*]:-NONE}")):" "$T/ours.txt" >"$T/ours.f.txt" || true
	diff -u "$T/theirs.txt" "$T/ours.f.txt" || fail "$fx: sysfs differs from the kernel's"
	got_line=$(mdstat_line md0)
	expect_eq "$got_line" "$want_line" "$fx: mdstat stanza"
	for k in array_state degraded resync_start; do
		want=$(summary "$fx" "assembled_$k")
		# Empty in the summary: the attribute does not exist (degraded
		# belongs to the redundancy group, absent for linear and raid0).
		if [ -z "$want" ] && [ ! -e "$MNT/md0/md/$k" ]; then
			continue
		fi
		expect_eq "$(attr "md0/md/$k")" "$want" "$fx: $k"
	done
	put md0/md/array_state clear
	[ ! -e "$MNT/md0" ] || fail "$fx: md0 still present after clear"
	checked=$((checked + 1))
	rm -rf "${T:?}/$fx"
done
[ $checked -ge 12 ] || fail "only $checked fixtures checked"
log "$checked fixtures match the kernel's assembled state; $refused of unregistered levels refused"
