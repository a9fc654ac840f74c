# The array_state matrix: every word written in every state, plain POSIX
# sh so that the same cases run against mdfuse (tests/shell/array_state.sh)
# and real md (tests/shell/oracle/array_state.sh).  Sourced; the driver
# defines:
#   st_bind NAME    create array NAME and bind both members (not run);
#                   sets S to its md directory and DATA to its data device
#   st_events       print the members' "Events/State" as the superblocks
#                   on disk say
#   st_resync       print the first member's on-disk resync_offset
# Prints one line per write: "FROM WORD: ok|<strerror> -> NEWSTATE", with
# the on-disk events after the dust settled.

ST_WORDS="clear inactive suspended readonly read-auto clean active write-pending
active-idle broken"
st_n=0

st_err() { sed -n '$s/.*: //p' || :; }

# st_put WORD: write WORD to array_state, print ok or the error text.
st_put() {
	if _se=$(echo "$1" 2>&1 >"$S/array_state"); then echo ok; else echo "$_se" | st_err; fi
}

# st_enter STATE [open]: a fresh array in STATE (clear, inactive, readonly,
# read-auto, clean, active), its data device held open on fd 3 if "open".
st_enter() {
	st_n=$((st_n + 1))
	ST_NAME=md$st_n
	if [ "$1" = clear ]; then
		st_new "$ST_NAME"
	else
		st_bind "$ST_NAME"
	fi
	case $1 in
	readonly | read-auto) echo "$1" >"$S/array_state" ;;
	clean) echo active >"$S/array_state" ;;
	active)
		echo active >"$S/array_state"
		echo 0 >"$S/safe_mode_delay"
		dd if=/dev/zero of="$DATA" bs=4096 count=1 seek=64 conv=notrunc 2>/dev/null
		;;
	esac
	[ "${2:-}" = open ] && exec 3<>"$DATA"
	sleep 0.3
}

st_leave() {
	exec 3>&- 2>/dev/null
	[ -e "$S/array_state" ] || return 0
	# Writing "clean" leaves the clean superblock to md's thread, which
	# nothing wakes; a stop wakes it and races it for the lock (in Linux
	# 6.1 either may win: events - 1, or + 1 forced by the stop).  Wake
	# it first, so that the stop finds nothing pending.
	if [ "$(cat "$S/array_state")" = clean ]; then
		echo active >"$S/array_state"
		sleep 0.3
	fi
	echo clear >"$S/array_state" 2>/dev/null
	sleep 0.2
}

# st_try STATE WORD [open]
st_try() {
	st_enter "$1" "${3:-}"
	_was=$(cat "$S/array_state")
	_r=$(st_put "$2")
	exec 3>&- 2>/dev/null
	sleep 0.3
	if [ -e "$S/array_state" ]; then _now=$(cat "$S/array_state"); else _now=gone; fi
	echo "$1${3:+ (open)} [$_was] $2: $_r -> $_now | $(st_events)"
	st_leave
}

probe_states() {
	for _from in clear inactive readonly read-auto clean active; do
		for _w in $ST_WORDS; do st_try $_from $_w; done
	done
	for _from in readonly read-auto clean active; do
		for _w in clear inactive readonly read-auto clean active; do st_try $_from $_w open; done
	done
}

# st_show LABEL: array_state, then what the superblocks say.
st_show() { echo "$1: $(cat "$S/array_state") | $(st_events)| resync_offset $(st_resync)"; }

# st_write: 4 KiB through the array, flushed.
st_write() { dd if=/dev/zero of="$DATA" bs=4096 count=1 seek=128 conv=notrunc,fsync 2>/dev/null; }

# The clean/dirty cycle around writes: safe mode marks the array clean a
# safe_mode_delay after the last write (the superblocks then say clean,
# resync_offset all ones); with a delay of 0 it stays dirty (resync_offset
# 0) until a delay is set again; read-auto turns read-write on the first
# write.
probe_safemode() {
	st_n=$((st_n + 1))
	st_bind md$st_n
	echo active >"$S/array_state"
	sleep 0.3
	st_show "started"
	echo 1 >"$S/safe_mode_delay"
	st_write
	st_show "delay 1, written"
	sleep 2
	st_show "delay 1, 2 s later"
	st_write
	st_write
	sleep 2
	st_show "delay 1, two writes, 2 s later"
	echo 0 >"$S/safe_mode_delay"
	st_write
	sleep 1.5
	st_show "delay 0, written, 1.5 s later"
	echo 0.5 >"$S/safe_mode_delay"
	sleep 1
	st_show "delay 0.5 set, 1 s later"
	echo readonly >"$S/array_state"
	echo read-auto >"$S/array_state"
	st_show "read-auto"
	echo 1 >"$S/safe_mode_delay"
	st_write
	st_show "read-auto, written"
	sleep 2
	st_show "read-auto, written, 2 s later"
	echo clear >"$S/array_state"
	sleep 0.2
	echo "cleared: $(st_events)"
}
