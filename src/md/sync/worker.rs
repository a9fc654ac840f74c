//! The sync worker: one thread per running array, fed by a crossbeam
//! channel, that does what md's `md_do_sync` does — resync, recovery,
//! check and repair — calling the personality's `sync_request` step by
//! step, throttled by the speed limits, checkpointing progress, and
//! reporting completion back to the md thread.
//!
//! The md thread decides what to run (`super::md_start_sync`) and reaps
//! the result (`md_reap_sync_thread`); this module only runs it.  Progress
//! lives in `SyncState`, read by sysfs and mdstat without locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use parking_lot::{Condvar, Mutex};

use crate::format::MAX_SECTOR;
use crate::md::flags::{recovery as rec, sb as sbf};
use crate::md::{Mddev, ro};

/// `curr_resync` special values.
pub const RESYNC_NONE: u64 = 0;
pub const RESYNC_YIELDED: u64 = 1;
pub const RESYNC_DELAYED: u64 = 2;
pub const RESYNC_ACTIVE: u64 = 3;

const SYNC_MARKS: usize = 10;
/// Three seconds between speed marks.
const SYNC_MARK_STEP: Duration = Duration::from_secs(3);
/// Checkpoint at least every five minutes.
const UPDATE_FREQUENCY: Duration = Duration::from_secs(300);
/// How long the sync steps aside before it looks again whether the array
/// is still busy with normal I/O (when it runs above its minimum speed).
const YIELD_PAUSE: Duration = Duration::from_millis(10);
/// Mismatched ranges remembered for `mismatches`.
const MISMATCH_KEEP: usize = 1024;

/// A command for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCmd {
    /// Run one `md_do_sync` with the action the recovery flags describe.
    Run,
    /// Leave.
    Exit,
}

/// What the worker reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A run finished (`done` = not interrupted).
    Finished { action: &'static str, done: bool },
}

struct Worker {
    tx: Sender<SyncCmd>,
    handle: JoinHandle<()>,
}

/// Progress of the current (or last) sync, shared lock-free.
pub struct SyncState {
    curr_resync: AtomicU64,
    curr_resync_completed: AtomicU64,
    resync_max_sectors: AtomicU64,
    resync_min: AtomicU64,
    resync_max: AtomicU64,
    resync_mismatches: AtomicU64,
    /// Sectors of sync I/O issued in this run (`curr_mark_cnt`).
    io_sectors: AtomicU64,
    /// `resync_mark` / `resync_mark_cnt`: the speed window.
    mark: Mutex<(Instant, u64)>,
    last_sync_action: Mutex<&'static str>,
    mismatches: Mutex<Vec<(u64, u64)>>,
    /// Leg named as the source of the next repair (`repair_source`).
    pub repair_source: Mutex<Option<String>>,
    worker: Mutex<Option<Worker>>,
    events: (Sender<SyncEvent>, Receiver<SyncEvent>),
    /// Woken when `resync_max` rises or the run is interrupted.
    recovery_wait: Condvar,
    wait_mx: Mutex<()>,
    busy: AtomicBool,
}

impl Default for SyncState {
    fn default() -> Self {
        SyncState {
            curr_resync: AtomicU64::new(RESYNC_NONE),
            curr_resync_completed: AtomicU64::new(0),
            resync_max_sectors: AtomicU64::new(0),
            resync_min: AtomicU64::new(0),
            resync_max: AtomicU64::new(MAX_SECTOR),
            resync_mismatches: AtomicU64::new(0),
            io_sectors: AtomicU64::new(0),
            mark: Mutex::new((Instant::now(), 0)),
            last_sync_action: Mutex::new("none"),
            mismatches: Mutex::new(Vec::new()),
            repair_source: Mutex::new(None),
            worker: Mutex::new(None),
            events: unbounded(),
            recovery_wait: Condvar::new(),
            wait_mx: Mutex::new(()),
            busy: AtomicBool::new(false),
        }
    }
}

impl SyncState {
    pub fn curr_resync(&self) -> u64 {
        self.curr_resync.load(Ordering::Acquire)
    }
    pub fn curr_resync_completed(&self) -> u64 {
        self.curr_resync_completed.load(Ordering::Acquire)
    }
    pub fn set_curr_resync_completed(&self, v: u64) {
        self.curr_resync_completed.store(v, Ordering::Release)
    }
    pub fn resync_max_sectors(&self) -> u64 {
        self.resync_max_sectors.load(Ordering::Acquire)
    }
    pub fn set_resync_max_sectors(&self, v: u64) {
        self.resync_max_sectors.store(v, Ordering::Release)
    }
    pub fn resync_min(&self) -> u64 {
        self.resync_min.load(Ordering::Acquire)
    }
    pub fn set_resync_min(&self, v: u64) {
        self.resync_min.store(v, Ordering::Release)
    }
    pub fn resync_max(&self) -> u64 {
        self.resync_max.load(Ordering::Acquire)
    }
    pub fn set_resync_max(&self, v: u64) {
        self.resync_max.store(v, Ordering::Release);
        let _g = self.wait_mx.lock();
        self.recovery_wait.notify_all();
    }
    pub fn mismatches(&self) -> u64 {
        self.resync_mismatches.load(Ordering::Acquire)
    }
    pub fn add_mismatches(&self, n: u64) {
        self.resync_mismatches.fetch_add(n, Ordering::AcqRel);
    }
    pub fn add_io(&self, n: u64) {
        self.io_sectors.fetch_add(n, Ordering::AcqRel);
    }
    /// Remember where a check found the legs differ (array sectors).
    pub fn note_mismatch(&self, sector: u64, sectors: u64) {
        let mut m = self.mismatches.lock();
        if let Some(last) = m.last_mut() {
            if last.0 + last.1 == sector {
                last.1 += sectors;
                return;
            }
        }
        if m.len() < MISMATCH_KEEP {
            m.push((sector, sectors));
        }
    }
    pub fn mismatch_ranges(&self) -> Vec<(u64, u64)> {
        self.mismatches.lock().clone()
    }
    pub fn last_sync_action(&self) -> &'static str {
        *self.last_sync_action.lock()
    }

    /// KiB/s since the window's mark, for the throttle: over the exact
    /// time elapsed, so that holding it at the maximum holds the copy
    /// rate there from the first step on.
    fn throttle_speed(&self) -> u64 {
        let (secs, done) = self.window();
        (done as f64 / 2.0 / secs.max(0.001)) as u64 + 1
    }

    /// `sync_speed`: KiB/s since the window's mark (~30 s back once the
    /// sync has run that long), over at least one second.
    pub fn speed(&self) -> u64 {
        let (secs, done) = self.window();
        (done as f64 / 2.0 / secs.max(1.0)) as u64
    }

    /// Seconds since the window's mark and sectors done in it, for mdstat's
    /// finish estimate.
    pub fn window(&self) -> (f64, u64) {
        let (mark, mark_cnt) = *self.mark.lock();
        let done = self.io_sectors.load(Ordering::Acquire);
        (mark.elapsed().as_secs_f64(), done.saturating_sub(mark_cnt))
    }

    /// Forget everything (`md_clean`).
    pub fn reset(&self) {
        self.curr_resync.store(RESYNC_NONE, Ordering::Release);
        self.curr_resync_completed.store(0, Ordering::Release);
        self.resync_min.store(0, Ordering::Release);
        self.resync_max.store(MAX_SECTOR, Ordering::Release);
        self.resync_mismatches.store(0, Ordering::Release);
        *self.last_sync_action.lock() = "none";
        self.mismatches.lock().clear();
    }

    /// Start the worker thread for `mddev` (idempotent).
    pub fn start_worker(&self, mddev: &Arc<Mddev>) {
        let mut w = self.worker.lock();
        if w.is_some() {
            return;
        }
        let (tx, rx) = unbounded::<SyncCmd>();
        let weak = Arc::downgrade(mddev);
        let events = self.events.0.clone();
        let handle = std::thread::Builder::new()
            .name(format!("{}_resync", mddev.name))
            .spawn(move || {
                while let Ok(cmd) = rx.recv() {
                    match cmd {
                        SyncCmd::Exit => return,
                        SyncCmd::Run => {
                            let Some(m) = weak.upgrade() else { return };
                            let (action, done) = md_do_sync(&m);
                            m.sync.busy.store(false, Ordering::Release);
                            let _ = events.send(SyncEvent::Finished { action, done });
                            m.wakeup();
                        }
                    }
                }
            })
            .expect("spawning the sync worker");
        *w = Some(Worker { tx, handle });
    }

    /// Ask the worker to run (the caller set RUNNING and the action flags).
    pub fn kick(&self) -> bool {
        let w = self.worker.lock();
        let Some(w) = w.as_ref() else { return false };
        self.busy.store(true, Ordering::Release);
        w.tx.send(SyncCmd::Run).is_ok()
    }

    /// Is a run in progress (sent and not yet finished)?
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Wait until the current run has finished.
    pub fn wait_idle(&self) {
        while self.busy() {
            let mut g = self.wait_mx.lock();
            self.recovery_wait.notify_all();
            self.recovery_wait
                .wait_for(&mut g, Duration::from_millis(20));
        }
    }

    /// Completion reports not yet consumed.
    pub fn drain_events(&self) -> Vec<SyncEvent> {
        self.events.1.try_iter().collect()
    }

    /// Stop the worker thread (array stopping).
    pub fn stop_worker(&self) {
        let w = self.worker.lock().take();
        if let Some(w) = w {
            let _ = w.tx.send(SyncCmd::Exit);
            if w.handle.thread().id() != std::thread::current().id() {
                let _ = w.handle.join();
            }
        }
    }

    fn interruptible_wait(&self, mddev: &Mddev, until: impl Fn() -> bool) {
        let mut g = self.wait_mx.lock();
        while !until() && !mddev.recovery.test(rec::INTR) {
            self.recovery_wait
                .wait_for(&mut g, Duration::from_millis(100));
        }
    }

    /// Wake anything waiting on `recovery_wait` (an interrupt).
    pub fn wake(&self) {
        let _g = self.wait_mx.lock();
        self.recovery_wait.notify_all();
    }
}

/// The action the recovery flags describe, in Linux 6.1's words:
/// (description for the log, `last_sync_action` word).
fn describe(mddev: &Mddev) -> (&'static str, &'static str) {
    let r = &mddev.recovery;
    if r.test(rec::SYNC) {
        if r.test(rec::CHECK) {
            ("data-check", "check")
        } else if r.test(rec::REQUESTED) {
            ("requested-resync", "repair")
        } else {
            ("resync", "resync")
        }
    } else if r.test(rec::RESHAPE) {
        ("reshape", "reshape")
    } else {
        ("recovery", "recovery")
    }
}

/// `md_do_sync`.  Returns the action word and whether it completed.
pub fn md_do_sync(mddev: &Arc<Mddev>) -> (&'static str, bool) {
    let r = &mddev.recovery;
    let st = &mddev.sync;
    let log = mddev.log();
    let (desc, action) = describe(mddev);
    if r.test(rec::DONE) {
        return (action, false);
    }
    let mut j = 0u64;
    let mut max_sectors = 0u64;
    if mddev.ro() != ro::RDWR {
        // Never sync a read-only array; the run counts as interrupted.
        r.set(rec::INTR);
    }
    'run: {
        if r.test(rec::INTR) {
            break 'run;
        }
        *st.last_sync_action.lock() = action;
        // Arrays that share a physical disk sync one at a time.
        st.curr_resync.store(RESYNC_DELAYED, Ordering::Release);
        wait_for_shared_units(mddev, desc);
        if r.test(rec::INTR) {
            // Interrupted while it waited: nothing started.
            break 'run;
        }
        if r.test(rec::SYNC) {
            max_sectors = st.resync_max_sectors();
            st.resync_mismatches.store(0, Ordering::Release);
            st.mismatches.lock().clear();
            if r.test(rec::REQUESTED) {
                j = st.resync_min();
            } else if mddev.bitmap().is_none() {
                j = mddev.recovery_cp();
            }
        } else {
            max_sectors = mddev.dev_sectors();
            j = MAX_SECTOR;
            for rd in mddev.rdevs().iter() {
                if rd.raid_disk() >= 0 && !rd.faulty() && !rd.in_sync() && rd.recovery_offset() < j
                {
                    j = rd.recovery_offset();
                }
            }
            if let Some(p) = mddev.pers() {
                if mddev.bitmap().is_some() {
                    p.quiesce(true);
                    p.quiesce(false);
                }
            }
        }
        if j > max_sectors {
            j = max_sectors;
        }
        log.info(format!("md: {desc} of RAID array {}", mddev.name));
        st.io_sectors.store(0, Ordering::Release);
        let now = Instant::now();
        let mut marks = [(now, 0u64); SYNC_MARKS];
        let mut last_mark = 0usize;
        *st.mark.lock() = marks[0];
        st.curr_resync.store(
            if j >= RESYNC_ACTIVE { j } else { RESYNC_ACTIVE },
            Ordering::Release,
        );
        st.curr_resync_completed.store(j, Ordering::Release);
        mddev.notify("sync_completed");
        let mut update_time = Instant::now();
        let mut last_check = 0u64;
        let window = 32 * 8u64;
        let mut last_idle = mddev.normal_io_sectors();
        let pers = mddev.pers();
        while j < max_sectors {
            let completed = st.curr_resync_completed();
            let curr = st.curr_resync();
            let resync_max = st.resync_max();
            if (curr > completed && curr - completed > (max_sectors >> 4))
                || update_time.elapsed() >= UPDATE_FREQUENCY
                || (j - completed) * 2 >= resync_max.saturating_sub(completed)
                || completed > resync_max
            {
                st.curr_resync_completed.store(j, Ordering::Release);
                if r.test(rec::SYNC) && j > mddev.recovery_cp() {
                    mddev.set_recovery_cp(j);
                }
                update_time = Instant::now();
                mddev.sb_flags.set(sbf::CHANGE_CLEAN);
                mddev.wakeup();
                mddev.notify("sync_completed");
            }
            if j >= st.resync_max() {
                st.interruptible_wait(mddev, || st.resync_max() > j);
            }
            if r.test(rec::INTR) {
                break;
            }
            let Some(p) = pers.as_ref() else {
                r.set(rec::INTR);
                break;
            };
            let step = match p.sync_request(mddev, j, max_sectors) {
                Ok(s) => s,
                Err(_) => {
                    r.set(rec::INTR | rec::ERROR);
                    break;
                }
            };
            if step.sectors == 0 {
                r.set(rec::INTR);
                break;
            }
            // What a mirror's resync or repair copied may differ from what
            // a read returned before; the step's I/O is done and its
            // barrier down, so dirty pages the kernel writes back first
            // can reach md.
            if !step.skipped && !r.test(rec::CHECK) {
                if let Some((offset, len)) = p.sync_changed(j, step.sectors) {
                    mddev.observer().data_changed(mddev, offset, len);
                }
            }
            if r.test(rec::INTR) {
                break;
            }
            j += step.sectors;
            if j > max_sectors {
                j = max_sectors;
            }
            if j >= RESYNC_ACTIVE {
                st.curr_resync.store(j, Ordering::Release);
            }
            let io = st.io_sectors.load(Ordering::Acquire);
            if last_check + window > io || j == max_sectors {
                continue;
            }
            last_check = io;
            loop {
                if marks[last_mark].0.elapsed() >= SYNC_MARK_STEP {
                    let next = (last_mark + 1) % SYNC_MARKS;
                    *st.mark.lock() = marks[next];
                    marks[next] = (Instant::now(), st.io_sectors.load(Ordering::Acquire));
                    last_mark = next;
                }
                if r.test(rec::INTR) {
                    break;
                }
                // Over the minimum speed the sync yields to normal I/O;
                // it never goes over the maximum, neither on average since
                // the window's mark (~30 s) nor since the latest mark (at
                // most 3 s), so that a slow spell is not made up in a burst.
                let speed = st.throttle_speed();
                let min = mddev.speed_min() as u64;
                let max = mddev.speed_max() as u64;
                if speed > min {
                    let (t, cnt) = marks[last_mark];
                    let recent = st.io_sectors.load(Ordering::Acquire).saturating_sub(cnt) as f64
                        / 2.0
                        / t.elapsed().as_secs_f64().max(0.001);
                    if speed > max || recent > max as f64 {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    // Not idle (over 64 sectors of normal I/O since the last
                    // look): step aside while it lasts, as the kernel waits
                    // for its own in-flight sync I/O to drain.
                    let now_io = mddev.normal_io_sectors();
                    let busy = now_io.wrapping_sub(last_idle) > 64;
                    last_idle = now_io;
                    if busy {
                        std::thread::sleep(YIELD_PAUSE);
                        continue;
                    }
                }
                break;
            }
        }
        let interrupted = r.test(rec::INTR);
        log.info(format!(
            "md: {}: {desc} {}.",
            mddev.name,
            if interrupted { "interrupted" } else { "done" }
        ));
        if !interrupted && st.curr_resync() >= RESYNC_ACTIVE {
            st.curr_resync_completed
                .store(st.curr_resync(), Ordering::Release);
            mddev.notify("sync_completed");
        }
        if let Some(p) = pers.as_ref() {
            let _ = p.sync_request(mddev, max_sectors, max_sectors);
        }
        let curr = st.curr_resync();
        if !r.test(rec::CHECK) && curr > RESYNC_ACTIVE {
            if r.test(rec::SYNC) {
                if interrupted {
                    if curr >= mddev.recovery_cp() {
                        let cp = if r.test(rec::ERROR) {
                            st.curr_resync_completed()
                        } else {
                            curr
                        };
                        mddev.set_recovery_cp(cp);
                    }
                } else {
                    mddev.set_recovery_cp(MAX_SECTOR);
                }
            } else {
                if !interrupted {
                    st.curr_resync.store(MAX_SECTOR, Ordering::Release);
                }
                if r.test(rec::RECOVER) {
                    let c = st.curr_resync();
                    for rd in mddev.rdevs().iter() {
                        if rd.raid_disk() >= 0
                            && !rd.faulty()
                            && !rd.in_sync()
                            && rd.recovery_offset() < c
                        {
                            rd.set_recovery_offset(c);
                        }
                    }
                }
            }
        }
    }
    // skip:
    mddev.sb_flags.set(sbf::CHANGE_PENDING | sbf::CHANGE_DEVS);
    let interrupted = r.test(rec::INTR);
    if !interrupted {
        if r.test(rec::REQUESTED) {
            st.set_resync_min(0);
        }
        st.resync_max.store(MAX_SECTOR, Ordering::Release);
    } else if r.test(rec::REQUESTED) {
        st.set_resync_min(st.curr_resync_completed());
    }
    r.set(rec::DONE);
    st.curr_resync.store(RESYNC_NONE, Ordering::Release);
    let _ = max_sectors;
    (action, !interrupted)
}

/// "md: delaying resync of md1 until md0 has finished": wait while another
/// array that shares a physical disk is syncing.
fn wait_for_shared_units(mddev: &Arc<Mddev>, desc: &str) {
    if mddev.sync_force_parallel() {
        return;
    }
    let mut announced: Option<String> = None;
    loop {
        if mddev.recovery.test(rec::INTR) {
            return;
        }
        let other = mddev
            .md
            .arrays()
            .into_iter()
            .filter(|o| !Arc::ptr_eq(o, mddev))
            .find(|o| {
                let c = o.sync.curr_resync();
                c != RESYNC_NONE
                    && shares_units(mddev, o)
                    && (c > RESYNC_DELAYED || o.unit < mddev.unit)
            });
        let Some(o) = other else { return };
        if announced.as_deref() != Some(o.name.as_str()) {
            mddev.log().info(format!(
                "md: delaying {desc} of {} until {} has finished (they share one or more physical units)",
                mddev.name, o.name
            ));
            announced = Some(o.name.clone());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `match_mddev_units`: do two arrays have members on the same storage?
fn shares_units(a: &Mddev, b: &Mddev) -> bool {
    let ids = |m: &Mddev| -> Vec<(u64, u64)> {
        m.rdevs()
            .iter()
            .filter(|r| r.raid_disk() >= 0 && !r.faulty())
            .filter_map(|r| r.disk.identity().ok())
            .collect()
    };
    let (x, y) = (ids(a), ids(b));
    x.iter().any(|i| y.contains(i))
}
