//! `ExamineBitmap`: the write-intent bitmap as mdadm 4.2's bitmap.c prints
//! it.

use super::*;

/// Bits read from a bitmap: (total bits, dirty bits), short when the device
/// ends early.
pub struct BitCount {
    pub total: u64,
    pub dirty: u64,
    pub truncated: bool,
}

/// Count the set bits of a bitmap whose bits start at byte `off` of `dev`
/// (`bitmap_fd_read`), reading at most 1 MiB at a time.
pub fn count_bits(dev: &dyn SectorReader, off: u64, sb: &BitmapSuper) -> BitCount {
    if sb.sync_size == 0 || sb.chunksize == 0 {
        return BitCount {
            total: 0,
            dirty: 0,
            truncated: false,
        };
    }
    let total = bitmap_bits(sb.sync_size, sb.chunksize as u64);
    let mut read_bits = 0u64;
    let mut dirty = 0u64;
    let mut pos = off;
    while read_bits < total {
        let want = (total - read_bits).div_ceil(8).min(1 << 20) as usize;
        let buf = match read_upto(dev, pos, want) {
            Ok(b) if !b.is_empty() => b,
            _ => break,
        };
        let bits = (total - read_bits).min(buf.len() as u64 * 8);
        dirty += count_dirty(&buf, bits);
        read_bits += bits;
        pos += buf.len() as u64;
    }
    BitCount {
        total: read_bits,
        dirty,
        truncated: read_bits < total,
    }
}

/// Set bits among the first `bits` bits of `buf` (LSB first).
pub fn count_dirty(buf: &[u8], bits: u64) -> u64 {
    let full = (bits / 8) as usize;
    let mut n: u64 = buf[..full.min(buf.len())]
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum();
    let rest = bits % 8;
    if rest != 0 {
        if let Some(b) = buf.get(full) {
            n += (b & ((1u8 << rest) - 1)).count_ones() as u64;
        }
    }
    n
}

/// `mdadm --examine-bitmap DEVICE` for a member device.
pub fn examine_bitmap(device: &Path) -> Report {
    let name = device.display().to_string();
    let dev = match RoDevice::open(device) {
        Ok(d) => d,
        Err(e) => {
            return Report::fail(
                device,
                format!("failed to open bitmap file {name}: {}", e.0),
            );
        }
    };
    examine_bitmap_on(device, &dev)
}

/// `examine_bitmap` on an already open device named `device`.
pub fn examine_bitmap_on(device: &Path, dev: &dyn SectorReader) -> Report {
    let name = device.display().to_string();
    let p = probe(dev);
    let (offset, uuid_words) = match &p.found {
        None => (0, false),
        Some(Found::V090 { sb_start, .. }) => (sb_start * 512 + 4096, true),
        Some(Found::V1 { sb, bitmap, .. }) => match bitmap {
            Some(_) => (
                (sb.super_offset as i64 + sb.bitmap_offset as i32 as i64) as u64 * 512,
                false,
            ),
            None => return Report::fail(device, format!("{name} doesn't have bitmap")),
        },
        Some(Found::Undecodable {
            version,
            sb_start,
            error,
        }) => {
            return Report::fail(
                device,
                format!("{name}: v{version} superblock at sector {sb_start}: {error}"),
            );
        }
    };
    let head = match read_upto(dev, offset, 256) {
        Ok(b) if b.len() == 256 => b,
        Ok(_) => {
            return Report::fail(
                device,
                "failed to read superblock of bitmap file: the device ends inside it".into(),
            );
        }
        Err(e) => {
            return Report::fail(
                device,
                format!(
                    "failed to read superblock of bitmap file: {}",
                    crate::cli::probe::strerror(&e)
                ),
            );
        }
    };
    let Ok(bms) = BitmapSuper::parse(&head) else {
        return Report::fail(device, "failed to read superblock of bitmap file".into());
    };
    let bits = count_bits(dev, offset + 256, &bms);
    let (text, errors, ok) = write_bitmap(&name, &bms, uuid_words, &bits);
    let json = json_bitmap(&name, &bms, uuid_words, &bits, ok);
    Report {
        text,
        errors,
        failed: !ok,
        json,
    }
}

pub(super) fn bitmap_uuid(bms: &BitmapSuper, words: bool) -> String {
    if words {
        let w = |i: usize| u32::from_le_bytes(bms.uuid[i..i + 4].try_into().expect("4 bytes"));
        format!("{:08x}:{:08x}:{:08x}:{:08x}", w(0), w(4), w(8), w(12))
    } else {
        uuid_colon(&bms.uuid)
    }
}

pub(super) fn bitmap_state(state: u32) -> &'static str {
    match state {
        0 => "OK",
        2 => "Out of date",
        _ => "Unknown",
    }
}

/// `ExamineBitmap`'s text: (stdout, stderr lines, success).  `uuid_words`
/// prints the UUID as host-order words (0.90) rather than bytes (1.x).
pub fn write_bitmap(
    name: &str,
    sb: &BitmapSuper,
    uuid_words: bool,
    bits: &BitCount,
) -> (Vec<u8>, Vec<String>, bool) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    if sb.magic != BITMAP_MAGIC {
        err.push("This is an md array.  To view a bitmap you need to examine".into());
        err.push("a member device, not the array.".into());
        err.push("Reporting bitmap that would be used if this array were used".into());
        err.push("as a member of some other array".into());
    }
    let _ = writeln!(out, "        Filename : {name}");
    let _ = writeln!(out, "           Magic : {:08x}", sb.magic);
    if sb.magic != BITMAP_MAGIC {
        err.push(format!(
            "invalid bitmap magic 0x{:x}, the bitmap file appears",
            sb.magic
        ));
        err.push("to be corrupted or missing.".into());
    }
    let _ = writeln!(out, "         Version : {}", sb.version as i32);
    if !(BITMAP_MAJOR_LO..=BITMAP_MAJOR_CLUSTERED).contains(&sb.version) {
        err.push(format!(
            "unknown bitmap version {}, either the bitmap file",
            sb.version as i32
        ));
        err.push("is corrupted or you need to upgrade your tools".into());
        return (out, err, false);
    }
    let _ = writeln!(out, "            UUID : {}", bitmap_uuid(sb, uuid_words));
    if sb.nodes == 0 {
        let _ = writeln!(out, "          Events : {}", sb.events);
        let _ = writeln!(out, "  Events Cleared : {}", sb.events_cleared);
        let _ = writeln!(out, "           State : {}", bitmap_state(sb.state));
    }
    let _ = writeln!(
        out,
        "       Chunksize : {}",
        human_chunksize(sb.chunksize as u64)
    );
    let _ = writeln!(
        out,
        "          Daemon : {}s flush period",
        sb.daemon_sleep as i32
    );
    if sb.write_behind != 0 {
        let _ = writeln!(
            out,
            "      Write Mode : Allow write behind, max {}",
            sb.write_behind as i32
        );
    } else {
        let _ = writeln!(out, "      Write Mode : Normal");
    }
    let _ = writeln!(
        out,
        "       Sync Size : {}{}",
        sb.sync_size / 2,
        human_size(sb.sync_size.wrapping_mul(512) as i64)
    );
    if sb.nodes == 0 {
        if bits.truncated {
            err.push(format!(
                "WARNING: bitmap file is not large enough for array size {}!",
                sb.sync_size
            ));
        }
        let _ = writeln!(
            out,
            "          Bitmap : {} bits (chunks), {} dirty ({}%)",
            bits.total,
            bits.dirty,
            percent(bits.dirty, bits.total)
        );
    } else {
        let _ = writeln!(out, "   Cluster nodes : {}", sb.nodes as i32);
        let name = c_str(&sb.cluster_name);
        let _ = writeln!(
            out,
            "    Cluster name : {:<64}",
            String::from_utf8_lossy(name)
        );
    }
    (out, err, true)
}
