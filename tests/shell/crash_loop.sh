#!/bin/bash
# Crash consistency, in a loop: a writer issues O_DIRECT writes and
# batches of buffered writes closed by fdatasync through md0/data and
# logs, outside the array, what was acknowledged; the daemon is killed
# with -9 at a random moment; remounted and reassembled by echo, the array
# must come up with every member in sync, resync_start the freshest
# member's resync_offset and the resync resuming there (no bitmap), then
# after the resync every acknowledged write reads back (the last one to
# each block wins; a write never acknowledged may or may not be there), a
# check finds no mismatch and the members' data areas are identical.  Some
# runs are killed during the resync that follows a crash (the writer
# going, or not yet, so that the array is dirty or clean with a
# checkpoint); every tenth run first lets real md assemble the crashed
# images (the oracle, on copies): it must find the same data and no
# mismatch after its own resync.  At the end, SIGTERM stops the daemon by
# itself and leaves the members clean.
#
# Each level `mdfuse create` accepts runs, with and without a bitmap.
#   MDFUSE_CRASH_RUNS=N   runs per level (default 20; 6 for RAID4/5/6,
#                         whose runs cost the most, unless N is given)
#   MDFUSE_CRASH_SEED=S   replay the choices of an earlier run (printed)
#   MDFUSE_CRASH_LEVELS="raid5 raid6"  only these levels
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/sync_lib.sh"

RUNS=${MDFUSE_CRASH_RUNS:-20}
SEED=${MDFUSE_CRASH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
IO=$(cd "$(dirname "$0")" && pwd)/crash_io.py
RANDOM=$SEED
log "MDFUSE_CRASH_SEED=$SEED MDFUSE_CRASH_RUNS=$RUNS (set both to replay these choices)"

# Members per level: the fewest mdadm creates it with (no run fails one).
declare -A NDEV=([linear]=2 [raid0]=2 [raid1]=2 [raid4]=3 [raid5]=3 [raid6]=4 [raid10]=2)
# The levels run: those mdfuse creates and has a personality for (mdstat's
# Personalities line).
start_daemon
PERSONALITIES=$(sed -n 's/^Personalities : //p' "$MNT/mdstat")
stop_daemon
LEVELS=()
mkdir -p "$T/probe"
for l in linear raid0 raid1 raid4 raid5 raid6 raid10; do
	rm -f "$T"/probe/*
	args=()
	for i in $(seq "${NDEV[$l]}"); do args+=("$T/probe/p$i"); done
	case " $PERSONALITIES " in *" [$l] "*) ;; *) continue ;; esac
	case " ${MDFUSE_CRASH_LEVELS:-$l} " in *" $l "*) ;; *) continue ;; esac
	if "$MDFUSE" create -l "$l" -n "${NDEV[$l]}" --image-size=8M "${args[@]}" >/dev/null 2>&1; then
		LEVELS+=("$l")
	fi
done
rm -rf "$T/probe"
[ ${#LEVELS[@]} -gt 0 ] || fail "mdfuse create accepts no level"
log "levels: ${LEVELS[*]}"

# rnd N: a number below N from the seeded sequence, in $R (no subshell:
# a subshell would not advance this shell's sequence).
rnd() { R=$((RANDOM % $1)); }

# The current configuration.
LEVEL= BITMAP= CFG= CSEED= BLOCKS= REDUNDANT= CP= ASSEMBLED=
IMGS=()
LOGS=() # writer logs since the last verification

# Totals over the whole script.
N_RUNS=0 N_RESYNC_KILLS=0 N_RESUMED=0 N_ORACLE=0 N_ACKED=0 N_UNACKED=0 N_ODD=0

# sb_summary IMG...: the freshest member's resync_offset ("none" for
# MaxSector) -- the first with the most events, in the order given, as
# analyze_sbs picks it -- then each member's name:events:state:offset.
sb_summary() {
	"$MDFUSE" examine --json "$@" | python3 -c '
import json, sys
v = json.load(sys.stdin)
best = max(range(len(v)), key=lambda i: (v[i]["events"], -i))
off = lambda d: "none" if d["resync_offset"] is None else d["resync_offset"]
print(off(v[best]), " ".join("%s:%s:%s:%s" % (d["device"].rsplit("/", 1)[-1], d["events"], d["state"], off(d)) for d in v))'
}

# reassemble: mount, bind the members in a random order, and start the
# array read-auto; resync_start must be the freshest member's
# resync_offset (in $CP) and every member in sync.
reassemble() {
	local order=("${IMGS[@]}") i j t desc
	for ((i = ${#order[@]} - 1; i > 0; i--)); do
		rnd $((i + 1))
		j=$R
		t=${order[$i]} order[$i]=${order[$j]} order[$j]=$t
	done
	read -r CP desc < <(sb_summary "${order[@]}")
	start_daemon
	new_array md0 "${order[@]}"
	put md0/md/array_state read-auto
	expect_eq "$(attr md0/md/resync_start)" "$CP" "resync_start after assembly (members: $desc)"
	for i in "${IMGS[@]}"; do
		expect_eq "$(attr "md0/md/dev-$(basename "$i")/state")" in_sync "$(basename "$i") state (members: $desc)"
	done
	REDUNDANT=
	if [ -e "$MNT/md0/md/sync_action" ]; then
		REDUNDANT=1
		expect_eq "$(attr md0/md/degraded)" 0 "degraded after assembly (members: $desc)"
	fi
	BLOCKS=$(($(attr md0/size) / 8))
	ASSEMBLED="members $desc"
}

# activate MODE: run the array (MODE normal, or resync-kill: keep the
# resync slow enough to be killed during it).  Without a bitmap a resync
# must resume at $CP (md_do_sync starts at recovery_cp); with one it
# starts at 0 and skips the clean chunks.
activate() {
	local mode=$1 v resume=
	if [ -n "$REDUNDANT" ] && [ "$BITMAP" == none ] && [ "$CP" != none ] && [ "$CP" -gt 0 ]; then
		resume=1
	fi
	if [ "$mode" == resync-kill ] && [ -n "$REDUNDANT" ]; then
		# A full resync then takes about 8 s, a checkpoint every 0.5 s.
		put md0/md/sync_speed_max 4000
	elif [ -n "$resume" ]; then
		put md0/md/sync_speed_max 1000
	fi
	put md0/md/array_state active
	if [ -n "$resume" ]; then
		local total=$(($(attr md0/md/component_size) * 2)) deadline=$((SECONDS + 30))
		if [ $((total - CP)) -lt 4096 ]; then
			log "  resync_offset $CP is too close to the end ($total) to see where the resync starts"
		else
			# sync_completed reads "0 / TOTAL" until the worker has set
			# its start (wait_resumed in sync_lib.sh says more).
			while :; do
				v=$(attr md0/md/sync_completed)
				case "$v" in *" / "*) [ "${v% / *}" == 0 ] || break ;; esac
				[ $SECONDS -lt $deadline ] || fail "no resync resumed (sync_completed '$v', $ASSEMBLED)"
				sleep 0.02
			done
			expect_eq "${v% / *}" "$CP" "where the resync resumed ($ASSEMBLED)"
			N_RESUMED=$((N_RESUMED + 1))
		fi
	fi
	[ "$mode" == resync-kill ] || [ -z "$REDUNDANT" ] || put md0/md/sync_speed_max system
}

# mirrors_identical: every member's data area (from its data_offset, for
# used_dev_size sectors) holds the same bytes.
mirrors_identical() {
	local m off size ref= sum
	while read -r m off size; do
		sum=$(dd if="$m" bs=512 skip="$off" count="$size" status=none | sha256sum | cut -d' ' -f1)
		[ -n "$ref" ] || ref=$sum
		[ "$sum" == "$ref" ] || fail "$(basename "$m"): data area differs from $(basename "${IMGS[0]}")'s after resync and check"
	done < <("$MDFUSE" examine --json "${IMGS[@]}" |
		python3 -c 'import json, sys
for d in json.load(sys.stdin): print(d["device"], d["data_offset"], d["used_dev_size"])')
}

# verify_data DEVICE [--commit]: every acknowledged write since the last
# verification reads back from DEVICE.
verify_data() {
	local dev=$1 out
	shift
	out=$(python3 "$IO" verify "$dev" "${LOGS[@]}" --state "$CFG/state" --seed "$CSEED" \
		--blocks "$BLOCKS" "$@" 2>&1) || {
		echo "$out" >&2
		fail "acknowledged writes lost or garbled ($ASSEMBLED); logs: ${LOGS[*]}"
	}
	echo "$out"
}

# settle: let the resync end, then check everything the crash could have
# broken, and take the array's contents as the new reference.
settle() {
	local out
	if [ -n "$REDUNDANT" ]; then
		# Not wait_idle alone: until md's thread has picked up the resync,
		# sync_action reads idle (as in Linux: only NEEDED is set).
		wait_for md0/md/resync_start none 180
		wait_idle md0 180
	fi
	out=$(verify_data "$MNT/md0/data" --commit)
	log "  $out, all there"
	N_ACKED=$((N_ACKED + $(sed 's/acked=\([0-9]*\).*/\1/' <<<"$out")))
	N_UNACKED=$((N_UNACKED + $(sed 's/.*unacked=\([0-9]*\).*/\1/' <<<"$out")))
	rm -f "${LOGS[@]}"
	LOGS=()
	if [ -n "$REDUNDANT" ]; then
		check_clean md0 "after the crash"
	fi
	[ "$LEVEL" != raid1 ] || mirrors_identical
}

# crash RUN MODE: write, and kill -9 the daemon at a random moment.
crash() {
	local r=$1 mode=$2 ms delay=0 wlog=$CFG/log.$1 sc= wpid deadline
	rnd 1450
	ms=$((50 + R))
	if [ "$mode" == resync-kill ]; then
		# Often the kill comes before the first write: the array is then
		# clean and its checkpoint is on disk as resync_offset.
		rnd 20
		delay=$((R / 10)).$((R % 10))
	fi
	rnd 32768
	local rng=$((R * 32768 + RANDOM))
	LOGS+=("$wlog")
	python3 "$IO" write "$MNT/md0/data" "$wlog" --seed "$CSEED" --rng "$rng" \
		--first-id $((r * 1000000 + 1)) --blocks "$BLOCKS" --delay "$delay" 2>>"$T/writer.err" &
	wpid=$!
	deadline=$((SECONDS + 20))
	until [ -s "$wlog" ]; do
		kill -0 "$wpid" 2>/dev/null || { cat "$T/writer.err" >&2; fail "writer did not start"; }
		[ $SECONDS -lt $deadline ] || fail "writer did not open md0/data"
		sleep 0.01
	done
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	[ -z "$REDUNDANT" ] || sc=$(attr md0/md/sync_completed)
	kill -0 "$wpid" 2>/dev/null || fail "the writer stopped before the kill: $(tail -n 1 "$wlog")"
	local killed=$EPOCHREALTIME
	kill9_daemon
	deadline=$((SECONDS + 30))
	while kill -0 "$wpid" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || fail "the writer hangs after the daemon was killed"
		sleep 0.05
	done
	wait "$wpid" || { cat "$T/writer.err" >&2; fail "writer failed"; }
	# The writer stops at the first error, which must be the kill's: a
	# call that failed before it is md0/data failing a healthy array.
	local e call issued failed
	read -r _ e call issued failed _ < <(tail -n 1 "$wlog")
	[ -n "$failed" ] || fail "the writer ended without an error: $(tail -n 1 "$wlog")"
	if awk -v f="$failed" -v k="$killed" 'BEGIN { exit !(f < k) }'; then
		tail -n 5 "$wlog" >&2
		fail "md0/data failed a $call with errno $e, $(awk -v f="$failed" -v k="$killed" \
			'BEGIN { printf "%.3f", k - f }') s before the daemon was killed: $(tail -n 1 "$wlog")"
	fi
	# ENOTCONN, or ECONNABORTED for a request the dead daemon held; any
	# other errno of a call the kill interrupted is the kernel's to give.
	case $e in
	107 | 103) ;;
	*)
		log "  the $call under way at the kill failed with errno $e"
		N_ODD=$((N_ODD + 1))
		;;
	esac
	local what="kill at $ms ms"
	if [ "$mode" == resync-kill ]; then
		case "$sc" in
		*" / "*)
			what+=" during the resync ($sc)"
			N_RESYNC_KILLS=$((N_RESYNC_KILLS + 1))
			;;
		*) what+=" (the resync had ended: $sc)" ;;
		esac
		[ "$delay" == 0.0 ] || what+=", writer from ${delay}s"
	fi
	log "  $what: $(grep -c '^A' "$wlog") writes acknowledged, $(($(grep -c '^W' "$wlog") - $(grep -c '^A' "$wlog"))) not"
}

# oracle: real md assembles copies of the crashed images, resyncs, checks.
oracle() {
	local o=$T/orc
	rm -rf "$o" "$o.md0"
	oracle_inspect "$o" --save-md "$o.md0" "${IMGS[@]}"
	expect_eq "$(summary_of "$o" assembled)" yes "oracle: assembled"
	local n=${#IMGS[@]} states
	# Every member in sync (levels without redundancy have no [n/n]).
	states=$(summary_of "$o" assembled_dev_state)
	[ "$(echo "$states" | grep -o '=in_sync' | wc -l)" == "$n" ] ||
		fail "oracle: not every member assembled in sync: $states; $(summary_of "$o" assembled_mdstat)"
	expect_eq "$(summary_of "$o" assembled_resync_start)" "$CP" "oracle: resync_start (the freshest member's resync_offset)"
	if [ "$(summary_of "$o" check_ran)" != no ]; then
		expect_eq "$(summary_of "$o" mismatch_cnt)" 0 "oracle: mismatch_cnt after its resync"
	fi
	[ -s "$o.md0" ] || fail "oracle: md0 not saved"
	log "  real md: assembled, resynced, $(verify_data "$o.md0"), mismatch_cnt 0"
	N_ORACLE=$((N_ORACLE + 1))
	rm -rf "$o" "$o.md0" "$o.log"
}
summary_of() { sed -n "s/^$2: //p" "$1/summary.txt"; }

# run_config LEVEL BITMAP FIRST LAST: runs FIRST..LAST on a new array.
run_config() {
	LEVEL=$1 BITMAP=$2
	local first=$3 last=$4 r mode n=${NDEV[$1]} i opts=(--bitmap="$2")
	CFG=$T/$LEVEL-$BITMAP
	mkdir -p "$CFG"
	IMGS=()
	for i in $(seq 0 $((n - 1))); do IMGS+=("$CFG/m$i"); done
	[ "$BITMAP" == none ] || opts+=(--bitmap-chunk=1M)
	# A new RAID4/5 resyncs its parity (--force) rather than rebuild its
	# last member, which joins as a spare: every member is in sync at once,
	# and the first run is killed during that resync, as for the others.
	case $LEVEL in raid4 | raid5) opts+=(--force) ;; esac
	"$MDFUSE" create -l "$LEVEL" -n "$n" "${opts[@]}" --image-size=32M "${IMGS[@]}" >"$CFG/create.log" 2>&1 ||
		{ cat "$CFG/create.log" >&2; fail "create $LEVEL --bitmap=$BITMAP"; }
	rnd 32768
	CSEED=$((R * 32768 + RANDOM))
	LOGS=()
	rm -f "$CFG/state"
	reassemble
	# The first run is killed during the initial resync.
	mode=resync-kill
	activate "$mode"
	for ((r = first; r <= last; r++)); do
		log "run $r ($LEVEL, bitmap $BITMAP, seed $SEED): $mode, $ASSEMBLED, resync_start $CP"
		[ "$mode" == resync-kill ] || settle
		crash "$r" "$mode"
		N_RUNS=$((N_RUNS + 1))
		if [ $((r % 10)) == 0 ]; then
			read -r CP _ < <(sb_summary "${IMGS[@]}")
			oracle
		fi
		reassemble
		# Every third run, when there is a resync to run, is killed during it.
		mode=normal
		if [ -n "$REDUNDANT" ] && [ "$CP" != none ] && [ $((r % 3)) == 1 ]; then
			mode=resync-kill
		fi
		activate "$mode"
	done
	log "after run $last ($LEVEL, bitmap $BITMAP): $ASSEMBLED, resync_start $CP"
	settle
	term_daemon
	# Stopped by SIGTERM: every member clean, no resync pending.
	read -r CP desc < <(sb_summary "${IMGS[@]}")
	expect_eq "$CP" none "resync_offset after SIGTERM ($desc)"
	for i in $desc; do
		[[ $i == *:clean:none ]] || fail "a member not clean after SIGTERM: $desc"
	done
	[ "$(echo "$desc" | tr ' ' '\n' | cut -d: -f2 | sort -u | wc -l)" == 1 ] || fail "events differ after SIGTERM: $desc"
	rm -rf "$CFG"
}

START=$SECONDS
for level in "${LEVELS[@]}"; do
	runs=$RUNS
	case "$level:${MDFUSE_CRASH_RUNS:-}" in raid4: | raid5: | raid6:) runs=6 ;; esac
	# Half the runs without a bitmap (resync from the checkpoint), half
	# with one (resync of the dirty chunks), when the level takes one.
	half=$(((runs + 1) / 2))
	bitmap=none
	mkdir -p "$T/probe"
	if "$MDFUSE" create -l "$level" -n "${NDEV[$level]}" --bitmap=internal --image-size=8M \
		$(seq -f "$T/probe/p%g" "${NDEV[$level]}") >/dev/null 2>&1; then
		bitmap=internal
	else
		half=$runs
	fi
	rm -rf "$T/probe"
	run_config "$level" none 1 "$half"
	[ "$runs" -le "$half" ] || run_config "$level" "$bitmap" $((half + 1)) "$runs"
done
log "$N_RUNS runs in $((SECONDS - START)) s: $N_ACKED acknowledged writes (and $N_UNACKED in flight) all read back," \
	"$N_RESYNC_KILLS kills during a resync, $N_RESUMED resyncs resumed from a checkpoint, $N_ORACLE judged by real md," \
	"$N_ODD writer errors other than ENOTCONN/ECONNABORTED at a kill"
[ "$N_RESYNC_KILLS" -gt 0 ] || [ "$RUNS" -lt 6 ] || fail "no run was killed during a resync"
final_checks
log "ok"
