//! One member of an array (`struct md_rdev`): the open component, its
//! superblock image, its role and flags.  Fields read on the I/O path are
//! atomics; the superblock image and bad-block list have their own locks.

use std::io;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::badblocks::BadBlocks;
use super::flags::{Flags, rdev as rf};
use crate::disk::Disk;
use crate::format::{Minor, Superblock0, Superblock1};

/// The superblock image kept for a member, as the kernel keeps `sb_page`.
#[derive(Debug, Clone)]
pub enum SbImage {
    V1(Minor, Box<Superblock1>),
    V090(Box<Superblock0>),
}

#[derive(Debug, Default)]
pub struct SbState {
    pub image: Option<SbImage>,
    /// `sb_events`: the events value of the last superblock written.
    pub sb_events: u64,
    /// `sb_loaded`: 1 = build and write at the next update, 2 = skip.
    pub sb_loaded: u8,
}

#[derive(Debug)]
pub struct Rdev {
    pub disk: Disk,
    /// The `dev-NAME` suffix: kernel name, `/` replaced by `!`, made unique.
    pub name: String,
    pub flags: Flags<rf::Rdev>,
    raid_disk: AtomicI32,
    saved_raid_disk: AtomicI32,
    desc_nr: AtomicI32,
    recovery_offset: AtomicU64,
    data_offset: AtomicU64,
    new_data_offset: AtomicU64,
    /// Usable sectors (`rdev->sectors`).
    sectors: AtomicU64,
    sb_start: AtomicU64,
    /// Bytes a superblock write covers.
    sb_size: AtomicU32,
    corrected_errors: AtomicU32,
    read_errors: AtomicU32,
    last_read_error: Mutex<Option<Instant>>,
    /// In-flight I/Os (`nr_pending`).
    pub nr_pending: AtomicU32,
    pub sb: Mutex<SbState>,
    pub badblocks: Mutex<BadBlocks>,
    /// 0.90's preferred minor.
    pub preferred_minor: AtomicU32,
    /// The `major:minor` a 0.90 superblock last recorded for this member
    /// (kept for image files, which have no device number of their own).
    pub recorded_devnum: AtomicU64,
    /// `ppl.sector` and `ppl.size`: set through sysfs, used by RAID5 only.
    pub ppl: Mutex<(u64, u32)>,
    /// Held while md handles a failure of this member, so that I/Os
    /// failing on it at once fail it once (one log line, one count) and
    /// each returns only when it is failed.  Reentrant: handling a
    /// failure can write the bitmap to this member and fail it again.
    pub error_lock: parking_lot::ReentrantMutex<()>,
}

impl Rdev {
    pub fn new(disk: Disk, name: String) -> Rdev {
        Rdev {
            disk,
            name,
            flags: Flags::default(),
            raid_disk: AtomicI32::new(-1),
            saved_raid_disk: AtomicI32::new(-1),
            desc_nr: AtomicI32::new(-1),
            recovery_offset: AtomicU64::new(0),
            data_offset: AtomicU64::new(0),
            new_data_offset: AtomicU64::new(0),
            sectors: AtomicU64::new(0),
            sb_start: AtomicU64::new(0),
            sb_size: AtomicU32::new(0),
            corrected_errors: AtomicU32::new(0),
            read_errors: AtomicU32::new(0),
            last_read_error: Mutex::new(None),
            nr_pending: AtomicU32::new(0),
            sb: Mutex::new(SbState::default()),
            badblocks: Mutex::new(BadBlocks::new(Some(0))),
            preferred_minor: AtomicU32::new(0xffff),
            recorded_devnum: AtomicU64::new(0),
            ppl: Mutex::new((0, 0)),
            error_lock: parking_lot::ReentrantMutex::new(()),
        }
    }

    pub fn raid_disk(&self) -> i32 {
        self.raid_disk.load(Ordering::Acquire)
    }
    pub fn set_raid_disk(&self, v: i32) {
        self.raid_disk.store(v, Ordering::Release)
    }
    pub fn saved_raid_disk(&self) -> i32 {
        self.saved_raid_disk.load(Ordering::Acquire)
    }
    pub fn set_saved_raid_disk(&self, v: i32) {
        self.saved_raid_disk.store(v, Ordering::Release)
    }
    pub fn desc_nr(&self) -> i32 {
        self.desc_nr.load(Ordering::Acquire)
    }
    pub fn set_desc_nr(&self, v: i32) {
        self.desc_nr.store(v, Ordering::Release)
    }
    pub fn recovery_offset(&self) -> u64 {
        self.recovery_offset.load(Ordering::Acquire)
    }
    pub fn set_recovery_offset(&self, v: u64) {
        self.recovery_offset.store(v, Ordering::Release)
    }
    pub fn data_offset(&self) -> u64 {
        self.data_offset.load(Ordering::Acquire)
    }
    pub fn set_data_offset(&self, v: u64) {
        self.data_offset.store(v, Ordering::Release)
    }
    pub fn new_data_offset(&self) -> u64 {
        self.new_data_offset.load(Ordering::Acquire)
    }
    pub fn set_new_data_offset(&self, v: u64) {
        self.new_data_offset.store(v, Ordering::Release)
    }
    pub fn sectors(&self) -> u64 {
        self.sectors.load(Ordering::Acquire)
    }
    pub fn set_sectors(&self, v: u64) {
        self.sectors.store(v, Ordering::Release)
    }
    pub fn sb_start(&self) -> u64 {
        self.sb_start.load(Ordering::Acquire)
    }
    pub fn set_sb_start(&self, v: u64) {
        self.sb_start.store(v, Ordering::Release)
    }
    pub fn sb_size(&self) -> u32 {
        self.sb_size.load(Ordering::Acquire)
    }
    pub fn set_sb_size(&self, v: u32) {
        self.sb_size.store(v, Ordering::Release)
    }
    pub fn corrected_errors(&self) -> u32 {
        self.corrected_errors.load(Ordering::Acquire)
    }
    pub fn set_corrected_errors(&self, v: u32) {
        self.corrected_errors.store(v, Ordering::Release)
    }
    pub fn add_corrected_errors(&self, n: u32) {
        self.corrected_errors.fetch_add(n, Ordering::AcqRel);
    }

    pub fn faulty(&self) -> bool {
        self.flags.test(rf::FAULTY)
    }
    pub fn in_sync(&self) -> bool {
        self.flags.test(rf::IN_SYNC)
    }

    /// `check_decay_read_errors` + increment: the read-error count halves
    /// for every hour since the last error; returns the new count.
    pub fn note_read_error(&self) -> u32 {
        let now = Instant::now();
        let mut last = self.last_read_error.lock();
        if let Some(prev) = *last {
            let hours = now.duration_since(prev).as_secs() / 3600;
            let cur = self.read_errors.load(Ordering::Acquire);
            let decayed = if hours >= 32 { 0 } else { cur >> hours };
            self.read_errors.store(decayed, Ordering::Release);
        }
        *last = Some(now);
        self.read_errors.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// `is_rdev_broken`: the device is gone (pulled, or its image cut
    /// short under the array).
    pub fn is_broken(&self) -> bool {
        self.disk.faults().vanished() || self.disk.shrunk()
    }

    /// The device sector holding data sector `sector`, or `None` when
    /// `data_offset` puts it beyond any device.
    pub fn dev_sector(&self, sector: u64) -> Option<u64> {
        self.data_offset().checked_add(sector)
    }

    /// The byte offset of `len` bytes of data at `sector`, when all of
    /// them lie on the device; else an I/O error, as the block layer
    /// fails a bio beyond the end of its device (a data_offset read from
    /// a damaged superblock may point anywhere).
    fn data_pos(&self, sector: u64, len: u64) -> io::Result<u64> {
        self.dev_sector(sector)
            .and_then(|s| s.checked_mul(512))
            .filter(|pos| {
                pos.checked_add(len)
                    .is_some_and(|end| end <= self.disk.size_bytes())
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))
    }

    /// Read sectors of the member's data area (offset from data_offset).
    pub fn read_data(&self, buf: &mut [u8], sector: u64) -> io::Result<()> {
        let pos = self.data_pos(sector, buf.len() as u64)?;
        self.disk.read_at(buf, pos)
    }

    /// Write sectors of the member's data area (offset from data_offset).
    pub fn write_data(&self, buf: &[u8], sector: u64) -> io::Result<()> {
        let pos = self.data_pos(sector, buf.len() as u64)?;
        self.disk.write_at(buf, pos)
    }

    /// Discard sectors of the member's data area (offset from data_offset).
    pub fn discard_data(&self, sector: u64, sectors: u64) -> io::Result<()> {
        let len = sectors
            .checked_mul(512)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))?;
        let pos = self.data_pos(sector, len)?;
        self.disk.discard(pos, len)
    }

    /// `rdev_removeable` as far as the flags go (slot and pending I/O are
    /// the personality's to check).
    pub fn state_words(&self, external_bbl: bool) -> String {
        let f = &self.flags;
        let bb = self.badblocks.lock();
        let unacked = bb.unacked_exist;
        drop(bb);
        let mut w: Vec<&str> = Vec::new();
        if f.test(rf::FAULTY) || (!external_bbl && unacked) {
            w.push("faulty");
        }
        if f.test(rf::IN_SYNC) {
            w.push("in_sync");
        }
        if f.test(rf::JOURNAL) {
            w.push("journal");
        }
        if f.test(rf::WRITE_MOSTLY) {
            w.push("write_mostly");
        }
        if f.test(rf::BLOCKED) || (!f.test(rf::FAULTY) && unacked) {
            w.push("blocked");
        }
        if !f.test(rf::FAULTY) && !f.test(rf::JOURNAL) && !f.test(rf::IN_SYNC) {
            w.push("spare");
        }
        if f.test(rf::WRITE_ERROR_SEEN) {
            w.push("write_error");
        }
        if f.test(rf::WANT_REPLACEMENT) {
            w.push("want_replacement");
        }
        if f.test(rf::REPLACEMENT) {
            w.push("replacement");
        }
        if f.test(rf::EXTERNAL_BBL) {
            w.push("external_bbl");
        }
        if f.test(rf::FAIL_FAST) {
            w.push("failfast");
        }
        let mut s = w.join(",");
        s.push('\n');
        s
    }
}
