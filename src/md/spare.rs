//! A member for a running array from a device without md metadata, or
//! from one of its old members that md would not take back in its old
//! role: write a spare's superblock (and bitmap) the way `mdadm --add`
//! does before it asks the kernel to bind the device (Manage.c, super1.c
//! `add_to_super1` and `write_init_super1`): the array's superblock as
//! template, this device's own layout, a new device UUID, events 0, role
//! spare.  The array then rebuilds onto it with a full recovery.

use super::rdev::{Rdev, SbImage};
use super::superblock::{self, ArrayView};
use super::{Config, Errno, KernelLog, Mddev};
use crate::disk::Disk;
use crate::format::geometry::{BitmapPlan, bitmap_area, device_layout};
use crate::format::super1::{feature, role};
use crate::format::{BitmapSuper, MetadataVersion, random_uuid};

/// `mdadm --add` of a device holding this array's superblock, once that
/// superblock was validated against the running array: mdadm first asks
/// md to re-add it in its recorded role (attempt_re_add), which works
/// only when md gives it back its active role (not faulty, not a spare,
/// not too old for the bitmap) and its number is free.  Otherwise mdadm
/// writes the device a new spare's superblock, numbered as a blank
/// device's (the first free number from raid_disks up), and adds that:
/// write it and read it back.  0.90 members are left as they are.
pub fn renew_unless_readded(
    mddev: &Mddev,
    cfg: &mut Config,
    rdev: &Rdev,
    version: MetadataVersion,
) -> Result<(), Errno> {
    if rdev.raid_disk() >= 0 && cfg.find_rdev_nr(rdev.desc_nr()).is_none() {
        return Ok(());
    }
    if !matches!(rdev.sb.lock().image, Some(SbImage::V1(..))) {
        return Ok(());
    }
    let Some(template) = cfg
        .rdevs
        .iter()
        .find(|r| r.in_sync() && !r.faulty())
        .cloned()
    else {
        return Ok(());
    };
    let mut number = cfg.raid_disks as i32;
    while cfg.find_rdev_nr(number).is_some() {
        number += 1;
    }
    let log = mddev.log();
    write_spare(cfg, &template, &rdev.disk, number as u32, log)?;
    log.info(format!(
        "md: {}: not re-added: wrote a spare's superblock (device {number})",
        rdev.name
    ));
    // The superblock read at bind time is stale now.
    rdev.sb.lock().image = None;
    superblock::load_super(rdev, Some(&template), version, log)?;
    let view = ArrayView::of(mddev);
    let _ = superblock::validate_super(cfg, &view, None, rdev, mddev);
    Ok(())
}

/// Does `disk` hold an md superblock of any version (valid or not)?
pub fn has_md_metadata(disk: &Disk) -> bool {
    MetadataVersion::ALL.into_iter().any(|v| {
        matches!(
            crate::format::probe(disk, v),
            crate::format::Probe::Found(_) | crate::format::Probe::Invalid(_)
        )
    })
}

/// The role a new member's superblock gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewRole {
    /// A spare, to be rebuilt into a slot (`mdadm --add`).
    Spare,
    /// Active in the slot just past the last, in sync at the array's
    /// events: a member that extends the array (`mdadm --grow --add` of
    /// a linear array, whose "linear-grow-new" superblock this is).
    Extends(u32),
}

/// Write a new spare's metadata on `disk`, numbered `dev_number`, from the
/// array member `template`.
pub fn write_spare(
    cfg: &Config,
    template: &Rdev,
    disk: &Disk,
    dev_number: u32,
    log: &KernelLog,
) -> Result<(), Errno> {
    write_new_member(cfg, template, disk, dev_number, NewRole::Spare, log)
}

/// Write a new member's metadata on `disk`, numbered `dev_number`, in
/// `role`, from the array member `template`.
pub fn write_new_member(
    cfg: &Config,
    template: &Rdev,
    disk: &Disk,
    dev_number: u32,
    role: NewRole,
    log: &KernelLog,
) -> Result<(), Errno> {
    let image = template.sb.lock().image.clone();
    let Some(SbImage::V1(minor, t)) = image else {
        log.warn("md: a new v0.90 member needs its superblock written by mdadm --add");
        return Err(Errno::EINVAL);
    };
    let size = t.size;
    let plan = t.bitmap_offset_sectors().map(|off| BitmapPlan {
        offset: off as i32,
        chunk_bytes: cfg.bitmap_info.chunksize,
        sync_size: size,
        write_behind: u32::try_from(cfg.bitmap_info.max_write_behind).unwrap_or(0),
    });
    let layout = device_layout(minor, disk.sectors(), size, t.data_offset, plan.as_ref());
    if layout.data_size < size || layout.super_offset == 0 && minor == crate::format::Minor::V0 {
        log.warn(format!(
            "md: {}: too small to join ({} sectors usable, {size} needed)",
            disk.path().display(),
            layout.data_size
        ));
        return Err(Errno::ENOSPC);
    }
    let mut sb = (*t).clone();
    sb.feature_map &= !(feature::BAD_BLOCKS
        | feature::REPLACEMENT
        | feature::RECOVERY_OFFSET
        | feature::RECOVERY_BITMAP);
    sb.dev_number = dev_number;
    sb.devflags = 0;
    sb.device_uuid = random_uuid().map_err(|_| Errno::EIO)?;
    sb.events = match role {
        NewRole::Spare => 0,
        NewRole::Extends(_) => t.events,
    };
    sb.recovery_offset = 0;
    sb.cnt_corrected_read = 0;
    sb.data_offset = layout.data_offset;
    sb.data_size = layout.data_size;
    sb.super_offset = layout.super_offset;
    sb.bblog_offset = layout.bblog_offset;
    sb.bblog_size = layout.bblog_size;
    sb.bblog_shift = 0;
    if dev_number >= sb.max_dev && sb.max_dev < crate::format::super1::MAX_DEV_LIMIT {
        sb.max_dev = dev_number + 1;
    }
    sb.dev_roles.resize(sb.max_dev as usize, role::SPARE);
    if let Some(r) = sb.dev_roles.get_mut(dev_number as usize) {
        *r = match role {
            NewRole::Spare => role::SPARE,
            NewRole::Extends(slot) => u16::try_from(slot).map_err(|_| Errno::ENOSPC)?,
        };
    }
    if let NewRole::Extends(slot) = role {
        sb.raid_disks = slot + 1;
    }
    sb.update_csum();
    let io = |e: std::io::Error| Errno::from_io(&e);
    disk.write_at(&sb.to_sector_bytes(), layout.super_offset * 512)
        .map_err(io)?;
    if let Some(plan) = plan {
        // The array's bitmap superblock, every bit set: the kernel rewrites
        // all bitmap pages on every member when recovery starts.
        let mut area = bitmap_area(&plan, sb.set_uuid);
        let mut head = [0u8; 256];
        let at = (template.sb_start() as i64 + plan.offset as i64) as u64 * 512;
        if template.disk.read_at(&mut head, at).is_ok() {
            if let Ok(bsb) = BitmapSuper::parse(&head) {
                area[..256].copy_from_slice(&bsb.to_bytes());
            }
        }
        let pos = layout.super_offset as i64 + plan.offset as i64;
        if pos < 0 {
            return Err(Errno::EINVAL);
        }
        disk.write_at(&area, pos as u64 * 512).map_err(io)?;
    }
    disk.flush().map_err(io)?;
    Ok(())
}
