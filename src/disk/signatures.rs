//! Is something already on a device?  `create` refuses (without
//! `--force`) a device that holds a file system, swap, an encrypted volume
//! or a partition table.  A few common signatures are checked here
//! directly, so the refusal does not depend on other tools; `blkid -p`,
//! when installed, catches everything else it knows.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::format::{SectorReader, read_upto};

/// What was found, in words ("an ext2/3/4 file system").
pub fn find(dev: &dyn SectorReader, path: &Path) -> Option<String> {
    builtin(dev).or_else(|| blkid(path))
}

/// The signatures checked without blkid.
pub fn builtin(dev: &dyn SectorReader) -> Option<String> {
    let head = read_upto(dev, 0, 68 * 1024).ok()?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(1024 + 56, &[0x53, 0xef]) {
        return Some("an ext2/3/4 file system".into());
    }
    if at(0, b"XFSB") {
        return Some("an xfs file system".into());
    }
    if at(65536 + 64, b"_BHRfS_M") {
        return Some("a btrfs file system".into());
    }
    for page in [4096usize, 8192, 16384, 65536] {
        if at(page - 10, b"SWAPSPACE2") || at(page - 10, b"SWAP-SPACE") {
            return Some("swap space".into());
        }
    }
    if at(0, b"LUKS\xba\xbe") {
        return Some("a LUKS encrypted volume".into());
    }
    if at(512, b"EFI PART") || at(4096, b"EFI PART") {
        return Some("a GPT partition table".into());
    }
    if at(510, &[0x55, 0xaa]) {
        if at(54, b"FAT1") || at(82, b"FAT32") {
            return Some("a vfat file system".into());
        }
        let used = (0..4).any(|i| head.get(446 + 16 * i + 4).is_some_and(|&t| t != 0));
        if used {
            return Some("an MBR partition table".into());
        }
    }
    None
}

/// `blkid -p -o export PATH`: the TYPE or PTTYPE it reports, if any.
/// Absent blkid (or any failure to run it) counts as nothing found.
pub fn blkid(path: &Path) -> Option<String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(str::to_string))
    };
    if let Some(t) = get("TYPE=") {
        return Some(format!("{t} (blkid)"));
    }
    get("PTTYPE=").map(|t| format!("a {t} partition table (blkid)"))
}
