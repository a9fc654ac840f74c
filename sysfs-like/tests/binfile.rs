//! Binary files through the mount: I/O, sizes, errors, request sizes.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use common::{AlignedBuf, DATA_SIZE, MIB, errno_of, ok, open, read_once, stderr, write_once};

#[test]
fn reads_and_writes_reach_the_file() {
    let f = fixture!();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    let pattern: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(file.write_at(&pattern, 4096).unwrap(), 8192);
    assert_eq!(
        f.demo.data.data.lock().unwrap()[4096..4096 + 8192],
        pattern[..]
    );
    let mut back = vec![0; 8192];
    assert_eq!(file.read_at(&mut back, 4096).unwrap(), 8192);
    assert_eq!(back, pattern);
    assert!(f.demo.data.writes().contains(&(4096, 8192)));
    assert!(f.demo.data.reads().contains(&(4096, 8192)));
}

#[test]
fn reads_stop_and_writes_fail_at_the_size() {
    let f = fixture!();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    let end = DATA_SIZE as u64;
    let mut buf = vec![0; 4096];
    assert_eq!(file.read_at(&mut buf, end - 100).unwrap(), 100);
    assert_eq!(file.read_at(&mut buf, end).unwrap(), 0);
    assert_eq!(file.read_at(&mut buf, end + 12345).unwrap(), 0);
    assert_eq!(file.read_at(&mut buf, u64::MAX / 4).unwrap(), 0);
    // As sysfs bin files: a write crossing the end is cut short, one at or
    // past it is EFBIG.
    assert_eq!(file.write_at(&buf, end - 10).unwrap(), 10);
    assert_eq!(errno_of(file.write_at(&buf, end)), libc::EFBIG);
    assert_eq!(errno_of(file.write_at(&buf, u64::MAX / 4)), libc::EFBIG);
    assert!(
        f.demo
            .data
            .writes()
            .iter()
            .all(|&(off, len)| off + len as u64 <= end)
    );
}

#[test]
fn size_is_reported_live() {
    let f = fixture!();
    assert_eq!(
        fs::metadata(f.path("data")).unwrap().len(),
        DATA_SIZE as u64
    );
    f.demo.data.data.lock().unwrap().truncate(1234);
    assert_eq!(fs::metadata(f.path("data")).unwrap().len(), 1234);
    assert_eq!(ok(f.sh("stat -c %s data")), "1234\n");
    assert_eq!(fs::read(f.path("data")).unwrap().len(), 1234);
}

#[test]
fn dd_round_trips_through_the_file() {
    let f = fixture!();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let out = dir.path().join("out");
    let payload: Vec<u8> = (0..2 * MIB).map(|i| (i * 31 % 253) as u8).collect();
    fs::write(&src, &payload).unwrap();
    // No conv=notrunc: O_TRUNC on a binary file changes nothing, as on /sys.
    ok(f.sh(&format!(
        "dd if={} of=data bs=1M conv=fsync status=none",
        src.display()
    )));
    assert_eq!(f.demo.data.data.lock().unwrap()[..2 * MIB], payload[..]);
    assert_eq!(
        fs::metadata(f.path("data")).unwrap().len(),
        DATA_SIZE as u64
    );
    assert!(!f.demo.data.fsyncs.lock().unwrap().is_empty());
    ok(f.sh(&format!(
        "dd if=data of={} bs=1M count=2 status=none",
        out.display()
    )));
    assert_eq!(fs::read(&out).unwrap(), payload);
}

#[test]
fn one_mib_requests_arrive_whole() {
    let f = fixture!();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    let mut buf = AlignedBuf::new(MIB);
    buf.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i % 249) as u8);
    f.demo.data.clear_logs();
    assert_eq!(file.write_at(&buf, MIB as u64).unwrap(), MIB);
    assert_eq!(f.demo.data.writes(), [(MIB as u64, MIB)]);
    let mut back = AlignedBuf::new(MIB);
    assert_eq!(file.read_at(&mut back, MIB as u64).unwrap(), MIB);
    assert_eq!(f.demo.data.reads(), [(MIB as u64, MIB)]);
    assert!(back[..] == buf[..]);

    // dd uses page-aligned buffers too.
    f.demo.data.clear_logs();
    ok(f.sh("dd if=data of=/dev/null bs=1M count=3 status=none"));
    assert_eq!(
        f.demo.data.reads(),
        [(0, MIB), (MIB as u64, MIB), (2 * MIB as u64, MIB)]
    );
    f.demo.data.clear_logs();
    ok(f.sh("dd if=/dev/zero of=data bs=1M count=2 conv=notrunc status=none"));
    assert_eq!(f.demo.data.writes(), [(0, MIB), (MIB as u64, MIB)]);
}

/// A 1 MiB buffer that does not start a page spans 257 pages; a mount
/// that asks for a page more than 1 MiB gets it whole where it may raise
/// the kernel's cap (root), and leaves the host's setting as it was.
#[test]
fn an_unaligned_mib_arrives_whole_with_a_page_to_spare() {
    const LIMIT: &str = "/proc/sys/fs/fuse/max_pages_limit";
    let host_limit = fs::read_to_string(LIMIT).ok();
    let f = fixture!(&sysfs_like::ServeOptions {
        max_request: MIB as u32 + 4096,
        ..Default::default()
    });
    assert_eq!(
        fs::read_to_string(LIMIT).ok(),
        host_limit,
        "the host's limit"
    );
    let raisable = common::is_root() && host_limit.is_some();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    let mut buf = AlignedBuf::new(MIB + 4096);
    let unaligned = &mut buf[16..16 + MIB];
    unaligned.fill(0x3c);
    f.demo.data.clear_logs();
    assert_eq!(file.write_at(unaligned, 0).unwrap(), MIB);
    let writes = f.demo.data.writes();
    if raisable {
        assert_eq!(writes, [(0, MIB)]);
    } else {
        assert_eq!(writes.iter().map(|w| w.1).sum::<usize>(), MIB, "{writes:?}");
    }
    assert!(
        f.demo.data.data.lock().unwrap()[..MIB]
            .iter()
            .all(|&b| b == 0x3c)
    );
}

#[test]
fn fsync_fdatasync_and_flush_reach_the_file() {
    let f = fixture!();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    f.demo.data.clear_logs();
    file.sync_all().unwrap();
    file.sync_data().unwrap();
    assert_eq!(*f.demo.data.fsyncs.lock().unwrap(), [false, true]);
    // Every close(2) flushes. (Forks in other tests' threads may close
    // duplicates of this descriptor too, so at least once.)
    drop(file);
    assert!(f.demo.data.flushes.load(Ordering::SeqCst) >= 1);
    ok(f.sh("sync data"));
    assert_eq!(f.demo.data.fsyncs.lock().unwrap().len(), 3);
}

#[test]
fn open_and_read_errors_propagate() {
    let f = fixture!();
    assert_eq!(
        errno_of(open(&f.path("rodata"), libc::O_WRONLY)),
        libc::EROFS
    );
    assert_eq!(errno_of(open(&f.path("rodata"), libc::O_RDWR)), libc::EROFS);
    let ro = open(&f.path("rodata"), libc::O_RDONLY).unwrap();
    assert_eq!(read_once(&ro, 10).unwrap(), (0..10).collect::<Vec<u8>>());
    assert_eq!(*f.demo.rodata.opens.lock().unwrap(), [true, true, false]);
    let out = f.sh("echo x > rodata");
    assert!(stderr(&out).contains("Read-only file system"), "{out:?}");

    let file = open(&f.path("data"), libc::O_RDONLY).unwrap();
    f.demo.data.fail_reads.store(true, Ordering::SeqCst);
    assert_eq!(errno_of(read_once(&file, 10)), libc::EIO);
    f.demo.data.fail_reads.store(false, Ordering::SeqCst);
    assert_eq!(read_once(&file, 3).unwrap(), [0, 1, 2]);
}

#[test]
fn truncate_only_to_the_current_size() {
    let f = fixture!();
    let file = open(&f.path("data"), libc::O_RDWR).unwrap();
    file.set_len(DATA_SIZE as u64).unwrap();
    assert_eq!(errno_of(file.set_len(0)), libc::EPERM);
    assert_eq!(errno_of(file.set_len(DATA_SIZE as u64 + 1)), libc::EPERM);
    let out = f.sh("truncate -s 0 data");
    assert!(stderr(&out).contains("Operation not permitted"), "{out:?}");
    // O_TRUNC itself is accepted and keeps the data, as on /sys.
    let before = f.demo.data.data.lock().unwrap()[..16].to_vec();
    let t = open(&f.path("data"), libc::O_WRONLY | libc::O_TRUNC).unwrap();
    drop(t);
    assert_eq!(
        fs::metadata(f.path("data")).unwrap().len(),
        DATA_SIZE as u64
    );
    assert_eq!(f.demo.data.data.lock().unwrap()[..16], before[..]);
}

#[test]
fn concurrent_readers_and_writers() {
    let f = fixture!();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let path = f.path("data");
            s.spawn(move || {
                let file = open(&path, libc::O_RDWR).unwrap();
                let region = t * MIB as u64;
                let mine = vec![t as u8 + 1; 64 * 1024];
                let mut back = vec![0; 64 * 1024];
                for i in 0..50u64 {
                    let off = region + (i % 16) * 64 * 1024;
                    assert_eq!(file.write_at(&mine, off).unwrap(), mine.len());
                    assert_eq!(file.read_at(&mut back, off).unwrap(), back.len());
                    assert_eq!(back, mine);
                }
            });
        }
    });
    assert_eq!(
        write_once(&open(&f.path("data"), libc::O_WRONLY).unwrap(), b"x").unwrap(),
        1
    );
}
