#!/bin/bash
# Arrays without superblocks (metadata_version none, mdadm --build), by
# hand through the tree and with `mdfuse build`, against real md:
# expected/build.txt is the same sequence (probe_build.sh) run on real md
# by oracle/build.sh, with sysfs and mdadm --build.  Every write's result,
# the sysfs dumps, the mdstat stanzas, the md log lines, the sha256 of
# each array's contents (the fixtures' own md0_sha256 for the arrays made
# over their members at their data offset) and of every image afterwards
# must be the kernel's: md writes nothing but data to such members, and
# writes it where real md does.  Then what the oracle cannot show the
# same way: writes leave the metadata areas of the images untouched, a
# refused build changes nothing and leaves no array behind, new_dev on a
# running array makes a spare that recovers, a member whose write fails
# is failed (no bad-block log can record it), and a member on NBD.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nbd_lib.sh"
. "$(dirname "$0")/probe_build.sh"

start_daemon
DEV=$T/dev
mkdir -p "$DEV"
n=0
for fx in raid0-v1.2 raid1-v1.2-nobitmap raid10-f2 linear-v1.2; do
	unpack "$fx" "$T/u"
	for img in "$T"/u/vd?; do
		mv "$img" "$DEV/vd$(printf "\\x$(printf %x $((97 + n)))")"
		n=$((n + 1))
	done
done
truncate -s 16M "$DEV/vdk" "$DEV/vdl"
S=$MNT/md0/md
b_new() { put new_array md0; }
b_w() {
	printf '%s\n' "$2" >"$T/v"
	if dd if="$T/v" of="$S/$1" bs=8192 count=1 status=none 2>"$T/e"; then
		echo "$1 $2: ok"
	else
		local e
		e=$(head -n 1 "$T/e")
		echo "$1 $2: ${e##*: }"
	fi
}
b_r() { echo "$1: $(cat "$S/$1" 2>&1)"; }
b_nd() {
	printf '%s\n' "$DEV/$1" >"$T/v"
	if dd if="$T/v" of="$S/new_dev" bs=8192 count=1 status=none 2>"$T/e"; then
		echo "new_dev $1: ok"
	else
		local e
		e=$(head -n 1 "$T/e")
		echo "new_dev $1: ${e##*: }"
	fi
}
b_sha() { echo "sha256 $(sha256sum <"$MNT/md0/data" | cut -d' ' -f1)"; }
b_img() { dd if="$DEV/$1" bs=65536 skip="${2:-0}" count="${3:-256}" status=none | sha256sum | cut -c1-16; }
b_fill() { dd if="$DEV/$1" of="$MNT/md0/data" bs=65536 skip="$2" seek="$3" count="$4" conv=notrunc,fsync status=none; }
b_dump() { sysfs_dump "$S"; }
b_stanza() { mdstat_line md0 | cut -d'|' -f1-2 | sed 's/ *$//'; }
b_settle() { wait_idle md0; }
B_MARK=0
b_mark() { B_MARK=$(wc -l <"$MNT/log"); }
b_log() { tail -n +$((B_MARK + 1)) "$MNT/log" | sed 's/^\[[ 0-9.]*\] //' | grep '^md' || true; }
mdf() { "$MDFUSE" "$@" --tree "$MNT"; }
c_build() {
	echo "+ build $*"
	local a=() x rc=0
	for x in "$@"; do
		case $x in
		vd?) a+=("$DEV/$x") ;;
		nonexist) a+=("/dev/$x") ;;
		*) a+=("$x") ;;
		esac
	done
	b_mark
	mdf build "${a[@]}" >"$T/o" 2>&1 || rc=$?
	sed "s#$DEV/#/dev/#g" "$T/o"
	echo "rc=$rc"
	b_log_stable
}
c_detail() { echo "+ detail"; mdf detail md0 2>&1 | sed "s#$DEV/#/dev/#g" | b_detail_filter; }
c_stop() { echo "+ stop"; local rc=0; mdf stop md0 >"$T/o" 2>&1 || rc=$?; cat "$T/o"; echo "rc=$rc"; }

log "by hand, then the verb, against real md"
{
	build_tree_sequence
	echo "### the verb"
	build_cli_sequence
} >"$T/ours.txt" 2>&1
# BUILD_KEEP=FILE keeps mdfuse's transcript, whole, for a look by hand.
[ -z "${BUILD_KEEP:-}" ] || cp "$T/ours.txt" "$BUILD_KEEP"
# Lines of one side that the other cannot have, with the reason:
# - mdadm's note when the array it builds exists already: it made it
#   through new_array and fell back to its device node; mdfuse has only
#   new_array, and says the array is in use as mdadm then does.
# - a device listed twice: mdadm's own O_EXCL open refuses the second
#   before md is asked; mdfuse's open is new_dev, which md logs.
CANNOT_MATCH='^mdfuse: Fail to create md0 when using /sys/module/md_mod/parameters/new_array, fallback to creation via node$'
CANNOT_MATCH+='|^md: could not open device vdk\.$'
grep -v -E "$CANNOT_MATCH" "$(dirname "$0")/expected/build.txt" >"$T/theirs.f.txt" || true
grep -v -E "$CANNOT_MATCH" "$T/ours.txt" >"$T/ours.f.txt" || true
diff -u "$T/theirs.f.txt" "$T/ours.f.txt" || fail "the transcript differs from real md's"
for fx in raid0-v1.2 raid1-v1.2-nobitmap raid10-f2 linear-v1.2; do
	grep -q "^sha256 $(summary "$fx" md0_sha256)\$" "$T/ours.txt" ||
		fail "no array built over $fx's members read back its contents"
done

log "writes reach the data areas only"
# raid1-v1.2-nobitmap's metadata (superblock, bad-block log) lies in the
# first MiB of each member, its data from 2048 sectors on: the arrays
# built over them wrote data, and nothing before it.
mkdir -p "$T/orig"
unpack raid1-v1.2-nobitmap "$T/orig"
for pair in vdd:vda vde:vdb; do
	ours=${pair%%:*} orig=${pair##*:}
	expect_eq "$(b_img "$ours" 0 16)" "$(dd if="$T/orig/$orig" bs=65536 count=16 status=none | sha256sum | cut -c1-16)" \
		"$ours: the metadata area"
	[ "$(b_img "$ours" 16)" != "$(dd if="$T/orig/$orig" bs=65536 skip=16 status=none | sha256sum | cut -c1-16)" ] ||
		fail "$ours: the data area was not written"
	mdadm --examine "$DEV/$ours" | grep_q 'Checksum : .* - correct' || fail "$ours: the superblock"
done
expect_eq "$(b_img vdd 16)" "$(b_img vde 16)" "the two mirrors' data areas"

log "refused builds change nothing and leave no array"
before=$(b_images)
mkdir "$T/dir"
refused() {
	local want_rc=$1 want=$2 rc=0
	shift 2
	mdf build "$@" >"$T/o" 2>&1 || rc=$?
	expect_eq "$rc/$(sed "s#$DEV/#/dev/#g; s#$T/#T/#g" "$T/o")" "$want_rc/$want" "build $*"
	[ ! -e "$MNT/md0" ] || fail "build $*: md0 is left in the tree"
}
refused 2 "mdfuse: an md device must be given in this mode"
refused 1 "mdfuse: /dev/sdz9 is an invalid name for an md device." /dev/sdz9 --level=1 -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: invalid raid level: raid7" md0 --level=raid7 -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: raid level multipath is not supported: mdfuse builds linear, raid0, raid1 and raid10 arrays" \
	md0 --level=multipath -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: layout not meaningful for raid1 arrays." md0 --level=1 --layout=n2 -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: raid level must be given before layout." md0 --layout=n2 -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: invalid chunk/rounding value: 3" md0 --level=0 --chunk=3 -n2 "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: invalid number of raid devices: x" md0 --level=0 -n x "$DEV/vdk" "$DEV/vdl"
refused 2 "mdfuse: invalid size: 1" md0 --level=1 --size=1 -n2 "$DEV/vdk" "$DEV/vdl"
refused 1 "mdfuse: T/dir is not a block device." md0 --level=1 -n2 "$DEV/vdk" "$T/dir"
refused 1 "mdfuse: RUN_ARRAY failed: Invalid argument
        Problem may be that chunk size is not a power of 2" md0 --level=10 --chunk=96 -n2 "$DEV/vdk" "$DEV/vdl"
expect_eq "$(b_images)" "$before" "the images after refused builds"

log "a spare added to a running array recovers; raid0 takes none"
mdf build md0 --level=1 -n2 --assume-clean "$DEV/vdk" missing 2>/dev/null || fail "build with a member missing"
truncate -s 16M "$DEV/vdm"
mdf manage md0 --add "$DEV/vdm" 2>"$T/o" || { cat "$T/o"; fail "--add"; }
wait_idle md0
expect_eq "$(b_stanza)" "md0 : active raid1 vdm[2] vdk[0] | 16384 blocks super non-persistent [2/2] [UU]" "md0 after the recovery"
expect_eq "$(b_img vdm)" "$(b_img vdk)" "the recovered member"
mdf stop md0 2>/dev/null
mdf build md0 --level=0 -n2 "$DEV/vdk" "$DEV/vdl" 2>/dev/null || fail "build raid0"
expect_err "Invalid argument" md0/md/new_dev "$DEV/vdm"
grep -q "md0: personality does not support diskops!" "$MNT/log" || fail "no message for new_dev on raid0"
mdf stop md0 2>/dev/null

log "a member whose write fails is failed"
mdf build md0 --level=1 -n2 --assume-clean "$DEV/vdk" "$DEV/vdl" 2>/dev/null || fail "build raid1"
put md0/md/dev-vdl/fault "write-error 2048-4095"
dd if="$DEV/vda" of="$MNT/md0/data" bs=65536 skip=20 seek=20 count=16 conv=notrunc,fsync status=none ||
	fail "the write failed"
wait_for md0/md/dev-vdl/state faulty,write_error 10
expect_eq "$(attr md0/md/degraded)" 1 "degraded"
grep -q "md/raid1:md0: Disk failure on vdl, disabling device." "$MNT/log" || fail "no message for the failed member"
cmp -s <(dd if="$MNT/md0/data" bs=65536 skip=20 count=16 status=none) \
	<(dd if="$DEV/vda" bs=65536 skip=20 count=16 status=none) || fail "the data written does not read back"
mdf stop md0 2>/dev/null

log "read-only, write-mostly"
before=$(b_images)
mdf build md0 --level=1 -n2 --readonly "$DEV/vdk" -W "$DEV/vdl" 2>/dev/null || fail "build --readonly"
expect_eq "$(attr md0/md/array_state)" readonly "array_state"
expect_eq "$(attr md0/md/dev-vdl/state)" in_sync,write_mostly "vdl's state"
expect_eq "$(attr md0/md/dev-vdk/state)" in_sync "vdk's state"
expect_eq "$(attr md0/md/resync_start)" 0 "resync_start"
sleep 0.5
expect_eq "$(attr md0/md/sync_action)" idle "sync_action"
expect_eq "$(b_images)" "$before" "the images while read-only"
# The mirrors differ (vdl missed the write above): made writable, the
# array resyncs.
[ "$(b_img vdk)" != "$(b_img vdl)" ] || fail "the mirrors are alike already"
mdf manage md0 --readwrite 2>/dev/null || fail "--readwrite"
# md's thread starts the resync after the switch: wait for it to have
# run, not only for an idle moment before it starts.
wait_for md0/md/last_sync_action resync 120
wait_idle md0
mdf stop md0 2>/dev/null
expect_eq "$(b_img vdk)" "$(b_img vdl)" "the mirrors after the resync"

log "a member on NBD"
need_nbd_tools
truncate -s 16M "$DEV/vdn"
qemu_serve "$DEV/vdn" "$T/nbd.sock" vdn
mdf build md0 --level=1 -n2 "$DEV/vdk" "nbd+unix:///vdn?socket=$T/nbd.sock" 2>"$T/o" ||
	{ cat "$T/o"; fail "build with an NBD member"; }
expect_eq "$(cat "$T/o")" "mdfuse: array /dev/md0 built and started." "the message"
wait_idle md0
expect_eq "$(b_stanza)" "md0 : active raid1 vdn[1] vdk[0] | 16384 blocks super non-persistent [2/2] [UU]" "md0"
mdf stop md0 2>/dev/null
expect_eq "$(b_img vdn)" "$(b_img vdk)" "the NBD member after the resync"
