# raid10 scenarios, as plain POSIX sh so that the same steps run against
# mdfuse (tests/shell/raid10.sh) and real md (tests/shell/oracle/raid10.sh).
# Sourced after probe_member.sh, whose m_step, m_show and m_done they use;
# the driver defines m_bind, m_examine and m_mdstat as for probe_members.

# A near-2 array over four members: members fail while every block keeps
# a copy; the member holding the last copy of some block is not failed
# (EBUSY, the array broken) unless fail_last_dev; removal.
r10_scen_fail() {
	m_bind md1 raid10-n2-bitmap
	set -- $DEVS
	D4=$4
	echo active >"$S/array_state"
	sleep 0.5
	echo "r10fail start: $(m_show)"
	m_step r10fail fail-b "dev-$D2/state" faulty
	m_step r10fail fail-a "dev-$D1/state" faulty
	m_step r10fail fail-c "dev-$D3/state" faulty
	m_step r10fail fail-d "dev-$D4/state" faulty
	m_step r10fail remove-b "dev-$D2/state" remove
	m_step r10fail remove-c "dev-$D3/state" remove
	m_step r10fail remove-a "dev-$D1/state" remove
	m_step r10fail last "fail_last_dev" 1
	m_step r10fail fail-a-last "dev-$D1/state" faulty
	m_done
}

# A far-2 array over three members: any one member may go, then no other.
r10_scen_far() {
	m_bind md1 raid10-f2
	echo active >"$S/array_state"
	sleep 0.5
	echo "r10far start: $(m_show)"
	m_step r10far fail-b "dev-$D2/state" faulty
	m_step r10far fail-a "dev-$D1/state" faulty
	m_step r10far fail-c "dev-$D3/state" faulty
	m_done
}

probe_raid10() {
	r10_scen_fail
	r10_scen_far
}
