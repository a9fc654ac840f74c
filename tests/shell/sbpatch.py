#!/usr/bin/env python3
"""Small image surgery for the shell tests.

  sbpatch.py IMG SB_SECTOR FIELD=VALUE...   set 1.x superblock fields (by
      name, see FIELDS) at sector SB_SECTOR of IMG and fix the checksum
  sbpatch.py --corrupt IMG SB_SECTOR        flip a byte of the set name,
      leaving the checksum wrong
  sbpatch.py --mbr IMG START:SECTORS...     write an MBR partition table
      (type 0xfd, Linux raid autodetect) with these partitions
"""
import struct
import sys

# offset, struct format (little-endian), as md_p.h's mdp_superblock_1
FIELDS = {
    "feature_map": (8, "<I"),
    "level": (72, "<i"),
    "layout": (76, "<I"),
    "size": (80, "<Q"),
    "chunksize": (88, "<I"),
    "raid_disks": (92, "<I"),
    "data_offset": (128, "<Q"),
    "data_size": (136, "<Q"),
    "events": (200, "<Q"),
    "resync_offset": (208, "<Q"),
    "logical_block_size": (224, "<I"),
}


def csum(sb):
    max_dev = struct.unpack_from("<I", sb, 220)[0]
    size = 256 + 2 * max_dev
    b = bytearray(sb[:size])
    struct.pack_into("<I", b, 216, 0)
    total = 0
    for i in range(0, size - 3, 4):
        total += struct.unpack_from("<I", b, i)[0]
    if size % 4 == 2:
        total += struct.unpack_from("<H", b, size - 2)[0]
    return ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF


def patch(img, sector, sets, corrupt=False):
    with open(img, "r+b") as f:
        f.seek(sector * 512)
        sb = bytearray(f.read(4096))
        for s in sets:
            name, value = s.split("=", 1)
            off, fmt = FIELDS[name]
            struct.pack_into(fmt, sb, off, int(value, 0))
        if corrupt:
            sb[40] ^= 0x55
        else:
            struct.pack_into("<I", sb, 216, csum(sb))
        f.seek(sector * 512)
        f.write(sb)


def mbr(img, parts):
    with open(img, "r+b") as f:
        table = bytearray(512)
        for i, p in enumerate(parts):
            start, sectors = (int(x) for x in p.split(":"))
            e = 446 + 16 * i
            table[e + 4] = 0xFD
            struct.pack_into("<II", table, e + 8, start, sectors)
        table[510:512] = b"\x55\xaa"
        f.seek(0)
        f.write(table)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "--mbr":
        mbr(a[1], a[2:])
    elif a[0] == "--corrupt":
        patch(a[1], int(a[2]), [], corrupt=True)
    else:
        patch(a[0], int(a[1]), a[2:])
