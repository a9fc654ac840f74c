# Guest half of geometry.sh (see probe_geometry.sh): the scenarios take the
# images in the order of the images line.
# images: raid5-ra raid5-ls-bitmap raid6-bitmap raid10-n2-bitmap raid10-f2
M_LEFT=$DISKS
NEW_ARRAY=/sys/module/md_mod/parameters/new_array
ARRAYS=/sys/block
m_bind() {
	_n=4
	case $2 in raid5-ls-bitmap | raid10-f2) _n=3 ;; esac
	echo "$1" >"$NEW_ARRAY"
	S=/sys/block/$1/md
	echo 1.2 >"$S/metadata_version"
	set -- $M_LEFT
	while [ $_n -gt 0 ]; do
		cat "/sys/block/${1#/dev/}/dev" >"$S/new_dev"
		shift
		_n=$((_n - 1))
	done
	M_LEFT=$*
}
modprobe raid456
modprobe raid10
probe_geometry
