//! Write-behind on RAID1 (raid1.c's behind writes), in process on real
//! md's raid1-v1.2-bitmap fixture, its second leg write-mostly and slowed
//! by a delay rule on its data area: a write is answered once the other
//! leg has it; the write-mostly leg's copy lands later, holding the array
//! dirty and its bitmap bit set until then; `backlog` bounds how many are
//! behind (past it a write waits for every leg) and `max_backlog_used`
//! records the peak; overlapping writes land there in order; a read
//! served by the write-mostly leg waits for the writes behind; a failed
//! copy is recorded bad there, or fails a pulled member and leaves the
//! bit for it to be caught up; a stop drains them, and so does clearing
//! the leg's write-mostly flag.

mod common;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdfuse::md::{Md, MdOptions, Mddev};
use mdfuse::sysfs::MdTree;
use tempfile::TempDir;

/// The delay on the write-mostly leg's data area.
const SLOW: Duration = Duration::from_millis(400);
/// What a write that does not wait for the slow leg stays under.
const FAST: Duration = Duration::from_millis(200);

struct Array {
    md: Arc<Md>,
    tree: Arc<MdTree>,
    mddev: Arc<Mddev>,
    legs: Vec<PathBuf>,
    _dir: TempDir,
}

impl Array {
    /// The fixture running, d1.img write-mostly with `backlog`, its data
    /// area slowed by `SLOW`.
    fn start(backlog: u32) -> Option<Array> {
        if common::missing(&["zstd"]) {
            return None;
        }
        let (dir, legs) = common::unpack("raid1-v1.2-bitmap");
        let md = Md::new(MdOptions::default());
        mdfuse::register_personalities(&md);
        let tree = MdTree::new(md.clone(), 0, 0);
        let a = Array {
            mddev: {
                let t = &tree.tree;
                t.write_attr("new_array", "md0").unwrap();
                for l in &legs {
                    t.write_attr("md0/md/new_dev", l.to_str().unwrap()).unwrap();
                }
                t.write_attr("md0/md/array_state", "active").unwrap();
                t.write_attr("md0/md/dev-d1.img/state", "writemostly")
                    .unwrap();
                md.array("md0").unwrap()
            },
            md,
            tree,
            legs,
            _dir: dir,
        };
        a.put("md0/md/bitmap/backlog", &backlog.to_string());
        let r = a.slow_leg();
        let (off, end) = (r.data_offset(), r.disk.sectors() - 1);
        a.put(
            "md0/md/dev-d1.img/fault",
            &format!("delay {} write {off}-{end}", SLOW.as_millis()),
        );
        Some(a)
    }

    fn put(&self, path: &str, value: &str) {
        self.tree
            .tree
            .write_attr(path, value)
            .unwrap_or_else(|e| panic!("echo {value} > {path}: {e:?}"));
    }

    fn get(&self, path: &str) -> String {
        self.tree
            .tree
            .read_attr(path)
            .unwrap()
            .trim_end()
            .to_string()
    }

    fn slow_leg(&self) -> Arc<mdfuse::md::Rdev> {
        self.mddev
            .rdevs()
            .iter()
            .find(|r| r.name == "d1.img")
            .unwrap()
            .clone()
    }

    fn behind(&self) -> u64 {
        self.mddev.bitmap().unwrap().behind_writes()
    }

    /// Three bitmap daemon passes (`bitmap_flush`), then the chunks
    /// whose bit is set on disk.
    fn dirty_chunks(&self) -> u64 {
        let b = self.mddev.bitmap().unwrap();
        b.flush(&self.mddev, &self.mddev.cfg.lock());
        b.dirty_chunks()
    }

    /// `len` bytes of leg `i`'s data area at array byte `at`, read from
    /// its image file.
    fn leg_bytes(&self, i: usize, at: u64, len: usize) -> Vec<u8> {
        let off = self.mddev.rdevs()[0].data_offset() * 512;
        let f = std::fs::File::open(&self.legs[i]).unwrap();
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, off + at).unwrap();
        buf
    }

    /// Until no write is behind, at most 5 s.
    fn wait_landed(&self) {
        let t = Instant::now();
        while self.behind() > 0 {
            assert!(t.elapsed() < Duration::from_secs(5), "writes still behind");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn write(&self, byte: u8, at: u64) -> Duration {
        let t = Instant::now();
        self.mddev.write_data(&[byte; 4096], at).unwrap();
        t.elapsed()
    }
}

/// Every byte of `buf` is `byte`.
fn all(buf: &[u8], byte: u8) -> bool {
    buf.iter().all(|&b| b == byte)
}

impl Drop for Array {
    fn drop(&mut self) {
        self.md.stop_all();
    }
}

#[test]
fn a_write_is_answered_before_the_write_mostly_leg_has_it() {
    let Some(a) = Array::start(16) else { return };
    // The first write marks the array dirty and sets the chunk's bit;
    // both go to every leg and are not slowed (outside the data area).
    let took = a.write(0x11, 0);
    assert!(took < FAST, "the write waited {took:?} for the slow leg");
    assert_eq!(a.behind(), 1);
    assert_eq!(a.get("md0/md/bitmap/max_backlog_used"), "1");
    // Behind: the fast leg has it, the slow one not yet; reads are served
    // by the fast leg; the bit stays set through daemon passes, and the
    // array stays dirty past the safe-mode delay.
    assert!(all(&a.leg_bytes(0, 0, 4096), 0x11));
    assert!(!all(&a.leg_bytes(1, 0, 4096), 0x11));
    let mut buf = [0u8; 4096];
    let t = Instant::now();
    a.mddev.read_data(&mut buf, 0).unwrap();
    assert!(t.elapsed() < FAST);
    assert!(all(&buf, 0x11));
    assert_eq!(
        a.dirty_chunks(),
        1,
        "the bit was cleared under a write behind"
    );
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(a.get("md0/md/array_state"), "active");

    a.wait_landed();
    assert!(all(&a.leg_bytes(1, 0, 4096), 0x11));
    assert_eq!(a.dirty_chunks(), 0, "the bit stayed after the write landed");

    // Overlapping writes land on the slow leg in order: the second waits
    // until the first is there (raid1's wait_for_serialization).
    a.write(0x22, 8192);
    let took = a.write(0x33, 8192);
    assert!(
        took >= SLOW / 2,
        "an overlapping write did not wait ({took:?})"
    );
    a.wait_landed();
    assert!(all(&a.leg_bytes(1, 8192, 4096), 0x33));
    assert!(all(&a.leg_bytes(0, 8192, 4096), 0x33));

    // Backlog 0: no write goes behind, each waits for the slow leg.
    a.put("md0/md/bitmap/backlog", "0");
    let took = a.write(0x44, 16384);
    assert!(took >= SLOW, "a write with backlog 0 took {took:?}");
    assert_eq!(a.behind(), 0);
    assert!(all(&a.leg_bytes(1, 16384, 4096), 0x44));
}

#[test]
fn backlog_bounds_the_writes_behind() {
    let Some(a) = Array::start(2) else { return };
    a.write(0, 0);
    a.wait_landed();
    a.put("md0/md/bitmap/max_backlog_used", "0");
    let a = Arc::new(a);
    let took: Vec<Duration> = (0..6u64)
        .map(|i| {
            let a = a.clone();
            std::thread::spawn(move || a.write(i as u8 + 1, 65536 * (i + 1)))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(a.get("md0/md/bitmap/max_backlog_used"), "2", "{took:?}");
    // Past the backlog a write waits for every leg.
    assert!(took.iter().any(|t| *t >= SLOW), "{took:?}");
    a.wait_landed();
    for i in 0..6u64 {
        let want = i as u8 + 1;
        assert!(all(&a.leg_bytes(0, 65536 * (i + 1), 4096), want));
        assert!(all(&a.leg_bytes(1, 65536 * (i + 1), 4096), want));
    }
}

#[test]
fn a_read_from_the_write_mostly_leg_waits_for_writes_behind() {
    let Some(a) = Array::start(16) else { return };
    a.write(0x55, 4096);
    assert_eq!(a.behind(), 1);
    // Only the write-mostly leg is left to read from: it must not answer
    // with the bytes from before the write.
    a.put("md0/md/dev-d0.img/state", "faulty");
    assert_eq!(a.get("md0/md/degraded"), "1");
    let mut buf = [0u8; 4096];
    a.mddev.read_data(&mut buf, 4096).unwrap();
    assert!(all(&buf, 0x55), "read older data than a completed write");
    assert_eq!(a.behind(), 0);
}

#[test]
fn a_write_behind_that_fails_is_recorded_bad_there() {
    let Some(a) = Array::start(16) else { return };
    let r = a.slow_leg();
    let (off, end) = (r.data_offset(), r.disk.sectors() - 1);
    a.put("md0/md/dev-d1.img/fault", "clear");
    a.put(
        "md0/md/dev-d1.img/fault",
        &format!("write-error {off}-{end}"),
    );
    let took = a.write(0x66, 0);
    assert!(took < FAST, "{took:?}");
    a.wait_landed();
    // As md narrows a failed write: the blocks that fail are recorded bad
    // on the leg, which stays; they are never read there.
    let state = a.get("md0/md/dev-d1.img/state");
    assert!(state.contains("write_error"), "state {state}");
    let bad = a.get("md0/md/dev-d1.img/bad_blocks");
    assert!(bad.starts_with(&format!("{off} ")), "bad_blocks {bad}");
    let mut buf = [0u8; 4096];
    a.mddev.read_data(&mut buf, 0).unwrap();
    assert!(all(&buf, 0x66));
    // With the other leg gone nothing holds the write: an error, not the
    // bytes from before it.
    a.put("md0/md/dev-d0.img/state", "faulty");
    assert!(a.mddev.read_data(&mut buf, 0).is_err());
}

#[test]
fn a_write_behind_to_a_pulled_member_fails_it_and_keeps_the_bit() {
    let Some(a) = Array::start(16) else { return };
    let off = a.slow_leg().data_offset();
    a.write(0, 0);
    a.wait_landed();
    assert_eq!(a.dirty_chunks(), 0);
    // The image loses its data area, as a pulled disk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&a.legs[1])
        .unwrap()
        .set_len(off * 512)
        .unwrap();
    let took = a.write(0x67, 0);
    assert!(took < FAST, "{took:?}");
    a.wait_landed();
    assert!(a.get("md0/md/dev-d1.img/state").contains("faulty"));
    assert_eq!(a.get("md0/md/degraded"), "1");
    assert_eq!(
        a.dirty_chunks(),
        1,
        "the bit went with the write it stands for"
    );
    let mut buf = [0u8; 4096];
    a.mddev.read_data(&mut buf, 0).unwrap();
    assert!(all(&buf, 0x67));
}

#[test]
fn stopping_drains_the_writes_behind() {
    let Some(a) = Array::start(16) else { return };
    a.write(0x77, 0);
    a.write(0x78, 65536);
    assert_eq!(a.behind(), 2);
    let t = Instant::now();
    a.put("md0/md/array_state", "inactive");
    assert!(t.elapsed() >= SLOW / 2, "the stop did not wait");
    assert!(all(&a.leg_bytes(1, 0, 4096), 0x77));
    assert!(all(&a.leg_bytes(1, 65536, 4096), 0x78));
    // Written clean: the superblocks say so, and no bit is left.
    let (out, _, rc) = common::mdfuse_run(["examine", "-X", a.legs[1].to_str().unwrap()]);
    assert_eq!(rc, 0);
    assert!(out.contains(" 0 dirty"), "{out}");
    let (out, _, _) = common::mdfuse_run(["examine", a.legs[1].to_str().unwrap()]);
    assert!(out.contains("State : clean"), "{out}");
}

#[test]
fn clearing_write_mostly_waits_for_its_writes_behind() {
    let Some(a) = Array::start(16) else { return };
    a.write(0x79, 0);
    assert_eq!(a.behind(), 1);
    // From now on reads may go to the leg without waiting: what was
    // behind must be there first.
    a.put("md0/md/dev-d1.img/state", "-writemostly");
    assert_eq!(a.behind(), 0);
    assert!(all(&a.leg_bytes(1, 0, 4096), 0x79));
    assert_eq!(a.get("md0/md/dev-d1.img/state"), "in_sync");
}
