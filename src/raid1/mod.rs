//! The RAID1 personality (drivers/md/raid1.c): mirrors with read
//! balancing, writes to every working leg with the write-intent bitmap
//! protocol, read-error repair, write-error narrowing into bad blocks,
//! failures, spares and replacements, and the sync step.
//!
//! Mirror slots `0..n` hold the active legs and `n..2n` their
//! replacements, as `conf->mirrors`.  I/O runs synchronously on the
//! calling thread (one FUSE request, or the sync worker).

mod barrier;
mod behind;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;

use self::barrier::{Barrier, align_to_unit_end};
use self::behind::{BehindWrite, Pool, Serial};
use crate::format::MAX_SECTOR;
use crate::md::fanout::{fan_out, fan_out_sized};
use crate::md::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use crate::md::member_io::{narrow_write_error, set_badblocks, wait_sb_written, wait_unblocked};
use crate::md::personality::{Personality, Raid, SyncStep};
use crate::md::update::{
    md_error_io, md_write_end, md_write_inc, md_write_start, rdev_dec_pending,
};
use crate::md::{Config, Errno, Mddev, Rdev};

/// Sectors per sync step (`RESYNC_SECTORS`: 64 KiB).
const RESYNC_SECTORS: u64 = 128;
/// The most one write covers when it may go behind: raid1 copies a
/// behind write's data into one bio of at most `BIO_MAX_VECS` pages.
const BEHIND_MAX_SECTORS: u64 = 256 * 8;
/// Bytes per repair/compare piece (one page).
const PAGE_SECTORS: u64 = 8;
/// `sizeof(struct raid1_info)`, and the most one kzalloc gives on Linux
/// x86-64 (`KMALLOC_MAX_SIZE`).
const MIRROR_INFO_BYTES: i64 = 32;
const KMALLOC_MAX_SIZE: i64 = 4 << 20;

pub struct Raid1Personality;

pub static RAID1: Raid1Personality = Raid1Personality;

impl Personality for Raid1Personality {
    fn name(&self) -> &'static str {
        "raid1"
    }
    fn level(&self) -> i32 {
        1
    }
    fn redundant(&self) -> bool {
        true
    }

    /// `raid1_run`.
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno> {
        let log = mddev.log();
        if cfg.level != 1 {
            log.warn(format!(
                "md/raid1:{}: raid level not set to mirroring ({})",
                mddev.name, cfg.level
            ));
            return Err(Errno::EIO);
        }
        if cfg.reshape_position != MAX_SECTOR {
            log.warn(format!(
                "md/raid1:{}: reshape_position set but not supported",
                mddev.name
            ));
            return Err(Errno::EIO);
        }
        let conf = Conf::setup(mddev, cfg)?;
        let n = conf.n();
        let mut degraded = 0u32;
        {
            let m = conf.mirrors.read();
            for slot in m.iter().take(n) {
                match slot {
                    Some(r) if r.in_sync() && !r.faulty() => {}
                    _ => degraded += 1,
                }
            }
        }
        mddev.set_degraded(degraded);
        if n as u32 - degraded < 1 {
            // raid1_run says nothing here; say why.
            log.warn(format!(
                "md/raid1:{}: none of {n} mirrors (raid_disks {n}) is in sync",
                mddev.name
            ));
            return Err(Errno::EINVAL);
        }
        if n as u32 - degraded == 1 {
            mddev.set_recovery_cp(MAX_SECTOR);
        }
        if mddev.recovery_cp() != MAX_SECTOR {
            log.info(format!(
                "md/raid1:{}: not clean -- starting background reconstruction",
                mddev.name
            ));
        }
        log.info(format!(
            "md/raid1:{}: active with {} out of {} mirrors",
            mddev.name,
            n as u32 - degraded,
            n
        ));
        Ok(Arc::new(conf))
    }
}

/// Where each mirror's head is, for read balancing.
#[derive(Default)]
struct Head {
    head_position: AtomicU64,
    next_seq_sect: AtomicU64,
}

/// `struct r1conf`.
pub struct Conf {
    /// Mirrors (`conf->raid_disks`); changes only with every I/O frozen.
    raid_disks: AtomicUsize,
    /// 2n slots: `0..n` active, `n..2n` replacements.
    mirrors: RwLock<Vec<Option<Arc<Rdev>>>>,
    heads: RwLock<Vec<Head>>,
    fullsync: AtomicBool,
    recovery_disabled: AtomicU32,
    barrier: Arc<Barrier>,
    /// Behind writes under way per write-mostly member.
    serial: Arc<Serial>,
    /// The threads that write behind.
    behind: Pool,
}

impl Conf {
    /// `setup_conf`.
    fn setup(mddev: &Mddev, cfg: &Config) -> Result<Conf, Errno> {
        // conf->raid_disks is an int (2^31 and up are negative), and
        // setup_conf allocates its 2 x raid_disks mirrors (32 bytes each)
        // with one kzalloc, which cannot exceed KMALLOC_MAX_SIZE: more
        // mirrors than that fails the run with ENOMEM.
        let raid_disks = cfg.raid_disks as i32;
        if raid_disks < 0 || raid_disks as i64 * 2 * MIRROR_INFO_BYTES > KMALLOC_MAX_SIZE {
            mddev.log().warn(format!(
                "md/raid1:{}: cannot allocate the mirrors of raid_disks {raid_disks}",
                mddev.name
            ));
            return Err(Errno::ENOMEM);
        }
        let n = cfg.raid_disks as usize;
        let mut mirrors: Vec<Option<Arc<Rdev>>> = vec![None; 2 * n];
        for r in &cfg.rdevs {
            let idx = r.raid_disk();
            if idx < 0 || idx as usize >= n {
                continue;
            }
            let slot = idx as usize + if r.flags.test(rf::REPLACEMENT) { n } else { 0 };
            if mirrors[slot].is_some() {
                mddev.log().warn(format!(
                    "md/raid1:{}: {} claims slot {idx} which is taken",
                    mddev.name, r.name
                ));
                return Err(Errno::EINVAL);
            }
            mirrors[slot] = Some(r.clone());
        }
        let mut fullsync = false;
        for i in 0..n {
            if mirrors[n + i].is_some() {
                match &mirrors[i] {
                    None => {
                        // A replacement without an original: it recovers the slot.
                        mirrors[i] = mirrors[n + i].take();
                    }
                    Some(orig) if !orig.in_sync() => return Err(Errno::EIO),
                    _ => {}
                }
            }
        }
        // Every slot, replacements too: a new member recovers whole.
        for r in mirrors.iter().flatten() {
            if !r.in_sync() && r.saved_raid_disk() < 0 {
                fullsync = true;
            }
        }
        Ok(Conf {
            raid_disks: AtomicUsize::new(n),
            mirrors: RwLock::new(mirrors),
            heads: RwLock::new((0..2 * n).map(|_| Head::default()).collect()),
            fullsync: AtomicBool::new(fullsync),
            recovery_disabled: AtomicU32::new(cfg.recovery_disabled.wrapping_sub(1)),
            barrier: Arc::new(Barrier::default()),
            serial: Arc::new(Serial::default()),
            behind: Pool::default(),
        })
    }

    fn n(&self) -> usize {
        self.raid_disks.load(Ordering::Acquire)
    }

    fn slot(&self, i: usize) -> Option<Arc<Rdev>> {
        self.mirrors.read()[i].clone()
    }

    /// Can `r` serve a read of `[sector, sector+len)`?
    fn readable(r: &Rdev, sector: u64, len: u64) -> bool {
        !r.faulty() && (r.in_sync() || r.recovery_offset() >= sector + len)
    }

    /// `read_balance`: pick a leg and how many sectors it can serve.
    fn read_balance(
        &self,
        mddev: &Mddev,
        sector: u64,
        len: u64,
        blocked: &[bool],
    ) -> Option<(usize, u64)> {
        let mirrors = self.mirrors.read();
        let disks = 2 * self.n();
        // Not known to be in sync here: the first readable leg, so that
        // every read of unsynced data comes from the same place.  A leg
        // with bad blocks at the start hands the read on only for as long
        // as they last (`choose_first`): past them it serves again.
        if mddev.recovery_cp() < sector + len {
            let mut limit = len;
            for d in 0..disks {
                let Some(r) = &mirrors[d] else { continue };
                if blocked[d] || !Self::readable(r, sector, len) {
                    continue;
                }
                let abs = sector + r.data_offset();
                match r.badblocks.lock().check(abs, limit) {
                    Some((first, bad, _)) if first <= abs => {
                        limit = limit.min(bad - (abs - first));
                    }
                    Some((first, _, _)) => return Some((d, first - abs)),
                    None => return Some((d, limit)),
                }
            }
            return None;
        }
        // The best leg: sequential first, else least busy.
        let mut best_pending: Option<(u32, usize)> = None;
        let mut best_dist: Option<(u64, usize)> = None;
        for d in 0..disks {
            let Some(r) = &mirrors[d] else { continue };
            if blocked[d] || !Self::readable(r, sector, len) || r.flags.test(rf::WRITE_MOSTLY) {
                continue;
            }
            if is_badblock(r, sector, len).is_some() {
                continue;
            }
            let heads = self.heads.read();
            let Some(h) = heads.get(d) else { continue };
            let pos = h.head_position.load(Ordering::Relaxed);
            if h.next_seq_sect.load(Ordering::Relaxed) == sector || pos == sector {
                return Some((d, len));
            }
            let pending = r.nr_pending.load(Ordering::Relaxed);
            if best_pending.is_none_or(|(p, _)| pending < p) {
                best_pending = Some((pending, d));
            }
            let dist = pos.abs_diff(sector);
            if best_dist.is_none_or(|(x, _)| dist < x) {
                best_dist = Some((dist, d));
            }
        }
        // Image files and loop devices count as non-rotational: least busy.
        if let Some(d) = best_pending.map(|x| x.1).or(best_dist.map(|x| x.1)) {
            return Some((d, len));
        }
        // Every candidate has bad blocks here: the longest good prefix.
        let mut best: Option<(u64, usize)> = None;
        for d in 0..disks {
            let Some(r) = &mirrors[d] else { continue };
            if blocked[d] || !Self::readable(r, sector, len) || r.flags.test(rf::WRITE_MOSTLY) {
                continue;
            }
            let p = good_prefix(r, sector, len);
            if p > 0 && best.is_none_or(|(b, _)| p > b) {
                best = Some((p, d));
            }
        }
        if let Some((p, d)) = best {
            return Some((d, p));
        }
        // Only write-mostly legs are left.
        for d in 0..disks {
            let Some(r) = &mirrors[d] else { continue };
            if blocked[d] || !Self::readable(r, sector, len) {
                continue;
            }
            let p = good_prefix(r, sector, len);
            if p > 0 {
                return Some((d, p));
            }
        }
        None
    }

    fn note_read(&self, d: usize, sector: u64, len: u64) {
        if let Some(h) = self.heads.read().get(d) {
            h.next_seq_sect.store(sector + len, Ordering::Relaxed);
            h.head_position.store(sector + len, Ordering::Relaxed);
        }
    }

    /// One read inside a barrier unit.  A read error goes to the reader
    /// only when no other leg can serve the range: the failing leg is
    /// repaired (or failed) and the read balanced again; a leg that fails
    /// again after its repair is not tried again for this read
    /// (`IO_BLOCKED`), so every other readable leg gets its turn.
    fn read_unit(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let n = self.n();
        let mut blocked = vec![false; 2 * n];
        // Read errors per leg in this read.
        let mut errors = vec![0u32; 2 * n];
        let mut done = 0usize;
        // The leg whose read failed, while the read is retried.
        let mut retried: Option<String> = None;
        while done < buf.len() {
            let s = sector + (done / 512) as u64;
            let len = ((buf.len() - done) / 512) as u64;
            let Some((d, max)) = self.read_balance(mddev, s, len, &blocked) else {
                if let Some(failed) = retried {
                    mddev.log().err(format!(
                        "md/raid1:{}: {failed}: unrecoverable I/O read error for block {s}",
                        mddev.name
                    ));
                }
                return Err(Errno::EIO);
            };
            let Some(r) = self.slot(d) else { continue };
            if retried.take().is_some() {
                mddev.log().info(format!(
                    "md/raid1:{}: redirecting sector {s} to other mirror: {}",
                    mddev.name, r.name
                ));
            }
            if r.flags.test(rf::WRITE_MOSTLY) {
                // A write-mostly member may not have every completed
                // write yet: wait until none is behind.
                if let Some(b) = mddev.bitmap() {
                    b.wait_behind_writes();
                }
            }
            let piece = &mut buf[done..done + (max * 512) as usize];
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let res = r.read_data(piece, s);
            rdev_dec_pending(mddev, &r);
            match res {
                Ok(()) => {
                    self.note_read(d, s, max);
                    done += (max * 512) as usize;
                }
                Err(_) => {
                    // The last usable copy: give the error to the caller.
                    let degraded = mddev.degraded() as usize;
                    if degraded == n || (degraded == n - 1 && r.in_sync()) {
                        return Err(Errno::EIO);
                    }
                    mddev.log().err(format!(
                        "md/raid1:{}: {}: rescheduling sector {s}",
                        mddev.name, r.name
                    ));
                    if r.disk.shrunk() {
                        // Its blocks are gone: nothing to rewrite, fail it
                        // as a pulled disk and read from the others.
                        md_error_io(mddev, &r, mddev.fail_last_dev());
                        blocked[d] = true;
                    } else {
                        self.handle_read_error(mddev, d, &r, s, max, &mut blocked);
                        if let (Some(e), Some(b)) = (errors.get_mut(d), blocked.get_mut(d)) {
                            *e += 1;
                            if *e > 1 {
                                *b = true;
                            }
                        }
                    }
                    retried = Some(r.name.clone());
                }
            }
        }
        Ok(())
    }

    /// `handle_read_error`: on a writable array repair the range from
    /// another leg (`fix_read_error`), with all other I/O frozen.
    fn handle_read_error(
        &self,
        mddev: &Mddev,
        d: usize,
        r: &Arc<Rdev>,
        sector: u64,
        len: u64,
        blocked: &mut [bool],
    ) {
        if mddev.is_rdwr() && !r.flags.test(rf::FAIL_FAST) {
            self.barrier.freeze(1);
            self.fix_read_error(mddev, d, sector, len, blocked);
            self.barrier.unfreeze();
        } else if mddev.is_rdwr() {
            md_error_io(mddev, r, mddev.fail_last_dev());
        } else {
            blocked[d] = true;
        }
    }

    /// `exceed_read_errors`.
    fn exceed_read_errors(&self, mddev: &Mddev, r: &Arc<Rdev>) -> bool {
        let max = mddev.max_corr_read_errors();
        let cur = r.note_read_error();
        if cur > max {
            mddev.log().info(format!(
                "md/raid1:{}: {}: Raid device exceeded read_error threshold [cur {cur}:max {max}]",
                mddev.name, r.name
            ));
            mddev.log().info(format!(
                "md/raid1:{}: {}: Failing raid device",
                mddev.name, r.name
            ));
            md_error_io(mddev, r, mddev.fail_last_dev());
            return true;
        }
        false
    }

    /// `fix_read_error`: per page, read the data from another leg and write
    /// it back everywhere up to the failed leg, then re-read to check.
    fn fix_read_error(
        &self,
        mddev: &Mddev,
        read_disk: usize,
        sector: u64,
        sectors: u64,
        blocked: &mut [bool],
    ) {
        let disks = 2 * self.n();
        let Some(failed) = self.slot(read_disk) else {
            return;
        };
        if self.exceed_read_errors(mddev, &failed) {
            blocked[read_disk] = true;
            return;
        }
        let mut sect = sector;
        let mut left = sectors;
        let mut page = vec![0u8; (PAGE_SECTORS * 512) as usize];
        while left > 0 {
            let s = left.min(PAGE_SECTORS);
            let buf = &mut page[..(s * 512) as usize];
            let mut d = read_disk;
            let mut success = false;
            loop {
                if let Some(r) = self.slot(d) {
                    let usable = r.in_sync() || (!r.faulty() && r.recovery_offset() >= sect + s);
                    if usable
                        && is_badblock(&r, sect, s).is_none()
                        && r.read_data(buf, sect).is_ok()
                    {
                        success = true;
                        break;
                    }
                }
                d = (d + 1) % disks;
                if d == read_disk {
                    break;
                }
            }
            if !success {
                if !set_badblocks(mddev, &failed, sect, s) {
                    md_error_io(mddev, &failed, mddev.fail_last_dev());
                }
                mddev.sb_flags.set(sbf::CHANGE_CLEAN | sbf::CHANGE_PENDING);
                break;
            }
            // Write it back to every leg from the source back to the failed one.
            let start = d;
            while d != read_disk {
                d = if d == 0 { disks - 1 } else { d - 1 };
                if let Some(r) = self.slot(d) {
                    if !r.faulty() {
                        sync_page_io_write(mddev, &r, sect, buf);
                    }
                }
            }
            // And re-read each to check.
            let mut check = vec![0u8; buf.len()];
            d = start;
            while d != read_disk {
                d = if d == 0 { disks - 1 } else { d - 1 };
                if let Some(r) = self.slot(d) {
                    if r.faulty() {
                        continue;
                    }
                    if r.read_data(&mut check, sect).is_ok() {
                        r.add_corrected_errors(s as u32);
                        mddev.log().info(format!(
                            "md/raid1:{}: read error corrected ({s} sectors at {} on {})",
                            mddev.name,
                            sect.wrapping_add(r.data_offset()),
                            r.name
                        ));
                    } else if !set_badblocks(mddev, &r, sect, s) {
                        md_error_io(mddev, &r, mddev.fail_last_dev());
                    } else {
                        mddev.sb_flags.set(sbf::CHANGE_CLEAN | sbf::CHANGE_PENDING);
                    }
                }
            }
            left -= s;
            sect += s;
        }
        mddev.wakeup();
    }

    /// One write inside a barrier unit, possibly shortened by bad blocks
    /// (and to `BEHIND_MAX_SECTORS` where it may go behind); returns the
    /// sectors written (`raid1_write_request` and its completion:
    /// `raid1_end_write_request`, `handle_write_finished`,
    /// `close_write`).
    fn write_unit(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<Unit, Errno> {
        let (targets, mut max, degraded) = match self.write_targets(sector, data.len()) {
            Ok(t) => t,
            Err(r) => return Ok(Unit::Blocked(r)),
        };
        let bitmap = mddev.bitmap();
        let write_behind = bitmap.is_some() && self.has_write_mostly();
        if write_behind {
            max = max.min(BEHIND_MAX_SECTORS);
        }
        let data = &data[..(max * 512) as usize];
        if let Some(b) = &bitmap {
            let seq = b.startwrite(sector, max);
            b.unplug(mddev, seq);
        }
        for (_, r) in &targets {
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
        }
        let (slow, fast): (Vec<Arc<Rdev>>, Vec<Arc<Rdev>>) = targets
            .into_iter()
            .map(|(_, r)| r)
            .partition(|r| r.flags.test(rf::WRITE_MOSTLY));
        // Go behind?  Only with a write-mostly leg to leave behind, and
        // not past `backlog` (nor while a reader waits for the writes
        // behind to land): then the write goes to every leg and waits.
        let behind = match &bitmap {
            Some(b) if write_behind && !slow.is_empty() && b.start_behind_write() => {
                Some(b.clone())
            }
            _ => None,
        };
        let end = sector + max;
        for r in &slow {
            self.serial.wait(r, sector, end, behind.is_some());
        }
        let (fast, behind) = match behind {
            Some(b) => {
                md_write_inc(mddev);
                self.barrier.hold(sector);
                let bw = BehindWrite::start(
                    &self.behind,
                    mddev.arc(),
                    b,
                    self.barrier.clone(),
                    self.serial.clone(),
                    slow,
                    data,
                    sector,
                    degraded,
                );
                (fast, Some(bw))
            }
            None => {
                let mut all = fast;
                all.extend(slow);
                (all, None)
            }
        };
        // Every leg's write is under way before any is waited for, as
        // md submits the bios of all legs and then waits (fanout.rs).
        let results = fan_out_sized(data.len(), fast.len(), |i| fast[i].write_data(data, sector));
        let mut out = LegOutcome {
            degraded,
            ..LegOutcome::default()
        };
        for (r, res) in fast.iter().zip(results) {
            end_leg_write(mddev, r, res, data, sector, max, &mut out);
        }
        if out.write_error {
            // Such a write completes only once the superblock records the
            // failure or the bad blocks; an array degraded by then keeps
            // the bits.
            wait_sb_written(mddev);
            if mddev.degraded() > 0 {
                out.degraded = true;
            }
        }
        let uptodate = match behind {
            Some(bw) => bw.caller_done(out.uptodate, out.degraded),
            None => {
                if let Some(b) = &bitmap {
                    b.endwrite(mddev, sector, max, !out.degraded, mddev.events());
                }
                out.uptodate
            }
        };
        if !uptodate {
            return Err(Errno::EIO);
        }
        Ok(Unit::Done(max))
    }

    /// A write-mostly member in some slot (raid1's `write_behind`): writes
    /// may go behind, so they are cut to what one behind write holds.
    fn has_write_mostly(&self) -> bool {
        self.mirrors
            .read()
            .iter()
            .flatten()
            .any(|r| r.flags.test(rf::WRITE_MOSTLY))
    }

    /// One discard inside a barrier unit, possibly shortened by bad
    /// blocks; returns the sectors covered.  As a write for the bitmap
    /// (the bits stay set on a degraded array); a member that cannot
    /// discard is no write error (`raid1_end_write_request`'s
    /// `discard_error`), but one found shrunk is failed.
    fn discard_unit(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<Unit, Errno> {
        let bytes = usize::try_from(sectors * 512).map_err(|_| Errno::EINVAL)?;
        let (targets, max, degraded) = match self.write_targets(sector, bytes) {
            Ok(t) => t,
            Err(r) => return Ok(Unit::Blocked(r)),
        };
        let bitmap = mddev.bitmap();
        if let Some(b) = &bitmap {
            let seq = b.startwrite(sector, max);
            b.unplug(mddev, seq);
        }
        let mut uptodate = false;
        for (_, r) in &targets {
            if r.flags.test(rf::WRITE_MOSTLY) {
                self.serial.wait(r, sector, sector + max, false);
            }
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let res = r.discard_data(sector, max);
            if res.is_err() && r.disk.shrunk() {
                md_error_io(mddev, r, mddev.fail_last_dev());
            }
            rdev_dec_pending(mddev, r);
            if r.in_sync() && !r.faulty() {
                uptodate = true;
            }
        }
        if let Some(b) = &bitmap {
            b.endwrite(mddev, sector, max, !degraded, mddev.events());
        }
        if !uptodate {
            return Err(Errno::EIO);
        }
        Ok(Unit::Done(max))
    }

    /// The legs a write at `sector` goes to, how many sectors it may
    /// cover (bad blocks shorten it), and whether a slot is missing or
    /// failed; or a leg the write must wait for first, blocked on a
    /// failure or on bad blocks not yet recorded (`raid1_write_request`).
    #[allow(clippy::type_complexity)]
    fn write_targets(
        &self,
        sector: u64,
        bytes: usize,
    ) -> Result<(Vec<(usize, Arc<Rdev>)>, u64, bool), Arc<Rdev>> {
        let n = self.n();
        {
            let mut max = (bytes / 512) as u64;
            let mut targets: Vec<(usize, Arc<Rdev>)> = Vec::with_capacity(2 * n);
            let mut degraded = false;
            let mut blocked: Option<Arc<Rdev>> = None;
            {
                let mirrors = self.mirrors.read();
                for (i, slot) in mirrors.iter().enumerate() {
                    if let Some(r) = slot {
                        if r.flags.test(rf::BLOCKED) {
                            blocked = Some(r.clone());
                            break;
                        }
                    }
                    let Some(r) = slot.as_ref().filter(|r| !r.faulty()) else {
                        if i < n {
                            degraded = true;
                        }
                        continue;
                    };
                    if r.flags.test(rf::WRITE_ERROR_SEEN) {
                        let bad = is_badblock(r, sector, max);
                        if let (Some((first_bad, bad_len, unacked)), Some(abs)) =
                            (bad, r.dev_sector(sector))
                        {
                            if unacked {
                                // Not here until the bad block is on disk.
                                r.flags.set(rf::BLOCKED_BAD_BLOCKS);
                                blocked = Some(r.clone());
                                break;
                            }
                            if first_bad <= abs {
                                // This leg cannot take the start of the
                                // range.  Not "degraded": the bad-block
                                // log records that it is out of sync here.
                                max = max.min(bad_len - (abs - first_bad));
                                continue;
                            }
                            max = max.min(first_bad - abs);
                        }
                    }
                    targets.push((i, r.clone()));
                }
            }
            match blocked {
                Some(r) => Err(r),
                None => Ok((targets, max, degraded)),
            }
        }
    }
}

/// What the legs of one write came to so far.
#[derive(Default)]
struct LegOutcome {
    /// An in-sync leg took it (`R1BIO_Uptodate`).
    uptodate: bool,
    /// A leg failed it and was not failed for it: the superblock must
    /// record the bad blocks first (`R1BIO_WriteError`).
    write_error: bool,
    /// A slot is empty or a leg failed: the bits stay (`R1BIO_Degraded`).
    degraded: bool,
}

/// One leg's write is done with `res` (`raid1_end_write_request`, and
/// for a failure `handle_write_finished`); its `nr_pending` is dropped.
fn end_leg_write(
    mddev: &Mddev,
    r: &Arc<Rdev>,
    res: std::io::Result<()>,
    data: &[u8],
    sector: u64,
    max: u64,
    out: &mut LegOutcome,
) {
    match res {
        Ok(()) => {
            if r.in_sync() && !r.faulty() {
                out.uptodate = true;
            }
            // A successful write over recorded bad blocks makes them
            // good; the next superblock write records it.
            if let Some(abs) = r.dev_sector(sector) {
                let mut bb = r.badblocks.lock();
                if bb.check(abs, max).is_some() {
                    bb.clear(abs, max);
                }
            }
        }
        Err(_) => {
            r.flags.set(rf::WRITE_ERROR_SEEN);
            if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
                mddev.recovery.set(rec::NEEDED);
            }
            let fail_fast = r.flags.test(rf::FAIL_FAST) && !r.flags.test(rf::WRITE_MOSTLY);
            // A shrunk member is a pulled disk, not bad blocks.
            if fail_fast || r.disk.shrunk() {
                md_error_io(mddev, r, mddev.fail_last_dev());
            }
            if r.faulty() {
                // Nothing to narrow on a failed leg.
                out.degraded = true;
            } else {
                // handle_write_finished: record the failing blocks as
                // bad; if that is impossible, fail the leg and keep the
                // bitmap bits.
                out.write_error = true;
                if !narrow_write_error(mddev, r, data, sector) {
                    md_error_io(mddev, r, mddev.fail_last_dev());
                    out.degraded = true;
                }
            }
        }
    }
    // Only now, as handle_write_finished: a leg failed by this write is
    // then taken out of its slot once idle.
    rdev_dec_pending(mddev, r);
}

/// What became of one write inside a barrier unit.
enum Unit {
    /// Written (or failed on every leg): this many sectors.
    Done(u64),
    /// Not started: this leg must be unblocked first.
    Blocked(Arc<Rdev>),
}

/// `is_badblock`: the first recorded bad range overlapping data
/// sectors `[sector, sector+len)` of `r` (the list is device-absolute),
/// and whether some overlapping range is unacknowledged.  A range no
/// device sector can hold has none: no bad block is ever recorded there.
fn is_badblock(r: &Rdev, sector: u64, len: u64) -> Option<(u64, u64, bool)> {
    let abs = r.dev_sector(sector)?;
    abs.checked_add(len)?;
    r.badblocks.lock().check(abs, len)
}

/// Sectors from `sector` (at most `len`) before the first bad block on `r`.
fn good_prefix(r: &Rdev, sector: u64, len: u64) -> u64 {
    match (is_badblock(r, sector, len), r.dev_sector(sector)) {
        (Some((first, _, _)), Some(abs)) if first > abs => first - abs,
        (Some(_), _) => 0,
        (None, _) => len,
    }
}

/// `r1_sync_page_io` for a write: on failure record a bad block or fail
/// the leg.
fn sync_page_io_write(mddev: &Mddev, r: &Arc<Rdev>, sector: u64, buf: &[u8]) -> bool {
    if r.write_data(buf, sector).is_ok() {
        return true;
    }
    r.flags.set(rf::WRITE_ERROR_SEEN);
    if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
        mddev.recovery.set(rec::NEEDED);
    }
    if !set_badblocks(mddev, r, sector, (buf.len() / 512) as u64) {
        md_error_io(mddev, r, mddev.fail_last_dev());
    }
    false
}

impl Raid for Conf {
    fn personality(&self) -> &'static dyn Personality {
        &RAID1
    }

    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let mut done = 0usize;
        while done < buf.len() {
            let s = sector + (done / 512) as u64;
            let n = align_to_unit_end(s, ((buf.len() - done) / 512) as u64);
            let piece = &mut buf[done..done + (n * 512) as usize];
            self.barrier.wait_read_barrier(s);
            let r = self.read_unit(mddev, piece, s);
            self.barrier.allow_barrier(s);
            r?;
            done += (n * 512) as usize;
        }
        Ok(())
    }

    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        md_write_start(mddev)?;
        let mut done = 0usize;
        let mut result = Ok(());
        while done < data.len() {
            let s = sector + (done / 512) as u64;
            let n = align_to_unit_end(s, ((data.len() - done) / 512) as u64);
            let piece = &data[done..done + (n * 512) as usize];
            self.barrier.wait_barrier(s);
            let r = self.write_unit(mddev, piece, s);
            self.barrier.allow_barrier(s);
            match r {
                Ok(Unit::Done(w)) => done += (w * 512) as usize,
                // Wait outside the barrier, then try again.
                Ok(Unit::Blocked(rdev)) => wait_unblocked(mddev, &rdev),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        md_write_end(mddev, mddev.safemode_delay());
        result
    }

    fn discard(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<(), Errno> {
        md_write_start(mddev)?;
        let mut done = 0;
        let mut result = Ok(());
        while done < sectors {
            let s = sector + done;
            let n = align_to_unit_end(s, sectors - done);
            self.barrier.wait_barrier(s);
            let r = self.discard_unit(mddev, s, n);
            self.barrier.allow_barrier(s);
            match r {
                Ok(Unit::Done(w)) => done += w,
                // Wait outside the barrier, then try again.
                Ok(Unit::Blocked(rdev)) => wait_unblocked(mddev, &rdev),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        md_write_end(mddev, mddev.safemode_delay());
        result
    }

    fn flush(&self, mddev: &Mddev) -> Result<(), Errno> {
        let legs: Vec<Arc<Rdev>> = self
            .mirrors
            .read()
            .iter()
            .flatten()
            .filter(|r| !r.faulty())
            .cloned()
            .collect();
        // md sends its preflush to every member at once: each leg's fsync
        // waits for that leg's write-back, and the legs' overlap.  Writes
        // still behind on write-mostly legs are not waited for, as md's
        // flush does not wait for them: what the caller was answered for
        // is durable on the other legs, and the bitmap's bits, set on
        // disk before those writes began, stay set until they land.
        // (`inactive` and the daemon's stop drain them.)
        let flushed: Vec<std::io::Result<()>> = fan_out(legs.len(), |i| legs[i].disk.flush());
        let mut any = false;
        for (r, flushed) in legs.iter().zip(flushed) {
            if flushed.is_err() {
                md_error_io(mddev, r, mddev.fail_last_dev());
            } else if r.in_sync() {
                any = true;
            }
        }
        if any { Ok(()) } else { Err(Errno::EIO) }
    }

    fn status(&self, mddev: &Mddev) -> String {
        let n = self.n();
        let mirrors = self.mirrors.read();
        let mut s = format!(" [{}/{}] [", n, n as u32 - mddev.degraded().min(n as u32));
        for slot in mirrors.iter().take(n) {
            s.push(if slot.as_ref().is_some_and(|r| r.in_sync()) {
                'U'
            } else {
                '_'
            });
        }
        s.push(']');
        s
    }

    /// `raid1_error`.
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, fail_last_dev: bool) {
        let n = self.n() as u32;
        {
            let _m = self.mirrors.write();
            if rdev.in_sync() && n - mddev.degraded() == 1 {
                mddev.flags.set(mf::BROKEN);
                if !fail_last_dev {
                    self.recovery_disabled
                        .store(mddev.recovery_disabled(), Ordering::Release);
                    return;
                }
            }
            rdev.flags.set(rf::BLOCKED);
            if rdev.flags.test_and_clear(rf::IN_SYNC) {
                mddev.set_degraded(mddev.degraded() + 1);
            }
            rdev.flags.set(rf::FAULTY);
        }
        mddev.recovery.set(rec::INTR);
        mddev.sb_flags.set(sbf::CHANGE_DEVS | sbf::CHANGE_PENDING);
        mddev.log().err(format!(
            "md/raid1:{}: Disk failure on {}, disabling device.\nmd/raid1:{}: Operation continuing on {} devices.",
            mddev.name,
            rdev.name,
            mddev.name,
            n - mddev.degraded()
        ));
        mddev.notify("degraded");
    }

    /// `raid1_add_disk`.
    fn hot_add_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        if mddev.recovery_disabled() == self.recovery_disabled.load(Ordering::Acquire) {
            return Err(Errno::EBUSY);
        }
        let n = self.n();
        let (mut first, mut last) = (0usize, n - 1);
        if rdev.raid_disk() >= 0 {
            first = rdev.raid_disk() as usize;
            last = first;
        }
        let mut m = self.mirrors.write();
        let saved = rdev.saved_raid_disk();
        if saved >= 0
            && saved as usize >= first
            && (saved as usize) < n
            && m[saved as usize].is_none()
        {
            first = saved as usize;
            last = first;
        }
        let mut repl_slot: Option<usize> = None;
        for mirror in first..=last.min(n - 1) {
            match &m[mirror] {
                None => {
                    rdev.set_raid_disk(mirror as i32);
                    m[mirror] = Some(rdev.clone());
                    if let Some(h) = self.heads.read().get(mirror) {
                        h.head_position.store(0, Ordering::Relaxed);
                    }
                    if rdev.saved_raid_disk() < 0 {
                        self.fullsync.store(true, Ordering::Release);
                    }
                    return Ok(());
                }
                // Only an in-sync member is replaced: a replacement beside
                // one still being rebuilt is a pair setup_conf refuses, so
                // the array would not start again.
                Some(p) => {
                    if p.flags.test(rf::WANT_REPLACEMENT)
                        && p.in_sync()
                        && m[n + mirror].is_none()
                        && repl_slot.is_none()
                    {
                        repl_slot = Some(mirror);
                    }
                }
            }
        }
        if let Some(slot) = repl_slot {
            rdev.flags.clear(rf::IN_SYNC);
            rdev.flags.set(rf::REPLACEMENT);
            rdev.set_raid_disk(slot as i32);
            m[n + slot] = Some(rdev.clone());
            self.fullsync.store(true, Ordering::Release);
            return Ok(());
        }
        Err(Errno::EEXIST)
    }

    /// `raid1_remove_disk`.
    fn hot_remove_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        let n = self.n();
        let number = rdev.raid_disk();
        if number < 0 || number as usize >= n {
            return Ok(());
        }
        let mut idx = number as usize;
        let mut m = self.mirrors.write();
        if !m[idx].as_ref().is_some_and(|p| Arc::ptr_eq(p, rdev)) {
            idx += n;
        }
        if !m[idx].as_ref().is_some_and(|p| Arc::ptr_eq(p, rdev)) {
            return Ok(());
        }
        // raid1_remove_conf
        if rdev.in_sync() || rdev.nr_pending.load(Ordering::Acquire) > 0 {
            return Err(Errno::EBUSY);
        }
        if !rdev.faulty()
            && mddev.recovery_disabled() != self.recovery_disabled.load(Ordering::Acquire)
            && (mddev.degraded() as usize) < n
        {
            return Err(Errno::EBUSY);
        }
        m[idx] = None;
        if idx < n {
            if let Some(repl) = m[n + idx].take() {
                if repl.nr_pending.load(Ordering::Acquire) > 0 {
                    m[n + idx] = Some(repl);
                    return Err(Errno::EBUSY);
                }
                repl.flags.clear(rf::REPLACEMENT);
                m[idx] = Some(repl);
            }
        }
        rdev.flags.clear(rf::WANT_REPLACEMENT);
        Ok(())
    }

    /// `raid1_spare_active`.
    fn spare_active(&self, mddev: &Mddev) -> u32 {
        let n = self.n();
        let m = self.mirrors.write();
        let mut count = 0u32;
        for i in 0..n {
            let rdev = m[i].clone();
            if let Some(repl) = &m[n + i] {
                if repl.recovery_offset() == MAX_SECTOR
                    && !repl.faulty()
                    && !repl.flags.test_and_set(rf::IN_SYNC)
                {
                    if rdev
                        .as_ref()
                        .is_none_or(|r| !r.flags.test_and_clear(rf::IN_SYNC))
                    {
                        count += 1;
                    }
                    if let Some(r) = &rdev {
                        r.flags.set(rf::FAULTY);
                        mddev.observer().notify_rdev(mddev, r, "state");
                    }
                }
            }
            if let Some(r) = &rdev {
                if r.recovery_offset() == MAX_SECTOR
                    && !r.faulty()
                    && !r.flags.test_and_set(rf::IN_SYNC)
                {
                    count += 1;
                    mddev.observer().notify_rdev(mddev, r, "state");
                }
            }
        }
        mddev.set_degraded(mddev.degraded().saturating_sub(count));
        count
    }

    fn size(&self, dev_sectors: u64) -> u64 {
        dev_sectors
    }

    /// `raid1_reshape` for a change of `raid_disks`: with all I/O frozen,
    /// pack the present legs into the lowest slots.
    fn reshape_mirrors(&self, mddev: &Mddev, cfg: &mut Config, n: u32) -> Result<(), Errno> {
        let new_n = n as usize;
        let old_n = self.n();
        let present = self
            .mirrors
            .read()
            .iter()
            .take(old_n)
            .filter(|s| s.is_some())
            .count();
        if new_n < old_n && present > new_n {
            return Err(Errno::EBUSY);
        }
        self.barrier.freeze(0);
        {
            let mut m = self.mirrors.write();
            let mut slots: Vec<Option<Arc<Rdev>>> = vec![None; 2 * new_n];
            let mut d2 = 0;
            for d in 0..old_n {
                if let Some(r) = m[d].take() {
                    if r.raid_disk() != d2 as i32 {
                        mddev.observer().slot_link(mddev, r.raid_disk(), None);
                        r.set_raid_disk(d2 as i32);
                        mddev.observer().slot_link(mddev, d2 as i32, Some(&r));
                    }
                    slots[d2] = Some(r);
                    d2 += 1;
                }
            }
            *m = slots;
            *self.heads.write() = (0..2 * new_n).map(|_| Head::default()).collect();
            let degraded = mddev.degraded() as i64 + new_n as i64 - old_n as i64;
            mddev.set_degraded(degraded.max(0) as u32);
            self.raid_disks.store(new_n, Ordering::Release);
        }
        cfg.raid_disks = n;
        cfg.delta_disks = 0;
        self.barrier.unfreeze();
        Ok(())
    }

    fn quiesce(&self, on: bool) {
        if on {
            self.barrier.freeze(0);
        } else {
            self.barrier.unfreeze();
        }
    }

    /// `raid1_sync_request`, done synchronously: read the step from the
    /// source leg (or all readable legs for check/repair), compare when
    /// asked, write the targets.
    /// A resync or repair copies one mirror over the others, and a read
    /// may have been served by any of them: what reads of the step's
    /// sectors (array sectors, here) return may have changed.
    fn sync_changed(&self, sector: u64, sectors: u64) -> Option<(u64, u64)> {
        Some((sector << 9, sectors << 9))
    }

    fn sync_request(&self, mddev: &Mddev, sector: u64, max_sector: u64) -> Result<SyncStep, Errno> {
        let n = self.n();
        let bitmap = mddev.bitmap();
        let requested = mddev.recovery.test(rec::REQUESTED);
        if sector >= max_sector {
            // End of the run: close the bitmap's sync state.
            if let Some(b) = &bitmap {
                let cur = mddev.sync.curr_resync();
                if cur < max_sector {
                    b.end_sync(cur, true);
                } else {
                    self.fullsync.store(false, Ordering::Release);
                }
                b.close_sync(mddev.sync.resync_max_sectors());
            } else if mddev.sync.curr_resync() >= max_sector {
                self.fullsync.store(false, Ordering::Release);
            }
            return Ok(SyncStep {
                sectors: 0,
                skipped: false,
            });
        }
        let fullsync = self.fullsync.load(Ordering::Acquire);
        if bitmap.is_none() && mddev.recovery_cp() == MAX_SECTOR && !requested && !fullsync {
            return Ok(SyncStep {
                sectors: max_sector - sector,
                skipped: true,
            });
        }
        if let Some(b) = &bitmap {
            let (needed, blocks) = b.start_sync(mddev, sector, true);
            if !needed && !fullsync && !requested {
                return Ok(SyncStep {
                    sectors: blocks,
                    skipped: true,
                });
            }
            b.cond_end_sync(mddev, sector, false);
        }
        if self.barrier.waiting(sector) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(4));
        }
        let interrupted = || mddev.recovery.test(rec::INTR);
        if !self.barrier.raise_barrier(sector, &interrupted) {
            return Ok(SyncStep {
                sectors: 0,
                skipped: false,
            });
        }
        let r = self.sync_step(mddev, sector, max_sector, n, &bitmap, requested, fullsync);
        self.barrier.lower_barrier(sector);
        r
    }
}

impl Conf {
    #[allow(clippy::too_many_arguments)]
    fn sync_step(
        &self,
        mddev: &Mddev,
        sector: u64,
        max_sector: u64,
        n: usize,
        bitmap: &Option<Arc<crate::md::bitmap::Bitmap>>,
        requested: bool,
        fullsync: bool,
    ) -> Result<SyncStep, Errno> {
        let recovery = &mddev.recovery;
        let is_sync = recovery.test(rec::SYNC);
        let is_check = recovery.test(rec::CHECK);
        let mut good_sectors = align_to_unit_end(sector, RESYNC_SECTORS);
        let mut still_degraded = false;
        // A recovery in an array that still owes a resync writes only the
        // members it rebuilds: the bits must stay for the resync, which
        // brings the in-sync mirrors together.  (Linux 6.1 clears them
        // here as soon as no slot is empty, and its resync then skips
        // every chunk, leaving the mirrors differing where a crash did.)
        let resync_owed = !is_sync && mddev.recovery_cp() != MAX_SECTOR;
        let mut min_bad = 0u64;
        let mut read_disk: Option<usize> = None;
        let mut wonly: Option<usize> = None;
        // (slot, rdev, is_read_target)
        let mut legs: Vec<(usize, Arc<Rdev>, bool)> = Vec::new();
        let mirrors: Vec<Option<Arc<Rdev>>> = self.mirrors.read().clone();
        for (i, slot) in mirrors.iter().enumerate() {
            let Some(r) = slot else {
                if i < n {
                    still_degraded = true;
                }
                continue;
            };
            if r.faulty() {
                if i < n {
                    still_degraded = true;
                }
                continue;
            }
            if !r.in_sync() {
                legs.push((i, r.clone(), false));
                continue;
            }
            // A leg whose data_offset is beyond any device is read as
            // any other; the read fails and the step falls back.
            let abs = r.dev_sector(sector).unwrap_or(0);
            let mut first_bad = MAX_SECTOR;
            if let Some((fb, bl, _)) = is_badblock(r, sector, good_sectors) {
                first_bad = fb;
                if fb > abs {
                    good_sectors = fb - abs;
                } else {
                    let bad = bl - (abs - fb);
                    if min_bad == 0 || min_bad > bad {
                        min_bad = bad;
                    }
                }
            }
            if abs < first_bad {
                if r.flags.test(rf::WRITE_MOSTLY) {
                    wonly.get_or_insert(i);
                } else {
                    read_disk.get_or_insert(i);
                }
                legs.push((i, r.clone(), true));
            } else if !r.flags.test(rf::WRITE_ERROR_SEEN) && is_sync && !is_check {
                legs.push((i, r.clone(), false));
            }
        }
        let read_disk = read_disk.or(wonly);
        let read_targets = legs.iter().filter(|l| l.2).count();
        let mut write_targets = legs.iter().filter(|l| !l.2).count();
        if read_targets == 0 && min_bad > 0 {
            let mut ok = true;
            for (_, r, is_read) in &legs {
                if !is_read {
                    ok = set_badblocks(mddev, r, sector, min_bad) && ok;
                }
            }
            mddev.sb_flags.set(sbf::CHANGE_DEVS);
            if !ok {
                self.recovery_disabled
                    .store(mddev.recovery_disabled(), Ordering::Release);
                mddev.recovery.set(rec::INTR);
                return Ok(SyncStep {
                    sectors: 0,
                    skipped: false,
                });
            }
            return Ok(SyncStep {
                sectors: min_bad,
                skipped: true,
            });
        }
        if min_bad > 0 && min_bad < good_sectors {
            good_sectors = min_bad;
        }
        if is_sync && read_targets > 0 {
            write_targets += read_targets - 1;
        }
        let mut max_sector = max_sector;
        if write_targets == 0 || read_targets == 0 {
            if min_bad > 0 {
                max_sector = sector + min_bad;
            }
            return Ok(SyncStep {
                sectors: max_sector - sector,
                skipped: true,
            });
        }
        let resync_max = mddev.sync.resync_max();
        max_sector = max_sector.min(resync_max).min(sector + good_sectors);
        // Grow the step page by page while the bitmap agrees.
        let mut nr = 0u64;
        let mut sync_blocks = 0u64;
        let mut s = sector;
        while nr < RESYNC_SECTORS {
            let mut len = PAGE_SECTORS.min(max_sector.saturating_sub(s));
            if len == 0 {
                break;
            }
            if sync_blocks == 0 {
                let (needed, blocks) = match bitmap {
                    Some(b) => b.start_sync(mddev, s, still_degraded || resync_owed),
                    None => (true, 1024),
                };
                if !needed && !fullsync && !requested {
                    break;
                }
                sync_blocks = blocks;
                len = len.min(sync_blocks);
            }
            nr += len;
            s += len;
            sync_blocks = sync_blocks.saturating_sub(len);
        }
        if nr == 0 {
            return Ok(SyncStep {
                sectors: 0,
                skipped: false,
            });
        }
        let bytes = (nr * 512) as usize;
        let Some(rd) = read_disk else {
            return Ok(SyncStep {
                sectors: nr,
                skipped: true,
            });
        };
        if requested {
            self.sync_compare(mddev, sector, nr, bytes, &legs, is_check)?;
        } else {
            // resync / recovery: read from read_disk, write everything else.
            let src = legs
                .iter()
                .find(|l| l.0 == rd)
                .map(|l| l.1.clone())
                .expect("read disk is a leg");
            let mut buf = vec![0u8; bytes];
            if !self.sync_read(mddev, &src, rd, sector, &mut buf, &legs) {
                return Ok(SyncStep {
                    sectors: nr,
                    skipped: false,
                });
            }
            for (i, r, is_read) in &legs {
                if *i == rd || (*is_read && !is_sync) {
                    continue;
                }
                if r.faulty() {
                    continue;
                }
                r.nr_pending.fetch_add(1, Ordering::AcqRel);
                let res = r.write_data(&buf, sector);
                if res.is_err() {
                    // end_sync_write: record bad blocks or fail the leg.
                    r.flags.set(rf::WRITE_ERROR_SEEN);
                    if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
                        mddev.recovery.set(rec::NEEDED);
                    }
                    if !set_badblocks(mddev, r, sector, nr) {
                        md_error_io(mddev, r, mddev.fail_last_dev());
                    }
                    mddev.sb_flags.set(sbf::CHANGE_CLEAN);
                }
                rdev_dec_pending(mddev, r);
            }
        }
        mddev.sync.add_io(nr);
        Ok(SyncStep {
            sectors: nr,
            skipped: false,
        })
    }

    /// Read a sync step from `src`, falling back page by page to other
    /// in-sync legs (`fix_sync_read_error`).  False when some page is
    /// unreadable everywhere (then it is marked bad on the targets).
    fn sync_read(
        &self,
        mddev: &Mddev,
        src: &Arc<Rdev>,
        rd: usize,
        sector: u64,
        buf: &mut [u8],
        legs: &[(usize, Arc<Rdev>, bool)],
    ) -> bool {
        if src.read_data(buf, sector).is_ok() {
            return true;
        }
        // Every page the step covers, the last one too when the step
        // ends inside it (a step cut short by a bad block): a part left
        // out would go to the targets as the buffer's zeros.
        let pages = buf.len().div_ceil(PAGE_SECTORS as usize * 512);
        let mut all_ok = true;
        for p in 0..pages {
            let off = p * PAGE_SECTORS as usize * 512;
            let end = (off + PAGE_SECTORS as usize * 512).min(buf.len());
            let s = sector + (off / 512) as u64;
            let mut got = false;
            for (i, r, is_read) in legs {
                if !is_read || r.faulty() {
                    continue;
                }
                let _ = i;
                if r.read_data(&mut buf[off..end], s).is_ok() {
                    got = true;
                    break;
                }
            }
            if !got {
                mddev.log().err(format!(
                    "md/raid1:{}: {}: unrecoverable I/O read error for block {s}",
                    mddev.name, src.name
                ));
                all_ok = false;
                let len = ((end - off) / 512) as u64;
                for (_, r, is_read) in legs {
                    if *is_read && !Arc::ptr_eq(r, src) {
                        continue;
                    }
                    if !set_badblocks(mddev, r, s, len) {
                        md_error_io(mddev, r, mddev.fail_last_dev());
                    }
                }
                mddev.sb_flags.set(sbf::CHANGE_CLEAN);
            }
        }
        let _ = rd;
        all_ok
    }

    /// check / repair: read every readable leg, compare with the first good
    /// one, count mismatches (whole step per differing leg), rewrite on
    /// repair.
    fn sync_compare(
        &self,
        mddev: &Mddev,
        sector: u64,
        nr: u64,
        bytes: usize,
        legs: &[(usize, Arc<Rdev>, bool)],
        is_check: bool,
    ) -> Result<(), Errno> {
        let mut reads: Vec<(usize, Arc<Rdev>, Option<Vec<u8>>)> = Vec::new();
        for (i, r, is_read) in legs {
            if !is_read {
                continue;
            }
            let mut buf = vec![0u8; bytes];
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let ok = r.read_data(&mut buf, sector).is_ok();
            rdev_dec_pending(mddev, r);
            reads.push((*i, r.clone(), ok.then_some(buf)));
        }
        // The source: the leg named in `repair_source` when it read well,
        // else the first that did (md's choice).
        let named = mddev.sync.repair_source.lock().clone();
        let chosen = named.and_then(|n| reads.iter().position(|x| x.1.name == n && x.2.is_some()));
        let Some(primary) = chosen.or_else(|| reads.iter().position(|x| x.2.is_some())) else {
            mddev.log().err(format!(
                "md/raid1:{}: unrecoverable I/O read error for block {sector}",
                mddev.name
            ));
            return Ok(());
        };
        let pdata = reads[primary].2.clone().expect("primary read");
        let mut mismatched: Vec<(u64, u64)> = Vec::new();
        for (k, (_, r, data)) in reads.iter().enumerate() {
            if k == primary {
                continue;
            }
            let differs = match data {
                Some(d) => d != &pdata,
                None => true,
            };
            if differs {
                mddev.sync.add_mismatches(nr);
                if let Some(d) = data {
                    mismatched.extend(diff_ranges(&pdata, d, sector));
                } else {
                    mismatched.push((sector, nr));
                }
            }
            if differs && (!is_check || data.is_none()) {
                if r.write_data(&pdata, sector).is_err() {
                    if !set_badblocks(mddev, r, sector, nr) {
                        md_error_io(mddev, r, mddev.fail_last_dev());
                    }
                    mddev.sb_flags.set(sbf::CHANGE_CLEAN);
                }
                mddev.sb_flags.set(sbf::CHANGE_CLEAN);
            }
        }
        for (s, l) in mismatched {
            mddev.sync.note_mismatch(s, l);
        }
        Ok(())
    }
}

/// Sector ranges (4 KiB granules) where two buffers differ.
fn diff_ranges(a: &[u8], b: &[u8], sector: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, (x, y)) in a.chunks(4096).zip(b.chunks(4096)).enumerate() {
        if x != y {
            let s = sector + (i as u64) * 8;
            let l = (x.len() / 512) as u64;
            match out.last_mut() {
                Some((ls, ll)) if *ls + *ll == s => *ll += l,
                _ => out.push((s, l)),
            }
        }
    }
    out
}
