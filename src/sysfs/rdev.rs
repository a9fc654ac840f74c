//! Member attributes (`md/dev-NAME/*`), as md.c's `rdev_default_attrs[]`,
//! plus `fault`, mdfuse's fault-injection control (a testing aid).

use std::sync::Arc;

use super::{Group, Row};
use crate::disk::DiskKind;
use crate::format::MAX_SECTOR;
use crate::kstr::{cmd_match, kstrtouint, kstrtoull, strict_blocks_to_sectors};
use crate::md::flags::{mddev as mf, rdev as rf, recovery as rec, sb as sbf};
use crate::md::{Errno, Mddev, Rdev, bind, resize, sync, update};

/// What a member attribute works on.
pub struct RdevCtx {
    pub mddev: Arc<Mddev>,
    pub rdev: Arc<Rdev>,
}

type C = RdevCtx;

#[rustfmt::skip]
pub static RDEV_ATTRS: &[Row<RdevCtx>] = &[
    Row { name: "state", mode: 0o644, group: Group::Default, show: Some(state_show), store: Some(state_store) },
    Row { name: "errors", mode: 0o644, group: Group::Default, show: Some(errors_show), store: Some(errors_store) },
    Row { name: "slot", mode: 0o644, group: Group::Default, show: Some(slot_show), store: Some(slot_store) },
    Row { name: "offset", mode: 0o644, group: Group::Default, show: Some(offset_show), store: Some(offset_store) },
    Row { name: "new_offset", mode: 0o644, group: Group::Default, show: Some(new_offset_show), store: Some(new_offset_store) },
    Row { name: "size", mode: 0o644, group: Group::Default, show: Some(size_show), store: Some(size_store) },
    Row { name: "recovery_start", mode: 0o644, group: Group::Default, show: Some(recovery_start_show), store: Some(recovery_start_store) },
    Row { name: "bad_blocks", mode: 0o644, group: Group::Default, show: Some(bb_show), store: Some(bb_store) },
    Row { name: "unacknowledged_bad_blocks", mode: 0o644, group: Group::Default, show: Some(ubb_show), store: Some(ubb_store) },
    Row { name: "ppl_sector", mode: 0o644, group: Group::Default, show: Some(ppl_sector_show), store: Some(ppl_sector_store) },
    Row { name: "ppl_size", mode: 0o644, group: Group::Default, show: Some(ppl_size_show), store: Some(ppl_size_store) },
    Row { name: "fault", mode: 0o644, group: Group::Default, show: Some(fault_show), store: Some(fault_store) },
    Row { name: "io", mode: 0o444, group: Group::Default, show: Some(io_show), store: None },
    Row { name: "nbd_state", mode: 0o444, group: Group::Default, show: Some(nbd_state_show), store: None },
    Row { name: "nbd_server", mode: 0o444, group: Group::Default, show: Some(nbd_server_show), store: None },
    Row { name: "nbd_last_error", mode: 0o444, group: Group::Default, show: Some(nbd_last_error_show), store: None },
    Row { name: "nbd_rtt_us", mode: 0o444, group: Group::Default, show: Some(nbd_rtt_show), store: None },
    Row { name: "nbd_auto_readd", mode: 0o644, group: Group::Default, show: Some(nbd_auto_readd_show), store: Some(nbd_auto_readd_store) },
    Row { name: "nbd_timeout_ms", mode: 0o644, group: Group::Default, show: Some(nbd_timeout_show), store: Some(nbd_timeout_store) },
];

/// The rows of [`RDEV_ATTRS`] that `r` has: the `nbd_*` ones only for a
/// member on an NBD export.
pub fn rdev_attrs(r: &Rdev) -> impl Iterator<Item = &'static Row<RdevCtx>> {
    let nbd = r.disk.nbd().is_some();
    RDEV_ATTRS
        .iter()
        .filter(move |row| nbd || !row.name.starts_with("nbd_"))
}

fn nbd(c: &C) -> Result<&crate::disk::NbdClient, Errno> {
    c.rdev.disk.nbd().ok_or(Errno::ENODEV)
}

/// `nbd_state`: `connected`, or `failed` once the connection ended.
fn nbd_state_show(c: &C) -> Result<String, Errno> {
    line(nbd(c)?.state())
}

/// `nbd_server`: `HOST:PORT` or `unix:PATH`, then the export's name.
fn nbd_server_show(c: &C) -> Result<String, Errno> {
    let u = nbd(c)?.uri();
    line(format!("{} {}", u.server(), u.export))
}

/// `nbd_last_error`: why the latest request failed (empty if none has).
fn nbd_last_error_show(c: &C) -> Result<String, Errno> {
    line(nbd(c)?.last_error())
}

/// `nbd_rtt_us`: round-trip time of the latest reply, in microseconds.
fn nbd_rtt_show(c: &C) -> Result<String, Errno> {
    use std::sync::atomic::Ordering::Relaxed;
    line(nbd(c)?.stats().rtt_us.load(Relaxed))
}

/// `nbd_auto_readd`: 1 (the default) to re-add the member when its
/// export comes back after a failure, 0 to leave that to the user.
fn nbd_auto_readd_show(c: &C) -> Result<String, Errno> {
    line(u8::from(nbd(c)?.auto_readd()))
}

fn nbd_auto_readd_store(c: &C, s: &str) -> Result<(), Errno> {
    let on = crate::kstr::kstrtobool(s)?;
    nbd(c)?.set_auto_readd(on);
    Ok(())
}

/// `nbd_timeout_ms`: every request's deadline, 1 ms to 10 minutes.
fn nbd_timeout_show(c: &C) -> Result<String, Errno> {
    line(nbd(c)?.timeout_ms())
}

fn nbd_timeout_store(c: &C, s: &str) -> Result<(), Errno> {
    let ms = kstrtouint(s)?;
    if !(1..=600_000).contains(&ms) {
        return Err(Errno::EINVAL);
    }
    nbd(c)?.set_timeout_ms(u64::from(ms));
    Ok(())
}

fn line(s: impl std::fmt::Display) -> Result<String, Errno> {
    Ok(format!("{s}\n"))
}

fn state_show(c: &C) -> Result<String, Errno> {
    Ok(c.rdev.state_words(false))
}

/// `state`'s store, also what the NBD re-add does (as mdadm writes it).
pub fn state_store(c: &C, s: &str) -> Result<(), Errno> {
    let (m, r) = (&c.mddev, &c.rdev);
    let mut cfg = m.cfg.lock();
    if !cfg.rdevs.iter().any(|x| Arc::ptr_eq(x, r)) {
        return Err(Errno::ENODEV);
    }
    let mut need_update_sb = false;
    let running = m.is_running();
    let res: Result<(), Errno> = match s {
        "faulty" if running => {
            update::md_error(m, &cfg, r);
            if m.flags.test(mf::BROKEN) {
                Err(Errno::EBUSY)
            } else {
                Ok(())
            }
        }
        "remove" => {
            if running {
                r.flags.clear(rf::BLOCKED);
                sync::remove_and_add_spares(m, &mut cfg, Some(r));
            }
            if r.raid_disk() >= 0 {
                Err(Errno::EBUSY)
            } else {
                bind::kick_rdev(m, &mut cfg, r);
                if running {
                    m.sb_flags.set(sbf::CHANGE_DEVS);
                    m.wakeup();
                }
                m.publish(&cfg);
                Ok(())
            }
        }
        "writemostly" => {
            r.flags.set(rf::WRITE_MOSTLY);
            need_update_sb = true;
            Ok(())
        }
        "-writemostly" => {
            // Once it is not write-mostly, reads no longer wait for the
            // writes behind on it: let them land first, with all I/O held
            // (md suspends the array for this, `mddev_destroy_serial_pool`).
            let pers = m
                .pers()
                .filter(|_| running && r.flags.test(rf::WRITE_MOSTLY));
            if let Some(p) = &pers {
                p.quiesce(true);
            }
            r.flags.clear(rf::WRITE_MOSTLY);
            if let Some(p) = &pers {
                p.quiesce(false);
            }
            need_update_sb = true;
            Ok(())
        }
        "blocked" => {
            r.flags.set(rf::BLOCKED);
            Ok(())
        }
        "-blocked" => {
            if !r.faulty() && !r.flags.test(rf::EXTERNAL_BBL) && r.badblocks.lock().unacked_exist {
                update::md_error(m, &cfg, r);
            }
            r.flags.clear(rf::BLOCKED | rf::BLOCKED_BAD_BLOCKS);
            m.recovery.set(rec::NEEDED);
            let _g = m.lock.lock();
            m.sb_wait.notify_all();
            Ok(())
        }
        "insync" if r.raid_disk() == -1 => {
            r.flags.set(rf::IN_SYNC);
            Ok(())
        }
        "failfast" => {
            r.flags.set(rf::FAIL_FAST);
            need_update_sb = true;
            Ok(())
        }
        "-failfast" => {
            r.flags.clear(rf::FAIL_FAST);
            need_update_sb = true;
            Ok(())
        }
        "-insync" if r.raid_disk() >= 0 && !r.flags.test(rf::JOURNAL) => {
            if !running {
                r.flags.clear(rf::IN_SYNC);
                r.set_saved_raid_disk(r.raid_disk());
                r.set_raid_disk(-1);
                Ok(())
            } else {
                Err(Errno::EINVAL)
            }
        }
        "write_error" => {
            r.flags.set(rf::WRITE_ERROR_SEEN);
            Ok(())
        }
        "-write_error" => {
            r.flags.clear(rf::WRITE_ERROR_SEEN);
            Ok(())
        }
        "want_replacement" => {
            if r.raid_disk() >= 0 && !r.flags.test(rf::JOURNAL) && !r.flags.test(rf::REPLACEMENT) {
                r.flags.set(rf::WANT_REPLACEMENT);
            }
            m.recovery.set(rec::NEEDED);
            m.wakeup();
            Ok(())
        }
        "-want_replacement" => {
            r.flags.clear(rf::WANT_REPLACEMENT);
            Ok(())
        }
        "replacement" => {
            if running {
                Err(Errno::EBUSY)
            } else {
                r.flags.set(rf::REPLACEMENT);
                Ok(())
            }
        }
        "-replacement" => {
            if running {
                Err(Errno::EBUSY)
            } else {
                r.flags.clear(rf::REPLACEMENT);
                Ok(())
            }
        }
        "re-add" => {
            if !running {
                Err(Errno::EINVAL)
            } else if r.faulty() && r.raid_disk() == -1 && r.saved_raid_disk() >= 0 {
                r.flags.clear(rf::FAULTY);
                if m.bitmap().is_none() {
                    // Nothing records the writes it missed while failed:
                    // it recovers whole.  (Linux 6.1 puts it back in its
                    // slot in sync without them.)
                    r.set_saved_raid_disk(-1);
                }
                m.observer().notify_rdev(m, r, "state");
                m.sb_flags.set(sbf::CHANGE_DEVS);
                if m.degraded() > 0 {
                    m.recovery.set(rec::RECOVER);
                }
                m.recovery.set(rec::NEEDED);
                m.wakeup();
                Ok(())
            } else {
                Err(Errno::EBUSY)
            }
        }
        _ => Err(Errno::EINVAL),
    };
    if need_update_sb {
        if m.pers().is_some() {
            update::md_update_sb(m, &mut cfg, true);
        } else {
            // Not running: nothing of the array's is known yet that a
            // superblock could carry (level, size, roles come at run), so
            // writing them now would wipe the members' metadata.  The run
            // takes roles and flags from the superblocks again, as
            // super_1_validate does.  (Linux 6.1 oopses on `writemostly`
            // here.)
            m.sb_flags.set(sbf::CHANGE_DEVS);
        }
    }
    drop(cfg);
    if res.is_ok() {
        m.observer().notify_rdev(m, r, "state");
    }
    res
}

fn errors_show(c: &C) -> Result<String, Errno> {
    // An atomic_t printed with %d.
    line(c.rdev.corrected_errors() as i32)
}

fn errors_store(c: &C, s: &str) -> Result<(), Errno> {
    c.rdev.set_corrected_errors(kstrtouint(s)?);
    Ok(())
}

fn slot_show(c: &C) -> Result<String, Errno> {
    let r = &c.rdev;
    if r.flags.test(rf::JOURNAL) {
        line("journal")
    } else if r.raid_disk() < 0 {
        line("none")
    } else {
        line(r.raid_disk())
    }
}

fn slot_store(c: &C, s: &str) -> Result<(), Errno> {
    let (m, r) = (&c.mddev, &c.rdev);
    if r.flags.test(rf::JOURNAL) {
        return Err(Errno::EBUSY);
    }
    let slot: i64 = if s.starts_with("none") {
        -1
    } else {
        let v = kstrtouint(s)?;
        if v > i32::MAX as u32 {
            return Err(Errno::ENOSPC);
        }
        v as i64
    };
    let mut cfg = m.cfg.lock();
    let Some(p) = m.pers() else {
        if slot_out_of_range(&cfg, slot) {
            return Err(Errno::ENOSPC);
        }
        r.set_raid_disk(slot as i32);
        // "assume it is working": md sets In_sync for "none" too.
        r.flags.clear(rf::FAULTY | rf::WRITE_MOSTLY);
        r.flags.set(rf::IN_SYNC);
        drop(cfg);
        m.observer().notify_rdev(m, r, "state");
        return Ok(());
    };
    if slot == -1 {
        if r.raid_disk() == -1 {
            return Err(Errno::EEXIST);
        }
        if !p.personality().has_hot_remove_disk() {
            return Err(Errno::EINVAL);
        }
        r.flags.clear(rf::BLOCKED);
        sync::remove_and_add_spares(m, &mut cfg, Some(r));
        if r.raid_disk() >= 0 {
            return Err(Errno::EBUSY);
        }
        m.recovery.set(rec::NEEDED);
        m.wakeup();
        return Ok(());
    }
    if r.raid_disk() != -1 || m.recovery.test(rec::RUNNING) {
        return Err(Errno::EBUSY);
    }
    if !p.personality().has_hot_add_disk() {
        return Err(Errno::EINVAL);
    }
    if slot_out_of_range(&cfg, slot) {
        return Err(Errno::ENOSPC);
    }
    r.set_raid_disk(slot as i32);
    r.set_saved_raid_disk(if r.in_sync() { slot as i32 } else { -1 });
    r.flags.clear(rf::IN_SYNC | rf::BITMAP_SYNC);
    if let Err(e) = p.hot_add_disk(m, r) {
        r.set_raid_disk(-1);
        return Err(e);
    }
    m.observer().slot_link(m, r.raid_disk(), Some(r));
    m.publish(&cfg);
    drop(cfg);
    m.observer().notify_rdev(m, r, "state");
    Ok(())
}

/// `slot >= raid_disks && slot >= raid_disks + delta_disks`, in the
/// kernel's int arithmetic.
fn slot_out_of_range(cfg: &crate::md::Config, slot: i64) -> bool {
    let rd = cfg.raid_disks as i32;
    slot >= rd as i64 && slot >= rd.wrapping_add(cfg.delta_disks) as i64
}

fn offset_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.data_offset())
}

fn offset_store(c: &C, s: &str) -> Result<(), Errno> {
    let off = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    let _cfg = c.mddev.cfg.lock();
    if c.mddev.is_running() && c.rdev.raid_disk() >= 0 {
        return Err(Errno::EBUSY);
    }
    c.rdev.set_data_offset(off);
    c.rdev.set_new_data_offset(off);
    Ok(())
}

fn new_offset_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.new_data_offset())
}

fn new_offset_store(c: &C, s: &str) -> Result<(), Errno> {
    let (m, r) = (&c.mddev, &c.rdev);
    let new = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    let mut cfg = m.cfg.lock();
    if m.recovery.test(rec::RUNNING) {
        return Err(Errno::EBUSY);
    }
    let old = r.data_offset();
    // In the kernel's unsigned arithmetic, which wraps.
    if new > old && (new - old).wrapping_add(cfg.dev_sectors) > r.sectors() {
        return Err(Errno::E2BIG);
    }
    if new < old && cfg.reshape_backwards {
        return Err(Errno::EINVAL);
    }
    if new > old && !cfg.reshape_backwards {
        return Err(Errno::EINVAL);
    }
    if m.is_running()
        && cfg.persistent
        && !resize::allow_new_offset(&cfg, m.bitmap().map(|b| b.file_pages()), r, new)
    {
        return Err(Errno::E2BIG);
    }
    r.set_new_data_offset(new);
    if new > old {
        cfg.reshape_backwards = true;
    } else if new < old {
        cfg.reshape_backwards = false;
    }
    Ok(())
}

fn size_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.sectors() / 2)
}

fn size_store(c: &C, s: &str) -> Result<(), Errno> {
    let (m, r) = (&c.mddev, &c.rdev);
    if r.flags.test(rf::JOURNAL) {
        return Err(Errno::EBUSY);
    }
    let mut sectors = strict_blocks_to_sectors(s).map_err(|_| Errno::EINVAL)?;
    if r.data_offset() != r.new_data_offset() {
        return Err(Errno::EINVAL);
    }
    let cfg = m.cfg.lock();
    if let Some(p) = m.pers().filter(|_| r.raid_disk() >= 0) {
        if cfg.persistent {
            // rdev_size_change: 0 when the component cannot fit.
            sectors = resize::rdev_size_change(&cfg, r, sectors);
            if sectors == 0 {
                return Err(Errno::EBUSY);
            }
        } else if sectors == 0 {
            // No superblock says how much there is: all the device
            // holds past the data offset.
            sectors = r.disk.sectors().saturating_sub(r.data_offset());
        }
        // md's linear and raid0 have no resize (they use every member
        // whole); every redundant level has one, whether or not mdfuse
        // can resize it yet.
        if !p.personality().redundant() {
            return Err(Errno::EINVAL);
        }
    }
    if sectors < cfg.dev_sectors {
        return Err(Errno::EINVAL);
    }
    let recorded = m.is_running() && cfg.persistent && r.raid_disk() >= 0;
    if recorded && sectors != r.sectors() {
        // rdev_size_change writes the new data size into the member's
        // superblock at once.
        m.sb_flags.set(sbf::CHANGE_DEVS);
        m.wakeup();
    }
    r.set_sectors(sectors);
    Ok(())
}

fn recovery_start_show(c: &C) -> Result<String, Errno> {
    let r = &c.rdev;
    if r.in_sync() || r.recovery_offset() == MAX_SECTOR {
        line("none")
    } else {
        line(r.recovery_offset())
    }
}

fn recovery_start_store(c: &C, s: &str) -> Result<(), Errno> {
    let v = if cmd_match(s, "none") {
        MAX_SECTOR
    } else {
        kstrtoull(s).map_err(|_| Errno::EINVAL)?
    };
    let _cfg = c.mddev.cfg.lock();
    if c.mddev.is_running() && c.rdev.raid_disk() >= 0 {
        return Err(Errno::EBUSY);
    }
    c.rdev.set_recovery_offset(v);
    c.rdev.flags.assign(rf::IN_SYNC, v == MAX_SECTOR);
    Ok(())
}

fn bb_show(c: &C) -> Result<String, Errno> {
    Ok(c.rdev.badblocks.lock().show(false))
}

fn bb_store(c: &C, s: &str) -> Result<(), Errno> {
    let r = c.rdev.badblocks.lock().store(s, false);
    if r.is_ok() {
        c.mddev
            .observer()
            .notify_rdev(&c.mddev, &c.rdev, "bad_blocks");
    }
    r
}

fn ubb_show(c: &C) -> Result<String, Errno> {
    Ok(c.rdev.badblocks.lock().show(true))
}

fn ubb_store(c: &C, s: &str) -> Result<(), Errno> {
    // Nothing asks for a superblock write: they stay unacknowledged until
    // one happens for another reason, as with ubb_store.
    let r = c.rdev.badblocks.lock().store(s, true);
    if r.is_ok() {
        c.mddev
            .observer()
            .notify_rdev(&c.mddev, &c.rdev, "unacknowledged_bad_blocks");
    }
    r
}

/// `ppl_sector` / `ppl_size`: where a RAID5 member keeps its partial
/// parity log.  md keeps what is written (RAID1 never uses it), within
/// what 1.x metadata can record.
fn ppl_sector_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.ppl.lock().0)
}

fn ppl_sector_store(c: &C, s: &str) -> Result<(), Errno> {
    let sector = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    let cfg = c.mddev.cfg.lock();
    if cfg.persistent {
        if cfg.metadata == Some(crate::format::MetadataVersion::V090) {
            return Err(Errno::EINVAL);
        }
        // ppl.offset is an s16 from the superblock.
        let sb = c.rdev.sb_start();
        if (sector > sb && sector - sb > i16::MAX as u64)
            || (sector < sb && sb - sector > -(i16::MIN as i64) as u64)
        {
            return Err(Errno::EINVAL);
        }
    } else if !cfg.external {
        return Err(Errno::EBUSY);
    }
    c.rdev.ppl.lock().0 = sector;
    Ok(())
}

fn ppl_size_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.ppl.lock().1)
}

fn ppl_size_store(c: &C, s: &str) -> Result<(), Errno> {
    let size = kstrtouint(s).map_err(|_| Errno::EINVAL)?;
    let cfg = c.mddev.cfg.lock();
    if cfg.persistent {
        if cfg.metadata == Some(crate::format::MetadataVersion::V090) || size > u16::MAX as u32 {
            return Err(Errno::EINVAL);
        }
    } else if !cfg.external {
        return Err(Errno::EBUSY);
    }
    c.rdev.ppl.lock().1 = size;
    Ok(())
}

fn fault_show(c: &C) -> Result<String, Errno> {
    Ok(c.rdev.disk.faults().to_string())
}

fn fault_store(c: &C, s: &str) -> Result<(), Errno> {
    c.rdev.disk.faults().apply(s)
}

/// `io`: `read_sectors write_sectors flushes` since the member was bound
/// (mdfuse's own; like a block device's `stat`).
fn io_show(c: &C) -> Result<String, Errno> {
    use std::sync::atomic::Ordering::Relaxed;
    let s = c.rdev.disk.stats();
    Ok(format!(
        "{} {} {} {}\n",
        s.read_bytes.load(Relaxed) / 512,
        s.write_bytes.load(Relaxed) / 512,
        s.flushes.load(Relaxed),
        s.discard_bytes.load(Relaxed) / 512
    ))
}

/// The directory a member's `block` link leads to, `mdN/slaves/NAME/`: what
/// the member is, as the block device's own sysfs directory tells it
/// (`dev`, `size`), plus `path`.  Nothing here reads or writes the
/// member's bytes: a link to the component itself would let a write
/// through `block` truncate it.
#[rustfmt::skip]
pub static BLOCK_ATTRS: &[Row<RdevCtx>] = &[
    Row { name: "dev", mode: 0o444, group: Group::Default, show: Some(block_dev_show), store: None },
    Row { name: "size", mode: 0o444, group: Group::Default, show: Some(block_size_show), store: None },
    Row { name: "path", mode: 0o444, group: Group::Default, show: Some(block_path_show), store: None },
];

/// The rows of [`BLOCK_ATTRS`] that `r` has: `dev` only for a block
/// device, as an image file has no device number.
pub fn block_attrs(r: &Rdev) -> impl Iterator<Item = &'static Row<RdevCtx>> {
    let numbered = matches!(r.disk.kind(), DiskKind::BlockDevice { .. });
    BLOCK_ATTRS
        .iter()
        .filter(move |row| numbered || row.name != "dev")
}

/// `dev`: the block device's `major:minor`.
fn block_dev_show(c: &C) -> Result<String, Errno> {
    match c.rdev.disk.kind() {
        DiskKind::BlockDevice { major, minor } => line(format!("{major}:{minor}")),
        DiskKind::ImageFile | DiskKind::Nbd => Err(Errno::ENODEV),
    }
}

/// `size`: the whole device in sectors, as a block device's `size`.
fn block_size_show(c: &C) -> Result<String, Errno> {
    line(c.rdev.disk.sectors())
}

/// `path`: the image file or device node bound (mdfuse's own), without
/// symlinks when it can still be resolved.
fn block_path_show(c: &C) -> Result<String, Errno> {
    let p = c.rdev.disk.path();
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    line(p.display())
}
