//! The version-1 md superblock (`struct mdp_superblock_1`, include/uapi/linux/raid/md_p.h).
//!
//! ```text
//! off size field              off size field
//!   0   4 magic a92b4efc      136   8 data_size
//!   4   4 major_version = 1   144   8 super_offset
//!   8   4 feature_map         152   8 recovery_offset (or journal_tail)
//!  12   4 pad0 = 0            160   4 dev_number
//!  16  16 set_uuid            164   4 cnt_corrected_read
//!  32  32 set_name            168  16 device_uuid
//!  64   8 ctime               184   1 devflags
//!  72   4 level               185   1 bblog_shift
//!  76   4 layout              186   2 bblog_size
//!  80   8 size                188   4 bblog_offset (signed)
//!  88   4 chunksize           192   8 utime
//!  92   4 raid_disks          200   8 events
//!  96   4 bitmap_offset (s32) 208   8 resync_offset
//! 100   4 new_level           216   4 sb_csum
//! 104   8 reshape_position    220   4 max_dev
//! 112   4 delta_disks         224   4 logical_block_size (6.19)
//! 116   4 new_layout          228  28 pad3 = 0
//! 120   4 new_chunk           256  2*max_dev dev_roles[]
//! 124   4 new_offset (s32)
//! 128   8 data_offset
//! ```
//!
//! `logical_block_size` is Linux 6.19's (commit 62ed1b582246, "md: allow
//! configuring logical block size"): the first word of what earlier kernels
//! call `pad3`, which they require to be zero.  0 means not recorded.
//!
//! All integers are little-endian; sectors are 512 bytes.  `parse` only
//! decodes (refusing what cannot be decoded safely); `validate` applies the
//! kernel's `super_1_load` rules against the device the superblock was read
//! from; `to_bytes` re-encodes byte for byte.

use super::{FormatError, kint, le_u16, le_u32, le_u64, put_u16, put_u32, put_u64};

pub const MD_SB_MAGIC: u32 = 0xa92b_4efc;
/// Size of the fixed part; `dev_roles` follows.
pub const SB1_FIXED: usize = 256;
/// The kernel reads one 4 KiB page, so at most `(4096 - 256) / 2` roles fit.
pub const MAX_DEV_LIMIT: u32 = 1920;
/// The kernel always reads this many bytes at `sb_start`.
pub const SB1_READ_BYTES: usize = 4096;
pub const MAX_SECTOR: u64 = u64::MAX;

const OFF_MAGIC: usize = 0;
const OFF_MAJOR: usize = 4;
const OFF_FEATURE_MAP: usize = 8;
const OFF_PAD0: usize = 12;
const OFF_SET_UUID: usize = 16;
const OFF_SET_NAME: usize = 32;
const OFF_CTIME: usize = 64;
const OFF_LEVEL: usize = 72;
const OFF_LAYOUT: usize = 76;
const OFF_SIZE: usize = 80;
const OFF_CHUNKSIZE: usize = 88;
const OFF_RAID_DISKS: usize = 92;
const OFF_BITMAP_OFFSET: usize = 96;
const OFF_NEW_LEVEL: usize = 100;
const OFF_RESHAPE_POSITION: usize = 104;
const OFF_DELTA_DISKS: usize = 112;
const OFF_NEW_LAYOUT: usize = 116;
const OFF_NEW_CHUNK: usize = 120;
const OFF_NEW_OFFSET: usize = 124;
const OFF_DATA_OFFSET: usize = 128;
const OFF_DATA_SIZE: usize = 136;
const OFF_SUPER_OFFSET: usize = 144;
const OFF_RECOVERY_OFFSET: usize = 152;
const OFF_DEV_NUMBER: usize = 160;
const OFF_CNT_CORRECTED_READ: usize = 164;
const OFF_DEVICE_UUID: usize = 168;
const OFF_DEVFLAGS: usize = 184;
const OFF_BBLOG_SHIFT: usize = 185;
const OFF_BBLOG_SIZE: usize = 186;
const OFF_BBLOG_OFFSET: usize = 188;
const OFF_UTIME: usize = 192;
const OFF_EVENTS: usize = 200;
const OFF_RESYNC_OFFSET: usize = 208;
const OFF_SB_CSUM: usize = 216;
const OFF_MAX_DEV: usize = 220;
const OFF_LOGICAL_BLOCK_SIZE: usize = 224;
const OFF_PAD3: usize = 228;
pub const PAD3_LEN: usize = 28;
const _: () = assert!(OFF_PAD3 + PAD3_LEN == SB1_FIXED);

/// `feature_map` bits.
pub mod feature {
    pub const BITMAP_OFFSET: u32 = 1;
    pub const RECOVERY_OFFSET: u32 = 2;
    pub const RESHAPE_ACTIVE: u32 = 4;
    pub const BAD_BLOCKS: u32 = 8;
    pub const REPLACEMENT: u32 = 16;
    pub const RESHAPE_BACKWARDS: u32 = 32;
    pub const NEW_OFFSET: u32 = 64;
    pub const RECOVERY_BITMAP: u32 = 128;
    pub const CLUSTERED: u32 = 256;
    pub const JOURNAL: u32 = 512;
    pub const PPL: u32 = 1024;
    pub const MULTIPLE_PPLS: u32 = 2048;
    pub const RAID0_LAYOUT: u32 = 4096;
    /// `MD_FEATURE_ALL`: any other bit makes the kernel refuse the device.
    pub const ALL: u32 = 0x1fff;
}

/// `devflags` bits.
pub mod devflags {
    pub const WRITE_MOSTLY: u8 = 1;
    pub const FAIL_FAST: u8 = 2;
}

/// Special `dev_roles` values; anything below `ROLE_MAX` is a slot number.
pub mod role {
    pub const SPARE: u16 = 0xffff;
    pub const FAULTY: u16 = 0xfffe;
    pub const JOURNAL: u16 = 0xfffd;
    pub const MAX: u16 = 0xff00;
}

/// Which v1 layout: where the superblock sits on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Minor {
    /// 1.0: near the end of the device.
    V0,
    /// 1.1: at sector 0.
    V1,
    /// 1.2: 4 KiB from the start.
    V2,
}

impl Minor {
    pub fn number(self) -> u32 {
        match self {
            Minor::V0 => 0,
            Minor::V1 => 1,
            Minor::V2 => 2,
        }
    }

    pub fn from_number(n: u32) -> Option<Minor> {
        match n {
            0 => Some(Minor::V0),
            1 => Some(Minor::V1),
            2 => Some(Minor::V2),
            _ => None,
        }
    }

    /// The superblock's sector on a device of `dev_sectors` sectors
    /// (`super_1_load`); `None` when the device cannot hold one at all.
    pub fn sb_start(self, dev_sectors: u64) -> Option<u64> {
        match self {
            Minor::V0 => dev_sectors.checked_sub(16).map(|s| s & !7),
            Minor::V1 => Some(0),
            Minor::V2 => Some(8),
        }
    }
}

/// One decoded v1 superblock.  Every byte of the on-disk structure is held,
/// so `to_bytes` reproduces what `parse` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock1 {
    pub magic: u32,
    pub major_version: u32,
    pub feature_map: u32,
    pub pad0: u32,
    pub set_uuid: [u8; 16],
    pub set_name: [u8; 32],
    /// Low 40 bits seconds, high 24 bits microseconds.
    pub ctime: u64,
    pub level: i32,
    pub layout: u32,
    /// Sectors of each device used by the array.
    pub size: u64,
    pub chunksize: u32,
    pub raid_disks: u32,
    /// Raw word at offset 96: the signed bitmap offset, or the PPL offset
    /// and size when the PPL feature is set.
    pub bitmap_offset: u32,
    pub new_level: u32,
    pub reshape_position: u64,
    pub delta_disks: u32,
    pub new_layout: u32,
    pub new_chunk: u32,
    pub new_offset: u32,
    pub data_offset: u64,
    pub data_size: u64,
    pub super_offset: u64,
    pub recovery_offset: u64,
    pub dev_number: u32,
    pub cnt_corrected_read: u32,
    pub device_uuid: [u8; 16],
    pub devflags: u8,
    pub bblog_shift: u8,
    pub bblog_size: u16,
    pub bblog_offset: i32,
    pub utime: u64,
    pub events: u64,
    pub resync_offset: u64,
    pub sb_csum: u32,
    pub max_dev: u32,
    /// The array's logical block size in bytes (Linux 6.19); 0 when none
    /// is recorded, as every earlier kernel and mdadm writes it.
    pub logical_block_size: u32,
    pub pad3: [u8; PAD3_LEN],
    pub dev_roles: Vec<u16>,
}

impl Superblock1 {
    /// Decode the superblock at the start of `buf`.  Refuses only what makes
    /// decoding impossible or unsafe: a short buffer, a wrong magic, and a
    /// `max_dev` beyond what one 4 KiB read can hold.  Everything else is
    /// `validate`'s job.
    pub fn parse(buf: &[u8]) -> Result<Superblock1, FormatError> {
        if buf.len() < SB1_FIXED {
            return Err(FormatError::Truncated {
                need: SB1_FIXED as u64,
                have: buf.len() as u64,
            });
        }
        let magic = le_u32(buf, OFF_MAGIC);
        if magic != MD_SB_MAGIC {
            return Err(FormatError::BadMagic { found: magic });
        }
        let max_dev = le_u32(buf, OFF_MAX_DEV);
        if max_dev > MAX_DEV_LIMIT {
            return Err(FormatError::MaxDevTooLarge { max_dev });
        }
        let len = Self::len_for(max_dev);
        if buf.len() < len {
            return Err(FormatError::Truncated {
                need: len as u64,
                have: buf.len() as u64,
            });
        }
        let dev_roles = (0..max_dev as usize)
            .map(|i| le_u16(buf, SB1_FIXED + 2 * i))
            .collect();
        let mut sb = Superblock1 {
            magic,
            major_version: le_u32(buf, OFF_MAJOR),
            feature_map: le_u32(buf, OFF_FEATURE_MAP),
            pad0: le_u32(buf, OFF_PAD0),
            set_uuid: [0; 16],
            set_name: [0; 32],
            ctime: le_u64(buf, OFF_CTIME),
            level: kint::int_from_le32(le_u32(buf, OFF_LEVEL)),
            layout: le_u32(buf, OFF_LAYOUT),
            size: le_u64(buf, OFF_SIZE),
            chunksize: le_u32(buf, OFF_CHUNKSIZE),
            raid_disks: le_u32(buf, OFF_RAID_DISKS),
            bitmap_offset: le_u32(buf, OFF_BITMAP_OFFSET),
            new_level: le_u32(buf, OFF_NEW_LEVEL),
            reshape_position: le_u64(buf, OFF_RESHAPE_POSITION),
            delta_disks: le_u32(buf, OFF_DELTA_DISKS),
            new_layout: le_u32(buf, OFF_NEW_LAYOUT),
            new_chunk: le_u32(buf, OFF_NEW_CHUNK),
            new_offset: le_u32(buf, OFF_NEW_OFFSET),
            data_offset: le_u64(buf, OFF_DATA_OFFSET),
            data_size: le_u64(buf, OFF_DATA_SIZE),
            super_offset: le_u64(buf, OFF_SUPER_OFFSET),
            recovery_offset: le_u64(buf, OFF_RECOVERY_OFFSET),
            dev_number: le_u32(buf, OFF_DEV_NUMBER),
            cnt_corrected_read: le_u32(buf, OFF_CNT_CORRECTED_READ),
            device_uuid: [0; 16],
            devflags: buf[OFF_DEVFLAGS],
            bblog_shift: buf[OFF_BBLOG_SHIFT],
            bblog_size: le_u16(buf, OFF_BBLOG_SIZE),
            bblog_offset: kint::int_from_le32(le_u32(buf, OFF_BBLOG_OFFSET)),
            utime: le_u64(buf, OFF_UTIME),
            events: le_u64(buf, OFF_EVENTS),
            resync_offset: le_u64(buf, OFF_RESYNC_OFFSET),
            sb_csum: le_u32(buf, OFF_SB_CSUM),
            max_dev,
            logical_block_size: le_u32(buf, OFF_LOGICAL_BLOCK_SIZE),
            pad3: [0; PAD3_LEN],
            dev_roles,
        };
        sb.set_uuid
            .copy_from_slice(&buf[OFF_SET_UUID..OFF_SET_UUID + 16]);
        sb.set_name
            .copy_from_slice(&buf[OFF_SET_NAME..OFF_SET_NAME + 32]);
        sb.device_uuid
            .copy_from_slice(&buf[OFF_DEVICE_UUID..OFF_DEVICE_UUID + 16]);
        sb.pad3.copy_from_slice(&buf[OFF_PAD3..OFF_PAD3 + PAD3_LEN]);
        Ok(sb)
    }

    /// Bytes covered by the checksum and written by the kernel before
    /// rounding: `256 + 2 * max_dev`.
    pub fn len_for(max_dev: u32) -> usize {
        SB1_FIXED + 2 * max_dev as usize
    }

    #[allow(clippy::len_without_is_empty)] // a superblock is never empty
    pub fn len(&self) -> usize {
        Self::len_for(self.max_dev)
    }

    /// What a write covers: the structure rounded up to a 512-byte sector
    /// (mdadm and the kernel on 512-byte devices), zero-filled.
    pub fn write_len(&self) -> usize {
        self.len().div_ceil(512) * 512
    }

    /// Encode exactly as stored: `len()` bytes, `sb_csum` as held.
    /// `dev_roles` is written for `max_dev` entries (missing ones as spare),
    /// so a caller that changed one but not the other still gets a
    /// well-formed structure.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.len()];
        put_u32(&mut buf, OFF_MAGIC, self.magic);
        put_u32(&mut buf, OFF_MAJOR, self.major_version);
        put_u32(&mut buf, OFF_FEATURE_MAP, self.feature_map);
        put_u32(&mut buf, OFF_PAD0, self.pad0);
        buf[OFF_SET_UUID..OFF_SET_UUID + 16].copy_from_slice(&self.set_uuid);
        buf[OFF_SET_NAME..OFF_SET_NAME + 32].copy_from_slice(&self.set_name);
        put_u64(&mut buf, OFF_CTIME, self.ctime);
        put_u32(&mut buf, OFF_LEVEL, kint::le32_from_int(self.level));
        put_u32(&mut buf, OFF_LAYOUT, self.layout);
        put_u64(&mut buf, OFF_SIZE, self.size);
        put_u32(&mut buf, OFF_CHUNKSIZE, self.chunksize);
        put_u32(&mut buf, OFF_RAID_DISKS, self.raid_disks);
        put_u32(&mut buf, OFF_BITMAP_OFFSET, self.bitmap_offset);
        put_u32(&mut buf, OFF_NEW_LEVEL, self.new_level);
        put_u64(&mut buf, OFF_RESHAPE_POSITION, self.reshape_position);
        put_u32(&mut buf, OFF_DELTA_DISKS, self.delta_disks);
        put_u32(&mut buf, OFF_NEW_LAYOUT, self.new_layout);
        put_u32(&mut buf, OFF_NEW_CHUNK, self.new_chunk);
        put_u32(&mut buf, OFF_NEW_OFFSET, self.new_offset);
        put_u64(&mut buf, OFF_DATA_OFFSET, self.data_offset);
        put_u64(&mut buf, OFF_DATA_SIZE, self.data_size);
        put_u64(&mut buf, OFF_SUPER_OFFSET, self.super_offset);
        put_u64(&mut buf, OFF_RECOVERY_OFFSET, self.recovery_offset);
        put_u32(&mut buf, OFF_DEV_NUMBER, self.dev_number);
        put_u32(&mut buf, OFF_CNT_CORRECTED_READ, self.cnt_corrected_read);
        buf[OFF_DEVICE_UUID..OFF_DEVICE_UUID + 16].copy_from_slice(&self.device_uuid);
        buf[OFF_DEVFLAGS] = self.devflags;
        buf[OFF_BBLOG_SHIFT] = self.bblog_shift;
        put_u16(&mut buf, OFF_BBLOG_SIZE, self.bblog_size);
        put_u32(
            &mut buf,
            OFF_BBLOG_OFFSET,
            kint::le32_from_int(self.bblog_offset),
        );
        put_u64(&mut buf, OFF_UTIME, self.utime);
        put_u64(&mut buf, OFF_EVENTS, self.events);
        put_u64(&mut buf, OFF_RESYNC_OFFSET, self.resync_offset);
        put_u32(&mut buf, OFF_SB_CSUM, self.sb_csum);
        put_u32(&mut buf, OFF_MAX_DEV, self.max_dev);
        put_u32(&mut buf, OFF_LOGICAL_BLOCK_SIZE, self.logical_block_size);
        buf[OFF_PAD3..OFF_PAD3 + PAD3_LEN].copy_from_slice(&self.pad3);
        for i in 0..self.max_dev as usize {
            let r = self.dev_roles.get(i).copied().unwrap_or(role::SPARE);
            put_u16(&mut buf, SB1_FIXED + 2 * i, r);
        }
        buf
    }

    /// The sector-rounded image to write: `to_bytes` zero-padded to `write_len`.
    pub fn to_sector_bytes(&self) -> Vec<u8> {
        let mut b = self.to_bytes();
        b.resize(self.write_len(), 0);
        b
    }

    /// `calc_sb_1_csum`: the sum of the little-endian words of the first
    /// `256 + 2*max_dev` bytes with `sb_csum` taken as 0, folded to 32 bits.
    pub fn compute_csum(&self) -> u32 {
        let mut bytes = self.to_bytes();
        put_u32(&mut bytes, OFF_SB_CSUM, 0);
        csum_words(&bytes)
    }

    /// Recompute and store the checksum (the last step of every update).
    pub fn update_csum(&mut self) {
        self.sb_csum = self.compute_csum();
    }

    pub fn csum_ok(&self) -> bool {
        self.compute_csum() == self.sb_csum
    }

    pub fn has(&self, bit: u32) -> bool {
        self.feature_map & bit != 0
    }

    /// The signed bitmap offset from `sb_start`, when an internal bitmap is recorded.
    pub fn bitmap_offset_sectors(&self) -> Option<i64> {
        self.has(feature::BITMAP_OFFSET)
            .then_some(i64::from(kint::int_from_le32(self.bitmap_offset)))
    }

    /// This device's own role from its own superblock (spare when
    /// `dev_number` is beyond `max_dev`).
    pub fn own_role(&self) -> u16 {
        self.role_of(self.dev_number)
    }

    pub fn role_of(&self, dev_number: u32) -> u16 {
        self.dev_roles
            .get(dev_number as usize)
            .copied()
            .unwrap_or(role::SPARE)
    }

    /// The kernel's "spare_disk" test in `super_1_load`: a device that holds
    /// no slot (and is not a journal) never counts as freshest.
    pub fn is_spare_disk(&self) -> bool {
        let r = self.own_role();
        !(self.dev_number < self.max_dev && (r < role::MAX || r == role::JOURNAL))
    }

    /// The array name as stored, up to the first NUL.
    pub fn name(&self) -> String {
        let end = self.set_name.iter().position(|&b| b == 0).unwrap_or(32);
        String::from_utf8_lossy(&self.set_name[..end]).into_owned()
    }

    pub fn set_name_str(&mut self, name: &str) {
        self.set_name = [0; 32];
        let b = name.as_bytes();
        let n = b.len().min(32);
        self.set_name[..n].copy_from_slice(&b[..n]);
    }

    /// Apply `super_1_load`'s checks that concern this superblock alone,
    /// as read from a device of `dev_sectors` sectors with layout `minor`
    /// and logical block size 512.  The first failing rule is reported.
    pub fn validate(&self, minor: Minor, dev_sectors: u64) -> Result<(), FormatError> {
        if self.magic != MD_SB_MAGIC {
            return Err(FormatError::BadMagic { found: self.magic });
        }
        if self.major_version != 1 {
            return Err(FormatError::BadMajorVersion {
                found: self.major_version,
            });
        }
        if self.max_dev > MAX_DEV_LIMIT {
            return Err(FormatError::MaxDevTooLarge {
                max_dev: self.max_dev,
            });
        }
        let sb_start = minor
            .sb_start(dev_sectors)
            .ok_or(FormatError::DeviceTooSmall {
                sectors: dev_sectors,
            })?;
        if self.super_offset != sb_start {
            return Err(FormatError::SuperOffsetMismatch {
                recorded: self.super_offset,
                actual: sb_start,
            });
        }
        if self.feature_map & !feature::ALL != 0 {
            return Err(FormatError::UnknownFeatures {
                bits: self.feature_map & !feature::ALL,
            });
        }
        let want = self.compute_csum();
        if want != self.sb_csum {
            return Err(FormatError::BadChecksum {
                stored: self.sb_csum,
                computed: want,
            });
        }
        if self.data_size < 10 {
            return Err(FormatError::DataSizeTooSmall {
                data_size: self.data_size,
            });
        }
        // Linux 6.19 took the first word of pad3 for logical_block_size and
        // checks only the rest; 6.1 refuses any non-zero byte there.  The
        // newer kernel is followed: such members load.
        if self.pad0 != 0 || self.pad3.iter().any(|&b| b != 0) {
            return Err(FormatError::NonZeroPadding);
        }
        let sb_end = sb_start + (self.write_len() / 512) as u64;
        if minor != Minor::V0 {
            if self.data_offset < sb_end {
                return Err(FormatError::DataOverlapsSuperblock {
                    data_offset: self.data_offset,
                    sb_end,
                });
            }
            if let Some(new) = self.new_data_offset() {
                if new < sb_end {
                    return Err(FormatError::DataOverlapsSuperblock {
                        data_offset: new,
                        sb_end,
                    });
                }
            }
        }
        if self.has(feature::BAD_BLOCKS) && (self.bblog_size > 8 || self.bblog_offset == 0) {
            return Err(FormatError::BadBlockLog {
                reason: format!(
                    "bad-block log of {} sectors at offset {} cannot be read",
                    self.bblog_size, self.bblog_offset
                ),
            });
        }
        if self.has(feature::RAID0_LAYOUT) && self.level != 0 {
            return Err(FormatError::Raid0LayoutOnLevel { level: self.level });
        }
        let avail = self.avail_sectors(minor, dev_sectors);
        if avail < self.data_size {
            return Err(FormatError::DataSizeBeyondDevice {
                data_size: self.data_size,
                avail,
            });
        }
        Ok(())
    }

    /// Sectors the device offers for data (`super_1_load`): up to the
    /// superblock for 1.0, from data_offset to the end otherwise.  The
    /// kernel subtracts in sector_t: a data_offset past the device's end
    /// leaves "room" modulo 2^64, the member loads, and every read of it
    /// fails later; so here.
    pub fn avail_sectors(&self, minor: Minor, dev_sectors: u64) -> u64 {
        match minor {
            Minor::V0 => minor.sb_start(dev_sectors).unwrap_or(0),
            _ => dev_sectors.wrapping_sub(self.data_offset),
        }
    }

    /// The data offset a reshape is moving to, when one is recorded.
    pub fn new_data_offset(&self) -> Option<u64> {
        (self.has(feature::RESHAPE_ACTIVE) && self.has(feature::NEW_OFFSET)).then(|| {
            self.data_offset
                .wrapping_add_signed(i64::from(kint::int_from_le32(self.new_offset)))
        })
    }
}

/// The md checksum fold shared by v0.90 and v1: sum little-endian u32 words
/// (a trailing u16 if the length is 2 mod 4) into a u64, then add the high
/// half to the low half in 32 bits.
pub(crate) fn csum_words(bytes: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    let mut chunks = bytes.chunks_exact(4);
    for w in &mut chunks {
        sum += u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = chunks.remainder();
    if rest.len() >= 2 {
        sum += u16::from_le_bytes([rest[0], rest[1]]) as u64;
    }
    kint::lo32(sum).wrapping_add(kint::hi32(sum))
}

/// Split an md time field: low 40 bits seconds, high 24 bits microseconds.
pub fn time_secs(t: u64) -> u64 {
    t & 0xff_ffff_ffff
}
