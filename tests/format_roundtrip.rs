//! Every superblock and bitmap superblock real md wrote (the oracle
//! fixtures) decodes, passes the kernel's checks, and encodes back to the
//! identical bytes.

mod common;

use std::fs;

use common::*;
use mdfuse::disk::Disk;
use mdfuse::format::bitmap::BITMAP_SB_LEN;
use mdfuse::format::super0::{self, SB0_BYTES};
use mdfuse::format::super1::feature;
use mdfuse::format::{AnySuper, BitmapSuper, MetadataVersion, Probe, badblocks, probe};

#[test]
fn fixture_superblocks_round_trip() {
    let mut sbs = 0;
    let mut bitmaps = 0;
    for f in fixtures() {
        let (_dir, imgs) = unpack(&f);
        for img in &imgs {
            let raw = fs::read(img).unwrap();
            let dev = Disk::open(img, false).unwrap();
            let sectors = raw.len() as u64 / 512;
            let mut found = 0;
            for v in MetadataVersion::ALL {
                let Probe::Found(any) = probe(&dev, v) else {
                    continue;
                };
                let start = v.sb_start(sectors).unwrap() as usize * 512;
                match any {
                    AnySuper::V1(minor, sb) => {
                        let len = sb.len();
                        assert_eq!(sb.to_bytes(), raw[start..start + len], "{f} {v}");
                        sb.validate(minor, sectors)
                            .unwrap_or_else(|e| panic!("{f} {}: {e}", img.display()));
                        if let Some(off) = sb.bitmap_offset_sectors() {
                            let b = (start as i64 + off * 512) as usize;
                            let bms = BitmapSuper::parse(&raw[b..b + BITMAP_SB_LEN]).unwrap();
                            bms.validate().unwrap();
                            assert_eq!(bms.uuid, sb.set_uuid, "{f}");
                            assert_eq!(&bms.to_bytes()[..], &raw[b..b + BITMAP_SB_LEN], "{f}");
                            bitmaps += 1;
                        }
                        if sb.has(feature::BAD_BLOCKS) {
                            let at = (start as i64 + sb.bblog_offset as i64 * 512) as usize;
                            let area = &raw[at..at + sb.bblog_size as usize * 512];
                            let ranges = badblocks::parse(area, sb.bblog_shift).unwrap();
                            let again =
                                badblocks::serialize(&ranges, sb.bblog_shift, area.len()).unwrap();
                            assert_eq!(again, area, "{f}: bad-block log");
                        }
                    }
                    AnySuper::V090(sb) => {
                        assert_eq!(sb.to_bytes(), raw[start..start + SB0_BYTES], "{f}");
                        sb.validate(sectors).unwrap();
                        assert_eq!(start as u64, super0::sb_start(sectors).unwrap() * 512);
                    }
                }
                found += 1;
            }
            assert_eq!(found, 1, "{f} {}: exactly one superblock", img.display());
            sbs += 1;
        }
    }
    assert!(sbs >= 20, "{sbs} superblocks");
    assert!(bitmaps >= 15, "{bitmaps} bitmaps");
}
