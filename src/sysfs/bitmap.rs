//! `md/bitmap/*` (md-bitmap.c `md_bitmap_attrs[]`), present on every array.

use std::sync::Arc;

use super::{Group, Row};
use crate::format::MetadataVersion;
use crate::kstr::{kstrtol, kstrtoull, strict_strtoul_scaled};
use crate::md::bitmap::Bitmap;
use crate::md::flags::{rdev as rf, sb as sbf};
use crate::md::{Errno, HZ, Mddev};

type M = Arc<Mddev>;

#[rustfmt::skip]
pub static BITMAP_ATTRS: &[Row<Arc<Mddev>>] = &[
    Row { name: "location", mode: 0o644, group: Group::Bitmap, show: Some(location_show), store: Some(location_store) },
    Row { name: "space", mode: 0o644, group: Group::Bitmap, show: Some(space_show), store: Some(space_store) },
    Row { name: "time_base", mode: 0o644, group: Group::Bitmap, show: Some(timeout_show), store: Some(timeout_store) },
    Row { name: "backlog", mode: 0o644, group: Group::Bitmap, show: Some(backlog_show), store: Some(backlog_store) },
    Row { name: "chunksize", mode: 0o644, group: Group::Bitmap, show: Some(chunksize_show), store: Some(chunksize_store) },
    Row { name: "metadata", mode: 0o644, group: Group::Bitmap, show: Some(metadata_show), store: Some(metadata_store) },
    Row { name: "can_clear", mode: 0o644, group: Group::Bitmap, show: Some(can_clear_show), store: Some(can_clear_store) },
    Row { name: "max_backlog_used", mode: 0o644, group: Group::Bitmap, show: Some(behind_show), store: Some(behind_reset) },
];

fn line(s: impl std::fmt::Display) -> Result<String, Errno> {
    Ok(format!("{s}\n"))
}

fn location_show(m: &M) -> Result<String, Errno> {
    let off = m.cfg.lock().bitmap_info.offset;
    if off != 0 {
        Ok(format!("{off:+}\n"))
    } else {
        line("none")
    }
}

fn location_store(m: &M, s: &str) -> Result<(), Errno> {
    let mut cfg = m.cfg.lock();
    if m.is_running() && (m.recovery.any() || m.sync.busy()) {
        return Err(Errno::EBUSY);
    }
    if m.bitmap().is_some() || cfg.bitmap_info.offset != 0 {
        if !s.starts_with("none") {
            return Err(Errno::EBUSY);
        }
        if let Some(p) = m.pers() {
            p.quiesce(true);
            *m.bitmap.write() = None;
            p.quiesce(false);
        }
        cfg.bitmap_info.offset = 0;
    } else if s.starts_with("none") {
        // nothing to do
    } else if s.starts_with("file:") {
        return Err(Errno::EINVAL);
    } else {
        let offset = kstrtol(s.strip_prefix('+').unwrap_or(s))?;
        if offset == 0 {
            return Err(Errno::EINVAL);
        }
        if cfg.metadata == Some(MetadataVersion::V090) && offset != cfg.bitmap_info.default_offset {
            return Err(Errno::EINVAL);
        }
        cfg.bitmap_info.offset = offset;
        m.publish(&cfg);
        if m.is_running() {
            let b = Bitmap::create(m, &mut cfg).inspect_err(|_| {
                cfg.bitmap_info.offset = 0;
            })?;
            *m.bitmap.write() = Some(b.clone());
            if let Err(e) = b.load(m, &mut cfg) {
                *m.bitmap.write() = None;
                cfg.bitmap_info.offset = 0;
                m.publish(&cfg);
                return Err(e);
            }
        }
    }
    m.publish(&cfg);
    m.sb_flags.set(sbf::CHANGE_DEVS);
    m.wakeup();
    Ok(())
}

fn space_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().bitmap_info.space)
}

fn space_store(m: &M, s: &str) -> Result<(), Errno> {
    let sectors = kstrtoull(s)?;
    if sectors == 0 {
        return Err(Errno::EINVAL);
    }
    let mut cfg = m.cfg.lock();
    if let Some(b) = m.bitmap() {
        let need = (256 + b.chunks().div_ceil(8)).div_ceil(512);
        if sectors < need {
            return Err(Errno::EFBIG);
        }
    }
    cfg.bitmap_info.space = sectors;
    Ok(())
}

fn timeout_show(m: &M) -> Result<String, Errno> {
    let ds = m.cfg.lock().bitmap_info.daemon_sleep;
    let (secs, jifs) = (ds / HZ, ds % HZ);
    if jifs != 0 {
        Ok(format!("{secs}.{:03}\n", jifs * 1000 / HZ))
    } else {
        line(secs)
    }
}

fn timeout_store(m: &M, s: &str) -> Result<(), Errno> {
    let t = strict_strtoul_scaled(s, 4)?;
    if t >= (i64::MAX as u64) / HZ {
        return Err(Errno::EINVAL);
    }
    let jiffies = (t * HZ / 10000).max(1);
    m.cfg.lock().bitmap_info.daemon_sleep = jiffies;
    if let Some(b) = m.bitmap() {
        b.set_daemon_sleep(jiffies);
    }
    m.wakeup();
    Ok(())
}

fn backlog_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().bitmap_info.max_write_behind)
}

fn backlog_store(m: &M, s: &str) -> Result<(), Errno> {
    let v = kstrtoull(s)?;
    if v > crate::format::bitmap::COUNTER_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let mut cfg = m.cfg.lock();
    if !cfg.rdevs.iter().any(|r| r.flags.test(rf::WRITE_MOSTLY)) {
        m.log().warn(format!(
            "{}: can't set backlog, no write mostly device available",
            m.name
        ));
        return Err(Errno::EINVAL);
    }
    let old = cfg.bitmap_info.max_write_behind;
    cfg.bitmap_info.max_write_behind = v;
    if let Some(b) = m.bitmap() {
        b.set_max_write_behind(v);
        if old != v {
            b.update_sb(m, &cfg);
        }
    }
    Ok(())
}

fn chunksize_show(m: &M) -> Result<String, Errno> {
    line(m.cfg.lock().bitmap_info.chunksize)
}

fn chunksize_store(m: &M, s: &str) -> Result<(), Errno> {
    if m.bitmap().is_some() {
        return Err(Errno::EBUSY);
    }
    let c = kstrtoull(s)?;
    if c < 512 || !c.is_power_of_two() {
        return Err(Errno::EINVAL);
    }
    if c >= 1 << 32 {
        return Err(Errno::EOVERFLOW);
    }
    m.cfg.lock().bitmap_info.chunksize = c;
    Ok(())
}

fn metadata_show(m: &M) -> Result<String, Errno> {
    line(if m.cfg.lock().bitmap_info.external {
        "external"
    } else {
        "internal"
    })
}

fn metadata_store(m: &M, s: &str) -> Result<(), Errno> {
    let mut cfg = m.cfg.lock();
    if m.bitmap().is_some() || cfg.bitmap_info.offset != 0 {
        return Err(Errno::EBUSY);
    }
    if s.starts_with("external") {
        cfg.bitmap_info.external = true;
    } else if s.starts_with("internal") {
        cfg.bitmap_info.external = false;
    } else {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn can_clear_show(m: &M) -> Result<String, Errno> {
    match m.bitmap() {
        Some(b) => line(if b.need_sync() { "false" } else { "true" }),
        None => Ok("\n".into()),
    }
}

fn can_clear_store(m: &M, s: &str) -> Result<(), Errno> {
    let Some(b) = m.bitmap() else {
        return Err(Errno::ENOENT);
    };
    if s.starts_with("false") {
        b.set_need_sync(true);
        Ok(())
    } else if s.starts_with("true") {
        if m.degraded() > 0 {
            return Err(Errno::EBUSY);
        }
        b.set_need_sync(false);
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

fn behind_show(m: &M) -> Result<String, Errno> {
    line(m.bitmap().map(|b| b.max_backlog_used()).unwrap_or(0))
}

fn behind_reset(m: &M, _s: &str) -> Result<(), Errno> {
    if let Some(b) = m.bitmap() {
        b.reset_max_backlog_used();
    }
    Ok(())
}
