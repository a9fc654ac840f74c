//! The version-0.90 md superblock (`mdp_super_t`, md_p.h): 4096 bytes of
//! host-endian (here little-endian) 32-bit words near the end of the device.
//!
//! ```text
//! words    0..31   constant: magic, major, minor, patch, gvalid_words, set_uuid0,
//!                  ctime, level, size (KiB), nr_disks, raid_disks, md_minor,
//!                  not_persistent, set_uuid1..3, reserved
//! words   32..63   state: utime, state, active, working, failed, spare, sb_csum,
//!                  events_lo, events_hi, cp_events_lo, cp_events_hi, recovery_cp,
//!                  reshape_position (u64), new_level, delta_disks, new_layout,
//!                  new_chunk, reserved
//! words   64..127  personality: layout, chunk_size, reserved
//! words  128..991  disks[27], 32 words each: number, major, minor, raid_disk, state, reserved
//! words  992..1023 this_disk (same descriptor layout)
//! ```

use super::super1::csum_words;
use super::{FormatError, kint, le_u32, put_u32};

pub const SB0_BYTES: usize = 4096;
pub const MD_SB_DISKS: usize = 27;
/// The superblock lives in the last 64 KiB-aligned 64 KiB of the device.
pub const MD_RESERVED_SECTORS: u64 = 128;

/// Disk descriptor `state` bits.
pub mod disk_state {
    pub const FAULTY: u32 = 1 << 0;
    pub const ACTIVE: u32 = 1 << 1;
    pub const SYNC: u32 = 1 << 2;
    pub const REMOVED: u32 = 1 << 3;
    pub const WRITEMOSTLY: u32 = 1 << 9;
    pub const FAILFAST: u32 = 1 << 10;
}

/// Superblock `state` bits.
pub mod sb_state {
    pub const CLEAN: u32 = 1 << 0;
    pub const ERRORS: u32 = 1 << 1;
    pub const BITMAP_PRESENT: u32 = 1 << 8;
}

/// `calc_dev_sboffset`: sector of the 0.90 superblock on a device of
/// `dev_sectors` sectors; `None` if the device is smaller than 64 KiB.
pub fn sb_start(dev_sectors: u64) -> Option<u64> {
    (dev_sectors & !(MD_RESERVED_SECTORS - 1)).checked_sub(MD_RESERVED_SECTORS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disk0 {
    pub number: u32,
    pub major: u32,
    pub minor: u32,
    pub raid_disk: u32,
    pub state: u32,
    /// Words 5..31 of the descriptor, kept for byte-exact round trips.
    pub reserved: [u32; 27],
}

impl Disk0 {
    fn parse(buf: &[u8], off: usize) -> Disk0 {
        let mut d = Disk0 {
            number: le_u32(buf, off),
            major: le_u32(buf, off + 4),
            minor: le_u32(buf, off + 8),
            raid_disk: le_u32(buf, off + 12),
            state: le_u32(buf, off + 16),
            reserved: [0; 27],
        };
        for (i, r) in d.reserved.iter_mut().enumerate() {
            *r = le_u32(buf, off + 20 + 4 * i);
        }
        d
    }

    fn write(&self, buf: &mut [u8], off: usize) {
        put_u32(buf, off, self.number);
        put_u32(buf, off + 4, self.major);
        put_u32(buf, off + 8, self.minor);
        put_u32(buf, off + 12, self.raid_disk);
        put_u32(buf, off + 16, self.state);
        for (i, r) in self.reserved.iter().enumerate() {
            put_u32(buf, off + 20 + 4 * i, *r);
        }
    }

    pub fn is(&self, bit: u32) -> bool {
        self.state & bit != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock0 {
    pub md_magic: u32,
    pub major_version: u32,
    pub minor_version: u32,
    pub patch_version: u32,
    pub gvalid_words: u32,
    pub set_uuid0: u32,
    pub ctime: u32,
    pub level: i32,
    /// KiB of each device used.
    pub size: u32,
    pub nr_disks: u32,
    pub raid_disks: u32,
    pub md_minor: u32,
    pub not_persistent: u32,
    pub set_uuid1: u32,
    pub set_uuid2: u32,
    pub set_uuid3: u32,
    pub gstate_creserved: [u32; 16],
    pub utime: u32,
    pub state: u32,
    pub active_disks: u32,
    pub working_disks: u32,
    pub failed_disks: u32,
    pub spare_disks: u32,
    pub sb_csum: u32,
    pub events_lo: u32,
    pub events_hi: u32,
    pub cp_events_lo: u32,
    pub cp_events_hi: u32,
    pub recovery_cp: u32,
    pub reshape_position: u64,
    pub new_level: u32,
    pub delta_disks: u32,
    pub new_layout: u32,
    pub new_chunk: u32,
    pub gstate_sreserved: [u32; 14],
    pub layout: u32,
    pub chunk_size: u32,
    pub pstate_reserved: [u32; 62],
    pub disks: [Disk0; MD_SB_DISKS],
    pub this_disk: Disk0,
}

impl Superblock0 {
    /// An all-zero superblock (the kernel's `memset` before `super_90_sync`).
    pub fn zeroed() -> Superblock0 {
        Superblock0 {
            md_magic: 0,
            major_version: 0,
            minor_version: 0,
            patch_version: 0,
            gvalid_words: 0,
            set_uuid0: 0,
            ctime: 0,
            level: 0,
            size: 0,
            nr_disks: 0,
            raid_disks: 0,
            md_minor: 0,
            not_persistent: 0,
            set_uuid1: 0,
            set_uuid2: 0,
            set_uuid3: 0,
            gstate_creserved: [0; 16],
            utime: 0,
            state: 0,
            active_disks: 0,
            working_disks: 0,
            failed_disks: 0,
            spare_disks: 0,
            sb_csum: 0,
            events_lo: 0,
            events_hi: 0,
            cp_events_lo: 0,
            cp_events_hi: 0,
            recovery_cp: 0,
            reshape_position: 0,
            new_level: 0,
            delta_disks: 0,
            new_layout: 0,
            new_chunk: 0,
            gstate_sreserved: [0; 14],
            layout: 0,
            chunk_size: 0,
            pstate_reserved: [0; 62],
            disks: [Disk0::default(); MD_SB_DISKS],
            this_disk: Disk0::default(),
        }
    }

    /// Decode 4096 bytes.  Only a short buffer and a wrong magic are refused.
    pub fn parse(buf: &[u8]) -> Result<Superblock0, FormatError> {
        if buf.len() < SB0_BYTES {
            return Err(FormatError::Truncated {
                need: SB0_BYTES as u64,
                have: buf.len() as u64,
            });
        }
        let w = |i: usize| le_u32(buf, 4 * i);
        if w(0) != super::super1::MD_SB_MAGIC {
            return Err(FormatError::BadMagic { found: w(0) });
        }
        let mut sb = Superblock0 {
            md_magic: w(0),
            major_version: w(1),
            minor_version: w(2),
            patch_version: w(3),
            gvalid_words: w(4),
            set_uuid0: w(5),
            ctime: w(6),
            level: kint::int_from_le32(w(7)),
            size: w(8),
            nr_disks: w(9),
            raid_disks: w(10),
            md_minor: w(11),
            not_persistent: w(12),
            set_uuid1: w(13),
            set_uuid2: w(14),
            set_uuid3: w(15),
            gstate_creserved: [0; 16],
            utime: w(32),
            state: w(33),
            active_disks: w(34),
            working_disks: w(35),
            failed_disks: w(36),
            spare_disks: w(37),
            sb_csum: w(38),
            events_lo: w(39),
            events_hi: w(40),
            cp_events_lo: w(41),
            cp_events_hi: w(42),
            recovery_cp: w(43),
            reshape_position: w(44) as u64 | (w(45) as u64) << 32,
            new_level: w(46),
            delta_disks: w(47),
            new_layout: w(48),
            new_chunk: w(49),
            gstate_sreserved: [0; 14],
            layout: w(64),
            chunk_size: w(65),
            pstate_reserved: [0; 62],
            disks: [Disk0::default(); MD_SB_DISKS],
            this_disk: Disk0::parse(buf, 4 * 992),
        };
        for (i, r) in sb.gstate_creserved.iter_mut().enumerate() {
            *r = w(16 + i);
        }
        for (i, r) in sb.gstate_sreserved.iter_mut().enumerate() {
            *r = w(50 + i);
        }
        for (i, r) in sb.pstate_reserved.iter_mut().enumerate() {
            *r = w(66 + i);
        }
        for (i, d) in sb.disks.iter_mut().enumerate() {
            *d = Disk0::parse(buf, 4 * (128 + 32 * i));
        }
        Ok(sb)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; SB0_BYTES];
        let words: [(usize, u32); 16] = [
            (0, self.md_magic),
            (1, self.major_version),
            (2, self.minor_version),
            (3, self.patch_version),
            (4, self.gvalid_words),
            (5, self.set_uuid0),
            (6, self.ctime),
            (7, kint::le32_from_int(self.level)),
            (8, self.size),
            (9, self.nr_disks),
            (10, self.raid_disks),
            (11, self.md_minor),
            (12, self.not_persistent),
            (13, self.set_uuid1),
            (14, self.set_uuid2),
            (15, self.set_uuid3),
        ];
        for (i, v) in words {
            put_u32(&mut buf, 4 * i, v);
        }
        for (i, r) in self.gstate_creserved.iter().enumerate() {
            put_u32(&mut buf, 4 * (16 + i), *r);
        }
        let state_words: [(usize, u32); 18] = [
            (32, self.utime),
            (33, self.state),
            (34, self.active_disks),
            (35, self.working_disks),
            (36, self.failed_disks),
            (37, self.spare_disks),
            (38, self.sb_csum),
            (39, self.events_lo),
            (40, self.events_hi),
            (41, self.cp_events_lo),
            (42, self.cp_events_hi),
            (43, self.recovery_cp),
            (44, kint::lo32(self.reshape_position)),
            (45, kint::hi32(self.reshape_position)),
            (46, self.new_level),
            (47, self.delta_disks),
            (48, self.new_layout),
            (49, self.new_chunk),
        ];
        for (i, v) in state_words {
            put_u32(&mut buf, 4 * i, v);
        }
        for (i, r) in self.gstate_sreserved.iter().enumerate() {
            put_u32(&mut buf, 4 * (50 + i), *r);
        }
        put_u32(&mut buf, 4 * 64, self.layout);
        put_u32(&mut buf, 4 * 65, self.chunk_size);
        for (i, r) in self.pstate_reserved.iter().enumerate() {
            put_u32(&mut buf, 4 * (66 + i), *r);
        }
        for (i, d) in self.disks.iter().enumerate() {
            d.write(&mut buf, 4 * (128 + 32 * i));
        }
        self.this_disk.write(&mut buf, 4 * 992);
        buf
    }

    /// `calc_sb_csum`: the folded sum of all 1024 words with `sb_csum` as 0.
    pub fn compute_csum(&self) -> u32 {
        let mut bytes = self.to_bytes();
        put_u32(&mut bytes, 4 * 38, 0);
        csum_words(&bytes)
    }

    pub fn update_csum(&mut self) {
        self.sb_csum = self.compute_csum();
    }

    pub fn events(&self) -> u64 {
        (self.events_hi as u64) << 32 | self.events_lo as u64
    }

    pub fn set_events(&mut self, ev: u64) {
        self.events_hi = kint::hi32(ev);
        self.events_lo = kint::lo32(ev);
    }

    pub fn cp_events(&self) -> u64 {
        (self.cp_events_hi as u64) << 32 | self.cp_events_lo as u64
    }

    /// The array UUID in the byte order md reports it (`mddev->uuid`).
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        u[0..4].copy_from_slice(&self.set_uuid0.to_le_bytes());
        u[4..8].copy_from_slice(&self.set_uuid1.to_le_bytes());
        u[8..12].copy_from_slice(&self.set_uuid2.to_le_bytes());
        u[12..16].copy_from_slice(&self.set_uuid3.to_le_bytes());
        u
    }

    pub fn set_uuid(&mut self, u: [u8; 16]) {
        let word = |i: usize| u32::from_le_bytes([u[i], u[i + 1], u[i + 2], u[i + 3]]);
        self.set_uuid0 = word(0);
        self.set_uuid1 = word(4);
        self.set_uuid2 = word(8);
        self.set_uuid3 = word(12);
    }

    /// The kernel's "spare_disk" test in `super_90_load`.
    pub fn is_spare_disk(&self) -> bool {
        let n = self.this_disk.number as usize;
        !(n < MD_SB_DISKS && self.disks[n].state & (disk_state::SYNC | disk_state::ACTIVE) != 0)
    }

    /// `super_90_load`'s checks on a device of `dev_sectors` sectors,
    /// with the kernel's messages where it prints one.
    pub fn validate(&self, dev_sectors: u64) -> Result<(), FormatError> {
        if self.md_magic != super::super1::MD_SB_MAGIC {
            return Err(FormatError::BadMagic {
                found: self.md_magic,
            });
        }
        if self.major_version != 0 || !(90..=91).contains(&self.minor_version) {
            return Err(FormatError::BadVersion0 {
                major: self.major_version,
                minor: self.minor_version,
            });
        }
        // `sb->raid_disks <= 0` on a __u32: only 0 is refused here; md
        // takes any other count and the personality refuses what it
        // cannot allocate.
        if self.raid_disks == 0 {
            return Err(FormatError::NoRaidDisks);
        }
        if !self.csum_ok() {
            let computed = self.compute_csum();
            return Err(FormatError::BadChecksum {
                stored: self.sb_csum,
                computed,
            });
        }
        let start = sb_start(dev_sectors).ok_or(FormatError::DeviceTooSmall {
            sectors: dev_sectors,
        })?;
        // `level` is a __u32 here: `level >= 1` holds for every level but
        // raid0, the negative ones (linear, multipath) included.
        let mut sectors = start;
        if sectors >= 2u64 << 32 && self.level != 0 {
            sectors = (2u64 << 32) - 2;
        }
        if sectors < self.size as u64 * 2 && self.level != 0 {
            return Err(FormatError::DataSizeBeyondDevice {
                data_size: self.size as u64 * 2,
                avail: sectors,
            });
        }
        Ok(())
    }

    /// `md_sb_equal`: the 32 constant words match, `nr_disks` aside.
    pub fn equal_for_assembly(&self, other: &Superblock0) -> bool {
        let constant = |s: &Superblock0| {
            let mut b = s.clone();
            b.nr_disks = 0;
            b.to_bytes()[..4 * 32].to_vec()
        };
        constant(self) == constant(other)
    }

    /// The kernel compares 0.90 checksums after folding both to 16 bits.
    pub fn csum_ok(&self) -> bool {
        csum_fold16(self.compute_csum()) == csum_fold16(self.sb_csum)
    }
}

/// `md_csum_fold`.
fn csum_fold16(c: u32) -> u32 {
    let c = (c & 0xffff) + (c >> 16);
    (c & 0xffff) + (c >> 16)
}
