//! Helpers shared by the integration tests: the fixtures written by real
//! Linux md (../shared/oracle/fixtures), the mdfuse binary, host tools
//! (mdadm, blkid, losetup, zstd) and the realmd oracle (real md in a VM).
//!
//! Each test binary includes this with `mod common;` and uses what it
//! needs, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use tempfile::TempDir;

/// The shared material (fixtures, the oracle): `$MDFUSE_SHARED`, else
/// the repository's sibling `shared/`.  Every test needs it, so its
/// absence fails the test with the way out.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("MDFUSE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("oracle/fixtures").is_dir(),
        "no shared material at {}: put the repository beside shared/ or set MDFUSE_SHARED",
        dir.display()
    );
    dir
}

pub fn fixtures_dir() -> PathBuf {
    shared_dir().join("oracle/fixtures")
}

/// Every fixture (a directory holding `dN.img.zst`), sorted by name.
pub fn fixtures() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(fixtures_dir())
        .expect("../shared/oracle/fixtures must exist")
        .flatten()
        .filter(|e| e.path().join("d0.img.zst").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures found");
    v
}

/// The image names of a fixture, in order: d0, d1, ...
pub fn fixture_disks(name: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("d{i}"))
        .take_while(|d| {
            fixtures_dir()
                .join(name)
                .join(format!("{d}.img.zst"))
                .exists()
        })
        .collect()
}

/// A report file of a fixture, e.g. `inspect/before.examine.d0.txt`.
pub fn fixture_report(name: &str, rel: &str) -> Option<String> {
    fs::read_to_string(fixtures_dir().join(name).join(rel)).ok()
}

/// A fixture's images, unpacked into a fresh temporary directory (removed
/// when the returned `TempDir` drops).  Returns the directory and the
/// image paths in disk order.
pub fn unpack(name: &str) -> (TempDir, Vec<PathBuf>) {
    let dir = tempdir();
    let mut out = Vec::new();
    let disks = fixture_disks(name);
    assert!(
        !disks.is_empty(),
        "no fixture {name} in {}",
        fixtures_dir().display()
    );
    for d in disks {
        let src = fixtures_dir().join(name).join(format!("{d}.img.zst"));
        let dst = dir.path().join(format!("{d}.img"));
        unzstd(&src, &dst);
        out.push(dst);
    }
    (dir, out)
}

/// Decompress one `.zst` file.
pub fn unzstd(src: &Path, dst: &Path) {
    let st = Command::new("zstd")
        .args(["-q", "-d", "-f", "-o"])
        .arg(dst)
        .arg(src)
        .status()
        .expect("zstd must be installed");
    assert!(st.success(), "zstd -d {} failed", src.display());
}

pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("mdfuse-test-")
        .tempdir()
        .expect("temp dir")
}

/// The mdfuse binary built for this test run, with TZ=UTC so times print
/// as in the fixtures.
pub fn mdfuse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdfuse"));
    c.env("TZ", "UTC");
    c
}

/// Run and capture; stdin closed.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// stdout, stderr as text and the exit code (-1 if killed by a signal).
pub fn run(cmd: &mut Command) -> (String, String, i32) {
    let o = output(cmd);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

/// `mdfuse ARGS...`, captured.
pub fn mdfuse_run<I, S>(args: I) -> (String, String, i32)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(mdfuse().args(args))
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a missing tool fails the test instead of skipping checks:
/// `scripts/test` (README's test command, CI's) sets MDFUSE_TEST_STRICT=1
/// after installing every tool, so there nothing is silently skipped.
pub fn strict() -> bool {
    std::env::var_os("MDFUSE_TEST_STRICT").is_some_and(|v| v == "1")
}

/// Say that a group of checks is skipped (a tool is missing); in strict
/// mode that is a failure.
pub fn skip(why: &str) {
    assert!(
        !strict(),
        "{why} (MDFUSE_TEST_STRICT=1: nothing may be skipped)"
    );
    eprintln!("SKIPPED: {why}");
}

/// Whether any of `tools` is missing, for helpers that then return None;
/// in strict mode a missing tool fails the test.
pub fn missing(tools: &[&str]) -> bool {
    match tools.iter().find(|t| !have(t)) {
        Some(t) => {
            skip(&format!("{t} is not installed"));
            true
        }
        None => false,
    }
}

/// The host's `mdadm --examine`, with TZ=UTC; None without mdadm.
pub fn mdadm_examine(dev: &Path) -> Option<(String, String, i32)> {
    if missing(&["mdadm"]) {
        return None;
    }
    Some(run(Command::new("mdadm")
        .env("TZ", "UTC")
        .arg("--examine")
        .arg(dev)))
}

/// The host's `mdadm --examine-bitmap` on a read-only loop device of
/// `img` (mdadm reads a plain file as an external bitmap), with the loop
/// device's name in the output replaced by `img`'s path.
pub fn mdadm_examine_bitmap(img: &Path) -> Option<(String, String, i32)> {
    if missing(&["mdadm", "losetup"]) {
        return None;
    }
    let lo = LoopDev::attach(img, true)?;
    let (o, e, rc) = run(Command::new("mdadm")
        .env("TZ", "UTC")
        .arg("--examine-bitmap")
        .arg(&lo.path));
    let lp = lo.path.display().to_string();
    let ip = img.display().to_string();
    Some((o.replace(&lp, &ip), e.replace(&lp, &ip), rc))
}

/// `blkid -p -o export DEV` as key=value pairs; None without blkid.
pub fn blkid(dev: &Path) -> Option<BTreeMap<String, String>> {
    if missing(&["blkid"]) {
        return None;
    }
    let (o, _, _) = run(Command::new("blkid").args(["-p", "-o", "export"]).arg(dev));
    Some(
        o.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// A loop device, detached on drop (also when the test fails).
pub struct LoopDev {
    pub path: PathBuf,
}

impl LoopDev {
    /// `losetup [-r] -f --show IMG`; None when losetup is missing or no
    /// loop device can be set up (e.g. no permission).
    pub fn attach(img: &Path, read_only: bool) -> Option<LoopDev> {
        if missing(&["losetup"]) {
            return None;
        }
        let mut c = Command::new("losetup");
        if read_only {
            c.arg("-r");
        }
        let (o, e, rc) = run(c.args(["-f", "--show"]).arg(img));
        if rc != 0 {
            skip(&format!(
                "no loop device for {}: {}",
                img.display(),
                e.trim()
            ));
            return None;
        }
        Some(LoopDev {
            path: PathBuf::from(o.trim()),
        })
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `key : value` lines of mdadm's examine text, in order; the device
/// line and blank lines are skipped; table lines are kept under "".
pub fn examine_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || (line.ends_with(':') && !line.starts_with(' ')) {
            continue;
        }
        match line.split_once(" : ") {
            Some((k, v)) if !k.trim().is_empty() && !k.contains("  Number") => {
                out.push((k.trim().to_string(), v.to_string()));
            }
            _ => out.push((String::new(), line.to_string())),
        }
    }
    out
}

/// A sparse file of `bytes`.
pub fn sparse_file(path: &Path, bytes: u64) {
    let f = fs::File::create(path).expect("create image");
    f.set_len(bytes).expect("size image");
}

/// sha256 of a file's contents, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = fs::read(path).expect("read file");
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The realmd oracle (`../shared/oracle/realmd`), when it and qemu are
/// present.
pub fn realmd() -> Option<PathBuf> {
    let p = shared_dir().join("oracle/realmd");
    assert!(p.exists(), "{} is missing", p.display());
    if missing(&["qemu-system-x86_64", "python3"]) {
        return None;
    }
    Some(p)
}

/// `realmd inspect --out DIR IMG...` (on copies): summary.txt as a map.
pub fn realmd_inspect(imgs: &[PathBuf]) -> Option<BTreeMap<String, String>> {
    let realmd = realmd()?;
    let out = tempdir();
    let o = output(
        Command::new(&realmd)
            .arg("inspect")
            .arg("--out")
            .arg(out.path())
            .args(imgs),
    );
    let summary = fs::read_to_string(out.path().join("summary.txt")).unwrap_or_else(|_| {
        panic!(
            "realmd inspect left no summary.txt\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    Some(parse_summary(&summary))
}

/// `realmd create [ropts] OUTDIR [mdadm options]`: the images real mdadm
/// made, in OUTDIR (a fresh temporary directory).  Without waiting for the
/// resync and without writing a pattern: only the layout matters.
pub fn realmd_create(ropts: &[&str], mdadm_opts: &[&str]) -> Option<(TempDir, PathBuf)> {
    let realmd = realmd()?;
    let dir = tempdir();
    let outdir = dir.path().join("out");
    let o = output(
        Command::new(&realmd)
            .arg("create")
            .args(["--no-wait", "--pattern", "none"])
            .args(ropts)
            .arg(&outdir)
            .args(mdadm_opts),
    );
    assert!(
        o.status.success(),
        "realmd create {ropts:?} {mdadm_opts:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Some((dir, outdir))
}

/// `key: value` lines of a realmd summary.txt.
pub fn parse_summary(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
