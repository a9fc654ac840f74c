#!/bin/bash
# Every fixture written by real md: assemble it with echo (new_array,
# new_dev, read-auto) and compare every attribute of the kernel's
# assembled.sysfs.txt and its mdstat stanza with ours.
. "$(dirname "$0")/lib.sh"

# Values that cannot match, with the reason.  (None today: mdfuse uses
# HZ=250 like Debian's kernel, so even safe_mode_delay reads 0.204.)
declare -A CANNOT_MATCH=()

start_daemon
checked=0
for dir in "$FIXTURES"/*/; do
	fx=$(basename "$dir")
	[ -f "$dir/inspect/assembled.sysfs.txt" ] || continue
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
		echo "$listed" | grep -qx "$n" || order+=("$img")
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
		expect_eq "$(attr "md0/md/$k")" "$(summary "$fx" "assembled_$k")" "$fx: $k"
	done
	put md0/md/array_state clear
	[ ! -e "$MNT/md0" ] || fail "$fx: md0 still present after clear"
	checked=$((checked + 1))
done
[ $checked -ge 12 ] || fail "only $checked fixtures checked"
log "$checked fixtures match the kernel's assembled state"
