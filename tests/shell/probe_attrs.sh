# The bad-input matrix, as plain POSIX sh so that the very same cases run
# against mdfuse (bash, tests/shell/bad_input.sh) and against real md in the
# oracle's guest (busybox ash, tests/shell/oracle/bad_input.sh).  Sourced;
# expects:
#   S           the array's md directory (MNT/md0/md or /sys/block/md0/md)
#   DEV         the member directory name to probe (dev-vda)
#   ROOT_FILES  "name=path ..." for the module-wide files (new_array,
#               speed_limit_min, speed_limit_max)
#   SCRATCH     a writable directory for temporary files
# and prints one line per write: "FILE CASE: ok|<strerror text>", plus
# " -> VALUE" when the file read back differently afterwards (the value is
# then written back, and the result of that is printed too if it failed).

# The values written, as printf formats (octal escapes only: both shells'
# printf builtins know them).
probe_cases() {
	cat <<'EOF'
garbage	garbage
empty	
newline	\n
two_newlines	\n\n
minus_one	-1
minus_huge	-99999999999999999999
huge	99999999999999999999
u64_overflow	18446744073709551616
u32_overflow	4294967296
int_overflow	2147483648
out_of_range	1000000
zero	0
leading_space	 1
trailing_space	1 
space_word	 none
hex	0x10
octal	010
fraction	1.5
binary	\377\000\001
utf8_junk	\303\251
EOF
}

# probe_err: the strerror text at the end of a shell's error message.
probe_err() { grep -v -e records -e copied | sed -n '$s/.*: //p' || :; }

# probe_read FILE: the value, newlines shown as \n.
probe_read() { { cat "$1" 2>/dev/null || :; } | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'; }

# probe_write FILE FORMAT: write printf FORMAT in one write (cat: busybox's
# printf builtin fails silently); print the result.
probe_write() {
	printf "x$2" | tail -c +2 >"$SCRATCH/value"
	if _pe=$(cat "$SCRATCH/value" 2>&1 >"$1"); then
		echo ok
	else
		echo "$_pe" | probe_err
	fi
}

# probe_file LABEL FILE: every case into FILE.
probe_file() {
	_label=$1 _f=$2
	[ -e "$_f" ] || { echo "$_label: (missing)"; return; }
	probe_cases >"$SCRATCH/cases"
	while IFS='	' read -r _case _fmt; do
		_before=$(probe_read "$_f")
		_r=$(probe_write "$_f" "$_fmt")
		_after=$(probe_read "$_f")
		if [ "$_after" = "$_before" ]; then
			echo "$_label $_case: $_r"
		else
			echo "$_label $_case: $_r -> $_after"
			_rr=$(probe_write "$_f" "$_before\n")
			[ "$_rr" = ok ] || echo "$_label $_case: restoring '$_before': $_rr"
		fi
	done <"$SCRATCH/cases"
	# One write larger than a page: sysfs refuses it whole.
	if [ ! -f "$SCRATCH/big" ]; then
		head -c 5000 /dev/zero | tr '\0' '7' >"$SCRATCH/big"
	fi
	_before=$(probe_read "$_f")
	if _pe=$(dd if="$SCRATCH/big" of="$_f" bs=8192 count=1 2>&1); then _r=ok; else _r=$(echo "$_pe" | probe_err); fi
	_after=$(probe_read "$_f")
	if [ "$_after" = "$_before" ]; then echo "$_label big: $_r"; else echo "$_label big: $_r -> $_after"; fi
}

# The writable files of an array, in md.c's order.
PROBE_MD_FILES="level layout raid_disks chunk_size component_size resync_start
metadata_version new_dev safe_mode_delay array_state reshape_position
reshape_direction array_size max_read_errors consistency_policy fail_last_dev
serialize_policy sync_action sync_speed_min sync_speed_max sync_force_parallel
sync_min sync_max suspend_lo suspend_hi bitmap_set_bits"
PROBE_BITMAP_FILES="location space time_base backlog chunksize metadata can_clear
max_backlog_used"
PROBE_DEV_FILES="state errors slot offset new_offset size recovery_start
bad_blocks unacknowledged_bad_blocks ppl_sector ppl_size"

probe_all() {
	for _p in $ROOT_FILES; do probe_file "${_p%%=*}" "${_p#*=}"; done
	for _a in $PROBE_MD_FILES; do probe_file "$_a" "$S/$_a"; done
	for _a in $PROBE_BITMAP_FILES; do probe_file "bitmap/$_a" "$S/bitmap/$_a"; done
	for _a in $PROBE_DEV_FILES; do probe_file "$DEV/$_a" "$S/$DEV/$_a"; done
}
