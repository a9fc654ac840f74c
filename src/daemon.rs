//! `mdfuse mount`: serve the md tree on a mountpoint until it is unmounted
//! (`umount`, `fusermount3 -u`) or the daemon gets SIGTERM/SIGINT/SIGHUP.
//! Either way every running array is stopped cleanly first (superblocks
//! written clean), as the kernel's reboot notifier does.

use std::io::{self, BufRead, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::md::{Md, MdOptions};
use crate::sysfs::MdTree;

/// The largest request asked of the kernel: 1 MiB and one page.  A 1 MiB
/// write from a buffer that does not start a page (most `malloc` buffers
/// that large) spans 257 pages, and FUSE's direct I/O sends only as many
/// pages per request as the mount's `max_pages`: at 256 every such write
/// arrives as 1 MiB − 16 bytes and then 16 bytes, the second a round trip
/// and a one-sector read-modify-write of its own.  The kernel caps
/// `max_pages` at `fs.fuse.max_pages_limit` (256 by default), which a
/// mount as root raises to 257 for its own connection (sysfs-like's
/// `ServeOptions::max_request`); a normal user's mount keeps the split.
const MAX_REQUEST: u32 = (1 << 20) + 4096;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub mountpoint: PathBuf,
    /// Stay in the foreground (otherwise fork, and return in the parent
    /// once the mount is up).
    pub foreground: bool,
    /// FUSE serving threads.
    pub threads: usize,
    /// Let other users in (their access still follows the modes).
    pub allow_other: bool,
    /// Module parameters, `PERSONALITY.NAME=VALUE`.
    pub params: Vec<String>,
    /// Where the arrays' NBD exports listen (`None`: a directory of the
    /// daemon's own, removed at the end).
    pub nbd_dir: Option<PathBuf>,
    /// Opens of mdN/data through the page cache (`--data-cache`).
    pub page_cache: sysfs_like::PageCache,
    pub md: MdOptions,
}

/// Mount and serve.  In the background mode the parent returns `Ok` once
/// the child has mounted (or the child's error); the child serves.
pub fn run(opts: DaemonOptions) -> io::Result<()> {
    if !opts.mountpoint.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: not a directory", opts.mountpoint.display()),
        ));
    }
    let ready = if opts.foreground {
        None
    } else {
        Some(daemonize()?)
    };
    let r = serve(&opts, ready.as_ref());
    if let (Some(fd), Err(e)) = (ready, &r) {
        let mut f = std::fs::File::from(fd);
        let _ = writeln!(f, "{e}");
    }
    r
}

/// Fork: the parent waits on a pipe for "ok" or an error message from the
/// child and exits; the child gets the write end.
fn daemonize() -> io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (the mount spawns its threads
    // after this), so the child inherits a consistent process.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(rd);
            // SAFETY: plain syscalls on our own process.
            unsafe {
                libc::setsid();
            }
            redirect_stdio();
            Ok(wr)
        }
        _ => {
            drop(wr);
            // One line: "ok", or why the mount failed.  The child keeps
            // its end open while it serves, so do not wait for the end.
            let mut msg = String::new();
            io::BufReader::new(std::fs::File::from(rd)).read_line(&mut msg)?;
            if msg.trim() == "ok" {
                std::process::exit(0);
            }
            let msg = msg.trim();
            eprintln!(
                "mdfuse: mount failed: {}",
                if msg.is_empty() { "daemon exited" } else { msg }
            );
            std::process::exit(1);
        }
    }
}

fn redirect_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

fn serve(opts: &DaemonOptions, ready: Option<&OwnedFd>) -> io::Result<()> {
    // Signals go to one thread that stops the arrays and unmounts: block
    // them before any other thread starts, so every thread inherits it.
    let set = signal_set();
    // SAFETY: `set` is a valid, initialised sigset_t.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let md = Md::new(opts.md.clone());
    crate::register_personalities(&md);
    for p in &opts.params {
        md.set_param(p).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown module parameter or bad value: {p}"),
            )
        })?;
    }
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let tree = MdTree::new(md.clone(), uid, gid);
    let serve_opts = sysfs_like::ServeOptions {
        threads: opts.threads.max(1),
        fsname: "mdfuse".to_owned(),
        allow_other: opts.allow_other,
        page_cache: opts.page_cache,
        max_request: MAX_REQUEST,
        ..Default::default()
    };
    // Canonical before the mount covers it: the path members must not
    // lead into.
    let own = std::fs::canonicalize(&opts.mountpoint)?;
    let mounted = sysfs_like::mount(tree.tree.clone(), &opts.mountpoint, &serve_opts)?;
    md.add_own_dir(own);
    md.log.info(format!(
        "mdfuse: serving {}",
        mounted.mountpoint().display()
    ));
    if let Some(fd) = ready {
        let mut f = std::fs::File::from(fd.try_clone()?);
        let _ = f.write_all(b"ok\n");
    }
    // Members on NBD exports that come back are re-added.
    let readd = Arc::new(crate::nbd_readd::Watcher::start(md.clone())?);
    let readd_sig = readd.clone();
    // Each running array is served over NBD.
    let (nbd_dir, own_nbd_dir) = match &opts.nbd_dir {
        Some(d) => (std::path::absolute(d)?, false),
        None => (crate::nbd_export::default_dir(), true),
    };
    let exports = Arc::new(crate::nbd_export::Exports::start(
        md.clone(),
        nbd_dir.clone(),
        own_nbd_dir,
    )?);
    tree.set_nbd_dir(nbd_dir);
    let weak = Arc::downgrade(&exports);
    tree.set_running_hook(Box::new(move |m| {
        if let Some(e) = weak.upgrade() {
            e.running_changed(m);
        }
    }));
    let exports_sig = exports.clone();
    let unmounter = mounted.unmounter();
    let md_sig = md.clone();
    // Dirty pages (written back, or dirtied through a shared mapping)
    // reach md before the arrays stop.
    let written_back =
        (opts.page_cache != sysfs_like::PageCache::Off).then(|| mounted.mountpoint().to_path_buf());
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: `set` is valid; sigwait writes the signal number.
            unsafe {
                libc::sigwait(&set, &mut sig);
            }
            md_sig
                .log
                .info(format!("mdfuse: signal {sig}: stopping arrays"));
            readd_sig.stop();
            exports_sig.stop();
            // What the kernel holds dirty for mdN/data (a loop device's
            // writes, say) must reach md before the arrays stop: after,
            // its write-back would find no array.
            if let Some(mnt) = &written_back {
                if let Err(e) = syncfs(mnt) {
                    md_sig
                        .log
                        .err(format!("mdfuse: syncfs {}: {e}", mnt.display()));
                }
            }
            md_sig.stop_all();
            let _ = unmounter.unmount();
        })?;
    let r = mounted.wait();
    // Unmounted from outside: the arrays still need a clean stop.
    readd.stop();
    exports.stop();
    md.stop_all();
    drop(tree);
    let _: &Arc<Md> = &md;
    r
}

/// `syncfs(2)` of the mount: the kernel writes back every dirty page of
/// it, served by the mount's own threads, and waits for them.
fn syncfs(mountpoint: &std::path::Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(mountpoint)?;
    // SAFETY: a plain syscall on a descriptor we own.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set we pass; sigaddset adds to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}
