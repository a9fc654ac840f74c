//! The namespace through the mount: what stat and ls show, what users may
//! not do (with the errnos /sys gives), symlinks and directories.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{cstr, errno_of, euid_egid, ok, open, stderr};

#[test]
fn stat_and_ls_look_like_sysfs() {
    let f = fixture!();
    let (uid, gid) = euid_egid();
    let stat = |p: &str| ok(f.sh(&format!("stat -c '%s %a %F %h' {p}")));
    assert_eq!(stat("counter"), "4096 644 regular file 1\n");
    assert_eq!(stat("version"), "4096 444 regular file 1\n");
    assert_eq!(stat("new_dev"), "4096 200 regular file 1\n");
    assert_eq!(
        stat("data"),
        format!("{} 644 regular file 1\n", common::DATA_SIZE)
    );
    assert_eq!(stat("link"), "0 777 symbolic link 1\n");
    assert_eq!(stat("sub"), "0 755 directory 2\n");
    assert_eq!(stat("."), "0 755 directory 3\n");
    for p in ["counter", "sub", "link", "data", "."] {
        let m = fs::symlink_metadata(f.path(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
        assert_eq!(m.blksize(), 4096);
    }

    let ls = ok(f.sh("ls -l"));
    let line = |name: &str| {
        ls.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {ls}"))
            .to_owned()
    };
    assert!(line(" counter").starts_with("-rw-r--r-- 1 "), "{ls}");
    assert!(line(" version").starts_with("-r--r--r-- 1 "), "{ls}");
    assert!(line(" new_dev").starts_with("--w------- 1 "), "{ls}");
    assert!(
        line(" link -> counter").starts_with("lrwxrwxrwx 1 "),
        "{ls}"
    );
    assert!(line(" sub").starts_with("drwxr-xr-x 2 "), "{ls}");

    let names: Vec<String> = fs::read_dir(&f.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "counter", "data", "failing", "link", "new_dev", "rodata", "sub", "version"
        ]
    );
    assert_eq!(ok(f.sh("ls -a sub | tr '\\n' ' '")), ". .. up ");
    // Inode numbers are the tree's.
    assert_eq!(fs::metadata(&f.mnt).unwrap().ino(), 1);
    assert_eq!(
        fs::metadata(f.path("counter")).unwrap().ino(),
        f.demo.counter_id.ino()
    );
}

#[test]
fn users_cannot_change_the_namespace() {
    let f = fixture!();
    let p = |rel: &str| f.path(rel);
    // Each errno is what the same call gives on /sys.
    assert_eq!(errno_of(fs::create_dir(p("x"))), libc::EPERM);
    assert_eq!(errno_of(fs::create_dir(p("sub"))), libc::EEXIST);
    assert_eq!(errno_of(fs::File::create(p("newfile"))), libc::EACCES);
    assert_eq!(errno_of(fs::File::create_new(p("counter"))), libc::EEXIST);
    assert_eq!(errno_of(fs::remove_file(p("counter"))), libc::EPERM);
    assert_eq!(errno_of(fs::remove_file(p("link"))), libc::EPERM);
    assert_eq!(errno_of(fs::remove_file(p("missing"))), libc::ENOENT);
    assert_eq!(errno_of(fs::remove_dir(p("sub"))), libc::EPERM);
    assert_eq!(errno_of(fs::rename(p("counter"), p("c2"))), libc::EPERM);
    assert_eq!(
        errno_of(fs::rename(p("counter"), p("version"))),
        libc::EPERM
    );
    assert_eq!(errno_of(fs::rename(p("sub"), p("sub2"))), libc::EPERM);
    assert_eq!(errno_of(fs::hard_link(p("counter"), p("c2"))), libc::EPERM);
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("counter", p("c2"))),
        libc::EPERM
    );
    let fifo = cstr(&p("fifo"));
    // SAFETY: `fifo` is a valid NUL-terminated path.
    let r = unsafe { libc::mknod(fifo.as_ptr(), libc::S_IFIFO | 0o644, 0) };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EPERM)
    );
    assert_eq!(errno_of(open(&p("sub"), libc::O_WRONLY)), libc::EISDIR);

    for (cmd, msg) in [
        ("mkdir x", "Operation not permitted"),
        ("touch newfile", "Permission denied"),
        ("rm -f counter", "Operation not permitted"),
        ("rmdir sub", "Operation not permitted"),
        ("mv counter c2", "Operation not permitted"),
        ("ln counter c2", "Operation not permitted"),
        ("ln -s counter c2", "Operation not permitted"),
        ("mknod fifo p", "Operation not permitted"),
    ] {
        let out = f.sh(cmd);
        assert!(!out.status.success(), "{cmd} succeeded");
        assert!(stderr(&out).contains(msg), "{cmd}: {out:?}");
    }
    assert_eq!(
        fs::read_dir(&f.mnt).unwrap().count(),
        8,
        "the namespace changed"
    );
}

#[test]
fn modes_and_owners_are_fixed_times_are_ignored() {
    let f = fixture!();
    let counter = f.path("counter");
    // chmod/chown: EPERM, since a mode says which of show/store an attribute
    // has and the owner says who may store. Setting the current values is
    // accepted (cp -p and install do that).
    let perms = |m| fs::Permissions::from_mode(m);
    assert_eq!(
        errno_of(fs::set_permissions(&counter, perms(0o666))),
        libc::EPERM
    );
    fs::set_permissions(&counter, perms(0o644)).unwrap();
    assert_eq!(
        errno_of(std::os::unix::fs::chown(&counter, Some(4242), None)),
        libc::EPERM
    );
    let (uid, gid) = euid_egid();
    std::os::unix::fs::chown(&counter, Some(uid), Some(gid)).unwrap();
    assert!(!f.sh("chmod 600 counter").status.success());
    assert_eq!(
        fs::metadata(&counter).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // touch on an existing node works, as on /sys.
    ok(f.sh("touch counter sub data"));
}

#[test]
fn xattrs_and_statfs_look_like_sysfs() {
    let f = fixture!();
    let path = cstr(&f.path("counter"));
    let name = c"user.test";
    let mut buf = [0u8; 64];
    // SAFETY: valid NUL-terminated strings and a buffer of the given size.
    unsafe {
        assert_eq!(
            libc::setxattr(path.as_ptr(), name.as_ptr(), buf.as_ptr().cast(), 1, 0),
            -1
        );
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        assert_eq!(
            libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 64),
            -1
        );
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENODATA)
        );
        assert_eq!(
            libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), 64),
            0
        );
        assert_eq!(libc::removexattr(path.as_ptr(), name.as_ptr()), -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        let mut st: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut st), 0);
        assert_eq!(
            (st.f_bsize, st.f_blocks, st.f_files, st.f_namemax),
            (4096, 0, 0, 255)
        );
    }
}

#[test]
fn symlinks_read_back_retarget_and_go() {
    let f = fixture!();
    let link = f.path("link");
    assert_eq!(fs::read_link(&link).unwrap().to_str(), Some("counter"));
    assert_eq!(ok(f.sh("readlink link")), "counter\n");
    assert_eq!(ok(f.sh("readlink sub/up")), "../version\n");
    assert_eq!(
        ok(f.sh("readlink -f sub/up")),
        format!("{}/version\n", f.mnt.display())
    );

    f.demo
        .tree
        .set_symlink_target(f.demo.link_id, "version")
        .unwrap();
    assert_eq!(ok(f.sh("readlink link")), "version\n");
    assert_eq!(ok(f.sh("cat link")), "1.2\n");
    f.demo
        .tree
        .set_symlink_target(f.demo.link_id, "nowhere")
        .unwrap();
    assert_eq!(errno_of(fs::read_to_string(&link)), libc::ENOENT);
    f.demo
        .tree
        .set_symlink_target(f.demo.link_id, "sub")
        .unwrap();
    assert_eq!(ok(f.sh("ls link/")), "up\n");

    f.demo.tree.remove(f.demo.link_id).unwrap();
    assert_eq!(errno_of(fs::read_link(&link)), libc::ENOENT);
    assert_eq!(errno_of(fs::symlink_metadata(&link)), libc::ENOENT);
    assert!(!f.sh("readlink link").status.success());
}

#[test]
fn directories_follow_the_tree() {
    let f = fixture!();
    let tree = &f.demo.tree;
    let md0 = tree.add_dir(tree.root(), "md0", 0o755).unwrap();
    let md = tree.add_dir(md0, "md", 0o755).unwrap();
    tree.add_symlink(md, "rd0", "dev-vda").unwrap();
    let dev = tree.add_dir(md, "dev-vda", 0o755).unwrap();
    let state = sysfs_like::FnAttr::read_only(|| Ok("in_sync\n".to_owned()));
    tree.add_attr(dev, "state", 0o444, std::sync::Arc::new(state))
        .unwrap();

    assert_eq!(ok(f.sh("cat md0/md/rd0/state")), "in_sync\n");
    assert_eq!(ok(f.sh("ls md0/md | tr '\\n' ' '")), "dev-vda rd0 ");
    assert_eq!(ok(f.sh("stat -c %h md0 md0/md .")), "3\n3\n4\n");
    assert_eq!(
        ok(f.sh("find md0 | sort | tr '\\n' ' '")),
        "md0 md0/md md0/md/dev-vda md0/md/dev-vda/state md0/md/rd0 "
    );

    tree.remove(md0).unwrap();
    assert_eq!(errno_of(fs::metadata(f.path("md0"))), libc::ENOENT);
    assert_eq!(
        errno_of(fs::read_to_string(f.path("md0/md/rd0/state"))),
        libc::ENOENT
    );
    assert_eq!(ok(f.sh("stat -c %h .")), "3\n");
    // The same name again is a new node with a new inode number.
    let again = tree.add_dir(tree.root(), "md0", 0o755).unwrap();
    assert_ne!(again, md0);
    assert_eq!(fs::metadata(f.path("md0")).unwrap().ino(), again.ino());
}

#[test]
fn odd_requests_get_errors_not_panics() {
    use std::ffi::OsStr;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileExt;

    let last_errno = || std::io::Error::last_os_error().raw_os_error().unwrap();

    let f = fixture!();
    // Names the tree cannot hold.
    let bad = f.mnt.join(OsStr::from_bytes(b"\xff\xfe"));
    assert_eq!(errno_of(fs::metadata(&bad)), libc::ENOENT);
    assert_eq!(
        errno_of(fs::metadata(f.path(&"n".repeat(255)))),
        libc::ENOENT
    );
    // /sys answers ENOENT too, not ENAMETOOLONG.
    assert_eq!(
        errno_of(fs::metadata(f.path(&"n".repeat(256)))),
        libc::ENOENT
    );
    assert_eq!(errno_of(fs::metadata(f.path("counter/x"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::read_dir(f.path("counter"))), libc::ENOTDIR);
    assert_eq!(errno_of(open(&f.path("sub"), libc::O_RDWR)), libc::EISDIR);
    assert_eq!(errno_of(fs::read(f.path("sub"))), libc::EISDIR);
    // Offsets far past the end of an attribute, and empty reads.
    let a = open(&f.path("counter"), libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(a.read_at(&mut buf, i64::MAX as u64 - 16).unwrap(), 0);
    assert_eq!(a.read_at(&mut buf[..0], 0).unwrap(), 0);
    // O_DIRECT, O_APPEND, O_SYNC and friends on a binary file.
    let d = open(
        &f.path("data"),
        libc::O_RDWR | libc::O_DIRECT | libc::O_SYNC | libc::O_NOATIME,
    )
    .unwrap();
    let mut aligned = common::AlignedBuf::new(4096);
    assert_eq!(d.read_at(&mut aligned, 4096).unwrap(), 4096);
    assert_eq!(d.write_at(&aligned, 4096).unwrap(), 4096);
    let ap = open(&f.path("data"), libc::O_WRONLY | libc::O_APPEND).unwrap();
    assert_eq!(errno_of(common::write_once(&ap, b"x")), libc::EFBIG);
    let (afd, dfd) = (a.as_raw_fd(), d.as_raw_fd());
    // Locks are kept by the kernel.
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(dfd, libc::LOCK_EX) }, 0);
    // SAFETY: an all-zero struct flock is valid; fcntl gets a pointer to it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(dfd, libc::F_SETLK, &fl) }, 0);
    // ioctl and fallocate are refused the way /sys refuses them.
    let mut termios = [0u8; 256];
    // SAFETY: TCGETS writes at most a struct termios into the buffer.
    let r = unsafe { libc::ioctl(afd, libc::TCGETS, termios.as_mut_ptr()) };
    assert_eq!(r, -1);
    assert_eq!(last_errno(), libc::ENOTTY);
    // SAFETY: fallocate on a descriptor we own.
    assert_eq!(unsafe { libc::fallocate(dfd, 0, 0, 4096) }, -1);
    assert_eq!(last_errno(), libc::EOPNOTSUPP);
    // SEEK_DATA falls back to the kernel's generic answer.
    // SAFETY: lseek on a descriptor we own.
    assert_eq!(unsafe { libc::lseek(dfd, 0, libc::SEEK_DATA) }, 0);
    // The mount still serves.
    assert_eq!(ok(f.sh("cat counter")), "0\n");
}
