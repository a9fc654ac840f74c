# Guest half of array_state.sh (see probe_states.sh).
# images: raid1-v1.2-nobitmap
st_new() {
	echo "$1" >/sys/module/md_mod/parameters/new_array
	S=/sys/block/$1/md
	DATA=/dev/$1
}
st_bind() {
	st_new "$1"
	echo 1.2 >"$S/metadata_version"
	cat /sys/block/vda/dev >"$S/new_dev"
	cat /sys/block/vdb/dev >"$S/new_dev"
}
st_events() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for _d in vda vdb; do
		printf '%s=%s/%s ' $_d "$(mdadm --examine /dev/$_d | sed -n 's/ *Events : //p')" \
			"$(mdadm --examine /dev/$_d | sed -n 's/ *State : //p' | head -n 1)"
	done
}
st_resync() {
	dd if=/dev/vda bs=1 skip=$((4096 + 208)) count=8 2>/dev/null | od -An -tx1 | tr -d ' \n'
}
probe_states
probe_safemode
