//! The kernel's view of binary files served through its page cache: their
//! sizes, and the pages it holds of them.
//!
//! With FUSE's writeback cache the kernel keeps its own `i_size` for every
//! regular file of the mount and ignores the sizes the server reports, and
//! the only way to lower a cached `i_size` is to stop using that inode.  So
//! a binary file gets a new inode number whenever a lookup finds its size
//! changed since the number was handed out: the kernel then makes a new
//! inode with the new size, and the old one lives on only for descriptors
//! still open on it.  A size that grew is also pushed to the old inodes, at
//! lookups and getattrs (a `notify_store` of the last byte raises `i_size`).
//!
//! Every inode number of a binary file that the kernel may hold is counted
//! here, lookups up and `forget` down, so that a change of the file's
//! contents made behind the kernel ([`Tree::invalidate_data`]) can drop the
//! cached pages of each.
//!
//! And the descriptors open on each, so that an open keeps what the inode
//! cached while another descriptor holds it open, as a block device's
//! page cache lives from its first open to its last close.
//!
//! [`Tree::invalidate_data`]: crate::Tree::invalidate_data

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use fuser::{INodeNo, Notifier};
use log::{debug, warn};
use parking_lot::Mutex;

use crate::{BinFile, NodeId};

/// Inode numbers handed out after a file's first: the top bit set, which a
/// [`NodeId::ino`] never has (its generation would have to reach 2^31).
const ALIAS: u64 = 1 << 63;

pub(crate) struct KernelCache {
    /// Set once the session exists, before it serves any request.
    notifier: OnceLock<Notifier>,
    /// Whether the mount asked for the writeback cache (otherwise the
    /// cache is written through).
    write_back: bool,
    /// Whether buffered opens are served from the page cache: set at init,
    /// once the kernel granted what the mount asked for.
    active: AtomicBool,
    state: Mutex<State>,
    /// Pages past the end to drop, and whether a thread is dropping them.
    past_end: Arc<Mutex<PastEnd>>,
}

#[derive(Default)]
struct PastEnd {
    /// Per inode number: the offset from which to drop its pages.
    pending: HashMap<u64, i64>,
    running: bool,
}

/// The thread of [`KernelCache::retire`]: drops the pages past the end of
/// every inode queued, until none is.
fn drop_past_end(queue: &Mutex<PastEnd>, notifier: &Notifier) {
    loop {
        let batch = {
            let mut q = queue.lock();
            if q.pending.is_empty() {
                q.running = false;
                return;
            }
            std::mem::take(&mut q.pending)
        };
        for (ino, offset) in batch {
            if let Err(e) = notifier.inval_inode(INodeNo(ino), offset, 0) {
                debug!("notify_inval_inode({ino:#x}, {offset}): {e}");
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// Per file: the inode number lookups hand out now, and the size it
    /// stands for (`None` once retired: the next lookup gets a new one).
    current: HashMap<NodeId, (u64, Option<u64>)>,
    /// Every inode number of a binary file the kernel may hold.
    live: HashMap<u64, Live>,
    /// Per inode number: its buffered opens whose close has not begun.
    opens: HashMap<u64, u32>,
    next_alias: u64,
}

struct Live {
    node: NodeId,
    lookups: u64,
    /// The `i_size` the kernel holds for it, as far as we know; `None` once
    /// a write-back past the end raised it beyond what we can follow.
    size: Option<u64>,
}

impl KernelCache {
    pub(crate) fn new(write_back: bool) -> Self {
        KernelCache {
            notifier: OnceLock::new(),
            write_back,
            active: AtomicBool::new(false),
            state: Mutex::default(),
            past_end: Arc::default(),
        }
    }

    pub(crate) fn set_notifier(&self, notifier: Notifier) {
        let _ = self.notifier.set(notifier);
    }

    pub(crate) fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Release);
    }

    /// Whether buffered opens are served from the page cache.
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the mount asked for the writeback cache.
    pub(crate) fn write_back(&self) -> bool {
        self.write_back
    }

    /// The inode number a lookup of `node`, now `size` bytes, replies with;
    /// counts the lookup.  Inodes the kernel still holds for a smaller size
    /// are raised to `size`.
    pub(crate) fn lookup(&self, node: NodeId, file: &dyn BinFile, size: u64) -> u64 {
        let mut st = self.state.lock();
        let ino = match st.current.get(&node) {
            Some(&(ino, Some(s))) if s == size => ino,
            Some(_) => {
                st.next_alias += 1;
                ALIAS | st.next_alias
            }
            None => node.ino(),
        };
        st.current.insert(node, (ino, Some(size)));
        let live = st.live.entry(ino).or_insert(Live {
            node,
            lookups: 0,
            size: Some(size),
        });
        live.lookups += 1;
        drop(st);
        self.raise(node, file, size);
        ino
    }

    /// `getattr` of `node` (by any of its inode numbers), now `size` bytes.
    pub(crate) fn getattr(&self, node: NodeId, file: &dyn BinFile, size: u64) {
        self.raise(node, file, size);
    }

    /// Raise every inode of `node` that the kernel holds at a smaller size
    /// to `size`, by storing the file's last byte: the kernel raises
    /// `i_size` to the end of a store, but not for an empty one.  That byte
    /// lies past the old end, where nothing of the kernel's own can be
    /// cached but what a write past the end left, and the inodes that took
    /// one are not raised.  (A smaller size cannot be pushed; new lookups
    /// get a new inode.)  Called without the lock: the store waits for
    /// the kernel's inode, which may wait for a write-back that a serving
    /// thread must finish, and that may need the lock (`retire`).
    fn raise(&self, node: NodeId, file: &dyn BinFile, size: u64) {
        let Some(notifier) = self.notifier.get() else {
            return;
        };
        if size == 0 {
            return;
        }
        let inos: Vec<u64> = {
            let st = self.state.lock();
            st.live
                .iter()
                .filter(|(_, l)| l.node == node && l.size.is_some_and(|s| s < size))
                .map(|(&ino, _)| ino)
                .collect()
        };
        if inos.is_empty() {
            return;
        }
        let mut byte = [0u8; 1];
        match file.read_at(&mut byte, size - 1) {
            Ok(1) => {}
            other => {
                debug!("reading the last byte of {node:?}: {other:?}");
                return;
            }
        }
        for ino in inos {
            match notifier.store(INodeNo(ino), size - 1, &byte) {
                Ok(()) => {
                    let mut st = self.state.lock();
                    if let Some(l) = st.live.get_mut(&ino) {
                        if l.size.is_some_and(|s| s < size) {
                            l.size = Some(size);
                        }
                    }
                }
                Err(e) => debug!("notify_store({ino:#x}, {size}): {e}"),
            }
        }
    }

    /// A buffered open of `ino`: whether it keeps what the inode cached
    /// (`FOPEN_KEEP_CACHE`), which it does while another open of it has
    /// not begun to close.  The first open after the last close drops it,
    /// as a block device's last close does, so that what changed behind
    /// the file while nothing held it open is read afresh.
    pub(crate) fn open(&self, ino: u64) -> bool {
        let mut st = self.state.lock();
        let n = st.opens.entry(ino).or_insert(0);
        *n += 1;
        *n > 1
    }

    /// An open of `ino` began to close: its first `FLUSH`, which `close(2)`
    /// waits for (its `RELEASE` may come after the next open), or its
    /// `RELEASE` if no flush came.  Called once per open.
    pub(crate) fn closing(&self, ino: u64) {
        let mut st = self.state.lock();
        if let Some(n) = st.opens.get_mut(&ino) {
            *n -= 1;
            if *n == 0 {
                st.opens.remove(&ino);
            }
        }
    }

    /// The node behind an inode number this cache handed out, if it is one
    /// of its aliases (`None` for any other number).
    pub(crate) fn alias(&self, ino: u64) -> Option<Option<NodeId>> {
        if ino & ALIAS == 0 {
            return None;
        }
        Some(self.state.lock().live.get(&ino).map(|l| l.node))
    }

    /// The kernel dropped `nlookup` lookups of `ino`.
    pub(crate) fn forget(&self, ino: u64, nlookup: u64) {
        let mut st = self.state.lock();
        if let Some(live) = st.live.get_mut(&ino) {
            live.lookups = live.lookups.saturating_sub(nlookup);
            if live.lookups == 0 {
                st.live.remove(&ino);
            }
        }
    }

    /// A write-back past `end` was refused: the kernel's `i_size` of the
    /// inode that wrote it grew beyond the file, and nothing lowers it.  New
    /// lookups get a new inode of the right size; the old ones are retired
    /// ([`Self::retired`]), and their pages past the end, which hold bytes
    /// that were never written, are dropped.  Called from a serving thread
    /// in the middle of the refused write-back, so the invalidation goes to
    /// a thread of its own: it waits for that write-back to end, which
    /// needs our reply first.  One thread at a time, however many
    /// write-backs are refused meanwhile (a `dd` with no count sends one
    /// per megabyte past the end, thousands while the first waits).
    /// True if it retired an inode not retired before.
    pub(crate) fn retire(&self, node: NodeId, end: u64) -> bool {
        let mut first = false;
        let inos = {
            let mut st = self.state.lock();
            if let Some(cur) = st.current.get_mut(&node) {
                cur.1 = None;
            }
            let inos: Vec<u64> = st
                .live
                .iter()
                .filter(|(_, l)| l.node == node)
                .map(|(&ino, _)| ino)
                .collect();
            for ino in &inos {
                if let Some(l) = st.live.get_mut(ino) {
                    first |= l.size.take().is_some();
                }
            }
            inos
        };
        let Some(notifier) = self.notifier.get().cloned() else {
            return first;
        };
        let offset = i64::try_from(end).unwrap_or(i64::MAX);
        let start = {
            let mut q = self.past_end.lock();
            for ino in inos {
                let from = q.pending.entry(ino).or_insert(offset);
                *from = (*from).min(offset);
            }
            !std::mem::replace(&mut q.running, true)
        };
        if !start {
            return first;
        }
        let queue = Arc::clone(&self.past_end);
        let spawned = std::thread::Builder::new()
            .name("sysfs-like-inval".to_owned())
            .spawn(move || drop_past_end(&queue, &notifier));
        if let Err(e) = spawned {
            // The pages stay; the next refusal tries again.
            self.past_end.lock().running = false;
            warn!("no thread to drop the pages past the end: {e}");
        }
        first
    }

    /// Whether `ino` is an inode whose size a refused write-back past the
    /// end raised ([`Self::retire`]).  A write through it is refused at
    /// once from then on, as a block device refuses a write at its end:
    /// the kernel asks for the inode's attributes (`GETATTR` with the
    /// file handle) before each buffered write once they are invalidated,
    /// and an error there is the write's.  Without it a writer that goes
    /// until the device is full (`dd` with no count) would never stop.
    pub(crate) fn retired(&self, ino: u64) -> bool {
        self.state
            .lock()
            .live
            .get(&ino)
            .is_some_and(|l| l.size.is_none())
    }

    /// Drop the kernel's cached pages of `node` in `offset..offset + len`
    /// (`len` 0: to the end), from every inode it may hold for it.  Dirty
    /// pages in the range are written back first, which needs a serving
    /// thread: never call this from one.
    pub(crate) fn invalidate(&self, node: NodeId, offset: u64, len: u64) {
        let Some(notifier) = self.notifier.get() else {
            return;
        };
        let inos: Vec<u64> = {
            let st = self.state.lock();
            st.live
                .iter()
                .filter(|(_, l)| l.node == node)
                .map(|(&ino, _)| ino)
                .collect()
        };
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let len = i64::try_from(len).unwrap_or(0);
        for ino in inos {
            if let Err(e) = notifier.inval_inode(INodeNo(ino), offset, len) {
                debug!("notify_inval_inode({ino:#x}, {offset}, {len}): {e}");
            }
        }
    }
}
