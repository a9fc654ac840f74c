//! In-memory bad-block list of one member (block/badblocks.c): sorted,
//! non-overlapping ranges in device-absolute sectors, each acknowledged
//! (recorded on disk) or not.  `shift` is the unit (512 << shift bytes);
//! `None` means the member cannot record bad blocks at all.

use crate::format::badblocks::{BB_MAX_ENTRIES, BadRange};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEntry {
    pub sector: u64,
    pub sectors: u64,
    pub acked: bool,
}

#[derive(Debug, Clone, Default)]
pub struct BadBlocks {
    /// `None` when bad-block recording is disabled (0.90 metadata).
    pub shift: Option<u8>,
    entries: Vec<BadEntry>,
    /// The list differs from what is on disk.
    pub changed: bool,
    /// Unacknowledged entries exist.
    pub unacked_exist: bool,
}

impl BadBlocks {
    pub fn new(shift: Option<u8>) -> BadBlocks {
        BadBlocks {
            shift,
            ..Default::default()
        }
    }

    pub fn count(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[BadEntry] {
        &self.entries
    }

    /// Load entries read from the on-disk log, all acknowledged; false
    /// when they do not fit.
    pub fn load(&mut self, ranges: &[BadRange]) -> bool {
        for r in ranges {
            if !self.set(r.sector, r.sectors, true) {
                return false;
            }
        }
        self.changed = false;
        true
    }

    /// `badblocks_set`: record `[s, s+sectors)`; merges with neighbours.
    /// False when recording is disabled or the list is full.
    pub fn set(&mut self, s: u64, sectors: u64, acked: bool) -> bool {
        let Some(shift) = self.shift else {
            return false;
        };
        if sectors == 0 {
            return true;
        }
        // Round out to the unit.
        let unit = 1u64 << shift;
        let start = s & !(unit - 1);
        let end = (s + sectors).div_ceil(unit) * unit;
        let mut merged = BadEntry {
            sector: start,
            sectors: end - start,
            acked,
        };
        let mut keep = Vec::with_capacity(self.entries.len() + 1);
        for e in &self.entries {
            let e_end = e.sector + e.sectors;
            if e_end < merged.sector || e.sector > merged.sector + merged.sectors {
                keep.push(*e);
            } else if e.acked == merged.acked
                || e.sector >= merged.sector && e_end <= merged.sector + merged.sectors
            {
                let ns = e.sector.min(merged.sector);
                let ne = e_end.max(merged.sector + merged.sectors);
                merged = BadEntry {
                    sector: ns,
                    sectors: ne - ns,
                    acked: merged.acked && e.acked,
                };
            } else {
                keep.push(*e);
            }
        }
        keep.push(merged);
        keep.sort_by_key(|e| e.sector);
        if keep.len() > BB_MAX_ENTRIES {
            return false;
        }
        self.entries = keep;
        self.changed = true;
        self.unacked_exist = self.entries.iter().any(|e| !e.acked);
        true
    }

    /// `badblocks_clear`: forget `[s, s+sectors)` (a successful write
    /// over a bad range).
    pub fn clear(&mut self, s: u64, sectors: u64) {
        let end = s + sectors;
        let mut out = Vec::with_capacity(self.entries.len() + 1);
        let mut touched = false;
        for e in &self.entries {
            let e_end = e.sector + e.sectors;
            if e_end <= s || e.sector >= end {
                out.push(*e);
                continue;
            }
            touched = true;
            if e.sector < s {
                out.push(BadEntry {
                    sector: e.sector,
                    sectors: s - e.sector,
                    acked: e.acked,
                });
            }
            if e_end > end {
                out.push(BadEntry {
                    sector: end,
                    sectors: e_end - end,
                    acked: e.acked,
                });
            }
        }
        if touched {
            self.entries = out;
            self.changed = true;
            self.unacked_exist = self.entries.iter().any(|e| !e.acked);
        }
    }

    /// `ack_all_badblocks`.
    pub fn ack_all(&mut self) {
        for e in &mut self.entries {
            e.acked = true;
        }
        self.unacked_exist = false;
    }

    /// `is_badblock`: first bad range overlapping `[s, s+sectors)`, as
    /// (first bad sector, length), and whether any overlapping entry is
    /// unacknowledged.
    pub fn check(&self, s: u64, sectors: u64) -> Option<(u64, u64, bool)> {
        let end = s + sectors;
        let mut found: Option<(u64, u64)> = None;
        let mut unacked = false;
        for e in &self.entries {
            if e.sector + e.sectors <= s || e.sector >= end {
                continue;
            }
            if !e.acked {
                unacked = true;
            }
            if found.is_none_or(|(f, _)| e.sector < f) {
                found = Some((e.sector, e.sectors));
            }
        }
        found.map(|(f, l)| (f, l, unacked))
    }

    /// The on-disk form of every entry.
    pub fn ranges(&self) -> Vec<BadRange> {
        self.entries
            .iter()
            .map(|e| BadRange {
                sector: e.sector,
                sectors: e.sectors,
            })
            .collect()
    }

    /// sysfs `bad_blocks` / `unacknowledged_bad_blocks`: `sector length`
    /// lines, at most one page.
    pub fn show(&self, unack: bool) -> String {
        let mut s = String::new();
        for e in &self.entries {
            if unack == e.acked {
                continue;
            }
            let line = format!("{} {}\n", e.sector, e.sectors);
            if s.len() + line.len() > 4096 {
                break;
            }
            s.push_str(&line);
        }
        s
    }

    /// sysfs store: `sector length[\n]`.
    pub fn store(&mut self, text: &str, unack: bool) -> Result<(), i32> {
        let mut it = text.split_whitespace();
        let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
            return Err(libc::EINVAL);
        };
        let sector: u64 = a.parse().map_err(|_| libc::EINVAL)?;
        let len: i64 = b.parse().map_err(|_| libc::EINVAL)?;
        if len <= 0 {
            return Err(libc::EINVAL);
        }
        if self.set(sector, len as u64, !unack) {
            Ok(())
        } else {
            Err(libc::ENOSPC)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_merge_clear() {
        let mut b = BadBlocks::new(Some(0));
        assert!(b.set(100, 8, true));
        assert!(b.set(108, 8, true));
        assert_eq!(b.count(), 1);
        assert_eq!(b.show(false), "100 16\n");
        assert!(b.set(200, 1, false));
        assert_eq!(b.show(true), "200 1\n");
        assert!(b.unacked_exist);
        assert_eq!(b.check(90, 20), Some((100, 16, false)));
        assert_eq!(b.check(150, 10), None);
        b.clear(104, 4);
        assert_eq!(b.show(false), "100 4\n108 8\n");
        b.ack_all();
        assert!(!b.unacked_exist);
    }

    #[test]
    fn disabled_refuses() {
        let mut b = BadBlocks::new(None);
        assert!(!b.set(0, 1, true));
        assert_eq!(b.store("5 1", false), Err(libc::ENOSPC));
        assert_eq!(b.store("5", false), Err(libc::EINVAL));
        assert_eq!(b.store("5 0", false), Err(libc::EINVAL));
        assert_eq!(b.store("5 -3", false), Err(libc::EINVAL));
    }
}
