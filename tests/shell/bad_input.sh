#!/bin/bash
# Bad input into every writable file of the tree: garbage, empty, bare
# newlines, a value larger than a page, signs, overflows, out-of-range
# numbers, binary bytes, stray spaces -- on an array bound but not run,
# and on a running one.  Every write's result (the errno, or the value it
# left behind) must be the kernel's: expected/bad_input.txt is the same
# matrix (probe_attrs.sh) run against real md by oracle/bad_input.sh.
# Then new_dev with things that are not members, unknown file names, and
# the daemon must still answer and run an array.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_attrs.sh"

# probe_attrs.sh's helpers with bash's builtins where they would fork, with
# the same results: the matrix is some 2700 writes.
probe_read() {
	_v=
	{ IFS= read -r -d '' _v <"$1"; } 2>/dev/null || :
	_v=${_v%$'\n'}
	_v=${_v//$'\r'/\\r}
	_v=${_v//$'\n'/\\n}
}
probe_put() {
	if dd if="$2" of="$1" bs=8192 count=1 status=none 2>"$SCRATCH/err"; then
		_r=ok
	else
		_r=$(<"$SCRATCH/err")
		_r=${_r##*: }
	fi
}

# Lines of the kernel's matrix mdfuse does not give, with the reason
# (each line is prefixed with its section, inactive or running):
# - over_page: a write larger than a page.  sysfs cuts it to 4096 bytes
#   and stores those (a short write; dd then stores the rest as a second
#   value); the tree refuses it whole with E2BIG, by design (one write is
#   one value).
# - component_size 1 and 10 (KiB, "+1" and "010") on the running array:
#   md shrinks it and resizes the internal bitmap (which sets
#   bitmap/space); mdfuse cannot resize a bitmap yet and refuses (EBUSY).
#   Growing back then resyncs the new part in md (last_sync_action
#   becomes resync).
CANNOT_MATCH='^[a-z]+: [^ ]+ over_page:'
CANNOT_MATCH+='|^running: (component_size (plus_one|octal):'
CANNOT_MATCH+='|bitmap/space plus_one:|dump . (bitmap/space|last_sync_action):)'

start_daemon
unpack raid1-v1.2-bitmap "$T/img"
DEV=dev-vda
SCRATCH=$T/probe
mkdir -p "$SCRATCH"
ROOT_FILES="new_array=$MNT/new_array speed_limit_min=$MNT/speed_limit_min speed_limit_max=$MNT/speed_limit_max"

section() {
	echo "### $1"
	sysfs_dump "$S" >"$SCRATCH/before"
	sed "s/^/was /" "$SCRATCH/before"
	probe_all
	sysfs_dump "$S" >"$SCRATCH/after"
	diff -u "$SCRATCH/before" "$SCRATCH/after" | sed -n 's/^\([-+]\)\([a-z]\)/dump \1 \2/p'
	echo "### end $1: $(cat "$S/array_state")"
}
bind() {
	put new_array "$1"
	S=$MNT/$1/md
	put "$1/md/metadata_version" 1.2
	put "$1/md/new_dev" "$T/img/vda"
	put "$1/md/new_dev" "$T/img/vdb"
}

log "the matrix"
(
	set +e +o pipefail
	bind md0
	section inactive md0
	echo clear >"$S/array_state"
	bind md1
	echo active >"$S/array_state" || echo "run failed"
	section running md1
) >"$T/ours.txt" 2>&1
put md1/md/array_state clear
# BAD_INPUT_KEEP=FILE keeps mdfuse's answers, whole, for a look by hand.
[ -z "${BAD_INPUT_KEEP:-}" ] || cp "$T/ours.txt" "$BAD_INPUT_KEEP"
# "SECTION: line", without what cannot match.
sections() {
	awk '/^### / { if ($2 != "end") sec = $2; print; next } { print sec ": " $0 }' "$1" |
		grep -v -E "$CANNOT_MATCH" || true
}
sections "$(dirname "$0")/expected/bad_input.txt" >"$T/theirs.f.txt"
sections "$T/ours.txt" >"$T/ours.f.txt"
diff -u "$T/theirs.f.txt" "$T/ours.f.txt" || fail "the bad-input matrix differs from the kernel's"

# new_dev with things that are not members.  Real md (checked in the
# oracle) answers a number it cannot open with ENXIO, numbers MKDEV cannot
# hold with EOVERFLOW, a device bound already with EBUSY, a device with
# no or another superblock with EINVAL.  Paths are mdfuse's own: a missing
# one is ENOENT, a directory EISDIR.
log "new_dev with things that are not members"
unpack raid1-v1.2-nobitmap "$T/other"
unpack raid1-v1.0-bitmap "$T/v10"
truncate -s 16M "$T/blank"
: >"$T/empty"
mkdir "$T/dir"
ln -s "$T/img/vda" "$T/link"
new_dev_cases() {
	expect_err "No such file or directory" md2/md/new_dev "$T/missing"
	expect_err "Is a directory" md2/md/new_dev "$T/dir"
	# A device without md metadata is refused while the array is bound
	# but not running; a running array takes it as mdadm --add does
	# (tested below).
	if [ "$(attr md2/md/array_state)" == inactive ]; then
		expect_err "Invalid argument" md2/md/new_dev "$T/blank"
		grep -q "md: blank does not have a valid v1.2 superblock, not importing!" "$MNT/log" ||
			fail "no message for a device without a superblock"
	fi
	expect_err "Invalid argument" md2/md/new_dev "$T/empty"
	grep -q "md: empty has zero or unknown size, marking faulty!" "$MNT/log" ||
		fail "no message for an empty device"
	expect_err "Invalid argument" md2/md/new_dev "$T/other/vda"
	grep -q "md: vda.1 has strangely different superblock to vd[ab]" "$MNT/log" ||
		fail "no message for another array's member"
	expect_err "Invalid argument" md2/md/new_dev "$T/v10/vda"
	expect_err "Device or resource busy" md2/md/new_dev "$T/img/vda"
	expect_err "Device or resource busy" md2/md/new_dev "$T/link"
	expect_err "No such device or address" md2/md/new_dev "7:255"
	grep -q "md: could not open device unknown-block(7,255)." "$MNT/log" ||
		fail "no message for a missing device number"
	expect_err "Value too large for defined data type" md2/md/new_dev "99999:1"
	expect_err "Value too large for defined data type" md2/md/new_dev "1:99999999"
	expect_err "No such device or address" md2/md/new_dev ":0"
	for v in garbage 1: 1:2x relative/path "1 :2"; do
		expect_err "Invalid argument" md2/md/new_dev "$v"
	done
}
new_array md2 "$T/img/vda" "$T/img/vdb"
new_dev_cases
expect_eq "$(ls -d "$MNT"/md2/md/dev-* | xargs -n1 basename | tr '\n' ' ')" "dev-vda dev-vdb " "members"
put md2/md/array_state active
new_dev_cases
expect_eq "$(attr md2/md/array_state)" clean "array_state"
# A blank device joining the running array becomes a spare (its
# superblock written as mdadm --add would); a device holding a file
# system is refused rather than overwritten.
put md2/md/new_dev "$T/blank"
expect_eq "$(attr md2/md/dev-blank/state)" spare "blank member state"
grep -q "md: blank: wrote a spare's superblock" "$MNT/log" || fail "no message for the new spare"
truncate -s 16M "$T/fs.img"
mkfs.ext4 -q -F "$T/fs.img"
expect_err "Device or resource busy" md2/md/new_dev "$T/fs.img"
grep -q "md: fs.img: holds an ext2/3/4 file system" "$MNT/log" || fail "no message for a file system"
put md2/md/dev-blank/state remove
expect_eq "$(mdstat_line md2 | cut -d'|' -f1-2)" "md2 : active raid1 vdb[1] vda[0] | 15360 blocks super 1.2 [2/2] [UU] " "md2"

# Names that do not exist: reading one is ENOENT, creating one is EACCES
# (sysfs directories have no create).
log "unknown names"
out=$(cat "$MNT/md2/md/nonexistent" 2>&1) && fail "reading a missing file worked"
case $out in *"No such file or directory"*) ;; *) fail "reading a missing file: $out" ;; esac
expect_err "Permission denied" md2/md/nonexistent x
expect_err "Permission denied" md2/md/dev-vda/nonexistent x
[ ! -e "$MNT/md2/md/nonexistent" ] || fail "a file was created"

# After all this the daemon answers and arrays still run.
log "still working"
put md2/md/array_state clear
[ ! -e "$MNT/md2" ] || fail "md2 still there after clear"
new_array md3 "$T/img/vda" "$T/img/vdb"
put md3/md/array_state active
expect_eq "$(attr md3/md/array_state)" clean "md3 array_state"
dd if="$MNT/md3/data" of=/dev/null bs=1M count=1 status=none || fail "reading md3"
put md3/md/array_state clear
