//! The internal write-intent bitmap: `bitmap_super_t` (drivers/md/md-bitmap.h)
//! followed by one bit per chunk.
//!
//! ```text
//! off size field              off size field
//!   0   4 magic "bitm"         52   4 chunksize (bytes)
//!   4   4 version (3..6)       56   4 daemon_sleep (seconds)
//!   8  16 uuid                 60   4 write_behind
//!  24   8 events               64   4 sectors_reserved
//!  32   8 events_cleared       68   4 nodes
//!  40   8 sync_size (sectors)  72  64 cluster_name
//!  48   4 state               136 120 pad
//! 256 ... bits: chunk i is bit (i % 8) of byte 256 + i / 8
//! ```

use super::{FormatError, le_u32, le_u64, put_u32, put_u64};

pub const BITMAP_MAGIC: u32 = 0x6d74_6962;
pub const BITMAP_SB_LEN: usize = 256;
/// Version 3 stored bits in host order; 4 is little-endian (what mdadm writes).
pub const BITMAP_MAJOR_LO: u32 = 3;
pub const BITMAP_MAJOR_HI: u32 = 4;
pub const BITMAP_MAJOR_HOSTENDIAN: u32 = 3;
pub const BITMAP_MAJOR_CLUSTERED: u32 = 5;
/// The lockless bitmap (`llbitmap`, drivers/md/md-llbitmap.c), read by
/// Linux 6.18 and later and written by mdadm 4.6 (`--bitmap=lockless`):
/// the same header, a different body.  mdfuse does not run it.
pub const BITMAP_MAJOR_LOCKLESS: u32 = 6;
/// Largest write-behind backlog (`COUNTER_MAX`).
pub const COUNTER_MAX: u32 = 16383;

/// `state` bits (bit numbers, as the kernel's `enum bitmap_state`).
pub mod state {
    pub const STALE: u32 = 1 << 1;
    pub const WRITE_ERROR: u32 = 1 << 2;
    /// Bits 3..5 are the lockless bitmap's (Linux 6.18 md-bitmap.h);
    /// the classic bitmap keeps them as read and acts on none of them.
    pub const FIRST_USE: u32 = 1 << 3;
    pub const CLEAN: u32 = 1 << 4;
    pub const DAEMON_BUSY: u32 = 1 << 5;
    pub const HOSTENDIAN: u32 = 1 << 15;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapSuper {
    pub magic: u32,
    pub version: u32,
    pub uuid: [u8; 16],
    pub events: u64,
    pub events_cleared: u64,
    pub sync_size: u64,
    pub state: u32,
    pub chunksize: u32,
    pub daemon_sleep: u32,
    pub write_behind: u32,
    pub sectors_reserved: u32,
    pub nodes: u32,
    pub cluster_name: [u8; 64],
    pub pad: [u8; 120],
}

impl BitmapSuper {
    /// A fresh superblock as mdadm's `--bitmap=internal` writes it.
    pub fn new(uuid: [u8; 16], sync_size: u64, chunksize: u32, daemon_sleep: u32) -> BitmapSuper {
        BitmapSuper {
            magic: BITMAP_MAGIC,
            version: BITMAP_MAJOR_HI,
            uuid,
            events: 0,
            events_cleared: 0,
            sync_size,
            state: 0,
            chunksize,
            daemon_sleep,
            write_behind: 0,
            sectors_reserved: 0,
            nodes: 0,
            cluster_name: [0; 64],
            pad: [0; 120],
        }
    }

    /// Decode the 256-byte header.  Only a short buffer is refused here;
    /// `validate` applies the kernel's rules.
    pub fn parse(buf: &[u8]) -> Result<BitmapSuper, FormatError> {
        if buf.len() < BITMAP_SB_LEN {
            return Err(FormatError::Truncated {
                need: BITMAP_SB_LEN as u64,
                have: buf.len() as u64,
            });
        }
        let mut sb = BitmapSuper {
            magic: le_u32(buf, 0),
            version: le_u32(buf, 4),
            uuid: [0; 16],
            events: le_u64(buf, 24),
            events_cleared: le_u64(buf, 32),
            sync_size: le_u64(buf, 40),
            state: le_u32(buf, 48),
            chunksize: le_u32(buf, 52),
            daemon_sleep: le_u32(buf, 56),
            write_behind: le_u32(buf, 60),
            sectors_reserved: le_u32(buf, 64),
            nodes: le_u32(buf, 68),
            cluster_name: [0; 64],
            pad: [0; 120],
        };
        sb.uuid.copy_from_slice(&buf[8..24]);
        sb.cluster_name.copy_from_slice(&buf[72..136]);
        sb.pad.copy_from_slice(&buf[136..256]);
        Ok(sb)
    }

    pub fn to_bytes(&self) -> [u8; BITMAP_SB_LEN] {
        let mut buf = [0u8; BITMAP_SB_LEN];
        put_u32(&mut buf, 0, self.magic);
        put_u32(&mut buf, 4, self.version);
        buf[8..24].copy_from_slice(&self.uuid);
        put_u64(&mut buf, 24, self.events);
        put_u64(&mut buf, 32, self.events_cleared);
        put_u64(&mut buf, 40, self.sync_size);
        put_u32(&mut buf, 48, self.state);
        put_u32(&mut buf, 52, self.chunksize);
        put_u32(&mut buf, 56, self.daemon_sleep);
        put_u32(&mut buf, 60, self.write_behind);
        put_u32(&mut buf, 64, self.sectors_reserved);
        put_u32(&mut buf, 68, self.nodes);
        buf[72..136].copy_from_slice(&self.cluster_name);
        buf[136..256].copy_from_slice(&self.pad);
        buf
    }

    /// Is this the header of a lockless bitmap (major 6)?
    pub fn is_llbitmap(&self) -> bool {
        self.magic == BITMAP_MAGIC && self.version == BITMAP_MAJOR_LOCKLESS
    }

    /// `md_bitmap_read_sb`'s field checks, in the kernel's order; the error
    /// carries the kernel's reason text.  A lockless bitmap fails the
    /// version check, as in every kernel's classic bitmap.
    pub fn validate(&self) -> Result<(), FormatError> {
        let reason = if self.magic != BITMAP_MAGIC {
            "bad magic"
        } else if !(BITMAP_MAJOR_LO..=BITMAP_MAJOR_CLUSTERED).contains(&self.version) {
            "unrecognized superblock version"
        } else if self.chunksize < 512 {
            "bitmap chunksize too small"
        } else if !self.chunksize.is_power_of_two() {
            "bitmap chunksize not a power of 2"
        } else if self.daemon_sleep < 1 {
            "daemon sleep period out of range"
        } else if self.write_behind > COUNTER_MAX {
            "write-behind limit out of range (0 - 16383)"
        } else {
            return Ok(());
        };
        Err(FormatError::BadBitmap { reason })
    }

    pub fn chunk_sectors(&self) -> u64 {
        (self.chunksize as u64 / 512).max(1)
    }

    /// Number of chunks (bits) covering `sync_size` sectors.
    pub fn chunks(&self) -> u64 {
        chunks_for(self.sync_size, self.chunksize)
    }

    /// Bytes of header plus bits.
    pub fn bitmap_bytes(&self) -> u64 {
        BITMAP_SB_LEN as u64 + self.chunks().div_ceil(8)
    }
}

/// Chunks needed to cover `sectors` with `chunksize`-byte chunks.
pub fn chunks_for(sectors: u64, chunksize: u32) -> u64 {
    let cs = (chunksize as u64 / 512).max(1);
    sectors.div_ceil(cs)
}

/// Is chunk `i` set in a bit area that starts right after the header?
pub fn bit_is_set(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

pub fn set_bit(bits: &mut [u8], i: u64, on: bool) {
    if let Some(b) = bits.get_mut((i / 8) as usize) {
        if on {
            *b |= 1 << (i % 8);
        } else {
            *b &= !(1 << (i % 8));
        }
    }
}

/// Count set bits among the first `chunks` bits.
pub fn count_dirty(bits: &[u8], chunks: u64) -> u64 {
    (0..chunks).filter(|&i| bit_is_set(bits, i)).count() as u64
}
