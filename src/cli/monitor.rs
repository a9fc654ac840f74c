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
    /// Mail Fail, FailSpare, Degraded, Spares and Test events to ADDRESS
    /// through sendmail (`/usr/lib/sendmail -t`; MDFUSE_SENDMAIL names
    /// another command).
    #[arg(short = 'm', long = "mail", value_name = "ADDRESS")]
    pub mail: Option<String>,
    /// Log every event to syslog (facility daemon), as mdadm words it.
    #[arg(short = 'y', long)]
    pub syslog: bool,
    /// Go to the background: the monitor's PID is printed (or written to
    /// --pid-file) and the command returns.
    #[arg(short = 'f', long, alias = "daemonize")]
    pub daemonise: bool,
    /// With --daemonise, write the monitor's PID here instead of printing it.
    #[arg(short = 'i', long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
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
    mail: Option<String>,
    syslog: bool,
    /// The tree's mdstat, for the mail's postscript.
    mdstat: Option<PathBuf>,
}

impl Alerter {
    fn new(args: &MonitorArgs, mdstat: Option<PathBuf>) -> Alerter {
        Alerter {
            program: args.program.clone(),
            mail: args.mail.clone(),
            syslog: args.syslog,
            mdstat,
        }
    }

    /// Monitor.c's `alert`: printed with the time when there is no
    /// program, mail or syslog; else the program run as PROGRAM EVENT
    /// ARRAY [DEVICE], the mail sent, the syslog line written.
    fn alert(&self, event: &str, dev: &str, disc: Option<&str>) {
        if let Some(addr) = &self.mail {
            if ["Fail", "Test", "Spares", "Degrade"]
                .iter()
                .any(|p| event.starts_with(p))
            {
                self.send_mail(addr, event, dev, disc);
            }
        }
        if self.syslog {
            send_syslog(event, dev, disc);
        }
        if self.program.is_none() && (self.mail.is_some() || self.syslog) {
            return;
        }
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

impl Alerter {
    /// The mail mdadm sends, word for word, through sendmail.
    fn send_mail(&self, addr: &str, event: &str, dev: &str, disc: Option<&str>) {
        let host = hostname();
        let mut m = String::new();
        m += "From: mdadm monitoring <root>\n";
        m += &format!("To: {addr}\n");
        m += &format!("Subject: {event} event on {dev}:{host}\n\n");
        m += "This is an automatically generated mail message from mdadm\n";
        m += &format!("running on {host}\n\n");
        m += &format!("A {event} event had been detected on md device {dev}.\n\n");
        match disc {
            Some(d) if !d.starts_with(' ') => {
                m += &format!("It could be related to component device {d}.\n\n")
            }
            Some(d) => m += &format!("Extra information:{d}.\n\n"),
            None => {}
        }
        m += "Faithfully yours, etc.\n";
        if let Some(text) = self
            .mdstat
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            m += "\nP.S. The /proc/mdstat file currently contains the following:\n\n";
            m += &text;
        }
        let cmd = std::env::var("MDFUSE_SENDMAIL").unwrap_or_else(|_| SENDMAIL.to_string());
        let spawned = Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .spawn();
        match spawned {
            Ok(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(m.as_bytes());
                }
                let _ = child.wait();
            }
            Err(e) => eprintln!("mdfuse: cannot run {cmd}: {}", super::probe::strerror(&e)),
        }
    }
}

/// mdadm's `Sendmail`.
const SENDMAIL: &str = "/usr/lib/sendmail -t";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The syslog line mdadm writes for an event, at its priority, to the
/// local syslog socket (`/dev/log`, or MDFUSE_SYSLOG), facility daemon.
fn send_syslog(event: &str, dev: &str, disc: Option<&str>) {
    const LOG_DAEMON: u32 = 3 << 3;
    const LOG_CRIT: u32 = 2;
    const LOG_WARNING: u32 = 4;
    const LOG_INFO: u32 = 6;
    // Monitor.c's test, kept as it is: every event but Spares* ends up
    // a warning unless it is critical.
    let priority = if event.starts_with("Fail")
        || event.starts_with("Degrade")
        || event.starts_with("DeviceDisappeared")
    {
        LOG_CRIT
    } else if event.starts_with("Rebuild")
        || event.starts_with("MoveSpare")
        || !event.starts_with("Spares")
    {
        LOG_WARNING
    } else {
        LOG_INFO
    };
    let text = match disc {
        Some(d) if !d.starts_with(' ') => {
            format!("{event} event detected on md device {dev}, component device {d}")
        }
        Some(d) => format!("{event} event detected on md device {dev}: {d}"),
        None => format!("{event} event detected on md device {dev}"),
    };
    let line = format!(
        "<{}>mdfuse[{}]: {text}",
        LOG_DAEMON | priority,
        std::process::id()
    );
    let path = std::env::var("MDFUSE_SYSLOG").unwrap_or_else(|_| "/dev/log".to_string());
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(line.as_bytes(), &path).map(|_| ()));
    if let Err(e) = sent {
        eprintln!(
            "mdfuse: cannot log to {path}: {}",
            super::probe::strerror(&e)
        );
    }
}

/// Monitor.c's `make_daemon`: the parent prints the child's PID (or
/// writes it to the pid file) and is done; the child goes on alone, in
/// a session of its own.  Called before any thread starts.
fn daemonise(pid_file: Option<&std::path::Path>) -> Option<ExitCode> {
    // SAFETY: no other thread exists yet (the monitor starts none before
    // this), so the child may run any code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!("daemonise: {}", std::io::Error::last_os_error());
        return Some(ExitCode::from(1));
    }
    if pid > 0 {
        match pid_file {
            None => println!("{pid}"),
            Some(p) => {
                if let Err(e) = std::fs::write(p, format!("{pid}\n")) {
                    eprintln!("cannot create pid file: {e}");
                }
            }
        }
        return Some(ExitCode::SUCCESS);
    }
    // SAFETY: setsid has no memory effects; it fails only for a group
    // leader, which a fresh child is not.
    unsafe { libc::setsid() };
    // The standard streams go to /dev/null, as mdadm's manage_fork_fds
    // leaves them: events go to the program, mail or syslog.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in [0, 1, 2] {
            // SAFETY: dup2 onto the standard descriptors, which stay
            // open for the life of the process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    None
}

pub fn run(args: MonitorArgs) -> ExitCode {
    if args.daemonise {
        if let Some(code) = daemonise(args.pid_file.as_deref()) {
            return code;
        }
    }
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
        let al = Alerter::new(args, None);
        for st in &states {
            if args.test {
                al.alert("TestMessage", &st.devname, None);
            }
            al.alert("DeviceDisappeared", &st.devname, None);
        }
        return Ok(());
    };
    let al = Alerter::new(args, Some(tree.path("mdstat")));
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
