//! `mdfuse create`: write the superblocks (and internal bitmaps) of a new
//! linear, RAID0, RAID1, RAID4/5/6 or RAID10 array onto image files or
//! block devices, exactly as `mdadm --create` would before handing the
//! array to the kernel, so Linux md (or `mdfuse mount`) assembles it.
//!
//! Everything is checked before the first byte is written: options,
//! device counts, every device (exists or can be made, not listed twice,
//! big enough, holds no md superblock, file system or partition table
//! unless `--force`), the geometry and the bitmap.  Then, device by device
//! in the order given: old md superblocks are wiped (as mdadm's `Kill`),
//! the bitmap area and the superblock written, and the device flushed.
//! Like mdadm, nothing else is touched: not the 4 KiB before a 1.2
//! superblock, not the bad-block log area (the kernel reads it only once
//! the BAD_BLOCKS feature is set, and then rewrites it whole), not data.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ArgMatches;

use super::probe::{probe, read_upto, strerror};
use super::shape::{self, Level};
use super::{Failure, parse_num, parse_size, parse_uuid, random_uuid};
use crate::disk::{Disk, DiskKind};
use crate::format::geometry::{
    self, ArraySpec, BitmapError, BitmapPlan, MemberSpec, TooSmall, bitmap_area,
    default_data_offset_chunked, default_raid1_size, free_sectors, max_dev_for,
    plan_bitmap_covering, superblock_for,
};
use crate::format::geometry0::{
    Array0Spec, MAX_DEVS0, bitmap_area0, disk0, free_sectors0, plan_bitmap0, superblock0_for,
};
use crate::format::super1::{MAX_DEV_LIMIT, MD_SB_MAGIC, feature};
use crate::format::{MetadataVersion, Minor, SectorReader, le_u32, le_u64, super0, uuid_colon};

/// Create a linear, RAID0, RAID1, RAID4/5/6 or RAID10 array: write md
/// superblocks onto DEVICEs.
///
/// Options and defaults follow `mdadm --create`, except that an internal
/// write-intent bitmap is the default (mdadm 4.2 run non-interactively
/// creates none), and `--image-size` creates image files that do not exist.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "DEVICE is an image file, a block device, or the word 'missing' \
for an absent member.  An optional first argument naming an md device (md0, /dev/md0, \
/dev/md/NAME) only sets the default array name, as mdadm derives it (md0 -> \"0\")."
)]
pub struct CreateArgs {
    /// Say what is being done.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Overwrite devices that hold an md superblock, a file system or a
    /// partition table; allow a single raid device; raid4/5: resync the
    /// parity rather than rebuild the last member.
    #[arg(short, long)]
    pub force: bool,
    /// RAID level: linear, 0 (raid0, stripe), 1 (raid1, mirror), 4
    /// (raid4), 5 (raid5), 6 (raid6) or 10 (raid10).
    #[arg(short, long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Chunk size (K, M, G suffixes; no suffix = KiB) for raid0, raid4/5/6
    /// and raid10 [default: 512K]; linear's rounding.
    #[arg(short, long, alias = "rounding", value_name = "SIZE")]
    pub chunk: Option<String>,
    /// Layout: raid0 original|alternate|dangerous [default: original];
    /// raid5 and raid6 left-asymmetric (la), right-asymmetric (ra),
    /// left-symmetric (ls), right-symmetric (rs), parity-first,
    /// parity-last, ddf-zero-restart, ddf-N-restart, ddf-N-continue, and
    /// for raid6 also left-asymmetric-6, right-asymmetric-6,
    /// left-symmetric-6, right-symmetric-6, parity-first-6 [default: ls];
    /// raid10 nN, fN or oN copies [default: n2].
    #[arg(short = 'p', long, alias = "parity", value_name = "LAYOUT")]
    pub layout: Option<String>,
    /// Number of active devices (mirrors), `missing` ones included.
    #[arg(short = 'n', long = "raid-devices", value_name = "N")]
    pub raid_devices: Option<String>,
    /// Number of spare devices, listed after the active ones.
    #[arg(short = 'x', long = "spare-devices", value_name = "N")]
    pub spare_devices: Option<String>,
    /// Superblock format: 1.0 (at the end), 1.1 (at the start), 1.2 (4 KiB
    /// from the start), 1 or default (= 1.2); 0.90 or 0 (at the end, at
    /// most 27 devices).
    #[arg(short = 'e', long, value_name = "VERSION", default_value = "1.2")]
    pub metadata: String,
    /// Write-intent bitmap: internal or none.  Default internal for raid1,
    /// raid4/5/6 and raid10 (mdadm 4.2 defaults to none when not asked),
    /// none for linear and raid0, which cannot have one.
    #[arg(short, long, value_name = "internal|none")]
    pub bitmap: Option<String>,
    /// Bytes of data per bitmap bit (K, M, G suffixes; no suffix = KiB);
    /// a power of two, default 64M or the smallest that fits.
    #[arg(long = "bitmap-chunk", value_name = "SIZE")]
    pub bitmap_chunk: Option<String>,
    /// Mark the array in sync: no initial resync (raid4/5: no recovery of
    /// the last member either).
    #[arg(long = "assume-clean")]
    pub assume_clean: bool,
    /// Array name (stored as HOMEHOST:NAME when it fits) [default: the md
    /// device number, "0"].
    #[arg(short = 'N', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Home host recorded in the name [default: this host's name;
    /// `<none>` for none].
    #[arg(long, value_name = "HOST")]
    pub homehost: Option<String>,
    /// Space used on each device (K, M, G, T suffixes or s for sectors; no
    /// suffix = KiB) [default: the smallest device's usable space, rounded
    /// down to 64 KiB].
    #[arg(short = 'z', long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Array UUID [default: random].
    #[arg(short, long, value_name = "UUID")]
    pub uuid: Option<String>,
    /// Create (sparse) image files of this size for DEVICEs that do not
    /// exist yet.
    #[arg(long = "image-size", value_name = "SIZE")]
    pub image_size: Option<String>,
    /// Mark the devices that follow as write-mostly.
    #[arg(short = 'W', long = "write-mostly", action = clap::ArgAction::Count)]
    pub write_mostly: u8,
    /// Let writes to write-mostly devices lag behind, at most N at once
    /// (0 - 16383) [256 when given without =N]; needs the bitmap.
    #[arg(
        long = "write-behind",
        value_name = "N",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "256"
    )]
    pub write_behind: Option<String>,
    /// Accepted for mdadm compatibility; mdfuse never prompts.
    #[arg(short = 'R', long, hide = true)]
    pub run: bool,
    /// Member devices, in slot order, spares last; optionally preceded
    /// by an md device name (see below).
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

/// `matches` are this subcommand's, for where `-W` stood among the devices.
pub fn run(args: CreateArgs, matches: &ArgMatches) -> ExitCode {
    let wm_index = matches
        .indices_of("write_mostly")
        .and_then(|mut i| i.next());
    let dev_indices: Vec<usize> = matches
        .indices_of("devices")
        .map(|i| i.collect())
        .unwrap_or_default();
    let write_mostly: Vec<bool> = (0..args.devices.len())
        .map(|i| match (wm_index, dev_indices.get(i)) {
            (Some(w), Some(&d)) => w < d,
            _ => false,
        })
        .collect();
    match create(&args, &write_mostly) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// Parsed, checked options.
#[derive(Debug, Clone)]
struct Options {
    level: Level,
    /// KiB; 0 for RAID1 and linear without rounding.
    chunk_kib: u64,
    layout: u32,
    raid_disks: u32,
    spares: u32,
    metadata: MetadataVersion,
    bitmap: bool,
    bitmap_chunk: Option<u64>,
    /// The bitmap's `write_behind` (`--write-behind`).
    write_behind: u32,
    size: Option<u64>,
    image_size: Option<u64>,
    uuid: Option<[u8; 16]>,
    name: Option<String>,
}

fn parse_options(a: &CreateArgs) -> Result<Options, Failure> {
    let Some(level) = &a.level else {
        return Err(Failure::refused(
            "a RAID level is needed to create an array.",
        ));
    };
    let level = Level::parse(level)?;
    let layout = shape::layout_for(level, a.layout.as_deref())?;
    let chunk_kib = shape::chunk_for(
        level,
        a.chunk.as_deref().map(shape::parse_chunk).transpose()?,
    )?;
    let raid_disks = match &a.raid_devices {
        None => return Err(Failure::refused("no raid-devices specified.")),
        Some(s) => match parse_num(s) {
            Some(n) if n > 0 => n,
            _ => {
                return Err(Failure::usage(format!(
                    "invalid number of raid devices: {s}"
                )));
            }
        },
    };
    if raid_disks == 1 && !a.force {
        return Err(Failure::usage(super::shape::ONE_DRIVE));
    }
    let spares = match &a.spare_devices {
        None => 0,
        Some(s) => parse_num(s)
            .ok_or_else(|| Failure::usage(format!("invalid number of spare-devices: {s}")))?,
    };
    // Create's counts for the parity levels, before anything else.
    if level == Level::Raid6 && raid_disks < 4 {
        return Err(Failure::refused(
            "at least 4 raid-devices needed for level 6",
        ));
    }
    if level == Level::Raid6 && raid_disks > 256 {
        return Err(Failure::refused(
            "no more than 256 raid-devices supported for level 6",
        ));
    }
    if level.parity() && raid_disks < 2 {
        return Err(Failure::refused(format!(
            "at least 2 raid-devices needed for level {}",
            level.number()
        )));
    }
    if level.striped_only() && spares > 0 {
        return Err(Failure::refused(
            "This level does not support spare devices",
        ));
    }
    if level == Level::Raid10 && shape::raid10_copies(layout) > u64::from(raid_disks) {
        return Err(Failure::refused(format!(
            "that layout requires at least {} devices",
            shape::raid10_copies(layout)
        )));
    }
    if (level == Level::Raid10 || level.parity()) && !chunk_kib.is_power_of_two() {
        // mdadm writes it and the kernel's setup_geo (raid10) or
        // setup_conf (raid456) then refuses to run it.
        return Err(Failure::refused(format!(
            "chunk size must be a power of 2 for {}, not {chunk_kib}K",
            level.name()
        )));
    }
    let metadata = parse_metadata(&a.metadata)?;
    if metadata == MetadataVersion::V090 {
        // validate_geometry0: mdadm 4.2 gives every RAID0 a layout, which
        // 0.90 cannot record, so it makes no 0.90 RAID0.
        if level == Level::Raid0 {
            return Err(Failure::refused(
                "0.90 metadata does not support layouts for RAID0",
            ));
        }
        if raid_disks > MAX_DEVS0 {
            return Err(Failure::refused(format!(
                "0.90 metadata supports at most {MAX_DEVS0} devices per array"
            )));
        }
        // add_to_super0 keeps only the active and sync bits: mdadm hands
        // write-mostly to the kernel, which records it once the array
        // runs.  Written without it, the flag would be lost.
        if a.write_mostly > 0 {
            return Err(Failure::usage(
                "write-mostly cannot be recorded in 0.90 metadata at create",
            ));
        }
    }
    let bitmap_word = a.bitmap.as_deref().unwrap_or(if level.striped_only() {
        "none"
    } else {
        "internal"
    });
    let bitmap = match bitmap_word {
        "internal" if level.striped_only() => {
            return Err(Failure::refused(format!(
                "bitmaps not meaningful with level {}",
                level.name()
            )));
        }
        "internal" => true,
        "none" => false,
        "clustered" => {
            return Err(Failure::usage("clustered bitmaps are not supported"));
        }
        b if b.contains('/') => {
            return Err(Failure::usage(format!(
                "external bitmap files are not supported: {b}"
            )));
        }
        b => {
            return Err(Failure::usage(format!(
                "bitmap must be 'internal' or 'none', not '{b}'"
            )));
        }
    };
    // mdadm's range and message.  (mdadm 4.2 refuses the option without
    // a value, which 4.3 fixed to mean 256, DEFAULT_MAX_WRITE_BEHIND.)
    let write_behind = match &a.write_behind {
        None => 0,
        Some(s) => match parse_num(s) {
            Some(n) if n <= crate::format::bitmap::COUNTER_MAX => n,
            _ => {
                return Err(Failure::usage(format!(
                    "Invalid value for maximum outstanding write-behind writes: {s}.\n\tMust be between 0 and 16383."
                )));
            }
        },
    };
    // mdadm asks for a bitmap (here internal unless told none).
    if a.write_behind.is_some() && !bitmap {
        return Err(Failure::refused("write-behind mode requires a bitmap."));
    }
    let bitmap_chunk = match &a.bitmap_chunk {
        None => None,
        Some(s) => match parse_size(s) {
            Some(sectors) if sectors.is_power_of_two() && sectors * 512 <= 1 << 31 => {
                Some(sectors * 512)
            }
            _ => return Err(Failure::usage(format!("invalid bitmap chunksize: {s}"))),
        },
    };
    let size = match a.size.as_deref() {
        None | Some("max") => None,
        Some(s) => match parse_size(s) {
            // mdadm keeps the size in KiB, and rounds it to the chunk
            // (`round_size_and_verify`).
            Some(sectors) if sectors >= 8 => {
                let kib = sectors / 2;
                let kib = round_to_chunk(kib, chunk_kib);
                if kib == 0 {
                    return Err(Failure::refused("Size cannot be smaller than chunk."));
                }
                Some(kib * 2)
            }
            _ => return Err(Failure::usage(format!("invalid size: {s}"))),
        },
    };
    let image_size = match &a.image_size {
        None => None,
        Some(s) => {
            Some(parse_size(s).ok_or_else(|| Failure::usage(format!("invalid image size: {s}")))?)
        }
    };
    let uuid = match &a.uuid {
        None => None,
        Some(s) => Some(parse_uuid(s).ok_or_else(|| Failure::usage(format!("Bad uuid: {s}")))?),
    };
    if let Some(n) = &a.name {
        if n.len() > 32 {
            return Err(Failure::usage(format!(
                "name '{n}' is too long, 32 chars max."
            )));
        }
    }
    Ok(Options {
        level,
        chunk_kib,
        layout,
        raid_disks,
        spares,
        metadata,
        bitmap,
        bitmap_chunk,
        write_behind,
        size,
        image_size,
        uuid,
        name: a.name.clone(),
    })
}

/// `--metadata` as mdadm's `match_metadata_desc1` and
/// `match_metadata_desc0` read it.
fn parse_metadata(s: &str) -> Result<MetadataVersion, Failure> {
    // match_metadata_desc0 drops a leading 0 before another ("00.90").
    let mut v090 = s;
    while v090.starts_with("00") {
        v090 = &v090[1..];
    }
    match s.trim_start_matches('0') {
        "1.0" | "1.00" => Ok(MetadataVersion::V1(Minor::V0)),
        "1.1" | "1.01" => Ok(MetadataVersion::V1(Minor::V1)),
        "1.2" | "1.02" | "1" | "default" => Ok(MetadataVersion::V1(Minor::V2)),
        _ if matches!(v090, "0" | "0.90") => Ok(MetadataVersion::V090),
        _ => Err(Failure::usage(format!(
            "unrecognised metadata identifier: {s}"
        ))),
    }
}

/// The default array name mdadm derives from an md device name (`/dev/md0`
/// -> "0", `/dev/md/home` -> "home", `/dev/md_d0` -> "d0"), when the
/// first positional argument is one.
pub fn array_name_from(arg: &str) -> Option<String> {
    if let Some(n) = arg.strip_prefix("/dev/md/") {
        return (!n.is_empty() && !n.contains('/')).then(|| n.to_string());
    }
    if let Some(n) = arg.strip_prefix("/dev/md_") {
        return (!n.is_empty() && !n.contains('/')).then(|| n.to_string());
    }
    let bare = arg.strip_prefix("/dev/").unwrap_or(arg);
    let digits = bare.strip_prefix("md")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_string())
}

/// One position in the device list.
#[derive(Debug)]
enum Slot {
    Missing,
    Device { path: PathBuf, write_mostly: bool },
}

/// What makes two paths the same storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    Inode {
        dev: u64,
        ino: u64,
    },
    BlockDevice {
        rdev: u64,
    },
    /// A file still to be created, by its absolute path.
    NewFile(PathBuf),
    /// An NBD export, by server and export name.
    Nbd((u64, u64)),
}

/// A present member, checked and measured.
#[derive(Debug)]
struct Member {
    /// The superblock's dev_number: the position in the device list, but
    /// for a member `Create` moves out of its slot to become a spare (see
    /// `moved_to_spare`), which comes after every listed one.
    pos: u32,
    /// The slot it fills, or None for a spare.
    slot: Option<u32>,
    path: PathBuf,
    write_mostly: bool,
    /// Open device, or None for an image file still to be created.
    disk: Option<Disk>,
    sectors: u64,
}

fn create(a: &CreateArgs, write_mostly: &[bool]) -> Result<(), Failure> {
    let opts = parse_options(a)?;

    // An optional leading md device name, then the devices.
    let mut positionals: Vec<(PathBuf, bool)> = a
        .devices
        .iter()
        .cloned()
        .zip(write_mostly.iter().copied())
        .collect();
    let mut array_name: Option<String> = None;
    if let Some((first, _)) = positionals.first() {
        if let Some(n) = first.to_str().and_then(array_name_from) {
            array_name = Some(n);
            positionals.remove(0);
        }
    }
    // The md device's number, which 0.90 records as the preferred minor.
    let array_minor: Option<u32> = array_name.as_deref().and_then(|n| n.parse().ok());
    let slots: Vec<Slot> = positionals
        .into_iter()
        .map(|(p, wm)| {
            if p.to_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("missing"))
            {
                Slot::Missing
            } else {
                Slot::Device {
                    path: p,
                    write_mostly: wm,
                }
            }
        })
        .collect();

    check_counts(&opts, &slots)?;
    if opts.level.striped_only() && slots.iter().any(|s| matches!(s, Slot::Missing)) {
        return Err(Failure::refused(
            "This level does not support missing devices",
        ));
    }
    let mut members = open_members(&opts, &slots)?;
    check_duplicates(&members)?;
    if !a.force {
        for m in &members {
            check_empty(m)?;
        }
    }
    let missing = Missing::of(&slots);
    let moved = moved_to_spare(&opts, missing, a.assume_clean || a.force);
    if let Some(slot) = moved {
        let m = members
            .iter_mut()
            .find(|m| m.slot == Some(slot))
            .expect("moved_to_spare picks a present member");
        m.pos = slots.len() as u32;
        m.slot = None;
    }
    let clean = created_clean(&opts, missing, moved, a.assume_clean);
    // The member moved to spare is numbered after every listed one: 0.90
    // has no descriptor for a 28th (mdadm would write it over this_disk).
    if opts.metadata == MetadataVersion::V090 && moved.is_some() && slots.len() as u32 >= MAX_DEVS0
    {
        return Err(Failure::refused(format!(
            "Too many devices: 0.90 metadata only supports {MAX_DEVS0}"
        )));
    }

    // Geometry, from mdadm's Create + validate_geometry1 (or 0).
    let first = members.first().expect("check_counts: not all missing");
    let data_offset = match opts.metadata {
        MetadataVersion::V1(minor) => {
            default_data_offset_chunked(minor, first.sectors, opts.chunk_kib)
        }
        MetadataVersion::V090 => 0,
    };
    let mut min_free: Option<(u64, &Path)> = None;
    for m in &members {
        let mut free = match opts.metadata {
            MetadataVersion::V1(minor) => {
                free_sectors(minor, m.sectors, data_offset).map_err(|e| match e {
                    TooSmall::ForMetadata => Failure::refused(format!(
                        "device {} is too small ({}K) for required metadata!",
                        m.path.display(),
                        m.sectors / 2
                    )),
                    TooSmall::NoFreeSpace => {
                        Failure::refused(format!("no free space left on {}", m.path.display()))
                    }
                })?
            }
            // validate_geometry0 turns a device under 64 KiB down without
            // a word; Create then says this.
            MetadataVersion::V090 => free_sectors0(m.sectors).ok_or_else(|| {
                Failure::refused(format!(
                    "{} is not suitable for this array.",
                    m.path.display()
                ))
            })?,
        };
        // Striped levels use whole chunks of each member (KiB, as mdadm).
        if opts.chunk_kib > 0 {
            free = round_to_chunk(free / 2, opts.chunk_kib) * 2;
        }
        if free / 2 == 0 {
            return Err(Failure::refused(format!(
                "no free space left on {}",
                m.path.display()
            )));
        }
        if let Some(size) = opts.size {
            if free / 2 < size / 2 {
                return Err(Failure::refused(format!(
                    "{} is smaller than given size. {}K < {}K + metadata",
                    m.path.display(),
                    free / 2,
                    size / 2
                )));
            }
        }
        if min_free.is_none_or(|(f, _)| free < f) {
            min_free = Some((free, &m.path));
        }
    }
    let size = match opts.size {
        Some(s) => s,
        // The component size means nothing to linear and raid0: each
        // member's whole data area is used, and mdadm records 0.
        None if opts.level.striped_only() => 0,
        // Striped levels with redundancy: the smallest member, in chunks.
        None if opts.level == Level::Raid10 || opts.level.parity() => {
            min_free.expect("at least one member").0
        }
        None => {
            let (free, path) = min_free.expect("at least one member");
            let s = default_raid1_size(free);
            if s == 0 {
                return Err(Failure::refused(format!(
                    "{} is too small: {}K usable, at least 64K needed",
                    path.display(),
                    free / 2
                )));
            }
            if a.verbose > 0 {
                eprintln!("mdfuse: size set to {}K", s / 2);
            }
            s
        }
    };
    // A 0.90 superblock holds the size in KiB in 32 bits: 4 TiB at most
    // (validate_geometry0 checks the size asked, Create the size found).
    if opts.metadata == MetadataVersion::V090 && size >= 4 << 31 {
        return Err(Failure::refused(match opts.size {
            Some(_) => "0.90 metadata supports at most 4 terabytes per device".to_string(),
            None => format!("devices too large for RAID level {}", opts.level.number()),
        }));
    }
    // RAID10's bitmap covers the array: size * raid_disks / copies.
    let sync_size = match opts.level {
        Level::Raid10 => size * u64::from(opts.raid_disks) / shape::raid10_copies(opts.layout),
        _ => size,
    };
    let bitmap: Option<BitmapPlan> = if opts.bitmap {
        let plan = match opts.metadata {
            MetadataVersion::V1(minor) => {
                plan_bitmap_covering(minor, size, sync_size, opts.bitmap_chunk)
            }
            MetadataVersion::V090 => plan_bitmap0(sync_size, opts.bitmap_chunk),
        };
        match plan {
            Ok(b) => Some(BitmapPlan {
                write_behind: opts.write_behind,
                ..b
            }),
            Err(BitmapError::ChunkTooSmall { .. } | BitmapError::NoRoom) => {
                return Err(Failure::refused("Given bitmap chunk size not supported."));
            }
        }
    } else {
        None
    };

    // The superblocks.
    let given_uuid = opts.uuid;
    let random =
        random_uuid().map_err(|e| Failure::refused(format!("cannot read /dev/urandom: {e}")))?;
    let host = super::fmt::homehost(a.homehost.as_deref());
    let ctime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let shape = Shape {
        opts: &opts,
        size,
        data_offset,
        bitmap,
        clean,
        ctime,
        moved: moved.is_some(),
        missing: slots.iter().filter(|s| matches!(s, Slot::Missing)).count() as u32,
    };
    let (writes, set_uuid, set_name) = match opts.metadata {
        MetadataVersion::V1(minor) => {
            let name = opts
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or(array_name)
                .unwrap_or_else(|| "0".to_string());
            let set_uuid = given_uuid.unwrap_or(random);
            let set_name = geometry::set_name(&name, host.as_deref());
            let writes = plan_v1(&shape, minor, &members, set_uuid, set_name)?;
            let shown = String::from_utf8_lossy(&set_name)
                .trim_end_matches('\0')
                .to_string();
            (writes, set_uuid, shown)
        }
        MetadataVersion::V090 => {
            let words = match given_uuid {
                Some(u) => Array0Spec::words_of_uuid(u),
                None => Array0Spec::words_random(
                    random,
                    host.as_deref().map(|h| super::sha1::sha1(h.as_bytes())),
                ),
            };
            let md_minor = array_minor.unwrap_or(0);
            let (writes, uuid) = plan_v090(&shape, &members, words, md_minor)?;
            (writes, uuid, md_minor.to_string())
        }
    };

    // Everything checked.  First make the new image files (all or none),
    // then write.
    let created_dirs = make_images(&mut members)?;
    for (m, w) in members.iter().zip(&writes) {
        let disk = m.disk.as_ref().expect("every member is open");
        let fail = |e: std::io::Error| {
            Failure::refused(format!(
                "Failed to write metadata to {}: {}",
                m.path.display(),
                strerror(&e)
            ))
        };
        for (off, len) in old_superblocks(disk) {
            disk.write_at(&vec![0u8; len], off).map_err(fail)?;
        }
        for (off, bytes) in w {
            disk.write_at(bytes, *off).map_err(fail)?;
        }
        disk.flush().map_err(fail)?;
        if a.verbose > 0 {
            let role = match m.slot {
                Some(slot) => format!("active device {slot}"),
                None if moved.is_some() && m.pos == slots.len() as u32 => {
                    "spare, to be rebuilt into the last slot".to_string()
                }
                None => "spare".to_string(),
            };
            eprintln!(
                "mdfuse: {}: wrote metadata {} superblock, {role}{}",
                m.path.display(),
                opts.metadata,
                if m.write_mostly { ", write-mostly" } else { "" }
            );
        }
    }
    for dir in created_dirs {
        if let Ok(f) = std::fs::File::open(&dir) {
            let _ = f.sync_all();
        }
    }
    // mdadm starts the array once its superblocks are written; md cannot
    // run one with fewer members than its level needs (raid5/raid10 run:
    // EIO), and mdadm then stops it, the superblocks left as written.
    let mut avail = vec![false; opts.raid_disks as usize];
    for slot in members.iter().filter_map(|m| m.slot) {
        if let Some(a) = avail.get_mut(slot as usize) {
            *a = true;
        }
    }
    // Counted as clean: a dirty degraded parity array is another matter
    // (md's run weighs which members hold only parity, and real mdadm's
    // create of a RAID6 one short with --force runs), and is left to md.
    let level = opts.level.number();
    if !super::detail::enough(
        level,
        opts.raid_disks as i32,
        opts.layout as i64,
        true,
        &avail,
    ) {
        return Err(Failure::refused("RUN_ARRAY failed: Input/output error"));
    }
    if a.verbose > 0 {
        eprintln!(
            "mdfuse: array {set_name} created: {}, {} devices, metadata {}, uuid {}",
            opts.level.name(),
            opts.raid_disks,
            opts.metadata,
            uuid_colon(&set_uuid)
        );
    }
    Ok(())
}

/// What both superblock formats take from the checked options.
struct Shape<'a> {
    opts: &'a Options,
    /// Component size in sectors (0 for linear and RAID0).
    size: u64,
    /// 1.1/1.2: the array's data offset.
    data_offset: u64,
    bitmap: Option<BitmapPlan>,
    clean: bool,
    ctime: u64,
    /// A member was moved out of its slot to become a spare.
    moved: bool,
    /// `missing` words in the device list.
    missing: u32,
}

/// Per member, the (byte offset, bytes) to write, in order.
type Writes = Vec<Vec<(u64, Vec<u8>)>>;

/// The 1.x superblocks and bitmaps (`init_super1`, `add_to_super1`,
/// `write_init_super1`).
fn plan_v1(
    shape: &Shape,
    minor: Minor,
    members: &[Member],
    set_uuid: [u8; 16],
    set_name: [u8; 32],
) -> Result<Writes, Failure> {
    let opts = shape.opts;
    // init_super1 makes room for raid_disks plus the present spares, the
    // moved member among them.
    let present_spares = members.iter().filter(|m| m.slot.is_none()).count() as u32;
    let pairs: Vec<(u32, u32)> = members
        .iter()
        .map(|m| (m.pos, m.slot.unwrap_or(opts.raid_disks)))
        .collect();
    let (roles, max_dev) = ArraySpec::roles_for(
        opts.raid_disks,
        &pairs,
        max_dev_for(opts.raid_disks + present_spares),
    );
    let spec = ArraySpec {
        minor,
        level: opts.level.number(),
        layout: opts.layout,
        chunk_sectors: chunk_sectors(opts)?,
        features: raid0_layout_feature(opts, members),
        raid_disks: opts.raid_disks,
        size: shape.size,
        data_offset: shape.data_offset,
        bitmap: shape.bitmap,
        set_uuid,
        set_name,
        ctime: shape.ctime,
        clean: shape.clean,
        max_dev,
        roles,
    };
    let bitmap_bytes = spec.bitmap.as_ref().map(|b| bitmap_area(b, set_uuid));
    let mut writes = Vec::new();
    for m in members {
        let member = MemberSpec {
            dev_number: m.pos,
            dev_sectors: m.sectors,
            write_mostly: m.write_mostly,
            device_uuid: random_uuid()
                .map_err(|e| Failure::refused(format!("cannot read /dev/urandom: {e}")))?,
        };
        let sb = superblock_for(&spec, &member);
        // Our own computation must produce what the kernel accepts.
        sb.validate(minor, m.sectors).map_err(|e| {
            Failure::refused(format!(
                "internal error: the superblock for {} would be refused: {e}",
                m.path.display()
            ))
        })?;
        let mut w = Vec::new();
        if let (Some(bytes), Some(b)) = (&bitmap_bytes, spec.bitmap.as_ref()) {
            let at = (sb.super_offset as i64 + b.offset as i64) as u64 * 512;
            w.push((at, bytes.clone()));
        }
        w.push((sb.super_offset * 512, sb.to_sector_bytes()));
        writes.push(w);
    }
    Ok(writes)
}

/// The 0.90 superblocks and bitmaps (`init_super0`, `add_to_super0`,
/// `write_init_super0`, `write_bitmap0`), and the array UUID as md
/// reports it.
fn plan_v090(
    shape: &Shape,
    members: &[Member],
    uuid_words: [u32; 4],
    md_minor: u32,
) -> Result<(Writes, [u8; 16]), Failure> {
    let opts = shape.opts;
    let present = members.len() as u32;
    let moved = u32::from(shape.moved);
    let given_spares = members
        .iter()
        .filter(|m| m.slot.is_none() && m.pos < opts.raid_disks + opts.spares)
        .count() as u32;
    let spec = Array0Spec {
        level: opts.level.number(),
        layout: opts.layout,
        chunk_bytes: chunk_sectors(opts)? * 512,
        // Under 4 TiB (checked), so it fits.
        size_kib: u32::try_from(shape.size / 2).unwrap_or(u32::MAX),
        raid_disks: opts.raid_disks,
        md_minor,
        uuid_words,
        ctime: u32::try_from(shape.ctime).unwrap_or(u32::MAX),
        clean: shape.clean,
        bitmap: shape.bitmap.is_some(),
        active: present - given_spares - moved,
        working: present,
        failed: shape.missing + moved,
        spare: opts.spares + moved,
        disks: members
            .iter()
            .map(|m| {
                let (major, minor) = match m.disk.as_ref().map(Disk::kind) {
                    Some(DiskKind::BlockDevice { major, minor }) => (major, minor),
                    _ => (0, 0),
                };
                disk0(m.pos, major, minor, opts.raid_disks)
            })
            .collect(),
    };
    let mut writes = Vec::new();
    let mut uuid = [0u8; 16];
    for m in members {
        let sb = superblock0_for(&spec, m.pos);
        uuid = sb.uuid();
        sb.validate(m.sectors).map_err(|e| {
            Failure::refused(format!(
                "internal error: the superblock for {} would be refused: {e}",
                m.path.display()
            ))
        })?;
        let at = super0::sb_start(m.sectors).expect("free_sectors0 checked the size") * 512;
        let mut w = vec![(at, sb.to_bytes())];
        if let Some(b) = &shape.bitmap {
            w.push((at + super0::SB0_BYTES as u64, bitmap_area0(b, sb.uuid())));
        }
        writes.push(w);
    }
    Ok((writes, uuid))
}

/// The chunk (or linear's rounding) in sectors, as superblocks keep it.
fn chunk_sectors(opts: &Options) -> Result<u32, Failure> {
    u32::try_from(opts.chunk_kib * 2)
        .map_err(|_| Failure::usage(format!("invalid chunk/rounding value: {}K", opts.chunk_kib)))
}

/// Where the `missing` words stand among the active slots (`Create`'s
/// `first_missing` and `second_missing`).
#[derive(Debug, Clone, Copy)]
struct Missing {
    first: Option<u32>,
    second: Option<u32>,
}

impl Missing {
    fn of(slots: &[Slot]) -> Missing {
        let mut at = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Missing))
            .map(|(i, _)| i as u32);
        Missing {
            first: at.next(),
            second: at.next(),
        }
    }

    /// Whether the first (`nth` 0) or second (1) missing member is in an
    /// active slot.  `check_counts` refuses missing spares.
    fn in_array(self, nth: usize, raid_disks: u32) -> bool {
        let at = if nth == 0 { self.first } else { self.second };
        at.is_some_and(|i| i < raid_disks)
    }
}

/// `Create`'s trick for parity arrays: a RAID4/5 with every member present
/// is created with its last member as a spare, so the kernel starts it
/// degraded and rebuilds that member, which is faster than resyncing the
/// parity; a RAID6 with one member missing likewise gives up its last
/// present member (the one before the last slot when the last slot is the
/// missing one), since md cannot start a RAID6 both dirty and degraded.
/// Not with `--assume-clean` or `--force` (`skip`).  Returns the slot
/// whose member becomes a spare.
fn moved_to_spare(opts: &Options, missing: Missing, skip: bool) -> Option<u32> {
    if skip {
        return None;
    }
    let last = opts.raid_disks - 1;
    match opts.level {
        Level::Raid4 | Level::Raid5 if !missing.in_array(0, opts.raid_disks) => Some(last),
        Level::Raid6
            if missing.in_array(0, opts.raid_disks) && !missing.in_array(1, opts.raid_disks) =>
        {
            Some(if missing.first == Some(last) {
                last - 1
            } else {
                last
            })
        }
        _ => None,
    }
}

/// Whether `Create` marks the new array clean (resync_offset MaxSector):
/// levels without redundancy, `--assume-clean`, and parity arrays that
/// start degraded (a member moved to spare, or as many missing as they
/// can lose), whose missing members are rebuilt from the rest.  Others
/// resync from the start; a RAID1 or RAID10 with a member missing too.
fn created_clean(opts: &Options, missing: Missing, moved: Option<u32>, assume_clean: bool) -> bool {
    let rd = opts.raid_disks;
    match opts.level {
        _ if assume_clean || opts.level.striped_only() => true,
        Level::Raid4 | Level::Raid5 => moved.is_some() || missing.in_array(0, rd),
        Level::Raid6 => moved.is_some() || missing.in_array(1, rd),
        _ => false,
    }
}

/// mdadm's rounding of a size in KiB to the chunk (`size & ~(chunk-1)`,
/// which assumes a power of two, as mdadm does); no chunk, no rounding.
fn round_to_chunk(kib: u64, chunk_kib: u64) -> u64 {
    match chunk_kib.checked_sub(1) {
        Some(mask) => kib & !mask,
        None => kib,
    }
}

/// `write_init_super1`: a RAID0 whose members differ in size, compared
/// with the first, records that its layout is meaningful
/// (`MD_FEATURE_RAID0_LAYOUT`), unless the layout is 0 ("dangerous").
/// mdadm divides each device's size in bytes by the chunk in sectors;
/// the same quotients decide here.
fn raid0_layout_feature(opts: &Options, members: &[Member]) -> u32 {
    let chunk = opts.chunk_kib * 2;
    if opts.level != Level::Raid0 || opts.layout == 0 || chunk == 0 {
        return 0;
    }
    let units = |m: &Member| m.sectors * 512 / chunk;
    let first = members.first().map_or(0, units);
    if members.iter().any(|m| units(m) != first) {
        feature::RAID0_LAYOUT
    } else {
        0
    }
}

fn check_counts(opts: &Options, slots: &[Slot]) -> Result<(), Failure> {
    let want = opts.raid_disks as u64 + opts.spares as u64;
    let given = slots.len() as u64;
    if given > want {
        return Err(Failure::refused(format!(
            "You have listed more devices ({given}) than are in the array({want})!"
        )));
    }
    if given < want {
        return Err(Failure::refused(
            "You haven't given enough devices (real or missing) to create this array",
        ));
    }
    let (format, max) = match opts.metadata {
        MetadataVersion::V1(_) => ("1.x", MAX_DEV_LIMIT),
        MetadataVersion::V090 => ("0.90", MAX_DEVS0),
    };
    if want > max as u64 {
        return Err(Failure::refused(format!(
            "Too many devices: {format} metadata only supports {max}"
        )));
    }
    if slots.iter().all(|s| matches!(s, Slot::Missing)) {
        return Err(Failure::refused("Subdevs can't be all missing"));
    }
    if let Some(i) = slots
        .iter()
        .enumerate()
        .position(|(i, s)| i as u64 >= opts.raid_disks as u64 && matches!(s, Slot::Missing))
    {
        return Err(Failure::refused(format!(
            "a spare cannot be missing (device {} of {given} is 'missing')",
            i + 1
        )));
    }
    Ok(())
}

/// Open (or plan to create) every named device and measure it.
fn open_members(opts: &Options, slots: &[Slot]) -> Result<Vec<Member>, Failure> {
    let mut members = Vec::new();
    for (pos, slot) in slots.iter().enumerate() {
        let Slot::Device { path, write_mostly } = slot else {
            continue;
        };
        let nbd = path.to_str().is_some_and(crate::disk::nbd::is_uri);
        let (disk, sectors) = match std::fs::metadata(path) {
            // An NBD URI: opened below, like a present device.
            _ if nbd => {
                let d = Disk::open(path, true).map_err(|e| {
                    Failure::refused(match e {
                        crate::disk::DiskError::Io { source, .. } => {
                            format!("cannot open {}: {}", path.display(), strerror(&source))
                        }
                        other => other.to_string(),
                    })
                })?;
                let s = d.sectors();
                (Some(d), s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match opts.image_size {
                Some(s) => {
                    check_creatable(path)?;
                    (None, s)
                }
                None => {
                    return Err(Failure::refused(format!(
                        "cannot open {}: No such file or directory (give --image-size to create it)",
                        path.display()
                    )));
                }
            },
            Err(e) => {
                return Err(Failure::refused(format!(
                    "cannot open {}: {}",
                    path.display(),
                    strerror(&e)
                )));
            }
            Ok(meta) if meta.is_dir() => {
                return Err(Failure::refused(format!(
                    "cannot open {}: Is a directory",
                    path.display()
                )));
            }
            Ok(meta) if !meta.is_file() && !meta.file_type().is_block_device() => {
                return Err(Failure::refused(format!(
                    "{} is not a block device or image file.",
                    path.display()
                )));
            }
            Ok(_) => {
                let d = Disk::open(path, true).map_err(|e| {
                    Failure::refused(match e {
                        crate::disk::DiskError::Io { source, .. } => {
                            format!("cannot open {}: {}", path.display(), strerror(&source))
                        }
                        other => other.to_string(),
                    })
                })?;
                let s = d.sectors();
                (Some(d), s)
            }
        };
        let pos = pos as u32;
        members.push(Member {
            pos,
            slot: (pos < opts.raid_disks).then_some(pos),
            path: path.clone(),
            write_mostly: *write_mostly,
            disk,
            sectors,
        });
    }
    Ok(members)
}

/// A file to be created must have an existing directory to go in.
fn check_creatable(path: &Path) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        _ => Err(Failure::refused(format!(
            "cannot create {}: No such file or directory",
            path.display()
        ))),
    }
}

/// Every way to name the storage behind a member: its inode or device
/// number, and for a loop device also the file behind it.
fn identities(m: &Member) -> Vec<Identity> {
    let Some(disk) = &m.disk else {
        let abs = std::path::absolute(&m.path).unwrap_or_else(|_| m.path.clone());
        let dir = abs
            .parent()
            .and_then(|d| std::fs::canonicalize(d).ok())
            .unwrap_or_default();
        let file = abs.file_name().map(PathBuf::from).unwrap_or_default();
        return vec![Identity::NewFile(dir.join(file))];
    };
    let mut ids = Vec::new();
    match disk.kind() {
        DiskKind::Nbd => {
            if let Ok(id) = disk.identity() {
                ids.push(Identity::Nbd(id));
            }
        }
        DiskKind::ImageFile => {
            if let Ok(meta) = std::fs::metadata(&m.path) {
                ids.push(Identity::Inode {
                    dev: meta.dev(),
                    ino: meta.ino(),
                });
            }
        }
        DiskKind::BlockDevice { major, minor } => {
            ids.push(Identity::BlockDevice {
                rdev: libc::makedev(major, minor),
            });
            let backing = format!("/sys/dev/block/{major}:{minor}/loop/backing_file");
            if let Ok(file) = std::fs::read_to_string(backing) {
                if let Ok(meta) = std::fs::metadata(file.trim_end()) {
                    ids.push(Identity::Inode {
                        dev: meta.dev(),
                        ino: meta.ino(),
                    });
                }
            }
        }
    }
    ids
}

fn check_duplicates(members: &[Member]) -> Result<(), Failure> {
    let mut seen: HashMap<Identity, &Path> = HashMap::new();
    for m in members {
        for id in identities(m) {
            if let Some(prev) = seen.get(&id) {
                return Err(Failure::refused(format!(
                    "{} and {} are the same device",
                    prev.display(),
                    m.path.display()
                )));
            }
            seen.insert(id, &m.path);
        }
    }
    Ok(())
}

/// Refuse a device that holds an md superblock, a file system or a
/// partition table.
fn check_empty(m: &Member) -> Result<(), Failure> {
    let Some(disk) = &m.disk else {
        return Ok(());
    };
    let p = probe(disk);
    let what = match (&p.found, p.rejected.first()) {
        (Some(found), _) => Some(format!(
            "appears to be part of a raid array: {}",
            super::examine::describe(found)
        )),
        (None, Some(r)) => Some(format!(
            "holds a damaged md superblock (v{} at sector {}: {})",
            r.version, r.sb_start, r.error
        )),
        (None, None) => {
            crate::disk::signatures::find(disk, &m.path).map(|s| format!("appears to contain {s}"))
        }
    };
    match what {
        Some(w) => Err(Failure::refused(format!(
            "{} {w}; use --force to overwrite it",
            m.path.display()
        ))),
        None => Ok(()),
    }
}

/// The md superblocks mdadm's `Kill` would wipe before writing the new
/// one: every superblock it can load (0.90: 4096 bytes; 1.x: one sector).
pub(crate) fn old_superblocks(dev: &dyn SectorReader) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    let sectors = dev.size_bytes() / 512;
    if let Some(start) = super0::sb_start(sectors) {
        if let Ok(b) = read_upto(dev, start * 512, super0::SB0_BYTES) {
            if b.len() == super0::SB0_BYTES && le_u32(&b, 0) == MD_SB_MAGIC && le_u32(&b, 4) == 0 {
                out.push((start * 512, super0::SB0_BYTES));
            }
        }
    }
    if sectors >= 24 {
        for minor in [Minor::V0, Minor::V1, Minor::V2] {
            let Some(start) = minor.sb_start(sectors) else {
                continue;
            };
            if let Ok(b) = read_upto(dev, start * 512, 4096) {
                if b.len() == 4096
                    && le_u32(&b, 0) == MD_SB_MAGIC
                    && le_u32(&b, 4) == 1
                    && le_u64(&b, 144) == start
                {
                    out.push((start * 512, 512));
                }
            }
        }
    }
    out
}

/// Create and open the image files of members that do not exist yet; on
/// any failure remove those made so far.  Returns the directories to sync.
fn make_images(members: &mut [Member]) -> Result<Vec<PathBuf>, Failure> {
    let mut made: Vec<PathBuf> = Vec::new();
    let mut result = Ok(());
    for m in members.iter_mut().filter(|m| m.disk.is_none()) {
        result = make_image(&m.path, m.sectors * 512).and_then(|()| {
            made.push(m.path.clone());
            let d = Disk::open(&m.path, true).map_err(|e| Failure::refused(e.to_string()))?;
            m.disk = Some(d);
            Ok(())
        });
        if result.is_err() {
            break;
        }
    }
    if let Err(e) = result {
        for p in &made {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(made
        .iter()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect())
}

/// Create a sparse image file of `bytes`, refusing to replace anything.
fn make_image(path: &Path, bytes: u64) -> Result<(), Failure> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            Failure::refused(format!(
                "cannot create {}: {}",
                path.display(),
                strerror(&e)
            ))
        })?;
    f.set_len(bytes).map_err(|e| {
        Failure::refused(format!(
            "cannot size {} to {bytes} bytes: {}",
            path.display(),
            strerror(&e)
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md_names() {
        assert_eq!(array_name_from("/dev/md0").as_deref(), Some("0"));
        assert_eq!(array_name_from("md12").as_deref(), Some("12"));
        assert_eq!(array_name_from("/dev/md/home").as_deref(), Some("home"));
        assert_eq!(array_name_from("/dev/md_d0").as_deref(), Some("d0"));
        assert_eq!(array_name_from("md"), None);
        assert_eq!(array_name_from("mdx"), None);
        assert_eq!(array_name_from("d0.img"), None);
        assert_eq!(array_name_from("/tmp/md0"), None);
    }

    #[test]
    fn metadata_names() {
        let v1 = MetadataVersion::V1;
        assert_eq!(parse_metadata("1.0").unwrap(), v1(Minor::V0));
        assert_eq!(parse_metadata("01.1").unwrap(), v1(Minor::V1));
        assert_eq!(parse_metadata("default").unwrap(), v1(Minor::V2));
        assert_eq!(parse_metadata("1").unwrap(), v1(Minor::V2));
        assert_eq!(parse_metadata("0.90").unwrap(), MetadataVersion::V090);
        assert_eq!(parse_metadata("00.90").unwrap(), MetadataVersion::V090);
        assert_eq!(parse_metadata("0").unwrap(), MetadataVersion::V090);
        assert_eq!(parse_metadata("0.9").unwrap_err().status, 2);
        assert_eq!(parse_metadata("0.91").unwrap_err().status, 2);
        assert_eq!(parse_metadata("2.0").unwrap_err().status, 2);
    }
}
