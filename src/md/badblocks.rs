//! In-memory bad-block list of one member (block/badblocks.c): sorted,
//! non-overlapping ranges in device-absolute sectors, each acknowledged
//! (recorded on disk) or not.  `shift` is the unit (512 << shift bytes);
//! `None` means the member cannot record bad blocks at all.

use crate::errno::Errno;
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

    /// Load entries read from the on-disk log, all acknowledged.  Err
    /// with the first range that cannot be recorded (the list is full, or
    /// the range runs past sector 2^64 - 1).
    pub fn load(&mut self, ranges: &[BadRange]) -> Result<(), BadRange> {
        for r in ranges {
            if !self.set(r.sector, r.sectors, true) {
                return Err(*r);
            }
        }
        self.changed = false;
        Ok(())
    }

    /// `badblocks_set` (the Linux 6.1 one): record `[s, s+sectors)`,
    /// merged into the range starting at or before it and the one after
    /// it where they touch, no entry longer than `BB_MAX_LEN` units (a
    /// longer range becomes several entries).  Err when recording is
    /// disabled or the list is full (what fitted is kept, as there).
    pub fn set(&mut self, s: u64, sectors: u64, acked: bool) -> bool {
        let Some(shift) = self.shift else {
            return false;
        };
        if sectors == 0 {
            return true;
        }
        // Work in units, rounding the start down and the end up.  A range
        // that runs past sector 2^64 - 1 (a data offset near it, from a
        // damaged superblock) cannot be recorded: the caller fails the
        // member instead.
        let Some(end) = s
            .checked_add(sectors)
            .and_then(|e| e.checked_add((1u64 << shift) - 1))
        else {
            return false;
        };
        let mut s_u = s >> shift;
        let next = end >> shift;
        let mut len = next - s_u;
        let mut p: Vec<(u64, u64, bool)> = self
            .entries
            .iter()
            .map(|e| (e.sector >> shift, e.sectors >> shift, e.acked))
            .collect();
        let (mut lo, mut hi) = (0usize, p.len());
        // The last range that starts at or before s.
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if p[mid].0 <= s_u {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if hi > lo && p[lo].0 > s_u {
            hi = lo;
        }
        if hi > lo {
            let (a, l, ack) = p[lo];
            let mut e = a + l;
            if e >= s_u {
                let ack = if s_u == a && s_u + len >= e {
                    acked
                } else {
                    ack && acked
                };
                if e < s_u + len {
                    e = s_u + len;
                }
                if e - a <= BB_MAX_LEN {
                    p[lo] = (a, e - a, ack);
                    s_u = e;
                } else {
                    if l != BB_MAX_LEN {
                        p[lo] = (a, BB_MAX_LEN, ack);
                    }
                    s_u = a + BB_MAX_LEN;
                }
                len = e - s_u;
            }
        }
        if len > 0 && hi < p.len() {
            let (a, l, ack) = p[hi];
            let mut e = a + l;
            if a <= s_u + len {
                let ack = if e <= s_u + len {
                    e = s_u + len;
                    acked
                } else {
                    ack && acked
                };
                let a = s_u;
                if e - a <= BB_MAX_LEN {
                    p[hi] = (a, e - a, ack);
                    s_u = e;
                } else {
                    p[hi] = (a, BB_MAX_LEN, ack);
                    s_u = a + BB_MAX_LEN;
                }
                len = e - s_u;
                lo = hi;
                hi += 1;
            }
        }
        if len == 0 && hi < p.len() {
            // s is at the end of p[lo]: maybe p[lo] and p[hi] combine.
            let a = p[hi].0;
            let newlen = (p[lo].1 + p[hi].1) as i64 - (s_u as i64 - a as i64);
            if s_u >= a && newlen < BB_MAX_LEN as i64 {
                p[lo] = (p[lo].0, newlen as u64, p[lo].2 && p[hi].2);
                p.remove(hi);
            }
        }
        let mut full = false;
        while len > 0 {
            if p.len() >= BB_MAX_ENTRIES {
                full = true;
                break;
            }
            let this = len.min(BB_MAX_LEN);
            p.insert(hi, (s_u, this, acked));
            hi += 1;
            len -= this;
            s_u += this;
        }
        self.entries = p
            .into_iter()
            .map(|(a, l, ack)| BadEntry {
                sector: a << shift,
                sectors: l << shift,
                acked: ack,
            })
            .collect();
        self.changed = true;
        if !acked {
            self.unacked_exist = true;
        } else {
            // badblocks_update_acked
            self.unacked_exist = self.entries.iter().any(|e| !e.acked);
        }
        !full
    }

    /// `badblocks_clear`: forget `[s, s+sectors)` (a successful write
    /// over a bad range).
    pub fn clear(&mut self, s: u64, sectors: u64) {
        let end = s.saturating_add(sectors);
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
        let end = s.saturating_add(sectors);
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
    /// (only those not yet on disk): `sector length` lines, at most one
    /// page.
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

    /// sysfs store, `badblocks_store`: `sscanf("%llu %d%c")` -- a sector,
    /// a length > 0, and nothing after them but a newline (the tree took
    /// one newline away already).
    pub fn store(&mut self, text: &str, unack: bool) -> Result<(), Errno> {
        let (sector, rest) = scan_num(text, false).ok_or(Errno::EINVAL)?;
        let (len, rest) = scan_num(rest, true).ok_or(Errno::EINVAL)?;
        if !rest.is_empty() && !rest.starts_with('\n') {
            return Err(Errno::EINVAL);
        }
        // %llu and %d: the value as the C types hold it.
        let len = len as i32;
        if len <= 0 {
            return Err(Errno::EINVAL);
        }
        if self.set(sector, len as u64, !unack) {
            Ok(())
        } else {
            Err(Errno::ENOSPC)
        }
    }
}

/// One `%llu` (`signed` false) or `%d` (`signed` true) of the kernel's
/// sscanf: leading white space, a `-` for `%d` only (no `+` for either),
/// decimal digits (wrapping); the rest of the text.
fn scan_num(text: &str, signed: bool) -> Option<(u64, &str)> {
    let t = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, t),
    };
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let v = t[..n].bytes().fold(0u64, |v, b| {
        v.wrapping_mul(10).wrapping_add((b - b'0') as u64)
    });
    Some((if neg { v.wrapping_neg() } else { v }, &t[n..]))
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
        assert_eq!(b.show(false), "100 16\n200 1\n");
        assert!(b.unacked_exist);
        assert_eq!(b.check(90, 20), Some((100, 16, false)));
        assert_eq!(b.check(150, 10), None);
        b.clear(104, 4);
        assert_eq!(b.show(false), "100 4\n108 8\n200 1\n");
        b.ack_all();
        assert!(!b.unacked_exist);
    }

    #[test]
    fn long_ranges_split_at_512() {
        let mut b = BadBlocks::new(Some(0));
        b.store("100 513", false).unwrap();
        assert_eq!(b.show(false), "100 512\n612 1\n");
        assert_eq!(b.store("100 8 junk", false), Err(Errno::EINVAL));
        assert_eq!(b.store("100 8 ", false), Err(Errno::EINVAL));
        assert_eq!(b.store("100 8\n", false), Ok(()));
        assert_eq!(b.store(" 100  8", false), Ok(()));
    }

    #[test]
    fn signs_as_sscanf_takes_them() {
        // `%llu` takes no sign, `%d` a `-` only (lib/vsprintf.c vsscanf).
        let mut b = BadBlocks::new(Some(0));
        for text in ["+200 8", "300 +8", "-1 8", "-18446744073709551216 8"] {
            assert_eq!(b.store(text, false), Err(Errno::EINVAL), "{text}");
        }
        assert_eq!(b.show(false), "");
        assert_eq!(b.store("300 -8", false), Err(Errno::EINVAL));
    }

    #[test]
    fn disabled_refuses() {
        let mut b = BadBlocks::new(None);
        assert!(!b.set(0, 1, true));
        assert_eq!(b.store("5 1", false), Err(Errno::ENOSPC));
        assert_eq!(b.store("5", false), Err(Errno::EINVAL));
        assert_eq!(b.store("5 0", false), Err(Errno::EINVAL));
        assert_eq!(b.store("5 -3", false), Err(Errno::EINVAL));
    }
}
