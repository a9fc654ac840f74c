# Guest half of the raid10 scenarios (see probe_raid10.sh): the scenarios
# take the images in the order of the images line.
# images: raid10-n2-bitmap raid10-f2
M_TMP=/tmp/examine
M_LEFT=$DISKS
m_bind() {
	M_NAME=$1
	_n=4
	[ "$2" = raid10-f2 ] && _n=3
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
modprobe raid10
probe_raid10
