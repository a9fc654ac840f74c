//! Real Linux md (../shared/oracle/realmd: Debian's kernel and mdadm in a
//! VM) judges what `mdfuse create` writes: it assembles the array with the
//! expected members, resyncs it and finds no mismatch.  And for the same
//! device sizes and options, real mdadm lays the array out exactly as we
//! do.  Each VM run takes several seconds; skipped without qemu.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use mdfuse::format::bitmap::BitmapSuper;
use mdfuse::format::super1::{Superblock1, feature};

/// Create in a temp dir with `args` (16M images unless an --image-size is
/// among them), then let real md assemble, sync and check the images.
fn assemble(args: &[&str], images: &[&str], flags: &str) {
    // A new array resyncs on first assembly, unless --assume-clean; with
    // a single working mirror the kernel has nothing to resync.
    let in_sync = args.contains(&"--assume-clean") || args.contains(&"missing");
    assemble_expecting(args, images, flags, if in_sync { "none" } else { "0" });
}

/// `assemble`, with the `resync_start` real md must find at assembly.
fn assemble_expecting(args: &[&str], images: &[&str], flags: &str, resync_start: &str) {
    let Some(_) = realmd() else {
        return skip("realmd oracle or qemu not available");
    };
    let dir = tempdir();
    let mut all = vec!["create", "--image-size=16M"];
    all.extend_from_slice(args);
    let (_, err, rc) = run(mdfuse().current_dir(dir.path()).args(&all));
    assert_eq!(rc, 0, "create {all:?}: {err}");
    let imgs: Vec<PathBuf> = images.iter().map(|n| dir.path().join(n)).collect();
    let s = realmd_inspect(&imgs).unwrap();
    let ctx = format!("{args:?}: {s:#?}");
    assert_eq!(s["assembled"], "yes", "{ctx}");
    assert!(
        has_word(&s["assembled_mdstat"], flags),
        "want {flags}: {ctx}"
    );
    assert!(has_word(&s["synced_mdstat"], flags), "want {flags}: {ctx}");
    // Levels without redundancy have no check to run.
    if s["check_ran"] != "no" {
        assert_eq!(s["mismatch_cnt"], "0", "{ctx}");
    }
    assert_eq!(s["stop_rc"], "0", "{ctx}");
    assert_eq!(s["assembled_resync_start"], resync_start, "{ctx}");
}

#[test]
fn real_md_assembles_raid0() {
    assemble_expecting(
        &["-l0", "-n3", "-c64", "a", "b", "c"],
        &["a", "b", "c"],
        "64k",
        "none",
    );
}

#[test]
fn real_md_assembles_linear_v10() {
    assemble_expecting(
        &["-llinear", "-n2", "-e1.0", "a", "b"],
        &["a", "b"],
        "linear",
        "none",
    );
}

#[test]
fn real_md_assembles_raid10_near_with_bitmap() {
    assemble_expecting(
        &["-l10", "-n4", "a", "b", "c", "d"],
        &["a", "b", "c", "d"],
        "[UUUU]",
        "0",
    );
}

#[test]
fn real_md_assembles_raid10_far_degraded() {
    assemble_expecting(
        &["-l10", "-n4", "-pf2", "-e1.1", "a", "missing", "c", "d"],
        &["a", "c", "d"],
        "[U_UU]",
        "0",
    );
}

#[test]
fn real_md_assembles_raid10_offset_3_members_clean() {
    assemble_expecting(
        &[
            "-l10",
            "-n3",
            "-po2",
            "--assume-clean",
            "-c32",
            "a",
            "b",
            "c",
        ],
        &["a", "b", "c"],
        "[UUU]",
        "none",
    );
}

fn has_word(line: &str, word: &str) -> bool {
    line.split_whitespace().any(|w| w == word)
}

#[test]
fn real_md_assembles_v10_with_bitmap() {
    assemble(&["-l1", "-n2", "-e1.0", "a", "b"], &["a", "b"], "[UU]");
}

#[test]
fn real_md_assembles_v10_without_bitmap_3way() {
    assemble(
        &["-l1", "-n3", "-e1.0", "--bitmap=none", "a", "b", "c"],
        &["a", "b", "c"],
        "[UUU]",
    );
}

#[test]
fn real_md_assembles_v11_with_bitmap_and_spare() {
    assemble(
        &["-l1", "-n2", "-x1", "-e1.1", "a", "b", "c"],
        &["a", "b", "c"],
        "[UU]",
    );
}

#[test]
fn real_md_assembles_v11_without_bitmap() {
    assemble(
        &["-l1", "-n2", "-e1.1", "--bitmap=none", "a", "b"],
        &["a", "b"],
        "[UU]",
    );
}

#[test]
fn real_md_assembles_v12_with_bitmap_3way() {
    assemble(&["-l1", "-n3", "a", "b", "c"], &["a", "b", "c"], "[UUU]");
}

#[test]
fn real_md_assembles_v12_without_bitmap_clean() {
    assemble(
        &["-l1", "-n2", "--bitmap=none", "--assume-clean", "a", "b"],
        &["a", "b"],
        "[UU]",
    );
}

#[test]
fn real_md_assembles_degraded() {
    assemble(&["-l1", "-n2", "a", "missing"], &["a"], "[U_]");
}

#[test]
fn real_md_assembles_write_mostly() {
    let Some(_) = realmd() else {
        return skip("realmd oracle or qemu not available");
    };
    let dir = tempdir();
    let (_, err, rc) = run(mdfuse().current_dir(dir.path()).args([
        "create",
        "--image-size=16M",
        "-l1",
        "-n2",
        "a",
        "-W",
        "b",
    ]));
    assert_eq!(rc, 0, "{err}");
    let s = realmd_inspect(&[dir.path().join("a"), dir.path().join("b")]).unwrap();
    assert_eq!(s["assembled"], "yes", "{s:#?}");
    assert!(s["assembled_mdstat"].contains("vdb[1](W)"), "{s:#?}");
    assert!(has_word(&s["assembled_mdstat"], "[UU]"), "{s:#?}");
    assert_eq!(s["mismatch_cnt"], "0", "{s:#?}");
}

// ---- the same layout as real mdadm ----

/// The v1 superblock and bitmap superblock of an image.
fn layout(img: &Path) -> (Superblock1, Option<BitmapSuper>) {
    let raw = fs::read(img).unwrap();
    let sectors = raw.len() as u64 / 512;
    for start in [8u64, 0, (sectors - 16) & !7] {
        let at = start as usize * 512;
        if let Ok(sb) = Superblock1::parse(&raw[at..at + 4096]) {
            if sb.super_offset == start {
                let bm = sb.bitmap_offset_sectors().map(|o| {
                    let b = (at as i64 + o * 512) as usize;
                    BitmapSuper::parse(&raw[b..b + 256]).unwrap()
                });
                return (sb, bm);
            }
        }
    }
    panic!("no v1 superblock on {}", img.display());
}

/// Make `disks` images of `size` with real mdadm (`mdadm_opts`) and with
/// mdfuse (the same options), and compare every layout field the kernel
/// leaves as mdadm wrote it.
fn same_layout(size: &str, disks: usize, mdadm_opts: &[&str]) {
    let disks_s = disks.to_string();
    let Some((_keep, theirs)) = realmd_create(&["--disks", &disks_s, "--size", size], mdadm_opts)
    else {
        return skip("realmd oracle or qemu not available");
    };
    let dir = tempdir();
    let names: Vec<String> = (0..disks).map(|i| format!("d{i}.img")).collect();
    let mut args: Vec<String> = vec![
        "create".into(),
        "--homehost=realmd".into(),
        format!("--image-size={size}"),
    ];
    args.extend(mdadm_opts.iter().map(|s| s.to_string()));
    if !mdadm_opts
        .iter()
        .any(|o| o.starts_with("--raid-devices") || o.starts_with("-n"))
    {
        args.push(format!("--raid-devices={disks}"));
    }
    if !mdadm_opts.iter().any(|o| o.starts_with("--level")) {
        args.push("--level=1".into());
    }
    if !mdadm_opts.iter().any(|o| o.starts_with("--bitmap=")) {
        // mdadm 4.2 without --bitmap (and no prompt) creates none.
        args.push("--bitmap=none".into());
    }
    args.extend(names.iter().cloned());
    let (_, err, rc) = run(mdfuse().current_dir(dir.path()).args(&args));
    assert_eq!(rc, 0, "mdfuse {args:?}: {err}");
    for n in &names {
        let (a, abm) = layout(&theirs.join(n));
        let (b, bbm) = layout(&dir.path().join(n));
        let ctx = format!("{size} {mdadm_opts:?} {n}");
        assert_eq!(b.super_offset, a.super_offset, "super_offset {ctx}");
        assert_eq!(b.data_offset, a.data_offset, "data_offset {ctx}");
        assert_eq!(b.data_size, a.data_size, "data_size {ctx}");
        // A running RAID10 writes back the component size it uses
        // (raid10.c's calc_sectors: whole chunks, and with far copies a
        // multiple of them); mdadm wrote what this create writes.
        let size = if b.level == 10 {
            raid10_used_sectors(b.size, b.chunksize, b.layout, b.raid_disks)
        } else {
            b.size
        };
        assert_eq!(size, a.size, "size {ctx}");
        assert_eq!(b.max_dev, a.max_dev, "max_dev {ctx}");
        assert_eq!(b.level, a.level, "level {ctx}");
        assert_eq!(b.layout, a.layout, "layout {ctx}");
        assert_eq!(b.chunksize, a.chunksize, "chunksize {ctx}");
        assert_eq!(
            b.feature_map & feature::RAID0_LAYOUT,
            a.feature_map & feature::RAID0_LAYOUT,
            "raid0 layout feature {ctx}"
        );
        assert_eq!(b.raid_disks, a.raid_disks, "raid_disks {ctx}");
        assert_eq!(b.dev_number, a.dev_number, "dev_number {ctx}");
        assert_eq!(b.own_role(), a.own_role(), "role {ctx}");
        assert_eq!(b.devflags, a.devflags, "devflags {ctx}");
        assert_eq!(b.name(), a.name(), "set_name {ctx}");
        assert_eq!(
            b.feature_map & feature::BITMAP_OFFSET,
            a.feature_map & feature::BITMAP_OFFSET,
            "bitmap present {ctx}"
        );
        assert_eq!(b.bitmap_offset, a.bitmap_offset, "bitmap_offset {ctx}");
        assert_eq!(b.bblog_offset, a.bblog_offset, "bblog_offset {ctx}");
        assert_eq!(b.bblog_size, a.bblog_size, "bblog_size {ctx}");
        assert_eq!(b.bblog_shift, a.bblog_shift, "bblog_shift {ctx}");
        match (abm, bbm) {
            (Some(x), Some(y)) => {
                assert_eq!(y.chunksize, x.chunksize, "bitmap chunk {ctx}");
                // The running RAID10's bitmap covers the array it uses.
                let sync_size = if b.level == 10 {
                    let copies = u64::from(b.layout & 255) * u64::from((b.layout >> 8) & 255);
                    size * u64::from(b.raid_disks) / copies
                } else {
                    y.sync_size
                };
                assert_eq!(sync_size, x.sync_size, "bitmap sync_size {ctx}");
                assert_eq!(y.daemon_sleep, x.daemon_sleep, "daemon_sleep {ctx}");
                assert_eq!(y.version, x.version, "bitmap version {ctx}");
                assert_eq!(y.write_behind, x.write_behind, "write_behind {ctx}");
            }
            (None, None) => {}
            (x, y) => panic!("bitmap mismatch {ctx}: mdadm {x:?}, mdfuse {y:?}"),
        }
    }
}

/// raid10.c's `calc_sectors`: sectors of each member a RAID10 uses.
fn raid10_used_sectors(size: u64, chunk: u32, layout: u32, raid_disks: u32) -> u64 {
    let (near, far) = (u64::from(layout & 255), u64::from((layout >> 8) & 255));
    let disks = u64::from(raid_disks);
    let chunk = u64::from(chunk);
    let array_chunks = size / chunk / far * disks / near;
    (array_chunks * near * far).div_ceil(disks) * chunk
}

#[test]
fn layout_matches_mdadm_16m_v12_bitmap() {
    same_layout("16M", 2, &["--metadata=1.2", "--bitmap=internal"]);
}

#[test]
fn layout_matches_mdadm_16m_v10_bitmap_spare() {
    same_layout(
        "16M",
        3,
        &[
            "--metadata=1.0",
            "--bitmap=internal",
            "--raid-devices=2",
            "--spare-devices=1",
        ],
    );
}

#[test]
fn layout_matches_mdadm_16m_v11_nobitmap() {
    same_layout("16M", 2, &["--metadata=1.1"]);
}

#[test]
fn layout_matches_mdadm_200m_v10_bitmap() {
    same_layout("200M", 2, &["--metadata=1.0", "--bitmap=internal"]);
}

#[test]
fn layout_matches_mdadm_200m_v12_chunk_and_size() {
    same_layout(
        "200M",
        2,
        &[
            "--metadata=1.2",
            "--bitmap=internal",
            "--bitmap-chunk=8M",
            "--size=150M",
        ],
    );
}

#[test]
fn layout_matches_mdadm_1g_v12_bitmap() {
    same_layout("1G", 2, &["--metadata=1.2", "--bitmap=internal"]);
}

#[test]
fn layout_matches_mdadm_1g_v11_small_chunk() {
    same_layout(
        "1G",
        2,
        &["--metadata=1.1", "--bitmap=internal", "--bitmap-chunk=128K"],
    );
}

#[test]
fn layout_matches_mdadm_raid0_v12() {
    same_layout("16M", 3, &["--level=0", "--chunk=64", "--metadata=1.2"]);
}

#[test]
fn layout_matches_mdadm_raid0_v10_default_chunk() {
    same_layout("64M", 2, &["--level=0", "--metadata=1.0"]);
}

#[test]
fn layout_matches_mdadm_linear_v11() {
    same_layout("16M", 2, &["--level=linear", "--metadata=1.1"]);
}

#[test]
fn layout_matches_mdadm_raid10_n2_bitmap() {
    same_layout(
        "16M",
        4,
        &[
            "--level=10",
            "--layout=n2",
            "--chunk=64",
            "--bitmap=internal",
        ],
    );
}

#[test]
fn layout_matches_mdadm_raid10_f2_v10_bitmap() {
    same_layout(
        "200M",
        4,
        &[
            "--level=10",
            "--layout=f2",
            "--metadata=1.0",
            "--bitmap=internal",
        ],
    );
}

#[test]
fn layout_matches_mdadm_raid10_o2_v11_3_members() {
    same_layout("16M", 3, &["--level=10", "--layout=o2", "--metadata=1.1"]);
}

#[test]
fn layout_matches_mdadm_raid10_n3_bitmap_1g() {
    same_layout("1G", 3, &["--level=10", "--layout=n3", "--bitmap=internal"]);
}
