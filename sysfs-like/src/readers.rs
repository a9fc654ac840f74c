//! How many serving threads wait for the next request.
//!
//! Every serving thread reads the FUSE device, and the kernel hands each
//! request to the thread that has waited longest.  With all of a large
//! pool waiting, a lone sequential writer's requests go round every
//! thread in turn, each waking cold (its stack and its 1 MiB request
//! buffer long out of the CPU's caches): a raid0 array's 1 MiB writes ran
//! at 0.80 of a raw file with 16 threads and 0.96 with 4.  So threads
//! beyond a few spare ones park after their request instead of reading
//! again, and a request that finds no spare thread left wakes parked
//! ones: a lone writer is served by two threads taking turns, and a queue
//! of 16 direct writes still finds 16 threads within a few wake-ups.
//!
//! A parked thread goes back to reading after [`PARK_AT_MOST`] anyway:
//! only a thread reading the device sees it unmounted, and the serving
//! threads must all end for the session to.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A thread that ends a request while more than this many others wait
/// on the device parks.
const SPARE_HIGH: usize = 2;

/// A parked thread goes back to the device after this long.
const PARK_AT_MOST: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Counts {
    /// Threads inside a request.
    busy: usize,
    /// Threads parked, woken ones among them until they run.
    parked: usize,
    /// Wake-ups sent that no parked thread has taken yet.
    woken: usize,
}

impl Counts {
    /// Threads on the device, or woken and on their way to it.
    fn waiting(&self, threads: usize) -> usize {
        threads.saturating_sub(self.busy + self.parked) + self.woken
    }
}

#[derive(Debug)]
pub(crate) struct SpareReaders {
    threads: usize,
    park_at_most: Duration,
    counts: Mutex<Counts>,
    wake: Condvar,
}

impl SpareReaders {
    /// The gate of a session served by `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        Self::parking_at_most(threads, PARK_AT_MOST)
    }

    fn parking_at_most(threads: usize, park_at_most: Duration) -> Self {
        SpareReaders {
            threads: threads.max(1),
            park_at_most,
            counts: Mutex::new(Counts::default()),
            wake: Condvar::new(),
        }
    }

    /// A thread took a request.  With no other thread left waiting on the
    /// device, two parked ones go back to it (two, so that a burst finds
    /// threads in a few wake-ups rather than one each).
    pub(crate) fn enter(&self) {
        let mut c = self.counts.lock();
        c.busy += 1;
        if c.waiting(self.threads) == 0 {
            let wake = (c.parked - c.woken).min(2);
            c.woken += wake;
            for _ in 0..wake {
                self.wake.notify_one();
            }
        }
    }

    /// A thread answered its request: it parks if more than
    /// [`SPARE_HIGH`] others wait on the device, else goes back to it.
    pub(crate) fn leave(&self) {
        let mut c = self.counts.lock();
        c.busy = c.busy.saturating_sub(1);
        // `waiting` counts this thread too now.
        if c.waiting(self.threads) <= SPARE_HIGH + 1 {
            return;
        }
        c.parked += 1;
        let deadline = Instant::now() + self.park_at_most;
        loop {
            if c.woken > 0 {
                c.woken -= 1;
                break;
            }
            if self.wake.wait_until(&mut c, deadline).timed_out() && c.woken == 0 {
                break;
            }
        }
        c.parked -= 1;
    }

    #[cfg(test)]
    fn parked(&self) -> usize {
        self.counts.lock().parked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn wait_for(what: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < until, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_thread_leaving_with_spares_enough_goes_back_at_once() {
        let g = SpareReaders::new(3);
        g.enter();
        let t = Instant::now();
        g.leave();
        assert!(t.elapsed() < PARK_AT_MOST / 2);
        assert_eq!(g.parked(), 0);
    }

    #[test]
    fn extra_threads_park_and_a_request_with_no_spare_wakes_them() {
        // 6 threads: 4 take requests and leave; the first leaves with 2
        // others waiting and goes back, the rest would make it more.
        // Parked for up to a minute: only the wake-up ends it in time.
        let g = Arc::new(SpareReaders::parking_at_most(6, Duration::from_secs(60)));
        for _ in 0..4 {
            g.enter();
        }
        let leavers: Vec<_> = (0..3)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || g.leave())
            })
            .collect();
        // Waiting now: 2 idle + 3 leaving = 5 with 1 still busy; the
        // leavers past 3 waiting park.
        wait_for(|| g.parked() == 2);
        // Requests take the waiting threads; the one finding none wakes
        // the parked.
        let t = Instant::now();
        g.enter();
        g.enter();
        g.enter();
        for l in leavers {
            l.join().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(30));
        assert_eq!(g.parked(), 0);
    }

    #[test]
    fn a_parked_thread_goes_back_after_a_while() {
        let g = SpareReaders::new(8);
        g.enter();
        let t = Instant::now();
        g.leave();
        assert!(t.elapsed() >= PARK_AT_MOST);
        assert_eq!(g.parked(), 0);
    }
}
