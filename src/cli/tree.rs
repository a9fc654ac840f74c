//! The mounted tree as the verbs see it: where it is (`--tree`, else
//! `MDFUSE_TREE`, else `/run/mdfuse` for root and `$XDG_RUNTIME_DIR/mdfuse`
//! for others), starting the daemon there when a verb needs it and nothing
//! is mounted, and reading and writing its files the way a user would with
//! `cat` and `echo`.  Nothing here reaches into md: every verb goes through
//! the same files a user can.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Failure;

/// `--tree DIR`, shared by every verb that works on the tree.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TreeArgs {
    /// The mounted tree [default: $MDFUSE_TREE, else /run/mdfuse for
    /// root, else $XDG_RUNTIME_DIR/mdfuse].
    #[arg(long, value_name = "DIR")]
    pub tree: Option<PathBuf>,
}

impl TreeArgs {
    /// The directory meant, mounted or not.
    pub fn dir(&self) -> PathBuf {
        self.tree.clone().unwrap_or_else(default_tree)
    }

    /// The tree when it is mounted; `None` when nothing serves it.
    pub fn existing(&self) -> Option<Tree> {
        let dir = self.dir();
        is_mounted(&dir).then_some(Tree { root: dir })
    }

    /// The tree, starting the daemon on it first (as `mdfuse mount DIR`
    /// does) when nothing is mounted there.
    pub fn open_or_start(&self) -> Result<Tree, Failure> {
        let dir = self.dir();
        if is_mounted(&dir) {
            return Ok(Tree { root: dir });
        }
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::refused(format!(
                "cannot create {}: {}",
                dir.display(),
                super::probe::strerror(&e)
            ))
        })?;
        let exe = std::env::current_exe()
            .map_err(|e| Failure::refused(format!("cannot find mdfuse itself: {e}")))?;
        // `mount` without -f returns once the mount is up; the daemon
        // keeps serving in the background.
        let status = Command::new(exe)
            .arg("mount")
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| Failure::refused(format!("cannot start mdfuse mount: {e}")))?;
        if !status.success() || !is_mounted(&dir) {
            return Err(Failure::refused(format!(
                "cannot start the md tree on {}",
                dir.display()
            )));
        }
        Ok(Tree { root: dir })
    }
}

/// `MDFUSE_TREE`, else `/run/mdfuse` for root, else
/// `$XDG_RUNTIME_DIR/mdfuse` (or `/tmp/mdfuse-UID` without one).
pub fn default_tree() -> PathBuf {
    if let Some(t) = std::env::var_os("MDFUSE_TREE").filter(|v| !v.is_empty()) {
        return PathBuf::from(t);
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/mdfuse");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => Path::new(&d).join("mdfuse"),
        None => PathBuf::from(format!("/tmp/mdfuse-{uid}")),
    }
}

/// Whether an mdfuse tree is mounted exactly on `dir` (mountinfo's
/// source field is the daemon's fsname, "mdfuse").
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(dir) else {
        return false;
    };
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.as_os_str().as_bytes();
    for line in info.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.len() < sep + 3 || fields.len() < 5 {
            continue;
        }
        if unescape_mount(fields[4]) == want && fields[sep + 2] == b"mdfuse" {
            return true;
        }
    }
    false
}

/// mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mount(f: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'\\'
            && i + 3 < f.len()
            && f[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((f[i + 1] - b'0') * 64 + (f[i + 2] - b'0') * 8 + (f[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(f[i]);
            i += 1;
        }
    }
    out
}

/// The kernel's name for an md device the user named: `md0`, `/dev/md0`
/// and `/dev/md/0` give `md0`; `/dev/md/NAME`, `/dev/md_NAME` and
/// `md_NAME` give `md_NAME`; a path into the tree gives its last part.
pub fn devnm(arg: &str, tree: &Path) -> Option<String> {
    let valid = |n: &str| {
        (n.strip_prefix("md").is_some_and(|d| {
            !d.is_empty()
                && d.bytes().all(|b| b.is_ascii_digit())
                && !(d.len() > 1 && d.starts_with('0'))
        }) || n
            .strip_prefix("md_")
            .is_some_and(|s| !s.is_empty() && !s.contains('/')))
            && n.len() < 32
    };
    let p = Path::new(arg);
    if let Ok(rest) = p.strip_prefix(tree) {
        let s = rest.to_str()?;
        return valid(s).then(|| s.to_string());
    }
    if let Some(n) = arg.strip_prefix("/dev/md/") {
        if n.is_empty() || n.contains('/') {
            return None;
        }
        let cand = if n.bytes().all(|b| b.is_ascii_digit()) {
            format!("md{n}")
        } else {
            format!("md_{n}")
        };
        return valid(&cand).then_some(cand);
    }
    let n = arg.strip_prefix("/dev/").unwrap_or(arg);
    valid(n).then(|| n.to_string())
}

/// One member as the tree shows it (`md/dev-NAME/` and `slaves/NAME/`).
#[derive(Debug, Clone)]
pub struct Member {
    /// NAME in `dev-NAME`.
    pub name: String,
    /// The words of `dev-NAME/state`.
    pub state: Vec<String>,
    /// `dev-NAME/slot`, None for "none".
    pub slot: Option<u32>,
    /// `slaves/NAME/path`: the image file or device node.
    pub path: Option<PathBuf>,
    /// `slaves/NAME/dev` (block devices only).
    pub dev: Option<(u32, u32)>,
}

impl Member {
    pub fn has(&self, word: &str) -> bool {
        self.state.iter().any(|w| w == word)
    }
}

/// One array's stanza of `mdstat`, parsed as mdadm's `mdstat_read` does.
#[derive(Debug, Clone, Default)]
pub struct MdstatEnt {
    pub devnm: String,
    /// 1 "active", 0 "inactive", -1 neither.
    pub active: i32,
    /// -1 none, -2 DELAYED, -3 PENDING, -4 REMOTE, else the percentage.
    pub percent: i32,
    /// 0 recovery, 1 resync, 2 reshape, 3 check.
    pub resync: usize,
    /// Member names with their descriptor numbers (`vda[0]`).
    pub members: Vec<(String, i32)>,
    /// The `[UU_]` pattern, brackets dropped.
    pub pattern: Option<String>,
    /// The level word after "active".
    pub level: Option<String>,
}

pub const RESYNC_NONE: i32 = -1;
pub const RESYNC_DELAYED: i32 = -2;
pub const RESYNC_PENDING: i32 = -3;
pub const RESYNC_REMOTE: i32 = -4;

/// A mounted tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
}

impl Tree {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A file's value without its trailing newline.
    pub fn read(&self, rel: &str) -> io::Result<String> {
        let mut s = String::from_utf8_lossy(&std::fs::read(self.path(rel))?).into_owned();
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// One `write(2)` of "VALUE\n", as `echo VALUE > FILE`.
    pub fn write(&self, rel: &str, value: &str) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(rel))?;
        f.write_all(format!("{value}\n").as_bytes())
    }

    pub fn has_array(&self, devnm: &str) -> bool {
        self.path(devnm).join("md").is_dir()
    }

    /// The arrays in the tree, in name order (md0, md1, ..., md_NAME).
    pub fn arrays(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.starts_with("md") && self.has_array(n))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|n| {
            let num = n[2..].parse::<u64>().ok();
            (num.is_none(), num.unwrap_or(0), n.clone())
        });
        v
    }

    /// The members of an array, in the order of the directory.
    pub fn members(&self, devnm: &str) -> Vec<Member> {
        let md = self.path(devnm).join("md");
        let mut names: Vec<String> = std::fs::read_dir(&md)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter_map(|n| n.strip_prefix("dev-").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let d = format!("{devnm}/md/dev-{name}");
                // A member leaving while we look is gone.
                let state = self.read(&format!("{d}/state")).ok()?;
                let slot = self.read(&format!("{d}/slot")).ok()?.parse().ok();
                let s = format!("{devnm}/slaves/{name}");
                let path = self.read(&format!("{s}/path")).ok().map(PathBuf::from);
                let dev = self.read(&format!("{s}/dev")).ok().and_then(|v| {
                    let (a, b) = v.split_once(':')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                });
                Some(Member {
                    // md's `state_show` joins the flags with commas.
                    state: state
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect(),
                    name,
                    slot,
                    path,
                    dev,
                })
            })
            .collect()
    }

    /// Every stanza of `mdstat`.
    pub fn mdstat(&self) -> Vec<MdstatEnt> {
        self.read("mdstat")
            .map(|s| parse_mdstat(&s))
            .unwrap_or_default()
    }

    pub fn mdstat_of(&self, devnm: &str) -> Option<MdstatEnt> {
        self.mdstat().into_iter().find(|e| e.devnm == devnm)
    }
}

/// mdadm's `mdstat_read`: a stanza is a line starting "md" and the
/// indented lines after it; the words are read as mdadm reads them.
pub fn parse_mdstat(text: &str) -> Vec<MdstatEnt> {
    let mut stanzas: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = stanzas.last_mut() {
                last.push(' ');
                last.push_str(line);
            }
        } else if !line.trim().is_empty() {
            stanzas.push(line.to_string());
        }
    }
    let mut out = Vec::new();
    for st in stanzas {
        let words: Vec<&str> = st.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        let b = first.as_bytes();
        if !first.starts_with("md") || b.len() < 3 || !(b[2] == b'_' || b[2].is_ascii_digit()) {
            continue;
        }
        let mut e = MdstatEnt {
            devnm: first.to_string(),
            active: -1,
            percent: RESYNC_NONE,
            resync: 0,
            members: Vec::new(),
            pattern: None,
            level: None,
        };
        let mut level_seen = false;
        let mut in_devs = false;
        for w in words.iter().skip(1) {
            let w = *w;
            if w == ":" {
                continue;
            }
            if w == "active" {
                e.active = 1;
            } else if w == "inactive" {
                e.active = 0;
                in_devs = true;
            } else if w == "bitmap:" {
                break;
            } else if e.active > 0 && !level_seen && !w.starts_with('(') {
                level_seen = true;
                e.level = Some(w.to_string());
                in_devs = true;
            } else if in_devs && w == "blocks" {
                in_devs = false;
            } else if in_devs {
                if let Some(open) = w.find('[') {
                    let num = w[open + 1..].split(']').next().and_then(|n| n.parse().ok());
                    if let Some(n) = num {
                        e.members.push((w[..open].to_string(), n));
                    }
                }
            } else if e.pattern.is_none()
                && w.starts_with('[')
                && (w[1..].starts_with('U') || w[1..].starts_with('_'))
            {
                e.pattern = Some(w[1..].trim_end_matches(']').to_string());
            } else if e.percent == RESYNC_NONE
                && w.starts_with("re")
                && w.ends_with('%')
                && w.contains('=')
            {
                e.percent = atoi(&w[w.find('=').unwrap_or(0) + 1..]);
                e.resync = if w.starts_with("resync") {
                    1
                } else if w.starts_with("reshape") {
                    2
                } else {
                    0
                };
            } else if e.percent == RESYNC_NONE && (w.starts_with('r') || w.starts_with('c')) {
                if w.starts_with("resync") {
                    e.resync = 1;
                }
                if w.starts_with("reshape") {
                    e.resync = 2;
                }
                if w.starts_with("recovery") {
                    e.resync = 0;
                }
                if w.starts_with("check") {
                    e.resync = 3;
                }
                if w.len() > 8 && w.ends_with("=DELAYED") {
                    e.percent = RESYNC_DELAYED;
                }
                if w.len() > 8 && w.ends_with("=PENDING") {
                    e.percent = RESYNC_PENDING;
                }
                if w.len() > 7 && w.ends_with("=REMOTE") {
                    e.percent = RESYNC_REMOTE;
                }
            } else if e.percent == RESYNC_NONE
                && w.as_bytes()[0].is_ascii_digit()
                && w.ends_with('%')
            {
                e.percent = atoi(w);
            }
        }
        out.push(e);
    }
    out
}

/// C's `atoi`: the leading decimal digits.
fn atoi(s: &str) -> i32 {
    let d: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    d.parse().unwrap_or(0)
}

/// md's level names and numbers (mdadm's `pers[]`).
pub fn level_number(name: &str) -> Option<i32> {
    Some(match name {
        "linear" | "-1" => -1,
        "raid0" | "0" | "stripe" => 0,
        "raid1" | "1" | "mirror" => 1,
        "raid4" | "4" => 4,
        "raid5" | "5" => 5,
        "raid6" | "6" => 6,
        "raid10" | "10" => 10,
        "multipath" | "-4" | "mp" => -4,
        "faulty" | "-5" => -5,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = Path::new("/run/mdfuse");
        assert_eq!(devnm("md0", t).as_deref(), Some("md0"));
        assert_eq!(devnm("/dev/md12", t).as_deref(), Some("md12"));
        assert_eq!(devnm("/dev/md/3", t).as_deref(), Some("md3"));
        assert_eq!(devnm("/dev/md/home", t).as_deref(), Some("md_home"));
        assert_eq!(devnm("/dev/md_home", t).as_deref(), Some("md_home"));
        assert_eq!(devnm("/run/mdfuse/md1", t).as_deref(), Some("md1"));
        assert_eq!(devnm("sda", t), None);
        assert_eq!(devnm("md", t), None);
        assert_eq!(devnm("md01", t), None);
        assert_eq!(devnm("/dev/sda", t), None);
    }

    #[test]
    fn mdstat_words() {
        let s = "Personalities : [raid1] \nmd0 : active (auto-read-only) raid1 d2.img[2](S) d1.img[1] d0.img[0]\n      15360 blocks super 1.2 [2/2] [UU]\n      \tresync=PENDING\n      bitmap: 0/1 pages [0KB], 65536KB chunk\n\nmd1 : active raid1 b[3] a[0]\n      100 blocks super 1.2 [2/1] [U_]\n      [=>...]  recovery = 12.5% (1/8) finish=1.0min speed=1K/sec\n\nunused devices: <none>\n";
        let e = parse_mdstat(s);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].percent, RESYNC_PENDING);
        assert_eq!(e[0].resync, 1);
        assert_eq!(
            e[0].members,
            vec![
                ("d2.img".into(), 2),
                ("d1.img".into(), 1),
                ("d0.img".into(), 0)
            ]
        );
        assert_eq!(e[1].percent, 12);
        assert_eq!(e[1].resync, 0);
        assert_eq!(e[1].members[0], ("b".into(), 3));
        assert_eq!(e[0].pattern.as_deref(), Some("UU"));
        assert_eq!(e[1].pattern.as_deref(), Some("U_"));
        assert_eq!(e[1].level.as_deref(), Some("raid1"));
    }

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount(b"/a\\040b"), b"/a b");
        assert_eq!(unescape_mount(b"/plain"), b"/plain");
    }
}
