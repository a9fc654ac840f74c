//! `mdfuse examine` on damaged input: each rule the kernel applies when it
//! loads a superblock gets a corrupted copy of a real image, and the
//! answer is one line on stderr naming the device and the reason, a
//! non-zero exit status, and never a panic.  A bad checksum alone is the
//! exception mdadm 4.2 makes: printed with "- expected", exit status 0.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// Where the 1.2 superblock sits.
const SB: usize = 4096;

fn base() -> (TempDir, Vec<u8>) {
    let (dir, imgs) = unpack("raid1-v1.2-bitmap");
    let raw = fs::read(&imgs[0]).unwrap();
    (dir, raw)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recompute the v1 checksum in place (over 256 + 2*max_dev bytes, as
/// the kernel does), so that only the rule under test is broken.
fn fix_csum(b: &mut [u8]) {
    let max_dev = u32::from_le_bytes(b[SB + 220..SB + 224].try_into().unwrap()) as usize;
    put_u32(b, SB + 216, 0);
    let len = 256 + 2 * max_dev;
    let words = &b[SB..SB + len];
    let mut sum: u64 = words
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()) as u64)
        .sum();
    if len % 4 == 2 {
        sum += u16::from_le_bytes(words[len - 2..].try_into().unwrap()) as u64;
    }
    let csum = (sum as u32).wrapping_add((sum >> 32) as u32);
    put_u32(b, SB + 216, csum);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// Examine `path`; the one stderr line must name it and contain `reason`.
fn expect_error(path: &Path, reason: &str, want_rc: i32) -> String {
    let (out, err, rc) = mdfuse_run(["examine", path.to_str().unwrap()]);
    assert!(
        !err.contains("panicked"),
        "panic on {}: {err}",
        path.display()
    );
    assert_eq!(
        rc,
        want_rc,
        "{}: exit status; stderr: {err}",
        path.display()
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{}: stderr is not one line: {err}",
        path.display()
    );
    assert!(err.starts_with("mdfuse: "), "{err}");
    assert!(
        err.contains(&path.display().to_string()),
        "{}: stderr does not name the device: {err}",
        path.display()
    );
    assert!(
        err.contains(reason),
        "{}: want '{reason}' in: {err}",
        path.display()
    );
    out
}

/// Corrupt with `f` (and fix the checksum unless told not to), examine.
fn case(name: &str, fix: bool, f: impl FnOnce(&mut Vec<u8>), reason: &str, rc: i32) -> String {
    let (dir, mut raw) = base();
    f(&mut raw);
    if fix {
        fix_csum(&mut raw);
    }
    let p = write(dir.path(), &format!("{name}.img"), &raw);
    expect_error(&p, reason, rc)
}

#[test]
fn bad_magic() {
    case("magic", false, |b| b[SB] ^= 0xff, "bad magic", 1);
}

#[test]
fn wrong_major_version() {
    case(
        "major",
        true,
        |b| put_u32(b, SB + 4, 2),
        "unsupported major version 2",
        1,
    );
}

#[test]
fn bad_checksum_is_printed_as_mdadm_does() {
    let (dir, mut raw) = base();
    raw[SB + 40] ^= 1; // a byte of the name
    let p = write(dir.path(), "csum.img", &raw);
    let out = expect_error(&p, "invalid superblock checksum", 0);
    assert!(out.contains(" - expected "), "{out}");
    if let Some((want, _, want_rc)) = mdadm_examine(&p) {
        assert_eq!(out, want);
        assert_eq!(want_rc, 0);
    }
}

#[test]
fn super_offset_mismatch() {
    case(
        "superoff",
        true,
        |b| put_u64(b, SB + 144, 16),
        "super_offset 16",
        1,
    );
}

#[test]
fn max_dev_over_1920() {
    case(
        "maxdev",
        true,
        |b| put_u32(b, SB + 220, 1921),
        "max_dev 1921",
        1,
    );
}

#[test]
fn non_zero_padding() {
    case("pad0", true, |b| b[SB + 12] = 1, "non-zero padding", 1);
    case("pad3", true, |b| b[SB + 240] = 1, "non-zero padding", 1);
}

#[test]
fn unknown_feature_bits() {
    case(
        "feature",
        true,
        |b| {
            let fm = u32::from_le_bytes(b[SB + 8..SB + 12].try_into().unwrap());
            put_u32(b, SB + 8, fm | 0x8000);
        },
        "unknown feature bits 0x8000",
        1,
    );
}

#[test]
fn data_offset_overlapping_the_superblock() {
    case(
        "dataoff",
        true,
        |b| put_u64(b, SB + 128, 8),
        "overlaps the superblock",
        1,
    );
}

#[test]
fn data_size_too_small() {
    case(
        "datasize",
        true,
        |b| put_u64(b, SB + 136, 5),
        "data_size too small",
        1,
    );
}

#[test]
fn truncated_images() {
    // Inside the superblock itself.
    case("trunc", false, |b| b.truncate(SB + 2048), "truncated", 1);
    // Superblock whole, data area cut short.
    case("trunc2", false, |b| b.truncate(8 << 20), "exceeds", 1);
}

#[test]
fn empty_file() {
    let dir = tempdir();
    let p = write(dir.path(), "empty.img", b"");
    expect_error(&p, "too small for md", 1);
}

#[test]
fn no_superblock_is_mdadms_message() {
    let dir = tempdir();
    let p = dir.path().join("zero.img");
    sparse_file(&p, 1 << 20);
    let (_, err, rc) = mdfuse_run(["examine", p.to_str().unwrap()]);
    assert_eq!(
        err,
        format!("mdfuse: No md superblock detected on {}.\n", p.display())
    );
    assert_eq!(rc, 1);
}

#[test]
fn directory() {
    let dir = tempdir();
    expect_error(dir.path(), "Is a directory", 1);
}

#[test]
fn missing_path() {
    let dir = tempdir();
    expect_error(
        &dir.path().join("nothing.img"),
        "No such file or directory",
        1,
    );
}

#[test]
fn v090_bad_checksum_and_version() {
    let (dir, imgs) = unpack("raid1-v0.90");
    let raw = fs::read(&imgs[0]).unwrap();
    let at = (raw.len() / 512 / 128 * 128 - 128) * 512;
    let mut bad = raw.clone();
    bad[at + 4 * 6] ^= 1; // ctime
    let p = write(dir.path(), "csum0.img", &bad);
    let out = expect_error(&p, "invalid superblock checksum", 0);
    assert!(out.contains(" - expected "), "{out}");

    let mut bad = raw.clone();
    put_u32(&mut bad, at + 8, 80); // minor_version 80
    let sum: u64 = {
        put_u32(&mut bad, at + 4 * 38, 0);
        bad[at..at + 4096]
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()) as u64)
            .sum()
    };
    put_u32(
        &mut bad,
        at + 4 * 38,
        (sum as u32).wrapping_add((sum >> 32) as u32),
    );
    let p = write(dir.path(), "version0.img", &bad);
    expect_error(&p, "Bad version number 0.80", 1);
}

#[test]
fn several_devices_continue_past_bad_ones() {
    let (dir, imgs) = unpack("raid1-v1.2-bitmap");
    let missing = dir.path().join("missing.img");
    let (out, err, rc) = mdfuse_run([
        "examine",
        imgs[0].to_str().unwrap(),
        missing.to_str().unwrap(),
        imgs[1].to_str().unwrap(),
    ]);
    assert_eq!(rc, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.contains(&format!("{}:\n", imgs[0].display())));
    assert!(out.contains(&format!("{}:\n", imgs[1].display())));
}

#[test]
fn examine_bitmap_without_a_bitmap() {
    let (_dir, imgs) = unpack("raid1-v1.2-nobitmap");
    let (_, err, rc) = mdfuse_run(["examine", "-X", imgs[0].to_str().unwrap()]);
    assert_eq!(rc, 1);
    assert_eq!(
        err,
        format!("mdfuse: {} doesn't have bitmap\n", imgs[0].display())
    );
}

#[test]
fn examine_bitmap_with_a_damaged_bitmap() {
    let (dir, mut raw) = base();
    raw[SB + 8 * 512] ^= 0xff; // bitmap magic, 8 sectors after the superblock
    let p = write(dir.path(), "bm.img", &raw);
    let (_, err, rc) = mdfuse_run(["examine", "-X", p.to_str().unwrap()]);
    assert_eq!(rc, 1);
    assert!(err.contains("doesn't have bitmap"), "{err}");
    // examine itself then shows no bitmap, and the checksum of what it
    // shows no longer matches, exactly as mdadm's load_super1 does; the
    // kernel would refuse the bitmap.
    let out = expect_error(&p, "invalid bitmap file superblock: bad magic", 1);
    assert!(out.contains("Feature Map : 0x0"), "{out}");
    if let Some((want, _, _)) = mdadm_examine(&p) {
        assert_eq!(out, want);
    }
}

/// Linux 6.19 records the logical block size in the first word of what
/// 6.1 calls pad3: such a member examines as mdadm 4.5/4.6 show it (no
/// line of its own; only the checksum differs) and is not refused.
#[test]
fn logical_block_size_is_not_padding() {
    let (dir, raw) = base();
    let plain = write(dir.path(), "plain.img", &raw);
    let mut lbs = raw.clone();
    put_u32(&mut lbs, SB + 224, 4096);
    fix_csum(&mut lbs);
    let p = write(dir.path(), "lbs.img", &lbs);
    let (want, _, _) = mdfuse_run(["examine", plain.to_str().unwrap()]);
    let (out, err, rc) = mdfuse_run(["examine", p.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .skip(1)
            .filter(|l| !l.contains("Checksum :"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(strip(&out), strip(&want));
}

/// A lockless bitmap (major 6, mdadm 4.6) is never read as a classic one.
#[test]
fn llbitmap_is_named() {
    let (dir, mut raw) = base();
    let bo = i32::from_le_bytes(raw[SB + 96..SB + 100].try_into().unwrap());
    let off = (SB as i64 + bo as i64 * 512) as usize;
    put_u32(&mut raw, off + 4, 6);
    let p = write(dir.path(), "ll.img", &raw);
    expect_error(&p, "llbitmap", 1);
    let (out, err, rc) = mdfuse_run(["examine", "-X", p.to_str().unwrap()]);
    assert_eq!(rc, 1);
    assert!(out.ends_with("         Version : 6\n"), "{out}");
    assert!(err.contains("unknown bitmap version 6"), "{err}");
}
