# Member state and slot writes (md/dev-NAME/*), as plain POSIX sh so that
# the same scenarios run against mdfuse (tests/shell/member_state.sh) and
# real md (tests/shell/oracle/member_state.sh).  Sourced; the driver
# defines:
#   m_bind NAME FIXTURE    create array NAME from the next fresh copy of
#                          the fixture's images (bound, not run); sets S,
#                          DATA, DEVS (the member names) and D1, D2, D3
#   m_examine DEV          mdadm --examine of member DEV, as on disk now
#   m_mdstat               the array's mdstat stanza on one line
# Prints one line per step: "SCENARIO STEP: result | what md shows".

m_err() { sed -n '$s/.*: //p' | sed 's/^nonexistent directory$/No such file or directory/' || :; }

# m_put FILE VALUE: write VALUE (with a newline) to $S/FILE; ok or errno.
m_put() {
	if _me=$(echo "$2" 2>&1 >"$S/$1"); then echo ok; else echo "$_me" | m_err; fi
}

# m_disk DEV: "events/role/array state[/flags]" as DEV's superblock
# records it.
m_disk() {
	m_examine "$1" >"$M_TMP"
	_ev=$(sed -n 's/ *Events : //p' "$M_TMP")
	_role=$(sed -n 's/ *Device Role : //p' "$M_TMP")
	_as=$(sed -n 's/ *Array State : \([^ ]*\).*/\1/p' "$M_TMP")
	_fl=$(sed -n 's/ *Flags : //p' "$M_TMP")
	echo "$_ev/$_role/$_as${_fl:+/$_fl}"
}

# m_show: the array and every member, as sysfs, mdstat and the
# superblocks say.
m_show() {
	_o="$(cat "$S/array_state") deg=$(cat "$S/degraded" 2>/dev/null)"
	for _d in $DEVS; do
		if [ -d "$S/dev-$_d" ]; then
			_o="$_o | $_d $(cat "$S/dev-$_d/state")/$(cat "$S/dev-$_d/slot")"
		else
			_o="$_o | $_d -"
		fi
	done
	_o="$_o | rd:"
	for _l in "$S"/rd*; do [ -e "$_l" ] || [ -L "$_l" ] && _o="$_o ${_l##*/}"; done
	_o="$_o | $(m_mdstat | cut -d'|' -f1 | sed 's/.* raid1 //')"
	for _d in $DEVS; do _o="$_o | $(m_disk "$_d")"; done
	echo "$_o"
}

# m_step SCEN LABEL FILE VALUE: one write, its result and what follows.
m_step() {
	_r=$(m_put "$3" "$4")
	sleep "${M_SETTLE:-0.5}"
	echo "$1 $2 ($3 $4): $_r | $(m_show)"
}

# m_idle: until no sync runs (at most 60 s).
m_idle() {
	_i=0
	while [ $_i -lt 600 ]; do
		if [ "$(cat "$S/sync_action")" = idle ] && [ "$(cat "$S/sync_completed")" = none ]; then
			sleep 0.3
			[ "$(cat "$S/sync_action")" = idle ] && return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
}

m_done() {
	echo clear >"$S/array_state"
	sleep 0.3
}

# A running two-way mirror: what each state word does to a member that
# is in a slot, and the slot, offset and other writes refused while it is.
m_scen_words() {
	m_bind md1 raid1-v1.2-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	echo "words start: $(m_show)"
	for _w in remove -insync insync replacement -replacement re-add external_bbl -external_bbl \
		garbage want_replacement -want_replacement writemostly -writemostly failfast -failfast \
		blocked -blocked write_error -write_error; do
		m_step words $D1 dev-$D1/state "$_w"
	done
	for _v in none 0 1 5 -1; do m_step words $D1 dev-$D1/slot "$_v"; done
	m_step words $D1 dev-$D1/offset 0
	m_step words $D1 dev-$D1/offset 2048
	m_step words $D1 dev-$D1/new_offset 2048
	m_step words $D1 dev-$D1/recovery_start 0
	m_step words $D1 dev-$D1/recovery_start none
	m_step words $D1 dev-$D1/size 0
	m_step words $D1 dev-$D1/size 15360
	m_step words $D1 dev-$D1/size 10
	m_step words $D1 dev-$D1/errors 7
	for _v in "100 8" "100" "100 0" "100 -1" "x 8" "100 8 junk" "100 513"; do
		m_step words $D1 dev-$D1/bad_blocks "$_v"
	done
	echo "words bad_blocks: $(cat "$S/dev-$D1/bad_blocks" | tr '\n' ' ')"
	m_step words $D2 dev-$D2/unacknowledged_bad_blocks "300 8"
	echo "words unacknowledged: $(cat "$S/dev-$D2/unacknowledged_bad_blocks" | tr '\n' ' ')/$(cat "$S/dev-$D2/bad_blocks" | tr '\n' ' ')"
	m_done
}

# Failing members: the last working one is kept (EBUSY, the array reads
# broken) unless fail_last_dev is set; a failed member leaves its slot
# and can then be removed (its directory and rdN link go).
m_scen_fail() {
	m_bind md2 raid1-v1.2-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	m_step fail $D1 dev-$D1/state faulty
	m_step fail $D1 dev-$D1/state faulty
	m_step fail $D2 dev-$D2/state faulty
	m_step fail $D2 dev-$D2/state remove
	m_step fail $D1 dev-$D1/state remove
	m_step fail $D1 dev-$D1/state remove
	m_step fail - fail_last_dev 1
	m_step fail $D2 dev-$D2/state faulty
	m_done
}

# re-add: a failed member out of its slot comes back to its old slot and
# catches up by the bitmap.
m_scen_readd() {
	m_bind md3 raid1-v1.2-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	m_step readd $D1 dev-$D1/state re-add
	m_step readd $D1 dev-$D1/state faulty
	m_step readd $D1 dev-$D1/state re-add
	m_idle
	echo "readd recovered: $(m_show)"
	m_done
}

# A spare: slot writes, recovery into a freed slot, replacement.
m_scen_spare() {
	m_bind md4 raid1-spare
	echo active >"$S/array_state"
	sleep 0.5
	echo "spare start: $(m_show)"
	m_step spare $D3 dev-$D3/slot none
	m_step spare $D3 dev-$D3/slot 5
	m_step spare $D3 dev-$D3/slot 1
	m_step spare $D3 dev-$D3/state -insync
	m_step spare $D3 dev-$D3/state insync
	m_step spare $D3 dev-$D3/offset 2048
	m_step spare $D3 dev-$D3/recovery_start 0
	m_step spare - sync_action frozen
	m_step spare $D2 dev-$D2/state faulty
	m_step spare $D2 dev-$D2/state remove
	m_step spare $D3 dev-$D3/slot 1
	m_step spare - sync_action idle
	m_idle
	echo "spare recovered: $(m_show)"
	m_step spare $D1 dev-$D1/state want_replacement
	m_idle
	echo "spare replaced: $(m_show)"
	m_done
}

# Before the array runs: slots, insync, replacement and the rest are
# plain settings.
m_scen_inactive() {
	m_bind md5 raid1-v1.2-bitmap
	echo "inactive start: $(m_show)"
	m_step inactive $D1 dev-$D1/state faulty
	m_step inactive $D1 dev-$D1/state re-add
	m_step inactive $D1 dev-$D1/slot 0
	m_step inactive - raid_disks 2
	m_step inactive $D1 dev-$D1/slot 0
	m_step inactive $D1 dev-$D1/slot 2
	m_step inactive $D1 dev-$D1/state -insync
	m_step inactive $D1 dev-$D1/state insync
	m_step inactive $D1 dev-$D1/state replacement
	m_step inactive $D1 dev-$D1/state -replacement
	m_step inactive $D1 dev-$D1/slot none
	m_step inactive $D1 dev-$D1/recovery_start 100
	m_step inactive $D1 dev-$D1/recovery_start none
	m_step inactive $D1 dev-$D1/offset 2048
	m_step inactive $D2 dev-$D2/state remove
	m_done
}

# want_replacement with a spare at hand: the spare rebuilds as the
# member's replacement, then takes its slot; the old member is failed.
m_scen_replace() {
	m_bind md6 raid1-spare
	echo active >"$S/array_state"
	sleep 0.5
	m_step replace $D3 dev-$D3/state replacement
	m_step replace $D1 dev-$D1/state want_replacement
	m_idle
	sleep 0.5
	echo "replace rebuilt: $(m_show)"
	m_step replace $D1 dev-$D1/state remove
	m_done
}

probe_members() {
	m_scen_words
	m_scen_fail
	m_scen_readd
	m_scen_spare
	m_scen_inactive
	m_scen_replace
}
