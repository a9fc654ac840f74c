//! A seeded model test of whole arrays, in process (no FUSE): random
//! sequences of writes, reads, flushes, member failures and injected I/O
//! faults, removals, blank spares added, stale members re-added, syncs
//! waited for, interrupted and checked, clean restarts and crashes, each
//! checked against a flat byte array of what the array must hold
//! (`model_support::contents`).
//!
//! A crash drops every piece of in-memory state the way kill -9 does: every
//! member is made to fail all I/O at once (the reconfig mutex held, so no
//! superblock update is half done), md's threads are stopped, and the
//! array is assembled again from its images by a fresh `Md`.  After a
//! process crash every write that returned must be there; after a power
//! loss (the members' volatile write caches emulated by
//! `model_support::cache`) only those flushed must, the others may hold
//! their old or new bytes, and whatever is read first must then stay.
//!
//! It runs every personality in `mdfuse::PERSONALITIES` whose arrays
//! `mdfuse create` makes; `LEVELS` says, for each, whether it does, how
//! to create its arrays and how many members it may lose.
//!
//! RAID4/5/6 have two things more.  md will not start an array that is
//! both dirty and degraded; the model then starts it as an administrator
//! would, with md_mod's start_dirty_degraded.  And after a power loss a
//! stripe's parity may disagree with its data (the write hole): once a
//! member is missing, failed or faulted before a resync has mended them,
//! the rows the unflushed writes touched may read as anything
//! (`Run::write_hole`).  Everything else must hold as for the others.
//!
//! `MDFUSE_MODEL_STEPS` (default 4000 per personality) and
//! `MDFUSE_MODEL_SEED` (decimal or 0x-hex) run more or replay a failure;
//! a failure prints the line that replays it.  The steps go to runs of
//! at most 1000, each on fresh images, run i seeded SEED+i.  Replays are
//! of the operations and their bytes; md's threads (sync, safe mode, the
//! bitmap daemon) still run on their own clock, so a failure that hangs
//! on timing may need a few tries.  `MDFUSE_MODEL_VERBOSE=1` prints every
//! step and md's log at every stop, `=2` also every member's superblock;
//! `MDFUSE_MODEL_LEVELS=raid10,raid5` runs only the personalities named.
//! `MDFUSE_MODEL_KEEP=1` keeps a failed run's images (and their state as
//! the last crash left them); `MDFUSE_MODEL_DIR` says where images go.
//!
//! After the random runs come the cases the model found, each replayed
//! step by step on the array it needs.

mod model_support;

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mdfuse::format::MAX_SECTOR;
use mdfuse::md::flags::{rdev as rf, recovery as rec, sb as sbf};
use mdfuse::md::{Errno, Md, MdOptions, Mddev, NoObserver, Personality, Rdev};
use mdfuse::sysfs::MdTree;
use model_support::cache::LegCache;
use model_support::contents::Contents;
use model_support::rng::Rng;
use parking_lot::Mutex;

/// What the model must know of a level beyond what md tells it.
struct LevelSpec {
    /// `Personality::name()`.
    name: &'static str,
    /// `mdfuse create` makes its arrays (the model creates them so; a
    /// level it cannot make is not run, and says so).
    created: bool,
    /// Active members to create arrays with, fewest and most.
    disks: (u32, u32),
    /// `mdfuse create` options beyond level, counts, metadata and bitmap.
    create_args: &'static [&'static str],
    /// `--layout` words, one drawn for each run (none: create's default).
    layouts: &'static [&'static str],
    /// `md/rmw_level` values, one drawn for each run (none: the level
    /// has no such attribute).
    rmw_levels: &'static [&'static str],
    /// Members that may be missing or failed with the data still whole,
    /// for an array of this many active members.
    redundancy: fn(u32) -> u32,
    /// Not run for now, and why: an open defect the model found, named
    /// with the line that replays it (README's known defects list it).
    held: Option<&'static str>,
}

static LEVELS: &[LevelSpec] = &[
    LevelSpec {
        name: "linear",
        created: true,
        disks: (2, 3),
        create_args: &[],
        layouts: &[],
        rmw_levels: &[],
        redundancy: |_| 0,
        held: None,
    },
    LevelSpec {
        name: "raid0",
        created: true,
        disks: (2, 3),
        create_args: &[],
        layouts: &[],
        rmw_levels: &[],
        redundancy: |_| 0,
        held: None,
    },
    LevelSpec {
        name: "raid1",
        created: true,
        disks: (2, 3),
        create_args: &[],
        layouts: &[],
        rmw_levels: &[],
        redundancy: |n| n - 1,
        held: None,
    },
    // Two near copies: any one member may go (two may only where they
    // hold no block in common, which the model does not follow).
    LevelSpec {
        name: "raid10",
        created: true,
        disks: (2, 4),
        create_args: &["--layout=n2", "--chunk=64"],
        layouts: &[],
        rmw_levels: &[],
        redundancy: |_| 1,
        held: None,
    },
    // Any two members may go; every layout md has a name for.
    LevelSpec {
        name: "raid6",
        created: true,
        disks: (4, 6),
        create_args: &["--chunk=64"],
        layouts: &[
            "left-symmetric",
            "left-symmetric",
            "left-asymmetric",
            "right-asymmetric",
            "right-symmetric",
            "parity-first",
            "parity-last",
            "ddf-zero-restart",
            "ddf-N-restart",
            "ddf-N-continue",
            "left-asymmetric-6",
            "right-asymmetric-6",
            "left-symmetric-6",
            "right-symmetric-6",
            "parity-first-6",
        ],
        rmw_levels: &["0", "1", "1", "2"],
        redundancy: |_| 2,
        held: None,
    },
    // Any one member may go; two members make a mirror of sorts.
    LevelSpec {
        name: "raid5",
        created: true,
        disks: (2, 5),
        create_args: &["--chunk=64"],
        layouts: &[
            "left-symmetric",
            "left-symmetric",
            "left-asymmetric",
            "right-asymmetric",
            "right-symmetric",
            "parity-first",
            "parity-last",
        ],
        rmw_levels: &["0", "1", "1", "2"],
        redundancy: |_| 1,
        held: None,
    },
    LevelSpec {
        name: "raid4",
        created: true,
        disks: (3, 4),
        create_args: &["--chunk=64"],
        layouts: &[],
        rmw_levels: &["0", "1", "1", "2"],
        redundancy: |_| 1,
        held: None,
    },
];

const IMAGE_BYTES: u64 = 8 << 20;
const DEFAULT_STEPS: u64 = 4000;
const DEFAULT_SEED: u64 = 0x6d64_6675_7365;
const RUN_STEPS: u64 = 1000;
/// Images a run may have at once (members, spares, stale and blank ones).
const MAX_IMAGES: usize = 8;
/// A sync must be done within this (an 8 MiB image takes milliseconds).
const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// No step may take longer: the watchdog then aborts with the replay line.
const STEP_LIMIT: Duration = Duration::from_secs(180);
/// Writes kept unflushed at most (the model keeps their old bytes).
const MAX_PENDING: usize = 32 << 20;

struct Settings {
    steps: u64,
    seed: u64,
    /// 1: print every step; 2: also every member's superblock at every
    /// crash and restart.
    verbose: u8,
    /// Keep a failed run's images, and a copy of them as each crash left
    /// them, before assembly.
    keep: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let num = |name: &str| -> Option<u64> {
            let v = std::env::var(name).ok()?;
            let v = v.trim();
            let n = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            Some(n.unwrap_or_else(|_| panic!("{name}={v}: not a number")))
        };
        Settings {
            steps: num("MDFUSE_MODEL_STEPS").unwrap_or(DEFAULT_STEPS),
            seed: num("MDFUSE_MODEL_SEED").unwrap_or(DEFAULT_SEED),
            verbose: num("MDFUSE_MODEL_VERBOSE").unwrap_or(0) as u8,
            keep: num("MDFUSE_MODEL_KEEP").unwrap_or(0) == 1,
        }
    }
}

#[test]
fn model() {
    let settings = Settings::from_env();
    // MDFUSE_MODEL_LEVELS=raid10,raid5 runs only those.
    let only = std::env::var("MDFUSE_MODEL_LEVELS").ok();
    for p in mdfuse::PERSONALITIES {
        if let Some(only) = &only {
            if !only.split(',').any(|l| l.trim() == p.name()) {
                continue;
            }
        }
        let spec = LEVELS
            .iter()
            .find(|s| s.name == p.name())
            .unwrap_or_else(|| {
                panic!(
                    "personality {} has no LevelSpec in tests/model.rs: say how to create its \
                 arrays and how many members it may lose",
                    p.name()
                )
            });
        if !spec.created {
            eprintln!(
                "model {}: not run: `mdfuse create` makes no {} arrays",
                spec.name, spec.name
            );
            continue;
        }
        // A held level still runs when its seed is asked for (to replay).
        if let (Some(why), None) = (spec.held, std::env::var_os("MDFUSE_MODEL_SEED")) {
            eprintln!("model {}: not run: open defect: {why}", spec.name);
            continue;
        }
        run_level(spec, *p, &settings);
    }
}

fn run_level(spec: &LevelSpec, pers: &'static dyn Personality, settings: &Settings) {
    let t0 = Instant::now();
    let mut stats = Stats::default();
    let mut done = 0;
    let mut i = 0u64;
    while done < settings.steps {
        let steps = RUN_STEPS.min(settings.steps - done);
        let seed = settings.seed.wrapping_add(i);
        let mut run = Run::new(spec, pers, seed, settings, None);
        run.go(steps);
        stats.add(&run.stats);
        done += steps;
        i += 1;
    }
    eprintln!(
        "model {}: {done} steps in {i} runs from seed {:#x}, {:.1}s: {stats}",
        spec.name,
        settings.seed,
        t0.elapsed().as_secs_f64()
    );
}

#[derive(Default, Debug, Clone)]
struct Stats {
    ops: [u64; KINDS.len()],
    /// Time spent in each kind of step.
    time: [Duration; KINDS.len()],
    refused: u64,
    kills: u64,
    power_losses: u64,
    reverted_sectors: u64,
    checks: u64,
    kicked_at_assembly: u64,
    /// Dirty degraded parity arrays started with start_dirty_degraded.
    forced_starts: u64,
    /// Bytes the write hole left as anything.
    scrambled: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        for (a, b) in self.ops.iter_mut().zip(o.ops) {
            *a += b;
        }
        for (a, b) in self.time.iter_mut().zip(o.time) {
            *a += b;
        }
        self.refused += o.refused;
        self.kills += o.kills;
        self.power_losses += o.power_losses;
        self.reverted_sectors += o.reverted_sectors;
        self.checks += o.checks;
        self.kicked_at_assembly += o.kicked_at_assembly;
        self.forced_starts += o.forced_starts;
        self.scrambled += o.scrambled;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ((k, n), t) in KINDS.iter().zip(self.ops).zip(self.time) {
            write!(f, "{}={n} ({:.1}s) ", k.0, t.as_secs_f64())?;
        }
        write!(
            f,
            "| refused={} kill9={} power_loss={} (sectors undone {}) checks={} kicked={} \
             dirty_degraded_starts={} write_hole_bytes={}",
            self.refused,
            self.kills,
            self.power_losses,
            self.reverted_sectors,
            self.checks,
            self.kicked_at_assembly,
            self.forced_starts,
            self.scrambled
        )
    }
}

/// Operation kinds and how often each is drawn.
const KINDS: &[(&str, u64)] = &[
    ("write", 34),
    ("read", 22),
    ("flush", 8),
    ("fail", 3),
    ("fault", 3),
    ("remove", 3),
    ("add", 3),
    ("readd", 2),
    ("readd-bound", 1),
    ("wait", 5),
    ("interrupt", 1),
    ("check", 1),
    ("sleep", 2),
    ("crash", 3),
    ("restart", 1),
];

#[derive(Debug, Clone)]
enum Op {
    Write {
        off: u64,
        len: usize,
        seed: u64,
    },
    Read {
        off: u64,
        len: usize,
    },
    Flush,
    Fail {
        dev: String,
    },
    Fault {
        dev: String,
        rule: String,
    },
    Remove {
        dev: String,
    },
    AddBlank {
        dev: String,
    },
    ReAdd {
        dev: String,
    },
    ReAddBound {
        dev: String,
    },
    Wait,
    Interrupt,
    Check,
    Sleep {
        ms: u64,
    },
    Crash {
        power_loss: bool,
        with_stale: bool,
        seed: u64,
    },
    Restart,
}

impl Op {
    /// Its index in `KINDS`.
    fn kind(&self) -> usize {
        match self {
            Op::Write { .. } => 0,
            Op::Read { .. } => 1,
            Op::Flush => 2,
            Op::Fail { .. } => 3,
            Op::Fault { .. } => 4,
            Op::Remove { .. } => 5,
            Op::AddBlank { .. } => 6,
            Op::ReAdd { .. } => 7,
            Op::ReAddBound { .. } => 8,
            Op::Wait => 9,
            Op::Interrupt => 10,
            Op::Check => 11,
            Op::Sleep { .. } => 12,
            Op::Crash { .. } => 13,
            Op::Restart => 14,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write { off, len, seed } => write!(f, "write {off}+{len} data={seed:#x}"),
            Op::Read { off, len } => write!(f, "read {off}+{len}"),
            Op::Flush => write!(f, "flush"),
            Op::Fail { dev } => write!(f, "fail {dev}"),
            Op::Fault { dev, rule } => write!(f, "fault {dev}: {rule}"),
            Op::Remove { dev } => write!(f, "remove {dev}"),
            Op::AddBlank { dev } => write!(f, "add blank {dev}"),
            Op::ReAdd { dev } => write!(f, "re-add {dev} (new_dev)"),
            Op::ReAddBound { dev } => write!(f, "re-add {dev} (state)"),
            Op::Wait => write!(f, "wait for sync"),
            Op::Interrupt => write!(f, "sync_action idle"),
            Op::Check => write!(f, "check"),
            Op::Sleep { ms } => write!(f, "sleep {ms}ms"),
            Op::Crash {
                power_loss,
                with_stale,
                seed,
            } => write!(
                f,
                "crash ({}{}, seed {seed:#x})",
                if *power_loss { "power loss" } else { "kill -9" },
                if *with_stale {
                    ", stale images offered"
                } else {
                    ""
                }
            ),
            Op::Restart => write!(f, "clean stop and assemble"),
        }
    }
}

/// What the test believes a member image is.  Changed by the operations
/// as md is expected to act, and set from md's own view at every wait,
/// crash and restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// In a slot and in sync.
    Active,
    /// In a slot, being rebuilt.
    Recovering,
    /// Bound, no slot.
    Spare,
    /// Bound, failed.
    Faulty,
    /// Not bound; holds the superblock it had as a member.
    Stale,
    /// Not bound; zeros.
    Blank,
}

impl Role {
    fn bound(self) -> bool {
        matches!(
            self,
            Role::Active | Role::Recovering | Role::Spare | Role::Faulty
        )
    }
}

struct Image {
    name: String,
    path: PathBuf,
    role: Role,
    /// Error rules set on it since the last wait: it may fail any I/O.
    faulted: bool,
    /// Holds bad blocks: not all of it is in sync.
    damaged: bool,
    cache: Arc<LegCache>,
}

impl Image {
    fn healthy(&self) -> bool {
        self.role == Role::Active && !self.faulted && !self.damaged
    }
}

/// Settings of one run, drawn from its seed.
#[derive(Debug, Clone)]
struct Knobs {
    raid_disks: u32,
    spares: u32,
    metadata: &'static str,
    /// None: no bitmap; Some("") the default chunk.
    bitmap_chunk: Option<&'static str>,
    /// `--layout`, when the level has words to draw from.
    layout: Option<&'static str>,
    assume_clean: bool,
    safe_mode_delay: Option<&'static str>,
    time_base: Option<&'static str>,
    speed_min: u32,
    /// `md/rmw_level`, for the levels that have it.
    rmw_level: Option<&'static str>,
}

impl Knobs {
    /// The settings of a replayed case: metadata 1.2, no spares, md's
    /// default timers, a slow minimum sync speed.
    fn replay(raid_disks: u32, bitmap_chunk: Option<&'static str>, assume_clean: bool) -> Knobs {
        Knobs {
            raid_disks,
            spares: 0,
            metadata: "1.2",
            bitmap_chunk,
            layout: None,
            assume_clean,
            safe_mode_delay: None,
            time_base: None,
            speed_min: 1000,
            rmw_level: None,
        }
    }

    fn draw(spec: &LevelSpec, rng: &mut Rng) -> Knobs {
        let raid_disks = rng.range(spec.disks.0 as u64, spec.disks.1 as u64) as u32;
        // Levels without redundancy take no spares and no bitmap.
        let redundant = (spec.redundancy)(raid_disks) > 0;
        let knobs = Knobs {
            raid_disks,
            spares: rng.range(0, 1) as u32,
            metadata: rng.pick(&["1.2", "1.2", "1.2", "1.0", "1.1"]).unwrap(),
            bitmap_chunk: *rng
                .pick(&[
                    Some("64K"),
                    Some("64K"),
                    Some("256K"),
                    Some("1M"),
                    Some(""),
                    None,
                ])
                .unwrap(),
            assume_clean: rng.chance(1, 2),
            safe_mode_delay: *rng.pick(&[None, Some("0.02")]).unwrap(),
            time_base: *rng.pick(&[None, Some("0.1")]).unwrap(),
            speed_min: *rng.pick(&[1000, 100_000]).unwrap(),
            layout: None,
            rmw_level: None,
        };
        // Drawn last, and only for levels with words: the others' runs
        // stay what their seeds made them.
        let knobs = Knobs {
            layout: rng.pick(spec.layouts).copied(),
            ..knobs
        };
        let knobs = Knobs {
            rmw_level: rng.pick(spec.rmw_levels).copied(),
            ..knobs
        };
        if redundant {
            knobs
        } else {
            Knobs {
                spares: 0,
                bitmap_chunk: None,
                ..knobs
            }
        }
    }
}

/// A running array and the md that runs it.
struct Live {
    md: Arc<Md>,
    tree: Arc<MdTree>,
    mddev: Arc<Mddev>,
}

impl Live {
    fn put(&self, path: &str, value: &str) -> Result<(), Errno> {
        self.tree.tree.write_attr(path, value)
    }

    fn get(&self, path: &str) -> Result<String, Errno> {
        self.tree.tree.read_attr(path)
    }

    fn rdev(&self, name: &str) -> Option<Arc<Rdev>> {
        self.mddev.rdevs().iter().find(|r| r.name == name).cloned()
    }

    /// kill -9: from one instant on no member takes any I/O (the reconfig
    /// mutex held, so no superblock update is half done), then md's
    /// threads are stopped and everything is dropped.  Returns the log.
    fn kill(self) -> Result<String, String> {
        {
            let cfg = self.mddev.cfg.lock();
            for r in &cfg.rdevs {
                r.disk.faults().apply("vanish").expect("vanish");
            }
        }
        self.mddev.recovery.set(rec::INTR);
        self.mddev.sync.wake();
        self.md.remove_array(&self.mddev);
        self.drop_all()
    }

    /// `echo clear > array_state`: a clean stop.  Returns the log.
    fn stop(self) -> Result<String, String> {
        self.put("md0/md/array_state", "clear")
            .map_err(|e| format!("clean stop: {}", errno(e)))?;
        self.drop_all()
    }

    fn drop_all(self) -> Result<String, String> {
        let Live { md, tree, mddev } = self;
        let log = md.log.contents();
        md.set_observer(Arc::new(NoObserver));
        let weak = Arc::downgrade(&mddev);
        drop(mddev);
        drop(tree);
        drop(md);
        if weak.upgrade().is_some() {
            return Err("the stopped array is still held: its members stay open".into());
        }
        Ok(log)
    }
}

fn errno(e: Errno) -> String {
    format!("{} ({})", std::io::Error::from(e), e.raw())
}

/// Where the images go: `MDFUSE_MODEL_DIR`, else a tmpfs when there is
/// one with room (md flushes its members often, and a flush of a file on
/// a disk costs milliseconds), else the temporary directory.
fn image_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MDFUSE_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let shm = PathBuf::from("/dev/shm");
    let room = || -> Option<u64> {
        let c = std::ffi::CString::new("/dev/shm").ok()?;
        // SAFETY: statvfs is plain data, for which all zeros is valid.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a live statvfs to fill.
        let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        (r == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
    };
    if shm.is_dir() && room().is_some_and(|b| b >= 1 << 30) {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// The watchdog's view of the step under way.
struct Watch {
    since: Instant,
    what: String,
}

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

/// Abort the whole test binary, with the replay line, when one step takes
/// longer than `STEP_LIMIT` (a hung md call cannot be interrupted).
fn start_watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("model-watchdog".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    if let Some(w) = &*WATCH.lock() {
                        if w.since.elapsed() > STEP_LIMIT {
                            eprintln!(
                                "model: a step ran for more than {}s, aborting\n{}",
                                STEP_LIMIT.as_secs(),
                                w.what
                            );
                            std::process::abort();
                        }
                    }
                }
            })
            .expect("watchdog thread");
    });
}

struct Run<'a> {
    spec: &'a LevelSpec,
    pers: &'static dyn Personality,
    seed: u64,
    verbose: u8,
    keep: bool,
    rng: Rng,
    knobs: Knobs,
    needed: u32,
    dir: tempfile::TempDir,
    images: Vec<Image>,
    live: Option<Live>,
    /// The log of the last instance that was stopped or killed.
    last_log: String,
    model: Contents,
    /// The members as md had them at the last read (see `fingerprint`).
    fp: Vec<(String, i32, u64)>,
    history: Vec<String>,
    /// Recent writes (offset, length), where reads and faults aim often.
    recent: Vec<(u64, usize)>,
    stats: Stats,
    /// RAID4/5/6: bytes of data in one row of chunks (0 for other levels).
    row_bytes: usize,
    /// Rows whose parity a power loss may have left out of step with
    /// their data (offset, length in array bytes), and the members as md
    /// had them then: while all of those stay and the array is whole,
    /// nothing is rebuilt from that parity.
    risky: Vec<(usize, usize)>,
    risk_fp: Vec<(String, i32, u64)>,
    /// A resync has made the parity agree since: the next flush makes
    /// that durable and ends the risk.
    risk_resynced: bool,
}

impl<'a> Run<'a> {
    /// A run on a new array, with `knobs` or settings drawn from `seed`.
    fn new(
        spec: &'a LevelSpec,
        pers: &'static dyn Personality,
        seed: u64,
        settings: &Settings,
        knobs: Option<Knobs>,
    ) -> Run<'a> {
        start_watchdog();
        let mut rng = Rng::new(seed);
        let drawn = Knobs::draw(spec, &mut rng);
        let knobs = knobs.unwrap_or(drawn);
        let dir = tempfile::Builder::new()
            .prefix("mdfuse-model-")
            .tempdir_in(image_dir())
            .expect("temp dir");
        let n = (knobs.raid_disks + knobs.spares) as usize;
        let images: Vec<Image> = (0..n)
            .map(|i| {
                let path = dir.path().join(format!("d{i}"));
                Image {
                    name: format!("d{i}"),
                    cache: LegCache::new(path.clone()),
                    path,
                    role: Role::Blank,
                    faulted: false,
                    damaged: false,
                }
            })
            .collect();
        let redundancy = (spec.redundancy)(knobs.raid_disks);
        let mut run = Run {
            spec,
            pers,
            seed,
            verbose: settings.verbose,
            keep: settings.keep,
            rng,
            needed: knobs.raid_disks - redundancy,
            knobs,
            dir,
            images,
            live: None,
            last_log: String::new(),
            model: Contents::zeros(0),
            fp: Vec::new(),
            history: Vec::new(),
            recent: Vec::new(),
            stats: Stats::default(),
            row_bytes: 0,
            risky: Vec::new(),
            risk_fp: Vec::new(),
            risk_resynced: false,
        };
        run.create();
        for img in &mut run.images {
            img.role = Role::Stale;
        }
        let order = run.shuffled((0..n).collect());
        if let Err(e) = run.assemble(&order) {
            run.fail(0, "assemble the new array", &e);
        }
        let bytes = run.live().mddev.array_sectors() * 512;
        assert!(bytes > 0, "the new array has no capacity");
        let parity = match pers.level() {
            4 | 5 => 1,
            6 => 2,
            _ => 0,
        };
        if parity > 0 {
            let chunk = run.live().mddev.cfg.lock().chunk_sectors as usize * 512;
            run.row_bytes = chunk * (run.knobs.raid_disks - parity) as usize;
        }
        run.model = Contents::zeros(bytes as usize);
        run
    }

    /// `mdfuse create` of the run's array on fresh images.
    fn create(&self) {
        let k = &self.knobs;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdfuse"));
        cmd.arg("create")
            .arg(format!("--level={}", self.pers.level()))
            .arg(format!("--raid-devices={}", k.raid_disks))
            .arg(format!("--spare-devices={}", k.spares))
            .arg(format!("--metadata={}", k.metadata))
            .arg(format!("--image-size={}M", IMAGE_BYTES >> 20))
            .arg("--homehost=<none>")
            .arg(format!("--uuid={:016x}{:016x}", self.seed, !self.seed))
            .args(self.spec.create_args);
        match k.bitmap_chunk {
            None => {
                cmd.arg("--bitmap=none");
            }
            Some("") => {
                cmd.arg("--bitmap=internal");
            }
            Some(c) => {
                cmd.arg("--bitmap=internal")
                    .arg(format!("--bitmap-chunk={c}"));
            }
        }
        if k.assume_clean {
            cmd.arg("--assume-clean");
        }
        if let Some(l) = k.layout {
            cmd.arg(format!("--layout={l}"));
        }
        cmd.args(self.images.iter().map(|i| &i.path));
        let out = cmd.output().expect("run mdfuse create");
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn live(&self) -> &Live {
        self.live.as_ref().expect("the array runs")
    }

    fn shuffled(&mut self, mut v: Vec<usize>) -> Vec<usize> {
        for i in (1..v.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }

    /// Assemble the array from `order` (image indices), as mdadm would:
    /// a fresh md, every image through new_dev, then `active`.  Images md
    /// refuses or kicks are left unbound (stale).
    fn assemble(&mut self, order: &[usize]) -> Result<(), String> {
        self.assemble_as(order, "active")
    }

    /// `assemble`, run as `state` (`active`, `read-auto`, `readonly`).
    fn assemble_as(&mut self, order: &[usize], state: &str) -> Result<(), String> {
        self.assemble_with(order, state, false)
    }

    /// `assemble_as`, with md_mod's start_dirty_degraded set when
    /// `dirty_degraded`.
    fn assemble_with(
        &mut self,
        order: &[usize],
        state: &str,
        dirty_degraded: bool,
    ) -> Result<(), String> {
        let md = Md::new(MdOptions {
            speed_limit_min: self.knobs.speed_min,
            ..MdOptions::default()
        });
        mdfuse::register_personalities(&md);
        let tree = MdTree::new(md.clone(), 0, 0);
        if dirty_degraded {
            tree.tree
                .write_attr("start_dirty_degraded", "1")
                .map_err(|e| format!("start_dirty_degraded: {}", errno(e)))?;
        }
        tree.tree
            .write_attr("new_array", "md0")
            .map_err(|e| format!("new_array: {}", errno(e)))?;
        let mddev = md.array("md0").expect("md0 exists");
        let live = Live { md, tree, mddev };
        for &i in order {
            let img = &mut self.images[i];
            img.faulted = false;
            img.role = Role::Stale;
            let path = img.path.to_str().expect("utf-8 path");
            if live.put("md0/md/new_dev", path).is_ok() {
                img.role = Role::Spare;
                if let Some(r) = live.rdev(&img.name) {
                    r.disk.faults().set_observer(Some(img.cache.observer()));
                }
            }
        }
        let r = live.put("md0/md/array_state", state);
        self.live = Some(live);
        r.map_err(|e| format!("array_state {state}: {}", errno(e)))?;
        self.tune()?;
        let before: Vec<bool> = self.images.iter().map(|i| i.role.bound()).collect();
        self.refresh();
        for (img, was) in self.images.iter().zip(before) {
            if was && !img.role.bound() {
                self.stats.kicked_at_assembly += 1;
            }
        }
        Ok(())
    }

    fn tune(&self) -> Result<(), String> {
        let l = self.live();
        let k = &self.knobs;
        if let Some(d) = k.safe_mode_delay {
            l.put("md0/md/safe_mode_delay", d)
                .map_err(|e| format!("safe_mode_delay: {}", errno(e)))?;
        }
        if let (Some(t), Some(_)) = (k.time_base, k.bitmap_chunk) {
            l.put("md0/md/bitmap/time_base", t)
                .map_err(|e| format!("bitmap/time_base: {}", errno(e)))?;
        }
        if let Some(v) = k.rmw_level {
            l.put("md0/md/rmw_level", v)
                .map_err(|e| format!("rmw_level: {}", errno(e)))?;
        }
        Ok(())
    }

    /// Take every bound image's role from md.
    fn refresh(&mut self) {
        let rdevs = self.live().mddev.rdevs();
        for img in &mut self.images {
            if !img.role.bound() {
                continue;
            }
            match rdevs.iter().find(|r| r.name == img.name) {
                None => img.role = Role::Stale,
                Some(r) => {
                    img.role = if r.faulty() {
                        Role::Faulty
                    } else if r.raid_disk() < 0 {
                        Role::Spare
                    } else if r.in_sync() {
                        Role::Active
                    } else {
                        Role::Recovering
                    };
                    // Bad blocks, or md means to replace it, or does.
                    let replaced = rdevs.iter().any(|o| {
                        o.flags.test(rf::REPLACEMENT)
                            && !Arc::ptr_eq(o, r)
                            && o.raid_disk() == r.raid_disk()
                    });
                    img.damaged = r.badblocks.lock().count() > 0
                        || replaced
                        || r.flags.test(rf::WANT_REPLACEMENT | rf::WRITE_ERROR_SEEN);
                }
            }
        }
    }

    /// Spares md will put into free slots (`remove_and_add_spares`).
    fn predict_spares(&mut self) {
        let used = self
            .images
            .iter()
            .filter(|i| matches!(i.role, Role::Active | Role::Recovering))
            .count() as u32;
        let mut free = self.knobs.raid_disks.saturating_sub(used);
        for img in &mut self.images {
            if free > 0 && img.role == Role::Spare {
                img.role = Role::Recovering;
                free -= 1;
            }
        }
    }

    fn healthy(&self) -> usize {
        self.images.iter().filter(|i| i.healthy()).count()
    }

    /// May `img` stop serving without the data being lost?
    fn may_lose(&self, i: usize) -> bool {
        !self.images[i].healthy() || self.healthy() as u32 > self.needed
    }

    fn indices(&self, f: impl Fn(&Image) -> bool) -> Vec<usize> {
        (0..self.images.len())
            .filter(|&i| f(&self.images[i]))
            .collect()
    }

    /// An offset and length inside the array: often small, often
    /// unaligned, often where earlier writes went, near the end or on a
    /// bitmap chunk boundary.
    fn extent(&mut self) -> (u64, usize) {
        let size = self.model.len() as u64;
        let aligned = self.rng.chance(1, 2);
        let len = if aligned {
            512 * self.rng.range(1, 128)
        } else {
            match self.rng.below(5) {
                0 | 1 => self.rng.range(1, 600),
                2 | 3 => self.rng.range(1, 8192),
                _ => self.rng.range(1, 70_000),
            }
        };
        let mut off = match self.rng.below(10) {
            0..=2 => self.rng.below(256 << 10),
            3 => size.saturating_sub(self.rng.range(1, 128 << 10)),
            4 => {
                let chunk = 64u64 << 10;
                let k = self.rng.below(size / chunk).max(1);
                (k * chunk).saturating_sub(self.rng.below(1024))
            }
            5 | 6 if !self.recent.is_empty() => {
                let (o, l) = *self.rng.pick(&self.recent).unwrap();
                o + self.rng.below(l as u64 + 1)
            }
            _ => self.rng.below(size),
        };
        off = off.min(size - 1);
        if aligned {
            off &= !511;
        }
        let len = len.min(size - off) as usize;
        (off, len)
    }

    fn next_op(&mut self) -> Op {
        if self.model.pending_bytes() > MAX_PENDING {
            return Op::Flush;
        }
        let weights: Vec<u64> = KINDS.iter().map(|k| k.1).collect();
        loop {
            let kind = self.rng.weighted(&weights);
            let pick = |run: &mut Run, v: Vec<usize>| -> Option<String> {
                run.rng.pick(&v).map(|&i| run.images[i].name.clone())
            };
            let op = match KINDS[kind].0 {
                "write" => {
                    let (off, len) = self.extent();
                    Some(Op::Write {
                        off,
                        len,
                        seed: self.rng.next_u64(),
                    })
                }
                "read" => {
                    if self.rng.chance(1, 20) {
                        Some(Op::Read {
                            off: 0,
                            len: self.model.len(),
                        })
                    } else {
                        let (off, len) = self.extent();
                        Some(Op::Read { off, len })
                    }
                }
                "flush" => Some(Op::Flush),
                "fail" => {
                    let c: Vec<usize> = self
                        .indices(|i| i.role.bound() && i.role != Role::Faulty)
                        .into_iter()
                        .filter(|&i| self.may_lose(i))
                        .collect();
                    pick(self, c).map(|dev| Op::Fail { dev })
                }
                "fault" => self.gen_fault(),
                "remove" => {
                    let c = self.indices(|i| matches!(i.role, Role::Faulty | Role::Spare));
                    pick(self, c).map(|dev| Op::Remove { dev })
                }
                // A level without redundancy takes no spare (linear grows
                // instead, which the model does not follow yet).
                "add" if self.needed == self.knobs.raid_disks => None,
                "add" => {
                    let bound = self.indices(|i| i.role.bound()).len() as u32;
                    let reusable = self.indices(|i| !i.role.bound());
                    let room = self.images.len() < MAX_IMAGES || !reusable.is_empty();
                    if bound < self.knobs.raid_disks + 2 && room {
                        let blank = self.indices(|i| i.role == Role::Blank);
                        let dev = if let Some(&i) = self.rng.pick(&blank) {
                            self.images[i].name.clone()
                        } else if self.images.len() < MAX_IMAGES {
                            format!("d{}", self.images.len())
                        } else {
                            let &i = self.rng.pick(&reusable).unwrap();
                            self.images[i].name.clone()
                        };
                        Some(Op::AddBlank { dev })
                    } else {
                        None
                    }
                }
                "readd" => {
                    let c = self.indices(|i| i.role == Role::Stale);
                    pick(self, c).map(|dev| Op::ReAdd { dev })
                }
                "readd-bound" => {
                    let c = self.indices(|i| i.role == Role::Faulty);
                    pick(self, c).map(|dev| Op::ReAddBound { dev })
                }
                "wait" => Some(Op::Wait),
                "interrupt" => Some(Op::Interrupt),
                "check" => Some(Op::Check),
                "sleep" => Some(Op::Sleep {
                    ms: *self.rng.pick(&[1, 1, 5, 20, 60, 250]).unwrap(),
                }),
                "crash" => Some(Op::Crash {
                    power_loss: self.rng.chance(1, 2),
                    with_stale: self.rng.chance(1, 3),
                    seed: self.rng.next_u64(),
                }),
                "restart" => Some(Op::Restart),
                k => unreachable!("kind {k}"),
            };
            if let Some(op) = op {
                return op;
            }
        }
    }

    fn gen_fault(&mut self) -> Option<Op> {
        let c: Vec<usize> = self
            .indices(|i| i.role.bound() && i.role != Role::Faulty)
            .into_iter()
            .filter(|&i| self.may_lose(i))
            .collect();
        let &i = self.rng.pick(&c)?;
        let dev = self.images[i].name.clone();
        let data_offset = self.live().rdev(&dev).map(|r| r.data_offset()).unwrap_or(0);
        let (off, len) = self.extent();
        let start = data_offset + off / 512;
        let end = data_offset + (off + len as u64 - 1) / 512;
        let count = self.rng.range(1, 3);
        let rule = match self.rng.below(8) {
            0 | 1 => format!("read-error {start}-{end} count={count}"),
            2 | 3 => format!("write-error {start}-{end} count={count}"),
            4 => format!("error {start}-{end} count=1"),
            5 => "vanish".to_owned(),
            6 => format!("delay {} write", self.rng.range(1, 3)),
            _ => format!("delay {} read {start}-{end}", self.rng.range(1, 3)),
        };
        Some(Op::Fault { dev, rule })
    }

    /// Run `steps` random steps, then stop the array cleanly.
    fn go(&mut self, steps: u64) {
        for step in 0..steps {
            let op = self.next_op();
            self.step(step, &op);
        }
        self.finish(steps);
    }

    /// Run the steps given, then stop the array cleanly.
    fn play(&mut self, ops: &[Op]) {
        for op in ops {
            self.then(op.clone());
        }
        self.finish(self.history.len() as u64);
    }

    /// Run one more step, given.
    fn then(&mut self, op: Op) {
        self.step(self.history.len() as u64, &op);
    }

    fn step(&mut self, step: u64, op: &Op) {
        {
            self.stats.ops[op.kind()] += 1;
            let line = format!("{step}: {op}");
            if self.verbose > 0 {
                eprintln!("model {:#x} {line}", self.seed);
            }
            *WATCH.lock() = Some(Watch {
                since: Instant::now(),
                what: self.report(step, op, "(still running)"),
            });
            self.history.push(line);
            let t0 = Instant::now();
            let r = self.exec(op);
            self.stats.time[op.kind()] += t0.elapsed();
            *WATCH.lock() = None;
            match r {
                Ok(note) => {
                    if let Some(note) = note {
                        if self.verbose > 0 {
                            eprintln!("    {note}");
                        }
                        self.history
                            .last_mut()
                            .unwrap()
                            .push_str(&format!(" -> {note}"));
                    }
                }
                Err(e) => self.fail(step, &op.to_string(), &e),
            }
        }
    }

    fn finish(&mut self, steps: u64) {
        if let Some(live) = self.live.take() {
            match live.stop() {
                Ok(log) => {
                    self.last_log = log;
                    self.show_log();
                }
                Err(e) => self.fail(steps, "stop at the end", &e),
            }
        }
    }

    /// Fail the test with everything needed to understand and replay.
    fn fail(&mut self, step: u64, op: &str, what: &str) -> ! {
        let mut report = self.report(step, op, what);
        if self.keep {
            self.dir.disable_cleanup(true);
            report.push_str(&format!(
                "\nimages kept in {} (as the last crash left them: crashed/)",
                self.dir.path().display()
            ));
        }
        panic!("{report}");
    }

    fn report(&self, step: u64, op: impl fmt::Display, what: &str) -> String {
        let mut s = format!(
            "model {}: run seed {:#x} failed at step {step}: {op}\n{what}\n\
             replay: MDFUSE_MODEL_SEED={:#x} MDFUSE_MODEL_STEPS={} \
             cargo test --release --test model -- --exact model\n\
             knobs: {:?}\nmembers (as the test believes):",
            self.spec.name,
            self.seed,
            self.seed,
            step + 1,
            self.knobs
        );
        for img in &self.images {
            s.push_str(&format!(
                "\n  {} {:?}{}{}",
                img.name,
                img.role,
                if img.faulted { " faulted" } else { "" },
                if img.damaged { " damaged" } else { "" }
            ));
        }
        if let Some(l) = &self.live {
            s.push_str("\nmembers (as md says):");
            for r in l.mddev.rdevs().iter() {
                s.push_str(&format!(
                    "\n  {} slot {} {}",
                    r.name,
                    r.raid_disk(),
                    r.state_words(false).trim_end()
                ));
            }
        }
        let from = self.history.len().saturating_sub(200);
        s.push_str(&format!("\nsteps {from}..{}:", self.history.len()));
        for h in &self.history[from..] {
            s.push_str("\n  ");
            s.push_str(h);
        }
        let mut tail = |title: &str, log: &str| {
            let lines: Vec<&str> = log.lines().collect();
            s.push_str(&format!("\n{title} (last 40 lines):"));
            for l in &lines[lines.len().saturating_sub(40)..] {
                s.push_str("\n  ");
                s.push_str(l);
            }
        };
        if !self.last_log.is_empty() {
            tail("md log of the instance stopped last", &self.last_log);
        }
        if let Some(l) = &self.live {
            tail("md log", &l.md.log.contents());
        }
        s
    }

    fn exec(&mut self, op: &Op) -> Result<Option<String>, String> {
        match op {
            Op::Write { off, len, seed } => {
                let data = Rng::bytes(*seed, *len);
                let n = self
                    .live()
                    .mddev
                    .write_data(&data, *off)
                    .map_err(|e| format!("write: {}", errno(e)))?;
                if n != *len {
                    return Err(format!("short write: {n} of {len} bytes"));
                }
                self.model.write(*off as usize, &data);
                self.recent.push((*off, *len));
                if self.recent.len() > 16 {
                    self.recent.remove(0);
                }
                if self.rng.chance(1, 3) {
                    self.read_check(*off, *len)?;
                }
                Ok(None)
            }
            Op::Read { off, len } => {
                self.read_check(*off, *len)?;
                Ok(None)
            }
            Op::Flush => {
                self.live()
                    .mddev
                    .flush_data()
                    .map_err(|e| format!("flush: {}", errno(e)))?;
                self.model.flushed();
                if self.risk_resynced {
                    self.risky.clear();
                }
                Ok(None)
            }
            Op::Fail { dev } => {
                self.live()
                    .put(&format!("md0/md/dev-{dev}/state"), "faulty")
                    .map_err(|e| format!("state faulty: {}", errno(e)))?;
                self.image_mut(dev).role = Role::Faulty;
                self.predict_spares();
                Ok(None)
            }
            Op::Fault { dev, rule } => {
                self.live()
                    .put(&format!("md0/md/dev-{dev}/fault"), rule)
                    .map_err(|e| format!("fault: {}", errno(e)))?;
                if !rule.starts_with("delay") {
                    self.image_mut(dev).faulted = true;
                    // A read error is mended from parity, in place: no
                    // later look at the members shows it.
                    self.write_hole();
                }
                Ok(None)
            }
            Op::Remove { dev } => self.remove(dev),
            Op::AddBlank { dev } => self.add_blank(dev),
            Op::ReAdd { dev } => {
                let path = self.image(dev).path.clone();
                match self.live().put("md0/md/new_dev", path.to_str().unwrap()) {
                    Ok(()) => {
                        self.bound(dev);
                        Ok(None)
                    }
                    Err(e) => {
                        self.stats.refused += 1;
                        Ok(Some(format!("refused: {}", errno(e))))
                    }
                }
            }
            Op::ReAddBound { dev } => {
                match self
                    .live()
                    .put(&format!("md0/md/dev-{dev}/state"), "re-add")
                {
                    Ok(()) => {
                        self.image_mut(dev).role = Role::Spare;
                        self.predict_spares();
                        Ok(None)
                    }
                    Err(e) => {
                        self.stats.refused += 1;
                        Ok(Some(format!("refused: {}", errno(e))))
                    }
                }
            }
            Op::Wait => {
                self.wait()?;
                Ok(None)
            }
            Op::Interrupt => {
                let l = self.live();
                match l.get("md0/md/sync_action") {
                    Ok(_) => l
                        .put("md0/md/sync_action", "idle")
                        .map_err(|e| format!("sync_action idle: {}", errno(e)))?,
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(format!("sync_action: {}", errno(e))),
                }
                Ok(None)
            }
            Op::Check => self.check(),
            Op::Sleep { ms } => {
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(None)
            }
            Op::Crash {
                power_loss,
                with_stale,
                seed,
            } => self.crash(*power_loss, *with_stale, *seed),
            Op::Restart => self.restart(),
        }
    }

    /// In verbose mode, the whole log of the instance just stopped.
    fn show_log(&self) {
        if self.verbose > 0 {
            for l in self.last_log.lines() {
                eprintln!("    | {l}");
            }
        }
        if self.verbose > 1 {
            for img in self.images.iter().filter(|i| i.role != Role::Blank) {
                let out = Command::new(env!("CARGO_BIN_EXE_mdfuse"))
                    .arg("examine")
                    .arg(&img.path)
                    .output()
                    .expect("mdfuse examine");
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    eprintln!("    # {l}");
                }
            }
        }
    }

    fn image(&self, name: &str) -> &Image {
        self.images.iter().find(|i| i.name == name).expect("image")
    }

    fn image_mut(&mut self, name: &str) -> &mut Image {
        self.images
            .iter_mut()
            .find(|i| i.name == name)
            .expect("image")
    }

    /// Each member's slot and whether it is in sync, failed or a
    /// replacement: while this stays, md reads unsettled bytes from the
    /// same member.
    fn fingerprint(&self) -> Vec<(String, i32, u64)> {
        let mask = (rf::FAULTY | rf::IN_SYNC | rf::REPLACEMENT).raw();
        self.live()
            .mddev
            .rdevs()
            .iter()
            .map(|r| (r.name.clone(), r.raid_disk(), r.flags.bits().raw() & mask))
            .collect()
    }

    /// The write hole (see `risky`): once a member went missing, failed,
    /// took faults or was replaced while rows may hold parity out of step
    /// with their data, whatever was rebuilt from that parity in those
    /// rows may be anything.  The test cannot follow which blocks md
    /// rebuilt, so whole rows go.
    fn write_hole(&mut self) {
        if self.risky.is_empty() {
            return;
        }
        let exposed = self.live().mddev.degraded() > 0
            || self.images.iter().any(|i| i.faulted)
            || self.fingerprint() != self.risk_fp;
        if !exposed {
            return;
        }
        for (off, len) in std::mem::take(&mut self.risky) {
            self.model.scramble(off, len);
            self.stats.scrambled += len as u64;
        }
    }

    /// A power loss: the rows of the writes not yet flushed may have
    /// lost their data or their parity on some members, not on others.
    fn note_risky_rows(&mut self) {
        if self.row_bytes == 0 {
            return;
        }
        let row = self.row_bytes;
        let size = self.model.len();
        for (off, len) in self.model.pending_ranges() {
            let start = off / row * row;
            let end = ((off + len).div_ceil(row) * row).min(size);
            self.risky.push((start, end - start));
        }
        self.risk_resynced = false;
    }

    /// Read `len` bytes at `off` and check them with the model.
    fn read_check(&mut self, off: u64, len: usize) -> Result<(), String> {
        self.write_hole();
        let watch = self.model.unsettled() > 0;
        if watch && self.fingerprint() != self.fp {
            self.model.unresolve();
        }
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(1 << 20);
            let at = off + done as u64;
            let got = self
                .live()
                .mddev
                .read_data(&mut buf[done..done + n], at)
                .map_err(|e| format!("read {at}+{n}: {}", errno(e)))?;
            if got != n {
                return Err(format!("short read at {at}: {got} of {n} bytes"));
            }
            done += n;
        }
        if watch {
            let now = self.fingerprint();
            if now != self.fp {
                // Changed while reading: any member may have served it.
                self.model.unresolve();
                self.fp = now;
            }
        }
        self.write_hole();
        let r = self.model.check_read(off as usize, &buf);
        r.map_err(|e| {
            let at = e
                .split("at byte ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(off);
            format!("read {off}+{len}: {e}{}", self.writers(at, 1))
        })
    }

    /// The last writes that covered the start of a mismatch.
    fn writers(&self, off: u64, len: usize) -> String {
        let hits: Vec<&String> = self
            .history
            .iter()
            .filter(|h| {
                h.split(": write ").nth(1).is_some_and(|w| {
                    let mut it = w.split(['+', ' ']);
                    let o: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                    let l: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                    o < off + len as u64 && off < o + l
                })
            })
            .collect();
        let mut s = String::from("\nwrites to that range:");
        for h in &hits[hits.len().saturating_sub(5)..] {
            s.push_str("\n  ");
            s.push_str(h);
        }
        s
    }

    /// Read the whole array and check it with the model.
    fn verify_all(&mut self) -> Result<(), String> {
        self.read_check(0, self.model.len())
    }

    fn remove(&mut self, dev: &str) -> Result<Option<String>, String> {
        let was = self.image(dev).role;
        let path = format!("md0/md/dev-{dev}/state");
        let t0 = Instant::now();
        loop {
            match self.live().put(&path, "remove") {
                Ok(()) => break,
                // A failed member leaves its slot once its I/O is over.
                Err(Errno::EBUSY)
                    if was == Role::Faulty && t0.elapsed() < Duration::from_secs(5) =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) if was == Role::Spare => {
                    // md may have given it a slot meanwhile.
                    self.stats.refused += 1;
                    self.refresh();
                    return Ok(Some(format!("refused: {}", errno(e))));
                }
                Err(e) => return Err(format!("state remove: {}", errno(e))),
            }
        }
        self.image_mut(dev).role = Role::Stale;
        Ok(None)
    }

    fn add_blank(&mut self, dev: &str) -> Result<Option<String>, String> {
        if !self.images.iter().any(|i| i.name == dev) {
            let path = self.dir.path().join(dev);
            self.images.push(Image {
                name: dev.to_owned(),
                cache: LegCache::new(path.clone()),
                path,
                role: Role::Blank,
                faulted: false,
                damaged: false,
            });
        }
        let img = self.image_mut(dev);
        // A blank disk: every byte zero, nothing cached.
        let f = File::options()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&img.path)
            .map_err(|e| format!("{}: {e}", img.path.display()))?;
        f.set_len(IMAGE_BYTES)
            .map_err(|e| format!("{}: {e}", img.path.display()))?;
        img.cache.forget();
        img.role = Role::Blank;
        img.damaged = false;
        let path = img.path.clone();
        self.live()
            .put("md0/md/new_dev", path.to_str().unwrap())
            .map_err(|e| format!("new_dev of a blank image: {}", errno(e)))?;
        self.bound(dev);
        Ok(None)
    }

    /// `dev` was just bound to the running array.
    fn bound(&mut self, dev: &str) {
        if let Some(r) = self.live().rdev(dev) {
            let obs = self.image(dev).cache.observer();
            r.disk.faults().set_observer(Some(obs));
        }
        let img = self.image_mut(dev);
        img.role = Role::Spare;
        img.faulted = false;
        self.predict_spares();
    }

    /// Wait until md has nothing left to do: no sync running or asked
    /// for, no superblock update pending.
    fn wait_idle(&self) -> Result<(), String> {
        let l = self.live();
        let t0 = Instant::now();
        let mut quiet = 0;
        loop {
            let r = &l.mddev.recovery;
            let action = match l.get("md0/md/sync_action") {
                Ok(a) => a,
                Err(Errno::ENOENT) => "idle\n".to_owned(),
                Err(e) => return Err(format!("sync_action: {}", errno(e))),
            };
            let busy = l.mddev.sync.busy()
                || r.test(rec::RUNNING)
                || r.test(rec::NEEDED)
                || l.mddev.sb_flags.test(sbf::CHANGE_PENDING)
                || action != "idle\n";
            quiet = if busy { 0 } else { quiet + 1 };
            if quiet >= 3 {
                return Ok(());
            }
            if t0.elapsed() > WAIT_LIMIT {
                return Err(format!(
                    "md still busy after {}s: sync_action {}, recovery flags {:?}",
                    WAIT_LIMIT.as_secs(),
                    action.trim_end(),
                    r.bits()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// End every fault rule, let md finish what it does, and take its
    /// view of the members: a member that was healthy must still be
    /// active and whole, and the array must read as the model says.
    fn wait(&mut self) -> Result<(), String> {
        let healthy = self.healthy_names();
        for i in self.indices(|i| i.role.bound()) {
            let name = self.images[i].name.clone();
            if let Some(r) = self.live().rdev(&name) {
                r.disk.faults().apply("clear").expect("clear");
            }
            self.images[i].faulted = false;
        }
        self.wait_idle()?;
        self.refresh();
        self.kept(&healthy)?;
        self.verify_all()?;
        if self.live().mddev.recovery_cp() == MAX_SECTOR {
            // No resync is left to do: the members agree.
            self.model.settle();
            self.risk_resynced = true;
        }
        Ok(())
    }

    fn healthy_names(&self) -> Vec<String> {
        self.images
            .iter()
            .filter(|i| i.healthy())
            .map(|i| i.name.clone())
            .collect()
    }

    /// Every member in `healthy` is still active, in sync and whole.
    fn kept(&self, healthy: &[String]) -> Result<(), String> {
        for name in healthy {
            let img = self.image(name);
            if !img.healthy() {
                let md = self
                    .live()
                    .rdev(name)
                    .map(|r| r.state_words(false).trim_end().to_owned())
                    .unwrap_or_else(|| "not bound".into());
                return Err(format!(
                    "{name} was active, in sync and without faults; now {:?}{} (md: {md})",
                    img.role,
                    if img.damaged { ", with bad blocks" } else { "" }
                ));
            }
        }
        Ok(())
    }

    /// A check of an idle array whose members are all whole finds no
    /// mismatch.
    fn check(&mut self) -> Result<Option<String>, String> {
        self.wait()?;
        if self.live().get("md0/md/sync_action").is_err() {
            return Ok(Some("no sync_action".into()));
        }
        let partial = self
            .images
            .iter()
            .any(|i| i.role == Role::Recovering || (i.role == Role::Active && i.damaged));
        if partial {
            return Ok(Some("skipped: a member is not whole".into()));
        }
        self.live()
            .put("md0/md/sync_action", "check")
            .map_err(|e| format!("sync_action check: {}", errno(e)))?;
        self.wait_idle()?;
        let cnt = self
            .live()
            .get("md0/md/mismatch_cnt")
            .map_err(|e| format!("mismatch_cnt: {}", errno(e)))?;
        if cnt.trim() != "0" {
            let ranges = self.live().get("md0/md/mismatches").unwrap_or_default();
            return Err(format!(
                "check found mismatch_cnt {} (sectors: {})",
                cnt.trim(),
                ranges.trim()
            ));
        }
        self.stats.checks += 1;
        Ok(None)
    }

    /// The images to assemble from, in the order given to md: every bound
    /// one, then with `with_stale` the stale ones, which mdadm finds when
    /// scanning and md must kick or take as they deserve.  (mdadm offers
    /// no image whose device number a fresher one has: those come last
    /// here and md refuses them as taken.)
    fn members(&mut self, with_stale: bool) -> Vec<usize> {
        let mut v = self.indices(|i| i.role.bound());
        v = self.shuffled(v);
        if with_stale {
            let stale = self.indices(|i| i.role == Role::Stale);
            v.extend(self.shuffled(stale));
        }
        v
    }

    fn crash(
        &mut self,
        power_loss: bool,
        with_stale: bool,
        seed: u64,
    ) -> Result<Option<String>, String> {
        let order = self.members(with_stale);
        let healthy = self.healthy_names();
        let live = self.live.take().expect("the array runs");
        self.last_log = live.kill()?;
        self.show_log();
        let mut note = None;
        let was_risky = !self.risky.is_empty();
        if power_loss {
            self.note_risky_rows();
            self.stats.power_losses += 1;
            let mut rng = Rng::new(seed);
            let (mut cached, mut reverted) = (0, 0);
            for img in &self.images {
                let l = img
                    .cache
                    .lose(&mut rng)
                    .map_err(|e| format!("{}: {e}", img.path.display()))?;
                cached += l.cached;
                reverted += l.reverted;
            }
            self.stats.reverted_sectors += reverted;
            note = Some(format!("{cached} cached writes, {reverted} sectors undone"));
        } else {
            self.stats.kills += 1;
            for img in &self.images {
                img.cache.forget();
            }
        }
        if self.keep {
            let copy = self.dir.path().join("crashed");
            let _ = std::fs::remove_dir_all(&copy);
            std::fs::create_dir(&copy).expect("crashed/");
            for img in self.images.iter().filter(|i| i.path.exists()) {
                std::fs::copy(&img.path, copy.join(&img.name)).expect("copy an image");
            }
        }
        self.assemble_or_force(&order)?;
        if !was_risky && !self.risky.is_empty() {
            self.risk_fp = self.fingerprint();
        }
        self.kept(&healthy)?;
        self.model.crashed(!power_loss);
        self.verify_all()
            .map_err(|e| format!("after the crash: {e}"))?;
        Ok(note)
    }

    /// Assemble after a crash or a stop.  md refuses to start a RAID4/5/6
    /// that is both dirty and degraded: its parity may not match its data,
    /// and a missing member's blocks would be rebuilt from it (the write
    /// hole).  It stays so after a clean stop until a resync has run.
    /// Then the array is started as an administrator would, with
    /// start_dirty_degraded (`mdadm --assemble --force` marks it clean
    /// instead); what the write hole may have cost is `risky`.
    fn assemble_or_force(&mut self, order: &[usize]) -> Result<(), String> {
        let Err(e) = self.assemble(order) else {
            return Ok(());
        };
        let refused = self.row_bytes > 0
            && self.live.as_ref().is_some_and(|l| {
                l.md.log
                    .contents()
                    .contains("cannot start dirty degraded array")
            });
        if !refused {
            return Err(e);
        }
        let live = self.live.take().expect("the array was made");
        self.last_log = live.stop()?;
        self.stats.forced_starts += 1;
        self.assemble_with(order, "active", true)?;
        if self.live().mddev.degraded() == 0 {
            return Err(format!(
                "md refused a dirty degraded start ({e}), yet the array runs whole"
            ));
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<Option<String>, String> {
        let order = self.members(false);
        let healthy = self.healthy_names();
        let live = self.live.take().expect("the array runs");
        self.last_log = live.stop()?;
        self.show_log();
        // A clean stop leaves everything durable.
        self.model.flushed();
        if self.risk_resynced {
            self.risky.clear();
        }
        self.model.unresolve();
        self.assemble_or_force(&order)?;
        self.kept(&healthy)?;
        self.verify_all()?;
        Ok(None)
    }
}

/// The RAID1 level, for scripted cases.
fn raid1() -> (&'static LevelSpec, &'static dyn Personality) {
    level("raid1")
}

fn level(name: &str) -> (&'static LevelSpec, &'static dyn Personality) {
    let p = *mdfuse::PERSONALITIES
        .iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("{name} is a personality"));
    (LEVELS.iter().find(|s| s.name == name).unwrap(), p)
}

/// A replacement being rebuilt when the array stopped without a clean
/// stop is rebuilt whole when the array is assembled again: the
/// bitmap says nothing about a new member.  (setup_conf looks at the
/// replacement slots too when it decides on a full sync.)  Found by the
/// model (`MDFUSE_MODEL_SEED=0x6d6466757365`, step 154: zeros read where
/// step 65 had written); real md, given the same images, rebuilds the
/// replacement whole.
#[test]
fn replacement_rebuilt_whole_after_a_crash() {
    let (spec, p) = raid1();
    let knobs = Knobs {
        raid_disks: 2,
        spares: 0,
        metadata: "1.2",
        bitmap_chunk: Some("256K"),
        layout: None,
        assume_clean: true,
        safe_mode_delay: None,
        time_base: Some("0.1"),
        speed_min: 1000,
        rmw_level: None,
    };
    let mut run = Run::new(spec, p, 2, &Settings::from_env(), Some(knobs));
    run.then(Op::Write {
        off: 0,
        len: 1 << 20,
        seed: 1,
    });
    run.then(Op::Flush);
    // The bitmap daemon clears the bits of those writes.
    let t0 = Instant::now();
    while run.live().mddev.bitmap().unwrap().dirty_chunks() > 0 {
        assert!(t0.elapsed() < WAIT_LIMIT, "bits never cleared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // d1 fails a write: a bad block, and d1 wants a replacement.
    let start = run.live().rdev("d1").unwrap().data_offset() + 4096;
    run.then(Op::Fault {
        dev: "d1".into(),
        rule: format!("write-error {start}-{} count=1", start + 7),
    });
    run.then(Op::Write {
        off: 4096 * 512,
        len: 4096,
        seed: 2,
    });
    run.then(Op::Wait);
    // A blank image starts to replace d1, slowly; the process dies.
    run.live().put("md0/md/sync_speed_max", "100").unwrap();
    run.then(Op::AddBlank { dev: "d2".into() });
    let t0 = Instant::now();
    loop {
        let l = run.live();
        let r = l.rdev("d2").expect("d2 bound");
        if r.raid_disk() >= 0 && !l.mddev.sb_flags.any() && l.mddev.sync.busy() {
            break;
        }
        assert!(t0.elapsed() < WAIT_LIMIT, "the replacement never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.then(Op::Crash {
        power_loss: false,
        with_stale: false,
        seed: 0,
    });
    // The replacement takes over from d1: it must hold everything.
    run.then(Op::Wait);
    run.then(Op::Check);
    run.then(Op::Fail { dev: "d0".into() });
    run.then(Op::Read {
        off: 0,
        len: 1 << 20,
    });
    run.live.take().unwrap().stop().unwrap();
}

/// Where the mirrors may differ (an unclean array not yet resynced) every
/// read comes from the first leg that can serve it; one with bad blocks
/// at the start of a read hands it to the next leg only for as long as
/// they last, as Linux's `choose_first` does, so that a read that crosses
/// them returns the same bytes as reads on either side.  Found by the
/// model (`MDFUSE_MODEL_SEED=0x6d6466757365`, step 945: a read returned
/// other bytes than the read before it, with no member changed between).
#[test]
fn unsynced_reads_stay_on_the_first_leg_past_its_bad_blocks() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("64K"), true);
    let mut run = Run::new(spec, p, 5, &Settings::from_env(), Some(knobs));
    let data_offset = run.live().rdev("d0").unwrap().data_offset();
    // d0 records sectors 1000..1008 as bad.
    let bad = data_offset + 1000;
    run.then(Op::Fault {
        dev: "d0".into(),
        rule: format!("write-error {bad}-{}", bad + 7),
    });
    run.then(Op::Write {
        off: 1000 * 512,
        len: 4096,
        seed: 1,
    });
    run.then(Op::Wait);
    assert!(run.image("d0").damaged, "d0 has no bad blocks");
    // X over sectors 992..1024, and the process dies with the array
    // unclean; d1 then holds other bytes past the bad blocks (a lost
    // write).
    run.then(Op::Write {
        off: 992 * 512,
        len: 32 * 512,
        seed: 2,
    });
    run.live.take().unwrap().kill().unwrap();
    let d1 = File::options()
        .write(true)
        .open(&run.image("d1").path)
        .unwrap();
    use std::os::unix::fs::FileExt;
    d1.write_all_at(&Rng::bytes(3, 8 * 512), (data_offset + 1008) * 512)
        .unwrap();
    drop(d1);
    // No resync yet: read across the bad blocks.
    run.assemble_as(&[0, 1], "read-auto").unwrap();
    assert!(
        run.live().mddev.recovery_cp() < 1024,
        "the array came back clean"
    );
    let mut got = vec![0u8; 24 * 512];
    run.live().mddev.read_data(&mut got, 992 * 512).unwrap();
    let x = Rng::bytes(2, 32 * 512);
    assert!(
        got == x[..24 * 512],
        "a read across d0's bad blocks did not come from d0 past them"
    );
    run.live.take().unwrap().stop().unwrap();
}

/// A recovery that runs while a resync is still owed (a dirty array with
/// two in-sync mirrors and a third being rebuilt, as a crash leaves it)
/// must not use up the bitmap's record of what the resync has to do: in
/// Linux 6.1 it does (RAID1's sync step clears the bits of every chunk it
/// passes unless a slot is empty), the resync that follows skips every
/// chunk, and the two old mirrors keep differing where a crash left them
/// different.  Found by the model (`MDFUSE_MODEL_SEED=0x6d6466757365`,
/// step 121: a check found 128 mismatched sectors); real md, given the
/// same images, ends with the same mismatch.
#[test]
fn recovery_in_a_dirty_array_keeps_the_resync_owed() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(3, Some("256K"), true);
    let mut run = Run::new(spec, p, 1, &Settings::from_env(), Some(knobs));
    let chunk = 5u64 << 18;
    run.then(Op::Write {
        off: chunk,
        len: 65536,
        seed: 1,
    });
    run.then(Op::Flush);
    // d0 fails and a blank image is rebuilt in its slot, slowly.
    run.then(Op::Fail { dev: "d0".into() });
    run.then(Op::Remove { dev: "d0".into() });
    run.live().put("md0/md/sync_speed_max", "100").unwrap();
    run.then(Op::AddBlank { dev: "d3".into() });
    let t0 = Instant::now();
    loop {
        let l = run.live();
        let r = l.rdev("d3").expect("d3 bound");
        if r.raid_disk() >= 0 && !l.mddev.sb_flags.any() && l.mddev.sync.busy() {
            break;
        }
        assert!(
            t0.elapsed() < WAIT_LIMIT,
            "the recovery onto d3 never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // A write in chunk 5 (its bit set, the array dirty), then the process
    // dies; d2 lost that write (as a power loss may leave it).
    run.then(Op::Write {
        off: chunk,
        len: 4096,
        seed: 2,
    });
    let order: Vec<usize> = (1..4).collect();
    run.live.take().unwrap().kill().unwrap();
    let d2 = run.image("d2").path.clone();
    let f = File::options().write(true).open(&d2).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&Rng::bytes(3, 4096), 2048 * 512 + chunk)
        .unwrap();
    drop(f);
    run.assemble(&order).unwrap();
    // Recovery, then the resync owed: the mirrors must agree after them.
    if let Err(e) = run.wait_idle() {
        run.fail(0, "wait", &e);
    }
    let cnt = |run: &Run| run.live().get("md0/md/mismatch_cnt").unwrap();
    run.live().put("md0/md/sync_action", "check").unwrap();
    if let Err(e) = run.wait_idle() {
        run.fail(0, "check", &e);
    }
    assert_eq!(
        cnt(&run).trim(),
        "0",
        "a check after recovery and resync: mirrors differ at {}\nmd log:\n{}",
        run.live().get("md0/md/mismatches").unwrap_or_default(),
        run.live().md.log.contents()
    );
    run.live.take().unwrap().stop().unwrap();
}

/// A member that left while the array was degraded and comes back after
/// another member was rebuilt in the meantime must not be taken back on
/// the bitmap's word alone: the rebuild used up the bitmap's record of
/// the writes it missed.  In Linux 6.1 it is (the re-added member is in
/// sync at once, without the writes made while it was away: a check then
/// finds the mirrors differing); here the rebuild moves the bitmap's
/// events_cleared on, so the member returns for a full recovery.  Found by
/// the model (`MDFUSE_MODEL_SEED=0x6d6466757365`, step 119, and
/// `0x6d6466757367`, step 135).
#[test]
fn readd_after_a_rebuild_recovers_what_it_missed() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("256K"), true);
    let mut run = Run::new(spec, p, 3, &Settings::from_env(), Some(knobs));
    let dev = |d: &str| d.to_owned();
    run.play(&[
        Op::Write {
            off: 0,
            len: 65536,
            seed: 1,
        },
        Op::Flush,
        Op::Fail { dev: dev("d0") },
        Op::Remove { dev: dev("d0") },
        // Written while d0 is away.
        Op::Write {
            off: 0,
            len: 65536,
            seed: 2,
        },
        Op::AddBlank { dev: dev("d2") },
        Op::Wait,
        Op::Fail { dev: dev("d2") },
        Op::Remove { dev: dev("d2") },
        Op::ReAdd { dev: dev("d0") },
        Op::Wait,
        Op::Check,
        Op::Fail { dev: dev("d1") },
        Op::Read { off: 0, len: 65536 },
    ]);
}

/// A failed member still bound, out of its slot, while a spare is rebuilt
/// in that slot: writes that reach every slot (the spare's included) are
/// not recorded as missed, so the failed member cannot come back on the
/// bitmap's word any more.  Its `re-add` is refused; added again it
/// recovers whole.  In Linux 6.1, once the spare is rebuilt while another
/// member has failed meanwhile (so that the array stays degraded), it
/// comes back in sync without those writes.  Found by the model
/// (`MDFUSE_MODEL_SEED=0x6d6466757370`, step 411).
#[test]
fn readd_after_a_spare_took_its_slot_recovers_whole() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(3, Some("64K"), true);
    let mut run = Run::new(spec, p, 9, &Settings::from_env(), Some(knobs));
    let chunk4 = 4u64 << 16;
    run.then(Op::Write {
        off: chunk4,
        len: 4096,
        seed: 1,
    });
    run.then(Op::Flush);
    run.then(Op::Fail { dev: "d0".into() });
    run.then(Op::Wait);
    // A blank image takes d0's slot and is rebuilt, held before chunk 4.
    run.live().put("md0/md/sync_max", "256").unwrap();
    run.then(Op::AddBlank { dev: "d3".into() });
    let t0 = Instant::now();
    while !(run.live().mddev.sync.busy() && run.live().mddev.sync.curr_resync() == 256) {
        assert!(t0.elapsed() < WAIT_LIMIT, "the rebuild never reached 256");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Written to d1, d2 and d3, not to d0.
    run.then(Op::Write {
        off: chunk4,
        len: 4096,
        seed: 2,
    });
    // d1 fails; d3's rebuild ends with the array still degraded.
    run.then(Op::Fail { dev: "d1".into() });
    run.live().put("md0/md/sync_max", "max").unwrap();
    run.then(Op::Wait);
    assert_eq!(
        run.live().put("md0/md/dev-d0/state", "re-add"),
        Err(Errno::EBUSY),
        "d0 came back on the bitmap's word"
    );
    run.then(Op::Remove { dev: "d0".into() });
    run.then(Op::ReAdd { dev: "d0".into() });
    run.play(&[
        Op::Wait,
        Op::Check,
        Op::Fail { dev: "d2".into() },
        Op::Fail { dev: "d3".into() },
        Op::Read {
            off: chunk4,
            len: 4096,
        },
    ]);
}

/// `re-add` of a failed member of an array without a bitmap: nothing
/// records the writes it missed, so it must recover whole.  In Linux 6.1
/// it comes back in sync at once, without them (a check then finds the
/// mirrors differing).  Found by the model
/// (`MDFUSE_MODEL_SEED=0x6d6466757366`, step 273).
#[test]
fn readd_without_a_bitmap_recovers_whole() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(3, None, true);
    let mut run = Run::new(spec, p, 6, &Settings::from_env(), Some(knobs));
    let dev = |d: &str| d.to_owned();
    run.play(&[
        Op::Write {
            off: 0,
            len: 65536,
            seed: 1,
        },
        Op::Flush,
        Op::Fail { dev: dev("d0") },
        Op::Wait,
        Op::Write {
            off: 0,
            len: 65536,
            seed: 2,
        },
        Op::ReAddBound { dev: dev("d0") },
        Op::Wait,
        Op::Check,
        Op::Fail { dev: dev("d1") },
        Op::Fail { dev: dev("d2") },
        Op::Read { off: 0, len: 65536 },
    ]);
}

/// A member being rebuilt that fails a write (and so wants replacing) is
/// not given a replacement: the pair, written to the superblocks, is one
/// md refuses to assemble (a replacement beside an original not in sync),
/// so the array would not start again after a clean stop.  Found by the
/// model (`MDFUSE_MODEL_SEED=0x6d6466757366`, step 253: `array_state
/// active` failed with EIO after a clean stop).
#[test]
fn a_member_being_rebuilt_is_not_replaced() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("64K"), true);
    let mut run = Run::new(spec, p, 10, &Settings::from_env(), Some(knobs));
    run.then(Op::Fail { dev: "d0".into() });
    run.then(Op::Remove { dev: "d0".into() });
    // A blank image is rebuilt in d0's slot, held at sector 256.
    run.live().put("md0/md/sync_max", "256").unwrap();
    run.then(Op::AddBlank { dev: "d2".into() });
    let t0 = Instant::now();
    while !(run.live().mddev.sync.busy() && run.live().mddev.sync.curr_resync() == 256) {
        assert!(t0.elapsed() < WAIT_LIMIT, "the rebuild never reached 256");
        std::thread::sleep(Duration::from_millis(5));
    }
    // It fails a write below that: it wants replacing.
    let bad = run.live().rdev("d2").unwrap().data_offset() + 8;
    run.then(Op::Fault {
        dev: "d2".into(),
        rule: format!("write-error {bad}-{}", bad + 7),
    });
    run.then(Op::Write {
        off: 8 * 512,
        len: 4096,
        seed: 1,
    });
    // A blank image comes while d2 is still being rebuilt (md looks at it
    // once the rebuild is interrupted); the array is stopped cleanly and
    // assembled again.
    run.then(Op::AddBlank { dev: "d3".into() });
    run.then(Op::Interrupt);
    run.then(Op::Sleep { ms: 200 });
    run.play(&[Op::Restart, Op::Wait, Op::Check]);
}

/// A member being rebuilt when an unclean array went down is rebuilt from
/// the start: in the part it had rebuilt it may differ from the others
/// wherever a write was cut short, and a two-way mirror with one in-sync
/// member owes no resync that would look.  Linux resumes at the member's
/// recovery_offset and keeps the difference (real md, given the images
/// the model left, counts 128 mismatched sectors after its own sync).
/// Found by the model (`MDFUSE_MODEL_SEED=0x6d6466757376`, steps 311 and
/// 314).
#[test]
fn a_member_being_rebuilt_in_an_unclean_array_starts_over() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("64K"), true);
    let mut run = Run::new(spec, p, 11, &Settings::from_env(), Some(knobs));
    let chunk1 = 1u64 << 16;
    run.then(Op::Write {
        off: chunk1,
        len: 4096,
        seed: 1,
    });
    run.then(Op::Flush);
    run.then(Op::Fail { dev: "d1".into() });
    run.then(Op::Remove { dev: "d1".into() });
    // A blank image is rebuilt past chunk 1 and held there.
    run.live().put("md0/md/sync_max", "2048").unwrap();
    run.then(Op::AddBlank { dev: "d2".into() });
    let t0 = Instant::now();
    loop {
        let l = run.live();
        let r = l.rdev("d2").expect("d2 bound");
        if r.recovery_offset() >= 1024 && !l.mddev.sb_flags.any() {
            break;
        }
        assert!(t0.elapsed() < WAIT_LIMIT, "the rebuild never reached 1024");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A write to chunk 1 reaches d0, not d2's disk (as a power loss may
    // leave it), and the process dies with the array unclean.
    run.then(Op::Write {
        off: chunk1,
        len: 4096,
        seed: 2,
    });
    run.live.take().unwrap().kill().unwrap();
    let d2 = File::options()
        .write(true)
        .open(&run.image("d2").path)
        .unwrap();
    use std::os::unix::fs::FileExt;
    let data_offset = 2048;
    d2.write_all_at(&Rng::bytes(1, 4096), data_offset * 512 + chunk1)
        .unwrap();
    drop(d2);
    for img in &run.images {
        img.cache.forget();
    }
    run.model.flushed();
    run.assemble(&[0, 2]).unwrap();
    run.play(&[
        Op::Wait,
        Op::Check,
        Op::Fail { dev: "d0".into() },
        Op::Read {
            off: chunk1,
            len: 4096,
        },
    ]);
}

/// A clean stop of an array that never goes dirty (linear, raid0: they
/// write no superblock at stop) must still flush its members: a write
/// before the stop was lost to a power loss after it.  Found by the model
/// (`MDFUSE_MODEL_SEED=0x6d6466757366`, linear, step 36).
#[test]
fn a_clean_stop_flushes_the_members_of_linear_and_raid0() {
    for name in ["linear", "raid0"] {
        let (spec, p) = level(name);
        let knobs = Knobs::replay(2, None, true);
        let mut run = Run::new(spec, p, 11, &Settings::from_env(), Some(knobs));
        run.play(&[
            Op::Write {
                off: 251_149,
                len: 1121,
                seed: 3,
            },
            Op::Restart,
            Op::Crash {
                power_loss: true,
                with_stale: false,
                seed: 4,
            },
            Op::Read {
                off: 251_149,
                len: 1121,
            },
        ]);
    }
}

/// A member failed after a write reached it but before a flush did: the
/// flush reaches the working members only, so it may complete only once
/// the superblocks record the failure, or a power loss brings the failed
/// member back in sync without the write.  Found by the model
/// (`MDFUSE_MODEL_SEED=0x6d646675736d`, step 607); the window is the md
/// thread's superblock write, so each round here tries it again.
#[test]
fn a_flush_after_a_failure_waits_for_the_superblocks() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("256K"), true);
    for round in 0..20u64 {
        let mut run = Run::new(
            spec,
            p,
            100 + round,
            &Settings::from_env(),
            Some(knobs.clone()),
        );
        run.play(&[
            Op::Write {
                off: 65536,
                len: 52224,
                seed: round,
            },
            Op::Fail { dev: "d0".into() },
            Op::Flush,
            Op::Crash {
                power_loss: true,
                with_stale: false,
                seed: round,
            },
            Op::Read {
                off: 65536,
                len: 52224,
            },
        ]);
    }
}

/// A member that fails in the middle of a whole rebuild never comes
/// back on the bitmap's word: out of its slot md keeps the slot as the
/// member's own, as for any member that fails, and a bitmap-guided
/// catch-up would then skip every clean chunk past the point the first
/// rebuild had reached (the member came back "in sync" holding zeros
/// there).  Its re-add is refused; added again it is rebuilt whole.  (A
/// completed check in between ends the full-sync state the interrupted
/// rebuild had left.)  Found by the model on RAID10
/// (`MDFUSE_MODEL_SEED=0x6d6466757367 MDFUSE_MODEL_STEPS=650`, step 649,
/// a crash in between doing what the check does here); RAID1 shares md's
/// part of it.
fn readd_after_a_rebuild_cut_short(level_name: &str) {
    let (spec, p) = level(level_name);
    let mut run = Run::new(
        spec,
        p,
        21,
        &Settings::from_env(),
        Some(Knobs::replay(2, Some("64K"), true)),
    );
    let dev = |d: &str| d.to_owned();
    run.then(Op::Write {
        off: 0,
        len: 1 << 20,
        seed: 1,
    });
    run.then(Op::Flush);
    // The bitmap daemon clears the bits of those writes.
    let t0 = Instant::now();
    while run.live().mddev.bitmap().unwrap().dirty_chunks() > 0 {
        assert!(t0.elapsed() < WAIT_LIMIT, "bits never cleared");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.then(Op::Fail { dev: dev("d1") });
    run.then(Op::Remove { dev: dev("d1") });
    // A blank image is rebuilt whole up to 512 KiB and held there.
    run.live().put("md0/md/sync_max", "1024").unwrap();
    run.then(Op::AddBlank { dev: dev("d2") });
    let t0 = Instant::now();
    while run.live().rdev("d2").expect("d2 bound").recovery_offset() < 1024 {
        if t0.elapsed() > WAIT_LIMIT {
            let live = run.live();
            let attr = |p: &str| live.get(p).unwrap_or_else(|e| format!("({})", errno(e)));
            panic!(
                "the rebuild never reached 1024: d2 recovery_offset {} state {}, \
                 sync_action {} sync_completed {} sync_max {} degraded {}\nmdstat:\n{}\nlog:\n{}",
                live.rdev("d2").unwrap().recovery_offset(),
                attr("md0/md/dev-d2/state"),
                attr("md0/md/sync_action"),
                attr("md0/md/sync_completed"),
                attr("md0/md/sync_max"),
                attr("md0/md/degraded"),
                attr("mdstat"),
                live.mddev.log().contents(),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    run.then(Op::Fail { dev: dev("d2") });
    run.live().put("md0/md/sync_max", "max").unwrap();
    run.play(&[
        Op::Wait,
        Op::Check,
        Op::ReAddBound { dev: dev("d2") },
        Op::Remove { dev: dev("d2") },
        Op::ReAdd { dev: dev("d2") },
        Op::Wait,
        Op::Fail { dev: dev("d0") },
        Op::Read {
            off: 0,
            len: 1 << 20,
        },
    ]);
}

#[test]
fn raid10_readd_after_a_rebuild_cut_short() {
    readd_after_a_rebuild_cut_short("raid10");
}

#[test]
fn raid1_readd_after_a_rebuild_cut_short() {
    readd_after_a_rebuild_cut_short("raid1");
}

/// A member whose flush fails is failed, and the flush succeeds while the
/// array can do without it: a RAID4/5/6 flush failed whole when one
/// member (here a spare being rebuilt) could not flush.  Found by the
/// model (`MDFUSE_MODEL_SEED=0x6d6466757365`, step 553: `fault d7:
/// vanish`, then `flush` returned EIO).
#[test]
fn a_member_that_cannot_flush_is_failed_not_the_flush() {
    for (name, disks, lost) in [("raid5", 3, 1), ("raid4", 3, 1), ("raid6", 4, 2)] {
        let (spec, p) = level(name);
        // Not clean: the last member (raid6: all) being rebuilt or synced.
        let knobs = Knobs::replay(disks, Some("64K"), false);
        let mut run = Run::new(spec, p, 7, &Settings::from_env(), Some(knobs));
        run.then(Op::Write {
            off: 100_000,
            len: 300_000,
            seed: 5,
        });
        for d in (0..lost).map(|i| format!("d{}", disks - 1 - i)) {
            run.then(Op::Fault {
                dev: d,
                rule: "vanish".into(),
            });
        }
        run.then(Op::Flush);
        let faulty = run.images.iter().filter(|i| i.role == Role::Faulty).count();
        let md_faulty = run
            .live()
            .mddev
            .rdevs()
            .iter()
            .filter(|r| r.faulty())
            .count();
        assert_eq!(
            md_faulty, lost as usize,
            "{name}: md failed the members ({faulty})"
        );
        run.play(&[
            Op::Read {
                off: 0,
                len: 1 << 20,
            },
            Op::Wait,
        ]);
    }
}

/// A member that fails while it is being rebuilt from nothing cannot come
/// back on the bitmap's word: the bitmap records the writes a member
/// missed while away, not the blocks it never had.  Its `re-add` is
/// refused, and added again it is rebuilt whole.  Linux 6.1's
/// remove_and_add_spares keeps the slot of every member it takes out, and
/// once any sync has completed in the meantime (which clears the
/// personality's fullsync) a `re-add` rebuilds only the bitmap's chunks:
/// the rest of the member stays as the first rebuild left it.  Found by the model
/// (`MDFUSE_MODEL_SEED=0x6d6466757367`, step 662: RAID5 read zeros after
/// a member failed mid-rebuild came back by `re-add`).
#[test]
fn a_member_failed_mid_rebuild_is_rebuilt_whole() {
    for (name, disks) in [("raid1", 2), ("raid5", 3), ("raid6", 4)] {
        let (spec, p) = level(name);
        let knobs = Knobs::replay(disks, Some("64K"), true);
        let mut run = Run::new(spec, p, 12, &Settings::from_env(), Some(knobs));
        let far = 2u64 << 20;
        run.then(Op::Write {
            off: far,
            len: 65536,
            seed: 1,
        });
        run.then(Op::Flush);
        // The bitmap daemon clears the bits of that write.
        let t0 = Instant::now();
        while run.live().mddev.bitmap().unwrap().dirty_chunks() > 0 {
            assert!(t0.elapsed() < WAIT_LIMIT, "{name}: the bitmap stays dirty");
            std::thread::sleep(Duration::from_millis(20));
        }
        run.then(Op::Fail { dev: "d0".into() });
        run.then(Op::Remove { dev: "d0".into() });
        // A blank image is rebuilt in d0's slot, held at sector 1024
        // (whole chunks, as RAID4/5/6 want sync_max), and fails there.
        run.live().put("md0/md/sync_max", "1024").unwrap();
        let blank = format!("d{disks}");
        run.then(Op::AddBlank { dev: blank.clone() });
        let t0 = Instant::now();
        while !(run.live().mddev.sync.busy() && run.live().mddev.sync.curr_resync() == 1024) {
            assert!(
                t0.elapsed() < WAIT_LIMIT,
                "{name}: the rebuild never reached 1024"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        run.then(Op::Fail { dev: blank.clone() });
        run.live().put("md0/md/sync_max", "max").unwrap();
        // A sync completes meanwhile.
        run.then(Op::Check);
        assert_eq!(
            run.live()
                .put(&format!("md0/md/dev-{blank}/state"), "re-add"),
            Err(Errno::EBUSY),
            "{name}: {blank} came back on the bitmap's word"
        );
        run.then(Op::Remove { dev: blank.clone() });
        run.then(Op::ReAdd { dev: blank.clone() });
        run.play(&[
            Op::Wait,
            Op::Check,
            Op::Fail { dev: "d1".into() },
            Op::Read {
                off: far,
                len: 65536,
            },
        ]);
    }
}

/// A resync of a RAID6 missing one member checks (and repairs) the
/// syndrome it still has, as handle_parity_checks6 does: a crash may
/// have cut a write short on P or Q, and the one not used to rebuild the
/// missing block must be made to agree, or the member rebuilt later
/// leaves the stripe inconsistent.  Here Q of row 0 is spoilt on disk,
/// a data member fails, and a repair runs: once a blank image is rebuilt
/// in the failed member's place, a check finds nothing.  Found by the
/// model (`MDFUSE_MODEL_SEED=0x6d6466757365`, step 313: a check after a
/// power loss, a dirty degraded start and a rebuild found 32 sectors).
#[test]
fn a_degraded_raid6_resync_mends_the_syndrome_left() {
    use mdfuse::raid5::geometry::Geometry;
    use std::os::unix::fs::FileExt;
    let (spec, p) = level("raid6");
    let knobs = Knobs::replay(4, None, true);
    let mut run = Run::new(spec, p, 13, &Settings::from_env(), Some(knobs));
    // Row 0, both data chunks.
    run.then(Op::Write {
        off: 0,
        len: 128 << 10,
        seed: 1,
    });
    run.then(Op::Flush);
    let (chunk, layout) = {
        let cfg = run.live().mddev.cfg.lock();
        (u64::from(cfg.chunk_sectors), cfg.layout)
    };
    let geo = Geometry {
        level: 6,
        algorithm: layout,
        raid_disks: 4,
        chunk_sectors: chunk,
    };
    let st = geo.stripe(0);
    let q = st.qd_idx.expect("raid6 has Q");
    // Spoil Q of row 0 on its member, behind md's back.
    let qdev = format!("d{q}");
    let at = run.live().rdev(&qdev).unwrap().data_offset() * 512 + 4096;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&run.image(&qdev).path)
        .unwrap();
    f.write_all_at(&[0x5a; 4096], at).unwrap();
    drop(f);
    // A data member of row 0 fails; a repair runs on what is left.
    let data = (0..4).find(|&i| i != st.pd_idx && i != q).unwrap();
    run.then(Op::Fail {
        dev: format!("d{data}"),
    });
    run.then(Op::Remove {
        dev: format!("d{data}"),
    });
    run.live().put("md0/md/sync_action", "repair").unwrap();
    run.then(Op::Wait);
    run.play(&[Op::AddBlank { dev: "d4".into() }, Op::Wait, Op::Check]);
}

/// An old member that md will not take back in its role (not too old for
/// the bitmap, but its slot is held by the spare rebuilt in its place)
/// is given a spare's superblock
/// and rebuilt whole, wherever it lands.  It must not keep the slot its
/// old superblock gave: rebuilt in another slot, its superblock would say
/// RECOVERY_BITMAP, and after a crash it would be taken back in that slot
/// on the bitmap's word, its clean chunks skipped, with the other slot's
/// old blocks in it.  Found by the model (`MDFUSE_MODEL_SEED=0x5ef0`,
/// RAID6, 805 steps: a chunk read back as the parity of its row).
#[test]
fn an_old_member_added_as_a_spare_is_rebuilt_whole_after_a_crash() {
    let (spec, p) = level("raid6");
    let knobs = Knobs::replay(4, Some("64K"), true);
    let mut run = Run::new(spec, p, 12, &Settings::from_env(), Some(knobs));
    let len = 4usize << 20;
    let wait_clean = |run: &mut Run| {
        let t0 = Instant::now();
        while run.live().mddev.bitmap().unwrap().dirty_chunks() > 0 {
            assert!(t0.elapsed() < WAIT_LIMIT, "the bitmap stays dirty");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    run.then(Op::Write {
        off: 0,
        len,
        seed: 1,
    });
    run.then(Op::Flush);
    wait_clean(&mut run);
    // d0 leaves; a blank image is rebuilt in its slot.
    run.then(Op::Fail { dev: "d0".into() });
    run.then(Op::Remove { dev: "d0".into() });
    run.then(Op::AddBlank { dev: "d4".into() });
    run.then(Op::Wait);
    // d1's slot comes free; d0 comes back as a spare, is put there and
    // rebuilt, held at sector 1024, when the process dies.
    run.then(Op::Fail { dev: "d1".into() });
    run.then(Op::Remove { dev: "d1".into() });
    // md's thread looks at the array after the removal; lowering sync_max
    // while it runs is EBUSY, as in Linux.
    run.then(Op::Wait);
    run.live().put("md0/md/sync_max", "1024").unwrap();
    run.then(Op::ReAdd { dev: "d0".into() });
    let t0 = Instant::now();
    loop {
        let l = run.live();
        let bound = l.rdev("d0").is_some_and(|r| r.raid_disk() >= 0);
        if bound
            && !l.mddev.sb_flags.any()
            && l.mddev.sync.busy()
            && l.mddev.sync.curr_resync() == 1024
        {
            break;
        }
        assert!(t0.elapsed() < WAIT_LIMIT, "the rebuild never reached 1024");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.then(Op::Crash {
        power_loss: false,
        with_stale: false,
        seed: 0,
    });
    run.play(&[
        Op::Wait,
        Op::Check,
        Op::Fail { dev: "d2".into() },
        Op::Read { off: 0, len },
    ]);
}

/// A sync step that the source leg fails to read is read again page by
/// page from the other legs, the last page too when the step ends inside
/// one: a step cut short by a bad block on the source (here 256..380,
/// fifteen and a half pages) had its last half page written to the
/// member being rebuilt as zeros, and that member was then in sync.
/// Found by the model (`MDFUSE_MODEL_SEED=0xa006`, step 940, once, under
/// heavy load: a replacement rebuilt from a leg that had vanished and had
/// a bad block at sector 380 read zeros at sectors 376..380).
#[test]
fn a_sync_read_retried_page_by_page_keeps_its_last_part_page() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(3, Some("64K"), true);
    let mut run = Run::new(spec, p, 14, &Settings::from_env(), Some(knobs));
    run.then(Op::Write {
        off: 0,
        len: 1 << 20,
        seed: 1,
    });
    run.then(Op::Flush);
    run.then(Op::Fail { dev: "d2".into() });
    run.then(Op::Remove { dev: "d2".into() });
    // d0, the first leg a sync reads, gets a bad block at sector 380 and
    // cannot read 256..380: the step at 256 stops at the bad block, its
    // read fails on d0, and d1 serves it page by page.
    let data_offset = run.live().rdev("d0").unwrap().data_offset();
    let bad = data_offset + 380;
    run.then(Op::Fault {
        dev: "d0".into(),
        rule: format!("write-error {bad}-{bad}"),
    });
    run.then(Op::Write {
        off: 380 * 512,
        len: 512,
        seed: 2,
    });
    assert!(
        run.live().rdev("d0").unwrap().badblocks.lock().count() > 0,
        "d0 has no bad block"
    );
    run.then(Op::Fault {
        dev: "d0".into(),
        rule: format!("read-error {}-{}", data_offset + 256, bad - 1),
    });
    // A blank image is rebuilt in d2's slot while those faults last.
    run.then(Op::AddBlank { dev: "d3".into() });
    let t0 = Instant::now();
    while !run.live().rdev("d3").expect("d3 bound").in_sync() {
        assert!(t0.elapsed() < WAIT_LIMIT, "the rebuild never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Only d3 is left to read from.
    run.play(&[
        Op::Wait,
        Op::Fail { dev: "d0".into() },
        Op::Fail { dev: "d1".into() },
        Op::Read {
            off: 256 * 512,
            len: 128 * 512,
        },
    ]);
}

/// A member that fails holds the writes it completed since it was last
/// flushed in its volatile cache, and nothing flushes it once it is out
/// of its slot.  The bitmap must not vouch for them: a chunk written just
/// before the failure keeps its bit (NEEDED) until the member is caught
/// up again, so a re-add after a power loss rewrites it.  Here d1 (raid
/// disk 1) takes its part of a write to row 0 and fails at once, before
/// any flush reaches it; a clean stop clears every other bit; the power
/// loss drops d1's cached write; d1 is taken back on the bitmap's word,
/// and then serves row 0's chunk 1 alone.  Found by the model on RAID5
/// (`MDFUSE_MODEL_LEVELS=raid5 MDFUSE_MODEL_SEED=0x5a5af
/// MDFUSE_MODEL_STEPS=692`, step 691, once: the re-added member served
/// the bytes of step 581 in place of those of step 667).
#[test]
fn a_failed_member_is_caught_up_on_the_writes_it_had_not_flushed() {
    let (spec, p) = level("raid5");
    let knobs = Knobs::replay(3, Some("64K"), true);
    for round in 0..8u64 {
        let mut run = Run::new(
            spec,
            p,
            300 + round,
            &Settings::from_env(),
            Some(knobs.clone()),
        );
        run.play(&[
            Op::Write {
                off: 0,
                len: 256 << 10,
                seed: 1,
            },
            Op::Flush,
            // Row 0's chunk 1 is on d1 (left-symmetric: parity on d2).
            Op::Write {
                off: 70656,
                len: 21504,
                seed: 2 + round,
            },
            Op::Fail { dev: "d1".into() },
            Op::Remove { dev: "d1".into() },
            Op::Restart,
            Op::Crash {
                power_loss: true,
                with_stale: false,
                seed: round.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xbecd_9675_5088_75ff,
            },
            Op::ReAdd { dev: "d1".into() },
            Op::Wait,
            Op::Fail { dev: "d0".into() },
            Op::Read {
                off: 0,
                len: 256 << 10,
            },
        ]);
    }
}

/// A member whose own flush fails is failed by it, and the flush returns
/// only once the superblocks say so: the write before it is durable on
/// the other leg only, and after a power loss the member must not come
/// back in sync without it.  (The flush waited for the superblock writes
/// of members failed before it, not for that of one it failed itself.)
/// Found by the model on RAID1 (`MDFUSE_MODEL_LEVELS=raid1
/// MDFUSE_MODEL_SEED=0x5a5b0 MDFUSE_MODEL_STEPS=8000`, run 0x5a5b6 at
/// step 294: a member vanished just before a flush).
#[test]
fn a_member_whose_flush_fails_is_recorded_failed_before_the_flush_returns() {
    let (spec, p) = raid1();
    let knobs = Knobs::replay(2, Some("64K"), true);
    for round in 0..20u64 {
        let mut run = Run::new(
            spec,
            p,
            400 + round,
            &Settings::from_env(),
            Some(knobs.clone()),
        );
        run.play(&[
            Op::Write {
                off: 0,
                len: 1 << 20,
                seed: 1,
            },
            Op::Flush,
            Op::Write {
                off: 78722,
                len: 279,
                seed: 2 + round,
            },
            Op::Fault {
                dev: "d0".into(),
                rule: "vanish".into(),
            },
            Op::Flush,
            Op::Crash {
                power_loss: true,
                with_stale: false,
                seed: round.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5e0_0c81_ea40_0358,
            },
            Op::Read {
                off: 0,
                len: 1 << 20,
            },
        ]);
    }
}
