//! Superblock updates (`md_update_sb`), the clean/dirty protocol around
//! writes (`md_write_start`/`md_write_end`), and `md_error`.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use super::superblock::{self, SyncView};
use super::{Config, Errno, Mddev, Rdev, ro};
use crate::format::MAX_SECTOR;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `md_update_sb`: bump (or roll back) events, rebuild every member's
/// superblock and write them, bitmap superblock first.  Superblocks are
/// durable when this returns.  Nothing is written to a read-only array.
pub fn md_update_sb(mddev: &Arc<Mddev>, cfg: &mut Config, force_change: bool) {
    let mut force = force_change;
    if !mddev.is_rdwr() {
        if force {
            mddev.sb_flags.set(sbf::CHANGE_DEVS);
        }
        return;
    }
    loop {
        // Recovering members' checkpoints.
        if mddev.recovery.test(rec::RUNNING) && mddev.recovery.test(rec::RECOVER) {
            let done = mddev.sync.curr_resync_completed();
            for r in &cfg.rdevs {
                if r.raid_disk() >= 0
                    && !r.in_sync()
                    && !r.flags.test(rf::JOURNAL)
                    && done > r.recovery_offset()
                {
                    r.set_recovery_offset(done);
                }
            }
        }
        if !cfg.persistent {
            mddev
                .sb_flags
                .clear(sbf::CHANGE_CLEAN | sbf::CHANGE_DEVS | sbf::CHANGE_PENDING);
            // No bad-block log records a bad block: the member that got
            // one is failed instead, as md does.
            for r in cfg.rdevs.clone() {
                let changed = std::mem::take(&mut r.badblocks.lock().changed);
                if changed {
                    r.badblocks.lock().ack_all();
                    md_error(mddev, cfg, &r);
                }
                r.flags.clear(rf::BLOCKED | rf::BLOCKED_BAD_BLOCKS);
            }
            let _st = mddev.lock.lock();
            mddev.sb_wait.notify_all();
            return;
        }
        let (sync_req, view) = {
            let st = mddev.lock.lock();
            cfg.utime = now_secs();
            let mut nospares = false;
            if mddev.sb_flags.test_and_clear(sbf::CHANGE_DEVS) {
                force = true;
            }
            if mddev.sb_flags.test_and_clear(sbf::CHANGE_CLEAN) {
                nospares = true;
            }
            if force || mddev.degraded() > 0 {
                nospares = false;
            }
            let in_sync = st.in_sync;
            if nospares
                && in_sync
                && mddev.recovery_cp() == MAX_SECTOR
                && cfg.can_decrease_events
                && cfg.events != 1
            {
                cfg.events -= 1;
                cfg.can_decrease_events = false;
            } else {
                cfg.events = cfg.events.wrapping_add(1);
                cfg.can_decrease_events = nospares;
            }
            // The kernel's WARN_ON: the 64-bit counter wraps only when a
            // superblock said 2^64 - 1.
            if cfg.events == 0 {
                mddev.log().warn(format!(
                    "md: {}: the events counter wrapped to 0",
                    mddev.name
                ));
            }
            // The I/O path reads events lock-free (the bitmap's
            // events_cleared follows it).
            mddev.publish(cfg);
            for r in &cfg.rdevs {
                if r.faulty() {
                    r.flags.set(rf::FAULT_RECORDED);
                }
            }
            log::debug!(
                "md: updating {} RAID superblock on device (in sync {}) events {} nospares {nospares}",
                mddev.name,
                in_sync as u8,
                cfg.events
            );
            let view = SyncView {
                in_sync,
                recovery_cp: mddev.recovery_cp(),
                has_bitmap: mddev.bitmap().is_some(),
                rdevs: cfg.rdevs.clone(),
            };
            // sync_sbs
            for r in &cfg.rdevs {
                let mut s = r.sb.lock();
                if s.sb_events == cfg.events
                    || (nospares && r.raid_disk() < 0 && s.sb_events.wrapping_add(1) == cfg.events)
                {
                    s.sb_loaded = 2;
                } else {
                    drop(s);
                    superblock::sync_super(cfg, &view, r);
                    r.sb.lock().sb_loaded = 1;
                }
            }
            (in_sync, view)
        };
        let _ = view;
        // Write: bitmap superblock first, then every non-faulty member.
        if let Some(b) = mddev.bitmap() {
            b.update_sb(mddev, cfg);
        }
        for r in cfg.rdevs.clone() {
            if r.sb.lock().sb_loaded != 1 || r.faulty() {
                continue;
            }
            match write_sb(mddev, &r) {
                Ok(()) => r.sb.lock().sb_events = cfg.events,
                Err(e) => {
                    mddev
                        .log()
                        .err(format!("md: super_written gets error={}", -e.raw()));
                    // A member it failed sets CHANGE_DEVS, so the
                    // survivors are rewritten below; the last working
                    // leg is not failed and nothing is rewritten.
                    md_error(mddev, cfg, &r);
                }
            }
        }
        let in_sync_now = mddev.lock.lock().in_sync;
        if in_sync_now != sync_req
            || !mddev
                .sb_flags
                .clear_unless(sbf::CHANGE_PENDING, sbf::CHANGE_DEVS | sbf::CHANGE_CLEAN)
        {
            continue;
        }
        break;
    }
    {
        let _st = mddev.lock.lock();
        mddev.sb_wait.notify_all();
    }
    if mddev.recovery.test(rec::RUNNING) {
        mddev.notify("sync_completed");
    }
    for r in &cfg.rdevs {
        if r.flags.test_and_clear(rf::FAULT_RECORDED) {
            r.flags.clear(rf::BLOCKED);
            // Now it can leave its slot.  md_error runs on the I/O path
            // here, not in the md thread as in raid1d, so it may have
            // come after this pass looked at the spares (and found it
            // still blocked): let the next pass look again, as md_error
            // asked (it does not on a broken array).
            if r.raid_disk() >= 0 && !mddev.flags.test(mf::BROKEN) {
                mddev.recovery.set(rec::NEEDED);
                mddev.wakeup();
            }
        }
        // ack_all_badblocks: only a list that has not changed since it
        // was written is on disk.
        let mut bb = r.badblocks.lock();
        if !bb.changed {
            bb.ack_all();
        }
        r.flags.clear(rf::BLOCKED_BAD_BLOCKS);
    }
    mddev.notify("array_state");
}

/// `md_super_write` + wait: the superblock (and a changed bad-block log)
/// of one member, durable.  As REQ_PREFLUSH | REQ_FUA: every write the
/// member completed before is made durable first (a superblock saying
/// clean must not reach the disk before the data it vouches for), then
/// the superblock itself.
fn write_sb(mddev: &Mddev, r: &Rdev) -> Result<(), Errno> {
    let Some(bytes) = superblock::image_bytes(r) else {
        return Ok(());
    };
    // The log is copied (and counts as written) before anything goes
    // out, as super_1_sync does: the bad blocks it holds are acknowledged
    // at the end of the update even if the write fails.
    let bblog = badblocks_image(r).map_err(|_| Errno::EIO)?;
    let io = |e: std::io::Error| Errno::from_io(&e);
    r.disk.flush().map_err(io)?;
    r.disk
        .write_at_durable(&bytes, r.sb_start() * 512)
        .map_err(io)?;
    if let Some((buf, at)) = bblog {
        r.disk.write_at_durable(&buf, at * 512).map_err(io)?;
    }
    let _ = mddev;
    Ok(())
}

/// The member's bad-block log area and where it goes, when the list
/// changed since it was last written; the list then counts as unchanged.
fn badblocks_image(r: &Rdev) -> Result<Option<(Vec<u8>, u64)>, crate::format::FormatError> {
    let mut bb = r.badblocks.lock();
    if !bb.changed {
        return Ok(None);
    }
    let (off, size) = match &r.sb.lock().image {
        Some(super::rdev::SbImage::V1(_, sb)) if sb.bblog_offset != 0 && sb.bblog_size > 0 => {
            (sb.bblog_offset as i64, sb.bblog_size as usize)
        }
        _ => return Ok(None),
    };
    let Some(at) = r.sb_start().checked_add_signed(off) else {
        return Ok(None);
    };
    let shift = bb.shift.unwrap_or(0);
    let buf = crate::format::badblocks::serialize(&bb.ranges(), shift, size * 512)?;
    bb.changed = false;
    Ok(Some((buf, at)))
}

/// `md_write_start`: before a write, mark the array dirty and wait until
/// the dirty superblocks are on disk.  Switches read-auto to read-write.
pub fn md_write_start(mddev: &Mddev) -> Result<(), Errno> {
    let mut did_change = false;
    // Switch to read-write and mark dirty under one hold of the lock, so
    // that md's thread never writes a superblock in between: the kernel's
    // writer gets there before the thread it woke runs, and the first
    // update records the array dirty (one event, not two).
    let mut st = mddev.lock.lock();
    match mddev.ro() {
        ro::RDONLY => return Err(Errno::EROFS),
        ro::AUTO_READ => {
            mddev.set_ro(ro::RDWR);
            mddev.recovery.set(rec::NEEDED);
            mddev.wakeup();
            did_change = true;
        }
        _ => {}
    }
    st.writes_pending += 1;
    if st.safemode == 1 {
        st.safemode = 0;
    }
    if st.in_sync {
        st.in_sync = false;
        mddev.sb_flags.set(sbf::CHANGE_CLEAN | sbf::CHANGE_PENDING);
        mddev.wakeup();
        did_change = true;
    }
    if did_change {
        drop(st);
        mddev.notify("array_state");
        st = mddev.lock.lock();
    }
    while mddev.sb_flags.test(sbf::CHANGE_PENDING) {
        if !mddev.is_running() {
            st.writes_pending -= 1;
            return Err(Errno::EIO);
        }
        mddev.sb_wait.wait_for(&mut st, Duration::from_millis(100));
    }
    Ok(())
}

/// `md_write_inc`: one more write in flight, counted by a writer that
/// has passed `md_write_start` (the array is dirty on disk already).  A
/// write to write-mostly members that goes on after the caller is
/// answered holds one, so the array is not marked clean under it.
pub fn md_write_inc(mddev: &Mddev) {
    mddev.lock.lock().writes_pending += 1;
}

/// `md_write_end`: arm the safe-mode timer once no write is in flight.
pub fn md_write_end(mddev: &Mddev, safemode_delay: u64) {
    let mut st = mddev.lock.lock();
    st.writes_pending -= 1;
    if st.safemode == 2 {
        drop(st);
        mddev.wakeup();
        return;
    }
    let idle = st.writes_pending == 0;
    if safemode_delay > 0 {
        // mod_timer(roundup(jiffies, delay) + delay): the rounding makes
        // the writes of one period arm the same expiry, so most writes
        // change nothing.  The md thread is woken only for an expiry
        // earlier than the one it waits for; it finds a later one when
        // it wakes.
        let j = mddev.md.jiffies();
        let deadline = mddev
            .md
            .instant_at(j.div_ceil(safemode_delay) * safemode_delay + safemode_delay);
        let earlier = st.safemode_deadline.is_none_or(|d| deadline < d);
        st.safemode_deadline = Some(deadline);
        drop(st);
        if earlier {
            mddev.thread.wakeup_at(deadline);
        }
    } else {
        drop(st);
    }
    if idle {
        // drain_writes waits for this.
        mddev.sb_wait.notify_all();
    }
}

/// `md_error`: a member failed an I/O.
pub fn md_error(mddev: &Mddev, cfg: &Config, rdev: &Arc<Rdev>) {
    let _ = cfg;
    md_error_io(mddev, rdev, mddev.fail_last_dev());
}

/// `rdev_dec_pending`: one I/O on the member done.  When it was the last
/// one on a failed member, md's thread is woken to take it out of its slot
/// (`remove_and_add_spares` could not while I/O was in flight).
pub fn rdev_dec_pending(mddev: &Mddev, rdev: &Rdev) {
    let faulty = rdev.faulty();
    if rdev.nr_pending.fetch_sub(1, Ordering::AcqRel) == 1 && faulty {
        mddev.recovery.set(rec::NEEDED);
        mddev.wakeup();
    }
}

/// `md_error` without the reconfig mutex (from the I/O path): the
/// personality reads `fail_last_dev` from its own copy.
pub fn md_error_io(mddev: &Mddev, rdev: &Arc<Rdev>, fail_last_dev: bool) {
    // One failure at a time per member: the I/Os that fail on it
    // together wait for the first to fail it, then find it failed.
    let _handling = rdev.error_lock.lock();
    if rdev.faulty() {
        return;
    }
    let Some(p) = mddev.pers() else { return };
    note_partly_rebuilt(rdev);
    bitmap_member_leaves(mddev, rdev);
    p.error_handler(mddev, rdev, fail_last_dev);
    finish_error(mddev, rdev);
}

/// A member failing while it is rebuilt from nothing (in a slot, not in
/// sync, and not catching up in the slot it held, which is what a member
/// taken back on the bitmap's word does) holds only what the rebuild
/// reached.  Once out of its slot it must not come back on the bitmap's
/// word: the bitmap records what it missed while away, not what it never
/// had.  So `remove_and_add_spares` keeps no slot for it.  (Linux 6.1
/// keeps the slot, and a `re-add` after any sync has completed in the
/// meantime rebuilds only the bitmap's chunks.)  The personality's error
/// handler clears In_sync, so this is decided before it runs.
fn note_partly_rebuilt(rdev: &Rdev) {
    if rdev.raid_disk() >= 0
        && !rdev.in_sync()
        && rdev.saved_raid_disk() != rdev.raid_disk()
        && !rdev.flags.test(rf::JOURNAL)
    {
        rdev.flags.set(rf::PARTLY_REBUILT);
    }
}

/// A member in a slot fails: the bitmap keeps the chunks whose writes
/// it may not hold durably (`Bitmap::member_leaves`).  Before the
/// personality marks it faulty, so that no page write leaves it out
/// unnoticed.
fn bitmap_member_leaves(mddev: &Mddev, rdev: &Rdev) {
    if rdev.raid_disk() < 0 || rdev.flags.test(rf::JOURNAL) {
        return;
    }
    if let Some(b) = mddev.bitmap() {
        b.member_leaves();
    }
}

fn finish_error(mddev: &Mddev, rdev: &Rdev) {
    // Without redundancy there is nothing to recover: the personality
    // marked the array broken, and that is all.
    if mddev.pers().is_some_and(|p| !p.personality().redundant()) {
        return;
    }
    if mddev.degraded() > 0 && !mddev.flags.test(mf::BROKEN) {
        mddev.recovery.set(rec::RECOVER);
    }
    mddev.observer().notify_rdev(mddev, rdev, "state");
    mddev.recovery.set(rec::INTR);
    if !mddev.flags.test(mf::BROKEN) {
        mddev.recovery.set(rec::NEEDED);
        mddev.wakeup();
    }
}
