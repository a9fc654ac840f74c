//! A kernfs-like tree served over FUSE with Linux sysfs semantics.
//!
//! This crate knows nothing of md. It holds a tree of directories, text
//! attributes ([`Attribute`], like a kernel `struct device_attribute`), binary
//! files ([`BinFile`], like a `struct bin_attribute`) and symlinks, lets other
//! threads add, retarget and remove nodes while it is mounted, and serves it
//! with [`mount`] over FUSE on several threads.
//!
//! # Semantics (as sysfs)
//!
//! * **Attributes** report size 4096 and their own mode. Opening one for
//!   reading takes one snapshot of [`Attribute::show`]; every read on that
//!   open file is served from it, so `cat` never sees a torn value. A read at
//!   offset 0 after an earlier read takes a fresh snapshot (what `seq_file`
//!   does after `lseek(fd, 0, SEEK_SET)`), which is how poll-then-reread
//!   monitors work. Attributes are opened direct-I/O, so the page cache never
//!   serves stale content. (Unlike sysfs, a show longer than a page is served
//!   whole rather than cut at 4095 bytes.)
//! * **Each `write(2)` is one [`Attribute::store`]** of exactly the bytes
//!   written, cut at the first NUL (the kernel hands stores a C string), with
//!   one trailing `'\n'` removed. A write longer than 4096 bytes fails with
//!   `E2BIG` and never reaches the store (kernfs' `atomic_write_len`; plain
//!   sysfs attributes on current kernels take the first 4096 bytes and return
//!   a short count instead, which would make the rest a second store). Bytes
//!   that are not UTF-8 go to [`Attribute::store_non_utf8`], which fails
//!   with `EINVAL` unless the attribute takes them; the store's error is the
//!   write's errno. An empty write stores nothing. `O_TRUNC` and `truncate(2)` are accepted and change nothing.
//! * **Open checks mode bits even for root** (kernfs'
//!   `KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK`): reading a file without read bits or
//!   writing one without write bits fails with `EACCES`. Ordinary permission
//!   checks are left to the kernel (`default_permissions`): every node is owned
//!   by the tree's owner, so only that user (and root) may write.
//! * **Users cannot change the namespace.** `mkdir`, `mknod`, `unlink`,
//!   `rmdir`, `rename`, `link` and `symlink` fail with `EPERM` and creating a
//!   file with `EACCES`, as on `/sys`. `chmod`/`chown` to anything but the
//!   current value fail with `EPERM`; timestamps may be set and are ignored.
//! * **poll**: every node has an event counter that [`Tree::notify`] bumps (the
//!   kernel's `sysfs_notify`). An open file remembers the counter of the
//!   snapshot it last read; `poll` always reports
//!   `POLLIN|POLLRDNORM|POLLOUT|POLLWRNORM` (the kernel's `DEFAULT_POLLMASK`)
//!   and adds `POLLERR|POLLPRI` once the counter has moved since, or the node
//!   is gone. As in the kernel, a file that has not been read yet reports
//!   `POLLPRI` at once: open, read, then poll. (An open binary file
//!   remembers the counter at open and at each read.)
//! * **Binary files** report their live [`BinFile::size`]. Reads stop at the
//!   size, writes at or past it fail with `EFBIG` (or the file's
//!   [`BinFile::write_past_end_errno`]) and writes crossing it are cut short
//!   (sysfs bin semantics; a size of 0 means "unbounded"). Opened
//!   direct-I/O (unless [`BinFile::direct_io`] says otherwise) with parallel
//!   direct writes, so each read and write reaches [`BinFile::read_at`] and
//!   [`BinFile::write_at`] whole, up to [`ServeOptions::max_request`].
//!   `ftruncate` to the current size succeeds; to any other size fails with
//!   `EPERM`: the size belongs to the file's provider, and the operation is
//!   refused rather than malformed.
//! * **Page cache** (a mount with a [`ServeOptions::page_cache`]): a
//!   binary file whose [`BinFile::page_cache`] says so has its opens
//!   without `O_DIRECT` served from the kernel's page cache, as a block
//!   device's buffered opens.  Reads are cached and read ahead.  Written
//!   through ([`PageCache::WriteThrough`]), each `write(2)` reaches
//!   [`BinFile::write_at`] before it returns.  Written back
//!   ([`PageCache::WriteBack`]), writes reach [`BinFile::write_at`] at
//!   write-back, their errors surface at `fsync` and `close`, and a write
//!   past the end fails only there.  `O_DIRECT` opens are served per
//!   request, and the kernel drops the cached pages a direct write covers.
//!   The file tells the tree of changes made behind the mount
//!   ([`Tree::invalidate_data`]).  Sizes stay the
//!   files' own although under write-back the kernel keeps its own
//!   `i_size` of every regular file: a binary file whose size changed gets
//!   a new inode at the next lookup, and a grown size is pushed to the
//!   inodes of descriptors still open.
//! * **Removal while open**: [`Tree::remove`] takes a whole subtree away at
//!   once. Lookups of removed names fail with `ENOENT`. Files still open keep
//!   working in a defined way: an attribute keeps serving its snapshot (writes
//!   fail with `ENODEV`), a binary file fails every read, write and fsync with
//!   `ENODEV`, and poll reports `POLLERR|POLLPRI`. Unlike kernfs, `fstat` on
//!   such a file fails with `ENOENT`: the kernel asks by inode number only.
//!
//! # Design
//!
//! The tree is an arena of nodes behind one `RwLock`; a node's index in the
//! arena is its identity. A [`NodeId`] is that index plus a generation, which
//! is bumped whenever a slot is freed, so a stale id (or a stale inode number
//! still cached by the kernel) never reaches a newer node that reuses the slot.
//! The FUSE inode number is `generation << 32 | (index + 1)`; the root is index
//! 0, generation 0, inode 1.
//!
//! All entry and attribute TTLs are zero, so the kernel asks again on every
//! path walk and `stat`: sizes and names are always live, and removed names
//! disappear at once.  (The attributes of a file served from the page
//! cache are kept a second: the kernel would ask before every write.) The tree lock is never held while calling into an
//! [`Attribute`] or [`BinFile`], so a store may itself add or remove nodes or
//! call [`Tree::notify`].
//!
//! Every open file gets an entry in a handle table (the FUSE `fh` is its slot
//! and generation). An attribute's entry holds the snapshot, the event counter
//! value it was taken at, and whether it has been read. Each node's event
//! counter lives with the node's list of pending poll notifiers: `poll`
//! registers the kernel's poll handle and reads the counter under one lock,
//! and `notify` bumps the counter and takes the registered handles under the
//! same lock, so a wake-up is never lost between the two.
//!
//! A binary file's read goes from a per-thread buffer straight into the reply
//! (one copy, into the kernel), and a write hands `write_at` the request
//! buffer fuser received it in (no copy at all).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use sysfs_like::{Errno, FnAttr, ServeOptions, Tree};
//!
//! let tree = Tree::new(0, 0);
//! let md = tree.add_dir(tree.root(), "md", 0o755).unwrap();
//! let value = Arc::new(AtomicU64::new(0));
//! let (v1, v2) = (value.clone(), value.clone());
//! tree.add_attr(
//!     md,
//!     "counter",
//!     0o644,
//!     Arc::new(FnAttr::new(
//!         move || Ok(format!("{}\n", v1.load(Ordering::Relaxed))),
//!         move |s| {
//!             v2.store(s.parse().map_err(|_| Errno::EINVAL)?, Ordering::Relaxed);
//!             Ok(())
//!         },
//!     )),
//! )
//! .unwrap();
//! tree.write_attr("md/counter", "7\n").unwrap();
//! assert_eq!(tree.read_attr("md/counter").unwrap(), "7\n");
//!
//! let mounted = sysfs_like::mount(tree, "/mnt/x".as_ref(), &ServeOptions::default()).unwrap();
//! mounted.wait().unwrap(); // until `umount /mnt/x`
//! ```

#![warn(missing_docs)]

mod attr;
mod cache;
mod errno;
mod fs;
mod mount;
mod readers;
mod tree;

pub use attr::{Attribute, BinFile, FnAttr, ShowFn, StoreFn};
pub use mount::{Mounted, PageCache, ServeOptions, Unmounter, mount};
pub use tree::{NodeId, NodeType, Tree};

pub use errno::Errno;

/// The size every text attribute reports, and the largest single write an
/// attribute accepts (`PAGE_SIZE` in sysfs).
pub const ATTR_SIZE: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_cross_threads() {
        send_sync::<Tree>();
        send_sync::<NodeId>();
        send_sync::<Unmounter>();
        send_sync::<ServeOptions>();
        fn send<T: Send>() {}
        send::<Mounted>();
    }
}
