//! Binding members and running and stopping arrays: the kernel's
//! `new_dev_store`/`md_import_device`/`bind_rdev_to_array`, `analyze_sbs`,
//! `md_run`, `do_md_run`, `do_md_stop`, `md_set_readonly`,
//! `restart_array`, `set_in_sync`.  Callers hold the reconfig mutex
//! (`Mddev::cfg`) and pass its guard in.

use std::path::Path;
use std::sync::Arc;

use super::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use super::rdev::{Rdev, SbImage};
use super::superblock::{self, ArrayView};
use super::{Config, DEFAULT_SAFEMODE_DELAY, Errno, Mddev, ro};
use crate::disk::{Disk, DiskKind};
use crate::format::{AnySuper, MAX_SECTOR, MetadataVersion, Probe};
use crate::md::bitmap::Bitmap;

/// `new_dev`: open `path`, read its superblock, bind it.
pub fn new_dev(mddev: &Arc<Mddev>, cfg: &mut Config, path: &Path) -> Result<Arc<Rdev>, Errno> {
    let log = mddev.log();
    let disk = Disk::open(path, true).map_err(|e| {
        log.warn(format!(
            "md: {}: cannot open {}: {e}",
            mddev.name,
            path.display()
        ));
        e.errno()
    })?;
    // A device bound to any array is claimed (the kernel opens members
    // exclusively): binding it again fails to open it.  Block devices
    // are opened O_EXCL; image files are checked here.
    let ident = disk.identity().ok();
    let claimed = |r: &Arc<Rdev>| r.disk.identity().ok() == ident;
    if cfg.rdevs.iter().any(claimed)
        || mddev
            .md
            .arrays()
            .iter()
            .any(|m| !Arc::ptr_eq(m, mddev) && m.rdevs().iter().any(claimed))
    {
        log.warn(format!("md: could not open device {}.", disk.kernel_name()));
        return Err(libc::EBUSY);
    }
    let name = unique_name(cfg, &disk.kernel_name());
    let rdev = Arc::new(Rdev::new(disk, name));
    if rdev.disk.size_bytes() / 1024 == 0 {
        log.warn(format!(
            "md: {} has zero or unknown size, marking faulty!",
            rdev.name
        ));
        return Err(libc::EINVAL);
    }
    if !cfg.persistent && !cfg.external && cfg.rdevs.is_empty() && cfg.metadata.is_none() {
        // md needs metadata_version set first (mdadm writes it); take it
        // from the device, as mdadm would, when nobody said.
        match detect_metadata(&rdev.disk) {
            Some(v) => {
                cfg.metadata = Some(v);
                cfg.persistent = true;
            }
            None => {
                log.warn(format!(
                    "md: {} does not have a valid md superblock, not importing!",
                    rdev.name
                ));
                return Err(libc::EINVAL);
            }
        }
    }
    let version = match (cfg.persistent, cfg.metadata) {
        (true, Some(v)) => v,
        _ => {
            // Non-persistent arrays (metadata_version "none") are not
            // supported: every mdfuse array lives on md metadata.
            log.warn(format!(
                "md: {}: arrays without persistent metadata are not supported",
                mddev.name
            ));
            return Err(libc::EINVAL);
        }
    };
    if mddev.is_running() {
        prepare_new_member(mddev, cfg, &rdev, version)?;
    }
    match superblock::load_super(&rdev, None, version, log) {
        Ok(_) => {}
        Err(libc::EINVAL) => {
            log.warn(format!(
                "md: {} does not have a valid v{version} superblock, not importing!",
                rdev.name
            ));
            return Err(libc::EINVAL);
        }
        Err(e) => {
            log.warn(format!(
                "md: could not read {}'s sb, not importing!",
                rdev.name
            ));
            return Err(e);
        }
    }
    // new_dev_store compares with the most recently bound member, running
    // or not ("strangely different superblock").
    if let Some(rdev0) = cfg.rdevs.first().cloned() {
        superblock::load_super(&rdev, Some(&rdev0), version, log)?;
    }
    if mddev.is_running() {
        // mdadm checks that the device belongs to this array before the
        // kernel's add_new_disk; the kernel alone would not.
        if let Some(rdev0) = cfg.rdevs.first().cloned() {
            superblock::load_super(&rdev, Some(&rdev0), version, log)?;
        }
        // add_new_disk on a running array: validate against the array so a
        // returning member keeps its slot (and may catch up by bitmap).
        let view = ArrayView::of(mddev);
        let _ = superblock::validate_super(cfg, &view, None, &rdev, mddev);
        rdev.flags.clear(rf::IN_SYNC);
        rdev.set_raid_disk(-1);
    }
    bind_rdev(mddev, cfg, &rdev)?;
    if mddev.is_running() {
        add_bound_rdev(mddev, cfg, &rdev);
    }
    Ok(rdev)
}

/// A device without md metadata joining a running array gets a spare's
/// superblock first, as `mdadm --add` writes one; a device holding
/// anything else (a file system, another array's metadata) is refused.
fn prepare_new_member(
    mddev: &Mddev,
    cfg: &Config,
    rdev: &Rdev,
    version: MetadataVersion,
) -> Result<(), Errno> {
    let log = mddev.log();
    if !matches!(crate::format::probe(&rdev.disk, version), Probe::Absent) {
        return Ok(());
    }
    if super::spare::has_md_metadata(&rdev.disk) {
        // Another version's superblock: refused by the load that follows,
        // as the kernel refuses it ("does not have a valid v1.2 superblock").
        return Ok(());
    }
    if let Some(what) = crate::disk::signatures::builtin(&rdev.disk) {
        log.warn(format!(
            "md: {}: holds {what}; clear it to add it to {}",
            rdev.name, mddev.name
        ));
        return Err(libc::EBUSY);
    }
    let Some(template) = cfg
        .rdevs
        .iter()
        .find(|r| r.in_sync() && !r.faulty())
        .cloned()
    else {
        return Err(libc::EINVAL);
    };
    let mut number = cfg.raid_disks as i32;
    while cfg.find_rdev_nr(number).is_some() {
        number += 1;
    }
    super::spare::write_spare(cfg, &template, &rdev.disk, number as u32, log)?;
    log.info(format!(
        "md: {}: wrote a spare's superblock (device {number})",
        rdev.name
    ));
    Ok(())
}

/// `add_bound_rdev` for RAID1 (which has `hot_remove_disk`): ask the md
/// thread to consider the new spare.
fn add_bound_rdev(mddev: &Mddev, _cfg: &mut Config, rdev: &Rdev) {
    mddev.observer().notify_rdev(mddev, rdev, "state");
    mddev.sb_flags.set(sbf::CHANGE_DEVS);
    if mddev.degraded() > 0 {
        mddev.recovery.set(rec::RECOVER);
    }
    mddev.recovery.set(rec::NEEDED);
    mddev.wakeup();
}

/// `dev-NAME` must be unique in the array; a clash (two image files with
/// the same name in different directories) gets `.1`, `.2`, ...
fn unique_name(cfg: &Config, kernel_name: &str) -> String {
    let base = kernel_name.replace('/', "!");
    let taken = |n: &str| cfg.rdevs.iter().any(|r| r.name == n);
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// Which metadata version a device carries: the valid superblock with the
/// latest creation time, as mdadm's `guess_super` picks.
pub fn detect_metadata(disk: &Disk) -> Option<MetadataVersion> {
    let sectors = disk.sectors();
    let mut best: Option<(u64, MetadataVersion)> = None;
    for v in MetadataVersion::ALL {
        let Probe::Found(found) = crate::format::probe(disk, v) else {
            continue;
        };
        let ctime = match &found {
            AnySuper::V1(m, sb) => {
                if sb.validate(*m, sectors).is_err() {
                    continue;
                }
                crate::format::super1::time_secs(sb.ctime)
            }
            AnySuper::V090(sb) => {
                if sb.validate(sectors).is_err() {
                    continue;
                }
                sb.ctime as u64
            }
        };
        if best.is_none_or(|(t, _)| ctime > t) {
            best = Some((ctime, v));
        }
    }
    best.map(|(_, v)| v)
}

/// `bind_rdev_to_array`.
pub fn bind_rdev(mddev: &Arc<Mddev>, cfg: &mut Config, rdev: &Arc<Rdev>) -> Result<(), Errno> {
    let running = mddev.is_running();
    if !rdev.flags.test(rf::JOURNAL)
        && rdev.sectors() > 0
        && (cfg.dev_sectors == 0 || rdev.sectors() < cfg.dev_sectors)
    {
        if running {
            if cfg.level > 0 {
                mddev.log().warn(format!(
                    "md: {}: {} is too small ({} < {} sectors)",
                    mddev.name,
                    rdev.name,
                    rdev.sectors(),
                    cfg.dev_sectors
                ));
                return Err(libc::ENOSPC);
            }
        } else {
            cfg.dev_sectors = rdev.sectors();
        }
    }
    if rdev.desc_nr() < 0 {
        let mut choice = if running { cfg.raid_disks as i32 } else { 0 };
        while cfg.find_rdev_nr(choice).is_some() {
            choice += 1;
        }
        rdev.set_desc_nr(choice);
    } else if cfg.find_rdev_nr(rdev.desc_nr()).is_some() {
        mddev.log().warn(format!(
            "md: {}: {} has the same device number ({}) as another member",
            mddev.name,
            rdev.name,
            rdev.desc_nr()
        ));
        return Err(libc::EBUSY);
    }
    if !rdev.flags.test(rf::JOURNAL) && cfg.max_disks > 0 && rdev.desc_nr() as u32 >= cfg.max_disks
    {
        mddev.log().warn(format!(
            "md: {}: array is limited to {} devices",
            mddev.name, cfg.max_disks
        ));
        return Err(libc::EBUSY);
    }
    cfg.rdevs.insert(0, rdev.clone());
    cfg.recovery_disabled += 1;
    mddev.publish(cfg);
    mddev.observer().rdev_bound(mddev, rdev);
    Ok(())
}

/// `md_kick_rdev_from_array` + `export_rdev`: unbind and close.
pub fn kick_rdev(mddev: &Mddev, cfg: &mut Config, rdev: &Arc<Rdev>) {
    if rdev.raid_disk() >= 0 {
        mddev.observer().slot_link(mddev, rdev.raid_disk(), None);
    }
    cfg.rdevs.retain(|r| !Arc::ptr_eq(r, rdev));
    mddev.publish(cfg);
    mddev.observer().rdev_unbound(mddev, rdev);
}

/// `analyze_sbs`: find the freshest superblock, take the array from it,
/// kick members that are inconsistent or too old, assign roles.
fn analyze_sbs(mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<(), Errno> {
    let log = mddev.log();
    let version = cfg.metadata.ok_or(libc::EINVAL)?;
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
        return Err(libc::EINVAL);
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
        return Err(libc::EINVAL);
    }
    if mddev.is_running() {
        return Err(libc::EBUSY);
    }
    if cfg.raid_disks == 0 {
        if !cfg.persistent {
            return Err(libc::EINVAL);
        }
        if analyze_sbs(mddev, cfg).is_err() {
            return Err(libc::EINVAL);
        }
    }
    // The geometry and bitmap offset the superblocks gave are what the
    // personality, the bitmap and the I/O path read from now on.
    mddev.publish(cfg);
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
                return Err(libc::EINVAL);
            }
        } else if sb + rdev.sb_size() as u64 / 512 > data {
            log.warn(format!("md: {}: metadata overlaps data", mddev.name));
            return Err(libc::EINVAL);
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
        return Err(libc::EINVAL);
    };
    if cfg.level != pers.level() {
        cfg.level = pers.level();
        cfg.new_level = pers.level();
    }
    cfg.clevel = pers.name().to_owned();
    if cfg.reshape_position != MAX_SECTOR {
        // No mdfuse personality can reshape.
        return Err(libc::EINVAL);
    }
    if pers.redundant() {
        warn_same_disk(mddev, cfg);
    }
    mddev.recovery.store(0);
    mddev.sync.set_resync_max_sectors(cfg.dev_sectors);
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
        return Err(libc::EINVAL);
    }
    if !cfg.external_size {
        mddev.set_array_sectors(raid.size(cfg.dev_sectors));
    }
    if pers.redundant() && cfg.bitmap_info.offset != 0 {
        match Bitmap::create(mddev, cfg) {
            Ok(b) => *mddev.bitmap.write() = Some(b),
            Err(e) => {
                log.warn(format!("{}: failed to create bitmap ({})", mddev.name, -e));
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
    if mddev.sb_flags.bits() != 0 {
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
                mddev.name, -e
            ));
            *mddev.bitmap.write() = None;
            teardown(mddev, cfg);
            return Err(e);
        }
    }
    mddev.thread.start(mddev);
    let sectors = mddev.array_sectors();
    mddev.log().info(format!(
        "{}: detected capacity change from 0 to {sectors}",
        mddev.name
    ));
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
        return Err(libc::ENXIO);
    }
    if !mddev.is_running() {
        return Err(libc::EINVAL);
    }
    if mddev.is_rdwr() {
        return Err(libc::EBUSY);
    }
    if cfg.rdevs.iter().any(|r| !r.disk.writable()) {
        return Err(libc::EROFS);
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
    }
    if let Some(b) = mddev.bitmap() {
        b.flush(mddev, cfg);
    }
    let dirty = !mddev.lock.lock().in_sync;
    if mddev.is_rdwr() && (dirty || mddev.sb_flags.bits() != 0) {
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
            return Err(libc::EBUSY);
        }
        stop_writes(mddev, cfg);
        if mddev.ro() == ro::RDONLY {
            return Err(libc::ENXIO);
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
        return Err(libc::EBUSY);
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
        mddev.log().info(format!(
            "{}: detected capacity change from {old} to 0",
            mddev.name
        ));
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
        mddev.sb_flags.store(0);
        mddev.recovery.store(0);
        mddev.flags.store(0);
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

/// `array_state_show`.
pub fn array_state(m: &Mddev) -> &'static str {
    if m.is_running() && !m.flags.test(mf::NOT_READY) {
        let st = match m.ro() {
            ro::RDONLY => "readonly",
            ro::AUTO_READ => "read-auto",
            _ => {
                let cs = m.lock.lock();
                if m.sb_flags.test(sbf::CHANGE_PENDING) {
                    "write-pending"
                } else if cs.in_sync {
                    "clean"
                } else if cs.safemode != 0 {
                    "active-idle"
                } else {
                    "active"
                }
            }
        };
        if m.flags.test(mf::BROKEN) && st == "clean" {
            "broken"
        } else {
            st
        }
    } else {
        let cfg = m.cfg.lock();
        if cfg.rdevs.is_empty() && cfg.raid_disks == 0 && cfg.dev_sectors == 0 {
            "clear"
        } else {
            "inactive"
        }
    }
}

/// `action_show` of Linux 6.1.
pub fn sync_action_word(m: &Mddev) -> &'static str {
    let r = &m.recovery;
    if r.test(rec::FROZEN) {
        return "frozen";
    }
    if r.test(rec::RUNNING) || (m.is_rdwr() && r.test(rec::NEEDED)) {
        if r.test(rec::RESHAPE) {
            return "reshape";
        } else if r.test(rec::SYNC) {
            if !r.test(rec::REQUESTED) {
                return "resync";
            } else if r.test(rec::CHECK) {
                return "check";
            } else {
                return "repair";
            }
        } else if r.test(rec::RECOVER) {
            return "recover";
        }
    }
    "idle"
}

/// `action_store`.
pub fn action_store(m: &Arc<Mddev>, cfg: &mut Config, s: &str) -> Result<(), Errno> {
    let r = &m.recovery;
    match s {
        "idle" => {
            if r.test(rec::RUNNING) {
                // idle_sync_thread: interrupt, wait, and let a still-needed
                // resync or recovery start again from its checkpoint.
                super::sync::stop_sync_thread(m, cfg);
            }
            r.clear(rec::FROZEN);
        }
        "frozen" => {
            r.set(rec::FROZEN);
            if r.test(rec::RUNNING) {
                super::sync::stop_sync_thread(m, cfg);
            }
            m.notify("sync_action");
            return Ok(());
        }
        // Linux 6.1 refuses every other word, known or not, while a sync
        // runs or md has yet to look at what was asked last (6.11 and later
        // look at RUNNING only, and say EINVAL for unknown words).
        _ if r.test(rec::RUNNING) || r.test(rec::NEEDED) => return Err(libc::EBUSY),
        "resync" => r.clear(rec::FROZEN),
        "recover" => {
            r.clear(rec::FROZEN);
            r.set(rec::RECOVER);
        }
        "reshape" => return Err(libc::EINVAL),
        "check" => {
            r.set(rec::CHECK | rec::REQUESTED | rec::SYNC);
            r.clear(rec::FROZEN);
        }
        "repair" => {
            r.set(rec::REQUESTED | rec::SYNC);
            r.clear(rec::FROZEN);
        }
        _ => return Err(libc::EINVAL),
    }
    if m.ro() == ro::AUTO_READ {
        m.set_ro(ro::RDWR);
    }
    r.set(rec::NEEDED);
    m.wakeup();
    m.notify("sync_action");
    Ok(())
}

/// `update_raid_disks` + RAID1's `raid1_reshape`: change the number of
/// mirrors of a running array.
pub fn update_raid_disks(m: &Arc<Mddev>, cfg: &mut Config, n: u32) -> Result<(), Errno> {
    if !m.is_rdwr() {
        return Err(libc::EROFS);
    }
    // An int in the kernel: 2^31 and up are negative.
    if n as i32 <= 0 || (cfg.max_disks > 0 && n >= cfg.max_disks) {
        return Err(libc::EINVAL);
    }
    if m.recovery.test(rec::RUNNING) || m.sync.busy() || cfg.reshape_position != MAX_SECTOR {
        return Err(libc::EBUSY);
    }
    for r in &cfg.rdevs {
        if (cfg.raid_disks < n && r.data_offset() < r.new_data_offset())
            || (cfg.raid_disks > n && r.data_offset() > r.new_data_offset())
        {
            return Err(libc::EINVAL);
        }
    }
    // The direction a shrink or growth would reshape in stays recorded
    // (reshape_direction), as update_raid_disks leaves it.
    cfg.delta_disks = n as i32 - cfg.raid_disks as i32;
    if cfg.delta_disks < 0 {
        cfg.reshape_backwards = true;
    } else if cfg.delta_disks > 0 {
        cfg.reshape_backwards = false;
    }
    if n == cfg.raid_disks {
        return Ok(());
    }
    let Some(p) = m.pers() else {
        return Err(libc::EINVAL);
    };
    if let Err(e) = p.reshape_mirrors(m, cfg, n) {
        cfg.delta_disks = 0;
        cfg.reshape_backwards = false;
        return Err(e);
    }
    m.publish(cfg);
    m.recovery.set(rec::RECOVER | rec::NEEDED);
    m.wakeup();
    super::update::md_update_sb(m, cfg, true);
    Ok(())
}

/// `update_size` for a running array (`component_size` store): RAID1
/// resizes within what every member records as usable; growth resyncs the
/// new part.
pub fn update_size(m: &Arc<Mddev>, cfg: &mut Config, sectors: u64) -> Result<(), Errno> {
    if m.recovery.test(rec::RUNNING) || m.sync.busy() || cfg.reshape_position != MAX_SECTOR {
        return Err(libc::EBUSY);
    }
    if !m.is_rdwr() {
        return Err(libc::EROFS);
    }
    let active: Vec<&Arc<Rdev>> = cfg
        .rdevs
        .iter()
        .filter(|r| r.raid_disk() >= 0 && !r.faulty())
        .collect();
    let most = active
        .iter()
        .map(|r| rdev_size_change(cfg, r, 0))
        .min()
        .unwrap_or(0);
    let sectors = if sectors == 0 { most } else { sectors };
    if sectors == 0 || sectors > most {
        return Err(libc::ENOSPC);
    }
    let old = cfg.dev_sectors;
    if sectors == old {
        return Ok(());
    }
    if m.bitmap().is_some() {
        // The bitmap would need resizing on disk; mdadm removes it first.
        return Err(libc::EBUSY);
    }
    cfg.dev_sectors = sectors;
    m.sync.set_resync_max_sectors(sectors);
    if !cfg.external_size {
        let old_size = m.array_sectors();
        m.set_array_sectors(sectors);
        m.log().info(format!(
            "{}: detected capacity change from {old_size} to {sectors}",
            m.name
        ));
        m.observer().running_changed(m);
    }
    if sectors > old && m.recovery_cp() > old {
        m.set_recovery_cp(old);
        m.recovery.set(rec::NEEDED);
        m.wakeup();
    }
    m.publish(cfg);
    super::update::md_update_sb(m, cfg, true);
    Ok(())
}

/// `rdev_size_change`: the sectors `r` can give for a component size of
/// `sectors` (0 = as much as possible); 0 when it cannot.
pub fn rdev_size_change(cfg: &Config, r: &Rdev, sectors: u64) -> u64 {
    let avail = match cfg.metadata {
        Some(MetadataVersion::V090) => {
            if cfg.bitmap_info.offset != 0 {
                return 0;
            }
            crate::format::super0::sb_start(r.disk.sectors()).unwrap_or(0)
        }
        Some(MetadataVersion::V1(_)) => r.sectors(),
        None => return 0,
    };
    if sectors == 0 || sectors > avail {
        avail
    } else {
        sectors
    }
}
