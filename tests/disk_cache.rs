//! A component's page cache: large writes are written back and dropped
//! from it (md caches nothing on its members), small ones stay cached,
//! and nothing written is lost either way.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use mdfuse::disk::Disk;

const MIB: usize = 1 << 20;

/// Which of the file's pages in `[offset, offset + len)` are in the page
/// cache, by mincore(2) on a read-only mapping.
fn resident_pages(path: &Path, offset: usize, len: usize) -> usize {
    let f = File::open(path).unwrap();
    let page = 4096;
    // SAFETY: a private read-only mapping of an open file, unmapped below;
    // mincore only writes `vec`, sized one byte per page.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            offset as libc::off_t,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        let mut vec = vec![0u8; len.div_ceil(page)];
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0, "mincore");
        libc::munmap(p, len);
        vec.iter().filter(|b| **b & 1 == 1).count()
    }
}

/// tmpfs keeps every page in memory (there is nothing to drop it to).
fn on_tmpfs(path: &Path) -> bool {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statfs fills the zeroed struct it is given.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        assert_eq!(libc::statfs(c.as_ptr(), &mut s), 0);
        s.f_type == libc::TMPFS_MAGIC
    }
}

#[test]
fn large_writes_leave_the_page_cache_small_ones_stay() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    assert!(
        !on_tmpfs(dir.path()),
        "{} is on tmpfs, which cannot drop pages",
        dir.path().display()
    );
    let path = dir.path().join("leg.img");
    let size = 128 * MIB;
    File::create(&path).unwrap().set_len(size as u64).unwrap();
    let disk = Disk::open(&path, true).unwrap();

    // 96 MiB in 1 MiB writes, each a different pattern; the first 16
    // made durable before the rest.
    let chunk = |i: usize| vec![(i as u8).wrapping_mul(37).wrapping_add(1); MIB];
    for i in 0..96 {
        disk.write_at(&chunk(i), (i * MIB) as u64).unwrap();
        if i == 15 {
            disk.flush().unwrap();
        }
    }
    // 4 KiB writes in the last 32 MiB.
    let small = vec![0xa5u8; 4096];
    for i in 0..64 {
        disk.write_at(&small, (96 * MIB + i * 8192) as u64).unwrap();
    }

    // The first large writes were dropped 64 writes later, when their
    // write-back (started at once, 1 MiB each) had long finished; a page
    // still under write-back then would stay, hence "most".  Drop-behind
    // runs on a thread of its own: a flush waits for it to catch up.
    disk.flush().unwrap();
    let early = resident_pages(&path, 0, 16 * MIB);
    assert!(
        early < 2048,
        "{early} of 4096 pages of the first 16 MiB still cached"
    );
    // The small writes are cached still.
    let tail = resident_pages(&path, 96 * MIB, 32 * MIB);
    assert!(tail >= 64, "only {tail} pages of the small writes cached");

    // Nothing is lost: read back through another descriptor.
    disk.flush().unwrap();
    let f = File::open(&path).unwrap();
    let mut buf = vec![0u8; MIB];
    for i in 0..96 {
        f.read_exact_at(&mut buf, (i * MIB) as u64).unwrap();
        assert!(buf == chunk(i), "MiB {i} differs");
    }
    let mut page = vec![0u8; 4096];
    for i in 0..64 {
        f.read_exact_at(&mut page, (96 * MIB + i * 8192) as u64)
            .unwrap();
        assert!(page == small, "small write {i} differs");
    }
}

/// 32 large writes, fewer than drop-behind lags by, so that none is
/// dropped by a later one; then a pause, during which `meanwhile` runs
/// every 100 ms.  The pause must drop them (or a mkfs's last blocks would
/// stay cached in large folios), and nothing is lost.
fn the_last_large_writes_leave_in_a_pause(meanwhile: impl Fn(&Disk)) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("leg.img");
    File::create(&path)
        .unwrap()
        .set_len(48 * MIB as u64)
        .unwrap();
    let disk = Disk::open(&path, true).unwrap();
    for i in 0..32 {
        disk.write_at(&vec![i as u8 + 1; MIB], (i * MIB) as u64)
            .unwrap();
    }
    let start = std::time::Instant::now();
    let mut cached = resident_pages(&path, 0, 32 * MIB);
    while cached >= 4096 && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        meanwhile(&disk);
        cached = resident_pages(&path, 0, 32 * MIB);
    }
    assert!(
        cached < 4096,
        "{cached} of 8192 pages still cached {:?} after the last write",
        start.elapsed()
    );
    let f = File::open(&path).unwrap();
    let mut buf = vec![0u8; MIB];
    for i in 0..32 {
        f.read_exact_at(&mut buf, (i * MIB) as u64).unwrap();
        assert!(buf.iter().all(|b| *b == i as u8 + 1), "MiB {i} differs");
    }
}

#[test]
fn the_last_large_writes_leave_the_page_cache_once_writes_pause() {
    the_last_large_writes_leave_in_a_pause(|_| ());
}

#[test]
fn flushes_in_a_pause_do_not_keep_the_last_large_writes_cached() {
    // A pause counts from the last large write, not the last request.
    the_last_large_writes_leave_in_a_pause(|disk| disk.flush().unwrap());
}

/// How many of this process's descriptors are open on `path`.
fn open_descriptors(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn a_component_closed_closes_its_drop_behind_descriptor() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // As /proc/self/fd names it: the directory resolved.
    let path = dir.path().canonicalize().unwrap().join("leg.img");
    File::create(&path)
        .unwrap()
        .set_len(8 * MIB as u64)
        .unwrap();
    let disk = Disk::open(&path, true).unwrap();
    assert_eq!(open_descriptors(&path), 1);
    // A large write starts the drop-behind thread on a second descriptor.
    disk.write_at(&vec![7u8; MIB], 0).unwrap();
    disk.flush().unwrap();
    assert_eq!(open_descriptors(&path), 2);
    // Closing the component ends the thread and closes both: a block
    // device's claim must not outlive its component.
    drop(disk);
    assert_eq!(open_descriptors(&path), 0);
}
