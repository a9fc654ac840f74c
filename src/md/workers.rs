//! Threads that stay, for blocking member I/O handed off by a request:
//! started on first need, up to a bound, and kept until their owner is
//! dropped.  A job runs at once when a thread is free or one can be
//! started; past the bound it queues for the next free thread.
//!
//! A job never waits behind a busy thread while the pool could start
//! another.  Each job sent claims one waiting thread (`idle` counts the
//! waiting threads no queued job has claimed yet), so two submits that
//! both see one free thread cannot both count on it: the second starts
//! a thread of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A job and whether it was sent for a thread it claimed.
struct Task {
    job: Job,
    claimed: bool,
}

struct Shared {
    rx: Receiver<Task>,
    /// Threads started and not yet ended.
    threads: AtomicUsize,
    /// Waiting threads minus claimed jobs still queued.  It dips below
    /// zero for a moment when a thread takes an unclaimed job while a
    /// claimed one waits behind it; a claim needs it above zero.
    idle: AtomicIsize,
}

pub struct Workers {
    name: &'static str,
    max: usize,
    tx: Sender<Task>,
    shared: Arc<Shared>,
}

impl Workers {
    /// A pool of at most `max` threads named `name`; none started yet.
    pub fn new(name: &'static str, max: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Workers {
            name,
            max: max.max(1),
            tx,
            shared: Arc::new(Shared {
                rx,
                threads: AtomicUsize::new(0),
                idle: AtomicIsize::new(0),
            }),
        }
    }

    /// Runs `job` on a pool thread: a free one, else a new one, else
    /// (at the bound) the next to come free.  Gives the job back when no
    /// thread exists and none can be started, to run on the caller's.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let claimed = self.claim_idle() || self.start_thread();
        if !claimed && self.shared.threads.load(Ordering::Acquire) == 0 {
            return Err(job);
        }
        // `shared.rx` lives as long as `self`, so the send cannot fail.
        self.tx.send(Task { job, claimed }).map_err(|e| e.0.job)
    }

    /// Threads started so far and still running.
    pub fn threads(&self) -> usize {
        self.shared.threads.load(Ordering::Acquire)
    }

    fn claim_idle(&self) -> bool {
        let idle = &self.shared.idle;
        let mut n = idle.load(Ordering::Acquire);
        while n > 0 {
            match idle.compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(seen) => n = seen,
            }
        }
        false
    }

    /// Starts a thread whose first wait is already claimed by the job
    /// about to be sent; false at the bound or when no thread starts.
    fn start_thread(&self) -> bool {
        let threads = &self.shared.threads;
        let mut n = threads.load(Ordering::Acquire);
        loop {
            if n >= self.max {
                return false;
            }
            match threads.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => n = seen,
            }
        }
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || serve(&shared));
        if spawned.is_err() {
            threads.fetch_sub(1, Ordering::AcqRel);
            log::warn!(
                "{}: cannot start a thread; jobs wait for the ones there are",
                self.name
            );
        }
        spawned.is_ok()
    }
}

/// A pool thread: jobs until every sender is gone.  Its first wait was
/// claimed when it was started, so only later ones add to `idle`.
fn serve(shared: &Shared) {
    let mut first = true;
    loop {
        if !first {
            shared.idle.fetch_add(1, Ordering::AcqRel);
        }
        first = false;
        match shared.rx.recv() {
            Ok(task) => {
                if !task.claimed {
                    shared.idle.fetch_sub(1, Ordering::AcqRel);
                }
                (task.job)();
            }
            Err(_) => break,
        }
    }
    shared.threads.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let t = Instant::now();
        while !cond() {
            assert!(t.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn every_job_runs_and_threads_stay_bounded() {
        let pool = Workers::new("test-pool", 4);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let d = done.clone();
            pool.submit(Box::new(move || {
                d.fetch_add(1, Ordering::AcqRel);
            }))
            .unwrap_or_else(|job| job());
        }
        wait_for("jobs did not run", || done.load(Ordering::Acquire) == 200);
        assert!(pool.threads() <= 4);
    }

    /// Jobs that each wait for all of them finish only when all run at
    /// the same time: no job may queue behind a busy thread below the
    /// bound, however the submits and the threads interleave.
    #[test]
    fn jobs_below_the_bound_run_at_once() {
        let pool = Workers::new("test-pool", 64);
        for round in 0..200 {
            let jobs = 2 + round % 7;
            let seen = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            for _ in 0..jobs {
                let (s, d) = (seen.clone(), done.clone());
                pool.submit(Box::new(move || {
                    s.fetch_add(1, Ordering::AcqRel);
                    let t = Instant::now();
                    while s.load(Ordering::Acquire) < jobs {
                        if t.elapsed() > Duration::from_secs(10) {
                            return;
                        }
                        std::thread::yield_now();
                    }
                    d.fetch_add(1, Ordering::AcqRel);
                }))
                .unwrap_or_else(|job| job());
            }
            wait_for("a job queued behind a busy thread", || {
                done.load(Ordering::Acquire) == jobs
            });
        }
        assert!(pool.threads() <= 64);
    }

    #[test]
    fn threads_end_with_the_pool() {
        let pool = Workers::new("test-pool", 8);
        let shared = pool.shared.clone();
        for _ in 0..8 {
            pool.submit(Box::new(|| std::thread::sleep(Duration::from_millis(5))))
                .unwrap_or_else(|job| job());
        }
        drop(pool);
        wait_for("threads outlived the pool", || {
            shared.threads.load(Ordering::Acquire) == 0
        });
    }
}
