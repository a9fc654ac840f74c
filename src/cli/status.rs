//! `mdfuse status`: the tree's `mdstat` (/proc/mdstat, byte for byte), or
//! with `--json` the same stanzas as objects; and `mdfuse watch`: a live
//! line per running sync, from `sync_completed` and `sync_speed`, until
//! the syncs end.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::Failure;
use super::json::Json;
use super::tree::{
    RESYNC_DELAYED, RESYNC_PENDING, RESYNC_REMOTE, Tree, TreeArgs, devnm, parse_mdstat,
};

/// Print the arrays' status, as `cat /proc/mdstat`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// One JSON object per array instead of mdstat's text.
    #[arg(long)]
    pub json: bool,
}

/// Show the progress of every running sync until it ends.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Seconds between updates.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Only this array: md0, /dev/md0, /dev/md/NAME, md_NAME.
    #[arg(value_name = "ARRAY")]
    pub array: Option<String>,
}

fn no_tree(t: &TreeArgs) -> Failure {
    Failure::refused(format!("no md tree is mounted at {}", t.dir().display()))
}

pub fn run_status(args: StatusArgs) -> ExitCode {
    let Some(tree) = args.tree.existing() else {
        return no_tree(&args.tree).report();
    };
    let text = match tree.read("mdstat") {
        Ok(t) => t,
        Err(e) => {
            return Failure::refused(format!(
                "cannot read mdstat: {}",
                super::probe::strerror(&e)
            ))
            .report();
        }
    };
    if !args.json {
        println!("{text}");
        return ExitCode::SUCCESS;
    }
    let arrays: Vec<Json> = parse_mdstat(&text)
        .into_iter()
        .map(|e| {
            let first = text
                .lines()
                .find(|l| l.split_whitespace().next() == Some(e.devnm.as_str()))
                .unwrap_or("");
            let members: Vec<Json> = first
                .split_whitespace()
                .filter_map(|w| {
                    let open = w.find('[')?;
                    let close = w[open..].find(']')? + open;
                    let number: i64 = w[open + 1..close].parse().ok()?;
                    let flags: Vec<Json> = w[close + 1..]
                        .split(['(', ')'])
                        .filter(|f| !f.is_empty())
                        .map(|f| {
                            Json::from(match f {
                                "F" => "faulty",
                                "S" => "spare",
                                "W" => "write-mostly",
                                "R" => "replacement",
                                "J" => "journal",
                                other => other,
                            })
                        })
                        .collect();
                    Some(
                        Json::obj()
                            .field("name", w[..open].to_string())
                            .field("number", number)
                            .field("flags", Json::Arr(flags))
                            .build(),
                    )
                })
                .collect();
            let mode = if first.contains("(auto-read-only)") {
                "auto-read-only"
            } else if first.contains("(read-only)") {
                "read-only"
            } else if e.active == 1 {
                "read-write"
            } else {
                "inactive"
            };
            let sync = sync_json(&tree, &e.devnm, e.percent, e.resync);
            Json::obj()
                .field("array", e.devnm.clone())
                .field("active", e.active == 1)
                .field("mode", mode)
                .opt("level", e.level.clone())
                .opt("pattern", e.pattern.clone())
                .field("members", Json::Arr(members))
                .opt("sync", sync)
                .build()
        })
        .collect();
    println!("{}", Json::Arr(arrays).render());
    ExitCode::SUCCESS
}

fn sync_json(tree: &Tree, nm: &str, percent: i32, resync: usize) -> Option<Json> {
    let action = ["recovery", "resync", "reshape", "check"][resync.min(3)];
    let waiting = match percent {
        RESYNC_PENDING => Some("PENDING"),
        RESYNC_DELAYED => Some("DELAYED"),
        RESYNC_REMOTE => Some("REMOTE"),
        p if p >= 0 => None,
        _ => return None,
    };
    let p = progress(tree, nm);
    Some(
        Json::obj()
            .field(
                "action",
                tree.read(&format!("{nm}/md/sync_action"))
                    .unwrap_or_else(|_| action.to_string()),
            )
            .opt("waiting", waiting)
            .opt("done_sectors", p.map(|p| p.0 as i64))
            .opt("total_sectors", p.map(|p| p.1 as i64))
            .opt("speed_kib_s", p.and_then(|p| p.2).map(|s| s as i64))
            .build(),
    )
}

/// `sync_completed` (done / total sectors) and `sync_speed` (KiB/s).
fn progress(tree: &Tree, nm: &str) -> Option<(u64, u64, Option<u64>)> {
    let done = tree.read(&format!("{nm}/md/sync_completed")).ok()?;
    let (a, b) = done.split_once('/')?;
    let speed = tree
        .read(&format!("{nm}/md/sync_speed"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, speed))
}

pub fn run_watch(args: WatchArgs) -> ExitCode {
    let Some(tree) = args.tree.existing() else {
        return no_tree(&args.tree).report();
    };
    let only = match &args.array {
        Some(a) => match devnm(a, &tree.root) {
            Some(n) if tree.has_array(&n) => Some(n),
            _ => {
                return Failure::refused(format!("cannot open {a}: No such file or directory"))
                    .report();
            }
        },
        None => None,
    };
    let tty = std::io::stdout().is_terminal();
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    let mut drawn = 0usize;
    let mut last_plain = Instant::now() - Duration::from_secs(3600);
    let mut seen_any = false;
    let mut running: Vec<(String, String)> = Vec::new();
    loop {
        let arrays: Vec<String> = match &only {
            Some(n) => vec![n.clone()],
            None => tree.arrays(),
        };
        let mut lines = Vec::new();
        let mut now_running = Vec::new();
        for nm in &arrays {
            let action = tree
                .read(&format!("{nm}/md/sync_action"))
                .unwrap_or_default();
            if action.is_empty() || action == "idle" || action == "frozen" {
                continue;
            }
            let Some((done, total, speed)) = progress(&tree, nm) else {
                continue;
            };
            lines.push(line(nm, &action, done, total, speed, tty));
            now_running.push((nm.clone(), action));
        }
        // A sync that was running and is no more: say it ended.
        for (nm, action) in &running {
            if !now_running.iter().any(|(n, _)| n == nm) {
                lines.push(format!("{nm} {action:<8} finished"));
            }
        }
        running = now_running;
        let mut out = std::io::stdout().lock();
        if tty {
            // Redraw in place: up over the lines drawn last time.
            if drawn > 0 {
                let _ = write!(out, "\x1b[{drawn}A");
            }
            for l in &lines {
                let _ = writeln!(out, "\x1b[2K{l}");
            }
            for _ in lines.len()..drawn {
                let _ = writeln!(out, "\x1b[2K");
            }
            drawn = drawn.max(lines.len());
        } else if last_plain.elapsed() >= Duration::from_secs(10) || running.is_empty() {
            for l in &lines {
                let _ = writeln!(out, "{l}");
            }
            last_plain = Instant::now();
        }
        let _ = out.flush();
        if running.is_empty() {
            if !seen_any {
                println!("no sync running");
            }
            return ExitCode::SUCCESS;
        }
        seen_any = true;
        std::thread::sleep(interval);
    }
}

/// One array's progress: action, bar (on a terminal), percent, rate, ETA.
fn line(nm: &str, action: &str, done: u64, total: u64, speed: Option<u64>, bar: bool) -> String {
    let pct = if total > 0 {
        done as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    let eta = match speed {
        Some(s) if s > 0 && total > done => {
            let secs = (total - done) / 2 / s;
            format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
        }
        _ => "-".to_string(),
    };
    let rate = speed
        .map(|s| format!("{s}K/sec"))
        .unwrap_or_else(|| "-".into());
    let mut s = format!("{nm} {action:<8} ");
    if bar {
        let width = 30;
        let fill = ((pct / 100.0) * width as f64).round() as usize;
        s += &format!(
            "[{}{}] ",
            "#".repeat(fill.min(width)),
            "-".repeat(width - fill.min(width))
        );
    }
    s + &format!("{pct:5.1}% ({done}/{total}) {rate} eta {eta}")
}
