# The sequence of build.sh, shared by both sides: the host runs it on
# mdfuse's tree and verbs, the guest (oracle/build.sh) on real md's sysfs
# and mdadm, and both print the same transcript.  POSIX sh: the guest's
# shell is busybox ash.  Devices are vda..vdl: raid0-v1.2's three images
# (vda-vdc), raid1-v1.2-nobitmap's two (vdd, vde), raid10-f2's three
# (vdf-vdh), linear-v1.2's two (vdi, vdj), then two blank 16 MiB images
# (vdk, vdl).  Each side defines:
#   b_new            make md0 (new_array)
#   b_w FILE VALUE   write into md0's md/FILE; prints "FILE VALUE: ok|ERROR"
#   b_r FILE         prints "FILE: VALUE"
#   b_nd DEV         DEV into new_dev, printed as "new_dev DEV: ok|ERROR"
#   b_sha            prints the sha256 of md0's contents
#   b_img DEV [FROM [COUNT]]  prints the sha256 of DEV's 64 KiB blocks
#                    FROM.. (the whole image by default), as md left them
#   b_fill SRC SKIP SEEK COUNT  copy 64 KiB blocks of device SRC into md0
#   b_dump           md0's sysfs dump (sysfs_dump)
#   b_stanza         md0's mdstat stanza, its first two lines
#   b_settle         wait until no sync runs or is pending
#   b_mark / b_log   the md log lines since the mark (timestamps dropped)
#   c_build ARGS...  the build verb (mdadm --build); /dev/md0 is the array,
#                    vdX a device; prints the messages and "rc=N"
#   c_stop           stop md0 (mdadm --stop)
#   c_detail         md0's detail report, through b_detail_filter

# The md log lines that do not depend on timing: a resync's start and end
# race with whatever comes next.
b_log_stable() { b_log | grep -v -e 'resync of RAID array' -e 'resync done' || true; }

# The lines of a detail report that depend neither on the time nor on
# where the devices are: the creation time (SET_ARRAY_INFO records one, an
# array made through sysfs has none) and the device numbers go.
b_detail_filter() {
	sed -E -e '/Creation Time :/d' -e 's/^( *[0-9-]+) +[0-9]+ +[0-9]+ /\1   MAJ   MIN /'
}

b_images() {
	for _d in vda vdb vdc vdd vde vdf vdg vdh vdi vdj vdk vdl; do
		echo "$_d $(b_img $_d)"
	done
}

# An array of members given by hand: b_members OFFSET SIZE DEV...
b_members() {
	_off=$1 _size=$2 _slot=0
	shift 2
	for _d in "$@"; do b_nd "$_d"; done
	for _d in "$@"; do
		b_w "dev-$_d/slot" $_slot
		b_w "dev-$_d/offset" "$_off"
		b_w "dev-$_d/size" "$_size"
		_slot=$((_slot + 1))
	done
}

build_tree_sequence() {
	echo "### images"
	b_images

	echo "### a device bound before metadata_version is written"
	b_new
	b_r metadata_version
	b_nd vdk
	b_r metadata_version
	for _f in state slot offset size new_offset recovery_start; do b_r "dev-vdk/$_f"; done
	b_w metadata_version none
	b_w array_state active
	b_w level raid1
	b_w array_state active
	b_w raid_disks 2
	b_w array_state active
	b_r array_state
	b_w array_state clear

	echo "### raid0 over raid0-v1.2's members, by hand"
	b_new
	b_w metadata_version none
	b_r metadata_version
	b_w level raid0
	b_w raid_disks 3
	b_w chunk_size 65536
	b_nd vda
	b_nd vdb
	b_nd vdc
	b_nd vda
	b_w metadata_version 1.2
	b_w dev-vda/slot 3
	b_w dev-vda/slot none
	b_r dev-vda/state
	b_w component_size 15360
	b_w component_size 20000
	b_w dev-vda/size 10000
	for _d in vda vdb vdc; do
		b_w "dev-$_d/offset" 2048
		b_w "dev-$_d/size" 15360
	done
	b_w dev-vda/slot 0
	b_w dev-vdb/slot 1
	b_w dev-vdc/slot 2
	for _f in state slot offset size new_offset recovery_start; do b_r "dev-vda/$_f"; done
	b_mark
	b_w array_state active
	b_log_stable
	b_r array_state
	b_stanza
	b_sha
	b_dump
	b_w dev-vda/offset 0
	b_w dev-vda/slot none
	b_w dev-vda/size 0
	b_w dev-vda/size 20000
	b_w component_size 15000
	b_w array_state inactive
	b_r array_state
	b_r metadata_version
	b_w array_state active
	b_sha
	b_w array_state clear

	echo "### raid1 over raid1-v1.2-nobitmap's members, clean, then written"
	b_new
	b_w metadata_version none
	b_w level raid1
	b_w raid_disks 2
	b_w resync_start none
	b_members 2048 15360 vdd vde
	b_w component_size 15360
	b_mark
	b_w array_state active
	b_log_stable
	b_stanza
	b_sha
	b_dump
	b_fill vda 100 16 32
	b_sha
	b_w array_state clear
	for _d in vdd vde; do
		echo "$_d metadata $(b_img $_d 0 16) data $(b_img $_d 16)"
	done

	echo "### raid1 over blank images: resynced, written"
	b_new
	b_w metadata_version none
	b_w level raid1
	b_w raid_disks 2
	b_members 0 16384 vdk vdl
	b_w component_size 16384
	b_mark
	b_w array_state active
	b_settle
	b_log_stable
	b_stanza
	b_dump
	b_fill vdb 10 1 40
	b_sha
	b_w array_state inactive
	b_w array_state readonly
	b_r array_state
	b_sha
	b_w array_state clear
	echo "vdk $(b_img vdk) vdl $(b_img vdl)"

	echo "### raid1 over blank images, started read-only"
	b_new
	b_w metadata_version none
	b_w level raid1
	b_w raid_disks 2
	b_members 0 16384 vdk vdl
	b_w component_size 16384
	b_w array_state readonly
	b_r array_state
	b_r resync_start
	b_stanza
	b_w array_state clear

	echo "### raid10 far 2 over raid10-f2's members"
	b_new
	b_w metadata_version none
	b_w level raid10
	b_w raid_disks 3
	b_w chunk_size 65536
	b_w layout 513
	b_w resync_start none
	b_members 2048 15360 vdf vdg vdh
	b_w component_size 15360
	b_mark
	b_w array_state active
	b_log_stable
	b_stanza
	b_sha
	b_dump
	b_w array_state clear

	echo "### linear over linear-v1.2's members"
	b_new
	b_w metadata_version none
	b_w level linear
	b_w raid_disks 2
	b_members 2048 15360 vdi vdj
	b_mark
	b_w array_state active
	b_log_stable
	b_stanza
	b_sha
	b_dump
	b_w array_state clear

	echo "### images"
	b_images
}

build_cli_sequence() {
	c_build /dev/md0 --level=1 --raid-devices=2 vdk vdl
	b_settle
	b_stanza
	c_stop
	c_build /dev/md0 --level=1 --raid-devices=2 --assume-clean vdk missing
	b_stanza
	b_r resync_start
	c_detail
	c_stop
	c_build /dev/md0 --level=0 --raid-devices=3 vda vdb vdc
	b_stanza
	b_sha
	c_detail
	c_build /dev/md0 --level=1 --raid-devices=2 vdk vdl
	c_stop
	c_build /dev/md0 --level=10 --raid-devices=2 vdk vdl
	c_build /dev/md0 --level=10 --chunk=64 --raid-devices=2 vdk vdl
	b_settle
	b_stanza
	c_stop
	c_build /dev/md0 --level=linear --raid-devices=2 vdi vdj
	b_stanza
	b_sha
	c_stop
	c_build /dev/md0 --level=1 --raid-devices=2 --size=1000 vdk vdl
	b_settle
	b_stanza
	c_stop
	c_build /dev/md0 --level=5 --raid-devices=2 vdk vdl
	c_build /dev/md0 --level=mirror --raid-devices=3 vdk vdl
	c_build /dev/md0 --level=1 --raid-devices=2 vdk nonexist
	c_build /dev/md0 --raid-devices=2 vdk vdl
	c_build /dev/md0 --level=1 vdk vdl
	c_build /dev/md0 --level=0 --raid-devices=1 vdk
	c_build /dev/md0 --level=0 --layout=foo --raid-devices=2 vdk vdl
	c_build /dev/md0 --level=1 --raid-devices=2 missing missing
	c_build /dev/md0 --level=0 --raid-devices=2 vdk missing
	c_build /dev/md0 --level=1 --raid-devices=2 vdk vdk
	c_build --level=1 --raid-devices=2 vdk vdl
	echo "### images"
	b_images
}
