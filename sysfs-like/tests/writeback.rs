//! Binary files through the page cache: a mount with a writeback cache and
//! a file whose `page_cache()` says yes.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};

use common::{AlignedBuf, DATA_SIZE, open};
use sysfs_like::PageCache;

#[test]
fn buffered_writes_are_gathered_and_reach_the_file_by_fsync() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    f.demo.data.clear_logs();
    for i in 0..64u64 {
        file.write_at(&[i as u8 + 1; 4096], 4096 * i).unwrap();
    }
    file.sync_all().unwrap();
    let writes = f.demo.data.writes();
    assert!(
        !writes.is_empty() && writes.len() < 64,
        "64 buffered 4 KiB writes reached the file as {writes:?}"
    );
    assert_eq!(f.demo.data.fsyncs.lock().unwrap().len(), 1);
    let data = f.demo.data.data.lock().unwrap();
    for i in 0..64 {
        assert_eq!(data[i * 4096], i as u8 + 1, "page {i}");
    }
}

#[test]
fn direct_opens_reach_the_file_per_request() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let file = open(&f.path("data"), libc::O_RDWR | libc::O_DIRECT).unwrap();
    f.demo.data.clear_logs();
    let buf = AlignedBuf::new(4096);
    for i in 0..4 {
        file.write_at(&buf, 4096 * i).unwrap();
    }
    assert_eq!(
        f.demo.data.writes(),
        [(0, 4096), (4096, 4096), (8192, 4096), (12288, 4096)]
    );
}

#[test]
fn a_write_only_open_writes_part_of_a_page() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let before = f.demo.data.data.lock().unwrap()[..4096].to_vec();
    let file = open(&f.path("data"), libc::O_WRONLY).unwrap();
    file.write_at(&[0xee; 100], 10).unwrap();
    file.sync_all().unwrap();
    let mut want = before;
    want[10..110].fill(0xee);
    assert_eq!(f.demo.data.data.lock().unwrap()[..4096], want[..]);
}

#[test]
fn sizes_follow_the_file_for_new_lookups_and_open_descriptors() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let path = f.path("data");
    let held = open(&path, libc::O_RDONLY).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    f.demo.data.data.lock().unwrap().resize(DATA_SIZE * 2, 7);
    let grown = fs::metadata(&path).unwrap();
    assert_eq!(grown.len(), DATA_SIZE as u64 * 2);
    assert_ne!(grown.ino(), ino, "the size changed: a new inode");
    // The grown size reaches the inode of the descriptor held open.
    assert_eq!(held.metadata().unwrap().len(), DATA_SIZE as u64 * 2);
    f.demo.data.data.lock().unwrap().truncate(DATA_SIZE / 2);
    assert_eq!(fs::metadata(&path).unwrap().len(), DATA_SIZE as u64 / 2);
}

#[test]
fn a_write_back_past_the_end_fails_at_fsync_and_leaves_the_size() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let path = f.path("data");
    let file = open(&path, libc::O_RDWR).unwrap();
    let end = DATA_SIZE as u64;
    // The kernel takes it into its cache...
    assert_eq!(file.write_at(&[1; 4096], end).unwrap(), 4096);
    // ...and the write-back fails.
    let e = file.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFBIG), "{e}");
    assert_eq!(f.demo.data.data.lock().unwrap().len(), DATA_SIZE);
    assert_eq!(fs::metadata(&path).unwrap().len(), end);
}

#[test]
fn invalidate_data_drops_what_the_kernel_cached() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let file = open(&f.path("data"), libc::O_RDONLY).unwrap();
    let mut page = [0u8; 16];
    file.read_at(&mut page, 8192).unwrap();
    let old = page;
    f.demo.data.data.lock().unwrap()[8192..8192 + 16].fill(0x5a);
    // Cached: the change behind the mount does not show...
    file.read_at(&mut page, 8192).unwrap();
    assert_eq!(page, old);
    // ...until the tree is told.
    f.demo.tree.invalidate_data(f.demo.data_id, 8192, 4096);
    file.read_at(&mut page, 8192).unwrap();
    assert_eq!(page, [0x5a; 16]);
}

#[test]
fn the_cache_lives_from_the_first_open_to_the_last_close() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let path = f.path("data");
    let first = open(&path, libc::O_RDWR).unwrap();
    let mut page = [0u8; 16];
    first.read_at(&mut page, 8192).unwrap();
    let old = page;
    first.write_at(&[0x11; 16], 0).unwrap();
    f.demo.data.clear_logs();
    f.demo.data.data.lock().unwrap()[8192..8192 + 16].fill(0x5a);
    // An open while another is open keeps the cache, dirty pages too...
    let second = open(&path, libc::O_RDONLY).unwrap();
    second.read_at(&mut page, 8192).unwrap();
    assert_eq!(page, old, "a second open dropped the cache");
    assert_eq!(f.demo.data.writes(), [], "a second open wrote back");
    drop(second);
    drop(first);
    // ...and the first open after the last close drops it.
    let again = open(&path, libc::O_RDONLY).unwrap();
    again.read_at(&mut page, 8192).unwrap();
    assert_eq!(page, [0x5a; 16]);
    again.read_at(&mut page, 0).unwrap();
    assert_eq!(page, [0x11; 16]);
}

#[test]
fn xattrs_are_not_supported_so_writes_stop_asking() {
    let f = fixture!(page_cache: PageCache::WriteBack);
    let path = CString::new(f.path("data").as_os_str().as_bytes()).unwrap();
    let name = CString::new("security.capability").unwrap();
    for _ in 0..3 {
        // SAFETY: valid NUL-terminated strings; a null buffer of size 0.
        let r = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(r, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
    }
}
