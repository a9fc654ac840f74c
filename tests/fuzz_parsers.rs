//! Property tests: arbitrary bytes, and real superblocks with random bytes
//! changed, go through every parser, the kernel's checks and examine's
//! formatting without a panic; whatever decodes encodes back to the same
//! bytes; and every geometry `create` can compute is one the kernel
//! accepts, with bitmap and bad-block log clear of data and superblock.

mod common;

use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use mdfuse::cli::examine::{
    BitCount, examine_bitmap_on, examine_probe, json_super0, json_super1, write_bitmap,
    write_super0, write_super1,
};
use mdfuse::cli::probe::probe;
use mdfuse::format::geometry::{
    ArraySpec, MemberSpec, default_data_offset, default_raid1_size, device_layout, free_sectors,
    max_dev_for, plan_bitmap, superblock_for,
};
use mdfuse::format::{
    BitmapSuper, Minor, SectorReader, Superblock0, Superblock1, badblocks, super1::feature,
};
use proptest::prelude::*;

/// A sparse in-memory device: zeros except for the given regions.
#[derive(Debug, Clone)]
struct MemDev {
    size: u64,
    regions: Vec<(u64, Vec<u8>)>,
}

impl SectorReader for MemDev {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.fill(0);
        for (at, data) in &self.regions {
            let (rs, re) = (*at, *at + data.len() as u64);
            let (s, e) = (rs.max(offset), re.min(end));
            if s < e {
                buf[(s - offset) as usize..(e - offset) as usize]
                    .copy_from_slice(&data[(s - rs) as usize..(e - rs) as usize]);
            }
        }
        Ok(())
    }
}

const REGION: u64 = 1 << 20;

/// The first and last MiB of every fixture image: all their metadata.
fn seeds() -> &'static Vec<MemDev> {
    static SEEDS: OnceLock<Vec<MemDev>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v = Vec::new();
        for f in common::fixtures() {
            let (_dir, imgs) = common::unpack(&f);
            for img in imgs {
                let raw = fs::read(img).unwrap();
                let size = raw.len() as u64;
                v.push(MemDev {
                    size,
                    regions: vec![
                        (0, raw[..REGION as usize].to_vec()),
                        (size - REGION, raw[(size - REGION) as usize..].to_vec()),
                    ],
                });
            }
        }
        v
    })
}

/// Examine everything there is to examine on `dev`.
fn examine_all(dev: &MemDev) {
    let p = probe(dev);
    let name = Path::new("mem.img");
    for host in [None, Some("realmd"), Some("")] {
        let r = examine_probe(name, &p, host);
        let _ = r.json.render();
        assert!(r.errors.iter().all(|e| !e.contains('\n')), "{:?}", r.errors);
    }
    let r = examine_bitmap_on(name, dev);
    let _ = r.json.render();
}

fn format_v1(sb: &Superblock1, bitmap: Option<&BitmapSuper>, dev_sectors: u64) {
    let mut out = Vec::new();
    write_super1(&mut out, sb, bitmap, dev_sectors, Some("realmd"));
    let _ = json_super1(sb, bitmap, dev_sectors, None).render();
}

fn format_v090(sb: &Superblock0) {
    let mut out = Vec::new();
    write_super0(&mut out, sb, Some("realmd"), &|_, _| None);
    let _ = json_super0(sb, None).render();
}

/// Proptest's 256 cases from a fixed seed, so every run checks the same
/// inputs (PROPTEST_RNG_SEED picks another), and no regression files.
/// The long mode: `MDFUSE_FUZZ_CASES=N` runs N cases of each fuzzer
/// (PROPTEST_CASES works too).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if let Some(n) = std::env::var("MDFUSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        c.cases = n;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x6d64_6675_7365);
    }
    c.failure_persistence = None;
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn v1_superblock_from_any_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 0..4200),
        magic in any::<bool>(),
        dev_sectors in 0u64..1 << 42,
        bm in prop::collection::vec(any::<u8>(), 256),
    ) {
        if magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        }
        if let Ok(sb) = Superblock1::parse(&bytes) {
            prop_assert_eq!(&sb.to_bytes()[..], &bytes[..sb.len()]);
            for m in [Minor::V0, Minor::V1, Minor::V2] {
                let _ = sb.validate(m, dev_sectors);
            }
            let bms = BitmapSuper::parse(&bm).unwrap();
            format_v1(&sb, None, dev_sectors);
            format_v1(&sb, Some(&bms), dev_sectors);
        }
    }

    #[test]
    fn v090_superblock_from_any_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 4096),
        dev_sectors in 0u64..1 << 42,
    ) {
        bytes[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        let sb = Superblock0::parse(&bytes).unwrap();
        prop_assert_eq!(&sb.to_bytes()[..], &bytes[..]);
        let _ = sb.validate(dev_sectors);
        format_v090(&sb);
    }

    #[test]
    fn bitmap_superblock_from_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        total in any::<u64>(),
        dirty in any::<u64>(),
        words in any::<bool>(),
    ) {
        if let Ok(b) = BitmapSuper::parse(&bytes) {
            prop_assert_eq!(&b.to_bytes()[..], &bytes[..256]);
            let _ = b.validate();
            let _ = (b.chunks(), b.bitmap_bytes());
            let bits = BitCount { total, dirty: dirty.min(total), truncated: dirty % 2 == 0 };
            let _ = write_bitmap("mem.img", &b, words, &bits);
        }
    }

    #[test]
    fn bad_block_log_from_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..5000),
        shift in any::<u8>(),
    ) {
        if let Ok(ranges) = badblocks::parse(&bytes, shift) {
            prop_assert!(ranges.len() <= badblocks::BB_MAX_ENTRIES);
            let _ = badblocks::serialize(&ranges, shift, bytes.len());
        }
    }

    #[test]
    fn examine_any_small_device(
        bytes in prop::collection::vec(any::<u8>(), 0..70_000),
        magic_at in prop::sample::select(vec![0usize, 4096, 8192, 12288, 65536]),
        major in 0u32..3,
    ) {
        let mut bytes = bytes;
        if bytes.len() >= magic_at + 8 {
            bytes[magic_at..magic_at + 4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
            bytes[magic_at + 4..magic_at + 8].copy_from_slice(&major.to_le_bytes());
        }
        let dev = MemDev { size: bytes.len() as u64, regions: vec![(0, bytes)] };
        examine_all(&dev);
    }

    #[test]
    fn examine_mutated_fixtures(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<bool>(), 0u64..3 * 4096 + 512, any::<u8>()), 1..12),
    ) {
        let seeds = seeds();
        let mut dev = seeds[which.index(seeds.len())].clone();
        let size = dev.size;
        // Edit near each place a superblock or bitmap can be: the start
        // (1.1, 1.2, their bitmaps) and the end (1.0, 0.90, their bitmaps).
        for (at_end, off, val) in edits {
            let pos = if at_end { size - 20 * 4096 + off * 4 % (20 * 4096) } else { off };
            for (start, data) in dev.regions.iter_mut() {
                if pos >= *start && pos < *start + data.len() as u64 {
                    data[(pos - *start) as usize] = val;
                }
            }
        }
        examine_all(&dev);
    }

    #[test]
    fn created_geometry_is_accepted(
        dev_sectors in prop::collection::vec(24u64..1 << 40, 1..4),
        minor in prop::sample::select(vec![Minor::V0, Minor::V1, Minor::V2]),
        bitmap in any::<bool>(),
        chunk_shift in prop::option::of(12u32..31),
        size_kib in prop::option::of(4u64..1 << 30),
    ) {
        let data_offset = default_data_offset(minor, dev_sectors[0]);
        let mut min_free = u64::MAX;
        for &d in &dev_sectors {
            match free_sectors(minor, d, data_offset) {
                Ok(f) => min_free = min_free.min(f),
                Err(_) => return Ok(()),
            }
        }
        let size = match size_kib {
            Some(k) if k * 2 <= min_free => k * 2,
            Some(_) => return Ok(()),
            None => default_raid1_size(min_free),
        };
        if size == 0 {
            return Ok(());
        }
        let plan = if bitmap {
            match plan_bitmap(minor, size, chunk_shift.map(|s| 1u64 << s)) {
                Ok(p) => Some(p),
                Err(_) => return Ok(()),
            }
        } else {
            None
        };
        let n = dev_sectors.len() as u32;
        let pairs: Vec<(u32, u32)> = (0..n).map(|i| (i, i)).collect();
        let (roles, max_dev) = ArraySpec::roles_for(n, &pairs, max_dev_for(n));
        let spec = ArraySpec {
            minor,
            level: 1,
            layout: 0,
            chunk_sectors: 0,
            features: 0,
            raid_disks: n,
            size,
            data_offset,
            bitmap: plan,
            set_uuid: [7; 16],
            set_name: mdfuse::format::geometry::set_name("0", Some("host")),
            ctime: 1_700_000_000,
            clean: false,
            max_dev,
            roles,
        };
        for (i, &d) in dev_sectors.iter().enumerate() {
            let m = MemberSpec { dev_number: i as u32, dev_sectors: d, write_mostly: i == 1, device_uuid: [i as u8; 16] };
            let sb = superblock_for(&spec, &m);
            prop_assert!(sb.validate(minor, d).is_ok(), "{:?}", sb.validate(minor, d));
            prop_assert!(sb.data_size >= size);
            let sb_start = sb.super_offset as i64;
            let sb_end = sb_start + 8;
            let data = (sb.data_offset as i64, (sb.data_offset + size) as i64);
            let clear = |a: i64, b: i64| b <= data.0 || a >= data.1;
            let off_sb = |a: i64, b: i64| b <= sb_start || a >= sb_end;
            if let Some(p) = &spec.bitmap {
                prop_assert!(sb.has(feature::BITMAP_OFFSET));
                let a = sb_start + p.offset as i64;
                let b = a + p.sectors() as i64;
                prop_assert!(a >= 0 && b <= d as i64, "bitmap {}..{} on {}", a, b, d);
                prop_assert!(clear(a, b) && off_sb(a, b), "bitmap {}..{} data {:?} sb {}", a, b, data, sb_start);
            }
            if sb.bblog_size > 0 {
                let a = sb_start + sb.bblog_offset as i64;
                let b = a + sb.bblog_size as i64;
                prop_assert!(clear(a, b) && off_sb(a, b), "bblog {}..{} data {:?}", a, b, data);
                if let Some(p) = &spec.bitmap {
                    let ba = sb_start + p.offset as i64;
                    let bb = ba + p.sectors() as i64;
                    prop_assert!(b <= ba || a >= bb, "bblog {}..{} bitmap {}..{}", a, b, ba, bb);
                }
            }
            let l = device_layout(minor, d, size, data_offset, spec.bitmap.as_ref());
            prop_assert_eq!(l.data_size, sb.data_size);
        }
    }
}
