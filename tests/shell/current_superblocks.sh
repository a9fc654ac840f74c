#!/bin/bash
# What kernels after 6.1 write: a 1.x superblock recording the array's
# logical_block_size (Linux 6.19, byte 224) assembles, shows it in
# md/logical_block_size, keeps it on every superblock write and refuses a
# change while running; a bitmap of major 6 (llbitmap, Linux 6.18) is
# never misread: the run is refused naming llbitmap and the images are
# left untouched; md/bitmap_type reads as 6.18 shows it.  Both built from
# real md's fixture with the checksum recomputed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

SBPATCH=$(dirname "$0")/sbpatch.py
FX=raid1-v1.2-bitmap
start_daemon

log "logical_block_size 4096 recorded in both superblocks"
unpack "$FX" "$T/lbs"
for img in "$T/lbs"/vd?; do python3 "$SBPATCH" "$img" 8 logical_block_size=4096 || fail "sbpatch"; done
new_array md0 "$T/lbs"/vd?
put md0/md/array_state active
expect_eq "$(attr md0/md/logical_block_size)" 4096 "logical_block_size"
expect_eq "$(sha "$MNT/md0/data")" "$(summary "$FX" md0_sha256)" "md0 contents"
expect_err "Device or resource busy" md0/md/logical_block_size 8192
expect_eq "$(attr md0/md/bitmap_type)" "none [bitmap] " "bitmap_type"
put md0/md/array_state inactive
for img in "$T/lbs"/vd?; do
	v=$(od -An -tu4 -j $((4096 + 224)) -N4 "$img" | tr -d ' ')
	expect_eq "$v" 4096 "$(basename "$img"): logical_block_size after the superblock writes"
done
"$MDFUSE" examine "$T/lbs/vda" >/dev/null || fail "examine of a member with a logical block size"
put md0/md/array_state clear

log "a bitmap of major 6 (llbitmap): refused, images untouched"
unpack "$FX" "$T/ll"
# The bitmap superblock follows the 1.2 superblock by 8 sectors; its
# version is the second word.
for img in "$T/ll"/vd?; do
	printf '\x06\x00\x00\x00' | dd of="$img" bs=1 seek=$((16 * 512 + 4)) conv=notrunc status=none
done
before=$(cat "$T/ll"/vd? | sha1sum)
new_array md1 "$T/ll"/vd?
log_mark
expect_err "Invalid argument" md1/md/array_state active
log_has "llbitmap"
expect_eq "$(attr md1/md/array_state)" inactive "md1 array_state"
put md1/md/array_state clear
expect_eq "$(cat "$T/ll"/vd? | sha1sum)" "$before" "llbitmap images"

stop_daemon
final_checks
log "ok"
