//! One component device: an image file, a block device (loop devices
//! included) or an NBD export on another host (`nbd`), with positional
//! I/O, flush and size, plus deterministic fault injection for tests
//! (`faults`).  Knows nothing of superblocks.

mod drop_behind;
pub mod faults;
pub mod nbd;
pub mod signatures;
mod tail;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::errno::Errno;
use drop_behind::{DropBehind, Stream};

pub use faults::{FaultOp, FaultPlan, IoEvent, IoObserver};
pub use nbd::NbdClient;

/// What kind of thing a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    ImageFile,
    BlockDevice {
        major: u32,
        minor: u32,
    },
    /// An NBD export (`nbd://...`, `nbd+unix://...`).
    Nbd,
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: No such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: is a directory")]
    IsDirectory { path: PathBuf },
    #[error("{path}: not a regular file or block device")]
    NotABlockDevice { path: PathBuf },
    #[error("no block device with number {major}:{minor}")]
    NoSuchDevNum { major: u32, minor: u32 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{uri}: {msg}")]
    BadUri { uri: String, msg: String },
    /// An NBD server that answered but cannot serve as a member.
    #[error("{uri}: {source}")]
    Nbd { uri: String, source: io::Error },
}

impl DiskError {
    /// The errno a control file reports for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            DiskError::NotFound { .. } => Errno::ENOENT,
            // blkdev_get_by_dev of a number nothing answers to.
            DiskError::NoSuchDevNum { .. } => Errno::ENXIO,
            DiskError::IsDirectory { .. } => Errno::EISDIR,
            DiskError::NotABlockDevice { .. } => Errno::ENOTBLK,
            DiskError::Io { source, .. } => Errno::from_io(source),
            DiskError::BadUri { .. } => Errno::EINVAL,
            DiskError::Nbd { source, .. } => match source.raw_os_error() {
                Some(_) => Errno::from_io(source),
                None => Errno::from_raw(nbd::errno_of(source)).unwrap_or(Errno::EIO),
            },
        }
    }
}

/// What the bytes of a component are reached through.
#[derive(Debug)]
enum Backend {
    File(File),
    Nbd(NbdClient),
}

/// An open component.
#[derive(Debug)]
pub struct Disk {
    /// The image file or device node, or the NBD URI.
    path: PathBuf,
    backend: Backend,
    kind: DiskKind,
    size: u64,
    writable: bool,
    faults: FaultPlan,
    stats: IoStats,
    /// Started at the first large write; `None` if its thread could not
    /// be started (the pages then stay cached).
    drop_behind: OnceLock<Option<DropBehind>>,
    /// The writes in order that are joined for drop-behind.
    stream: Stream,
    /// Set once the component was found smaller than when it was opened
    /// (an image file truncated, a block device resized): its blocks past
    /// the new end are gone, so every later transfer fails, as on a
    /// pulled disk, rather than reading holes as zeros or extending the
    /// file with new ones.
    shrunk: AtomicBool,
    /// Said once: the last page's writes could not be mapped (`tail.rs`).
    tail_fallback: AtomicBool,
    /// Where the last read ended, and how far readahead was started for
    /// the stream it continues (`read_ahead`).
    next_read: AtomicU64,
    ra_end: AtomicU64,
    /// Whether anything written since the last flush needs one.
    unflushed: Unflushed,
}

/// Writes (and discards) finished so far, and how many of them the last
/// flush that succeeded had seen finish before it began: when the two
/// are equal, nothing written since needs a flush.
#[derive(Debug)]
struct Unflushed {
    done: AtomicU64,
    flushed: AtomicU64,
}

impl Unflushed {
    /// One write counted before the open: the first flush is always
    /// made (for what an earlier process or descriptor wrote).
    fn new() -> Self {
        Unflushed {
            done: AtomicU64::new(1),
            flushed: AtomicU64::new(0),
        }
    }

    /// A write finished.
    fn wrote(&self) {
        self.done.fetch_add(1, Ordering::AcqRel);
    }

    /// The count a flush about to begin covers; writes finishing after
    /// this may be missed by it.
    fn seen(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// Whether a flush that saw `seen` has anything to make durable.
    fn needed(&self, seen: u64) -> bool {
        seen != self.flushed.load(Ordering::Acquire)
    }

    /// A flush that saw `seen` succeeded.
    fn flushed(&self, seen: u64) {
        self.flushed.fetch_max(seen, Ordering::AcqRel);
    }
}

/// How far ahead of a sequential stream of reads the member is read
/// (`read_ahead`).
const READ_AHEAD_BYTES: u64 = 4 << 20;
/// The kernel's default readahead size (`VM_READAHEAD_PAGES`, 128 KiB).
const READ_AHEAD_PIECE: u64 = 128 << 10;

/// Bytes moved through one component since it was opened.
#[derive(Debug, Default)]
pub struct IoStats {
    pub read_bytes: AtomicU64,
    pub write_bytes: AtomicU64,
    pub flushes: AtomicU64,
    pub discard_bytes: AtomicU64,
}

impl Disk {
    /// Open an image file, block device or NBD URI read-write (or
    /// read-only).
    pub fn open(path: &Path, writable: bool) -> Result<Disk, DiskError> {
        if let Some(uri) = path.to_str().filter(|s| nbd::is_uri(s)) {
            return Self::open_nbd(uri, writable);
        }
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DiskError::NotFound {
                path: path.to_owned(),
            },
            _ => DiskError::Io {
                path: path.to_owned(),
                source: e,
            },
        })?;
        let ft = meta.file_type();
        if ft.is_dir() {
            return Err(DiskError::IsDirectory {
                path: path.to_owned(),
            });
        }
        let kind = if ft.is_block_device() {
            let rdev = meta.rdev();
            DiskKind::BlockDevice {
                major: libc::major(rdev),
                minor: libc::minor(rdev),
            }
        } else if ft.is_file() {
            DiskKind::ImageFile
        } else {
            return Err(DiskError::NotABlockDevice {
                path: path.to_owned(),
            });
        };
        let mut opts = OpenOptions::new();
        opts.read(true).write(writable);
        if kind != DiskKind::ImageFile {
            // Like the kernel's claim on a member: no one else may mount or
            // bind it while we hold it.
            opts.custom_flags(libc::O_EXCL);
        }
        let file = opts.open(path).map_err(|e| DiskError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        // md's members never read ahead: readahead happens above, in the
        // array's own page cache (md0/data's), and a member read is
        // exactly what the array asked for.  Without this, each 4 KiB
        // random read through the array would pull up to the member's
        // readahead window (128 KiB) from the disk.
        {
            use std::os::fd::AsRawFd;
            // SAFETY: advice on a descriptor we own; it touches no memory.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
            if rc != 0 {
                log::debug!("{}: posix_fadvise(RANDOM): errno {rc}", path.display());
            }
        }
        let size = match kind {
            DiskKind::ImageFile => meta.len(),
            DiskKind::BlockDevice { .. } | DiskKind::Nbd => {
                block_device_size(&file).map_err(|e| DiskError::Io {
                    path: path.to_owned(),
                    source: e,
                })?
            }
        };
        Ok(Disk {
            path: path.to_owned(),
            backend: Backend::File(file),
            kind,
            size,
            writable,
            faults: FaultPlan::default(),
            stats: IoStats::default(),
            drop_behind: OnceLock::new(),
            stream: Stream::default(),
            shrunk: AtomicBool::new(false),
            tail_fallback: AtomicBool::new(false),
            next_read: AtomicU64::new(u64::MAX),
            unflushed: Unflushed::new(),
            ra_end: AtomicU64::new(0),
        })
    }

    /// Connect to an NBD export.
    fn open_nbd(uri: &str, writable: bool) -> Result<Disk, DiskError> {
        Self::open_nbd_timeout(uri, writable, nbd::DEFAULT_TIMEOUT_MS)
    }

    /// Connect to an NBD export, each request (the handshake included)
    /// with a deadline of `timeout_ms`.
    pub fn open_nbd_timeout(uri: &str, writable: bool, timeout_ms: u64) -> Result<Disk, DiskError> {
        let parsed = nbd::NbdUri::parse(uri).map_err(|msg| DiskError::BadUri {
            uri: uri.to_owned(),
            msg,
        })?;
        let client =
            NbdClient::connect_timeout(&parsed, writable, timeout_ms).map_err(|e| {
                match e.raw_os_error() {
                    Some(_) => DiskError::Io {
                        path: PathBuf::from(uri),
                        source: e,
                    },
                    None => DiskError::Nbd {
                        uri: uri.to_owned(),
                        source: e,
                    },
                }
            })?;
        let size = client.size();
        Ok(Disk {
            path: PathBuf::from(uri),
            backend: Backend::Nbd(client),
            kind: DiskKind::Nbd,
            size,
            writable,
            faults: FaultPlan::default(),
            stats: IoStats::default(),
            drop_behind: OnceLock::new(),
            stream: Stream::default(),
            shrunk: AtomicBool::new(false),
            tail_fallback: AtomicBool::new(false),
            next_read: AtomicU64::new(u64::MAX),
            unflushed: Unflushed::new(),
            ra_end: AtomicU64::new(0),
        })
    }

    /// The NBD client of a member on an NBD export.
    pub fn nbd(&self) -> Option<&NbdClient> {
        match &self.backend {
            Backend::Nbd(c) => Some(c),
            Backend::File(_) => None,
        }
    }

    /// The open file of an image file or block device.
    fn file(&self) -> Option<&File> {
        match &self.backend {
            Backend::File(f) => Some(f),
            Backend::Nbd(_) => None,
        }
    }

    /// Resolve the kernel's `major:minor` of a block device to its /dev node.
    pub fn path_for_devnum(major: u32, minor: u32) -> Result<PathBuf, DiskError> {
        let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
            .map_err(|_| DiskError::NoSuchDevNum { major, minor })?;
        let name = uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .ok_or(DiskError::NoSuchDevNum { major, minor })?;
        Ok(Path::new("/dev").join(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> DiskKind {
        self.kind
    }

    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The name the kernel would give this device: `loop0` for a block
    /// device, the file name for an image file; for an NBD export its
    /// name (`/` as `!`, as the kernel writes block device names holding
    /// one), or `nbd` for the default export.
    pub fn kernel_name(&self) -> String {
        if let Some(c) = self.nbd() {
            let e = c.uri().export.replace('/', "!");
            return if e.is_empty() { "nbd".to_owned() } else { e };
        }
        if let DiskKind::BlockDevice { major, minor } = self.kind {
            if let Ok(p) = Self::path_for_devnum(major, minor) {
                if let Some(n) = p.file_name() {
                    return n.to_string_lossy().into_owned();
                }
            }
        }
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Identity of the underlying storage, to tell "the same device twice"
    /// and "two members on one physical disk" apart.
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        let file = match &self.backend {
            Backend::File(f) => f,
            Backend::Nbd(c) => {
                use std::hash::{Hash, Hasher};
                // The same export of the same server, however written.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (c.uri().server(), &c.uri().export).hash(&mut h);
                return Ok((u64::MAX - 1, h.finish()));
            }
        };
        let m = file.metadata()?;
        Ok(match self.kind {
            DiskKind::ImageFile => (m.dev(), m.ino()),
            DiskKind::BlockDevice { .. } | DiskKind::Nbd => (u64::MAX, m.rdev()),
        })
    }

    /// The device the storage lives on (for the same-physical-disk warning).
    pub fn backing_dev(&self) -> Option<u64> {
        match self.kind {
            DiskKind::ImageFile => self.file()?.metadata().ok().map(|m| m.dev()),
            DiskKind::BlockDevice { .. } | DiskKind::Nbd => None,
        }
    }

    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    pub fn sectors(&self) -> u64 {
        self.size / 512
    }

    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }

    pub fn stats(&self) -> &IoStats {
        &self.stats
    }

    /// True once the component was found smaller than when it was opened
    /// (see `shrunk`); the member must then be failed.
    pub fn shrunk(&self) -> bool {
        self.shrunk.load(Ordering::Acquire)
    }

    /// The component's size now, for files and block devices alike.
    fn current_size(&self) -> io::Result<u64> {
        match &self.backend {
            Backend::File(f) if self.kind == DiskKind::ImageFile => file_size(f),
            Backend::File(f) => block_device_size(f),
            // An export's size is fixed for the connection.
            Backend::Nbd(_) => Ok(self.size),
        }
    }

    /// Compare the component's size now with its size at open; a smaller
    /// one marks it shrunk (logged once).  False if it is shrunk.
    fn size_intact(&self) -> bool {
        if self.shrunk() {
            return false;
        }
        let now = match self.current_size() {
            Ok(n) => n,
            // Cannot even tell: leave the verdict to the transfer's own error.
            Err(_) => return true,
        };
        if now >= self.size {
            return true;
        }
        if !self.shrunk.swap(true, Ordering::AcqRel) {
            log::error!(
                "{}: shrank from {} to {} bytes under the array: its blocks past the end are gone",
                self.path.display(),
                self.size,
                now
            );
        }
        false
    }

    /// The error every transfer to a shrunk component gets.
    fn shrunk_error(&self) -> io::Error {
        io::Error::from_raw_os_error(libc::EIO)
    }

    /// Read exactly `buf.len()` bytes at `offset`.  A read past the
    /// component's end, or a short one, is an I/O error (never zeros), and
    /// one that finds the component shrunk marks it so.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let len = buf.len() as u64;
        self.faults.check(FaultOp::Read, offset, len)?;
        let r = if self.shrunk() || offset.saturating_add(len) > self.size {
            Err(self.shrunk_error())
        } else {
            match &self.backend {
                Backend::File(f) => f.read_exact_at(buf, offset),
                Backend::Nbd(c) => c.read_at(buf, offset),
            }
        };
        self.faults.completed(FaultOp::Read, offset, len, false);
        match r {
            Ok(()) => {
                self.stats.read_bytes.fetch_add(len, Ordering::Relaxed);
                self.read_ahead(offset, len);
                Ok(())
            }
            Err(e) => {
                // A short read (end of file) or a block device's error may
                // both mean the component lost its tail.
                if !self.size_intact() || e.kind() == io::ErrorKind::UnexpectedEof {
                    return Err(self.shrunk_error());
                }
                Err(e)
            }
        }
    }

    /// Member reads have no readahead of their own (`open`), which is
    /// what random reads want.  A read that continues the one before it
    /// is a stream, as a sequential read of the array or a sync makes:
    /// keep the next `READ_AHEAD_BYTES` of it coming from the disk in the
    /// background (`POSIX_FADV_WILLNEED` starts the reads and returns),
    /// a window at a time, so a stream still reads at the disk's
    /// sequential rate.  This stands in for the readahead of md's own
    /// page cache, which md0/data (opened direct-I/O) does not have.
    fn read_ahead(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let end = offset + len;
        if self.next_read.swap(end, Ordering::Relaxed) != offset {
            return;
        }
        let ra = self.ra_end.load(Ordering::Relaxed);
        if ra >= end + READ_AHEAD_BYTES / 2 && ra <= end + READ_AHEAD_BYTES {
            return;
        }
        let from = if ra > end && ra <= end + READ_AHEAD_BYTES {
            ra
        } else {
            end
        };
        let to = (end + READ_AHEAD_BYTES).min(self.size);
        if to <= from {
            return;
        }
        // An NBD member has no page cache here to read ahead into.
        let Some(file) = self.file() else {
            return;
        };
        self.ra_end.store(to, Ordering::Relaxed);
        // The kernel cuts each WILLNEED to the device's readahead size
        // (force_page_cache_ra): ask in pieces no larger.
        let mut at = from;
        while at < to {
            let piece = (to - at).min(READ_AHEAD_PIECE);
            // SAFETY: advice on a descriptor we own; it touches no memory.
            unsafe {
                libc::posix_fadvise(
                    file.as_raw_fd(),
                    at as libc::off_t,
                    piece as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                );
            }
            at += piece;
        }
    }

    /// Write all of `buf` at `offset` of the file (`durable`: just that
    /// range made durable, a FUA write).  An image file's write that ends
    /// at its end goes through `tail.rs`, so that the file cannot grow back
    /// after a cut; one that ends before could grow a cut file only to
    /// short of its size, which the check after the write sees.
    fn write_file(&self, f: &File, buf: &[u8], offset: u64, durable: bool) -> io::Result<()> {
        let write = |b: &[u8], at: u64| {
            if durable {
                write_all_dsync(f, b, at)
            } else {
                f.write_all_at(b, at)
            }
        };
        let len = buf.len() as u64;
        if self.kind == DiskKind::ImageFile && len > 0 && offset + len == self.size {
            tail::write_no_extend(f, buf, offset, durable, write, || self.note_tail_fallback())
        } else {
            write(buf, offset)
        }
    }

    /// `tail.rs` could not map the last page (a file system without
    /// mappings, a sandbox refusing `process_vm_writev`): said once.
    fn note_tail_fallback(&self) {
        if !self.tail_fallback.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{}: writes to the last page go through pwrite here (no mapping, or \
                 process_vm_writev refused): a cut racing one of them can go unnoticed",
                self.path.display()
            );
        }
    }

    /// Write all of `buf` at `offset`.  Never past the component's end:
    /// an image file is checked before (so that a truncated one is not
    /// silently extended with holes) and after (a truncation racing the
    /// write) each write, at the cost of an fstat each.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let len = buf.len() as u64;
        self.faults.check(FaultOp::Write, offset, len)?;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        self.check_before_write(offset, len)?;
        let r = match &self.backend {
            Backend::File(f) => self.write_file(f, buf, offset, false),
            Backend::Nbd(c) => c.write_at(buf, offset, false),
        };
        self.write_completed(offset, len, false);
        let r = self.check_after_write(r);
        if r.is_ok() {
            self.stats.write_bytes.fetch_add(len, Ordering::Relaxed);
            if let Some((at, n)) = self.stream.written(offset, len) {
                self.drop_behind(at, n);
            }
        }
        r
    }

    /// Refuse a write past the end or to a shrunk component.
    fn check_before_write(&self, offset: u64, len: u64) -> io::Result<()> {
        if offset.saturating_add(len) > self.size {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let intact = match self.kind {
            DiskKind::ImageFile => self.size_intact(),
            // A block device refuses writes past its end by itself, as
            // does an export.
            DiskKind::BlockDevice { .. } | DiskKind::Nbd => !self.shrunk(),
        };
        if intact {
            Ok(())
        } else {
            Err(self.shrunk_error())
        }
    }

    /// A write that went through on a component found shrunk meanwhile
    /// (or that failed on one) is an I/O error.
    fn check_after_write(&self, r: io::Result<()>) -> io::Result<()> {
        let recheck = r.is_err() || self.kind == DiskKind::ImageFile;
        if recheck && !self.size_intact() {
            return Err(self.shrunk_error());
        }
        r
    }

    /// After a large write (or writes in order that add up to one): hand
    /// it to the drop-behind thread
    /// (`drop_behind.rs` says why).
    fn drop_behind(&self, offset: u64, len: u64) {
        // An export's pages are cached on its server, not here.
        let Some(file) = self.file() else {
            return;
        };
        let behind = self.drop_behind.get_or_init(|| {
            let started = file
                .try_clone()
                .and_then(|f| DropBehind::start(f, &self.kernel_name()));
            match started {
                Ok(behind) => Some(behind),
                Err(e) => {
                    log::warn!("{}: no drop-behind thread: {e}", self.path.display());
                    None
                }
            }
        });
        if let Some(behind) = behind {
            behind.written(offset, len);
        }
    }

    /// Write all of `buf` at `offset` and make just that durable (a FUA
    /// write): `RWF_DSYNC` syncs the written range, not every dirty page
    /// of the file as a flush does.
    pub fn write_at_durable(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let len = buf.len() as u64;
        self.faults.check_io(FaultOp::Write, offset, len, true)?;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        self.check_before_write(offset, len)?;
        let file = match &self.backend {
            Backend::File(f) => f,
            Backend::Nbd(c) => {
                let r = c.write_at(buf, offset, true);
                self.write_completed(offset, len, true);
                if r.is_ok() {
                    self.stats.write_bytes.fetch_add(len, Ordering::Relaxed);
                }
                return r;
            }
        };
        let r = self.write_file(file, buf, offset, true);
        self.write_completed(offset, len, true);
        let r = self.check_after_write(r);
        if r.is_ok() {
            self.stats.write_bytes.fetch_add(len, Ordering::Relaxed);
        }
        r
    }

    /// Discard `len` bytes at `offset`: an image file gets a hole punched
    /// (reads back zeros, as a loop device's discard leaves it), a block
    /// device `BLKDISCARD` (reads back what that device returns after a
    /// discard).  Past the end or on a shrunk component it fails as a
    /// write does.
    pub fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        self.faults.check(FaultOp::Write, offset, len)?;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        self.check_before_write(offset, len)?;
        let file = match &self.backend {
            Backend::File(f) => f,
            Backend::Nbd(c) => {
                let r = c.discard(offset, len);
                self.write_completed(offset, len, false);
                if r.is_ok() {
                    self.stats.discard_bytes.fetch_add(len, Ordering::Relaxed);
                }
                return r;
            }
        };
        let fd = file.as_raw_fd();
        let (Ok(off), Ok(length)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len))
        else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let rc = match self.kind {
            // SAFETY: fallocate on a descriptor we own; KEEP_SIZE keeps the
            // file's size whatever the range.
            DiskKind::ImageFile => unsafe {
                libc::fallocate(
                    fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    off,
                    length,
                )
            },
            DiskKind::BlockDevice { .. } | DiskKind::Nbd => {
                // BLKDISCARD = _IO(0x12, 119), taking {start, length}.
                const BLKDISCARD: libc::c_ulong = 0x1277;
                let range: [u64; 2] = [offset, len];
                // SAFETY: the ioctl reads two u64 from the live array.
                unsafe { libc::ioctl(fd, BLKDISCARD, range.as_ptr()) }
            }
        };
        let r = if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        self.write_completed(offset, len, false);
        let r = self.check_after_write(r);
        if r.is_ok() {
            self.stats.discard_bytes.fetch_add(len, Ordering::Relaxed);
        }
        r
    }

    /// A write, FUA write or discard finished (well or not): the fault
    /// plan's observers hear of it, and the next flush has it to do.
    fn write_completed(&self, offset: u64, len: u64, fua: bool) {
        self.faults.completed(FaultOp::Write, offset, len, fua);
        self.unflushed.wrote();
    }

    /// Make every completed write durable.
    pub fn flush(&self) -> io::Result<()> {
        self.faults.check(FaultOp::Flush, 0, 0)?;
        // The page cache as drop-behind leaves it after every write so
        // far, not some of them.
        if let Some(Some(behind)) = self.drop_behind.get() {
            behind.drain();
        }
        // Writes finished from here on may be missed by this flush.
        let seen = self.unflushed.seen();
        // A flush is rare and dear: the place to notice a shrink that
        // no transfer has met yet.
        let r = if !self.size_intact() {
            Err(self.shrunk_error())
        } else if !self.unflushed.needed(seen) {
            // Every write so far had finished before a flush that
            // succeeded began: durable already.  (A file system on the
            // array sends a flush before and after its commit block, and
            // the device's cache flush costs the same with nothing in it.)
            Ok(())
        } else {
            let r = match &self.backend {
                Backend::File(f) => f.sync_data(),
                Backend::Nbd(c) => c.flush(),
            };
            if r.is_ok() {
                self.unflushed.flushed(seen);
            }
            r
        };
        self.faults.completed(FaultOp::Flush, 0, 0, true);
        if r.is_ok() {
            self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

/// An open file's size, and only its size.  `fstat` (and std's
/// `metadata`) asks for the times as well, which on a file system with
/// fine-grained timestamps (ext4, xfs, btrfs and tmpfs since Linux 6.13)
/// marks them seen: every write after it must then stamp a new mtime, and
/// dirties the inode (a journal update on ext4) where a write within the
/// same clock tick would have left it alone.  Checked before and after
/// every member write, that cost more than the write.
fn file_size(f: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes at most one `struct statx` into `st`, which
    // is that size; the path is an empty C string (AT_EMPTY_PATH: the
    // descriptor itself).
    let rc = unsafe {
        libc::statx(
            f.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_SIZE,
            st.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded, so it filled the struct (zeroed before).
    let st = unsafe { st.assume_init() };
    Ok(st.stx_size)
}

impl crate::format::SectorReader for Disk {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_at(buf, offset)
    }
}

fn block_device_size(file: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut size: u64 = 0;
    // BLKGETSIZE64 = _IOR(0x12, 114, size_t)
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    // SAFETY: the ioctl writes one u64 through the pointer we pass, which
    // points at a live, properly aligned u64.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// Write all of `buf` at `offset` of `file` and make just that durable (a
/// FUA write): `RWF_DSYNC` syncs the written range, not every dirty page
/// of the file as a flush does.
fn write_all_dsync(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut done = 0usize;
    loop {
        if done == buf.len() {
            break Ok(());
        }
        let rest = &buf[done..];
        let iov = libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        };
        // SAFETY: one iovec describing the live slice `rest`, which
        // the kernel only reads.
        let n = unsafe {
            libc::pwritev2(
                file.as_raw_fd(),
                &iov,
                1,
                (offset + done as u64) as libc::off_t,
                libc::RWF_DSYNC,
            )
        };
        if n > 0 {
            done += n as usize;
            continue;
        }
        let e = if n == 0 {
            io::Error::from(io::ErrorKind::WriteZero)
        } else {
            io::Error::last_os_error()
        };
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // No per-write sync here: write, then flush everything.
            Some(libc::EOPNOTSUPP | libc::ENOSYS) => {
                break file
                    .write_all_at(rest, offset + done as u64)
                    .and_then(|()| file.sync_data());
            }
            _ => break Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needed(d: &Disk) -> bool {
        d.unflushed.needed(d.unflushed.seen())
    }

    /// A 1 MiB image file in a new temporary directory (kept alive by
    /// the returned handle), opened read-write.
    fn member() -> (tempfile::TempDir, std::path::PathBuf, Disk) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("member");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let d = Disk::open(&path, true).unwrap();
        (dir, path, d)
    }

    #[test]
    fn a_flush_is_made_when_anything_was_written_since_the_last() {
        let (_dir, _path, d) = member();
        assert!(needed(&d), "the first flush after the open");
        d.flush().unwrap();
        assert!(!needed(&d), "nothing written since");
        for (i, op) in ["write", "durable write", "discard"].iter().enumerate() {
            let at = i as u64 * 4096;
            match i {
                0 => d.write_at(&[1; 512], at).unwrap(),
                1 => d.write_at_durable(&[2; 512], at).unwrap(),
                _ => d.discard(at, 4096).unwrap(),
            }
            assert!(needed(&d), "after a {op}");
            d.flush().unwrap();
            assert!(!needed(&d), "after a flush following a {op}");
        }
        // A write that finishes after a flush took its count is not
        // covered by that flush.
        let seen = d.unflushed.seen();
        d.write_at(&[3; 512], 0).unwrap();
        d.unflushed.flushed(seen);
        assert!(needed(&d), "a write the last flush did not see");
    }

    #[test]
    fn a_failed_flush_leaves_the_next_one_to_do() {
        let (_dir, path, d) = member();
        d.flush().unwrap();
        d.write_at(&[1; 512], 0).unwrap();
        // Shrunk under the array: the flush fails, and stays owed.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        assert!(d.flush().is_err());
        assert!(needed(&d));
    }

    #[test]
    fn the_size_check_sees_the_file_as_it_is_now() {
        let (_dir, path, d) = member();
        let f = d.file().unwrap();
        assert_eq!(file_size(f).unwrap(), 1 << 20);
        let other = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        other.set_len(3 << 20).unwrap();
        assert_eq!(
            file_size(f).unwrap(),
            3 << 20,
            "grown by another descriptor"
        );
        other.set_len(4096).unwrap();
        assert_eq!(
            file_size(f).unwrap(),
            4096,
            "truncated by another descriptor"
        );
        assert!(
            d.write_at(&[1; 512], 8192).is_err(),
            "a write to the lost tail"
        );
        assert!(d.shrunk());
    }
}
