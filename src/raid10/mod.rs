//! The RAID10 personality (drivers/md/raid10.c): chunks striped over the
//! members with near, far or offset copies (`geom`), reads balanced over
//! the copies, writes to every copy with the write-intent bitmap, read
//! errors repaired from another copy, write errors narrowed into bad
//! blocks, failures under `enough`'s rule, spares and replacements, and
//! the sync step: resync, check and repair walk the array's sectors and
//! compare every copy, recovery walks a member's sectors and copies each
//! block from a working copy.
//!
//! I/O runs synchronously on the calling thread (one FUSE request, or
//! the sync worker).

mod barrier;
pub mod geom;
mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

use self::barrier::Barrier;
use self::geom::{Copy, GeoError, Geom};
use crate::format::MAX_SECTOR;
use crate::md::fanout::{fan_out, fan_out_lanes, fan_out_lanes_sized};
use crate::md::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use crate::md::member_io::{narrow_write_error, set_badblocks, wait_sb_written, wait_unblocked};
use crate::md::personality::{Personality, Raid, Resized, SyncStep};
use crate::md::pieces::{member_lanes, split_for_jobs};
use crate::md::slot::{activate_slot, leave_slot};
use crate::md::update::{md_error_io, md_write_end, md_write_start, rdev_dec_pending};
use crate::md::{Config, Errno, Mddev, Rdev};

/// Sectors per page, the unit of read-error repair.
const PAGE_SECTORS: u64 = 8;
/// `sizeof(struct raid10_info)` and the most one kcalloc gives
/// (`KMALLOC_MAX_SIZE` on x86-64).
const MIRROR_INFO_BYTES: i64 = 32;
const KMALLOC_MAX_SIZE: i64 = 4 << 20;

pub struct Raid10Personality;

pub static RAID10: Raid10Personality = Raid10Personality;

impl Personality for Raid10Personality {
    fn name(&self) -> &'static str {
        "raid10"
    }
    fn level(&self) -> i32 {
        10
    }
    fn redundant(&self) -> bool {
        true
    }
    /// `raid10_resize`: near and offset layouts (not far).
    fn has_resize(&self) -> bool {
        true
    }
    /// `raid10_check_reshape` judges a new geometry; the reshape itself
    /// is not implemented.
    fn has_check_reshape(&self) -> bool {
        true
    }

    /// `raid10_run` (with `setup_conf`).
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno> {
        let log = mddev.log();
        let disks = cfg.raid_disks as i32;
        let unsupported = || {
            log.warn(format!(
                "md/raid10:{}: unsupported raid10 layout: 0x{:8x}",
                mddev.name, cfg.new_layout as u32
            ));
            Errno::EINVAL
        };
        let (mut geo, copies) = match Geom::setup(
            cfg.new_layout,
            cfg.new_chunk_sectors,
            disks.max(0) as usize,
        ) {
            Err(GeoError::Chunk) => {
                log.warn(format!(
                    "md/raid10:{}: chunk size must be at least PAGE_SIZE(4096) and be a power of 2.",
                    mddev.name
                ));
                return Err(Errno::EINVAL);
            }
            Err(GeoError::Layout) => return Err(unsupported()),
            Ok((g, c)) if disks < 0 || !g.usable(c) => {
                let _ = g;
                return Err(unsupported());
            }
            Ok(x) => x,
        };
        if disks as i64 * MIRROR_INFO_BYTES > KMALLOC_MAX_SIZE {
            log.warn(format!(
                "md/raid10:{}: cannot allocate the mirrors of raid_disks {disks}",
                mddev.name
            ));
            return Err(Errno::ENOMEM);
        }
        let n = disks as usize;
        let mut mirrors: Vec<Mirror> = vec![Mirror::default(); n];
        for r in &cfg.rdevs {
            let idx = r.raid_disk();
            if idx < 0 || idx as usize >= n {
                continue;
            }
            let m = &mut mirrors[idx as usize];
            let slot = if r.flags.test(rf::REPLACEMENT) {
                &mut m.replacement
            } else {
                &mut m.rdev
            };
            if slot.is_some() {
                // raid10_run fails silently here; say why.
                log.warn(format!(
                    "md/raid10:{}: {} claims slot {idx} which is taken",
                    mddev.name, r.name
                ));
                return Err(Errno::EIO);
            }
            *slot = Some(r.clone());
        }
        let dev_sectors = geo.calc_sectors(cfg.dev_sectors, copies);
        let conf = Conf {
            geo,
            copies,
            dev_sectors: AtomicU64::new(dev_sectors),
            mirrors: RwLock::new(mirrors),
            heads: (0..n).map(|_| AtomicU64::new(0)).collect(),
            fullsync: AtomicBool::new(false),
            next_resync: AtomicU64::new(0),
            barrier: Barrier::default(),
        };
        if !conf.enough(&conf.mirrors.read(), -1) {
            log.err(format!(
                "md/raid10:{}: not enough operational mirrors.",
                mddev.name
            ));
            return Err(Errno::EIO);
        }
        let mut degraded = 0u32;
        {
            let mut m = conf.mirrors.write();
            for disk in m.iter_mut() {
                if disk.rdev.is_none() {
                    if let Some(repl) = disk.replacement.take() {
                        // The replacement is all there is: use it.
                        repl.flags.clear(rf::REPLACEMENT);
                        disk.rdev = Some(repl);
                    }
                }
                match &disk.rdev {
                    Some(r) if r.in_sync() => {}
                    other => {
                        degraded += 1;
                        if other.as_ref().is_some_and(|r| r.saved_raid_disk() < 0) {
                            conf.fullsync.store(true, Ordering::Release);
                        }
                    }
                }
                disk.recovery_disabled = cfg.recovery_disabled.wrapping_sub(1);
            }
        }
        mddev.set_degraded(degraded);
        if mddev.recovery_cp() != MAX_SECTOR {
            log.info(format!(
                "md/raid10:{}: not clean -- starting background reconstruction",
                mddev.name
            ));
        }
        log.info(format!(
            "md/raid10:{}: active with {} out of {} devices",
            mddev.name,
            n as u32 - degraded,
            n
        ));
        cfg.dev_sectors = dev_sectors;
        mddev.publish(cfg);
        mddev
            .sync
            .set_resync_max_sectors(conf.geo.size(dev_sectors));
        Ok(Arc::new(conf))
    }
}

/// `struct raid10_info`.
#[derive(Clone, Default)]
struct Mirror {
    rdev: Option<Arc<Rdev>>,
    replacement: Option<Arc<Rdev>>,
    recovery_disabled: u32,
}

/// `struct r10conf`.
pub struct Conf {
    geo: Geom,
    /// near × far.
    copies: usize,
    /// Sectors of each member in use (`conf->dev_sectors`).
    dev_sectors: AtomicU64,
    mirrors: RwLock<Vec<Mirror>>,
    /// Where each member's head is, for read balancing.
    heads: Vec<AtomicU64>,
    fullsync: AtomicBool,
    /// Where the resync is: reads at or past it take the first copy.
    next_resync: AtomicU64,
    barrier: Barrier,
}

/// One piece of a write, ready to go: where it is in the request and
/// the array, the copies it goes to (member, sector on it, is a
/// replacement), and whether a copy has no member.
struct PieceWrite {
    at: u64,
    sector: u64,
    sectors: u64,
    targets: Vec<(Arc<Rdev>, u64, bool)>,
    degraded: bool,
}

/// What became of a write's (or discard's) next sectors.
enum Unit {
    /// Written (or failed on every copy): this many sectors.
    Done(u64),
    /// Not started: this member must be unblocked first.
    Blocked(Arc<Rdev>),
}

impl Conf {
    /// Sectors of each member in use.
    fn dev_sectors(&self) -> u64 {
        self.dev_sectors.load(Ordering::Acquire)
    }

    /// `_enough` over the members' in-sync state.
    fn enough(&self, mirrors: &[Mirror], ignore: i32) -> bool {
        let in_sync: Vec<bool> = mirrors
            .iter()
            .map(|m| m.rdev.as_ref().is_some_and(|r| r.in_sync()))
            .collect();
        self.geo.enough(self.copies, &in_sync, ignore)
    }

    /// `read_balance`: the copy to read `sectors` at array sector `sector`
    /// from (its index in `copies`), the member, and how many sectors it
    /// can serve.
    fn read_balance(
        &self,
        mddev: &Mddev,
        copies: &[Copy],
        sector: u64,
        sectors: u64,
        blocked: &[bool],
    ) -> Option<(usize, Arc<Rdev>, u64)> {
        let mut sectors = sectors;
        let do_balance = !(mddev.recovery_cp() < MAX_SECTOR
            && sector + sectors >= self.next_resync.load(Ordering::Acquire));
        let mirrors = self.mirrors.read();
        let mut best: Option<(usize, Arc<Rdev>)> = None;
        let mut best_dist = MAX_SECTOR;
        let mut best_good = 0u64;
        for (slot, c) in copies.iter().enumerate() {
            if blocked[slot] {
                continue;
            }
            let m = &mirrors[c.devnum];
            let rdev = match &m.replacement {
                Some(r) if !r.faulty() && c.addr + sectors <= r.recovery_offset() => r,
                _ => match &m.rdev {
                    Some(r) => r,
                    None => continue,
                },
            };
            if rdev.faulty() || (!rdev.in_sync() && c.addr + sectors > rdev.recovery_offset()) {
                continue;
            }
            if let Some((first_bad, bad_sectors, _)) = is_badblock(rdev, c.addr, sectors) {
                if best_dist < MAX_SECTOR {
                    continue;
                }
                if first_bad <= c.addr {
                    let bad = bad_sectors - (c.addr - first_bad);
                    if !do_balance && sectors > bad {
                        sectors = bad;
                    }
                    if best_good > sectors {
                        best_good = sectors;
                    }
                } else {
                    let good = first_bad - c.addr;
                    if good > best_good {
                        best_good = good;
                        best = Some((slot, rdev.clone()));
                    }
                    if !do_balance {
                        break;
                    }
                }
                continue;
            }
            best_good = sectors;
            if !do_balance {
                best = Some((slot, rdev.clone()));
                break;
            }
            let dist = if self.geo.near_copies > 1 && rdev.nr_pending.load(Ordering::Acquire) == 0 {
                0
            } else if self.geo.far_copies > 1 {
                c.addr
            } else {
                c.addr
                    .abs_diff(self.heads[c.devnum].load(Ordering::Relaxed))
            };
            if dist < best_dist {
                best_dist = dist;
                best = Some((slot, rdev.clone()));
            }
        }
        let (slot, rdev) = best?;
        if best_good == 0 {
            return None;
        }
        Some((slot, rdev, best_good))
    }

    /// Read `buf` at array sector `sector`, inside one chunk
    /// (`raid10_read_request` and its retries after `handle_read_error`).
    fn read_piece(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let len = (buf.len() / 512) as u64;
        let mut blocked = vec![false; self.copies];
        let mut errors = vec![0u32; self.copies];
        let mut err_rdev: Option<String> = None;
        let mut done = 0u64;
        while done < len {
            let s = sector + done;
            let copies = self.geo.find_phys(s);
            self.barrier.wait_barrier();
            let Some((slot, rdev, max)) =
                self.read_balance(mddev, &copies, s, len - done, &blocked)
            else {
                self.barrier.allow_barrier();
                if let Some(name) = err_rdev {
                    mddev.log().err(format!(
                        "md/raid10:{}: {name}: unrecoverable I/O read error for block {s}",
                        mddev.name
                    ));
                }
                return Err(Errno::EIO);
            };
            if let Some(_name) = err_rdev.take() {
                mddev.log().err(format!(
                    "md/raid10:{}: {}: redirecting sector {s} to another mirror",
                    mddev.name, rdev.name
                ));
            }
            let addr = copies[slot].addr;
            let piece = &mut buf[(done * 512) as usize..((done + max) * 512) as usize];
            rdev.nr_pending.fetch_add(1, Ordering::AcqRel);
            let res = rdev.read_data(piece, addr);
            self.heads[copies[slot].devnum].store(addr + max, Ordering::Relaxed);
            self.barrier.allow_barrier();
            if res.is_ok() {
                rdev_dec_pending(mddev, &rdev);
                done += max;
                continue;
            }
            // raid10_end_read_request: the last copy gives its error to
            // the reader.
            let last = !self.enough(&self.mirrors.read(), rdev.raid_disk());
            if last {
                rdev_dec_pending(mddev, &rdev);
                return Err(Errno::EIO);
            }
            mddev.log().err(format!(
                "md/raid10:{}: {}: rescheduling sector {s}",
                mddev.name, rdev.name
            ));
            // handle_read_error
            if rdev.disk.shrunk() {
                // Its blocks are gone: fail it as a pulled disk.
                md_error_io(mddev, &rdev, mddev.fail_last_dev());
                blocked[slot] = true;
            } else if !mddev.is_rdwr() {
                blocked[slot] = true;
            } else if rdev.flags.test(rf::FAIL_FAST) {
                md_error_io(mddev, &rdev, mddev.fail_last_dev());
            } else {
                self.barrier.freeze();
                self.fix_read_error(mddev, &copies, slot, max, &mut blocked);
                self.barrier.unfreeze();
            }
            rdev_dec_pending(mddev, &rdev);
            errors[slot] += 1;
            if errors[slot] > 1 {
                // It failed again after its repair: not again for this read.
                blocked[slot] = true;
            }
            err_rdev = Some(rdev.name.clone());
        }
        Ok(())
    }

    /// `fix_read_error`: page by page, read the data from another copy
    /// and write it back over the copies before it down to the one that
    /// failed, then read those back to check.
    fn fix_read_error(
        &self,
        mddev: &Mddev,
        copies: &[Copy],
        read_slot: usize,
        sectors: u64,
        blocked: &mut [bool],
    ) {
        let log = mddev.log();
        let name = &mddev.name;
        let dev_of = |sl: usize| self.mirrors.read()[copies[sl].devnum].rdev.clone();
        let Some(failed) = dev_of(read_slot) else {
            return;
        };
        if failed.faulty() {
            return;
        }
        let max = mddev.max_corr_read_errors();
        let cur = failed.note_read_error();
        if cur > max {
            log.info(format!(
                "md/raid10:{name}: {}: Raid device exceeded read_error threshold [cur {cur}:max {max}]",
                failed.name
            ));
            log.info(format!(
                "md/raid10:{name}: {}: Failing raid device",
                failed.name
            ));
            md_error_io(mddev, &failed, mddev.fail_last_dev());
            blocked[read_slot] = true;
            return;
        }
        let mut page = vec![0u8; (PAGE_SECTORS * 512) as usize];
        let mut sect = 0u64;
        while sect < sectors {
            let s = (sectors - sect).min(PAGE_SECTORS);
            let buf = &mut page[..(s * 512) as usize];
            let mut sl = read_slot;
            let mut success = false;
            loop {
                if let Some(r) = dev_of(sl) {
                    if r.in_sync()
                        && !r.faulty()
                        && is_badblock(&r, copies[sl].addr + sect, s).is_none()
                    {
                        r.nr_pending.fetch_add(1, Ordering::AcqRel);
                        success = r.read_data(buf, copies[sl].addr + sect).is_ok();
                        rdev_dec_pending(mddev, &r);
                        if success {
                            break;
                        }
                    }
                }
                sl = (sl + 1) % self.copies;
                if sl == read_slot {
                    break;
                }
            }
            if !success {
                // Unreadable everywhere: mark it bad on the copy that
                // failed, to keep future reads away.
                if !set_badblocks(mddev, &failed, copies[read_slot].addr + sect, s) {
                    md_error_io(mddev, &failed, mddev.fail_last_dev());
                    blocked[read_slot] = true;
                }
                break;
            }
            let start = sl;
            while sl != read_slot {
                sl = if sl == 0 { self.copies - 1 } else { sl - 1 };
                let Some(r) = dev_of(sl) else { continue };
                if r.faulty() || !r.in_sync() {
                    continue;
                }
                r.nr_pending.fetch_add(1, Ordering::AcqRel);
                if sync_page_io(mddev, &r, copies[sl].addr + sect, IoBuf::Write(buf)) == 0 {
                    log.info(format!(
                        "md/raid10:{name}: read correction write failed ({s} sectors at {} on {})",
                        sect + r.data_offset(),
                        r.name
                    ));
                    log.info(format!("md/raid10:{name}: {}: failing drive", r.name));
                }
                rdev_dec_pending(mddev, &r);
            }
            sl = start;
            let mut check = vec![0u8; buf.len()];
            while sl != read_slot {
                sl = if sl == 0 { self.copies - 1 } else { sl - 1 };
                let Some(r) = dev_of(sl) else { continue };
                if r.faulty() || !r.in_sync() {
                    continue;
                }
                r.nr_pending.fetch_add(1, Ordering::AcqRel);
                match sync_page_io(mddev, &r, copies[sl].addr + sect, IoBuf::Read(&mut check)) {
                    0 => {
                        log.info(format!(
                            "md/raid10:{name}: unable to read back corrected sectors ({s} sectors at {} on {})",
                            sect + r.data_offset(),
                            r.name
                        ));
                        log.info(format!("md/raid10:{name}: {}: failing drive", r.name));
                    }
                    1 => {
                        log.info(format!(
                            "md/raid10:{name}: read error corrected ({s} sectors at {} on {})",
                            sect + r.data_offset(),
                            r.name
                        ));
                        r.add_corrected_errors(s as u32);
                    }
                    _ => {}
                }
                rdev_dec_pending(mddev, &r);
            }
            sect += s;
        }
        mddev.wakeup();
    }

    /// The members a write (or discard) at array sector `sector` of
    /// `sectors` goes to (member, sector on it, is a replacement), how many
    /// sectors it may cover (bad blocks shorten it), and whether a copy
    /// has no member; or a member to wait for first
    /// (`raid10_write_request`, `wait_blocked_dev`).
    #[allow(clippy::type_complexity)]
    fn write_targets(
        &self,
        sector: u64,
        sectors: u64,
    ) -> Result<(Vec<(Arc<Rdev>, u64, bool)>, u64, bool), Arc<Rdev>> {
        let copies = self.geo.find_phys(sector);
        let mirrors = self.mirrors.read();
        let mut max = sectors;
        let mut degraded = false;
        let mut targets = Vec::with_capacity(2 * copies.len());
        for c in &copies {
            let m = &mirrors[c.devnum];
            for r in [&m.rdev, &m.replacement].into_iter().flatten() {
                if r.flags.test(rf::BLOCKED) {
                    return Err(r.clone());
                }
            }
            let mut rdev = m.rdev.clone().filter(|r| !r.faulty());
            let rrdev = m.replacement.clone().filter(|r| !r.faulty());
            if rdev.is_none() && rrdev.is_none() {
                degraded = true;
                continue;
            }
            if let Some(r) = rdev.as_ref().filter(|r| r.flags.test(rf::WRITE_ERROR_SEEN)) {
                if let Some((first_bad, bad_sectors, unacked)) = is_badblock(r, c.addr, max) {
                    if unacked {
                        // Not here until the bad block is on disk.
                        r.flags.set(rf::BLOCKED_BAD_BLOCKS);
                        return Err(r.clone());
                    }
                    if first_bad <= c.addr {
                        // Cannot write here at all; the bad-block log
                        // records that this copy is out of sync.
                        max = max.min(bad_sectors - (c.addr - first_bad));
                        continue;
                    }
                    max = max.min(first_bad - c.addr);
                }
            }
            if let Some(r) = rdev.take() {
                targets.push((r, c.addr, false));
            }
            if let Some(r) = rrdev {
                targets.push((r, c.addr, true));
            }
        }
        Ok((targets, max, degraded))
    }

    /// The writes of one request: its pieces (one per chunk, possibly
    /// shortened by bad blocks) go out together, as md submits the
    /// r10bios of a bio before any completes; each member takes its
    /// pieces in order, the members at once.  Stops before a piece whose
    /// member must be unblocked first: `Done` with what came before it,
    /// or `Blocked` with that member when it is the first
    /// (`raid10_write_request` and its completion:
    /// `raid10_end_write_request`, `handle_write_completed`,
    /// `close_write`).
    fn write_pieces(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<Unit, Errno> {
        let sectors = (data.len() / 512) as u64;
        let mut pieces: Vec<PieceWrite> = Vec::new();
        let mut at = 0u64;
        while at < sectors {
            let s = sector + at;
            match self.write_targets(s, self.in_chunk(s, sectors - at)) {
                Ok((targets, max, degraded)) => {
                    pieces.push(PieceWrite {
                        at,
                        sector: s,
                        sectors: max,
                        targets,
                        degraded,
                    });
                    at += max;
                }
                Err(r) if pieces.is_empty() => return Ok(Unit::Blocked(r)),
                Err(_) => break,
            }
        }
        let bitmap = mddev.bitmap();
        if let Some(b) = &bitmap {
            for p in &pieces {
                let seq = b.startwrite(p.sector, p.sectors);
                b.unplug(mddev, seq);
            }
        }
        let bytes_of =
            |p: &PieceWrite| &data[(p.at * 512) as usize..((p.at + p.sectors) * 512) as usize];
        // Every copy's write is issued before any is waited for; one
        // lane per member, so a member's pieces go in order.
        let jobs: Vec<(usize, usize)> = pieces
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| (0..p.targets.len()).map(move |ti| (pi, ti)))
            .collect();
        let lanes = member_lanes(jobs.iter().map(|&(pi, ti)| &pieces[pi].targets[ti].0));
        for &(pi, ti) in &jobs {
            pieces[pi].targets[ti]
                .0
                .nr_pending
                .fetch_add(1, Ordering::AcqRel);
        }
        let write = |k: usize| {
            let (pi, ti) = jobs[k];
            let (r, addr, _) = &pieces[pi].targets[ti];
            r.write_data(bytes_of(&pieces[pi]), *addr)
        };
        let largest = pieces
            .iter()
            .map(|p| (p.sectors * 512) as usize)
            .max()
            .unwrap_or(0);
        let mut written = fan_out_lanes_sized(largest, &lanes, write).into_iter();
        let mut result = Ok(());
        for p in &pieces {
            let results: Vec<_> = written.by_ref().take(p.targets.len()).collect();
            let r = self.write_completed(mddev, bytes_of(p), p, results);
            if let Some(b) = &bitmap {
                b.endwrite(
                    mddev,
                    p.sector,
                    p.sectors,
                    r.as_ref().is_ok_and(|d| !d),
                    mddev.events(),
                );
            }
            if let Err(e) = r {
                result = Err(e);
            }
        }
        result?;
        // Stopped before a blocked member: the next call starts there
        // and waits for it.
        Ok(Unit::Done(at))
    }

    /// One piece's writes are done: fail, record bad blocks or clear them
    /// as each copy's result says.  Whether the array stays degraded for
    /// the piece (its bitmap bits stay set), or `EIO` when no copy in
    /// sync took it.
    fn write_completed(
        &self,
        mddev: &Mddev,
        data: &[u8],
        p: &PieceWrite,
        written: Vec<std::io::Result<()>>,
    ) -> Result<bool, Errno> {
        let (max, mut degraded) = (p.sectors, p.degraded);
        let mut uptodate = false;
        let mut write_error = false;
        for ((r, addr, repl), result) in p.targets.iter().zip(written) {
            match result {
                Ok(()) => {
                    if r.in_sync() && !r.faulty() {
                        uptodate = true;
                    }
                    // A successful write over recorded bad blocks makes
                    // them good.
                    if is_badblock(r, *addr, max).is_some() {
                        mddev.rdev_clear_badblocks(r, *addr, max);
                    }
                }
                Err(_) if *repl => {
                    // Never bad blocks on a replacement: fail it.
                    md_error_io(mddev, r, mddev.fail_last_dev());
                }
                Err(_) => {
                    r.flags.set(rf::WRITE_ERROR_SEEN);
                    if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
                        mddev.recovery.set(rec::NEEDED);
                    }
                    let fail_fast = r.flags.test(rf::FAIL_FAST);
                    if fail_fast || r.disk.shrunk() {
                        md_error_io(mddev, r, mddev.fail_last_dev());
                    }
                    if r.faulty() {
                        degraded = true;
                    } else {
                        write_error = true;
                        if !narrow_write_error(mddev, r, data, *addr) {
                            md_error_io(mddev, r, mddev.fail_last_dev());
                            degraded = true;
                        }
                    }
                }
            }
            rdev_dec_pending(mddev, r);
        }
        if write_error {
            // Such a write completes only once the superblock records the
            // failure or the bad blocks; an array degraded by then keeps
            // the bits.
            wait_sb_written(mddev);
            if mddev.degraded() > 0 {
                degraded = true;
            }
        }
        if !uptodate {
            return Err(Errno::EIO);
        }
        Ok(degraded)
    }

    /// One discard inside a chunk: as a write for the bitmap, a discard
    /// to every copy.  A member that cannot discard is no write error,
    /// but one found shrunk is failed.
    fn discard_piece(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<Unit, Errno> {
        let (targets, max, degraded) = match self.write_targets(sector, sectors) {
            Ok(t) => t,
            Err(r) => return Ok(Unit::Blocked(r)),
        };
        let bitmap = mddev.bitmap();
        if let Some(b) = &bitmap {
            let seq = b.startwrite(sector, max);
            b.unplug(mddev, seq);
        }
        let mut uptodate = false;
        for (r, addr, _) in &targets {
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            if r.discard_data(*addr, max).is_err() && r.disk.shrunk() {
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

    /// Sectors from `sector`, at most `len`, inside its chunk.
    fn in_chunk(&self, sector: u64, len: u64) -> u64 {
        let end = (sector | self.geo.chunk_mask) + 1;
        len.min(end - sector)
    }

    /// Run `f(done, sector, left)` over `[sector, sector+sectors)` until
    /// it has done all of it, each call inside the barrier, waiting
    /// outside it for a blocked member and trying again.
    fn each_piece(
        &self,
        mddev: &Mddev,
        sector: u64,
        sectors: u64,
        f: &dyn Fn(u64, u64, u64) -> Result<Unit, Errno>,
    ) -> Result<(), Errno> {
        let mut done = 0u64;
        while done < sectors {
            self.barrier.wait_barrier();
            let r = f(done, sector + done, sectors - done);
            self.barrier.allow_barrier();
            match r? {
                Unit::Done(w) => done += w,
                Unit::Blocked(rdev) => wait_unblocked(mddev, &rdev),
            }
        }
        Ok(())
    }
}

/// `is_badblock`: the first recorded bad range overlapping sectors
/// `[s, s+len)` of `r` (from its data offset), made relative to the data
/// offset as the kernel returns it, its length, and whether some
/// overlapping range is unacknowledged.
fn is_badblock(r: &Rdev, s: u64, len: u64) -> Option<(u64, u64, bool)> {
    let abs = r.dev_sector(s)?;
    abs.checked_add(len)?;
    let (first, bad_len, unacked) = r.badblocks.lock().check(abs, len)?;
    let rel = first.saturating_sub(r.data_offset());
    // A range starting before the data area counts from its start.
    let bad_len = bad_len - (r.data_offset() - first.min(r.data_offset()));
    Some((rel, bad_len, unacked))
}

enum IoBuf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// `r10_sync_page_io`: 1 on success, -1 when a bad block is recorded
/// there already, 0 on failure (then a bad block is recorded, or the
/// member failed).
fn sync_page_io(mddev: &Mddev, r: &Arc<Rdev>, sector: u64, buf: IoBuf) -> i32 {
    let (sectors, write) = match &buf {
        IoBuf::Read(b) => ((b.len() / 512) as u64, false),
        IoBuf::Write(b) => ((b.len() / 512) as u64, true),
    };
    if is_badblock(r, sector, sectors).is_some() && (!write || r.flags.test(rf::WRITE_ERROR_SEEN)) {
        return -1;
    }
    let ok = match buf {
        IoBuf::Read(b) => r.read_data(b, sector).is_ok(),
        IoBuf::Write(b) => r.write_data(b, sector).is_ok(),
    };
    if ok {
        return 1;
    }
    if write {
        r.flags.set(rf::WRITE_ERROR_SEEN);
        if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
            mddev.recovery.set(rec::NEEDED);
        }
    }
    if !set_badblocks(mddev, r, sector, sectors) {
        md_error_io(mddev, r, mddev.fail_last_dev());
    }
    0
}

impl Raid for Conf {
    fn personality(&self) -> &'static dyn Personality {
        &RAID10
    }

    /// Chunk by chunk, as many chunks at once as there are members (one
    /// chunk's copies lie on different members than the next one's).
    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let sectors = (buf.len() / 512) as u64;
        let mut pieces = Vec::new();
        let mut done = 0u64;
        while done < sectors {
            let n = self.in_chunk(sector + done, sectors - done);
            pieces.push((sector + done, n));
            done += n;
        }
        let slices = split_for_jobs(buf, pieces.iter().map(|p| (p.1 * 512) as usize));
        let lanes: Vec<usize> = (0..pieces.len()).map(|i| i % self.geo.raid_disks).collect();
        fan_out_lanes(&lanes, |i| {
            self.read_piece(mddev, &mut slices[i].lock(), pieces[i].0)
        })
        .into_iter()
        .collect()
    }

    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        md_write_start(mddev)?;
        let r = self.each_piece(mddev, sector, (data.len() / 512) as u64, &|done, s, _| {
            self.write_pieces(mddev, &data[(done * 512) as usize..], s)
        });
        md_write_end(mddev, mddev.safemode_delay());
        r
    }

    fn discard(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<(), Errno> {
        md_write_start(mddev)?;
        let r = self.each_piece(mddev, sector, sectors, &|_, s, left| {
            self.discard_piece(mddev, s, self.in_chunk(s, left))
        });
        md_write_end(mddev, mddev.safemode_delay());
        r
    }

    /// A flush to every working member; one that fails is failed.
    fn flush(&self, mddev: &Mddev) -> Result<(), Errno> {
        let members: Vec<Arc<Rdev>> = self
            .mirrors
            .read()
            .iter()
            .flat_map(|m| [m.rdev.clone(), m.replacement.clone()])
            .flatten()
            .filter(|r| !r.faulty())
            .collect();
        // md sends its preflush to every member at once.
        let flushed: Vec<std::io::Result<()>> = fan_out(members.len(), |i| members[i].disk.flush());
        let mut any = false;
        for (r, res) in members.iter().zip(flushed) {
            if res.is_err() {
                md_error_io(mddev, r, mddev.fail_last_dev());
            } else if r.in_sync() {
                any = true;
            }
        }
        if any { Ok(()) } else { Err(Errno::EIO) }
    }

    /// `raid10_status`.
    fn status(&self, mddev: &Mddev) -> String {
        let g = &self.geo;
        let mut s = String::new();
        if g.near_copies < g.raid_disks {
            s += &format!(" {}K chunks", (g.chunk_mask + 1) >> 1);
        }
        if g.near_copies > 1 {
            s += &format!(" {} near-copies", g.near_copies);
        }
        if g.far_copies > 1 {
            if g.far_offset {
                s += &format!(" {} offset-copies", g.far_copies);
            } else {
                s += &format!(" {} far-copies", g.far_copies);
            }
            if g.far_set_size != g.raid_disks {
                s += &format!(" {} devices per set", g.far_set_size);
            }
        }
        let n = g.raid_disks as u32;
        s += &format!(" [{}/{}] [", n, n.saturating_sub(mddev.degraded()));
        for m in self.mirrors.read().iter() {
            s.push(if m.rdev.as_ref().is_some_and(|r| r.in_sync()) {
                'U'
            } else {
                '_'
            });
        }
        s.push(']');
        s
    }

    /// `raid10_error`: a member whose loss would leave some block without
    /// a copy is not failed (the array is marked broken; `fail_last_dev`
    /// fails it anyway).
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, fail_last_dev: bool) {
        {
            let m = self.mirrors.write();
            if rdev.in_sync() && !self.enough(&m, rdev.raid_disk()) {
                mddev.flags.set(mf::BROKEN);
                if !fail_last_dev {
                    return;
                }
            }
            if rdev.flags.test_and_clear(rf::IN_SYNC) {
                mddev.set_degraded(mddev.degraded() + 1);
            }
            mddev.recovery.set(rec::INTR);
            rdev.flags.set(rf::BLOCKED);
            rdev.flags.set(rf::FAULTY);
        }
        mddev.sb_flags.set(sbf::CHANGE_DEVS | sbf::CHANGE_PENDING);
        mddev.log().err(format!(
            "md/raid10:{}: Disk failure on {}, disabling device.\nmd/raid10:{}: Operation continuing on {} devices.",
            mddev.name,
            rdev.name,
            mddev.name,
            (self.geo.raid_disks as u32).saturating_sub(mddev.degraded())
        ));
        mddev.notify("degraded");
    }

    /// `raid10_add_disk`.
    fn hot_add_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        let n = self.geo.raid_disks;
        if mddev.recovery_cp() < MAX_SECTOR {
            // Only to in-sync arrays: recovery is not resync.
            return Err(Errno::EBUSY);
        }
        let mut m = self.mirrors.write();
        if rdev.saved_raid_disk() < 0 && !self.enough(&m, -1) {
            return Err(Errno::EINVAL);
        }
        let (mut first, mut last) = (0usize, n - 1);
        if rdev.raid_disk() >= 0 {
            first = rdev.raid_disk() as usize;
            last = first;
        }
        let saved = rdev.saved_raid_disk();
        let mut mirror =
            if saved >= first as i32 && (saved as usize) < n && m[saved as usize].rdev.is_none() {
                saved as usize
            } else {
                first
            };
        let disabled = mddev.recovery_disabled();
        while mirror <= last.min(n - 1) {
            let p = &mut m[mirror];
            if p.recovery_disabled == disabled {
                mirror += 1;
                continue;
            }
            if let Some(cur) = &p.rdev {
                if !cur.flags.test(rf::WANT_REPLACEMENT) || p.replacement.is_some() {
                    mirror += 1;
                    continue;
                }
                rdev.flags.clear(rf::IN_SYNC);
                rdev.flags.set(rf::REPLACEMENT);
                rdev.set_raid_disk(mirror as i32);
                self.fullsync.store(true, Ordering::Release);
                p.replacement = Some(rdev.clone());
                return Ok(());
            }
            self.heads[mirror].store(0, Ordering::Relaxed);
            p.recovery_disabled = disabled.wrapping_sub(1);
            rdev.set_raid_disk(mirror as i32);
            if rdev.saved_raid_disk() != mirror as i32 {
                self.fullsync.store(true, Ordering::Release);
            }
            p.rdev = Some(rdev.clone());
            return Ok(());
        }
        Err(Errno::EEXIST)
    }

    /// `raid10_remove_disk`.
    fn hot_remove_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        let number = rdev.raid_disk();
        if number < 0 || number as usize >= self.geo.raid_disks {
            return Ok(());
        }
        let mut m = self.mirrors.write();
        let enough = self.enough(&m, -1);
        let p = &mut m[number as usize];
        let is_rdev = p.rdev.as_ref().is_some_and(|x| Arc::ptr_eq(x, rdev));
        let is_repl = p.replacement.as_ref().is_some_and(|x| Arc::ptr_eq(x, rdev));
        if !is_rdev && !is_repl {
            return Ok(());
        }
        if rdev.in_sync() || rdev.nr_pending.load(Ordering::Acquire) > 0 {
            return Err(Errno::EBUSY);
        }
        // Only remove a working member when recovery is impossible.
        if !rdev.faulty()
            && mddev.recovery_disabled() != p.recovery_disabled
            && (p.replacement.is_none() || is_repl)
            && enough
        {
            return Err(Errno::EBUSY);
        }
        leave_slot(&mut p.rdev, &mut p.replacement, is_rdev, rdev);
        Ok(())
    }

    /// `raid10_spare_active`.
    fn spare_active(&self, mddev: &Mddev) -> u32 {
        let m = self.mirrors.write();
        let mut count = 0u32;
        for p in m.iter() {
            count += activate_slot(mddev, p.rdev.as_ref(), p.replacement.as_ref());
        }
        mddev.set_degraded(mddev.degraded().saturating_sub(count));
        count
    }

    /// `raid10_size`.
    fn size(&self, dev_sectors: u64) -> u64 {
        let s = if dev_sectors == 0 {
            self.dev_sectors()
        } else {
            dev_sectors
        };
        self.geo.size(s)
    }

    /// `raid10_resize`: a far layout cannot change size (its copies sit
    /// at fractions of the member); near and offset ones take the size
    /// rounded as `calc_sectors` rounds it, and a resync covers the
    /// array's sectors.
    fn resize(&self, _mddev: &Mddev, sectors: u64) -> Result<Resized, Errno> {
        if self.geo.far_copies > 1 && !self.geo.far_offset {
            return Err(Errno::EINVAL);
        }
        // The stride is the same for every size here (it varies only for
        // far copies), so the mapping in use stays as it is.
        let mut geo = self.geo;
        let dev_sectors = geo.calc_sectors(sectors, self.copies);
        if dev_sectors == 0 {
            return Err(Errno::EINVAL);
        }
        self.dev_sectors.store(dev_sectors, Ordering::Release);
        Ok(Resized {
            dev_sectors,
            resync_max_sectors: self.geo.size(dev_sectors),
        })
    }

    /// `raid10_quiesce`.
    fn quiesce(&self, on: bool) {
        if on {
            self.barrier.raise_barrier(false, &|| false);
        } else {
            self.barrier.lower_barrier();
        }
    }

    fn sync_request(&self, mddev: &Mddev, sector: u64, max_sector: u64) -> Result<SyncStep, Errno> {
        self.sync_request_impl(mddev, sector, max_sector)
    }

    /// A new number of members: judged as `check_reshape` judges it.
    fn reshape_mirrors(&self, mddev: &Mddev, cfg: &mut Config, _n: u32) -> Result<(), Errno> {
        self.check_reshape(mddev, cfg)
    }

    /// `raid10_check_reshape`: a far layout cannot reshape at all, a new
    /// geometry must keep the number of copies, not become far, divide
    /// the array and leave every block a copy (EINVAL otherwise).  The
    /// same geometry is nothing to do; a change it would accept needs a
    /// reshape, which mdfuse does not do: EBUSY.
    fn check_reshape(&self, mddev: &Mddev, cfg: &Config) -> Result<(), Errno> {
        if self.geo.far_copies != 1 && !self.geo.far_offset {
            return Err(Errno::EINVAL);
        }
        let disks = (cfg.raid_disks as i64 + cfg.delta_disks as i64).max(0) as usize;
        let (geo, copies) =
            Geom::setup(cfg.new_layout, cfg.new_chunk_sectors, disks).map_err(|_| Errno::EINVAL)?;
        if copies != self.copies
            || (geo.far_copies > 1 && !geo.far_offset)
            || mddev.array_sectors() & geo.chunk_mask != 0
            || !self.enough(&self.mirrors.read(), -1)
        {
            return Err(Errno::EINVAL);
        }
        if cfg.delta_disks == 0
            && cfg.new_layout == cfg.layout
            && cfg.new_chunk_sectors == cfg.chunk_sectors
        {
            return Ok(());
        }
        Err(Errno::EBUSY)
    }
}
