//! On-disk structures of Linux md, bit for bit: the v0.90 and v1.x
//! superblocks, the internal write-intent bitmap, and the bad-block log.
//!
//! Each structure is decoded by a pure `parse(&[u8])`, checked by
//! `validate(..)` with the kernel's rules, and encoded by `to_bytes()`;
//! parse-then-encode of any valid structure reproduces its bytes.  Nothing
//! here does I/O: `probe` reads through the small `SectorReader` trait.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

pub mod badblocks;
pub mod bitmap;
pub mod geometry;
pub mod geometry0;
pub mod kint;
pub mod super0;
pub mod super1;

use std::fmt;

pub use bitmap::BitmapSuper;
pub use super0::Superblock0;
pub use super1::{MAX_SECTOR, Minor, Superblock1};

/// Why a structure was refused.  Display gives the reason only; callers
/// prefix the device ("vda: invalid superblock checksum ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: u64, have: u64 },
    #[error("bad magic {found:#010x} (expected a92b4efc)")]
    BadMagic { found: u32 },
    #[error("unsupported major version {found} (expected 1)")]
    BadMajorVersion { found: u32 },
    #[error("Bad version number {major}.{minor}")]
    BadVersion0 { major: u32, minor: u32 },
    #[error("raid_disks is 0")]
    NoRaidDisks,
    #[error("max_dev {max_dev} is over the limit of 1920")]
    MaxDevTooLarge { max_dev: u32 },
    #[error("super_offset {recorded} does not match the superblock's location {actual}")]
    SuperOffsetMismatch { recorded: u64, actual: u64 },
    #[error("unknown feature bits {bits:#x}")]
    UnknownFeatures { bits: u32 },
    #[error("invalid superblock checksum (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum { stored: u32, computed: u32 },
    #[error("data_size too small ({data_size} sectors)")]
    DataSizeTooSmall { data_size: u64 },
    #[error("non-zero padding")]
    NonZeroPadding,
    #[error("data_offset {data_offset} overlaps the superblock (which ends at sector {sb_end})")]
    DataOverlapsSuperblock { data_offset: u64, sb_end: u64 },
    #[error("data_size {data_size} exceeds the {avail} sectors the device offers")]
    DataSizeBeyondDevice { data_size: u64, avail: u64 },
    #[error("raid0 layout flag set on level {level}")]
    Raid0LayoutOnLevel { level: i32 },
    #[error("{reason}")]
    BadBlockLog { reason: String },
    #[error("device of {sectors} sectors is too small to hold a superblock")]
    DeviceTooSmall { sectors: u64 },
    #[error("invalid bitmap file superblock: {reason}")]
    BadBitmap { reason: &'static str },
}

/// Where a structure was read from and what it said, for callers that
/// probe a device without knowing its metadata version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnySuper {
    V090(Box<Superblock0>),
    V1(Minor, Box<Superblock1>),
}

/// md metadata versions mdfuse reads (all) and writes (all, 0.90 only by
/// the running array).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataVersion {
    V090,
    V1(Minor),
}

impl MetadataVersion {
    pub const ALL: [MetadataVersion; 4] = [
        MetadataVersion::V1(Minor::V2),
        MetadataVersion::V1(Minor::V1),
        MetadataVersion::V1(Minor::V0),
        MetadataVersion::V090,
    ];

    /// Parse the forms mdadm's `--metadata` and sysfs `metadata_version` take:
    /// `1`, `1.0`, `1.1`, `1.2`, `0.90`, `0`, `default`.
    pub fn parse(s: &str) -> Option<MetadataVersion> {
        match s.trim() {
            "1.2" | "1" | "default" | "1.02" => Some(MetadataVersion::V1(Minor::V2)),
            "1.1" | "1.01" => Some(MetadataVersion::V1(Minor::V1)),
            "1.0" | "1.00" => Some(MetadataVersion::V1(Minor::V0)),
            "0.90" | "0" | "0.9" => Some(MetadataVersion::V090),
            _ => None,
        }
    }

    /// Superblock sector on a device of `dev_sectors`.
    pub fn sb_start(self, dev_sectors: u64) -> Option<u64> {
        match self {
            MetadataVersion::V090 => super0::sb_start(dev_sectors),
            MetadataVersion::V1(m) => m.sb_start(dev_sectors),
        }
    }
}

impl fmt::Display for MetadataVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataVersion::V090 => write!(f, "0.90"),
            MetadataVersion::V1(m) => write!(f, "1.{}", m.number()),
        }
    }
}

/// Positional reads from a device, in bytes.
pub trait SectorReader {
    fn size_bytes(&self) -> u64;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

/// 16 random bytes from the kernel (`random_uuid`), for array and device
/// UUIDs.
pub fn random_uuid() -> std::io::Result<[u8; 16]> {
    use std::io::Read;
    let mut u = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut u)?;
    Ok(u)
}

/// Read up to `len` bytes at `off`; fewer when the device ends first.
pub fn read_upto(dev: &dyn SectorReader, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let have = kint::buf_len(dev.size_bytes().saturating_sub(off).min(len as u64));
    let mut buf = vec![0u8; have];
    if have > 0 {
        dev.read_exact_at(&mut buf, off)?;
    }
    Ok(buf)
}

/// Outcome of looking for one metadata version on a device.
#[derive(Debug)]
pub enum Probe {
    /// A superblock that decodes (it may still fail `validate`).
    Found(AnySuper),
    /// md's magic is there but the structure cannot be decoded safely.
    Invalid(FormatError),
    /// No md magic where this version keeps its superblock.
    Absent,
    /// The device could not be read there.
    Io(std::io::Error),
}

/// Read the superblock `version` would have on `dev`, without validating.
pub fn probe(dev: &dyn SectorReader, version: MetadataVersion) -> Probe {
    let size = dev.size_bytes();
    let Some(start) = version.sb_start(size / 512) else {
        return Probe::Absent;
    };
    let want = match version {
        MetadataVersion::V090 => super0::SB0_BYTES,
        MetadataVersion::V1(_) => super1::SB1_READ_BYTES,
    };
    let off = start * 512;
    // The kernel reads a whole 4 KiB; on a device that ends inside it the
    // missing tail reads as zeros here, and parse refuses what needs it.
    let have = kint::buf_len(size.saturating_sub(off).min(want as u64));
    if have < 4 {
        return Probe::Absent;
    }
    let mut buf = vec![0u8; want];
    if let Err(e) = dev.read_exact_at(&mut buf[..have], off) {
        return Probe::Io(e);
    }
    if le_u32(&buf, 0) != super1::MD_SB_MAGIC {
        return Probe::Absent;
    }
    let parsed = match version {
        MetadataVersion::V090 => {
            Superblock0::parse(&buf[..have]).map(|s| AnySuper::V090(Box::new(s)))
        }
        MetadataVersion::V1(m) => {
            Superblock1::parse(&buf[..have]).map(|s| AnySuper::V1(m, Box::new(s)))
        }
    };
    match parsed {
        Ok(s) => Probe::Found(s),
        Err(e) => Probe::Invalid(e),
    }
}

pub(crate) fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// `%pU`-style lowercase UUID with dashes (sysfs `uuid`).
pub fn uuid_dashed(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// mdadm's `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx` form.
pub fn uuid_colon(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}:{}:{}:{}",
        h[0..4].concat(),
        h[4..8].concat(),
        h[8..12].concat(),
        h[12..16].concat()
    )
}
