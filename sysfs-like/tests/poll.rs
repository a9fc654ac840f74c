//! poll(2) and select(2) on attributes, the way `mdadm --monitor` waits on
//! `array_state`: open, read, poll for POLLPRI, re-read from offset 0.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{open, poll_fd, read_once, rewind};

const PRI: i16 = libc::POLLPRI | libc::POLLERR;

/// Polls `file` for POLLPRI on another thread; the result arrives on the
/// returned channel as (revents, how long it blocked).
fn poll_in_thread(file: &File) -> (mpsc::Receiver<(i16, Duration)>, thread::JoinHandle<()>) {
    let file = file.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let start = Instant::now();
        let revents = poll_fd(&file, libc::POLLPRI, Duration::from_secs(20));
        tx.send((revents, start.elapsed())).unwrap();
    });
    (rx, t)
}

fn open_and_read(path: &std::path::Path) -> File {
    let file = open(path, libc::O_RDONLY).unwrap();
    read_once(&file, 4096).unwrap();
    file
}

#[test]
fn poll_wakes_on_notify() {
    let f = fixture!();
    let file = open_and_read(&f.path("counter"));
    let (rx, t) = poll_in_thread(&file);
    thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "poll returned before any notify");
    f.demo.tree.notify(f.demo.counter_id);
    let (revents, waited) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("poll not woken");
    t.join().unwrap();
    assert_eq!(revents & PRI, PRI, "revents {revents:#x}");
    assert!(
        waited >= Duration::from_millis(250),
        "woke after {waited:?}"
    );

    // Until the file is read again, it stays signalled...
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::ZERO) & PRI, PRI);
    // ...and re-reading from the start re-arms it.
    rewind(&file);
    read_once(&file, 4096).unwrap();
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::from_millis(200)), 0);
}

#[test]
fn poll_times_out_without_notify() {
    let f = fixture!();
    let file = open_and_read(&f.path("counter"));
    let start = Instant::now();
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::from_millis(500)), 0);
    assert!(start.elapsed() >= Duration::from_millis(450));
    // A value change nobody notifies about wakes nobody either.
    f.demo.counter.set(9);
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::from_millis(200)), 0);
}

#[test]
fn poll_reports_the_default_mask() {
    let f = fixture!();
    // A read-only attribute still polls writable: DEFAULT_POLLMASK, as sysfs.
    let file = open_and_read(&f.path("version"));
    let all = libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM | libc::POLLPRI;
    assert_eq!(
        poll_fd(&file, all, Duration::ZERO),
        libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM
    );
}

#[test]
fn poll_before_the_first_read_reports_a_change() {
    // As in kernfs: the open file has seen no event yet, so it polls changed.
    let f = fixture!();
    let file = open(&f.path("counter"), libc::O_RDONLY).unwrap();
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::ZERO) & PRI, PRI);
    read_once(&file, 4096).unwrap();
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::ZERO), 0);
}

#[test]
fn a_store_through_the_shell_wakes_the_poller() {
    // The counter notifies itself after each successful store.
    let f = fixture!();
    let file = open_and_read(&f.path("counter"));
    let (rx, t) = poll_in_thread(&file);
    thread::sleep(Duration::from_millis(100));
    common::ok(f.sh("echo 3 > counter"));
    let (revents, _) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("poll not woken");
    t.join().unwrap();
    assert_eq!(revents & PRI, PRI);
    rewind(&file);
    assert_eq!(read_once(&file, 4096).unwrap(), b"3\n");
    // A failed store does not notify.
    assert_eq!(f.sh("echo nope > counter").status.code(), Some(1));
    assert_eq!(poll_fd(&file, libc::POLLPRI, Duration::from_millis(200)), 0);
}

#[test]
fn select_exceptfds_wakes_on_notify() {
    let f = fixture!();
    let file = open_and_read(&f.path("counter"));
    let fd = file.as_raw_fd();
    let select = move |timeout_ms: i64| -> i32 {
        // SAFETY: fd_set is plain data; FD_ZERO/FD_SET/select get valid
        // pointers to locals, and `fd` is open and below FD_SETSIZE.
        unsafe {
            let mut except: libc::fd_set = std::mem::zeroed();
            libc::FD_ZERO(&mut except);
            libc::FD_SET(fd, &mut except);
            let mut tv = libc::timeval {
                tv_sec: timeout_ms / 1000,
                tv_usec: (timeout_ms % 1000) * 1000,
            };
            let n = libc::select(
                fd + 1,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut except,
                &mut tv,
            );
            if n > 0 && libc::FD_ISSET(fd, &except) {
                1
            } else {
                n
            }
        }
    };
    assert_eq!(select(200), 0);
    let t = thread::spawn(move || select(20_000));
    thread::sleep(Duration::from_millis(200));
    f.demo.tree.notify(f.demo.counter_id);
    assert_eq!(t.join().unwrap(), 1);
}

#[test]
fn many_pollers_on_many_files_all_wake() {
    let f = fixture!();
    let files: Vec<File> = (0..4).map(|_| open_and_read(&f.path("counter"))).collect();
    let waiting: Vec<_> = files.iter().map(poll_in_thread).collect();
    thread::sleep(Duration::from_millis(200));
    f.demo.tree.notify(f.demo.counter_id);
    for (rx, t) in waiting {
        let (revents, _) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("poll not woken");
        t.join().unwrap();
        assert_eq!(revents & PRI, PRI);
    }
}
