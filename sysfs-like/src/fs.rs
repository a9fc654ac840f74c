//! The FUSE adapter: turns kernel requests into tree operations.
//!
//! Every method works out a `Result` and replies exactly once at its end.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, CopyFileRangeFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    PollEvents, PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen,
    ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use log::{debug, error, warn};
use parking_lot::{Mutex, RwLock};

use crate::attr::store_bytes;
use crate::readers::SpareReaders;
use crate::tree::{DirEntry, NodeShared, NodeType, Target};
use crate::{ATTR_SIZE, Attribute, BinFile, Errno, NodeId, Tree};

/// Nothing is cached: sizes, contents and names all change under the kernel.
const TTL: Duration = Duration::ZERO;
/// How long the kernel may keep the attributes of a file served from the
/// page cache without asking again.  With a TTL of zero it asks before
/// every buffered write (for the size and mode), a round trip each; the
/// size it keeps itself under a writeback cache, and a getattr is where a
/// grown size reaches the inodes of descriptors held open (`cache.rs`),
/// so a second.
const CACHED_ATTR_TTL: Duration = Duration::from_secs(1);
/// `st_blksize` of every node, as sysfs reports.
const BLKSIZE: u32 = 4096;

/// What poll reports for every open file: the kernel's `DEFAULT_POLLMASK`.
fn default_pollmask() -> PollEvents {
    PollEvents::POLLIN | PollEvents::POLLOUT | PollEvents::POLLRDNORM | PollEvents::POLLWRNORM
}

/// A FUSE errno from ours (both positive by construction).
fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw())
}

fn node_id(ino: INodeNo) -> Result<NodeId, Errno> {
    NodeId::from_ino(ino.0).ok_or(Errno::ENOENT)
}

fn file_type(kind: NodeType) -> FileType {
    match kind {
        NodeType::Dir => FileType::Directory,
        NodeType::Attr | NodeType::Bin => FileType::RegularFile,
        NodeType::Symlink => FileType::Symlink,
    }
}

fn wants_write(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_RDONLY
}

fn wants_read(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_WRONLY
}

/// kernfs' extra open check, which binds root too: no reading a file without
/// read bits, no writing one without write bits.
fn check_open_mode(mode: u16, flags: OpenFlags) -> Result<(), Errno> {
    if (wants_read(flags) && mode & 0o444 == 0) || (wants_write(flags) && mode & 0o222 == 0) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// An open attribute.
struct AttrHandle {
    attr: Arc<dyn Attribute>,
    shared: Arc<NodeShared>,
    state: Mutex<AttrState>,
}

struct AttrState {
    /// The `show()` this file reads from; `None` if not opened for reading.
    snapshot: Option<Result<String, Errno>>,
    /// The node's event counter just before the snapshot was taken.
    snapshot_event: u64,
    /// The event counter of the snapshot last read; 0 before the first read.
    seen_event: u64,
    /// Whether a read has been served from the current snapshot.
    consumed: bool,
    /// The kernel poll handle of this file, once it has polled.
    poll_kh: Option<u64>,
}

impl AttrHandle {
    fn open(attr: Arc<dyn Attribute>, shared: Arc<NodeShared>, readable: bool) -> Self {
        let mut state = AttrState {
            snapshot: None,
            snapshot_event: 0,
            seen_event: 0,
            consumed: false,
            poll_kh: None,
        };
        if readable {
            // Read the counter first: a notify racing with show() then makes
            // a spurious wake-up, never a lost one.
            state.snapshot_event = shared.event();
            state.snapshot = Some(attr.show());
        }
        AttrHandle {
            attr,
            shared,
            state: Mutex::new(state),
        }
    }

    fn read(&self, offset: u64, size: u32, reply: ReplyData) {
        let mut st = self.state.lock();
        if st.snapshot.is_none() {
            drop(st);
            warn!("read on an attribute not opened for reading");
            return reply.error(fuser::Errno::EBADF);
        }
        // seq_file semantics: reading from the start again regenerates the
        // content. A removed node keeps serving what it had.
        if offset == 0 && st.consumed && !self.shared.removed() {
            st.snapshot_event = self.shared.event();
            st.snapshot = Some(self.attr.show());
        }
        st.consumed = true;
        st.seen_event = st.snapshot_event;
        match &st.snapshot {
            Some(Ok(text)) => {
                let bytes = text.as_bytes();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Some(Err(e)) => reply.error(errno(*e)),
            None => reply.error(fuser::Errno::EBADF),
        }
    }

    fn write(&self, data: &[u8]) -> Result<u32, Errno> {
        if self.shared.removed() {
            return Err(Errno::ENODEV);
        }
        store_bytes(&*self.attr, data)?;
        // At most ATTR_SIZE bytes got here.
        Ok(data.len() as u32)
    }
}

/// An open binary file.
struct BinHandle {
    file: Arc<dyn BinFile>,
    shared: Arc<NodeShared>,
    node: NodeId,
    /// The event counter at open or at the last read.
    seen_event: AtomicU64,
    poll_kh: Mutex<Option<u64>>,
    /// The inode number of a buffered open, counted by the page cache
    /// bookkeeping until it begins to close (`closed`).
    cache_ino: Option<u64>,
    closed: AtomicBool,
}

thread_local! {
    /// Each serving thread's buffer for binary file reads, kept between
    /// requests so a read costs no allocation.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl BinHandle {
    /// This open began to close (its first flush, or its release): it no
    /// longer keeps the inode's cache for the next open.
    fn closing(&self, cache: Option<&Arc<crate::cache::KernelCache>>) {
        if let (Some(cache), Some(ino)) = (cache, self.cache_ino) {
            if !self.closed.swap(true, Ordering::AcqRel) {
                cache.closing(ino);
            }
        }
    }

    fn live(&self) -> Result<&dyn BinFile, Errno> {
        if self.shared.removed() {
            return Err(Errno::ENODEV);
        }
        Ok(&*self.file)
    }

    fn read(&self, offset: u64, size: u32, reply: ReplyData) {
        let file = match self.live() {
            Ok(f) => f,
            Err(e) => return reply.error(errno(e)),
        };
        self.seen_event
            .store(self.shared.event(), Ordering::Relaxed);
        let mut len = size as usize;
        let end = file.size();
        if end != 0 {
            if offset >= end {
                return reply.data(&[]);
            }
            len = len.min(usize::try_from(end - offset).unwrap_or(usize::MAX));
        }
        READ_BUF.with_borrow_mut(|buf| {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            match file.read_at(&mut buf[..len], offset) {
                Ok(n) if n <= len => reply.data(&buf[..n]),
                Ok(n) => {
                    warn!("read_at returned {n} for a {len}-byte buffer");
                    reply.error(fuser::Errno::EIO);
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    /// `from_cache`: a write-back of the page cache, whose pages past the
    /// end must not be taken in part: the part within is written, and the
    /// write-back fails all the same, so that `fsync` reports it.
    /// A write of `data` at `offset`: `from_cache`, a write-back of the
    /// kernel's page cache; `dsync`, a write through a descriptor with
    /// `O_DSYNC` (or `O_SYNC`), durable before it returns.
    fn write(&self, offset: u64, data: &[u8], from_cache: bool, dsync: bool) -> Result<u32, Errno> {
        let file = self.live()?;
        let mut data = data;
        let end = file.size();
        let mut past_end = false;
        if end != 0 {
            if offset >= end {
                return Err(file.write_past_end_errno());
            }
            let room = usize::try_from(end - offset).unwrap_or(usize::MAX);
            past_end = data.len() > room;
            data = &data[..data.len().min(room)];
        }
        let n = file.write_at(data, offset)?;
        // A block device makes such a write durable (a FUA write, or a
        // flush after it); the kernel sends no fsync after a write of a
        // direct-I/O open, so it is done here.  Written back, the flag
        // is the kernel's to act on (it sends FUSE_FSYNC).
        if dsync && !from_cache && n > 0 {
            file.fsync(true)?;
        }
        if from_cache && past_end {
            return Err(file.write_past_end_errno());
        }
        if n > data.len() {
            warn!("write_at returned {n} for {} bytes", data.len());
            return Err(Errno::EIO);
        }
        u32::try_from(n).map_err(|_| Errno::EIO)
    }
}

/// An open directory: a listing taken at opendir (and again on a read from
/// offset 0 after an earlier read, as after `rewinddir`), so that offsets
/// stay meaningful while the tree changes.
struct DirHandle {
    dir: NodeId,
    state: Mutex<DirState>,
}

struct DirState {
    entries: Arc<Vec<DirEntry>>,
    consumed: bool,
}

enum Handle {
    Attr(AttrHandle),
    Bin(BinHandle),
    Dir(DirHandle),
}

/// Open files, by FUSE file handle: `generation << 32 | slot`.
#[derive(Default)]
struct Handles {
    inner: RwLock<HandleSlab>,
}

#[derive(Default)]
struct HandleSlab {
    slots: Vec<(u32, Option<Arc<Handle>>)>,
    free: Vec<u32>,
}

impl Handles {
    fn insert(&self, handle: Handle) -> Result<FileHandle, Errno> {
        let handle = Some(Arc::new(handle));
        let mut slab = self.inner.write();
        if let Some(index) = slab.free.pop() {
            if let Some(slot) = slab.slots.get_mut(index as usize) {
                slot.1 = handle;
                return Ok(FileHandle((u64::from(slot.0) << 32) | u64::from(index)));
            }
        }
        let index = u32::try_from(slab.slots.len()).map_err(|_| Errno::ENFILE)?;
        slab.slots.push((0, handle));
        Ok(FileHandle(u64::from(index)))
    }

    fn split(fh: FileHandle) -> (usize, u32) {
        ((fh.0 & 0xffff_ffff) as usize, (fh.0 >> 32) as u32)
    }

    fn get(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        let (index, generation) = Self::split(fh);
        match self.inner.read().slots.get(index) {
            Some((g, Some(h))) if *g == generation => Ok(h.clone()),
            _ => {
                warn!("unknown file handle {:#x}", fh.0);
                Err(Errno::EBADF)
            }
        }
    }

    fn remove(&self, fh: FileHandle) -> Option<Arc<Handle>> {
        let (index, generation) = Self::split(fh);
        let mut slab = self.inner.write();
        let slot = slab.slots.get_mut(index)?;
        if slot.0 != generation {
            return None;
        }
        let handle = slot.1.take()?;
        slot.0 = slot.0.wrapping_add(1);
        slab.free.push(index as u32);
        Some(handle)
    }
}

/// The FUSE filesystem serving a [`Tree`].
pub(crate) struct SysFs {
    tree: Arc<Tree>,
    handles: Handles,
    max_request: u32,
    max_background: u16,
    /// Parks the serving threads not needed on the device.
    readers: SpareReaders,
    /// Whether the kernel passes `O_TRUNC` to open instead of sending a
    /// truncating setattr afterwards.
    atomic_o_trunc: bool,
}

impl SysFs {
    pub(crate) fn new(
        tree: Arc<Tree>,
        threads: usize,
        max_request: u32,
        max_background: u16,
    ) -> Self {
        SysFs {
            readers: SpareReaders::new(threads),
            tree,
            handles: Handles::default(),
            max_request,
            max_background: max_background.max(1),
            atomic_o_trunc: false,
        }
    }

    /// The node behind an inode number: its own, or one the page cache
    /// bookkeeping handed out for it.
    fn node(&self, ino: INodeNo) -> Result<NodeId, Errno> {
        if let Some(alias) = self.tree.cache().and_then(|c| c.alias(ino.0)) {
            return alias.ok_or(Errno::ENOENT);
        }
        node_id(ino)
    }

    /// The page cache bookkeeping, if `file` is served from it.
    fn cached(&self, file: &dyn BinFile) -> Option<&Arc<crate::cache::KernelCache>> {
        self.tree.cache().filter(|_| file.page_cache())
    }

    /// How long the kernel may keep a binary file's attributes.
    fn bin_ttl(&self, file: &dyn BinFile) -> Duration {
        if self.cached(file).is_some() {
            CACHED_ATTR_TTL
        } else {
            TTL
        }
    }

    /// A node's attributes as `getattr` (and `setattr`) reply them for
    /// inode `ino`, with how long the kernel may keep them.
    fn attr_of(&self, ino: INodeNo) -> Result<(FileAttr, Duration), Errno> {
        let id = self.node(ino)?;
        let mut attr = self.attr(id)?;
        attr.ino = ino;
        let mut ttl = TTL;
        // Under a writeback cache the kernel keeps its own size of every
        // regular file (see cache.rs); attributes keep 4096 for good.
        if let (Some(file), Some(cache)) = (self.tree.info(id)?.bin, self.tree.cache()) {
            cache.getattr(id, &*file, attr.size);
            ttl = self.bin_ttl(&*file);
        }
        Ok((attr, ttl))
    }

    fn attr(&self, id: NodeId) -> Result<FileAttr, Errno> {
        let info = self.tree.info(id)?;
        let size = match (&info.bin, info.kind) {
            (Some(file), _) => file.size(),
            (None, NodeType::Attr) => ATTR_SIZE,
            (None, _) => 0,
        };
        let (uid, gid) = self.tree.owner();
        Ok(FileAttr {
            ino: INodeNo(id.ino()),
            size,
            blocks: 0,
            atime: info.time,
            mtime: info.time,
            ctime: info.time,
            crtime: info.time,
            kind: file_type(info.kind),
            perm: info.perm,
            nlink: info.nlink,
            uid,
            gid,
            rdev: 0,
            blksize: BLKSIZE,
            flags: 0,
        })
    }

    /// The child's attributes, and how long the kernel may keep them.
    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> Result<(FileAttr, Duration), Errno> {
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        let child = self.tree.child(node_id(parent)?, name)?;
        let mut attr = self.attr(child)?;
        if let (Some(file), Some(cache)) = (self.tree.info(child)?.bin, self.tree.cache()) {
            attr.ino = INodeNo(cache.lookup(child, &*file, attr.size));
            return Ok((attr, self.bin_ttl(&*file)));
        }
        Ok((attr, TTL))
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        fh: Option<FileHandle>,
    ) -> Result<(FileAttr, Duration), Errno> {
        let id = self.node(ino)?;
        let current = self.attr(id)?;
        // Modes and owners are fixed by whoever built the tree: a mode says
        // which of show/store an attribute has, and the owner is who may
        // write. So only "changes" to the current values are accepted.
        if mode.is_some_and(|m| (m & 0o7777) as u16 != current.perm)
            || uid.is_some_and(|u| u != current.uid)
            || gid.is_some_and(|g| g != current.gid)
        {
            return Err(Errno::EPERM);
        }
        if let Some(size) = size {
            match self.tree.target(id)? {
                // Like sysfs: truncating an attribute is accepted and ignored
                // (`echo x > attr` opens with O_TRUNC).
                Target::Attr { .. } => {}
                Target::Bin { file, .. } => {
                    // Without atomic O_TRUNC an O_TRUNC open arrives as a
                    // size-0 setattr without a file handle; let it pass.
                    let o_trunc = !self.atomic_o_trunc && size == 0 && fh.is_none();
                    if size != file.size() && !o_trunc {
                        return Err(file.resize_errno());
                    }
                }
                Target::Dir => return Err(Errno::EISDIR),
                Target::Symlink => return Err(Errno::EINVAL),
            }
        }
        // Timestamps: accepted, not kept (sysfs keeps them, nothing reads them).
        self.attr_of(ino)
    }

    fn do_open(&self, ino: INodeNo, flags: OpenFlags) -> Result<(FileHandle, FopenFlags), Errno> {
        let id = self.node(ino)?;
        match self.tree.target(id)? {
            Target::Attr { mode, attr, shared } => {
                check_open_mode(mode, flags)?;
                let handle = AttrHandle::open(attr, shared, wants_read(flags));
                let fh = self.handles.insert(Handle::Attr(handle))?;
                Ok((fh, FopenFlags::FOPEN_DIRECT_IO))
            }
            Target::Bin { mode, file, shared } => {
                check_open_mode(mode, flags)?;
                file.open(wants_write(flags))?;
                // Through the page cache: buffered opens of a file that asks
                // for it, while it has a size (nothing to cache at 0, and a
                // write then fails at once, as without a cache).  O_DIRECT
                // opens are served per request, with parallel direct
                // writes; the kernel drops the cached pages a direct write
                // covers.  A buffered open keeps what the inode cached
                // while another one holds it open (FOPEN_KEEP_CACHE); the
                // first drops it, so that nothing cached before the file's
                // provider changed it behind the kernel with nothing open
                // (an array stopped and run again) is served.
                let cache = self
                    .cached(&*file)
                    .filter(|_| flags.0 & libc::O_DIRECT == 0 && file.size() != 0);
                let (fopen, cache_ino) = match cache {
                    Some(cache) if cache.open(ino.0) => (FopenFlags::FOPEN_KEEP_CACHE, Some(ino.0)),
                    Some(_) => (FopenFlags::empty(), Some(ino.0)),
                    None if file.direct_io() => (
                        FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES,
                        None,
                    ),
                    None => (FopenFlags::empty(), None),
                };
                let opened = file.clone();
                let handle = BinHandle {
                    seen_event: AtomicU64::new(shared.event()),
                    file,
                    shared,
                    node: id,
                    poll_kh: Mutex::new(None),
                    cache_ino,
                    closed: AtomicBool::new(false),
                };
                match self.handles.insert(Handle::Bin(handle)) {
                    Ok(fh) => Ok((fh, fopen)),
                    Err(e) => {
                        // No handle, so no release will come: undo the open.
                        if let (Some(cache), Some(ino)) = (self.tree.cache(), cache_ino) {
                            cache.closing(ino);
                        }
                        opened.release();
                        Err(e)
                    }
                }
            }
            Target::Dir => Err(Errno::EISDIR),
            Target::Symlink => Err(Errno::ELOOP),
        }
    }

    fn do_poll(
        &self,
        fh: FileHandle,
        ph: PollNotifier,
        flags: PollFlags,
    ) -> Result<PollEvents, Errno> {
        let handle = self.handles.get(fh)?;
        let schedule = flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY);
        let kh = ph.handle().0;
        let notifier = schedule.then_some(ph);
        let (shared, seen) = match &*handle {
            Handle::Attr(h) => {
                let mut st = h.state.lock();
                if schedule {
                    st.poll_kh = Some(kh);
                }
                (&h.shared, st.seen_event)
            }
            Handle::Bin(h) => {
                if schedule {
                    *h.poll_kh.lock() = Some(kh);
                }
                (&h.shared, h.seen_event.load(Ordering::Relaxed))
            }
            Handle::Dir(_) => return Ok(default_pollmask()),
        };
        let current = shared.poll_register(notifier);
        let mut revents = default_pollmask();
        if current != seen || shared.removed() {
            revents |= PollEvents::POLLERR | PollEvents::POLLPRI;
        }
        Ok(revents)
    }

    /// A write-back that failed: if it reached past the end, the kernel
    /// has grown its size of the inode, which only a new inode undoes.
    fn past_end(&self, b: &BinHandle, offset: u64, len: usize) {
        let end = b.file.size();
        if end != 0 && offset.saturating_add(len as u64) > end {
            if let Some(cache) = self.cached(&*b.file) {
                debug!("write-back past the end ({end}) of {:?}", b.node);
                if cache.retire(b.node, end) {
                    let path = self.tree.path_of(b.node).unwrap_or_default();
                    warn!(
                        "{path}: a buffered write past the end ({end} bytes) was refused at \
                         write-back (ENOSPC at fsync or close); writes through the \
                         descriptors open on it now fail with ENOSPC at once"
                    );
                }
            }
        }
    }

    fn dir_snapshot(&self, dir: NodeId) -> Result<Arc<Vec<DirEntry>>, Errno> {
        Ok(Arc::new(self.tree.entries(dir)?))
    }

    /// Runs one request's work.  A panic in it (a defect below the tree)
    /// fails only that request -- its reply, dropped unsent, answers EIO --
    /// and is logged; the serving thread goes on.  Left to unwind, it would
    /// end that thread, and with the first one the session, which unmounts
    /// the tree under a daemon that still runs.  Around it the thread
    /// counts as busy, and may park after it ([`SpareReaders`]).
    fn guarded(&self, op: &str, f: impl FnOnce()) {
        self.readers.enter();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        self.readers.leave();
        if let Err(p) = r {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            error!("{op}: a panic failed the request (EIO): {what}");
        }
    }
}

impl Filesystem for SysFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let want = self.max_request.max(4096);
        let max_write = config.set_max_write(want).map_or_else(
            |nearest| {
                let _ = config.set_max_write(nearest);
                nearest
            },
            |_| want,
        );
        // Readahead only matters for binary files opened without direct I/O.
        if let Err(nearest) = config.set_max_readahead(want) {
            let _ = config.set_max_readahead(nearest);
        }
        // O_TRUNC arrives with the open instead of as a truncate afterwards,
        // so it can be ignored for binary files too (as a block device does).
        // Not under a writeback cache: there the kernel sets its own size to
        // 0 at such an open, whatever the reply; a truncating setattr it
        // takes the size of from the reply, which keeps the file's.
        self.atomic_o_trunc = self.tree.cache_wanted().is_none_or(|c| !c.write_back())
            && config
                .add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC)
                .is_ok();
        // io_submit of direct I/O returns at once and its requests are
        // served in parallel (without this, the kernel serves each one
        // synchronously, so a queue depth of 16 is one at a time), up to
        // max_background of them.
        if config.add_capabilities(InitFlags::FUSE_ASYNC_DIO).is_err() {
            debug!("kernel lacks FUSE_ASYNC_DIO");
        }
        let _ = config.set_max_background(self.max_background);
        let _ = config.set_congestion_threshold(self.max_background / 4 * 3 + 1);
        // Lookups and readdirs in one directory need not be serialized.
        if config
            .add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS)
            .is_err()
        {
            debug!("kernel lacks FUSE_PARALLEL_DIROPS");
        }
        // Buffered opens of the files that ask for it through the page
        // cache, written through or back later; the caller asked for it by
        // handing the tree its bookkeeping.
        if let Some(cache) = self.tree.cache_wanted() {
            let granted = !cache.write_back()
                || config
                    .add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE)
                    .is_ok();
            if !granted {
                warn!("kernel lacks FUSE_WRITEBACK_CACHE: every open is served per request");
            }
            cache.set_active(granted);
        }
        if !config.capabilities().contains(InitFlags::FUSE_MAX_PAGES) {
            warn!("kernel lacks FUSE_MAX_PAGES: requests are limited to 128 KiB");
        }
        debug!(
            "init: max_write {max_write}, atomic_o_trunc {}",
            self.atomic_o_trunc
        );
        Ok(())
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Some(cache) = self.tree.cache() {
            cache.forget(ino.0, nlookup);
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.guarded("lookup", || {
            debug!("lookup({:#x}, {name:?})", parent.0);
            match self.do_lookup(parent, name) {
                Ok((attr, attr_ttl)) => {
                    reply.entry_with_ttls(&attr_ttl, &TTL, &attr, Generation(attr.ino.0 >> 32));
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.guarded("getattr", || {
            debug!("getattr({:#x}, fh {fh:?})", ino.0);
            // With a file handle: the kernel's check before a buffered
            // write (or a read past its size) through a retired inode.
            if fh.is_some() && self.tree.cache().is_some_and(|c| c.retired(ino.0)) {
                debug!("getattr({:#x}): retired by a write past the end", ino.0);
                return reply.error(errno(Errno::ENOSPC));
            }
            match self.attr_of(ino) {
                Ok((attr, ttl)) => reply.attr(&ttl, &attr),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.guarded("setattr", || {
            debug!(
                "setattr({:#x}, mode {mode:?}, uid {uid:?}, gid {gid:?}, size {size:?})",
                ino.0
            );
            match self.do_setattr(ino, mode, uid, gid, size, fh) {
                Ok((attr, ttl)) => reply.attr(&ttl, &attr),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.guarded("readlink", || {
            debug!("readlink({:#x})", ino.0);
            match node_id(ino).and_then(|id| self.tree.symlink_target(id)) {
                Ok(target) => reply.data(target.as_bytes()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        debug!("mknod({:#x}, {name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        debug!("mkdir({:#x}, {name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        debug!("unlink({:#x}, {name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        debug!("rmdir({:#x}, {name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        debug!("symlink({:#x}, {link_name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        debug!("rename({:#x}, {name:?}): EPERM", parent.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        _newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        debug!("link({:#x}, {newname:?}): EPERM", ino.0);
        reply.error(fuser::Errno::EPERM);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        // sysfs directories have no ->create, for which the VFS gives EACCES.
        debug!("create({:#x}, {name:?}): EACCES", parent.0);
        reply.error(fuser::Errno::EACCES);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.guarded("open", || {
            debug!("open({:#x}, {:#o})", ino.0, flags.0);
            match self.do_open(ino, flags) {
                Ok((fh, fopen)) => reply.opened(fh, fopen),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.guarded("read", || {
            debug!("read({:#x}, {offset}, {size})", ino.0);
            match self.handles.get(fh) {
                Ok(h) => match &*h {
                    Handle::Attr(a) => a.read(offset, size, reply),
                    Handle::Bin(b) => b.read(offset, size, reply),
                    Handle::Dir(_) => reply.error(fuser::Errno::EISDIR),
                },
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.guarded("write", || {
            debug!(
                "write({:#x}, {offset}, {}, flags {flags:#x})",
                ino.0,
                data.len()
            );
            let from_cache = write_flags.contains(WriteFlags::FUSE_WRITE_CACHE);
            // O_SYNC includes O_DSYNC's bit.
            let dsync = flags.0 & libc::O_DSYNC != 0;
            let result = self.handles.get(fh).and_then(|h| match &*h {
                Handle::Attr(a) => a.write(data),
                Handle::Bin(b) => {
                    let r = b.write(offset, data, from_cache, dsync);
                    if from_cache && r.is_err() {
                        self.past_end(b, offset, data.len());
                    }
                    r
                }
                Handle::Dir(_) => Err(Errno::EISDIR),
            });
            match result {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.guarded("flush", || {
            debug!("flush({:#x})", ino.0);
            let result = self.handles.get(fh).and_then(|h| match &*h {
                Handle::Bin(b) => {
                    b.closing(self.tree.cache());
                    // A removed file has nothing left to flush; close must
                    // not fail.
                    if b.shared.removed() {
                        Ok(())
                    } else {
                        b.file.flush()
                    }
                }
                _ => Ok(()),
            });
            match result {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.guarded("release", || {
            debug!("release({:#x})", ino.0);
            match self.handles.remove(fh).as_deref() {
                Some(Handle::Attr(h)) => {
                    if let Some(kh) = h.state.lock().poll_kh {
                        h.shared.poll_unregister(kh);
                    }
                }
                Some(Handle::Bin(h)) => {
                    if let Some(kh) = *h.poll_kh.lock() {
                        h.shared.poll_unregister(kh);
                    }
                    h.closing(self.tree.cache());
                    h.file.release();
                }
                Some(Handle::Dir(_)) => {}
                None => warn!("release of unknown file handle {:#x}", fh.0),
            }
            reply.ok();
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.guarded("fsync", || {
            debug!("fsync({:#x}, datasync {datasync})", ino.0);
            let result = self.handles.get(fh).and_then(|h| match &*h {
                Handle::Bin(b) => b.live().and_then(|f| f.fsync(datasync)),
                _ => Ok(()),
            });
            match result {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.guarded("opendir", || {
            debug!("opendir({:#x})", ino.0);
            let result = node_id(ino).and_then(|dir| {
                let entries = self.dir_snapshot(dir)?;
                self.handles.insert(Handle::Dir(DirHandle {
                    dir,
                    state: Mutex::new(DirState {
                        entries,
                        consumed: false,
                    }),
                }))
            });
            match result {
                Ok(fh) => reply.opened(fh, FopenFlags::empty()),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.guarded("readdir", || {
            debug!("readdir({:#x}, {offset})", ino.0);
            let handle = match self.handles.get(fh) {
                Ok(h) => h,
                Err(e) => return reply.error(errno(e)),
            };
            let Handle::Dir(dh) = &*handle else {
                return reply.error(fuser::Errno::ENOTDIR);
            };
            let entries = {
                let mut st = dh.state.lock();
                if offset == 0 && st.consumed {
                    // rewinddir: list again (a removed directory keeps its listing).
                    if let Ok(fresh) = self.dir_snapshot(dh.dir) {
                        st.entries = fresh;
                    }
                }
                st.consumed = true;
                st.entries.clone()
            };
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            for (i, entry) in entries.iter().enumerate().skip(start) {
                let full = reply.add(
                    INodeNo(entry.id.ino()),
                    i as u64 + 1,
                    file_type(entry.kind),
                    &*entry.name,
                );
                if full {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.guarded("releasedir", || {
            debug!("releasedir({:#x})", ino.0);
            if self.handles.remove(fh).is_none() {
                warn!("releasedir of unknown file handle {:#x}", fh.0);
            }
            reply.ok();
        });
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        debug!("fsyncdir({:#x})", ino.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // What statvfs(2) says of /sys: no blocks, no inodes, 4 KiB blocks.
        reply.statfs(0, 0, 0, 0, 0, BLKSIZE, 255, BLKSIZE);
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        debug!("setxattr({:#x}, {name:?}): EOPNOTSUPP", ino.0);
        reply.error(fuser::Errno::from_i32(libc::EOPNOTSUPP));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, _size: u32, reply: ReplyXattr) {
        self.guarded("getxattr", || {
            if self.tree.cache().is_some() {
                // A buffered write asks for security.capability first (to
                // drop it), every time: ENOSYS makes the kernel stop asking for
                // the whole mount, and answer EOPNOTSUPP itself.
                debug!("getxattr({:#x}, {name:?}): ENOSYS", ino.0);
                return reply.error(fuser::Errno::ENOSYS);
            }
            debug!("getxattr({:#x}, {name:?}): ENODATA", ino.0);
            reply.error(fuser::Errno::from_i32(libc::ENODATA));
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.guarded("listxattr", || {
            debug!("listxattr({:#x})", ino.0);
            if size == 0 {
                reply.size(0);
            } else {
                reply.data(&[]);
            }
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        debug!("removexattr({:#x}, {name:?}): EOPNOTSUPP", ino.0);
        reply.error(fuser::Errno::from_i32(libc::EOPNOTSUPP));
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // Only reached without default_permissions, which mount() always sets.
        debug!("access({:#x})", ino.0);
        reply.ok();
    }

    fn getlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        reply: ReplyLock,
    ) {
        // ENOSYS makes the kernel keep POSIX locks locally, as for sysfs.
        reply.error(fuser::Errno::ENOSYS);
    }

    fn setlk(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        _start: u64,
        _end: u64,
        _typ: i32,
        _pid: u32,
        _sleep: bool,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        self.guarded("ioctl", || {
            debug!("ioctl({:#x}, {cmd:#x}): ENOTTY", ino.0);
            reply.error(fuser::Errno::from_i32(libc::ENOTTY));
        });
    }

    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        self.guarded("poll", || {
            debug!("poll({:#x}, events {events:?}, flags {flags:?})", ino.0);
            // Never ENOSYS: the kernel would stop asking for the whole mount.
            match self.do_poll(fh, ph, flags) {
                Ok(revents) => reply.poll(revents),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.guarded("fallocate", || {
            debug!("fallocate({:#x}, {offset}, {length}, {mode:#x})", ino.0);
            // Never ENOSYS: the kernel would stop asking for the whole mount.
            let result = self.handles.get(fh).and_then(|h| match &*h {
                Handle::Bin(b) => b.live().and_then(|f| f.fallocate(offset, length, mode)),
                Handle::Attr(_) => Err(Errno::EOPNOTSUPP),
                Handle::Dir(_) => Err(Errno::EISDIR),
            });
            match result {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        self.guarded("lseek", || {
            // ENOSYS: the kernel falls back to its generic lseek for good.
            reply.error(fuser::Errno::ENOSYS);
        });
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.guarded("copy_file_range", || {
            // ENOSYS: the kernel falls back to plain reads and writes for good.
            reply.error(fuser::Errno::ENOSYS);
        });
    }
}
