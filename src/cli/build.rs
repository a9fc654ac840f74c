//! `mdfuse build`: an array without superblocks, as `mdadm --build` makes
//! one (Build.c).  Nothing is written to the devices: their data is read
//! and written in place at data offset 0, with the geometry given on the
//! command line, which is the only record of it.
//!
//! mdadm drives the kernel with the SET_ARRAY_INFO, ADD_NEW_DISK and
//! RUN_ARRAY ioctls; this verb writes what a user would write into the
//! tree by hand to reach the same array: `new_array`, `metadata_version`
//! `none`, `level`, `raid_disks`, `chunk_size`, `layout`, `resync_start`
//! (`none` with `--assume-clean`), each device into `new_dev` with its
//! member's `slot`, `offset` and `size`, then `component_size` and
//! `array_state`.  The checks, their order, the messages and the exit
//! statuses are mdadm 4.2's; a failure after the array was made clears it
//! again (mdadm's STOP_ARRAY), so a refused build leaves nothing behind.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ArgMatches;

use super::manage::shown;
use super::probe::strerror;
use super::shape::{self, Level};
use super::tree::{Tree, TreeArgs, devnm};
use super::{Failure, parse_num, parse_size};

/// Build an array without superblocks over DEVICEs and start it.
///
/// The devices are used whole from their first byte, in the order given
/// (slot 0 first); `missing` stands for an absent member of a raid1 or
/// raid10.  Nothing records the geometry: the same command builds the
/// same array again.
#[derive(clap::Args, Debug)]
#[command(
    override_usage = "mdfuse build [OPTIONS] ARRAY --level=LEVEL --raid-devices=N DEVICE...",
    after_help = "ARRAY is md0, /dev/md0, /dev/md/NAME or md_NAME.  DEVICE is an image file, a \
block device, an NBD URI, or the word 'missing' for an absent member."
)]
pub struct BuildArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// RAID level: linear, 0 (raid0, stripe), 1 (raid1, mirror) or 10
    /// (raid10).
    #[arg(short, long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// Number of devices, `missing` ones included.
    #[arg(short = 'n', long = "raid-devices", value_name = "N")]
    pub raid_devices: Option<String>,
    /// Chunk size (K, M, G suffixes; no suffix = KiB) [default: 64K for
    /// raid0 and linear's rounding; raid10 needs one, as with mdadm].
    #[arg(short, long, alias = "rounding", value_name = "SIZE")]
    pub chunk: Option<String>,
    /// Layout: raid0 original|alternate|dangerous; raid10 nN, fN or oN
    /// copies [default: n2].
    #[arg(short = 'p', long, alias = "parity", value_name = "LAYOUT")]
    pub layout: Option<String>,
    /// Space used on each device (K, M, G, T suffixes or s for sectors;
    /// no suffix = KiB) [default: the smallest device].
    #[arg(short = 'z', long, value_name = "SIZE")]
    pub size: Option<String>,
    /// The members hold the same data already: no initial resync of a
    /// raid1 or raid10.
    #[arg(long = "assume-clean")]
    pub assume_clean: bool,
    /// Start the array read-only (not mdadm's): nothing is written, not
    /// even by a resync, until `mdfuse manage ARRAY --readwrite`.
    #[arg(long)]
    pub readonly: bool,
    /// Allow a single device.
    #[arg(short, long)]
    pub force: bool,
    /// Mark the devices that follow as write-mostly.
    #[arg(short = 'W', long = "write-mostly", action = clap::ArgAction::Count)]
    pub write_mostly: u8,
    /// Accepted for mdadm compatibility; the array is always started.
    #[arg(short = 'R', long, hide = true)]
    pub run: bool,
    /// The array, then its devices in slot order.
    #[arg(value_name = "ARRAY DEVICE")]
    pub args: Vec<PathBuf>,
}

/// `matches` are this subcommand's, for where `-W` stood among the devices.
pub fn run(args: BuildArgs, matches: &ArgMatches) -> ExitCode {
    let wm_index = matches
        .indices_of("write_mostly")
        .and_then(|mut i| i.next());
    let write_mostly: Vec<bool> = matches
        .indices_of("args")
        .map(|i| i.map(|d| wm_index.is_some_and(|w| w < d)).collect())
        .unwrap_or_default();
    match build(&args, &write_mostly) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn err(msg: impl Into<String>) {
    eprintln!("mdfuse: {}", msg.into());
}

/// One position of the device list.
#[derive(Debug)]
enum Slot {
    Missing,
    Device { spec: String, write_mostly: bool },
}

/// The options, parsed as mdadm.c parses them for --build.
#[derive(Debug)]
struct Shape {
    level: Option<Level>,
    /// KiB; 0 for none.
    chunk_kib: u64,
    /// None: the level's default, left as md has it.
    layout: Option<u32>,
    raid_disks: Option<u32>,
    /// KiB, from --size.
    size_kib: Option<u64>,
}

/// `--level` as mdadm reads it for --build: mdadm's level names, only
/// the levels md builds, and of those the ones mdfuse runs.
fn parse_level(s: &str) -> Result<Level, Failure> {
    match s {
        "linear" | "-1" => Ok(Level::Linear),
        "raid0" | "0" | "stripe" => Ok(Level::Raid0),
        "raid1" | "1" | "mirror" => Ok(Level::Raid1),
        "raid10" | "10" => Ok(Level::Raid10),
        "multipath" | "mp" | "-4" | "faulty" | "-5" => Err(Failure::usage(format!(
            "raid level {s} is not supported: mdfuse builds linear, raid0, raid1 and raid10 arrays"
        ))),
        "raid4" | "4" | "raid5" | "5" | "raid6" | "6" | "container" => Err(Failure::usage(
            format!("Raid level {s} not permitted with --build."),
        )),
        _ => Err(Failure::usage(format!("invalid raid level: {s}"))),
    }
}

fn parse_shape(a: &BuildArgs) -> Result<Shape, Failure> {
    let level = a.level.as_deref().map(parse_level).transpose()?;
    let chunk_kib = match &a.chunk {
        Some(c) => shape::parse_chunk(c)?,
        None => 0,
    };
    let layout = match (&a.layout, level) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Failure::usage("raid level must be given before layout."));
        }
        (Some(l), Some(level)) => Some(shape::layout_for(level, Some(l))?),
    };
    let raid_disks = match &a.raid_devices {
        None => None,
        Some(s) => match parse_num(s) {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(Failure::usage(format!(
                    "invalid number of raid devices: {s}"
                )));
            }
        },
    };
    let size_kib = match a.size.as_deref() {
        None | Some("max") => None,
        Some(s) => match parse_size(s) {
            Some(sectors) if sectors >= 8 => Some(sectors / 2),
            _ => return Err(Failure::usage(format!("invalid size: {s}"))),
        },
    };
    Ok(Shape {
        level,
        chunk_kib,
        layout,
        raid_disks,
        size_kib,
    })
}

fn build(a: &BuildArgs, write_mostly: &[bool]) -> Result<(), Failure> {
    let shape = parse_shape(a)?;
    let Some((first, devices)) = a.args.split_first() else {
        return Err(Failure::usage("an md device must be given in this mode"));
    };
    let tree_dir = a.tree.dir();
    let first = first.to_string_lossy().into_owned();
    let Some(nm) = devnm(&first, &tree_dir) else {
        return Err(Failure::refused(if Path::new(&first).exists() {
            format!("device {first} exists but is not an md array.")
        } else {
            format!("{first} is an invalid name for an md device.")
        }));
    };
    let mddev = shown(&first);
    if shape.raid_disks == Some(1) && !a.force {
        return Err(Failure::usage(super::shape::ONE_DRIVE));
    }
    let Some(raid_disks) = shape.raid_disks else {
        return Err(Failure::refused("no raid-devices specified."));
    };
    let Some(level) = shape.level else {
        return Err(Failure::refused(
            "a RAID level is needed to Build an array.",
        ));
    };
    // Every device must be there before anything is made (mdadm checks
    // each is a block device; image files serve here as well).
    let slots: Vec<Slot> = devices
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let spec = p.to_string_lossy().into_owned();
            if spec == "missing" {
                return Ok(Slot::Missing);
            }
            if !crate::disk::nbd::is_uri(&spec) {
                let m = std::fs::metadata(p).map_err(|e| {
                    Failure::refused(format!("stat failed for {spec}: {}", strerror(&e)))
                })?;
                if !m.file_type().is_block_device() && !m.is_file() {
                    return Err(Failure::refused(format!("{spec} is not a block device.")));
                }
            }
            Ok(Slot::Device {
                spec,
                write_mostly: write_mostly.get(i + 1).copied().unwrap_or(false),
            })
        })
        .collect::<Result<_, _>>()?;
    if raid_disks as usize != slots.len() {
        return Err(Failure::refused(format!(
            "requested {raid_disks} devices in array but listed {}",
            slots.len()
        )));
    }
    // Build.c's defaults: a chunk (or rounding) of 64K for the striped
    // levels; RAID10 gets none and md refuses to run it without.
    let chunk_kib = match (shape.chunk_kib, level) {
        (0, Level::Raid0 | Level::Linear) => 64,
        (c, _) => c,
    };
    let layout = match (shape.layout, level) {
        (None, Level::Raid10) => Some(shape::layout_for(level, None)?),
        // SET_ARRAY_INFO gives a RAID0 the layout -1 ("cannot trust RAID0
        // layout info here"): a multi-zone one then runs only with
        // raid0_default_layout set.  md's layout is an int read as an
        // unsigned one from sysfs, so -1 is written as 2^32 - 1.
        (None, Level::Raid0) => Some(u32::MAX),
        (l, _) => l,
    };

    let tree = a.tree.open_or_start()?;
    if tree.has_array(&nm)
        && (!tree.members(&nm).is_empty()
            || tree
                .read(&format!("{nm}/md/array_state"))
                .is_ok_and(|s| s != "clear" && s != "inactive"))
    {
        return Err(Failure::refused(format!("{mddev} is already in use.")));
    }
    if !tree.has_array(&nm) {
        tree.write("new_array", &nm)
            .map_err(|e| Failure::refused(format!("failed to create {mddev}: {}", strerror(&e))))?;
    }
    let built = Built {
        tree: &tree,
        md: format!("{nm}/md"),
        nm: nm.clone(),
    };
    let plan = Plan {
        level,
        raid_disks,
        chunk_kib,
        layout,
        size_kib: shape.size_kib,
        assume_clean: a.assume_clean,
        readonly: a.readonly,
        slots,
    };
    let r = built.configure(&mddev, &plan);
    if r.is_err() {
        // mdadm's abort: STOP_ARRAY.  The array leaves the tree.
        let _ = tree.write(&format!("{}/array_state", built.md), "clear");
    }
    r?;
    err(format!("array {mddev} built and started."));
    Ok(())
}

/// What is built, checked.
struct Plan {
    level: Level,
    raid_disks: u32,
    /// KiB; 0 for none.
    chunk_kib: u64,
    /// None: as md has it.
    layout: Option<u32>,
    /// KiB, from --size.
    size_kib: Option<u64>,
    assume_clean: bool,
    readonly: bool,
    slots: Vec<Slot>,
}

/// The array being built in the tree.
struct Built<'a> {
    tree: &'a Tree,
    nm: String,
    /// `NAME/md`.
    md: String,
}

impl Built<'_> {
    fn set(&self, attr: &str, value: &str) -> std::io::Result<()> {
        self.tree.write(&format!("{}/{attr}", self.md), value)
    }

    fn configure(&self, mddev: &str, plan: &Plan) -> Result<(), Failure> {
        let Plan {
            level,
            raid_disks,
            chunk_kib,
            layout,
            size_kib,
            ref slots,
            ..
        } = *plan;
        // SET_ARRAY_INFO.
        let info = || -> std::io::Result<()> {
            self.set("metadata_version", "none")?;
            self.set("level", level.name())?;
            self.set("raid_disks", &raid_disks.to_string())?;
            if chunk_kib > 0 {
                self.set("chunk_size", &(chunk_kib * 1024).to_string())?;
            }
            if let Some(l) = layout {
                self.set("layout", &l.to_string())?;
            }
            if plan.assume_clean {
                self.set("resync_start", "none")?;
            }
            Ok(())
        };
        info().map_err(|e| {
            Failure::refused(format!(
                "md_set_array_info() failed for {mddev}: {}",
                strerror(&e)
            ))
        })?;
        // ADD_NEW_DISK for each device, in slot order: in sync in its
        // slot, the whole device from sector 0.
        let mut smallest: Option<u64> = size_kib;
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Device { spec, write_mostly } = slot else {
                continue;
            };
            let name = self.add(spec)?;
            let dev = format!("dev-{name}");
            let sectors: u64 = self
                .tree
                .read(&format!("{}/slaves/{name}/size", self.nm))
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let kib = sectors / 2;
            smallest = Some(smallest.map_or(kib, |s| s.min(kib)));
            let member = || -> std::io::Result<()> {
                self.set(&format!("{dev}/slot"), &i.to_string())?;
                self.set(&format!("{dev}/offset"), "0")?;
                self.set(&format!("{dev}/size"), &kib.to_string())?;
                if *write_mostly {
                    self.set(&format!("{dev}/state"), "writemostly")?;
                }
                Ok(())
            };
            member().map_err(|e| {
                Failure::refused(format!("ADD_NEW_DISK failed for {spec}: {}", strerror(&e)))
            })?;
        }
        // The component size is the smallest device's (or --size, when
        // smaller), as binding each device leaves it in md.
        if let Some(kib) = smallest.filter(|_| slots.iter().any(|s| !matches!(s, Slot::Missing))) {
            self.set("component_size", &kib.to_string()).map_err(|e| {
                Failure::refused(format!(
                    "md_set_array_info() failed for {mddev}: {}",
                    strerror(&e)
                ))
            })?;
        }
        // RUN_ARRAY.
        let word = if plan.readonly { "readonly" } else { "active" };
        self.set("array_state", word).map_err(|e| {
            let mut m = format!("RUN_ARRAY failed: {}", strerror(&e));
            if chunk_kib & chunk_kib.wrapping_sub(1) != 0 {
                m.push_str("\n        Problem may be that chunk size is not a power of 2");
            }
            Failure::refused(m)
        })
    }

    /// `new_dev`, and the name the member got in the tree.
    fn add(&self, spec: &str) -> Result<String, Failure> {
        let before: Vec<String> = self
            .tree
            .members(&self.nm)
            .into_iter()
            .map(|m| m.name)
            .collect();
        // The daemon resolves paths from its own directory: give it ours.
        let target = if crate::disk::nbd::is_uri(spec) {
            spec.to_string()
        } else {
            std::fs::canonicalize(spec)
                .unwrap_or_else(|_| PathBuf::from(spec))
                .to_string_lossy()
                .into_owned()
        };
        if let Err(e) = self.set("new_dev", &target) {
            // mdadm opens each device O_EXCL before ADD_NEW_DISK: a
            // device in use, gone or out of reach fails there.
            let step = match e.raw_os_error() {
                Some(libc::EBUSY | libc::ENOENT | libc::EACCES | libc::ENXIO) => "Cannot open",
                _ => "ADD_NEW_DISK failed for",
            };
            return Err(Failure::refused(format!("{step} {spec}: {}", strerror(&e))));
        }
        self.tree
            .members(&self.nm)
            .into_iter()
            .map(|m| m.name)
            .find(|n| !before.contains(n))
            .ok_or_else(|| Failure::refused(format!("ADD_NEW_DISK failed for {spec}: vanished")))
    }
}
