#!/bin/bash
# Writes md judges through the personality of a running array, against
# real md's answers (expected/geometry.txt, from probe_geometry.sh run by
# oracle/geometry.sh): the current layout, chunk and member count written
# back (nothing to do, but a far RAID10 refuses any), layouts and chunks
# md refuses, consistency_policy words on RAID5/6 and RAID10, the raid456
# files' bounds (stripe_size read-only, stripe_cache_size taken as an
# int), and the names new_array takes (md007 is md7; md+7 is none).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_member.sh"
. "$(dirname "$0")/probe_geometry.sh"

start_daemon
NEW_ARRAY=$MNT/new_array
ARRAYS=$MNT
letter=0
# The images get the names real md gives them in the oracle, where every
# image of the run is one more virtio disk: vda, vdb, ...
m_bind() {
	local name=$1 fx=$2 img d
	rm -rf "${T:?}/unpack"
	unpack "$fx" "$T/unpack"
	put new_array "$name"
	S=$MNT/$name/md
	put "$name/md/metadata_version" 1.2
	for img in "$T"/unpack/vd?; do
		d=vd$(printf "\\x$(printf %x $((97 + letter)))")
		letter=$((letter + 1))
		mv "$img" "$T/$d"
		put "$name/md/new_dev" "$T/$d"
	done
}
(set +e +o pipefail; probe_geometry) >"$T/ours.txt" 2>&1 || true
diff -u "$(dirname "$0")/expected/geometry.txt" "$T/ours.txt" || fail "the answers differ from real md's"

stop_daemon
log "geometry: running arrays' geometry and policy writes, raid456 bounds and new_array names as real md answers them"
