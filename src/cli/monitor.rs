//! `mdfuse monitor`: mdadm's `--monitor` (Monitor.c of mdadm 4.2) on the
//! tree.  Each round compares every array's members and sync progress
//! with the last round and reports mdadm's events (NewArray, Fail,
//! FailSpare, SpareActive, DegradedArray, RebuildStarted, RebuildNN,
//! RebuildFinished, DeviceDisappeared, TestMessage) as mdadm prints them,
//! or runs `--program EVENT ARRAY [DEVICE]`.  Between rounds it sleeps in
//! `poll()` on the files md notifies (`array_state`, `sync_action`,
//! `degraded`), so a change wakes it at once and `--delay` only bounds
//! the wait, as mdadm waits on /proc/mdstat.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use super::Failure;
use super::fmt::ctime24;
use super::tree::{MdstatEnt, RESYNC_NONE, Tree, TreeArgs, devnm};

/// Report md events as `mdadm --monitor` does.
#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Watch every array of the tree, new ones included (the default
    /// when no ARRAY is given).
    #[arg(short = 's', long)]
    pub scan: bool,
    /// Check once and exit (e.g. from cron, to report degraded arrays).
    #[arg(short = '1', long)]
    pub oneshot: bool,
    /// Run PROGRAM EVENT ARRAY [DEVICE] for each event instead of printing it.
    #[arg(short = 'p', long, alias = "alert", value_name = "PROGRAM")]
    pub program: Option<PathBuf>,
    /// Longest wait between checks, in seconds.
    #[arg(short = 'd', long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub delay: u32,
    /// Report a progress event every N percent of a sync.
    #[arg(short = 'r', long = "increment", default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=99))]
    pub increment: i32,
    /// Send a TestMessage event for every array first.
    #[arg(short = 't', long)]
    pub test: bool,
    /// The arrays: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY")]
    pub arrays: Vec<String>,
}

const RESYNC_UNKNOWN: i32 = -5;
const FAULTY: u32 = 1 << 0;
const ACTIVE: u32 = 1 << 1;
const SYNC: u32 = 1 << 2;
const REMOVED: u32 = 1 << 3;

/// Monitor.c's `struct state`, one per array watched.
#[derive(Debug)]
struct State {
    /// As printed: /dev/md0, /dev/md/NAME.
    devname: String,
    devnm: String,
    /// Zero until the first complete check (md's utime, in mdadm).
    seen: bool,
    err: i32,
    from_auto: bool,
    percent: i32,
    /// By descriptor number: the disk state bits and the device.
    devstate: BTreeMap<i32, u32>,
    devid: BTreeMap<i32, String>,
}

impl State {
    fn new(devnm: String, from_auto: bool) -> State {
        State {
            devname: shown(&devnm),
            devnm,
            seen: false,
            err: if from_auto { 1 } else { 0 },
            from_auto,
            percent: RESYNC_UNKNOWN,
            devstate: BTreeMap::new(),
            devid: BTreeMap::new(),
        }
    }
}

fn shown(devnm: &str) -> String {
    match devnm.strip_prefix("md_") {
        Some(n) => format!("/dev/md/{n}"),
        None => format!("/dev/{devnm}"),
    }
}

struct Alerter {
    program: Option<PathBuf>,
}

impl Alerter {
    /// Monitor.c's `alert`: printed with the time when there is no
    /// program, else the program run as PROGRAM EVENT ARRAY [DEVICE].
    fn alert(&self, event: &str, dev: &str, disc: Option<&str>) {
        match &self.program {
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let t = ctime24(now);
                let stamp: String = t.chars().skip(4).take(15).collect();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{stamp}: {event} on {dev} {}",
                    disc.unwrap_or("unknown device")
                );
                let _ = out.flush();
            }
            Some(p) => {
                let mut c = Command::new(p);
                c.arg(event).arg(dev);
                if let Some(d) = disc {
                    c.arg(d);
                }
                if let Err(e) = c.status() {
                    eprintln!(
                        "mdfuse: cannot run {}: {}",
                        p.display(),
                        super::probe::strerror(&e)
                    );
                }
            }
        }
    }
}

pub fn run(args: MonitorArgs) -> ExitCode {
    match monitor(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn monitor(args: &MonitorArgs) -> Result<(), Failure> {
    let dir = args.tree.dir();
    let scan = args.scan || args.arrays.is_empty();
    let mut states = Vec::new();
    for a in &args.arrays {
        let nm = devnm(a, &dir)
            .ok_or_else(|| Failure::refused(format!("{a} does not appear to be an md device")))?;
        states.push(State::new(nm, false));
    }
    let Some(tree) = args.tree.existing() else {
        if scan {
            eprintln!("mdfuse: No array with redundancy detected, stopping");
            return Ok(());
        }
        // Nothing mounted: every array named has disappeared.
        let al = Alerter {
            program: args.program.clone(),
        };
        for st in &states {
            if args.test {
                al.alert("TestMessage", &st.devname, None);
            }
            al.alert("DeviceDisappeared", &st.devname, None);
        }
        return Ok(());
    };
    let al = Alerter {
        program: args.program.clone(),
    };
    let mut test = args.test;
    loop {
        // Arm the wait before looking, so a change made while we look
        // wakes the wait that follows.
        let watch = if args.oneshot {
            Vec::new()
        } else {
            arm(&tree, &states, scan)
        };
        let mdstat = tree.mdstat();
        let mut anyredundant = false;
        for st in states.iter_mut() {
            check_array(&tree, st, &mdstat, test, &al, args.increment);
            if st.err == 0 {
                anyredundant = true;
            }
        }
        let mut new_found = false;
        if scan {
            for e in &mdstat {
                let lvl = e.level.as_deref().unwrap_or("");
                if e.active != 1 || lvl == "raid0" || lvl == "linear" {
                    continue;
                }
                if states.iter().any(|s| s.devnm == e.devnm) {
                    continue;
                }
                let st = State::new(e.devnm.clone(), true);
                if test {
                    al.alert("TestMessage", &st.devname, None);
                }
                states.push(st);
                new_found = true;
            }
        }
        if !new_found {
            if args.oneshot {
                break;
            }
            if !anyredundant {
                eprintln!("mdfuse: No array with redundancy detected, stopping");
                break;
            }
            wait(&watch, args.delay);
        }
        test = false;
        states.retain(|s| !(s.from_auto && s.err > 5));
    }
    Ok(())
}

/// Open and read the files md notifies, ready for `poll`.
fn arm(tree: &Tree, states: &[State], scan: bool) -> Vec<std::fs::File> {
    let mut files = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for st in states {
        for f in ["array_state", "sync_action", "degraded"] {
            paths.push(tree.path(&format!("{}/md/{f}", st.devnm)));
        }
    }
    if scan {
        paths.push(tree.path("mdstat"));
    }
    for p in paths {
        if let Ok(mut f) = std::fs::File::open(&p) {
            let mut buf = Vec::new();
            let _ = f.seek(SeekFrom::Start(0));
            let _ = f.read_to_end(&mut buf);
            files.push(f);
        }
    }
    files
}

/// Sleep until md notifies one of the files, or `delay` seconds.
fn wait(files: &[std::fs::File], delay: u32) {
    let mut fds: Vec<libc::pollfd> = files
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLPRI | libc::POLLERR,
            revents: 0,
        })
        .collect();
    let ms = (delay as i64 * 1000).min(i32::MAX as i64) as i32;
    if fds.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(ms as u64));
        return;
    }
    // SAFETY: `fds` is a valid array of pollfd for the whole call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Monitor.c's `check_array`, from the tree.
fn check_array(
    tree: &Tree,
    st: &mut State,
    mdstat: &[MdstatEnt],
    test: bool,
    al: &Alerter,
    increments: i32,
) {
    let dev = st.devname.clone();
    if test {
        al.alert("TestMessage", &dev, None);
    }
    let md = format!("{}/md", st.devnm);
    let state = tree.read(&format!("{md}/array_state"));
    let mse = mdstat.iter().find(|e| e.devnm == st.devnm);
    let disappeared = |st: &mut State| {
        if st.err == 0 {
            al.alert("DeviceDisappeared", &dev, None);
        }
        st.err += 1;
    };
    let (Ok(state), Some(mse)) = (state, mse) else {
        disappeared(st);
        return;
    };
    if state == "inactive" || state == "clear" || mse.active != 1 {
        disappeared(st);
        return;
    }
    let level = tree.read(&format!("{md}/level")).unwrap_or_default();
    if level == "raid0" || level == "linear" {
        if st.err == 0 {
            al.alert("DeviceDisappeared", &dev, Some(" Wrong-Level"));
        }
        st.err += 1;
        return;
    }
    let mut new_array = false;
    if st.err != 0 {
        st.err = 0;
        st.percent = RESYNC_NONE;
        new_array = true;
        al.alert("NewArray", &dev, None);
    }
    // The members, by descriptor number, as GET_DISK_INFO gives them.
    let descs = &mse.members;
    let mut now: BTreeMap<i32, (u32, String)> = BTreeMap::new();
    for m in tree.members(&st.devnm) {
        let Some(&(_, num)) = descs.iter().find(|(n, _)| *n == m.name) else {
            continue;
        };
        let bits = if m.has("faulty") {
            FAULTY
        } else if m.has("in_sync") {
            ACTIVE | SYNC
        } else {
            0
        };
        let path = m.path.map(|p| p.display().to_string()).unwrap_or(m.name);
        now.insert(num, (bits, path));
    }
    if !st.seen && mse.pattern.as_deref().is_some_and(|p| p.contains('_')) {
        al.alert("DegradedArray", &dev, None);
    }
    if st.percent < 0 && st.percent != RESYNC_UNKNOWN && mse.percent >= 0 {
        al.alert("RebuildStarted", &dev, None);
    }
    if st.percent >= 0 && mse.percent >= 0 && mse.percent / increments > st.percent / increments {
        if mse.percent / increments == 0 {
            al.alert("RebuildStarted", &dev, None);
        } else {
            al.alert(&format!("Rebuild{:02}", mse.percent), &dev, None);
        }
    }
    if mse.percent == RESYNC_NONE && st.percent >= 0 {
        let mismatches: u64 = tree
            .read(&format!("{md}/mismatch_cnt"))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if mismatches > 0 {
            let n = super::tree::level_number(&level).unwrap_or(0);
            al.alert(
                "RebuildFinished",
                &dev,
                Some(&format!(
                    " mismatches found: {mismatches} (on raid level {n})"
                )),
            );
        } else {
            al.alert("RebuildFinished", &dev, None);
        }
    }
    st.percent = mse.percent;

    let numbers: Vec<i32> = st.devstate.keys().chain(now.keys()).copied().collect();
    let mut seen_nums = std::collections::BTreeSet::new();
    for i in numbers {
        if !seen_nums.insert(i) {
            continue;
        }
        let (newstate, present) = match now.get(&i) {
            Some((bits, _)) => (*bits, true),
            None => (REMOVED, false),
        };
        let dv = now
            .get(&i)
            .map(|(_, p)| p.clone())
            .or_else(|| st.devid.get(&i).cloned());
        let old = st.devstate.get(&i).copied().unwrap_or(0);
        let change = newstate ^ old;
        if st.seen && change != 0 && st.err == 0 && !new_array {
            if old & change & SYNC != 0 {
                al.alert("Fail", &dev, dv.as_deref());
            } else if newstate & FAULTY != 0
                && present
                && st.devid.get(&i) == now.get(&i).map(|(_, p)| p)
            {
                al.alert("FailSpare", &dev, dv.as_deref());
            } else if newstate & change & SYNC != 0 {
                al.alert("SpareActive", &dev, dv.as_deref());
            }
        }
        st.devstate.insert(i, newstate);
        match now.get(&i) {
            Some((_, p)) => {
                st.devid.insert(i, p.clone());
            }
            None => {
                st.devid.remove(&i);
            }
        }
    }
    st.seen = true;
    st.err = 0;
}
