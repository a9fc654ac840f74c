# Helpers for the data-path tests (md0/data).  Sourced after lib.sh.

# Arrays made once by real md (realmd create) and kept between runs.
CACHE=${MDFUSE_TEST_CACHE:-/tmp/mdfuse-test-cache}

# cached_images NAME SIZE [MDADM_OPTION...]: print the directory holding
# d0.img, d1.img of a 2-leg RAID1 made by real mdadm with the given
# options (--assume-clean, no data written), creating it on first use.
cached_images() {
	local name=$1 size=$2
	shift 2
	local dir=$CACHE/$name
	mkdir -p "$CACHE"
	(
		flock 9
		if [ ! -f "$dir/d1.img" ]; then
			rm -rf "$dir"
			"$REALMD" create --size "$size" --pattern none "$dir" \
				--metadata=1.2 --assume-clean "$@" >"$CACHE/$name.log" 2>&1 ||
				{ cat "$CACHE/$name.log" >&2; exit 1; }
		fi
	) 9>"$CACHE/.lock" || fail "realmd create $name"
	echo "$dir"
}

# images_from DIR DEST: sparse copies of DIR/d0.img, d1.img as DEST/vda, vdb.
images_from() {
	mkdir -p "$2"
	cp --sparse=always "$1/d0.img" "$2/vda"
	cp --sparse=always "$1/d1.img" "$2/vdb"
}

# leg_data IMG OFFSET_SECTORS SECTORS: the data area of a leg on stdout.
leg_data() {
	dd if="$1" bs=512 skip="$2" count="$3" status=none
}

# check_legs NAME REF IMG...: every leg's data area equals REF, byte for byte.
check_legs() {
	local name=$1 ref=$2
	shift 2
	local sectors=$(($(stat -c %s "$ref") / 512)) img off
	for img in "$@"; do
		off=$(attr "$name/md/dev-$(basename "$img")/offset")
		leg_data "$img" "$off" "$sectors" | cmp - "$ref" ||
			fail "$(basename "$img"): data at offset $off differs from what was written"
	done
}

# sha FILE: its sha256
sha() { sha256sum "$1" | cut -d' ' -f1; }

# log_has TEXT: the mdfuse log holds TEXT (fixed string)
log_has() { grep -qF -- "$1" "$MNT/log" || fail "log lacks: $1"; }

# log_count TEXT: lines of the mdfuse log holding TEXT
log_count() { grep -cF -- "$1" "$MNT/log" || true; }

# final_checks: nothing of ours left mounted or attached
final_checks() {
	! grep -q " $T/" /proc/mounts || fail "still mounted: $(grep " $T/" /proc/mounts)"
	! losetup -a | grep -q "$T/" || fail "loop still attached: $(losetup -a | grep "$T/")"
}
