//! `mdfuse examine` on every image real md wrote (the oracle fixtures):
//! the same values as the `mdadm --examine` reports recorded in the VM,
//! and the same text, line for line, as this host's own mdadm.

mod common;

use std::path::Path;

use common::*;

/// The fixture reports were printed in the VM, whose host name is realmd.
const VM_HOST: &str = "realmd";

/// For 0.90 device table rows, the /dev name at the end depends on the
/// host printing it.
fn strip_devname(row: &str) -> String {
    match row.find("   /dev/") {
        Some(i) => row[..i].to_string(),
        None => row.to_string(),
    }
}

fn check_against_report(fixture: &str, disk: &str, img: &Path) -> usize {
    let Some(report) = fixture_report(fixture, &format!("inspect/before.examine.{disk}.txt"))
    else {
        return 0;
    };
    let (ours, err, rc) = mdfuse_run(["examine", "--homehost", VM_HOST, img.to_str().unwrap()]);
    assert_eq!(rc, 0, "{fixture}/{disk}: exit {rc}, stderr {err}");
    assert!(err.is_empty(), "{fixture}/{disk}: stderr {err}");
    let want = examine_pairs(&report);
    let got = examine_pairs(&ours);
    let mut checked = 0;
    // Every key the report has, with its value.
    for (k, v) in want.iter().filter(|(k, _)| !k.is_empty()) {
        let ours_v = got
            .iter()
            .find(|(gk, _)| gk == k)
            .map(|(_, gv)| gv)
            .unwrap_or_else(|| panic!("{fixture}/{disk}: no '{k}' in our output:\n{ours}"));
        assert_eq!(ours_v, v, "{fixture}/{disk}: '{k}'");
        checked += 1;
    }
    // The 0.90 device table, row by row.
    let rows = |p: &[(String, String)]| -> Vec<String> {
        p.iter()
            .filter(|(k, _)| k.is_empty())
            .map(|(_, v)| strip_devname(v))
            .collect()
    };
    assert_eq!(rows(&got), rows(&want), "{fixture}/{disk}: table rows");
    checked + rows(&want).len()
}

#[test]
fn examine_matches_recorded_reports() {
    let mut keys = 0;
    for f in fixtures() {
        let (_dir, imgs) = unpack(&f);
        for (i, img) in imgs.iter().enumerate() {
            keys += check_against_report(&f, &format!("d{i}"), img);
        }
    }
    assert!(keys > 200, "only {keys} values compared");
}

#[test]
fn examine_matches_host_mdadm() {
    if !have("mdadm") {
        return skip("mdadm is not installed");
    }
    for f in fixtures() {
        let (_dir, imgs) = unpack(&f);
        for img in &imgs {
            let (want, want_err, want_rc) = mdadm_examine(img).unwrap();
            let (got, got_err, got_rc) = mdfuse_run(["examine", img.to_str().unwrap()]);
            assert_eq!(got, want, "{f}: {}", img.display());
            assert_eq!(
                got_rc, want_rc,
                "{f}: exit status; stderr {got_err} / {want_err}"
            );
        }
        // Several devices at once print one after the other.
        let mut args = vec!["examine".to_string()];
        args.extend(imgs.iter().map(|p| p.display().to_string()));
        let (got, _, rc) = mdfuse_run(&args);
        let (want, _, _) = run(std::process::Command::new("mdadm")
            .env("TZ", "UTC")
            .arg("--examine")
            .args(&imgs));
        assert_eq!(rc, 0);
        assert_eq!(got, want, "{f}: all devices");
    }
}

#[test]
fn examine_bitmap_matches_recorded_reports() {
    let mut seen = 0;
    for f in fixtures() {
        let (_dir, imgs) = unpack(&f);
        for (i, img) in imgs.iter().enumerate() {
            let Some(report) =
                fixture_report(&f, &format!("inspect/before.examine-bitmap.d{i}.txt"))
            else {
                continue;
            };
            let (got, err, rc) = mdfuse_run(["examine", "-X", img.to_str().unwrap()]);
            assert_eq!(rc, 0, "{f}/d{i}: {err}");
            // The report names the VM's device; the rest is identical.
            let want: Vec<&str> = report.lines().skip(1).collect();
            let got_lines: Vec<&str> = got.lines().collect();
            assert_eq!(
                got_lines[0],
                format!("        Filename : {}", img.display()),
                "{f}/d{i}"
            );
            assert_eq!(&got_lines[1..], &want[..], "{f}/d{i}");
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} bitmap reports compared");
}

#[test]
fn examine_bitmap_matches_host_mdadm() {
    if !have("mdadm") || !have("losetup") {
        return skip("mdadm or losetup is missing");
    }
    for f in fixtures() {
        let (_dir, imgs) = unpack(&f);
        for img in &imgs {
            let Some((want, want_err, want_rc)) = mdadm_examine_bitmap(img) else {
                return skip("no loop device available");
            };
            let (got, got_err, got_rc) = mdfuse_run(["examine", "-X", img.to_str().unwrap()]);
            assert_eq!(got, want, "{f}: {}", img.display());
            assert_eq!(got_rc, want_rc, "{f}: {}", img.display());
            assert_eq!(
                got_err,
                want_err.replace("mdadm: ", "mdfuse: "),
                "{f}: {}",
                img.display()
            );
        }
    }
}

#[test]
fn examine_json_is_json_with_the_same_facts() {
    if !have("python3") {
        return skip("python3 is not installed");
    }
    let (_dir, imgs) = unpack("raid1-v1.2-bitmap");
    let (out, err, rc) = mdfuse_run([
        "examine",
        "--json",
        imgs[0].to_str().unwrap(),
        imgs[1].to_str().unwrap(),
    ]);
    assert_eq!(rc, 0, "{err}");
    let check = "import json,sys; a=json.load(sys.stdin); \
        assert len(a)==2; d=a[0]; \
        assert d['metadata']=='1.2' and d['data_offset']==2048 and d['super_offset']==8; \
        assert d['raid_level']=='raid1' and d['raid_devices']==2 and d['device_role']==0; \
        assert d['internal_bitmap_offset']==8 and d['checksum_correct'] and d['kernel_accepts']; \
        assert d['array_state']=='AA' and d['unused_space']=={'before':1968,'after':0}";
    let mut c = std::process::Command::new("python3");
    c.args(["-c", check]).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(out.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "json check failed on:\n{out}"
    );

    let (out, _, rc) = mdfuse_run(["examine", "-X", "--json", imgs[0].to_str().unwrap()]);
    assert_eq!(rc, 0);
    assert!(out.contains("\"chunksize\": 67108864"), "{out}");
}

/// The reshape lines (position, delta devices, new level and layout) for
/// both superblock families, against the host's mdadm: real images with
/// a reshape in progress written into their superblocks.  A growing and a
/// shrinking RAID1 that changes level, and a RAID10 changing layout.
#[test]
fn examine_reshape_matches_host_mdadm() {
    use mdfuse::format::super0::{self, SB0_BYTES, Superblock0};
    use mdfuse::format::super1::{Superblock1, feature};
    if !have("mdadm") {
        return skip("mdadm is not installed");
    }
    // (level, layout, new_level, new_layout, delta_disks)
    let cases: [(i32, u32, u32, u32, i32); 3] =
        [(1, 0, 1, 0, 1), (1, 0, 5, 2, -1), (10, 0x102, 10, 0x201, 0)];
    let dir = tempdir();
    let mut compared = 0;
    for fixture in ["raid1-v1.2-bitmap", "raid1-v0.90"] {
        let (_unpacked, imgs) = unpack(fixture);
        let raw = std::fs::read(&imgs[0]).unwrap();
        for (i, &(level, layout, new_level, new_layout, delta)) in cases.iter().enumerate() {
            // The same fields in either version's struct, checksum after.
            macro_rules! set_reshape {
                ($sb:ident) => {
                    $sb.level = level;
                    $sb.layout = layout;
                    $sb.new_level = new_level;
                    $sb.new_layout = new_layout;
                    $sb.delta_disks = delta as u32;
                    $sb.reshape_position = 2048;
                    $sb.update_csum();
                };
            }
            let mut img = raw.clone();
            if fixture.contains("0.90") {
                let at = super0::sb_start(img.len() as u64 / 512).unwrap() as usize * 512;
                let mut sb = Superblock0::parse(&img[at..at + SB0_BYTES]).unwrap();
                sb.minor_version = 91;
                sb.new_chunk = sb.chunk_size;
                set_reshape!(sb);
                img[at..at + SB0_BYTES].copy_from_slice(&sb.to_bytes());
            } else {
                let at = 4096;
                let len = Superblock1::len_for(u32::from_le_bytes(
                    img[at + 220..at + 224].try_into().unwrap(),
                ));
                let mut sb = Superblock1::parse(&img[at..at + len]).unwrap();
                sb.feature_map |= feature::RESHAPE_ACTIVE;
                sb.new_chunk = sb.chunksize;
                set_reshape!(sb);
                img[at..at + len].copy_from_slice(&sb.to_bytes());
            }
            let path = dir.path().join(format!("{fixture}-{i}.img"));
            std::fs::write(&path, &img).unwrap();
            let (want, want_err, _) = mdadm_examine(&path).unwrap();
            assert!(want.contains("Reshape pos'n : 1024"), "{want}{want_err}");
            assert_eq!(want.contains("Delta Devices"), delta != 0, "{want}");
            assert_eq!(
                want.contains("New Level"),
                new_level != level as u32,
                "{want}"
            );
            assert_eq!(
                want.contains("New Layout"),
                new_layout != layout && level == 10,
                "{want}"
            );
            let (got, got_err, _) = mdfuse_run(["examine", path.to_str().unwrap()]);
            assert_eq!(got, want, "{fixture} case {i}; stderr {got_err}");
            compared += 1;
        }
    }
    assert_eq!(compared, 6);
}
