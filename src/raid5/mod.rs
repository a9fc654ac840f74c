//! The raid456 personality (drivers/md/raid5.c), registered three times
//! as the kernel's module registers `raid6`, `raid5` and `raid4`.
//!
//! Reads go straight to the member holding the data; a block whose member
//! is missing, failed, not yet recovered there, or whose read fails, is
//! rebuilt from the rest of its stripe (raid4/5: XOR with P; raid6: up to
//! two blocks from P and Q).  The sync step recomputes and compares
//! parity (resync, check, repair) and rebuilds recovering members.
//!
//! Writes are reconstruct-writes of the part of a chunk row they touch,
//! under the row's stripe lock (see `write_row`).
//!
//! I/O runs synchronously on the calling thread.

pub mod geometry;
pub mod parity;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use self::geometry::{Geometry, Stripe, algorithm_valid_raid5, algorithm_valid_raid6};
use crate::format::MAX_SECTOR;
use crate::kstr::{kstrtouint, kstrtoull};
use crate::md::fanout::{fan_out, fan_out_lanes, fan_out_lanes_sized, fan_out_sized};
use crate::md::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use crate::md::personality::{PersAttr, Personality, Raid, Resized, SyncStep};
use crate::md::pieces::{member_lanes, split_for_jobs};
use crate::md::slot::{activate_slot, leave_slot};
use crate::md::update::{md_error_io, md_write_end, md_write_start, rdev_dec_pending};
use crate::md::{Config, Errno, Mddev, Rdev};

/// `STRIPE_SECTORS`: the unit of parity work, one 4 KiB page per member.
const STRIPE_SECTORS: u64 = 8;
/// One `struct disk_info` (the member, its replacement, a page).
const DISK_INFO_BYTES: u64 = 24;
/// The most one kmalloc gives.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// Sectors per sync step (within one chunk).
const SYNC_SECTORS: u64 = 128;
/// Stripe locks (rows hash onto them).
const STRIPE_LOCKS: usize = 256;
/// `NR_STRIPES`: the default `stripe_cache_size`.
const NR_STRIPES: u32 = 256;

/// `raid5_attrs_group`.
static ATTRS: [PersAttr; 9] = [
    PersAttr {
        name: "stripe_cache_size",
        mode: 0o644,
    },
    PersAttr {
        name: "stripe_cache_active",
        mode: 0o444,
    },
    PersAttr {
        name: "preread_bypass_threshold",
        mode: 0o644,
    },
    PersAttr {
        name: "group_thread_cnt",
        mode: 0o644,
    },
    // Read-only where a page is the default stripe size (x86's 4 KiB).
    PersAttr {
        name: "stripe_size",
        mode: 0o444,
    },
    PersAttr {
        name: "skip_copy",
        mode: 0o644,
    },
    PersAttr {
        name: "rmw_level",
        mode: 0o644,
    },
    PersAttr {
        name: "journal_mode",
        mode: 0o644,
    },
    PersAttr {
        name: "ppl_write_hint",
        mode: 0o644,
    },
];

/// One of the three personalities raid5.c registers.
pub struct Raid456Personality {
    name: &'static str,
    level: i32,
}

pub static RAID6: Raid456Personality = Raid456Personality {
    name: "raid6",
    level: 6,
};
pub static RAID5: Raid456Personality = Raid456Personality {
    name: "raid5",
    level: 5,
};
pub static RAID4: Raid456Personality = Raid456Personality {
    name: "raid4",
    level: 4,
};

impl Personality for Raid456Personality {
    fn name(&self) -> &'static str {
        self.name
    }
    fn level(&self) -> i32 {
        self.level
    }
    fn redundant(&self) -> bool {
        true
    }
    /// `raid5_check_reshape`/`raid6_check_reshape` judge a new geometry;
    /// the reshape itself is not implemented.
    fn has_check_reshape(&self) -> bool {
        true
    }
    /// `raid5_resize`.
    fn has_resize(&self) -> bool {
        true
    }
    fn attrs(&self) -> &'static [PersAttr] {
        &ATTRS
    }

    /// `raid5_run` with `setup_conf`.
    fn run(&self, mddev: &Arc<Mddev>, cfg: &mut Config) -> Result<Arc<dyn Raid>, Errno> {
        let log = mddev.log();
        let name = &mddev.name;
        // Not implemented: refused before anything is written, the
        // images untouched.
        if cfg.has_journal || cfg.rdevs.iter().any(|r| r.flags.test(rf::JOURNAL)) {
            log.warn(format!(
                "md/raid:{name}: a journal device (write journal) is not supported"
            ));
            return Err(Errno::EINVAL);
        }
        if cfg.has_ppl {
            log.warn(format!(
                "md/raid:{name}: a partial parity log (PPL) is not supported"
            ));
            return Err(Errno::EINVAL);
        }
        if mddev.recovery_cp() != MAX_SECTOR {
            log.info(format!(
                "md/raid:{name}: not clean -- starting background reconstruction"
            ));
        }
        let pers: &'static Raid456Personality = match cfg.level {
            4 => &RAID4,
            5 => &RAID5,
            6 => &RAID6,
            l => {
                log.warn(format!("md/raid:{name}: raid level not set to 4/5/6 ({l})"));
                return Err(Errno::EIO);
            }
        };
        // setup_conf
        let layout = cfg.new_layout;
        if (cfg.level == 5 && !algorithm_valid_raid5(layout))
            || (cfg.level == 6 && !algorithm_valid_raid6(layout))
        {
            log.warn(format!("md/raid:{name}: layout {layout} not supported"));
            return Err(Errno::EIO);
        }
        let raid_disks = cfg.raid_disks as i32;
        if cfg.level == 6 && raid_disks < 4 {
            log.warn(format!(
                "md/raid:{name}: not enough configured devices ({raid_disks}, minimum 4)"
            ));
            return Err(Errno::EINVAL);
        }
        // The kernel would divide by zero data disks (and mdadm never
        // makes such an array): refused the same way.
        if cfg.level != 6 && (0..2).contains(&raid_disks) {
            log.warn(format!(
                "md/raid:{name}: not enough configured devices ({raid_disks}, minimum 2)"
            ));
            return Err(Errno::EINVAL);
        }
        let chunk = cfg.new_chunk_sectors as u64;
        if chunk == 0 || (chunk << 9) % 4096 != 0 || !chunk.is_power_of_two() {
            log.err(format!("md/raid:{name}: invalid chunk size {}", chunk << 9));
            return Err(Errno::EINVAL);
        }
        // setup_conf allocates the raid_disks disk_infos with one kcalloc,
        // which cannot exceed KMALLOC_MAX_SIZE (raid_disks is an int
        // there: 2^31 and up are negative): ENOMEM.
        if raid_disks < 0 || raid_disks as u64 * DISK_INFO_BYTES > KMALLOC_MAX_SIZE {
            log.warn(format!(
                "md/raid:{name}: cannot allocate the disks of raid_disks {raid_disks}"
            ));
            return Err(Errno::ENOMEM);
        }
        let n = raid_disks as usize;
        let mut disks: Vec<Option<Arc<Rdev>>> = vec![None; n];
        let mut replacements: Vec<Option<Arc<Rdev>>> = vec![None; n];
        let mut fullsync = false;
        for rdev in &cfg.rdevs {
            let rd = rdev.raid_disk();
            if rd < 0 || rd as usize >= n {
                continue;
            }
            let slot = if rdev.flags.test(rf::REPLACEMENT) {
                &mut replacements[rd as usize]
            } else {
                &mut disks[rd as usize]
            };
            if slot.is_some() {
                // setup_conf's abort, which says nothing.
                log.err(format!("md/raid:{name}: two devices claim raid disk {rd}"));
                return Err(Errno::EIO);
            }
            *slot = Some(rdev.clone());
            if rdev.in_sync() {
                log.info(format!(
                    "md/raid:{name}: device {} operational as raid disk {rd}",
                    rdev.name
                ));
            } else if rdev.saved_raid_disk() != rd {
                fullsync = true;
            }
        }
        // raid5_run: a replacement whose original is gone is all the slot
        // has; it becomes the slot's member, recovering.
        let disks: Vec<DiskInfo> = disks
            .into_iter()
            .zip(replacements)
            .map(|(rdev, replacement)| match (rdev, replacement) {
                (None, Some(repl)) => {
                    repl.flags.clear(rf::REPLACEMENT);
                    DiskInfo {
                        rdev: Some(repl),
                        replacement: None,
                    }
                }
                (rdev, replacement) => DiskInfo { rdev, replacement },
            })
            .collect();
        let geo = Geometry {
            level: cfg.level,
            algorithm: layout,
            raid_disks: n,
            chunk_sectors: chunk,
        };
        let conf = Conf {
            pers,
            geo,
            disks: RwLock::new(disks),
            fullsync: AtomicBool::new(fullsync),
            recovery_disabled: AtomicU32::new(cfg.recovery_disabled.wrapping_sub(1)),
            stripe_locks: (0..STRIPE_LOCKS).map(|_| Mutex::new(())).collect(),
            tunables: Mutex::new(Tunables {
                stripe_cache_size: NR_STRIPES,
                bypass_threshold: 1,
                group_thread_cnt: 0,
                skip_copy: false,
                rmw_level: 1,
            }),
            active_stripes: AtomicU32::new(0),
        };
        // raid5_calc_degraded
        let degraded = conf.calc_degraded();
        mddev.set_degraded(degraded as u32);
        if degraded > geo.max_degraded() {
            log.err(format!(
                "md/raid:{name}: not enough operational devices ({degraded}/{n} failed)"
            ));
            log.warn(format!("md/raid:{name}: failed to run raid set."));
            return Err(Errno::EIO);
        }
        // Members must be a whole number of chunks.
        cfg.dev_sectors &= !(chunk - 1);
        mddev.sync.set_resync_max_sectors(cfg.dev_sectors);
        // Members that are recovering hold only parity in what they
        // have not reached (`only_parity`) only for raid4/parity-N; any
        // such member counts here as the kernel counts dirty_parity_disks.
        let dirty_parity_disks = conf.dirty_parity_disks();
        if degraded > dirty_parity_disks && mddev.recovery_cp() != MAX_SECTOR {
            if mddev.ok_start_degraded() {
                log.err(format!(
                    "md/raid:{name}: starting dirty degraded array - data corruption possible."
                ));
            } else {
                log.err(format!(
                    "md/raid:{name}: cannot start dirty degraded array."
                ));
                log.warn(format!("md/raid:{name}: failed to run raid set."));
                return Err(Errno::EIO);
            }
        }
        log.info(format!(
            "md/raid:{name}: raid level {} active with {} out of {n} devices, algorithm {layout}",
            cfg.level,
            n - degraded
        ));
        Ok(Arc::new(conf))
    }
}

/// `struct r5conf`, what of it this implementation needs.
pub struct Conf {
    pers: &'static Raid456Personality,
    geo: Geometry,
    /// The member of each slot and its replacement (`conf->disks`).
    disks: RwLock<Vec<DiskInfo>>,
    fullsync: AtomicBool,
    recovery_disabled: AtomicU32,
    /// Stripe locks, by chunk row (hashed): a write's read-compute-write
    /// of a row, a sync step in it and a read rebuilt from its parity
    /// never interleave.
    stripe_locks: Vec<Mutex<()>>,
    tunables: Mutex<Tunables>,
    /// Stripes being worked on (`active_stripes`).
    active_stripes: AtomicU32,
}

/// `struct disk_info`: a slot's member and the member replacing it.
#[derive(Clone, Default)]
struct DiskInfo {
    rdev: Option<Arc<Rdev>>,
    replacement: Option<Arc<Rdev>>,
}

/// Members whose read failed: the slot and the member read.
type ReadErrors = Vec<(usize, Arc<Rdev>)>;

/// The settings of `raid5_attrs_group`.  Requests are handled one stripe
/// at a time without a cache, so these are kept and shown, bounded as the
/// kernel bounds them, but change nothing of how I/O is done -- except
/// `rmw_level`, which picks a write's method as md's does.
struct Tunables {
    stripe_cache_size: u32,
    bypass_threshold: u32,
    group_thread_cnt: u32,
    skip_copy: bool,
    rmw_level: u32,
}

/// A write of `write_blocks`: the row (an index), the member, what it
/// writes, and where (member sector, offset in the block, bytes).
type MemberWrites<'a> = (usize, &'a Arc<Rdev>, &'a Src<'a>, Vec<(u64, usize, usize)>);

/// A row's P and (raid6) Q.
type Parity = (Vec<u8>, Option<Vec<u8>>);

/// What one row write puts on its members: each member's block, and
/// the row's parity, given or computed by `compute` when its first
/// write starts.
struct RowBlocks<'a> {
    w: RowWrite<'a>,
    blocks: Vec<Src<'a>>,
    parity: OnceLock<Parity>,
    compute: Box<dyn Fn() -> Parity + Sync + 'a>,
}

impl<'a> RowBlocks<'a> {
    /// A reconstruct-write of row `w`, whose members' blocks are `row`
    /// (parity slots ignored): its parity is computed from them by the
    /// first parity write to start.
    fn reconstructed(conf: &'a Conf, w: RowWrite<'a>, row: Vec<Option<&'a [u8]>>) -> Self {
        let len = (w.nr * 512) as usize;
        RowBlocks {
            w,
            blocks: row_sources(w.st, &row),
            parity: OnceLock::new(),
            compute: Box::new(move || {
                let bufs: Vec<&[u8]> = row.iter().map(|b| b.unwrap_or(&[])).collect();
                conf.compute_parity(w.st, &bufs, len)
            }),
        }
    }

    /// A write of row `w` whose parity is already known.
    fn with_parity(w: RowWrite<'a>, row: &[Option<&'a [u8]>], parity: Parity) -> Self {
        RowBlocks {
            w,
            blocks: row_sources(w.st, row),
            parity: OnceLock::from(parity),
            compute: Box::new(|| unreachable!("the parity is given")),
        }
    }
}

/// Each member's [`Src`] in a row whose blocks are `row` (parity slots
/// ignored: the parity's own).
fn row_sources<'a>(st: &Stripe, row: &[Option<&'a [u8]>]) -> Vec<Src<'a>> {
    (0..row.len())
        .map(|i| match row[i] {
            _ if i == st.pd_idx => Src::P,
            _ if Some(i) == st.qd_idx => Src::Q,
            Some(b) => Src::Block(b),
            None => Src::Nothing,
        })
        .collect()
}

/// What a member's block of a row write holds.
enum Src<'a> {
    /// These bytes.
    Block(&'a [u8]),
    /// The row's P, or its Q: computed by the first write that needs it.
    P,
    Q,
    /// Nothing to write.
    Nothing,
}

/// Counts a stripe as active while it lives.
struct ActiveStripe<'a>(&'a AtomicU32);

impl<'a> ActiveStripe<'a> {
    fn new(c: &'a AtomicU32) -> Self {
        c.fetch_add(1, Ordering::AcqRel);
        ActiveStripe(c)
    }
}

impl Drop for ActiveStripe<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A member's block in a stripe: what could be read, or why not.
enum Block {
    Read(Vec<u8>),
    /// Missing, failed, not recovered this far, or the read failed.
    Lost,
}

impl Block {
    /// The block's bytes, if it has them.
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Block::Read(v) => Some(v),
            Block::Lost => None,
        }
    }
}

impl Conf {
    /// The lock of the chunk row holding member sector `dev_sector`.
    fn row_lock(&self, dev_sector: u64) -> parking_lot::MutexGuard<'_, ()> {
        let row = dev_sector / self.geo.chunk_sectors;
        self.stripe_locks[(row % STRIPE_LOCKS as u64) as usize].lock()
    }

    /// `raid5_calc_degraded`: a slot whose member failed counts its
    /// replacement instead, in sync or not.
    fn calc_degraded(&self) -> usize {
        self.disks
            .read()
            .iter()
            .filter(|d| {
                let r = match &d.rdev {
                    Some(r) if r.faulty() => d.replacement.as_ref(),
                    r => r.as_ref(),
                };
                r.is_none_or(|r| r.faulty() || !r.in_sync())
            })
            .count()
    }

    /// `only_parity` counted over the members not in sync: a member
    /// that only ever holds parity (raid4's last, or parity-first/last
    /// layouts) being rebuilt does not make a dirty array unsafe.
    fn dirty_parity_disks(&self) -> usize {
        let g = &self.geo;
        let only_parity = |i: usize| match (g.level, g.algorithm) {
            (4, _) => i == g.raid_disks - 1,
            (5, geometry::PARITY_0) => i == 0,
            (5, geometry::PARITY_N) => i == g.raid_disks - 1,
            (6, geometry::PARITY_0) => i <= 1,
            (6, geometry::PARITY_N) => i >= g.raid_disks - 2,
            (6, geometry::LEFT_ASYMMETRIC_6)
            | (6, geometry::RIGHT_ASYMMETRIC_6)
            | (6, geometry::LEFT_SYMMETRIC_6)
            | (6, geometry::RIGHT_SYMMETRIC_6) => i == g.raid_disks - 1,
            (6, geometry::PARITY_0_6) => i == 0 || i == g.raid_disks - 1,
            _ => false,
        };
        self.disks
            .read()
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                d.rdev
                    .as_ref()
                    .is_some_and(|r| !r.faulty() && !r.in_sync() && only_parity(*i))
            })
            .count()
    }

    /// The member of slot `i` that can serve `[dev_sector, +len)`, if
    /// one can: its replacement once recovered past it (`R5_ReadRepl`),
    /// else its member if not failed and in sync or recovered past it.
    fn readable(&self, i: usize, dev_sector: u64, len: u64) -> Option<Arc<Rdev>> {
        let d = &self.disks.read()[i];
        let end = dev_sector + len;
        if let Some(repl) = d.replacement.as_ref().filter(|r| !r.faulty()) {
            if repl.recovery_offset() >= end {
                return Some(repl.clone());
            }
        }
        d.rdev
            .clone()
            .filter(|r| !r.faulty() && (r.in_sync() || r.recovery_offset() >= end))
    }

    /// Read `len` sectors at `dev_sector` of member `i`; a failed read
    /// is Lost and noted in `errors`, for `fix_read_errors` once the
    /// block is rebuilt.
    fn read_member(
        &self,
        mddev: &Mddev,
        i: usize,
        dev_sector: u64,
        len: u64,
        errors: &mut ReadErrors,
    ) -> Block {
        let Some(r) = self.readable(i, dev_sector, len) else {
            return Block::Lost;
        };
        let mut buf = vec![0u8; (len * 512) as usize];
        r.nr_pending.fetch_add(1, Ordering::AcqRel);
        let ok = r.read_data(&mut buf, dev_sector).is_ok();
        rdev_dec_pending(mddev, &r);
        if ok {
            Block::Read(buf)
        } else {
            errors.push((i, r));
            Block::Lost
        }
    }

    /// [`Self::read_member`] of each member in `which`, all at once: each
    /// block, and the member whose read failed.
    fn read_members(
        &self,
        mddev: &Mddev,
        which: &[usize],
        dev_sector: u64,
        len: u64,
    ) -> Vec<(Block, Option<Arc<Rdev>>)> {
        fan_out_sized((len * 512) as usize, which.len(), |k| {
            let mut errors = Vec::new();
            let block = self.read_member(mddev, which[k], dev_sector, len, &mut errors);
            (block, errors.pop().map(|e| e.1))
        })
    }

    /// `raid5_end_read_request`'s error path and the rewrite that follows
    /// (`R5_ReadError`, `R5_ReWrite`): for each member whose read of
    /// `[dev_sector, +nr)` failed, now that `blocks` holds the block
    /// rebuilt from parity (None: it could not be), write it back and
    /// read it again; a member that cannot be cured, or has failed more
    /// reads than the stripe cache holds, is failed.  A read-only array
    /// writes nothing.  A replacement that fails a read is failed.
    /// Called with the row's stripe lock held.
    fn fix_read_errors(
        &self,
        mddev: &Mddev,
        errors: &[(usize, Arc<Rdev>)],
        blocks: Option<&[Block]>,
        dev_sector: u64,
        nr: u64,
    ) {
        let log = mddev.log();
        let name = &mddev.name;
        for (i, r) in errors {
            let (i, r) = (*i, r.clone());
            if r.faulty() {
                continue;
            }
            let cur = r.note_read_error();
            let abs = r.dev_sector(dev_sector).unwrap_or(dev_sector);
            if r.flags.test(rf::REPLACEMENT) {
                log.warn(format!(
                    "md/raid:{name}: read error on replacement device (sector {abs} on {}).",
                    r.name
                ));
                md_error_io(mddev, &r, mddev.fail_last_dev());
                continue;
            }
            let rebuilt = match blocks.map(|b| &b[i]) {
                Some(Block::Read(v)) => Some(v),
                _ => None,
            };
            if mddev.degraded() as usize >= self.geo.max_degraded() || rebuilt.is_none() {
                log.warn(format!(
                    "md/raid:{name}: read error not correctable (sector {abs} on {}).",
                    r.name
                ));
                md_error_io(mddev, &r, mddev.fail_last_dev());
                continue;
            }
            if cur > self.tunables.lock().stripe_cache_size {
                log.warn(format!(
                    "md/raid:{name}: Too many read errors, failing device {}.",
                    r.name
                ));
                md_error_io(mddev, &r, mddev.fail_last_dev());
                continue;
            }
            let Some(data) = rebuilt else { continue };
            if mddev.ro() != crate::md::ro::RDWR {
                continue;
            }
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let mut again = vec![0u8; data.len()];
            let cured = r.write_data(data, dev_sector).is_ok()
                && r.read_data(&mut again, dev_sector).is_ok()
                && again == *data;
            rdev_dec_pending(mddev, &r);
            if cured {
                r.add_corrected_errors(nr as u32);
                log.info(format!(
                    "md/raid:{name}: read error corrected ({nr} sectors at {abs} on {})",
                    r.name
                ));
            } else {
                log.warn(format!(
                    "md/raid:{name}: read error NOT corrected!! (sector {abs} on {}).",
                    r.name
                ));
                md_error_io(mddev, &r, mddev.fail_last_dev());
            }
        }
    }

    /// Rebuild the blocks of `blocks` that are Lost from the others, in
    /// stripe `st`; false if more are lost than the level can rebuild.
    fn reconstruct(&self, st: &Stripe, blocks: &mut [Block], len: usize) -> bool {
        let lost: Vec<usize> = (0..blocks.len())
            .filter(|&i| matches!(blocks[i], Block::Lost))
            .collect();
        if lost.is_empty() {
            return true;
        }
        if lost.len() > self.geo.max_degraded() {
            return false;
        }
        if self.geo.level != 6 {
            // P is the XOR of the data: any one block is the XOR of the rest.
            let srcs: Vec<&[u8]> = blocks.iter().filter_map(Block::bytes).collect();
            let mut out = vec![0u8; len];
            parity::xor_blocks(&mut out, &srcs);
            blocks[lost[0]] = Block::Read(out);
            return true;
        }
        let (nslots, slots) = self.geo.syndrome_slots(st);
        let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); nslots + 2];
        let mut zero = vec![true; nslots];
        for (i, b) in blocks.iter_mut().enumerate() {
            let s = slots[i];
            if s < nslots {
                zero[s] = false;
            }
            bufs[s] = match std::mem::replace(b, Block::Lost) {
                Block::Read(v) => v,
                Block::Lost => vec![0u8; len],
            };
        }
        for b in bufs.iter_mut() {
            if b.is_empty() {
                b.resize(len, 0);
            }
        }
        let failed: Vec<usize> = lost.iter().map(|&i| slots[i]).collect();
        {
            let mut views: Vec<&mut [u8]> = bufs.iter_mut().map(|v| &mut v[..]).collect();
            parity::raid6_recover(&mut views, &zero, &failed);
        }
        for (i, b) in blocks.iter_mut().enumerate() {
            *b = Block::Read(std::mem::take(&mut bufs[slots[i]]));
        }
        true
    }

    /// Read array sectors `[sector, +len)`, which lie in one chunk.
    fn read_chunk(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let len = (buf.len() / 512) as u64;
        let (dev_sector, dd_idx, st) = self.geo.compute_sector(sector);
        let mut errors = Vec::new();
        if let Some(r) = self.readable(dd_idx, dev_sector, len) {
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
            let ok = r.read_data(buf, dev_sector).is_ok();
            rdev_dec_pending(mddev, &r);
            if ok {
                return Ok(());
            }
            errors.push((dd_idx, r));
        }
        // Degraded: rebuild the block from the rest of its stripe, with
        // no write halfway through it.
        let _guard = self.row_lock(dev_sector);
        let _active = ActiveStripe::new(&self.active_stripes);
        let mut blocks: Vec<Block> = (0..self.geo.raid_disks)
            .map(|i| {
                if i == dd_idx {
                    Block::Lost
                } else {
                    self.read_member(mddev, i, dev_sector, len, &mut errors)
                }
            })
            .collect();
        let rebuilt = self.reconstruct(&st, &mut blocks, buf.len());
        self.fix_read_errors(
            mddev,
            &errors,
            rebuilt.then_some(&blocks[..]),
            dev_sector,
            len,
        );
        if !rebuilt {
            mddev.log().err(format!(
                "md/raid:{}: read error not correctable (sector {dev_sector} on raid disk {dd_idx}).",
                mddev.name
            ));
            return Err(Errno::EIO);
        }
        match &blocks[dd_idx] {
            Block::Read(v) => buf.copy_from_slice(v),
            Block::Lost => return Err(Errno::EIO),
        }
        Ok(())
    }

    /// One sync step over member sectors `[sector, +nr)` (within one
    /// chunk): read every member, rebuild what recovering members lack,
    /// compare (and for resync and repair rewrite) the parity, 4 KiB at
    /// a time as md's stripe heads do.
    fn sync_stripes(&self, mddev: &Mddev, sector: u64, nr: u64) -> Result<bool, Errno> {
        let recovery = &mddev.recovery;
        let check = recovery.test(rec::CHECK);
        let recover = recovery.test(rec::RECOVER) && !recovery.test(rec::SYNC);
        let st = self.geo.stripe(sector / self.geo.chunk_sectors);
        let n = self.geo.raid_disks;
        let len = (nr * 512) as usize;
        let _guard = self.row_lock(sector);
        let _active = ActiveStripe::new(&self.active_stripes);
        let members: Vec<DiskInfo> = self.disks.read().clone();
        let behind =
            |r: &Arc<Rdev>| !r.faulty() && !r.in_sync() && r.recovery_offset() < sector + nr;
        // Members to write: recovering ones not yet rebuilt here.
        let targets: Vec<usize> = (0..n)
            .filter(|&i| members[i].rdev.as_ref().is_some_and(behind))
            .collect();
        // Replacements not yet rebuilt here (`R5_NeedReplace`): each gets
        // its slot's block, read from the member it replaces when that
        // reads, else rebuilt from parity.  A check writes nothing.
        let replacing: Vec<usize> = (0..n)
            .filter(|&i| !check && members[i].replacement.as_ref().is_some_and(behind))
            .collect();
        let mut errors = Vec::new();
        let mut blocks: Vec<Block> = (0..n)
            .map(|i| {
                if targets.contains(&i) {
                    Block::Lost
                } else {
                    self.read_member(mddev, i, sector, nr, &mut errors)
                }
            })
            .collect();
        let lost = blocks.iter().filter(|b| matches!(b, Block::Lost)).count();
        if lost > self.geo.max_degraded() {
            // handle_failed_sync: nothing can be rebuilt; stop here.
            self.fix_read_errors(mddev, &errors, None, sector, nr);
            self.recovery_disabled
                .store(mddev.recovery_disabled(), Ordering::Release);
            recovery.set(rec::INTR);
            return Ok(false);
        }
        let lost_idx: Vec<usize> = (0..n)
            .filter(|&i| matches!(blocks[i], Block::Lost))
            .collect();
        if !self.reconstruct(&st, &mut blocks, len) {
            recovery.set(rec::INTR);
            return Ok(false);
        }
        self.fix_read_errors(mddev, &errors, Some(&blocks), sector, nr);
        // With every block at hand, check the parity blocks that were
        // read.  A RAID6 missing one member still has one syndrome to
        // check, as handle_parity_checks6 does: the block rebuilt from the
        // one agrees by construction, the other may not (after a crash
        // cut writes short) and is rewritten by a resync.
        let was_read = |i: usize| !lost_idx.contains(&i);
        let mut rewrite: Vec<usize> = Vec::new();
        if !recover {
            let bufs: Vec<&[u8]> = blocks
                .iter()
                .map(|b| match b {
                    Block::Read(v) => &v[..],
                    Block::Lost => unreachable!("rebuilt"),
                })
                .collect();
            let (p, q) = self.compute_parity(&st, &bufs, len);
            for off in (0..len).step_by((STRIPE_SECTORS * 512) as usize) {
                let end = (off + (STRIPE_SECTORS * 512) as usize).min(len);
                let p_bad = was_read(st.pd_idx) && bufs[st.pd_idx][off..end] != p[off..end];
                let q_bad = match (st.qd_idx, &q) {
                    (Some(qi), Some(q)) => was_read(qi) && bufs[qi][off..end] != q[off..end],
                    _ => false,
                };
                if p_bad || q_bad {
                    mddev.sync.add_mismatches(STRIPE_SECTORS);
                    // mismatches: the stripe's data pages, in array sectors.
                    let page = sector + (off / 512) as u64;
                    let end_s = ((end - off) / 512) as u64;
                    let mut pages: Vec<u64> = (0..n)
                        .filter_map(|i| self.geo.compute_blocknr(&st, page, i))
                        .collect();
                    pages.sort_unstable();
                    for a in pages {
                        mddev.sync.note_mismatch(a, end_s);
                    }
                    if !check {
                        if p_bad {
                            rewrite.push(st.pd_idx);
                        }
                        if q_bad {
                            rewrite.push(st.qd_idx.expect("Q"));
                        }
                    }
                }
            }
            rewrite.sort_unstable();
            rewrite.dedup();
            let mut newp = Some(p);
            let mut newq = q;
            for &i in &rewrite {
                let data = if i == st.pd_idx {
                    newp.take()
                } else {
                    newq.take()
                };
                if let Some(d) = data {
                    blocks[i] = Block::Read(d);
                }
            }
        }
        // What is written goes to a slot's replacement too.
        let mut writes: Vec<(&Arc<Rdev>, &[u8])> = Vec::new();
        for &i in targets.iter().chain(rewrite.iter()).chain(replacing.iter()) {
            let Block::Read(data) = &blocks[i] else {
                continue;
            };
            let to_rdev = !replacing.contains(&i) || targets.contains(&i) || rewrite.contains(&i);
            let rdev = members[i].rdev.as_ref().filter(|_| to_rdev);
            for r in [rdev, members[i].replacement.as_ref()]
                .into_iter()
                .flatten()
            {
                if !r.faulty() && !writes.iter().any(|w| Arc::ptr_eq(w.0, r)) {
                    writes.push((r, data));
                }
            }
        }
        for (r, _) in &writes {
            r.nr_pending.fetch_add(1, Ordering::AcqRel);
        }
        let written = fan_out_sized(len, writes.len(), |k| {
            writes[k].0.write_data(writes[k].1, sector).is_ok()
        });
        for ((r, _), ok) in writes.iter().zip(written) {
            rdev_dec_pending(mddev, r);
            if !ok {
                md_error_io(mddev, r, mddev.fail_last_dev());
            }
        }
        Ok(true)
    }

    /// Write array sectors `[sector, +len)`, which lie in one chunk row,
    /// by reconstruct-write: under the row's lock, read the row's other
    /// data blocks over the member range the write touches (rebuilding
    /// from parity what cannot be read), lay the new data over them,
    /// compute P (and Q) afresh and write the new data and the parity to
    /// every member not failed, recovering ones included.  A write that
    /// covers that range of every data block reads nothing; one that
    /// covers it in part is done in segments (as md's 4 KiB stripes are),
    /// so that only the segments it covers in part read: a write of a
    /// whole row but its last sector reads one sector.  Parity made
    /// this way is right even where the array was never synced (md too
    /// forces reconstruct-write past `recovery_cp`).
    fn write_row(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        let Some((st, pieces)) = self.row_pieces(sector, 0, data.len()) else {
            return Ok(());
        };
        let lo = pieces.iter().map(|p| p.1).min().unwrap_or(0);
        let hi = pieces.iter().map(|p| p.1 + p.3).max().unwrap_or(0);
        let bitmap = mddev.bitmap();
        if let Some(b) = &bitmap {
            let seq = b.startwrite(lo, hi - lo);
            b.unplug(mddev, seq);
        }
        let result = {
            let _guard = self.row_lock(lo);
            let _active = ActiveStripe::new(&self.active_stripes);
            segments(&pieces, lo, hi).try_for_each(|(a, b, seg)| {
                let w = RowWrite {
                    data,
                    st: &st,
                    pieces: &seg,
                    lo: a,
                    nr: b - a,
                };
                self.write_row_locked(mddev, &w)
            })
        };
        if let Some(b) = &bitmap {
            let ok = result.is_ok() && mddev.degraded() == 0;
            b.endwrite(mddev, lo, hi - lo, ok, mddev.events());
        }
        result
    }

    /// The stripe of the row holding array sectors `[sector, +len bytes)`
    /// and the pieces that write them: member, member sector, offset in
    /// the request's data (from `at`), sectors.  None for nothing.
    fn row_pieces(&self, sector: u64, at: usize, len: usize) -> Option<(Stripe, Vec<Piece>)> {
        let chunk = self.geo.chunk_sectors;
        let mut pieces: Vec<Piece> = Vec::new();
        let mut done = 0usize;
        let mut st = None;
        while done < len {
            let s = sector + (done / 512) as u64;
            let n = (chunk - s % chunk).min(((len - done) / 512) as u64);
            let (dev_sector, dd_idx, stripe) = self.geo.compute_sector(s);
            st = Some(stripe);
            pieces.push((dd_idx, dev_sector, at + done, n));
            done += (n * 512) as usize;
        }
        st.map(|st| (st, pieces))
    }

    /// Write `rows` whole rows from array sector `sector` (a row's
    /// start) at once: under every row's lock, each row's parity is
    /// computed from the new data alone (reconstruct-write reads nothing
    /// when it replaces a whole row) and every member's writes go out
    /// together, each member's rows in order, as md's stripes of one
    /// request run at once.
    fn write_whole_rows(
        &self,
        mddev: &Mddev,
        data: &[u8],
        sector: u64,
        rows: usize,
    ) -> Result<(), Errno> {
        let row_sectors = self.geo.chunk_sectors * self.geo.data_disks() as u64;
        let row_bytes = (row_sectors * 512) as usize;
        let laid: Vec<(Stripe, Vec<Piece>)> = (0..rows)
            .filter_map(|r| {
                self.row_pieces(sector + r as u64 * row_sectors, r * row_bytes, row_bytes)
            })
            .collect();
        let spans: Vec<(u64, u64)> = laid
            .iter()
            .map(|(_, p)| {
                let lo = p.iter().map(|p| p.1).min().unwrap_or(0);
                (lo, p.iter().map(|p| p.1 + p.3).max().unwrap_or(lo) - lo)
            })
            .collect();
        let (Some(&(lo, _)), Some(&(last, last_nr))) = (spans.first(), spans.last()) else {
            return Ok(());
        };
        let hi = last + last_nr;
        let bitmap = mddev.bitmap();
        if let Some(b) = &bitmap {
            let seq = b.startwrite(lo, hi - lo);
            b.unplug(mddev, seq);
        }
        let result = {
            // Every row's lock, in the locks' order (as any taker of more
            // than one takes them), each once.
            let mut locks: Vec<usize> = spans
                .iter()
                .map(|&(l, _)| ((l / self.geo.chunk_sectors) % STRIPE_LOCKS as u64) as usize)
                .collect();
            locks.sort_unstable();
            locks.dedup();
            let _guards: Vec<_> = locks.iter().map(|&i| self.stripe_locks[i].lock()).collect();
            let _active: Vec<ActiveStripe> = laid
                .iter()
                .map(|_| ActiveStripe::new(&self.active_stripes))
                .collect();
            let n = self.geo.raid_disks;
            let row_writes: Vec<RowBlocks> = laid
                .iter()
                .zip(&spans)
                .map(|((st, pieces), &(lo, nr))| {
                    let len = (nr * 512) as usize;
                    let mut row: Vec<Option<&[u8]>> = vec![None; n];
                    for &(i, _, off, _) in pieces {
                        row[i] = Some(&data[off..off + len]);
                    }
                    let w = RowWrite {
                        data,
                        st,
                        pieces,
                        lo,
                        nr,
                    };
                    RowBlocks::reconstructed(self, w, row)
                })
                .collect();
            self.write_blocks(mddev, &row_writes)
        };
        if let Some(b) = &bitmap {
            let ok = result.is_ok() && mddev.degraded() == 0;
            b.endwrite(mddev, lo, hi - lo, ok, mddev.events());
        }
        result
    }

    fn write_row_locked(&self, mddev: &Mddev, w: &RowWrite) -> Result<(), Errno> {
        let (data, st, pieces, lo, nr) = w.parts();
        let n = self.geo.raid_disks;
        let len = (nr * 512) as usize;
        let is_parity = |i: usize| i == st.pd_idx || Some(i) == st.qd_idx;
        let covered = |i: usize| pieces.iter().any(|p| p.0 == i && p.1 == lo && p.3 == nr);
        if self.prefers_rmw(mddev, w) {
            if let Some(r) = self.write_row_rmw(mddev, w) {
                return r;
            }
            // A read failed: reconstruct-write rebuilds what it can.
        }
        // Reconstruct-write: read what the new data does not wholly
        // replace.
        let mut errors = Vec::new();
        let mut blocks: Vec<Block> = (0..n).map(|_| Block::Lost).collect();
        let old: Vec<usize> = (0..n).filter(|&i| !is_parity(i) && !covered(i)).collect();
        for (i, (block, failed)) in old.iter().zip(self.read_members(mddev, &old, lo, nr)) {
            blocks[*i] = block;
            if let Some(r) = failed {
                errors.push((*i, r));
            }
        }
        let need_rebuild =
            (0..n).any(|i| !is_parity(i) && !covered(i) && matches!(blocks[i], Block::Lost));
        if need_rebuild {
            // An old data block must come from parity: read the parity
            // too, and the data the write replaces.
            for (i, b) in blocks.iter_mut().enumerate() {
                if matches!(b, Block::Lost) && !errors.iter().any(|e| e.0 == i) {
                    *b = self.read_member(mddev, i, lo, nr, &mut errors);
                }
            }
            let rebuilt = self.reconstruct(st, &mut blocks, len);
            // The old blocks that failed to read are rewritten as they
            // were before the new data goes over them.
            self.fix_read_errors(mddev, &errors, rebuilt.then_some(&blocks[..]), lo, nr);
            if !rebuilt {
                mddev.log().err(format!(
                    "md/raid:{}: cannot write: too many members missing in the stripe at sector {lo}",
                    mddev.name
                ));
                return Err(Errno::EIO);
            }
        }
        // Lay the new data over the old.  A block the write wholly
        // replaces is the caller's data itself, not a copy: a full row
        // write copies nothing before the parity.
        let mut new: Vec<Option<&[u8]>> = vec![None; n];
        for &(i, _, off, _) in pieces.iter().filter(|p| covered(p.0)) {
            new[i] = Some(&data[off..off + len]);
        }
        for (i, b) in blocks.iter_mut().enumerate() {
            if !is_parity(i) && new[i].is_none() && matches!(b, Block::Lost) {
                *b = Block::Read(vec![0u8; len]);
            }
        }
        for &(i, dev_sector, off, sectors) in pieces.iter().filter(|p| !covered(p.0)) {
            if let Block::Read(buf) = &mut blocks[i] {
                let at = ((dev_sector - lo) * 512) as usize;
                let l = (sectors * 512) as usize;
                buf[at..at + l].copy_from_slice(&data[off..off + l]);
            }
        }
        let row: Vec<Option<&[u8]>> = (0..n).map(|i| new[i].or(blocks[i].bytes())).collect();
        // The parity is computed by the first of its writes to run,
        // while the data's writes, which need nothing, are under way.
        let write = RowBlocks::reconstructed(self, *w, row);
        self.write_blocks(mddev, std::slice::from_ref(&write))
    }

    /// `handle_stripe_dirtying`'s choice between read-modify-write and
    /// reconstruct-write: count the blocks each must read (one it cannot
    /// read counts `2 * disks`) and take read-modify-write when it reads
    /// fewer, or as many with `rmw_level` 2 (`PARITY_PREFER_RMW`).
    /// `rmw_level` 0 never takes it, nor does a stripe at or past
    /// `recovery_cp` of an array with nothing failed: its parity may be
    /// wrong until the resync gets there, and only reconstruct-write
    /// makes it right.
    fn prefers_rmw(&self, mddev: &Mddev, w: &RowWrite) -> bool {
        let (_, st, pieces, lo, nr) = w.parts();
        let n = self.geo.raid_disks;
        let level = self.tunables.lock().rmw_level;
        let readable: Vec<bool> = (0..n).map(|i| self.readable(i, lo, nr).is_some()).collect();
        let failed = readable.iter().filter(|r| !**r).count();
        if level == 0
            || (mddev.recovery_cp() != MAX_SECTOR && lo >= mddev.recovery_cp() && failed == 0)
        {
            return false;
        }
        let cost = |i: usize| if readable[i] { 1 } else { 2 * n };
        let is_parity = |i: usize| i == st.pd_idx || Some(i) == st.qd_idx;
        let written = |i: usize| pieces.iter().any(|p| p.0 == i);
        let overwritten = |i: usize| pieces.iter().any(|p| p.0 == i && p.1 == lo && p.3 == nr);
        let rmw: usize = (0..n)
            .filter(|&i| written(i) || is_parity(i))
            .map(cost)
            .sum();
        let rcw: usize = (0..n)
            .filter(|&i| !is_parity(i) && !overwritten(i))
            .map(cost)
            .sum();
        rmw > 0 && (rmw < rcw || (rmw == rcw && level == 2))
    }

    /// Read-modify-write of a row (`ops_run_prexor5`/`6` then
    /// `ops_run_reconstruct`): read the old blocks the write touches and
    /// the old parity, and fold the difference between old and new data
    /// into P (and, times `g^slot`, into Q).  None when a read failed:
    /// nothing has been written then.
    fn write_row_rmw(&self, mddev: &Mddev, w: &RowWrite) -> Option<Result<(), Errno>> {
        let (data, st, pieces, lo, nr) = w.parts();
        let n = self.geo.raid_disks;
        let is_parity = |i: usize| i == st.pd_idx || Some(i) == st.qd_idx;
        let old: Vec<usize> = (0..n)
            .filter(|&i| is_parity(i) || pieces.iter().any(|p| p.0 == i))
            .collect();
        let mut blocks: Vec<Block> = (0..n).map(|_| Block::Lost).collect();
        for (i, (block, failed)) in old.iter().zip(self.read_members(mddev, &old, lo, nr)) {
            if failed.is_some() {
                return None;
            }
            blocks[*i] = block;
        }
        let (nslots, slots) = match st.qd_idx {
            Some(_) => self.geo.syndrome_slots(st),
            None => (0, Vec::new()),
        };
        let mut p = match std::mem::replace(&mut blocks[st.pd_idx], Block::Lost) {
            Block::Read(v) => v,
            Block::Lost => return None,
        };
        let mut q = match st
            .qd_idx
            .map(|qi| std::mem::replace(&mut blocks[qi], Block::Lost))
        {
            Some(Block::Read(v)) => Some(v),
            Some(Block::Lost) => return None,
            None => None,
        };
        for &(i, dev_sector, off, sectors) in pieces {
            let Block::Read(block) = &mut blocks[i] else {
                return None;
            };
            let at = ((dev_sector - lo) * 512) as usize;
            let l = (sectors * 512) as usize;
            let new = &data[off..off + l];
            // The difference the new data makes, then the new data.
            let mut delta = block[at..at + l].to_vec();
            parity::xor_into(&mut delta, new);
            block[at..at + l].copy_from_slice(new);
            parity::xor_into(&mut p[at..at + l], &delta);
            if let Some(q) = &mut q {
                debug_assert!(slots[i] < nslots, "a data block has a syndrome slot");
                parity::xor_mul_into(&mut q[at..at + l], &delta, parity::gf::exp(slots[i]));
            }
        }
        let row: Vec<Option<&[u8]>> = blocks.iter().map(Block::bytes).collect();
        let write = RowBlocks::with_parity(*w, &row, (p, q));
        Some(self.write_blocks(mddev, std::slice::from_ref(&write)))
    }

    /// Write what changed in a row's `blocks` (each member's new block
    /// over `[lo, +nr)`, parity included): the new data where `pieces`
    /// put it, and the whole parity, every member's writes issued before
    /// any is waited for.  A slot's replacement is written as its member
    /// is (`ops_run_io`'s `rrdev`), over what it has not recovered yet
    /// too.  A member whose write fails is failed; the write fails when
    /// the array has lost more members than it can.  Each row's parity
    /// is given, or computed as its first write starts, beside the
    /// data's writes.  Several rows go out at once, each member's in
    /// order.
    fn write_blocks(&self, mddev: &Mddev, rows: &[RowBlocks]) -> Result<(), Errno> {
        let members: Vec<DiskInfo> = self.disks.read().clone();
        let mut writes: Vec<MemberWrites> = Vec::new();
        let mut largest = 0;
        for (k, row) in rows.iter().enumerate() {
            let (_, st, pieces, lo, nr) = row.w.parts();
            let len = (nr * 512) as usize;
            largest = largest.max(len);
            let is_parity = |i: usize| i == st.pd_idx || Some(i) == st.qd_idx;
            for (i, (src, member)) in row.blocks.iter().zip(&members).enumerate() {
                if matches!(src, Src::Nothing) {
                    continue;
                }
                let ranges: Vec<(u64, usize, usize)> = if is_parity(i) {
                    vec![(lo, 0, len)]
                } else {
                    pieces
                        .iter()
                        .filter(|p| p.0 == i)
                        .map(|p| (p.1, ((p.1 - lo) * 512) as usize, (p.3 * 512) as usize))
                        .collect()
                };
                if ranges.is_empty() {
                    continue;
                }
                for r in [&member.rdev, &member.replacement].into_iter().flatten() {
                    if !r.faulty() {
                        r.nr_pending.fetch_add(1, Ordering::AcqRel);
                        writes.push((k, r, src, ranges.clone()));
                    }
                }
            }
        }
        // Rows in order (a member's writes go in order on its lane), and
        // in a row P's write first, so that the caller's thread (which
        // runs the first lane) computes the parity while the others
        // write the data; Q's last, so that it waits as late as it can.
        writes.sort_by_key(|(k, _, src, _)| {
            let kind = match src {
                Src::P => 0,
                Src::Q => 2,
                _ => 1,
            };
            (*k, kind)
        });
        let lanes = member_lanes(writes.iter().map(|w| w.1));
        let written = fan_out_lanes_sized(largest, &lanes, |j| {
            let (k, r, src, ranges) = &writes[j];
            let row = &rows[*k];
            let parity = || row.parity.get_or_init(|| (row.compute)());
            let buf: &[u8] = match src {
                Src::Block(b) => b,
                Src::P => &parity().0,
                Src::Q => parity().1.as_deref().unwrap_or_default(),
                Src::Nothing => &[],
            };
            ranges.iter().all(|&(at, off, l)| {
                buf.get(off..off + l)
                    .is_some_and(|b| r.write_data(b, at).is_ok())
            })
        });
        for ((_, r, _, _), ok) in writes.iter().zip(written) {
            rdev_dec_pending(mddev, r);
            if !ok {
                md_error_io(mddev, r, mddev.fail_last_dev());
            }
        }
        if mddev.degraded() as usize > self.geo.max_degraded() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// P (and Q) of a stripe's blocks, in md's order.
    fn compute_parity(
        &self,
        st: &Stripe,
        bufs: &[&[u8]],
        len: usize,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut p = vec![0u8; len];
        if self.geo.level != 6 {
            let data: Vec<&[u8]> = (0..bufs.len())
                .filter(|&i| i != st.pd_idx && Some(i) != st.qd_idx)
                .map(|i| bufs[i])
                .collect();
            parity::xor_blocks(&mut p, &data);
            return (p, None);
        }
        let (nslots, slots) = self.geo.syndrome_slots(st);
        let mut data: Vec<Option<&[u8]>> = vec![None; nslots];
        for (i, b) in bufs.iter().enumerate() {
            if slots[i] < nslots {
                data[slots[i]] = Some(b);
            }
        }
        let mut q = vec![0u8; len];
        parity::gen_syndrome(&data, Some(&mut p), Some(&mut q));
        (p, Some(q))
    }
}

impl Raid for Conf {
    fn personality(&self) -> &'static dyn Personality {
        self.pers
    }

    /// Chunk by chunk, as many chunks at once as there are data members
    /// (consecutive chunks lie on different members).
    fn read(&self, mddev: &Mddev, buf: &mut [u8], sector: u64) -> Result<(), Errno> {
        let chunk = self.geo.chunk_sectors;
        let sectors = (buf.len() / 512) as u64;
        let mut pieces = Vec::new();
        let mut done = 0u64;
        while done < sectors {
            let s = sector + done;
            let n = (chunk - s % chunk).min(sectors - done);
            pieces.push((s, n));
            done += n;
        }
        let slices = split_for_jobs(buf, pieces.iter().map(|p| (p.1 * 512) as usize));
        let lanes: Vec<usize> = (0..pieces.len())
            .map(|i| i % self.geo.data_disks())
            .collect();
        fan_out_lanes(&lanes, |i| {
            self.read_chunk(mddev, &mut slices[i].lock(), pieces[i].0)
        })
        .into_iter()
        .collect()
    }

    /// `raid5_make_request` for a write: row by row, each under its
    /// stripe lock, as `write_row` says.
    fn write(&self, mddev: &Mddev, data: &[u8], sector: u64) -> Result<(), Errno> {
        md_write_start(mddev)?;
        let row_sectors = self.geo.chunk_sectors * self.geo.data_disks() as u64;
        let mut done = 0usize;
        let mut result = Ok(());
        while done < data.len() {
            let s = sector + (done / 512) as u64;
            let whole = ((data.len() - done) / 512) as u64 / row_sectors;
            let r = if s % row_sectors == 0 && whole >= 2 {
                let n = (whole * row_sectors * 512) as usize;
                let r = self.write_whole_rows(mddev, &data[done..done + n], s, whole as usize);
                done += n;
                r
            } else {
                let n = (row_sectors - s % row_sectors).min(((data.len() - done) / 512) as u64);
                let piece = &data[done..done + (n * 512) as usize];
                done += piece.len();
                self.write_row(mddev, piece, s)
            };
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        md_write_end(mddev, mddev.safemode_delay());
        result
    }

    /// md sends its preflush to every member at once.  A member that
    /// cannot flush is failed, as one that cannot write: the flush fails
    /// only when the array has lost more members than it can.
    fn flush(&self, mddev: &Mddev) -> Result<(), Errno> {
        let members: Vec<Arc<Rdev>> = self
            .disks
            .read()
            .iter()
            .flat_map(|d| [d.rdev.clone(), d.replacement.clone()])
            .flatten()
            .filter(|r| !r.faulty())
            .collect();
        let flushed: Vec<std::io::Result<()>> = fan_out(members.len(), |i| members[i].disk.flush());
        for (r, res) in members.iter().zip(flushed) {
            if res.is_err() {
                md_error_io(mddev, r, mddev.fail_last_dev());
            }
        }
        if mddev.degraded() as usize > self.geo.max_degraded() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// `raid5_status`.
    fn status(&self, mddev: &Mddev) -> String {
        let n = self.geo.raid_disks;
        let mut s = format!(
            " level {}, {}k chunk, algorithm {} [{n}/{}] [",
            self.geo.level,
            self.geo.chunk_sectors / 2,
            self.geo.algorithm,
            n as u32 - mddev.degraded().min(n as u32)
        );
        for d in self.disks.read().iter() {
            s.push(if d.rdev.as_ref().is_some_and(|r| r.in_sync()) {
                'U'
            } else {
                '_'
            });
        }
        s.push(']');
        s
    }

    /// `raid5_error`.
    fn error_handler(&self, mddev: &Mddev, rdev: &Arc<Rdev>, _fail_last_dev: bool) {
        let n = self.geo.raid_disks;
        {
            let _d = self.disks.write();
            rdev.flags.set(rf::FAULTY);
            rdev.flags.clear(rf::IN_SYNC);
        }
        let degraded = self.calc_degraded();
        mddev.set_degraded(degraded as u32);
        if degraded > self.geo.max_degraded() {
            mddev.flags.set(mf::BROKEN);
            self.recovery_disabled
                .store(mddev.recovery_disabled(), Ordering::Release);
            mddev.log().err(format!(
                "md/raid:{}: Cannot continue operation ({degraded}/{n} failed).",
                mddev.name
            ));
        } else {
            mddev.log().err(format!(
                "md/raid:{}: Disk failure on {}, disabling device.\nmd/raid:{}: Operation continuing on {} devices.",
                mddev.name,
                rdev.name,
                mddev.name,
                n - degraded
            ));
        }
        mddev.recovery.set(rec::INTR);
        rdev.flags.set(rf::BLOCKED);
        mddev.sb_flags.set(sbf::CHANGE_DEVS | sbf::CHANGE_PENDING);
        mddev.notify("degraded");
    }

    /// `raid5_add_disk`: the spare takes its saved slot, else the first
    /// empty one; with none empty, it becomes the replacement of the
    /// first member that wants one and has none.
    fn hot_add_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        if mddev.recovery_disabled() == self.recovery_disabled.load(Ordering::Acquire) {
            return Err(Errno::EBUSY);
        }
        if self.calc_degraded() > self.geo.max_degraded() {
            // has_failed: no point adding another drive.
            return Err(Errno::EINVAL);
        }
        let n = self.geo.raid_disks;
        let mut d = self.disks.write();
        let (mut first, mut last) = (0usize, n - 1);
        if rdev.raid_disk() >= 0 {
            first = rdev.raid_disk() as usize;
            last = first;
        }
        let saved = rdev.saved_raid_disk();
        if saved >= 0
            && saved as usize >= first
            && (saved as usize) <= last
            && d[saved as usize].rdev.is_none()
        {
            first = saved as usize;
        }
        let last = last.min(n - 1);
        for i in first..=last {
            if d[i].rdev.is_none() {
                rdev.set_raid_disk(i as i32);
                if saved != i as i32 {
                    self.fullsync.store(true, Ordering::Release);
                }
                d[i].rdev = Some(rdev.clone());
                return Ok(());
            }
        }
        for i in first..=last {
            let p = &mut d[i];
            if p.replacement.is_none()
                && p.rdev
                    .as_ref()
                    .is_some_and(|r| r.flags.test(rf::WANT_REPLACEMENT))
            {
                rdev.flags.clear(rf::IN_SYNC);
                rdev.flags.set(rf::REPLACEMENT);
                rdev.set_raid_disk(i as i32);
                self.fullsync.store(true, Ordering::Release);
                p.replacement = Some(rdev.clone());
                return Ok(());
            }
        }
        Err(Errno::EEXIST)
    }

    /// `raid5_remove_disk`: a slot's member or its replacement; when the
    /// member leaves, its replacement takes the slot.
    fn hot_remove_disk(&self, mddev: &Mddev, rdev: &Arc<Rdev>) -> Result<(), Errno> {
        let n = self.geo.raid_disks;
        let idx = rdev.raid_disk();
        if idx < 0 || idx as usize >= n {
            return Ok(());
        }
        let degraded = self.calc_degraded();
        let mut d = self.disks.write();
        let p = &mut d[idx as usize];
        let is_rdev = p.rdev.as_ref().is_some_and(|r| Arc::ptr_eq(r, rdev));
        let is_repl = p.replacement.as_ref().is_some_and(|r| Arc::ptr_eq(r, rdev));
        if !is_rdev && !is_repl {
            return Ok(());
        }
        if rdev.in_sync() || rdev.nr_pending.load(Ordering::Acquire) > 0 {
            return Err(Errno::EBUSY);
        }
        // Only a failed member, or a spare while recovery cannot go on,
        // leaves its slot; a working member being replaced stays until
        // its replacement is done.
        if !rdev.faulty()
            && mddev.recovery_disabled() != self.recovery_disabled.load(Ordering::Acquire)
            && degraded <= self.geo.max_degraded()
            && (p.replacement.is_none() || is_repl)
        {
            return Err(Errno::EBUSY);
        }
        leave_slot(&mut p.rdev, &mut p.replacement, is_rdev, rdev);
        Ok(())
    }

    /// `raid5_spare_active`: a replacement recovered whole goes in sync
    /// and its original is marked failed, to leave and never come back.
    fn spare_active(&self, mddev: &Mddev) -> u32 {
        let mut count = 0;
        for p in self.disks.read().iter() {
            count += activate_slot(mddev, p.rdev.as_ref(), p.replacement.as_ref());
        }
        mddev.set_degraded(self.calc_degraded() as u32);
        count
    }

    /// `raid5_size`: whole chunks of every data member.
    fn size(&self, dev_sectors: u64) -> u64 {
        (dev_sectors & !(self.geo.chunk_sectors - 1)) * self.geo.data_disks() as u64
    }

    /// `raid5_resize`: whole chunks of each member; a resync covers the
    /// members' sectors.
    fn resize(&self, _mddev: &Mddev, sectors: u64) -> Result<Resized, Errno> {
        let dev_sectors = sectors & !(self.geo.chunk_sectors - 1);
        if dev_sectors == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(Resized {
            dev_sectors,
            resync_max_sectors: dev_sectors,
        })
    }

    fn quiesce(&self, on: bool) {
        let _ = on;
    }

    /// `raid5_sync_request`, done synchronously, a chunk's part at a time.
    /// A sync rewrites parity (resync, repair) or a missing member's
    /// blocks (recovery) as reads already reconstructed them: what a read
    /// returns never changes.
    fn sync_changed(&self, _sector: u64, _sectors: u64) -> Option<(u64, u64)> {
        None
    }

    fn sync_request(&self, mddev: &Mddev, sector: u64, max_sector: u64) -> Result<SyncStep, Errno> {
        let bitmap = mddev.bitmap();
        let requested = mddev.recovery.test(rec::REQUESTED);
        if sector >= max_sector {
            if let Some(b) = &bitmap {
                let cur = mddev.sync.curr_resync();
                if cur < max_sector {
                    b.end_sync(cur, true);
                } else {
                    self.fullsync.store(false, Ordering::Release);
                }
                b.close_sync(mddev.sync.resync_max_sectors());
            } else if mddev.sync.curr_resync() >= max_sector {
                self.fullsync.store(false, Ordering::Release);
            }
            return Ok(SyncStep {
                sectors: 0,
                skipped: false,
            });
        }
        // A resync of an array missing as many members as it can lose
        // has nothing to make consistent (a dirty degraded array started
        // by start_dirty_degraded): skipped whole, as raid5_sync_request.
        if mddev.recovery.test(rec::SYNC) && mddev.degraded() as usize >= self.geo.max_degraded() {
            return Ok(SyncStep {
                sectors: max_sector - sector,
                skipped: true,
            });
        }
        let still_degraded = self.calc_degraded() > 0;
        let fullsync = self.fullsync.load(Ordering::Acquire);
        // A recovery of a member with nothing to rebuild, or a resync of
        // a clean array without a bitmap: nothing to do.
        if mddev.recovery.test(rec::SYNC)
            && !requested
            && bitmap.is_none()
            && mddev.recovery_cp() == MAX_SECTOR
        {
            return Ok(SyncStep {
                sectors: max_sector - sector,
                skipped: true,
            });
        }
        let chunk = self.geo.chunk_sectors;
        let mut nr = SYNC_SECTORS
            .min(chunk - sector % chunk)
            .min(max_sector - sector)
            .min(
                mddev
                    .sync
                    .resync_max()
                    .saturating_sub(sector)
                    .max(STRIPE_SECTORS),
            );
        // A recovery while a resync is still owed (an unclean array
        // rebuilding a member) leaves the bitmap's record of the resync,
        // as RAID1's does (Linux clears it).
        let resync_owed = !mddev.recovery.test(rec::SYNC) && mddev.recovery_cp() != MAX_SECTOR;
        if let Some(b) = &bitmap {
            let (needed, blocks) = b.start_sync(mddev, sector, still_degraded || resync_owed);
            if !needed && !fullsync && !requested {
                return Ok(SyncStep {
                    sectors: blocks.max(1).min(max_sector - sector),
                    skipped: true,
                });
            }
            nr = nr.min(blocks.max(STRIPE_SECTORS));
            b.cond_end_sync(mddev, sector, false);
        }
        if !self.sync_stripes(mddev, sector, nr)? {
            return Ok(SyncStep {
                sectors: 0,
                skipped: false,
            });
        }
        mddev.sync.add_io(nr);
        Ok(SyncStep {
            sectors: nr,
            skipped: false,
        })
    }

    /// A new number of members: judged as `check_reshape` judges it.
    fn reshape_mirrors(&self, mddev: &Mddev, cfg: &mut Config, _n: u32) -> Result<(), Errno> {
        self.check_reshape(mddev, cfg)
    }

    /// `raid5_change_consistency_policy`: `ppl` on a RAID5 without one
    /// goes through `ppl_init_log`'s checks, then is refused, as mdfuse
    /// keeps no partial parity log (EOPNOTSUPP); `resync` has no log to
    /// drop (EINVAL), nor has any other word.
    fn change_consistency_policy(
        &self,
        mddev: &Mddev,
        cfg: &Config,
        policy: &str,
    ) -> Result<(), Errno> {
        if !policy.starts_with("ppl") || cfg.level != 5 {
            return Err(Errno::EINVAL);
        }
        let name = &mddev.name;
        let log = mddev.log();
        if cfg.bitmap_info.offset != 0 {
            log.warn(format!("md/raid:{name} PPL is not compatible with bitmap"));
            return Err(Errno::EINVAL);
        }
        if cfg.raid_disks > 64 {
            log.warn(format!(
                "md/raid:{name} PPL doesn't support over 64 disks in the array"
            ));
            return Err(Errno::EINVAL);
        }
        // ppl_validate_rdev: room for the header and one stripe's partial
        // parity, outside the data.
        for r in cfg.rdevs.iter().filter(|r| r.raid_disk() >= 0) {
            let (sector, size) = *r.ppl.lock();
            let data = (size as i64 - 8).max(0) / STRIPE_SECTORS as i64 * STRIPE_SECTORS as i64;
            if data <= 0 {
                log.warn(format!("md/raid:{name}: PPL space too small on {}", r.name));
                return Err(Errno::ENOSPC);
            }
            let (start, end) = (r.data_offset(), r.data_offset() + r.sectors());
            if (sector < start && sector + data as u64 + 8 > start)
                || (sector >= start && end > sector)
            {
                log.warn(format!(
                    "md/raid:{name}: PPL space overlaps with data on {}",
                    r.name
                ));
                return Err(Errno::EINVAL);
            }
        }
        log.warn(format!(
            "md/raid:{name}: a partial parity log is not supported by mdfuse"
        ));
        Err(Errno::EOPNOTSUPP)
    }

    /// `raid5_check_reshape` (RAID4/5) and `raid6_check_reshape`, then
    /// `check_reshape`: what they refuse is EINVAL (ENOSPC for a stripe
    /// cache too small for the new chunk); the same geometry is nothing to
    /// do.  A change they would accept needs a reshape, which mdfuse does
    /// not do: EBUSY.
    fn check_reshape(&self, mddev: &Mddev, cfg: &Config) -> Result<(), Errno> {
        let valid = match cfg.level {
            6 => algorithm_valid_raid6(cfg.new_layout),
            _ => algorithm_valid_raid5(cfg.new_layout),
        };
        if cfg.new_layout >= 0 && !valid {
            return Err(Errno::EINVAL);
        }
        let chunk = cfg.new_chunk_sectors as u64;
        if chunk > 0
            && (!chunk.is_power_of_two()
                || chunk < STRIPE_SECTORS
                || mddev.array_sectors() & (chunk - 1) != 0)
        {
            return Err(Errno::EINVAL);
        }
        if cfg.delta_disks == 0
            && cfg.new_layout == cfg.layout
            && cfg.new_chunk_sectors == cfg.chunk_sectors
        {
            return Ok(());
        }
        let max_degraded = if cfg.level == 6 { 2 } else { 1 };
        if mddev.degraded() > max_degraded {
            return Err(Errno::EINVAL);
        }
        let min = if cfg.level == 6 { 4 } else { 2 };
        if cfg.delta_disks < 0 && (cfg.raid_disks as i64 + cfg.delta_disks as i64) < min {
            return Err(Errno::EINVAL);
        }
        // check_stripe_cache: four stripes' worth of the larger chunk.
        let cache = self.tunables.lock().stripe_cache_size as u64;
        let larger = chunk.max(cfg.chunk_sectors as u64);
        if larger * 4 > cache * STRIPE_SECTORS {
            return Err(Errno::ENOSPC);
        }
        Err(Errno::EBUSY)
    }

    fn attr_show(&self, _mddev: &Mddev, name: &str) -> Result<String, Errno> {
        let t = self.tunables.lock();
        Ok(match name {
            "stripe_cache_size" => format!("{}\n", t.stripe_cache_size),
            "stripe_cache_active" => format!("{}\n", self.active_stripes.load(Ordering::Acquire)),
            "preread_bypass_threshold" => format!("{}\n", t.bypass_threshold),
            "group_thread_cnt" => format!("{}\n", t.group_thread_cnt),
            // STRIPE_SIZE: one page.
            "stripe_size" => format!("{}\n", STRIPE_SECTORS * 512),
            "skip_copy" => format!("{}\n", t.skip_copy as u8),
            "rmw_level" => format!("{}\n", t.rmw_level),
            // No journal: r5c_journal_mode_show prints nothing.
            "journal_mode" => String::new(),
            // No PPL: the hint reads 0.
            "ppl_write_hint" => "0\n".to_owned(),
            _ => return Err(Errno::ENODEV),
        })
    }

    /// The stores of `raid5_attrs_group`, with their bounds and errnos.
    fn attr_store(&self, _mddev: &Mddev, name: &str, value: &str) -> Result<(), Errno> {
        let ul = || kstrtoull(value).map_err(|_| Errno::EINVAL);
        let mut t = self.tunables.lock();
        match name {
            // raid5_set_cache_size, which takes the unsigned long as an
            // int; the bypass threshold stays as it was.
            "stripe_cache_size" => {
                let v = ul()? as i32;
                if v <= 16 || v > 32768 {
                    return Err(Errno::EINVAL);
                }
                t.stripe_cache_size = v as u32;
            }
            "preread_bypass_threshold" => {
                let v = ul()?;
                if v > t.stripe_cache_size as u64 {
                    return Err(Errno::EINVAL);
                }
                t.bypass_threshold = v as u32;
            }
            "group_thread_cnt" => {
                let v = kstrtouint(value).map_err(|_| Errno::EINVAL)?;
                if v > 8192 {
                    return Err(Errno::EINVAL);
                }
                t.group_thread_cnt = v;
            }
            "skip_copy" => t.skip_copy = ul()? != 0,
            // PARITY_DISABLE_RMW, PARITY_ENABLE_RMW, PARITY_PREFER_RMW
            "rmw_level" => {
                let v = ul()?;
                if v > 2 {
                    return Err(Errno::EINVAL);
                }
                t.rmw_level = v as u32;
            }
            // r5c_journal_mode_store: a mode's name, then no log: ENODEV.
            "journal_mode" => {
                return Err(if matches!(value, "write-through" | "write-back") {
                    Errno::ENODEV
                } else {
                    Errno::EINVAL
                });
            }
            // ppl_write_hint_store: a u16, then no PPL: EINVAL.
            "ppl_write_hint" => return Err(Errno::EINVAL),
            _ => return Err(Errno::ENODEV),
        }
        Ok(())
    }
}

/// A row write's piece: member, member sector, offset in the data,
/// sectors.
type Piece = (usize, u64, usize, u64);

/// One segment of a row write: the new data, the row's stripe, the
/// pieces that write it and the member range `[lo, +nr)` they lie in.
#[derive(Clone, Copy)]
struct RowWrite<'a> {
    data: &'a [u8],
    st: &'a Stripe,
    pieces: &'a [Piece],
    lo: u64,
    nr: u64,
}

impl<'a> RowWrite<'a> {
    /// The data, stripe, pieces, first member sector and sectors.
    fn parts(&self) -> (&'a [u8], &'a Stripe, &'a [Piece], u64, u64) {
        (self.data, self.st, self.pieces, self.lo, self.nr)
    }
}

/// The member ranges of a row write's `pieces` over `[lo, hi)` in which
/// the same pieces write, each with those pieces cut to it; ranges no
/// piece writes are left out.
fn segments(
    pieces: &[Piece],
    lo: u64,
    hi: u64,
) -> impl Iterator<Item = (u64, u64, Vec<Piece>)> + '_ {
    let mut cuts: Vec<u64> = pieces
        .iter()
        .flat_map(|p| [p.1, p.1 + p.3])
        .chain([lo, hi])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let bounds: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    bounds.into_iter().filter_map(move |(a, b)| {
        let seg: Vec<Piece> = pieces
            .iter()
            .filter_map(|&(i, at, off, len)| {
                let (s, e) = (at.max(a), (at + len).min(b));
                (s < e).then(|| (i, s, off + ((s - at) * 512) as usize, e - s))
            })
            .collect();
        (!seg.is_empty()).then_some((a, b, seg))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_row_is_one_segment() {
        let pieces = [(0, 100, 0, 8), (1, 100, 4096, 8)];
        let segs: Vec<_> = segments(&pieces, 100, 108).collect();
        assert_eq!(segs, vec![(100, 108, pieces.to_vec())]);
    }

    #[test]
    fn a_row_short_of_its_last_sector_reads_only_there() {
        // Member 0 whole, member 1 all but its last sector.
        let pieces = [(0, 0, 0, 8), (1, 0, 4096, 7)];
        let segs: Vec<_> = segments(&pieces, 0, 8).collect();
        assert_eq!(
            segs,
            vec![
                (0, 7, vec![(0, 0, 0, 7), (1, 0, 4096, 7)]),
                (7, 8, vec![(0, 7, 3584, 1)]),
            ]
        );
    }

    #[test]
    fn a_write_across_two_chunks_leaves_the_gap_out() {
        // The end of member 0's chunk, then the start of member 1's.
        let pieces = [(0, 6, 0, 2), (1, 0, 1024, 3)];
        let segs: Vec<_> = segments(&pieces, 0, 8).collect();
        assert_eq!(
            segs,
            vec![(0, 3, vec![(1, 0, 1024, 3)]), (6, 8, vec![(0, 6, 0, 2)])]
        );
    }
}
