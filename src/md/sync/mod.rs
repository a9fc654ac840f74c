//! md's side of syncing (md.c): choosing what to run
//! (`md_choose_sync_action`, `remove_and_add_spares`), starting the worker
//! (`md_start_sync`), collecting the result (`md_reap_sync_thread`) and
//! stopping it (`stop_sync_thread`).  The worker thread that runs a sync
//! (`md_do_sync`) is `worker`.

pub mod worker;

pub use worker::{RESYNC_ACTIVE, RESYNC_DELAYED, RESYNC_NONE, RESYNC_YIELDED, SyncState};

use std::sync::Arc;

use super::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use super::{Config, Mddev, Rdev, update};
use crate::format::MAX_SECTOR;
use worker::SyncEvent;

/// `remove_and_add_spares`: take failed members out of their slots, give
/// spares a slot.  Returns the number of members that will recover.
pub fn remove_and_add_spares(mddev: &Mddev, cfg: &mut Config, this: Option<&Arc<Rdev>>) -> u32 {
    let Some(pers) = mddev.pers() else { return 0 };
    if this.is_some() && mddev.recovery.test(rec::RUNNING) {
        return 0;
    }
    let is_this = |r: &Arc<Rdev>| this.is_none_or(|t| Arc::ptr_eq(t, r));
    let mut removed = 0;
    for r in cfg.rdevs.clone() {
        if !is_this(&r) || !removeable(&r) {
            continue;
        }
        if pers.hot_remove_disk(mddev, &r).is_ok() {
            unlink_rdev(mddev, &r);
            // One that failed while rebuilt from nothing keeps no slot to
            // come back to (see update::note_partly_rebuilt).
            let saved = if r.flags.test(rf::PARTLY_REBUILT) {
                -1
            } else {
                r.raid_disk()
            };
            r.set_saved_raid_disk(saved);
            r.set_raid_disk(-1);
            removed += 1;
        }
    }
    if removed > 0 {
        mddev.notify("degraded");
    }
    let mut spares = 0;
    if !(this.is_some() && removed > 0) {
        for r in cfg.rdevs.clone() {
            if !is_this(&r) {
                continue;
            }
            if r.raid_disk() >= 0 && !r.in_sync() && !r.flags.test(rf::JOURNAL) && !r.faulty() {
                spares += 1;
            }
            if !addable(mddev, &r) {
                continue;
            }
            r.set_recovery_offset(0);
            r.flags.clear(rf::PARTLY_REBUILT);
            if pers.hot_add_disk(mddev, &r).is_ok() {
                link_rdev(mddev, &r);
                spares += 1;
                mddev.sb_flags.set(sbf::CHANGE_DEVS);
                mddev.observer().notify_rdev(mddev, &r, "slot");
            }
        }
    }
    if removed > 0 {
        mddev.sb_flags.set(sbf::CHANGE_DEVS);
    }
    mddev.publish(cfg);
    spares
}

/// `sysfs_link_rdev`: `rdN` for a member in slot N; a replacement (which
/// shares its slot with the member it replaces) and a journal get none.
pub(crate) fn link_rdev(mddev: &Mddev, r: &Rdev) {
    if !r.flags.test(rf::REPLACEMENT) && !r.flags.test(rf::JOURNAL) {
        mddev.observer().slot_link(mddev, r.raid_disk(), Some(r));
    }
}

/// `sysfs_unlink_rdev`: a replacement leaves the slot's `rdN` alone.
fn unlink_rdev(mddev: &Mddev, r: &Rdev) {
    if !r.flags.test(rf::REPLACEMENT) {
        mddev.observer().slot_link(mddev, r.raid_disk(), None);
    }
}

/// `rdev_removeable`.
fn removeable(r: &Rdev) -> bool {
    if r.raid_disk() < 0 || r.nr_pending.load(std::sync::atomic::Ordering::Acquire) > 0 {
        return false;
    }
    if r.flags.test(rf::BLOCKED) {
        return false;
    }
    if r.faulty() {
        return true;
    }
    if r.flags.test(rf::JOURNAL) {
        return false;
    }
    !r.in_sync()
}

/// `rdev_addable`.
fn addable(mddev: &Mddev, r: &Rdev) -> bool {
    if r.raid_disk() >= 0 || r.faulty() {
        return false;
    }
    if mddev.is_rdwr() {
        return true;
    }
    r.saved_raid_disk() >= 0 && !r.flags.test(rf::BITMAP_SYNC)
}

/// `md_choose_sync_action`: true when there is something to run.
fn choose_sync_action(mddev: &Mddev, cfg: &mut Config) -> (bool, u32) {
    let spares = remove_and_add_spares(mddev, cfg, None);
    let r = &mddev.recovery;
    if cfg.sync_held_at == Some(cfg.recovery_disabled) && mddev.flags.test(mf::BROKEN) {
        // Failed members still leave their slots (above); no pass runs.
        return (false, 0);
    }
    cfg.sync_held_at = None;
    if spares > 0 {
        r.clear(rec::SYNC | rec::CHECK | rec::REQUESTED);
        r.set(rec::RECOVER);
        return (true, spares);
    }
    if mddev.recovery_cp() < MAX_SECTOR {
        r.set(rec::SYNC);
        r.clear(rec::RECOVER);
        return (true, 0);
    }
    (r.test(rec::SYNC), 0)
}

/// `md_start_sync`, run by the md thread with the reconfig mutex held
/// and RUNNING set.
pub fn md_start_sync(mddev: &Arc<Mddev>, cfg: &mut Config) {
    let r = &mddev.recovery;
    let run = if !mddev.is_rdwr() {
        remove_and_add_spares(mddev, cfg, None);
        false
    } else {
        let (go, spares) = choose_sync_action(mddev, cfg);
        if go && spares > 0 {
            if let Some(b) = mddev.bitmap() {
                b.write_all();
            }
        }
        go
    };
    if run && mddev.pers().is_some_and(|p| p.personality().redundant()) {
        mddev.sync.start_worker(mddev);
        if mddev.sync.kick() {
            mddev.notify("sync_action");
            return;
        }
        mddev
            .log()
            .warn(format!("{}: could not start resync thread...", mddev.name));
    }
    r.clear(rec::SYNC | rec::RESHAPE | rec::REQUESTED | rec::CHECK | rec::RUNNING);
    if r.test_and_clear(rec::RECOVER) {
        mddev.notify("sync_action");
    }
}

/// `md_reap_sync_thread`: the worker finished; collect the result.
pub fn md_reap_sync_thread(mddev: &Arc<Mddev>, cfg: &mut Config) {
    let r = &mddev.recovery;
    for ev in mddev.sync.drain_events() {
        let SyncEvent::Finished { .. } = ev;
    }
    if let Some(p) = mddev.pers() {
        if !r.test(rec::INTR)
            && !r.test(rec::REQUESTED)
            && mddev.degraded() != cfg.raid_disks
            && p.spare_active(mddev) > 0
        {
            mddev.notify("degraded");
            mddev.sb_flags.set(sbf::CHANGE_DEVS);
        }
    }
    if mddev.degraded() == 0 {
        for rd in &cfg.rdevs {
            rd.set_saved_raid_disk(-1);
        }
    }
    update::md_update_sb(mddev, cfg, true);
    r.clear(rec::RUNNING | rec::DONE | rec::SYNC | rec::RESHAPE | rec::REQUESTED | rec::CHECK);
    // A pass cut short on an array that lost the last copy of something
    // (broken: a member md would not fail cannot be read or written) is
    // not started again: it would end the same way, hundreds of times a
    // second.  Binding a device asks again.
    if r.test(rec::INTR) && mddev.flags.test(mf::BROKEN) {
        cfg.sync_held_at = Some(cfg.recovery_disabled);
    }
    r.set(rec::NEEDED);
    mddev.notify("sync_completed");
    mddev.notify("sync_action");
    mddev.notify("array_state");
    for rd in &cfg.rdevs {
        mddev.observer().notify_rdev(mddev, rd, "state");
    }
}

/// Before `sync_action` takes a new action: let the md thread act on a
/// pending MD_RECOVERY_NEEDED (start what was asked, or find nothing to
/// do).  The kernel's md thread does so at once, and a write that still
/// finds NEEDED set gets EBUSY (Linux 6.1); waiting here (at most a
/// second, without the reconfig mutex the thread needs) keeps `echo idle;
/// echo check` from racing the thread, while `echo check; echo check`
/// still finds the first check running.
pub fn settle_needed(mddev: &Mddev) {
    let r = &mddev.recovery;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while r.test(rec::NEEDED)
        && !r.test(rec::RUNNING)
        && mddev.is_running()
        && std::time::Instant::now() < deadline
    {
        mddev.wakeup();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `stop_sync_thread`: interrupt a running sync, wait for the worker, reap.
pub fn stop_sync_thread(mddev: &Arc<Mddev>, cfg: &mut Config) {
    let r = &mddev.recovery;
    if !r.test(rec::RUNNING) {
        return;
    }
    r.set(rec::INTR);
    mddev.sync.wake();
    mddev.sync.wait_idle();
    if r.test(rec::RUNNING) {
        md_reap_sync_thread(mddev, cfg);
    }
}
