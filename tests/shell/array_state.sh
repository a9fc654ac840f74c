#!/bin/bash
# The array_state machine: every word written in every state (clear,
# inactive, readonly, read-auto, clean, active), also with the data file
# held open, and the state and on-disk events each leaves behind -- the
# same matrix (probe_states.sh) real md ran in oracle/array_state.sh,
# recorded in expected/array_state.txt.  Then the clean/dirty cycle around
# writes with safe_mode_delay, read-auto turning active on the first write,
# and the superblock's resync_offset on disk.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/probe_states.sh"

start_daemon
unpack raid1-v1.2-nobitmap "$T/img"

st_new() {
	put new_array "$1"
	S=$MNT/$1/md
	DATA=$MNT/$1/data
}
st_bind() {
	st_new "$1"
	put "$1/md/metadata_version" 1.2
	put "$1/md/new_dev" "$T/img/vda"
	put "$1/md/new_dev" "$T/img/vdb"
}
st_events() {
	for d in vda vdb; do
		printf '%s=%s/%s ' $d "$(mdadm --examine "$T/img/$d" | sed -n 's/ *Events : //p')" \
			"$(mdadm --examine "$T/img/$d" | sed -n 's/ *State : //p' | head -n 1)"
	done
}

st_resync() {
	dd if="$T/img/vda" bs=1 skip=$((4096 + 208)) count=8 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

log "every word in every state, and safe mode"
(set +e +o pipefail; probe_states; probe_safemode) >"$T/ours.txt" 2>&1 || true
diff -u "$(dirname "$0")/expected/array_state.txt" "$T/ours.txt" ||
	fail "the array_state matrix differs from the kernel's"
