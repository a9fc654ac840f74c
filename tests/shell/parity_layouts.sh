#!/bin/bash
# The raid6 layouts no fixture has, judged by real md: raid6-bitmap's
# members given another layout in their superblocks, a repair through
# mdfuse rewriting every stripe's P and Q for it, then seeded writes.
# mdfuse reads back what was written, also with any two members left out
# (Q in that layout's syndrome order), and real md assembles the images
# with the same data and a check that finds no mismatch: md's placement
# of data, P and Q, and its order of the blocks in Q, are mdfuse's.  The
# three DDF layouts (their Q takes every member in order, P and Q as
# zeroes) and a -6 layout (a raid5 layout with Q on the last member).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"
SBPATCH=$(dirname "$0")/sbpatch.py

start_daemon
n=0
for layout in 8 9 10 18; do
	imgs=$T/l$layout
	unpack raid6-bitmap "$imgs"
	for img in "$imgs"/vd?; do python3 "$SBPATCH" "$img" 8 layout=$layout || fail "sbpatch"; done
	new_array md0 "$imgs"/vd?
	log_mark
	put md0/md/array_state active
	log_has "md/raid:md0: raid level 6 active with 4 out of 4 devices, algorithm $layout"
	expect_eq "$(attr md0/md/layout)" "$layout" "layout"
	wait_idle md0
	put md0/md/sync_action repair
	wait_idle md0
	want=$(python3 "$(dirname "$0")/parity_io.py" "$MNT/md0/data" "$layout" 100) || fail "layout $layout: writes failed"
	expect_eq "$(sha "$MNT/md0/data")" "$want" "layout $layout: md0/data"
	put md0/md/sync_action check
	wait_idle md0
	expect_eq "$(attr md0/md/mismatch_cnt)" 0 "layout $layout: mismatch_cnt"
	put md0/md/array_state inactive
	put md0/md/array_state clear
	for pair in "vda vdb" "vda vdd" "vdb vdc" "vdc vdd"; do
		set -- $pair
		new_array md0 $(ls "$imgs"/vd? | grep -v -e "/$1\$" -e "/$2\$")
		put md0/md/array_state readonly
		expect_eq "$(sha "$MNT/md0/data")" "$want" "layout $layout: md0/data without $pair"
		put md0/md/array_state clear
	done
	oracle_inspect "$T/orc-$layout" "$imgs"/vd?
	s=$T/orc-$layout/summary.txt
	expect_eq "$(sed -n 's/^assembled: //p' "$s")" yes "layout $layout: real md assembles it"
	grep -q "algorithm $layout \[4/4\]" "$s" || fail "layout $layout: real md's mdstat: $(grep assembled_mdstat "$s")"
	expect_eq "$(sed -n 's/^md0_sha256: //p' "$s")" "$want" "layout $layout: real md's sha256"
	expect_eq "$(sed -n 's/^mismatch_cnt: //p' "$s")" 0 "layout $layout: real md's mismatch_cnt"
	rm -rf "${imgs:?}" "$T/orc-$layout"
	n=$((n + 1))
done
log "$n raid6 layouts written by mdfuse read and check clean in real md"
