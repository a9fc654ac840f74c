//! Personalities (`struct md_personality`): a registry keyed by level,
//! filled from outside md, and the interface a running personality offers
//! md.

use std::sync::Arc;

use parking_lot::RwLock;

use super::{Config, Errno, Mddev, Rdev};

/// A RAID level md can run.  Registered once; `run` makes a running
/// instance for one array.
pub trait Personality: Send + Sync {
    fn name(&self) -> &'static str;
    fn level(&self) -> i32;
    /// Has `sync_request`: the redundancy attributes (`sync_action`, ...)
    /// exist while it runs.
    fn redundant(&self) -> bool;
    /// `pers->run`: check the members md has validated and build the
    /// running state.  Sets `mddev`'s degraded count and may change
    /// `recovery_cp`.  Errors carry the kernel's errno; messages are
    /// logged here.
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno>;

    /// The module's parameters.
    fn params(&self) -> &'static [ModuleParam] {
        &[]
    }

    /// The files it adds to `md/` while it runs.
    fn attrs(&self) -> &'static [PersAttr] {
        &[]
    }

    /// Has `hot_add_disk`: members can be added to the running array.
    /// Without it md refuses them ("personality does not support
    /// diskops!").
    fn has_hot_add_disk(&self) -> bool {
        true
    }

    /// Has `hot_remove_disk`.  Without it a member added to the running
    /// array is a change of geometry, handed to `hot_add_disk` at once
    /// (`add_bound_rdev`), and no slot can be emptied.
    fn has_hot_remove_disk(&self) -> bool {
        true
    }

    /// Has `resize`: `component_size` can change while it runs.
    fn has_resize(&self) -> bool {
        true
    }

    /// Has `check_reshape`: `raid_disks`, `layout` and `chunk_size` can
    /// be changed while it runs.
    fn has_check_reshape(&self) -> bool {
        true
    }

    /// Has `takeover`: md offers it a running array of another level
    /// (`echo N > level`).  Without it md refuses ("does not support
    /// personality takeover", EINVAL).
    fn has_takeover(&self) -> bool {
        false
    }

    /// `takeover` of the running array `mddev`, whose level is another:
    /// why it is refused, with the kernel's errno and message.  No
    /// takeover is implemented yet: one the kernel's would accept is
    /// refused too (EINVAL, with a message saying so).
    fn takeover(&self, mddev: &Mddev, cfg: &Config) -> Errno {
        let _ = (mddev, cfg);
        Errno::EINVAL
    }
}

/// A file a running personality adds to the array's `md/` directory
/// (raid5's `raid5_attrs_group`): present while it runs, its value and
/// store handled by the running instance (`Raid::attr_show`,
/// `Raid::attr_store`).
pub struct PersAttr {
    pub name: &'static str,
    pub mode: u32,
}

/// A parameter of a personality's module (`module_param`), e.g.
/// `raid0.default_layout`: the mount shows it at its root as
/// `PERSONALITY_NAME` and takes it as a mount option.
pub struct ModuleParam {
    pub name: &'static str,
    /// The value as the parameter's file shows it (with its newline).
    pub show: fn() -> String,
    /// Set it from text, as the parameter's setter parses it.
    pub store: fn(&str) -> Result<(), Errno>,
}

/// What a resize left: the component size md records and the sectors a
/// resync covers (array sectors for RAID10, member sectors otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Resized {
    pub dev_sectors: u64,
    pub resync_max_sectors: u64,
}

/// What a sync step did (`sync_request`'s return and out-parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStep {
    /// Sectors handled (copied, compared, or skipped as clean).
    pub sectors: u64,
    /// Sectors skipped because the bitmap says they are clean.
    pub skipped: bool,
}

/// A running personality (`mddev->pers` with `mddev->private`).  Methods
/// document the contract md relies on.
pub trait Raid: Send + Sync {
    fn personality(&self) -> &'static dyn Personality;

    /// Read `buf.len()` bytes from array sector `sector`.  EIO only when no
    /// member could serve the data.
    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno>;

    /// Write `data` at array sector `sector` to every working member.
    /// Md has already marked the array dirty (`md_write_start`).  Succeeds
    /// if at least one in-sync member took the write.
    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno>;

    /// Make every completed write durable on every working member.
    /// RAID1's writes behind on write-mostly members are not waited for:
    /// they are durable on the others, and their bitmap bits stay set
    /// until they land.
    fn flush(&self, mddev: &Mddev) -> Result<(), Errno>;

    /// Discard `sectors` at array sector `sector` (REQ_OP_DISCARD): md has
    /// checked the range.  The bitmap counts it as a write.  A
    /// personality that cannot discard says EOPNOTSUPP.
    fn discard(&self, mddev: &Mddev, sector: u64, sectors: u64) -> Result<(), Errno> {
        let _ = (mddev, sector, sectors);
        Err(Errno::EOPNOTSUPP)
    }

    /// The personality's part of the mdstat status line, e.g. ` [2/2] [UU]`.
    fn status(&self, mddev: &Mddev) -> String;

    /// `error_handler`: mark `rdev` Faulty (unless it is the last working
    /// member and `fail_last_dev` is off), update degraded, log.  A
    /// personality without redundancy marks the array broken instead
    /// (`MD_BROKEN`), and md does nothing more.
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, fail_last_dev: bool);

    /// `hot_add_disk`: give a spare a slot (its saved slot when free).
    fn hot_add_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno>;

    /// `hot_add_disk` of a personality without `hot_remove_disk`, where a
    /// member added to the running array changes its geometry (linear's
    /// growth).  md holds the reconfig mutex and passes the configuration.
    fn hot_add_geometry(
        &self,
        mddev: &Mddev,
        cfg: &mut Config,
        rdev: &Arc<Rdev>,
    ) -> Result<(), Errno> {
        let _ = cfg;
        self.hot_add_disk(mddev, rdev)
    }

    /// `hot_remove_disk`: take a failed or unused member out of its slot.
    fn hot_remove_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno>;

    /// `spare_active`: members fully recovered become In_sync; returns how
    /// many.
    fn spare_active(&self, mddev: &Mddev) -> u32;

    /// Array size in sectors for the given component size (a personality
    /// that uses every member whole, as linear and raid0, ignores it).
    fn size(&self, dev_sectors: u64) -> u64;

    /// `resize`: the component size becomes `dev_sectors` (the caller
    /// checked that every member has room).  Returns what md records: the
    /// component size as the personality rounds it, and the sectors a
    /// resync covers.  By default every sector of a member is one of the
    /// array's (RAID1).
    fn resize(&self, mddev: &Mddev, dev_sectors: u64) -> Result<Resized, Errno> {
        let _ = mddev;
        Ok(Resized {
            dev_sectors,
            resync_max_sectors: dev_sectors,
        })
    }

    /// Stop (true) or resume (false) all I/O.
    fn quiesce(&self, on: bool);

    /// `sync_request`: handle the sync step starting at `sector` of
    /// `max_sector`.  Returns the sectors covered.
    fn sync_request(&self, mddev: &Mddev, sector: u64, max_sector: u64) -> Result<SyncStep, Errno>;

    /// The array bytes, as `(offset, len)` (`len` 0: to the end), whose
    /// contents as reads see them a sync step that wrote (`sync_request`
    /// at `sector` over `sectors`, for resync, repair or recovery) may
    /// have changed: the kernel's cache of them must go.  `None` when
    /// such a step never changes what a read returns.  By default the
    /// whole array, which is always right.
    fn sync_changed(&self, sector: u64, sectors: u64) -> Option<(u64, u64)> {
        let _ = (sector, sectors);
        Some((0, 0))
    }

    /// Change the number of mirrors of the running array (`raid_disks`
    /// store): pack members into the low slots; EBUSY if more are in use
    /// than `n` allows.
    fn reshape_mirrors(&self, mddev: &Mddev, cfg: &mut Config, n: u32) -> Result<(), Errno>;

    /// `check_reshape` for a new layout or chunk (`cfg.new_layout`,
    /// `cfg.new_chunk_sectors`) of the running array, when the
    /// personality `has_check_reshape`.  No personality here reshapes its
    /// geometry: a change is refused with EINVAL, as RAID1's
    /// `raid1_reshape` refuses any; the same values are accepted.
    fn check_reshape(&self, _mddev: &Mddev, cfg: &Config) -> Result<(), Errno> {
        if cfg.new_layout != cfg.layout || cfg.new_chunk_sectors != cfg.chunk_sectors {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// `change_consistency_policy`: a word written to `consistency_policy`
    /// of the running array.  By default the personality has none: EBUSY.
    fn change_consistency_policy(
        &self,
        mddev: &Mddev,
        cfg: &Config,
        policy: &str,
    ) -> Result<(), Errno> {
        let _ = (mddev, cfg, policy);
        Err(Errno::EBUSY)
    }

    /// The value of its file `name` (one of `Personality::attrs`), with
    /// its newline.
    fn attr_show(&self, mddev: &Mddev, name: &str) -> Result<String, Errno> {
        let _ = (mddev, name);
        Err(Errno::ENODEV)
    }

    /// A value written to its file `name`.
    fn attr_store(&self, mddev: &Mddev, name: &str, value: &str) -> Result<(), Errno> {
        let _ = (mddev, name, value);
        Err(Errno::EINVAL)
    }

    /// Called when the array stops, after I/O has drained.
    fn free(&self, _mddev: &Mddev) {}
}

/// The personalities handed to md (`pers_list`), in registration order
/// (mdstat lists them so).  md names none of them: whoever builds the
/// program registers them (`Md::register_md_personality`), as each
/// module's init calls `register_md_personality`.
#[derive(Default)]
pub struct PersList(RwLock<Vec<&'static dyn Personality>>);

impl PersList {
    /// Add `p`; registering the same personality twice is harmless (the
    /// first stays, its place in the list too).
    pub fn register(&self, p: &'static dyn Personality) {
        let mut list = self.0.write();
        if !list.iter().any(|q| q.name() == p.name()) {
            list.push(p);
        }
    }

    /// Every registered personality, in registration order.
    pub fn all(&self) -> Vec<&'static dyn Personality> {
        self.0.read().clone()
    }

    /// `find_pers`: by level, or by name when the level is unset.
    pub fn find(&self, level: i32, clevel: &str) -> Option<&'static dyn Personality> {
        self.0.read().iter().copied().find(|p| {
            (level != super::LEVEL_NONE && p.level() == level)
                || (!clevel.is_empty() && p.name() == clevel)
        })
    }
}
