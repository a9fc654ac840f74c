//! Finding the md superblock on a device the way mdadm does (util.c
//! `guess_super_type`, super0.c `load_super0`, super1.c `load_super1`), so
//! `examine` reports the same superblock mdadm would, and telling apart
//! "no md superblock" from "md's magic is there but the superblock is not
//! usable".

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

use crate::format::bitmap::{BITMAP_MAGIC, BitmapSuper};
pub use crate::format::read_upto;
use crate::format::super1::{MAX_DEV_LIMIT, MD_SB_MAGIC, SB1_READ_BYTES, feature};
use crate::format::{
    FormatError, MetadataVersion, SectorReader, Superblock0, Superblock1, le_u32, le_u64, super0,
};

/// A device opened read-only, without an exclusive claim (like mdadm's
/// `dev_open(..., O_RDONLY)`), so members of a running array can be read.
#[derive(Debug)]
pub struct RoDevice {
    file: RoFile,
    size: u64,
}

#[derive(Debug)]
enum RoFile {
    File(File),
    /// An NBD export, connected read-only.
    Disk(Box<crate::disk::Disk>),
}

/// Why a device could not be opened; Display gives mdadm's strerror text.
#[derive(Debug)]
pub struct OpenError(pub String);

impl RoDevice {
    pub fn open(path: &Path) -> Result<RoDevice, OpenError> {
        if path.to_str().is_some_and(crate::disk::nbd::is_uri) {
            let d = crate::disk::Disk::open(path, false).map_err(|e| match e {
                crate::disk::DiskError::Io { source, .. } => OpenError(strerror(&source)),
                other => OpenError(other.to_string()),
            })?;
            let size = d.size_bytes();
            return Ok(RoDevice {
                file: RoFile::Disk(Box::new(d)),
                size,
            });
        }
        let meta = std::fs::metadata(path).map_err(|e| OpenError(strerror(&e)))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(OpenError("Is a directory".into()));
        }
        let mut file = File::open(path).map_err(|e| OpenError(strerror(&e)))?;
        let size = if ft.is_block_device() {
            file.seek(SeekFrom::End(0))
                .map_err(|e| OpenError(strerror(&e)))?
        } else if ft.is_file() {
            meta.len()
        } else {
            return Err(OpenError("Not a regular file or block device".into()));
        };
        Ok(RoDevice {
            file: RoFile::File(file),
            size,
        })
    }
}

impl SectorReader for RoDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match &self.file {
            RoFile::File(f) => f.read_exact_at(buf, offset),
            RoFile::Disk(d) => d.read_at(buf, offset),
        }
    }
}

/// `strerror(errno)` of an I/O error, without Rust's " (os error N)".
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A superblock mdadm would load.
#[derive(Debug, Clone)]
pub enum Found {
    V090 {
        sb_start: u64,
        sb: Box<Superblock0>,
        /// The bitmap superblock after it, when `BITMAP_PRESENT` is set and
        /// the bitmap's magic and UUID match (else mdadm drops the flag).
        bitmap: Option<BitmapSuper>,
    },
    V1 {
        minor: crate::format::Minor,
        sb: Box<Superblock1>,
        /// The bitmap superblock, when `BITMAP_OFFSET` is set and the
        /// bitmap's magic and UUID match (else mdadm drops the flag).
        bitmap: Option<BitmapSuper>,
        /// Why the bitmap `BITMAP_OFFSET` points at was not taken.
        bitmap_error: Option<FormatError>,
    },
    /// mdadm would load it, but it cannot be decoded safely (a `max_dev`
    /// beyond what one 4 KiB block holds).
    Undecodable {
        version: MetadataVersion,
        sb_start: u64,
        error: FormatError,
    },
}

impl Found {
    pub fn version(&self) -> MetadataVersion {
        match self {
            Found::V090 { .. } => MetadataVersion::V090,
            Found::V1 { minor, .. } => MetadataVersion::V1(*minor),
            Found::Undecodable { version, .. } => *version,
        }
    }
}

/// md's magic (or a superblock with a damaged magic) where `version`
/// keeps its superblock, refused for `error`.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub version: MetadataVersion,
    pub sb_start: u64,
    pub error: FormatError,
}

/// What is on a device.
#[derive(Debug)]
pub struct Probe {
    pub dev_sectors: u64,
    pub found: Option<Found>,
    /// Near misses, in the order 0.90, 1.0, 1.1, 1.2.
    pub rejected: Vec<Rejected>,
    /// A read that failed, if any.
    pub io_error: Option<io::Error>,
}

/// Smallest device `load_super1` looks at.
const MIN_V1_SECTORS: u64 = 24;

/// Look for every metadata version and pick the one mdadm would: 0.90
/// first, then the 1.x minor with the newest ctime (the first on a tie),
/// which replaces 0.90 only with a newer (32-bit) creation time.
pub fn probe(dev: &dyn SectorReader) -> Probe {
    let dsize = dev.size_bytes() / 512;
    let mut p = Probe {
        dev_sectors: dsize,
        found: None,
        rejected: Vec::new(),
        io_error: None,
    };
    let v0 = probe_v090(dev, &mut p);
    let v1 = probe_v1(dev, &mut p);
    p.found = match (v0, v1) {
        (Some((t0, f0)), Some((t1, f1))) => Some(if t1 as u32 > t0 { f1 } else { f0 }),
        (Some((_, f)), None) | (None, Some((_, f))) => Some(f),
        (None, None) => None,
    };
    p
}

fn probe_v090(dev: &dyn SectorReader, p: &mut Probe) -> Option<(u32, Found)> {
    let start = super0::sb_start(p.dev_sectors)?;
    let buf = match read_upto(dev, start * 512, super0::SB0_BYTES) {
        Ok(b) => b,
        Err(e) => {
            p.io_error.get_or_insert(e);
            return None;
        }
    };
    if buf.len() < super0::SB0_BYTES {
        return None;
    }
    let (magic, major, minor) = (le_u32(&buf, 0), le_u32(&buf, 4), le_u32(&buf, 8));
    let version = MetadataVersion::V090;
    if magic != MD_SB_MAGIC {
        if major == 0 && (90..=91).contains(&minor) {
            p.rejected.push(Rejected {
                version,
                sb_start: start,
                error: FormatError::BadMagic { found: magic },
            });
        }
        return None;
    }
    if major != 0 {
        p.rejected.push(Rejected {
            version,
            sb_start: start,
            error: FormatError::BadVersion0 { major, minor },
        });
        return None;
    }
    let sb = Superblock0::parse(&buf).ok()?;
    let mut bitmap = None;
    if sb.state & super0::sb_state::BITMAP_PRESENT != 0 {
        if let Ok(b) = read_upto(dev, start * 512 + super0::SB0_BYTES as u64, 4096) {
            if b.len() == 4096 {
                if let Ok(bms) = BitmapSuper::parse(&b) {
                    if bms.magic == BITMAP_MAGIC && bms.uuid == sb.uuid() {
                        bitmap = Some(bms);
                    }
                }
            }
        }
    }
    Some((
        sb.ctime,
        Found::V090 {
            sb_start: start,
            sb: Box::new(sb),
            bitmap,
        },
    ))
}

fn probe_v1(dev: &dyn SectorReader, p: &mut Probe) -> Option<(u64, Found)> {
    use crate::format::Minor;
    let size = dev.size_bytes();
    let mut best: Option<(u64, Minor, u64, Vec<u8>)> = None;
    for minor in [Minor::V0, Minor::V1, Minor::V2] {
        let Some(start) = minor.sb_start(p.dev_sectors) else {
            continue;
        };
        let version = MetadataVersion::V1(minor);
        let buf = match read_upto(dev, start * 512, SB1_READ_BYTES) {
            Ok(b) => b,
            Err(e) => {
                // mdadm gives up on 1.x altogether when a read fails.
                p.io_error.get_or_insert(e);
                return None;
            }
        };
        if buf.len() < 4 {
            continue;
        }
        let magic = le_u32(&buf, 0);
        if p.dev_sectors < MIN_V1_SECTORS || buf.len() < SB1_READ_BYTES {
            if magic == MD_SB_MAGIC {
                let error = if buf.len() < SB1_READ_BYTES {
                    FormatError::Truncated {
                        need: SB1_READ_BYTES as u64,
                        have: size.saturating_sub(start * 512),
                    }
                } else {
                    FormatError::DeviceTooSmall {
                        sectors: p.dev_sectors,
                    }
                };
                p.rejected.push(Rejected {
                    version,
                    sb_start: start,
                    error,
                });
            }
            continue;
        }
        let major = le_u32(&buf, 4);
        let super_offset = le_u64(&buf, 144);
        if magic != MD_SB_MAGIC {
            // A damaged magic on what is otherwise plainly a v1 superblock
            // for this very location.
            if major == 1 && super_offset == start && le_u32(&buf, 220) <= MAX_DEV_LIMIT {
                p.rejected.push(Rejected {
                    version,
                    sb_start: start,
                    error: FormatError::BadMagic { found: magic },
                });
            }
            continue;
        }
        if major != 1 {
            p.rejected.push(Rejected {
                version,
                sb_start: start,
                error: FormatError::BadMajorVersion { found: major },
            });
            continue;
        }
        if super_offset != start {
            p.rejected.push(Rejected {
                version,
                sb_start: start,
                error: FormatError::SuperOffsetMismatch {
                    recorded: super_offset,
                    actual: start,
                },
            });
            continue;
        }
        let ctime = le_u64(&buf, 64);
        if best.as_ref().is_none_or(|b| b.0 < ctime) {
            best = Some((ctime, minor, start, buf));
        }
    }
    let (ctime, minor, start, buf) = best?;
    let found = match Superblock1::parse(&buf) {
        Err(error) => Found::Undecodable {
            version: MetadataVersion::V1(minor),
            sb_start: start,
            error,
        },
        Ok(sb) => {
            let (bitmap, bitmap_error) = match v1_bitmap(dev, &sb) {
                None => (None, None),
                Some(Ok(b)) => (Some(b), None),
                Some(Err(e)) => (None, Some(e)),
            };
            Found::V1 {
                minor,
                sb: Box::new(sb),
                bitmap,
                bitmap_error,
            }
        }
    };
    Some((ctime, found))
}

/// The bitmap superblock a v1 superblock points at, if it has one:
/// taken only when it is there and belongs to this array (`load_super1`'s
/// check), else the kernel's reason for refusing it.
fn v1_bitmap(dev: &dyn SectorReader, sb: &Superblock1) -> Option<Result<BitmapSuper, FormatError>> {
    if !sb.has(feature::BITMAP_OFFSET) {
        return None;
    }
    let unreadable = FormatError::BadBitmap {
        reason: "cannot be read",
    };
    let off = (sb.super_offset as i64)
        .checked_add(sb.bitmap_offset as i32 as i64)
        .and_then(|s| u64::try_from(s).ok())
        .and_then(|s| s.checked_mul(512));
    let Some(off) = off else {
        return Some(Err(unreadable));
    };
    let buf = match read_upto(dev, off, 512) {
        Ok(b) if b.len() == 512 => b,
        _ => return Some(Err(unreadable)),
    };
    let bms = match BitmapSuper::parse(&buf) {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    Some(if bms.magic != BITMAP_MAGIC {
        Err(FormatError::BadBitmap {
            reason: "bad magic",
        })
    } else if bms.uuid != sb.set_uuid {
        Err(FormatError::BadBitmap {
            reason: "UUID mismatch",
        })
    } else {
        Ok(bms)
    })
}
