# Guest half of member_state.sh (see probe_member.sh): the scenarios take
# the images in the order of the images line.
# images: raid1-v1.2-bitmap raid1-v1.2-bitmap raid1-v1.2-bitmap raid1-spare raid1-v1.2-bitmap raid1-spare
M_TMP=/tmp/examine
M_LEFT=$DISKS
m_bind() {
	M_NAME=$1
	_n=2
	[ "$2" = raid1-spare ] && _n=3
	echo "$1" >/sys/module/md_mod/parameters/new_array
	S=/sys/block/$1/md
	DATA=/dev/$1
	echo 1.2 >"$S/metadata_version"
	DEVS=
	set -- $M_LEFT
	while [ $_n -gt 0 ]; do
		DEVS="$DEVS ${1#/dev/}"
		cat "/sys/block/${1#/dev/}/dev" >"$S/new_dev"
		shift
		_n=$((_n - 1))
	done
	M_LEFT=$*
	set -- $DEVS
	D1=$1 D2=$2 D3=${3:-}
}
m_examine() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	mdadm --examine "/dev/$1"
}
m_mdstat() { mdstat_line "/dev/$M_NAME"; }
probe_members
