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
fn no_superblock(name: &str, p: &Probe) -> String {
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
enum Verdict {
    Ok,
    /// Only the checksum is wrong: mdadm 4.2 prints "- expected" and
    /// exits 0.
    ChecksumOnly(FormatError),
    Refused(FormatError),
}

fn kernel_verdict_v1(sb: &Superblock1, minor: Minor, dev_sectors: u64) -> Verdict {
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

fn kernel_verdict_v090(sb: &Superblock0, dev_sectors: u64) -> Verdict {
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

fn r5layout(l: u32) -> Option<&'static str> {
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

fn r6layout(l: u32) -> Option<&'static str> {
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

fn r0layout(l: u32) -> Option<&'static str> {
    Some(match l {
        1 => "original",
        2 => "alternate",
        0 => "dangerous",
        _ => return None,
    })
}

/// `print_r10_layout`.
fn r10layout(layout: u32) -> String {
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
fn r10layout_090(layout: u32) -> String {
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
fn layout_words(level: u32, layout: u32) -> Option<String> {
    match level {
        5 => Some(format!(" {}", r5layout(layout).unwrap_or("-unknown-"))),
        6 => Some(format!(" {}", r6layout(layout).unwrap_or("-unknown-"))),
        10 => Some(r10layout(layout)),
        _ => None,
    }
}

/// Data devices per copy for the "Array Size" line: (numerator, denominator).
fn data_disks(level: u32, raid_disks: u32, layout: u32) -> (i64, i64) {
    let rd = raid_disks as i32;
    match level {
        1 => (1, 1),
        4 | 5 => (rd.wrapping_sub(1) as i64, 1),
        6 => (rd.wrapping_sub(2) as i64, 1),
        10 => (rd as i64, ((layout & 255) * ((layout >> 8) & 255)) as i64),
        _ => (0, 1),
    }
}

/// `getinfo_super1`'s free space around the data: (before, after), with
/// after = 1 meaning "none either side" (then mdadm prints no line).
pub fn unused_space(
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
) -> (u64, u64) {
    let bitmap_offset = if sb.has(feature::BITMAP_OFFSET) {
        sb.bitmap_offset as i32 as i64
    } else {
        0
    };
    let (ppl_offset, ppl_size) = if !sb.has(feature::BITMAP_OFFSET) && any_ppl(sb) {
        (
            (sb.bitmap_offset & 0xffff) as i64,
            (sb.bitmap_offset >> 16) as u64,
        )
    } else {
        (0, 0)
    };
    let data_size = if sb.level <= 0 { sb.data_size } else { sb.size };
    let so = sb.super_offset;
    let has_log = sb.bblog_offset != 0 && sb.bblog_size != 0;
    let (before, mut after);
    if sb.data_offset < so {
        before = sb.data_offset;
        let mut end = so;
        if has_log {
            let bb = so.wrapping_add(sb.bblog_offset as i64 as u64);
            end = end.min(bb);
        }
        let bm = so
            .wrapping_add(bitmap_offset as u64)
            .wrapping_add(ppl_offset as u64);
        end = end.min(bm);
        after = if sb.data_offset.wrapping_add(data_size) < end {
            end.wrapping_sub(data_size).wrapping_sub(sb.data_offset)
        } else {
            0
        };
    } else {
        let mut earliest = so.wrapping_add((32 + 4) * 2);
        if bitmap_offset > 0 {
            let bms_sectors = match bitmap {
                // calc_bitmap_size returns an unsigned int.
                Some(b) => {
                    (bitmap_bytes(b.sync_size, b.chunksize as u64, 4096) as u32 / 512) as u64
                }
                None => 0,
            };
            earliest = earliest.max((bitmap_offset as u64).wrapping_add(bms_sectors));
        } else if ppl_offset > 0 {
            earliest = earliest.max((ppl_offset as u64).wrapping_add(ppl_size));
        }
        if has_log {
            let bbend = so
                .wrapping_add(sb.bblog_offset as i64 as u64)
                .wrapping_add(sb.bblog_size as u64);
            earliest = earliest.max(bbend);
        }
        before = sb.data_offset.saturating_sub(earliest);
        after = dev_sectors
            .wrapping_sub(data_size)
            .wrapping_sub(sb.data_offset);
    }
    if before == 0 && after == 0 {
        after = 1;
    }
    (before, after)
}

fn any_ppl(sb: &Superblock1) -> bool {
    sb.feature_map & (feature::PPL | feature::MULTIPLE_PPLS) != 0
}

/// The role in a device's own superblock, as `role_from_sb`.
fn own_role(sb: &Superblock1) -> u16 {
    sb.role_of(sb.dev_number)
}

/// Highest slot the "Array State" line walks to (mdadm walks
/// `raid_disks + delta_extra`; roles are 16-bit, so nothing past 0xffff
/// can be active).
const ARRAY_STATE_CAP: u64 = 1 << 16;

/// `examine_super1`.
pub fn write_super1(
    out: &mut Vec<u8>,
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
    homehost: Option<&str>,
) {
    let fm = sb.feature_map;
    let level = sb.level as u32;
    let _ = writeln!(out, "          Magic : {:08x}", sb.magic);
    let minor = if sb.super_offset <= 4 {
        ".1"
    } else if sb.super_offset <= 8 {
        ".2"
    } else {
        ".0"
    };
    let _ = writeln!(out, "        Version : 1{minor}");
    let _ = writeln!(out, "    Feature Map : 0x{fm:x}");
    let _ = writeln!(out, "     Array UUID : {}", uuid_colon(&sb.set_uuid));
    out.extend_from_slice(b"           Name : ");
    out.extend_from_slice(c_str(&sb.set_name));
    if let Some(h) = homehost {
        let l = h.len();
        if l > 0 && l < 32 && sb.set_name[l] == b':' && &sb.set_name[..l] == h.as_bytes() {
            let _ = write!(out, "  (local to host {h})");
        }
    }
    out.push(b'\n');
    if let Some(b) = bitmap {
        if b.nodes > 0 && fm & feature::BITMAP_OFFSET != 0 {
            out.extend_from_slice(b"   Cluster Name : ");
            let name = c_str(&b.cluster_name);
            out.extend_from_slice(name);
            out.extend(std::iter::repeat_n(
                b' ',
                64usize.saturating_sub(name.len()),
            ));
            out.push(b'\n');
        }
    }
    let _ = writeln!(
        out,
        "  Creation Time : {}",
        ctime24((sb.ctime & 0xff_ffff_ffff) as i64)
    );
    let _ = writeln!(
        out,
        "     Raid Level : {}",
        level_name(sb.level).unwrap_or("-unknown-")
    );
    let _ = writeln!(out, "   Raid Devices : {}", sb.raid_disks as i32);
    out.push(b'\n');
    let _ = writeln!(
        out,
        " Avail Dev Size : {} sectors{}",
        sb.data_size,
        human_size((sb.data_size << 9) as i64)
    );
    if level > 0 {
        let (ddsks, denom) = data_disks(level, sb.raid_disks, sb.layout);
        if ddsks != 0 && denom != 0 {
            let asize = ((sb.size as i64) << 9)
                .wrapping_mul(ddsks)
                .wrapping_div(denom);
            let _ = writeln!(
                out,
                "     Array Size : {} KiB{}",
                (asize >> 10) as u64,
                human_size(asize)
            );
        }
        if sb.size != sb.data_size {
            let _ = writeln!(
                out,
                "  Used Dev Size : {} sectors{}",
                sb.size,
                human_size((sb.size << 9) as i64)
            );
        }
    }
    if sb.data_offset != 0 {
        let _ = writeln!(out, "    Data Offset : {} sectors", sb.data_offset);
    }
    if sb.new_offset != 0 && fm & feature::NEW_OFFSET != 0 {
        let off = sb
            .data_offset
            .wrapping_add(sb.new_offset as i32 as i64 as u64);
        let _ = writeln!(out, "     New Offset : {off} sectors");
    }
    let _ = writeln!(out, "   Super Offset : {} sectors", sb.super_offset);
    if fm & feature::RECOVERY_OFFSET != 0 {
        let _ = writeln!(out, "Recovery Offset : {} sectors", sb.recovery_offset);
    }
    let (before, after) = unused_space(sb, bitmap, dev_sectors);
    if after != 1 && fm & feature::NEW_OFFSET == 0 {
        let _ = writeln!(
            out,
            "   Unused Space : before={before} sectors, after={after} sectors"
        );
    }
    let state = if sb.resync_offset != MAX_SECTOR {
        "active"
    } else {
        "clean"
    };
    let _ = writeln!(out, "          State : {state}");
    let _ = writeln!(out, "    Device UUID : {}", uuid_colon(&sb.device_uuid));
    out.push(b'\n');
    if fm & feature::BITMAP_OFFSET != 0 {
        let _ = writeln!(
            out,
            "Internal Bitmap : {} sectors from superblock",
            sb.bitmap_offset as i32
        );
    } else if any_ppl(sb) {
        let _ = writeln!(
            out,
            "            PPL : {} sectors at offset {} sectors from superblock",
            sb.bitmap_offset >> 16,
            sb.bitmap_offset & 0xffff
        );
    }
    let mut delta_extra: u32 = 0;
    if fm & feature::RESHAPE_ACTIVE != 0 {
        let reshape = Reshape {
            position: sb.reshape_position,
            delta_disks: sb.delta_disks as i32,
            raid_disks: sb.raid_disks as i32,
            level,
            new_level: sb.new_level,
            layout: sb.layout,
            new_layout: sb.new_layout,
        };
        delta_extra = write_reshape(out, &reshape, r10layout);
        if sb.new_chunk != sb.chunksize {
            let _ = writeln!(out, "  New Chunksize : {}K", (sb.new_chunk / 2) as i32);
        }
        out.push(b'\n');
    }
    if sb.devflags != 0 {
        out.extend_from_slice(b"          Flags :");
        if sb.devflags & devflags::WRITE_MOSTLY != 0 {
            out.extend_from_slice(b" write-mostly");
        }
        if sb.devflags & devflags::FAIL_FAST != 0 {
            out.extend_from_slice(b" failfast");
        }
        out.push(b'\n');
    }
    let _ = writeln!(
        out,
        "    Update Time : {}",
        ctime24((sb.utime & 0xff_ffff_ffff) as i64)
    );
    if sb.bblog_size != 0 && sb.bblog_offset != 0 {
        let _ = write!(
            out,
            "  Bad Block Log : {} entries available at offset {} sectors",
            sb.bblog_size as u32 * 512 / 8,
            sb.bblog_offset
        );
        if fm & feature::BAD_BLOCKS != 0 {
            out.extend_from_slice(b" - bad blocks present.");
        }
        out.push(b'\n');
    }
    let calc = sb.compute_csum();
    if calc == sb.sb_csum {
        let _ = writeln!(out, "       Checksum : {:x} - correct", sb.sb_csum);
    } else {
        let _ = writeln!(
            out,
            "       Checksum : {:x} - expected {calc:x}",
            sb.sb_csum
        );
    }
    let _ = writeln!(out, "         Events : {}", sb.events);
    out.push(b'\n');
    if level == 0 && fm & feature::RAID0_LAYOUT != 0 {
        let _ = writeln!(
            out,
            "         Layout : {}",
            r0layout(sb.layout).unwrap_or("-unknown-")
        );
    }
    if let Some(words) = layout_words(level, sb.layout) {
        let _ = writeln!(out, "         Layout :{words}");
    }
    match level {
        0 | 4 | 5 | 6 | 10 => {
            let _ = writeln!(out, "     Chunk Size : {}K", (sb.chunksize / 2) as i32);
        }
        0xffff_ffff => {
            let _ = writeln!(out, "       Rounding : {}K", (sb.chunksize / 2) as i32);
        }
        _ => {}
    }
    out.push(b'\n');
    let r = own_role(sb);
    let role_text = if r >= role::FAULTY {
        "spare".to_string()
    } else if r == role::JOURNAL {
        "Journal".to_string()
    } else if fm & feature::REPLACEMENT != 0 {
        format!("Replacement device {r}")
    } else {
        format!("Active device {r}")
    };
    let _ = writeln!(out, "   Device Role : {role_text}");
    out.extend_from_slice(b"   Array State : ");
    let (state, inconsistent) = array_state(sb, delta_extra);
    out.extend_from_slice(state.as_bytes());
    out.extend_from_slice(b" ('A' == active, '.' == missing, 'R' == replacing)\n");
    if inconsistent {
        out.extend_from_slice(
            b"WARNING Array state is inconsistent - each number should appear only once\n",
        );
        for (d, &r) in sb.dev_roles.iter().enumerate() {
            if r >= role::FAULTY {
                let _ = write!(out, " {d}:-");
            } else {
                let _ = write!(out, " {d}:{r}");
            }
        }
        out.push(b'\n');
    }
}

/// What a reshape in progress changes, as both superblock versions hold it.
struct Reshape {
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
fn write_reshape(out: &mut Vec<u8>, r: &Reshape, r10_words: fn(u32) -> String) -> u32 {
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

/// The "Array State" letters and whether the roles are inconsistent.
fn array_state(sb: &Superblock1, delta_extra: u32) -> (String, bool) {
    let mut count: HashMap<u16, u32> = HashMap::new();
    for &r in &sb.dev_roles {
        *count.entry(r).or_default() += 1;
    }
    let slots = sb.raid_disks.wrapping_add(delta_extra);
    let mut s = String::new();
    let mut inconsistent = false;
    for d in 0..(slots as u64).min(ARRAY_STATE_CAP) {
        let cnt = u16::try_from(d)
            .ok()
            .and_then(|d| count.get(&d).copied())
            .unwrap_or(0);
        s.push(match cnt {
            2 if sb.level != 0 => 'R',
            1 => 'A',
            0 => '.',
            _ => {
                inconsistent = true;
                '?'
            }
        });
    }
    for &r in &sb.dev_roles {
        if r <= role::MAX && r as u32 > slots {
            inconsistent = true;
        }
    }
    (s, inconsistent)
}

/// The bytes of a NUL-padded C string field, up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// `examine_super0`.  `devname` maps a major:minor to a /dev name as
/// mdadm's `map_dev` does.
pub fn write_super0(
    out: &mut Vec<u8>,
    sb: &Superblock0,
    homehost: Option<&str>,
    devname: &dyn Fn(u32, u32) -> Option<String>,
) {
    let _ = writeln!(out, "          Magic : {:08x}", sb.md_magic);
    let _ = writeln!(
        out,
        "        Version : {}.{:02}.{:02}",
        sb.major_version as i32, sb.minor_version as i32, sb.patch_version as i32
    );
    if sb.minor_version >= 90 {
        let _ = write!(
            out,
            "           UUID : {:08x}:{:08x}:{:08x}:{:08x}",
            sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3
        );
        if let Some(h) = homehost {
            if is_local_v090(sb, h) {
                let _ = write!(out, " (local to host {h})");
            }
        }
        out.push(b'\n');
    } else {
        let _ = writeln!(out, "           UUID : {:08x}", sb.set_uuid0);
    }
    if sb.not_persistent != 0 {
        out.extend_from_slice(b"           Eedk : not persistent\n");
    }
    let _ = writeln!(out, "  Creation Time : {}", ctime24(sb.ctime as i64));
    let _ = writeln!(
        out,
        "     Raid Level : {}",
        level_name(sb.level).unwrap_or("-unknown-")
    );
    if sb.level > 0 {
        let _ = writeln!(
            out,
            "  Used Dev Size : {}{}",
            sb.size as i32,
            human_size((sb.size as i64) << 10)
        );
        let (ddsks, denom) = data_disks(sb.level as u32, sb.raid_disks, sb.layout);
        if ddsks != 0 && denom != 0 {
            let asize = ((sb.size as i64) << 10)
                .wrapping_mul(ddsks)
                .wrapping_div(denom);
            let _ = writeln!(
                out,
                "     Array Size : {}{}",
                (asize >> 10) as u64,
                human_size(asize)
            );
        }
    }
    let _ = writeln!(out, "   Raid Devices : {}", sb.raid_disks as i32);
    let _ = writeln!(out, "  Total Devices : {}", sb.nr_disks as i32);
    let _ = writeln!(out, "Preferred Minor : {}", sb.md_minor as i32);
    out.push(b'\n');
    let mut delta_extra: u32 = 0;
    if sb.minor_version > 90 && sb.reshape_position != u64::MAX {
        let reshape = Reshape {
            position: sb.reshape_position,
            delta_disks: sb.delta_disks as i32,
            raid_disks: sb.raid_disks as i32,
            level: sb.level as u32,
            new_level: sb.new_level,
            layout: sb.layout,
            new_layout: sb.new_layout,
        };
        delta_extra = write_reshape(out, &reshape, r10layout_090);
        if sb.new_chunk != sb.chunk_size {
            let _ = writeln!(out, "  New Chunksize : {}", sb.new_chunk as i32);
        }
        out.push(b'\n');
    }
    let _ = writeln!(out, "    Update Time : {}", ctime24(sb.utime as i64));
    let state = if sb.state & sb_state::CLEAN != 0 {
        "clean"
    } else {
        "active"
    };
    let _ = writeln!(out, "          State : {state}");
    if sb.state & sb_state::BITMAP_PRESENT != 0 {
        out.extend_from_slice(b"Internal Bitmap : present\n");
    }
    let _ = writeln!(out, " Active Devices : {}", sb.active_disks as i32);
    let _ = writeln!(out, "Working Devices : {}", sb.working_disks as i32);
    let _ = writeln!(out, " Failed Devices : {}", sb.failed_disks as i32);
    let _ = writeln!(out, "  Spare Devices : {}", sb.spare_disks as i32);
    let calc = sb.compute_csum();
    if calc == sb.sb_csum {
        let _ = writeln!(out, "       Checksum : {:x} - correct", sb.sb_csum);
    } else {
        let _ = writeln!(
            out,
            "       Checksum : {:x} - expected {calc:x}",
            sb.sb_csum
        );
    }
    let _ = writeln!(out, "         Events : {}", sb.events());
    out.push(b'\n');
    if let Some(words) = layout_words(sb.level as u32, sb.layout) {
        let _ = writeln!(out, "         Layout :{words}");
    }
    match sb.level {
        0 | 4 | 5 | 6 | 10 => {
            let _ = writeln!(out, "     Chunk Size : {}K", (sb.chunk_size / 1024) as i32);
        }
        -1 => {
            let _ = writeln!(out, "       Rounding : {}K", (sb.chunk_size / 1024) as i32);
        }
        _ => {}
    }
    out.push(b'\n');
    out.extend_from_slice(b"      Number   Major   Minor   RaidDevice State\n");
    let rows = sb
        .raid_disks
        .wrapping_add(delta_extra)
        .wrapping_add(sb.spare_disks) as i32;
    // mdadm indexes disks[] without a bound; disks[27] is this_disk.
    let rows = rows.min(crate::format::super0::MD_SB_DISKS as i32 + 1);
    for d in -1..rows {
        let dp: &Disk0 = if d < 0 {
            &sb.this_disk
        } else {
            sb.disks.get(d as usize).unwrap_or(&sb.this_disk)
        };
        let label = if d < 0 {
            "this".to_string()
        } else {
            format!("{d:4}")
        };
        let _ = write!(
            out,
            "{label:>4} {:5}   {:5}    {:5}    {:5}     ",
            dp.number as i32, dp.major as i32, dp.minor as i32, dp.raid_disk as i32
        );
        let wonly = dp.state & disk_state::WRITEMOSTLY;
        let failfast = dp.state & disk_state::FAILFAST;
        let st = dp.state & !(wonly | failfast);
        if st & disk_state::FAULTY != 0 {
            out.extend_from_slice(b" faulty");
        }
        if st & disk_state::ACTIVE != 0 {
            out.extend_from_slice(b" active");
        }
        if st & disk_state::SYNC != 0 {
            out.extend_from_slice(b" sync");
        }
        if st & disk_state::REMOVED != 0 {
            out.extend_from_slice(b" removed");
        }
        if wonly != 0 {
            out.extend_from_slice(b" write-mostly");
        }
        if failfast != 0 {
            out.extend_from_slice(b" failfast");
        }
        if st == 0 {
            out.extend_from_slice(b" spare");
        }
        if let Some(name) = devname(dp.major, dp.minor) {
            let _ = write!(out, "   {name}");
        }
        out.push(b'\n');
        if d == -1 {
            out.push(b'\n');
        }
    }
}

/// A 0.90 array made by mdadm on `host` has SHA-1(host)[..8] as the last
/// two UUID words.
fn is_local_v090(sb: &Superblock0, host: &str) -> bool {
    let hash = super::sha1::sha1(host.as_bytes());
    let mut tail = [0u8; 8];
    tail[..4].copy_from_slice(&sb.set_uuid2.to_le_bytes());
    tail[4..].copy_from_slice(&sb.set_uuid3.to_le_bytes());
    tail == hash[..8]
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

fn walk_dev(dir: &Path, out: &mut Vec<(u64, String)>, depth: usize) {
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

/// The JSON facts of a v1 superblock (as shown).
pub fn json_super1(
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
    homehost: Option<&str>,
) -> Json {
    let minor = if sb.super_offset <= 4 {
        "1.1"
    } else if sb.super_offset <= 8 {
        "1.2"
    } else {
        "1.0"
    };
    let name = String::from_utf8_lossy(c_str(&sb.set_name)).into_owned();
    let local = homehost.is_some_and(|h| {
        let l = h.len();
        l > 0 && l < 32 && sb.set_name[l] == b':' && &sb.set_name[..l] == h.as_bytes()
    });
    let (before, after) = unused_space(sb, bitmap, dev_sectors);
    let r = own_role(sb);
    let role_json = if r >= role::FAULTY {
        Json::from("spare")
    } else if r == role::JOURNAL {
        Json::from("journal")
    } else {
        Json::from(r)
    };
    let mut flags = Vec::new();
    if sb.devflags & devflags::WRITE_MOSTLY != 0 {
        flags.push(Json::from("write-mostly"));
    }
    if sb.devflags & devflags::FAIL_FAST != 0 {
        flags.push(Json::from("failfast"));
    }
    let level = sb.level as u32;
    let (ddsks, denom) = data_disks(level, sb.raid_disks, sb.layout);
    let array_kib = (level > 0 && ddsks != 0 && denom != 0).then(|| {
        (((sb.size as i64) << 9)
            .wrapping_mul(ddsks)
            .wrapping_div(denom)
            >> 10) as u64
    });
    let calc = sb.compute_csum();
    Json::obj()
        .field("metadata", minor)
        .field("magic", format!("{:08x}", sb.magic))
        .field("feature_map", sb.feature_map)
        .field("array_uuid", uuid_colon(&sb.set_uuid))
        .field("name", name)
        .field("local", local)
        .field("creation_time", sb.ctime & 0xff_ffff_ffff)
        .field(
            "raid_level",
            level_name(sb.level).map_or(Json::from(sb.level), Json::from),
        )
        .field("raid_devices", sb.raid_disks)
        .field("avail_dev_size", sb.data_size)
        .opt("array_size_kib", array_kib)
        .field("used_dev_size", sb.size)
        .field("data_offset", sb.data_offset)
        .field("super_offset", sb.super_offset)
        .opt(
            "recovery_offset",
            sb.has(feature::RECOVERY_OFFSET)
                .then_some(sb.recovery_offset),
        )
        .field(
            "resync_offset",
            if sb.resync_offset == MAX_SECTOR {
                Json::Null
            } else {
                Json::from(sb.resync_offset)
            },
        )
        .opt(
            "unused_space",
            (after != 1).then(|| {
                Json::obj()
                    .field("before", before)
                    .field("after", after)
                    .build()
            }),
        )
        .field(
            "state",
            if sb.resync_offset != MAX_SECTOR {
                "active"
            } else {
                "clean"
            },
        )
        .field("device_uuid", uuid_colon(&sb.device_uuid))
        .field(
            "internal_bitmap_offset",
            sb.bitmap_offset_sectors().map_or(Json::Null, Json::from),
        )
        .field("flags", flags)
        .field("update_time", sb.utime & 0xff_ffff_ffff)
        .opt(
            "bad_block_log",
            (sb.bblog_size != 0 && sb.bblog_offset != 0).then(|| {
                Json::obj()
                    .field("entries", sb.bblog_size as u32 * 512 / 8)
                    .field("offset", sb.bblog_offset)
                    .field("bad_blocks_present", sb.has(feature::BAD_BLOCKS))
                    .build()
            }),
        )
        .field("checksum", format!("{:x}", sb.sb_csum))
        .field("checksum_expected", format!("{calc:x}"))
        .field("checksum_correct", calc == sb.sb_csum)
        .field("events", sb.events)
        .field("dev_number", sb.dev_number)
        .field("device_role", role_json)
        .field("replacement", sb.has(feature::REPLACEMENT))
        .field("array_state", array_state(sb, 0).0)
        .build()
}

/// The JSON facts of a 0.90 superblock (as shown).
pub fn json_super0(sb: &Superblock0, homehost: Option<&str>) -> Json {
    let disk = |d: &Disk0| {
        Json::obj()
            .field("number", d.number)
            .field("major", d.major)
            .field("minor", d.minor)
            .field("raid_device", d.raid_disk)
            .field("state", d.state)
            .build()
    };
    let rows = (sb.raid_disks.wrapping_add(sb.spare_disks) as i32)
        .clamp(0, crate::format::super0::MD_SB_DISKS as i32) as usize;
    Json::obj()
        .field("metadata", "0.90")
        .field("magic", format!("{:08x}", sb.md_magic))
        .field(
            "version",
            format!(
                "{}.{:02}.{:02}",
                sb.major_version as i32, sb.minor_version as i32, sb.patch_version as i32
            ),
        )
        .field(
            "uuid",
            format!(
                "{:08x}:{:08x}:{:08x}:{:08x}",
                sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3
            ),
        )
        .field("local", homehost.is_some_and(|h| is_local_v090(sb, h)))
        .field("creation_time", sb.ctime)
        .field(
            "raid_level",
            level_name(sb.level).map_or(Json::from(sb.level), Json::from),
        )
        .field("used_dev_size_kib", sb.size)
        .field("raid_devices", sb.raid_disks)
        .field("total_devices", sb.nr_disks)
        .field("preferred_minor", sb.md_minor)
        .field("update_time", sb.utime)
        .field(
            "state",
            if sb.state & sb_state::CLEAN != 0 {
                "clean"
            } else {
                "active"
            },
        )
        .field("internal_bitmap", sb.state & sb_state::BITMAP_PRESENT != 0)
        .field("active_devices", sb.active_disks)
        .field("working_devices", sb.working_disks)
        .field("failed_devices", sb.failed_disks)
        .field("spare_devices", sb.spare_disks)
        .field("checksum", format!("{:x}", sb.sb_csum))
        .field("checksum_expected", format!("{:x}", sb.compute_csum()))
        .field("checksum_correct", sb.compute_csum() == sb.sb_csum)
        .field("events", sb.events())
        .field("this", disk(&sb.this_disk))
        .field(
            "devices",
            sb.disks[..rows].iter().map(disk).collect::<Vec<_>>(),
        )
        .build()
}

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
                    super::probe::strerror(&e)
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

fn bitmap_uuid(bms: &BitmapSuper, words: bool) -> String {
    if words {
        let w = |i: usize| u32::from_le_bytes(bms.uuid[i..i + 4].try_into().expect("4 bytes"));
        format!("{:08x}:{:08x}:{:08x}:{:08x}", w(0), w(4), w(8), w(12))
    } else {
        uuid_colon(&bms.uuid)
    }
}

fn bitmap_state(state: u32) -> &'static str {
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

fn json_bitmap(name: &str, sb: &BitmapSuper, uuid_words: bool, bits: &BitCount, ok: bool) -> Json {
    Json::obj()
        .field("device", name)
        .field("magic", format!("{:08x}", sb.magic))
        .field("version", sb.version)
        .field("valid", ok && sb.magic == BITMAP_MAGIC)
        .field("uuid", bitmap_uuid(sb, uuid_words))
        .field("events", sb.events)
        .field("events_cleared", sb.events_cleared)
        .field("state", bitmap_state(sb.state))
        .field("chunksize", sb.chunksize)
        .field("daemon_sleep", sb.daemon_sleep)
        .field("write_behind", sb.write_behind)
        .field("sync_size", sb.sync_size)
        .field("bits", bits.total)
        .field("dirty", bits.dirty)
        .build()
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
