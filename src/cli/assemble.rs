//! `mdfuse assemble`: mdadm's `--assemble` (Assemble.c of mdadm 4.2) on
//! the tree.  The superblocks are read from the devices as mdadm reads
//! them, the members are chosen by mdadm's rules (grouped by array UUID,
//! the freshest by events, a member one event behind still fresh, a
//! stale one left for md to kick, spares join), and the array is then put
//! together the way a user would by hand: `echo NAME > new_array`, the
//! metadata version, each device into `new_dev`, and `array_state`.  Only
//! `--force` writes to the devices, as mdadm does: the event count of the
//! freshest stale members, and the freshest superblock's roles for them.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::detail::enough;
use super::fmt::homehost;
use super::probe::{Found, RoDevice, probe, strerror};
use super::tree::{Tree, TreeArgs, devnm};
use super::{Failure, parse_uuid};
use crate::format::super0::{disk_state, sb_state};
use crate::format::super1::{MAX_SECTOR, devflags, feature, role};
use crate::format::{Superblock0, Superblock1};

/// Assemble arrays from their members' superblocks, as `mdadm --assemble`.
///
/// `mdfuse assemble [ARRAY] DEVICE|DIRECTORY...` puts one array together
/// (named ARRAY, else as mdadm names it); `--scan` assembles every array
/// found on the DEVICEs and in the DIRECTORYs given, or on the machine's
/// block devices (/proc/partitions) when none are.
#[derive(clap::Args, Debug)]
pub struct AssembleArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Start the array even with fewer members than its superblocks say
    /// were working.
    #[arg(short = 'R', long)]
    pub run: bool,
    /// Start it read-only.
    #[arg(short = 'o', long)]
    pub readonly: bool,
    /// Bring the freshest out-of-date members up to date when there are
    /// not enough to start (writes their superblocks).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Only members of the array with this UUID.
    #[arg(short = 'u', long, value_name = "UUID")]
    pub uuid: Option<String>,
    /// Only members of the array with this name.
    #[arg(short = 'N', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Every array found on the DEVICEs and DIRECTORYs (or the machine's
    /// block devices).
    #[arg(short = 's', long)]
    pub scan: bool,
    /// Say what is done with each device.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// The host name arrays are local to [default: this host's name].
    #[arg(long, value_name = "HOST")]
    pub homehost: Option<String>,
    /// [ARRAY] then member devices, image files, or directories holding them.
    #[arg(value_name = "ARRAY|DEVICE|DIRECTORY")]
    pub args: Vec<PathBuf>,
}

// md_p.h's disk state bits as mdadm's getinfo_super reports them.
const ACTIVE: u32 = 1 << 1;
const SYNC: u32 = 1 << 2;
const FAULTY: u32 = 1 << 0;
const REPLACEMENT: u32 = 1 << 17;
const JOURNAL: u32 = 1 << 18;
const WM_FF: u32 = (1 << 9) | (1 << 10);

/// What mdadm's `getinfo_super` gives for one device.
#[derive(Debug, Clone)]
pub(super) struct Info {
    /// The UUID as mdadm prints it.
    pub(super) uuid: String,
    /// The UUID as the tree's `md/uuid` shows it.
    pub(super) tree_uuid: String,
    /// The stored name (1.x), "" for 0.90.
    pub(super) name: String,
    pub(super) version: String,
    pub(super) level: i32,
    pub(super) raid_disks: i32,
    pub(super) layout: i64,
    /// Superblock says clean (1.x: resync_offset at MaxSector).
    pub(super) clean: bool,
    pub(super) working_disks: i32,
    /// Which roles this superblock believes are working.
    pub(super) map: Vec<bool>,
    pub(super) events: u64,
    /// dev_number (1.x) or this_disk.number (0.90).
    pub(super) number: u32,
    pub(super) raid_disk: i32,
    pub(super) state: u32,
    pub(super) recovery_start: u64,
    pub(super) md_minor: i32,
}

impl Info {
    /// Whether the superblock gives the device an active role, not failed.
    pub(super) fn active(&self) -> bool {
        self.state & ACTIVE != 0 && self.state & FAULTY == 0
    }
}

struct Device {
    path: PathBuf,
    /// Named on the command line (not found in a directory).
    inargv: bool,
    info: Info,
    found: Found,
    uptodate: bool,
}

pub fn run(args: AssembleArgs) -> ExitCode {
    match assemble(&args) {
        Ok(rc) => ExitCode::from(rc),
        Err(f) => f.report(),
    }
}

fn err(msg: impl Into<String>) {
    eprintln!("mdfuse: {}", msg.into());
}

fn assemble(args: &AssembleArgs) -> Result<u8, Failure> {
    let host = homehost(args.homehost.as_deref());
    let want_uuid = match &args.uuid {
        Some(u) => Some(parse_uuid(u).ok_or_else(|| Failure::usage(format!("bad uuid: {u}")))?),
        None => None,
    };
    let tree_dir = args.tree.dir();
    let mut rest: Vec<&Path> = args.args.iter().map(PathBuf::as_path).collect();
    // The first argument names the array unless it is a device or directory.
    let mut array: Option<(String, String)> = None;
    if let Some(first) = rest.first() {
        let s = first.to_string_lossy();
        let is_md_name = devnm(&s, &tree_dir).is_some();
        let exists = first.exists() && !s.starts_with("/dev/md");
        if is_md_name && !exists {
            let nm = devnm(&s, &tree_dir).unwrap_or_default();
            array = Some((nm, shown(&s)));
            rest.remove(0);
        }
    }
    if !args.scan && array.is_none() && !rest.is_empty() {
        return Err(Failure::usage(format!(
            "{} is not an md array name (md0, /dev/md0, /dev/md/NAME); use --scan to assemble what is found",
            rest[0].display()
        )));
    }
    if !args.scan && rest.is_empty() {
        return Err(match &array {
            // mdadm looks the array up in mdadm.conf; there is none.
            Some(_) => Failure::refused(format!(
                "{} not identified in config file.",
                args.args[0].display()
            )),
            None => Failure::usage("an md device must be given in this mode"),
        });
    }
    if args.scan && array.is_some() && rest.is_empty() && want_uuid.is_none() && args.name.is_none()
    {
        // mdadm would look the array up in mdadm.conf; there is none.
        return Err(Failure::refused(format!(
            "{} not identified in config file.",
            array.as_ref().map(|a| a.1.as_str()).unwrap_or("")
        )));
    }

    // The candidate devices, explicit ones first in the order given.
    let mut paths: Vec<(PathBuf, bool)> = Vec::new();
    if rest.is_empty() {
        for p in proc_partitions() {
            paths.push((p, false));
        }
    }
    for p in &rest {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, 0);
            found.sort();
            paths.extend(found.into_iter().map(|f| (f, false)));
        } else {
            paths.push((p.to_path_buf(), true));
        }
    }
    let tree = args.tree.open_or_start()?;
    let busy = busy_paths(&tree);

    let report = |inargv: bool| (inargv && !args.scan) || args.verbose;
    let mut devices: Vec<Device> = Vec::new();
    let mut skipped_busy = false;
    for (path, inargv) in paths {
        let canon = std::fs::canonicalize(&path).unwrap_or(path.clone());
        if devices
            .iter()
            .any(|d| std::fs::canonicalize(&d.path).unwrap_or(d.path.clone()) == canon)
        {
            continue;
        }
        let dev = match RoDevice::open(&path) {
            Ok(d) => d,
            Err(e) => {
                if report(inargv) {
                    err(format!("cannot open device {}: {}", path.display(), e.0));
                }
                if inargv && !args.scan {
                    return Err(Failure::refused(format!(
                        "{} has no superblock - assembly aborted",
                        path.display()
                    )));
                }
                continue;
            }
        };
        let found = probe(&dev).found;
        let Some(found @ (Found::V1 { .. } | Found::V090 { .. })) = found else {
            if report(inargv) {
                err(format!("no recogniseable superblock on {}", path.display()));
            }
            if inargv && !args.scan && args.name.is_none() && want_uuid.is_none() {
                return Err(Failure::refused(format!(
                    "{} has no superblock - assembly aborted",
                    path.display()
                )));
            }
            continue;
        };
        if busy.contains(&canon) {
            // mdadm's exclusive open of a member in use fails, after its
            // superblock was read: the device is passed over.
            if report(inargv) {
                err(format!("{} is busy - skipping", path.display()));
            }
            skipped_busy = true;
            continue;
        }
        let info = info_of(&found);
        if let Some(u) = want_uuid {
            if parse_uuid(&info.uuid) != Some(u) {
                if report(inargv) {
                    err(format!("{} has wrong uuid.", path.display()));
                }
                continue;
            }
        }
        if let Some(n) = &args.name {
            if !name_matches(&info.name, n, host.as_deref()) {
                if report(inargv) {
                    err(format!("{} has wrong name.", path.display()));
                }
                continue;
            }
        }
        devices.push(Device {
            path,
            inargv,
            info,
            found,
            uptodate: false,
        });
    }

    // Group by UUID, in the order first seen.
    let mut groups: Vec<Vec<Device>> = Vec::new();
    for d in devices {
        match groups.iter_mut().find(|g| g[0].info.uuid == d.info.uuid) {
            Some(g) => g.push(d),
            None => groups.push(vec![d]),
        }
    }
    if !args.scan {
        // One array: the first device's; a stranger named on the command
        // line aborts, one found in a directory is passed over.
        if groups.len() > 1 {
            if let Some(stranger) = groups[1..].iter().flatten().find(|d| d.inargv) {
                return Err(Failure::refused(format!(
                    "superblock on {} doesn't match others - assembly aborted",
                    stranger.path.display()
                )));
            }
            groups.truncate(1);
        }
    }
    // A member whose superblock has the array's UUID but another shape
    // (one failed and removed before a grow, say) is not one of its
    // members: named on the command line it aborts the assembly, found
    // by a scan it is passed over, as mdadm's compare_super has it.
    for g in &mut groups {
        let shape = shape_of(&g[0].found);
        if !args.scan {
            if let Some(odd) = g.iter().find(|d| shape_of(&d.found) != shape) {
                return Err(Failure::refused(format!(
                    "superblock on {} doesn't match others - assembly aborted",
                    odd.path.display()
                )));
            }
        }
        g.retain(|d| shape_of(&d.found) == shape);
    }
    if groups.is_empty() && skipped_busy && !args.scan {
        // Assemble.c: no superblock taken (select_devices left st unset)
        // is status 2, with nothing more said.
        return Ok(2);
    }
    if groups.is_empty() {
        return Err(Failure::refused(match &array {
            Some((_, shown)) => format!("no devices found for {shown}"),
            None => "No arrays found in config file or automatically".to_string(),
        }));
    }
    if array.is_some() && groups.len() > 1 {
        groups.truncate(1);
    }

    let mut rc = 0u8;
    let mut started = 0;
    for group in groups {
        let (nm, shown_name) = match &array {
            Some(a) => a.clone(),
            None => name_for(&tree, &group[0].info, host.as_deref()),
        };
        match assemble_one(&tree, &nm, &shown_name, group, args) {
            Ok(()) => started += 1,
            Err(code) => rc = rc.max(code),
        }
    }
    if args.scan && started == 0 && rc == 0 {
        return Err(Failure::refused(
            "No arrays found in config file or automatically",
        ));
    }
    Ok(rc)
}

/// How mdadm shows an md device named by the user.
fn shown(s: &str) -> String {
    if s.starts_with("/dev/") {
        s.to_string()
    } else if let Some(n) = s.strip_prefix("md_") {
        format!("/dev/md/{n}")
    } else {
        format!(
            "/dev/{}",
            Path::new(s)
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        )
    }
}

/// mdadm's choice of a name for an array found by scanning: the name in
/// the superblock (its host part dropped when the array is local), a
/// number giving mdN when that is free, else md_NAME; 0.90 arrays take
/// their preferred minor.  A name in use takes the next free number from
/// md127 down, as mdadm does.
fn name_for(tree: &Tree, info: &Info, host: Option<&str>) -> (String, String) {
    let taken = |n: &str| {
        tree.has_array(n) && !tree.members(n).is_empty()
            || tree.has_array(n)
                && tree
                    .read(&format!("{n}/md/array_state"))
                    .is_ok_and(|s| s != "inactive" && s != "clear")
    };
    let wanted = if info.version == "0.90" {
        Some(format!("md{}", info.md_minor.max(0)))
    } else {
        let mut n = info.name.as_str();
        if let Some((h, rest)) = n.split_once(':') {
            if host == Some(h) || h == "any" {
                n = rest;
            }
        }
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u32>().is_ok() {
            Some(format!("md{}", n.parse::<u32>().unwrap_or(0)))
        } else if !n.is_empty() && !n.contains(':') && !n.contains('/') && n.len() < 29 {
            Some(format!("md_{n}"))
        } else {
            None
        }
    };
    let nm = match wanted {
        Some(w) if !taken(&w) => w,
        _ => (0..=127u32)
            .rev()
            .map(|i| format!("md{i}"))
            .find(|n| !taken(n))
            .unwrap_or_else(|| "md127".to_string()),
    };
    let shown = match nm.strip_prefix("md_") {
        Some(n) => format!("/dev/md/{n}"),
        None => format!("/dev/{nm}"),
    };
    (nm, shown)
}

/// Assemble.c's `name_matches`.
fn name_matches(found: &str, required: &str, host: Option<&str>) -> bool {
    if found == required {
        return true;
    }
    let Some((h, rest)) = found.split_once(':') else {
        return false;
    };
    (h == "any" || host == Some("any") || host == Some(h)) && rest == required
}

/// `getinfo_super` for one device.
/// What mdadm's `compare_super` compares besides the UUID: the format,
/// ctime, level, layout (1.x), size, chunk size (1.x) and raid_disks (and
/// for 0.90 its version and `gvalid_words`).
fn shape_of(found: &Found) -> (String, Vec<u64>) {
    let fields = match found {
        Found::V1 { sb, .. } => vec![
            sb.ctime,
            sb.level as u64,
            sb.layout.into(),
            sb.size,
            sb.chunksize.into(),
            sb.raid_disks.into(),
        ],
        Found::V090 { sb, .. } => vec![
            sb.major_version.into(),
            sb.minor_version.into(),
            sb.patch_version.into(),
            sb.gvalid_words.into(),
            sb.ctime.into(),
            sb.level as u64,
            sb.size.into(),
            sb.raid_disks.into(),
        ],
        Found::Undecodable { .. } => Vec::new(),
    };
    (found.version().to_string(), fields)
}

pub(super) fn info_of(found: &Found) -> Info {
    match found {
        Found::V1 { sb, .. } => info_v1(sb, &found.version().to_string()),
        Found::V090 { sb, .. } => info_v090(sb),
        Found::Undecodable { .. } => unreachable_info(),
    }
}

fn unreachable_info() -> Info {
    Info {
        uuid: String::new(),
        tree_uuid: String::new(),
        name: String::new(),
        version: String::new(),
        level: i32::MIN,
        raid_disks: 0,
        layout: 0,
        clean: false,
        working_disks: 0,
        map: Vec::new(),
        events: 0,
        number: 0,
        raid_disk: -1,
        state: FAULTY,
        recovery_start: MAX_SECTOR,
        md_minor: -1,
    }
}

fn info_v1(sb: &Superblock1, version: &str) -> Info {
    let rd = sb.raid_disks as i32;
    let own = if sb.dev_number >= sb.max_dev {
        role::FAULTY
    } else {
        sb.own_role()
    };
    let (mut state, raid_disk) = match own {
        role::SPARE => (0, -1),
        role::FAULTY => (FAULTY, -1),
        role::JOURNAL => (JOURNAL, -1),
        r => (ACTIVE | SYNC, r as i32),
    };
    if sb.devflags & devflags::WRITE_MOSTLY != 0 {
        state |= 1 << 9;
    }
    if sb.devflags & devflags::FAIL_FAST != 0 {
        state |= 1 << 10;
    }
    if sb.has(feature::REPLACEMENT) {
        state &= !SYNC;
        state |= REPLACEMENT;
    }
    let mut map = vec![false; rd.max(0) as usize];
    let mut working = 0;
    for i in 0..sb.max_dev as usize {
        let r = sb.dev_roles.get(i).copied().unwrap_or(role::SPARE);
        if (r as i32) < rd {
            working += 1;
            map[r as usize] = true;
        }
    }
    let name = sb.name();
    Info {
        uuid: crate::format::uuid_colon(&sb.set_uuid),
        tree_uuid: crate::format::uuid_dashed(&sb.set_uuid),
        name,
        version: version.to_string(),
        level: sb.level,
        raid_disks: rd,
        layout: sb.layout as i64,
        clean: sb.resync_offset == MAX_SECTOR,
        working_disks: working,
        map,
        events: sb.events,
        number: sb.dev_number,
        raid_disk,
        state,
        recovery_start: if sb.has(feature::RECOVERY_OFFSET) {
            sb.recovery_offset
        } else {
            MAX_SECTOR
        },
        md_minor: -1,
    }
}

fn info_v090(sb: &Superblock0) -> Info {
    let rd = sb.raid_disks as i32;
    // super0.c's getinfo_super0: the working disks are counted from the
    // table (active, in sync, in a slot, not faulty), not read from the
    // superblock's own count, which has the spares too; the map is by
    // table entry, as mdadm keeps it.
    let mut map = vec![false; rd.max(0) as usize];
    let mut working = 0;
    for (i, d) in sb.disks.iter().enumerate() {
        let want = disk_state::ACTIVE | disk_state::SYNC;
        let on = d.state & want == want
            && d.state & disk_state::FAULTY == 0
            && (d.raid_disk as i32) < rd;
        if on {
            working += 1;
        }
        if let Some(m) = map.get_mut(i) {
            *m = on;
        }
    }
    Info {
        uuid: format!(
            "{:08x}:{:08x}:{:08x}:{:08x}",
            sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3
        ),
        tree_uuid: crate::format::uuid_dashed(&sb.uuid()),
        name: String::new(),
        version: "0.90".to_string(),
        level: sb.level,
        raid_disks: rd,
        layout: sb.layout as i64,
        clean: sb.state & sb_state::CLEAN != 0,
        working_disks: working,
        map,
        events: sb.events(),
        number: sb.this_disk.number,
        raid_disk: sb.this_disk.raid_disk as i32,
        state: sb.this_disk.state,
        recovery_start: MAX_SECTOR,
        md_minor: sb.md_minor as i32,
    }
}

/// The block devices of the machine, as mdadm's scan reads /proc/partitions.
fn proc_partitions() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/partitions") else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|n| Path::new("/dev").join(n))
        .filter(|p| p.exists())
        .collect()
}

/// Image files and block devices below a directory.
pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            walk(&p, out, depth + 1);
        } else if m.is_file() || m.file_type().is_block_device() {
            out.push(p);
        }
    }
}

/// Devices already members of an array in the tree.
fn busy_paths(tree: &Tree) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for a in tree.arrays() {
        for m in tree.members(&a) {
            if let Some(p) = m.path {
                v.push(std::fs::canonicalize(&p).unwrap_or(p));
            }
        }
    }
    v
}

/// One array: choose the members, bind them, start it.  The error is the
/// exit status (the messages are printed).
fn assemble_one(
    tree: &Tree,
    nm: &str,
    mddev: &str,
    mut devices: Vec<Device>,
    args: &AssembleArgs,
) -> Result<(), u8> {
    // An array of this UUID already in the tree: mdadm's map finds it.
    let uuid = &devices[0].info.tree_uuid;
    if let Some(other) = tree
        .arrays()
        .into_iter()
        .find(|a| tree.read(&format!("{a}/md/uuid")).is_ok_and(|u| &u == uuid))
    {
        let path = match other.strip_prefix("md_") {
            Some(n) => format!("/dev/md/{n}"),
            None => format!("/dev/{other}"),
        };
        err(format!(
            "Found some drive for an array that is already active: {path}"
        ));
        err("giving up.");
        return Err(1);
    }
    if tree.has_array(nm)
        && (!tree.members(nm).is_empty()
            || tree
                .read(&format!("{nm}/md/array_state"))
                .is_ok_and(|s| s != "inactive" && s != "clear"))
    {
        err(format!("{mddev} already active, cannot restart it!"));
        return Err(1);
    }
    // The freshest active member.
    let mut most_recent: Option<usize> = None;
    for (i, d) in devices.iter().enumerate() {
        if d.info.state & !WM_FF == ACTIVE | SYNC
            && most_recent.is_none_or(|m| d.info.events > devices[m].info.events)
        {
            most_recent = Some(i);
        }
    }
    let mr = most_recent.unwrap_or(0);
    let content = devices[mr].info.clone();
    let rd = content.raid_disks.max(0) as usize;
    // best[i]: the device for slot i/2 (odd: its replacement), spares after.
    let mut best: BTreeMap<usize, usize> = BTreeMap::new();
    let mut nextspare = rd * 2;
    for (j, d) in devices.iter().enumerate() {
        let i = if d.info.raid_disk < 0 || d.info.raid_disk as usize >= 0xff00 {
            nextspare = nextspare.max(rd * 2);
            nextspare += 1;
            nextspare - 1
        } else {
            let mut i = d.info.raid_disk as usize * 2;
            if d.info.state & REPLACEMENT != 0 {
                i += 1;
            }
            if i >= rd * 2 && i >= nextspare {
                nextspare = i + 1;
            }
            i
        };
        match best.get(&i) {
            Some(&b) if devices[b].info.events >= d.info.events => {}
            _ => {
                best.insert(i, j);
            }
        }
    }
    let mut avail = vec![false; rd];
    let (mut okcnt, mut sparecnt, mut rebuilding) = (0i32, 0i32, 0i32);
    let mut ignored = Vec::new();
    for (&i, &j) in &best {
        let info = devices[j].info.clone();
        if content.level != -4 && info.state & ACTIVE == 0 {
            if info.state & FAULTY == 0 {
                devices[j].uptodate = true;
                sparecnt += 1;
            }
            continue;
        }
        if j != mr
            && !args.force
            && rd > 0
            && devices[mr].info.raid_disk >= 0
            && !info
                .map
                .get(devices[mr].info.raid_disk as usize)
                .copied()
                .unwrap_or(false)
        {
            err(format!(
                "ignoring {} as it reports {} as failed",
                devices[j].path.display(),
                devices[mr].path.display()
            ));
            ignored.push(i);
            continue;
        }
        let mre = devices[mr].info.events;
        if info.events + 1 >= mre && info.events <= mre {
            devices[j].uptodate = true;
            if i < rd * 2 {
                if info.recovery_start == MAX_SECTOR {
                    if !avail[i / 2] {
                        okcnt += 1;
                        avail[i / 2] = true;
                    }
                } else {
                    rebuilding += 1;
                }
            } else {
                sparecnt += 1;
            }
        }
    }
    for i in ignored {
        best.remove(&i);
    }
    let mut clean = content.clean;
    if args.force {
        okcnt += force_array(&mut devices, &best, &mut avail, mr, &content, args);
    }
    // The superblock the kernel will go by (Assemble.c's chosen_drive):
    // the first up-to-date member, in slot order, as fresh as the most
    // recent one.  It is added last, so that md's analyze_sbs, which
    // keeps the first of equally fresh superblocks in its list (newest
    // bound first), takes it as the array's.
    let Some(cd) = best
        .iter()
        .filter(|&(&i, _)| i % 2 == 0)
        .map(|(_, &j)| j)
        .find(|&j| devices[j].uptodate && devices[j].info.events >= devices[mr].info.events)
    else {
        err(format!("No suitable drives found for {mddev}"));
        return Err(1);
    };
    let content = devices[cd].info.clone();
    // That superblock must count the members chosen as working (mdadm's
    // "assemble" update): with --force its roles are rewritten, without
    // it the difference is only reported.  The array is clean only if
    // every member chosen says so.
    let mut change = false;
    let mut chosen = devices[cd].found.clone();
    for (&i, &j) in &best {
        if !devices[j].uptodate {
            continue;
        }
        if !devices[j].info.clean {
            clean = false;
        }
        let desired = if i >= rd * 2 {
            0
        } else if i & 1 == 1 {
            ACTIVE | REPLACEMENT
        } else {
            ACTIVE | SYNC
        };
        if set_role(&mut chosen, &devices[j].info, desired, i / 2) {
            if args.force {
                err(format!(
                    "clearing FAULTY flag for device {j} in {mddev} for {}",
                    devices[j].path.display()
                ));
                change = true;
            } else {
                err(format!(
                    "device {i} in {mddev} has wrong state in superblock, but {} seems ok",
                    devices[j].path.display()
                ));
            }
        }
    }
    if args.force
        && !clean
        && !enough(
            content.level,
            content.raid_disks,
            content.layout,
            clean,
            &avail,
        )
    {
        // mdadm's "force-array" update of the chosen superblock.
        match &mut chosen {
            Found::V1 { sb, .. } => {
                if matches!(sb.level, 4..=6) && sb.resync_offset != MAX_SECTOR {
                    sb.resync_offset = MAX_SECTOR;
                    change = true;
                }
            }
            Found::V090 { sb, .. } => {
                if matches!(sb.level, 4..=6) && sb.state & sb_state::CLEAN == 0 {
                    sb.state |= sb_state::CLEAN;
                    change = true;
                }
            }
            Found::Undecodable { .. } => {}
        }
        clean = true;
    }
    if change {
        if let Err(e) = store_super(&devices[cd].path, &mut chosen) {
            err(format!(
                "Could not re-write superblock on {}: {e}",
                devices[cd].path.display()
            ));
            return Err(1);
        }
        err(format!("Marking array {mddev} as 'clean'"));
    }

    // Bind: create the array, say the metadata, add each device in slot
    // order (spares last), as mdadm's start_array does.
    if !tree.has_array(nm) {
        if let Err(e) = tree.write("new_array", nm) {
            err(format!("cannot create {mddev}: {}", strerror(&e)));
            return Err(1);
        }
    }
    let md = format!("{nm}/md");
    let stop = || {
        let _ = tree.write(&format!("{md}/array_state"), "clear");
    };
    if let Err(e) = tree.write(&format!("{md}/metadata_version"), &content.version) {
        err(format!(
            "failed to set array info for {mddev}: {}",
            strerror(&e)
        ));
        stop();
        return Err(1);
    }
    let order = best
        .iter()
        .filter(|&(_, &j)| j != cd)
        .chain(best.iter().filter(|&(_, &j)| j == cd));
    for (&i, &j) in order {
        let d = &devices[j];
        // The daemon resolves paths from its own directory: give it ours.
        match tree.write(&format!("{md}/new_dev"), &canon(&d.path)) {
            Ok(()) => {
                if args.verbose {
                    err(format!(
                        "added {} to {mddev} as {}{}",
                        d.path.display(),
                        d.info.raid_disk,
                        if d.uptodate {
                            ""
                        } else {
                            " (possibly out of date)"
                        }
                    ));
                }
            }
            Err(e) => {
                err(format!(
                    "failed to add {} to {mddev}: {}",
                    d.path.display(),
                    strerror(&e)
                ));
                if d.uptodate {
                    if i < rd * 2 {
                        okcnt -= 1;
                    } else {
                        sparecnt -= 1;
                    }
                }
            }
        }
    }

    let req_cnt = content.working_disks;
    let can = enough(
        content.level,
        content.raid_disks,
        content.layout,
        clean,
        &avail,
    );
    // Assemble.c's start_partial_ok: forced, or found by a scan (no
    // member list: md may be short of a member that is elsewhere, or gone),
    // an array with enough to run starts without all it had.
    let start_partial_ok = args.force || args.scan;
    if args.run || (can && (okcnt + rebuilding >= req_cnt || start_partial_ok)) {
        let word = if args.readonly { "readonly" } else { "active" };
        match tree.write(&format!("{md}/array_state"), word) {
            Ok(()) => {
                let mut msg = format!(
                    "{mddev} has been started with {okcnt} drive{}",
                    if okcnt == 1 { "" } else { "s" }
                );
                if okcnt < content.raid_disks {
                    msg += &format!(" (out of {})", content.raid_disks);
                }
                if rebuilding > 0 {
                    msg += &format!(
                        "{} {rebuilding} rebuilding",
                        if sparecnt > 0 { "," } else { " and" }
                    );
                }
                if sparecnt > 0 {
                    msg += &format!(
                        " and {sparecnt} spare{}",
                        if sparecnt == 1 { "" } else { "s" }
                    );
                }
                msg.push('.');
                err(msg);
                // Members md kicked at the run (older than the freshest
                // by more than one event): say which and why.
                let left: Vec<String> = tree
                    .members(nm)
                    .into_iter()
                    .filter_map(|m| m.path)
                    .map(|p| canon(&p))
                    .collect();
                for &j in best.values() {
                    let d = &devices[j];
                    if !d.uptodate && !left.contains(&canon(&d.path)) {
                        err(format!(
                            "{} was left out: events {} < {}, non-fresh",
                            d.path.display(),
                            d.info.events,
                            devices[mr].info.events
                        ));
                    }
                }
                Ok(())
            }
            Err(e) => {
                err(format!("failed to RUN_ARRAY {mddev}: {}", strerror(&e)));
                if !enough(
                    content.level,
                    content.raid_disks,
                    content.layout,
                    true,
                    &avail,
                ) {
                    err("Not enough devices to start the array.");
                } else if !can {
                    err(
                        "Not enough devices to start the array while not clean - consider --force.",
                    );
                }
                stop();
                Err(1)
            }
        }
    } else {
        let mut msg = format!(
            "{mddev} assembled from {okcnt} drive{}",
            if okcnt == 1 { "" } else { "s" }
        );
        if rebuilding > 0 {
            msg += &format!(
                "{} {rebuilding} rebuilding",
                if sparecnt > 0 { "," } else { " and" }
            );
        }
        if sparecnt > 0 {
            msg += &format!(
                " and {sparecnt} spare{}",
                if sparecnt == 1 { "" } else { "s" }
            );
        }
        if !enough(
            content.level,
            content.raid_disks,
            content.layout,
            true,
            &avail,
        ) {
            msg += " - not enough to start the array.";
        } else if !can {
            msg += " - not enough to start the array while not clean - consider --force.";
        } else {
            if req_cnt == content.raid_disks {
                msg += &format!(" - need all {req_cnt} to start it");
            } else {
                msg += &format!(" - need {req_cnt} to start");
            }
            msg += " (use --run to insist).";
        }
        err(msg);
        stop();
        Err(1)
    }
}

fn canon(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Assemble.c's `force_array`: while the array cannot start, bring the
/// freshest out-of-date member (and those of the same age) up to the
/// freshest event count, writing its superblock.
fn force_array(
    devices: &mut [Device],
    best: &BTreeMap<usize, usize>,
    avail: &mut [bool],
    mr: usize,
    content: &Info,
    _args: &AssembleArgs,
) -> i32 {
    let rd = content.raid_disks.max(0) as usize;
    let mut okcnt = 0;
    while !enough(
        content.level,
        content.raid_disks,
        content.layout,
        true,
        avail,
    ) {
        let mut chosen: Option<usize> = None;
        for (&i, &j) in best.range(..rd * 2) {
            if i % 2 == 1 || devices[j].uptodate || devices[j].info.recovery_start != MAX_SECTOR {
                continue;
            }
            if chosen.is_none_or(|c| devices[j].info.events > devices[c].info.events) {
                chosen = Some(j);
            }
        }
        let Some(mut c) = chosen else { break };
        let current = devices[c].info.events;
        loop {
            err(format!(
                "forcing event count in {}({}) from {} up to {}",
                devices[c].path.display(),
                devices[c].info.raid_disk,
                devices[c].info.events as i32,
                devices[mr].info.events as i32
            ));
            let target = devices[mr].info.events;
            let mut f = devices[c].found.clone();
            match &mut f {
                Found::V1 { sb, .. } => sb.events = target,
                Found::V090 { sb, .. } => sb.set_events(target),
                Found::Undecodable { .. } => {}
            }
            if let Err(e) = store_super(&devices[c].path, &mut f) {
                err(format!(
                    "Could not re-write superblock on {}: {e}",
                    devices[c].path.display()
                ));
                devices[c].info.events = 0;
                break;
            }
            devices[c].found = f;
            devices[c].info.events = target;
            devices[c].uptodate = true;
            let slot = devices[c].info.raid_disk;
            if slot >= 0 && (slot as usize) < rd {
                avail[slot as usize] = true;
            }
            okcnt += 1;
            // Others of the same vintage come along.
            let next = best.range(..rd * 2).find(|&(&i, &j)| {
                i % 2 == 0
                    && !devices[j].uptodate
                    && devices[j].info.recovery_start == MAX_SECTOR
                    && devices[j].info.events == current
            });
            match next {
                Some((_, &j)) => c = j,
                None => break,
            }
        }
    }
    okcnt
}

/// mdadm's "assemble" superblock update: in the chosen superblock, the
/// role of device `who` becomes the one wanted.  True when it changed.
fn set_role(chosen: &mut Found, who: &Info, desired: u32, slot: usize) -> bool {
    match chosen {
        Found::V1 { sb, .. } => {
            let want = if desired & ACTIVE != 0 {
                slot as u16
            } else {
                role::SPARE
            };
            let d = who.number as usize;
            if d >= sb.dev_roles.len() {
                return false;
            }
            if sb.dev_roles[d] != want {
                sb.dev_roles[d] = want;
                return true;
            }
            false
        }
        Found::V090 { sb, .. } => {
            let d = who.number as usize;
            let Some(disk) = sb.disks.get_mut(d) else {
                return false;
            };
            let keep = disk.state & WM_FF;
            let add = if sb.minor_version >= 91 { SYNC } else { 0 };
            if (disk.state & !WM_FF) | add != desired {
                disk.state = desired | keep;
                return true;
            }
            false
        }
        Found::Undecodable { .. } => false,
    }
}

/// Write a superblock back where it was read, checksum updated, flushed.
fn store_super(path: &Path, found: &mut Found) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    match found {
        Found::V1 { sb, .. } => {
            sb.update_csum();
            f.write_all_at(&sb.to_sector_bytes(), sb.super_offset * 512)?;
        }
        Found::V090 { sb, sb_start, .. } => {
            sb.update_csum();
            f.write_all_at(&sb.to_bytes(), *sb_start * 512)?;
        }
        Found::Undecodable { .. } => {}
    }
    f.sync_all()
}
