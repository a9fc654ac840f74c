//! The tree: an arena of nodes behind one lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use fuser::PollNotifier;
use log::debug;
use parking_lot::{Mutex, RwLock};

use crate::attr::store_bytes;
use crate::cache::KernelCache;
use crate::{Attribute, BinFile, Errno};

/// The root's arena index.
const ROOT_INDEX: u32 = 0;
/// The longest name a node may have (`NAME_MAX`).
const MAX_NAME_LEN: usize = 255;
/// The longest symlink target (`PATH_MAX` without its NUL).
const MAX_TARGET_LEN: usize = 4095;
/// How many symlinks a path walk follows before giving up (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: u32 = 40;
/// Permission bits a node keeps from the mode it is created with.
const MODE_MASK: u32 = 0o777;

/// Names a node of a [`Tree`]: its arena slot and that slot's generation.
///
/// Cheap to copy. Once its node is removed the id is stale for good: a node
/// created later in the same slot gets a new generation, and every method
/// given a stale id fails with `ENOENT` (or returns `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId {
    index: u32,
    generation: u32,
}

impl NodeId {
    /// The inode number the node has under the mount:
    /// `generation << 32 | (index + 1)`. The root is inode 1.
    pub fn ino(self) -> u64 {
        (u64::from(self.generation) << 32) | (u64::from(self.index) + 1)
    }

    /// The id behind an inode number, if it can be one.
    pub(crate) fn from_ino(ino: u64) -> Option<NodeId> {
        let low = (ino & 0xffff_ffff) as u32;
        let index = low.checked_sub(1)?;
        Some(NodeId {
            index,
            generation: (ino >> 32) as u32,
        })
    }
}

/// What kind of node a [`NodeId`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// A directory.
    Dir,
    /// A text attribute.
    Attr,
    /// A binary file.
    Bin,
    /// A symbolic link.
    Symlink,
}

/// The part of a node that outlives it while files are open: its event
/// counter, whether it was removed, and the poll handles waiting on it.
pub(crate) struct NodeShared {
    /// Bumped by every notify (and by removal). Starts at 1 so that an open
    /// file which has read nothing yet (seen event 0) polls as changed, as in
    /// kernfs.
    event: AtomicU64,
    removed: AtomicBool,
    /// Kernel poll handles to wake on the next event. The counter is bumped
    /// and read under this lock, which is what makes wake-ups race-free.
    waiters: Mutex<Vec<PollNotifier>>,
}

impl NodeShared {
    fn new() -> Self {
        NodeShared {
            event: AtomicU64::new(1),
            removed: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// The current event counter.
    pub(crate) fn event(&self) -> u64 {
        self.event.load(Ordering::SeqCst)
    }

    /// Whether the node has been removed from the tree.
    pub(crate) fn removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Bumps the event counter and wakes every registered poller.
    pub(crate) fn notify(&self) {
        let waiters = {
            let mut waiters = self.waiters.lock();
            self.event.fetch_add(1, Ordering::SeqCst);
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters {
            let kh = waiter.handle().0;
            if let Err(e) = waiter.notify() {
                // The kernel may be gone (unmounted) or have released the file.
                debug!("poll wake-up of kh {kh} failed: {e}");
            }
        }
    }

    /// Registers `notifier` (if any) to be woken by the next event, and
    /// returns the counter as of the registration.
    pub(crate) fn poll_register(&self, notifier: Option<PollNotifier>) -> u64 {
        let mut waiters = self.waiters.lock();
        if let Some(notifier) = notifier {
            let kh = notifier.handle().0;
            waiters.retain(|w| w.handle().0 != kh);
            waiters.push(notifier);
        }
        self.event.load(Ordering::SeqCst)
    }

    /// Forgets the poll handle `kh` (its file was released).
    pub(crate) fn poll_unregister(&self, kh: u64) {
        self.waiters.lock().retain(|w| w.handle().0 != kh);
    }

    fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
        self.notify();
    }
}

enum Kind {
    Dir {
        mode: u16,
        children: BTreeMap<Box<str>, u32>,
        subdirs: u32,
    },
    Attr {
        mode: u16,
        attr: Arc<dyn Attribute>,
    },
    Bin {
        mode: u16,
        file: Arc<dyn BinFile>,
    },
    Symlink {
        target: Box<str>,
    },
}

impl Kind {
    fn node_type(&self) -> NodeType {
        match self {
            Kind::Dir { .. } => NodeType::Dir,
            Kind::Attr { .. } => NodeType::Attr,
            Kind::Bin { .. } => NodeType::Bin,
            Kind::Symlink { .. } => NodeType::Symlink,
        }
    }
}

struct Node {
    parent: u32,
    name: Box<str>,
    kind: Kind,
    shared: Arc<NodeShared>,
    time: SystemTime,
}

struct Slot {
    generation: u32,
    node: Option<Node>,
}

#[derive(Default)]
struct Arena {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Arena {
    fn at(&self, index: u32) -> Option<&Node> {
        self.slots.get(index as usize)?.node.as_ref()
    }

    fn at_mut(&mut self, index: u32) -> Option<&mut Node> {
        self.slots.get_mut(index as usize)?.node.as_mut()
    }

    fn get(&self, id: NodeId) -> Option<&Node> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.node.as_ref()
    }

    fn id_of(&self, index: u32) -> NodeId {
        NodeId {
            index,
            generation: self.slots.get(index as usize).map_or(0, |s| s.generation),
        }
    }

    fn insert(&mut self, node: Node) -> Result<NodeId, Errno> {
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                slot.node = Some(node);
                return Ok(NodeId {
                    index,
                    generation: slot.generation,
                });
            }
        }
        // Index u32::MAX would make inode numbers wrap; stop before it.
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or(Errno::ENOSPC)?;
        self.slots.push(Slot {
            generation: 0,
            node: Some(node),
        });
        Ok(NodeId {
            index,
            generation: 0,
        })
    }

    /// Empties a slot and retires its generation.
    fn free(&mut self, index: u32) -> Option<Node> {
        let slot = self.slots.get_mut(index as usize)?;
        let node = slot.node.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        Some(node)
    }

    /// Walks `path` from the root. Symlinks in the middle of the path are
    /// followed (relative to the directory holding them); the last component
    /// is followed only if `follow_last`.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<u32, Errno> {
        let mut pending: Vec<String> = components(path).rev().collect();
        let mut cur = ROOT_INDEX;
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    cur = self.at(cur).map_or(ROOT_INDEX, |n| n.parent);
                    continue;
                }
                _ => {}
            }
            let Kind::Dir { children, .. } = &self.at(cur).ok_or(Errno::ENOENT)?.kind else {
                return Err(Errno::ENOTDIR);
            };
            let &child = children.get(comp.as_str()).ok_or(Errno::ENOENT)?;
            let child_node = self.at(child).ok_or(Errno::ENOENT)?;
            match &child_node.kind {
                Kind::Symlink { target } if follow_last || !pending.is_empty() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::ELOOP);
                    }
                    if target.starts_with('/') {
                        // Absolute targets point outside the tree.
                        return Err(Errno::ENOENT);
                    }
                    pending.extend(components(target).rev());
                }
                _ => cur = child,
            }
        }
        Ok(cur)
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_owned)
}

fn validate_name(name: &str) -> Result<(), Errno> {
    if name.len() > MAX_NAME_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn validate_target(target: &str) -> Result<(), Errno> {
    if target.len() > MAX_TARGET_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    if target.is_empty() || target.contains('\0') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn perm(mode: u32) -> u16 {
    (mode & MODE_MASK) as u16
}

/// What the FUSE adapter needs to open a node.
pub(crate) enum Target {
    Dir,
    Attr {
        mode: u16,
        attr: Arc<dyn Attribute>,
        shared: Arc<NodeShared>,
    },
    Bin {
        mode: u16,
        file: Arc<dyn BinFile>,
        shared: Arc<NodeShared>,
    },
    Symlink,
}

/// What the FUSE adapter needs to `stat` a node.
pub(crate) struct Info {
    pub(crate) kind: NodeType,
    pub(crate) perm: u16,
    pub(crate) nlink: u32,
    /// For a binary file, whose size must be asked for without the lock held.
    pub(crate) bin: Option<Arc<dyn BinFile>>,
    pub(crate) time: SystemTime,
}

/// One entry of a directory listing.
pub(crate) struct DirEntry {
    pub(crate) id: NodeId,
    pub(crate) kind: NodeType,
    pub(crate) name: Box<str>,
}

/// A kernfs-like tree of directories, text attributes, binary files and
/// symlinks, all owned by one user.
///
/// Every method takes `&self` and may be called from any thread, including
/// from inside an [`Attribute`] or [`BinFile`] method while the tree is
/// mounted: no lock of the tree is held while those run.
pub struct Tree {
    arena: RwLock<Arena>,
    uid: u32,
    gid: u32,
    /// The kernel's page cache of the files served through it, once
    /// mounted with a page cache.
    cache: OnceLock<Arc<KernelCache>>,
}

impl Tree {
    /// A tree holding only its root directory (mode 0755). `owner_uid` and
    /// `owner_gid` own every node; with the mount's `default_permissions`
    /// the kernel checks the nodes' modes against them.
    pub fn new(owner_uid: u32, owner_gid: u32) -> Arc<Tree> {
        let root = Node {
            parent: ROOT_INDEX,
            name: "".into(),
            kind: Kind::Dir {
                mode: 0o755,
                children: BTreeMap::new(),
                subdirs: 0,
            },
            shared: Arc::new(NodeShared::new()),
            time: SystemTime::now(),
        };
        let mut arena = Arena::default();
        arena.slots.push(Slot {
            generation: 0,
            node: Some(root),
        });
        Arc::new(Tree {
            arena: RwLock::new(arena),
            uid: owner_uid,
            gid: owner_gid,
            cache: OnceLock::new(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> NodeId {
        NodeId {
            index: ROOT_INDEX,
            generation: 0,
        }
    }

    /// The uid and gid owning every node.
    pub fn owner(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// Adds a directory with permission bits `mode` (e.g. 0o755) under
    /// `parent`.
    ///
    /// Errors: `EEXIST` if `parent` already has an entry `name`; `EINVAL` for
    /// an empty name, `.`, `..` or one holding `/` or NUL; `ENAMETOOLONG` past
    /// 255 bytes; `ENOENT` for a stale `parent`; `ENOTDIR` if it is not a
    /// directory. The same holds for every `add_*`.
    pub fn add_dir(&self, parent: NodeId, name: &str, mode: u32) -> Result<NodeId, Errno> {
        self.add(
            parent,
            name,
            Kind::Dir {
                mode: perm(mode),
                children: BTreeMap::new(),
                subdirs: 0,
            },
        )
    }

    /// Adds a text attribute with permission bits `mode` (e.g. 0o644, 0o444,
    /// 0o200) under `parent`. The mode decides who may open it for reading and
    /// writing (see the crate documentation).
    pub fn add_attr(
        &self,
        parent: NodeId,
        name: &str,
        mode: u32,
        attr: Arc<dyn Attribute>,
    ) -> Result<NodeId, Errno> {
        self.add(
            parent,
            name,
            Kind::Attr {
                mode: perm(mode),
                attr,
            },
        )
    }

    /// Adds a binary file with permission bits `mode` under `parent`.
    pub fn add_bin(
        &self,
        parent: NodeId,
        name: &str,
        mode: u32,
        file: Arc<dyn BinFile>,
    ) -> Result<NodeId, Errno> {
        self.add(
            parent,
            name,
            Kind::Bin {
                mode: perm(mode),
                file,
            },
        )
    }

    /// Adds a symlink to `target` under `parent`. Targets are kept as given;
    /// relative ones (`dev-sda`, `../md0`) resolve within the tree.
    /// `EINVAL` for an empty target or one holding NUL, `ENAMETOOLONG` past
    /// 4095 bytes.
    pub fn add_symlink(&self, parent: NodeId, name: &str, target: &str) -> Result<NodeId, Errno> {
        validate_target(target)?;
        self.add(
            parent,
            name,
            Kind::Symlink {
                target: target.into(),
            },
        )
    }

    fn add(&self, parent: NodeId, name: &str, kind: Kind) -> Result<NodeId, Errno> {
        validate_name(name)?;
        let is_dir = matches!(kind, Kind::Dir { .. });
        let mut arena = self.arena.write();
        match &arena.get(parent).ok_or(Errno::ENOENT)?.kind {
            Kind::Dir { children, .. } if children.contains_key(name) => return Err(Errno::EEXIST),
            Kind::Dir { .. } => {}
            _ => return Err(Errno::ENOTDIR),
        }
        let id = arena.insert(Node {
            parent: parent.index,
            name: name.into(),
            kind,
            shared: Arc::new(NodeShared::new()),
            time: SystemTime::now(),
        })?;
        if let Some(Node {
            kind: Kind::Dir {
                children, subdirs, ..
            },
            ..
        }) = arena.at_mut(parent.index)
        {
            children.insert(name.into(), id.index);
            if is_dir {
                *subdirs += 1;
            }
        }
        debug!("added {name:?} as inode {:#x}", id.ino());
        Ok(id)
    }

    /// Points the symlink `node` at `target`. `EINVAL` if `node` is not a
    /// symlink (or for a bad target, as for [`add_symlink`](Self::add_symlink)),
    /// `ENOENT` for a stale id.
    pub fn set_symlink_target(&self, node: NodeId, target: &str) -> Result<(), Errno> {
        validate_target(target)?;
        let mut arena = self.arena.write();
        if arena.get(node).is_none() {
            return Err(Errno::ENOENT);
        }
        match arena.at_mut(node.index) {
            Some(Node {
                kind: Kind::Symlink { target: t },
                time,
                ..
            }) => {
                *t = target.into();
                *time = SystemTime::now();
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Removes `node` and, for a directory, everything below it.
    ///
    /// The ids of all removed nodes become stale and their names give
    /// `ENOENT`. Files still open on them keep working as the crate
    /// documentation describes (attributes serve their snapshot, binary files
    /// fail with `ENODEV`), and pollers are woken with `POLLERR|POLLPRI`.
    /// The removed [`Attribute`]s and [`BinFile`]s are dropped once no open
    /// file holds them. `ENOENT` for a stale id, `EBUSY` for the root.
    pub fn remove(&self, node: NodeId) -> Result<(), Errno> {
        let removed = {
            let mut arena = self.arena.write();
            let victim = arena.get(node).ok_or(Errno::ENOENT)?;
            if node.index == ROOT_INDEX {
                return Err(Errno::EBUSY);
            }
            let (parent, name) = (victim.parent, victim.name.clone());
            let is_dir = matches!(victim.kind, Kind::Dir { .. });
            if let Some(Node {
                kind: Kind::Dir {
                    children, subdirs, ..
                },
                ..
            }) = arena.at_mut(parent)
            {
                children.remove(&name);
                if is_dir {
                    *subdirs = subdirs.saturating_sub(1);
                }
            }
            let mut removed = Vec::new();
            let mut stack = vec![node.index];
            while let Some(index) = stack.pop() {
                if let Some(gone) = arena.free(index) {
                    if let Kind::Dir { children, .. } = &gone.kind {
                        stack.extend(children.values().copied());
                    }
                    removed.push(gone);
                }
            }
            debug!("removed {name:?} ({} nodes)", removed.len());
            removed
        };
        // Outside the lock: waking pollers writes to the FUSE device, and
        // dropping the nodes may run arbitrary Drop code.
        for gone in &removed {
            gone.shared.mark_removed();
        }
        drop(removed);
        Ok(())
    }

    /// The entry `name` of the directory `parent`, without following a
    /// symlink.
    pub fn lookup(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        self.child(parent, name).ok()
    }

    /// The entry `name` of `parent`: `ENOENT` if absent or `parent` is stale,
    /// `ENOTDIR` if `parent` is not a directory.
    pub(crate) fn child(&self, parent: NodeId, name: &str) -> Result<NodeId, Errno> {
        let arena = self.arena.read();
        match &arena.get(parent).ok_or(Errno::ENOENT)?.kind {
            Kind::Dir { children, .. } => {
                let &index = children.get(name).ok_or(Errno::ENOENT)?;
                Ok(arena.id_of(index))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The node at `path`, relative to the root (`"md0/md/array_state"`; a
    /// leading `/`, `.` and `..` are allowed). Symlinks before the last
    /// component are followed; the last component is not (like `lstat`), so
    /// a symlink's own id can be found to retarget or remove it.
    pub fn lookup_path(&self, path: &str) -> Option<NodeId> {
        let arena = self.arena.read();
        let index = arena.resolve(path, false).ok()?;
        Some(arena.id_of(index))
    }

    /// The path of `node` from the root (`"md0/data"`), for log lines;
    /// `None` once it left the tree.
    pub fn path_of(&self, node: NodeId) -> Option<String> {
        let arena = self.arena.read();
        let mut names = Vec::new();
        let mut at = arena.get(node)?;
        let mut index = node.index;
        // Bounded by the arena's size, in case a slot were ever reused
        // into a cycle.
        for _ in 0..arena.slots.len() {
            if index == ROOT_INDEX {
                break;
            }
            names.push(at.name.as_ref());
            index = at.parent;
            at = arena.at(index)?;
        }
        names.reverse();
        Some(names.join("/"))
    }

    /// Whether `node` is still in the tree.
    pub fn exists(&self, node: NodeId) -> bool {
        self.arena.read().get(node).is_some()
    }

    /// What `node` is, or `None` for a stale id.
    pub fn node_type(&self, node: NodeId) -> Option<NodeType> {
        Some(self.arena.read().get(node)?.kind.node_type())
    }

    /// The names in directory `dir`, sorted. `ENOENT` for a stale id,
    /// `ENOTDIR` if it is not a directory.
    pub fn list(&self, dir: NodeId) -> Result<Vec<String>, Errno> {
        match &self.arena.read().get(dir).ok_or(Errno::ENOENT)?.kind {
            Kind::Dir { children, .. } => Ok(children.keys().map(|k| k.to_string()).collect()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Wakes the pollers of `node`, like the kernel's `sysfs_notify`: bumps
    /// the node's event counter, so every open file that has read the old
    /// value polls `POLLERR|POLLPRI`. Does nothing for a stale id. Call it
    /// after the value changed (and after a successful store that changed it).
    pub fn notify(&self, node: NodeId) {
        let shared = match self.arena.read().get(node) {
            Some(n) => n.shared.clone(),
            None => return,
        };
        shared.notify();
    }

    /// Reads the attribute at `path` (symlinks followed) as `cat` would:
    /// one [`Attribute::show`].
    ///
    /// Errors: `ENOENT`/`ENOTDIR`/`ELOOP` from the path walk; `EISDIR` for a
    /// directory; `EINVAL` for a binary file; `EACCES` if the mode has no read
    /// bit (as opening it would, even for root); the show's own error.
    pub fn read_attr(&self, path: &str) -> Result<String, Errno> {
        let (mode, attr) = self.attr_at(path)?;
        if mode & 0o444 == 0 {
            return Err(Errno::EACCES);
        }
        attr.show()
    }

    /// Writes `value` to the attribute at `path` (symlinks followed) as one
    /// `write(2)` would: more than 4096 bytes is `E2BIG`, the value is cut at
    /// a NUL and loses one trailing newline, then goes to
    /// [`Attribute::store`].
    ///
    /// Errors as for [`read_attr`](Self::read_attr), with `EACCES` if the mode
    /// has no write bit, plus `E2BIG` and the store's own error.
    pub fn write_attr(&self, path: &str, value: &str) -> Result<(), Errno> {
        let (mode, attr) = self.attr_at(path)?;
        if mode & 0o222 == 0 {
            return Err(Errno::EACCES);
        }
        store_bytes(&*attr, value.as_bytes())
    }

    fn attr_at(&self, path: &str) -> Result<(u16, Arc<dyn Attribute>), Errno> {
        let arena = self.arena.read();
        let index = arena.resolve(path, true)?;
        match &arena.at(index).ok_or(Errno::ENOENT)?.kind {
            Kind::Attr { mode, attr } => Ok((*mode, attr.clone())),
            Kind::Dir { .. } => Err(Errno::EISDIR),
            Kind::Bin { .. } | Kind::Symlink { .. } => Err(Errno::EINVAL),
        }
    }

    /// Tells the kernel that the contents of binary file `node` changed in
    /// `offset..offset + len` (`len` 0: to the end) other than through
    /// writes to the mount, so that it drops what it cached of them and
    /// reads them again.  Only a file served from the page cache
    /// ([`BinFile::page_cache`] on a mount with a
    /// [`ServeOptions::page_cache`](crate::ServeOptions::page_cache))
    /// has anything cached; for any other this does nothing.
    ///
    /// Dirty pages in the range are written back first (through
    /// [`BinFile::write_at`]), so the newest bytes win; that needs a
    /// serving thread, so never call this from inside a [`BinFile`] or
    /// [`Attribute`] method, nor while holding a lock that `write_at`
    /// takes.  Returns once the kernel has dropped the pages.
    pub fn invalidate_data(&self, node: NodeId, offset: u64, len: u64) {
        if let Some(cache) = self.cache.get() {
            if cache.active() {
                cache.invalidate(node, offset, len);
            }
        }
    }

    // The FUSE adapter's view.

    pub(crate) fn set_cache(&self, cache: Arc<KernelCache>) {
        let _ = self.cache.set(cache);
    }

    /// The page cache bookkeeping, when the mount asked for a page cache
    /// (granted or not).
    pub(crate) fn cache_wanted(&self) -> Option<&Arc<KernelCache>> {
        self.cache.get()
    }

    /// The page cache bookkeeping, when the mount has a page cache.
    pub(crate) fn cache(&self) -> Option<&Arc<KernelCache>> {
        self.cache.get().filter(|c| c.active())
    }

    pub(crate) fn info(&self, node: NodeId) -> Result<Info, Errno> {
        let arena = self.arena.read();
        let n = arena.get(node).ok_or(Errno::ENOENT)?;
        let (perm, nlink, bin) = match &n.kind {
            Kind::Dir { mode, subdirs, .. } => (*mode, subdirs.saturating_add(2), None),
            Kind::Attr { mode, .. } => (*mode, 1, None),
            Kind::Bin { mode, file } => (*mode, 1, Some(file.clone())),
            Kind::Symlink { .. } => (0o777, 1, None),
        };
        Ok(Info {
            kind: n.kind.node_type(),
            perm,
            nlink,
            bin,
            time: n.time,
        })
    }

    pub(crate) fn target(&self, node: NodeId) -> Result<Target, Errno> {
        let arena = self.arena.read();
        let n = arena.get(node).ok_or(Errno::ENOENT)?;
        Ok(match &n.kind {
            Kind::Dir { .. } => Target::Dir,
            Kind::Attr { mode, attr } => Target::Attr {
                mode: *mode,
                attr: attr.clone(),
                shared: n.shared.clone(),
            },
            Kind::Bin { mode, file } => Target::Bin {
                mode: *mode,
                file: file.clone(),
                shared: n.shared.clone(),
            },
            Kind::Symlink { .. } => Target::Symlink,
        })
    }

    pub(crate) fn symlink_target(&self, node: NodeId) -> Result<String, Errno> {
        match &self.arena.read().get(node).ok_or(Errno::ENOENT)?.kind {
            Kind::Symlink { target } => Ok(target.to_string()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `.`, `..` and the children of `dir`, in name order.
    pub(crate) fn entries(&self, dir: NodeId) -> Result<Vec<DirEntry>, Errno> {
        let arena = self.arena.read();
        let n = arena.get(dir).ok_or(Errno::ENOENT)?;
        let Kind::Dir { children, .. } = &n.kind else {
            return Err(Errno::ENOTDIR);
        };
        let mut out = Vec::with_capacity(children.len() + 2);
        out.push(DirEntry {
            id: dir,
            kind: NodeType::Dir,
            name: ".".into(),
        });
        out.push(DirEntry {
            id: arena.id_of(n.parent),
            kind: NodeType::Dir,
            name: "..".into(),
        });
        for (name, &index) in children {
            if let Some(child) = arena.at(index) {
                out.push(DirEntry {
                    id: arena.id_of(index),
                    kind: child.kind.node_type(),
                    name: name.clone(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::FnAttr;

    fn value_attr(initial: &str) -> (Arc<StdMutex<String>>, Arc<dyn Attribute>) {
        let v = Arc::new(StdMutex::new(initial.to_owned()));
        let (a, b) = (v.clone(), v.clone());
        let attr = FnAttr::new(
            move || Ok(format!("{}\n", a.lock().unwrap())),
            move |s: &str| {
                if s == "bogus" {
                    return Err(Errno::EINVAL);
                }
                *b.lock().unwrap() = s.to_owned();
                Ok(())
            },
        );
        (v, Arc::new(attr))
    }

    #[test]
    fn inode_numbers_round_trip() {
        let tree = Tree::new(0, 0);
        assert_eq!(tree.root().ino(), 1);
        assert_eq!(NodeId::from_ino(1), Some(tree.root()));
        assert_eq!(NodeId::from_ino(0), None);
        assert_eq!(NodeId::from_ino(5 << 32), None);
        let id = NodeId {
            index: 41,
            generation: 7,
        };
        assert_eq!(id.ino(), (7 << 32) | 42);
        assert_eq!(NodeId::from_ino(id.ino()), Some(id));
    }

    #[test]
    fn add_lookup_and_errors() {
        let tree = Tree::new(0, 0);
        let root = tree.root();
        let md = tree.add_dir(root, "md", 0o755).unwrap();
        let (_, attr) = value_attr("x");
        let a = tree.add_attr(md, "state", 0o644, attr.clone()).unwrap();
        assert_eq!(tree.lookup(root, "md"), Some(md));
        assert_eq!(tree.lookup(md, "state"), Some(a));
        assert_eq!(tree.lookup(md, "nope"), None);
        assert_eq!(tree.add_dir(md, "state", 0o755), Err(Errno::EEXIST));
        assert_eq!(
            tree.add_attr(a, "x", 0o644, attr.clone()),
            Err(Errno::ENOTDIR)
        );
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert_eq!(tree.add_dir(md, bad, 0o755), Err(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(
            tree.add_dir(md, &"n".repeat(256), 0o755),
            Err(Errno::ENAMETOOLONG)
        );
        assert!(tree.add_dir(md, &"n".repeat(255), 0o755).is_ok());
        assert_eq!(tree.add_symlink(md, "l", ""), Err(Errno::EINVAL));
        assert_eq!(tree.node_type(md), Some(NodeType::Dir));
        assert_eq!(tree.node_type(a), Some(NodeType::Attr));
        assert_eq!(
            tree.list(md).unwrap(),
            vec!["n".repeat(255), "state".to_owned()]
        );
        assert_eq!(tree.list(a), Err(Errno::ENOTDIR));
    }

    #[test]
    fn remove_is_recursive_and_ids_go_stale() {
        let tree = Tree::new(0, 0);
        let root = tree.root();
        let md0 = tree.add_dir(root, "md0", 0o755).unwrap();
        let md = tree.add_dir(md0, "md", 0o755).unwrap();
        let (_, attr) = value_attr("x");
        let state = tree
            .add_attr(md, "array_state", 0o644, attr.clone())
            .unwrap();
        assert_eq!(tree.info(md0).unwrap().nlink, 3);
        assert_eq!(tree.remove(root), Err(Errno::EBUSY));
        tree.remove(md0).unwrap();
        assert_eq!(tree.info(root).unwrap().nlink, 2);
        for id in [md0, md, state] {
            assert!(!tree.exists(id));
            assert_eq!(tree.remove(id), Err(Errno::ENOENT));
            assert_eq!(tree.add_dir(id, "x", 0o755), Err(Errno::ENOENT));
        }
        assert_eq!(tree.lookup_path("md0/md/array_state"), None);
        assert_eq!(tree.read_attr("md0/md/array_state"), Err(Errno::ENOENT));
        // Slots are reused with a new generation: old ids stay stale.
        let again = tree.add_dir(root, "md0", 0o755).unwrap();
        assert_ne!(again, md0);
        assert!(!tree.exists(md0));
        assert_eq!(tree.lookup(root, "md0"), Some(again));
        tree.notify(state); // stale: no-op
    }

    #[test]
    fn paths_follow_symlinks() {
        let tree = Tree::new(0, 0);
        let root = tree.root();
        let md0 = tree.add_dir(root, "md0", 0o755).unwrap();
        let md = tree.add_dir(md0, "md", 0o755).unwrap();
        let dev = tree.add_dir(md, "dev-vda", 0o755).unwrap();
        let (v, attr) = value_attr("in_sync");
        let state = tree.add_attr(dev, "state", 0o644, attr).unwrap();
        let rd0 = tree.add_symlink(md, "rd0", "dev-vda").unwrap();
        let up = tree.add_symlink(root, "up", "md0/md/../md").unwrap();
        tree.add_symlink(root, "abs", "/md0").unwrap();
        let l1 = tree.add_symlink(root, "loop1", "loop2").unwrap();
        tree.add_symlink(root, "loop2", "loop1").unwrap();

        assert_eq!(tree.lookup_path("md0/md/rd0"), Some(rd0));
        assert_eq!(tree.lookup_path("/md0/md/rd0/state"), Some(state));
        assert_eq!(tree.lookup_path("up"), Some(up));
        assert_eq!(tree.lookup_path("up/rd0/./state"), Some(state));
        assert_eq!(tree.lookup_path(""), Some(root));
        assert_eq!(tree.lookup_path(".."), Some(root));
        assert_eq!(tree.lookup_path("abs/md"), None);
        assert_eq!(tree.lookup_path("loop1"), Some(l1));
        assert_eq!(tree.lookup_path("loop1/x"), None);
        assert_eq!(tree.read_attr("loop1"), Err(Errno::ELOOP));
        assert_eq!(tree.read_attr("md0/md/rd0/state").unwrap(), "in_sync\n");
        assert_eq!(tree.read_attr("md0/md/rd0/state/x"), Err(Errno::ENOTDIR));
        assert_eq!(tree.read_attr("md0/md"), Err(Errno::EISDIR));

        tree.set_symlink_target(rd0, "nowhere").unwrap();
        assert_eq!(tree.lookup_path("md0/md/rd0/state"), None);
        assert_eq!(tree.symlink_target(rd0).unwrap(), "nowhere");
        assert_eq!(tree.set_symlink_target(md, "x"), Err(Errno::EINVAL));
        tree.remove(rd0).unwrap();
        assert_eq!(tree.set_symlink_target(rd0, "x"), Err(Errno::ENOENT));
        assert_eq!(*v.lock().unwrap(), "in_sync");
    }

    #[test]
    fn in_process_reads_and_writes_follow_sysfs() {
        let tree = Tree::new(0, 0);
        let root = tree.root();
        let (v, attr) = value_attr("clean");
        tree.add_attr(root, "array_state", 0o644, attr.clone())
            .unwrap();
        tree.add_attr(root, "ro", 0o444, attr.clone()).unwrap();
        tree.add_attr(root, "wo", 0o200, attr).unwrap();

        tree.write_attr("array_state", "active\n").unwrap();
        assert_eq!(*v.lock().unwrap(), "active");
        assert_eq!(tree.read_attr("array_state").unwrap(), "active\n");
        tree.write_attr("array_state", "inactive").unwrap();
        assert_eq!(*v.lock().unwrap(), "inactive");
        assert_eq!(
            tree.write_attr("array_state", "bogus\n"),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            tree.write_attr("array_state", &"x".repeat(4097)),
            Err(Errno::E2BIG)
        );
        assert_eq!(*v.lock().unwrap(), "inactive");

        assert_eq!(tree.write_attr("ro", "x"), Err(Errno::EACCES));
        assert_eq!(tree.read_attr("ro").unwrap(), "inactive\n");
        assert_eq!(tree.read_attr("wo"), Err(Errno::EACCES));
        tree.write_attr("wo", "clear").unwrap();
        assert_eq!(*v.lock().unwrap(), "clear");
        assert_eq!(tree.read_attr("missing"), Err(Errno::ENOENT));
    }

    #[test]
    fn stores_may_reshape_the_tree() {
        // A store that removes its own directory and adds another, and
        // notifies, must not deadlock: no tree lock is held while it runs.
        let tree = Tree::new(0, 0);
        let root = tree.root();
        let dev = tree.add_dir(root, "dev-vda", 0o755).unwrap();
        let weak = Arc::downgrade(&tree);
        let attr = FnAttr::write_only(move |v: &str| {
            let tree = weak.upgrade().ok_or(Errno::ENODEV)?;
            let me = tree.lookup_path("dev-vda/state").ok_or(Errno::ENODEV)?;
            tree.notify(me);
            if v == "remove" {
                let dir = tree.lookup_path("dev-vda").ok_or(Errno::ENODEV)?;
                tree.remove(dir)?;
                tree.add_dir(tree.root(), "removed", 0o755)?;
            }
            Ok(())
        });
        tree.add_attr(dev, "state", 0o200, Arc::new(attr)).unwrap();
        tree.write_attr("dev-vda/state", "faulty").unwrap();
        tree.write_attr("dev-vda/state", "remove").unwrap();
        assert!(!tree.exists(dev));
        assert!(tree.lookup_path("removed").is_some());
    }
}
