//! Who may do what, mounting as a normal user, and the ways a mount ends.
//!
//! Run as root, the tests that need a second user create a throwaway one
//! (`useradd`) and remove it afterwards. Run as a normal user, the whole
//! suite already mounts through fusermount3, and the root-only checks are
//! skipped with a message.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{Demo, Fixture, is_mounted, is_root, ok, open, stderr, stdout};
use sysfs_like::ServeOptions;

/// useradd/userdel lock /etc/passwd: one throwaway user at a time.
static USERS: Mutex<()> = Mutex::new(());

/// A user created for one test and deleted when dropped.
struct ThrowawayUser {
    name: String,
    uid: u32,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl ThrowawayUser {
    fn create() -> Option<ThrowawayUser> {
        if !is_root() {
            eprintln!("skipping: creating a second user needs root");
            return None;
        }
        let lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("sysfslike{}", std::process::id());
        let out = Command::new("useradd")
            .args([
                "--no-create-home",
                "--shell",
                "/bin/sh",
                "--user-group",
                &name,
            ])
            .output()
            .expect("running useradd");
        assert!(out.status.success(), "useradd failed: {out:?}");
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = stdout(&id).trim().parse().unwrap();
        Some(ThrowawayUser {
            name,
            uid,
            _lock: lock,
        })
    }

    /// Runs `sh -c script` as this user.
    fn sh(&self, script: &str) -> Output {
        self.command("sh", &["-c", script]).output().unwrap()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", &self.name, "--", program])
            .args(args)
            .current_dir("/");
        c
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let out = Command::new("userdel").arg(&self.name).output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("userdel {} failed: {out:?}", self.name);
        }
    }
}

#[test]
fn other_users_read_but_only_the_owner_writes() {
    if !common::fuse_ready() {
        return;
    }
    let Some(user) = ThrowawayUser::create() else {
        return;
    };
    let opts = ServeOptions {
        allow_other: true,
        ..ServeOptions::default()
    };
    let f = Fixture::with_options(&opts).unwrap();
    let p = |rel: &str| f.path(rel).display().to_string();

    let out = user.sh(&format!("cat {} {}", p("counter"), p("version")));
    assert_eq!(ok(out), "0\n1.2\n");
    let out = user.sh(&format!(
        "dd if={} bs=4 count=1 status=none | od -An -tu1",
        p("data")
    ));
    assert_eq!(
        ok(out).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    let out = user.sh(&format!("echo 5 > {}", p("counter")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    let out = user.sh(&format!("cat {}", p("new_dev")));
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    let out = user.sh(&format!(
        "dd if=/dev/zero of={} bs=1 count=1 conv=notrunc",
        p("data")
    ));
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    let out = user.sh(&format!("mkdir {}", p("x")));
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    assert!(f.demo.counter.stores().is_empty());
    assert!(f.demo.data.writes().is_empty());

    // The owner (root here) writes.
    ok(f.sh("echo 6 > counter"));
    assert_eq!(ok(user.sh(&format!("cat {}", p("counter")))), "6\n");
    drop(f);
}

#[test]
fn without_allow_other_only_the_mounting_user_gets_in() {
    if !common::fuse_ready() {
        return;
    }
    let Some(user) = ThrowawayUser::create() else {
        return;
    };
    let f = Fixture::new().unwrap();
    let out = user.sh(&format!("cat {}", f.path("version").display()));
    assert!(stderr(&out).contains("Permission denied"), "{out:?}");
    assert_eq!(ok(f.sh("cat version")), "1.2\n");
}

/// Set for the child run of `non_root_child`: the directory to mount on.
const CHILD_ENV: &str = "SYSFS_LIKE_NON_ROOT_MOUNTPOINT";

#[test]
fn a_normal_user_mounts_through_fusermount3() {
    if !common::fuse_ready() {
        return;
    }
    if !is_root() {
        // Already a normal user: do it here.
        let dir = tempfile::tempdir().unwrap();
        non_root_mount_and_unmount(dir.path());
        return;
    }
    let Some(user) = ThrowawayUser::create() else {
        return;
    };
    // Run this test binary's `non_root_child` as the throwaway user, from a
    // copy it can read, mounting on a directory it owns.
    let dir = tempfile::tempdir().unwrap();
    common::chmod(dir.path(), 0o755);
    let exe = dir.path().join("tests");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    std::os::unix::fs::chown(&mnt, Some(user.uid), None).unwrap();
    let out = user
        .command(
            &exe.display().to_string(),
            &["--exact", "non_root_child", "--ignored", "--nocapture"],
        )
        .env(CHILD_ENV, &mnt)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("1 passed"),
        "child failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!is_mounted(&mnt));
}

#[test]
#[ignore = "run as a normal user by a_normal_user_mounts_through_fusermount3"]
fn non_root_child() {
    let mnt = PathBuf::from(std::env::var_os(CHILD_ENV).expect("run by the parent test"));
    assert!(!is_root());
    non_root_mount_and_unmount(&mnt);
}

fn non_root_mount_and_unmount(mnt: &Path) {
    let demo = Demo::new();
    let mounted = sysfs_like::mount(demo.tree.clone(), mnt, &ServeOptions::default())
        .unwrap_or_else(|e| panic!("mounting as uid {}: {e}", common::euid_egid().0));
    let mnt = mounted.mountpoint().to_owned();
    // fusermount3 made the mount on our behalf.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(&*mnt.to_string_lossy()))
        .expect("mount missing");
    assert!(
        line.contains(&format!("user_id={}", common::euid_egid().0)),
        "{line}"
    );
    assert!(line.contains("default_permissions"), "{line}");

    assert_eq!(ok(common::run_in(&mnt, "sh", "cat counter")), "0\n");
    ok(common::run_in(&mnt, "sh", "echo 9 > counter"));
    assert_eq!(demo.counter.stores(), ["9"]);
    let out = common::run_in(&mnt, "sh", "mkdir x");
    assert!(stderr(&out).contains("Operation not permitted"), "{out:?}");
    // Unmount (through fusermount3 -u) and see the session end.
    mounted.unmount().unwrap();
    assert!(!is_mounted(&mnt));
}

#[test]
fn umount_from_outside_ends_wait() {
    let Some(mut f) = Fixture::new() else {
        return;
    };
    let mounted = f.take_mounted();
    let mnt = f.mnt.clone();
    let waiter = thread::spawn(move || mounted.wait());
    thread::sleep(Duration::from_millis(100));
    assert_eq!(fs::read_to_string(mnt.join("counter")).unwrap(), "0\n");
    let (cmd, args): (&str, &[&str]) = if is_root() {
        ("umount", &[])
    } else {
        ("fusermount3", &["-u"])
    };
    let out = Command::new(cmd).args(args).arg(&mnt).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let start = Instant::now();
    while !waiter.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "wait() did not return"
        );
        thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap().unwrap();
    assert!(!is_mounted(&mnt));
}

#[test]
fn unmounter_works_from_another_thread_even_when_busy() {
    let Some(mut f) = Fixture::new() else {
        return;
    };
    let mounted = f.take_mounted();
    let unmounter = mounted.unmounter();
    let mnt = f.mnt.clone();
    // A file held open makes the mount busy: it is detached lazily, and
    // serving goes on until the file is closed.
    let held = open(&mnt.join("counter"), libc::O_RDONLY).unwrap();
    let waiter = thread::spawn(move || mounted.wait());
    thread::spawn(move || unmounter.unmount())
        .join()
        .unwrap()
        .unwrap();
    assert!(!is_mounted(&mnt));
    assert_eq!(common::read_once(&held, 100).unwrap(), b"0\n");
    assert!(!waiter.is_finished());
    drop(held);
    let start = Instant::now();
    while !waiter.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "wait() did not return"
        );
        thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap().unwrap();
}

#[test]
fn dropping_the_mount_unmounts() {
    let Some(mut f) = Fixture::new() else {
        return;
    };
    let mnt = f.mnt.clone();
    assert!(is_mounted(&mnt));
    drop(f.take_mounted());
    assert!(!is_mounted(&mnt));
    f.unmount().unwrap();
}
