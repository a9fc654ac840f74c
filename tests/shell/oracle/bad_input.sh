# Guest half of bad_input.sh: the same matrix against real md.  Run by
# tests/shell/oracle/regen.sh with probe_attrs.sh prepended, on the two
# images of raid1-v1.2-bitmap (vda, vdb).  md0 is probed inactive (bound,
# not run), then cleared; md1 is made of the same images and probed
# running.
# images: raid1-v1.2-bitmap
DEV=dev-vda
SCRATCH=/tmp/probe
mkdir -p $SCRATCH
ROOT_FILES="new_array=/sys/module/md_mod/parameters/new_array speed_limit_min=/proc/sys/dev/raid/speed_limit_min speed_limit_max=/proc/sys/dev/raid/speed_limit_max"
section() {
	echo "### $1"
	sysfs_dump /dev/$2 >$SCRATCH/before
	sed "s/^/was /" "$SCRATCH/before"
	probe_all
	sysfs_dump /dev/$2 >$SCRATCH/after
	diff -u $SCRATCH/before $SCRATCH/after | sed -n 's/^\([-+]\)\([a-z]\)/dump \1 \2/p'
	echo "### end $1: $(cat $S/array_state)"
}
bind() {
	echo $1 >/sys/module/md_mod/parameters/new_array
	S=/sys/block/$1/md
	echo 1.2 >$S/metadata_version
	cat /sys/block/vda/dev >$S/new_dev
	cat /sys/block/vdb/dev >$S/new_dev
}
bind md0
section inactive md0
echo clear >$S/array_state
bind md1
echo active >$S/array_state || echo "run failed"
section running md1
