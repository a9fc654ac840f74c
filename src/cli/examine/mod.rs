//! `mdfuse examine`: what `mdadm --examine` (and `--examine-bitmap`) print
//! for a member device, in mdadm 4.2's layout and wording (super1.c
//! `examine_super1`, super0.c `examine_super0`, bitmap.c `ExamineBitmap`),
//! plus a JSON form of the same facts.
//!
//! Where mdadm prints a superblock that Linux would refuse (a bad checksum,
//! unknown feature bits, non-zero padding, ...), the same text is printed
//! and one line on stderr names the device and the kernel's reason; the
//! exit status is then 1, except for a checksum mismatch alone, where it is
//! 0 as with mdadm 4.2 (its own "- expected" line is the report).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use super::fmt::{ctime24, homehost, human_chunksize, human_size, percent};
use super::json::Json;
use super::probe::{Found, Probe, RoDevice, probe, read_upto};
use crate::format::bitmap::{BITMAP_MAGIC, BITMAP_MAJOR_CLUSTERED, BITMAP_MAJOR_LO, BitmapSuper};
use crate::format::geometry::{bitmap_bits, bitmap_bytes};
use crate::format::super0::{Disk0, disk_state, sb_state};
use crate::format::super1::{MAX_SECTOR, devflags, feature, role};
use crate::format::{FormatError, Minor, SectorReader, Superblock0, Superblock1, uuid_colon};

mod bitmap;
mod json;
mod super0;
mod super1;

pub use bitmap::{
    BitCount, count_bits, count_dirty, examine_bitmap, examine_bitmap_on, write_bitmap,
};
use bitmap::{bitmap_state, bitmap_uuid};
use json::json_bitmap;
pub use json::{json_super0, json_super1};
pub use super0::is_local_v090;
pub use super0::write_super0;
use super1::{array_state, own_role};
pub use super1::{unused_space, write_super1};

/// Print the md superblock of each DEVICE, as `mdadm --examine` does.
#[derive(clap::Args, Debug)]
pub struct ExamineArgs {
    /// Print the internal write-intent bitmap instead, as `mdadm
    /// --examine-bitmap` does for a member device (an image file is read
    /// as a member too, not as an external bitmap file).
    #[arg(short = 'X', long = "examine-bitmap")]
    pub bitmap: bool,
    /// Print a JSON array with one object per device instead of text.
    #[arg(long)]
    pub json: bool,
    /// The host name for the "(local to host ...)" note [default: this
    /// host's name; `<none>` for no host].
    #[arg(long, value_name = "HOST")]
    pub homehost: Option<String>,
    /// Member devices or image files.
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

/// The outcome for one device.
pub struct Report {
    /// What goes to stdout.
    pub text: Vec<u8>,
    /// Lines for stderr (without the "mdfuse: " prefix).
    pub errors: Vec<String>,
    /// Whether this device makes the exit status non-zero.
    pub failed: bool,
    pub json: Json,
}

impl Report {
    fn fail(device: &Path, msg: String) -> Report {
        Report {
            text: Vec::new(),
            json: Json::obj()
                .field("device", device.display().to_string())
                .field("error", msg.clone())
                .build(),
            errors: vec![msg],
            failed: true,
        }
    }
}

pub fn run(args: ExamineArgs) -> ExitCode {
    let host = homehost(args.homehost.as_deref());
    let mut failed = false;
    let mut items = Vec::new();
    let stdout = std::io::stdout();
    for dev in &args.devices {
        let r = if args.bitmap {
            examine_bitmap(dev)
        } else {
            examine(dev, host.as_deref())
        };
        if !args.json {
            let mut out = stdout.lock();
            let _ = out.write_all(&r.text);
            let _ = out.flush();
        }
        for e in &r.errors {
            eprintln!("mdfuse: {e}");
        }
        failed |= r.failed;
        items.push(r.json);
    }
    if args.json {
        println!("{}", Json::Arr(items).render());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `mdadm --examine DEVICE`.
pub fn examine(device: &Path, homehost: Option<&str>) -> Report {
    let dev = match RoDevice::open(device) {
        Ok(d) => d,
        Err(e) => {
            return Report::fail(device, format!("cannot open {}: {}", device.display(), e.0));
        }
    };
    let p = probe(&dev);
    examine_probe(device, &p, homehost)
}

/// The examine report for what `probe` found on `device`.
pub fn examine_probe(device: &Path, p: &Probe, homehost: Option<&str>) -> Report {
    let name = device.display().to_string();
    let Some(found) = &p.found else {
        return Report::fail(device, no_superblock(&name, p));
    };
    let mut text = format!("{name}:\n").into_bytes();
    let (problem, facts) = match found {
        Found::Undecodable {
            version,
            sb_start,
            error,
        } => {
            return Report::fail(
                device,
                format!("{name}: v{version} superblock at sector {sb_start}: {error}"),
            );
        }
        Found::V1 {
            minor,
            sb,
            bitmap,
            bitmap_error,
        } => {
            let shown = shown_v1(sb, bitmap.as_ref());
            write_super1(&mut text, &shown, bitmap.as_ref(), p.dev_sectors, homehost);
            let facts = json_super1(&shown, bitmap.as_ref(), p.dev_sectors, homehost);
            let mut verdict = kernel_verdict_v1(sb, *minor, p.dev_sectors);
            if matches!(verdict, Verdict::Ok) {
                let bitmap_check = match (bitmap, bitmap_error) {
                    (_, Some(e)) => Err(e.clone()),
                    (Some(b), None) if b.is_llbitmap() => Err(FormatError::BadBitmap {
                        reason: "version 6 is the lockless bitmap (llbitmap), which Linux 6.18 and later read and mdfuse does not",
                    }),
                    (Some(b), None) => b.validate(),
                    (None, None) => Ok(()),
                };
                if let Err(e) = bitmap_check {
                    verdict = Verdict::Refused(e);
                }
            }
            (verdict, facts)
        }
        Found::V090 { sb, bitmap, .. } => {
            let shown = shown_v090(sb, bitmap.as_ref());
            write_super0(&mut text, &shown, homehost, &map_dev);
            let facts = json_super0(&shown, homehost);
            (kernel_verdict_v090(sb, p.dev_sectors), facts)
        }
    };
    let mut obj = match facts {
        Json::Obj(f) => f,
        _ => Vec::new(),
    };
    obj.insert(0, ("device".to_string(), Json::Str(name.clone())));
    let (errors, failed) = match &problem {
        Verdict::Ok => (Vec::new(), false),
        Verdict::ChecksumOnly(e) => (vec![format!("{name}: {e}")], false),
        Verdict::Refused(e) => (vec![format!("{name}: {e}")], true),
    };
    obj.push((
        "kernel_accepts".to_string(),
        Json::Bool(matches!(problem, Verdict::Ok)),
    ));
    if let Verdict::ChecksumOnly(e) | Verdict::Refused(e) = &problem {
        obj.push(("problem".to_string(), Json::Str(e.to_string())));
    }
    Report {
        text,
        errors,
        failed,
        json: Json::Obj(obj),
    }
}

/// mdadm's "No md superblock detected on X.", with the reason when md's
/// magic (or a damaged copy of a superblock) was seen somewhere.
pub(super) fn no_superblock(name: &str, p: &Probe) -> String {
    if let Some(r) = p.rejected.first() {
        return format!(
            "No md superblock detected on {name}: v{} superblock at sector {}: {}.",
            r.version, r.sb_start, r.error
        );
    }
    if let Some(e) = &p.io_error {
        return format!(
            "No md superblock detected on {name}: {}.",
            super::probe::strerror(e)
        );
    }
    if p.dev_sectors < 24 {
        return format!(
            "No md superblock detected on {name}: size is {} sectors, too small for md.",
            p.dev_sectors
        );
    }
    format!("No md superblock detected on {name}.")
}

/// What Linux would say about a superblock mdadm prints.
pub(super) enum Verdict {
    Ok,
    /// Only the checksum is wrong: mdadm 4.2 prints "- expected" and
    /// exits 0.
    ChecksumOnly(FormatError),
    Refused(FormatError),
}

pub(super) fn kernel_verdict_v1(sb: &Superblock1, minor: Minor, dev_sectors: u64) -> Verdict {
    let mut fixed = sb.clone();
    fixed.update_csum();
    match fixed.validate(minor, dev_sectors) {
        Err(e) => Verdict::Refused(e),
        Ok(()) => match sb.validate(minor, dev_sectors) {
            Err(e) => Verdict::ChecksumOnly(e),
            Ok(()) => Verdict::Ok,
        },
    }
}

pub(super) fn kernel_verdict_v090(sb: &Superblock0, dev_sectors: u64) -> Verdict {
    let mut fixed = sb.clone();
    fixed.update_csum();
    match fixed.validate(dev_sectors) {
        Err(e) => Verdict::Refused(e),
        Ok(()) => match sb.validate(dev_sectors) {
            Err(e) => Verdict::ChecksumOnly(e),
            Ok(()) => Verdict::Ok,
        },
    }
}

/// The superblock as mdadm shows it: `load_super1` drops BITMAP_OFFSET
/// when the bitmap it points at is missing or belongs to another array.
pub fn shown_v1(sb: &Superblock1, bitmap: Option<&BitmapSuper>) -> Superblock1 {
    let mut s = sb.clone();
    if bitmap.is_none() {
        s.feature_map &= !feature::BITMAP_OFFSET;
    }
    s
}

/// Likewise for 0.90 and its BITMAP_PRESENT state bit.
pub fn shown_v090(sb: &Superblock0, bitmap: Option<&BitmapSuper>) -> Superblock0 {
    let mut s = sb.clone();
    if bitmap.is_none() {
        s.state &= !sb_state::BITMAP_PRESENT;
    }
    s
}

/// mdadm's `pers[]` table: the first name of each level.
pub fn level_name(level: i32) -> Option<&'static str> {
    Some(match level {
        -1 => "linear",
        0 => "raid0",
        1 => "raid1",
        4 => "raid4",
        5 => "raid5",
        -4 => "multipath",
        6 => "raid6",
        10 => "raid10",
        -5 => "faulty",
        -100 => "container",
        _ => return None,
    })
}

pub fn r5layout(l: u32) -> Option<&'static str> {
    Some(match l {
        0 => "left-asymmetric",
        1 => "right-asymmetric",
        2 => "left-symmetric",
        3 => "right-symmetric",
        4 => "parity-first",
        5 => "parity-last",
        _ => return None,
    })
}

pub fn r6layout(l: u32) -> Option<&'static str> {
    Some(match l {
        8 => "ddf-zero-restart",
        9 => "ddf-N-restart",
        10 => "ddf-N-continue",
        16 => "left-asymmetric-6",
        17 => "right-asymmetric-6",
        18 => "left-symmetric-6",
        19 => "right-symmetric-6",
        20 => "parity-first-6",
        l => return r5layout(l),
    })
}

pub fn r0layout(l: u32) -> Option<&'static str> {
    Some(match l {
        1 => "original",
        2 => "alternate",
        0 => "dangerous",
        _ => return None,
    })
}

/// `print_r10_layout`.
pub fn r10layout(layout: u32) -> String {
    let near = layout & 255;
    let far = (layout >> 8) & 255;
    let offset = layout & 0x10000 != 0;
    let mut s = String::new();
    let mut sep = "";
    if near != 1 {
        s += &format!("{sep} near={near}");
        sep = ",";
    }
    if far != 1 {
        s += &format!("{sep} {}={far}", if offset { "offset" } else { "far" });
    }
    if near * far == 1 {
        s += "NO REDUNDANCY";
    }
    s
}

/// How mdadm's 0.90 printer words a new RAID10 layout (every field, unlike
/// `r10layout`).
pub(super) fn r10layout_090(layout: u32) -> String {
    format!(
        " near={}, {}={}",
        layout & 255,
        if layout & 0x10000 != 0 {
            "offset"
        } else {
            "far"
        },
        (layout >> 8) & 255
    )
}

/// mdadm's words for a RAID5, 6 or 10 layout, as they follow "Layout :"
/// (RAID10's bring their own leading space); none for other levels.
pub(super) fn layout_words(level: u32, layout: u32) -> Option<String> {
    match level {
        5 => Some(format!(" {}", r5layout(layout).unwrap_or("-unknown-"))),
        6 => Some(format!(" {}", r6layout(layout).unwrap_or("-unknown-"))),
        10 => Some(r10layout(layout)),
        _ => None,
    }
}

/// Data devices per copy for the "Array Size" line: (numerator, denominator).
pub(super) fn data_disks(level: u32, raid_disks: u32, layout: u32) -> (i64, i64) {
    let rd = raid_disks as i32;
    match level {
        1 => (1, 1),
        4 | 5 => (rd.wrapping_sub(1) as i64, 1),
        6 => (rd.wrapping_sub(2) as i64, 1),
        10 => (rd as i64, ((layout & 255) * ((layout >> 8) & 255)) as i64),
        _ => (0, 1),
    }
}

/// What a reshape in progress changes, as both superblock versions hold it.
pub(super) struct Reshape {
    position: u64,
    delta_disks: i32,
    raid_disks: i32,
    level: u32,
    new_level: u32,
    layout: u32,
    new_layout: u32,
}

/// The reshape lines mdadm prints alike for 0.90 and 1.x: position, delta
/// devices, new level and new layout (`r10_words` words a new RAID10
/// layout, which the two versions print differently).  Returns the devices
/// a shrinking reshape removes, which the array state line counts.
pub(super) fn write_reshape(out: &mut Vec<u8>, r: &Reshape, r10_words: fn(u32) -> String) -> u32 {
    let mut delta_extra = 0;
    let _ = writeln!(
        out,
        "  Reshape pos'n : {}{}",
        r.position / 2,
        human_size((r.position << 9) as i64)
    );
    if r.delta_disks != 0 {
        let (dd, rd) = (r.delta_disks, r.raid_disks);
        let _ = writeln!(
            out,
            "  Delta Devices : {dd} ({}->{rd})",
            rd.wrapping_sub(dd)
        );
        if dd < 0 {
            delta_extra = dd.wrapping_neg() as u32;
        }
    }
    if r.new_level != r.level {
        let _ = writeln!(
            out,
            "      New Level : {}",
            level_name(r.new_level as i32).unwrap_or("-unknown-")
        );
    }
    if r.new_layout != r.layout {
        let words = match r.level {
            10 => Some(r10_words(r.new_layout)),
            level => layout_words(level, r.new_layout),
        };
        if let Some(words) = words {
            let _ = writeln!(out, "     New Layout :{words}");
        }
    }
    delta_extra
}

/// The bytes of a NUL-padded C string field, up to the first NUL.
pub(super) fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// mdadm's `map_dev`: the /dev name of a block device number, preferring
/// /dev/md/ names, else the shortest (the last one found on a tie, as
/// mdadm's list is built newest-first).
pub fn map_dev(major: u32, minor: u32) -> Option<String> {
    if major == 0 && minor == 0 {
        return None;
    }
    static NAMES: OnceLock<Vec<(u64, String)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut v = Vec::new();
        walk_dev(Path::new("/dev"), &mut v, 0);
        v
    });
    let want = libc::makedev(major, minor);
    let mut preferred: Option<&str> = None;
    let mut regular: Option<&str> = None;
    for (rdev, name) in names.iter().rev() {
        if *rdev != want {
            continue;
        }
        let slot = if name.starts_with("/dev/md/") {
            &mut preferred
        } else {
            &mut regular
        };
        if slot.is_none_or(|s| name.len() < s.len()) {
            *slot = Some(name);
        }
    }
    preferred.or(regular).map(str::to_string)
}

pub(super) fn walk_dev(dir: &Path, out: &mut Vec<(u64, String)>, depth: usize) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        let Ok(lmeta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let meta = if lmeta.file_type().is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(_) => continue,
            }
        } else {
            lmeta.clone()
        };
        if meta.file_type().is_block_device() {
            out.push((meta.rdev(), path.display().to_string()));
        }
        if lmeta.file_type().is_dir() {
            walk_dev(&path, out, depth + 1);
        }
    }
}

/// Which metadata a probe found, for callers outside examine (e.g. create's
/// "already part of an array" check).
pub fn describe(found: &Found) -> String {
    match found {
        Found::V1 { sb, .. } => format!(
            "level={} devices={} ctime={} (metadata {})",
            level_name(sb.level).unwrap_or("-unknown-"),
            sb.raid_disks as i32,
            ctime24((sb.ctime & 0xff_ffff_ffff) as i64),
            found.version()
        ),
        Found::V090 { sb, .. } => format!(
            "level={} devices={} ctime={} (metadata 0.90)",
            level_name(sb.level).unwrap_or("-unknown-"),
            sb.raid_disks as i32,
            ctime24(sb.ctime as i64)
        ),
        Found::Undecodable { version, error, .. } => {
            format!("an unreadable v{version} superblock ({error})")
        }
    }
}
