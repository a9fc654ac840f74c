# Guest half of build.sh (see probe_build.sh): md0 built by hand through
# sysfs, then mdadm --build, on real md.
# images: raid0-v1.2 raid1-v1.2-nobitmap raid10-f2 linear-v1.2
# blank: 2 16M
S=/sys/block/md0/md
SCRATCH=/tmp/build
mkdir -p $SCRATCH
b_new() { echo md0 >/sys/module/md_mod/parameters/new_array; }
b_w() {
	printf '%s\n' "$2" >$SCRATCH/v
	if dd if=$SCRATCH/v of="$S/$1" bs=8192 count=1 2>$SCRATCH/e; then
		echo "$1 $2: ok"
	else
		_e=$(head -n 1 $SCRATCH/e)
		echo "$1 $2: ${_e##*: }"
	fi
}
b_r() { echo "$1: $(cat "$S/$1" 2>&1)"; }
b_nd() {
	cat /sys/block/$1/dev >$SCRATCH/v
	if dd if=$SCRATCH/v of="$S/new_dev" bs=8192 count=1 2>$SCRATCH/e; then
		echo "new_dev $1: ok"
	else
		_e=$(head -n 1 $SCRATCH/e)
		echo "new_dev $1: ${_e##*: }"
	fi
}
b_flush() { sync; echo 3 >/proc/sys/vm/drop_caches; }
b_sha() { b_flush; echo "sha256 $(sha256sum </dev/md0 | cut -d' ' -f1)"; }
b_img() {
	b_flush
	dd if=/dev/$1 bs=65536 skip=${2:-0} count=${3:-256} 2>/dev/null | sha256sum | cut -c1-16
}
b_fill() {
	dd if=/dev/$1 of=/dev/md0 bs=65536 skip=$2 seek=$3 count=$4 conv=notrunc 2>/dev/null
	sync
}
b_dump() { sysfs_dump /dev/md0; }
b_stanza() { mdstat_line | cut -d'|' -f1-2 | sed 's/ *$//'; }
b_settle() { wait_idle md0 120 >/dev/null 2>&1 || echo "sync did not end"; }
b_mark() { B_MARK=$(dmesg | wc -l); }
b_log() { dmesg | tail -n +$((B_MARK + 1)) | sed 's/^\[[ 0-9.]*\] //' | grep '^md' || true; }
c_build() {
	echo "+ build $*"
	_a=
	for _x in "$@"; do
		case $_x in
		vd? | nonexist) _a="$_a /dev/$_x" ;;
		*) _a="$_a $_x" ;;
		esac
	done
	b_mark
	mdadm --build $_a >$SCRATCH/o 2>&1
	_rc=$?
	sed 's#^mdadm: #mdfuse: #' $SCRATCH/o
	echo "rc=$_rc"
	b_log_stable
}
c_detail() { echo "+ detail"; mdadm --detail /dev/md0 2>&1 | sed "s#^mdadm: #mdfuse: #" | b_detail_filter; }
c_stop() { echo "+ stop"; mdadm --stop /dev/md0 >$SCRATCH/o 2>&1; _rc=$?; sed 's#^mdadm: #mdfuse: #' $SCRATCH/o; echo "rc=$_rc"; }
build_tree_sequence
echo "### the verb"
build_cli_sequence
