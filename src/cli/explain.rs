//! `mdfuse explain`: in plain words, why an array is in its state, each
//! statement with the on-disk or tree fact it comes from.  For a set of
//! devices not yet assembled it follows `assemble`'s rules (which member
//! leads, which are left out and why, whether it will start, degraded,
//! whether a resync or recovery will run and over what); for an array of
//! the tree it reads the tree (failed members, empty slots, syncs running
//! or pending, a check's mismatches) and the members' bitmaps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Failure;
use super::assemble::{Info, info_of, walk};
use super::detail::enough;
use super::examine::count_bits;
use super::json::Json;
use super::probe::{Found, RoDevice, probe};
use super::tree::{Tree, TreeArgs, devnm};
use crate::format::super1::{MAX_SECTOR, feature, role};

/// Explain why an array (of the tree, or a set of member devices) is in
/// its state, and what would change it.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// A JSON array of {array, statements: [{statement, fact}]} instead.
    #[arg(long)]
    pub json: bool,
    /// An array of the tree, or member devices, image files, directories.
    #[arg(required = true, value_name = "ARRAY|DEVICE")]
    pub targets: Vec<PathBuf>,
}

/// One statement and the fact it rests on.
struct Said {
    statement: String,
    fact: String,
}

struct Explained {
    subject: String,
    said: Vec<Said>,
}

impl Explained {
    fn say(&mut self, statement: impl Into<String>, fact: impl Into<String>) {
        self.said.push(Said {
            statement: statement.into(),
            fact: fact.into(),
        });
    }
}

pub fn run(args: ExplainArgs) -> ExitCode {
    let out = match explain(&args) {
        Ok(o) => o,
        Err(f) => return f.report(),
    };
    if args.json {
        let arr: Vec<Json> = out
            .iter()
            .map(|e| {
                Json::obj()
                    .field("array", e.subject.clone())
                    .field(
                        "statements",
                        Json::Arr(
                            e.said
                                .iter()
                                .map(|s| {
                                    Json::obj()
                                        .field("statement", s.statement.clone())
                                        .field("fact", s.fact.clone())
                                        .build()
                                })
                                .collect(),
                        ),
                    )
                    .build()
            })
            .collect();
        println!("{}", Json::Arr(arr).render());
    } else {
        for (i, e) in out.iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("{}:", e.subject);
            for s in &e.said {
                println!("  - {}", s.statement);
                println!("    ({})", s.fact);
            }
        }
    }
    ExitCode::SUCCESS
}

fn explain(args: &ExplainArgs) -> Result<Vec<Explained>, Failure> {
    let dir = args.tree.dir();
    if args.targets.len() == 1 {
        let t = args.targets[0].to_string_lossy();
        if let Some(nm) = devnm(&t, &dir) {
            if !args.targets[0].exists() || t.starts_with("/dev/md") {
                let tree = args.tree.existing().ok_or_else(|| {
                    Failure::refused(format!("cannot open {t}: No such file or directory"))
                })?;
                if !tree.has_array(&nm) {
                    return Err(Failure::refused(format!(
                        "cannot open {t}: No such file or directory"
                    )));
                }
                return Ok(vec![explain_running(&tree, &nm)]);
            }
        }
    }
    let mut paths = Vec::new();
    for t in &args.targets {
        if t.is_dir() {
            let mut found = Vec::new();
            walk(t, &mut found, 0);
            found.sort();
            paths.extend(found);
        } else {
            paths.push(t.clone());
        }
    }
    explain_devices(&paths)
}

/// A device with its superblock.
struct Dev {
    path: PathBuf,
    info: Info,
    found: Found,
}

fn role_word(r: u16) -> String {
    match r {
        role::SPARE => "spare".into(),
        role::FAULTY => "faulty".into(),
        role::JOURNAL => "journal".into(),
        r => format!("slot {r}"),
    }
}

fn explain_devices(paths: &[PathBuf]) -> Result<Vec<Explained>, Failure> {
    let mut strangers = Explained {
        subject: "not md members".into(),
        said: Vec::new(),
    };
    let mut devs: Vec<Dev> = Vec::new();
    for p in paths {
        let d = match RoDevice::open(p) {
            Ok(d) => d,
            Err(e) => {
                strangers.say(
                    format!("{} cannot be read: {}", p.display(), e.0),
                    "open failed",
                );
                continue;
            }
        };
        match probe(&d).found {
            Some(found @ (Found::V1 { .. } | Found::V090 { .. })) => {
                let info = info_of(&found);
                devs.push(Dev {
                    path: p.clone(),
                    info,
                    found,
                });
            }
            _ => strangers.say(
                format!(
                    "{} holds no md superblock: assemble passes it over",
                    p.display()
                ),
                "no md magic at any superblock location (0.90, 1.0, 1.1, 1.2)",
            ),
        }
    }
    let mut groups: Vec<Vec<Dev>> = Vec::new();
    for d in devs {
        match groups.iter_mut().find(|g| g[0].info.uuid == d.info.uuid) {
            Some(g) => g.push(d),
            None => groups.push(vec![d]),
        }
    }
    let mut out: Vec<Explained> = groups.iter().map(|g| explain_group(g)).collect();
    if groups.len() > 1 {
        for e in out.iter_mut() {
            e.say(
                "devices of other arrays given with it are not its members: each array is assembled from its own",
                "different Array UUIDs in the superblocks",
            );
        }
    }
    if !strangers.said.is_empty() {
        out.push(strangers);
    }
    Ok(out)
}

fn explain_group(g: &[Dev]) -> Explained {
    // The leader: the freshest device whose own role is active.
    let active = |d: &Dev| d.info.state & 0b110 == 0b110;
    let lead = g
        .iter()
        .enumerate()
        .filter(|(_, d)| active(d))
        .fold(None::<usize>, |b, (i, d)| match b {
            Some(j) if g[j].info.events >= d.info.events => Some(j),
            _ => Some(i),
        })
        .unwrap_or(0);
    let l = &g[lead];
    let level = super::examine::level_name(l.info.level).unwrap_or("-unknown-");
    let mut e = Explained {
        subject: format!(
            "array {} ({}{}, metadata {})",
            l.info.uuid,
            level,
            if l.info.name.is_empty() {
                String::new()
            } else {
                format!(", name {}", l.info.name)
            },
            l.info.version
        ),
        said: Vec::new(),
    };
    let rd = l.info.raid_disks.max(0) as usize;
    e.say(
        format!(
            "{} leads: it has the highest event count of the active members ({})",
            l.path.display(),
            l.info.events
        ),
        format!(
            "Events {} in its superblock; {} device(s) of this array found",
            l.info.events,
            g.len()
        ),
    );
    let mut avail = vec![false; rd];
    let mut fresh = 0;
    let mut rebuilding = Vec::new();
    let mut taken: Vec<Option<usize>> = vec![None; rd];
    // Slots first by freshness, as assemble's best[] keeps the freshest.
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(g[i].info.events));
    for &i in &order {
        let d = &g[i];
        let own = d.info.raid_disk;
        if d.info.state & 1 != 0 {
            e.say(
                format!(
                    "{} is marked faulty in its own superblock: it cannot take a slot",
                    d.path.display()
                ),
                format!("its role is {} (0xfffe)", role_word(role::FAULTY)),
            );
            continue;
        }
        if own < 0 {
            e.say(
                format!("{} is a spare: it joins as one, and recovery onto it starts if a slot is empty", d.path.display()),
                "its role is spare (0xffff)",
            );
            continue;
        }
        let slot = own as usize;
        if slot >= rd {
            continue;
        }
        if let Some(other) = taken[slot] {
            e.say(
                format!(
                    "{} claims slot {slot}, which {} holds with more events: it is left out",
                    d.path.display(),
                    g[other].path.display()
                ),
                format!("events {} < {}", d.info.events, g[other].info.events),
            );
            continue;
        }
        taken[slot] = Some(i);
        if i != lead && !l.info.map.get(slot).copied().unwrap_or(false) {
            e.say(
                format!(
                    "the leader's superblock no longer counts {} (slot {slot}) as working",
                    d.path.display()
                ),
                format!(
                    "slot {slot} is not active in the roles of {}",
                    l.path.display()
                ),
            );
        }
        if d.info.events + 1 >= l.info.events && d.info.events <= l.info.events {
            if d.info.recovery_start != MAX_SECTOR {
                rebuilding.push(slot);
                e.say(
                    format!(
                        "{} was being rebuilt: recovery resumes from sector {}",
                        d.path.display(),
                        d.info.recovery_start
                    ),
                    format!(
                        "recovery_offset {} in its superblock",
                        d.info.recovery_start
                    ),
                );
            } else {
                avail[slot] = true;
                fresh += 1;
            }
        } else {
            let bitmap = bitmap_of(l);
            let how = match &bitmap {
                Some(b) if d.info.events >= b.1 => format!(
                    "`mdfuse manage ARRAY --re-add {}` after assembly catches it up from the bitmap",
                    d.path.display()
                ),
                _ => format!(
                    "`mdfuse manage ARRAY --add {}` after assembly rebuilds it in full",
                    d.path.display()
                ),
            };
            e.say(
                format!(
                    "{} (slot {slot}) will be left out as non-fresh; {how}",
                    d.path.display()
                ),
                format!(
                    "events {} < {} of {}{}",
                    d.info.events,
                    l.info.events,
                    l.path.display(),
                    match bitmap {
                        Some(b) => format!("; bitmap events cleared {}", b.1),
                        None => String::new(),
                    }
                ),
            );
        }
    }
    // Will it start?
    let clean = l.info.clean;
    let missing: Vec<usize> = (0..rd).filter(|&s| !avail[s]).collect();
    if !enough(l.info.level, l.info.raid_disks, l.info.layout, true, &avail) {
        e.say(
            format!(
                "it will not start: {fresh} fresh member(s) of {rd}, too few for {level}{}",
                if g.iter().any(|d| d.info.events + 1 < l.info.events) {
                    "; `mdfuse assemble --force` would bring the freshest stale member up to date"
                } else {
                    ""
                }
            ),
            format!("slots without a fresh member: {missing:?}"),
        );
    } else if !enough(
        l.info.level,
        l.info.raid_disks,
        l.info.layout,
        clean,
        &avail,
    ) {
        e.say(
            "it will not start as it is: dirty and degraded, its parity cannot be trusted; `mdfuse assemble --force` starts it anyway",
            "not clean in the leader's superblock, and a slot is empty",
        );
    } else if !missing.is_empty() {
        // Assemble.c: okcnt + rebuilding_cnt >= req_cnt starts it.
        let need = fresh + (rebuilding.len() as i32) < l.info.working_disks;
        let empty: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|s| !rebuilding.contains(s))
            .collect();
        let slots = |v: &[usize]| {
            format!(
                "slot{} {}",
                if v.len() > 1 { "s" } else { "" },
                v.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut what = format!("it will run degraded ({fresh} of {rd} in sync");
        if !empty.is_empty() {
            what += &format!(": {} empty", slots(&empty));
        }
        if !rebuilding.is_empty() {
            what += &format!(
                "{} {} rebuilding",
                if empty.is_empty() { ":" } else { ";" },
                slots(&rebuilding)
            );
        }
        what.push(')');
        if need {
            what += "; it needs `--run` to start, since its superblock says more were working";
        }
        if !empty.is_empty() {
            what += "; `mdfuse manage ARRAY --add DEVICE` rebuilds onto a new device";
        }
        e.say(
            what,
            format!(
                "working devices in the leader's superblock: {}",
                l.info.working_disks
            ),
        );
    } else {
        e.say(
            format!("all {rd} slots have a fresh member: it will start whole"),
            "every slot's member has the leader's event count (or one less)",
        );
    }
    // Resync.
    if !clean {
        let from = match &l.found {
            Found::V1 { sb, .. } => Some(sb.resync_offset),
            _ => None,
        };
        let what = match from {
            Some(0) | None => "it was not stopped cleanly: a resync will run".to_string(),
            Some(x) => format!("a resync was interrupted: it resumes from sector {x}"),
        };
        let bm = bitmap_of(l);
        let scope = match bm {
            Some((dirty, _, chunk, sync_sectors)) => format!(
                ", over the bitmap's dirty chunks only: {dirty} chunk(s) of {} KiB, {} KiB to resync",
                chunk / 1024,
                (dirty * chunk).min(sync_sectors * 512) / 1024
            ),
            None => ", over the whole array (no bitmap)".to_string(),
        };
        e.say(
            format!("{what}{scope}"),
            match from {
                Some(x) => format!("resync_offset {x} in the leader's superblock"),
                None => "the superblock's state is not clean".to_string(),
            },
        );
    }
    if let Some(feat) = match &l.found {
        Found::V1 { sb, .. } => Some(sb.feature_map),
        _ => None,
    } {
        if feat & feature::RESHAPE_ACTIVE != 0 {
            e.say(
                "a reshape was in progress: mdfuse does not continue reshapes",
                "RESHAPE_ACTIVE in the feature map",
            );
        }
    }
    e
}

/// The leader's bitmap: (dirty bits, events_cleared, chunk bytes, sectors covered).
fn bitmap_of(d: &Dev) -> Option<(u64, u64, u64, u64)> {
    let (bms, off) = match &d.found {
        Found::V1 {
            sb,
            bitmap: Some(b),
            ..
        } => (
            b.clone(),
            (sb.super_offset as i64 + sb.bitmap_offset as i32 as i64) as u64 * 512,
        ),
        Found::V090 {
            sb_start,
            bitmap: Some(b),
            ..
        } => (b.clone(), sb_start * 512 + 4096),
        _ => return None,
    };
    let dev = RoDevice::open(&d.path).ok()?;
    let bits = count_bits(&dev, off + 256, &bms);
    Some((
        bits.dirty,
        bms.events_cleared,
        bms.chunksize as u64,
        bms.sync_size,
    ))
}

fn explain_running(tree: &Tree, nm: &str) -> Explained {
    let md = format!("{nm}/md");
    let r = |f: &str| tree.read(&format!("{md}/{f}")).unwrap_or_default();
    let mut e = Explained {
        subject: nm.to_string(),
        said: Vec::new(),
    };
    let state = r("array_state");
    let level = r("level");
    let raid_disks: usize = r("raid_disks").parse().unwrap_or(0);
    let members = tree.members(nm);
    if state == "inactive" || state == "clear" {
        e.say(
            format!(
                "it is not running: {} member(s) bound; `echo active > {nm}/md/array_state` (or mdfuse assemble) runs it",
                members.len()
            ),
            format!("array_state {state}"),
        );
        return e;
    }
    e.say(
        format!("it runs as {level}, {raid_disks} slot(s)"),
        format!("level {level}, raid_disks {raid_disks}, array_state {state}"),
    );
    let mut filled = vec![false; raid_disks];
    for m in &members {
        let path = m
            .path
            .as_deref()
            .map(Path::display)
            .map(|p| p.to_string())
            .unwrap_or_else(|| m.name.clone());
        if m.has("faulty") {
            e.say(
                format!(
                    "{path} has failed; `mdfuse manage {nm} --remove {path}` drops it, then `--add` a replacement"
                ),
                format!("dev-{}/state: {}", m.name, m.state.join(",")),
            );
            continue;
        }
        match m.slot {
            Some(s) if (s as usize) < raid_disks => {
                if m.has("in_sync") {
                    filled[s as usize] = true;
                } else {
                    let from = tree
                        .read(&format!("{md}/dev-{}/recovery_start", m.name))
                        .unwrap_or_default();
                    e.say(
                        format!("{path} is being rebuilt into slot {s}"),
                        format!(
                            "dev-{}/state {}, recovery_start {from}",
                            m.name,
                            m.state.join(",")
                        ),
                    );
                }
            }
            _ => e.say(
                format!("{path} is a spare: it takes a slot when one is empty"),
                format!("dev-{}/state {}, slot none", m.name, m.state.join(",")),
            ),
        }
    }
    let empty: Vec<usize> = (0..raid_disks).filter(|&s| !filled[s]).collect();
    if !empty.is_empty() {
        e.say(
            format!(
                "it is degraded: slot{} {} without an in-sync member; `mdfuse manage {nm} --add DEVICE` rebuilds onto a new device",
                if empty.len() > 1 { "s" } else { "" },
                empty.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            ),
            format!("degraded {}", r("degraded")),
        );
    }
    let action = r("sync_action");
    if !action.is_empty() && action != "idle" && action != "frozen" {
        e.say(
            format!(
                "a {action} is running: {} sectors done",
                r("sync_completed")
            ),
            format!(
                "sync_action {action}, sync_completed {}",
                r("sync_completed")
            ),
        );
    }
    let resync = r("resync_start");
    if !resync.is_empty() && resync != "none" && (action == "idle" || action.is_empty()) {
        e.say(
            format!(
                "a resync from sector {resync} is pending{}",
                if state == "read-auto" {
                    format!(": it starts with the first write, or `mdfuse manage {nm} --readwrite`")
                } else {
                    String::new()
                }
            ),
            format!("resync_start {resync}, array_state {state}"),
        );
    }
    let mism = r("mismatch_cnt");
    if !mism.is_empty() && mism != "0" {
        e.say(
            format!("the last {} found differing copies; `echo repair > {nm}/md/sync_action` makes them agree", r("last_sync_action")),
            format!("mismatch_cnt {mism}; md/mismatches lists where"),
        );
    }
    if e.said.len() == 1 && empty.is_empty() {
        e.say(
            "it is whole and idle: nothing to do",
            format!("degraded {}, sync_action {action}", r("degraded")),
        );
    }
    e
}
