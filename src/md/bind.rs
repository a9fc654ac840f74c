//! Binding members to an array: the kernel's `new_dev_store`,
//! `md_import_device`, `bind_rdev_to_array` and `kick_rdev_from_array`.
//! Callers hold the reconfig mutex (`Mddev::cfg`) and pass its guard in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::flags::{rdev as rf, recovery as rec, sb as sbf};
use super::rdev::Rdev;
use super::spare::NewRole;
use super::superblock::{self, ArrayView};
use super::{Config, Errno, Mddev};
use crate::disk::Disk;
use crate::format::{AnySuper, MetadataVersion, Probe};

/// `new_dev`: open `path`, read its superblock, bind it.
pub fn new_dev(mddev: &Arc<Mddev>, cfg: &mut Config, path: &Path) -> Result<Arc<Rdev>, Errno> {
    let log = mddev.log();
    // An array's own data file (or a loop device over one) as a member
    // would route md's I/O through the mount back into this process, and
    // a stop would wait on itself.
    if let Some(dir) = mddev
        .md
        .own_dir_of(path)
        .or_else(|| loop_backing_file(path).and_then(|f| mddev.md.own_dir_of(&f)))
    {
        log.warn(format!(
            "md: {}: {} is served by this mdfuse itself (under {}): arrays of its own arrays are not supported",
            mddev.name,
            path.display(),
            dir.display()
        ));
        return Err(Errno::EBUSY);
    }
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
    // A device whose identity cannot be read claims nothing (None is
    // not a match for another None).
    let claimed = |r: &&Arc<Rdev>| ident.is_some() && r.disk.identity().ok() == ident;
    let holder = cfg
        .rdevs
        .iter()
        .find(claimed)
        .map(|r| (mddev.name.clone(), r.clone()))
        .or_else(|| {
            mddev
                .md
                .arrays()
                .iter()
                .filter(|m| !Arc::ptr_eq(m, mddev))
                .find_map(|m| {
                    m.rdevs()
                        .iter()
                        .find(claimed)
                        .map(|r| (m.name.clone(), r.clone()))
                })
        });
    if let Some((array, r)) = holder {
        log.warn(format!("md: could not open device {}.", disk.kernel_name()));
        // Not the kernel's word, for whoever wonders which member holds it.
        log::warn!(
            "{}: already bound to {array} as {} ({}, identity {ident:?})",
            path.display(),
            r.name,
            r.disk.path().display()
        );
        return Err(Errno::EBUSY);
    }
    let name = unique_name(cfg, &disk.kernel_name());
    let rdev = Arc::new(Rdev::new(disk, name));
    if rdev.disk.size_bytes() / 1024 == 0 {
        log.warn(format!(
            "md: {} has zero or unknown size, marking faulty!",
            rdev.name
        ));
        return Err(Errno::EINVAL);
    }
    if !cfg.metadata_written && !cfg.persistent && !cfg.external && cfg.rdevs.is_empty() {
        // md needs metadata_version set first (mdadm writes it); take it
        // from the device, as mdadm would, when nobody said.  A device
        // with no superblock binds as md binds it then: without one.
        if let Some(v) = detect_metadata(&rdev.disk) {
            cfg.metadata = Some(v);
            cfg.persistent = true;
        }
    }
    let Some(version) = cfg.metadata.filter(|_| cfg.persistent) else {
        return bind_without_superblock(mddev, cfg, rdev);
    };
    if mddev.is_running() {
        if mddev
            .pers()
            .is_some_and(|p| !p.personality().has_hot_add_disk())
        {
            log.warn(format!(
                "{}: personality does not support diskops!",
                mddev.name
            ));
            return Err(Errno::EINVAL);
        }
        // md's ADD_NEW_DISK on a read-only array takes back only a
        // returning member (mdadm asks with MD_DISK_SYNC); anything else
        // is EROFS before a superblock is written.
        if mddev.ro() == super::ro::RDONLY
            && matches!(crate::format::probe(&rdev.disk, version), Probe::Absent)
        {
            return Err(Errno::EROFS);
        }
        prepare_new_member(mddev, cfg, &rdev, version)?;
    }
    match superblock::load_super(&rdev, None, version, log) {
        Ok(_) => {}
        Err(Errno::EINVAL) => {
            log.warn(format!(
                "md: {} does not have a valid v{version} superblock, not importing!",
                rdev.name
            ));
            return Err(Errno::EINVAL);
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
        // A member that does not return to its slot would join as a new
        // spare, which a read-only array refuses (md_ioctl: EROFS).
        if mddev.ro() == super::ro::RDONLY
            && !(rdev.raid_disk() >= 0 && cfg.find_rdev_nr(rdev.desc_nr()).is_none())
        {
            return Err(Errno::EROFS);
        }
        super::spare::renew_unless_readded(mddev, cfg, &rdev, version)?;
        rdev.flags.clear(rf::IN_SYNC);
        rdev.set_raid_disk(-1);
    }
    bind_rdev(mddev, cfg, &rdev)?;
    if mddev.is_running() {
        add_bound_rdev(mddev, cfg, &rdev)?;
    }
    Ok(rdev)
}

/// `md_import_device` with no superblock format (`metadata_version`
/// `none`, what `mdadm --build` makes): nothing is read from the device
/// and nothing will ever be written to it but data.  It joins with no
/// role, no data offset and no size; `slot`, `offset` and `size` give
/// them.  On a running array it is a spare, as `mdadm --add` gives the
/// kernel one (`ADD_NEW_DISK` without the in-sync state).
fn bind_without_superblock(
    mddev: &Arc<Mddev>,
    cfg: &mut Config,
    rdev: Arc<Rdev>,
) -> Result<Arc<Rdev>, Errno> {
    if mddev.is_running()
        && mddev
            .pers()
            .is_some_and(|p| !p.personality().has_hot_add_disk())
    {
        mddev.log().warn(format!(
            "{}: personality does not support diskops!",
            mddev.name
        ));
        return Err(Errno::EINVAL);
    }
    bind_rdev(mddev, cfg, &rdev)?;
    if mddev.is_running() {
        add_bound_rdev(mddev, cfg, &rdev)?;
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
        return Err(Errno::EBUSY);
    }
    let Some(template) = cfg
        .rdevs
        .iter()
        .find(|r| r.in_sync() && !r.faulty())
        .cloned()
    else {
        return Err(Errno::EINVAL);
    };
    let mut number = cfg.raid_disks as i32;
    while cfg.find_rdev_nr(number).is_some() {
        number += 1;
    }
    // A personality that takes members only by growing (linear) gets
    // the superblock `mdadm --grow --add` writes: active in the next slot.
    let grows = mddev
        .pers()
        .is_some_and(|p| !p.personality().has_hot_remove_disk());
    let role = if grows {
        NewRole::Extends(cfg.raid_disks)
    } else {
        NewRole::Spare
    };
    super::spare::write_new_member(cfg, &template, &rdev.disk, number as u32, role, log)?;
    log.info(match role {
        NewRole::Spare => format!(
            "md: {}: wrote a spare's superblock (device {number})",
            rdev.name
        ),
        NewRole::Extends(slot) => format!(
            "md: {}: wrote a superblock for slot {slot} (device {number})",
            rdev.name
        ),
    });
    Ok(())
}

/// `add_bound_rdev`: ask the md thread to consider the new spare.  A
/// personality without `hot_remove_disk` takes the member at once (a
/// change of geometry, as linear's growth) or it is kicked again.
fn add_bound_rdev(mddev: &Arc<Mddev>, cfg: &mut Config, rdev: &Arc<Rdev>) -> Result<(), Errno> {
    if let Some(p) = mddev
        .pers()
        .filter(|p| !p.personality().has_hot_remove_disk())
    {
        let view = ArrayView::of(mddev);
        let _ = superblock::validate_super(cfg, &view, None, rdev, mddev);
        if let Err(e) = p.hot_add_geometry(mddev, cfg, rdev) {
            kick_rdev(mddev, cfg, rdev);
            mddev.publish(cfg);
            return Err(e);
        }
        super::sync::link_rdev(mddev, rdev);
        mddev.publish(cfg);
        mddev.observer().running_changed(mddev);
    }
    mddev.observer().notify_rdev(mddev, rdev, "state");
    mddev.sb_flags.set(sbf::CHANGE_DEVS);
    if mddev.degraded() > 0 {
        mddev.recovery.set(rec::RECOVER);
    }
    mddev.recovery.set(rec::NEEDED);
    mddev.wakeup();
    Ok(())
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
                return Err(Errno::ENOSPC);
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
        return Err(Errno::EBUSY);
    }
    if !rdev.flags.test(rf::JOURNAL) && cfg.max_disks > 0 && rdev.desc_nr() as u32 >= cfg.max_disks
    {
        mddev.log().warn(format!(
            "md: {}: array is limited to {} devices",
            mddev.name, cfg.max_disks
        ));
        return Err(Errno::EBUSY);
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

/// The directory of `dirs` that `path` leads into, following symlinks
/// only outside them (each `lstat` and `readlink` is of a path outside),
/// at most 40 of them, as the kernel's path walk.
pub(crate) fn resolves_into(path: &Path, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::path::Component;
    let inside = |p: &Path| dirs.iter().find(|d| p.starts_with(d)).cloned();
    let start = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push_front = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
        let parts: Vec<_> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        for part in parts.into_iter().rev() {
            todo.push(part);
        }
    };
    push_front(&mut todo, &start);
    let mut cur = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        if let Some(d) = inside(&next) {
            return Some(d);
        }
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&next).ok()?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_front(&mut todo, &target);
            }
            _ => cur = next,
        }
    }
    inside(&cur)
}

/// For a loop device, the file behind it (`/sys/block/loopN/loop/backing_file`).
fn loop_backing_file(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok()?;
    if !m.file_type().is_block_device() {
        return None;
    }
    let (major, minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
    let f = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/loop/backing_file"))
        .ok()?;
    Some(PathBuf::from(f.trim_end_matches('\n')))
}
