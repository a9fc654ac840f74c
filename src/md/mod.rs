//! The md core: arrays (`Mddev`), their members (`Rdev`), running them the
//! way the kernel's `do_md_run` does, the `array_state` state machine,
//! superblock updates with the kernel's event rules, safe mode, md_error,
//! and the personality registry.
//!
//! Locking follows the kernel's split:
//! * `Mddev::cfg` is the reconfig mutex: configuration, the member list,
//!   running and stopping, superblock writes.  It may be held across I/O.
//! * `Mddev::lock` guards the clean/dirty transitions (`in_sync`,
//!   `sb_flags`, `safemode`), as `mddev->lock` does; it is never held
//!   across I/O, so the data path can take it.
//! * Values the data path reads (`ro`, `recovery_cp`, array size, the
//!   running personality) are atomics or behind an `RwLock`.
//!
//! Everything user-visible follows Linux 6.1 (the kernel the oracle runs):
//! its messages, its sysfs words, HZ=250 for jiffies-based values.

pub mod badblocks;
pub mod bind;
pub mod bitmap;
pub mod fanout;
pub mod flags;
pub mod log;
pub mod mdstat;
pub mod member_io;
pub mod personality;
pub mod pieces;
pub mod rdev;
pub mod resize;
pub mod run;
pub mod slot;
pub mod spare;
pub mod state;
pub mod superblock;
pub mod sync;
pub mod thread;
pub mod update;
pub mod workers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex, RwLock};

pub use self::flags::Flags;
pub use self::log::KernelLog;
pub use self::personality::{ModuleParam, Personality, Raid};
pub use self::rdev::Rdev;
pub use self::run::StopMode;
pub use self::state::{ArrayState, SyncAction};
use crate::disk::Disk;
use crate::format::{MAX_SECTOR, MetadataVersion};
use crate::md::bitmap::Bitmap;

pub use crate::errno::Errno;

/// The kernel's HZ on Debian: jiffies-based values (safe_mode_delay,
/// bitmap time_base) are kept and shown in these units, so they read back
/// exactly as on the kernel the fixtures came from.
pub const HZ: u64 = 250;
/// `DEFAULT_SAFEMODE_DELAY` = 200 ms + 1 jiffy.
pub const DEFAULT_SAFEMODE_DELAY: u64 = 200 * HZ / 1000 + 1;
pub const MD_DEFAULT_MAX_CORRECTED_READ_ERRORS: u32 = 20;
/// `LEVEL_NONE`.
pub const LEVEL_NONE: i32 = -1_000_000;
pub const MAX_DISKS_1: u32 = 1920;
pub const MAX_DISKS_090: u32 = 27;
/// How long a stop waits for closes of the data file still on their way
/// (see [`Mddev::data_open`]).
const OPEN_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// `mddev->ro`.
pub mod ro {
    pub const RDWR: u8 = 0;
    pub const RDONLY: u8 = 1;
    pub const AUTO_READ: u8 = 2;
}

/// Where md announces changes: the tree (sysfs notify, directories and
/// links that come and go).  The md core calls it; `sysfs` implements it.
pub trait Observer: Send + Sync {
    /// `sysfs_notify` of an array attribute (`array_state`, `sync_action`,
    /// `degraded`, `sync_completed`, ...).
    fn notify(&self, mddev: &Mddev, attr: &str);
    /// `sysfs_notify` of a member's attribute (`state`, `bad_blocks`, ...).
    fn notify_rdev(&self, mddev: &Mddev, rdev: &Rdev, attr: &str);
    /// A member was bound: create its `dev-NAME/` directory.
    fn rdev_bound(&self, mddev: &Arc<Mddev>, rdev: &Arc<Rdev>);
    /// A member was unbound: remove its directory.
    fn rdev_unbound(&self, mddev: &Mddev, rdev: &Rdev);
    /// `rdN` -> `dev-NAME` link set (`Some`) or removed (`None`).
    fn slot_link(&self, mddev: &Mddev, slot: i32, rdev: Option<&Rdev>);
    /// A personality started or stopped (capacity, redundancy group).
    fn running_changed(&self, mddev: &Arc<Mddev>);
    /// The array is gone (`clear`).
    fn array_removed(&self, name: &str);
    /// What reads of the array's bytes `offset..offset + len` (`len` 0:
    /// to the end) return changed other than by a write to `mdN/data`
    /// (a sync copied one mirror over another, a write came over NBD):
    /// whatever the kernel cached of them must go.  Called without any
    /// lock of md's held, never from a request of the mount.
    fn data_changed(&self, mddev: &Mddev, offset: u64, len: u64) {
        let _ = (mddev, offset, len);
    }
}

/// An observer that ignores everything (library use, unit tests).
pub struct NoObserver;

impl Observer for NoObserver {
    fn notify(&self, _: &Mddev, _: &str) {}
    fn notify_rdev(&self, _: &Mddev, _: &Rdev, _: &str) {}
    fn rdev_bound(&self, _: &Arc<Mddev>, _: &Arc<Rdev>) {}
    fn rdev_unbound(&self, _: &Mddev, _: &Rdev) {}
    fn slot_link(&self, _: &Mddev, _: i32, _: Option<&Rdev>) {}
    fn running_changed(&self, _: &Arc<Mddev>) {}
    fn array_removed(&self, _: &str) {}
}

/// Settings of the md "module", fixed at mount time.
#[derive(Debug, Clone)]
pub struct MdOptions {
    /// Default `speed_limit_min` (KiB/s).
    pub speed_limit_min: u32,
    /// Default `speed_limit_max` (KiB/s).
    pub speed_limit_max: u32,
}

impl Default for MdOptions {
    fn default() -> Self {
        MdOptions {
            speed_limit_min: 1000,
            speed_limit_max: 200_000,
        }
    }
}

/// The md "module": every array, the registered personalities, the log,
/// and the system-wide settings.
pub struct Md {
    pub log: KernelLog,
    /// Time zero of the jiffies clock.
    start: std::time::Instant,
    pub options: MdOptions,
    /// `sysctl_speed_limit_min/max` (KiB/s): ints, kept as their bits,
    /// since md compares them with the sync's speed unsigned.
    pub speed_limit_min: AtomicU32,
    pub speed_limit_max: AtomicU32,
    /// The `start_dirty_degraded` module parameter (an int): copied into
    /// each array when it is created (`ok_start_degraded`), and read by
    /// raid4/5/6 alone (a dirty degraded RAID1 starts anyway).
    pub start_dirty_degraded: std::sync::atomic::AtomicI32,
    pub observer: RwLock<Arc<dyn Observer>>,
    arrays: Mutex<BTreeMap<String, Arc<Mddev>>>,
    personalities: personality::PersList,
    /// Directories whose files this process serves itself (the mount):
    /// a member there would send md's I/O back into md.
    own_dirs: RwLock<Vec<std::path::PathBuf>>,
    weak_self: Weak<Md>,
}

impl Md {
    pub fn new(options: MdOptions) -> Arc<Md> {
        Arc::new_cyclic(|w| Md {
            log: KernelLog::default(),
            start: std::time::Instant::now(),
            speed_limit_min: AtomicU32::new(options.speed_limit_min),
            speed_limit_max: AtomicU32::new(options.speed_limit_max),
            start_dirty_degraded: std::sync::atomic::AtomicI32::new(0),
            options,
            observer: RwLock::new(Arc::new(NoObserver)),
            arrays: Mutex::new(BTreeMap::new()),
            personalities: personality::PersList::default(),
            own_dirs: RwLock::new(Vec::new()),
            weak_self: w.clone(),
        })
    }

    /// Jiffies (at `HZ`) since the module started.
    pub fn jiffies(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 * HZ / 1000
    }

    /// The instant at which the jiffies clock reads `j`.
    pub fn instant_at(&self, j: u64) -> std::time::Instant {
        self.start + std::time::Duration::from_millis(j * 1000 / HZ)
    }

    pub fn set_observer(&self, o: Arc<dyn Observer>) {
        *self.observer.write() = o;
    }

    pub fn observer(&self) -> Arc<dyn Observer> {
        self.observer.read().clone()
    }

    /// `register_md_personality`: make `p`'s level runnable.
    pub fn register_md_personality(&self, p: &'static dyn Personality) {
        self.personalities.register(p);
    }

    /// Every registered personality, in registration order.
    pub fn personalities(&self) -> Vec<&'static dyn Personality> {
        self.personalities.all()
    }

    /// Set a personality's module parameter from `PERSONALITY.NAME=VALUE`
    /// (as on the kernel's command line): EINVAL for an unknown one or a
    /// value its setter refuses.
    pub fn set_param(&self, spec: &str) -> Result<(), Errno> {
        let (key, value) = spec.split_once('=').ok_or(Errno::EINVAL)?;
        let (pers, name) = key.split_once('.').ok_or(Errno::EINVAL)?;
        if (pers, name) == ("md_mod", "start_dirty_degraded") {
            let v = crate::kstr::kstrtoint(value)?;
            self.start_dirty_degraded.store(v, Ordering::Release);
            return Ok(());
        }
        let param = self
            .personalities()
            .into_iter()
            .filter(|p| p.name() == pers)
            .flat_map(|p| p.params().iter())
            .find(|q| q.name == name)
            .ok_or(Errno::EINVAL)?;
        (param.store)(value)
    }

    /// `find_pers`: the registered personality for `level`, or for the
    /// name `clevel` when the level is unset.
    pub fn find_pers(&self, level: i32, clevel: &str) -> Option<&'static dyn Personality> {
        self.personalities.find(level, clevel)
    }

    /// Say that this process serves the files under `dir` itself (its
    /// mount): no member may live there.  `dir` should be absolute and
    /// free of symlinks.
    pub fn add_own_dir(&self, dir: std::path::PathBuf) {
        self.own_dirs.write().push(dir);
    }

    /// The directory of this process's own that `path` leads into, if
    /// any: symlinks are followed outside such directories only, so the
    /// check never sends a request into the mount (whose serving thread
    /// may be the one asking).
    pub fn own_dir_of(&self, path: &std::path::Path) -> Option<std::path::PathBuf> {
        let dirs = self.own_dirs.read().clone();
        if dirs.is_empty() {
            return None;
        }
        bind::resolves_into(path, &dirs)
    }

    /// `new_array`: create `mdN` (or `md_NAME`).  EEXIST if it exists,
    /// EINVAL for a name md would not accept.
    pub fn new_array(&self, name: &str) -> Result<Arc<Mddev>, Errno> {
        let (name, unit) = parse_array_name(name).ok_or(Errno::EINVAL)?;
        let mut arrays = self.arrays.lock();
        if arrays.contains_key(&name) {
            return Err(Errno::EEXIST);
        }
        let md = self.weak_self.upgrade().ok_or(Errno::ENODEV)?;
        let mddev = Mddev::new(md, name.clone(), unit);
        arrays.insert(name, mddev.clone());
        Ok(mddev)
    }

    pub fn array(&self, name: &str) -> Option<Arc<Mddev>> {
        self.arrays.lock().get(name).cloned()
    }

    pub fn arrays(&self) -> Vec<Arc<Mddev>> {
        self.arrays.lock().values().cloned().collect()
    }

    /// Forget a cleared array (`md_free`): it leaves the registry and the
    /// tree.
    pub fn remove_array(&self, m: &Mddev) {
        m.shutdown_thread();
        m.sync.stop_worker();
        self.arrays.lock().remove(&m.name);
        self.observer().array_removed(&m.name);
    }

    /// Stop every running array cleanly (unmount, SIGTERM): superblocks
    /// written clean, as the reboot notifier does.
    pub fn stop_all(&self) {
        for mddev in self.arrays() {
            let mut cfg = mddev.cfg.lock();
            if mddev.is_running() {
                if let Err(e) = run::do_md_stop(&mddev, &mut cfg, run::StopMode::Inactive) {
                    self.log
                        .warn(format!("md: {}: stop failed at shutdown ({e})", mddev.name));
                }
            }
            drop(cfg);
            mddev.shutdown_thread();
        }
    }

    /// `Personalities : ...` line of mdstat: every personality the registry
    /// holds, in registration order.
    pub fn personalities_line(&self) -> String {
        let mut s = String::from("Personalities : ");
        for p in self.personalities.all() {
            s.push_str(&format!("[{}] ", p.name()));
        }
        s
    }
}

/// `mdN` or `md_NAME` (named arrays), as `add_named_array` takes them:
/// the array's name and unit number (named arrays get one above the
/// numbered range).  N is decimal digits up to `MINORMASK`, leading zeros
/// allowed (`md007` is `md7`), no sign.
fn parse_array_name(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix("md")?;
    if let Some(n) = rest.strip_prefix('_') {
        let ok = !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        return ok.then(|| (name.to_owned(), 512));
    }
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = rest.parse().ok().filter(|&n| n < (1 << 20))?;
    Some((format!("md{n}"), n))
}

/// Internal bitmap settings of an array (`mddev->bitmap_info`).
#[derive(Debug, Clone, Default)]
pub struct BitmapInfo {
    /// Sectors from sb_start to the bitmap superblock; 0 = no bitmap.
    pub offset: i64,
    /// Sectors available at `offset`.
    pub space: u64,
    pub default_offset: i64,
    pub default_space: u64,
    /// Bytes per bit; 0 until known.
    pub chunksize: u64,
    /// Jiffies.
    pub daemon_sleep: u64,
    pub max_write_behind: u64,
    pub nodes: u32,
    pub external: bool,
}

/// Configuration of an array, under the reconfig mutex.
#[derive(Debug)]
pub struct Config {
    /// Members in the kernel's list order: most recently bound first.
    pub rdevs: Vec<Arc<Rdev>>,
    pub persistent: bool,
    pub external: bool,
    /// Set by `metadata_version` or by the first member's superblock.
    pub metadata: Option<MetadataVersion>,
    /// `metadata_version` was written since the array was made (or
    /// cleared).  Until then the first member's superblock chooses the
    /// metadata; after `none` no superblock is ever read.
    pub metadata_written: bool,
    pub level: i32,
    /// A level name written before run (`clevel`).
    pub clevel: String,
    pub layout: i32,
    pub chunk_sectors: u32,
    pub raid_disks: u32,
    pub dev_sectors: u64,
    pub external_size: bool,
    pub uuid: [u8; 16],
    pub ctime: u64,
    pub utime: u64,
    pub events: u64,
    pub can_decrease_events: bool,
    pub max_disks: u32,
    pub reshape_position: u64,
    pub delta_disks: i32,
    pub new_level: i32,
    pub new_layout: i32,
    pub new_chunk_sectors: u32,
    pub reshape_backwards: bool,
    pub bitmap_info: BitmapInfo,
    pub serialize_policy: bool,
    pub suspend_lo: u64,
    pub suspend_hi: u64,
    /// 0.90's preferred minor.
    pub md_minor: u32,
    pub patch_version: u32,
    /// `recovery_disabled` counter (bumped when a device is bound).
    pub recovery_disabled: u32,
    /// `recovery_disabled` when a sync pass ended cut short on a broken
    /// array: no new pass starts until a device is bound (the counter
    /// moves on), as a pass would end the same way at once.
    pub sync_held_at: Option<u32>,
    /// The array's logical block size as the v1 superblock records it
    /// (Linux 6.19's `mddev->logical_block_size`); 0 when none is.
    pub logical_block_size: u32,
    /// What the array's block device would report as its logical block
    /// size (its queue limit): 512 until set or stacked at run; like the
    /// kernel's gendisk, it outlives a stop.
    pub queue_logical_block_size: u32,
    /// `bitmap_type` (Linux 6.18's `mddev->bitmap_id`): false for `none`.
    pub bitmap_type_bitmap: bool,
    /// `MD_HAS_PPL` or `MD_HAS_MULTIPLE_PPLS`: the superblock records a
    /// partial parity log.
    pub has_ppl: bool,
    /// `MD_HAS_JOURNAL`: the superblock records a journal device.
    pub has_journal: bool,
}

impl Config {
    /// No reshape under way: the "new" geometry is the current one, with
    /// the reshape checkpoint at `position` (MaxSector when none).
    pub fn set_no_reshape(&mut self, position: u64) {
        self.reshape_position = position;
        self.delta_disks = 0;
        self.reshape_backwards = false;
        self.new_level = self.level;
        self.new_layout = self.layout;
        self.new_chunk_sectors = self.chunk_sectors;
    }

    fn new(unit: u32) -> Config {
        Config {
            rdevs: Vec::new(),
            persistent: false,
            external: false,
            metadata: None,
            metadata_written: false,
            level: LEVEL_NONE,
            clevel: String::new(),
            layout: 0,
            chunk_sectors: 0,
            raid_disks: 0,
            dev_sectors: 0,
            external_size: false,
            uuid: [0; 16],
            ctime: 0,
            utime: 0,
            events: 0,
            can_decrease_events: false,
            max_disks: 0,
            reshape_position: MAX_SECTOR,
            delta_disks: 0,
            new_level: LEVEL_NONE,
            new_layout: 0,
            new_chunk_sectors: 0,
            reshape_backwards: false,
            bitmap_info: BitmapInfo::default(),
            serialize_policy: false,
            suspend_lo: 0,
            suspend_hi: 0,
            md_minor: unit,
            patch_version: 0,
            recovery_disabled: 0,
            sync_held_at: None,
            logical_block_size: 0,
            queue_logical_block_size: 512,
            bitmap_type_bitmap: true,
            has_ppl: false,
            has_journal: false,
        }
    }

    /// `md_clean`: forget everything but the members' list (emptied by
    /// the caller) and the unit.
    pub(crate) fn clean(&mut self) {
        let unit = self.md_minor;
        let rdevs = std::mem::take(&mut self.rdevs);
        let (queue_lbs, bitmap_type) = (self.queue_logical_block_size, self.bitmap_type_bitmap);
        *self = Config::new(unit);
        self.rdevs = rdevs;
        self.queue_logical_block_size = queue_lbs;
        self.bitmap_type_bitmap = bitmap_type;
    }

    pub fn find_rdev_nr(&self, nr: i32) -> Option<&Arc<Rdev>> {
        self.rdevs.iter().find(|r| r.desc_nr() == nr)
    }
}

/// State of the clean/dirty machine, under `Mddev::lock`.
#[derive(Debug, Default)]
pub struct CleanState {
    /// Superblocks say clean (no writes since the last mark-clean).
    pub in_sync: bool,
    /// 0 = normal, 1 = safe-mode timer fired, 2 = mark clean as soon as
    /// writes drain (shutdown).
    pub safemode: u8,
    /// Writes in flight (`writes_pending`).
    pub writes_pending: u64,
    /// When the safe-mode timer fires, if armed.
    pub safemode_deadline: Option<std::time::Instant>,
}

/// One array (`struct mddev`).
pub struct Mddev {
    pub name: String,
    pub unit: u32,
    pub md: Arc<Md>,
    pub cfg: Mutex<Config>,
    pub lock: Mutex<CleanState>,
    /// Woken when `sb_flags` or `in_sync` change (`sb_wait`).
    pub sb_wait: Condvar,
    pub sb_flags: Flags<flags::sb::SbFlags>,
    pub recovery: Flags<flags::recovery::Recovery>,
    pub flags: Flags<flags::mddev::Mddev>,
    ro: AtomicU8,
    degraded: AtomicU32,
    recovery_cp: AtomicU64,
    array_sectors: AtomicU64,
    /// Opens of the data file (the block device's openers).
    openers: AtomicU32,
    /// Writes of whole sectors share it; a read-modify-write of partial
    /// sectors holds it alone.
    rmw: RwLock<()>,
    pers: RwLock<Option<Arc<dyn Raid>>>,
    pub bitmap: RwLock<Option<Arc<Bitmap>>>,
    pub thread: thread::MdThread,
    pub sync: crate::md::sync::SyncState,
    /// Lock-free copies of configuration the I/O path, the bitmap and the
    /// sync worker read (the kernel reads these under RCU or racily).
    mirror: Mirror,
    weak_self: Weak<Mddev>,
}

/// See `Mddev::publish`.
struct Mirror {
    rdevs: RwLock<Arc<Vec<Arc<Rdev>>>>,
    dev_sectors: AtomicU64,
    bitmap_offset: AtomicI64,
    events: AtomicU64,
    raid_disks: AtomicU32,
    recovery_disabled: AtomicU32,
    /// Tunables set through sysfs, owned here.
    safemode_delay: AtomicU64,
    max_corr_read_errors: AtomicU32,
    fail_last_dev: AtomicBool,
    /// `ok_start_degraded`: `start_dirty_degraded` when the array was
    /// created.
    ok_start_degraded: AtomicBool,
    sync_speed_min: AtomicU32,
    sync_speed_max: AtomicU32,
    sync_force_parallel: AtomicBool,
    /// Sectors of normal (non-sync) I/O, for the sync throttle.
    normal_io: AtomicU64,
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror {
            rdevs: RwLock::new(Arc::new(Vec::new())),
            dev_sectors: AtomicU64::new(0),
            bitmap_offset: AtomicI64::new(0),
            events: AtomicU64::new(0),
            raid_disks: AtomicU32::new(0),
            recovery_disabled: AtomicU32::new(0),
            safemode_delay: AtomicU64::new(0),
            // 0 until md_run sets the default, as a new mddev reads.
            max_corr_read_errors: AtomicU32::new(0),
            fail_last_dev: AtomicBool::new(false),
            ok_start_degraded: AtomicBool::new(false),
            sync_speed_min: AtomicU32::new(0),
            sync_speed_max: AtomicU32::new(0),
            sync_force_parallel: AtomicBool::new(false),
            normal_io: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Mddev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mddev")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Mddev {
    /// One more open of the data file (`blkdev_get`'s `openers++`).
    pub fn open_data(&self) {
        self.openers.fetch_add(1, Ordering::AcqRel);
    }

    /// The last close of one open of the data file.
    pub fn close_data(&self) {
        let _ = self
            .openers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Whether the data file is open, after giving closes already made a
    /// moment to arrive.  A block device's close is done when close(2)
    /// returns; FUSE sends the data file's RELEASE after it returns, and
    /// another serving thread may answer the next request first (`cat
    /// md0/data; echo inactive > md0/md/array_state` must not see the
    /// cat still open).  An open that stays open is still answered EBUSY,
    /// after at most `OPEN_CLOSE_GRACE`.
    pub fn data_open(&self) -> bool {
        let deadline = std::time::Instant::now() + OPEN_CLOSE_GRACE;
        while self.openers.load(Ordering::Acquire) > 0 {
            if std::time::Instant::now() >= deadline {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        false
    }

    fn new(md: Arc<Md>, name: String, unit: u32) -> Arc<Mddev> {
        let mirror = Mirror::default();
        // md_alloc: mddev->ok_start_degraded = start_dirty_degraded.
        mirror.ok_start_degraded.store(
            md.start_dirty_degraded.load(Ordering::Acquire) != 0,
            Ordering::Release,
        );
        Arc::new_cyclic(|w| Mddev {
            name,
            unit,
            md,
            cfg: Mutex::new(Config::new(unit)),
            lock: Mutex::new(CleanState::default()),
            sb_wait: Condvar::new(),
            sb_flags: Flags::default(),
            recovery: Flags::default(),
            flags: Flags::default(),
            ro: AtomicU8::new(ro::RDWR),
            degraded: AtomicU32::new(0),
            recovery_cp: AtomicU64::new(0),
            array_sectors: AtomicU64::new(0),
            openers: AtomicU32::new(0),
            rmw: RwLock::new(()),
            pers: RwLock::new(None),
            bitmap: RwLock::new(None),
            thread: thread::MdThread::default(),
            sync: crate::md::sync::SyncState::default(),
            mirror,
            weak_self: w.clone(),
        })
    }

    pub fn arc(&self) -> Arc<Mddev> {
        self.weak_self
            .upgrade()
            .expect("an Mddev is always held by an Arc while in use")
    }

    pub fn log(&self) -> &KernelLog {
        &self.md.log
    }

    pub fn observer(&self) -> Arc<dyn Observer> {
        self.md.observer()
    }

    pub fn notify(&self, attr: &str) {
        self.observer().notify(self, attr);
    }

    pub fn ro(&self) -> u8 {
        self.ro.load(Ordering::Acquire)
    }
    pub fn set_ro(&self, v: u8) {
        self.ro.store(v, Ordering::Release)
    }
    pub fn is_rdwr(&self) -> bool {
        self.ro() == ro::RDWR
    }
    pub fn degraded(&self) -> u32 {
        self.degraded.load(Ordering::Acquire)
    }
    pub fn set_degraded(&self, v: u32) {
        self.degraded.store(v, Ordering::Release)
    }
    pub fn recovery_cp(&self) -> u64 {
        self.recovery_cp.load(Ordering::Acquire)
    }
    pub fn set_recovery_cp(&self, v: u64) {
        self.recovery_cp.store(v, Ordering::Release)
    }
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors.load(Ordering::Acquire)
    }
    pub fn set_array_sectors(&self, v: u64) {
        self.array_sectors.store(v, Ordering::Release)
    }
    /// Bytes of the data file, as the block device's i_size: `(loff_t)
    /// sectors << 9`, which a size past 2^54 sectors (a damaged
    /// superblock's) wraps; a negative one reads as empty.
    pub fn array_bytes(&self) -> u64 {
        ((self.array_sectors() << 9) as i64).max(0) as u64
    }

    /// The running personality, if any (`mddev->pers` + `private`).
    pub fn pers(&self) -> Option<Arc<dyn Raid>> {
        self.pers.read().clone()
    }
    pub(crate) fn set_pers(&self, p: Option<Arc<dyn Raid>>) {
        *self.pers.write() = p;
    }
    pub fn is_running(&self) -> bool {
        self.pers.read().is_some()
    }

    pub fn bitmap(&self) -> Option<Arc<Bitmap>> {
        self.bitmap.read().clone()
    }

    pub fn in_sync(&self) -> bool {
        self.lock.lock().in_sync
    }

    /// Copy what the lock-free readers need out of `cfg`.  Called after
    /// every change to the member list, the geometry or the events count.
    pub fn publish(&self, cfg: &Config) {
        *self.mirror.rdevs.write() = Arc::new(cfg.rdevs.clone());
        self.mirror
            .dev_sectors
            .store(cfg.dev_sectors, Ordering::Release);
        self.mirror
            .bitmap_offset
            .store(cfg.bitmap_info.offset, Ordering::Release);
        self.mirror.events.store(cfg.events, Ordering::Release);
        self.mirror
            .raid_disks
            .store(cfg.raid_disks, Ordering::Release);
        self.mirror
            .recovery_disabled
            .store(cfg.recovery_disabled, Ordering::Release);
    }

    /// The members (kernel list order), as last published.
    pub fn rdevs(&self) -> Arc<Vec<Arc<Rdev>>> {
        self.mirror.rdevs.read().clone()
    }
    pub fn dev_sectors(&self) -> u64 {
        self.mirror.dev_sectors.load(Ordering::Acquire)
    }
    pub fn bitmap_offset(&self) -> i64 {
        self.mirror.bitmap_offset.load(Ordering::Acquire)
    }
    pub fn events(&self) -> u64 {
        self.mirror.events.load(Ordering::Acquire)
    }
    pub fn raid_disks(&self) -> u32 {
        self.mirror.raid_disks.load(Ordering::Acquire)
    }
    pub fn recovery_disabled(&self) -> u32 {
        self.mirror.recovery_disabled.load(Ordering::Acquire)
    }
    /// Jiffies; 0 disables safe mode.
    pub fn safemode_delay(&self) -> u64 {
        self.mirror.safemode_delay.load(Ordering::Acquire)
    }
    pub fn set_safemode_delay(&self, v: u64) {
        self.mirror.safemode_delay.store(v, Ordering::Release)
    }
    pub fn max_corr_read_errors(&self) -> u32 {
        self.mirror.max_corr_read_errors.load(Ordering::Acquire)
    }
    pub fn set_max_corr_read_errors(&self, v: u32) {
        self.mirror.max_corr_read_errors.store(v, Ordering::Release)
    }
    /// `ok_start_degraded`: a dirty degraded raid4/5/6 may start.
    pub fn ok_start_degraded(&self) -> bool {
        self.mirror.ok_start_degraded.load(Ordering::Acquire)
    }
    pub fn fail_last_dev(&self) -> bool {
        self.mirror.fail_last_dev.load(Ordering::Acquire)
    }
    pub fn set_fail_last_dev(&self, v: bool) {
        self.mirror.fail_last_dev.store(v, Ordering::Release)
    }
    /// Per-array `sync_speed_min` (0 = the system value).
    pub fn sync_speed_min_local(&self) -> u32 {
        self.mirror.sync_speed_min.load(Ordering::Acquire)
    }
    pub fn set_sync_speed_min(&self, v: u32) {
        self.mirror.sync_speed_min.store(v, Ordering::Release)
    }
    pub fn sync_speed_max_local(&self) -> u32 {
        self.mirror.sync_speed_max.load(Ordering::Acquire)
    }
    pub fn set_sync_speed_max(&self, v: u32) {
        self.mirror.sync_speed_max.store(v, Ordering::Release)
    }
    /// `speed_min(mddev)`.
    pub fn speed_min(&self) -> u32 {
        match self.sync_speed_min_local() {
            0 => self.md.speed_limit_min.load(Ordering::Acquire),
            v => v,
        }
    }
    /// `speed_max(mddev)`.
    pub fn speed_max(&self) -> u32 {
        match self.sync_speed_max_local() {
            0 => self.md.speed_limit_max.load(Ordering::Acquire),
            v => v,
        }
    }
    pub fn sync_force_parallel(&self) -> bool {
        self.mirror.sync_force_parallel.load(Ordering::Acquire)
    }
    pub fn set_sync_force_parallel(&self, v: bool) {
        self.mirror.sync_force_parallel.store(v, Ordering::Release)
    }
    pub fn normal_io_sectors(&self) -> u64 {
        self.mirror.normal_io.load(Ordering::Relaxed)
    }

    /// `rdev_set_badblocks`: record `[s, s+sectors)` (array-relative) as
    /// bad on `r`, unacknowledged; the next superblock write records it.
    /// False when the member cannot record bad blocks.
    pub fn rdev_set_badblocks(&self, r: &Rdev, s: u64, sectors: u64) -> bool {
        // A member that lost its tail has no blocks to mark: it is failed.
        if r.disk.shrunk() {
            return false;
        }
        // No device sector holds data sector `s` (a damaged data_offset):
        // nothing can be recorded there.
        let Some(abs) = r.dev_sector(s) else {
            return false;
        };
        let ok = r.badblocks.lock().set(abs, sectors, false);
        if ok {
            self.observer().notify_rdev(self, r, "state");
            self.sb_flags
                .set(flags::sb::CHANGE_CLEAN | flags::sb::CHANGE_PENDING);
            self.wakeup();
        }
        ok
    }

    /// `rdev_clear_badblocks` (array-relative).
    pub fn rdev_clear_badblocks(&self, r: &Rdev, s: u64, sectors: u64) {
        if let Some(abs) = r.dev_sector(s) {
            r.badblocks.lock().clear(abs, sectors);
        }
    }

    /// Read from the running array (the data file).  Like a block
    /// device it takes any offset and length: an unaligned request reads
    /// the whole sectors around it.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let Some(p) = self.pers() else { return Ok(0) };
        let size = self.array_bytes();
        if offset >= size {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(size - offset) as usize;
        if len == 0 {
            return Ok(0);
        }
        let (start, end) = sector_span(offset, len);
        self.mirror
            .normal_io
            .fetch_add((end - start) / 512, Ordering::Relaxed);
        if start == offset && end == offset + len as u64 {
            p.read(self, &mut buf[..len], offset / 512)?;
        } else {
            let mut tmp = vec![0u8; (end - start) as usize];
            p.read(self, &mut tmp, start / 512)?;
            let skip = (offset - start) as usize;
            buf[..len].copy_from_slice(&tmp[skip..skip + len]);
        }
        Ok(len)
    }

    /// Write to the running array (the data file).  Like a block device
    /// (through its page cache) it takes any offset and length: a partial
    /// sector at either end is read, patched and written back whole.
    /// Such a read-modify-write excludes every other write, so no
    /// concurrent write to the same sector is lost.
    pub fn write_data(&self, data: &[u8], offset: u64) -> Result<usize, Errno> {
        // A stopped array has no capacity: every offset is past the end.
        let Some(p) = self.pers() else {
            return Err(Errno::ENOSPC);
        };
        // blkdev_write_iter on a read-only disk (md_set_readonly).
        if self.ro() == ro::RDONLY {
            // blkdev_write_iter on a read-only disk.
            return Err(Errno::EPERM);
        }
        let size = self.array_bytes();
        if offset >= size {
            return Err(Errno::ENOSPC);
        }
        let len = (data.len() as u64).min(size - offset) as usize;
        if self.flags.test(flags::mddev::BROKEN) {
            return Err(Errno::EIO);
        }
        if len == 0 {
            return Ok(0);
        }
        let (start, end) = sector_span(offset, len);
        self.mirror
            .normal_io
            .fetch_add((end - start) / 512, Ordering::Relaxed);
        let data = &data[..len];
        let data_end = offset + len as u64;
        // The whole sectors inside the write go straight down.  A write
        // from an unaligned user buffer reaches us cut at its page
        // boundaries, so most large writes have a partial sector at an
        // end: only that sector pays for the read-modify-write.
        let whole = (offset.next_multiple_of(512), data_end & !511);
        if whole.0 < whole.1 {
            let _shared = self.rmw.read();
            let at = (whole.0 - offset) as usize;
            p.write(
                self,
                &data[at..at + (whole.1 - whole.0) as usize],
                whole.0 / 512,
            )?;
        }
        if start == offset && end == data_end {
            return Ok(len);
        }
        let _excl = self.rmw.write();
        let patch = |sector_start: u64| -> Result<(), Errno> {
            let mut sector = [0u8; 512];
            p.read(self, &mut sector, sector_start / 512)?;
            let from = offset.max(sector_start);
            let to = data_end.min(sector_start + 512);
            sector[(from - sector_start) as usize..(to - sector_start) as usize]
                .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
            p.write(self, &sector, sector_start / 512)
        };
        let head = start < offset;
        if head {
            patch(start)?;
        }
        // The tail sector, unless it is the head one, patched already.
        let last = end - 512;
        if end > data_end && !(head && last == start) {
            patch(last)?;
        }
        Ok(len)
    }

    /// `fallocate(2)` on the data file, as `blkdev_fallocate` takes it on
    /// the array's block device: `PUNCH_HOLE|KEEP_SIZE` (what a loop
    /// device over the file sends for a discard; `NO_HIDE_STALE` too)
    /// discards, `ZERO_RANGE` writes zeroes; any other mode is
    /// EOPNOTSUPP.  The range must be whole sectors inside the array; one
    /// running past the end is cut there with `KEEP_SIZE`, EINVAL without.
    pub fn fallocate_data(&self, offset: u64, len: u64, mode: i32) -> Result<(), Errno> {
        const KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE;
        // linux/falloc.h; libc does not name it.
        const NO_HIDE_STALE: i32 = 0x04;
        const ZERO_RANGE: i32 = libc::FALLOC_FL_ZERO_RANGE;
        let discard = match mode {
            m if m == PUNCH_HOLE | KEEP_SIZE || m == PUNCH_HOLE | KEEP_SIZE | NO_HIDE_STALE => true,
            m if m == ZERO_RANGE || m == ZERO_RANGE | KEEP_SIZE => false,
            _ => return Err(Errno::EOPNOTSUPP),
        };
        let Some(p) = self.pers() else {
            return Err(Errno::EINVAL);
        };
        let size = self.array_bytes();
        let end = offset.checked_add(len).ok_or(Errno::EINVAL)?;
        if len == 0 || offset >= size {
            return Err(Errno::EINVAL);
        }
        let end = if end > size {
            if mode & KEEP_SIZE == 0 {
                return Err(Errno::EINVAL);
            }
            size
        } else {
            end
        };
        if offset % 512 != 0 || end % 512 != 0 {
            return Err(Errno::EINVAL);
        }
        if self.ro() == ro::RDONLY {
            return Err(Errno::EPERM);
        }
        if self.flags.test(flags::mddev::BROKEN) {
            return Err(Errno::EIO);
        }
        self.mirror
            .normal_io
            .fetch_add((end - offset) / 512, Ordering::Relaxed);
        let _shared = self.rmw.read();
        if discard {
            return p.discard(self, offset / 512, (end - offset) / 512);
        }
        // blkdev_issue_zeroout's fallback: zero pages written.
        const ZEROES: usize = 1 << 20;
        let zeroes = vec![0u8; ZEROES.min((end - offset) as usize)];
        let mut at = offset;
        while at < end {
            let n = zeroes.len().min((end - at) as usize);
            p.write(self, &zeroes[..n], at / 512)?;
            at += n as u64;
        }
        Ok(())
    }

    /// fsync of the data file: a flush of every working member, once the
    /// superblocks record every member failed so far.
    ///
    /// A member failed after a write reached it (but before a flush did)
    /// must not come back in sync after a power loss: the flush goes to
    /// the members still working only, so until the superblocks say the
    /// failed one is faulty, assembling after a power loss could read
    /// the write's old bytes from it.  The kernel completes the flush
    /// without waiting for that superblock write; here the flush waits
    /// for it (the md thread writes it at once).
    pub fn flush_data(&self) -> Result<(), Errno> {
        member_io::wait_sb_written(self);
        // What was written so far is durable on every member in a slot
        // once the flush is done (the bitmap keeps it for a member that
        // leaves before).
        let bitmap = self.bitmap();
        let token = bitmap.as_ref().map(|b| b.flush_begin());
        let r = match self.pers() {
            Some(p) => p.flush(self),
            None => Ok(()),
        };
        if let (Some(b), Some(token)) = (&bitmap, token) {
            b.flush_end(token, r.is_ok());
        }
        // A member whose own flush failed was failed just now, and holds
        // what the flush made durable on the others only in its cache.
        member_io::wait_sb_written(self);
        r
    }

    /// Wake the md thread (`md_wakeup_thread(mddev->thread)`).
    pub fn wakeup(&self) {
        self.thread.wakeup();
    }

    pub(crate) fn shutdown_thread(&self) {
        self.thread.stop();
    }

    /// `new_dev`: open a member by path (or `major:minor`), read its
    /// superblock and bind it.  On a running array this is the kernel's
    /// `add_new_disk` path (the member is validated against the array and
    /// becomes a spare, or a re-added member with its old slot).
    pub fn new_dev(self: &Arc<Mddev>, spec: &str) -> Result<Arc<Rdev>, Errno> {
        let path = resolve_dev_spec(spec, self.log())?;
        let mut cfg = self.cfg.lock();
        bind::new_dev(self, &mut cfg, &path)
    }
}

/// The whole sectors `[start, end)` (in bytes) covering `len` bytes at
/// `offset`.
fn sector_span(offset: u64, len: usize) -> (u64, u64) {
    let start = offset & !511;
    let end = (offset + len as u64).div_ceil(512) * 512;
    (start, end)
}

/// A `new_dev` argument: an absolute path, or `major:minor` of a block
/// device parsed as `new_dev_store` does (EINVAL for anything else,
/// EOVERFLOW for numbers `MKDEV` cannot hold, ENXIO for no such device).
fn resolve_dev_spec(spec: &str, log: &KernelLog) -> Result<std::path::PathBuf, Errno> {
    if spec.starts_with('/') || crate::disk::nbd::is_uri(spec) {
        return Ok(Path::new(spec).to_path_buf());
    }
    let (major, rest) = crate::kstr::simple_strtoul(spec);
    let Some(rest) = rest.strip_prefix(':') else {
        return Err(Errno::EINVAL);
    };
    if spec.is_empty() || rest.is_empty() {
        return Err(Errno::EINVAL);
    }
    let (minor, tail) = crate::kstr::simple_strtoul(rest);
    if !tail.is_empty() {
        return Err(Errno::EINVAL);
    }
    // int major = simple_strtoul(); MKDEV keeps 12 bits of major, 20 of minor.
    let (major, minor) = (major as i32 as i64, minor as i32 as i64);
    if !(0..1 << 12).contains(&major) || !(0..1 << 20).contains(&minor) {
        return Err(Errno::EOVERFLOW);
    }
    Disk::path_for_devnum(major as u32, minor as u32).map_err(|e| {
        log.warn(format!(
            "md: could not open device unknown-block({major},{minor})."
        ));
        e.errno()
    })
}
