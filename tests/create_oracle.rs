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
use mdfuse::format::super0::{self, Superblock0};
use mdfuse::format::super1::{MD_SB_MAGIC, Superblock1, feature};

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

/// A parity array mdfuse made, as real md first finds it (`assembled`:
/// its mdstat flags and `resync_start`) and once its first sync or
/// rebuild is done (`synced`), with a check finding nothing.
fn assemble_parity(args: &[&str], images: &[&str], assembled: &str, synced: &str, resync: &str) {
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
        has_word(&s["assembled_mdstat"], assembled),
        "want {assembled}: {ctx}"
    );
    assert_eq!(s["assembled_resync_start"], resync, "{ctx}");
    assert!(
        has_word(&s["synced_mdstat"], synced),
        "want {synced}: {ctx}"
    );
    assert_eq!(s["check_ran"], "yes", "{ctx}");
    assert_eq!(s["mismatch_cnt"], "0", "{ctx}");
    assert_eq!(s["stop_rc"], "0", "{ctx}");
}

#[test]
fn real_md_rebuilds_a_new_raid5_last_member() {
    // The last member is a spare that md rebuilds: no parity resync.
    assemble_parity(
        &["-l5", "-n3", "a", "b", "c"],
        &["a", "b", "c"],
        "[UU_]",
        "[UUU]",
        "none",
    );
}

#[test]
fn real_md_rebuilds_a_new_raid4_with_a_spare() {
    assemble_parity(
        &[
            "-l4",
            "-n3",
            "-x1",
            "-c64",
            "--bitmap=none",
            "-e1.1",
            "a",
            "b",
            "c",
            "s",
        ],
        &["a", "b", "c", "s"],
        "[UU_]",
        "[UUU]",
        "none",
    );
}

#[test]
fn real_md_resyncs_a_new_raid6() {
    assemble_parity(
        &["-l6", "-n4", "-c64", "-e1.0", "a", "b", "c", "d"],
        &["a", "b", "c", "d"],
        "[UUUU]",
        "[UUUU]",
        "0",
    );
}

#[test]
fn real_md_rebuilds_a_new_raid6_missing_one() {
    assemble_parity(
        &["-l6", "-n5", "-prs", "a", "missing", "c", "d", "e"],
        &["a", "c", "d", "e"],
        "[U_UU_]",
        // md rebuilds the spare into the lowest empty slot.
        "[UUUU_]",
        "none",
    );
}

#[test]
fn real_md_rebuilds_a_new_v090_raid5() {
    assemble_parity(
        &["-l5", "-n3", "-e0.90", "a", "b", "c"],
        &["a", "b", "c"],
        "[UU_]",
        "[UUU]",
        "none",
    );
}

#[test]
fn real_md_resyncs_a_new_v090_mirror_with_bitmap_and_spare() {
    assemble(
        &["-l1", "-n2", "-x1", "-e0.90", "a", "b", "s"],
        &["a", "b", "s"],
        "[UU]",
    );
}

#[test]
fn real_md_takes_a_clean_raid5() {
    assemble_parity(
        &[
            "-l5",
            "-n3",
            "-pla",
            "--assume-clean",
            "-e1.1",
            "a",
            "b",
            "c",
        ],
        &["a", "b", "c"],
        "[UUU]",
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

// ---- byte for byte what real mdadm writes ----

/// One array made by real mdadm and by mdfuse: the size of its images, its
/// members in order (image names, or `missing`) and the options both get.
struct Case {
    size: &'static str,
    members: &'static [&'static str],
    opts: &'static [&'static str],
}

/// Make every case with real mdadm, in one VM, and with mdfuse, then
/// compare the images.  In the VM no personality can be loaded (the
/// preloaded ones are removed and the kernel's modprobe path points
/// nowhere), so mdadm's RUN_ARRAY fails after it has written every
/// superblock and bitmap, and the images hold exactly what mdadm wrote,
/// before any kernel update.  Case N is /dev/mdN on both sides (so named
/// "N"), with the same array UUID and homehost; only the device UUIDs
/// and the times may differ, and nothing else in the images.
fn same_bytes_as_mdadm(cases: &[Case]) {
    let Some(realmd) = realmd() else {
        return skip("realmd oracle or qemu not available");
    };
    let theirs = tempdir();
    let ours = tempdir();
    let mut attached: Vec<PathBuf> = Vec::new();
    let mut script = String::from(
        "rmmod raid10 raid1 raid0 linear\n\
         echo /nonexistent >/proc/sys/kernel/modprobe\n",
    );
    for (n, c) in cases.iter().enumerate() {
        let uuid = format!("{n:08x}:5eed0000:0000c0de:0000{n:04x}");
        let common = [format!("--uuid={uuid}"), "--homehost=realmd".to_string()];
        let mut devs = Vec::new();
        for m in c.members.iter().filter(|m| **m != "missing") {
            let name = format!("c{n}-{m}.img");
            let bytes = parse_bytes(c.size);
            sparse_file(&theirs.path().join(&name), bytes);
            attached.push(theirs.path().join(&name));
            devs.push((m, attached.len() - 1));
        }
        let members: Vec<String> = c
            .members
            .iter()
            .map(|m| match devs.iter().find(|(d, _)| *d == m) {
                Some((_, i)) => format!("$D{i}"),
                None => "missing".to_string(),
            })
            .collect();
        script += &format!(
            "mdadm --create /dev/md{n} --run {} {} {} >$OUT/c{n}.txt 2>&1\n\
             echo \"exit $?\" >>$OUT/c{n}.txt\n",
            common.join(" "),
            c.opts.join(" "),
            members.join(" ")
        );
        let mut args: Vec<String> = vec![
            "create".into(),
            format!("/dev/md{n}"),
            format!("--image-size={}", c.size),
        ];
        args.extend(common.iter().cloned());
        args.extend(c.opts.iter().map(|s| s.to_string()));
        if !c.opts.iter().any(|o| o.starts_with("--bitmap=")) {
            // mdadm 4.2 without --bitmap (and no prompt) creates none.
            args.push("--bitmap=none".into());
        }
        args.extend(c.members.iter().map(|m| match *m {
            "missing" => "missing".to_string(),
            m => format!("c{n}-{m}.img"),
        }));
        let (_, err, rc) = run(mdfuse().current_dir(ours.path()).args(&args));
        assert_eq!(rc, 0, "mdfuse {args:?}: {err}");
    }
    assert!(attached.len() <= 24, "too many disks for one VM");
    let out = tempdir();
    let o = output(
        std::process::Command::new(&realmd)
            .args(["shell-script", "--in-place", "--out"])
            .arg(out.path())
            .args(&attached)
            .args(["-c", &script]),
    );
    assert!(
        o.status.success(),
        "realmd shell-script failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for (n, c) in cases.iter().enumerate() {
        let said = fs::read_to_string(out.path().join(format!("c{n}.txt"))).unwrap();
        // mdadm wrote everything and only the start failed.
        assert!(
            said.contains("RUN_ARRAY failed") && said.ends_with("exit 1\n"),
            "mdadm {:?} {:?}: {said}",
            c.opts,
            c.members
        );
        for m in c.members.iter().filter(|m| **m != "missing") {
            let name = format!("c{n}-{m}.img");
            let ctx = format!("{} {:?} {:?} {name}", c.size, c.opts, c.members);
            same_image(&theirs.path().join(&name), &ours.path().join(&name), &ctx);
        }
    }
}

/// The 0.90 superblock of an image, and where it is (bytes), if it has
/// one.
fn super0_of(img: &Path) -> Option<(usize, Superblock0)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(img).unwrap();
    let sectors = f.metadata().unwrap().len() / 512;
    let at = super0::sb_start(sectors)? * 512;
    let mut buf = vec![0u8; super0::SB0_BYTES];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut buf).ok()?;
    let sb = Superblock0::parse(&buf).ok()?;
    (sb.md_magic == MD_SB_MAGIC && sb.major_version == 0).then_some((at as usize, sb))
}

/// `--image-size`'s sizes here: a number of MiB or GiB.
fn parse_bytes(s: &str) -> u64 {
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().unwrap();
    match unit {
        "M" => n << 20,
        "G" => n << 30,
        _ => panic!("size {s}"),
    }
}

/// Our image equals mdadm's once the superblock carries mdadm's device
/// UUID and times (and so its checksum); for 0.90 also the device numbers
/// of the members (mdadm's are the VM's virtio disks, ours image files).
fn same_image(theirs: &Path, ours: &Path, ctx: &str) {
    use std::io::Read;
    let (sb_at, sb_bytes) = match super0_of(theirs) {
        Some((at, sa)) => {
            let (at_b, mut sb) = super0_of(ours).unwrap_or_else(|| panic!("no 0.90 sb: {ctx}"));
            assert_eq!(at_b, at, "0.90 superblock place {ctx}");
            assert!(sa.csum_ok() && sb.csum_ok(), "checksums {ctx}");
            sb.ctime = sa.ctime;
            sb.utime = sa.utime;
            for (d, their) in sb.disks.iter_mut().zip(sa.disks.iter()) {
                (d.major, d.minor) = (their.major, their.minor);
            }
            (sb.this_disk.major, sb.this_disk.minor) = (sa.this_disk.major, sa.this_disk.minor);
            sb.update_csum();
            assert_eq!(sb, sa, "superblock {ctx}");
            (at, sb.to_bytes())
        }
        None => {
            let (sa, _) = layout(theirs);
            let (mut sb, _) = layout(ours);
            assert_eq!(sb.super_offset, sa.super_offset, "super_offset {ctx}");
            assert!(sa.csum_ok() && sb.csum_ok(), "checksums {ctx}");
            sb.device_uuid = sa.device_uuid;
            sb.ctime = sa.ctime;
            sb.utime = sa.utime;
            sb.update_csum();
            assert_eq!(sb, sa, "superblock {ctx}");
            (sb.super_offset as usize * 512, sb.to_sector_bytes())
        }
    };
    let (mut fa, mut fb) = (
        fs::File::open(theirs).unwrap(),
        fs::File::open(ours).unwrap(),
    );
    assert_eq!(
        fa.metadata().unwrap().len(),
        fb.metadata().unwrap().len(),
        "image size {ctx}"
    );
    const STEP: usize = 1 << 20;
    let (mut a, mut b) = (vec![0u8; STEP], vec![0u8; STEP]);
    let mut at = 0usize;
    loop {
        let n = fa.read(&mut a).unwrap();
        if n == 0 {
            break;
        }
        fb.read_exact(&mut b[..n]).unwrap();
        // Our superblock, normalised, where it lies in this step.
        for (i, byte) in sb_bytes.iter().enumerate() {
            if (at..at + n).contains(&(sb_at + i)) {
                b[sb_at + i - at] = *byte;
            }
        }
        if let Some(i) = a[..n].iter().zip(&b[..n]).position(|(x, y)| x != y) {
            panic!(
                "{ctx}: images differ first at byte {} (sector {}): mdadm {:#04x}, mdfuse {:#04x}",
                at + i,
                (at + i) / 512,
                a[i],
                b[i]
            );
        }
        at += n;
    }
}

#[test]
fn raid5_and_raid4_bytes_match_mdadm() {
    same_bytes_as_mdadm(&[
        // Left-symmetric by default; the last member becomes a spare
        // to be rebuilt.
        Case {
            size: "16M",
            members: &["a", "b", "c"],
            opts: &["--level=5", "--raid-devices=3"],
        },
        Case {
            size: "200M",
            members: &["a", "b", "c", "d"],
            opts: &[
                "--level=5",
                "--raid-devices=4",
                "--layout=ra",
                "--metadata=1.0",
                "--bitmap=internal",
            ],
        },
        // A spare too: the moved member comes after it.
        Case {
            size: "16M",
            members: &["a", "b", "c", "s"],
            opts: &[
                "--level=raid5",
                "--raid-devices=3",
                "--spare-devices=1",
                "--layout=la",
                "--metadata=1.1",
                "--chunk=64",
                "--bitmap=internal",
            ],
        },
        // Created degraded: clean, nothing moved.
        Case {
            size: "16M",
            members: &["a", "missing", "c"],
            opts: &[
                "--level=5",
                "--raid-devices=3",
                "--layout=rs",
                "--bitmap=internal",
            ],
        },
        Case {
            size: "16M",
            members: &["a", "b", "c"],
            opts: &[
                "--level=4",
                "--raid-devices=3",
                "--chunk=128",
                "--bitmap=internal",
            ],
        },
        Case {
            size: "64M",
            members: &["a", "b"],
            opts: &["--level=5", "--raid-devices=2", "--layout=parity-first"],
        },
    ]);
}

#[test]
fn raid6_bytes_match_mdadm() {
    same_bytes_as_mdadm(&[
        // Every member present: a resync from the start.
        Case {
            size: "16M",
            members: &["a", "b", "c", "d"],
            opts: &["--level=6", "--raid-devices=4", "--bitmap=internal"],
        },
        Case {
            size: "64M",
            members: &["a", "b", "c", "d", "e"],
            opts: &[
                "--level=6",
                "--raid-devices=5",
                "--layout=left-symmetric-6",
                "--metadata=1.0",
                "--chunk=64",
            ],
        },
        // One missing: the last present member becomes a spare.
        Case {
            size: "16M",
            members: &["a", "missing", "c", "d"],
            opts: &[
                "--level=6",
                "--raid-devices=4",
                "--metadata=1.1",
                "--bitmap=internal",
            ],
        },
        // The last slot missing: the one before it moves.
        Case {
            size: "16M",
            members: &["a", "b", "c", "missing"],
            opts: &["--level=6", "--raid-devices=4", "--layout=ddf-N-restart"],
        },
        // Two missing: clean, nothing moved.
        Case {
            size: "16M",
            members: &["a", "b", "missing", "d", "missing"],
            opts: &[
                "--level=6",
                "--raid-devices=5",
                "--layout=ddf-zero-restart",
                "--bitmap=internal",
            ],
        },
    ]);
}

#[test]
fn parity_options_bytes_match_mdadm() {
    same_bytes_as_mdadm(&[
        Case {
            size: "16M",
            members: &["a", "b", "c"],
            opts: &["--level=5", "--raid-devices=3", "--assume-clean"],
        },
        // --force: nothing moved, the parity resyncs.
        Case {
            size: "16M",
            members: &["a", "b", "c"],
            opts: &[
                "--level=5",
                "--raid-devices=3",
                "--force",
                "--layout=parity-last",
                "--bitmap=internal",
            ],
        },
        Case {
            size: "16M",
            members: &["a", "b", "missing", "d"],
            opts: &["--level=6", "--raid-devices=4", "--force"],
        },
        Case {
            size: "32M",
            members: &["a", "b", "c", "s", "t"],
            opts: &[
                "--level=5",
                "--raid-devices=3",
                "--spare-devices=2",
                "--size=8M",
                "--bitmap=internal",
                "--bitmap-chunk=1M",
                "--chunk=256",
            ],
        },
        Case {
            size: "300M",
            members: &["a", "b", "c", "d"],
            opts: &[
                "--level=6",
                "--raid-devices=4",
                "--assume-clean",
                "--metadata=1.1",
                "--bitmap=internal",
            ],
        },
    ]);
}

#[test]
fn v090_bytes_match_mdadm() {
    same_bytes_as_mdadm(&[
        // The last member moved to spare, in 0.90's descriptors.
        Case {
            size: "16M",
            members: &["a", "b", "c"],
            opts: &["--level=5", "--raid-devices=3", "--metadata=0.90"],
        },
        Case {
            size: "16M",
            members: &["a", "missing", "c", "d", "s"],
            opts: &[
                "--level=6",
                "--raid-devices=4",
                "--spare-devices=1",
                "--metadata=0.90",
                "--bitmap=internal",
                "--chunk=64",
                "--layout=ra",
            ],
        },
        Case {
            size: "200M",
            members: &["a", "b", "s"],
            opts: &[
                "--level=1",
                "--raid-devices=2",
                "--spare-devices=1",
                "--metadata=0",
                "--bitmap=internal",
            ],
        },
        Case {
            size: "16M",
            members: &["a", "missing"],
            opts: &["--level=1", "--raid-devices=2", "--metadata=0.90"],
        },
        Case {
            size: "16M",
            members: &["a", "b", "c", "d"],
            opts: &[
                "--level=10",
                "--raid-devices=4",
                "--metadata=0.90",
                "--bitmap=internal",
                "--layout=f2",
            ],
        },
        Case {
            size: "16M",
            members: &["a", "b"],
            opts: &["--level=linear", "--raid-devices=2", "--metadata=0.90"],
        },
        Case {
            size: "300M",
            members: &["a", "b", "c"],
            opts: &[
                "--level=4",
                "--raid-devices=3",
                "--metadata=0.90",
                "--bitmap=internal",
                "--bitmap-chunk=4K",
                "--force",
            ],
        },
    ]);
}
