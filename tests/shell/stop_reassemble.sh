#!/bin/bash
# Stop and reassemble, per fixture: assemble auto-read-only, go
# read-write, write 64 KiB through the data file, let safe mode mark the
# array clean, stop it (inactive), run it again (active keeps the
# configuration), stop and forget it (clear: the array disappears).  The
# events and clean/active state the superblocks record after each step
# must be the kernel's: expected/stop_reassemble.txt is the same sequence
# (probe_stop.sh) run by real md (oracle/stop_reassemble.sh).  Also: every
# superblock mdfuse wrote has a correct checksum, a recent update time and
# the roles it had; and real md, given the images afterwards, assembles
# them as before, finds no mismatch and reads the data we last read.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_stop.sh"

start_daemon
head -c 65536 /dev/urandom >"$T/src"
SR_SRC=$T/src

sr_bind() {
	local name=$1 meta=$2
	shift 2
	put new_array "$name"
	S=$MNT/$name/md
	DATA=$MNT/$name/data
	put "$name/md/metadata_version" "$meta"
	for d in "$@"; do put "$name/md/new_dev" "$d"; done
}
sr_events() {
	for d in "$@"; do
		printf '%s/%s ' "$(mdadm --examine "$d" | sed -n 's/ *Events : //p')" \
			"$(mdadm --examine "$d" | sed -n 's/ *State : //p' | head -n 1)"
	done
}

sr_bitmap() {
	local dev
	dev=$(loop_attach -r "$1")
	mdadm --examine-bitmap "$dev" 2>/dev/null |
		sed -n 's/ *Events : //p; s/ *Events Cleared : //p' | tr '\n' / || :
	loop_detach "$dev"
}

# The examine lines that must not change through all this: the members'
# roles and the array state they record.
roles() { mdadm --examine "$1" | grep -E '^ *(Device Role|Array State|this|Raid Devices) ' || true; }

sr_hook() {
	local stage=$1 label=$2 dir=$T/fx/${2//\//-} img i=0 t now
	case $stage in
	written)
		# What the array holds now; real md must read the same.
		sha256sum <"$DATA" | cut -d' ' -f1 >"$dir.sha"
		;;
	stopped)
		now=$(date +%s)
		for img in "$dir"/vd?; do
			mdadm --examine "$img" | grep_q 'Checksum : .* - correct' ||
				fail "$label: $(basename "$img"): checksum not correct"
			expect_eq "$(roles "$img")" "$(cat "$dir/roles.$(basename "$img")")" \
				"$label: $(basename "$img"): roles"
			# Members md wrote carry the time of the write.
			if ! cmp -s <(mdadm --examine "$img" | grep Events) "$dir/events.$(basename "$img")"; then
				t=$(date -d "$(mdadm --examine "$img" | sed -n 's/ *Update Time : //p')" +%s)
				[ $((now - t)) -lt 60 ] || fail "$label: $(basename "$img"): update time $t, now $now"
			fi
			i=$((i + 1))
		done
		;;
	esac
}

log "stop and reassemble every fixture"
n=0
for label in raid1-v1.2-bitmap raid1-v1.0-bitmap raid1-v1.1-bitmap raid1-v0.90 \
	raid1-v1.2-nobitmap raid1-degraded-missing raid1-spare raid1-stale-member \
	raid1-3way raid1-v1.2-bitmap/direct; do
	dir=$T/fx/${label//\//-}
	unpack "${label%/*}" "$dir"
	for img in "$dir"/vd?; do
		roles "$img" >"$dir/roles.$(basename "$img")"
		mdadm --examine "$img" | grep Events >"$dir/events.$(basename "$img")"
	done
	n=$((n + 1))
	sr_case "$label" "md$n" "$dir"/vd? >>"$T/ours.txt"
	[ ! -e "$MNT/md$n" ] || fail "$label: md$n still there after clear"
done
diff -u "$(dirname "$0")/expected/stop_reassemble.txt" "$T/ours.txt" ||
	fail "events and states differ from the kernel's"

# Real md judges the images: one VM assembles each fixture's images in
# turn (as realmd inspect does: auto-read-only, then read-write, wait for
# any sync, check), and reports what it found.
log "real md assembles what mdfuse wrote"
cat >"$T/inspect.sh" <<'EOF'
set -- $DISKS
for g in $GROUPS; do
	devs=
	i=0
	while [ $i -lt "${g##*:}" ]; do devs="$devs $1"; shift; i=$((i + 1)); done
	echo 1 >/sys/module/md_mod/parameters/start_ro
	mdadm --assemble $MD --run $devs >/dev/null 2>&1 && a=yes || a=no
	line=$(mdstat_line)
	mdadm --readwrite $MD 2>/dev/null
	wait_idle
	sha=$(md_sha256)
	echo check >/sys/block/md0/md/sync_action
	sleep 0.5
	wait_idle
	echo "${g%:*} assembled=$a sha=$sha mismatch=$(md_attr mismatch_cnt) | ${line#md0 : }"
	mdadm --stop $MD >/dev/null 2>&1
done
EOF
groups=
imgs=()
for dir in "$T"/fx/*/; do
	dir=${dir%/}
	set -- "$dir"/vd?
	groups+=" $(basename "$dir"):$#"
	imgs+=("$@")
done
sed -i "1i GROUPS='$groups'" "$T/inspect.sh"
"$REALMD" shell-script "${imgs[@]}" -- "$T/inspect.sh" >"$T/inspect.out" 2>&1 || true
for dir in "$T"/fx/*/; do
	dir=${dir%/}
	fx=$(basename "$dir")
	got=$(grep "^$fx " "$T/inspect.out" || true)
	[ -n "$got" ] || { cat "$T/inspect.out" >&2; fail "$fx: no report from real md"; }
	case $got in *" assembled=yes "*) ;; *) fail "$fx: real md did not assemble it: $got" ;; esac
	case $got in *" mismatch=0 "*) ;; *) fail "$fx: real md found mismatches: $got" ;; esac
	expect_eq "$(echo "$got" | sed -n 's/.* sha=\([0-9a-f]*\) .*/\1/p')" "$(cat "$dir.sha")" "$fx: data as real md reads it"
	# The members and slots as the kernel assembled the fixture itself.
	want=$(summary "${fx%-direct}" assembled_mdstat | grep -o '\[[0-9]*/[0-9]*\] \[[U_]*\]')
	case $got in *"$want"*) ;; *) fail "$fx: real md assembled it as '$got', not $want" ;; esac
done
