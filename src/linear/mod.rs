//! The linear personality (drivers/md/md-linear.c): the members
//! concatenated in slot order, each used whole (rounded down to the
//! array's "rounding", its chunk size, when one is set).  No redundancy:
//! a member that is gone makes the array broken (`MD_BROKEN`) and every
//! I/O error goes to the caller.  The array grows when a member is added
//! to it running (`linear_add`, what `mdadm --grow --add` asks for).
//!
//! I/O runs synchronously on the calling thread.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::md::personality::{Personality, Raid, SyncStep};
use crate::md::pieces::{Piece, break_array, flush_members, read_pieces, write_pieces};
use crate::md::update::md_error_io;
use crate::md::{Config, Errno, Mddev, Rdev};

/// `struct linear_conf` without its members.
const CONF_BYTES: u64 = 32;
/// One `struct dev_info` (the member, its end sector).
const DEV_INFO_BYTES: u64 = 16;
/// The most one kmalloc gives.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;

/// `LEVEL_LINEAR`.
pub const LEVEL_LINEAR: i32 = -1;

pub struct LinearPersonality;

pub static LINEAR: LinearPersonality = LinearPersonality;

impl Personality for LinearPersonality {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn level(&self) -> i32 {
        LEVEL_LINEAR
    }
    fn redundant(&self) -> bool {
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

    /// `linear_run`.
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno> {
        if cfg.bitmap_info.offset != 0 {
            mddev.log().warn(format!(
                "{}: bitmaps are not supported for linear",
                mddev.name
            ));
            return Err(Errno::EINVAL);
        }
        let conf = Disks::build(mddev, cfg, cfg.raid_disks as usize).ok_or(Errno::EINVAL)?;
        Ok(Arc::new(Conf {
            disks: RwLock::new(Arc::new(conf)),
            chunk_sectors: cfg.chunk_sectors,
        }))
    }
}

/// One member and the array sector just past its part (`dev_info`).
struct DevInfo {
    rdev: Arc<Rdev>,
    end_sector: u64,
}

/// `struct linear_conf`: replaced whole when the array grows.
struct Disks {
    disks: Vec<DevInfo>,
    array_sectors: u64,
}

impl Disks {
    /// `linear_conf`: every member by slot, each rounded down to the
    /// chunk size when one is set; None (logged) when the slots do not
    /// add up.
    fn build(mddev: &Mddev, cfg: &Config, raid_disks: usize) -> Option<Disks> {
        // linear_conf allocates the conf and its raid_disks dev_infos with
        // one kzalloc, which cannot exceed KMALLOC_MAX_SIZE (raid_disks
        // is an int there: 2^31 and up are negative); linear_run then
        // fails as for any other problem.
        if i32::try_from(raid_disks).is_err()
            || CONF_BYTES + raid_disks as u64 * DEV_INFO_BYTES > KMALLOC_MAX_SIZE
        {
            mddev.log().warn(format!(
                "md/linear:{}: cannot allocate the conf of raid_disks {}",
                mddev.name, raid_disks as i32
            ));
            return None;
        }
        let mut slots: Vec<Option<Arc<Rdev>>> = vec![None; raid_disks];
        let mut cnt = 0usize;
        let mut array_sectors = 0u64;
        for rdev in &cfg.rdevs {
            let j = rdev.raid_disk();
            let free = usize::try_from(j)
                .ok()
                .filter(|&j| j < raid_disks && slots[j].is_none());
            let Some(j) = free else {
                mddev.log().warn(format!(
                    "md/linear:{}: disk numbering problem. Aborting!",
                    mddev.name
                ));
                return None;
            };
            if cfg.chunk_sectors != 0 {
                let c = cfg.chunk_sectors as u64;
                rdev.set_sectors(rdev.sectors() / c * c);
            }
            array_sectors += rdev.sectors();
            slots[j] = Some(rdev.clone());
            cnt += 1;
        }
        if cnt != raid_disks {
            mddev.log().warn(format!(
                "md/linear:{}: not enough drives present. Aborting!",
                mddev.name
            ));
            return None;
        }
        let mut end = 0u64;
        let disks = slots
            .into_iter()
            .flatten()
            .map(|rdev| {
                end += rdev.sectors();
                DevInfo {
                    rdev,
                    end_sector: end,
                }
            })
            .collect();
        Some(Disks {
            disks,
            array_sectors,
        })
    }

    /// `which_dev`: the member holding array sector `sector`.
    fn which_dev(&self, sector: u64) -> &DevInfo {
        let i = self.disks.partition_point(|d| d.end_sector <= sector);
        &self.disks[i.min(self.disks.len() - 1)]
    }
}

/// The running array (`mddev->private`).
pub struct Conf {
    disks: RwLock<Arc<Disks>>,
    /// The rounding (`chunk_sectors`), fixed while the array runs.
    chunk_sectors: u32,
}

impl Conf {
    fn current(&self) -> Arc<Disks> {
        self.disks.read().clone()
    }

    /// `linear_make_request`'s mapping: the request cut at member ends.
    /// A member found gone fails the array (`md_error`) and the request.
    fn map(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<Vec<Piece>, Errno> {
        let conf = self.current();
        let mut out = Vec::new();
        let mut s = sector;
        let end = sector + sectors;
        while s < end {
            let d = conf.which_dev(s);
            let start = d.end_sector - d.rdev.sectors();
            if s >= d.end_sector || s < start {
                mddev.log().err(format!(
                    "md/linear:{}: make_request: Sector {s} out of bounds on dev {}: {} sectors, offset {start}",
                    mddev.name,
                    d.rdev.name,
                    d.rdev.sectors()
                ));
                return Err(Errno::EIO);
            }
            if d.rdev.is_broken() {
                md_error_io(mddev, &d.rdev, mddev.fail_last_dev());
                return Err(Errno::EIO);
            }
            let n = (end - s).min(d.end_sector - s);
            out.push((d.rdev.clone(), s - start, n));
            s += n;
        }
        Ok(out)
    }
}

impl Raid for Conf {
    fn personality(&self) -> &'static dyn Personality {
        &LINEAR
    }

    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        read_pieces(&self.map(mddev, sector, (buf.len() / 512) as u64)?, buf)
    }

    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        write_pieces(&self.map(mddev, sector, (data.len() / 512) as u64)?, data)
    }

    /// Discards go down to each member in the range.
    fn discard(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<(), Errno> {
        for (rdev, s, n) in self.map(mddev, sector, sectors)? {
            rdev.discard_data(s, n).map_err(|_| Errno::EIO)?;
        }
        Ok(())
    }

    /// `md_flush_request`: a flush to every member.
    fn flush(&self, _mddev: &Mddev) -> Result<(), Errno> {
        flush_members(self.current().disks.iter().map(|d| &d.rdev))
    }

    /// `linear_status`: the rounding (chunk size) in KiB.
    fn status(&self, _mddev: &Mddev) -> String {
        format!(" {}k rounding", self.chunk_sectors / 2)
    }

    /// `linear_error`: the array is broken; the member stays as it is.
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, _fail_last_dev: bool) {
        break_array(mddev, "linear", rdev);
    }

    /// Only through `hot_add_geometry`: a slot inside the array is never
    /// free.
    fn hot_add_disk(&self, _mddev: &Mddev, _rdev: &Arc<Rdev>) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    /// `linear_add`: a member whose superblock gives it the slot just past
    /// the last one extends the array; the member table is replaced
    /// whole, so I/O sees the old one or the new one.
    fn hot_add_geometry(
        &self,
        mddev: &Mddev,
        cfg: &mut Config,
        rdev: &Arc<Rdev>,
    ) -> Result<(), Errno> {
        if rdev.saved_raid_disk() != cfg.raid_disks as i32 {
            return Err(Errno::EINVAL);
        }
        rdev.set_raid_disk(rdev.saved_raid_disk());
        rdev.set_saved_raid_disk(-1);
        let Some(new) = Disks::build(mddev, cfg, cfg.raid_disks as usize + 1) else {
            rdev.set_raid_disk(-1);
            return Err(Errno::ENOMEM);
        };
        let sectors = new.array_sectors;
        *self.disks.write() = Arc::new(new);
        cfg.raid_disks += 1;
        if !cfg.external_size {
            let old = mddev.array_sectors();
            mddev.set_array_sectors(sectors);
            mddev.log().info(format!(
                "{}: detected capacity change from {old} to {sectors}",
                mddev.name
            ));
        }
        Ok(())
    }

    fn hot_remove_disk(&self, _mddev: &Mddev, _rdev: &Arc<Rdev>) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    fn spare_active(&self, _mddev: &Mddev) -> u32 {
        0
    }

    /// `linear_size`: every member whole.
    fn size(&self, _dev_sectors: u64) -> u64 {
        self.current().array_sectors
    }

    /// `linear_quiesce`: nothing to wait for; a growing array swaps its
    /// member table at once.
    fn quiesce(&self, _on: bool) {}

    /// Never called: there is no redundancy to sync.
    fn sync_request(&self, _mddev: &Mddev, _sector: u64, _max: u64) -> Result<SyncStep, Errno> {
        Err(Errno::EINVAL)
    }

    fn reshape_mirrors(&self, _mddev: &Mddev, _cfg: &mut Config, _n: u32) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}
