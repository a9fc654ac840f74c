//! RAID10's sync step (`raid10_sync_request`, `sync_request_write`,
//! `recovery_request_write`, `fix_recovery_read_error`), done
//! synchronously.  Resync, check and repair walk the array's sectors:
//! every copy is read, the first that reads is authoritative, and the
//! others are counted as mismatches and (but for check) rewritten.
//! Recovery walks the members' sectors: for each member being rebuilt
//! (or replaced) the array sector its block belongs to is found, and
//! the block copied from the first in-sync copy.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Conf, PAGE_SECTORS, is_badblock, set_badblocks};
use crate::format::MAX_SECTOR;
use crate::md::flags::{rdev as rf, recovery as rec, sb as sbf};
use crate::md::personality::SyncStep;
use crate::md::update::{md_error_io, rdev_dec_pending};
use crate::md::{Errno, Mddev, Rdev};

/// A copy read for a resync step: its index among the copies, the
/// member, and the data (none when the read failed).
type CopyRead = (usize, Arc<Rdev>, Option<Vec<u8>>);

/// Sectors per sync step (`RESYNC_PAGES << (PAGE_SHIFT - 9)`: 64 KiB).
const MAX_SYNC: u64 = 128;

/// One block to recover: read from `src` at `from`, write to each
/// target at `to`.
struct Job {
    src: Arc<Rdev>,
    src_dev: usize,
    from: u64,
    /// (member, is a replacement)
    targets: Vec<(Arc<Rdev>, bool)>,
    dev: usize,
    to: u64,
}

impl Conf {
    pub(super) fn sync_request_impl(
        &self,
        mddev: &Mddev,
        sector_nr: u64,
        _max: u64,
    ) -> Result<SyncStep, Errno> {
        let recovery = &mddev.recovery;
        let is_sync = recovery.test(rec::SYNC);
        let requested = recovery.test(rec::REQUESTED);
        let fullsync = self.fullsync.load(Ordering::Acquire);
        let bitmap = mddev.bitmap();
        // A clean array without a bitmap: nothing to recover for a
        // member that comes back (incremental assembly).
        if bitmap.is_none()
            && mddev.recovery_cp() == MAX_SECTOR
            && !is_sync
            && !requested
            && !fullsync
        {
            return Ok(SyncStep {
                sectors: self.dev_sectors().saturating_sub(sector_nr),
                skipped: true,
            });
        }
        let mut sector_nr = sector_nr;
        let mut sectors_skipped = 0u64;
        let mut chunks_skipped = 0i64;
        loop {
            let mut max_sector = if is_sync {
                mddev.sync.resync_max_sectors()
            } else {
                self.dev_sectors()
            };
            if sector_nr >= max_sector {
                self.end_of_sync(mddev, max_sector, is_sync);
                return Ok(SyncStep {
                    sectors: sectors_skipped,
                    skipped: true,
                });
            }
            if chunks_skipped >= self.geo.raid_disks as i64 {
                // Nothing to do on any member: nothing at all.
                return Ok(SyncStep {
                    sectors: max_sector - sector_nr + sectors_skipped,
                    skipped: true,
                });
            }
            max_sector = max_sector.min(mddev.sync.resync_max());
            // The whole step inside a chunk, when chunks mean something.
            if self.geo.near_copies < self.geo.raid_disks
                && max_sector > (sector_nr | self.geo.chunk_mask)
            {
                max_sector = (sector_nr | self.geo.chunk_mask) + 1;
            }
            if self.barrier.waiting() {
                std::thread::sleep(std::time::Duration::from_millis(4));
            }
            let step = if is_sync {
                self.resync_step(mddev, sector_nr, max_sector, requested, fullsync)?
            } else {
                self.recovery_step(mddev, sector_nr, max_sector, fullsync, &mut chunks_skipped)?
            };
            match step {
                Step::Done(nr) => {
                    return Ok(SyncStep {
                        sectors: nr + sectors_skipped,
                        skipped: false,
                    });
                }
                Step::Skip(n) => {
                    return Ok(SyncStep {
                        sectors: n + sectors_skipped,
                        skipped: true,
                    });
                }
                Step::Interrupted => {
                    return Ok(SyncStep {
                        sectors: 0,
                        skipped: false,
                    });
                }
                Step::GiveUp(max_sync) => {
                    // Nowhere to write: try the next chunk.
                    let end = max_sector.min(sector_nr + max_sync);
                    sectors_skipped += end - sector_nr;
                    chunks_skipped += 1;
                    sector_nr = end;
                }
            }
        }
    }

    /// The run ended (completed or aborted): close the bitmap's sync
    /// state; a completed full resync finished the replacements too.
    fn end_of_sync(&self, mddev: &Mddev, max_sector: u64, is_sync: bool) {
        let bitmap = mddev.bitmap();
        let cur = mddev.sync.curr_resync();
        if cur < max_sector {
            if let Some(b) = &bitmap {
                if is_sync {
                    b.end_sync(cur, true);
                } else {
                    for i in 0..self.geo.raid_disks {
                        b.end_sync(self.geo.find_virt(cur, i), true);
                    }
                }
            }
        } else {
            let fullsync = self.fullsync.load(Ordering::Acquire);
            if (bitmap.is_none() || fullsync) && is_sync {
                for m in self.mirrors.read().iter() {
                    if let Some(r) = &m.replacement {
                        r.set_recovery_offset(MAX_SECTOR);
                    }
                }
            }
            self.fullsync.store(false, Ordering::Release);
        }
        if let Some(b) = &bitmap {
            b.close_sync(mddev.sync.resync_max_sectors());
        }
    }

    /// The sectors of a step from `sector` up to `max_sector` (at most
    /// `max_sync`), page by page.
    fn step_len(sector: u64, max_sector: u64, max_sync: u64) -> u64 {
        let end = max_sector.min(sector + max_sync);
        let mut nr = 0;
        while nr < MAX_SYNC && sector + nr < end {
            nr += PAGE_SECTORS.min(end - sector - nr);
        }
        nr
    }

    /// Resync, check or repair of the array sectors from `sector_nr`.
    fn resync_step(
        &self,
        mddev: &Mddev,
        sector_nr: u64,
        max_sector: u64,
        requested: bool,
        fullsync: bool,
    ) -> Result<Step, Errno> {
        let bitmap = mddev.bitmap();
        let mut max_sync = MAX_SYNC;
        if let Some(b) = &bitmap {
            b.cond_end_sync(mddev, sector_nr, false);
        }
        let (needed, sync_blocks) = match &bitmap {
            Some(b) => b.start_sync(mddev, sector_nr, mddev.degraded() > 0),
            None => (true, 1024),
        };
        if !needed && !fullsync && !requested {
            return Ok(Step::Skip(sync_blocks));
        }
        max_sync = max_sync.min(sync_blocks);
        let interrupted = || mddev.recovery.test(rec::INTR);
        if !self.barrier.raise_barrier(false, &interrupted) {
            return Ok(Step::Interrupted);
        }
        self.next_resync.store(sector_nr, Ordering::Release);
        let copies = self.geo.find_phys(sector_nr);
        // (copy index, member, is a replacement to write)
        let mut reads: Vec<(usize, Arc<Rdev>)> = Vec::new();
        let mut repls: Vec<(usize, Arc<Rdev>)> = Vec::new();
        {
            let mirrors = self.mirrors.read();
            for (i, c) in copies.iter().enumerate() {
                let m = &mirrors[c.devnum];
                let Some(r) = m.rdev.as_ref().filter(|r| !r.faulty()) else {
                    continue;
                };
                if let Some((first_bad, bad, _)) = is_badblock(r, c.addr, max_sync) {
                    if first_bad > c.addr {
                        max_sync = first_bad - c.addr;
                    } else {
                        max_sync = max_sync.min(bad - (c.addr - first_bad));
                        continue;
                    }
                }
                reads.push((i, r.clone()));
                if let Some(repl) = m.replacement.as_ref().filter(|r| !r.faulty()) {
                    repls.push((i, repl.clone()));
                }
            }
        }
        if reads.len() + repls.len() < 2 {
            self.barrier.lower_barrier();
            return Ok(Step::GiveUp(max_sync));
        }
        let nr = Self::step_len(sector_nr, max_sector, max_sync);
        let bytes = (nr * 512) as usize;
        let mut data: Vec<CopyRead> = Vec::new();
        for (i, r) in reads {
            let mut buf = vec![0u8; bytes];
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let ok = r.read_data(&mut buf, copies[i].addr).is_ok();
            if !ok {
                r.add_corrected_errors(nr as u32);
            }
            rdev_dec_pending(mddev, &r);
            data.push((i, r, ok.then_some(buf)));
        }
        mddev.sync.add_io(nr);
        self.sync_request_write(mddev, sector_nr, nr, &copies, &data, &repls);
        self.barrier.lower_barrier();
        Ok(Step::Done(nr))
    }

    /// `sync_request_write`: compare every copy read with the first one
    /// that read; count and (but for check) rewrite those that differ or
    /// failed; write the replacements.
    fn sync_request_write(
        &self,
        mddev: &Mddev,
        sector: u64,
        nr: u64,
        copies: &[super::Copy],
        data: &[CopyRead],
        repls: &[(usize, Arc<Rdev>)],
    ) {
        let is_check = mddev.recovery.test(rec::CHECK);
        // mdfuse's `repair_source`: the named member when it read well,
        // else the first that did (md's choice).
        let named = mddev.sync.repair_source.lock().clone();
        let chosen = named.and_then(|n| data.iter().position(|x| x.1.name == n && x.2.is_some()));
        let Some(first) = chosen.or_else(|| data.iter().position(|x| x.2.is_some())) else {
            return;
        };
        let fdata = data[first].2.as_ref().expect("first copy read");
        let mut mismatched: Vec<(u64, u64)> = Vec::new();
        for (k, (i, r, d)) in data.iter().enumerate() {
            if k == first {
                continue;
            }
            match d {
                Some(d) => {
                    if d == fdata {
                        continue;
                    }
                    mddev.sync.add_mismatches(nr);
                    mismatched.extend(diff_ranges(fdata, d, sector));
                    if is_check {
                        continue;
                    }
                }
                None => {
                    if r.flags.test(rf::FAIL_FAST) {
                        md_error_io(mddev, r, mddev.fail_last_dev());
                        continue;
                    }
                }
            }
            self.sync_write(mddev, r, copies[*i].addr, fdata, false);
        }
        for (i, r) in repls {
            self.sync_write(mddev, r, copies[*i].addr, fdata, true);
        }
        for (s, l) in mismatched {
            mddev.sync.note_mismatch(s, l);
        }
    }

    /// A sync write and its completion (`end_sync_write`,
    /// `handle_write_completed`): an error on a replacement fails it; on
    /// a member it is recorded as bad blocks, or fails the member.
    fn sync_write(&self, mddev: &Mddev, r: &Arc<Rdev>, addr: u64, buf: &[u8], repl: bool) {
        if r.faulty() {
            return;
        }
        let nr = (buf.len() / 512) as u64;
        r.nr_pending.fetch_add(1, Ordering::AcqRel);
        match r.write_data(buf, addr) {
            Ok(()) => {
                if is_badblock(r, addr, nr).is_some() {
                    mddev.rdev_clear_badblocks(r, addr, nr);
                }
            }
            Err(_) if repl => md_error_io(mddev, r, mddev.fail_last_dev()),
            Err(_) => {
                r.flags.set(rf::WRITE_ERROR_SEEN);
                if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
                    mddev.recovery.set(rec::NEEDED);
                }
                if !set_badblocks(mddev, r, addr, nr) {
                    md_error_io(mddev, r, mddev.fail_last_dev());
                }
                mddev.sb_flags.set(sbf::CHANGE_CLEAN);
            }
        }
        rdev_dec_pending(mddev, r);
    }

    /// Recovery of the member sectors from `sector_nr`: for every member
    /// being rebuilt or replaced, the array sector of its block and a
    /// copy to read it from.
    fn recovery_step(
        &self,
        mddev: &Mddev,
        sector_nr: u64,
        max_sector: u64,
        fullsync: bool,
        chunks_skipped: &mut i64,
    ) -> Result<Step, Errno> {
        let bitmap = mddev.bitmap();
        let mut max_sync = MAX_SYNC;
        let mut jobs: Vec<Job> = Vec::new();
        let mirrors: Vec<super::Mirror> = self.mirrors.read().clone();
        let mut raised = false;
        for (i, mirror) in mirrors.iter().enumerate() {
            let mrdev = mirror.rdev.clone();
            let mreplace = mirror.replacement.clone().filter(|r| !r.faulty());
            let rebuild = mrdev.as_ref().is_some_and(|r| !r.faulty() && !r.in_sync());
            if !rebuild && mreplace.is_none() {
                continue;
            }
            let sect = self.geo.find_virt(sector_nr, i);
            if sect >= mddev.sync.resync_max_sectors() {
                // The last stripe is not complete: not this sector.
                continue;
            }
            let (must_sync, sync_blocks) = match &bitmap {
                Some(b) => b.start_sync(mddev, sect, true),
                None => (true, 1024),
            };
            max_sync = max_sync.min(sync_blocks);
            if !must_sync && mreplace.is_none() && !fullsync {
                // Skip these, but do not assume there is never anything
                // to do here.
                *chunks_skipped = -1;
                continue;
            }
            if !raised {
                let interrupted = || mddev.recovery.test(rec::INTR);
                if !self.barrier.raise_barrier(false, &interrupted) {
                    return Ok(Step::Interrupted);
                }
                raised = true;
            }
            let still_degraded = mirrors
                .iter()
                .any(|m| m.rdev.as_ref().is_none_or(|r| r.faulty()));
            // While a resync is owed (an unclean array rebuilding a
            // member), the recovery leaves the bitmap's record of it, as
            // RAID1's does here (Linux clears it).
            let resync_owed = mddev.recovery_cp() != crate::format::MAX_SECTOR;
            if let Some(b) = &bitmap {
                b.start_sync(mddev, sect, still_degraded || resync_owed);
            }
            let copies = self.geo.find_phys(sect);
            let Some(k) = copies.iter().position(|c| c.devnum == i) else {
                continue;
            };
            let to = copies[k].addr;
            let mut any_working = false;
            let mut source: Option<(Arc<Rdev>, usize, u64)> = None;
            for c in &copies {
                let Some(r) = mirrors[c.devnum].rdev.as_ref().filter(|r| r.in_sync()) else {
                    continue;
                };
                any_working = true;
                if let Some((first_bad, bad, _)) = is_badblock(r, c.addr, max_sync) {
                    if first_bad > c.addr {
                        max_sync = first_bad - c.addr;
                    } else {
                        max_sync = max_sync.min(bad - (c.addr - first_bad));
                        continue;
                    }
                }
                source = Some((r.clone(), c.devnum, c.addr));
                break;
            }
            let Some((src, src_dev, from)) = source else {
                // Cannot recover: record bad blocks, or abort.
                if any_working {
                    if let Some(r) = mrdev.as_ref().filter(|r| !r.in_sync()) {
                        if !set_badblocks(mddev, r, to, max_sync) {
                            any_working = false;
                        }
                    }
                    if let Some(r) = &mreplace {
                        if !set_badblocks(mddev, r, to, max_sync) {
                            any_working = false;
                        }
                    }
                }
                if !any_working {
                    if !mddev.recovery.test_and_set(rec::INTR) {
                        mddev.log().warn(format!(
                            "md/raid10:{}: insufficient working devices for recovery.",
                            mddev.name
                        ));
                    }
                    self.mirrors.write()[i].recovery_disabled = mddev.recovery_disabled();
                }
                break;
            };
            let mut targets = Vec::new();
            if let Some(r) = mrdev.filter(|r| !r.in_sync()) {
                targets.push((r, false));
            }
            if let Some(r) = mreplace {
                targets.push((r, true));
            }
            jobs.push(Job {
                src,
                src_dev,
                from,
                targets,
                dev: i,
                to,
            });
        }
        if jobs.is_empty() {
            if raised {
                self.barrier.lower_barrier();
            }
            return Ok(Step::GiveUp(max_sync));
        }
        let nr = Self::step_len(sector_nr, max_sector, max_sync);
        for job in &jobs {
            self.recover_block(mddev, job, nr);
        }
        mddev.sync.add_io(nr);
        self.barrier.lower_barrier();
        Ok(Step::Done(nr))
    }

    /// `recovery_request_write`: read the block from the source and write
    /// it to the targets; a failed read is retried page by page
    /// (`fix_recovery_read_error`).
    fn recover_block(&self, mddev: &Mddev, job: &Job, nr: u64) {
        let mut buf = vec![0u8; (nr * 512) as usize];
        job.src.nr_pending.fetch_add(1, Ordering::AcqRel);
        let ok = job.src.read_data(&mut buf, job.from).is_ok();
        rdev_dec_pending(mddev, &job.src);
        if !ok {
            job.src.add_corrected_errors(nr as u32);
            self.fix_recovery_read_error(mddev, job, &mut buf);
            return;
        }
        for (r, repl) in &job.targets {
            self.sync_write(mddev, r, job.to, &buf, *repl);
        }
    }

    /// `fix_recovery_read_error`: page by page, read the source and write
    /// the target; what cannot be read becomes bad blocks on both, and
    /// if the target cannot take them the recovery is aborted.
    fn fix_recovery_read_error(&self, mddev: &Mddev, job: &Job, buf: &mut [u8]) {
        let _ = job.src_dev;
        let sectors = (buf.len() / 512) as u64;
        let mut sect = 0u64;
        while sect < sectors {
            let s = (sectors - sect).min(PAGE_SECTORS);
            let page = &mut buf[(sect * 512) as usize..((sect + s) * 512) as usize];
            let mut bad_on: Option<(Arc<Rdev>, u64)> = None;
            if job.src.read_data(page, job.from + sect).is_ok() {
                for (r, _) in &job.targets {
                    if r.write_data(page, job.to + sect).is_err() {
                        r.flags.set(rf::WRITE_ERROR_SEEN);
                        if !r.flags.test_and_set(rf::WANT_REPLACEMENT) {
                            mddev.recovery.set(rec::NEEDED);
                        }
                        bad_on = Some((r.clone(), job.to + sect));
                    }
                }
            } else {
                bad_on = Some((job.src.clone(), job.from + sect));
            }
            if let Some((r, addr)) = bad_on {
                // It really is bad: no loss if it cannot be recorded.
                set_badblocks(mddev, &r, addr, s);
                for (t, _) in &job.targets {
                    if Arc::ptr_eq(t, &r) {
                        continue;
                    }
                    if !set_badblocks(mddev, t, job.to + sect, s) {
                        mddev.log().info(format!(
                            "md/raid10:{}: recovery aborted due to read error",
                            mddev.name
                        ));
                        self.mirrors.write()[job.dev].recovery_disabled = mddev.recovery_disabled();
                        mddev.recovery.set(rec::INTR);
                        return;
                    }
                }
            }
            sect += s;
        }
    }
}

/// What one try at a sync step came to.
enum Step {
    /// I/O done over this many sectors.
    Done(u64),
    /// The bitmap says these sectors are clean.
    Skip(u64),
    /// Nothing to read or nowhere to write: skip at most this many.
    GiveUp(u64),
    /// The sync was interrupted while it waited for normal I/O.
    Interrupted,
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
