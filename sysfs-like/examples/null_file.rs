//! Serves one binary file, `data`, that discards what is written to it and
//! reads as zeros: the cost of the FUSE round trip alone, with nothing
//! behind it.  Benchmarks use it as the ceiling of any file served this
//! way (`scripts/bench-data` runs the same fio jobs on it).
//!
//!     cargo run --release --example null_file -- MOUNTPOINT SIZE_BYTES [THREADS]
//!
//! Serves until the mount goes away (`fusermount3 -u MOUNTPOINT`) or the
//! process gets SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sysfs_like::{BinFile, Errno, ServeOptions, Tree, mount};

struct NullFile {
    size: u64,
}

impl BinFile for NullFile {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], _offset: u64) -> Result<usize, Errno> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write_at(&self, data: &[u8], _offset: u64) -> Result<usize, Errno> {
        Ok(data.len())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mnt), Some(size)) = (args.first(), args.get(1).and_then(|s| s.parse().ok())) else {
        eprintln!("usage: null_file MOUNTPOINT SIZE_BYTES [THREADS]");
        return ExitCode::from(2);
    };
    let threads = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    // Block SIGTERM/SIGINT before any thread exists, so every thread
    // inherits the mask and only the waiter below takes them.
    // SAFETY: a local sigset; no other thread exists yet.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let tree = Tree::new(unsafe { libc::getuid() }, unsafe { libc::getgid() });
    if let Err(e) = tree.add_bin(tree.root(), "data", 0o644, Arc::new(NullFile { size })) {
        eprintln!("null_file: add data: errno {e}");
        return ExitCode::FAILURE;
    }
    let opts = ServeOptions {
        threads,
        fsname: "null_file".to_owned(),
        ..ServeOptions::default()
    };
    let mounted = match mount(tree, &PathBuf::from(mnt), &opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("null_file: mount {mnt}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SIGTERM/SIGINT unmount; wait() returns once the mount is gone.
    let unmounter = mounted.unmounter();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits on the blocked set; writes only `sig`.
        unsafe { libc::sigwait(&set, &mut sig) };
        let _ = unmounter.unmount();
    });
    match mounted.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("null_file: {e}");
            ExitCode::FAILURE
        }
    }
}
