//! Writes that reach an image file's last page, made so that the file
//! never grows from them.
//!
//! A member image cut short under a running array is a pulled disk: the
//! blocks past the cut are gone, and the member must be failed.  mdfuse
//! sees the cut by the file's size (`Disk::size_intact`, before and after
//! each write).  But a `pwrite` that ends at the file's old end, landing
//! just after the cut, grows the file back to its old size with a hole
//! where the data was: the size looks whole again and the member would
//! serve zeros as data.  So the part of such a write that lies on the
//! file's last page goes through a shared mapping of that page instead.
//! A mapping cannot grow a file: touching a page past the end faults.
//! The copy into it is made with `process_vm_writev` on this process,
//! which turns that fault into `EFAULT` rather than a `SIGBUS`.  The
//! part before the last page is an ordinary write, which can grow a cut
//! file at most up to that page, short of its old size, where the check
//! after the write sees it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Write all of `buf` at `offset`, which ends on the file's last page,
/// without ever making the file longer.  `write` is the caller's
/// ordinary or durable write, used for the part before that page;
/// `durable` makes the mapped part durable too (`msync`).  A file found
/// cut short is `EIO`.  Where the file cannot be mapped (some FUSE file
/// systems) or the kernel refuses `process_vm_writev` (some sandboxes),
/// the last page is written by `write` too, after `on_fallback`.
pub fn write_no_extend(
    file: &File,
    buf: &[u8],
    offset: u64,
    durable: bool,
    write: impl Fn(&[u8], u64) -> io::Result<()>,
    on_fallback: impl FnOnce(),
) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let page = page_size();
    let end = offset + buf.len() as u64;
    let map_at = (end - 1) / page * page;
    let tail_from = map_at.max(offset);
    let head = (tail_from - offset) as usize;
    if head > 0 {
        write(&buf[..head], offset)?;
    }
    let tail = &buf[head..];
    let map_len = (end - map_at) as usize;
    // SAFETY: a fresh shared mapping of `map_len` bytes of our own file
    // descriptor; nothing in this process touches it directly (only the
    // kernel, through process_vm_writev and msync), and it is unmapped
    // below on every path.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            map_at as libc::off_t,
        )
    };
    if addr == libc::MAP_FAILED {
        // A file system that cannot map the file (some FUSE ones).
        on_fallback();
        return write(tail, tail_from);
    }
    let local = libc::iovec {
        iov_base: tail.as_ptr() as *mut libc::c_void,
        iov_len: tail.len(),
    };
    let remote = libc::iovec {
        // SAFETY: within the mapping: tail_from - map_at < map_len.
        iov_base: unsafe { addr.cast::<u8>().add((tail_from - map_at) as usize) }.cast(),
        iov_len: tail.len(),
    };
    // SAFETY: one local iovec over the live slice `tail` (only read) and
    // one remote iovec inside the mapping above, in this very process.
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    let r = if n == tail.len() as isize {
        if durable {
            // SAFETY: msync of the whole mapping made above.
            match unsafe { libc::msync(addr, map_len, libc::MS_SYNC) } {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        } else {
            Ok(())
        }
    } else if n < 0 {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => Err(e),
            // The page is past the end: the file was cut.
            _ => Err(io::Error::from_raw_os_error(libc::EIO)),
        }
    } else {
        // Part went in, then a page past the end: the file was cut.
        Err(io::Error::from_raw_os_error(libc::EIO))
    };
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(addr, map_len) };
    match r {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            on_fallback();
            write(tail, tail_from)
        }
        r => r,
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn scratch(len: u64) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("img"))
            .unwrap();
        f.set_len(len).unwrap();
        (dir, f)
    }

    fn plain(f: &File) -> impl Fn(&[u8], u64) -> io::Result<()> + '_ {
        move |b, o| f.write_all_at(b, o)
    }

    fn never() {
        panic!("a scratch file maps");
    }

    #[test]
    fn writes_the_last_pages_in_place() {
        let (_d, f) = scratch(64 << 10);
        let data: Vec<u8> = (0..12288u32).map(|i| (i % 251) as u8).collect();
        let at = (64 << 10) - 12288;
        write_no_extend(&f, &data[100..], at + 100, false, plain(&f), never).unwrap();
        write_no_extend(&f, &data[..100], at, true, plain(&f), never).unwrap();
        let mut back = vec![0u8; data.len()];
        f.read_exact_at(&mut back, at).unwrap();
        assert_eq!(back, data);
        assert_eq!(f.metadata().unwrap().len(), 64 << 10);
        // A write within the last page only, not from its start.
        write_no_extend(&f, b"end", (64 << 10) - 3, false, plain(&f), never).unwrap();
        let mut end = [0u8; 3];
        f.read_exact_at(&mut end, (64 << 10) - 3).unwrap();
        assert_eq!(&end, b"end");
    }

    #[test]
    fn a_cut_file_is_never_grown_back() {
        let (_d, f) = scratch(1 << 20);
        f.set_len(512 << 10).unwrap();
        // Ends at the old end: the head may grow the file up to the last
        // page, never to the old size; the last page fails.
        let data = vec![7u8; 16384];
        let r = write_no_extend(&f, &data, (1 << 20) - 16384, false, plain(&f), never);
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EIO));
        assert!(f.metadata().unwrap().len() < 1 << 20);
        // Only the last page: nothing grows at all.
        f.set_len(512 << 10).unwrap();
        let r = write_no_extend(&f, &data[..4096], (1 << 20) - 4096, true, plain(&f), never);
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EIO));
        assert_eq!(f.metadata().unwrap().len(), 512 << 10);
    }
}
