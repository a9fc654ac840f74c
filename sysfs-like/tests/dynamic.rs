//! The tree changing while mounted: walkers racing a mutator, and files
//! left open on removed nodes.

mod common;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{VecFile, errno_of, open, poll_fd, read_once, rewind, write_once};
use sysfs_like::{FnAttr, NodeId, Tree};

/// Errors a walker may meet because the tree changed under it.
/// (ENODEV: a binary file removed between its open and its read.)
fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENODEV)
    )
}

/// Walks everything below `dir`, stat'ing every entry and reading every
/// readable file and link. Returns the errors that are not "it went away".
fn walk(dir: &Path, seen: &AtomicUsize) -> Vec<String> {
    let mut bad = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if vanished(&e) => return bad,
        Err(e) => return vec![format!("read_dir {}: {e}", dir.display())],
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if vanished(&e) => continue,
            Err(e) => {
                bad.push(format!("entry in {}: {e}", dir.display()));
                continue;
            }
        };
        seen.fetch_add(1, Ordering::Relaxed);
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if vanished(&e) => continue,
            Err(e) => {
                bad.push(format!("stat {}: {e}", path.display()));
                continue;
            }
        };
        let result = if meta.is_dir() {
            bad.extend(walk(&path, seen));
            Ok(())
        } else if meta.file_type().is_symlink() {
            fs::read_link(&path).map(drop)
        } else if meta.len() == 4096 && meta.permissions().readonly() {
            fs::read_to_string(&path).map(drop)
        } else {
            fs::read(&path).map(drop)
        };
        // The demo's write-only and failing attributes fail as they should.
        let expected = |e: &io::Error| match entry.file_name().to_str() {
            Some("new_dev") => e.raw_os_error() == Some(libc::EACCES),
            Some("failing") => e.raw_os_error() == Some(libc::EBUSY),
            _ => false,
        };
        match result {
            Err(e) if !vanished(&e) && !expected(&e) => {
                bad.push(format!("{}: {e}", path.display()))
            }
            _ => {}
        }
    }
    bad
}

/// One array-like subtree: md/array_state, md/dev-vda/state, md/rd0 -> dev-vda, data.
fn add_array(tree: &Tree, name: &str) -> NodeId {
    let top = tree.add_dir(tree.root(), name, 0o755).unwrap();
    let md = tree.add_dir(top, "md", 0o755).unwrap();
    let label = name.to_owned();
    let state = FnAttr::read_only(move || Ok(format!("{label} clean\n")));
    tree.add_attr(md, "array_state", 0o444, Arc::new(state))
        .unwrap();
    let dev = tree.add_dir(md, "dev-vda", 0o755).unwrap();
    let dstate = FnAttr::read_only(|| Ok("in_sync\n".to_owned()));
    tree.add_attr(dev, "state", 0o444, Arc::new(dstate))
        .unwrap();
    tree.add_symlink(md, "rd0", "dev-vda").unwrap();
    tree.add_bin(top, "data", 0o444, Arc::new(VecFile::new(8192, true)))
        .unwrap();
    top
}

#[test]
fn tree_mutates_while_four_threads_walk_it() {
    let f = fixture!();
    let tree = f.demo.tree.clone();
    let stop = AtomicBool::new(false);
    let seen = AtomicUsize::new(0);
    let mut removed: Vec<String> = Vec::new();
    let mut i = 0;

    let failures: Vec<String> = thread::scope(|s| {
        let walkers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut bad = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        bad.extend(walk(&f.mnt, &seen));
                    }
                    bad
                })
            })
            .collect();

        let mut live: Vec<(String, NodeId)> = Vec::new();
        let start = Instant::now();
        while i < 300 || start.elapsed() < Duration::from_secs(2) {
            let name = format!("md{i}");
            live.push((name.clone(), add_array(&tree, &name)));
            if let Some(rd0) = tree.lookup_path(&format!("{name}/md/rd0")) {
                tree.set_symlink_target(rd0, if i % 2 == 0 { "." } else { "dev-vda" })
                    .unwrap();
            }
            tree.notify(tree.lookup_path(&format!("{name}/md/array_state")).unwrap());
            if live.len() > 3 {
                let (old, id) = live.remove(0);
                tree.remove(id).unwrap();
                removed.push(old);
            }
            if i % 10 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        walkers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "walkers hit errors: {failures:#?}");
    eprintln!("walkers visited {} entries", seen.load(Ordering::Relaxed));
    assert!(seen.load(Ordering::Relaxed) > 100, "the walkers saw little");

    for name in &removed {
        assert_eq!(errno_of(fs::metadata(f.path(name))), libc::ENOENT, "{name}");
        assert_eq!(
            errno_of(fs::read_to_string(
                f.path(&format!("{name}/md/array_state"))
            )),
            libc::ENOENT
        );
    }
    assert_eq!(removed.len(), i - 3);
    for name in [i - 3, i - 2, i - 1].map(|n| format!("md{n}")) {
        assert_eq!(
            fs::read_to_string(f.path(&format!("{name}/md/array_state"))).unwrap(),
            format!("{name} clean\n")
        );
        assert_eq!(
            fs::read_to_string(f.path(&format!("{name}/md/dev-vda/state"))).unwrap(),
            "in_sync\n"
        );
    }
    // The mount still answers as before.
    assert_eq!(fs::read_to_string(f.path("counter")).unwrap(), "0\n");
}

#[test]
fn open_files_on_removed_nodes_fail_safely() {
    let f = fixture!();
    let tree = &f.demo.tree;
    let dir = tree.add_dir(tree.root(), "gone", 0o755).unwrap();
    let value = Arc::new(std::sync::Mutex::new("old".to_owned()));
    let (v1, v2) = (value.clone(), value.clone());
    let attr = FnAttr::new(
        move || Ok(format!("{}\n", v1.lock().unwrap())),
        move |s: &str| {
            *v2.lock().unwrap() = s.to_owned();
            Ok(())
        },
    );
    tree.add_attr(dir, "a", 0o644, Arc::new(attr)).unwrap();
    let bin = Arc::new(VecFile::new(4096, false));
    tree.add_bin(dir, "b", 0o644, bin.clone()).unwrap();

    let a = open(&f.path("gone/a"), libc::O_RDWR).unwrap();
    let b = open(&f.path("gone/b"), libc::O_RDWR).unwrap();
    assert_eq!(read_once(&a, 100).unwrap(), b"old\n");
    assert_eq!(read_once(&b, 4).unwrap(), [0, 1, 2, 3]);
    let (tx, rx) = std::sync::mpsc::channel();
    let poller = {
        let a = a.try_clone().unwrap();
        thread::spawn(move || {
            tx.send(poll_fd(&a, libc::POLLPRI, Duration::from_secs(20)))
                .unwrap();
        })
    };
    thread::sleep(Duration::from_millis(100));

    tree.remove(dir).unwrap();
    // (Other tests' fork+exec may close duplicates of `b`, so count from here.)
    let flushes = bin.flushes.load(Ordering::SeqCst);
    // Removal wakes pollers with POLLERR|POLLPRI.
    let revents = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("poller not woken");
    poller.join().unwrap();
    assert_eq!(
        revents & (libc::POLLERR | libc::POLLPRI),
        libc::POLLERR | libc::POLLPRI
    );

    *value.lock().unwrap() = "new".to_owned();
    // The attribute keeps serving its snapshot, even from offset 0 again.
    rewind(&a);
    assert_eq!(read_once(&a, 100).unwrap(), b"old\n");
    assert_eq!(errno_of(write_once(&a, b"x\n")), libc::ENODEV);
    assert_eq!(*value.lock().unwrap(), "new");
    // The binary file is gone for good.
    assert_eq!(errno_of(read_once(&b, 4)), libc::ENODEV);
    assert_eq!(errno_of(write_once(&b, b"x")), libc::ENODEV);
    assert_eq!(errno_of(b.sync_all()), libc::ENODEV);
    let pri = poll_fd(&b, libc::POLLPRI, Duration::ZERO);
    assert_eq!(pri & libc::POLLPRI, libc::POLLPRI);
    // fstat asks by inode only, and the inode is gone.
    assert_eq!(errno_of(b.metadata()), libc::ENOENT);
    // Paths are gone.
    assert_eq!(errno_of(fs::metadata(f.path("gone/a"))), libc::ENOENT);
    assert_eq!(errno_of(fs::metadata(f.path("gone"))), libc::ENOENT);
    drop(a);
    drop(b);
    // Closing a removed binary file does not reach it.
    assert_eq!(bin.flushes.load(Ordering::SeqCst), flushes);
    // A new node of the same name is unrelated.
    let dir = tree.add_dir(tree.root(), "gone", 0o755).unwrap();
    assert_eq!(fs::read_dir(f.path("gone")).unwrap().count(), 0);
    tree.remove(dir).unwrap();
}

#[test]
fn directory_listing_is_stable_while_it_changes() {
    let f = fixture!();
    let tree = &f.demo.tree;
    let d = tree.add_dir(tree.root(), "many", 0o755).unwrap();
    let names: Vec<String> = (0..500).map(|i| format!("entry-{i:04}")).collect();
    let ids: Vec<NodeId> = names
        .iter()
        .map(|n| tree.add_symlink(d, n, "x").unwrap())
        .collect();
    // Remove half while a listing is being read: every name it returns is
    // one that existed, none twice.
    let mut listing = fs::read_dir(f.path("many")).unwrap();
    let first: Vec<String> = listing
        .by_ref()
        .take(10)
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for id in ids.iter().step_by(2) {
        tree.remove(*id).unwrap();
    }
    let rest: Vec<String> = listing
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut all = first;
    all.extend(rest);
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(all.len(), dedup.len(), "duplicates in listing");
    assert!(all.iter().all(|n| names.contains(n)));
    // A fresh listing shows only what is left.
    let now: Vec<PathBuf> = fs::read_dir(f.path("many"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(now.len(), 250);
}
