//! The demo tree the integration tests mount, and helpers to drive it.
//!
//! ```text
//! counter     0644  attribute: a number; stores parse it (else EINVAL), notify
//! version     0444  read-only attribute "1.2\n"
//! new_dev     0200  write-only attribute recording what it is given
//! failing     0644  attribute whose show fails with EBUSY and store with ENXIO
//! data        0644  8 MiB binary file backed by a Vec, logging every call
//! rodata      0644  binary file whose open for writing fails with EROFS
//! link     -> counter
//! sub/        0755
//! sub/up   -> ../version
//! ```

#![allow(dead_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sysfs_like::{
    Attribute, BinFile, Errno, FnAttr, Mounted, NodeId, PageCache, ServeOptions, Tree,
};

/// Size of the demo `data` file.
pub const DATA_SIZE: usize = 8 << 20;
pub const MIB: usize = 1 << 20;

/// Returns whether FUSE tests can run here. Without `/dev/fuse` they fail
/// with a clear message, unless `SYSFS_LIKE_SKIP_NO_FUSE=1` asks to skip them.
pub fn fuse_ready() -> bool {
    let skip = std::env::var("SYSFS_LIKE_SKIP_NO_FUSE").is_ok_and(|v| v == "1");
    let problem = if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is missing (load the fuse module, or give the container the device)")
    } else if !is_root() && Command::new("fusermount3").arg("-V").output().is_err() {
        Some("not running as root and fusermount3 is not installed (apt install fuse3)")
    } else {
        None
    };
    match problem {
        None => true,
        Some(why) if skip => {
            // Straight to stderr, past the test harness' capture, once.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    io::stderr(),
                    "skipping FUSE tests: {why} (SYSFS_LIKE_SKIP_NO_FUSE=1)"
                );
            });
            false
        }
        Some(why) => panic!(
            "these tests mount a FUSE filesystem, but {why}; \
             set SYSFS_LIKE_SKIP_NO_FUSE=1 to skip them instead"
        ),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn euid_egid() -> (u32, u32) {
    // SAFETY: geteuid/getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// The `counter` attribute.
#[derive(Default)]
pub struct Counter {
    pub value: AtomicU64,
    /// How many times show() ran.
    pub shows: AtomicUsize,
    /// Every value store() was given, in order.
    pub stores: Mutex<Vec<String>>,
    me: OnceLock<(Weak<Tree>, NodeId)>,
}

impl Counter {
    pub fn stores(&self) -> Vec<String> {
        self.stores.lock().unwrap().clone()
    }
    pub fn shows(&self) -> usize {
        self.shows.load(Ordering::SeqCst)
    }
    pub fn set(&self, v: u64) {
        self.value.store(v, Ordering::SeqCst);
    }
}

impl Attribute for Counter {
    fn show(&self) -> Result<String, Errno> {
        self.shows.fetch_add(1, Ordering::SeqCst);
        Ok(format!("{}\n", self.value.load(Ordering::SeqCst)))
    }

    fn store(&self, value: &str) -> Result<(), Errno> {
        self.stores.lock().unwrap().push(value.to_owned());
        let v: u64 = value.parse().map_err(|_| Errno::EINVAL)?;
        self.value.store(v, Ordering::SeqCst);
        // Notify after a successful store, as md does; calling back into
        // the tree from a store must work.
        if let Some((tree, me)) = self.me.get()
            && let Some(tree) = tree.upgrade()
        {
            tree.notify(*me);
        }
        Ok(())
    }
}

/// A binary file backed by a Vec, logging every call.
#[derive(Default)]
pub struct VecFile {
    pub data: Mutex<Vec<u8>>,
    pub read_only: bool,
    pub fail_reads: AtomicBool,
    pub reads: Mutex<Vec<(u64, usize)>>,
    pub writes: Mutex<Vec<(u64, usize)>>,
    pub fsyncs: Mutex<Vec<bool>>,
    pub flushes: AtomicUsize,
    pub opens: Mutex<Vec<bool>>,
    /// What page_cache() says (false unless a test sets it).
    pub page_cache: AtomicBool,
}

impl VecFile {
    pub fn new(size: usize, read_only: bool) -> Self {
        VecFile {
            data: Mutex::new((0..size).map(|i| (i % 251) as u8).collect()),
            read_only,
            ..Default::default()
        }
    }
    pub fn reads(&self) -> Vec<(u64, usize)> {
        self.reads.lock().unwrap().clone()
    }
    pub fn writes(&self) -> Vec<(u64, usize)> {
        self.writes.lock().unwrap().clone()
    }
    pub fn clear_logs(&self) {
        self.reads.lock().unwrap().clear();
        self.writes.lock().unwrap().clear();
        self.fsyncs.lock().unwrap().clear();
        self.opens.lock().unwrap().clear();
        self.flushes.store(0, Ordering::SeqCst);
    }
}

impl BinFile for VecFile {
    fn size(&self) -> u64 {
        self.data.lock().unwrap().len() as u64
    }

    fn open(&self, write: bool) -> Result<(), Errno> {
        self.opens.lock().unwrap().push(write);
        if write && self.read_only {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(Errno::EIO);
        }
        let data = self.data.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, src: &[u8], offset: u64) -> Result<usize, Errno> {
        self.writes.lock().unwrap().push((offset, src.len()));
        let mut data = self.data.lock().unwrap();
        let start = offset as usize;
        let end = (start + src.len()).min(data.len());
        if start >= end {
            return Err(Errno::ENOSPC);
        }
        data[start..end].copy_from_slice(&src[..end - start]);
        Ok(end - start)
    }

    fn flush(&self) -> Result<(), Errno> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        self.fsyncs.lock().unwrap().push(datasync);
        Ok(())
    }

    fn page_cache(&self) -> bool {
        self.page_cache.load(Ordering::SeqCst)
    }
}

pub struct Demo {
    pub tree: Arc<Tree>,
    pub counter: Arc<Counter>,
    pub new_dev: Arc<Mutex<Vec<String>>>,
    pub data: Arc<VecFile>,
    pub rodata: Arc<VecFile>,
    pub counter_id: NodeId,
    pub link_id: NodeId,
    pub sub_id: NodeId,
    pub data_id: NodeId,
}

impl Demo {
    pub fn new() -> Demo {
        let (uid, gid) = euid_egid();
        let tree = Tree::new(uid, gid);
        let root = tree.root();

        let counter = Arc::new(Counter::default());
        let counter_id = tree
            .add_attr(root, "counter", 0o644, counter.clone())
            .unwrap();
        counter
            .me
            .set((Arc::downgrade(&tree), counter_id))
            .ok()
            .unwrap();

        let version = FnAttr::read_only(|| Ok("1.2\n".to_owned()));
        tree.add_attr(root, "version", 0o444, Arc::new(version))
            .unwrap();

        let new_dev = Arc::new(Mutex::new(Vec::new()));
        let log = new_dev.clone();
        let wo = FnAttr::write_only(move |v: &str| {
            log.lock().unwrap().push(v.to_owned());
            Ok(())
        });
        tree.add_attr(root, "new_dev", 0o200, Arc::new(wo)).unwrap();

        let failing = FnAttr::new(|| Err(Errno::EBUSY), |_: &str| Err(Errno::ENXIO));
        tree.add_attr(root, "failing", 0o644, Arc::new(failing))
            .unwrap();

        let data = Arc::new(VecFile::new(DATA_SIZE, false));
        let data_id = tree.add_bin(root, "data", 0o644, data.clone()).unwrap();
        let rodata = Arc::new(VecFile::new(4096, true));
        tree.add_bin(root, "rodata", 0o644, rodata.clone()).unwrap();

        let link_id = tree.add_symlink(root, "link", "counter").unwrap();
        let sub_id = tree.add_dir(root, "sub", 0o755).unwrap();
        tree.add_symlink(sub_id, "up", "../version").unwrap();

        Demo {
            tree,
            counter,
            new_dev,
            data,
            rodata,
            counter_id,
            link_id,
            sub_id,
            data_id,
        }
    }
}

/// The demo tree mounted in a fresh directory. Dropping it (also while
/// unwinding from a failed assertion) unmounts, then removes the directory.
pub struct Fixture {
    pub demo: Demo,
    pub mnt: PathBuf,
    mounted: Option<Mounted>,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Mounts the demo tree, or returns None if FUSE tests are skipped.
    pub fn new() -> Option<Fixture> {
        Self::with_options(&ServeOptions::default())
    }

    pub fn with_options(opts: &ServeOptions) -> Option<Fixture> {
        if !fuse_ready() {
            return None;
        }
        let demo = Demo::new();
        let dir = tempfile::tempdir().unwrap();
        // Let other users reach the mount point (the tests that use them).
        chmod(dir.path(), 0o755);
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mounted = sysfs_like::mount(demo.tree.clone(), &mnt, opts)
            .unwrap_or_else(|e| panic!("mounting on {}: {e}", mnt.display()));
        let mnt = mounted.mountpoint().to_owned();
        Some(Fixture {
            demo,
            mnt,
            mounted: Some(mounted),
            dir,
        })
    }

    /// Mounts the demo tree with a page cache of `mode`, its `data` file
    /// served through it.
    pub fn with_page_cache(mode: PageCache) -> Option<Fixture> {
        let f = Self::with_options(&ServeOptions {
            page_cache: mode,
            ..Default::default()
        })?;
        f.demo.data.page_cache.store(true, Ordering::SeqCst);
        Some(f)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// Unmounts now, returning what the session ended with.
    pub fn unmount(&mut self) -> io::Result<()> {
        match self.mounted.take() {
            Some(m) => m.unmount(),
            None => Ok(()),
        }
    }

    pub fn take_mounted(&mut self) -> Mounted {
        self.mounted.take().unwrap()
    }

    /// Runs `sh -c script` in the mount point.
    pub fn sh(&self, script: &str) -> Output {
        run_in(&self.mnt, "sh", script)
    }

    /// Runs `bash -c script` in the mount point.
    pub fn bash(&self, script: &str) -> Output {
        run_in(&self.mnt, "bash", script)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take()
            && let Err(e) = m.unmount()
        {
            eprintln!("unmounting {}: {e}", self.mnt.display());
        }
        assert!(
            std::thread::panicking() || !is_mounted(&self.mnt),
            "{} is still mounted",
            self.mnt.display()
        );
    }
}

/// Skips the test (returns) when FUSE tests are skipped.
#[macro_export]
macro_rules! fixture {
    () => {
        match common::Fixture::new() {
            Some(f) => f,
            None => return,
        }
    };
    ($opts:expr) => {
        match common::Fixture::with_options($opts) {
            Some(f) => f,
            None => return,
        }
    };
    (page_cache: $mode:expr) => {
        match common::Fixture::with_page_cache($mode) {
            Some(f) => f,
            None => return,
        }
    };
}

pub fn run_in(dir: &Path, shell: &str, script: &str) -> Output {
    Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {shell}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded and returns its stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed: {o:?}");
    stdout(&o)
}

/// The errno of a failed call.
pub fn errno_of<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("not an OS error: {e}")),
    }
}

pub fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let path = path.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*path))
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Opens with raw `open(2)` flags.
pub fn open(path: &Path, flags: i32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let acc = flags & libc::O_ACCMODE;
    std::fs::OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags(flags & !libc::O_ACCMODE)
        .open(path)
}

/// One `write(2)`.
pub fn write_once(f: &File, data: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    (&*f).write(data)
}

/// One `read(2)` of up to `n` bytes.
pub fn read_once(f: &File, n: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0; n];
    let got = (&*f).read(&mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

pub fn rewind(f: &File) {
    use std::io::{Seek, SeekFrom};
    (&*f).seek(SeekFrom::Start(0)).unwrap();
}

/// `poll(2)` on one descriptor; returns `revents`, or 0 on timeout.
pub fn poll_fd(f: &File, events: i16, timeout: Duration) -> i16 {
    let mut pfd = libc::pollfd {
        fd: f.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    assert!(n >= 0, "poll: {}", io::Error::last_os_error());
    if n == 0 { 0 } else { pfd.revents }
}

/// A zeroed, page-aligned buffer, so that a 1 MiB transfer spans exactly 256
/// pages and the kernel can send it as one request.
pub struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    pub fn new(len: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        AlignedBuf { ptr, layout }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points to `layout.size()` initialized bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}
