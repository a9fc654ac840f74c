# Writes to a running array's geometry and policy files that md judges
# through its personality (check_reshape, change_consistency_policy, the
# raid456 attributes), and array names for new_array, as plain POSIX sh
# so that the same steps run against mdfuse (tests/shell/geometry.sh) and
# real md (tests/shell/oracle/geometry.sh).  Sourced after
# probe_member.sh (m_put, m_err, m_done); the driver defines m_bind as
# for probe_members, NEW_ARRAY (the new_array file) and ARRAYS (where
# arrays appear as mdN/).  Only writes whose answer does not start a
# reshape: mdfuse has none, md records a new geometry for one.

# g_step LABEL FILE VALUE: one write, its result and the value after.
g_step() {
	echo "$1 $2 ($3): $(m_put "$2" "$3") -> $(cat "$S/$2" 2>/dev/null | head -1)"
}

# g_same LABEL: the current layout, chunk and member count written back.
g_same() {
	for _f in layout chunk_size raid_disks; do
		g_step "$1" "$_f" "$(cat "$S/$_f")"
	done
}

g_scen_raid5() {
	m_bind md1 raid5-ra
	echo active >"$S/array_state"
	sleep 0.5
	g_same r5
	g_step r5 layout 99
	g_step r5 chunk_size 12288
	g_step r5 chunk_size 2048
	g_step r5 consistency_policy garbage
	g_step r5 consistency_policy resync
	g_step r5 consistency_policy ppl
	echo "r5 stripe_size mode: $(ls -l "$S/stripe_size" | cut -c1-10)"
	g_step r5 stripe_size 4096
	g_step r5 stripe_cache_size 4294967313
	g_step r5 stripe_cache_size 16
	g_step r5 stripe_cache_size 256
	g_step r5 preread_bypass_threshold 200
	g_step r5 stripe_cache_size 100
	echo "r5 preread_bypass_threshold: $(cat "$S/preread_bypass_threshold")"
	m_done
}

g_scen_raid5_bitmap() {
	m_bind md1 raid5-ls-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	g_step r5b consistency_policy ppl
	m_done
}

g_scen_raid6() {
	m_bind md1 raid6-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	g_same r6
	g_step r6 layout 99
	g_step r6 consistency_policy ppl
	m_done
}

g_scen_raid10() {
	m_bind md1 raid10-n2-bitmap
	echo active >"$S/array_state"
	sleep 0.5
	g_same r10n
	g_step r10n layout 99
	g_step r10n layout 513
	g_step r10n chunk_size 12288
	g_step r10n consistency_policy resync
	m_done
	m_bind md1 raid10-f2
	echo active >"$S/array_state"
	sleep 0.5
	g_same r10f
	m_done
}

# g_new NAME: write NAME to new_array; the result and which arrays are
# there then.
g_new() {
	if _me=$(echo "$1" 2>&1 >"$NEW_ARRAY"); then _r=ok; else _r=$(echo "$_me" | m_err); fi
	_there=
	for _a in md7 md+7 md007 md_x; do [ -d "$ARRAYS/$_a" ] && _there="$_there $_a"; done
	echo "new_array $1: $_r |$_there"
}

g_scen_names() {
	g_new md+7
	g_new md007
	g_new md7
	g_new md-7
	g_new md7x
	g_new md_x
	echo clear >"$ARRAYS/md7/md/array_state"
	echo clear >"$ARRAYS/md_x/md/array_state"
}

probe_geometry() {
	g_scen_raid5
	g_scen_raid5_bitmap
	g_scen_raid6
	g_scen_raid10
	g_scen_names
}
