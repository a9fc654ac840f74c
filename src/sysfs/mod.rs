//! The md attribute tables and the tree they live in.
//!
//! Each attribute is one `Row` (name, mode, group, show, store), as md.c's
//! `__ATTR` tables; `MdTree` binds rows to arrays and members on the
//! `sysfs-like` tree, keeps directories and links in step with md (it is
//! md's `Observer`), and serves the root files: `mdstat`, `new_array`,
//! `speed_limit_min`, `speed_limit_max`, `log`.
//!
//! ```text
//! MOUNT/mdstat  new_array  speed_limit_min  speed_limit_max
//! start_dirty_degraded  log
//! MOUNT/md0/data  size  md/{array attrs}  md/bitmap/*  md/dev-NAME/*  md/rdN -> dev-NAME
//! MOUNT/md0/slaves/NAME/{dev,size,path}  md/dev-NAME/block -> ../../slaves/NAME
//! ```

pub mod array;
pub mod bitmap;
pub mod rdev;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use sysfs_like::{Attribute, BinFile, FnAttr, NodeId, Tree};

use self::rdev::RdevCtx;
use crate::md::{Errno, Md, Mddev, Observer, Rdev, mdstat};

/// Which group an attribute belongs to (groups come and go together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Default,
    /// `md_redundancy_group`: only while a redundant personality runs.
    Redundancy,
    Bitmap,
}

/// An attribute's show: the value, with its newline.
pub type ShowFn<C> = fn(&C) -> Result<String, Errno>;
/// An attribute's store: one written value, its newline removed.
pub type StoreFn<C> = fn(&C, &str) -> Result<(), Errno>;

/// One attribute: `__ATTR(name, mode, show, store)`.
pub struct Row<C: 'static> {
    pub name: &'static str,
    pub mode: u32,
    pub group: Group,
    pub show: Option<ShowFn<C>>,
    pub store: Option<StoreFn<C>>,
}

/// An array attribute bound to its array (held weakly: the array may go).
struct ArrayAttr {
    mddev: Weak<Mddev>,
    row: &'static Row<Arc<Mddev>>,
}

impl Attribute for ArrayAttr {
    fn show(&self) -> Result<String, Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        (self.row.show.ok_or(Errno::EIO)?)(&m)
    }
    fn store(&self, value: &str) -> Result<(), Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        (self.row.store.ok_or(Errno::EIO)?)(&m, value)
    }
    fn store_non_utf8(&self, value: &[u8]) -> Result<(), Errno> {
        self.store(&non_utf8(value))
    }
}

/// A file of the running personality's own (`Personality::attrs`),
/// answered by the running instance; ENODEV once it stopped.
struct PersAttrNode {
    mddev: Weak<Mddev>,
    name: &'static str,
}

impl Attribute for PersAttrNode {
    fn show(&self) -> Result<String, Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.pers().ok_or(Errno::ENODEV)?.attr_show(&m, self.name)
    }
    fn store(&self, value: &str) -> Result<(), Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.pers()
            .ok_or(Errno::ENODEV)?
            .attr_store(&m, self.name, value)
    }
    fn store_non_utf8(&self, value: &[u8]) -> Result<(), Errno> {
        self.store(&non_utf8(value))
    }
}

/// A value that is not UTF-8, as a store sees it.  md hands the bytes to
/// its store, which may look at the array's state first (EBUSY, ENOENT)
/// or not at the value at all, and whose parsers refuse a byte of 0x80
/// and over wherever they want a digit or a word.  What is not UTF-8
/// becomes U+FFFD, which every row refuses where md refuses such a byte;
/// a value kept as written (an inactive array's `level`) reads back with
/// U+FFFD in its place.
fn non_utf8(value: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value)
}

/// A member attribute.
struct MemberAttr {
    mddev: Weak<Mddev>,
    rdev: Weak<Rdev>,
    row: &'static Row<RdevCtx>,
}

impl MemberAttr {
    fn ctx(&self) -> Result<RdevCtx, Errno> {
        Ok(RdevCtx {
            mddev: self.mddev.upgrade().ok_or(Errno::ENODEV)?,
            rdev: self.rdev.upgrade().ok_or(Errno::ENODEV)?,
        })
    }
}

impl Attribute for MemberAttr {
    fn show(&self) -> Result<String, Errno> {
        let c = self.ctx()?;
        (self.row.show.ok_or(Errno::EIO)?)(&c)
    }
    fn store(&self, value: &str) -> Result<(), Errno> {
        let c = self.ctx()?;
        let r = (self.row.store.ok_or(Errno::EIO)?)(&c, value);
        // rdev_attr_store runs every store under the reconfig mutex, and
        // mddev_unlock wakes md's thread: whatever the store left for it
        // (a failure to record, a member to take out) happens now.
        c.mddev.wakeup();
        r
    }
    fn store_non_utf8(&self, value: &[u8]) -> Result<(), Errno> {
        self.store(&non_utf8(value))
    }
}

/// `mdN/data`: the array's contents.
struct DataFile {
    mddev: Weak<Mddev>,
}

impl BinFile for DataFile {
    fn size(&self) -> u64 {
        self.mddev.upgrade().map(|m| m.array_bytes()).unwrap_or(0)
    }

    fn open(&self, _write: bool) -> Result<(), Errno> {
        // A read-only array opens for writing too (writes then fail), as
        // a read-only block device does.
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.open_data();
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.read_data(buf, offset)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.write_data(data, offset)
    }

    fn release(&self) {
        // The last close of an open: one opener fewer (the array can stop
        // when none is left).
        if let Some(m) = self.mddev.upgrade() {
            m.close_data();
        }
    }

    fn fsync(&self, _datasync: bool) -> Result<(), Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.flush_data()
    }

    fn fallocate(&self, offset: u64, length: u64, mode: i32) -> Result<(), Errno> {
        let m = self.mddev.upgrade().ok_or(Errno::ENODEV)?;
        m.fallocate_data(offset, length, mode)
    }

    /// `blkdev_write_iter`: a write at or past the end of the device.
    fn write_past_end_errno(&self) -> Errno {
        Errno::ENOSPC
    }

    /// `truncate(2)` of a block device.
    fn resize_errno(&self) -> Errno {
        Errno::EINVAL
    }

    /// Opens as a block device's, when the mount has a page cache
    /// (`--data-cache=writethrough|writeback`): md tells the tree of every
    /// change it makes behind the cache (`Observer::data_changed`).
    fn page_cache(&self) -> bool {
        true
    }
}

/// `log`: the kernel-style messages, oldest first.  A binary file so that
/// its size is the real length (`tail` works); reads see the log as it is
/// at the time of each read.
struct LogFile {
    md: Weak<Md>,
}

impl BinFile for LogFile {
    fn size(&self) -> u64 {
        self.md
            .upgrade()
            .map(|m| m.log.contents().len() as u64)
            .unwrap_or(0)
    }

    fn open(&self, write: bool) -> Result<(), Errno> {
        if write { Err(Errno::EACCES) } else { Ok(()) }
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let md = self.md.upgrade().ok_or(Errno::ENODEV)?;
        let text = md.log.contents();
        let bytes = text.as_bytes();
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, _data: &[u8], _offset: u64) -> Result<usize, Errno> {
        Err(Errno::EACCES)
    }
}

/// The tree of one mount, and md's observer.
pub struct MdTree {
    pub tree: Arc<Tree>,
    pub md: Arc<Md>,
    /// Serialises structural changes (directories, groups, links).
    structure: Mutex<()>,
    /// The personality files added to each array's `md/`, by array.
    pers_files: Mutex<std::collections::HashMap<String, Vec<&'static str>>>,
    /// Where the arrays' NBD exports listen, once the daemon serves them.
    nbd_dir: Arc<std::sync::OnceLock<std::path::PathBuf>>,
    /// Called when an array starts or stops running (the NBD exports).
    running_hook: std::sync::OnceLock<RunningHook>,
}

type RunningHook = Box<dyn Fn(&Arc<Mddev>) + Send + Sync>;

impl MdTree {
    /// Build the root files and attach to `md` as its observer.
    pub fn new(md: Arc<Md>, uid: u32, gid: u32) -> Arc<MdTree> {
        let tree = Tree::new(uid, gid);
        let t = Arc::new(MdTree {
            tree,
            md: md.clone(),
            structure: Mutex::new(()),
            pers_files: Mutex::new(std::collections::HashMap::new()),
            nbd_dir: Arc::default(),
            running_hook: std::sync::OnceLock::new(),
        });
        t.add_root_files();
        md.set_observer(t.clone());
        t
    }

    /// The arrays' NBD exports listen in `dir`: `mdN/nbd` reads the URI.
    pub fn set_nbd_dir(&self, dir: std::path::PathBuf) {
        let _ = self.nbd_dir.set(dir);
    }

    /// Have `hook` called whenever an array starts or stops running.
    pub fn set_running_hook(&self, hook: RunningHook) {
        let _ = self.running_hook.set(hook);
    }

    fn add_root_files(self: &Arc<Self>) {
        let root = self.tree.root();
        let md = Arc::downgrade(&self.md);
        let md2 = md.clone();
        let add = |name: &str, mode: u32, a: Arc<dyn Attribute>| {
            self.tree.add_attr(root, name, mode, a).expect("fresh root");
        };
        add(
            "mdstat",
            0o444,
            Arc::new(FnAttr::read_only(move || {
                Ok(mdstat::mdstat(&*md.upgrade().ok_or(Errno::ENODEV)?))
            })),
        );
        let weak_self = Arc::downgrade(self);
        add(
            "new_array",
            0o200,
            Arc::new(FnAttr::write_only(move |name: &str| {
                let t = weak_self.upgrade().ok_or(Errno::ENODEV)?;
                t.new_array(name)
            })),
        );
        for (name, is_min) in [("speed_limit_min", true), ("speed_limit_max", false)] {
            let mdw = md2.clone();
            let mdw2 = md2.clone();
            add(
                name,
                0o644,
                Arc::new(FnAttr::new(
                    move || {
                        let md = mdw.upgrade().ok_or(Errno::ENODEV)?;
                        let v = if is_min {
                            &md.speed_limit_min
                        } else {
                            &md.speed_limit_max
                        };
                        // An int: what md compares unsigned (a negative
                        // value is a huge speed) reads back negative.
                        Ok(format!("{}\n", v.load(Ordering::Acquire) as i32))
                    },
                    move |s: &str| {
                        let md = mdw2.upgrade().ok_or(Errno::ENODEV)?;
                        let v = crate::kstr::proc_dointvec(s)?;
                        let a = if is_min {
                            &md.speed_limit_min
                        } else {
                            &md.speed_limit_max
                        };
                        a.store(v as u32, Ordering::Release);
                        Ok(())
                    },
                )),
            );
        }
        // md_mod's start_dirty_degraded, an int (param_set_int).
        let mdw = md2.clone();
        let mdw2 = md2.clone();
        add(
            "start_dirty_degraded",
            0o644,
            Arc::new(FnAttr::new(
                move || {
                    let md = mdw.upgrade().ok_or(Errno::ENODEV)?;
                    Ok(format!(
                        "{}\n",
                        md.start_dirty_degraded.load(Ordering::Acquire)
                    ))
                },
                move |s: &str| {
                    let md = mdw2.upgrade().ok_or(Errno::ENODEV)?;
                    let v = crate::kstr::kstrtoint(s)?;
                    md.start_dirty_degraded.store(v, Ordering::Release);
                    Ok(())
                },
            )),
        );
        // Module parameters (/sys/module/PERS/parameters/NAME).
        for p in self.md.personalities() {
            for param in p.params() {
                add(
                    &format!("{}_{}", p.name(), param.name),
                    0o644,
                    Arc::new(FnAttr::new(
                        move || Ok((param.show)()),
                        move |s: &str| (param.store)(s),
                    )),
                );
            }
        }
        let _ = self
            .tree
            .add_bin(root, "log", 0o444, Arc::new(LogFile { md: md2.clone() }));
    }

    /// `new_array`: `mdN` or `md_NAME` (`add_named_array`: every trailing
    /// newline goes, and a name must fit `DISK_NAME_LEN`, else E2BIG).
    pub fn new_array(&self, name: &str) -> Result<(), Errno> {
        let name = name.trim_end_matches('\n');
        if name.len() >= 32 {
            return Err(Errno::E2BIG);
        }
        let mddev = self.md.new_array(name)?;
        self.add_array_dir(&mddev);
        Ok(())
    }

    fn add_array_dir(&self, m: &Arc<Mddev>) {
        let _s = self.structure.lock();
        let root = self.tree.root();
        let Ok(dir) = self.tree.add_dir(root, &m.name, 0o755) else {
            return;
        };
        let weak = Arc::downgrade(m);
        let _ = self.tree.add_bin(
            dir,
            "data",
            0o660,
            Arc::new(DataFile {
                mddev: weak.clone(),
            }),
        );
        let w2 = weak.clone();
        let _ = self.tree.add_attr(
            dir,
            "size",
            0o444,
            Arc::new(FnAttr::read_only(move || {
                Ok(format!(
                    "{}\n",
                    w2.upgrade().ok_or(Errno::ENODEV)?.array_sectors()
                ))
            })),
        );
        // `nbd`: the URI of the array's NBD export while it runs (mdfuse's
        // own).
        let (w3, nbd_dir) = (weak.clone(), self.nbd_dir.clone());
        let _ = self.tree.add_attr(
            dir,
            "nbd",
            0o444,
            Arc::new(FnAttr::read_only(move || {
                let m = w3.upgrade().ok_or(Errno::ENODEV)?;
                match nbd_dir.get() {
                    Some(d) if m.is_running() => {
                        Ok(format!("{}\n", crate::nbd_export::uri(d, &m.name)))
                    }
                    _ => Err(Errno::ENODEV),
                }
            })),
        );
        let _ = self.tree.add_dir(dir, "slaves", 0o755);
        let Ok(mdd) = self.tree.add_dir(dir, "md", 0o755) else {
            return;
        };
        for row in array::ARRAY_ATTRS
            .iter()
            .filter(|r| r.group == Group::Default)
        {
            let _ = self.tree.add_attr(
                mdd,
                row.name,
                row.mode,
                Arc::new(ArrayAttr {
                    mddev: weak.clone(),
                    row,
                }),
            );
        }
        let Ok(bm) = self.tree.add_dir(mdd, "bitmap", 0o755) else {
            return;
        };
        for row in bitmap::BITMAP_ATTRS {
            let _ = self.tree.add_attr(
                bm,
                row.name,
                row.mode,
                Arc::new(ArrayAttr {
                    mddev: weak.clone(),
                    row,
                }),
            );
        }
    }

    fn md_dir(&self, m: &Mddev) -> Option<NodeId> {
        self.tree.lookup_path(&format!("{}/md", m.name))
    }

    /// The running personality's own files (`raid5_attrs_group`): added
    /// when it runs, removed when it stops or another runs.
    fn sync_pers_group(&self, m: &Arc<Mddev>) {
        let _s = self.structure.lock();
        let Some(mdd) = self.md_dir(m) else { return };
        let want: &'static [crate::md::personality::PersAttr] =
            m.pers().map_or(&[], |p| p.personality().attrs());
        let mut files = self.pers_files.lock();
        let have = files.entry(m.name.clone()).or_default();
        for name in have.iter() {
            if !want.iter().any(|a| a.name == *name) {
                if let Some(n) = self.tree.lookup(mdd, name) {
                    let _ = self.tree.remove(n);
                }
            }
        }
        have.retain(|name| want.iter().any(|a| a.name == *name));
        for a in want {
            if self.tree.lookup(mdd, a.name).is_none() {
                let _ = self.tree.add_attr(
                    mdd,
                    a.name,
                    a.mode,
                    Arc::new(PersAttrNode {
                        mddev: Arc::downgrade(m),
                        name: a.name,
                    }),
                );
                have.push(a.name);
            }
        }
    }

    fn sync_redundancy_group(&self, m: &Arc<Mddev>) {
        let _s = self.structure.lock();
        let Some(mdd) = self.md_dir(m) else { return };
        let want = m.pers().is_some_and(|p| p.personality().redundant());
        for row in array::ARRAY_ATTRS
            .iter()
            .filter(|r| r.group == Group::Redundancy)
        {
            let have = self.tree.lookup(mdd, row.name);
            match (want, have) {
                (true, None) => {
                    let _ = self.tree.add_attr(
                        mdd,
                        row.name,
                        row.mode,
                        Arc::new(ArrayAttr {
                            mddev: Arc::downgrade(m),
                            row,
                        }),
                    );
                }
                (false, Some(n)) => {
                    let _ = self.tree.remove(n);
                }
                _ => {}
            }
        }
    }
}

impl Observer for MdTree {
    fn notify(&self, m: &Mddev, attr: &str) {
        if let Some(n) = self.tree.lookup_path(&format!("{}/md/{attr}", m.name)) {
            self.tree.notify(n);
        }
    }

    fn notify_rdev(&self, m: &Mddev, r: &Rdev, attr: &str) {
        if let Some(n) = self
            .tree
            .lookup_path(&format!("{}/md/dev-{}/{attr}", m.name, r.name))
        {
            self.tree.notify(n);
        }
    }

    fn rdev_bound(&self, m: &Arc<Mddev>, r: &Arc<Rdev>) {
        let _s = self.structure.lock();
        let Some(mdd) = self.md_dir(m) else { return };
        let Ok(dir) = self.tree.add_dir(mdd, &format!("dev-{}", r.name), 0o755) else {
            return;
        };
        for row in rdev::rdev_attrs(r) {
            let a = MemberAttr {
                mddev: Arc::downgrade(m),
                rdev: Arc::downgrade(r),
                row,
            };
            let _ = self.tree.add_attr(dir, row.name, row.mode, Arc::new(a));
        }
        // `block` leads to a directory describing the member, as sysfs's
        // leads to the block device's: a write through it fails (EISDIR).
        let Some(slaves) = self.tree.lookup_path(&format!("{}/slaves", m.name)) else {
            return;
        };
        let Ok(bdir) = self.tree.add_dir(slaves, &r.name, 0o755) else {
            return;
        };
        for row in rdev::block_attrs(r) {
            let a = MemberAttr {
                mddev: Arc::downgrade(m),
                rdev: Arc::downgrade(r),
                row,
            };
            let _ = self.tree.add_attr(bdir, row.name, row.mode, Arc::new(a));
        }
        let _ = self
            .tree
            .add_symlink(dir, "block", &format!("../../slaves/{}", r.name));
    }

    fn rdev_unbound(&self, m: &Mddev, r: &Rdev) {
        let _s = self.structure.lock();
        if let Some(n) = self
            .tree
            .lookup_path(&format!("{}/md/dev-{}", m.name, r.name))
        {
            let _ = self.tree.remove(n);
        }
        if let Some(n) = self
            .tree
            .lookup_path(&format!("{}/slaves/{}", m.name, r.name))
        {
            let _ = self.tree.remove(n);
        }
    }

    fn slot_link(&self, m: &Mddev, slot: i32, r: Option<&Rdev>) {
        if slot < 0 {
            return;
        }
        let _s = self.structure.lock();
        let Some(mdd) = self.md_dir(m) else { return };
        let name = format!("rd{slot}");
        let existing = self.tree.lookup(mdd, &name);
        match (r, existing) {
            (Some(r), Some(n)) => {
                let _ = self.tree.set_symlink_target(n, &format!("dev-{}", r.name));
            }
            (Some(r), None) => {
                let _ = self
                    .tree
                    .add_symlink(mdd, &name, &format!("dev-{}", r.name));
            }
            (None, Some(n)) => {
                let _ = self.tree.remove(n);
            }
            (None, None) => {}
        }
    }

    fn running_changed(&self, m: &Arc<Mddev>) {
        self.sync_redundancy_group(m);
        self.sync_pers_group(m);
        self.notify(m, "array_state");
        if let Some(hook) = self.running_hook.get() {
            hook(m);
        }
    }

    fn array_removed(&self, name: &str) {
        let _s = self.structure.lock();
        self.pers_files.lock().remove(name);
        if let Some(n) = self.tree.lookup_path(name) {
            let _ = self.tree.remove(n);
        }
    }

    fn data_changed(&self, mddev: &Mddev, offset: u64, len: u64) {
        if let Some(n) = self.tree.lookup_path(&format!("{}/data", mddev.name)) {
            self.tree.invalidate_data(n, offset, len);
        }
    }
}
