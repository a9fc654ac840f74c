# Stop and reassemble, as plain POSIX sh so that the same steps run
# against mdfuse (tests/shell/stop_reassemble.sh) and real md
# (tests/shell/oracle/stop_reassemble.sh).  Sourced; the driver defines:
#   sr_bind NAME META DEV...  create array NAME with metadata META and bind
#                             the members; sets S (md directory) and DATA
#   sr_events DEV...          "events/state ..." as the superblocks on disk
#                             say, one word per member
#   sr_bitmap DEV             the member's bitmap: "events/events cleared",
#                             or nothing without a bitmap
#   sr_hook STAGE LABEL       extra checks at each stage (may do nothing)
#   SR_SRC                    what to write (a file of at least 64 KiB)
# Prints "LABEL STAGE [array_state]: events/state ...".

sr_meta() {
	case $1 in
	*v1.0*) echo 1.0 ;;
	*v1.1*) echo 1.1 ;;
	*v0.90*) echo 0.90 ;;
	*) echo 1.2 ;;
	esac
}

# sr_wait WORD: until array_state reads WORD (at most 5 s).
sr_wait() {
	_i=0
	while [ "$(cat "$S/array_state")" != "$1" ] && [ $_i -lt 50 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
}

sr_show() { echo "$1 $2 [$(cat "$S/array_state" 2>/dev/null || echo gone)]: $3"; }

# sr_case LABEL NAME DEV...: assemble auto-read-only, go read-write
# (unless LABEL ends in "/direct": then the write itself does), write
# 64 KiB, let safe mode mark it clean, stop (inactive), run it again
# (active), stop it again and forget it (clear).
sr_case() {
	_l=$1 _n=$2
	shift 2
	sr_bind "$_n" "$(sr_meta "$_l")" "$@"
	echo read-auto >"$S/array_state"
	sr_show "$_l" assembled "$(sr_events "$@")"
	case $_l in
	*/direct) ;;
	*)
		echo active >"$S/array_state"
		sleep 0.5
		sr_show "$_l" active "$(sr_events "$@")"
		;;
	esac
	dd if="$SR_SRC" of="$DATA" bs=64k count=1 seek=16 conv=notrunc,fsync 2>/dev/null
	sr_wait clean
	sleep 0.3
	sr_show "$_l" written "$(sr_events "$@")"
	sr_hook written "$_l"
	echo inactive >"$S/array_state"
	sr_show "$_l" stopped "$(sr_events "$@")"
	sr_show "$_l" bitmap "$(sr_bitmap "$1")"
	sr_hook stopped "$_l"
	echo active >"$S/array_state"
	sleep 0.5
	sr_show "$_l" restarted "$(sr_events "$@")"
	sr_hook restarted "$_l"
	echo inactive >"$S/array_state"
	echo clear >"$S/array_state"
	sleep 0.2
	sr_show "$_l" cleared "$(sr_events "$@")"
}
