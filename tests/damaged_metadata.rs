//! Damaged metadata is ordinary input.  Every field of every superblock
//! version (0.90, 1.0, 1.1, 1.2), of the bitmap superblock and of the
//! bad-block log is set to extreme values -- 0, 1, 2^31-1, 2^31, 2^32-1,
//! 2^63, 2^64-1, the device size -1 and +1 (in sectors), cut to the
//! field's width -- with the checksum recomputed, as a bad sector or a
//! buggy tool leaves them; on one member and on all of them.  And random
//! bytes, seeded, in each region: the whole superblock (checksum
//! recomputed, or left wrong as a bad sector leaves it), the roles (or
//! 0.90 disks) table, the bitmap superblock, the bitmap's bits and the
//! bad-block log (`SWEEP_RANDOM_SEEDS`, default 6 per region).  Each case
//! binds the members and runs the array through the md tree, as mdadm
//! does, all in one md "module" (one daemon), and must end in one of:
//!
//! * refused: a write failed with an errno, with a line in the log;
//! * assembled, with or without the damaged member, its reads checked as
//!   below, EIO the only errno; a write of the same data then succeeds or
//!   fails with an errno.
//!
//! Every attribute of the array is read on the way, the array then
//! clears, and no case may take more than 20 s.  `mdfuse examine` of
//! every damaged member must answer too.  SWEEP_ONLY=TEXT runs the cases
//! whose name holds TEXT; SWEEP_VERBOSE=1 prints each case and its log.
//!
//! Two sweeps.  RAID1 (`damaged_fields_are_refused_or_assembled`): 2 MiB
//! members made by `mdfuse create` with metadata 1.2 (with and without a
//! bitmap), 1.1 and 1.0, and real md's 0.90 superblocks of the
//! raid1-v0.90 fixture; every read must be what one of the running
//! members holds at its data offset, or EIO where none can give it (as
//! the kernel, past the end of every device: a `data_offset` past the
//! device, a `size` larger than the members).  Whatever the damage, a
//! RAID1 read is a copy of a member, so this holds for every field.
//!
//! The other levels (`damaged_fields_other_levels`): linear (2 members),
//! raid0 (3; and 2 with metadata 1.1), raid10 near=2 (4, bitmap), far=2
//! (3) and offset=2 (3, bitmap), raid4 and raid5 (3, bitmap), raid5
//! right-asymmetric with metadata 1.0 (4, bitmap) and raid6 (4, bitmap):
//! 2 MiB members made by `mdfuse create` (metadata 1.2 unless said, 64
//! KiB chunks), a pattern written through md; and real md's raid5-v0.90
//! fixture, its superblocks moved to the end of 2 MiB members with the
//! rows that remain.  Besides vda and all members, each case there also
//! damages the member bound last alone: the one md takes the array's
//! settings from while all are as fresh.  What md0 holds is read once
//! from the pristine members.  A read there is not a copy of one member,
//! so the fields fall in two classes:
//!
//! * geometry: what md derives the layout of the data from -- v1 `level`,
//!   `layout`, `chunksize`, `raid_disks`, `size`, `data_offset`,
//!   `data_size` (linear and raid0 use each member's whole data size),
//!   `dev_number`, `max_dev` and the roles (a member's slot), the reshape
//!   fields and `feature_map` (which turns them and recovery on); 0.90
//!   `level`, `layout`, `chunk_size`, `raid_disks`, `size`, the disks
//!   table and this_disk (the slots), `minor_version` (91: reshape) and
//!   the reshape fields; and random bytes in a superblock with its
//!   checksum recomputed, which may hit any of them.  md takes level,
//!   layout, chunk, size and raid_disks from one member (the freshest,
//!   the one bound last among equals: super_1_validate and
//!   super_90_validate on the first rdev analyze_sbs sees) and compares
//!   each member bound with the one bound first (load_super against
//!   rdev0: level, layout and chunk for v1, the whole constant part for
//!   0.90), refusing those that differ; data_offset and the slot every
//!   member takes from its own superblock.  Damage to these legitimately
//!   changes what md0 holds where md derives another geometry from it:
//!   the array must not panic or hang, reads succeed or give EIO,
//!   attributes read, examine answers.  Where the array runs with the
//!   pristine geometry all the same (level, layout, chunk_size,
//!   raid_disks, component_size, reshape_position and size as read from
//!   md, and each member in a slot with its slot, data offset and size),
//!   the case is held to the content as below.  v1 `size`, `raid_disks`
//!   and the reshape fields on vda alone are in the second class: md
//!   reads them from the reference member only, which vda (bound first)
//!   is not while all members are as fresh.
//! * everything else (magic, versions, UUIDs, name, times, events,
//!   resync and recovery offsets, bitmap_offset, super_offset, devflags,
//!   the bad-block log and its fields, logical_block_size, padding, the
//!   bitmap superblock and bits; random bytes with the checksum left
//!   wrong): the member is refused, or runs, or is left out; md0 is as
//!   large as before and every read gives what it held -- degraded, by
//!   parity or the other copy, when a member is left out.  An EIO only
//!   where more members than the level can lose are missing or have bad
//!   blocks recorded.  linear and raid0 do not run short of a member
//!   (md refuses them) unless md0 reads `broken`.
//!
//! For redundant arrays that run whole after damage of the second class,
//! one case in `SWEEP_CHECK_EVERY` (default 16, 1 = all, 0 = none; picked
//! by the case's name) runs a `check`: mismatch_cnt must stay 0 unless
//! bad blocks are recorded, since the members still agree.
//!
//! Where md's source leaves the outcome in doubt, real md was asked
//! (Linux 6.1.192 in the oracle, `realmd shell-script` on copies of the
//! 16 MiB raid1-v1.2-bitmap, -v1.2-nobitmap, -v1.0-bitmap and -v0.90
//! fixtures, members bound through sysfs `new_dev`, run with
//! `array_state`); `ORACLE` below holds its answers, mapped onto these
//! 2 MiB members, and each is checked.  It said:
//!
//! * v1.2 `raid_disks` 2^31-1, 2^31, 2^32-1: both members bind, the run
//!   fails with ENOMEM (setup_conf's kzalloc of 2 x raid_disks mirrors;
//!   the last two are negative as an int).  65535 failed the same way in
//!   the VM's 512 MiB; 1921 ran "active with 2 out of 1921 mirrors"; 0
//!   fails with EINVAL.  0.90 `raid_disks` 2^31 binds (the field is
//!   unsigned there) and fails the run with ENOMEM; 28 runs.
//! * v1.2 `size` 2^63, 2^64-1 and 0 without a bitmap: the array runs with
//!   that many sectors; a capacity past 2^54 sectors wraps the block
//!   device's byte size, which then reads as empty.  With a bitmap, size
//!   2^63 never returned (a soft lockup allocating the bitmap): here the
//!   allocation is refused, ENOMEM.  `size` one sector more than the
//!   members hold: the array runs, the read past their end fails (EIO).
//! * v1.2 `data_offset` 2^63 or 2^64-1: the superblock loads (the room it
//!   leaves is computed modulo 2^64), the array runs, every read fails.
//!   2^64-1 on one member: that member fails and the other serves (real
//!   md first reads it at data_offset + sector modulo 2^64, sector 7 for
//!   sector 8, and returns those bytes; mdfuse takes that for the I/O
//!   error it is).  v1.0 `data_offset` past the device: loads; the run
//!   fails with EIO (the bitmap cannot be written there).
//! * `bblog_shift` 64 and above with the bad-block feature: "bogus
//!   bblog_shift", the member is refused (EINVAL); up to 63 it loads, and
//!   without the feature any shift does.  The feature with a log of zeros
//!   (entries of length 0) loads: 6.1's badblocks_set ignores them.
//! * `bitmap_offset` 2^31-1 or -2^31: the bitmap superblock is read past
//!   the device's end, the run fails with EIO.  Bitmap version 5 with
//!   nodes: "can't find md-cluster module", ENOENT; without nodes it runs.
//! * bitmap `chunksize` 2^31, `daemon_sleep` 2^32-1, `sync_size` 2^64-1,
//!   `events_cleared` 2^64-1, `sectors_reserved` 2^32-1 or 0;
//!   `resync_offset` 2^63 (a resync that ends at once); `recovery_offset`
//!   2^63 on one member (recovered): the array runs.  `events` 2^64-1 on
//!   both: the member bound first is "non-fresh" (events + 1 wraps to 0),
//!   the other runs alone.
//! * 0.90 `level` 2^32-1 (linear) runs as linear in the kernel, as here.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mdfuse::cli::examine::{examine_bitmap_on, examine_probe};
use mdfuse::cli::probe::probe;
use mdfuse::disk::{FaultOp, IoEvent};
use mdfuse::errno::Errno;
use mdfuse::format::{SectorReader, Superblock0, Superblock1};
use mdfuse::md::flags::{recovery as rec, sb as sbf};
use mdfuse::md::{Md, MdOptions, Mddev};
use mdfuse::sysfs::MdTree;
use parking_lot::Mutex;

/// Every member is a 2 MiB image.
const DEV_SECTORS: u64 = 4096;
const DEV_BYTES: usize = DEV_SECTORS as usize * 512;
/// Reads of the array go this far (past the members' end, to see EIO
/// there), in pieces of this size.
const READ_LIMIT: u64 = DEV_BYTES as u64 + 65536;
const PIECE: usize = 65536;
/// Members are put back to their pristine bytes in blocks of this size.
const BLOCK: usize = 4096;
/// No case may take longer.
const CASE_LIMIT: Duration = Duration::from_secs(20);

const EXTREMES: [u64; 9] = [
    0,
    1,
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    1 << 63,
    u64::MAX,
    DEV_SECTORS - 1,
    DEV_SECTORS + 1,
];

/// `feature_map` bits a field means something only with.
const F_BITMAP: u32 = 1;
const F_RECOVERY: u32 = 2;
const F_RESHAPE: u32 = 4;
const F_BAD_BLOCKS: u32 = 8;
const F_NEW_OFFSET: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Meta {
    V090,
    V1(u64),
}

impl Meta {
    fn version(self) -> &'static str {
        match self {
            Meta::V090 => "0.90",
            Meta::V1(0) => "1.0",
            Meta::V1(1) => "1.1",
            Meta::V1(_) => "1.2",
        }
    }

    /// Byte offset of the superblock on a member.
    fn sb_at(self) -> usize {
        let s = match self {
            Meta::V090 => (DEV_SECTORS & !127) - 128,
            Meta::V1(0) => (DEV_SECTORS - 16) & !7,
            Meta::V1(1) => 0,
            Meta::V1(_) => 8,
        };
        s as usize * 512
    }
}

/// Where a field lives and what else must hold for it to mean anything.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// In the superblock, at this byte offset.
    Super,
    /// In the bitmap superblock.
    Bitmap,
    /// In the bad-block log (entry 0), with the log turned on.
    BadBlockLog,
    /// Random bytes (as many as the field's `with`, from the case's value
    /// as a seed) in `offset..offset + width` of a structure; for the
    /// superblock, with the checksum recomputed or left wrong.
    Bytes { area: Area, fix_csum: bool },
}

/// Where random bytes go.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Area {
    Super,
    Bitmap,
    BadBlockLog,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    name: &'static str,
    place: Place,
    offset: usize,
    width: usize,
    /// v1 feature bits to set with it; for 0.90 any non-zero value sets
    /// minor_version 91 (the reshape fields).
    with: u32,
}

const fn f(name: &'static str, offset: usize, width: usize, with: u32) -> Field {
    Field {
        name,
        place: Place::Super,
        offset,
        width,
        with,
    }
}

/// Every field of `struct mdp_superblock_1` but the checksum (the UUIDs,
/// the name and the padding by their first 8 bytes) and the first two
/// roles.
const V1_FIELDS: &[Field] = &[
    f("magic", 0, 4, 0),
    f("major_version", 4, 4, 0),
    f("feature_map", 8, 4, 0),
    f("pad0", 12, 4, 0),
    f("set_uuid", 16, 8, 0),
    f("set_name", 32, 8, 0),
    f("ctime", 64, 8, 0),
    f("level", 72, 4, 0),
    f("layout", 76, 4, 0),
    f("size", 80, 8, 0),
    f("chunksize", 88, 4, 0),
    f("raid_disks", 92, 4, 0),
    f("bitmap_offset", 96, 4, F_BITMAP),
    f("new_level", 100, 4, F_RESHAPE),
    f("reshape_position", 104, 8, F_RESHAPE),
    f("delta_disks", 112, 4, F_RESHAPE),
    f("new_layout", 116, 4, F_RESHAPE),
    f("new_chunk", 120, 4, F_RESHAPE),
    f("new_offset", 124, 4, F_RESHAPE | F_NEW_OFFSET),
    f("data_offset", 128, 8, 0),
    f("data_size", 136, 8, 0),
    f("super_offset", 144, 8, 0),
    f("recovery_offset", 152, 8, F_RECOVERY),
    f("dev_number", 160, 4, 0),
    f("cnt_corrected_read", 164, 4, 0),
    f("device_uuid", 168, 8, 0),
    f("devflags", 184, 1, 0),
    f("bblog_shift", 185, 1, F_BAD_BLOCKS),
    f("bblog_size", 186, 2, F_BAD_BLOCKS),
    f("bblog_offset", 188, 4, F_BAD_BLOCKS),
    f("utime", 192, 8, 0),
    f("events", 200, 8, 0),
    f("resync_offset", 208, 8, 0),
    f("max_dev", 220, 4, 0),
    f("logical_block_size", 224, 4, 0),
    f("pad3", 228, 8, 0),
    f("dev_roles[0]", 256, 2, 0),
    f("dev_roles[1]", 258, 2, 0),
];

/// `mdp_super_t` by word (4 bytes each; reshape_position is 8).
const V090_FIELDS: &[Field] = &[
    f("md_magic", 0, 4, 0),
    f("major_version", 4, 4, 0),
    f("minor_version", 8, 4, 0),
    f("patch_version", 12, 4, 0),
    f("gvalid_words", 16, 4, 0),
    f("set_uuid0", 20, 4, 0),
    f("ctime", 24, 4, 0),
    f("level", 28, 4, 0),
    f("size", 32, 4, 0),
    f("nr_disks", 36, 4, 0),
    f("raid_disks", 40, 4, 0),
    f("md_minor", 44, 4, 0),
    f("not_persistent", 48, 4, 0),
    f("set_uuid1", 52, 4, 0),
    f("utime", 128, 4, 0),
    f("state", 132, 4, 0),
    f("active_disks", 136, 4, 0),
    f("working_disks", 140, 4, 0),
    f("failed_disks", 144, 4, 0),
    f("spare_disks", 148, 4, 0),
    f("events_lo", 156, 4, 0),
    f("events_hi", 160, 4, 0),
    f("cp_events_lo", 164, 4, 0),
    f("cp_events_hi", 168, 4, 0),
    f("recovery_cp", 172, 4, 0),
    f("reshape_position", 176, 8, 1),
    f("new_level", 184, 4, 1),
    f("delta_disks", 188, 4, 1),
    f("new_layout", 192, 4, 1),
    f("new_chunk", 196, 4, 1),
    f("layout", 256, 4, 0),
    f("chunk_size", 260, 4, 0),
    f("disks[0].number", 512, 4, 0),
    f("disks[0].major", 516, 4, 0),
    f("disks[0].raid_disk", 524, 4, 0),
    f("disks[0].state", 528, 4, 0),
    f("disks[1].number", 640, 4, 0),
    f("disks[1].raid_disk", 652, 4, 0),
    f("disks[1].state", 656, 4, 0),
    f("this_disk.number", 3968, 4, 0),
    f("this_disk.raid_disk", 3980, 4, 0),
    f("this_disk.state", 3984, 4, 0),
];

const fn bm(name: &'static str, offset: usize, width: usize) -> Field {
    Field {
        name,
        place: Place::Bitmap,
        offset,
        width,
        with: 0,
    }
}

/// `bitmap_super_t`.
const BITMAP_FIELDS: &[Field] = &[
    bm("bitmap magic", 0, 4),
    bm("bitmap version", 4, 4),
    bm("bitmap uuid", 8, 8),
    bm("bitmap events", 24, 8),
    bm("bitmap events_cleared", 32, 8),
    bm("bitmap sync_size", 40, 8),
    bm("bitmap state", 48, 4),
    bm("bitmap chunksize", 52, 4),
    bm("bitmap daemon_sleep", 56, 4),
    bm("bitmap write_behind", 60, 4),
    bm("bitmap sectors_reserved", 64, 4),
    bm("bitmap nodes", 68, 4),
];

const BAD_BLOCK_ENTRY: Field = Field {
    name: "bad-block log entry[0]",
    place: Place::BadBlockLog,
    offset: 0,
    width: 8,
    with: F_BAD_BLOCKS,
};

/// One array as mdfuse create (or real md, for 0.90) wrote it, with a
/// pattern in its data area: the images' bytes and where they live.
struct Layout {
    name: &'static str,
    meta: Meta,
    bitmap: bool,
    /// The level md runs it at, as created (`raid1`, `raid5`, ...).
    level: &'static str,
    /// What md0 holds, byte for byte, for every level but raid1 (each
    /// raid1 read is checked against the members instead).
    content: Vec<u8>,
    /// What md derived that content's layout from.
    geometry: Geometry,
    paths: Vec<PathBuf>,
    pristine: Vec<Vec<u8>>,
    /// Byte offset of the bitmap superblock, if any.
    bitmap_at: Option<usize>,
    /// Byte offset of the bad-block log (v1).
    bblog_at: Option<usize>,
    /// The members, open for putting bytes back.
    files: Vec<fs::File>,
}

/// 512 bytes that say which data sector they are.
fn pattern(sector: u64) -> [u8; 512] {
    let mut b = [(sector % 251) as u8; 512];
    b[..5].copy_from_slice(b"SWEEP");
    b[8..16].copy_from_slice(&sector.to_le_bytes());
    b
}

fn fill_data(img: &mut [u8], data_offset: u64, sectors: u64) {
    for s in 0..sectors {
        let at = ((data_offset + s) * 512) as usize;
        img[at..at + 512].copy_from_slice(&pattern(s));
    }
}

/// `mdfuse create` of `n` 2 MiB members in `dir/name`, with `args`
/// (level, layout, chunk) and the usual options.
fn create(dir: &Path, name: &str, meta: Meta, bitmap: bool, args: &str, n: usize) -> Vec<PathBuf> {
    let d = dir.join(name);
    fs::create_dir_all(&d).unwrap();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| d.join(format!("vd{}", (b'a' + i as u8) as char)))
        .collect();
    let create = "create --assume-clean --image-size 2M --homehost <none> -N sweep";
    let (out, err, rc) = common::run(
        common::mdfuse()
            .args(create.split(' '))
            .args(args.split(' '))
            .args(["-e", meta.version()])
            .args(["-b", if bitmap { "internal" } else { "none" }])
            .args(&paths),
    );
    assert_eq!(rc, 0, "mdfuse create {args}: {out}{err}");
    paths
}

/// Where a v1 member's bitmap superblock and bad-block log are; the log
/// is made empty (all ones) as the kernel leaves it.
fn v1_places(meta: Meta, img: &mut [u8]) -> (Superblock1, Option<usize>, usize) {
    assert_eq!(img.len(), DEV_BYTES);
    let sb = Superblock1::parse(&img[meta.sb_at()..]).unwrap();
    let bitmap_at = sb
        .bitmap_offset_sectors()
        .map(|off| (meta.sb_at() as i64 + off * 512) as usize);
    let at = (meta.sb_at() as i64 + sb.bblog_offset as i64 * 512) as usize;
    img[at..at + sb.bblog_size as usize * 512].fill(0xff);
    (sb, bitmap_at, at)
}

/// A 2-member RAID1 with the pattern written onto each member's data
/// area.
fn v1_layout(dir: &Path, name: &'static str, minor: u64, bitmap: bool) -> Layout {
    let meta = Meta::V1(minor);
    let paths = create(dir, name, meta, bitmap, "-l 1 -n 2", 2);
    let mut pristine = Vec::new();
    let (mut bitmap_at, mut bblog_at) = (None, None);
    for p in &paths {
        let mut img = fs::read(p).unwrap();
        let (sb, bm, bb) = v1_places(meta, &mut img);
        fill_data(&mut img, sb.data_offset, sb.data_size);
        (bitmap_at, bblog_at) = (bm, Some(bb));
        fs::write(p, &img).unwrap();
        pristine.push(img);
    }
    assert_eq!(bitmap_at.is_some(), bitmap);
    Layout {
        name,
        meta,
        bitmap,
        level: "raid1",
        content: Vec::new(),
        geometry: Geometry::default(),
        files: open_all(&paths),
        paths,
        pristine,
        bitmap_at,
        bblog_at,
    }
}

/// An array of another level made by `mdfuse create` (`args`: level,
/// members, layout, chunk) with metadata 1.`minor`, the pattern written
/// through md, sector by array sector; `content` is that pattern.
fn level_layout(
    dir: &Path,
    name: &'static str,
    level: &'static str,
    args: &str,
    minor: u64,
    bitmap: bool,
) -> Layout {
    let meta = Meta::V1(minor);
    let n = args
        .split(' ')
        .skip_while(|a| *a != "-n")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("-n N in args");
    let paths = create(dir, name, meta, bitmap, args, n);
    let (mut bitmap_at, mut bblog_at) = (None, None);
    for p in &paths {
        let mut img = fs::read(p).unwrap();
        (bitmap_at, bblog_at) = {
            let (_, bm, bb) = v1_places(meta, &mut img);
            (bm, Some(bb))
        };
        fs::write(p, &img).unwrap();
    }
    assert_eq!(bitmap_at.is_some(), bitmap);
    let (content, geometry) = assemble(meta, &paths, level, true);
    Layout {
        name,
        meta,
        bitmap,
        level,
        content,
        geometry,
        files: open_all(&paths),
        pristine: paths.iter().map(|p| fs::read(p).unwrap()).collect(),
        paths,
        bitmap_at,
        bblog_at,
    }
}

/// Run the members as md0 in an md of their own and read all of md0;
/// with `write`, write the pattern over it first (and read it back).
fn assemble(meta: Meta, paths: &[PathBuf], level: &str, write: bool) -> (Vec<u8>, Geometry) {
    let md = Md::new(MdOptions::default());
    mdfuse::register_personalities(&md);
    let tree = MdTree::new(md.clone(), 0, 0);
    let t = &tree.tree;
    t.write_attr("new_array", "md0").unwrap();
    t.write_attr("md0/md/metadata_version", meta.version())
        .unwrap();
    for p in paths {
        t.write_attr("md0/md/new_dev", p.to_str().unwrap()).unwrap();
    }
    t.write_attr("md0/md/array_state", "active").unwrap();
    assert_eq!(t.read_attr("md0/md/level").unwrap().trim(), level);
    let mddev = md.array("md0").unwrap();
    assert_eq!(mddev.degraded(), 0);
    let size = mddev.array_bytes() as usize;
    if write {
        let data: Vec<u8> = (0..size as u64 / 512).flat_map(pattern).collect();
        for at in (0..size).step_by(PIECE) {
            let e = (at + PIECE).min(size);
            assert_eq!(mddev.write_data(&data[at..e], at as u64), Ok(e - at));
        }
        mddev.flush_data().unwrap();
    }
    let mut content = vec![0u8; size];
    for at in (0..size).step_by(PIECE) {
        let e = (at + PIECE).min(size);
        assert_eq!(mddev.read_data(&mut content[at..e], at as u64), Ok(e - at));
    }
    if write {
        assert!(
            content
                .chunks(512)
                .enumerate()
                .all(|(s, b)| *b == pattern(s as u64)),
            "{level}: md0 does not read back what was written"
        );
    }
    let geometry = geometry_of(t, &mddev, paths);
    drop(mddev);
    t.write_attr("md0/md/array_state", "clear").unwrap();
    md.stop_all();
    (content, geometry)
}

/// What md derived the data's layout from: the array's level, layout,
/// chunk, raid_disks, component size, reshape position and size, and
/// each member in a slot: its image, slot, data offset and size.
#[derive(Clone, Debug, Default, PartialEq)]
struct Geometry {
    array: Vec<String>,
    members: Vec<(usize, i32, u64, u64)>,
}

fn geometry_of(t: &sysfs_like::Tree, mddev: &Mddev, paths: &[PathBuf]) -> Geometry {
    let attrs = [
        "level",
        "layout",
        "chunk_size",
        "raid_disks",
        "component_size",
        "reshape_position",
    ];
    let mut members: Vec<_> = mddev
        .rdevs()
        .iter()
        .filter(|r| r.raid_disk() >= 0 && !r.faulty())
        .map(|r| {
            let image = paths.iter().position(|p| p == r.disk.path()).unwrap();
            (image, r.raid_disk(), r.data_offset(), r.sectors())
        })
        .collect();
    members.sort();
    Geometry {
        array: attrs
            .iter()
            .map(|a| t.read_attr(&format!("md0/md/{a}")).unwrap_or_default())
            .chain([mddev.array_bytes().to_string()])
            .collect(),
        members,
    }
}

impl Geometry {
    /// The same array as `pristine`, perhaps with fewer members.
    fn within(&self, pristine: &Geometry) -> bool {
        self.array == pristine.array && self.members.iter().all(|m| pristine.members.contains(m))
    }
}

/// Real md's 0.90 superblocks (of `fixture`), moved to the end of
/// 2 MiB members with the size recorded to match.  RAID1 members get the
/// pattern; other levels keep what real md wrote in the rows that remain.
fn v090_layout(dir: &Path, fixture: &str, name: &'static str, level: &'static str) -> Layout {
    let meta = Meta::V090;
    let (_tmp, imgs) = common::unpack(fixture);
    let d = dir.join(name);
    fs::create_dir_all(&d).unwrap();
    let paths: Vec<PathBuf> = (0..imgs.len())
        .map(|i| d.join(format!("vd{}", (b'a' + i as u8) as char)))
        .collect();
    let mut pristine = Vec::new();
    for (src, p) in imgs.iter().zip(&paths) {
        let big = fs::read(src).unwrap();
        let at = (((big.len() as u64 / 512) & !127) - 128) as usize * 512;
        let mut sb = Superblock0::parse(&big[at..at + 4096]).unwrap();
        let start = meta.sb_at() as u64 / 512;
        sb.size = (start / 2) as u32;
        sb.update_csum();
        let mut img = vec![0u8; DEV_BYTES];
        if level == "raid1" {
            fill_data(&mut img, 0, start);
        } else {
            img[..meta.sb_at()].copy_from_slice(&big[..meta.sb_at()]);
        }
        img[meta.sb_at()..meta.sb_at() + 4096].copy_from_slice(&sb.to_bytes());
        fs::write(p, &img).unwrap();
        pristine.push(img);
    }
    let (content, geometry) = if level == "raid1" {
        (Vec::new(), Geometry::default())
    } else {
        assemble(meta, &paths, level, false)
    };
    Layout {
        name,
        meta,
        bitmap: false,
        level,
        content,
        geometry,
        files: open_all(&paths),
        paths,
        pristine,
        bitmap_at: None,
        bblog_at: None,
    }
}

fn open_all(paths: &[PathBuf]) -> Vec<fs::File> {
    paths
        .iter()
        .map(|p| fs::OpenOptions::new().write(true).open(p).unwrap())
        .collect()
}

/// `calc_sb_1_csum` / `calc_sb_csum` over the superblock at `sb`.
fn fix_csum(meta: Meta, sb: &mut [u8]) {
    let fold = |sum: u64| (sum as u32).wrapping_add((sum >> 32) as u32);
    let word = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as u64;
    match meta {
        Meta::V090 => {
            sb[152..156].fill(0);
            let sum: u64 = (0..1024).map(|i| word(sb, 4 * i)).sum();
            let c = fold(sum);
            sb[152..156].copy_from_slice(&c.to_le_bytes());
        }
        Meta::V1(_) => {
            // Past 1920 roles the kernel refuses before the checksum.
            let max_dev = (word(sb, 220) as usize).min(1920);
            let len = 256 + 2 * max_dev;
            sb[216..220].fill(0);
            let mut sum: u64 = (0..len / 4).map(|i| word(sb, 4 * i)).sum();
            if len % 4 == 2 {
                sum += u16::from_le_bytes([sb[len - 2], sb[len - 1]]) as u64;
            }
            let c = fold(sum);
            sb[216..220].copy_from_slice(&c.to_le_bytes());
        }
    }
}

fn put(buf: &mut [u8], at: usize, width: usize, v: u64) {
    buf[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

fn get(buf: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&buf[at..at + width]);
    u64::from_le_bytes(b)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// The member bound first (the array takes its settings from the one
    /// bound last when all are as fresh).
    One,
    /// The member bound last: the one md takes the array's settings from
    /// while all are as fresh.
    Last,
    All,
}

struct Case<'a> {
    layout: &'a Layout,
    field: Field,
    value: u64,
    who: Who,
}

impl Case<'_> {
    fn name(&self) -> String {
        format!(
            "{} {} = {:#x} on {}",
            self.layout.name,
            self.field.name,
            self.value,
            match self.who {
                Who::One => "vda",
                Who::Last => "the last member",
                Who::All => "all members",
            }
        )
    }

    /// The members' images with the damage done.
    fn images(&self) -> Vec<Vec<u8>> {
        let l = self.layout;
        let mut imgs = l.pristine.clone();
        let len = imgs.len();
        let damaged = match self.who {
            Who::One => 0..1,
            Who::Last => len - 1..len,
            Who::All => 0..len,
        };
        for img in &mut imgs[damaged] {
            let sb_at = l.meta.sb_at();
            let fld = self.field;
            if let Place::Bytes {
                area,
                fix_csum: fix,
            } = fld.place
            {
                let base = match area {
                    Area::Super => sb_at,
                    Area::Bitmap => l.bitmap_at.expect("a bitmap"),
                    Area::BadBlockLog => l.bblog_at.expect("a bad-block log"),
                };
                let mut rng = self.value;
                for _ in 0..fld.with {
                    let r = splitmix(&mut rng);
                    let at = base + fld.offset + (r as usize % fld.width);
                    img[at] = (r >> 32) as u8;
                }
                if area == Area::BadBlockLog {
                    // The log is read only with the feature on.
                    let fm = get(img, sb_at + 8, 4) as u32 | F_BAD_BLOCKS;
                    put(img, sb_at + 8, 4, fm as u64);
                }
                if fix || area != Area::Super {
                    fix_csum(l.meta, &mut img[sb_at..sb_at + 4096]);
                }
                continue;
            }
            match fld.place {
                Place::Super => put(img, sb_at + fld.offset, fld.width, self.value),
                Place::Bitmap => {
                    let at = l.bitmap_at.expect("a bitmap");
                    put(img, at + fld.offset, fld.width, self.value);
                    // Nodes mean something in a clustered bitmap only.
                    if fld.name == "bitmap nodes" {
                        put(img, at + 4, 4, 5);
                    }
                }
                Place::BadBlockLog => {
                    let at = l.bblog_at.expect("a bad-block log");
                    put(img, at, 8, self.value);
                }
                Place::Bytes { .. } => unreachable!("handled above"),
            }
            if fld.with != 0 {
                match l.meta {
                    Meta::V1(_) => {
                        let fm = get(img, sb_at + 8, 4) as u32 | fld.with;
                        put(img, sb_at + 8, 4, fm as u64);
                    }
                    Meta::V090 => put(img, sb_at + 8, 4, 91),
                }
            }
            fix_csum(l.meta, &mut img[sb_at..sb_at + 4096]);
        }
        imgs
    }
}

/// SplitMix64: the random bytes of a case, from its seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seeds of the random-byte cases per region; `SWEEP_RANDOM_SEEDS` runs
/// more.
fn random_seeds() -> u64 {
    std::env::var("SWEEP_RANDOM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// Regions of a layout that random bytes damage: the whole superblock
/// (checksum recomputed, as a buggy tool leaves it, or not, as a bad
/// sector), the roles table, the bitmap superblock and its bits, the
/// bad-block log.  `with` is how many bytes change.
fn random_regions(l: &Layout) -> Vec<Field> {
    let bytes = |name, area, fix_csum, offset, width, count| Field {
        name,
        place: Place::Bytes { area, fix_csum },
        offset,
        width,
        with: count,
    };
    let mut v = Vec::new();
    match l.meta {
        Meta::V090 => {
            v.push(bytes(
                "random bytes in the superblock, checksum fixed",
                Area::Super,
                true,
                0,
                4096,
                4,
            ));
            v.push(bytes(
                "random bytes in the superblock",
                Area::Super,
                false,
                0,
                4096,
                4,
            ));
            v.push(bytes(
                "random bytes in the disks table, checksum fixed",
                Area::Super,
                true,
                128 * 4,
                27 * 32 * 4,
                3,
            ));
        }
        Meta::V1(_) => {
            v.push(bytes(
                "random bytes in the superblock, checksum fixed",
                Area::Super,
                true,
                0,
                256,
                3,
            ));
            v.push(bytes(
                "random bytes in the superblock",
                Area::Super,
                false,
                0,
                256,
                3,
            ));
            v.push(bytes(
                "random bytes in the roles table, checksum fixed",
                Area::Super,
                true,
                256,
                8,
                2,
            ));
            v.push(bytes(
                "random bytes in the bad-block log",
                Area::BadBlockLog,
                true,
                0,
                512,
                8,
            ));
        }
    }
    if l.bitmap {
        v.push(bytes(
            "random bytes in the bitmap superblock",
            Area::Bitmap,
            true,
            0,
            256,
            3,
        ));
        v.push(bytes(
            "random bytes in the bitmap's bits",
            Area::Bitmap,
            true,
            256,
            256,
            16,
        ));
    }
    v
}

/// On whom a layout's cases do the damage: vda and all members; for the
/// levels other than RAID1 also the member bound last, the one md takes
/// the array's settings from.
fn whos(l: &Layout) -> Vec<Who> {
    if l.level == "raid1" {
        vec![Who::One, Who::All]
    } else {
        vec![Who::One, Who::Last, Who::All]
    }
}

/// Every case: each field of the layout's structures, each extreme value
/// that differs from what the field holds, on one member and on all; and
/// random bytes in each region, seeded.
fn cases(layouts: &[Layout]) -> Vec<Case<'_>> {
    let mut v = Vec::new();
    for l in layouts {
        for field in random_regions(l) {
            for seed in 0..random_seeds() {
                for who in whos(l) {
                    v.push(Case {
                        layout: l,
                        field,
                        value: 0x5eed_0000 + seed,
                        who,
                    });
                }
            }
        }
    }
    for l in layouts {
        let mut fields: Vec<Field> = match l.meta {
            Meta::V090 => V090_FIELDS.to_vec(),
            Meta::V1(_) => {
                let mut f = V1_FIELDS.to_vec();
                f.push(BAD_BLOCK_ENTRY);
                f
            }
        };
        if l.bitmap {
            fields.extend_from_slice(BITMAP_FIELDS);
        }
        for field in fields {
            let current = match field.place {
                Place::Super => get(&l.pristine[0], l.meta.sb_at() + field.offset, field.width),
                Place::Bitmap => get(
                    &l.pristine[0],
                    l.bitmap_at.unwrap() + field.offset,
                    field.width,
                ),
                Place::BadBlockLog | Place::Bytes { .. } => u64::MAX,
            };
            let mask = if field.width == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * field.width)) - 1
            };
            let mut values: Vec<u64> = EXTREMES.iter().map(|v| v & mask).collect();
            values.sort();
            values.dedup();
            for value in values {
                if value == current && field.with == 0 {
                    continue;
                }
                for who in whos(l) {
                    v.push(Case {
                        layout: l,
                        field,
                        value,
                        who,
                    });
                }
            }
        }
    }
    v
}

/// An image in memory, for examine.
struct Mem<'a>(&'a [u8]);

impl SectorReader for Mem<'_> {
    fn size_bytes(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let s = usize::try_from(offset)
            .ok()
            .filter(|&s| s.checked_add(buf.len()).is_some_and(|e| e <= self.0.len()))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(&self.0[s..s + buf.len()]);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    refused: usize,
    assembled: usize,
    /// Assembled, damage that leaves the geometry alone, every read the
    /// array's content.
    same: usize,
    degraded: usize,
    /// Assembled with damage that may change the geometry.
    geometry: usize,
    /// A `check` ran (and found what it should).
    checked: usize,
    read_errors: usize,
    /// Cases whose outcome real md was asked for.
    oracle: usize,
    failures: Vec<String>,
}

/// A member that runs in the array: where its data starts, what its image
/// held, and whether it can serve a read.
struct Leg {
    image: usize,
    data_offset: u64,
    in_sync: bool,
    bad: Vec<(u64, u64)>,
    /// Slot and usable sectors: where a concatenating level (a
    /// superblock whose level reads -1 runs as linear, as in the kernel)
    /// places this member.
    slot: i32,
    sectors: u64,
}

impl Leg {
    /// The bytes this leg holds at array byte `at`, if it can give them.
    fn view<'a>(&self, imgs: &'a [Vec<u8>], at: u64, len: usize) -> Option<&'a [u8]> {
        if !self.in_sync {
            return None;
        }
        let start = self.data_offset.checked_mul(512)?.checked_add(at)?;
        let end = start.checked_add(len as u64)?;
        if end > DEV_BYTES as u64 {
            return None;
        }
        let (s, e) = (start / 512, end.div_ceil(512));
        if self.bad.iter().any(|&(b, n)| b < e && s < b + n) {
            return None;
        }
        Some(&imgs[self.image][start as usize..end as usize])
    }
}

/// Read every attribute below `dir` (what a `grep -r . /sys/block/md0/md`
/// would): whatever the values, each show must answer.
fn read_all(t: &sysfs_like::Tree, dir: &str) {
    let Some(node) = t.lookup_path(dir) else {
        return;
    };
    for name in t.list(node).unwrap_or_default() {
        let path = format!("{dir}/{name}");
        let Some(n) = t.lookup_path(&path) else {
            continue;
        };
        match t.node_type(n) {
            Some(sysfs_like::NodeType::Dir) => read_all(t, &path),
            Some(sysfs_like::NodeType::Attr) => {
                let _ = t.read_attr(&path);
            }
            _ => {}
        }
    }
}

/// What a case came to.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    /// errno of each `new_dev` that failed.
    new_dev: Vec<Errno>,
    /// errno of `array_state` = active, if it failed.
    run: Option<Errno>,
    running: bool,
    degraded: u32,
    /// Pieces of the array read, and how many of them failed.
    reads: usize,
    failed_reads: usize,
    /// A `check` ran to its end.
    checked: bool,
    /// The damage changed the geometry md derives (or may have, for
    /// RAID1).
    geometry_changed: bool,
}

/// What real md did (see the top of the file), where it is not obvious.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Every member binds; the run fails with this errno.
    RunFails(Errno),
    /// The damaged members are refused with this errno.
    NotImported(Errno),
    /// The array runs (its reads checked as any other).
    Runs,
    /// The array runs and every read of it fails.
    RunsUnreadable,
    /// The array runs, degraded, reads past the members' end fail.
    RunsShortMembers,
}

const TWO_31: u64 = 1 << 31;

/// (layout, field, value, on, what real md did).
type OracleCase = (&'static str, &'static str, u64, Who, Expect);

#[rustfmt::skip]
const ORACLE: &[OracleCase] = &[
    ("1.2-nobitmap", "raid_disks", TWO_31 - 1, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2-nobitmap", "raid_disks", TWO_31, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2-nobitmap", "raid_disks", u32::MAX as u64, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2-nobitmap", "raid_disks", 0, Who::All, Expect::RunFails(Errno::EINVAL)),
    ("0.90", "raid_disks", TWO_31, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2-nobitmap", "size", 1 << 63, Who::All, Expect::Runs),
    ("1.2-nobitmap", "size", u64::MAX, Who::All, Expect::Runs),
    ("1.2-nobitmap", "size", 0, Who::All, Expect::Runs),
    ("1.2", "size", 0, Who::All, Expect::Runs),
    // Real md does not come back from allocating this bitmap (a soft
    // lockup); the allocation cannot succeed: ENOMEM.
    ("1.2", "size", 1 << 63, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2", "size", u64::MAX, Who::All, Expect::RunFails(Errno::ENOMEM)),
    ("1.2-nobitmap", "size", DEV_SECTORS + 1, Who::All, Expect::RunsShortMembers),
    ("1.2", "size", DEV_SECTORS + 1, Who::All, Expect::RunsShortMembers),
    ("1.2-nobitmap", "data_offset", 1 << 63, Who::All, Expect::RunsUnreadable),
    ("1.2-nobitmap", "data_offset", u64::MAX, Who::All, Expect::RunsUnreadable),
    // Real md fails vda too, but first reads it at data_offset + sector
    // modulo 2^64 (sector 7 for sector 8): mdfuse gives EIO there.
    ("1.2-nobitmap", "data_offset", u64::MAX, Who::One, Expect::Runs),
    ("1.0", "data_offset", DEV_SECTORS + 1, Who::All, Expect::RunFails(Errno::EIO)),
    ("1.2", "bblog_shift", 0xff, Who::All, Expect::NotImported(Errno::EINVAL)),
    ("1.2", "bad-block log entry[0]", 0, Who::All, Expect::Runs),
    ("1.2", "bitmap_offset", TWO_31 - 1, Who::All, Expect::RunFails(Errno::EIO)),
    ("1.2", "bitmap_offset", TWO_31, Who::All, Expect::RunFails(Errno::EIO)),
    ("1.2", "bitmap nodes", u32::MAX as u64, Who::All, Expect::RunFails(Errno::ENOENT)),
    ("1.2", "bitmap daemon_sleep", u32::MAX as u64, Who::All, Expect::Runs),
    ("1.2", "bitmap sync_size", u64::MAX, Who::All, Expect::Runs),
    ("1.2", "bitmap events_cleared", u64::MAX, Who::All, Expect::Runs),
    ("1.2", "bitmap sectors_reserved", u32::MAX as u64, Who::All, Expect::Runs),
    ("1.2", "bitmap chunksize", TWO_31, Who::All, Expect::Runs),
    ("1.2-nobitmap", "resync_offset", 1 << 63, Who::All, Expect::Runs),
    ("1.2-nobitmap", "recovery_offset", 1 << 63, Who::One, Expect::Runs),
    // vda is "non-fresh": events + 1 wraps to 0.
    ("1.2-nobitmap", "events", u64::MAX, Who::All, Expect::Runs),
];

fn expected(case: &Case) -> Option<Expect> {
    ORACLE
        .iter()
        .find(|(l, f, v, w, _)| {
            *l == case.layout.name && *f == case.field.name && *v == case.value && *w == case.who
        })
        .map(|e| e.4)
}

fn check_expected(case: &Case, o: &Outcome) -> Result<(), String> {
    let Some(want) = expected(case) else {
        return Ok(());
    };
    let ok = match want {
        Expect::RunFails(e) => o.new_dev.is_empty() && o.run == Some(e),
        Expect::NotImported(e) => !o.new_dev.is_empty() && o.new_dev.iter().all(|&x| x == e),
        Expect::Runs => o.running && o.failed_reads == 0,
        Expect::RunsUnreadable => o.running && o.reads > 0 && o.failed_reads == o.reads,
        Expect::RunsShortMembers => o.running && o.failed_reads > 0 && o.failed_reads < o.reads,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("real md: {want:?}; here: {o:?}"))
    }
}

fn run_case(md: &Arc<Md>, tree: &MdTree, case: &Case, tally: &mut Tally) {
    let name = case.name();
    let mut problems = Vec::new();
    let o = run_case_inner(md, tree, case, &mut problems);
    if let Some(o) = &o {
        if o.running {
            tally.assembled += 1;
            if o.degraded > 0 {
                tally.degraded += 1;
            }
            if o.failed_reads > 0 {
                tally.read_errors += 1;
            }
            if o.checked {
                tally.checked += 1;
            }
            if o.geometry_changed {
                tally.geometry += 1;
            } else if o.failed_reads == 0 && problems.is_empty() {
                tally.same += 1;
            }
        } else {
            tally.refused += 1;
        }
        if let Err(e) = check_expected(case, o) {
            problems.push(e);
        }
        if expected(case).is_some() {
            tally.oracle += 1;
        }
    }
    tally
        .failures
        .extend(problems.into_iter().map(|p| format!("{name}: {p}")));
}

fn run_case_inner(
    md: &Arc<Md>,
    tree: &MdTree,
    case: &Case,
    problems: &mut Vec<String>,
) -> Option<Outcome> {
    let l = case.layout;
    let imgs = case.images();
    // Between cases the members hold their pristine bytes: write what the
    // damage changed, and afterwards put back that and whatever md wrote.
    let mut touched: Vec<Vec<(u64, u64)>> = imgs
        .iter()
        .zip(&l.pristine)
        .map(|(img, orig)| {
            (0..DEV_BYTES / BLOCK)
                .filter(|b| img[b * BLOCK..(b + 1) * BLOCK] != orig[b * BLOCK..(b + 1) * BLOCK])
                .map(|b| ((b * BLOCK) as u64, BLOCK as u64))
                .collect()
        })
        .collect();
    for (i, ranges) in touched.iter().enumerate() {
        for &(at, len) in ranges {
            let (a, e) = (at as usize, (at + len) as usize);
            l.files[i].write_all_at(&imgs[i][a..e], at).unwrap();
        }
    }
    let written: Written = Arc::default();
    let o = run_md(md, tree, case, &imgs, &written, problems);
    touched.iter_mut().enumerate().for_each(|(i, t)| {
        t.extend(
            written
                .lock()
                .iter()
                .filter(|w| w.0 == i)
                .map(|w| (w.1, w.2)),
        );
    });
    for (i, ranges) in touched.iter().enumerate() {
        for &(at, len) in ranges {
            let a = (at as usize).min(DEV_BYTES);
            let e = (at.saturating_add(len) as usize).min(DEV_BYTES);
            l.files[i]
                .write_all_at(&l.pristine[i][a..e], a as u64)
                .unwrap();
        }
    }
    o
}

/// Writes md made to the members: (member, byte offset, length).
type Written = Arc<Mutex<Vec<(usize, u64, u64)>>>;

/// Bind, run, read, write and clear md0 on the members as `imgs` holds
/// them; every write md makes to member `i` is noted in `written` as
/// (i, offset, length).
fn run_md(
    md: &Arc<Md>,
    tree: &MdTree,
    case: &Case,
    imgs: &[Vec<u8>],
    written: &Written,
    problems: &mut Vec<String>,
) -> Option<Outcome> {
    let l = case.layout;
    for img in imgs {
        let dev = Mem(img);
        let _ = examine_probe(Path::new("vda"), &probe(&dev), Some(""))
            .json
            .render();
        let _ = examine_bitmap_on(Path::new("vda"), &dev).json.render();
    }
    let marker = format!("sweep: {}", case.name());
    md.log.info(&marker);
    let t = &tree.tree;
    if let Err(e) = t.write_attr("new_array", "md0") {
        problems.push(format!("new_array md0: errno {e}"));
        return None;
    }
    let mut o = Outcome::default();
    if let Err(e) = t.write_attr("md0/md/metadata_version", l.meta.version()) {
        problems.push(format!("metadata_version: errno {e}"));
    }
    for p in &l.paths {
        if let Err(e) = t.write_attr("md0/md/new_dev", p.to_str().unwrap()) {
            o.new_dev.push(e);
        }
    }
    let mddev = md.array("md0").expect("md0");
    for r in mddev.rdevs().iter() {
        let i = l.paths.iter().position(|p| p == r.disk.path()).unwrap();
        let written = written.clone();
        r.disk
            .faults()
            .set_observer(Some(Arc::new(move |ev: IoEvent| {
                if ev.op == FaultOp::Write && !ev.done {
                    written.lock().push((i, ev.offset, ev.len));
                }
            })));
    }
    if let Err(e) = t.write_attr("md0/md/array_state", "active") {
        o.run = Some(e);
    }
    read_all(t, "md0");
    let _ = t.read_attr("mdstat");
    o.running = mddev.is_running();
    if !o.running {
        if o.run.is_none() {
            problems.push("not running, yet array_state took active".into());
        }
        let log = md.log.contents();
        let since = log.rsplit_once(&marker).map(|(_, s)| s).unwrap_or("");
        if since.trim().is_empty() {
            problems.push(format!("refused ({o:?}) without a word in the log"));
        }
    } else {
        o.degraded = mddev.degraded();
        // Damage to a geometry field counts as such only where md derived
        // another geometry from it.
        o.geometry_changed = changes_geometry(case)
            && (l.content.is_empty() || !geometry_of(t, &mddev, &l.paths).within(&l.geometry));
        let legs: Vec<Leg> = mddev
            .rdevs()
            .iter()
            .filter(|r| r.raid_disk() >= 0 && !r.faulty())
            .map(|r| Leg {
                image: l.paths.iter().position(|p| p == r.disk.path()).unwrap(),
                data_offset: r.data_offset(),
                in_sync: r.in_sync(),
                slot: r.raid_disk(),
                sectors: r.sectors(),
                bad: r
                    .badblocks
                    .lock()
                    .entries()
                    .iter()
                    .map(|e| (e.sector, e.sectors))
                    .collect(),
            })
            .collect();
        let limit = if l.content.is_empty() {
            READ_LIMIT
        } else {
            l.content.len() as u64 + PIECE as u64
        };
        let size = mddev.array_bytes().min(limit);
        if l.content.is_empty() {
            let concatenated = mddev
                .pers()
                .is_some_and(|p| p.personality().name() == "linear");
            read_mirror(&mddev, imgs, &legs, concatenated, size, &mut o, problems);
        } else {
            let state = t.read_attr("md0/md/array_state").unwrap_or_default();
            read_content(case, &mddev, &state, &legs, size, &mut o, problems);
        }
        // A write of what is there (an update of the superblocks first).
        let mut first = vec![0u8; 4096];
        if matches!(mddev.read_data(&mut first, 0), Ok(4096)) {
            let _ = mddev.write_data(&first, 0);
        }
        read_all(t, "md0");
        check_mismatches(t, &mddev, case, &legs, &mut o, problems);
    }
    drop(mddev);
    if std::env::var_os("SWEEP_VERBOSE").is_some() {
        let log = md.log.contents();
        eprintln!("{}", log.rsplit_once(&marker).map(|(_, s)| s).unwrap_or(""));
    }
    if let Err(e) = t.write_attr("md0/md/array_state", "clear") {
        problems.push(format!("clear: errno {e}"));
    }
    if md.array("md0").is_some() {
        problems.push("md0 still there after clear".into());
    }
    Some(o)
}

/// Fields whose damage changes the geometry md derives for the array or
/// a member (see the top of the file): for levels other than RAID1 the
/// content is then not checked, only that reads succeed or give EIO.
const GEOMETRY_V1: &[&str] = &[
    "feature_map",
    "level",
    "layout",
    "size",
    "chunksize",
    "raid_disks",
    "new_level",
    "reshape_position",
    "delta_disks",
    "new_layout",
    "new_chunk",
    "new_offset",
    "data_offset",
    "data_size",
    "dev_number",
    "max_dev",
];

const GEOMETRY_V090: &[&str] = &[
    "minor_version",
    "level",
    "size",
    "raid_disks",
    "layout",
    "chunk_size",
    "reshape_position",
    "new_level",
    "delta_disks",
    "new_layout",
    "new_chunk",
];

/// v1 fields md takes from the member it takes the array's settings
/// from, and from no other: damaged on vda alone (bound first, which is
/// not that member while all are as fresh) they leave md0 as it was.
const REFERENCE_ONLY_V1: &[&str] = &[
    "size",
    "raid_disks",
    "new_level",
    "reshape_position",
    "delta_disks",
    "new_layout",
    "new_chunk",
];

fn changes_geometry(case: &Case) -> bool {
    let name = case.field.name;
    if case.who == Who::One
        && matches!(case.layout.meta, Meta::V1(_))
        && REFERENCE_ONLY_V1.contains(&name)
    {
        return false;
    }
    match case.field.place {
        Place::Bytes {
            area: Area::Super,
            fix_csum,
        } => fix_csum,
        Place::Super => match case.layout.meta {
            Meta::V1(_) => GEOMETRY_V1.contains(&name) || name.starts_with("dev_roles"),
            Meta::V090 => {
                GEOMETRY_V090.contains(&name)
                    || name.starts_with("disks[")
                    || name.starts_with("this_disk")
            }
        },
        _ => false,
    }
}

/// How many members a level can lose and still give every sector.
fn redundancy(level: &str) -> usize {
    match level {
        "raid1" | "raid4" | "raid5" | "raid10" => 1,
        "raid6" => 2,
        _ => 0,
    }
}

/// Read md0 (of any level but RAID1 as created) up to `size`.  Unless the
/// damage may change the geometry, every read must give the array's
/// content, an EIO only where more members than the level can lose are
/// missing or have bad blocks recorded; a linear or raid0 array does not
/// run short of members (md refuses that) unless it reads `broken`.
fn read_content(
    case: &Case,
    mddev: &Mddev,
    state: &str,
    legs: &[Leg],
    size: u64,
    o: &mut Outcome,
    problems: &mut Vec<String>,
) {
    let l = case.layout;
    let want = &l.content;
    let strict = !o.geometry_changed;
    // Linear and raid0 use every member in a slot, in sync or not.
    let serving = legs
        .iter()
        .filter(|g| g.in_sync || redundancy(l.level) == 0)
        .count();
    let short = (mddev.raid_disks() as usize).saturating_sub(serving);
    if strict {
        if mddev.array_bytes() != want.len() as u64 {
            problems.push(format!(
                "{} bytes in md0, not {}",
                mddev.array_bytes(),
                want.len()
            ));
        }
        if redundancy(l.level) == 0 && short > 0 && state.trim() != "broken" {
            problems.push(format!("runs {short} members short, array_state {state}"));
        }
    }
    let bad = legs.iter().filter(|g| !g.bad.is_empty()).count();
    let eio_allowed = short + bad > redundancy(l.level);
    let mut buf = vec![0u8; PIECE];
    let mut at = 0u64;
    while at < size {
        let len = PIECE.min((size - at) as usize);
        o.reads += 1;
        match mddev.read_data(&mut buf[..len], at) {
            Ok(0) => break,
            Ok(n) => {
                let held = want.get(at as usize..at as usize + n);
                if strict && held != Some(&buf[..n]) {
                    let first = held.map_or(0, |h| {
                        h.iter().zip(&buf).position(|(a, b)| a != b).unwrap_or(0)
                    });
                    problems.push(format!(
                        "byte {}: read other bytes than md0 holds",
                        at + first as u64
                    ));
                    break;
                }
                at += n as u64;
            }
            Err(e) => {
                o.failed_reads += 1;
                if e != Errno::EIO {
                    problems.push(format!("byte {at}: read failed with errno {e}, not EIO"));
                } else if strict && !eio_allowed {
                    problems.push(format!(
                        "byte {at}: EIO, {short} members short, {bad} with bad blocks"
                    ));
                }
                at += len as u64;
            }
        }
    }
}

/// How long md may take to finish a sync of these small arrays.
const SYNC_LIMIT: Duration = Duration::from_secs(10);

/// Wait until md0 has nothing left to do: no sync running or asked for,
/// no superblock update pending.
fn wait_idle(t: &sysfs_like::Tree, mddev: &Mddev) -> Result<(), String> {
    let t0 = Instant::now();
    let mut quiet = 0;
    while quiet < 3 {
        let action = t.read_attr("md0/md/sync_action").unwrap_or_default();
        let r = &mddev.recovery;
        let busy = mddev.sync.busy()
            || r.test(rec::RUNNING)
            || r.test(rec::NEEDED)
            || mddev.sb_flags.test(sbf::CHANGE_PENDING)
            || action.trim() != "idle";
        quiet = if busy { 0 } else { quiet + 1 };
        if t0.elapsed() > SYNC_LIMIT {
            return Err(format!("md0 still busy: sync_action {}", action.trim()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Whether a case's array is checked: one in `SWEEP_CHECK_EVERY` (16
/// unless set; 1 checks every case, 0 none), picked by the case's name.
fn sampled(case: &Case) -> bool {
    let every: u64 = std::env::var("SWEEP_CHECK_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let fnv = case.name().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    every != 0 && fnv % every == 0
}

/// A `check` of a redundant array that runs whole, where the damage left
/// the geometry alone: the members agree, so it finds no mismatch unless
/// bad blocks are recorded.
fn check_mismatches(
    t: &sysfs_like::Tree,
    mddev: &Mddev,
    case: &Case,
    legs: &[Leg],
    o: &mut Outcome,
    problems: &mut Vec<String>,
) {
    if o.geometry_changed || redundancy(case.layout.level) == 0 || !sampled(case) {
        return;
    }
    if let Err(e) = wait_idle(t, mddev) {
        problems.push(e);
        return;
    }
    if mddev.degraded() > 0 || !mddev.is_running() {
        return;
    }
    if let Err(e) = t.write_attr("md0/md/sync_action", "check") {
        problems.push(format!("sync_action check: errno {e}"));
        return;
    }
    if let Err(e) = wait_idle(t, mddev) {
        problems.push(format!("check: {e}"));
        return;
    }
    o.checked = true;
    let cnt = t.read_attr("md0/md/mismatch_cnt").unwrap_or_default();
    if cnt.trim() != "0" && legs.iter().all(|g| g.bad.is_empty()) {
        problems.push(format!("check: mismatch_cnt {}", cnt.trim()));
    }
}

/// Read md0 (a RAID1 as created, whatever its superblocks now say) up to
/// `size`: every sector read must be what a running member holds there,
/// an EIO only where none can give it.
fn read_mirror(
    mddev: &Mddev,
    imgs: &[Vec<u8>],
    legs: &[Leg],
    concatenated: bool,
    size: u64,
    o: &mut Outcome,
    problems: &mut Vec<String>,
) {
    let mut buf = vec![0u8; PIECE];
    let mut at = 0u64;
    while at < size {
        let len = PIECE.min((size - at) as usize);
        o.reads += 1;
        match mddev.read_data(&mut buf[..len], at) {
            Ok(0) => break,
            Ok(n) => {
                for s in (0..n).step_by(512) {
                    let e = (s + 512).min(n);
                    let got = &buf[s..e];
                    let pos = at + s as u64;
                    let held = if concatenated {
                        // Members one after the other, by slot.
                        let mut start = 0u64;
                        let mut by_slot: Vec<&Leg> = legs.iter().collect();
                        by_slot.sort_by_key(|g| g.slot);
                        by_slot.iter().any(|g| {
                            let here = (start..start + g.sectors * 512).contains(&pos);
                            let ok = here && g.view(imgs, pos - start, e - s) == Some(got);
                            start += g.sectors * 512;
                            ok
                        })
                    } else {
                        legs.iter().any(|g| g.view(imgs, pos, e - s) == Some(got))
                    };
                    if !held {
                        problems.push(format!("byte {pos}: read what no member holds"));
                        break;
                    }
                }
                at += n as u64;
            }
            Err(e) => {
                o.failed_reads += 1;
                if e != Errno::EIO {
                    problems.push(format!("byte {at}: read failed with errno {e}, not EIO"));
                } else if legs.iter().any(|g| g.view(imgs, at, len).is_some()) {
                    problems.push(format!("byte {at}: EIO, yet a member holds the data"));
                }
                at += len as u64;
            }
        }
    }
}

#[test]
fn damaged_fields_are_refused_or_assembled() {
    sweep(
        |dir| {
            vec![
                v1_layout(dir, "1.2", 2, true),
                v1_layout(dir, "1.2-nobitmap", 2, false),
                v1_layout(dir, "1.1", 1, true),
                v1_layout(dir, "1.0", 0, true),
                v090_layout(dir, "raid1-v0.90", "0.90", "raid1"),
            ]
        },
        ORACLE,
    );
}

#[test]
fn damaged_fields_other_levels() {
    sweep(
        |dir| {
            vec![
                level_layout(dir, "linear", "linear", "-l linear -n 2", 2, false),
                level_layout(dir, "raid0", "raid0", "-l 0 -n 3 -c 64", 2, false),
                level_layout(dir, "raid0-1.1", "raid0", "-l 0 -n 2 -c 64", 1, false),
                level_layout(dir, "raid10-n2", "raid10", "-l 10 -n 4 -c 64", 2, true),
                level_layout(
                    dir,
                    "raid10-f2",
                    "raid10",
                    "-l 10 -n 3 -p f2 -c 64",
                    2,
                    false,
                ),
                level_layout(
                    dir,
                    "raid10-o2",
                    "raid10",
                    "-l 10 -n 3 -p o2 -c 64",
                    2,
                    true,
                ),
                level_layout(dir, "raid4", "raid4", "-l 4 -n 3 -c 64", 2, true),
                level_layout(dir, "raid5", "raid5", "-l 5 -n 3 -c 64", 2, true),
                level_layout(dir, "raid5-1.0", "raid5", "-l 5 -n 4 -p ra -c 64", 0, true),
                v090_layout(dir, "raid5-v0.90", "raid5-0.90", "raid5"),
                level_layout(dir, "raid6", "raid6", "-l 6 -n 4 -c 64", 2, true),
            ]
        },
        &[],
    );
}

/// Run every case of the layouts `build` makes (in a directory of its
/// own), each checked as the top of the file says and against `oracle`.
fn sweep(build: fn(&Path) -> Vec<Layout>, oracle: &'static [OracleCase]) {
    if common::missing(&["zstd"]) {
        return;
    }
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::Builder::new()
            .prefix("mdfuse-sweep-")
            .tempdir_in("/dev/shm")
            .unwrap()
    } else {
        common::tempdir()
    };
    let dir = base.path().to_path_buf();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let current = Arc::new(Mutex::new(String::from("setting up")));
    let worker = {
        let current = current.clone();
        std::thread::spawn(move || {
            let layouts = build(&dir);
            // Syncs of these small members run unthrottled.
            let md = Md::new(MdOptions {
                speed_limit_max: 100_000_000,
                ..MdOptions::default()
            });
            mdfuse::register_personalities(&md);
            let tree = MdTree::new(md.clone(), 0, 0);
            let mut tallies: Vec<(&str, Tally)> =
                layouts.iter().map(|l| (l.name, Tally::default())).collect();
            let all = cases(&layouts);
            for (l, f, v, w, _) in oracle {
                assert!(
                    all.iter().any(|c| c.layout.name == *l
                        && c.field.name == *f
                        && c.value == *v
                        && c.who == *w),
                    "real md's case {l} {f} = {v:#x} on {w:?} is not swept"
                );
            }
            // SWEEP_ONLY=TEXT runs the cases whose name holds TEXT.
            let only = std::env::var("SWEEP_ONLY").unwrap_or_default();
            for case in all {
                let name = case.name();
                if !name.contains(&only) {
                    continue;
                }
                if std::env::var_os("SWEEP_VERBOSE").is_some() {
                    eprintln!("case: {name}");
                }
                *current.lock() = name.clone();
                tx.send(Some(name)).unwrap();
                let i = layouts.iter().position(|l| l.name == case.layout.name);
                let tally = &mut tallies[i.unwrap()].1;
                tally.cases += 1;
                run_case(&md, &tree, &case, tally);
            }
            md.stop_all();
            // Every case put back what it changed.
            for l in &layouts {
                for (p, orig) in l.paths.iter().zip(&l.pristine) {
                    assert!(
                        fs::read(p).unwrap() == *orig,
                        "{} not as it was",
                        p.display()
                    );
                }
            }
            tx.send(None).unwrap();
            tallies
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect::<Vec<_>>()
        })
    };
    loop {
        match rx.recv_timeout(CASE_LIMIT) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{} took more than {CASE_LIMIT:?}", current.lock())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let tallies = worker
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    let mut failures = Vec::new();
    let mut cases = 0;
    for (name, t) in &tallies {
        eprintln!(
            "{name}: {} cases: {} refused, {} assembled ({} same content, {} degraded, \
             {} geometry changed, {} with reads that failed, {} checked); {} as real md",
            t.cases,
            t.refused,
            t.assembled,
            t.same,
            t.degraded,
            t.geometry,
            t.read_errors,
            t.checked,
            t.oracle
        );
        cases += t.cases;
        failures.extend(t.failures.iter().cloned());
    }
    eprintln!("{cases} cases in {:.1?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {cases} cases went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(base);
}

/// A `raid_disks` larger than md can allocate its per-member table for
/// (2^31-1), or negative as md's int (2^31), on every member: the run
/// fails at once with md's errno.  Linear's allocation failure is
/// `linear_run`'s failure for any problem (EINVAL here); raid0's member
/// lists and raid4/5/6's disk table fail with ENOMEM; raid6 refuses a
/// negative count as fewer than 4 devices (EINVAL).
#[test]
fn huge_raid_disks_fail_the_run_at_once() {
    const EINVAL: Errno = Errno::EINVAL;
    const ENOMEM: Errno = Errno::ENOMEM;
    let dir = common::tempdir();
    let meta = Meta::V1(2);
    let levels = [
        ("linear", 2, [EINVAL, EINVAL]),
        ("0", 2, [ENOMEM, ENOMEM]),
        ("4", 3, [ENOMEM, ENOMEM]),
        ("5", 3, [ENOMEM, ENOMEM]),
        ("6", 4, [ENOMEM, EINVAL]),
    ];
    for (level, n, want) in levels {
        for (value, want) in [(TWO_31 - 1, want[0]), (TWO_31, want[1])] {
            let ctx = format!("level {level}, raid_disks {value:#x}");
            let args = format!("-l {level} -n {n} -c 64");
            let paths = create(
                dir.path(),
                &format!("{level}-{value:x}"),
                meta,
                false,
                &args,
                n,
            );
            for p in &paths {
                let mut img = fs::read(p).unwrap();
                let sb = &mut img[meta.sb_at()..meta.sb_at() + 4096];
                put(sb, 92, 4, value);
                fix_csum(meta, sb);
                fs::write(p, &img).unwrap();
            }
            let md = Md::new(MdOptions::default());
            mdfuse::register_personalities(&md);
            let tree = MdTree::new(md.clone(), 0, 0);
            let t = &tree.tree;
            t.write_attr("new_array", "md0").unwrap();
            t.write_attr("md0/md/metadata_version", meta.version())
                .unwrap();
            for p in &paths {
                t.write_attr("md0/md/new_dev", p.to_str().unwrap())
                    .unwrap_or_else(|e| panic!("{ctx}: new_dev: errno {e}"));
            }
            let t0 = Instant::now();
            assert_eq!(
                t.write_attr("md0/md/array_state", "active"),
                Err(want),
                "{ctx}"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "{ctx}: {:?}",
                t0.elapsed()
            );
            t.write_attr("md0/md/array_state", "clear").unwrap();
            md.stop_all();
        }
    }
}
