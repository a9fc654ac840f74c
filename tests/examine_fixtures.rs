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
