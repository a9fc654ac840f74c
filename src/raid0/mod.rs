//! The RAID0 personality (drivers/md/raid0.c): members striped chunk by
//! chunk.  Members of unequal size make zones (`create_strip_zones`):
//! zone 0 stripes over every member up to the smallest one's end, each
//! further zone over the members that are still longer.  Such a
//! multi-zone array has two layouts (`RAID0_ORIG_LAYOUT`, before Linux
//! 3.14, and `RAID0_ALT_MULTIZONE_LAYOUT`), recorded in the superblock
//! since 5.4; an array that records none runs only when the
//! `default_layout` parameter names one.  No redundancy: a member that is
//! gone makes the array broken (`MD_BROKEN`), and every I/O error goes to
//! the caller.
//!
//! I/O runs synchronously on the calling thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::md::personality::{Personality, Raid, SyncStep};
use crate::md::pieces::{Piece, break_array, flush_members, read_pieces, write_pieces};
use crate::md::update::md_error_io;
use crate::md::{Config, Errno, Mddev, ModuleParam, Rdev};

/// `RAID0_ORIG_LAYOUT`: the layout of kernels before 3.14.
pub const RAID0_ORIG_LAYOUT: i32 = 1;
/// A `struct md_rdev *` in the zones' member lists.
const POINTER_BYTES: u64 = 8;
/// The most one kmalloc gives.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// `RAID0_ALT_MULTIZONE_LAYOUT`: the layout of 3.14 and later.
pub const RAID0_ALT_MULTIZONE_LAYOUT: i32 = 2;

/// The module parameter `raid0.default_layout` (0: unset).
static DEFAULT_LAYOUT: AtomicI32 = AtomicI32::new(0);

/// `raid0.default_layout`: the layout of multi-zone arrays whose
/// superblock records none.
pub fn default_layout() -> i32 {
    DEFAULT_LAYOUT.load(Ordering::Acquire)
}

/// Set `raid0.default_layout` (any int, as the module parameter takes;
/// only 1 and 2 mean something).
pub fn set_default_layout(v: i32) {
    DEFAULT_LAYOUT.store(v, Ordering::Release)
}

/// `module_param(default_layout, int, 0644)`.
static PARAMS: [ModuleParam; 1] = [ModuleParam {
    name: "default_layout",
    show: || format!("{}\n", default_layout()),
    store: |s| {
        let v = crate::kstr::kstrtoint(s).map_err(|_| Errno::EINVAL)?;
        set_default_layout(v);
        Ok(())
    },
}];

pub struct Raid0Personality;

pub static RAID0: Raid0Personality = Raid0Personality;

impl Personality for Raid0Personality {
    fn name(&self) -> &'static str {
        "raid0"
    }
    fn level(&self) -> i32 {
        0
    }
    fn redundant(&self) -> bool {
        false
    }
    fn params(&self) -> &'static [ModuleParam] {
        &PARAMS
    }
    fn has_hot_add_disk(&self) -> bool {
        false
    }
    fn has_hot_remove_disk(&self) -> bool {
        false
    }
    fn has_resize(&self) -> bool {
        false
    }
    fn has_check_reshape(&self) -> bool {
        false
    }
    fn has_takeover(&self) -> bool {
        true
    }

    /// `raid0_takeover`: the refusals of 6.1's, which are all there is
    /// here (RAID1 with one mirror left, which it would take, is not
    /// implemented).
    fn takeover(&self, mddev: &Mddev, cfg: &Config) -> Errno {
        let log = mddev.log();
        if mddev.bitmap().is_some() {
            log.warn(format!(
                "md/raid0: {}: cannot takeover array with bitmap",
                mddev.name
            ));
            return Errno::EBUSY;
        }
        if cfg.level != 1 {
            log.warn(format!(
                "Takeover from raid{} to raid0 not supported",
                cfg.level
            ));
            return Errno::EINVAL;
        }
        // raid0_takeover_raid1
        if (cfg.raid_disks as i32).wrapping_sub(1) != mddev.degraded() as i32 {
            log.err(format!(
                "md/raid0:{}: (N - 1) mirrors drives must be already faulty!",
                mddev.name
            ));
        } else {
            log.warn(format!(
                "md/raid0:{}: taking over a RAID1 is not implemented",
                mddev.name
            ));
        }
        Errno::EINVAL
    }

    /// `raid0_run`.
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno> {
        if cfg.chunk_sectors == 0 {
            mddev
                .log()
                .warn(format!("md/raid0:{}: chunk size must be set.", mddev.name));
            return Err(Errno::EINVAL);
        }
        if cfg.bitmap_info.offset != 0 {
            mddev.log().warn(format!(
                "{}: bitmaps are not supported for raid0",
                mddev.name
            ));
            return Err(Errno::EINVAL);
        }
        let conf = Conf::create_strip_zones(mddev, cfg)?;
        Ok(Arc::new(conf))
    }
}

/// `struct strip_zone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// Array sector just past the zone.
    pub zone_end: u64,
    /// Where the zone starts on each of its members.
    pub dev_start: u64,
    /// Members striped over.
    pub nb_dev: usize,
    /// The first member used in the zone, for the original layout.
    pub disk_shift: usize,
}

/// `struct r0conf`.
pub struct Conf {
    zones: Vec<Zone>,
    /// `zones.len() * raid_disks` slots: zone `z`'s members from
    /// `z * raid_disks`.
    devlist: Vec<Option<Arc<Rdev>>>,
    raid_disks: usize,
    chunk_sectors: u64,
    layout: i32,
    array_sectors: u64,
}

/// The zones of members of `sizes` sectors (in slot order, already
/// rounded to the chunk): each zone and, per zone, the slots it stripes
/// over.  Shared with whoever needs raid0's geometry without members.
pub fn strip_zones(sizes: &[u64]) -> Vec<(Zone, Vec<usize>)> {
    let mut out = Vec::new();
    let Some(&smallest) = sizes.iter().min() else {
        return out;
    };
    let cnt = sizes.len();
    let first = Zone {
        zone_end: smallest * cnt as u64,
        dev_start: 0,
        nb_dev: cnt,
        disk_shift: 0,
    };
    out.push((first, (0..cnt).collect()));
    let mut unique: Vec<u64> = sizes.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut curr_zone_end = first.zone_end;
    let mut dev_start = smallest;
    for _ in 1..unique.len() {
        let members: Vec<usize> = (0..cnt).filter(|&j| sizes[j] > dev_start).collect();
        let next = members
            .iter()
            .map(|&j| sizes[j])
            .min()
            .expect("a longer member remains");
        curr_zone_end += (next - dev_start) * members.len() as u64;
        out.push((
            Zone {
                zone_end: curr_zone_end,
                dev_start,
                nb_dev: members.len(),
                disk_shift: 0,
            },
            members,
        ));
        dev_start = next;
    }
    out
}

impl Conf {
    /// `create_strip_zones`: round every member to the chunk, find the
    /// zones, settle the layout.
    fn create_strip_zones(mddev: &Mddev, cfg: &Config) -> Result<Conf, Errno> {
        let log = mddev.log();
        let chunk = cfg.chunk_sectors as u64;
        for rdev in &cfg.rdevs {
            rdev.set_sectors(rdev.sectors() / chunk * chunk);
        }
        // Members are image files or devices of 512-byte sectors.
        let blksize = 512u64;
        if (chunk << 9) % blksize != 0 {
            log.warn(format!(
                "md/raid0:{}: chunk_size of {} not multiple of block size {blksize}",
                mddev.name,
                chunk << 9
            ));
            return Err(Errno::EINVAL);
        }
        // The zones' member lists (a pointer per zone and slot) are one
        // kzalloc, which cannot exceed KMALLOC_MAX_SIZE (raid_disks is an
        // int there: 2^31 and up are negative): ENOMEM, before the
        // members' slots are looked at.
        let all: Vec<u64> = cfg.rdevs.iter().map(|r| r.sectors()).collect();
        let zones = strip_zones(&all).len().max(1) as u64;
        if (cfg.raid_disks as i32) < 0
            || zones * cfg.raid_disks as u64 * POINTER_BYTES > KMALLOC_MAX_SIZE
        {
            log.warn(format!(
                "md/raid0:{}: cannot allocate the zones of raid_disks {}",
                mddev.name, cfg.raid_disks as i32
            ));
            return Err(Errno::ENOMEM);
        }
        let raid_disks = cfg.raid_disks as usize;
        let mut slots: Vec<Option<Arc<Rdev>>> = vec![None; raid_disks];
        let mut cnt = 0usize;
        for rdev in &cfg.rdevs {
            let j = rdev.raid_disk();
            if j < 0 {
                log.warn(format!(
                    "md/raid0:{}: remove inactive devices before converting to RAID0",
                    mddev.name
                ));
                return Err(Errno::EINVAL);
            }
            if j as usize >= raid_disks {
                log.warn(format!(
                    "md/raid0:{}: bad disk number {j} - aborting!",
                    mddev.name
                ));
                return Err(Errno::EINVAL);
            }
            if slots[j as usize].is_some() {
                log.warn(format!(
                    "md/raid0:{}: multiple devices for {j} - aborting!",
                    mddev.name
                ));
                return Err(Errno::EINVAL);
            }
            slots[j as usize] = Some(rdev.clone());
            cnt += 1;
        }
        if cnt != raid_disks {
            log.warn(format!(
                "md/raid0:{}: too few disks ({cnt} of {raid_disks}) - aborting!",
                mddev.name
            ));
            return Err(Errno::EINVAL);
        }
        let members: Vec<Arc<Rdev>> = slots.into_iter().flatten().collect();
        let sizes: Vec<u64> = members.iter().map(|r| r.sectors()).collect();
        let found = strip_zones(&sizes);
        let mut zones: Vec<Zone> = Vec::with_capacity(found.len());
        let mut devlist: Vec<Option<Arc<Rdev>>> = vec![None; found.len() * raid_disks];
        for (z, (zone, on)) in found.into_iter().enumerate() {
            for (k, &j) in on.iter().enumerate() {
                devlist[z * raid_disks + k] = Some(members[j].clone());
            }
            zones.push(zone);
        }
        let layout = if zones.len() == 1 || zones[1].nb_dev == 1 {
            RAID0_ORIG_LAYOUT
        } else if cfg.layout == RAID0_ORIG_LAYOUT || cfg.layout == RAID0_ALT_MULTIZONE_LAYOUT {
            cfg.layout
        } else if matches!(
            default_layout(),
            RAID0_ORIG_LAYOUT | RAID0_ALT_MULTIZONE_LAYOUT
        ) {
            default_layout()
        } else {
            log.err(format!(
                "md/raid0:{}: cannot assemble multi-zone RAID0 with default_layout setting",
                mddev.name
            ));
            log.err("md/raid0: please set raid0.default_layout to 1 or 2");
            return Err(Errno::EOPNOTSUPP);
        };
        if layout == RAID0_ORIG_LAYOUT {
            for i in 1..zones.len() {
                let first_chunk = zones[i - 1].zone_end / chunk;
                zones[i].disk_shift = (first_chunk % zones[i].nb_dev as u64) as usize;
            }
        }
        // raid0_size: every member, rounded to the chunk.
        let array_sectors = cfg.rdevs.iter().map(|r| r.sectors() & !(chunk - 1)).sum();
        Ok(Conf {
            zones,
            devlist,
            raid_disks,
            chunk_sectors: chunk,
            layout,
            array_sectors,
        })
    }

    /// `find_zone`: the zone holding array sector `sector` and the sector
    /// within it.
    fn find_zone(&self, sector: u64) -> (usize, u64) {
        let i = self
            .zones
            .partition_point(|z| z.zone_end <= sector)
            .min(self.zones.len() - 1);
        let off = if i > 0 {
            sector - self.zones[i - 1].zone_end
        } else {
            sector
        };
        (i, off)
    }

    /// `map_sector`: the member and the sector on it (from its
    /// data_offset) of array sector `sector`, which lies in one chunk.
    fn map(&self, sector: u64) -> (Arc<Rdev>, u64) {
        let (z, in_zone) = self.find_zone(sector);
        let zone = &self.zones[z];
        let chunk = self.chunk_sectors;
        // The original layout picks the member from the array sector,
        // the alternate one from the sector within the zone.
        let by = if self.layout == RAID0_ORIG_LAYOUT {
            sector
        } else {
            in_zone
        };
        let sect_in_chunk = by % chunk;
        let chunk_no = by / chunk;
        let dev_chunk = in_zone / (chunk * zone.nb_dev as u64);
        let dev_sector = dev_chunk * chunk + sect_in_chunk + zone.dev_start;
        let k = (chunk_no % zone.nb_dev as u64) as usize;
        let rdev = self.devlist[z * self.raid_disks + k]
            .clone()
            .expect("every zone slot below nb_dev holds a member");
        (rdev, dev_sector)
    }

    /// The request cut at chunk boundaries, each piece mapped
    /// (`raid0_make_request`, `raid0_map_submit_bio`).  A member found
    /// gone fails the array (`md_error`) and the request.
    fn pieces(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<Vec<Piece>, Errno> {
        let mut out = Vec::new();
        let end = sector + sectors;
        let mut s = sector;
        while s < end {
            let n = (self.chunk_sectors - s % self.chunk_sectors).min(end - s);
            let (rdev, dev_sector) = self.map(s);
            if rdev.is_broken() {
                md_error_io(mddev, &rdev, mddev.fail_last_dev());
                return Err(Errno::EIO);
            }
            out.push((rdev, dev_sector, n));
            s += n;
        }
        Ok(out)
    }

    /// `raid0_handle_discard` for the part of `[start, end)` in one zone:
    /// per member of the zone, the one range of it the discard covers.
    fn discard_zone(&self, z: usize, start: u64, end: u64) -> Vec<(Arc<Rdev>, u64, u64)> {
        let zone = &self.zones[z];
        let chunk = self.chunk_sectors;
        let nb = zone.nb_dev as u64;
        let zone_base = if z > 0 { self.zones[z - 1].zone_end } else { 0 };
        let (zs, ze) = (start - zone_base, end - zone_base);
        let stripe_size = nb * chunk;
        let first_stripe_index = zs / stripe_size;
        let last_stripe_index = ze / stripe_size;
        let shift = |d: u64| (d + nb - zone.disk_shift as u64) % nb;
        let (start_disk_index, end_disk_index) = if self.layout == RAID0_ORIG_LAYOUT && z > 0 {
            (shift((start / chunk) % nb), shift((end / chunk) % nb))
        } else {
            (
                (zs - first_stripe_index * stripe_size) / chunk,
                (ze - last_stripe_index * stripe_size) / chunk,
            )
        };
        let start_disk_offset =
            (zs - first_stripe_index * stripe_size) % chunk + first_stripe_index * chunk;
        let end_disk_offset =
            (ze - last_stripe_index * stripe_size) % chunk + last_stripe_index * chunk;
        let mut out = Vec::new();
        for disk in 0..nb {
            let compare_disk = shift(disk);
            let dev_start = match compare_disk.cmp(&start_disk_index) {
                std::cmp::Ordering::Less => (first_stripe_index + 1) * chunk,
                std::cmp::Ordering::Greater => first_stripe_index * chunk,
                std::cmp::Ordering::Equal => start_disk_offset,
            };
            let dev_end = match compare_disk.cmp(&end_disk_index) {
                std::cmp::Ordering::Less => (last_stripe_index + 1) * chunk,
                std::cmp::Ordering::Greater => last_stripe_index * chunk,
                std::cmp::Ordering::Equal => end_disk_offset,
            };
            if dev_end <= dev_start {
                continue;
            }
            if let Some(rdev) = &self.devlist[z * self.raid_disks + disk as usize] {
                out.push((
                    rdev.clone(),
                    dev_start + zone.dev_start,
                    dev_end - dev_start,
                ));
            }
        }
        out
    }
}

impl Raid for Conf {
    fn personality(&self) -> &'static dyn Personality {
        &RAID0
    }

    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        read_pieces(&self.pieces(mddev, sector, (buf.len() / 512) as u64)?, buf)
    }

    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        write_pieces(
            &self.pieces(mddev, sector, (data.len() / 512) as u64)?,
            data,
        )
    }

    /// `raid0_handle_discard`: zone by zone, one discard per member.
    fn discard(&self, _mddev: &Mddev, sector: u64, sectors: u64) -> Result<(), Errno> {
        let end = sector + sectors;
        let mut s = sector;
        let mut result = Ok(());
        while s < end {
            let (z, _) = self.find_zone(s);
            let e = end.min(self.zones[z].zone_end);
            for (rdev, at, n) in self.discard_zone(z, s, e) {
                if rdev.discard_data(at, n).is_err() {
                    result = Err(Errno::EIO);
                }
            }
            s = e;
        }
        result
    }

    /// `md_flush_request`: a flush to every member.
    fn flush(&self, _mddev: &Mddev) -> Result<(), Errno> {
        flush_members(self.devlist.iter().take(self.raid_disks).flatten())
    }

    /// `raid0_status`: the chunk size in KiB.
    fn status(&self, _mddev: &Mddev) -> String {
        format!(" {}k chunks", self.chunk_sectors / 2)
    }

    /// `raid0_error`: the array is broken; the member stays as it is.
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, _fail_last_dev: bool) {
        break_array(mddev, "raid0", rdev);
    }

    /// Never called: raid0 has no `hot_add_disk`.
    fn hot_add_disk(&self, _mddev: &Mddev, _rdev: &Arc<Rdev>) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn hot_remove_disk(&self, _mddev: &Mddev, _rdev: &Arc<Rdev>) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn spare_active(&self, _mddev: &Mddev) -> u32 {
        0
    }

    /// `raid0_size`: every member, rounded down to the chunk.
    fn size(&self, _dev_sectors: u64) -> u64 {
        self.array_sectors
    }

    /// `raid0_quiesce`: nothing to wait for.
    fn quiesce(&self, _on: bool) {}

    /// Never called: there is no redundancy to sync.
    fn sync_request(&self, _mddev: &Mddev, _sector: u64, _max: u64) -> Result<SyncStep, Errno> {
        Err(Errno::EINVAL)
    }

    fn reshape_mirrors(&self, _mddev: &Mddev, _cfg: &mut Config, _n: u32) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_of_equal_members() {
        let z = strip_zones(&[100, 100, 100]);
        assert_eq!(z.len(), 1);
        assert_eq!(z[0].0.zone_end, 300);
        assert_eq!(z[0].1, vec![0, 1, 2]);
    }

    #[test]
    fn zones_of_unequal_members() {
        let z = strip_zones(&[100, 300, 200]);
        assert_eq!(z.len(), 3);
        assert_eq!(
            (z[0].0.zone_end, z[0].0.dev_start, z[0].0.nb_dev),
            (300, 0, 3)
        );
        assert_eq!(
            (z[1].0.zone_end, z[1].0.dev_start, z[1].0.nb_dev),
            (500, 100, 2)
        );
        assert_eq!(z[1].1, vec![1, 2]);
        assert_eq!(
            (z[2].0.zone_end, z[2].0.dev_start, z[2].0.nb_dev),
            (600, 200, 1)
        );
        assert_eq!(z[2].1, vec![1]);
    }
}
