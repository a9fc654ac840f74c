//! Running and stopping arrays: the kernel's `analyze_sbs`, `md_run`,
//! `do_md_run`, `do_md_stop`, `md_set_readonly`, `restart_array`,
//! `set_in_sync`.  Callers hold the reconfig mutex (`Mddev::cfg`) and pass
//! its guard in.

use std::sync::Arc;

use super::bind::kick_rdev;
use super::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use super::rdev::{Rdev, SbImage};
use super::superblock::{self, ArrayView};
use super::{Config, DEFAULT_SAFEMODE_DELAY, Errno, Mddev, ro};
use crate::disk::DiskKind;
use crate::format::MAX_SECTOR;
use crate::md::bitmap::Bitmap;

/// `analyze_sbs`: find the freshest superblock, take the array from it,
/// kick members that are inconsistent or too old, assign roles.
fn analyze_sbs(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    let log = mddev.log();
    let version = cfg.metadata.ok_or(Errno::EINVAL)?;
    let mut freshest: Option<Arc<Rdev>> = None;
    for rdev in cfg.rdevs.clone() {
        match superblock::load_super(&rdev, freshest.as_deref(), version, log) {
            Ok(true) => freshest = Some(rdev),
            Ok(false) => {}
            Err(_) => {
                log.warn(format!(
                    "md: fatal superblock inconsistency in {} -- removing from array",
                    rdev.name
                ));
                kick_rdev(mddev, cfg, &rdev);
            }
        }
    }
    let Some(freshest) = freshest else {
        log.warn("md: cannot find a valid disk");
        return Err(Errno::EINVAL);
    };
    let view = ArrayView {
        running: false,
        bitmap_events_cleared: None,
        frozen: mddev.recovery.test(rec::FROZEN),
    };
    superblock::validate_super(cfg, &view, None, &freshest, mddev)?;
    for (i, rdev) in cfg.rdevs.clone().into_iter().enumerate() {
        if cfg.max_disks > 0
            && (rdev.desc_nr() as i64 >= cfg.max_disks as i64 || i as u32 > cfg.max_disks)
        {
            log.warn(format!(
                "md: {}: {}: only {} devices permitted",
                mddev.name, rdev.name, cfg.max_disks
            ));
            kick_rdev(mddev, cfg, &rdev);
            continue;
        }
        if !Arc::ptr_eq(&rdev, &freshest)
            && superblock::validate_super(cfg, &view, Some(&freshest), &rdev, mddev).is_err()
        {
            log.warn(format!("md: kicking non-fresh {} from array!", rdev.name));
            kick_rdev(mddev, cfg, &rdev);
            continue;
        }
        let limit = cfg.raid_disks as i64 - (cfg.delta_disks.min(0)) as i64;
        if rdev.raid_disk() as i64 >= limit && !rdev.flags.test(rf::JOURNAL) {
            rdev.set_raid_disk(-1);
            rdev.flags.clear(rf::IN_SYNC);
        }
    }
    Ok(())
}

/// `md_run`.
pub fn md_run(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    let log = mddev.log();
    if cfg.rdevs.is_empty() {
        return Err(Errno::EINVAL);
    }
    if mddev.is_running() {
        return Err(Errno::EBUSY);
    }
    if cfg.raid_disks == 0 {
        if !cfg.persistent {
            return Err(Errno::EINVAL);
        }
        if analyze_sbs(mddev, cfg).is_err() {
            return Err(Errno::EINVAL);
        }
    }
    // The geometry and bitmap offset the superblocks gave are what the
    // personality, the bitmap and the I/O path read from now on.
    mddev.publish(cfg);
    // An unclean array: a member that was being rebuilt may differ from
    // the others wherever a write was cut short in the part it had
    // rebuilt, which no resync looks at (a RAID1 with one in-sync mirror
    // owes none), so it is rebuilt from the start.  (Linux resumes at its
    // recovery_offset, and keeps the difference.)
    if mddev.recovery_cp() != MAX_SECTOR {
        for r in &cfg.rdevs {
            if r.raid_disk() >= 0 && !r.in_sync() && !r.faulty() && !r.flags.test(rf::JOURNAL) {
                r.set_recovery_offset(0);
            }
        }
    }
    for rdev in &cfg.rdevs {
        if rdev.faulty() {
            continue;
        }
        if mddev.ro() != ro::RDONLY && !rdev.disk.writable() {
            mddev.set_ro(ro::RDONLY);
        }
        let (data, sb) = (rdev.data_offset(), rdev.sb_start());
        if data < sb {
            if cfg.dev_sectors > 0 && data + cfg.dev_sectors > sb {
                log.warn(format!("md: {}: data overlaps metadata", mddev.name));
                return Err(Errno::EINVAL);
            }
        } else if sb + rdev.sb_size() as u64 / 512 > data {
            log.warn(format!("md: {}: metadata overlaps data", mddev.name));
            return Err(Errno::EINVAL);
        }
        mddev.observer().notify_rdev(mddev, rdev, "state");
    }
    let Some(pers) = mddev.md.find_pers(cfg.level, &cfg.clevel) else {
        if cfg.level != super::LEVEL_NONE {
            log.warn(format!(
                "md: personality for level {} is not loaded!",
                cfg.level
            ));
        } else {
            log.warn(format!(
                "md: personality for level {} is not loaded!",
                cfg.clevel
            ));
        }
        return Err(Errno::EINVAL);
    };
    if cfg.level != pers.level() {
        cfg.level = pers.level();
        cfg.new_level = pers.level();
    }
    cfg.clevel = pers.name().to_owned();
    if cfg.reshape_position != MAX_SECTOR {
        // No mdfuse personality can reshape.
        return Err(Errno::EINVAL);
    }
    if pers.redundant() {
        warn_same_disk(mddev, cfg);
    }
    mddev.recovery.clear_all();
    mddev.sync.set_resync_max_sectors(cfg.dev_sectors);
    // Every personality's set_limits stacks the logical block size first.
    if let Err(e) = super::superblock::stack_logical_block_size(mddev, cfg) {
        log.warn("md: pers->run() failed ...");
        return Err(e);
    }
    let raid = match pers.run(mddev, cfg) {
        Ok(r) => r,
        Err(e) => {
            log.warn("md: pers->run() failed ...");
            return Err(e);
        }
    };
    if raid.size(cfg.dev_sectors) < mddev.array_sectors() && cfg.external_size {
        log.warn(format!(
            "md: invalid array_size {} > default size {}",
            mddev.array_sectors() / 2,
            raid.size(cfg.dev_sectors) / 2
        ));
        return Err(Errno::EINVAL);
    }
    if !cfg.external_size {
        mddev.set_array_sectors(raid.size(cfg.dev_sectors));
    }
    if pers.redundant() && cfg.bitmap_info.offset != 0 {
        match Bitmap::create(mddev, cfg) {
            Ok(b) => *mddev.bitmap.write() = Some(b),
            Err(e) => {
                log.warn(format!(
                    "{}: failed to create bitmap ({})",
                    mddev.name,
                    -e.raw()
                ));
                raid.free(mddev);
                return Err(e);
            }
        }
    }
    {
        let mut st = mddev.lock.lock();
        st.safemode = 0;
        st.in_sync = true;
        st.safemode_deadline = None;
    }
    if !pers.redundant() && mddev.ro() == ro::AUTO_READ {
        // Nothing to resync: auto-read-only has no purpose.
        mddev.set_ro(ro::RDWR);
    }
    mddev.set_max_corr_read_errors(super::MD_DEFAULT_MAX_CORRECTED_READ_ERRORS);
    mddev.set_safemode_delay(DEFAULT_SAFEMODE_DELAY);
    mddev.set_pers(Some(raid));
    for rdev in &cfg.rdevs {
        if rdev.raid_disk() >= 0 {
            super::sync::link_rdev(mddev, rdev);
        }
    }
    if mddev.degraded() > 0 && mddev.is_rdwr() {
        mddev.recovery.set(rec::RECOVER);
    }
    mddev.recovery.set(rec::NEEDED);
    if mddev.sb_flags.any() {
        super::update::md_update_sb(mddev, cfg, false);
    }
    Ok(())
}

/// The kernel warns when two members share a disk.  For block devices
/// that means partitions of one whole disk; image files are like loop
/// devices, each its own disk, as the kernel sees them.
fn warn_same_disk(mddev: &Mddev, cfg: &Config) {
    let whole = |r: &Rdev| -> Option<String> {
        let DiskKind::BlockDevice { major, minor } = r.disk.kind() else {
            return None;
        };
        let link = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
        if link.join("partition").exists() {
            link.parent().map(|p| p.display().to_string())
        } else {
            Some(link.display().to_string())
        }
    };
    let mut warned = false;
    // The kernel pairs `rdev < rdev2` by address, i.e. in the order they
    // were bound: the member bound first is named first.
    let rdevs: Vec<&Arc<Rdev>> = cfg.rdevs.iter().rev().collect();
    for (i, a) in rdevs.iter().enumerate() {
        for b in rdevs.iter().skip(i + 1) {
            if let (Some(x), Some(y)) = (whole(a), whole(b)) {
                if x == y {
                    mddev.log().warn(format!(
                        "{}: WARNING: {} appears to be on the same physical disk as {}.",
                        mddev.name, a.name, b.name
                    ));
                    warned = true;
                }
            }
        }
    }
    if warned {
        mddev
            .log()
            .warn("True protection against single-disk failure might be compromised.");
    }
}

/// `do_md_run`: md_run, bitmap load, start the md thread, set capacity.
pub fn do_md_run(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    mddev.flags.set(mf::NOT_READY);
    let r = do_md_run_inner(mddev, cfg);
    mddev.flags.clear(mf::NOT_READY);
    r
}

fn do_md_run_inner(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    md_run(mddev, cfg)?;
    if let Some(b) = mddev.bitmap() {
        if let Err(e) = b.load(mddev, cfg) {
            mddev.log().warn(format!(
                "{}: bitmap initialisation failed: {}",
                mddev.name,
                -e.raw()
            ));
            *mddev.bitmap.write() = None;
            teardown(mddev, cfg);
            return Err(e);
        }
    }
    mddev.thread.start(mddev);
    let sectors = mddev.array_sectors();
    // set_capacity_and_notify says nothing when the size stays (an
    // array of no size, such as a RAID1 built without component_size).
    if sectors != 0 {
        mddev.log().info(format!(
            "{}: detected capacity change from 0 to {sectors}",
            mddev.name
        ));
    }
    mddev.observer().running_changed(mddev);
    mddev.notify("array_state");
    mddev.notify("sync_action");
    mddev.notify("degraded");
    mddev.wakeup();
    Ok(())
}

/// Undo a half-started run: drop the personality without writing anything.
fn teardown(mddev: &Arc<Mddev>, _cfg: &mut Config) {
    if let Some(p) = mddev.pers() {
        p.free(mddev);
    }
    mddev.set_pers(None);
}

/// `restart_array`: read-only (or auto-read-only) to read-write.
pub fn restart_array(mddev: &Mddev, cfg: &Config) -> Result<(), Errno> {
    if cfg.rdevs.is_empty() {
        return Err(Errno::ENXIO);
    }
    if !mddev.is_running() {
        return Err(Errno::EINVAL);
    }
    if mddev.is_rdwr() {
        return Err(Errno::EBUSY);
    }
    if cfg.rdevs.iter().any(|r| !r.disk.writable()) {
        return Err(Errno::EROFS);
    }
    mddev.lock.lock().safemode = 0;
    mddev.set_ro(ro::RDWR);
    mddev.recovery.set(rec::NEEDED);
    mddev.wakeup();
    mddev.notify("array_state");
    Ok(())
}

/// `set_in_sync`: mark clean if no write is in flight.  Returns in_sync.
pub fn set_in_sync(mddev: &Mddev) -> bool {
    let mut st = mddev.lock.lock();
    let mut changed = false;
    if !st.in_sync && st.writes_pending == 0 {
        st.in_sync = true;
        mddev.sb_flags.set(sbf::CHANGE_CLEAN);
        changed = true;
    }
    if st.safemode == 1 {
        st.safemode = 0;
    }
    let r = st.in_sync;
    drop(st);
    if changed {
        mddev.notify("array_state");
    }
    r
}

/// `__md_stop_writes`: stop the safe-mode timer, flush the bitmap, and
/// write clean superblocks if the array is writable and dirty.
fn stop_writes(mddev: &Arc<Mddev>, cfg: &mut Config) {
    mddev.lock.lock().safemode_deadline = None;
    if let Some(p) = mddev.pers() {
        p.quiesce(true);
        p.quiesce(false);
        // What was written reaches the members' media before the array
        // stops, as the last close of a block device flushes it.  A level
        // that never marks the array dirty (linear, raid0) writes no
        // superblock below, and so no flush would follow otherwise.
        if let Err(e) = p.flush(mddev) {
            mddev.log().warn(format!(
                "md: {}: flush before stopping failed: {e}",
                mddev.name
            ));
        }
    }
    if let Some(b) = mddev.bitmap() {
        b.flush(mddev, cfg);
    }
    let dirty = !mddev.lock.lock().in_sync;
    if mddev.is_rdwr() && (dirty || mddev.sb_flags.any()) {
        mddev.lock.lock().in_sync = true;
        super::update::md_update_sb(mddev, cfg, true);
    }
    cfg.serialize_policy = false;
}

/// Wait until no write is in flight (the kernel gets this from the block
/// layer before a stop: the device has no openers, I/O has drained).
/// Writers may be waiting for a dirty superblock that only a holder of
/// the reconfig mutex can write — which is us — so write it here.
fn drain_writes(mddev: &Arc<Mddev>, cfg: &mut Config) {
    loop {
        {
            let mut st = mddev.lock.lock();
            if st.writes_pending == 0 {
                return;
            }
            if !mddev.sb_flags.test(sbf::CHANGE_PENDING) {
                mddev
                    .sb_wait
                    .wait_for(&mut st, std::time::Duration::from_millis(20));
                continue;
            }
        }
        super::update::md_update_sb(mddev, cfg, false);
    }
}

/// `md_set_readonly`.
pub fn md_set_readonly(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    let did_freeze = !mddev.recovery.test_and_set(rec::FROZEN);
    super::sync::stop_sync_thread(mddev, cfg);
    drain_writes(mddev, cfg);
    let r = (|| {
        if mddev.recovery.test(rec::RUNNING) {
            mddev
                .log()
                .warn(format!("md: {} still in use.", mddev.name));
            return Err(Errno::EBUSY);
        }
        stop_writes(mddev, cfg);
        if mddev.ro() == ro::RDONLY {
            return Err(Errno::ENXIO);
        }
        mddev.set_ro(ro::RDONLY);
        Ok(())
    })();
    if r.is_ok() || did_freeze {
        mddev.recovery.clear(rec::FROZEN);
        mddev.recovery.set(rec::NEEDED);
        mddev.notify("array_state");
    }
    r
}

/// How far `do_md_stop` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// 0: stop and disassemble (`clear`).
    Clear,
    /// 2: stop but keep the configuration (`inactive`).
    Inactive,
}

/// `do_md_stop`.
pub fn do_md_stop(mddev: &Arc<Mddev>, cfg: &mut Config, mode: StopMode) -> Result<(), Errno> {
    let did_freeze = !mddev.recovery.test_and_set(rec::FROZEN);
    super::sync::stop_sync_thread(mddev, cfg);
    if mddev.recovery.test(rec::RUNNING) {
        mddev
            .log()
            .warn(format!("md: {} still in use.", mddev.name));
        if did_freeze {
            mddev.recovery.clear(rec::FROZEN);
            mddev.recovery.set(rec::NEEDED);
        }
        return Err(Errno::EBUSY);
    }
    if mddev.is_running() {
        drain_writes(mddev, cfg);
        stop_writes(mddev, cfg);
        // __md_stop
        mddev.thread.stop();
        *mddev.bitmap.write() = None;
        if let Some(p) = mddev.pers() {
            p.free(mddev);
        }
        mddev.set_pers(None);
        mddev.recovery.clear(rec::FROZEN);
        mddev.notify("array_state");
        for r in &cfg.rdevs {
            if r.raid_disk() >= 0 {
                mddev.observer().slot_link(mddev, r.raid_disk(), None);
            }
        }
        let old = mddev.array_sectors();
        if !cfg.external_size {
            mddev.set_array_sectors(0);
        }
        if old != 0 {
            mddev.log().info(format!(
                "{}: detected capacity change from {old} to 0",
                mddev.name
            ));
        }
        mddev.observer().running_changed(mddev);
        if !mddev.is_rdwr() {
            mddev.set_ro(ro::RDWR);
        }
    }
    if mode == StopMode::Clear {
        mddev.log().info(format!("md: {} stopped.", mddev.name));
        for r in cfg.rdevs.clone() {
            kick_rdev(mddev, cfg, &r);
        }
        cfg.clean();
        mddev.set_array_sectors(0);
        mddev.set_recovery_cp(0);
        mddev.set_degraded(0);
        mddev.sb_flags.clear_all();
        mddev.recovery.clear_all();
        mddev.flags.clear_all();
        mddev.set_ro(ro::RDWR);
        *mddev.lock.lock() = super::CleanState::default();
        mddev.sync.reset();
    }
    mddev.notify("array_state");
    Ok(())
}

/// The superblock image a member holds, for callers outside md.
pub fn image_of(rdev: &Rdev) -> Option<SbImage> {
    rdev.sb.lock().image.clone()
}
