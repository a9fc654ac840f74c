//! What a node serves: text attributes and binary files.

use crate::{ATTR_SIZE, Errno};

/// A text attribute, like a kernel `struct device_attribute`.
///
/// Both methods are called without any lock of the tree held, from any of
/// the serving threads, possibly concurrently.
pub trait Attribute: Send + Sync {
    /// Renders the value, including its trailing `"\n"`.
    ///
    /// Called once per open for reading, and again on a read at offset 0
    /// after an earlier read (as `seq_file` does after `lseek(fd, 0, SEEK_SET)`).
    /// `Err(errno)` becomes the errno of `read(2)`.
    fn show(&self) -> Result<String, Errno>;

    /// Takes one written value.
    ///
    /// One `write(2)` is one store of exactly the bytes written (up to the
    /// first NUL), with one trailing `'\n'` removed if present. `Err(errno)`
    /// becomes the errno of that `write(2)`: `echo bogus > attr` prints
    /// "Invalid argument" for `Err(Errno::EINVAL)`.
    fn store(&self, value: &str) -> Result<(), Errno>;

    /// Takes one written value that is not UTF-8, cut and trimmed as for
    /// [`store`](Self::store).  `EINVAL` unless the attribute overrides
    /// it: sysfs hands such bytes to the kernel's store as they are, and
    /// an attribute that answers them as its kernel counterpart does
    /// (which may look at its state before the value) takes them here.
    fn store_non_utf8(&self, value: &[u8]) -> Result<(), Errno> {
        let _ = value;
        Err(Errno::EINVAL)
    }
}

/// A binary file, like a kernel `struct bin_attribute`. Offsets and lengths
/// are in bytes.
///
/// All methods are called without any lock of the tree held, from any of the
/// serving threads, possibly concurrently.
pub trait BinFile: Send + Sync {
    /// The current size. It may change over time; `stat` reports it live.
    /// Reads are cut at it and writes at or past it fail (with
    /// [`write_past_end_errno`](Self::write_past_end_errno)), unless
    /// it is 0, which means "unbounded".
    fn size(&self) -> u64;

    /// Called on every open; `write` tells whether the file is opened for
    /// writing. `Err(errno)` fails the `open(2)` (e.g. `EROFS`).
    fn open(&self, write: bool) -> Result<(), Errno> {
        let _ = write;
        Ok(())
    }

    /// Reads into `buf` from `offset` and returns how many bytes it filled
    /// (from the start of `buf`). Fewer than `buf.len()` means end of file.
    /// `buf` never reaches past [`size`](Self::size) when that is not 0.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno>;

    /// Writes `data` at `offset` and returns how many bytes it took.
    /// `data` never reaches past [`size`](Self::size) when that is not 0.
    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, Errno>;

    /// Called on every `close(2)` of a descriptor of this file (FUSE flush).
    /// An error becomes the errno of that `close(2)`.
    fn flush(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// Called once when the last descriptor of one successful
    /// [`open`](Self::open) goes away (FUSE release), also for a file
    /// removed meanwhile: every `open` that succeeded gets one `release`.
    fn release(&self) {}

    /// Called by `fsync(2)` (`datasync == false`) and `fdatasync(2)`
    /// (`datasync == true`).
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        let _ = datasync;
        Ok(())
    }

    /// The errno of a write at or past a non-zero [`size`](Self::size):
    /// `EFBIG`, as for a sysfs binary attribute.  A file standing in for a
    /// block device says `ENOSPC`, as a block device does.
    fn write_past_end_errno(&self) -> Errno {
        Errno::EFBIG
    }
    /// The errno of a truncate to another size than
    /// [`size`](Self::size): `EPERM` (the size is the file's own); a file
    /// standing in for a block device says `EINVAL`, as `truncate(2)` on a
    /// block device does.
    fn resize_errno(&self) -> Errno {
        Errno::EPERM
    }

    /// Called by `fallocate(2)` with its `mode` bits (`FALLOC_FL_*`) and
    /// byte range, as given.  Binary attributes have none: `EOPNOTSUPP`
    /// (so that a loop device over the file drops discards, as it does
    /// for such a file).
    fn fallocate(&self, offset: u64, length: u64, mode: i32) -> Result<(), Errno> {
        let _ = (offset, length, mode);
        Err(Errno::EOPNOTSUPP)
    }

    /// Whether opens may be served from the kernel's page cache when the
    /// mount has one ([`ServeOptions::page_cache`](crate::ServeOptions::page_cache)),
    /// as a block device's buffered opens are: reads arrive as whole pages
    /// (and readahead), and the kernel also reads through descriptors
    /// opened write-only, to fill the rest of a partly written page.
    /// Written through, each `write(2)` still reaches
    /// [`write_at`](Self::write_at) before it returns, with its error.
    /// Written back, writes gather in the cache and reach `write_at` at
    /// write-back (at the latest by `fsync`, `close` or memory pressure),
    /// and a write-back's error surfaces at `fsync` or `close`, not at the
    /// `write(2)` that made the page dirty.  `O_DIRECT` opens, and opens
    /// while the size is 0, reach the file per request.
    ///
    /// The file must tell the tree when its contents change other than
    /// through writes to the mount ([`Tree::invalidate_data`](crate::Tree::invalidate_data)).
    /// Written back, a buffered write past the end is refused only at
    /// write-back: the kernel extends its idea of the size when the write
    /// lands in the cache, and that inode keeps the larger size for the
    /// descriptors open on it (new lookups get a new inode of the right
    /// size).  Default false.
    fn page_cache(&self) -> bool {
        false
    }

    /// Whether opens bypass the page cache (`FOPEN_DIRECT_IO`), so that every
    /// `read(2)` and `write(2)` reaches [`read_at`](Self::read_at) and
    /// [`write_at`](Self::write_at) with its own offset and length.
    fn direct_io(&self) -> bool {
        true
    }
}

/// The `show` of a write-only [`FnAttr`]: fails with `EIO`, as the kernel's
/// `dev_attr_show` does for an attribute without one.
pub type ShowFn = fn() -> Result<String, Errno>;

/// The `store` of a read-only [`FnAttr`]: fails with `EIO`, as the kernel's
/// `dev_attr_store` does for an attribute without one.
pub type StoreFn = fn(&str) -> Result<(), Errno>;

fn no_show() -> Result<String, Errno> {
    Err(Errno::EIO)
}

fn no_store(_: &str) -> Result<(), Errno> {
    Err(Errno::EIO)
}

/// An [`Attribute`] made of two closures.
///
/// ```
/// use std::sync::Arc;
/// use sysfs_like::{FnAttr, Tree};
///
/// let tree = Tree::new(0, 0);
/// let root = tree.root();
/// tree.add_attr(root, "uuid", 0o444, Arc::new(FnAttr::read_only(|| Ok("abc\n".into()))))
///     .unwrap();
/// tree.add_attr(root, "new_dev", 0o200, Arc::new(FnAttr::write_only(|_v| Ok(()))))
///     .unwrap();
/// assert_eq!(tree.read_attr("uuid").unwrap(), "abc\n");
/// ```
pub struct FnAttr<S, W> {
    show: S,
    store: W,
}

impl<S, W> FnAttr<S, W>
where
    S: Fn() -> Result<String, Errno> + Send + Sync,
    W: Fn(&str) -> Result<(), Errno> + Send + Sync,
{
    /// An attribute that can be read and written.
    pub fn new(show: S, store: W) -> Self {
        FnAttr { show, store }
    }
}

impl<S> FnAttr<S, StoreFn>
where
    S: Fn() -> Result<String, Errno> + Send + Sync,
{
    /// An attribute without a store; a store fails with `EIO`. Give it a mode
    /// without write bits (e.g. 0444) so that opening it for writing fails
    /// with `EACCES` first.
    pub fn read_only(show: S) -> Self {
        FnAttr {
            show,
            store: no_store,
        }
    }
}

impl<W> FnAttr<ShowFn, W>
where
    W: Fn(&str) -> Result<(), Errno> + Send + Sync,
{
    /// An attribute without a show; a show fails with `EIO`. Give it a mode
    /// without read bits (e.g. 0200) so that opening it for reading fails
    /// with `EACCES` first.
    pub fn write_only(store: W) -> Self {
        FnAttr {
            show: no_show,
            store,
        }
    }
}

impl<S, W> Attribute for FnAttr<S, W>
where
    S: Fn() -> Result<String, Errno> + Send + Sync,
    W: Fn(&str) -> Result<(), Errno> + Send + Sync,
{
    fn show(&self) -> Result<String, Errno> {
        (self.show)()
    }

    fn store(&self, value: &str) -> Result<(), Errno> {
        (self.store)(value)
    }
}

/// One `write(2)` to an attribute, as sysfs turns it into one store: at most
/// [`ATTR_SIZE`] bytes (else `E2BIG`), cut at the first NUL, one trailing
/// newline removed, to [`Attribute::store`] when UTF-8 and to
/// [`Attribute::store_non_utf8`] otherwise. An empty write stores nothing.
pub(crate) fn store_bytes(attr: &dyn Attribute, data: &[u8]) -> Result<(), Errno> {
    if data.len() as u64 > ATTR_SIZE {
        return Err(Errno::E2BIG);
    }
    if data.is_empty() {
        return Ok(());
    }
    let data = match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    };
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(value) => attr.store(value),
        Err(_) => attr.store_non_utf8(data),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Recorder(Mutex<Vec<String>>);

    impl Attribute for Recorder {
        fn show(&self) -> Result<String, Errno> {
            Ok(String::new())
        }
        fn store(&self, value: &str) -> Result<(), Errno> {
            self.0.lock().unwrap().push(value.to_owned());
            Ok(())
        }
    }

    /// Takes text; says ENOTTY to anything else, once it lost its newline.
    struct Lossy;

    impl Attribute for Lossy {
        fn show(&self) -> Result<String, Errno> {
            Ok(String::new())
        }
        fn store(&self, _value: &str) -> Result<(), Errno> {
            Ok(())
        }
        fn store_non_utf8(&self, value: &[u8]) -> Result<(), Errno> {
            assert_eq!(value, b"\xff\xfe");
            Err(Errno::ENOTTY)
        }
    }

    #[test]
    fn store_bytes_follows_sysfs() {
        let r = Recorder(Mutex::new(Vec::new()));
        store_bytes(&r, b"active\n").unwrap();
        store_bytes(&r, b"active").unwrap();
        store_bytes(&r, b"two\n\n").unwrap();
        store_bytes(&r, b"128\0junk\xff").unwrap();
        store_bytes(&r, b"\0x").unwrap();
        store_bytes(&r, b"").unwrap();
        store_bytes(&r, &[b'a'; 4096]).unwrap();
        assert_eq!(store_bytes(&r, &[b'a'; 4097]), Err(Errno::E2BIG));
        assert_eq!(store_bytes(&r, b"\xff\xfe\n"), Err(Errno::EINVAL));
        assert_eq!(store_bytes(&Lossy, b"\xff\xfe\n"), Err(Errno::ENOTTY));
        assert_eq!(store_bytes(&Lossy, b"ok\n"), Ok(()));
        let got = r.0.lock().unwrap();
        assert_eq!(got[..5], ["active", "active", "two\n", "128", ""]);
        assert_eq!(got.len(), 6);
        assert_eq!(got[5].len(), 4096);
    }

    #[test]
    fn fn_attr_without_a_half_gives_eio() {
        let ro = FnAttr::read_only(|| Ok("x\n".to_owned()));
        assert_eq!(ro.show().unwrap(), "x\n");
        assert_eq!(ro.store("y"), Err(Errno::EIO));
        let wo = FnAttr::write_only(|_| Ok(()));
        assert_eq!(wo.show(), Err(Errno::EIO));
        assert_eq!(wo.store("y"), Ok(()));
    }
}
