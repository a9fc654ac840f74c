//! Write-behind (raid1.c's `R1BIO_BehindIO`): on an array with a bitmap
//! whose `backlog` is not used up, a write is answered once every leg but
//! the write-mostly ones has it.  Those get a copy of the data, written
//! on threads of the array's own while the caller goes on.  Until the
//! copy has landed on each of them the write still counts everywhere md
//! counts it: in the bitmap (its chunks' bits stay set, so a crash, or a
//! failed write there, leaves them for the member to be caught up from),
//! in the barrier (no sync and no freeze passes it, so a stop drains
//! it), in `writes_pending` (the array is not marked clean under it) and
//! in `behind_writes` (a read served by a write-mostly member waits for
//! it, so it never returns data older than a write that completed).
//!
//! The copies to one member never overtake each other where they
//! overlap (`wait_for_serialization`): a later write waits until the
//! earlier one has landed there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::{Condvar, Mutex};

use super::barrier::Barrier;
use super::{LegOutcome, end_leg_write};
use crate::md::bitmap::Bitmap;
use crate::md::member_io::wait_sb_written;
use crate::md::update::md_write_end;
use crate::md::workers::{Job, Workers};
use crate::md::{Mddev, Rdev};

/// Threads writing behind, per array: as many copies in flight at once
/// (each a blocking write; a slow member is slow per request, and many
/// at once keep up with it).  Past this, copies queue for a thread,
/// still counted in `behind_writes`.
const MAX_THREADS: usize = 64;

/// The array's behind-write threads: started on first need, kept until
/// the personality is dropped, when they end.
pub struct Pool(Workers);

impl Default for Pool {
    fn default() -> Self {
        Pool(Workers::new("md-behind", MAX_THREADS))
    }
}

impl Pool {
    /// Queue `job`.  With no thread at all (none could be started) the
    /// job runs here, as a write that does not go behind.
    fn submit(&self, job: Job) {
        if let Err(job) = self.0.submit(job) {
            job();
        }
    }
}

/// The ranges of behind writes under way, per write-mostly member
/// (raid1's `serial_info` with `CollisionCheck`).
#[derive(Default)]
pub struct Serial {
    ranges: Mutex<Vec<(usize, u64, u64)>>,
    done: Condvar,
}

/// A member's identity while I/O holds a reference to it.
fn key(r: &Rdev) -> usize {
    std::ptr::from_ref(r) as usize
}

impl Serial {
    /// `wait_for_serialization`: until no behind write to `r` overlapping
    /// sectors `[lo, hi)` is under way; then, with `add`, this one is.  A
    /// write that does not go behind waits as well (md does not): it
    /// completes only once written, and an older copy landing after it
    /// would leave the member with the older data and the bit cleared.
    pub fn wait(&self, r: &Rdev, lo: u64, hi: u64, add: bool) {
        self.wait_key(key(r), lo, hi, add)
    }

    fn wait_key(&self, k: usize, lo: u64, hi: u64, add: bool) {
        let mut v = self.ranges.lock();
        while v.iter().any(|&(rk, l, h)| rk == k && l < hi && lo < h) {
            self.done.wait(&mut v);
        }
        if add {
            v.push((k, lo, hi));
        }
    }

    /// `remove_serial`: the behind write to `r` at `[lo, hi)` landed.
    fn remove(&self, r: &Rdev, lo: u64, hi: u64) {
        self.remove_key(key(r), lo, hi)
    }

    fn remove_key(&self, k: usize, lo: u64, hi: u64) {
        let mut v = self.ranges.lock();
        if let Some(i) = v.iter().position(|&e| e == (k, lo, hi)) {
            v.swap_remove(i);
        }
        self.done.notify_all();
    }

    /// Behind writes under way to all members.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ranges.lock().len()
    }
}

/// One write that went behind (an r1bio with `R1BIO_BehindIO`): the
/// caller's part (the other legs) and the write-mostly part, the last to
/// finish closing it (`close_write`, then `allow_barrier`).
pub struct BehindWrite {
    mddev: Arc<Mddev>,
    bitmap: Arc<Bitmap>,
    barrier: Arc<Barrier>,
    serial: Arc<Serial>,
    sector: u64,
    sectors: u64,
    /// Parts still under way.
    remaining: AtomicU32,
    /// A slot is empty or a leg failed: the bits stay (`R1BIO_Degraded`).
    degraded: AtomicBool,
    /// Once the write-mostly part is done: whether an in-sync member of
    /// it took the write.
    slow: Mutex<Option<bool>>,
    slow_done: Condvar,
}

impl BehindWrite {
    /// Start the write-mostly part of a write the caller has counted
    /// everywhere once more for it: `bitmap.start_behind_write()`,
    /// `md_write_inc`, `barrier.hold(sector)`, and each leg's
    /// `nr_pending` and `serial` entry.  `degraded`: a slot was found
    /// empty or failed.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        pool: &Pool,
        mddev: Arc<Mddev>,
        bitmap: Arc<Bitmap>,
        barrier: Arc<Barrier>,
        serial: Arc<Serial>,
        legs: Vec<Arc<Rdev>>,
        data: &[u8],
        sector: u64,
        degraded: bool,
    ) -> Arc<BehindWrite> {
        let sectors = (data.len() / 512) as u64;
        let bw = Arc::new(BehindWrite {
            mddev,
            bitmap,
            barrier,
            serial,
            sector,
            sectors,
            remaining: AtomicU32::new(2),
            degraded: AtomicBool::new(degraded),
            slow: Mutex::new(None),
            slow_done: Condvar::new(),
        });
        // `alloc_behind_master_bio`: the caller's buffer is theirs again
        // as soon as they are answered.
        let copy: Arc<[u8]> = Arc::from(data);
        let job = bw.clone();
        pool.submit(Box::new(move || job.write_slow(&legs, &copy)));
        bw
    }

    /// The write-mostly legs, one after the other.
    fn write_slow(&self, legs: &[Arc<Rdev>], data: &[u8]) {
        let m = &*self.mddev;
        let mut out = LegOutcome::default();
        for r in legs {
            let res = r.write_data(data, self.sector);
            end_leg_write(m, r, res, data, self.sector, self.sectors, &mut out);
            self.serial
                .remove(r, self.sector, self.sector + self.sectors);
        }
        if out.write_error {
            wait_sb_written(m);
            if m.degraded() > 0 {
                out.degraded = true;
            }
        }
        if out.degraded {
            self.degraded.store(true, Ordering::Release);
        }
        *self.slow.lock() = Some(out.uptodate);
        self.slow_done.notify_all();
        self.put();
    }

    /// The caller's legs are done.  Returns whether the write succeeded:
    /// `uptodate` when one of the caller's in-sync legs took it (the
    /// caller is answered now); otherwise, as raid1 answers such a write
    /// only once a write-mostly leg took it, after the write-mostly part
    /// (all of it here).
    pub fn caller_done(&self, uptodate: bool, degraded: bool) -> bool {
        if degraded {
            self.degraded.store(true, Ordering::Release);
        }
        let ok = uptodate || {
            let mut s = self.slow.lock();
            while s.is_none() {
                self.slow_done.wait(&mut s);
            }
            s.unwrap_or(false)
        };
        self.put();
        ok
    }

    fn put(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // close_write, then raid_end_bio_io's allow_barrier.
        let m = &*self.mddev;
        let degraded = self.degraded.load(Ordering::Acquire);
        self.bitmap
            .endwrite(m, self.sector, self.sectors, !degraded, m.events());
        self.bitmap.end_behind_write();
        md_write_end(m, m.safemode_delay());
        self.barrier.allow_barrier(self.sector);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overlapping_writes_to_one_member_wait() {
        let serial = Arc::new(Serial::default());
        let (a, b) = (1usize, 2usize);
        serial.wait_key(a, 0, 8, true);
        // Another member, or no overlap: no wait.
        serial.wait_key(b, 0, 8, true);
        serial.wait_key(a, 8, 16, true);
        assert_eq!(serial.len(), 3);
        let passed = Arc::new(AtomicBool::new(false));
        let t = {
            let (serial, passed) = (serial.clone(), passed.clone());
            std::thread::spawn(move || {
                serial.wait_key(a, 4, 12, false);
                passed.store(true, Ordering::Release);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!passed.load(Ordering::Acquire));
        serial.remove_key(a, 0, 8);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !passed.load(Ordering::Acquire),
            "passed a write still under way"
        );
        serial.remove_key(a, 8, 16);
        t.join().unwrap();
        assert!(passed.load(Ordering::Acquire));
        assert_eq!(serial.len(), 1);
    }
}
