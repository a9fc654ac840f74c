//! `/proc/mdstat` (md.c `md_seq_show`, `status_resync`), byte for byte.

use super::flags::{rdev as rf, recovery as rec};
use super::{Md, Mddev, ro};
use crate::format::{MAX_SECTOR, MetadataVersion};
use crate::md::sync::{RESYNC_ACTIVE, RESYNC_NONE};

/// The whole file.
pub fn mdstat(md: &Md) -> String {
    let mut s = md.personalities_line();
    s.push('\n');
    for m in md.arrays() {
        s.push_str(&stanza(&m));
    }
    s.push_str("unused devices: <none>\n");
    s
}

/// One array's lines (nothing for an array with no members and no state).
pub fn stanza(m: &Mddev) -> String {
    let cfg = m.cfg.lock();
    let pers = m.pers();
    if pers.is_none() && cfg.raid_disks == 0 && cfg.rdevs.is_empty() {
        return String::new();
    }
    let mut s = format!("{} : ", m.name);
    match &pers {
        Some(p) => {
            // "active" even when MD_BROKEN is set: 6.1's md_seq_show
            // does not look at it (array_state does).
            s.push_str("active");
            match m.ro() {
                ro::RDONLY => s.push_str(" (read-only)"),
                ro::AUTO_READ => s.push_str(" (auto-read-only)"),
                _ => {}
            }
            s.push(' ');
            s.push_str(p.personality().name());
        }
        None => s.push_str("inactive"),
    }
    let mut sectors = 0u64;
    for r in &cfg.rdevs {
        s.push_str(&format!(" {}[{}]", r.name, r.desc_nr()));
        if r.flags.test(rf::WRITE_MOSTLY) {
            s.push_str("(W)");
        }
        if r.flags.test(rf::JOURNAL) {
            s.push_str("(J)");
        }
        if r.faulty() {
            s.push_str("(F)");
            continue;
        }
        if r.raid_disk() < 0 {
            s.push_str("(S)");
        }
        if r.flags.test(rf::REPLACEMENT) {
            s.push_str("(R)");
        }
        sectors += r.sectors();
    }
    if !cfg.rdevs.is_empty() {
        let blocks = if pers.is_some() {
            m.array_sectors() / 2
        } else {
            sectors / 2
        };
        s.push_str(&format!("\n      {blocks} blocks"));
    }
    if cfg.persistent {
        if let Some(v @ MetadataVersion::V1(_)) = cfg.metadata {
            s.push_str(&format!(" super {v}"));
        }
    } else if cfg.external {
        s.push_str(" super external:");
    } else {
        s.push_str(" super non-persistent");
    }
    match &pers {
        Some(p) => {
            s.push_str(&p.status(m));
            s.push_str("\n      ");
            if p.personality().redundant() {
                if let Some(line) = status_resync(m) {
                    s.push_str(&line);
                    s.push_str("\n      ");
                }
            }
        }
        None => s.push_str("\n       "),
    }
    if let Some(b) = m.bitmap() {
        s.push_str(&b.status(cfg.bitmap_info.chunksize));
    }
    s.push('\n');
    s.push('\n');
    s
}

/// The sync progress line, `resync=PENDING`/`DELAYED`, or nothing.
fn status_resync(m: &Mddev) -> Option<String> {
    let r = &m.recovery;
    let max_sectors = if r.test(rec::SYNC) || r.test(rec::RESHAPE) {
        m.sync.resync_max_sectors()
    } else {
        m.dev_sectors()
    };
    let mut resync = m.sync.curr_resync();
    if resync < RESYNC_ACTIVE {
        if r.test(rec::DONE) {
            resync = max_sectors;
        }
    } else if resync > max_sectors {
        resync = max_sectors;
    }
    if resync == RESYNC_NONE {
        if m.recovery_cp() < MAX_SECTOR {
            return Some("\tresync=PENDING".into());
        }
        return None;
    }
    if resync < RESYNC_ACTIVE {
        return Some("\tresync=DELAYED".into());
    }
    let scale = 10;
    let per_milli = ((resync >> scale) * 1000 / ((max_sectors >> scale) + 1)) as u32;
    let x = (per_milli / 50) as usize;
    let mut s = String::from("[");
    s.push_str(&"=".repeat(x));
    s.push('>');
    s.push_str(&".".repeat(20usize.saturating_sub(x)));
    s.push_str("] ");
    let label = if r.test(rec::RESHAPE) {
        "reshape"
    } else if r.test(rec::CHECK) {
        "check"
    } else if r.test(rec::SYNC) {
        "resync"
    } else {
        "recovery"
    };
    s.push_str(&format!(
        " {label} ={:3}.{}% ({}/{})",
        per_milli / 10,
        per_milli % 10,
        resync / 2,
        max_sectors / 2
    ));
    let (secs, db) = m.sync.window();
    let dt = (secs as u64).max(1);
    let rt = ((max_sectors - resync) / (db / 32 + 1) * dt) >> 5;
    s.push_str(&format!(" finish={}.{}min", rt / 60, (rt % 60) / 6));
    s.push_str(&format!(" speed={}K/sec", m.sync.speed()));
    Some(s)
}
