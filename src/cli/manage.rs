//! `mdfuse manage ARRAY --fail DEV --remove DEV --add DEV ...` and
//! `mdfuse stop`: mdadm's Manage.c on the tree.  Each operation is the
//! write a user would make by hand: `faulty` or `remove` into
//! `dev-NAME/state`, the device into `new_dev` (which adds, or re-adds a
//! returning member, as mdadm's --add does), `want_replacement`, a spare's
//! `slot`, `readonly`/`active` or `clear` into `array_state`.  The
//! operations run in the order given and stop at the first failure, with
//! mdadm's messages and exit status.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::detail::enough;
use super::probe::{Found, RoDevice, probe, strerror};
use super::tree::{Member, Tree, TreeArgs, devnm, level_number};
use super::{EXIT_USAGE, Failure};

/// Change an array's members or mode, as `mdadm ARRAY --fail/--remove/...`.
///
/// Operations apply in the order given; a DEV after an operation's first
/// takes the same operation (`--fail a b`).  DEV is a device path or image
/// file, or for --fail and --remove the member's NAME in the tree.
#[derive(clap::Args, Debug)]
#[command(
    override_usage = "mdfuse manage [--tree DIR] ARRAY [--fail DEV] [--remove DEV] [--add DEV] [--re-add DEV] [--replace DEV [--with DEV]] [--readonly] [--readwrite] ..."
)]
pub struct ManageArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The array: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY")]
    pub array: String,
    /// -f/--fail DEV, -r/--remove DEV, -a/--add DEV, --re-add DEV,
    /// --replace DEV, --with DEV, -o/--readonly, -w/--readwrite.
    #[arg(
        value_name = "OPERATION",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ops: Vec<String>,
}

/// Stop arrays, as `mdadm --stop`: running arrays are stopped cleanly
/// (superblocks written clean) and leave the tree.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Stop every array of the tree.
    #[arg(short = 's', long)]
    pub scan: bool,
    /// The arrays: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY", required_unless_present = "scan")]
    pub arrays: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Fail,
    Remove,
    Add,
    ReAdd,
    Replace,
    With,
    ReadOnly,
    ReadWrite,
}

impl Op {
    fn letter(self) -> char {
        match self {
            Op::Fail => 'f',
            Op::Remove => 'r',
            Op::Add => 'a',
            Op::ReAdd => 'A',
            Op::Replace => 'R',
            Op::With => 'W',
            Op::ReadOnly => 'o',
            Op::ReadWrite => 'w',
        }
    }
}

fn parse_op(word: &str) -> Option<Op> {
    Some(match word {
        "-f" | "--fail" | "--set-faulty" => Op::Fail,
        "-r" | "--remove" => Op::Remove,
        "-a" | "--add" => Op::Add,
        "--re-add" => Op::ReAdd,
        "--replace" => Op::Replace,
        "--with" => Op::With,
        "-o" | "--readonly" => Op::ReadOnly,
        "-w" | "--readwrite" => Op::ReadWrite,
        _ => return None,
    })
}

/// The command line's operations, in order, each with its device.
/// `--tree DIR` among them is taken as the tree.
fn parse_ops(words: &[String], tree: &mut TreeArgs) -> Result<Vec<(Op, Option<String>)>, Failure> {
    let mut out = Vec::new();
    let mut current: Option<Op> = None;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "--tree" {
            let dir = it
                .next()
                .ok_or_else(|| Failure::usage("--tree needs a directory"))?;
            tree.tree = Some(PathBuf::from(dir));
            continue;
        }
        if let Some(dir) = w.strip_prefix("--tree=") {
            tree.tree = Some(PathBuf::from(dir));
            continue;
        }
        let (word, attached) = match w.split_once('=') {
            Some((a, b)) if a.starts_with("--") => (a, Some(b.to_string())),
            _ => (w.as_str(), None),
        };
        if let Some(op) = parse_op(word) {
            match op {
                Op::ReadOnly | Op::ReadWrite => {
                    out.push((op, None));
                    current = None;
                }
                _ => {
                    current = Some(op);
                    if let Some(dev) = attached {
                        out.push((op, Some(dev)));
                    }
                }
            }
            continue;
        }
        if w.starts_with('-') && w.len() > 1 {
            return Err(Failure::usage(format!("unrecognised option {w}")));
        }
        match current {
            Some(op) => out.push((op, Some(w.clone()))),
            None => {
                return Err(Failure::usage(format!(
                    "No action given for {w}: an operation (--fail, --remove, --add, ...) must come before each device"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Failure::usage(
            "No operation given: --fail, --remove, --add, --re-add, --replace, --readonly or --readwrite",
        ));
    }
    Ok(out)
}

pub fn run(args: ManageArgs) -> ExitCode {
    match manage(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

/// How mdadm names the array in its messages: `/dev/md0`, `/dev/md/NAME`.
pub(crate) fn shown(arg: &str) -> String {
    if arg.starts_with("/dev/") {
        arg.to_string()
    } else if let Some(n) = arg.strip_prefix("md_") {
        format!("/dev/md/{n}")
    } else {
        format!("/dev/{arg}")
    }
}

/// The array named, in a mounted tree; mdadm's words when it is not there.
fn open_array(t: &TreeArgs, arg: &str) -> Result<(Tree, String, String), Failure> {
    let dir = t.dir();
    let name = shown(arg);
    let missing = || Failure::refused(format!("error opening {name}: No such file or directory"));
    let nm = devnm(arg, &dir).ok_or_else(missing)?;
    let tree = t.existing().ok_or_else(missing)?;
    if !tree.has_array(&nm) {
        return Err(missing());
    }
    Ok((tree, nm, name))
}

/// The member a DEV argument names: by path (the same file, or the same
/// block device), or by its NAME in the tree.
fn find_member(members: &[Member], dev: &str) -> Option<Member> {
    if let Ok(meta) = std::fs::metadata(dev) {
        let canon = std::fs::canonicalize(dev).ok();
        let rdev = meta
            .file_type()
            .is_block_device()
            .then(|| (libc::major(meta.rdev()), libc::minor(meta.rdev())));
        return members
            .iter()
            .find(|m| {
                (canon.is_some()
                    && m.path.as_ref().and_then(|p| std::fs::canonicalize(p).ok()) == canon)
                    || (rdev.is_some() && m.dev == rdev)
            })
            .cloned();
    }
    members.iter().find(|m| m.name == dev).cloned()
}

/// Whether DEV names something: an existing path, or a member NAME.
fn is_name(dev: &str) -> bool {
    !dev.contains('/') && !dev.contains(':') && dev.len() < 50 && !Path::new(dev).exists()
}

fn manage(args: &ManageArgs) -> Result<(), Failure> {
    let mut tree_args = args.tree.clone();
    let ops = parse_ops(&args.ops, &mut tree_args)?;
    let (tree, nm, name) = open_array(&tree_args, &args.array)?;
    let md = format!("{nm}/md");
    let mut frozen = Frozen::No;
    let r = apply(&tree, &md, &name, ops, &mut frozen);
    // As mdadm: a recovery held back while devices came and went may go.
    if frozen == Frozen::ByUs {
        let _ = tree.write(&format!("{md}/sync_action"), "idle");
    }
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frozen {
    No,
    ByUs,
    Not,
}

/// mdadm's `sysfs_freeze_array`: hold recovery back while spares are
/// added and replacements named, so md does not pick one first.
fn freeze(tree: &Tree, md: &str) -> Frozen {
    let Ok(action) = tree.read(&format!("{md}/sync_action")) else {
        return Frozen::Not;
    };
    if action != "idle" && action != "recover" {
        return Frozen::Not;
    }
    match tree.write(&format!("{md}/sync_action"), "frozen") {
        Ok(()) => Frozen::ByUs,
        Err(_) => Frozen::Not,
    }
}

fn apply(
    tree: &Tree,
    md: &str,
    name: &str,
    ops: Vec<(Op, Option<String>)>,
    frozen: &mut Frozen,
) -> Result<(), Failure> {
    let tree = tree.clone();
    let name = name.to_string();
    let md = md.to_string();
    let mut with_slot: Option<u32> = None;
    for (op, dev) in ops {
        if matches!(op, Op::Add | Op::ReAdd | Op::Replace) && *frozen == Frozen::No {
            *frozen = freeze(&tree, &md);
        }
        match op {
            Op::ReadOnly | Op::ReadWrite => {
                let state = tree.read(&format!("{md}/array_state")).unwrap_or_default();
                if state == "inactive" || state == "clear" {
                    return Err(Failure::refused(format!(
                        "{name} does not appear to be active."
                    )));
                }
                let (word, what) = if op == Op::ReadOnly {
                    ("readonly", "readonly")
                } else {
                    ("active", "writable")
                };
                // Already in the mode asked: nothing to do, as md's ioctls.
                if (op == Op::ReadOnly && state == "readonly")
                    || (op == Op::ReadWrite && !matches!(state.as_str(), "readonly" | "read-auto"))
                {
                    continue;
                }
                tree.write(&format!("{md}/array_state"), word)
                    .map_err(|e| {
                        Failure::refused(format!(
                            "failed to set {what} for {name}: {}",
                            strerror(&e)
                        ))
                    })?;
            }
            _ => {
                let dev = dev.unwrap_or_default();
                match dev.as_str() {
                    "failed" | "faulty" | "detached" => keyword_op(&tree, &md, &name, op, &dev)?,
                    _ => device_op(&tree, &md, &name, op, &dev, &mut with_slot)?,
                }
            }
        }
    }
    Ok(())
}

/// Manage_add's `array_failed`: a persistent array whose in-sync members
/// are not `enough` to run it.
fn has_failed(tree: &Tree, md: &str, members: &[Member]) -> bool {
    let read = |attr: &str| tree.read(&format!("{md}/{attr}")).unwrap_or_default();
    if read("metadata_version").trim() == "none" {
        return false;
    }
    let (Some(level), Ok(raid_disks), Ok(layout)) = (
        level_number(read("level").trim()),
        read("raid_disks").trim().parse::<i32>(),
        read("layout").trim().parse::<i64>(),
    ) else {
        return false;
    };
    let mut avail = vec![false; raid_disks.max(0) as usize];
    for m in members {
        if let Some(s) = m.slot.filter(|_| m.has("in_sync") && !m.has("faulty")) {
            if let Some(a) = avail.get_mut(s as usize) {
                *a = true;
            }
        }
    }
    !enough(level, raid_disks, layout, true, &avail)
}

fn device_op(
    tree: &Tree,
    md: &str,
    name: &str,
    op: Op,
    dev: &str,
    with_slot: &mut Option<u32>,
) -> Result<(), Failure> {
    let nm = md.trim_end_matches("/md");
    let members = tree.members(nm);
    if is_name(dev) {
        if op != Op::Fail && op != Op::Remove {
            return Err(Failure::refused(format!(
                "{dev} only meaningful with -r or -f, not -{}",
                op.letter()
            )));
        }
        if !members.iter().any(|m| m.name == dev) {
            return Err(Failure::refused(format!(
                "{dev} does not appear to be a component of {name}"
            )));
        }
    } else if std::fs::metadata(dev).is_err() {
        let e = std::fs::metadata(dev)
            .err()
            .map(|e| strerror(&e))
            .unwrap_or_default();
        return Err(Failure::refused(match op {
            Op::Fail | Op::Remove => format!("stat failed for {dev}: {e}"),
            _ => format!("Cannot open {dev}: {e}"),
        }));
    }
    let member = find_member(&members, dev);
    match op {
        Op::Fail => {
            let Some(m) = member else {
                return Err(Failure::refused(format!(
                    "set device faulty failed for {dev}:  No such device"
                )));
            };
            fail_member(tree, md, name, &m, dev)?;
        }
        Op::Remove => {
            let Some(m) = member else {
                return Err(Failure::refused(format!(
                    "hot remove failed for {dev}: No such device or address"
                )));
            };
            remove_member(tree, md, name, &m, dev)?;
        }
        Op::Add | Op::ReAdd => {
            if member.is_some() || busy_elsewhere(tree, dev) {
                return Err(Failure::refused(format!(
                    "Cannot open {dev}: Device or resource busy"
                )));
            }
            add_device(tree, md, name, op, dev, &members)?;
        }
        Op::Replace => {
            let Some(m) = member else {
                return Err(Failure::refused(format!(
                    "{dev} not found in {name} so cannot --replace it"
                )));
            };
            let Some(slot) = m.slot else {
                return Err(Failure::refused(format!(
                    "{dev} is not active and so cannot be replaced."
                )));
            };
            tree.write(&format!("{md}/dev-{}/state", m.name), "want_replacement")
                .map_err(|_| {
                    Failure::refused(format!("Failed to request replacement for {dev}"))
                })?;
            eprintln!("mdfuse: Marked {dev} (device {slot} in {name}) for replacement");
            *with_slot = Some(slot);
        }
        Op::With => {
            let Some(slot) = with_slot.take() else {
                return Err(Failure::refused(format!(
                    "No matching --replace device for --with {dev}"
                )));
            };
            let Some(m) = member else {
                return Err(Failure::refused(format!(
                    "{dev} not found in {name} so cannot make it preferred replacement"
                )));
            };
            if m.has("faulty") {
                return Err(Failure::refused(format!(
                    "{dev} is faulty and cannot be a replacement"
                )));
            }
            if m.slot.is_some() {
                return Err(Failure::refused(format!(
                    "{dev} is active and cannot be a replacement"
                )));
            }
            tree.write(&format!("{md}/dev-{}/slot", m.name), &slot.to_string())
                .map_err(|_| {
                    Failure::refused(format!("Failed to set {dev} as preferred replacement."))
                })?;
            eprintln!("mdfuse: Marked {dev} in {name} as replacement for device {slot}");
        }
        Op::ReadOnly | Op::ReadWrite => {}
    }
    Ok(())
}

/// A device some array of the tree already holds.
fn busy_elsewhere(tree: &Tree, dev: &str) -> bool {
    let Ok(canon) = std::fs::canonicalize(dev) else {
        return false;
    };
    tree.arrays().iter().any(|a| {
        tree.members(a)
            .iter()
            .filter_map(|m| m.path.as_ref())
            .any(|p| std::fs::canonicalize(p).ok().as_ref() == Some(&canon))
    })
}

/// `set DEV faulty`: `faulty` into the member's state.
fn fail_member(tree: &Tree, md: &str, name: &str, m: &Member, dev: &str) -> Result<(), Failure> {
    tree.write(&format!("{md}/dev-{}/state", m.name), "faulty")
        .map_err(|e| {
            let mut f = Failure::refused(format!(
                "set device faulty failed for {dev}:  {}",
                strerror(&e)
            ));
            // Manage_subdevs: md refusing as busy (the member holds the
            // last copy of something) is status 2.
            if e.raw_os_error() == Some(libc::EBUSY) {
                f.status = EXIT_USAGE;
            }
            f
        })?;
    eprintln!("mdfuse: set {dev} faulty in {name}");
    Ok(())
}

/// `hot removed DEV`: `remove` into the member's state.
fn remove_member(tree: &Tree, md: &str, name: &str, m: &Member, dev: &str) -> Result<(), Failure> {
    tree.write(&format!("{md}/dev-{}/state", m.name), "remove")
        .map_err(|e| Failure::refused(format!("hot remove failed for {dev}: {}", strerror(&e))))?;
    eprintln!("mdfuse: hot removed {dev} from {name}");
    Ok(())
}

/// How mdadm names a member it found by itself (`failed`, `detached`):
/// `MAJOR:MINOR` of a block device; an image file by its path.
fn member_word(m: &Member) -> String {
    match (m.dev, &m.path) {
        (Some((major, minor)), _) => format!("{major}:{minor}"),
        (None, Some(p)) => p.to_string_lossy().into_owned(),
        (None, None) => m.name.clone(),
    }
}

/// Whether a member's device has gone (mdadm's `add_detached`: opening
/// it fails with ENXIO; an image file that no longer exists alike).
fn detached(m: &Member) -> bool {
    if let Some((major, minor)) = m.dev {
        if !Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
            return true;
        }
    }
    let Some(p) = &m.path else {
        return false;
    };
    if crate::disk::nbd::is_uri(&p.to_string_lossy()) {
        return false;
    }
    match std::fs::File::open(p) {
        Ok(_) => false,
        Err(e) => matches!(e.raw_os_error(), Some(libc::ENXIO) | Some(libc::ENOENT)),
    }
}

/// mdadm's words for members rather than devices: `failed` (or `faulty`)
/// with --remove or --re-add, every faulty member; `detached` with
/// --remove or --fail, every member whose device has gone (for --fail,
/// not those already faulty).  None is no failure.
fn keyword_op(tree: &Tree, md: &str, name: &str, op: Op, word: &str) -> Result<(), Failure> {
    let nm = md.trim_end_matches("/md");
    let members = tree.members(nm);
    if word == "detached" {
        if op != Op::Remove && op != Op::Fail {
            return Err(Failure::refused(format!(
                "{word} only meaningful with -r of -f, not -{}",
                op.letter()
            )));
        }
        for m in members.iter().filter(|m| detached(m)) {
            if op == Op::Fail && m.has("faulty") {
                continue;
            }
            let dev = member_word(m);
            if op == Op::Fail {
                fail_member(tree, md, name, m, &dev)?;
            } else {
                remove_member(tree, md, name, m, &dev)?;
            }
        }
        return Ok(());
    }
    if op != Op::Remove && op != Op::ReAdd {
        return Err(Failure::refused(format!(
            "{word} only meaningful with -r or --re-add, not -{}",
            op.letter()
        )));
    }
    for m in members.iter().filter(|m| m.has("faulty")) {
        let dev = member_word(m);
        if op == Op::Remove {
            remove_member(tree, md, name, m, &dev)?;
            continue;
        }
        // --re-add failed: md's own `re-add` first, else out and in again
        // (a fresh add when it cannot return to its slot).
        if tree
            .write(&format!("{md}/dev-{}/state", m.name), "re-add")
            .is_ok()
        {
            eprintln!("mdfuse: re-add {dev} to {nm} succeed");
            continue;
        }
        let _ = tree.write(&format!("{md}/dev-{}/state", m.name), "remove");
        let Some(path) = &m.path else {
            continue;
        };
        let now = tree.members(nm);
        add_device(tree, md, name, Op::Add, &path.to_string_lossy(), &now)?;
    }
    Ok(())
}

/// Manage_add: a returning member back into its slot (md's ADD_NEW_DISK
/// with the in-sync state), else, for --add, a new spare.
fn add_device(
    tree: &Tree,
    md: &str,
    name: &str,
    op: Op,
    dev: &str,
    members: &[Member],
) -> Result<(), Failure> {
    let readd = readd_possible(tree, md, members, Path::new(dev));
    if op == Op::ReAdd && !readd {
        return Err(Failure::refused(format!(
            "--re-add for {dev} to {name} is not possible"
        )));
    }
    if !readd && has_failed(tree, md, members) {
        // Manage_add: a new device could only be a spare that never
        // recovers, and writing its superblock might destroy what it
        // holds.
        return Err(Failure::refused(format!(
            "{name} has failed so using --add cannot work and might destroy\n\
             mdfuse: data on {dev}.  You should stop the array and re-assemble it."
        )));
    }
    let path = std::fs::canonicalize(dev).unwrap_or_else(|_| PathBuf::from(dev));
    let new_dev = format!("{md}/new_dev");
    let mut added = tree.write(&new_dev, &path.to_string_lossy());
    // md refuses a device holding another array's superblock (EINVAL);
    // mdadm writes this array's over it.  Only now, with every other
    // refusal (busy, read-only, too small) already given, is the old
    // superblock wiped, and put back if md still refuses the device.
    if !readd && matches!(&added, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
        if let Some(saved) = wipe_foreign_superblock(tree, md, &path)? {
            added = tree.write(&new_dev, &path.to_string_lossy());
            if added.is_err() {
                restore_superblocks(&path, &saved)?;
            }
        }
    }
    let e = match added {
        Ok(()) if readd => {
            eprintln!("mdfuse: re-added {dev}");
            return Ok(());
        }
        Ok(()) => {
            eprintln!("mdfuse: added {dev}");
            return Ok(());
        }
        Err(e) => e,
    };
    let errno = e.raw_os_error();
    Err(Failure::refused(if errno == Some(libc::ENOSPC) {
        // mdadm measures the device before it tries (avail_size).
        format!("{dev} not large enough to join array")
    } else if readd && matches!(errno, Some(libc::ENOMEM) | Some(libc::EROFS)) {
        format!("add new device failed for {dev}: {}", strerror(&e))
    } else if op == Op::ReAdd {
        format!("--re-add for {dev} to {name} is not possible")
    } else {
        // The device number mdadm asks for: the first free one from
        // raid_disks up.
        let nm = md.trim_end_matches("/md");
        let used: Vec<i32> = tree
            .mdstat_of(nm)
            .map(|e| e.members.iter().map(|(_, n)| *n).collect())
            .unwrap_or_default();
        let mut j: i32 = tree
            .read(&format!("{md}/raid_disks"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while used.contains(&j) {
            j += 1;
        }
        format!("add new device failed for {dev} as {j}: {}", strerror(&e))
    }))
}

/// The bytes a wipe overwrote, by offset.
type Saved = Vec<(u64, Vec<u8>)>;

/// A device that holds another array's md superblock: mdadm's --add
/// writes this array's over it (md would refuse the stranger), so wipe
/// it, as mdadm's `Kill`, and the tree writes a spare's.  Returns what
/// was wiped (offset and bytes), `None` if the device holds no other
/// array's superblock.
fn wipe_foreign_superblock(tree: &Tree, md: &str, path: &Path) -> Result<Option<Saved>, Failure> {
    let array_uuid = tree.read(&format!("{md}/uuid")).unwrap_or_default();
    let Some(info) = own_info(path) else {
        return Ok(None);
    };
    if info.tree_uuid == array_uuid {
        return Ok(None);
    }
    let fail = |e: String| Failure::refused(format!("Cannot open {}: {e}", path.display()));
    let disk = crate::disk::Disk::open(path, true).map_err(|e| fail(e.to_string()))?;
    let mut saved = Vec::new();
    for (off, len) in super::create::old_superblocks(&disk) {
        let mut old = vec![0u8; len];
        disk.read_at(&mut old, off)
            .map_err(|e| fail(strerror(&e)))?;
        saved.push((off, old));
    }
    for (off, old) in &saved {
        disk.write_at(&vec![0u8; old.len()], *off)
            .map_err(|e| fail(strerror(&e)))?;
    }
    disk.flush().map_err(|e| fail(strerror(&e)))?;
    Ok(Some(saved))
}

/// Put back what [`wipe_foreign_superblock`] wiped: md refused the
/// device anyway, and a refused --add leaves it as it was.
fn restore_superblocks(path: &Path, saved: &Saved) -> Result<(), Failure> {
    let fail = |e: String| {
        Failure::refused(format!(
            "could not put back the superblock of {}: {e}",
            path.display()
        ))
    };
    let disk = crate::disk::Disk::open(path, true).map_err(|e| fail(e.to_string()))?;
    for (off, old) in saved {
        disk.write_at(old, *off).map_err(|e| fail(strerror(&e)))?;
    }
    disk.flush().map_err(|e| fail(strerror(&e)))
}

/// What a device's own superblock says of it, read as assemble reads it.
fn own_info(dev: &Path) -> Option<super::assemble::Info> {
    let d = RoDevice::open(dev).ok()?;
    match probe(&d).found? {
        f @ (Found::V1 { .. } | Found::V090 { .. }) => Some(super::assemble::info_of(&f)),
        _ => None,
    }
}

/// Whether DEV goes back into its slot: mdadm's `attempt_re_add` (its
/// superblock gives it an active role in this very array, and its device
/// number is free) and md's `validate_super` for a running array (its
/// events not behind the array's, or, with a bitmap, not behind what the
/// bitmap has cleared).  The array's events and bitmap are those on an
/// in-sync member.
fn readd_possible(tree: &Tree, md: &str, members: &[Member], dev: &Path) -> bool {
    let nm = md.trim_end_matches("/md");
    let array_uuid = tree.read(&format!("{md}/uuid")).unwrap_or_default();
    let Some(info) = own_info(dev) else {
        return false;
    };
    if !info.active() || info.tree_uuid != array_uuid {
        return false;
    }
    if tree
        .mdstat_of(nm)
        .is_some_and(|e| e.members.iter().any(|(_, n)| *n == info.number as i32))
    {
        return false;
    }
    let leader = members
        .iter()
        .filter(|m| m.has("in_sync") && !m.has("faulty"))
        .filter_map(|m| RoDevice::open(m.path.as_ref()?).ok())
        .find_map(|d| probe(&d).found);
    let (array_events, cleared) = match leader {
        Some(Found::V1 { sb, bitmap, .. }) => (sb.events, bitmap.map(|b| b.events_cleared)),
        Some(Found::V090 { sb, bitmap, .. }) => (sb.events(), bitmap.map(|b| b.events_cleared)),
        // Nothing to compare with: md decides.
        _ => return true,
    };
    let has_bitmap = tree
        .read(&format!("{md}/bitmap/location"))
        .is_ok_and(|l| l.trim() != "none" && !l.trim().is_empty());
    match cleared.filter(|_| has_bitmap) {
        Some(c) => info.events >= c,
        None => info.events >= array_events,
    }
}

pub fn run_stop(args: StopArgs) -> ExitCode {
    let mut rc = 0u8;
    let names: Vec<String> = if args.scan {
        match args.tree.existing() {
            Some(t) => t.arrays(),
            None => Vec::new(),
        }
    } else {
        args.arrays.clone()
    };
    if args.scan && !args.arrays.is_empty() {
        return Failure::usage("--scan takes no array names").report();
    }
    for a in &names {
        if let Err(f) = stop_one(&args.tree, a) {
            f.report();
            rc = rc.max(f.status);
        }
    }
    if rc == EXIT_USAGE {
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::from(rc)
}

fn stop_one(t: &TreeArgs, arg: &str) -> Result<(), Failure> {
    let (tree, nm, name) = open_array(t, arg)?;
    // A busy array (its data open, a loop device over it) refuses; as
    // mdadm, retry for a while before giving up.
    let mut last = None;
    for _ in 0..25 {
        match tree.write(&format!("{nm}/md/array_state"), "clear") {
            Ok(()) => {
                eprintln!("mdfuse: stopped {name}");
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    let e = last.map(|e| strerror(&e)).unwrap_or_default();
    let mut msg = format!("failed to stop array {name}: {e}");
    if e == "Device or resource busy" {
        msg += "\n       Perhaps a running process, mounted filesystem or active volume group?";
    }
    Err(Failure::refused(msg))
}

/// Change an array's shape, as `mdadm --grow`: the number of active
/// devices (`raid_disks`) or the space used on each (`component_size`).
#[derive(clap::Args, Debug)]
pub struct GrowArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The array: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY")]
    pub array: String,
    /// The new number of active devices.
    #[arg(
        short = 'n',
        long = "raid-devices",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub raid_devices: Option<String>,
    /// The space used on each device (K, M, G, T, s suffixes; KiB without
    /// one), or `max` for all the members allow.
    #[arg(short = 'z', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub size: Option<String>,
    /// Go on where mdadm asks for --force: one device, or more devices
    /// than there are spares to fill them.
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run_grow(args: GrowArgs) -> ExitCode {
    match grow(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn grow(args: &GrowArgs) -> Result<(), Failure> {
    // As mdadm.c reads the options, before the array is looked at: a
    // size under 8 sectors is refused, KiB kept.
    let kib = match args.size.as_deref() {
        None => None,
        Some("max") => Some(None),
        Some(s) => match super::parse_size_mdadm(s) {
            Some(sectors) if sectors >= 8 => Some(Some(sectors / 2)),
            _ => return Err(Failure::usage(format!("invalid size: {s}"))),
        },
    };
    let raid_devices = match args.raid_devices.as_deref() {
        None => None,
        Some(s) => match super::parse_num(s) {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(Failure::usage(format!(
                    "invalid number of raid devices: {s}"
                )));
            }
        },
    };
    if raid_devices == Some(1) && !args.force {
        return Err(Failure::usage(
            "'1' is an unusual number of drives for an array, so it is probably\n     \
             a mistake.  If you really mean it you will need to specify --force before\n     \
             setting the number of drives.",
        ));
    }
    let (tree, nm, name) = open_array(&args.tree, &args.array)?;
    if raid_devices.is_none() && kib.is_none() {
        eprintln!("mdfuse: no changes to --grow");
        return Ok(());
    }
    let md = format!("{nm}/md");
    let num = |attr: &str| -> Option<u64> {
        tree.read(&format!("{md}/{attr}"))
            .ok()
            .and_then(|v| v.parse().ok())
    };
    // Grow_reshape's checks, in its order, before anything is written.
    if kib.is_some() && raid_devices.is_some() {
        return Err(Failure::refused(
            "cannot change component size at the same time as other changes.\n   \
             Change size first, then check data is intact before making other changes.",
        ));
    }
    let level = tree
        .read(&format!("{md}/level"))
        .ok()
        .and_then(|l| level_number(&l))
        .unwrap_or(0);
    let chunk_kib = num("chunk_size").unwrap_or(0) / 1024;
    // mdadm's MAX_SIZE (1) is not compared.
    if let Some(Some(k)) = kib {
        if level > 1 && k > 1 && chunk_kib > k {
            return Err(Failure::refused(
                "component size must be larger than chunk size.",
            ));
        }
    }
    let cur_disks = num("raid_disks").unwrap_or(0) as u32;
    if let Some(n) = raid_devices.filter(|&n| n > cur_disks) {
        // GET_ARRAY_INFO's spare_disks: members neither faulty, in sync
        // nor a journal.
        let spares = tree
            .members(&nm)
            .iter()
            .filter(|m| !m.has("faulty") && !m.has("in_sync") && !m.has("journal"))
            .count() as u32;
        let need = n - cur_disks;
        if spares < need && !args.force {
            return Err(Failure::refused(format!(
                "Need {need} spare{} to avoid degraded array, and only have {spares}.\n       \
                 Use --force to over-ride this check.",
                if need == 1 { "" } else { "s" }
            )));
        }
    }
    // mdadm freezes recovery while it changes the shape; a resync, check
    // or reshape under way refuses it.
    let Some(frozen) = freeze_to_reshape(&tree, &md) else {
        return Err(Failure::refused(format!(
            "{name} is performing resync/recovery and cannot be reshaped"
        )));
    };
    let r = grow_frozen(&tree, &nm, &name, kib, raid_devices);
    if frozen == Frozen::ByUs
        && tree
            .read(&format!("{md}/sync_action"))
            .is_ok_and(|a| a == "frozen")
    {
        let _ = tree.write(&format!("{md}/sync_action"), "idle");
    }
    r
}

/// Grow.c's `freeze`: a read-auto array made clean, then
/// `sysfs_freeze_array`; None when a sync other than a recovery runs
/// (a resync, check, repair or reshape), which mdadm does not stop.
fn freeze_to_reshape(tree: &Tree, md: &str) -> Option<Frozen> {
    if tree
        .read(&format!("{md}/array_state"))
        .is_ok_and(|s| s.starts_with("read-auto"))
    {
        let _ = tree.write(&format!("{md}/array_state"), "clean");
    }
    match tree.read(&format!("{md}/sync_action")).as_deref() {
        Err(_) | Ok("frozen") => Some(Frozen::Not),
        Ok("idle") | Ok("recover") => Some(freeze(tree, md)),
        Ok(_) => None,
    }
}

/// The size, then the number of devices, with recovery frozen.
fn grow_frozen(
    tree: &Tree,
    nm: &str,
    name: &str,
    kib: Option<Option<u64>>,
    raid_devices: Option<u32>,
) -> Result<(), Failure> {
    let md = format!("{nm}/md");
    let component_size = || -> u64 {
        tree.read(&format!("{md}/component_size"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let orig = component_size();
    let mut changed = false;
    if let Some(want) = kib.filter(|w| w.is_none_or(|k| k != orig)) {
        if orig == 0 {
            // Linear and RAID0 use every member whole.
            return Err(Failure::refused(
                "Cannot set device size in this type of array.",
            ));
        }
        // Each member first takes what its device holds now, in case it
        // grew (0 is as much as possible); md never lowers it below the
        // size in use.
        let target = want.unwrap_or(0);
        for m in tree.members(nm) {
            let _ = tree.write(&format!("{md}/dev-{}/size", m.name), &target.to_string());
        }
        if let Err(e) = tree.write(&format!("{md}/component_size"), &target.to_string()) {
            let mut msg = format!("Cannot set device size for {name}: {}", strerror(&e));
            let bitmap = tree
                .read(&format!("{md}/bitmap/location"))
                .is_ok_and(|l| l.starts_with('+') || l.starts_with('-'));
            if e.raw_os_error() == Some(libc::EBUSY) && bitmap {
                msg += "\n       Bitmap must be removed before size can be changed";
            }
            return Err(Failure::refused(msg));
        }
        let now = component_size();
        if now == orig {
            eprintln!("mdfuse: component size of {name} unchanged at {now}K");
        } else {
            eprintln!("mdfuse: component size of {name} has been set to {now}K");
        }
        changed = true;
    }
    let cur_disks: u32 = tree
        .read(&format!("{md}/raid_disks"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let Some(n) = raid_devices.filter(|&n| n != cur_disks) else {
        if !changed {
            eprintln!("mdfuse: {name}: no change requested");
        }
        return Ok(());
    };
    // md answers EBUSY while its thread still winds up a sync that has
    // just ended (sync_action already reads idle): try again for a
    // little while before giving up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match tree.write(&format!("{md}/raid_disks"), &n.to_string()) {
            Ok(()) => break,
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(_) => return Err(Failure::refused("failed to set raid disks")),
        }
    }
    println!("raid_disks for {name} set to {n}");
    Ok(())
}
