#!/bin/bash
# raid10: the data of every fixture (near, far, offset copies) reads back
# as the kernel read it (md0_sha256), whole and with members left out;
# md refuses to run without a copy of every block; writes through
# md0/data (fio verify) land where real md reads them, with no mismatch;
# a failed member degrades the array and the last copy of a block is
# never failed; a resync, a check of damaged copies and a recovery onto
# a spare give what real md gives.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/probe_member.sh"
. "$(dirname "$0")/probe_raid10.sh"

LAYOUTS="raid10-n2-bitmap raid10-f2 raid10-o2"
SBPATCH="python3 $(dirname "$0")/sbpatch.py"

start_daemon

log "the fixtures' data"
for fx in $LAYOUTS; do
	unpack "$fx" "$T/$fx"
	new_array md0 "$T/$fx"/vd?
	log_mark
	put md0/md/array_state read-auto
	n=$(ls "$T/$fx" | wc -l)
	log_has "md/raid10:md0: active with $n out of $n devices"
	expect_eq "$(sha "$MNT/md0/data")" "$(summary "$fx" md0_sha256)" "$fx: md0 sha256"
	expect_eq "$(($(attr md0/size) * 512))" "$(summary "$fx" md_size_bytes)" "$fx: size"
	put md0/md/array_state clear
done

# degraded FIXTURE MISSING STATUS: assembled without the members MISSING
# (e.g. "vdb"), the array runs with the mdstat status STATUS and reads
# the same data.
degraded() {
	local fx=$1 missing=$2 status=$3 devs=() d
	for d in "$T/$fx"/vd?; do
		[[ " $missing " == *" $(basename "$d") "* ]] || devs+=("$d")
	done
	new_array md0 "${devs[@]}"
	log_mark
	put md0/md/array_state read-auto
	log_has "md/raid10:md0: active with ${#devs[@]} out of $(ls "$T/$fx" | wc -l) devices"
	mdstat_line md0 | grep_q -F "$status" || fail "$fx without $missing: $(mdstat_line md0)"
	expect_eq "$(attr md0/md/degraded)" "$(($(ls "$T/$fx" | wc -l) - ${#devs[@]}))" "$fx without $missing: degraded"
	expect_eq "$(sha "$MNT/md0/data")" "$(summary "$fx" md0_sha256)" "$fx without $missing: md0 sha256"
	put md0/md/array_state clear
}

# refused FIXTURE MISSING: without the members MISSING some block has no
# copy left: md refuses to run it, as raid10_run does.
refused() {
	local fx=$1 missing=$2 devs=() d
	for d in "$T/$fx"/vd?; do
		[[ " $missing " == *" $(basename "$d") "* ]] || devs+=("$d")
	done
	new_array md0 "${devs[@]}"
	log_mark
	expect_err "Input/output error" md0/md/array_state read-auto
	log_has "md/raid10:md0: not enough operational mirrors."
	log_has "md: pers->run() failed ..."
	expect_eq "$(attr md0/md/array_state)" inactive "$fx without $missing: array_state"
	put md0/md/array_state clear
}

log "degraded assembly"
degraded raid10-n2-bitmap vdb "64K chunks 2 near-copies [4/3] [U_UU]"
degraded raid10-n2-bitmap "vda vdc" "64K chunks 2 near-copies [4/2] [_U_U]"
degraded raid10-n2-bitmap "vdb vdd" "64K chunks 2 near-copies [4/2] [U_U_]"
refused raid10-n2-bitmap "vda vdb"
refused raid10-n2-bitmap "vdc vdd"
degraded raid10-f2 vda "64K chunks 2 far-copies [3/2] [_UU]"
degraded raid10-f2 vdc "64K chunks 2 far-copies [3/2] [UU_]"
refused raid10-f2 "vda vdb"
degraded raid10-o2 vdb "64K chunks 2 offset-copies [3/2] [U_U]"
refused raid10-o2 "vdb vdc"

# write_verify: fio writes the whole of md0/data (1 MiB sequential over
# the first half, 4 KiB random at odd offsets over the rest) and
# verifies it.
write_verify() {
	local bytes half
	bytes=$(($(attr md0/size) * 512))
	half=$((bytes / 2 / 1048576 * 1048576))
	cat >"$T/job.fio" <<EOF
[global]
filename=$MNT/md0/data
direct=1
ioengine=psync
verify=crc32c
verify_fatal=1
verify_state_save=0
[seq]
rw=write
bs=1M
offset=0
size=$half
[rand]
rw=randwrite
bs=4k
offset=$half
size=$((bytes - half))
EOF
	fio --aux-path="$T" "$T/job.fio" --output="$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio failed"; }
	[ "$(grep -c 'err= 0' "$T/fio.out")" == 2 ] || { cat "$T/fio.out" >&2; fail "a fio job had an error"; }
	! grep -qiE 'verify.*fail|bad magic|bad header' "$T/fio.out" || { cat "$T/fio.out" >&2; fail "fio verify error"; }
}

# oracle_same NAME IMG...: stop md0, let real md assemble the images,
# read the array and check it: the same sha256 as ours, no mismatch.
oracle_same() {
	local name=$1 ours
	shift
	ours=$(sha "$MNT/md0/data")
	put md0/md/array_state clear
	oracle_inspect "$T/orc-$name" "$@"
	expect_eq "$(sed -n 's/^assembled: //p' "$T/orc-$name/summary.txt")" yes "$name: real md assembles it"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$T/orc-$name/summary.txt")" "$ours" "$name: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$T/orc-$name/summary.txt")" 0 "$name: real md's mismatch_cnt"
}

for fx in $LAYOUTS; do
	log "$fx: writes read back by real md"
	rm -rf "${T:?}/w"
	unpack "$fx" "$T/w"
	new_array md0 "$T/w"/vd?
	put md0/md/array_state active
	write_verify
	# A write that is not chunk-aligned and crosses chunks.
	head -c $((391 * 512)) /dev/urandom >"$T/odd"
	dd if="$T/odd" of="$MNT/md0/data" bs=512 seek=77 conv=notrunc oflag=direct status=none
	cmp <(dd if="$MNT/md0/data" bs=512 skip=77 count=391 status=none) "$T/odd" ||
		fail "$fx: odd write reads back wrong"
	oracle_same "$fx" "$T/w"/vd?
done

# damaged FIXTURE DIR: the fixture's images in DIR with 4 KiB of vdb's
# data area overwritten at data sector 1000 (a copy of the array's
# chunk 0 in every layout here... or of another chunk: it does not
# matter, real md is asked).
damaged() {
	rm -rf "$2"
	unpack "$1" "$2"
	head -c 4096 /dev/urandom | dd of="$2/vdb" bs=512 seek=$((2048 + 1000)) conv=notrunc status=none
}

for fx in $LAYOUTS; do
	log "$fx: check and repair of a damaged copy, as real md counts it"
	damaged "$fx" "$T/dmg"
	oracle_inspect "$T/orc-dmg-$fx" "$T/dmg"/vd?
	want=$(sed -n 's/^mismatch_cnt: //p' "$T/orc-dmg-$fx/summary.txt")
	[ "$want" -gt 0 ] || fail "$fx: real md finds no mismatch"
	new_array md0 "$T/dmg"/vd?
	put md0/md/array_state active
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" "$want" "$fx: check's mismatch_cnt"
	expect_eq "$(attr md0/md/last_sync_action)" check "$fx: last_sync_action"
	put md0/md/sync_action repair
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" "$want" "$fx: repair's mismatch_cnt"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after repair"
	oracle_same "repaired-$fx" "$T/dmg"/vd?
done

for fx in $LAYOUTS; do
	log "$fx: a full resync (resync_offset 0 on disk) changes nothing"
	rm -rf "${T:?}/rs"
	unpack "$fx" "$T/rs"
	for d in "$T/rs"/vd?; do $SBPATCH "$d" 8 resync_offset=0; done
	new_array md0 "$T/rs"/vd?
	log_mark
	put md0/md/array_state active
	log_has "md/raid10:md0: not clean -- starting background reconstruction"
	wait_log "md: md0: resync done."
	wait_idle md0
	log_has "md: resync of RAID array md0"
	expect_eq "$(attr md0/md/resync_start)" none "$fx: resync_start after the resync"
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after the resync"
	expect_eq "$(sha "$MNT/md0/data")" "$(summary "$fx" md0_sha256)" "$fx: md0 sha256 after the resync"
	put md0/md/array_state clear
done

for fx in $LAYOUTS; do
	log "$fx: recovery onto a spare, checked by real md"
	rm -rf "${T:?}/rec"
	unpack "$fx" "$T/rec"
	new_array md0 "$T/rec"/vd?
	put md0/md/array_state active
	put md0/md/dev-vdb/state faulty
	wait_for md0/md/dev-vdb/slot none
	put md0/md/dev-vdb/state remove
	# The data changes while degraded: the spare must get it.
	head -c $((512 * 1024)) /dev/urandom >"$T/chunkdata"
	dd if="$T/chunkdata" of="$MNT/md0/data" bs=64k seek=3 conv=notrunc oflag=direct status=none
	rm -f "$T/rec/vdb"
	truncate -s 16M "$T/rec/vdb"
	log_mark
	put md0/md/new_dev "$T/rec/vdb"
	wait_log "md: md0: recovery done."
	wait_idle md0
	log_has "md: recovery of RAID array md0"
	n=$(ls "$T/rec" | wc -l)
	expect_eq "$(attr md0/md/degraded)" 0 "$fx: degraded after recovery"
	expect_eq "$(attr md0/md/dev-vdb/state)" in_sync "$fx: vdb after recovery"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "$fx: mismatch_cnt after recovery"
	cmp <(dd if="$MNT/md0/data" bs=64k skip=3 count=8 status=none) "$T/chunkdata" ||
		fail "$fx: data written while degraded"
	oracle_same "recovered-$fx" "$T/rec"/vd?
	expect_eq "$(sed -n 's/^assembled_mdstat: //p' "$T/orc-recovered-$fx/summary.txt" | grep -o '\[[0-9]*/[0-9]*\]')" "[$n/$n]" "$fx: real md's members"
done

log "layouts md refuses: real md's errnos and words (expected/raid10_refusals.txt)"
# The three arrays of oracle/raid10_refusals.sh: 5 near copies over 4
# members, a chunk that is no power of two, an unknown far-set scheme.
for c in a b c; do
	rm -rf "${T:?}/ref$c"
	unpack raid10-n2-bitmap "$T/ref$c"
done
for d in "$T"/refa/vd?; do $SBPATCH "$d" 8 layout=$((0x105)); done
for d in "$T"/refb/vd?; do $SBPATCH "$d" 8 chunksize=96; done
for d in "$T"/refc/vd?; do $SBPATCH "$d" 8 layout=$((3 << 17 | 0x102)); done
sha256sum "$T"/ref?/vd? >"$T/refusals.sha"
log_mark
{
	for c in a b c; do
		case $c in a) name=md1 ;; b) name=md2 ;; c) name=md3 ;; esac
		new_array $name "$T/ref$c"/vd?
		if r=$( (printf 'active\n' >"$MNT/$name/md/array_state") 2>&1); then
			echo "$name: ok"
		else
			echo "$name: ${r##*: }"
		fi
		echo "$name: $(attr $name/md/array_state)"
		put $name/md/array_state clear
	done
	log_new | sed 's/^\[[^]]*\] //' | grep -E "md/raid10|pers->run|md: "
} >"$T/refusals.txt"
diff -u "$(dirname "$0")/expected/raid10_refusals.txt" "$T/refusals.txt" || fail "refusals differ from real md's"
# Nothing was written.
sha256sum "$T"/ref?/vd? | diff - "$T/refusals.sha" || fail "a refused array's members changed"

log "failures: the kernel's steps (expected/raid10.txt, from probe_raid10.sh)"
M_TMP=$T/examine
letter=0
# Each scenario's images get the names real md gives them in the oracle,
# where every image of the run is one more virtio disk: vda, vdb, ...
m_bind() {
	local name=$1 fx=$2 img d
	M_NAME=$name
	rm -rf "${T:?}/unpack"
	unpack "$fx" "$T/unpack"
	put new_array "$name"
	S=$MNT/$name/md
	DATA=$MNT/$name/data
	put "$name/md/metadata_version" 1.2
	DEVS=
	for img in "$T"/unpack/vd?; do
		d=vd$(printf "\\x$(printf %x $((97 + letter)))")
		letter=$((letter + 1))
		mv "$img" "$T/$d"
		put "$name/md/new_dev" "$T/$d"
		DEVS="$DEVS $d"
	done
	set -- $DEVS
	D1=$1 D2=$2 D3=${3:-}
}
m_examine() { mdadm --examine "$T/$1"; }
m_mdstat() { mdstat_line "$M_NAME"; }
(set +e +o pipefail; probe_raid10) >"$T/ours.txt" 2>&1 || true
diff -u "$(dirname "$0")/expected/raid10.txt" "$T/ours.txt" || fail "raid10 failures differ from the kernel's"

stop_daemon
final_checks
log "raid10: fixtures' data, degraded assembly, refusals, writes, check, repair, resync and recovery checked by real md, failures"
