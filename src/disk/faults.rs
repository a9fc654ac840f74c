//! Deterministic fault injection for one component, a testing aid beyond
//! what the kernel offers: fail reads and/or writes of a sector range with
//! an errno, delay them, or make the whole device vanish.
//!
//! Rules are given as text, one per write (the `dev-X/fault` control file):
//!
//! ```text
//! read-error  [START[-END]] [count=N] [errno=E]   reads overlapping the range fail
//! write-error [START[-END]] [count=N] [errno=E]   writes overlapping the range fail
//! error       [START[-END]] [count=N] [errno=E]   both
//! delay MS    [read|write]  [START[-END]]         add MS milliseconds of latency
//! vanish                                          every I/O fails with EIO, as a pulled disk
//! clear                                           drop every rule, the device returns
//! ```
//!
//! Sectors are 512-byte units from the start of the component (not of the
//! array data).  A range without END covers one sector; without START the
//! whole device.  `count=N` makes a rule expire after N failures.  A
//! flush counts as a write of the whole device: only write rules without
//! a range fail it.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::errno::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    Read,
    Write,
    Flush,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ops {
    Read,
    Write,
    Both,
}

impl Ops {
    fn matches(self, op: FaultOp) -> bool {
        matches!(
            (self, op),
            (Ops::Both, _)
                | (Ops::Read, FaultOp::Read)
                | (Ops::Write, FaultOp::Write | FaultOp::Flush)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Error(Errno),
    Delay(Duration),
}

#[derive(Debug)]
struct Rule {
    ops: Ops,
    /// Sector range, end exclusive.
    start: u64,
    end: u64,
    action: Action,
    /// Failures left before the rule expires; `None` = forever.
    remaining: Option<AtomicU64>,
}

impl Rule {
    fn overlaps(&self, op: FaultOp, offset: u64, len: u64) -> bool {
        if !self.ops.matches(op) {
            return false;
        }
        if op == FaultOp::Flush {
            // A flush covers the whole device: only a rule for the whole
            // device fails it.  Bad sectors do not fail cache flushes.
            return self.start == 0 && self.end == u64::MAX;
        }
        let s = offset / 512;
        let e = (offset + len.max(1)).div_ceil(512);
        s < self.end && self.start < e
    }
}

/// One I/O of a component, as an [`IoObserver`] sees it: when it is issued
/// (`done == false`, after any injected delay, only if no rule failed it)
/// and when it has completed (`done == true`, whatever the outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoEvent {
    pub op: FaultOp,
    /// Bytes from the start of the component (0 for a flush).
    pub offset: u64,
    pub len: u64,
    pub done: bool,
    /// Durable once done: a flush, or a write made with `RWF_DSYNC`.
    pub durable: bool,
}

/// A callback told of every I/O of one component (tests use it to check
/// the order of metadata and data writes).
pub type IoObserver = Arc<dyn Fn(IoEvent) + Send + Sync>;

/// The rules of one component.  Checking costs one relaxed atomic load
/// when no rule or observer is set.
#[derive(Default)]
pub struct FaultPlan {
    armed: AtomicBool,
    vanished: AtomicBool,
    rules: RwLock<Vec<Rule>>,
    observer: RwLock<Option<IoObserver>>,
    /// I/Os failed by injection, for the show side and tests.
    injected: AtomicU64,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultPlan")
            .field("vanished", &self.vanished())
            .field("rules", &*self.rules.read())
            .field("observed", &self.observer.read().is_some())
            .finish()
    }
}

impl FaultPlan {
    /// Fail or delay this I/O if a rule says so; tell the observer it is
    /// issued otherwise.
    pub fn check(&self, op: FaultOp, offset: u64, len: u64) -> io::Result<()> {
        self.check_io(op, offset, len, op == FaultOp::Flush)
    }

    /// `check` for an I/O that is durable when done (`durable`).
    pub fn check_io(&self, op: FaultOp, offset: u64, len: u64, durable: bool) -> io::Result<()> {
        if !self.armed.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.check_rules(op, offset, len)?;
        self.observe(op, offset, len, false, durable);
        Ok(())
    }

    /// Tell the observer, if any, that this I/O has completed.
    pub fn completed(&self, op: FaultOp, offset: u64, len: u64, durable: bool) {
        if self.armed.load(Ordering::Relaxed) {
            self.observe(op, offset, len, true, durable);
        }
    }

    /// Watch every I/O of the component (`None` stops watching).
    pub fn set_observer(&self, observer: Option<IoObserver>) {
        let rules = self.rules.write();
        *self.observer.write() = observer;
        self.rearm(&rules);
    }

    fn observe(&self, op: FaultOp, offset: u64, len: u64, done: bool, durable: bool) {
        let o = self.observer.read().clone();
        if let Some(o) = o {
            o(IoEvent {
                op,
                offset,
                len,
                done,
                durable,
            });
        }
    }

    /// Armed while anything can act on an I/O.  Called with the rules
    /// locked.
    fn rearm(&self, rules: &[Rule]) {
        let armed = !rules.is_empty()
            || self.vanished.load(Ordering::Acquire)
            || self.observer.read().is_some();
        self.armed.store(armed, Ordering::Release);
    }

    fn check_rules(&self, op: FaultOp, offset: u64, len: u64) -> io::Result<()> {
        if self.vanished.load(Ordering::Acquire) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let rules = self.rules.read();
        for r in rules.iter() {
            if !r.overlaps(op, offset, len) {
                continue;
            }
            match r.action {
                Action::Delay(d) => std::thread::sleep(d),
                Action::Error(errno) => {
                    if let Some(left) = &r.remaining {
                        let took = left
                            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                            .is_ok();
                        if !took {
                            continue;
                        }
                    }
                    self.injected.fetch_add(1, Ordering::Relaxed);
                    return Err(io::Error::from(errno));
                }
            }
        }
        Ok(())
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    pub fn vanished(&self) -> bool {
        self.vanished.load(Ordering::Acquire)
    }

    /// Apply one line of the rule language; `Err(EINVAL)` on bad syntax.
    pub fn apply(&self, line: &str) -> Result<(), Errno> {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return Err(Errno::EINVAL);
        };
        let rest: Vec<&str> = words.collect();
        match verb {
            "clear" if rest.is_empty() => {
                let mut rules = self.rules.write();
                rules.clear();
                self.vanished.store(false, Ordering::Release);
                self.rearm(&rules);
                Ok(())
            }
            "vanish" if rest.is_empty() => {
                self.vanished.store(true, Ordering::Release);
                self.armed.store(true, Ordering::Release);
                Ok(())
            }
            "read-error" | "write-error" | "error" => {
                let ops = match verb {
                    "read-error" => Ops::Read,
                    "write-error" => Ops::Write,
                    _ => Ops::Both,
                };
                let mut range = None;
                let mut count = None;
                let mut errno = Errno::EIO;
                for w in rest {
                    if let Some(n) = w.strip_prefix("count=") {
                        count = Some(n.parse::<u64>().map_err(|_| Errno::EINVAL)?);
                    } else if let Some(e) = w.strip_prefix("errno=") {
                        errno = e
                            .parse::<i32>()
                            .ok()
                            .filter(|&v| v <= 4095)
                            .and_then(Errno::from_raw)
                            .ok_or(Errno::EINVAL)?;
                    } else if range.is_none() {
                        range = Some(parse_range(w)?);
                    } else {
                        return Err(Errno::EINVAL);
                    }
                }
                let (start, end) = range.unwrap_or((0, u64::MAX));
                self.push(Rule {
                    ops,
                    start,
                    end,
                    action: Action::Error(errno),
                    remaining: count.map(AtomicU64::new),
                });
                Ok(())
            }
            "delay" => {
                let mut it = rest.into_iter();
                let ms: u64 = it
                    .next()
                    .ok_or(Errno::EINVAL)?
                    .parse()
                    .map_err(|_| Errno::EINVAL)?;
                if ms > 60_000 {
                    return Err(Errno::EINVAL);
                }
                let mut ops = Ops::Both;
                let mut range = None;
                for w in it {
                    match w {
                        "read" => ops = Ops::Read,
                        "write" => ops = Ops::Write,
                        _ if range.is_none() => range = Some(parse_range(w)?),
                        _ => return Err(Errno::EINVAL),
                    }
                }
                let (start, end) = range.unwrap_or((0, u64::MAX));
                self.push(Rule {
                    ops,
                    start,
                    end,
                    action: Action::Delay(Duration::from_millis(ms)),
                    remaining: None,
                });
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn push(&self, rule: Rule) {
        let mut rules = self.rules.write();
        // Bounded, so garbage loops cannot grow memory without limit.
        if rules.len() >= 64 {
            rules.remove(0);
        }
        rules.push(rule);
        self.armed.store(true, Ordering::Release);
    }
}

fn parse_range(w: &str) -> Result<(u64, u64), Errno> {
    let num = |s: &str| s.parse::<u64>().map_err(|_| Errno::EINVAL);
    match w.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(Errno::EINVAL);
            }
            Ok((a, b.saturating_add(1)))
        }
        None => {
            let a = num(w)?;
            Ok((a, a.saturating_add(1)))
        }
    }
}

impl fmt::Display for FaultPlan {
    /// One line per rule, in the syntax `apply` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vanished() {
            writeln!(f, "vanish")?;
        }
        for r in self.rules.read().iter() {
            let range = if r.start == 0 && r.end == u64::MAX {
                String::new()
            } else {
                format!(" {}-{}", r.start, r.end - 1)
            };
            match r.action {
                Action::Error(e) => {
                    let verb = match r.ops {
                        Ops::Read => "read-error",
                        Ops::Write => "write-error",
                        Ops::Both => "error",
                    };
                    write!(f, "{verb}{range}")?;
                    if let Some(n) = &r.remaining {
                        write!(f, " count={}", n.load(Ordering::Relaxed))?;
                    }
                    if e != Errno::EIO {
                        write!(f, " errno={e}")?;
                    }
                    writeln!(f)?;
                }
                Action::Delay(d) => {
                    let ops = match r.ops {
                        Ops::Read => " read",
                        Ops::Write => " write",
                        Ops::Both => "",
                    };
                    writeln!(f, "delay {}{ops}{range}", d.as_millis())?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_counts() {
        let p = FaultPlan::default();
        assert!(p.check(FaultOp::Read, 0, 4096).is_ok());
        p.apply("read-error 8-15 count=1").unwrap();
        assert!(p.check(FaultOp::Read, 0, 4096).is_ok());
        assert!(p.check(FaultOp::Write, 4096, 512).is_ok());
        assert_eq!(
            p.check(FaultOp::Read, 4096, 512)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EIO)
        );
        // count exhausted
        assert!(p.check(FaultOp::Read, 4096, 512).is_ok());
        p.apply("write-error errno=28").unwrap();
        assert_eq!(
            p.check(FaultOp::Write, 1 << 30, 512)
                .unwrap_err()
                .raw_os_error(),
            Some(28)
        );
        assert_eq!(
            p.to_string(),
            "read-error 8-15 count=0\nwrite-error errno=28\n"
        );
        p.apply("clear").unwrap();
        assert!(p.check(FaultOp::Write, 0, 512).is_ok());
    }

    #[test]
    fn flush_fails_only_for_the_whole_device() {
        let p = FaultPlan::default();
        p.apply("write-error 100-199").unwrap();
        p.apply("error 300").unwrap();
        assert!(p.check(FaultOp::Flush, 0, 0).is_ok());
        assert!(p.check(FaultOp::Write, 150 * 512, 512).is_err());
        p.apply("write-error").unwrap();
        assert!(p.check(FaultOp::Flush, 0, 0).is_err());
    }

    #[test]
    fn observer_sees_issued_and_completed_io() {
        let p = FaultPlan::default();
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        p.set_observer(Some(Arc::new(move |e: IoEvent| s2.lock().push(e))));
        p.apply("write-error 0-7").unwrap();
        p.apply("clear").unwrap();
        assert!(p.check(FaultOp::Write, 4096, 512).is_ok());
        p.completed(FaultOp::Write, 4096, 512, false);
        p.apply("read-error 0").unwrap();
        // An I/O failed by a rule is not issued.
        assert!(p.check(FaultOp::Read, 0, 512).is_err());
        let ev = |op, offset, len, done| IoEvent {
            op,
            offset,
            len,
            done,
            durable: false,
        };
        assert_eq!(
            *seen.lock(),
            [
                ev(FaultOp::Write, 4096, 512, false),
                ev(FaultOp::Write, 4096, 512, true)
            ]
        );
        p.set_observer(None);
        p.apply("clear").unwrap();
        assert!(!p.armed.load(Ordering::Relaxed));
    }

    #[test]
    fn vanish_fails_everything() {
        let p = FaultPlan::default();
        p.apply("vanish").unwrap();
        assert!(p.check(FaultOp::Read, 0, 1).is_err());
        assert!(p.check(FaultOp::Flush, 0, 0).is_err());
        p.apply("clear").unwrap();
        assert!(p.check(FaultOp::Flush, 0, 0).is_ok());
    }

    #[test]
    fn garbage_is_einval() {
        let p = FaultPlan::default();
        for bad in [
            "",
            "bogus",
            "read-error x",
            "read-error 9-3",
            "delay",
            "delay abc",
            "error 1 2",
            "vanish now",
        ] {
            assert_eq!(p.apply(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }
}
