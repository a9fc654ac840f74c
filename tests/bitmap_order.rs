//! The write-intent bitmap protocol, watched at the legs: before a write
//! reaches any leg, the bit for its chunk is written to every leg and
//! flushed there (`bitmap_startwrite` + `bitmap_unplug`), even when one
//! leg's bitmap write is slow; a write into a chunk whose bit is already
//! set does no bitmap I/O at all.
//!
//! Runs the md core directly (no FUSE) on real md's raid1-v1.2-bitmap
//! fixture (zstd unpacks it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mdfuse::disk::{FaultOp, IoEvent};
use mdfuse::md::{Md, MdOptions, Mddev};
use mdfuse::sysfs::MdTree;
use parking_lot::Mutex;

/// An I/O seen at a leg, in global order; for a completed bitmap write,
/// whether chunk 0's bit is set in the file after it.
#[derive(Debug, Clone)]
struct Seen {
    leg: String,
    ev: IoEvent,
    bit0: Option<bool>,
}

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = common::fixtures_dir().join(name);
    assert!(dir.is_dir(), "no fixture {}", dir.display());
    if common::missing(&["zstd"]) {
        return None;
    }
    Some(dir)
}

/// Unpack the fixture's legs as vda, vdb in `dir`.
fn unpack(fixture: &Path, dir: &Path) -> Vec<PathBuf> {
    ["vda", "vdb"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let out = dir.join(n);
            let st = Command::new("zstd")
                .args(["-q", "-d", "-f"])
                .arg(fixture.join(format!("d{i}.img.zst")))
                .arg("-o")
                .arg(&out)
                .status()
                .expect("zstd");
            assert!(st.success());
            out
        })
        .collect()
}

struct Array {
    md: Arc<Md>,
    _tree: Arc<MdTree>,
    mddev: Arc<Mddev>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Array {
    fn start(legs: &[PathBuf]) -> Array {
        let md = Md::new(MdOptions::default());
        mdfuse::register_personalities(&md);
        let tree = MdTree::new(md.clone(), 0, 0);
        let t = &tree.tree;
        t.write_attr("new_array", "md0").unwrap();
        for l in legs {
            t.write_attr("md0/md/new_dev", l.to_str().unwrap()).unwrap();
        }
        t.write_attr("md0/md/array_state", "active").unwrap();
        let mddev = md.array("md0").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for r in mddev.rdevs().iter() {
            let (seen, leg) = (seen.clone(), r.name.clone());
            let file = std::fs::File::open(r.disk.path()).unwrap();
            r.disk
                .faults()
                .set_observer(Some(Arc::new(move |ev: IoEvent| {
                    let bit0 = (ev.done && ev.op == FaultOp::Write && ev.offset == BITMAP_BYTE)
                        .then(|| {
                            use std::os::unix::fs::FileExt;
                            let mut b = [0u8; 1];
                            file.read_exact_at(&mut b, BITMAP_BYTE + 256).unwrap();
                            b[0] & 1 != 0
                        });
                    seen.lock().push(Seen {
                        leg: leg.clone(),
                        ev,
                        bit0,
                    })
                })));
        }
        Array {
            md,
            _tree: tree,
            mddev,
            seen,
        }
    }

    fn fault(&self, leg: &str, rule: &str) {
        self._tree
            .tree
            .write_attr(&format!("md0/md/dev-{leg}/fault"), rule)
            .unwrap();
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock())
    }
}

impl Drop for Array {
    fn drop(&mut self) {
        for r in self.mddev.rdevs().iter() {
            r.disk.faults().set_observer(None);
        }
        self.md.stop_all();
    }
}

/// 1.2 metadata: superblock at sector 8, bitmap 8 sectors on, data at
/// data_offset.
const BITMAP_BYTE: u64 = 16 * 512;

fn is_bitmap_write(s: &Seen) -> bool {
    s.ev.op == FaultOp::Write && s.ev.offset == BITMAP_BYTE
}

fn is_data_write(s: &Seen, data_offset: u64) -> bool {
    s.ev.op == FaultOp::Write && s.ev.offset >= data_offset * 512
}

/// Every leg had the bitmap page written durably (a durable write, or a
/// write and then a flush), completed, before the first data write was
/// issued on any leg.
fn assert_bit_durable_first(seen: &[Seen], legs: &[&str], data_offset: u64) {
    let first_data = seen
        .iter()
        .position(|s| !s.ev.done && is_data_write(s, data_offset))
        .expect("a data write");
    for leg in legs {
        let before = &seen[..first_data];
        let written = before
            .iter()
            .rposition(|s| s.leg == *leg && s.ev.done && is_bitmap_write(s))
            .unwrap_or_else(|| panic!("{leg}: bitmap not written before the data: {seen:#?}"));
        assert!(
            before[written].ev.durable
                || before[written..]
                    .iter()
                    .any(|s| s.leg == *leg && s.ev.done && s.ev.op == FaultOp::Flush),
            "{leg}: bitmap not durable before the data: {seen:#?}"
        );
    }
}

#[test]
fn bit_is_durable_on_every_leg_before_the_data() {
    let Some(fx) = fixture("raid1-v1.2-bitmap") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let legs = unpack(&fx, dir.path());
    let a = Array::start(&legs);
    let data_offset = a.mddev.rdevs()[0].data_offset();
    let names = ["vda", "vdb"];

    // The fixture is clean: the first write sets the (only) bit.  vdb's
    // bitmap page is slow to write: the data must still wait for it.
    a.fault("vdb", "delay 300 write 16-23");
    a.take();
    let t0 = Instant::now();
    a.mddev.write_data(&[0x5a; 4096], 1 << 20).unwrap();
    assert!(
        t0.elapsed().as_millis() >= 300,
        "the write did not wait for the bitmap"
    );
    let seen = a.take();
    assert_bit_durable_first(&seen, &names, data_offset);
    for leg in names {
        let data = seen
            .iter()
            .filter(|s| s.leg == leg && s.ev.done && is_data_write(s, data_offset))
            .count();
        assert_eq!(data, 1, "{leg}: data writes");
    }

    // Same for vda slow, with writers racing for the bitmap.
    a.fault("vdb", "clear");
    a.fault("vda", "delay 300 write 16-23");
    a.mddev.write_data(&[0; 4096], 0).ok();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let seen = a.take();
    // The bit is still set (the daemon clears it seconds later): no
    // bitmap I/O for this one.
    assert!(
        !seen.iter().any(is_bitmap_write),
        "bitmap written again: {seen:#?}"
    );

    // Clear the bit with three daemon passes, then race four writers to
    // set it again.
    let b = a.mddev.bitmap().expect("bitmap");
    a.fault("vda", "clear");
    a.take();
    {
        let cfg = a.mddev.cfg.lock();
        b.flush(&a.mddev, &cfg);
    }
    assert_eq!(b.dirty_chunks(), 0);
    // The write that clears the bit on a leg comes after a flush of that
    // leg: the data writes the clear bit vouches for are durable first.
    let seen = a.take();
    for leg in names {
        let cleared = seen
            .iter()
            .position(|s| s.leg == leg && s.bit0 == Some(false))
            .unwrap_or_else(|| panic!("{leg}: bit never cleared: {seen:#?}"));
        let issued = seen[..cleared]
            .iter()
            .rposition(|s| s.leg == leg && !s.ev.done && is_bitmap_write(s))
            .expect("the clearing write was issued");
        assert!(
            seen[..issued]
                .iter()
                .any(|s| s.leg == leg && s.ev.done && s.ev.op == FaultOp::Flush),
            "{leg}: bit cleared without a flush before: {seen:#?}"
        );
    }
    a.fault("vda", "delay 300 write 16-23");
    a.take();
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let m = a.mddev.clone();
            std::thread::spawn(move || m.write_data(&[i as u8; 8192], (i + 8) << 20).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seen = a.take();
    assert_bit_durable_first(&seen, &names, data_offset);
    assert_eq!(b.dirty_chunks(), 1);
}
