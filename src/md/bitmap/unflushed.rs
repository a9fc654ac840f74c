//! The chunks a member may hold only in its volatile cache.
//!
//! A bitmap bit is cleared on disk only after the members in their slots
//! were flushed, so a member re-added by the bitmap holds every write to
//! a clean chunk durably, as long as it was flushed with the others.  A
//! member that fails is not: md flushes only the members in their slots,
//! and writes that completed on it since its last flush may be lost with
//! its cache (a power loss, a server that dies).  The bitmap then keeps
//! those chunks dirty for the catch-up that takes the member back.  This
//! is the set it asks: chunks whose writes completed since the last flush
//! that reached the members, plus those of flushes still under way.

use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct Unflushed {
    /// Chunks written since the last flush began, each once.
    since: Vec<u64>,
    /// Bit per chunk: in `since`.
    mark: Vec<u64>,
    /// The chunks each flush under way will make durable, by token.
    flushing: BTreeMap<u64, Vec<u64>>,
    next_token: u64,
}

impl Unflushed {
    /// A write to `chunk` completed on the members.
    pub(super) fn note(&mut self, chunk: u64) {
        let (word, bit) = ((chunk / 64) as usize, 1u64 << (chunk % 64));
        if self.mark.len() <= word {
            self.mark.resize(word + 1, 0);
        }
        if self.mark[word] & bit == 0 {
            self.mark[word] |= bit;
            self.since.push(chunk);
        }
    }

    /// A flush of every member in a slot is about to be issued: the writes
    /// completed so far are what it makes durable.
    pub(super) fn flush_begin(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        let taken = std::mem::take(&mut self.since);
        self.mark.clear();
        if !taken.is_empty() {
            self.flushing.insert(token, taken);
        }
        token
    }

    /// The flush `token` is done: on every member if `reached_all`, and
    /// then its chunks are durable; otherwise they stay unflushed.
    pub(super) fn flush_end(&mut self, token: u64, reached_all: bool) {
        if let Some(chunks) = self.flushing.remove(&token)
            && !reached_all
        {
            for c in chunks {
                self.note(c);
            }
        }
    }

    /// A member leaves its slot: every chunk it may hold unflushed, once
    /// each; the set starts over (the member's writes from now on are
    /// not its slot's).
    pub(super) fn take_all(&mut self) -> Vec<u64> {
        let mut all = std::mem::take(&mut self.since);
        self.mark.clear();
        for (_, chunks) in std::mem::take(&mut self.flushing) {
            all.extend(chunks);
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_makes_what_was_written_before_it_durable() {
        let mut u = Unflushed::default();
        u.note(3);
        u.note(3);
        u.note(70);
        let t = u.flush_begin();
        u.note(5);
        // Until the flush is done, its chunks are still at risk.
        assert_eq!(u.take_all(), vec![3, 5, 70]);
        u.note(3);
        let t2 = u.flush_begin();
        u.flush_end(t, true);
        u.flush_end(t2, true);
        assert_eq!(u.take_all(), Vec::<u64>::new());
    }

    #[test]
    fn a_flush_that_missed_a_member_keeps_its_chunks() {
        let mut u = Unflushed::default();
        u.note(9);
        let t = u.flush_begin();
        u.note(1);
        u.flush_end(t, false);
        assert_eq!(u.take_all(), vec![1, 9]);
    }

    #[test]
    fn flushes_under_way_end_in_any_order() {
        let mut u = Unflushed::default();
        u.note(1);
        let a = u.flush_begin();
        u.note(2);
        let b = u.flush_begin();
        u.flush_end(b, true);
        assert_eq!(u.flushing.keys().copied().collect::<Vec<_>>(), vec![a]);
        u.flush_end(a, true);
        assert!(u.take_all().is_empty());
    }
}
