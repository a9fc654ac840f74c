# Guest half of stop_reassemble.sh (see probe_stop.sh): each fixture's
# images, in the order the images line gives them.
# images: raid1-v1.2-bitmap raid1-v1.0-bitmap raid1-v1.1-bitmap raid1-v0.90 raid1-v1.2-nobitmap raid1-degraded-missing raid1-spare raid1-stale-member raid1-3way raid1-v1.2-bitmap
SR_SRC=/dev/zero
sr_bind() {
	_name=$1 _meta=$2
	shift 2
	echo "$_name" >/sys/module/md_mod/parameters/new_array
	S=/sys/block/$_name/md
	DATA=/dev/$_name
	echo "$_meta" >"$S/metadata_version"
	for _d in "$@"; do cat "/sys/block/$_d/dev" >"$S/new_dev"; done
}
sr_events() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for _d in "$@"; do
		printf '%s/%s ' "$(mdadm --examine /dev/$_d | sed -n 's/ *Events : //p')" \
			"$(mdadm --examine /dev/$_d | sed -n 's/ *State : //p' | head -n 1)"
	done
}
sr_bitmap() {
	mdadm --examine-bitmap "/dev/$1" 2>/dev/null |
		sed -n 's/ *Events : //p; s/ *Events Cleared : //p' | tr '\n' / || :
}
sr_hook() { :; }
n=0
set -- $DISKS
for g in raid1-v1.2-bitmap:2 raid1-v1.0-bitmap:2 raid1-v1.1-bitmap:2 raid1-v0.90:2 \
	raid1-v1.2-nobitmap:2 raid1-degraded-missing:1 raid1-spare:3 raid1-stale-member:2 \
	raid1-3way:3 raid1-v1.2-bitmap/direct:2; do
	devs=
	i=0
	while [ $i -lt "${g##*:}" ]; do
		devs="$devs ${1#/dev/}"
		shift
		i=$((i + 1))
	done
	n=$((n + 1))
	sr_case "${g%:*}" md$n $devs
done
