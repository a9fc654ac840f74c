//! The model of the array's contents: a flat byte array of what reads
//! must return, the writes acknowledged since the last successful flush
//! (which a power loss may undo, each on its own, on each member), and
//! the bytes such a loss left unsettled.
//!
//! After a power loss the members may disagree on the bytes written
//! since the last flush.  Until md's resync has made them agree, a read
//! of such a byte returns whichever value the member md reads from holds
//! (for RAID1 the first in-sync one, as in Linux), so the model allows,
//! for each unsettled byte, any value it may hold: its value before the
//! unflushed writes or the value of any one of them.  The first read then
//! resolves it, and later reads must agree, until the members change
//! (`unresolve`: the member md reads from may be another now) or another
//! crash.  Once a resync has completed (`settle`) every byte is exact
//! again.  A write makes the bytes it covers exact.
//!
//! RAID4/5/6 add the write hole: after a power loss a stripe's parity may
//! disagree with its data, and a block rebuilt from it while a member is
//! missing (read, or written onto a spare) is garbage.  Bytes so exposed
//! are `scramble`d: any value, until a write covers them or a resync of
//! the whole array makes the members agree on what was read.

use std::fmt::Write as _;

/// A write acknowledged after the last flush.
struct Pending {
    off: usize,
    /// The bytes it replaced, then its own.
    old: Vec<u8>,
    new: Vec<u8>,
}

/// Per byte: exact, or unsettled (resolved by a read, or free), or any
/// value at all (rebuilt from parity that may not match).
const EXACT: u8 = 0;
const RESOLVED: u8 = 1;
const FREE: u8 = 2;
const ANY: u8 = 3;

pub struct Contents {
    cur: Vec<u8>,
    pending: Vec<Pending>,
    pending_bytes: usize,
    state: Vec<u8>,
    /// Bytes not `EXACT`.
    unsettled: usize,
    /// Values unsettled bytes may hold, as byte strings at an offset.
    alts: Vec<(usize, Vec<u8>)>,
}

impl Contents {
    /// A new array reads as zeros (its images are fresh sparse files).
    pub fn zeros(len: usize) -> Contents {
        Contents {
            cur: vec![0; len],
            pending: Vec::new(),
            pending_bytes: 0,
            state: vec![EXACT; len],
            unsettled: 0,
            alts: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.cur.len()
    }

    /// Bytes written since the last flush (to bound the memory they take).
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes a power loss left unsettled and no write has covered since.
    pub fn unsettled(&self) -> usize {
        self.unsettled
    }

    /// A write of `data` at `off` returned success: every working member
    /// holds it.
    pub fn write(&mut self, off: usize, data: &[u8]) {
        let range = off..off + data.len();
        self.pending.push(Pending {
            off,
            old: self.cur[range.clone()].to_vec(),
            new: data.to_vec(),
        });
        self.pending_bytes += 2 * data.len();
        self.cur[range.clone()].copy_from_slice(data);
        if self.unsettled > 0 {
            for s in &mut self.state[range] {
                if *s != EXACT {
                    *s = EXACT;
                    self.unsettled -= 1;
                }
            }
        }
    }

    /// Where the writes since the last flush went: (offset, length).
    pub fn pending_ranges(&self) -> Vec<(usize, usize)> {
        self.pending.iter().map(|p| (p.off, p.new.len())).collect()
    }

    /// `len` bytes at `off` may now read as anything (see the module doc).
    pub fn scramble(&mut self, off: usize, len: usize) {
        let end = (off + len).min(self.cur.len());
        for s in &mut self.state[off.min(end)..end] {
            if *s == EXACT {
                self.unsettled += 1;
            }
            *s = ANY;
        }
    }

    /// A flush returned success: everything written so far is durable.
    pub fn flushed(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// The members changed: the next read of each unsettled byte may come
    /// from another one.
    pub fn unresolve(&mut self) {
        if self.unsettled > 0 {
            for s in &mut self.state {
                if *s == RESOLVED {
                    *s = FREE;
                }
            }
        }
    }

    /// A resync has completed: the members agree on every byte, which
    /// holds what it was last read or written as.  Call after a read of
    /// the whole array.
    pub fn settle(&mut self) {
        assert!(
            !self.state.contains(&FREE),
            "settle after a read of the whole array"
        );
        self.state.fill(EXACT);
        self.unsettled = 0;
        self.alts.clear();
    }

    /// A read of `got.len()` bytes at `off` returned `got`: an exact or
    /// resolved byte must be what the model holds, a free one any value
    /// it may hold (and is resolved to it).
    pub fn check_read(&mut self, off: usize, got: &[u8]) -> Result<(), String> {
        let end = off + got.len();
        let want = &self.cur[off..end];
        if want == got {
            if self.unsettled > 0 {
                for s in &mut self.state[off..end] {
                    if *s == FREE {
                        *s = RESOLVED;
                    }
                }
            }
            return Ok(());
        }
        // Free bytes may hold any of their values, scrambled ones anything.
        let mut ok: Vec<bool> = self.state[off..end]
            .iter()
            .map(|&s| s == FREE || s == ANY)
            .collect();
        if ok.iter().any(|&b| b) {
            let mut allowed = vec![false; got.len()];
            for (aoff, bytes) in &self.alts {
                let (s, e) = ((*aoff).max(off), (aoff + bytes.len()).min(end));
                for j in s..e {
                    if bytes[j - aoff] == got[j - off] {
                        allowed[j - off] = true;
                    }
                }
            }
            for (i, ok) in ok.iter_mut().enumerate() {
                let any = self.state[off + i] == ANY;
                *ok = *ok && (any || allowed[i] || got[i] == want[i]);
            }
        }
        let bad = (0..got.len()).find(|&i| got[i] != want[i] && !ok[i]);
        if let Some(i) = bad {
            let how = match self.state[off + i] {
                EXACT => "exact",
                RESOLVED => "unsettled since a power loss, read before as the model says",
                _ => "unsettled since a power loss, and none of the values it may hold",
            };
            let from = i;
            let to = (i + 64).min(got.len());
            let mut s = describe_diff(off + from, &want[from..to], &got[from..to]);
            let _ = write!(s, "\n(byte {}: {how})", off + i);
            return Err(s);
        }
        for (i, &b) in got.iter().enumerate() {
            match self.state[off + i] {
                FREE => {
                    self.state[off + i] = RESOLVED;
                    self.cur[off + i] = b;
                }
                // Still anything, but `settle` keeps what was read.
                ANY => self.cur[off + i] = b,
                _ => {}
            }
        }
        Ok(())
    }

    /// The array crashed.  With `exact` (the process died, the machine
    /// did not: the page cache keeps every write that returned) nothing
    /// new is unsettled; otherwise (power loss) every byte written since
    /// the last flush is.  Either way the member reads come from may have
    /// changed.
    pub fn crashed(&mut self, exact: bool) {
        if !exact {
            for p in std::mem::take(&mut self.pending) {
                for s in &mut self.state[p.off..p.off + p.new.len()] {
                    if *s == EXACT {
                        self.unsettled += 1;
                    }
                    if *s != ANY {
                        *s = FREE;
                    }
                }
                self.alts.push((p.off, p.old));
                self.alts.push((p.off, p.new));
            }
        }
        self.flushed();
        self.unresolve();
    }
}

/// Where `got` differs from `want` (both at array byte `off`).
fn describe_diff(off: usize, want: &[u8], got: &[u8]) -> String {
    let first = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
    let last = want.iter().zip(got).rposition(|(a, b)| a != b).unwrap_or(0);
    let count = want.iter().zip(got).filter(|(a, b)| a != b).count();
    let at = off + first;
    let show = |b: &[u8]| -> String {
        b[first..(first + 16).min(b.len())]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "data differs at byte {at} (sector {}): {count} bytes differ in {}..{}\n  want {}\n  got  {}",
        at / 512,
        at,
        off + last + 1,
        show(want),
        show(got)
    )
}
