//! RAID1's barrier (raid1.c `wait_barrier`/`raise_barrier`/
//! `freeze_array`): normal I/O and sync requests exclude each other per
//! 64 MiB unit, hashed into 1024 buckets, so a resync never copies stale
//! data over a fresh write.  Reads only wait while the array is frozen.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// 64 MiB barrier units.
pub const BARRIER_UNIT_SECTOR_BITS: u32 = 17;
pub const BARRIER_UNIT_SECTOR_SIZE: u64 = 1 << BARRIER_UNIT_SECTOR_BITS;
const BUCKETS: usize = 1024;
/// Sync requests in flight per bucket (`RESYNC_DEPTH`).
const RESYNC_DEPTH: u32 = 32;

pub fn bucket_of(sector: u64) -> usize {
    ((sector >> BARRIER_UNIT_SECTOR_BITS) as usize).wrapping_mul(0x9E37_79B9) % BUCKETS
}

/// Sectors from `sector`, at most `len`, that stay inside one unit.
pub fn align_to_unit_end(sector: u64, len: u64) -> u64 {
    let end = (sector | (BARRIER_UNIT_SECTOR_SIZE - 1)) + 1;
    len.min(end - sector)
}

struct State {
    nr_pending: Vec<u32>,
    nr_waiting: Vec<u32>,
    barrier: Vec<u32>,
    frozen: bool,
    /// Requests counted in `nr_pending` that a frozen array may ignore
    /// (the caller of `freeze` itself).
    total_pending: u32,
}

pub struct Barrier {
    st: Mutex<State>,
    cv: Condvar,
}

impl Default for Barrier {
    fn default() -> Self {
        Barrier {
            st: Mutex::new(State {
                nr_pending: vec![0; BUCKETS],
                nr_waiting: vec![0; BUCKETS],
                barrier: vec![0; BUCKETS],
                frozen: false,
                total_pending: 0,
            }),
            cv: Condvar::new(),
        }
    }
}

impl Barrier {
    /// Normal write: wait while a sync holds the bucket or the array is
    /// frozen, then count ourselves in.
    pub fn wait_barrier(&self, sector: u64) {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        if st.barrier[idx] > 0 || st.frozen {
            st.nr_waiting[idx] += 1;
            while st.barrier[idx] > 0 || st.frozen {
                self.cv.wait(&mut st);
            }
            st.nr_waiting[idx] -= 1;
        }
        st.nr_pending[idx] += 1;
        st.total_pending += 1;
    }

    /// Normal read: only a frozen array holds it back.
    pub fn wait_read_barrier(&self, sector: u64) {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        if st.frozen {
            st.nr_waiting[idx] += 1;
            while st.frozen {
                self.cv.wait(&mut st);
            }
            st.nr_waiting[idx] -= 1;
        }
        st.nr_pending[idx] += 1;
        st.total_pending += 1;
    }

    /// One more request in the bucket of `sector`, counted by a caller
    /// that holds it already (passed `wait_barrier` and not yet allowed
    /// it), so no sync can have the bucket meanwhile: the part of a write that goes
    /// on behind its caller keeps syncs and freezes out until it lands,
    /// as raid1 calls `allow_barrier` only when every leg is done.
    pub fn hold(&self, sector: u64) {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        st.nr_pending[idx] += 1;
        st.total_pending += 1;
    }

    pub fn allow_barrier(&self, sector: u64) {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        st.nr_pending[idx] -= 1;
        st.total_pending -= 1;
        self.cv.notify_all();
    }

    /// Sync: wait for waiting normal I/O to get its turn, raise the bucket's
    /// barrier, then wait for its normal I/O to drain.  Returns false if
    /// `abort()` says to give up.
    pub fn raise_barrier(&self, sector: u64, abort: &dyn Fn() -> bool) -> bool {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        while st.nr_waiting[idx] > 0 || st.frozen {
            if abort() {
                return false;
            }
            self.cv.wait_for(&mut st, Duration::from_millis(20));
        }
        st.barrier[idx] += 1;
        while st.nr_pending[idx] > 0 || st.barrier[idx] > RESYNC_DEPTH || st.frozen {
            if abort() {
                st.barrier[idx] -= 1;
                self.cv.notify_all();
                return false;
            }
            self.cv.wait_for(&mut st, Duration::from_millis(20));
        }
        true
    }

    pub fn lower_barrier(&self, sector: u64) {
        let idx = bucket_of(sector);
        let mut st = self.st.lock();
        st.barrier[idx] -= 1;
        self.cv.notify_all();
    }

    /// Stop all I/O: wait until only `extra` requests (the caller's own)
    /// are in flight.
    pub fn freeze(&self, extra: u32) {
        let mut st = self.st.lock();
        while st.frozen {
            // Another freezer waits for in-flight requests to drain: ours
            // must not count while we wait for it, or neither proceeds.
            st.total_pending -= extra;
            self.cv.notify_all();
            self.cv.wait(&mut st);
            st.total_pending += extra;
        }
        st.frozen = true;
        while st.total_pending > extra {
            self.cv.wait(&mut st);
        }
    }

    pub fn unfreeze(&self) {
        let mut st = self.st.lock();
        st.frozen = false;
        self.cv.notify_all();
    }

    /// Normal requests waiting on the bucket of `sector`.
    pub fn waiting(&self, sector: u64) -> u32 {
        self.st.lock().nr_waiting[bucket_of(sector)]
    }
}
