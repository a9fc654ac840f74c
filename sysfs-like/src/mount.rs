//! Mounting a tree and serving it until it is unmounted.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use log::{debug, warn};
use parking_lot::Mutex;

use crate::Tree;
use crate::cache::KernelCache;
use crate::fs::SysFs;

/// How [`mount`] serves a tree.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Threads serving requests, each reading its own clone of the FUSE
    /// device. Default 4. (A slow store occupies one thread.)
    pub threads: usize,
    /// The largest read or write the kernel sends in one request, in bytes:
    /// `max_write` and `max_pages` are negotiated from it. Default 1 MiB,
    /// which is also the kernel's default `fs.fuse.max_pages_limit`; page
    /// aligned buffers up to this size arrive as one request.  A direct
    /// I/O buffer spans its size in pages and one more when it does not
    /// start a page: as root, the mount's connection is given a cap of
    /// what this size spans where `fs.fuse.max_pages_limit` is lower (the
    /// setting is raised while mounting, then put back), so that 4096
    /// bytes more than a size lets such buffers of that size arrive whole.
    pub max_request: u32,
    /// The mount's source, as `/proc/mounts` shows it. Default "sysfs-like".
    pub fsname: String,
    /// Let users other than the mounting one in (FUSE `allow_other`). The
    /// modes and the tree's owner still decide what they may do. A non-root
    /// mounter needs `user_allow_other` in `/etc/fuse.conf`. Default false.
    pub allow_other: bool,
    /// Have `fusermount3` unmount the tree when the serving process dies,
    /// however it dies. Needs `allow_other`. Default false.
    pub auto_unmount: bool,
    /// The most requests the kernel keeps in flight without a caller
    /// waiting on each: asynchronous direct I/O (`io_submit`, a loop
    /// device with `--direct-io=on`), readahead and write-back
    /// (`max_background`; the kernel's own default is 12). Default 128.
    pub max_background: u16,
    /// Whether buffered opens of binary files that ask for it
    /// ([`BinFile::page_cache`](crate::BinFile::page_cache)) are served
    /// from the kernel's page cache, and how writes reach the file then.
    /// Every other file, and every `O_DIRECT` open, is still served per
    /// request.  Default [`PageCache::Off`].
    pub page_cache: PageCache,
}

/// [`ServeOptions::page_cache`]: what the kernel caches of a binary file's
/// buffered opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageCache {
    /// Every read and write is a request (`FOPEN_DIRECT_IO`).
    #[default]
    Off,
    /// Reads are cached (with the kernel's readahead), and each `write(2)`
    /// is a request before it returns, its error the caller's, as without
    /// a cache; pages written stay cached.
    WriteThrough,
    /// Reads and writes are cached and written back later (FUSE's
    /// writeback cache): errors surface at `fsync` and `close`, and a write
    /// past the end fails only there.  Where the mounting user may (root),
    /// the mount's share of dirty pages is also lifted to a block
    /// device's: the kernel gives a FUSE mount 1% of the dirty threshold,
    /// strictly, so that writers soon wait for write-back at every page.
    WriteBack,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            threads: 4,
            max_request: 1 << 20,
            fsname: "sysfs-like".to_owned(),
            allow_other: false,
            auto_unmount: false,
            max_background: 128,
            page_cache: PageCache::Off,
        }
    }
}

/// Mounts `tree` on `mountpoint` and serves it from background threads until
/// it is unmounted.
///
/// As root the mount is made directly; otherwise fuser falls back to the
/// setuid `fusermount3`. The mount uses `default_permissions`, so the kernel
/// checks every access against the nodes' modes and the tree's owner, and
/// `nosuid,nodev,noexec`, as `/sys` does.
///
/// Returns once the kernel has initialised the connection; requests are then
/// served at once. Daemonize (fork) before calling this, never after: forking
/// does not carry the serving threads along.
pub fn mount(tree: Arc<Tree>, mountpoint: &Path, opts: &ServeOptions) -> io::Result<Mounted> {
    let mountpoint = mountpoint.canonicalize()?;
    let threads = opts.threads.max(1);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        MountOption::DefaultPermissions,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
    ];
    if opts.auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
    }
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(threads);
    config.clone_fd = threads > 1;

    let raised = allow_request_pages(opts.max_request).unwrap_or_else(|e| {
        debug!("fs.fuse.max_pages_limit stays: {e}");
        None
    });
    let cache = Arc::new(KernelCache::new(opts.page_cache == PageCache::WriteBack));
    if opts.page_cache != PageCache::Off {
        tree.set_cache(cache.clone());
    }
    let session = Session::new(
        SysFs::new(tree, threads, opts.max_request, opts.max_background),
        &mountpoint,
        &config,
    );
    // The new connection took its cap when mounted; later mounts get the
    // host's own again.
    if let Some(old) = raised {
        if let Err(e) = std::fs::write(MAX_PAGES_LIMIT, old.to_string()) {
            warn!("fs.fuse.max_pages_limit stays raised: {e}");
        }
    }
    let mut session = session?;
    cache.set_notifier(session.notifier());
    let unmounter = Unmounter {
        inner: Arc::new(UnmounterInner {
            session: Mutex::new(Some(session.unmount_callable())),
            mountpoint: mountpoint.clone(),
        }),
    };
    debug!("mounted on {}", mountpoint.display());

    let thread =
        thread::Builder::new()
            .name("sysfs-like".to_owned())
            .spawn(move || match session.run() {
                // A read the kernel had begun to fill with a request when the
                // connection was torn down (an unmount racing the last
                // requests, or an abort through fusectl) ends with
                // ECONNABORTED instead of ENODEV: the mount is gone either way.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
                    debug!("the FUSE connection ended while a request was read: {e}");
                    Ok(())
                }
                r => r,
            })?;
    // Served now: the stat of the mountpoint this takes is answered.
    if opts.page_cache != PageCache::Off {
        let kib = opts.max_request / 1024;
        if let Err(e) = widen_readahead(&mountpoint, kib) {
            debug!(
                "readahead of {} stays at the kernel's: {e}",
                mountpoint.display()
            );
        }
    }
    if opts.page_cache == PageCache::WriteBack {
        if let Err(e) = lift_dirty_limit(&mountpoint) {
            debug!("dirty pages of {} stay capped: {e}", mountpoint.display());
        }
    }
    Ok(Mounted {
        thread: Some(thread),
        unmounter,
        mountpoint,
    })
}

/// The kernel's cap on a FUSE mount's pages per request.
const MAX_PAGES_LIMIT: &str = "/proc/sys/fs/fuse/max_pages_limit";

/// Raise the kernel's cap on pages per request (`fs.fuse.max_pages_limit`,
/// which a connection takes when it is mounted) to what a request of
/// `max_request` bytes spans, if it is lower, for the mount about to be
/// made; returns the value to put back once it is.  Direct I/O pins the
/// caller's pages, and a buffer that does not start a page spans one page
/// more than its size (a 1 MiB `malloc` buffer, 16 bytes into a page,
/// spans 257), so under the kernel's default of 256 every such write came
/// in two requests.  Root only, and only on kernels that have the setting.
/// Two mounts made at the same moment may interleave: one may then mount
/// between the other's raise and put-back and keep the split (its requests
/// come in two, as before); the host's value is always what is put back.
fn allow_request_pages(max_request: u32) -> io::Result<Option<u32>> {
    let want = max_request.div_ceil(4096);
    let now: u32 = std::fs::read_to_string(MAX_PAGES_LIMIT)?
        .trim()
        .parse()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{MAX_PAGES_LIMIT}: {e}"),
            )
        })?;
    if now >= want {
        return Ok(None);
    }
    std::fs::write(MAX_PAGES_LIMIT, want.to_string())?;
    debug!("fs.fuse.max_pages_limit {now} -> {want} for this mount");
    Ok(Some(now))
}

/// The mount's backing device info (`/sys/class/bdi/MAJOR:MINOR`).
fn bdi_dir(mountpoint: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(mountpoint)?.dev();
    Ok(PathBuf::from(format!(
        "/sys/class/bdi/{}:{}",
        libc::major(dev),
        libc::minor(dev)
    )))
}

/// Readahead of `kib` for the mount, a request's worth: the kernel caps a
/// FUSE mount's at its default 128 KiB whatever the server asks at init,
/// so a sequential reader of a cached file would wait on a round trip
/// every 128 KiB.  Root only.
fn widen_readahead(mountpoint: &Path, kib: u32) -> io::Result<()> {
    let bdi = bdi_dir(mountpoint)?;
    std::fs::write(bdi.join("read_ahead_kb"), kib.to_string())?;
    debug!("{}: read_ahead_kb {kib}", bdi.display());
    Ok(())
}

/// No cap of the mount's own on dirty pages (`max_ratio` 100, no
/// `strict_limit`), as a block device has.  Root only.
fn lift_dirty_limit(mountpoint: &Path) -> io::Result<()> {
    let bdi = bdi_dir(mountpoint)?;
    std::fs::write(bdi.join("max_ratio"), "100")?;
    std::fs::write(bdi.join("strict_limit"), "0")?;
    debug!("{}: max_ratio 100, strict_limit 0", bdi.display());
    Ok(())
}

/// A mounted, served tree.
///
/// Dropping it unmounts the tree and waits for the serving threads (for a
/// busy mount, until its last open file is closed), so it also serves as a
/// guard that never leaves a mount behind.
pub struct Mounted {
    thread: Option<JoinHandle<io::Result<()>>>,
    unmounter: Unmounter,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Where the tree is mounted (canonicalized).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A handle that unmounts the tree from any thread, e.g. one waiting for
    /// SIGTERM, making [`wait`](Self::wait) return.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    /// Blocks until the tree is unmounted — by [`Unmounter::unmount`],
    /// `umount` or `fusermount3 -u` — and the serving threads have stopped.
    /// Returns the session's error, if it ended with one.
    pub fn wait(mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("FUSE serving thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Unmounts the tree and waits for the serving threads to stop. If the
    /// unmount fails, the tree stays mounted and served.
    pub fn unmount(mut self) -> io::Result<()> {
        if let Err(e) = self.unmounter.unmount() {
            // Still mounted: joining would wait forever, so let it serve on.
            self.thread.take();
            return Err(e);
        }
        self.wait()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            match self.unmounter.unmount() {
                Ok(()) => {
                    let _ = thread.join();
                }
                Err(e) => warn!("unmounting {} failed: {e}", self.mountpoint.display()),
            }
        }
    }
}

/// Unmounts a [`Mounted`] tree from any thread. Cheap to clone.
#[derive(Clone)]
pub struct Unmounter {
    inner: Arc<UnmounterInner>,
}

struct UnmounterInner {
    session: Mutex<Option<SessionUnmounter>>,
    mountpoint: PathBuf,
}

impl Unmounter {
    /// Unmounts the tree. Further calls do nothing, as does a call after the
    /// tree was unmounted from outside.
    ///
    /// If files are still open (`EBUSY`), the mount is detached lazily: it
    /// disappears from the namespace now, and serving ends once the last of
    /// them is closed.
    pub fn unmount(&self) -> io::Result<()> {
        let Some(mut session) = self.inner.session.lock().take() else {
            return Ok(());
        };
        match session.unmount() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                debug!("{} busy, detaching lazily", self.inner.mountpoint.display());
                detach(&self.inner.mountpoint)
            }
            other => other,
        }
    }
}

/// `umount -l`, or `fusermount3 -u -z` for a user that may not unmount.
fn detach(mountpoint: &Path) -> io::Result<()> {
    let path = CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    let status = Command::new("fusermount3")
        .args(["-u", "-z", "-q", "--"])
        .arg(mountpoint)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "fusermount3 -u -z failed: {status}"
        )))
    }
}
