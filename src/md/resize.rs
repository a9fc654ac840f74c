//! Resizing a running array: the number of members (`update_raid_disks`)
//! and the space used on each (`update_size`, `rdev_size_change`); and a
//! new layout or chunk (`layout_store`, `chunk_size_store`), which the
//! personality's `check_reshape` accepts or refuses.
//! Callers hold the reconfig mutex (`Mddev::cfg`) and pass its guard in.

use std::sync::Arc;

use super::flags::recovery as rec;
use super::rdev::Rdev;
use super::{Config, Errno, Mddev};
use crate::format::geometry::choose_bm_space;
use crate::format::{MAX_SECTOR, MetadataVersion};

/// `update_raid_disks` + RAID1's `raid1_reshape`: change the number of
/// mirrors of a running array.
pub fn update_raid_disks(m: &Arc<Mddev>, cfg: &mut Config, n: u32) -> Result<(), Errno> {
    if m.pers()
        .is_some_and(|p| !p.personality().has_check_reshape())
    {
        return Err(Errno::EINVAL);
    }
    if !m.is_rdwr() {
        return Err(Errno::EROFS);
    }
    // An int in the kernel: 2^31 and up are negative.
    if n as i32 <= 0 || (cfg.max_disks > 0 && n >= cfg.max_disks) {
        return Err(Errno::EINVAL);
    }
    if m.recovery.test(rec::RUNNING) || m.sync.busy() || cfg.reshape_position != MAX_SECTOR {
        return Err(Errno::EBUSY);
    }
    for r in &cfg.rdevs {
        if (cfg.raid_disks < n && r.data_offset() < r.new_data_offset())
            || (cfg.raid_disks > n && r.data_offset() > r.new_data_offset())
        {
            return Err(Errno::EINVAL);
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
    let Some(p) = m.pers() else {
        return Err(Errno::EINVAL);
    };
    if n == cfg.raid_disks {
        // check_reshape with nothing to change, which a far RAID10 still
        // refuses.
        return p.check_reshape(m, cfg);
    }
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

/// `layout_store`'s md part: before the array runs the layout is set
/// (and becomes the layout unless a reshape is recorded); while it runs
/// the personality judges it, EBUSY if it cannot reshape at all (linear,
/// raid0).
pub fn update_layout(m: &Arc<Mddev>, cfg: &mut Config, n: i32) -> Result<(), Errno> {
    update_geometry(m, cfg, Geometry::Layout(n))
}

/// `chunk_size_store`'s md part, as `update_layout` for the chunk.
pub fn update_chunk(m: &Arc<Mddev>, cfg: &mut Config, sectors: u32) -> Result<(), Errno> {
    update_geometry(m, cfg, Geometry::Chunk(sectors))
}

/// A new value for one of the array's geometry settings.
#[derive(Debug, Clone, Copy)]
enum Geometry {
    Layout(i32),
    Chunk(u32),
}

impl Geometry {
    /// Record it as the value to reshape to (`new_layout`, `new_chunk_sectors`).
    fn set_new(self, cfg: &mut Config) {
        match self {
            Geometry::Layout(n) => cfg.new_layout = n,
            Geometry::Chunk(s) => cfg.new_chunk_sectors = s,
        }
    }

    /// Make it the current value too.
    fn set_current(self, cfg: &mut Config) {
        match self {
            Geometry::Layout(n) => cfg.layout = n,
            Geometry::Chunk(s) => cfg.chunk_sectors = s,
        }
    }

    /// Put the value to reshape to back to the current one.
    fn undo_new(self, cfg: &mut Config) {
        match self {
            Geometry::Layout(_) => cfg.new_layout = cfg.layout,
            Geometry::Chunk(_) => cfg.new_chunk_sectors = cfg.chunk_sectors,
        }
    }
}

fn update_geometry(m: &Arc<Mddev>, cfg: &mut Config, g: Geometry) -> Result<(), Errno> {
    let Some(p) = m.pers() else {
        g.set_new(cfg);
        if cfg.reshape_position == MAX_SECTOR {
            g.set_current(cfg);
        }
        return Ok(());
    };
    if !p.personality().has_check_reshape() {
        return Err(Errno::EBUSY);
    }
    if !m.is_rdwr() {
        return Err(Errno::EROFS);
    }
    g.set_new(cfg);
    let checked = p.check_reshape(m, cfg);
    if checked.is_err() {
        g.undo_new(cfg);
    }
    checked
}

/// `update_size` for a running array (`component_size` store): RAID1
/// resizes within what every member records as usable; growth resyncs the
/// new part.
pub fn update_size(m: &Arc<Mddev>, cfg: &mut Config, sectors: u64) -> Result<(), Errno> {
    if m.pers().is_some_and(|p| !p.personality().has_resize()) {
        return Err(Errno::EINVAL);
    }
    if m.recovery.test(rec::RUNNING) || m.sync.busy() || cfg.reshape_position != MAX_SECTOR {
        return Err(Errno::EBUSY);
    }
    if !m.is_rdwr() {
        return Err(Errno::EROFS);
    }
    // What each member records it can give (`rdev->sectors`, which a
    // write of 0 to its `size` raises to what the device holds).
    let most = cfg
        .rdevs
        .iter()
        .filter(|r| !r.flags.test(super::flags::rdev::JOURNAL))
        .map(|r| r.sectors())
        .min()
        .unwrap_or(0);
    let sectors = if sectors == 0 { most } else { sectors };
    if sectors == 0 || sectors > most {
        return Err(Errno::ENOSPC);
    }
    let old = cfg.dev_sectors;
    if sectors == old {
        return Ok(());
    }
    if m.bitmap().is_some() {
        // The bitmap would need resizing on disk; mdadm removes it first.
        return Err(Errno::EBUSY);
    }
    let Some(raid) = m.pers() else {
        return Err(Errno::EINVAL);
    };
    let old_resync = m.sync.resync_max_sectors();
    let resized = raid.resize(m, sectors)?;
    cfg.dev_sectors = resized.dev_sectors;
    m.sync.set_resync_max_sectors(resized.resync_max_sectors);
    if !cfg.external_size {
        let old_size = m.array_sectors();
        let size = raid.size(resized.dev_sectors);
        m.set_array_sectors(size);
        m.log().info(format!(
            "{}: detected capacity change from {old_size} to {size}",
            m.name
        ));
        m.observer().running_changed(m);
    }
    // Growth leaves the new part to resync (from the old end on).
    if resized.dev_sectors > old && m.recovery_cp() > old_resync {
        m.set_recovery_cp(old_resync);
        m.recovery.set(rec::NEEDED);
        m.wakeup();
    }
    m.publish(cfg);
    super::update::md_update_sb(m, cfg, true);
    Ok(())
}

/// `allow_new_offset` of the metadata's `super_types` entry: whether a
/// member of a running array may record `new` as its data offset for a
/// reshape.  0.90 has no room for one but 0; with 1.x an offset may
/// always grow, and shrink (1.1 and 1.2, whose metadata lies before the
/// data) only down to past the superblock's 36 KiB, the bitmap and the
/// bad-block log.
pub fn allow_new_offset(cfg: &Config, bitmap_pages: Option<usize>, r: &Rdev, new: u64) -> bool {
    let minor = match cfg.metadata {
        Some(MetadataVersion::V090) => return new == 0,
        Some(MetadataVersion::V1(minor)) => minor,
        None => return true,
    };
    if new >= r.data_offset() || minor == crate::format::Minor::V0 {
        return true;
    }
    let sb = r.sb_start();
    if sb + (32 + 4) * 2 > new {
        return false;
    }
    if let Some(pages) = bitmap_pages {
        let end = (sb as i64)
            .wrapping_add(cfg.bitmap_info.offset)
            .wrapping_add(pages as i64 * 8);
        if end as u64 > new {
            return false;
        }
    }
    // The bad-block log, once the list has been written there.
    if r.badblocks.lock().count() > 0 {
        if let Some(super::rdev::SbImage::V1(_, sb1)) = &r.sb.lock().image {
            let end = (sb as i64)
                .wrapping_add(sb1.bblog_offset as i64)
                .wrapping_add(sb1.bblog_size as i64);
            if end as u64 > new {
                return false;
            }
        }
    }
    true
}

/// `rdev_size_change`: the sectors `r` can give for a component size of
/// `sectors` (0 = as much as possible); 0 when it cannot.  For a member
/// without a superblock, as `update_size` reads it: its `size`.
pub fn rdev_size_change(cfg: &Config, r: &Rdev, sectors: u64) -> u64 {
    if sectors != 0 && sectors < cfg.dev_sectors {
        // A component must fit the device.
        return 0;
    }
    let avail = match cfg.metadata {
        Some(MetadataVersion::V090) => {
            if cfg.bitmap_info.offset != 0 {
                return 0;
            }
            crate::format::super0::sb_start(r.disk.sectors()).unwrap_or(0)
        }
        Some(MetadataVersion::V1(_)) => {
            if r.data_offset() != r.new_data_offset() {
                return 0;
            }
            let dev = r.disk.sectors();
            if r.sb_start() < r.data_offset() {
                // 1.1 and 1.2: the superblock before the data, which may
                // take the rest of the device.
                dev.saturating_sub(r.data_offset())
            } else if cfg.bitmap_info.offset != 0 {
                // 1.0 with a bitmap, which cannot move.
                return 0;
            } else {
                // 1.0: below the superblock (where super_1_load found it:
                // the device's size is as it was), the bitmap's space and
                // the bad-block log's 4 KiB.
                let sb = (dev.saturating_sub(16)) & !7;
                (sb.saturating_sub(choose_bm_space(dev) + 8)).saturating_sub(r.data_offset())
            }
        }
        // Without a superblock what the member was given is all it has.
        None => r.sectors(),
    };
    if sectors == 0 || sectors > avail {
        avail
    } else {
        sectors
    }
}
