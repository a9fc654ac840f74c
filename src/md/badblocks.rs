//! In-memory bad-block list of one member (block/badblocks.c): sorted,
//! non-overlapping ranges in device-absolute sectors, each acknowledged
//! (recorded on disk) or not.  `shift` is the unit (512 << shift bytes);
//! `None` means the member cannot record bad blocks at all.

use crate::format::badblocks::{BB_MAX_ENTRIES, BB_MAX_LEN, BadRange};

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

    /// Load entries read from the on-disk log, all acknowledged.
    pub fn load(&mut self, ranges: &[BadRange]) -> Result<(), ()> {
        for r in ranges {
            self.set(r.sector, r.sectors, true)?;
        }
        self.changed = false;
        Ok(())
    }

    /// `badblocks_set` (block/badblocks.c of Linux 6.1): record
    /// `[s, s+sectors)`, rounded out to whole units.  The new range merges
    /// with the ranges it touches or overlaps, acknowledged or not (the
    /// result is acknowledged only if both were, or if the new range
    /// covers the old one); no entry grows past `BB_MAX_LEN` units.  Err
    /// when recording is disabled or the list is full (what fitted stays).
    pub fn set(&mut self, s: u64, sectors: u64, acked: bool) -> Result<(), ()> {
        let Some(shift) = self.shift else {
            return Err(());
        };
        let mut s_ = s >> shift;
        let next = (s + sectors + (1u64 << shift) - 1) >> shift;
        let mut sectors = next - s_;
        let mut p: Vec<BadEntry> = self
            .entries
            .iter()
            .map(|e| BadEntry {
                sector: e.sector >> shift,
                sectors: e.sectors >> shift,
                acked: e.acked,
            })
            .collect();
        let mut rv = Ok(());
        let (mut lo, mut hi) = (0usize, p.len());
        // The last range that starts at or before s.
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if p[mid].sector <= s_ {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if hi > lo && p[lo].sector > s_ {
            hi = lo;
        }
        if hi > lo {
            let a = p[lo].sector;
            let mut e = a + p[lo].sectors;
            if e >= s_ {
                // Merge with the previous range.
                let ack = if s_ == a && s_ + sectors >= e {
                    acked
                } else {
                    p[lo].acked && acked
                };
                if e < s_ + sectors {
                    e = s_ + sectors;
                }
                if e - a <= BB_MAX_LEN {
                    p[lo] = BadEntry {
                        sector: a,
                        sectors: e - a,
                        acked: ack,
                    };
                    s_ = e;
                } else {
                    if p[lo].sectors != BB_MAX_LEN {
                        p[lo] = BadEntry {
                            sector: a,
                            sectors: BB_MAX_LEN,
                            acked: ack,
                        };
                    }
                    s_ = a + BB_MAX_LEN;
                }
                sectors = e - s_;
            }
        }
        if sectors > 0 && hi < p.len() {
            // Maybe merge with the start of the next range.
            let a = p[hi].sector;
            let mut e = a + p[hi].sectors;
            if a <= s_ + sectors {
                let ack = if e <= s_ + sectors {
                    e = s_ + sectors;
                    acked
                } else {
                    p[hi].acked && acked
                };
                let a = s_;
                if e - a <= BB_MAX_LEN {
                    p[hi] = BadEntry {
                        sector: a,
                        sectors: e - a,
                        acked: ack,
                    };
                    s_ = e;
                } else {
                    p[hi] = BadEntry {
                        sector: a,
                        sectors: BB_MAX_LEN,
                        acked: ack,
                    };
                    s_ = a + BB_MAX_LEN;
                }
                sectors = e - s_;
                lo = hi;
                hi += 1;
            }
        }
        if sectors == 0 && hi < p.len() {
            // Two ranges may now touch: join them if they fit in one.
            let a = p[hi].sector;
            let newlen = (p[lo].sectors + p[hi].sectors) as i64 - (s_ as i64 - a as i64);
            if s_ >= a && newlen < BB_MAX_LEN as i64 {
                let ack = p[lo].acked && p[hi].acked;
                p[lo] = BadEntry {
                    sector: p[lo].sector,
                    sectors: newlen as u64,
                    acked: ack,
                };
                p.remove(hi);
            }
        }
        while sectors > 0 {
            // Add a new range before 'hi'.
            if p.len() >= BB_MAX_ENTRIES {
                rv = Err(());
                break;
            }
            let this = sectors.min(BB_MAX_LEN);
            p.insert(
                hi,
                BadEntry {
                    sector: s_,
                    sectors: this,
                    acked,
                },
            );
            sectors -= this;
            s_ += this;
        }
        self.entries = p
            .into_iter()
            .map(|e| BadEntry {
                sector: e.sector << shift,
                sectors: e.sectors << shift,
                acked: e.acked,
            })
            .collect();
        self.changed = true;
        if !acked {
            self.unacked_exist = true;
        } else {
            self.unacked_exist = self.entries.iter().any(|e| !e.acked);
        }
        rv
    }

    /// `badblocks_clear`: forget `[s, s+sectors)` (a successful write
    /// over a bad range); partial units stay bad.
    pub fn clear(&mut self, s: u64, sectors: u64) {
        let shift = self.shift.unwrap_or(0);
        let unit = 1u64 << shift;
        let start = s.div_ceil(unit) * unit;
        let end = (s + sectors) & !(unit - 1);
        if end <= start {
            return;
        }
        let (s, end) = (start, end);
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

    /// sysfs `bad_blocks` (every entry) / `unacknowledged_bad_blocks`
    /// (`unack`: only those not yet on disk): `sector length` lines, at
    /// most one page.
    pub fn show(&self, unack: bool) -> String {
        let mut s = String::new();
        for e in &self.entries {
            if unack && e.acked {
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
        self.set(sector, len as u64, !unack)
            .map_err(|_| libc::ENOSPC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_merge_clear() {
        let mut b = BadBlocks::new(Some(0));
        b.set(100, 8, true).unwrap();
        b.set(108, 8, true).unwrap();
        assert_eq!(b.count(), 1);
        assert_eq!(b.show(false), "100 16\n");
        b.set(200, 1, false).unwrap();
        assert_eq!(b.show(true), "200 1\n");
        assert!(b.unacked_exist);
        assert_eq!(b.check(90, 20), Some((100, 16, false)));
        assert_eq!(b.check(150, 10), None);
        b.clear(104, 4);
        assert_eq!(b.show(false), "100 4\n108 8\n200 1\n");
        b.ack_all();
        assert!(!b.unacked_exist);
    }

    #[test]
    fn merges_as_linux_6_1() {
        let mut b = BadBlocks::new(Some(0));
        // Adjacent ranges merge whatever their acknowledgement.
        b.set(100, 8, true).unwrap();
        b.set(108, 8, false).unwrap();
        assert_eq!(b.show(false), "100 16\n");
        assert_eq!(b.show(true), "100 16\n");
        b.ack_all();
        b.set(92, 8, false).unwrap();
        assert_eq!(b.show(false), "92 24\n");
        b.ack_all();
        // A gap is filled: the two neighbours become one.
        b.set(200, 8, true).unwrap();
        b.set(116, 84, true).unwrap();
        assert_eq!(b.show(false), "92 116\n");
        // No entry is longer than 512 sectors.  The pieces of one long
        // range go in front of each other, so they list backwards (as
        // real md 6.1 shows them).
        let mut b = BadBlocks::new(Some(0));
        b.set(1000, 1200, true).unwrap();
        assert_eq!(b.show(false), "2024 176\n1512 512\n1000 512\n");
        // The list holds at most 512 entries.
        let mut b = BadBlocks::new(Some(0));
        for i in 0..512 {
            b.set(i * 10, 1, true).unwrap();
        }
        assert!(b.set(100_000, 1, true).is_err());
        // Units of 512 << shift: ranges round out on set, in on clear.
        let mut b = BadBlocks::new(Some(3));
        b.set(13, 2, true).unwrap();
        assert_eq!(b.show(false), "8 8\n");
        b.clear(9, 6);
        assert_eq!(b.show(false), "8 8\n");
        b.clear(8, 8);
        assert_eq!(b.show(false), "");
    }

    #[test]
    fn disabled_refuses() {
        let mut b = BadBlocks::new(None);
        assert!(b.set(0, 1, true).is_err());
        assert_eq!(b.store("5 1", false), Err(libc::ENOSPC));
        assert_eq!(b.store("5", false), Err(libc::EINVAL));
        assert_eq!(b.store("5 0", false), Err(libc::EINVAL));
        assert_eq!(b.store("5 -3", false), Err(libc::EINVAL));
    }
}
