//! Array attributes (`/sys/block/mdX/md/*`), one row per attribute as
//! md.c's `md_default_attrs[]` and `md_redundancy_attrs[]`.

use std::sync::Arc;

use super::{Group, Row};
use crate::format::{MAX_SECTOR, MetadataVersion, uuid_dashed};
use crate::kstr::{
    cmd_match, kstrtobool, kstrtol, kstrtouint, kstrtoull, simple_strtoul,
    strict_blocks_to_sectors, strict_strtoul_scaled,
};
use crate::md::flags::{recovery as rec, sb as sbf};
use crate::md::{ArrayState, Errno, HZ, LEVEL_NONE, Mddev, SyncAction, state};

type M = Arc<Mddev>;

#[rustfmt::skip]
pub static ARRAY_ATTRS: &[Row<Arc<Mddev>>] = &[
    Row { name: "level", mode: 0o644, group: Group::Default, show: Some(level_show), store: Some(level_store) },
    Row { name: "bitmap_type", mode: 0o664, group: Group::Default, show: Some(bitmap_type_show), store: Some(bitmap_type_store) },
    Row { name: "layout", mode: 0o644, group: Group::Default, show: Some(layout_show), store: Some(layout_store) },
    Row { name: "raid_disks", mode: 0o644, group: Group::Default, show: Some(raid_disks_show), store: Some(raid_disks_store) },
    Row { name: "uuid", mode: 0o444, group: Group::Default, show: Some(uuid_show), store: None },
    Row { name: "chunk_size", mode: 0o644, group: Group::Default, show: Some(chunk_size_show), store: Some(chunk_size_store) },
    Row { name: "component_size", mode: 0o644, group: Group::Default, show: Some(size_show), store: Some(size_store) },
    Row { name: "resync_start", mode: 0o644, group: Group::Default, show: Some(resync_start_show), store: Some(resync_start_store) },
    Row { name: "metadata_version", mode: 0o644, group: Group::Default, show: Some(metadata_show), store: Some(metadata_store) },
    Row { name: "new_dev", mode: 0o200, group: Group::Default, show: None, store: Some(new_dev_store) },
    Row { name: "safe_mode_delay", mode: 0o644, group: Group::Default, show: Some(safe_delay_show), store: Some(safe_delay_store) },
    Row { name: "array_state", mode: 0o644, group: Group::Default, show: Some(array_state_show), store: Some(array_state_store) },
    Row { name: "reshape_position", mode: 0o644, group: Group::Default, show: Some(reshape_position_show), store: Some(reshape_position_store) },
    Row { name: "reshape_direction", mode: 0o644, group: Group::Default, show: Some(reshape_direction_show), store: Some(reshape_direction_store) },
    Row { name: "array_size", mode: 0o644, group: Group::Default, show: Some(array_size_show), store: Some(array_size_store) },
    Row { name: "max_read_errors", mode: 0o644, group: Group::Default, show: Some(max_read_errors_show), store: Some(max_read_errors_store) },
    Row { name: "consistency_policy", mode: 0o644, group: Group::Default, show: Some(consistency_policy_show), store: Some(consistency_policy_store) },
    Row { name: "fail_last_dev", mode: 0o644, group: Group::Default, show: Some(fail_last_dev_show), store: Some(fail_last_dev_store) },
    Row { name: "serialize_policy", mode: 0o644, group: Group::Default, show: Some(serialize_policy_show), store: Some(serialize_policy_store) },
    Row { name: "logical_block_size", mode: 0o644, group: Group::Default, show: Some(lbs_show), store: Some(lbs_store) },
    // md_redundancy_group: present while a redundant personality runs.
    Row { name: "sync_action", mode: 0o644, group: Group::Redundancy, show: Some(action_show), store: Some(action_store) },
    Row { name: "last_sync_action", mode: 0o444, group: Group::Redundancy, show: Some(last_sync_action_show), store: None },
    Row { name: "mismatch_cnt", mode: 0o444, group: Group::Redundancy, show: Some(mismatch_cnt_show), store: None },
    Row { name: "sync_speed_min", mode: 0o644, group: Group::Redundancy, show: Some(sync_min_show), store: Some(sync_min_store) },
    Row { name: "sync_speed_max", mode: 0o644, group: Group::Redundancy, show: Some(sync_max_show), store: Some(sync_max_store) },
    Row { name: "sync_speed", mode: 0o444, group: Group::Redundancy, show: Some(sync_speed_show), store: None },
    Row { name: "sync_force_parallel", mode: 0o644, group: Group::Redundancy, show: Some(sync_force_parallel_show), store: Some(sync_force_parallel_store) },
    Row { name: "sync_completed", mode: 0o444, group: Group::Redundancy, show: Some(sync_completed_show), store: None },
    Row { name: "sync_min", mode: 0o644, group: Group::Redundancy, show: Some(min_sync_show), store: Some(min_sync_store) },
    Row { name: "sync_max", mode: 0o644, group: Group::Redundancy, show: Some(max_sync_show), store: Some(max_sync_store) },
    Row { name: "suspend_lo", mode: 0o644, group: Group::Redundancy, show: Some(suspend_lo_show), store: Some(suspend_lo_store) },
    Row { name: "suspend_hi", mode: 0o644, group: Group::Redundancy, show: Some(suspend_hi_show), store: Some(suspend_hi_store) },
    Row { name: "bitmap_set_bits", mode: 0o200, group: Group::Redundancy, show: None, store: Some(bitmap_set_bits_store) },
    Row { name: "degraded", mode: 0o444, group: Group::Redundancy, show: Some(degraded_show), store: None },
    // Beyond md: where the last check found the legs differ.
    Row { name: "mismatches", mode: 0o444, group: Group::Redundancy, show: Some(mismatches_show), store: None },
    Row { name: "repair_source", mode: 0o644, group: Group::Redundancy, show: Some(repair_source_show), store: Some(repair_source_store) },
];

fn line(s: impl std::fmt::Display) -> Result<String, Errno> {
    Ok(format!("{s}\n"))
}

fn level_show(m: &M) -> Result<String, Errno> {
    if let Some(p) = m.pers() {
        return line(p.personality().name());
    }
    let cfg = m.cfg.lock();
    if !cfg.clevel.is_empty() {
        line(&cfg.clevel)
    } else if cfg.level != LEVEL_NONE {
        line(cfg.level)
    } else {
        Ok(String::new())
    }
}

fn level_store(m: &M, s: &str) -> Result<(), Errno> {
    // The tree removed one newline (an empty write never gets here, so an
    // empty `s` was a bare newline: the kernel stores an empty name); the
    // kernel's limit of 15 bytes counts that newline.
    if s.len() >= 15 {
        return Err(Errno::EINVAL);
    }
    let mut cfg = m.cfg.lock();
    let Some(p) = m.pers() else {
        cfg.clevel = s.to_owned();
        cfg.level = LEVEL_NONE;
        return Ok(());
    };
    if !m.is_rdwr() {
        return Err(Errno::EROFS);
    }
    if m.recovery.test(rec::RUNNING) || cfg.reshape_position != MAX_SECTOR {
        return Err(Errno::EBUSY);
    }
    // A long, which find_pers takes as an int: 2^32 is level 0.
    let level = kstrtol(s).map(|l| l as i32).unwrap_or(LEVEL_NONE);
    match m.md.find_pers(level, s) {
        Some(np) if np.name() == p.personality().name() => Ok(()),
        Some(np) if np.has_takeover() => {
            let e = np.takeover(m, &cfg);
            // What a takeover may have set is undone.
            cfg.new_level = cfg.level;
            cfg.new_layout = cfg.layout;
            cfg.new_chunk_sectors = cfg.chunk_sectors;
            cfg.raid_disks = (cfg.raid_disks as i32).wrapping_sub(cfg.delta_disks) as u32;
            cfg.delta_disks = 0;
            cfg.reshape_backwards = false;
            m.publish(&cfg);
            m.log()
                .warn(format!("md: {}: {} would not accept array", m.name, s));
            Err(e)
        }
        Some(_) => {
            m.log().warn(format!(
                "md: {}: {} does not support personality takeover",
                m.name, s
            ));
            Err(Errno::EINVAL)
        }
        None => {
            m.log().warn(format!("md: personality {s} not loaded"));
            Err(Errno::EINVAL)
        }
    }
}

fn layout_show(m: &M) -> Result<String, Errno> {
    let cfg = m.cfg.lock();
    if cfg.reshape_position != MAX_SECTOR && cfg.layout != cfg.new_layout {
        return Ok(format!("{} ({})\n", cfg.new_layout, cfg.layout));
    }
    line(cfg.layout)
}

fn layout_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = kstrtouint(s)?;
    // An int in the kernel: 2^31 and up read back negative.
    crate::md::resize::update_layout(m, &mut m.cfg.lock(), n as i32)
}

fn raid_disks_show(m: &M) -> Result<String, Errno> {
    let cfg = m.cfg.lock();
    // mddev->raid_disks is an int: a store of 2^31 reads back negative.
    let n = cfg.raid_disks as i32;
    if n == 0 {
        return Ok(String::new());
    }
    if cfg.reshape_position != MAX_SECTOR && cfg.delta_disks != 0 {
        return Ok(format!("{} ({})\n", n, n.wrapping_sub(cfg.delta_disks)));
    }
    line(n)
}

fn raid_disks_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = kstrtouint(s)?;
    let mut cfg = m.cfg.lock();
    if m.is_running() {
        return crate::md::resize::update_raid_disks(m, &mut cfg, n);
    }
    if cfg.reshape_position != MAX_SECTOR {
        return Err(Errno::EINVAL);
    }
    cfg.raid_disks = n;
    m.publish(&cfg);
    Ok(())
}

fn uuid_show(m: &M) -> Result<String, Errno> {
    line(uuid_dashed(&m.cfg.lock().uuid))
}

fn chunk_size_show(m: &M) -> Result<String, Errno> {
    let cfg = m.cfg.lock();
    // `chunk_sectors << 9` in int arithmetic, as the kernel prints it.
    let bytes = |c: u32| (c as i32).wrapping_shl(9);
    if cfg.reshape_position != MAX_SECTOR && cfg.chunk_sectors != cfg.new_chunk_sectors {
        return Ok(format!(
            "{} ({})\n",
            bytes(cfg.new_chunk_sectors),
            bytes(cfg.chunk_sectors)
        ));
    }
    line(bytes(cfg.chunk_sectors))
}

fn chunk_size_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = kstrtoull(s)?;
    // new_chunk_sectors is an int: the kernel keeps the low bits.
    crate::md::resize::update_chunk(m, &mut m.cfg.lock(), (n >> 9) as u32)
}

fn size_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().dev_sectors / 2)
}

fn size_store(m: &M, s: &str) -> Result<(), Errno> {
    let sectors = strict_blocks_to_sectors(s)?;
    let mut cfg = m.cfg.lock();
    if m.is_running() {
        return crate::md::resize::update_size(m, &mut cfg, sectors);
    }
    if cfg.dev_sectors == 0 || cfg.dev_sectors > sectors {
        cfg.dev_sectors = sectors;
        m.publish(&cfg);
        Ok(())
    } else {
        Err(Errno::ENOSPC)
    }
}

fn resync_start_show(m: &M) -> Result<String, Errno> {
    match m.recovery_cp() {
        MAX_SECTOR => line("none"),
        cp => line(cp),
    }
}

fn resync_start_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = if cmd_match(s, "none") {
        MAX_SECTOR
    } else {
        kstrtoull(s)?
    };
    let _cfg = m.cfg.lock();
    if m.is_running() && !m.recovery.test(rec::FROZEN) {
        return Err(Errno::EBUSY);
    }
    m.set_recovery_cp(n);
    if m.is_running() {
        m.sb_flags.set(sbf::CHANGE_CLEAN);
    }
    Ok(())
}

fn metadata_show(m: &M) -> Result<String, Errno> {
    let cfg = m.cfg.lock();
    match (cfg.persistent, cfg.metadata) {
        (true, Some(MetadataVersion::V090)) => line("0.90"),
        (true, Some(v)) => line(v),
        _ if cfg.external => line("external:"),
        _ => line("none"),
    }
}

fn metadata_store(m: &M, s: &str) -> Result<(), Errno> {
    let mut cfg = m.cfg.lock();
    if !cfg.rdevs.is_empty() {
        return Err(Errno::EBUSY);
    }
    if cmd_match(s, "none") {
        cfg.persistent = false;
        cfg.external = false;
        cfg.metadata = None;
        cfg.metadata_written = true;
        return Ok(());
    }
    if s.starts_with("external:") {
        // External metadata (containers) is managed by mdmon; mdfuse
        // has no such manager.
        m.log().warn(format!(
            "md: {}: external metadata is not supported",
            m.name
        ));
        return Err(Errno::EINVAL);
    }
    let (major, rest) = simple_strtoul(s);
    if rest.len() == s.len() || !rest.starts_with('.') {
        return Err(Errno::EINVAL);
    }
    let (minor, rest2) = simple_strtoul(&rest[1..]);
    if rest2.len() == rest.len() - 1 || !rest2.is_empty() {
        return Err(Errno::EINVAL);
    }
    let v = match (major, minor) {
        (0, 90) => MetadataVersion::V090,
        (1, n) => match crate::format::Minor::from_number(n as u32) {
            Some(mi) => MetadataVersion::V1(mi),
            None => return Err(Errno::EINVAL),
        },
        (0, _) => return Err(Errno::EINVAL),
        _ => return Err(Errno::ENOENT),
    };
    cfg.metadata = Some(v);
    cfg.persistent = true;
    cfg.external = false;
    cfg.metadata_written = true;
    Ok(())
}

fn new_dev_store(m: &M, s: &str) -> Result<(), Errno> {
    m.new_dev(s).map(|_| ())
}

fn safe_delay_show(m: &M) -> Result<String, Errno> {
    let msec = m.safemode_delay() * 1000 / HZ;
    Ok(format!("{}.{:03}\n", msec / 1000, msec % 1000))
}

fn safe_delay_store(m: &M, s: &str) -> Result<(), Errno> {
    let msec = strict_strtoul_scaled(s, 3)?;
    if msec > u32::MAX as u64 / HZ {
        return Err(Errno::EINVAL);
    }
    if msec == 0 {
        m.set_safemode_delay(0);
        return Ok(());
    }
    let old = m.safemode_delay();
    let new = (msec * HZ / 1000).max(1);
    m.set_safemode_delay(new);
    if new < old || old == 0 {
        let mut st = m.lock.lock();
        if st.writes_pending == 0 && !st.in_sync {
            let t = m.md.instant_at(m.md.jiffies() + 1);
            st.safemode_deadline = Some(t);
            drop(st);
            m.thread.wakeup_at(t);
        }
    }
    Ok(())
}

fn array_state_show(m: &M) -> Result<String, Errno> {
    line(state::array_state(m))
}

fn array_state_store(m: &M, s: &str) -> Result<(), Errno> {
    let want = ArrayState::match_word(s).ok_or(Errno::EINVAL)?;
    state::array_state_store(m, want)
}

fn reshape_position_show(m: &M) -> Result<String, Errno> {
    match m.cfg.lock().reshape_position {
        MAX_SECTOR => line("none"),
        p => line(p),
    }
}

fn reshape_position_store(m: &M, s: &str) -> Result<(), Errno> {
    let new = kstrtoull(s)?;
    let mut cfg = m.cfg.lock();
    if m.is_running() {
        return Err(Errno::EBUSY);
    }
    cfg.set_no_reshape(new);
    for r in &cfg.rdevs {
        r.set_new_data_offset(r.data_offset());
    }
    Ok(())
}

fn reshape_direction_show(m: &M) -> Result<String, Errno> {
    line(if m.cfg.lock().reshape_backwards {
        "backwards"
    } else {
        "forwards"
    })
}

fn reshape_direction_store(m: &M, s: &str) -> Result<(), Errno> {
    let backwards = if cmd_match(s, "forwards") {
        false
    } else if cmd_match(s, "backwards") {
        true
    } else {
        return Err(Errno::EINVAL);
    };
    let mut cfg = m.cfg.lock();
    if cfg.reshape_backwards == backwards {
        return Ok(());
    }
    if cfg.delta_disks != 0 {
        return Err(Errno::EBUSY);
    }
    if cfg.persistent && cfg.metadata == Some(MetadataVersion::V090) {
        return Err(Errno::EINVAL);
    }
    cfg.reshape_backwards = backwards;
    Ok(())
}

fn array_size_show(m: &M) -> Result<String, Errno> {
    let cfg = m.cfg.lock();
    if cfg.external_size {
        line(m.array_sectors() / 2)
    } else {
        line("default")
    }
}

fn array_size_store(m: &M, s: &str) -> Result<(), Errno> {
    let mut cfg = m.cfg.lock();
    let sectors = if s.starts_with("default") {
        cfg.external_size = false;
        match m.pers() {
            Some(p) => p.size(cfg.dev_sectors),
            None => m.array_sectors(),
        }
    } else {
        let sectors = strict_blocks_to_sectors(s).map_err(|_| Errno::EINVAL)?;
        if let Some(p) = m.pers() {
            if p.size(cfg.dev_sectors) < sectors {
                return Err(Errno::E2BIG);
            }
        }
        cfg.external_size = true;
        sectors
    };
    let old = m.array_sectors();
    m.set_array_sectors(sectors);
    if m.is_running() && old != sectors {
        m.log().info(format!(
            "{}: detected capacity change from {old} to {sectors}",
            m.name
        ));
        m.observer().running_changed(m);
    }
    Ok(())
}

fn max_read_errors_show(m: &M) -> Result<String, Errno> {
    line(m.max_corr_read_errors())
}

fn max_read_errors_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = kstrtouint(s)?;
    if n > i32::MAX as u32 {
        return Err(Errno::EINVAL);
    }
    m.set_max_corr_read_errors(n);
    Ok(())
}

fn consistency_policy_show(m: &M) -> Result<String, Errno> {
    if m.bitmap().is_some() {
        line("bitmap")
    } else if let Some(p) = m.pers() {
        line(if p.personality().redundant() {
            "resync"
        } else {
            "none"
        })
    } else {
        line("unknown")
    }
}

fn consistency_policy_store(m: &M, s: &str) -> Result<(), Errno> {
    // The personality's change_consistency_policy (EBUSY without one);
    // before the run, only external metadata may ask for ppl.
    match m.pers() {
        Some(p) => p.change_consistency_policy(m, &m.cfg.lock(), s),
        None => Err(Errno::EINVAL),
    }
}

fn fail_last_dev_show(m: &M) -> Result<String, Errno> {
    line(m.fail_last_dev() as u8)
}

fn fail_last_dev_store(m: &M, s: &str) -> Result<(), Errno> {
    m.set_fail_last_dev(kstrtobool(s)?);
    Ok(())
}

fn serialize_policy_show(m: &M) -> Result<String, Errno> {
    match m.pers() {
        Some(p) if p.personality().level() == 1 => line(m.cfg.lock().serialize_policy as u8),
        _ => line("n/a"),
    }
}

fn serialize_policy_store(m: &M, s: &str) -> Result<(), Errno> {
    let v = kstrtobool(s)?;
    let mut cfg = m.cfg.lock();
    if v == cfg.serialize_policy {
        return Ok(());
    }
    if m.pers().is_none_or(|p| p.personality().level() != 1) {
        m.log()
            .err("md: serialize_policy is only effective for raid1");
        return Err(Errno::EINVAL);
    }
    // Writes to a leg are already issued one range at a time, in order.
    cfg.serialize_policy = v;
    Ok(())
}

/// `lbs_show` (Linux 6.19).
fn lbs_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().logical_block_size)
}

fn lbs_store(m: &M, s: &str) -> Result<(), Errno> {
    let mut cfg = m.cfg.lock();
    crate::md::superblock::logical_block_size_store(m, &mut cfg, s)
}

/// `bitmap_type_show` (Linux 6.18, without llbitmap): the choice in
/// brackets.
fn bitmap_type_show(m: &M) -> Result<String, Errno> {
    if m.cfg.lock().bitmap_type_bitmap {
        line("none [bitmap] ")
    } else {
        line("[none] bitmap ")
    }
}

/// `ID_BITMAP` and `ID_BITMAP_NONE` of Linux 6.18's `enum md_submodule_id`.
const ID_BITMAP: i32 = 12;
const ID_BITMAP_NONE: i32 = 14;

fn bitmap_type_store(m: &M, s: &str) -> Result<(), Errno> {
    if m.bitmap().is_some() {
        return Err(Errno::EBUSY);
    }
    let mut cfg = m.cfg.lock();
    if cmd_match(s, "none") {
        cfg.bitmap_type_bitmap = false;
        return Ok(());
    }
    if cmd_match(s, "bitmap") {
        cfg.bitmap_type_bitmap = true;
        return Ok(());
    }
    match crate::kstr::kstrtoint(s)? {
        ID_BITMAP_NONE => cfg.bitmap_type_bitmap = false,
        ID_BITMAP => cfg.bitmap_type_bitmap = true,
        // Not a registered bitmap (llbitmap, 13, is not there).
        _ => return Err(Errno::ENOENT),
    }
    Ok(())
}

/// `action_show` (Linux 6.1).
fn action_show(m: &M) -> Result<String, Errno> {
    line(state::sync_action(m))
}

fn action_store(m: &M, s: &str) -> Result<(), Errno> {
    if !m.pers().is_some_and(|p| p.personality().redundant()) {
        return Err(Errno::EINVAL);
    }
    crate::md::sync::settle_needed(m);
    let mut cfg = m.cfg.lock();
    state::action_store(m, &mut cfg, SyncAction::match_word(s))
}

fn last_sync_action_show(m: &M) -> Result<String, Errno> {
    line(m.sync.last_sync_action())
}

fn mismatch_cnt_show(m: &M) -> Result<String, Errno> {
    line(m.sync.mismatches())
}

fn sync_min_show(m: &M) -> Result<String, Errno> {
    let local = m.sync_speed_min_local() != 0;
    Ok(format!(
        "{} ({})\n",
        m.speed_min() as i32,
        if local { "local" } else { "system" }
    ))
}

fn speed_value(s: &str) -> Result<u32, Errno> {
    if s.starts_with("system") {
        return Ok(0);
    }
    let v = kstrtouint(s)?;
    if v == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

fn sync_min_store(m: &M, s: &str) -> Result<(), Errno> {
    m.set_sync_speed_min(speed_value(s)?);
    Ok(())
}

fn sync_max_show(m: &M) -> Result<String, Errno> {
    let local = m.sync_speed_max_local() != 0;
    Ok(format!(
        "{} ({})\n",
        m.speed_max() as i32,
        if local { "local" } else { "system" }
    ))
}

fn sync_max_store(m: &M, s: &str) -> Result<(), Errno> {
    m.set_sync_speed_max(speed_value(s)?);
    Ok(())
}

fn sync_speed_show(m: &M) -> Result<String, Errno> {
    if m.sync.curr_resync() == crate::md::sync::RESYNC_NONE {
        return line("none");
    }
    line(m.sync.speed())
}

fn sync_force_parallel_show(m: &M) -> Result<String, Errno> {
    line(m.sync_force_parallel() as u8)
}

fn sync_force_parallel_store(m: &M, s: &str) -> Result<(), Errno> {
    let n = kstrtol(s).map_err(|_| Errno::EINVAL)?;
    if n != 0 && n != 1 {
        return Err(Errno::EINVAL);
    }
    m.set_sync_force_parallel(n == 1);
    Ok(())
}

fn sync_completed_show(m: &M) -> Result<String, Errno> {
    if !m.recovery.test(rec::RUNNING) {
        return line("none");
    }
    let c = m.sync.curr_resync();
    if c == crate::md::sync::RESYNC_YIELDED || c == crate::md::sync::RESYNC_DELAYED {
        return line("delayed");
    }
    let max = if m.recovery.test(rec::SYNC) || m.recovery.test(rec::RESHAPE) {
        m.sync.resync_max_sectors()
    } else {
        m.dev_sectors()
    };
    Ok(format!("{} / {}\n", m.sync.curr_resync_completed(), max))
}

fn min_sync_show(m: &M) -> Result<String, Errno> {
    line(m.sync.resync_min())
}

fn min_sync_store(m: &M, s: &str) -> Result<(), Errno> {
    let min = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    let _g = m.lock.lock();
    if min > m.sync.resync_max() {
        return Err(Errno::EINVAL);
    }
    if m.recovery.test(rec::RUNNING) {
        return Err(Errno::EBUSY);
    }
    m.sync.set_resync_min(min & !7);
    Ok(())
}

fn max_sync_show(m: &M) -> Result<String, Errno> {
    match m.sync.resync_max() {
        MAX_SECTOR => line("max"),
        v => line(v),
    }
}

fn max_sync_store(m: &M, s: &str) -> Result<(), Errno> {
    if s.starts_with("max") {
        m.sync.set_resync_max(MAX_SECTOR);
        return Ok(());
    }
    let max = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    if max < m.sync.resync_min() {
        return Err(Errno::EINVAL);
    }
    if max < m.sync.resync_max() && m.is_rdwr() && m.recovery.test(rec::RUNNING) {
        return Err(Errno::EBUSY);
    }
    let chunk = m.cfg.lock().chunk_sectors as u64;
    if chunk != 0 && max % chunk != 0 {
        return Err(Errno::EINVAL);
    }
    m.sync.set_resync_max(max);
    Ok(())
}

fn suspend_lo_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().suspend_lo)
}

fn suspend_lo_store(m: &M, s: &str) -> Result<(), Errno> {
    let v = kstrtoull(s)?;
    let mut cfg = m.cfg.lock();
    // mddev_suspend: let in-flight I/O drain, then resume.
    if let Some(p) = m.pers() {
        p.quiesce(true);
        cfg.suspend_lo = v;
        p.quiesce(false);
    } else {
        cfg.suspend_lo = v;
    }
    Ok(())
}

fn suspend_hi_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().suspend_hi)
}

fn suspend_hi_store(m: &M, s: &str) -> Result<(), Errno> {
    let v = kstrtoull(s)?;
    let mut cfg = m.cfg.lock();
    if let Some(p) = m.pers() {
        p.quiesce(true);
        cfg.suspend_hi = v;
        p.quiesce(false);
    } else {
        cfg.suspend_hi = v;
    }
    Ok(())
}

/// `bitmap_store`: `N` or `N-M` chunk numbers separated by spaces; parsing
/// stops quietly at the first thing that is not one, as the kernel's does.
fn bitmap_set_bits_store(m: &M, s: &str) -> Result<(), Errno> {
    let _cfg = m.cfg.lock();
    let Some(b) = m.bitmap() else { return Ok(()) };
    let mut rest = s;
    loop {
        let (chunk, after) = simple_strtoul(rest);
        if after.len() == rest.len() {
            break;
        }
        let mut end_chunk = chunk;
        let mut after = after;
        if let Some(r) = after.strip_prefix('-') {
            let (e, a2) = simple_strtoul(r);
            if a2.len() == r.len() {
                break;
            }
            end_chunk = e;
            after = a2;
        }
        if !after.is_empty() && !after.starts_with(|c: char| c.is_ascii_whitespace()) {
            break;
        }
        if end_chunk >= chunk {
            b.dirty_bits(m, chunk, end_chunk.min(chunk.saturating_add(b.chunks())));
        }
        rest = after.trim_start();
    }
    let seq = b.startwrite(0, 0);
    b.unplug(m, seq);
    m.wakeup();
    Ok(())
}

fn degraded_show(m: &M) -> Result<String, Errno> {
    line(m.degraded())
}

/// `mismatches`: `start length` (array sectors) of each range where the
/// last check or repair found the legs differ.
fn mismatches_show(m: &M) -> Result<String, Errno> {
    let mut s = String::new();
    for (start, len) in m.sync.mismatch_ranges() {
        s.push_str(&format!("{start} {len}\n"));
    }
    Ok(s)
}

fn repair_source_show(m: &M) -> Result<String, Errno> {
    line(
        m.sync
            .repair_source
            .lock()
            .clone()
            .unwrap_or_else(|| "auto".into()),
    )
}

/// Name the leg (`dev-NAME` without the prefix) a repair copies from, or
/// `auto` for md's choice (the first in-sync leg).
fn repair_source_store(m: &M, s: &str) -> Result<(), Errno> {
    if cmd_match(s, "auto") {
        *m.sync.repair_source.lock() = None;
        return Ok(());
    }
    let cfg = m.cfg.lock();
    let name = s.strip_prefix("dev-").unwrap_or(s);
    match cfg.rdevs.iter().find(|r| r.name == name) {
        Some(r) if r.in_sync() && !r.faulty() => {
            *m.sync.repair_source.lock() = Some(r.name.clone());
            Ok(())
        }
        Some(_) => Err(Errno::EBUSY),
        None => Err(Errno::ENOENT),
    }
}
