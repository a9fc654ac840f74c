#!/bin/bash
# mdfuse assemble, as mdadm --assemble: with nothing mounted at the
# default tree (MDFUSE_TREE) the daemon is started there; --scan of a
# directory holding the members of four fixtures, a stale member and a
# stranger's image assembles each array with the right members and
# mdadm's names and words, leaves the stale member out and says why,
# passes the stranger over.  An array short of a member starts only with
# --run, --force or --scan; --uuid and --name pick one array; --force brings a stale RAID0
# member up to date as mdadm does (its superblock rewritten, nothing
# else), and a dirty degraded RAID5 with --run starts from the clean
# superblock md goes by, as with mdadm; bad input changes nothing on disk.
. "$(dirname "$0")/lib.sh"

export TZ=UTC
TREE=$T/tree
export MDFUSE_TREE=$TREE
DIR=$T/images
mkdir -p "$DIR/sub" "$T/u"
take() { # FIXTURE PREFIX
	local i=0 z
	for z in "$FIXTURES/$1"/d*.img.zst; do
		zstd -q -d -f "$z" -o "$DIR/$2-d$i.img"
		i=$((i + 1))
	done
}
take raid0-v1.1 a-raid0
take raid1-spare b-spare
take raid1-stale-member c-stale
take raid1-v0.90 d-v090
truncate -s 16M "$DIR/sub/stranger.img"
mkfs.ext4 -q -F "$DIR/sub/stranger.img"
sums() { (cd "$DIR" && sha256sum *.img sub/*.img); }
sums >"$T/before.sha"

mdf() { "$MDFUSE" "$@"; }
expect_run() { # WANT_RC WANT_STDERR CMD...
	local want_rc=$1 want=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "$rc" "$want_rc" "status of ${*:2}"
	expect_eq "$(cat "$T/err")" "$want" "messages of ${*:2}"
}

log "bad input: usage errors and refusals, nothing mounted, nothing written"
expect_run 2 "mdfuse: an md device must be given in this mode" mdf assemble
expect_run 1 "mdfuse: md0 not identified in config file." mdf assemble md0
expect_run 2 "mdfuse: bad uuid: xyz" mdf assemble --uuid xyz --scan "$DIR"
! grep -q " $TREE " /proc/mounts || fail "a usage error mounted the tree"
MOUNTS+=("$TREE")
expect_run 1 "mdfuse: no recogniseable superblock on $DIR/sub/stranger.img
mdfuse: $DIR/sub/stranger.img has no superblock - assembly aborted" \
	mdf assemble md0 "$DIR/a-raid0-d0.img" "$DIR/sub/stranger.img"
expect_run 1 "mdfuse: superblock on $DIR/b-spare-d0.img doesn't match others - assembly aborted" \
	mdf assemble md0 "$DIR/a-raid0-d0.img" "$DIR/b-spare-d0.img"
expect_run 1 "mdfuse: cannot open device $DIR/nothing: No such file or directory
mdfuse: $DIR/nothing has no superblock - assembly aborted" mdf assemble md0 "$DIR/nothing"
expect_run 1 "mdfuse: No arrays found in config file or automatically" mdf assemble --scan "$DIR/sub"
sums | diff - "$T/before.sha" || fail "bad input changed the images"
grep -q " $TREE " /proc/mounts || fail "assemble did not start the daemon on MDFUSE_TREE"
expect_eq "$(ls "$TREE" | grep -c "^md[0-9_]")" 0 "arrays left behind by refusals"

log "a member short: --run starts it degraded"
expect_run 1 "mdfuse: /dev/md0 assembled from 1 drive - need all 2 to start it (use --run to insist)." \
	mdf assemble md0 "$DIR/d-v090-d0.img"
[ ! -e "$TREE/md0" ] || fail "md0 left behind after assemble refused to start it"
expect_run 0 "mdfuse: /dev/md0 has been started with 1 drive (out of 2)." \
	mdf assemble --run md0 "$DIR/d-v090-d0.img"
expect_eq "$(cat "$TREE/md0/md/degraded")" 1 "degraded"
expect_run 0 "mdfuse: stopped /dev/md0" mdf stop md0
# --force, and a scan (no member list), start an array that can run
# without all it had, as mdadm's start_partial_ok does.
expect_run 0 "mdfuse: /dev/md0 has been started with 1 drive (out of 2)." \
	mdf assemble --force md0 "$DIR/d-v090-d0.img"
expect_run 0 "mdfuse: stopped /dev/md0" mdf stop md0
mkdir "$T/one"
mv "$DIR/d-v090-d0.img" "$T/one/"
expect_run 0 "mdfuse: /dev/md0 has been started with 1 drive (out of 2)." \
	mdf assemble --homehost realmd --scan "$T/one"
expect_run 0 "mdfuse: stopped /dev/md0" mdf stop md0
mv "$T/one/d-v090-d0.img" "$DIR/"
# A new 0.90 RAID5 (its last member a spare, to be rebuilt onto, as
# mdadm creates one) starts without --run: 0.90's working count is the
# table's active members (getinfo_super0), not the superblock's field,
# which counts the spare too.  Real mdadm 4.2 says the same of these images.
mdf create --level=5 -n 3 -e 0.90 --bitmap=none --image-size 16M "$T/one/p0.img" "$T/one/p1.img" "$T/one/p2.img" \
	>/dev/null 2>&1 || fail "create a 0.90 RAID5"
expect_run 0 "mdfuse: /dev/md0 has been started with 2 drives (out of 3) and 1 spare." \
	mdf assemble md0 "$T/one/p0.img" "$T/one/p1.img" "$T/one/p2.img"
expect_run 0 "mdfuse: stopped /dev/md0" mdf stop md0
rm -r "$T/one"
# A member failed and removed before a grow keeps the old size: mdadm's
# compare_super holds it not a member (real mdadm 4.2 on Linux 6.1 says
# the same of the same sequence); a scan passes it over.
mkdir "$T/grown"
G=$T/grown
mdf create --level=1 -n 3 --bitmap=none --assume-clean --size 12M --image-size 16M "$G/g1.img" "$G/g2.img" "$G/g3.img" \
	>/dev/null 2>&1 || fail "create a 3-way RAID1"
mdf assemble md0 "$G/g1.img" "$G/g2.img" "$G/g3.img" 2>/dev/null || fail "assemble the 3-way RAID1"
mdf manage md0 --fail "$G/g3.img" --remove "$G/g3.img" >/dev/null 2>&1 || fail "fail and remove g3"
mdf grow md0 --size 8M >/dev/null 2>&1 || fail "grow --size 8M"
mdf stop md0 >/dev/null 2>&1 || fail "stop"
expect_run 1 "mdfuse: superblock on $G/g3.img doesn't match others - assembly aborted" \
	mdf assemble --run md0 "$G/g1.img" "$G/g2.img" "$G/g3.img"
expect_run 0 "mdfuse: /dev/md127 has been started with 2 drives (out of 3)." \
	mdf assemble --homehost realmd --scan "$G"
expect_eq "$(cat "$TREE/md127/md/component_size")" 8192 "component size after the grow"
expect_run 0 "mdfuse: stopped /dev/md127" mdf stop md127
rm -r "$G"

log "--scan of the directory"
expect_run 0 "mdfuse: /dev/md0 has been started with 2 drives.
mdfuse: /dev/md127 has been started with 2 drives and 1 spare.
mdfuse: /dev/md126 has been started with 1 drive (out of 2).
mdfuse: $DIR/c-stale-d1.img was left out: events 16 < 21, non-fresh
mdfuse: /dev/md125 has been started with 2 drives." mdf assemble --homehost realmd --scan "$DIR"
members() { ls "$TREE/$1/md" | sed -n 's/^dev-//p' | sort | tr '\n' ' '; }
expect_eq "$(members md0)" "a-raid0-d0.img a-raid0-d1.img " "md0 members"
expect_eq "$(members md127)" "b-spare-d0.img b-spare-d1.img b-spare-d2.img " "md127 members"
expect_eq "$(members md126)" "c-stale-d0.img " "md126 members"
expect_eq "$(members md125)" "d-v090-d0.img d-v090-d1.img " "md125 members"
expect_eq "$(cat "$TREE/md127/md/dev-b-spare-d2.img/state")" spare "the spare joined as a spare"
expect_eq "$(cat "$TREE/md0/md/level")/$(cat "$TREE/md125/md/metadata_version")" "raid0/0.90" "levels"
# Assembled arrays are busy: a second scan finds nothing new.
expect_run 1 "mdfuse: Found some drive for an array that is already active: /dev/md126
mdfuse: giving up." mdf assemble --scan "$DIR"
# A member another array holds is passed over, as mdadm 4.2 on Linux 6.1
# does (status 2 when nothing is left).
expect_run 2 "mdfuse: $DIR/sub/../a-raid0-d0.img is busy - skipping" mdf assemble md1 "$DIR/sub/../a-raid0-d0.img"
expect_run 1 "mdfuse: no recogniseable superblock on $DIR/sub/stranger.img
mdfuse: no devices found for /dev/md0" mdf assemble md0 "$DIR/sub/stranger.img" --uuid "$(cat "$TREE/md127/md/uuid")"
mdf stop --scan 2>/dev/null
expect_eq "$(ls "$TREE" | grep -c "^md[0-9_]")" 0 "arrays left after stop --scan"

log "--uuid and --name pick one array"
uuid=$(mdadm --examine "$DIR/b-spare-d0.img" | sed -n 's/ *Array UUID : //p')
expect_run 0 "mdfuse: /dev/md9 has been started with 2 drives and 1 spare." \
	mdf assemble --uuid "$uuid" --scan md9 "$DIR"
mdf stop md9 2>/dev/null
expect_run 0 "mdfuse: /dev/md0 has been started with 2 drives.
mdfuse: /dev/md127 has been started with 2 drives and 1 spare.
mdfuse: /dev/md126 has been started with 1 drive (out of 2).
mdfuse: $DIR/c-stale-d1.img was left out: events 16 < 21, non-fresh" \
	mdf assemble --homehost realmd --name 0 --scan "$DIR"
[ ! -e "$TREE/md125" ] || fail "--name 0 took the 0.90 array (it has no name)"
mdf stop --scan 2>/dev/null
sums | diff - "$T/before.sha" >/dev/null || log "(members were written by md, as expected)"

log "--force: a stale RAID0 member brought up to date"
take raid0-v1.1 f-raid0
python3 "$(dirname "$0")/sbpatch.py" "$DIR/f-raid0-d0.img" 0 events=10
python3 "$(dirname "$0")/sbpatch.py" "$DIR/f-raid0-d1.img" 0 events=5
sha_d1=$(sha256sum <"$DIR/f-raid0-d1.img")
expect_run 1 "mdfuse: /dev/md0 assembled from 1 drive - not enough to start the array." \
	mdf assemble md0 "$DIR/f-raid0-d0.img" "$DIR/f-raid0-d1.img"
expect_eq "$(sha256sum <"$DIR/f-raid0-d1.img")" "$sha_d1" "the stale member untouched without --force"
expect_run 0 "mdfuse: forcing event count in $DIR/f-raid0-d1.img(1) from 5 up to 10
mdfuse: /dev/md0 has been started with 2 drives." \
	mdf assemble --force md0 "$DIR/f-raid0-d0.img" "$DIR/f-raid0-d1.img"
expect_eq "$(members md0)" "f-raid0-d0.img f-raid0-d1.img " "forced members"
mdf stop md0 2>/dev/null
# mdadm reads the forced superblock as valid, with the new event count.
mdadm --examine "$DIR/f-raid0-d1.img" >"$T/ex" 2>&1 || { cat "$T/ex"; fail "mdadm --examine of the forced member"; }
grep -q "Checksum : .* - correct" "$T/ex" || fail "forced superblock checksum"
ev=$(sed -n 's/ *Events : //p' "$T/ex")
[ "$ev" -ge 10 ] || fail "forced events $ev"

log "--force --run: a dirty degraded RAID5 starts from the superblock md goes by"
# m3 failed last, while the array was active: its superblock is dirty and
# behind; m1, stopped clean, is the freshest; m2 is stale.  mdadm forces
# m3's event count up to m1's and adds its chosen drive (the first member,
# in slot order, as fresh as the freshest) last, for md's analyze_sbs keeps
# the first of equally fresh superblocks in its list, the last one bound:
# md goes by m1's clean superblock and the array starts.  With the dirty
# member in slot 0 (h-) it is the chosen drive: mdadm marks it clean.
# Real mdadm 4.2 + Linux 6.1 say and write the same on these images.
sbp() { python3 "$(dirname "$0")/sbpatch.py" "$@"; }
for p in g h; do
	mdf create --level=5 --assume-clean --image-size 16M -n 3 "$DIR/$p-m1.img" "$DIR/$p-m2.img" "$DIR/$p-m3.img" >/dev/null 2>&1 ||
		fail "create $p"
	sbp "$DIR/$p-m2.img" 8 events=1
done
sbp "$DIR/g-m1.img" 8 events=5
sbp "$DIR/g-m3.img" 8 events=2 resync_offset=0
sbp "$DIR/h-m1.img" 8 events=2 resync_offset=0
sbp "$DIR/h-m3.img" 8 events=5
state() { "$MDFUSE" examine "$1" | sed -n 's/^ *State : //p; s/^ *Events : / /p' | tr -d '\n'; }
# forced_start P MESSAGES STATES: assemble P's three members with --force
# --run; m1 and m3 start it, and their superblocks then read STATES.
forced_start() {
	local p=$1
	expect_run 0 "$2
mdfuse: /dev/md0 has been started with 2 drives (out of 3).
mdfuse: $DIR/$p-m2.img was left out: events 1 < 5, non-fresh" \
		mdf assemble --force --run md0 "$DIR/$p-m1.img" "$DIR/$p-m2.img" "$DIR/$p-m3.img"
	expect_eq "$(members md0)" "$p-m1.img $p-m3.img " "members of the forced dirty RAID5 ($p)"
	mdf stop md0 2>/dev/null
	expect_eq "$(state "$DIR/$p-m1.img")/$(state "$DIR/$p-m3.img")" "$3" "superblocks after the forced start ($p)"
}
forced_start g "mdfuse: forcing event count in $DIR/g-m3.img(2) from 2 up to 5" "clean 5/active 5"
forced_start h "mdfuse: forcing event count in $DIR/h-m1.img(0) from 2 up to 5
mdfuse: Marking array /dev/md0 as 'clean'" "clean 5/clean 5"

log "assemble agrees with mdadm's rules"
