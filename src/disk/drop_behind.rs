//! Drop-behind for one component: large writes are written back at once
//! and dropped from the page cache some writes later (or after a pause),
//! on a thread of the component's own so that the write that caused it
//! does not wait.  (Not md's write-behind, which lets writes to
//! write-mostly legs lag.)
//!
//! Why at all: md submits writes straight to its members, which cache
//! nothing.  Left dirty and cached here instead, a mirror's bulk writes
//! would pile up twice the dirty pages of the data and meet the kernel's
//! dirty throttling long before the disk is busy; and they would stay
//! cached in large folios, each of which a later small write dirties (and
//! the kernel counts) whole.
//!
//! Why on a thread: starting write-back (sync_file_range) and dropping
//! pages (fadvise) are a third of the time a 1 MiB write spends in the
//! request path, and a single sequential writer has one request in flight.
//! Handed over, they run beside the next write.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

/// Writes at least this large are written back at once and then dropped
/// from the page cache; smaller ones stay cached, where neighbours
/// coalesce.
pub const DROP_BEHIND_BYTES: u64 = 256 * 1024;

/// Writes that follow one another, joined: a component written in
/// pieces smaller than [`DROP_BEHIND_BYTES`] but in order (a striped
/// array's chunks of 64 KiB, say) is a large write as soon as its pieces
/// add up to one, and is written back as one.
#[derive(Debug, Default)]
pub struct Stream {
    /// The run being joined: its start and end offsets.
    run: parking_lot::Mutex<(u64, u64)>,
}

impl Stream {
    /// A write of `[offset, offset + len)` completed: the range now due
    /// for drop-behind, if any (the write itself when it is large, else
    /// the run it ends once the run is large enough).
    pub fn written(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let mut run = self.run.lock();
        let end = offset.saturating_add(len);
        if len >= DROP_BEHIND_BYTES {
            *run = (end, end);
            return Some((offset, len));
        }
        if run.1 == offset {
            run.1 = end;
        } else {
            *run = (offset, end);
        }
        if run.1 - run.0 < DROP_BEHIND_BYTES {
            return None;
        }
        let due = (run.0, run.1 - run.0);
        run.0 = run.1;
        Some(due)
    }
}

/// How many large writes later the pages of one are dropped from the
/// page cache (by then written back, as a rule).
const DEPTH: usize = 64;

/// After this long without a large write, the ones not yet dropped are:
/// no later write would ever drop the last of a stream (a mkfs's last
/// blocks, say), and left cached in large folios they make the small
/// writes that follow dearer (see above).
const IDLE: Duration = Duration::from_secs(1);

enum Msg {
    /// A large write just landed in the page cache.
    Written { offset: u64, len: u64 },
    /// Answer once every earlier message is handled.
    Drain(Sender<()>),
}

/// The handle a component keeps: a queue to its drop-behind thread.
#[derive(Debug)]
pub struct DropBehind {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl DropBehind {
    /// Start the thread on its own descriptor of the component (`file`,
    /// a dup: it shares the open file, claim included).
    pub fn start(file: File, name: &str) -> std::io::Result<DropBehind> {
        let (tx, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || run(file, rx))?;
        Ok(DropBehind {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// A large write of `[offset, offset + len)` reached the page cache.
    pub fn written(&self, offset: u64, len: u64) {
        if let Some(tx) = &self.tx {
            // The thread outlives every sender; a send cannot fail.
            let _ = tx.send(Msg::Written { offset, len });
        }
    }

    /// Wait until every write handed over so far has had its write-back
    /// started and, if due, its pages dropped.
    pub fn drain(&self) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            if tx.send(Msg::Drain(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }
}

impl Drop for DropBehind {
    /// Stop the thread and wait for it: its descriptor is closed when the
    /// component is, so a block device's claim ends with it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(file: File, rx: Receiver<Msg>) {
    let fd = file.as_raw_fd();
    let mut recent: VecDeque<(u64, u64)> = VecDeque::with_capacity(DEPTH + 1);
    // When the pending writes are dropped if no large write comes first.
    // Counted from the last large write, not the last message: flushes
    // arriving every so often must not keep the pending ones cached.
    let mut pause_ends = Instant::now();
    loop {
        let msg = if recent.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_deadline(pause_ends)
        };
        match msg {
            Ok(Msg::Written { offset, len }) => {
                // Hints only: a failed write-back shows at the next flush,
                // and pages that cannot be dropped stay cached.
                // SAFETY: a plain syscall on a descriptor this thread owns.
                unsafe {
                    libc::sync_file_range(
                        fd,
                        offset as i64,
                        len as i64,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                recent.push_back((offset, len));
                pause_ends = Instant::now() + IDLE;
                if recent.len() > DEPTH {
                    // Written back by now, as a rule.
                    let (o, l) = recent.pop_front().expect("longer than DEPTH");
                    drop_pages(fd, o, l);
                }
            }
            Ok(Msg::Drain(done)) => {
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                // A pause: the write-back started a second ago or more is
                // done, as a rule.
                for (o, l) in recent.drain(..) {
                    drop_pages(fd, o, l);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Drop `[offset, offset + len)` from the page cache.  Pages still dirty
/// or under write-back stay.
fn drop_pages(fd: std::os::fd::RawFd, offset: u64, len: u64) {
    // SAFETY: a plain syscall on a descriptor the caller owns.
    unsafe {
        libc::posix_fadvise(fd, offset as i64, len as i64, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    #[test]
    fn a_large_write_is_due_at_once() {
        let s = Stream::default();
        assert_eq!(
            s.written(0, DROP_BEHIND_BYTES),
            Some((0, DROP_BEHIND_BYTES))
        );
        assert_eq!(s.written(1 << 30, 1 << 20), Some((1 << 30, 1 << 20)));
    }

    #[test]
    fn writes_in_order_are_due_once_they_add_up() {
        let s = Stream::default();
        let piece = 64 * K;
        let per_run = DROP_BEHIND_BYTES / piece;
        let mut due = Vec::new();
        for i in 0..3 * per_run {
            due.extend(s.written((1 << 20) + i * piece, piece));
        }
        let run = DROP_BEHIND_BYTES;
        assert_eq!(
            due,
            vec![
                (1 << 20, run),
                ((1 << 20) + run, run),
                ((1 << 20) + 2 * run, run)
            ]
        );
    }

    #[test]
    fn writes_out_of_order_start_again() {
        let s = Stream::default();
        let piece = 64 * K;
        // Random small writes never add up.
        for i in 0..100u64 {
            assert_eq!(s.written((i * 7919 % 1000) * 2 * piece, piece), None);
        }
        // A large write in between ends the run.
        assert_eq!(s.written(0, piece), None);
        assert_eq!(
            s.written(piece, DROP_BEHIND_BYTES),
            Some((piece, DROP_BEHIND_BYTES))
        );
        assert_eq!(s.written(piece + DROP_BEHIND_BYTES, piece), None);
    }
}
