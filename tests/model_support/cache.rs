//! A member image's volatile write cache, as a disk with one has it: a
//! write that completed is durable only once a flush issued after it has
//! completed, or if it was itself durable (`RWF_DSYNC`, md's FUA).  A
//! power loss keeps any subset of the other writes, each whole or torn at
//! sector boundaries.
//!
//! The image is a file, whose page cache survives everything the test
//! does, so the cache is kept beside it: an I/O observer on the member
//! (`FaultPlan::set_observer`) logs every write with the bytes it replaced
//! (read as it is issued) and the bytes it left (read as it completes);
//! a flush drops what it made durable.  `lose` then writes back, sector by
//! sector, what a power loss might have left.
//!
//! Where the log cannot tell (a write made while no observer was set, two
//! flushes of one image in flight at once), it counts a write durable:
//! the emulation may lose less than a real disk would, never more.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use mdfuse::disk::{FaultOp, IoEvent, IoObserver};
use parking_lot::Mutex;

use super::rng::Rng;

const SECTOR: u64 = 512;

struct Entry {
    off: u64,
    len: u64,
    durable: bool,
    /// The bytes before the write (for writes that are not durable).
    old: Option<Vec<u8>>,
    /// The bytes after it, once completed.
    data: Option<Vec<u8>>,
    /// Completion order.
    done: Option<u64>,
}

#[derive(Default)]
struct State {
    file: Option<File>,
    /// Completions so far.
    seq: u64,
    /// Writes since the flush that made everything before them durable,
    /// in issue order.
    entries: Vec<Entry>,
    /// Flushes in flight: the completion count when each was issued.
    flushes: Vec<u64>,
}

impl State {
    fn read(&mut self, path: &PathBuf, off: u64, len: u64) -> Vec<u8> {
        let f = self.file.get_or_insert_with(|| {
            File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        });
        let mut buf = vec![0u8; len as usize];
        // A read past the end (never by md) leaves zeros.
        let _ = f.read_at(&mut buf, off);
        buf
    }
}

pub struct LegCache {
    path: PathBuf,
    st: Mutex<State>,
}

/// What `lose` did to one image.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loss {
    /// Sectors written back with an older value than the file held.
    pub reverted: u64,
    /// Writes that were in the cache.
    pub cached: u64,
}

impl LegCache {
    pub fn new(path: PathBuf) -> Arc<LegCache> {
        Arc::new(LegCache {
            path,
            st: Mutex::new(State::default()),
        })
    }

    /// The observer to set on the member while it is bound.
    pub fn observer(self: &Arc<Self>) -> IoObserver {
        let me = self.clone();
        Arc::new(move |ev: IoEvent| me.event(ev))
    }

    fn event(&self, ev: IoEvent) {
        let mut st = self.st.lock();
        match (ev.op, ev.done) {
            (FaultOp::Write, false) => {
                // A write not on sector boundaries is never undone.
                let aligned = ev.offset % SECTOR == 0 && ev.len % SECTOR == 0;
                let durable = ev.durable || !aligned;
                let old = (!durable).then(|| st.read(&self.path, ev.offset, ev.len));
                st.entries.push(Entry {
                    off: ev.offset,
                    len: ev.len,
                    durable,
                    old,
                    data: None,
                    done: None,
                });
            }
            (FaultOp::Write, true) => {
                let seq = st.seq;
                st.seq += 1;
                let data = st.read(&self.path, ev.offset, ev.len);
                if let Some(e) = st
                    .entries
                    .iter_mut()
                    .find(|e| e.done.is_none() && e.off == ev.offset && e.len == ev.len)
                {
                    e.data = Some(data);
                    e.done = Some(seq);
                }
            }
            (FaultOp::Flush, false) => {
                let seq = st.seq;
                st.flushes.push(seq);
            }
            (FaultOp::Flush, true) => {
                // Which of several flushes in flight completed is unknown:
                // take the latest issued, which made the most durable.
                let Some((i, &mark)) = st.flushes.iter().enumerate().max_by_key(|(_, s)| **s)
                else {
                    return;
                };
                st.flushes.swap_remove(i);
                st.entries.retain(|e| e.done.is_none_or(|d| d >= mark));
            }
            _ => {}
        }
    }

    /// Everything written so far is durable (the image was wiped, or the
    /// machine stayed up while the process died).
    pub fn forget(&self) {
        let mut st = self.st.lock();
        st.entries.clear();
        st.flushes.clear();
        st.file = None;
    }

    /// Power loss: decide which cached writes reached the medium and put
    /// the image in that state.  Call only once nothing writes the image.
    pub fn lose(&self, rng: &mut Rng) -> std::io::Result<Loss> {
        let mut st = self.st.lock();
        let entries = std::mem::take(&mut st.entries);
        st.flushes.clear();
        st.file = None;
        let mut loss = Loss::default();
        // Each sector some cached write touched, with what it will hold.
        let mut sectors: HashMap<u64, Vec<u8>> = HashMap::new();
        let file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        for e in &entries {
            let data = match &e.data {
                Some(d) => d.clone(),
                // Not seen completing: take what the file holds.
                None => {
                    let mut b = vec![0u8; e.len as usize];
                    let _ = file.read_at(&mut b, e.off);
                    b
                }
            };
            if !e.durable {
                loss.cached += 1;
            }
            let whole = rng.chance(1, 2);
            let torn = !e.durable && rng.chance(1, 8);
            for k in 0..e.len / SECTOR {
                let s = e.off / SECTOR + k;
                let bytes = (k * SECTOR) as usize..((k + 1) * SECTOR) as usize;
                if e.durable {
                    if let Some(v) = sectors.get_mut(&s) {
                        v.copy_from_slice(&data[bytes]);
                    }
                    continue;
                }
                let old = e.old.as_ref().expect("old bytes of a cached write");
                let v = sectors
                    .entry(s)
                    .or_insert_with(|| old[bytes.clone()].to_vec());
                let survives = if torn { rng.chance(1, 2) } else { whole };
                if survives {
                    v.copy_from_slice(&data[bytes]);
                }
            }
        }
        let mut keys: Vec<u64> = sectors.keys().copied().collect();
        keys.sort_unstable();
        for s in keys {
            let v = &sectors[&s];
            let mut now = vec![0u8; SECTOR as usize];
            file.read_exact_at(&mut now, s * SECTOR)?;
            if now != *v {
                loss.reverted += 1;
                file.write_all_at(v, s * SECTOR)?;
            }
        }
        file.sync_all()?;
        Ok(loss)
    }
}
