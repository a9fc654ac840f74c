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

# log_mark: later log_* calls look only at lines logged after this
LOGMARK=0
log_mark() { LOGMARK=$(wc -l <"$MNT/log"); }
log_new() { tail -n +$((LOGMARK + 1)) "$MNT/log"; }

# log_has TEXT: the mdfuse log holds TEXT (fixed string) since log_mark
log_has() { log_new | grep_q -F -- "$1" || fail "log lacks: $1"; }

# log_lacks TEXT: ... and not this
log_lacks() { ! log_new | grep_q -F -- "$1" || fail "log has: $(log_new | grep -F -- "$1" | head -1)"; }

# log_count TEXT: lines of the mdfuse log holding TEXT since log_mark
log_count() { log_new | grep -cF -- "$1" || true; }

# final_checks: nothing of ours left mounted or attached
final_checks() {
	! grep -q " $T/" /proc/mounts || fail "still mounted: $(grep " $T/" /proc/mounts)"
	! losetup -a | grep_q "$T/" || fail "loop still attached: $(losetup -a | grep "$T/")"
}

# fio_jobs FILE [RATE]: a fio job file of four jobs writing md0/data with
# O_DIRECT and verifying every block with crc32c afterwards: 1 MiB
# sequential (64 MiB), two 4 KiB random (32 MiB each), 128 KiB sequential
# (64 MiB).  RATE limits each job's writes (e.g. 16m) so that a fault can
# be injected while they run.
fio_jobs() {
	cat >"$1" <<EOF2
[global]
filename=$MNT/md0/data
direct=1
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
${2:+rate=,$2}
[seq]
rw=write
bs=1M
offset=0
size=64M
[rand1]
rw=randwrite
bs=4k
offset=64M
size=32M
[rand2]
rw=randwrite
bs=4k
offset=96M
size=32M
[seq2]
rw=write
bs=128k
offset=128M
size=64M
EOF2
}

# fio_start JOBFILE OUT [ARGS...]: run fio in the background ($FIO_PID).
fio_start() {
	local job=$1 out=$2
	shift 2
	fio --aux-path="$T" "$job" --output="$out" "$@" &
	FIO_PID=$!
}

# fio_wait OUT: fio ended well, every job without error, nothing failed
# verification.
fio_wait() {
	wait "$FIO_PID" || { cat "$1" >&2; fail "fio failed"; }
	FIO_PID=
	[ "$(grep -c 'err= 0' "$1")" == 4 ] || { cat "$1" >&2; fail "a fio job had an error"; }
	! grep -qiE 'verify.*fail|bad magic|bad header' "$1" || { cat "$1" >&2; fail "fio verify error"; }
}

# fio_running: the background fio is still going
fio_running() { kill -0 "$FIO_PID" 2>/dev/null; }

# fresh_array IMAGES_DIR: (re)create md0 from sparse copies of the cached
# images in $T/img and run it.
fresh_array() {
	# Whatever the last case did to it, SIGTERM still stops the daemon.
	if [ -n "$DPID" ] && [ -e "$MNT/md0" ]; then restart_daemon; fi
	rm -rf "$T/img"
	images_from "$1" "$T/img"
	new_array md0 "$T/img/vda" "$T/img/vdb"
	put md0/md/array_state active
}

# wait_log TEXT [SECONDS]: until the mdfuse log holds TEXT (since log_mark)
wait_log() {
	local deadline=$((SECONDS + ${2:-30}))
	until log_new | grep_q -F -- "$1"; do
		[ $SECONDS -lt $deadline ] || fail "log never said: $1"
		sleep 0.05
	done
}
