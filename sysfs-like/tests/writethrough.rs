//! Binary files through the page cache, written through: a mount with
//! `PageCache::WriteThrough` and a file whose `page_cache()` says yes.

mod common;

use std::os::unix::fs::FileExt;

use common::{DATA_SIZE, open};
use sysfs_like::PageCache;

#[test]
fn each_write_reaches_the_file_before_it_returns() {
    let f = fixture!(page_cache: PageCache::WriteThrough);
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    f.demo.data.clear_logs();
    for i in 0..8u64 {
        file.write_at(&[i as u8 + 1; 4096], 8192 * i).unwrap();
        assert_eq!(f.demo.data.writes().len(), i as usize + 1, "write {i}");
        assert_eq!(
            f.demo.data.data.lock().unwrap()[8192 * i as usize],
            i as u8 + 1
        );
    }
}

#[test]
fn reads_are_served_from_the_cache() {
    let f = fixture!(page_cache: PageCache::WriteThrough);
    let file = open(&f.path("data"), libc::O_RDONLY).unwrap();
    let mut buf = vec![0u8; 16384];
    file.read_at(&mut buf, 0).unwrap();
    f.demo.data.clear_logs();
    file.read_at(&mut buf, 0).unwrap();
    assert_eq!(f.demo.data.reads(), [], "a second read of cached pages");
}

#[test]
fn a_write_at_the_end_fails_at_once_and_one_across_it_is_cut() {
    let f = fixture!(page_cache: PageCache::WriteThrough);
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    let end = DATA_SIZE as u64;
    let e = file.write_at(&[1; 4096], end).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFBIG), "{e}");
    assert_eq!(file.write_at(&[2; 8192], end - 4096).unwrap(), 4096);
    assert_eq!(f.demo.data.data.lock().unwrap().len(), DATA_SIZE);
    assert_eq!(file.metadata().unwrap().len(), end);
    file.sync_all().unwrap();
}
