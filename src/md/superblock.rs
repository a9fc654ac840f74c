//! The kernel's `super_types[]`: for each metadata major version, how to
//! load a member's superblock (`load_super`), take array and member state
//! from it (`validate_super`), and rebuild it from the array
//! (`sync_super`).  The byte layouts live in `crate::format`.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::sync::Arc;

use super::flags::{rdev as rf, recovery as rec};
use super::rdev::{Rdev, SbImage};
use super::{Config, Errno, KernelLog, MAX_DISKS_1, MAX_DISKS_090, Mddev};
use crate::format::super0::{self, Disk0, MD_SB_DISKS, Superblock0, disk_state, sb_state};
use crate::format::super1::{self, Superblock1, devflags, feature, role};
use crate::format::{
    AnySuper, FormatError, MAX_SECTOR, MetadataVersion, Minor, Probe, badblocks, kint,
};

/// What `validate_super` needs to know about the array beyond `Config`.
pub struct ArrayView {
    /// `mddev->pers != NULL`.
    pub running: bool,
    /// `events_cleared` of the bitmap, when the array has one.
    pub bitmap_events_cleared: Option<u64>,
    /// MD_RECOVERY_FROZEN.
    pub frozen: bool,
}

impl ArrayView {
    pub fn of(mddev: &Mddev) -> ArrayView {
        ArrayView {
            running: mddev.is_running(),
            bitmap_events_cleared: mddev.bitmap().map(|b| b.events_cleared()),
            frozen: mddev.recovery.test(rec::FROZEN),
        }
    }

    /// For a member joining the running array with superblock events
    /// `ev1` (the array is at `events`): whether it keeps the role its
    /// superblock gives it.  With a bitmap an older member does, unless it
    /// is older than the last bit clearing, and catches up by the bitmap
    /// (BITMAP_SYNC); without one only a current member does.  One that
    /// does not is a hot-add of a new device, with no role.
    fn keeps_role(&self, rdev: &Rdev, ev1: u64, events: u64) -> bool {
        match self.bitmap_events_cleared {
            Some(cleared) if ev1 < cleared => false,
            Some(_) => {
                if ev1 < events {
                    rdev.flags.set(rf::BITMAP_SYNC);
                }
                true
            }
            None => ev1 >= events,
        }
    }
}

/// `load_super`: read and check `rdev`'s superblock of `version`, compare
/// it with `refdev`'s.  `Ok(true)` when `rdev` is fresher (becomes the
/// reference), `Ok(false)` when not, `Err(errno)` when it cannot be used.
/// The kernel's messages are logged here.
pub fn load_super(
    rdev: &Rdev,
    refdev: Option<&Rdev>,
    version: MetadataVersion,
    log: &KernelLog,
) -> Result<bool, Errno> {
    let name = &rdev.name;
    // read_disk_sb reads a member's superblock once, when it is bound;
    // later loads (analyze_sbs at every run) parse that copy again, so
    // what happens to the disk meanwhile does not matter.
    let cached = match rdev.sb.lock().image.clone() {
        Some(SbImage::V1(m, sb)) if version == MetadataVersion::V1(m) => Some(AnySuper::V1(m, sb)),
        Some(SbImage::V090(sb)) if version == MetadataVersion::V090 => Some(AnySuper::V090(sb)),
        _ => None,
    };
    let found = match cached
        .map(Probe::Found)
        .unwrap_or_else(|| crate::format::probe(&rdev.disk, version))
    {
        Probe::Found(s) => s,
        Probe::Absent => {
            log.info(format!("md: {name}: no v{version} superblock found"));
            return Err(Errno::EINVAL);
        }
        Probe::Invalid(e) => {
            log.info(format!("md: {name}: {e}"));
            return Err(Errno::EINVAL);
        }
        Probe::Io(e) => {
            log.warn(format!(
                "md: disabled device {name}, could not read superblock."
            ));
            return Err(Errno::from_io(&e));
        }
    };
    let dev_sectors = rdev.disk.sectors();
    match found {
        AnySuper::V1(minor, sb) => load_1(rdev, refdev, minor, *sb, dev_sectors, log),
        AnySuper::V090(sb) => load_090(rdev, refdev, *sb, dev_sectors, log),
    }
}

fn explain(log: &KernelLog, name: &str, e: &FormatError) {
    match e {
        FormatError::BadChecksum { .. } => {
            log.warn(format!("md: invalid superblock checksum on {name}"))
        }
        FormatError::DataSizeTooSmall { .. } => {
            log.warn(format!("md: data_size too small on {name}"))
        }
        FormatError::BadVersion0 { major, minor } => {
            log.warn(format!("Bad version number {major}.{minor} on {name}"))
        }
        // Rules the kernel enforces silently: say why, for the user.
        other => log.info(format!("md: {name}: {other}")),
    }
}

fn load_1(
    rdev: &Rdev,
    refdev: Option<&Rdev>,
    minor: Minor,
    sb: Superblock1,
    dev_sectors: u64,
    log: &KernelLog,
) -> Result<bool, Errno> {
    let sb_start = minor.sb_start(dev_sectors).ok_or(Errno::EINVAL)?;
    if let Err(e) = sb.validate(minor, dev_sectors) {
        explain(log, &rdev.name, &e);
        return Err(Errno::EINVAL);
    }
    rdev.set_sb_start(sb_start);
    rdev.set_data_offset(sb.data_offset);
    rdev.set_new_data_offset(sb.new_data_offset().unwrap_or(sb.data_offset));
    rdev.set_corrected_errors(sb.cnt_corrected_read);
    rdev.set_sb_size(kint::len_u32(sb.write_len()));
    rdev.set_desc_nr(kint::int_from_le32(sb.dev_number));
    rdev.preferred_minor
        .store(0xffff, std::sync::atomic::Ordering::Release);

    {
        let mut bb = rdev.badblocks.lock();
        if sb.has(feature::BAD_BLOCKS) && bb.count() == 0 {
            // validate() has bounded bblog_size to one page.  The kernel
            // reads at sb_start + bblog_offset in sector_t: an offset
            // before the device's start is one past its end, EIO.
            let sectors = sb.bblog_size as u64;
            let mut buf = vec![0u8; kint::buf_len(sectors * 512)];
            let at = sb_start.wrapping_add_signed(sb.bblog_offset as i64);
            if at
                .checked_mul(512)
                .is_none_or(|b| rdev.disk.read_at(&mut buf, b).is_err())
            {
                log.warn(format!(
                    "md: {}: cannot read the bad-block log (bblog_offset {}, bblog_size {})",
                    rdev.name, sb.bblog_offset, sb.bblog_size
                ));
                return Err(Errno::EIO);
            }
            bb.shift = Some(sb.bblog_shift);
            let ranges = badblocks::parse(&buf, sb.bblog_shift).map_err(|e| {
                log.info(format!("md: {}: {e}", rdev.name));
                Errno::EINVAL
            })?;
            if let Err(r) = bb.load(&ranges) {
                log.warn(format!(
                    "md: {}: bad-block log entry of {} sectors at {} cannot be recorded",
                    rdev.name, r.sectors, r.sector
                ));
                return Err(Errno::EINVAL);
            }
        } else if sb.bblog_offset != 0 {
            bb.shift = Some(0);
        }
    }

    let spare_disk = sb.is_spare_disk();
    if refdev.is_none() && sb.dev_number >= sb.max_dev {
        // No role can be read for it: a spare, which alone never runs
        // ("cannot find a valid disk").
        log.info(format!(
            "md: {}: dev_number {} is past max_dev {}: taken for a spare",
            rdev.name, sb.dev_number, sb.max_dev
        ));
    }
    let fresher = match refdev {
        None => !spare_disk,
        Some(r) => {
            let rsb = r.sb.lock();
            let Some(SbImage::V1(_, refsb)) = rsb.image.as_ref() else {
                log.warn(format!(
                    "md: {} has strangely different superblock to {}",
                    rdev.name, r.name
                ));
                return Err(Errno::EINVAL);
            };
            if sb.set_uuid != refsb.set_uuid
                || sb.level != refsb.level
                || sb.layout != refsb.layout
                || sb.chunksize != refsb.chunksize
            {
                log.warn(format!(
                    "md: {} has strangely different superblock to {}",
                    rdev.name, r.name
                ));
                return Err(Errno::EINVAL);
            }
            !spare_disk && sb.events > refsb.events
        }
    };
    let avail = sb.avail_sectors(minor, dev_sectors);
    if avail < sb.data_size {
        return Err(Errno::EINVAL);
    }
    rdev.set_sectors(sb.data_size);
    let mut st = rdev.sb.lock();
    st.image = Some(SbImage::V1(minor, Box::new(sb)));
    Ok(fresher)
}

fn load_090(
    rdev: &Rdev,
    refdev: Option<&Rdev>,
    sb: Superblock0,
    dev_sectors: u64,
    log: &KernelLog,
) -> Result<bool, Errno> {
    if let Err(e) = sb.validate(dev_sectors) {
        explain(log, &rdev.name, &e);
        return Err(Errno::EINVAL);
    }
    let sb_start = super0::sb_start(dev_sectors).ok_or(Errno::EINVAL)?;
    rdev.set_sb_start(sb_start);
    rdev.preferred_minor
        .store(sb.md_minor, std::sync::atomic::Ordering::Release);
    rdev.set_data_offset(0);
    rdev.set_new_data_offset(0);
    rdev.set_sb_size(kint::len_u32(super0::SB0_BYTES));
    rdev.badblocks.lock().shift = None;
    rdev.set_desc_nr(kint::int_from_le32(sb.this_disk.number));
    rdev.recorded_devnum.store(
        (sb.this_disk.major as u64) << 32 | sb.this_disk.minor as u64,
        std::sync::atomic::Ordering::Release,
    );
    let spare_disk = sb.is_spare_disk();
    if refdev.is_none() && sb.this_disk.number as usize >= MD_SB_DISKS {
        log.info(format!(
            "md: {}: this_disk.number {} is past the {MD_SB_DISKS} disks: taken for a spare",
            rdev.name, sb.this_disk.number
        ));
    }
    let fresher = match refdev {
        None => !spare_disk,
        Some(r) => {
            let rsb = r.sb.lock();
            let Some(SbImage::V090(refsb)) = rsb.image.as_ref() else {
                log.warn(format!(
                    "md: {} has different UUID to {}",
                    rdev.name, r.name
                ));
                return Err(Errno::EINVAL);
            };
            if sb.uuid() != refsb.uuid() {
                log.warn(format!(
                    "md: {} has different UUID to {}",
                    rdev.name, r.name
                ));
                return Err(Errno::EINVAL);
            }
            if !sb.equal_for_assembly(refsb) {
                log.warn(format!(
                    "md: {} has same UUID but different superblock to {}",
                    rdev.name, r.name
                ));
                return Err(Errno::EINVAL);
            }
            !spare_disk && sb.events() > refsb.events()
        }
    };
    let mut sectors = sb_start;
    if sectors >= 2u64 << 32 && sb.level != 0 {
        sectors = (2u64 << 32) - 2;
    }
    if sectors < sb.size as u64 * 2 && sb.level != 0 {
        return Err(Errno::EINVAL);
    }
    rdev.set_sectors(sectors);
    rdev.sb.lock().image = Some(SbImage::V090(Box::new(sb)));
    Ok(fresher)
}

fn clear_role(rdev: &Rdev) {
    rdev.set_raid_disk(-1);
    rdev.flags
        .clear(rf::FAULTY | rf::IN_SYNC | rf::BITMAP_SYNC | rf::WRITE_MOSTLY | rf::PARTLY_REBUILT);
}

/// `validate_super`: with an empty array (`raid_disks == 0`) take the
/// array's settings from `rdev`; then set `rdev`'s role and flags.
/// `Err(EINVAL)` kicks a member that is too old while assembling.
pub fn validate_super(
    cfg: &mut Config,
    view: &ArrayView,
    freshest: Option<&Rdev>,
    rdev: &Rdev,
    mddev: &Mddev,
) -> Result<(), Errno> {
    let image = rdev.sb.lock().image.clone();
    match image {
        Some(SbImage::V1(minor, sb)) => validate_1(cfg, view, freshest, rdev, minor, &sb, mddev),
        Some(SbImage::V090(sb)) => validate_090(cfg, view, rdev, &sb, mddev),
        None => Err(Errno::EINVAL),
    }
}

/// A superblock that records a reshape: md_run refuses it without a word
/// (no personality here can reshape), so say where it came from.
fn note_reshape(
    log: &KernelLog,
    name: &str,
    position: u64,
    [level, delta, layout, chunk]: [u32; 4],
) {
    log.info(format!(
        "md: {name}: reshape_position {position} recorded: a reshape is in progress (new_level {}, delta_disks {}, new_layout {}, new_chunk {chunk})",
        kint::int_from_le32(level),
        kint::int_from_le32(delta),
        kint::int_from_le32(layout)
    ));
}

fn validate_1(
    cfg: &mut Config,
    view: &ArrayView,
    freshest: Option<&Rdev>,
    rdev: &Rdev,
    minor: Minor,
    sb: &Superblock1,
    mddev: &Mddev,
) -> Result<(), Errno> {
    let ev1 = sb.events;
    clear_role(rdev);
    if cfg.raid_disks == 0 {
        cfg.metadata = Some(MetadataVersion::V1(minor));
        cfg.persistent = true;
        cfg.patch_version = 0;
        cfg.external = false;
        cfg.chunk_sectors = sb.chunksize;
        cfg.ctime = sb.ctime;
        cfg.utime = sb.utime;
        cfg.level = sb.level;
        cfg.clevel.clear();
        cfg.layout = kint::int_from_le32(sb.layout);
        cfg.raid_disks = sb.raid_disks;
        cfg.dev_sectors = sb.size;
        cfg.logical_block_size = sb.logical_block_size;
        cfg.events = ev1;
        cfg.bitmap_info.offset = 0;
        cfg.bitmap_info.space = 0;
        cfg.bitmap_info.default_offset = 1024 >> 9;
        cfg.bitmap_info.default_space = (4096 - 1024) >> 9;
        cfg.reshape_backwards = false;
        mddev.set_recovery_cp(sb.resync_offset);
        cfg.uuid = sb.set_uuid;
        cfg.max_disks = MAX_DISKS_1;
        if let Some(off) = sb.bitmap_offset_sectors() {
            cfg.bitmap_info.offset = off;
            cfg.bitmap_info.space = if minor != Minor::V0 {
                0
            } else if off > 0 {
                (8 - off).max(0).unsigned_abs()
            } else {
                off.unsigned_abs()
            };
        }
        if sb.has(feature::RESHAPE_ACTIVE) {
            note_reshape(
                mddev.log(),
                &rdev.name,
                sb.reshape_position,
                [sb.new_level, sb.delta_disks, sb.new_layout, sb.new_chunk],
            );
            cfg.reshape_position = sb.reshape_position;
            cfg.delta_disks = kint::int_from_le32(sb.delta_disks);
            cfg.new_level = kint::int_from_le32(sb.new_level);
            cfg.new_layout = kint::int_from_le32(sb.new_layout);
            cfg.new_chunk_sectors = sb.new_chunk;
            cfg.reshape_backwards =
                cfg.delta_disks < 0 || (cfg.delta_disks == 0 && sb.has(feature::RESHAPE_BACKWARDS));
        } else {
            cfg.set_no_reshape(MAX_SECTOR);
        }
        cfg.has_ppl = sb.has(feature::PPL | feature::MULTIPLE_PPLS);
        cfg.has_journal = sb.has(feature::JOURNAL);
        if cfg.level == 0 && !sb.has(feature::RAID0_LAYOUT) {
            cfg.layout = -1;
        }
        if sb.has(feature::PPL | feature::MULTIPLE_PPLS) {
            let conflict = if sb.has(feature::BITMAP_OFFSET | feature::JOURNAL) {
                Some("a partial parity log with a bitmap or journal")
            } else if sb.has(feature::PPL) && sb.has(feature::MULTIPLE_PPLS) {
                Some("both one and multiple partial parity logs")
            } else {
                None
            };
            if let Some(what) = conflict {
                mddev.log().warn(format!(
                    "md: {}: feature_map {:#x} asks for {what}",
                    rdev.name, sb.feature_map
                ));
                return Err(Errno::EINVAL);
            }
        }
    } else if !view.running {
        // While assembling insist on a good event count, except for
        // spares; one event of lag is tolerated, as by mdadm.
        let r = sb.own_role();
        if sb.dev_number < sb.max_dev
            && (r < role::MAX || r == role::JOURNAL)
            && ev1.wrapping_add(1) < cfg.events
        {
            return Err(Errno::EINVAL);
        }
    } else if !view.keeps_role(rdev, ev1, cfg.events) {
        return Ok(());
    }

    let desc = rdev.desc_nr();
    let r = if desc < 0 || kint::le32_from_int(desc) >= sb.max_dev {
        rdev.set_desc_nr(-1);
        role::SPARE
    } else if !view.running && freshest.is_some() && ev1 < cfg.events {
        // Assembling with a member one event behind: trust the freshest
        // superblock about this member's role, not its own.
        let f = freshest.expect("checked");
        let fs = f.sb.lock();
        let Some(SbImage::V1(_, fsb)) = fs.image.as_ref() else {
            return Err(Errno::EUCLEAN);
        };
        if kint::le32_from_int(desc) >= fsb.max_dev {
            mddev.log().warn(format!(
                "md: {}: rdev[{}]: desc_nr({desc}) >= freshest({})->sb->max_dev({})",
                mddev.name, rdev.name, f.name, fsb.max_dev
            ));
            return Err(Errno::EUCLEAN);
        }
        fsb.role_of(kint::le32_from_int(desc))
    } else {
        sb.role_of(kint::le32_from_int(desc))
    };
    match r {
        role::SPARE => {}
        role::FAULTY => rdev.flags.set(rf::FAULTY),
        role::JOURNAL => {
            if !sb.has(feature::JOURNAL) {
                mddev.log().warn(
                    "md: journal device provided without journal feature, ignoring the device",
                );
                return Err(Errno::EINVAL);
            }
            rdev.flags.set(rf::JOURNAL);
            rdev.set_raid_disk(0);
        }
        slot => {
            rdev.set_saved_raid_disk(slot as i32);
            if sb.has(feature::RECOVERY_OFFSET) {
                rdev.set_recovery_offset(sb.recovery_offset);
                if !sb.has(feature::RECOVERY_BITMAP) {
                    rdev.set_saved_raid_disk(-1);
                }
            } else if !view.frozen {
                rdev.flags.set(rf::IN_SYNC);
            }
            rdev.set_raid_disk(slot as i32);
        }
    }
    if sb.devflags & devflags::WRITE_MOSTLY != 0 {
        rdev.flags.set(rf::WRITE_MOSTLY);
    }
    if sb.devflags & devflags::FAIL_FAST != 0 {
        rdev.flags.set(rf::FAIL_FAST);
    }
    if sb.has(feature::REPLACEMENT) {
        rdev.flags.set(rf::REPLACEMENT);
    }
    Ok(())
}

fn validate_090(
    cfg: &mut Config,
    view: &ArrayView,
    rdev: &Rdev,
    sb: &Superblock0,
    _mddev: &Mddev,
) -> Result<(), Errno> {
    let ev1 = sb.events();
    clear_role(rdev);
    if cfg.raid_disks == 0 {
        cfg.metadata = Some(MetadataVersion::V090);
        cfg.persistent = true;
        cfg.patch_version = sb.patch_version;
        cfg.external = false;
        cfg.chunk_sectors = sb.chunk_size >> 9;
        cfg.ctime = sb.ctime as u64;
        cfg.utime = sb.utime as u64;
        cfg.level = sb.level;
        cfg.clevel.clear();
        cfg.layout = kint::int_from_le32(sb.layout);
        cfg.raid_disks = sb.raid_disks;
        cfg.dev_sectors = sb.size as u64 * 2;
        cfg.events = ev1;
        cfg.bitmap_info.offset = 0;
        cfg.bitmap_info.space = 0;
        cfg.bitmap_info.default_offset = i64::from(kint::len_u32(super0::SB0_BYTES >> 9));
        cfg.bitmap_info.default_space = 64 * 2 - (super0::SB0_BYTES as u64 >> 9);
        cfg.reshape_backwards = false;
        if sb.minor_version >= 91 {
            note_reshape(
                _mddev.log(),
                &rdev.name,
                sb.reshape_position,
                [sb.new_level, sb.delta_disks, sb.new_layout, sb.new_chunk],
            );
            cfg.reshape_position = sb.reshape_position;
            cfg.delta_disks = kint::int_from_le32(sb.delta_disks);
            cfg.new_level = kint::int_from_le32(sb.new_level);
            cfg.new_layout = kint::int_from_le32(sb.new_layout);
            cfg.new_chunk_sectors = sb.new_chunk >> 9;
            cfg.reshape_backwards = cfg.delta_disks < 0;
        } else {
            cfg.set_no_reshape(MAX_SECTOR);
        }
        if cfg.level == 0 {
            cfg.layout = -1;
        }
        let cp = if sb.state & sb_state::CLEAN != 0 {
            MAX_SECTOR
        } else if sb.events_hi == sb.cp_events_hi && sb.events_lo == sb.cp_events_lo {
            sb.recovery_cp as u64
        } else {
            0
        };
        _mddev.set_recovery_cp(cp);
        cfg.uuid = sb.uuid();
        cfg.max_disks = MAX_DISKS_090;
        if sb.state & sb_state::BITMAP_PRESENT != 0 {
            cfg.bitmap_info.offset = cfg.bitmap_info.default_offset;
            cfg.bitmap_info.space = cfg.bitmap_info.default_space;
        }
        cfg.md_minor = sb.md_minor;
    } else if !view.running {
        let n = rdev.desc_nr();
        if kint::index(n, MD_SB_DISKS)
            .is_some_and(|n| sb.disks[n].state & (disk_state::SYNC | disk_state::ACTIVE) != 0)
            && ev1.wrapping_add(1) < cfg.events
        {
            return Err(Errno::EINVAL);
        }
    } else if !view.keeps_role(rdev, ev1, cfg.events) {
        return Ok(());
    }
    let Some(n) = kint::index(rdev.desc_nr(), MD_SB_DISKS) else {
        return Ok(());
    };
    let desc = sb.disks[n];
    if desc.is(disk_state::FAULTY) {
        rdev.flags.set(rf::FAULTY);
    } else if desc.is(disk_state::SYNC) {
        rdev.flags.set(rf::IN_SYNC);
        rdev.set_raid_disk(kint::int_from_le32(desc.raid_disk));
        rdev.set_saved_raid_disk(kint::int_from_le32(desc.raid_disk));
    } else if desc.is(disk_state::ACTIVE) && sb.minor_version >= 91 {
        rdev.set_recovery_offset(0);
        rdev.set_raid_disk(kint::int_from_le32(desc.raid_disk));
    }
    if desc.is(disk_state::WRITEMOSTLY) {
        rdev.flags.set(rf::WRITE_MOSTLY);
    }
    if desc.is(disk_state::FAILFAST) {
        rdev.flags.set(rf::FAIL_FAST);
    }
    Ok(())
}

/// The part of the array's state a superblock records, gathered once per
/// update so every member is built from the same values.
pub struct SyncView {
    pub in_sync: bool,
    pub recovery_cp: u64,
    pub has_bitmap: bool,
    pub rdevs: Vec<Arc<Rdev>>,
}

/// `sync_super`: rebuild `rdev`'s superblock image from the array.
pub fn sync_super(cfg: &Config, view: &SyncView, rdev: &Rdev) {
    let mut st = rdev.sb.lock();
    match st.image.take() {
        Some(SbImage::V1(minor, mut sb)) => {
            sync_1(cfg, view, rdev, &mut sb);
            st.image = Some(SbImage::V1(minor, sb));
        }
        Some(SbImage::V090(_)) => {
            let sb = sync_090(cfg, view, rdev);
            st.image = Some(SbImage::V090(Box::new(sb)));
        }
        None => {}
    }
}

fn sync_1(cfg: &Config, view: &SyncView, rdev: &Rdev, sb: &mut Superblock1) {
    sb.feature_map = 0;
    sb.pad0 = 0;
    sb.recovery_offset = 0;
    sb.pad3 = [0; crate::format::super1::PAD3_LEN];
    sb.logical_block_size = cfg.logical_block_size;
    sb.utime = cfg.utime;
    sb.events = cfg.events;
    sb.resync_offset = if view.in_sync { view.recovery_cp } else { 0 };
    sb.cnt_corrected_read = rdev.corrected_errors();
    sb.raid_disks = cfg.raid_disks;
    sb.size = cfg.dev_sectors;
    sb.chunksize = cfg.chunk_sectors;
    sb.level = cfg.level;
    sb.layout = kint::le32_from_int(cfg.layout);
    if rdev.flags.test(rf::FAIL_FAST) {
        sb.devflags |= devflags::FAIL_FAST;
    } else {
        sb.devflags &= !devflags::FAIL_FAST;
    }
    if rdev.flags.test(rf::WRITE_MOSTLY) {
        sb.devflags |= devflags::WRITE_MOSTLY;
    } else {
        sb.devflags &= !devflags::WRITE_MOSTLY;
    }
    sb.data_offset = rdev.data_offset();
    sb.data_size = rdev.sectors();
    if view.has_bitmap && !cfg.bitmap_info.external {
        sb.bitmap_offset = kint::le32_from_int(kint::int_clamped(cfg.bitmap_info.offset));
        sb.feature_map = feature::BITMAP_OFFSET;
    }
    if rdev.raid_disk() >= 0 && !rdev.flags.test(rf::JOURNAL) && !rdev.in_sync() {
        sb.feature_map |= feature::RECOVERY_OFFSET;
        sb.recovery_offset = rdev.recovery_offset();
        // Only a member catching up in the slot it left: assembly takes
        // RECOVERY_BITMAP as "saved slot = this role", so one rebuilt
        // whole in another slot (its own was taken) would come back after
        // a crash as caught up on the bitmap's word, its clean chunks
        // skipped though they hold another slot's blocks.  (Linux sets it
        // for any saved slot.)
        if rdev.saved_raid_disk() == rdev.raid_disk() && view.has_bitmap {
            sb.feature_map |= feature::RECOVERY_BITMAP;
        }
    }
    if rdev.flags.test(rf::REPLACEMENT) {
        sb.feature_map |= feature::REPLACEMENT;
    }
    if cfg.reshape_position != MAX_SECTOR {
        sb.feature_map |= feature::RESHAPE_ACTIVE;
        sb.reshape_position = cfg.reshape_position;
        sb.new_layout = kint::le32_from_int(cfg.new_layout);
        sb.delta_disks = kint::le32_from_int(cfg.delta_disks);
        sb.new_level = kint::le32_from_int(cfg.new_level);
        sb.new_chunk = cfg.new_chunk_sectors;
        if cfg.delta_disks == 0 && cfg.reshape_backwards {
            sb.feature_map |= feature::RESHAPE_BACKWARDS;
        }
        if rdev.new_data_offset() != rdev.data_offset() {
            sb.feature_map |= feature::NEW_OFFSET;
            sb.new_offset = kint::lo32(rdev.new_data_offset().wrapping_sub(rdev.data_offset()));
        }
    }
    {
        let bb = rdev.badblocks.lock();
        if bb.count() > 0 && sb.bblog_offset != 0 {
            sb.feature_map |= feature::BAD_BLOCKS;
        }
    }
    let mut max_dev = 0u32;
    for r in &view.rdevs {
        let d = r.desc_nr();
        if d >= 0 && kint::le32_from_int(d) + 1 > max_dev {
            max_dev = kint::le32_from_int(d) + 1;
        }
    }
    if max_dev > sb.max_dev {
        sb.max_dev = max_dev;
        rdev.set_sb_size(kint::len_u32(sb.write_len()));
    }
    sb.dev_roles = vec![role::SPARE; sb.max_dev as usize];
    for r in &view.rdevs {
        let Some(i) = kint::index(r.desc_nr(), sb.dev_roles.len()) else {
            continue;
        };
        sb.dev_roles[i] = if r.faulty() {
            role::FAULTY
        } else if r.in_sync() {
            slot_role(r.raid_disk())
        } else if r.flags.test(rf::JOURNAL) {
            role::JOURNAL
        } else if r.raid_disk() >= 0 {
            slot_role(r.raid_disk())
        } else {
            role::SPARE
        };
    }
    sb.update_csum();
}

fn sync_090(cfg: &Config, view: &SyncView, rdev: &Rdev) -> Superblock0 {
    let mut sb = Superblock0::zeroed();
    sb.md_magic = super1::MD_SB_MAGIC;
    sb.major_version = 0;
    sb.patch_version = cfg.patch_version;
    sb.gvalid_words = 0;
    sb.set_uuid(cfg.uuid);
    sb.ctime = kint::u32_saturating(cfg.ctime);
    sb.level = cfg.level;
    sb.size = kint::u32_saturating(cfg.dev_sectors / 2);
    sb.raid_disks = cfg.raid_disks;
    sb.md_minor = cfg.md_minor;
    sb.not_persistent = 0;
    sb.utime = kint::u32_saturating(cfg.utime);
    sb.state = 0;
    sb.set_events(cfg.events);
    if cfg.reshape_position == MAX_SECTOR {
        sb.minor_version = 90;
        sb.reshape_position = 0;
        sb.new_level = 0;
        sb.delta_disks = 0;
        sb.new_layout = 0;
        sb.new_chunk = 0;
    } else {
        sb.minor_version = 91;
        sb.reshape_position = cfg.reshape_position;
        sb.new_level = kint::le32_from_int(cfg.new_level);
        sb.delta_disks = kint::le32_from_int(cfg.delta_disks);
        sb.new_layout = kint::le32_from_int(cfg.new_layout);
        sb.new_chunk = cfg.new_chunk_sectors << 9;
    }
    sb.cp_events_hi = 0;
    sb.cp_events_lo = 0;
    if view.in_sync {
        sb.recovery_cp = kint::lo32(view.recovery_cp);
        sb.cp_events_hi = kint::hi32(cfg.events);
        sb.cp_events_lo = kint::lo32(cfg.events);
        if view.recovery_cp == MAX_SECTOR {
            sb.state = sb_state::CLEAN;
        }
    } else {
        sb.recovery_cp = 0;
    }
    sb.layout = kint::le32_from_int(cfg.layout);
    sb.chunk_size = cfg.chunk_sectors << 9;
    if view.has_bitmap && !cfg.bitmap_info.external {
        sb.state |= sb_state::BITMAP_PRESENT;
    }
    sb.disks = [Disk0::default(); MD_SB_DISKS];
    sb.disks[0].state = disk_state::REMOVED;
    let mut next_spare = kint::int_from_le32(cfg.raid_disks);
    let (mut active, mut working, mut failed, mut spare, mut nr_disks) = (0, 0, 0, 0, 0);
    for r in &view.rdevs {
        let mut is_active = r.in_sync();
        if r.raid_disk() >= 0 && sb.minor_version >= 91 {
            is_active = true;
        }
        if r.raid_disk() < 0 || r.faulty() {
            is_active = false;
        }
        let desc_nr = if is_active {
            r.raid_disk()
        } else {
            let n = next_spare;
            next_spare += 1;
            n
        };
        r.set_desc_nr(desc_nr);
        let Some(index) = kint::index(desc_nr, MD_SB_DISKS) else {
            continue;
        };
        let (major, minor) = r.disk_devnum();
        let d = &mut sb.disks[index];
        nr_disks += 1;
        d.number = kint::le32_from_int(desc_nr);
        d.major = major;
        d.minor = minor;
        d.raid_disk = if is_active {
            kint::le32_from_int(r.raid_disk())
        } else {
            kint::le32_from_int(desc_nr)
        };
        if r.faulty() {
            d.state = disk_state::FAULTY;
        } else if is_active {
            d.state = disk_state::ACTIVE;
            if r.in_sync() {
                d.state |= disk_state::SYNC;
            }
            active += 1;
            working += 1;
        } else {
            d.state = 0;
            spare += 1;
            working += 1;
        }
        if r.flags.test(rf::WRITE_MOSTLY) {
            d.state |= disk_state::WRITEMOSTLY;
        }
        if r.flags.test(rf::FAIL_FAST) {
            d.state |= disk_state::FAILFAST;
        }
    }
    for i in 0..(cfg.raid_disks as usize).min(MD_SB_DISKS) {
        let d = &mut sb.disks[i];
        if d.state == 0 && d.number == 0 {
            d.number = kint::len_u32(i);
            d.raid_disk = kint::len_u32(i);
            d.state = disk_state::REMOVED | disk_state::FAULTY;
            failed += 1;
        }
    }
    sb.nr_disks = nr_disks;
    sb.active_disks = active;
    sb.working_disks = working;
    sb.failed_disks = failed;
    sb.spare_disks = spare;
    let me = rdev.desc_nr();
    if let Some(me) = kint::index(me, MD_SB_DISKS) {
        sb.this_disk = sb.disks[me];
    }
    sb.update_csum();
    sb
}

/// Bytes to write for `rdev`'s current superblock image.
pub fn image_bytes(rdev: &Rdev) -> Option<Vec<u8>> {
    let st = rdev.sb.lock();
    match st.image.as_ref()? {
        SbImage::V1(_, sb) => {
            let mut b = sb.to_bytes();
            b.resize(rdev.sb_size().max(512) as usize, 0);
            Some(b)
        }
        SbImage::V090(sb) => Some(sb.to_bytes()),
    }
}

impl Rdev {
    /// The `major:minor` a 0.90 superblock records for this member: the
    /// block device's number, or for an image file what its superblock
    /// recorded before (0:0 for a new member).
    pub fn disk_devnum(&self) -> (u32, u32) {
        match self.disk.kind() {
            crate::disk::DiskKind::BlockDevice { major, minor } => (major, minor),
            crate::disk::DiskKind::ImageFile | crate::disk::DiskKind::Nbd => {
                let v = self
                    .recorded_devnum
                    .load(std::sync::atomic::Ordering::Acquire);
                (kint::hi32(v), kint::lo32(v))
            }
        }
    }
}

/// Largest logical block size a block device takes (`BLK_MAX_BLOCK_SIZE`).
const BLK_MAX_BLOCK_SIZE: u32 = 64 * 1024;
/// md's I/O paths work in pages: `mddev_stack_rdev_limits` refuses more.
const PAGE_SIZE: u32 = 4096;

/// `lbs_store` (Linux 6.19 with "md: Fix forward incompatibility from
/// configurable logical block size"): only v1 metadata records it; before
/// run the value must exceed what the array's queue has and be a block
/// size the block layer takes; while running it can only be recorded once,
/// as the size the array already has.
pub fn logical_block_size_store(mddev: &Mddev, cfg: &mut Config, s: &str) -> Result<(), Errno> {
    if !matches!(cfg.metadata, Some(MetadataVersion::V1(_))) {
        return Err(Errno::EINVAL);
    }
    let lbs = crate::kstr::kstrtouint(s).map_err(|_| Errno::EINVAL)?;
    let log = mddev.log();
    let name = &mddev.name;
    if mddev.is_running() {
        if cfg.logical_block_size != 0 {
            return Err(Errno::EBUSY);
        }
        if lbs != cfg.queue_logical_block_size {
            return Err(Errno::EINVAL);
        }
        cfg.logical_block_size = lbs;
        mddev.sb_flags.set(super::flags::sb::CHANGE_DEVS);
        log.info(format!(
            "{name}: config logical block size success, array will not be assembled in old kernels (<= 6.18)"
        ));
        mddev.wakeup();
        return Ok(());
    }
    if cfg.queue_logical_block_size >= lbs {
        log.err(format!(
            "{name}: Cannot set LBS smaller than mddev LBS {lbs}"
        ));
        return Err(Errno::EINVAL);
    }
    log.info(format!(
        "{name}: logical_block_size is changed, data may be lost"
    ));
    // queue_limits_commit_update: blk_validate_limits.
    if !lbs.is_power_of_two() || lbs > BLK_MAX_BLOCK_SIZE {
        log.warn(format!(
            "Invalid logical block size ({})",
            kint::int_from_le32(lbs)
        ));
        return Err(Errno::EINVAL);
    }
    cfg.queue_logical_block_size = lbs;
    cfg.logical_block_size = lbs;
    // Written to the superblocks once the array runs.
    mddev.sb_flags.set(super::flags::sb::CHANGE_DEVS);
    Ok(())
}

/// The logical-block-size part of a personality's `set_limits` and
/// `mddev_stack_rdev_limits` (Linux 6.19): the recorded size stacked with
/// the members' (512 for every member mdfuse takes), at most a page.
/// Unlike 6.19, a new array (events 0) does not get its size recorded
/// here: that would make it one kernels up to 6.18 refuse.
pub fn stack_logical_block_size(mddev: &Mddev, cfg: &mut Config) -> Result<(), Errno> {
    let lbs = cfg.logical_block_size.max(512);
    if lbs > PAGE_SIZE {
        mddev.log().err(format!(
            "{}: logical_block_size must not larger than PAGE_SIZE",
            mddev.name
        ));
        return Err(Errno::EINVAL);
    }
    if !lbs.is_power_of_two() {
        mddev.log().warn(format!(
            "Invalid logical block size ({})",
            kint::int_from_le32(lbs)
        ));
        return Err(Errno::EINVAL);
    }
    cfg.queue_logical_block_size = lbs;
    Ok(())
}

/// The 1.x role word of a member in slot `raid_disk` (`cpu_to_le16`):
/// slots are below the 1.x limit of 1920, so the number itself.
fn slot_role(raid_disk: i32) -> u16 {
    u16::try_from(raid_disk).unwrap_or(role::SPARE)
}
