//! RAID10's barrier (raid10.c `raise_barrier`, `wait_barrier`,
//! `freeze_array`): one for the whole array.  Normal I/O counts itself
//! in `nr_pending`; a sync step raises the barrier, which waits until no
//! normal I/O is waiting for its turn, keeps new I/O out and waits for
//! what is in flight to drain.  Freezing (read-error repair) is the same
//! with nothing else in flight, one at a time.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct State {
    barrier: u32,
    nr_pending: u32,
    nr_waiting: u32,
    frozen: bool,
}

#[derive(Default)]
pub struct Barrier {
    st: Mutex<State>,
    cv: Condvar,
}

const TICK: Duration = Duration::from_millis(50);

impl Barrier {
    /// `wait_barrier`: wait while a sync step or a freeze holds the
    /// array, then count this request in.
    pub fn wait_barrier(&self) {
        let mut st = self.st.lock();
        if st.barrier > 0 {
            st.nr_waiting += 1;
            while st.barrier > 0 {
                self.cv.wait_for(&mut st, TICK);
            }
            st.nr_waiting -= 1;
            if st.nr_waiting == 0 {
                self.cv.notify_all();
            }
        }
        st.nr_pending += 1;
    }

    /// `allow_barrier`: this request is done.
    pub fn allow_barrier(&self) {
        let mut st = self.st.lock();
        st.nr_pending -= 1;
        self.cv.notify_all();
    }

    /// `raise_barrier`: let waiting normal I/O go first (unless `force`,
    /// or the sync is interrupted meanwhile: then false and nothing is
    /// raised), keep new I/O out and wait for the rest to drain.
    pub fn raise_barrier(&self, force: bool, interrupted: &dyn Fn() -> bool) -> bool {
        let mut st = self.st.lock();
        while !force && st.nr_waiting > 0 {
            if interrupted() {
                return false;
            }
            self.cv.wait_for(&mut st, TICK);
        }
        st.barrier += 1;
        while st.nr_pending > 0 {
            self.cv.wait_for(&mut st, TICK);
        }
        true
    }

    /// `lower_barrier`.
    pub fn lower_barrier(&self) {
        let mut st = self.st.lock();
        st.barrier -= 1;
        self.cv.notify_all();
    }

    /// Whether normal I/O is waiting for a barrier to drop.
    pub fn waiting(&self) -> bool {
        self.st.lock().nr_waiting > 0
    }

    /// `freeze_array` for a caller that holds no request of its own: one
    /// freeze at a time, all I/O (normal and sync) stopped.
    pub fn freeze(&self) {
        let mut st = self.st.lock();
        st.nr_waiting += 1;
        // Sync steps under way finish first (new ones wait: nr_waiting).
        while st.frozen || st.barrier > 0 {
            self.cv.wait_for(&mut st, TICK);
        }
        st.frozen = true;
        st.barrier += 1;
        while st.nr_pending > 0 {
            self.cv.wait_for(&mut st, TICK);
        }
    }

    /// `unfreeze_array`.
    pub fn unfreeze(&self) {
        let mut st = self.st.lock();
        st.frozen = false;
        st.barrier -= 1;
        st.nr_waiting -= 1;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn barrier_waits_for_pending_io() {
        let b = Arc::new(Barrier::default());
        b.wait_barrier();
        let raised = Arc::new(AtomicBool::new(false));
        let t = {
            let (b, raised) = (b.clone(), raised.clone());
            std::thread::spawn(move || {
                assert!(b.raise_barrier(false, &|| false));
                raised.store(true, Ordering::SeqCst);
                b.lower_barrier();
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!raised.load(Ordering::SeqCst));
        b.allow_barrier();
        t.join().unwrap();
        assert!(raised.load(Ordering::SeqCst));
    }

    #[test]
    fn io_waits_for_a_frozen_array() {
        let b = Arc::new(Barrier::default());
        b.freeze();
        let done = Arc::new(AtomicBool::new(false));
        let t = {
            let (b, done) = (b.clone(), done.clone());
            std::thread::spawn(move || {
                b.wait_barrier();
                done.store(true, Ordering::SeqCst);
                b.allow_barrier();
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!done.load(Ordering::SeqCst));
        b.unfreeze();
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }
}
