//! The per-array md thread (`mdX_raid1`): safe-mode expiry, the bitmap
//! daemon, superblock updates, and starting and reaping the sync worker
//! (`md_check_recovery`).  It never blocks on the reconfig mutex (it only
//! try-locks it, as `mddev_trylock`), so a holder may stop the thread.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::flags::{rdev as rf, recovery as rec, sb as sbf};
use super::{Mddev, run, sync, update};
use crate::format::MAX_SECTOR;

#[derive(Default)]
struct ThreadState {
    handle: Option<JoinHandle<()>>,
    stop: bool,
    wake: bool,
    /// Earliest requested timed wake-up.
    wake_at: Option<Instant>,
}

#[derive(Default)]
pub struct MdThread {
    st: Mutex<ThreadState>,
    cv: Condvar,
}

impl MdThread {
    /// Start the thread for `mddev` (idempotent).
    pub fn start(&self, mddev: &Arc<Mddev>) {
        let mut st = self.st.lock();
        if st.handle.is_some() {
            return;
        }
        st.stop = false;
        st.wake = true;
        let weak = Arc::downgrade(mddev);
        let name = format!(
            "{}_{}",
            mddev.name,
            mddev.pers().map(|p| p.personality().name()).unwrap_or("md")
        );
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_thread(weak))
            .expect("spawning the md thread");
        st.handle = Some(h);
    }

    pub fn wakeup(&self) {
        let mut st = self.st.lock();
        st.wake = true;
        self.cv.notify_all();
    }

    /// Wake at `t` (or earlier if something else wakes it).
    pub fn wakeup_at(&self, t: Instant) {
        let mut st = self.st.lock();
        if st.wake_at.is_none_or(|w| t < w) {
            st.wake_at = Some(t);
        }
        self.cv.notify_all();
    }

    /// Stop and join the thread.  Must not be called from the thread itself.
    pub fn stop(&self) {
        let h = {
            let mut st = self.st.lock();
            st.stop = true;
            self.cv.notify_all();
            st.handle.take()
        };
        if let Some(h) = h {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    /// Block until woken, a timed wake-up falls due, or stop; false = stop.
    fn wait(&self, extra: Option<Instant>) -> bool {
        let mut st = self.st.lock();
        loop {
            if st.stop {
                return false;
            }
            let now = Instant::now();
            let due = [st.wake_at, extra].into_iter().flatten().min();
            if st.wake || due.is_some_and(|d| d <= now) {
                st.wake = false;
                if st.wake_at.is_some_and(|d| d <= now) {
                    st.wake_at = None;
                }
                return true;
            }
            match due {
                Some(d) => {
                    self.cv.wait_until(&mut st, d);
                }
                None => self.cv.wait(&mut st),
            }
        }
    }
}

/// The thread's loop.  It holds the array while waiting; `stop()` (called
/// by every path that stops or forgets the array) ends it.
fn run_thread(weak: Weak<Mddev>) {
    loop {
        let Some(m) = weak.upgrade() else { return };
        if !m.thread.wait(next_deadline(&m)) {
            return;
        }
        md_check_recovery(&m);
    }
}

/// The next time the thread must look without being woken: safe-mode
/// expiry or the bitmap daemon.
fn next_deadline(m: &Mddev) -> Option<Instant> {
    let sm = m.lock.lock().safemode_deadline;
    let bm = m.bitmap().and_then(|b| b.daemon_deadline());
    [sm, bm].into_iter().flatten().min()
}

/// `md_check_recovery`.
pub fn md_check_recovery(mddev: &Arc<Mddev>) {
    // The safe-mode timer.
    {
        let mut st = mddev.lock.lock();
        if st.safemode_deadline.is_some_and(|d| d <= Instant::now()) {
            st.safemode_deadline = None;
            st.safemode = 1;
        }
    }
    if let Some(b) = mddev.bitmap() {
        b.daemon_work(mddev);
    }
    if !mddev.is_running() {
        return;
    }
    let r = &mddev.recovery;
    if !mddev.is_rdwr() && !r.test(rec::NEEDED) && !r.test(rec::DONE) {
        return;
    }
    let (safemode, in_sync) = {
        let st = mddev.lock.lock();
        (st.safemode, st.in_sync)
    };
    let wanted = mddev.sb_flags.any_except(sbf::CHANGE_PENDING)
        || r.test(rec::NEEDED)
        || r.test(rec::DONE)
        || safemode == 1
        || (safemode == 2 && !in_sync && mddev.recovery_cp() == MAX_SECTOR);
    if !wanted {
        return;
    }
    let Some(mut cfg) = mddev.cfg.try_lock() else {
        // Someone holds the reconfig mutex; look again shortly.
        mddev
            .thread
            .wakeup_at(Instant::now() + Duration::from_millis(10));
        return;
    };
    let try_set_sync = safemode != 0;
    {
        let mut st = mddev.lock.lock();
        if st.safemode == 1 {
            st.safemode = 0;
        }
    }
    if !mddev.is_rdwr() {
        if r.test(rec::RUNNING) {
            sync::stop_sync_thread(mddev, &mut cfg);
        }
        if mddev.lock.lock().in_sync {
            for rdev in &cfg.rdevs {
                rdev.flags.clear(rf::BLOCKED);
            }
        }
        r.set(rec::INTR);
        sync::md_reap_sync_thread(mddev, &mut cfg);
        // A read-only array can still drop failed members and take back
        // in-sync ones.
        sync::remove_and_add_spares(mddev, &mut cfg, None);
        r.clear(rec::RECOVER | rec::NEEDED);
        mddev.sb_flags.clear(sbf::CHANGE_PENDING);
        mddev.sb_wait.notify_all();
        return;
    }
    if try_set_sync && !mddev.lock.lock().in_sync {
        run::set_in_sync(mddev);
    }
    if mddev.sb_flags.any() {
        update::md_update_sb(mddev, &mut cfg, false);
    }
    if r.test(rec::RUNNING) {
        if r.test(rec::DONE) {
            sync::md_reap_sync_thread(mddev, &mut cfg);
        } else {
            mddev.sb_wait.notify_all();
            return;
        }
    }
    mddev.sync.set_curr_resync_completed(0);
    r.set(rec::RUNNING);
    r.clear(rec::INTR | rec::DONE);
    if r.test_and_clear(rec::NEEDED) && !r.test(rec::FROZEN) {
        sync::md_start_sync(mddev, &mut cfg);
    } else {
        r.clear(rec::RUNNING);
    }
    mddev.sb_wait.notify_all();
    drop(cfg);
    // mddev_unlock wakes the thread: what this pass left for the
    // superblocks (a failed member taken out of its slot, a spare added)
    // is written at once by the next.
    if mddev.sb_flags.any_except(sbf::CHANGE_PENDING) {
        mddev.wakeup();
    }
}
