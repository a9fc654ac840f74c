//! Member I/O of one request issued at once: md submits a mirrored
//! write's bios to every leg before waiting for any, so the legs' writes
//! overlap.  Here each leg's write is a blocking system call, so the legs
//! after the first go to threads that stay (spawned on first need, up to
//! a bound, and kept), and the first runs on the caller's thread.
//!
//! Not per-request threads: spawning one costs more than a page-cache
//! write of 4 KiB.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use parking_lot::{Condvar, Mutex};

use super::workers::{Job, Workers};

/// At most this many pool threads; past it, jobs wait for a free one.
const MAX_THREADS: usize = 64;

/// Member transfers from this size up go at once ([`fan_out_sized`]); a
/// smaller one costs the member less than handing it to another thread
/// (a page-cache write of 4 KiB takes a few microseconds, a thread's
/// wake-up on a busy 2-CPU machine as much or more).
pub const FAN_OUT_BYTES: usize = 64 << 10;

fn pool() -> &'static Workers {
    static POOL: OnceLock<Workers> = OnceLock::new();
    POOL.get_or_init(|| Workers::new("md-io", MAX_THREADS))
}

/// Counts the jobs of one call still running.
struct Latch {
    left: Mutex<usize>,
    done: Condvar,
}

impl Latch {
    fn count_down(&self) {
        let mut left = self.left.lock();
        *left -= 1;
        if *left == 0 {
            self.done.notify_all();
        }
    }

    fn wait(&self) {
        let mut left = self.left.lock();
        while *left > 0 {
            self.done.wait(&mut left);
        }
    }
}

/// `f(0)`, ..., `f(n-1)` at once: `f(0)` here, the rest on pool threads;
/// returns once all are done, their results in order.  A panic in a job
/// is re-raised here, after every job has finished.
pub fn fan_out<T, F>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    if n <= 1 {
        return (0..n).map(&f).collect();
    }
    let slots: Vec<Mutex<Option<std::thread::Result<T>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    let latch = Latch {
        left: Mutex::new(n - 1),
        done: Condvar::new(),
    };
    {
        let run = |i: usize| {
            let r = catch_unwind(AssertUnwindSafe(|| f(i)));
            *slots[i].lock() = Some(r);
            latch.count_down();
        };
        let run_ref: &(dyn Fn(usize) + Sync) = &run;
        // SAFETY: the jobs borrow `run` (and through it `f`, `slots` and
        // `latch`) past this scope's lifetime only in the type: every
        // job counts the latch down as its last act (a panic inside `f`
        // is caught first), and `latch.wait()` below returns only when
        // all have, so nothing they borrow is dropped while one runs.
        // Nothing between the submits and the wait can unwind: the pool
        // gives back a job it cannot queue, and that job runs here.
        let run_static: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(run_ref) };
        for i in 1..n {
            let job: Job = Box::new(move || run_static(i));
            if let Err(job) = pool().submit(job) {
                job();
            }
        }
        let first = catch_unwind(AssertUnwindSafe(|| f(0)));
        *slots[0].lock() = Some(first);
        latch.wait();
    }
    slots
        .into_iter()
        .map(|s| match s.into_inner() {
            Some(Ok(v)) => v,
            Some(Err(p)) => std::panic::resume_unwind(p),
            None => unreachable!("every job fills its slot before the latch opens"),
        })
        .collect()
}

/// [`fan_out`] for jobs that each move `bytes` to or from a member:
/// below [`FAN_OUT_BYTES`] they run one after another on the caller's
/// thread, which costs less than waking others.
pub fn fan_out_sized<T, F>(bytes: usize, n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    if bytes < FAN_OUT_BYTES {
        (0..n).map(f).collect()
    } else {
        fan_out(n, f)
    }
}

/// Pieces of one request on lanes, as md queues each member's bios in
/// order on its own device: piece `i` runs on lane `lanes[i]`, a lane's
/// pieces one after another in their order, the lanes at once (by
/// [`fan_out`]).  Returns each piece's result, in piece order.
///
/// Never call it from inside a job of [`fan_out`]: a job waiting on jobs
/// queued behind it could wait for good once every pool thread waits.
pub fn fan_out_lanes<T, F>(lanes: &[usize], f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let mut names: Vec<usize> = lanes.to_vec();
    names.sort_unstable();
    names.dedup();
    let per_lane: Vec<Vec<(usize, T)>> = fan_out(names.len(), |l| {
        (0..lanes.len())
            .filter(|&i| lanes[i] == names[l])
            .map(|i| (i, f(i)))
            .collect()
    });
    let mut out: Vec<Option<T>> = (0..lanes.len()).map(|_| None).collect();
    for (i, v) in per_lane.into_iter().flatten() {
        out[i] = Some(v);
    }
    out.into_iter()
        .map(|v| v.expect("every piece is on one lane"))
        .collect()
}

/// [`fan_out_lanes`] for pieces that each move `bytes` to or from a
/// member: below [`FAN_OUT_BYTES`] they run one after another on the
/// caller's thread, as [`fan_out_sized`]'s do.
pub fn fan_out_lanes_sized<T, F>(bytes: usize, lanes: &[usize], f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    if bytes < FAN_OUT_BYTES {
        (0..lanes.len()).map(f).collect()
    } else {
        fan_out_lanes(lanes, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_in_order_and_every_job_runs() {
        for n in 0..10 {
            let v = fan_out(n, |i| i * 3);
            assert_eq!(v, (0..n).map(|i| i * 3).collect::<Vec<_>>());
        }
    }

    #[test]
    fn jobs_overlap() {
        // Two jobs that each wait for the other finish only when they run
        // at once.
        let seen = AtomicUsize::new(0);
        let v = fan_out(2, |i| {
            seen.fetch_add(1, Ordering::AcqRel);
            let t = std::time::Instant::now();
            while seen.load(Ordering::Acquire) < 2 {
                assert!(t.elapsed().as_secs() < 10, "job {i} ran alone");
                std::thread::yield_now();
            }
            i
        });
        assert_eq!(v, vec![0, 1]);
    }

    #[test]
    fn a_panicking_job_is_reraised_after_all_finish() {
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            fan_out(3, |i| {
                if i == 1 {
                    panic!("job 1");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                done.fetch_add(1, Ordering::AcqRel);
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(Ordering::Acquire), 2);
    }

    #[test]
    fn lanes_keep_their_order_and_results_come_back_in_piece_order() {
        let lanes = [0, 1, 0, 2, 1, 0];
        let seen: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let v = fan_out_lanes(&lanes, |i| {
            seen.lock().push(i);
            i * 10
        });
        assert_eq!(v, vec![0, 10, 20, 30, 40, 50]);
        let seen = seen.into_inner();
        for lane in 0..3 {
            let order: Vec<usize> = seen.iter().copied().filter(|&i| lanes[i] == lane).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted, "lane {lane} ran out of order");
        }
    }
}
