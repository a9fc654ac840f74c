//! Text attributes through the mount: reads, stores, modes, snapshots.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use common::{errno_of, ok, open, read_once, rewind, stderr, write_once};

#[test]
fn cat_reads_attributes_and_through_symlinks() {
    let f = fixture!();
    assert_eq!(ok(f.sh("cat counter")), "0\n");
    assert_eq!(ok(f.sh("cat version")), "1.2\n");
    assert_eq!(ok(f.sh("cat link")), "0\n");
    assert_eq!(ok(f.sh("cat sub/up")), "1.2\n");
    f.demo.counter.set(17);
    assert_eq!(fs::read_to_string(f.path("counter")).unwrap(), "17\n");
}

#[test]
fn show_runs_once_per_open() {
    let f = fixture!();
    let before = f.demo.counter.shows();
    assert_eq!(ok(f.sh("cat counter")), "0\n");
    assert_eq!(f.demo.counter.shows(), before + 1);
    // Small reads at increasing offsets all come from the one snapshot.
    let file = open(&f.path("counter"), libc::O_RDONLY).unwrap();
    assert_eq!(read_once(&file, 1).unwrap(), b"0");
    assert_eq!(read_once(&file, 1).unwrap(), b"\n");
    assert_eq!(read_once(&file, 1).unwrap(), b"");
    assert_eq!(f.demo.counter.shows(), before + 2);
}

#[test]
fn snapshot_is_taken_at_open() {
    let f = fixture!();
    let file = open(&f.path("counter"), libc::O_RDONLY).unwrap();
    // The value changes between open and read: the reader sees the old one.
    f.demo.tree.write_attr("counter", "42\n").unwrap();
    assert_eq!(read_once(&file, 100).unwrap(), b"0\n");
    assert_eq!(read_once(&file, 100).unwrap(), b"");
    // Reads at other offsets still come from the snapshot...
    let mut one = [0u8; 1];
    assert_eq!(file.read_at(&mut one, 1).unwrap(), 1);
    assert_eq!(&one, b"\n");
    // ...and reading from 0 again takes a fresh one (seq_file after lseek).
    rewind(&file);
    assert_eq!(read_once(&file, 100).unwrap(), b"42\n");
    assert_eq!(file.read_at(&mut one, 1).unwrap(), 1);
    assert_eq!(&one, b"2");
}

#[test]
fn each_write_is_one_store() {
    let f = fixture!();
    let c = &f.demo.counter;
    ok(f.sh("echo 5 > counter"));
    assert_eq!(c.stores(), ["5"]);
    assert_eq!(ok(f.sh("cat counter")), "5\n");
    ok(f.sh("echo -n 6 > counter"));
    assert_eq!(c.stores(), ["5", "6"]);

    let file = open(&f.path("counter"), libc::O_WRONLY).unwrap();
    assert_eq!(write_once(&file, b"7\n").unwrap(), 2);
    assert_eq!(write_once(&file, b"8").unwrap(), 1);
    // The offset does not matter to an attribute.
    assert_eq!(file.write_at(b"9\n", 100).unwrap(), 2);
    // Stores see a C string, as in the kernel: up to the first NUL.
    assert_eq!(write_once(&file, b"10\0junk").unwrap(), 7);
    // An empty write stores nothing.
    assert_eq!(write_once(&file, b"").unwrap(), 0);
    // Only one trailing newline is removed.
    assert_eq!(errno_of(write_once(&file, b"11\n\n")), libc::EINVAL);
    assert_eq!(c.stores(), ["5", "6", "7", "8", "9", "10", "11\n"]);
    assert_eq!(fs::read_to_string(f.path("counter")).unwrap(), "10\n");

    // Through the symlink, and via O_RDWR.
    ok(f.sh("echo 12 > link"));
    let rw = open(&f.path("counter"), libc::O_RDWR).unwrap();
    assert_eq!(read_once(&rw, 100).unwrap(), b"12\n");
    assert_eq!(write_once(&rw, b"13").unwrap(), 2);
    assert_eq!(fs::read_to_string(f.path("counter")).unwrap(), "13\n");
}

#[test]
fn echo_bogus_is_invalid_argument() {
    let f = fixture!();
    let out = f.bash("echo bogus > counter");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("Invalid argument"), "{out:?}");

    let out = f.sh("/bin/echo bogus > counter");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("Invalid argument"), "{out:?}");

    // dash's builtin echo reports any write error as "I/O error" (it does so
    // on /sys too); the exit status is what counts.
    let out = f.sh("echo bogus > counter");
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    let file = open(&f.path("counter"), libc::O_WRONLY).unwrap();
    assert_eq!(errno_of(write_once(&file, b"bogus\n")), libc::EINVAL);
    assert_eq!(ok(f.sh("cat counter")), "0\n");
}

#[test]
fn write_over_a_page_is_e2big() {
    let f = fixture!();
    let file = open(&f.path("counter"), libc::O_WRONLY).unwrap();
    assert_eq!(errno_of(write_once(&file, &[b'1'; 5000])), libc::E2BIG);
    assert_eq!(errno_of(write_once(&file, &[b'1'; 4097])), libc::E2BIG);
    assert!(
        f.demo.counter.stores().is_empty(),
        "an oversized write reached the store"
    );
    // Exactly one page is fine.
    let mut page = vec![b'0'; 4096];
    page[4095] = b'3';
    assert_eq!(write_once(&file, &page).unwrap(), 4096);
    assert_eq!(ok(f.sh("cat counter")), "3\n");
    // dd makes it one 5000-byte write(2).
    let out = f.sh("head -c 5000 /dev/zero | tr '\\0' 1 | dd of=counter bs=5000 iflag=fullblock");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("Argument list too long"), "{out:?}");
}

#[test]
fn non_utf8_write_is_einval() {
    let f = fixture!();
    let file = open(&f.path("counter"), libc::O_WRONLY).unwrap();
    assert_eq!(errno_of(write_once(&file, b"\xff\xfe\n")), libc::EINVAL);
    assert_eq!(errno_of(write_once(&file, b"1\xc3")), libc::EINVAL);
    assert!(f.demo.counter.stores().is_empty());
    let out = f.bash("printf '\\377\\n' > counter");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("Invalid argument"), "{out:?}");
}

#[test]
fn show_and_store_errors_become_errnos() {
    let f = fixture!();
    let file = open(&f.path("failing"), libc::O_RDWR).unwrap();
    assert_eq!(errno_of(read_once(&file, 100)), libc::EBUSY);
    assert_eq!(errno_of(write_once(&file, b"x\n")), libc::ENXIO);
    let out = f.sh("cat failing");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Device or resource busy"), "{out:?}");
    let out = f.bash("echo x > failing");
    assert!(
        stderr(&out).contains("No such device or address"),
        "{out:?}"
    );
}

#[test]
fn modes_bind_even_root() {
    let f = fixture!();
    // kernfs refuses what the mode does not allow, whoever asks.
    assert_eq!(
        errno_of(open(&f.path("version"), libc::O_WRONLY)),
        libc::EACCES
    );
    assert_eq!(
        errno_of(open(&f.path("version"), libc::O_RDWR)),
        libc::EACCES
    );
    assert_eq!(
        errno_of(open(&f.path("new_dev"), libc::O_RDONLY)),
        libc::EACCES
    );
    assert_eq!(
        errno_of(open(&f.path("new_dev"), libc::O_RDWR)),
        libc::EACCES
    );
    let out = f.sh("cat new_dev");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    let out = f.sh("echo 1 > version");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");

    ok(f.sh("echo /dev/vdb > new_dev"));
    ok(f.sh("echo -n 8:16 > new_dev"));
    assert_eq!(*f.demo.new_dev.lock().unwrap(), ["/dev/vdb", "8:16"]);
}

#[test]
fn truncating_an_attribute_changes_nothing() {
    let f = fixture!();
    ok(f.sh("truncate -s 0 counter && truncate -s 100 counter"));
    let file = open(&f.path("counter"), libc::O_WRONLY | libc::O_TRUNC).unwrap();
    file.set_len(0).unwrap();
    assert_eq!(write_once(&file, b"4\n").unwrap(), 2);
    assert_eq!(fs::metadata(f.path("counter")).unwrap().len(), 4096);
    assert_eq!(ok(f.sh("cat counter")), "4\n");
}
