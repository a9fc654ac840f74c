# mdadm's tests/01replace for RAID1, as plain POSIX sh so that the same
# steps run against mdfuse (tests/shell/mdadm_01replace.sh, which does
# through the tree what mdadm does through sysfs) and real md with real
# mdadm (tests/shell/oracle/mdadm_01replace.sh).  Sourced; the driver
# defines, for members numbered 0..5 (named vda..vdf):
#   r_create            mdadm -CR md0 -l1 -n4 -x2 (all six; no bitmap)
#   r_replace N [W]     mdadm md0 --replace N [--with W]
#   r_remove N...       mdadm md0 --remove N...
#   r_add N...          mdadm md0 --add N...
#   r_fail N...         mdadm md0 --fail N...
#   r_stop              mdadm -S md0
#   r_zero N            dd if=/dev/zero over the whole member
#   r_fill              dd if=/dev/urandom over the whole of md0
#   r_sum               sha1sum of md0
#   r_speed KB          speed_limit_max
#   r_mdstat            md0's mdstat stanza on one line
# and S, md0's md directory.  Prints one line per checkpoint.

r_names="vda vdb vdc vdd vde vdf"
r_name() {
	case $1 in
	0) echo vda ;; 1) echo vdb ;; 2) echo vdc ;; 3) echo vdd ;; 4) echo vde ;; 5) echo vdf ;;
	esac
}

# r_wait: the mdadm test suite's `check wait`: sync at full speed until
# nothing runs, then back to the suite's 2000 KB/s.
r_wait() {
	r_speed 2000000
	sleep 0.1
	_i=0
	while r_mdstat | grep -E '(resync|recovery|reshape|check|repair) *=' >/dev/null ||
		[ "$(cat "$S/sync_action")" != idle ]; do
		sleep 0.5
		_i=$((_i + 1))
		[ $_i -lt 240 ] || break
	done
	r_speed 2000
}

# r_rc LABEL CMD...: run an mdadm step, print its exit status.
r_rc() {
	_l=$1
	shift
	if "$@"; then echo "$_l: rc 0"; else echo "$_l: rc 1"; fi
}

# r_cp LABEL: the members as mdstat lists them, and each member's state
# and slot.
r_cp() {
	_o="$1: $(r_mdstat | cut -d'|' -f1 | sed 's/.* raid1 //; s/ *$//') |$(r_mdstat | cut -d'|' -f2 | sed 's/.*blocks super [^ ]*//; s/ *$//')"
	for _d in $r_names; do
		if [ -d "$S/dev-$_d" ]; then
			_o="$_o | $_d $(cat "$S/dev-$_d/state")/$(cat "$S/dev-$_d/slot")"
		fi
	done
	echo "$_o"
}

# r_same LABEL SUM: md0 holds the data whose sha1 is SUM.
r_same() {
	if [ "$(r_sum)" = "$2" ]; then echo "$1: same data"; else echo "$1: data differs"; fi
}

probe_replace() {
	r_speed 2000
	r_zero 4
	r_zero 5
	r_create
	r_fill
	_sum=$(r_sum)
	r_wait
	r_cp created
	# 1/ after replace, can remove replaced device
	r_rc "replace vdb" r_replace 1
	r_wait
	r_cp "replaced vdb"
	r_rc "remove vdb" r_remove 1
	r_rc "remove vdf" r_remove 5
	r_stop
	r_zero 4
	r_zero 5
	r_create
	r_wait
	r_same "created again" "$_sum"
	r_cp "created again"
	# 2/ after --replace-with cannot remove the 'with' device
	r_rc "replace vdb with vde" r_replace 1 4
	r_cp "replacing vdb with vde"
	r_wait
	r_cp "replaced vdb with vde"
	r_rc "remove vdb" r_remove 1
	r_rc "remove vdf" r_remove 5
	r_rc "remove vde" r_remove 4
	# 3/ preserve integrity with concurrent failure
	r_rc "add vdb vdf" r_add 1 5
	r_cp "added vdb vdf"
	r_rc "replace vda" r_replace 0
	sleep 2
	r_rc "fail vdc" r_fail 2
	r_wait
	r_same "replaced vda, vdc failed" "$_sum"
	r_cp "replaced vda, vdc failed"
	r_rc "remove vda vdc" r_remove 0 2
	r_rc "add vda vdc" r_add 0 2
	r_cp "added vda vdc"
	r_rc "replace vdd" r_replace 3
	sleep 2
	r_rc "fail vda vdc" r_fail 0 2
	r_wait
	r_same "replacing vdd, vda vdc failed" "$_sum"
	r_cp "replacing vdd, vda vdc failed"
	r_stop
}
