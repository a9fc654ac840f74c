//! A defect below the tree that panics while serving a request fails
//! that request with EIO; the mount, its serving threads and every other
//! file go on.

mod common;

use std::fs;
use std::sync::Arc;

use common::{Fixture, errno_of, is_mounted};
use sysfs_like::{FnAttr, ServeOptions};

#[test]
fn a_panic_in_a_show_or_store_fails_that_request_only() {
    let opts = ServeOptions {
        threads: 2,
        ..Default::default()
    };
    let Some(f) = Fixture::with_options(&opts) else {
        return;
    };
    let root = f.demo.tree.root();
    let panics = FnAttr::new(
        || panic!("a show that panics"),
        |_: &str| panic!("a store that panics"),
    );
    f.demo
        .tree
        .add_attr(root, "panics", 0o644, Arc::new(panics))
        .unwrap();
    // More panics than serving threads: were each to end its thread,
    // none would be left (and the first one's end unmounts).
    for _ in 0..8 {
        assert_eq!(errno_of(fs::read_to_string(f.path("panics"))), libc::EIO);
        assert_eq!(errno_of(fs::write(f.path("panics"), "1\n")), libc::EIO);
    }
    assert!(is_mounted(&f.mnt), "the mount is gone");
    fs::write(f.path("counter"), "7\n").unwrap();
    assert_eq!(fs::read_to_string(f.path("counter")).unwrap(), "7\n");
}
