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
# printf builtins know them), or "@N" for N bytes of "7" (a page, and one
# byte more).  Signs, overflows at 2^31, 2^32, 2^63 and 2^64, numbers in
# other bases, words md knows in the wrong files, a word followed by junk,
# a name too long for new_array, binary bytes.  None of them is a value
# that changes what the rest of the matrix sees for good (no "faulty",
# "none", "idle", "check", major:minor, array_state words).
probe_cases() {
	cat <<'EOF'
garbage	garbage
empty	
newline	\n
two_newlines	\n\n
spaces	   
plus_one	+1
minus_one	-1
minus_zero	-0
minus_huge	-99999999999999999999
huge	99999999999999999999
u64_overflow	18446744073709551616
u64_max	18446744073709551615
i64_overflow	9223372036854775808
u32_overflow	4294967296
int_overflow	2147483648
out_of_range	1000000
zero	0
leading_space	 1
trailing_space	1 
crlf	1\r\n
space_word	 none
hex	0x10
octal	010
fraction	1.5
max	max
false	false
word_junk	faulty junk
long_name	md_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
binary	\377\000\001
utf8_junk	\303\251
page	@4096
over_page	@4097
EOF
}

# "LABEL CASE" pairs not written (comma-separated), each with its reason:
# - u64_max into bitmap_set_bits: md_bitmap_dirty_bits loops from chunk
#   ULONG_MAX to ULONG_MAX by "chunk <= e; chunk++", which never ends:
#   the kernel locks up.
PROBE_SKIP="bitmap_set_bits u64_max"

# probe_prepare: one file per case, $SCRATCH/case.NAME, with its bytes.
probe_prepare() {
	[ -f "$SCRATCH/cases" ] && return
	head -c 4097 /dev/zero | tr '\0' '7' >"$SCRATCH/sevens"
	probe_cases >"$SCRATCH/cases.tmp"
	while IFS='	' read -r _case _fmt; do
		case $_fmt in
		@*) head -c "${_fmt#@}" "$SCRATCH/sevens" >"$SCRATCH/case.$_case" ;;
		*) printf "x$_fmt" | tail -c +2 >"$SCRATCH/case.$_case" ;;
		esac
	done <"$SCRATCH/cases.tmp"
	mv "$SCRATCH/cases.tmp" "$SCRATCH/cases"
}

# probe_err: the strerror text at the end of a shell's error message.
probe_err() { grep -v -e records -e copied | sed -n '$s/.*: //p' || :; }

# probe_read FILE: the value into _v, without its last newline, newlines
# and carriage returns inside shown as \n and \r.
probe_read() {
	_v=$(awk '{ gsub(/\r/, "\\r") } NR > 1 { printf "\\n" } { printf "%s", $0 }' "$1" 2>/dev/null || :)
}

# probe_put FILE CASEFILE: the bytes of CASEFILE in one write(2) (dd: the
# shells' cat may cut a page and more in two); the result into _r.
probe_put() {
	if _pe=$(dd if="$2" of="$1" bs=8192 count=1 2>&1); then
		_r=ok
	else
		_r=$(echo "$_pe" | probe_err)
	fi
}

# probe_write FILE FORMAT: write printf FORMAT in one write; print the
# result.
probe_write() {
	printf "x$2" | tail -c +2 >"$SCRATCH/value"
	probe_put "$1" "$SCRATCH/value"
	echo "$_r"
}

# probe_file LABEL FILE: every case into FILE.
probe_file() {
	_label=$1 _f=$2
	[ -e "$_f" ] || { echo "$_label: (missing)"; return; }
	probe_prepare
	while IFS='	' read -r _case _fmt; do
		case " $PROBE_SKIP," in *" $_label $_case,"*)
			echo "$_label $_case: skipped"
			continue
			;;
		esac
		probe_read "$_f"
		_before=$_v
		probe_put "$_f" "$SCRATCH/case.$_case"
		probe_read "$_f"
		if [ "$_v" = "$_before" ]; then
			echo "$_label $_case: $_r"
		else
			echo "$_label $_case: $_r -> $_v"
			_rr=$(probe_write "$_f" "$_before\n")
			[ "$_rr" = ok ] || echo "$_label $_case: restoring '$_before': $_rr"
		fi
	done <"$SCRATCH/cases"
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
