//! `mdfuse detail ARRAY`: what `mdadm --detail` prints (mdadm 4.2's
//! Detail.c), from the tree alone: what mdadm takes from the
//! GET_ARRAY_INFO and GET_DISK_INFO ioctls is rebuilt from the files those
//! ioctls mirror (level, raid_disks, layout, chunk_size, component_size,
//! array_state, bitmap/location, each `dev-NAME/state` and `slot`, the
//! descriptor numbers in mdstat), and the superblock facts (times, name,
//! UUID, events) come from a member's superblock, as mdadm's
//! `detail_super` reads them.  A level the tree runs is printed whatever
//! it is, so new personalities need nothing here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Failure;
use super::examine::{is_local_v090, r0layout, r5layout, r6layout, r10layout};
use super::fmt::{ctime24, homehost, human_size};
use super::json::Json;
use super::probe::{Found, RoDevice, probe};
use super::tree::{
    MdstatEnt, Member, RESYNC_DELAYED, RESYNC_PENDING, RESYNC_REMOTE, Tree, TreeArgs, devnm,
    level_number,
};

/// Print what `mdadm --detail` prints for an array of the tree.
#[derive(clap::Args, Debug)]
pub struct DetailArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Print a JSON object with the same facts instead of text.
    #[arg(long)]
    pub json: bool,
    /// The host name for the "(local to host ...)" note [default: this
    /// host's name; `<none>` for no host].
    #[arg(long, value_name = "HOST")]
    pub homehost: Option<String>,
    /// mdadm's --test: the exit status says the array's health: 0 every
    /// slot working, 1 degraded, 2 too few members to run, 4 no such
    /// array.
    #[arg(short = 't', long)]
    pub test: bool,
    /// The array: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY")]
    pub array: String,
}

// md_p.h's disk state bits, as GET_DISK_INFO reports them.
const DISK_FAULTY: u32 = 1 << 0;
const DISK_ACTIVE: u32 = 1 << 1;
const DISK_SYNC: u32 = 1 << 2;
const DISK_REMOVED: u32 = 1 << 3;
const DISK_WRITEMOSTLY: u32 = 1 << 9;
const DISK_JOURNAL: u32 = 1 << 18;
const DISK_FAILFAST: u32 = 1 << 10;
// Array state bits.
const SB_CLEAN: u32 = 1 << 0;
const SB_BITMAP_PRESENT: u32 = 1 << 8;

/// `mdu_disk_info_t`, plus where the member lives.
#[derive(Debug, Clone)]
struct Disk {
    number: i32,
    major: u32,
    minor: u32,
    raid_disk: i32,
    state: u32,
    /// None: an empty slot.
    path: Option<PathBuf>,
}

impl Disk {
    fn empty(slot: i32) -> Disk {
        Disk {
            number: -1,
            major: 0,
            minor: 0,
            raid_disk: slot,
            state: DISK_REMOVED,
            path: None,
        }
    }
}

/// The superblock facts `detail_super` prints.
enum Super {
    V1(Box<crate::format::Superblock1>),
    V090(Box<crate::format::Superblock0>),
}

/// Everything printed, gathered once.
struct View {
    shown_name: String,
    version: String,
    major_version: i32,
    inactive: bool,
    level: Option<i32>,
    level_name: Option<String>,
    ctime: u64,
    utime: u64,
    array_bytes: u64,
    /// component_size, KiB.
    size_kib: u64,
    raid_disks: i32,
    nr_disks: i32,
    md_minor: i32,
    not_persistent: bool,
    state: u32,
    active: i32,
    working: i32,
    failed: i32,
    spare: i32,
    layout: i64,
    chunk: u64,
    array_state: String,
    policy: Option<String>,
    mdstat: Option<MdstatEnt>,
    sb: Option<Super>,
    disks: Vec<Disk>,
    avail: Vec<bool>,
}

pub fn run(args: DetailArgs) -> ExitCode {
    let host = homehost(args.homehost.as_deref());
    match detail(&args, host.as_deref()) {
        Ok((text, json, health)) => {
            if args.json {
                println!("{}", json.render());
            } else {
                print!("{text}");
            }
            if args.test {
                ExitCode::from(health)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(mut f) => {
            // Detail.c: with --test, an array that cannot be opened is 4.
            if args.test && f.status == super::EXIT_REFUSED {
                f.status = TEST_NO_ARRAY;
            }
            f.report()
        }
    }
}

/// `mdadm --detail --test`'s statuses (Detail.c).
const TEST_DEGRADED: u8 = 1;
const TEST_UNUSABLE: u8 = 2;
const TEST_NO_ARRAY: u8 = 4;

/// The array's health as `--test` reports it: 1 when a slot has no
/// working member, 2 when too few are left to run it (util.c's `enough`).
fn health(v: &View) -> u8 {
    let level = v.level.unwrap_or(i32::MIN);
    if !enough(level, v.raid_disks, v.layout, true, &v.avail) {
        TEST_UNUSABLE
    } else if v.avail.iter().any(|a| !a) {
        TEST_DEGRADED
    } else {
        0
    }
}

fn detail(args: &DetailArgs, host: Option<&str>) -> Result<(String, Json, u8), Failure> {
    let dir = args.tree.dir();
    let shown = shown_name(&args.array);
    let Some(nm) = devnm(&args.array, &dir) else {
        return Err(Failure::refused(format!(
            "{} does not appear to be an md device",
            args.array
        )));
    };
    let no_such = || Failure::refused(format!("cannot open {shown}: No such file or directory"));
    let tree = args.tree.existing().ok_or_else(no_such)?;
    if !tree.has_array(&nm) {
        return Err(no_such());
    }
    let v = gather(&tree, &nm, shown.clone())?;
    Ok((render(&v, host), json(&v, host), health(&v)))
}

/// How mdadm names the array in its first line: the name given when it
/// is a /dev path, else /dev/NAME.
fn shown_name(arg: &str) -> String {
    if arg.starts_with("/dev/") {
        arg.to_string()
    } else if Path::new(arg).is_absolute() {
        format!(
            "/dev/{}",
            Path::new(arg)
                .file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        )
    } else {
        format!("/dev/{arg}")
    }
}

fn read_num<T: std::str::FromStr>(tree: &Tree, rel: &str) -> Option<T> {
    tree.read(rel).ok()?.split_whitespace().next()?.parse().ok()
}

fn gather(tree: &Tree, nm: &str, shown_name: String) -> Result<View, Failure> {
    let md = format!("{nm}/md");
    let version = tree
        .read(&format!("{md}/metadata_version"))
        .unwrap_or_default();
    let array_state = tree.read(&format!("{md}/array_state")).unwrap_or_default();
    let inactive = array_state == "inactive" || array_state == "clear";
    let members = tree.members(nm);
    if inactive && members.is_empty() {
        return Err(Failure::refused(format!(
            "Array associated with md device {shown_name} does not exist."
        )));
    }
    let level_name = tree.read(&format!("{md}/level")).unwrap_or_default();
    let raid_disks: i32 = read_num(tree, &format!("{md}/raid_disks")).unwrap_or(0);
    let mdstat = tree.mdstat_of(nm);
    let descs: Vec<(String, i32)> = mdstat
        .as_ref()
        .map(|e| e.members.clone())
        .unwrap_or_default();
    let desc_of = |m: &Member| descs.iter().find(|(n, _)| *n == m.name).map(|(_, d)| *d);
    let (major_version, not_persistent) = match version.split_once('.') {
        Some((a, _)) if a.bytes().all(|b| b.is_ascii_digit()) => (a.parse().unwrap_or(-1), false),
        _ if version == "none" => (-1, true),
        _ => (-1, false),
    };

    // The superblock mdadm's detail_super prints: the first active member
    // whose superblock loads (any member of an inactive array).  An array
    // without metadata has none, whatever its members hold.
    let mut sb = None;
    for m in members.iter().filter(|_| !not_persistent) {
        if !inactive && raid_disks > 0 && !m.has("in_sync") {
            continue;
        }
        if let Some(s) = m.path.as_deref().and_then(load_super) {
            sb = Some(s);
            break;
        }
    }
    let (ctime, utime, sb_level) = match &sb {
        Some(Super::V1(s)) => (s.ctime & 0xff_ffff_ffff, s.utime & 0xff_ffff_ffff, s.level),
        Some(Super::V090(s)) => (s.ctime as u64, s.utime as u64, s.level),
        None => (0, 0, i32::MIN),
    };

    let mut disks: Vec<Disk> = (0..raid_disks.max(0) * 2)
        .map(|d| Disk::empty(d / 2))
        .collect();
    let (mut active, mut working, mut failed, mut spare) = (0, 0, 0, 0);
    let mut extra = Vec::new();
    let mut ordered: Vec<(i32, &Member)> = members
        .iter()
        .map(|m| (desc_of(m).unwrap_or(i32::MAX), m))
        .collect();
    ordered.sort_by_key(|(d, _)| *d);
    for (desc, m) in ordered {
        let mut state = 0;
        if m.has("faulty") {
            state |= DISK_FAULTY;
            failed += 1;
        } else {
            working += 1;
            if m.has("in_sync") {
                state |= DISK_SYNC;
                if !inactive {
                    state |= DISK_ACTIVE;
                }
                active += 1;
            } else if !m.has("journal") {
                spare += 1;
            }
        }
        if m.has("journal") {
            state |= DISK_JOURNAL;
        }
        if !inactive {
            if m.has("write_mostly") {
                state |= DISK_WRITEMOSTLY;
            }
            if m.has("failfast") {
                state |= DISK_FAILFAST;
            }
        }
        let (major, minor) = m.dev.unwrap_or((0, 0));
        let disk = Disk {
            number: if inactive || desc == i32::MAX {
                -1
            } else {
                desc
            },
            major,
            minor,
            raid_disk: m.slot.map(|s| s as i32).unwrap_or(-1),
            state,
            path: m.path.clone(),
        };
        let r = disk.raid_disk;
        if inactive {
            extra.push(disk);
        } else if r >= 0
            && r < raid_disks
            && disks[r as usize * 2].path.is_none()
            && state & DISK_JOURNAL == 0
        {
            disks[r as usize * 2] = disk;
        } else if r >= 0
            && r < raid_disks
            && disks[r as usize * 2 + 1].path.is_none()
            && state & DISK_JOURNAL == 0
        {
            disks[r as usize * 2 + 1] = disk;
        } else {
            extra.push(disk);
        }
    }
    if inactive && raid_disks > 0 {
        // sysfs_read's count for an array that is not running.
        failed = raid_disks - active - spare;
    }
    disks.extend(extra);
    let avail: Vec<bool> = (0..raid_disks.max(0) as usize)
        .map(|d| {
            let live = |x: &Disk| x.path.is_some() && x.state & DISK_SYNC != 0;
            live(&disks[d * 2]) || live(&disks[d * 2 + 1])
        })
        .collect();

    let level = if inactive {
        (sb_level != i32::MIN).then_some(sb_level)
    } else {
        level_number(&level_name)
    };
    let level_name = if inactive {
        level
            .and_then(super::examine::level_name)
            .map(str::to_string)
    } else if level_name.is_empty() {
        None
    } else {
        Some(level_name)
    };
    let bitmap = tree
        .read(&format!("{md}/bitmap/location"))
        .is_ok_and(|l| l.starts_with('+') || l.starts_with('-'));
    // md's in_sync: set while the array is clean (`broken` is a clean
    // array that lost too much), read-only or auto-read-only.
    let in_sync = matches!(
        array_state.as_str(),
        "clean" | "broken" | "readonly" | "read-auto"
    );
    let mut state = 0;
    if !inactive {
        if in_sync {
            state |= SB_CLEAN;
        }
        if bitmap {
            state |= SB_BITMAP_PRESENT;
        }
    }
    let array_bytes = if inactive {
        0
    } else {
        read_num::<u64>(tree, &format!("{nm}/size")).unwrap_or(0) << 9
    };
    let md_minor = nm
        .strip_prefix("md")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(View {
        shown_name,
        version,
        major_version,
        inactive,
        level,
        level_name,
        ctime: if inactive { 0 } else { ctime },
        utime: if inactive { 0 } else { utime },
        array_bytes,
        size_kib: if inactive {
            0
        } else {
            read_num(tree, &format!("{md}/component_size")).unwrap_or(0)
        },
        raid_disks,
        nr_disks: members.len() as i32,
        md_minor,
        not_persistent,
        state,
        active,
        working,
        failed,
        spare,
        layout: if inactive {
            0
        } else {
            read_num(tree, &format!("{md}/layout")).unwrap_or(0)
        },
        chunk: if inactive {
            0
        } else {
            read_num(tree, &format!("{md}/chunk_size")).unwrap_or(0)
        },
        array_state,
        policy: tree.read(&format!("{md}/consistency_policy")).ok(),
        mdstat: tree.mdstat_of(nm),
        sb,
        disks,
        avail,
    })
}

/// The superblock on a member, as mdadm's `load_super` finds it.
fn load_super(path: &Path) -> Option<Super> {
    let dev = RoDevice::open(path).ok()?;
    match probe(&dev).found? {
        Found::V1 { sb, .. } => Some(Super::V1(sb)),
        Found::V090 { sb, .. } => Some(Super::V090(sb)),
        Found::Undecodable { .. } => None,
    }
}

/// util.c's `enough`: whether the available slots can run the array.
pub fn enough(level: i32, raid_disks: i32, layout: i64, clean: bool, avail: &[bool]) -> bool {
    let n = raid_disks.max(0) as usize;
    let has = |i: usize| avail.get(i).copied().unwrap_or(false);
    let count = (0..n).filter(|&i| has(i)).count() as i32;
    match level {
        10 => {
            let near = (layout & 255) as usize;
            let copies = near * ((layout >> 8) & 255) as usize;
            if n == 0 || copies == 0 {
                return false;
            }
            let mut first = 0;
            loop {
                let mut cnt = 0;
                let mut this = first;
                for _ in 0..copies {
                    if has(this) {
                        cnt += 1;
                    }
                    this = (this + 1) % n;
                }
                if cnt == 0 {
                    return false;
                }
                first = (first + near) % n;
                if first == 0 {
                    return true;
                }
            }
        }
        -4 => count >= 1,
        -1 | 0 => count == raid_disks,
        1 => count >= 1,
        4 | 5 => {
            if level == 4 && count == raid_disks - 1 && !has(n.saturating_sub(1)) {
                return true;
            }
            if clean {
                count >= raid_disks - 1
            } else {
                count >= raid_disks
            }
        }
        6 => {
            if clean {
                count >= raid_disks - 2
            } else {
                count >= raid_disks
            }
        }
        _ => false,
    }
}

const SYNC_WORDS: [&str; 4] = [", recovering", ", resyncing", ", reshaping", ", checking"];
const SYNC_NAMES: [&str; 4] = ["Rebuild", "Resync", "Reshape", "Check"];

/// The State line's words, after "State : ".
fn state_words(v: &View) -> Option<String> {
    if v.raid_disks == 0 {
        return v.inactive.then(|| "inactive".to_string());
    }
    let level = v.level.unwrap_or(i32::MIN);
    let avail_count = v.avail.iter().filter(|a| **a).count() as i32;
    let st = if avail_count == v.raid_disks {
        ""
    } else if !enough(level, v.raid_disks, v.layout, true, &v.avail) {
        ", FAILED"
    } else {
        ", degraded"
    };
    let arrayst = if v.state & SB_CLEAN != 0 {
        if level == 0 || level == -1 {
            v.array_state.as_str()
        } else {
            "clean"
        }
    } else {
        "active"
    };
    let e = v.mdstat.as_ref();
    let sync = match e {
        Some(e)
            if !(e.percent < 0
                && e.percent != RESYNC_PENDING
                && e.percent != RESYNC_DELAYED
                && e.percent != RESYNC_REMOTE) =>
        {
            SYNC_WORDS[e.resync.min(3)]
        }
        _ => "",
    };
    let pct = e.map(|e| e.percent).unwrap_or(-1);
    Some(format!(
        "{arrayst}{st}{sync}{}{}{}{}",
        if v.array_bytes != 0 {
            ""
        } else {
            ", Not Started"
        },
        if pct == RESYNC_DELAYED {
            " (DELAYED)"
        } else {
            ""
        },
        if pct == RESYNC_PENDING {
            " (PENDING)"
        } else {
            ""
        },
        if pct == RESYNC_REMOTE {
            " (REMOTE)"
        } else {
            ""
        },
    ))
}

fn layout_line(v: &View) -> Option<String> {
    let l = v.layout as u32;
    match v.level? {
        5 => Some(format!(" {}", r5layout(l).unwrap_or("-unknown-"))),
        0 if v.layout != 0 => Some(format!(" {}", r0layout(l).unwrap_or("-unknown-"))),
        6 => Some(format!(" {}", r6layout(l).unwrap_or("-unknown-"))),
        10 => Some(r10layout(l)),
        _ => None,
    }
}

fn uuid_text(sb: &Super) -> String {
    match sb {
        Super::V1(s) => crate::format::uuid_colon(&s.set_uuid),
        Super::V090(s) => {
            if s.minor_version >= 90 {
                format!(
                    "{:08x}:{:08x}:{:08x}:{:08x}",
                    s.set_uuid0, s.set_uuid1, s.set_uuid2, s.set_uuid3
                )
            } else {
                format!("{:08x}", s.set_uuid0)
            }
        }
    }
}

fn events_text(sb: &Super) -> String {
    match sb {
        Super::V1(s) => s.events.to_string(),
        Super::V090(s) => format!("{}.{}", s.events_hi as i32, s.events_lo as i32),
    }
}

fn v1_name(s: &crate::format::Superblock1) -> String {
    let end = s.set_name.iter().position(|&b| b == 0).unwrap_or(32);
    String::from_utf8_lossy(&s.set_name[..end]).into_owned()
}

fn local_to(sb: &Super, host: Option<&str>) -> bool {
    let Some(h) = host else { return false };
    match sb {
        Super::V1(s) => {
            let l = h.len();
            l > 0 && l < 32 && s.set_name[l] == b':' && s.set_name.starts_with(h.as_bytes())
        }
        Super::V090(s) => is_local_v090(s, h),
    }
}

/// The per-device state words Detail.c prints.
fn disk_words(v: &View, d: &Disk) -> String {
    let mut s = String::new();
    if d.state & DISK_FAULTY != 0 {
        s += " faulty";
    }
    if d.state & DISK_ACTIVE != 0 {
        s += " active";
    }
    if d.state & DISK_SYNC != 0 {
        s += " sync";
        if v.level == Some(10) && v.layout & !0x1FFFF == 0 {
            let nc = v.layout & 0xff;
            let fc = (v.layout >> 8) & 0xff;
            let copies = nc * fc;
            if fc == 1 && copies > 0 && v.raid_disks as i64 % copies == 0 && copies <= 26 {
                let set = d.raid_disk as i64 % copies;
                let _ = write!(s, " set-{}", (b'A' + set as u8) as char);
            }
        }
    }
    if d.state & DISK_REMOVED != 0 {
        s += " removed";
    }
    if d.state & DISK_WRITEMOSTLY != 0 {
        s += " writemostly";
    }
    if d.state & DISK_FAILFAST != 0 {
        s += " failfast";
    }
    if d.state & DISK_JOURNAL != 0 {
        s += " journal";
    }
    if d.state & (DISK_ACTIVE | DISK_SYNC | DISK_REMOVED | DISK_FAULTY | DISK_JOURNAL) == 0 {
        s += " spare";
        if d.raid_disk < v.raid_disks && d.raid_disk >= 0 {
            s += " rebuilding";
        }
    }
    s
}

fn render(v: &View, host: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}:", v.shown_name);
    // mdadm's sysfs_read gives an array without metadata the empty text
    // version, and then no Persistence line.
    let version = if v.not_persistent { "" } else { &v.version };
    let _ = writeln!(o, "           Version : {version}");
    if v.ctime != 0 {
        let _ = writeln!(o, "     Creation Time : {}", ctime24(v.ctime as i64));
    }
    if let Some(l) = &v.level_name {
        let _ = writeln!(o, "        Raid Level : {l}");
    }
    if v.array_bytes != 0 {
        let _ = writeln!(
            o,
            "        Array Size : {}{}",
            v.array_bytes >> 10,
            human_size(v.array_bytes as i64)
        );
    }
    if v.level.is_some_and(|l| l >= 1) {
        if v.size_kib > 0 {
            let _ = writeln!(
                o,
                "     Used Dev Size : {}{}",
                v.size_kib,
                human_size((v.size_kib as i64) << 10)
            );
        } else if v.major_version != 0 {
            let _ = writeln!(o, "     Used Dev Size : unknown");
        } else {
            let _ = writeln!(o, "     Used Dev Size : 0");
        }
    }
    if v.raid_disks != 0 {
        let _ = writeln!(o, "      Raid Devices : {}", v.raid_disks);
    }
    let _ = writeln!(o, "     Total Devices : {}", v.nr_disks);
    if v.major_version == 0 {
        let _ = writeln!(o, "   Preferred Minor : {}", v.md_minor);
    }
    if v.major_version >= 0 {
        let _ = writeln!(o, "       Persistence : Superblock is persistent");
    }
    o.push('\n');
    if v.state & SB_BITMAP_PRESENT != 0 {
        o.push_str("     Intent Bitmap : Internal\n\n");
    }
    if v.utime != 0 {
        let _ = writeln!(o, "       Update Time : {}", ctime24(v.utime as i64));
    }
    if let Some(st) = state_words(v) {
        if v.raid_disks != 0 {
            let _ = writeln!(o, "             State : {st} ");
        } else {
            let _ = writeln!(o, "             State : {st}");
        }
    }
    if v.raid_disks != 0 {
        let _ = writeln!(o, "    Active Devices : {}", v.active);
    }
    if v.working > 0 {
        let _ = writeln!(o, "   Working Devices : {}", v.working);
    }
    if v.raid_disks != 0 {
        let _ = writeln!(o, "    Failed Devices : {}", v.failed);
        let _ = writeln!(o, "     Spare Devices : {}", v.spare);
    }
    o.push('\n');
    if let Some(l) = layout_line(v) {
        let _ = writeln!(o, "            Layout :{l}");
    }
    match v.level {
        Some(0 | 4 | 5 | 10 | 6) if v.chunk != 0 => {
            let _ = write!(o, "        Chunk Size : {}K\n\n", v.chunk / 1024);
        }
        Some(-1) => {
            let _ = write!(o, "          Rounding : {}K\n\n", v.chunk / 1024);
        }
        _ => {}
    }
    if v.raid_disks != 0 {
        if let Some(p) = v.policy.as_deref() {
            let p = match p {
                "none" | "resync" | "bitmap" | "journal" | "ppl" => p,
                _ => "unknown",
            };
            let _ = write!(o, "Consistency Policy : {p}\n\n");
        }
    }
    if let Some(e) = v.mdstat.as_ref().filter(|e| e.percent >= 0) {
        let _ = write!(
            o,
            "    {:>7} Status : {}% complete\n\n",
            SYNC_NAMES[e.resync.min(3)],
            e.percent
        );
    }
    if let Some(sb) = &v.sb {
        match sb.as_ref_v1() {
            Some(s) => {
                let _ = write!(o, "              Name : {}", v1_name(s));
                if local_to(sb, host) {
                    let _ = write!(o, "  (local to host {})", host.unwrap_or(""));
                }
                let _ = write!(o, "\n              UUID : {}", uuid_text(sb));
            }
            None => {
                let _ = write!(o, "              UUID : {}", uuid_text(sb));
                if local_to(sb, host) {
                    let _ = write!(o, " (local to host {})", host.unwrap_or(""));
                }
            }
        }
        let _ = write!(o, "\n            Events : {}\n\n", events_text(sb));
    }
    if v.raid_disks != 0 {
        o.push_str("    Number   Major   Minor   RaidDevice State\n");
    } else {
        o.push_str("    Number   Major   Minor   RaidDevice\n");
    }
    for (i, d) in v.disks.iter().enumerate() {
        let i = i as i32;
        if i >= v.raid_disks * 2 && d.path.is_none() {
            continue;
        }
        if i & 1 == 1 && i < v.raid_disks * 2 && d.path.is_none() {
            continue;
        }
        if i == v.raid_disks * 2 {
            o.push('\n');
        }
        if d.number < 0 && d.raid_disk < 0 {
            let _ = write!(o, "       -   {:5}    {:5}        -     ", d.major, d.minor);
        } else if d.raid_disk < 0 || d.state & DISK_JOURNAL != 0 {
            let _ = write!(
                o,
                "   {:5}   {:5}    {:5}        -     ",
                d.number, d.major, d.minor
            );
        } else if d.number < 0 {
            let _ = write!(
                o,
                "       -   {:5}    {:5}    {:5}     ",
                d.major, d.minor, d.raid_disk
            );
        } else {
            let _ = write!(
                o,
                "   {:5}   {:5}    {:5}    {:5}     ",
                d.number, d.major, d.minor, d.raid_disk
            );
        }
        if v.raid_disks != 0 {
            o.push_str(&disk_words(v, d));
        }
        if let Some(p) = &d.path {
            let _ = write!(o, "   {}", p.display());
        }
        o.push('\n');
    }
    o
}

impl Super {
    fn as_ref_v1(&self) -> Option<&crate::format::Superblock1> {
        match self {
            Super::V1(s) => Some(s),
            Super::V090(_) => None,
        }
    }
}

fn json(v: &View, host: Option<&str>) -> Json {
    let devices: Vec<Json> = v
        .disks
        .iter()
        .enumerate()
        .filter(|(i, d)| d.path.is_some() || (*i as i32) < v.raid_disks * 2 && i % 2 == 0)
        .map(|(_, d)| {
            let words: Vec<Json> = disk_words(v, d)
                .split_whitespace()
                .map(|w| Json::from(w.to_string()))
                .collect();
            Json::obj()
                .opt("number", (d.number >= 0).then_some(d.number as i64))
                .opt(
                    "raid_device",
                    (d.raid_disk >= 0).then_some(d.raid_disk as i64),
                )
                .opt(
                    "major_minor",
                    (d.major | d.minor != 0).then(|| format!("{}:{}", d.major, d.minor)),
                )
                .field("state", Json::Arr(words))
                .opt("path", d.path.as_ref().map(|p| p.display().to_string()))
                .build()
        })
        .collect();
    let sync = v.mdstat.as_ref().and_then(|e| {
        let action = ["recovery", "resync", "reshape", "check"][e.resync.min(3)];
        match e.percent {
            p if p >= 0 => Some(
                Json::obj()
                    .field("action", action)
                    .field("percent", p as i64)
                    .build(),
            ),
            RESYNC_PENDING | RESYNC_DELAYED | RESYNC_REMOTE => Some(
                Json::obj()
                    .field("action", action)
                    .field(
                        "waiting",
                        match e.percent {
                            RESYNC_PENDING => "PENDING",
                            RESYNC_DELAYED => "DELAYED",
                            _ => "REMOTE",
                        },
                    )
                    .build(),
            ),
            _ => None,
        }
    });
    Json::obj()
        .field("device", v.shown_name.clone())
        .field("version", v.version.clone())
        .opt("creation_time", (v.ctime != 0).then_some(v.ctime as i64))
        .opt("level", v.level_name.clone())
        .opt(
            "array_size_kib",
            (v.array_bytes != 0).then_some((v.array_bytes >> 10) as i64),
        )
        .opt(
            "used_dev_size_kib",
            (v.level.is_some_and(|l| l >= 1) && v.size_kib > 0).then_some(v.size_kib as i64),
        )
        .field("raid_devices", v.raid_disks as i64)
        .field("total_devices", v.nr_disks as i64)
        .field("persistent", !v.not_persistent)
        .field(
            "bitmap",
            if v.state & SB_BITMAP_PRESENT != 0 {
                "internal"
            } else {
                "none"
            },
        )
        .opt("update_time", (v.utime != 0).then_some(v.utime as i64))
        .opt("state", state_words(v))
        .field("array_state", v.array_state.clone())
        .field("active_devices", v.active as i64)
        .field("working_devices", v.working as i64)
        .field("failed_devices", v.failed as i64)
        .field("spare_devices", v.spare as i64)
        .opt("layout", layout_line(v).map(|l| l.trim().to_string()))
        .opt(
            "chunk_kib",
            (v.chunk != 0).then_some((v.chunk / 1024) as i64),
        )
        .opt("consistency_policy", v.policy.clone())
        .opt("sync", sync)
        .opt(
            "name",
            v.sb.as_ref().and_then(|s| s.as_ref_v1()).map(v1_name),
        )
        .opt("uuid", v.sb.as_ref().map(uuid_text))
        .opt("events", v.sb.as_ref().map(events_text))
        .field("local", v.sb.as_ref().is_some_and(|s| local_to(s, host)))
        .field("devices", Json::Arr(devices))
        .build()
}
