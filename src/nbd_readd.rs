//! Members on NBD exports come back by themselves: what `mdadm
//! --incremental` does when a disk reappears, done by the daemon for
//! exports.  A member failed because its export went away (dead server,
//! dropped link, a request past its deadline) is tried again with bounded
//! back-off; once the export answers with the same superblock (same array,
//! same device), the member is removed and added again through the same
//! entry points the tree's `state` and `new_dev` use, so md takes it back
//! in its slot and catches it up from the bitmap alone.  `nbd_auto_readd`
//! in `dev-NAME/` turns it off per member.  md knows nothing of this: to
//! md it is a user writing `remove` and then `new_dev`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::disk::{Disk, NbdClient};
use crate::format::{AnySuper, Probe};
use crate::md::flags::mddev as mf;
use crate::md::rdev::SbImage;
use crate::md::{Md, Mddev, Rdev};
use crate::sysfs::rdev::{RdevCtx, state_store};

/// The first retry comes after this; each failure doubles it.
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The back-off's bound.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(100);

struct Backoff {
    next: Instant,
    delay: Duration,
    attempts: u32,
}

/// The re-add thread of a mount.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Watcher {
    pub fn start(md: Arc<Md>) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nbd-readd".into())
            .spawn(move || run(&md, &s))?;
        Ok(Watcher {
            stop,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Stop trying (before the arrays stop) and wait for the thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(md: &Arc<Md>, stop: &AtomicBool) {
    let mut backoff: HashMap<usize, Backoff> = HashMap::new();
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        let mut seen = Vec::new();
        for m in md.arrays() {
            if !m.is_running() || !m.is_rdwr() {
                continue;
            }
            for r in m.rdevs().iter() {
                let Some(c) = r.disk.nbd() else { continue };
                if !r.faulty() || !c.is_dead() || !c.auto_readd() {
                    c.set_reconnecting(false);
                    continue;
                }
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let key = Arc::as_ptr(r) as usize;
                seen.push(key);
                let b = backoff.entry(key).or_insert_with(|| Backoff {
                    next: Instant::now() + FIRST_DELAY,
                    delay: FIRST_DELAY,
                    attempts: 0,
                });
                c.set_reconnecting(true);
                if Instant::now() < b.next {
                    continue;
                }
                b.attempts += 1;
                match try_readd(&m, r, c) {
                    Ok(()) => {
                        backoff.remove(&key);
                    }
                    Err(why) => {
                        if b.attempts == 1 {
                            log::info!("{}: {}: cannot re-add yet: {why}", m.name, c.uri().text);
                        }
                        c.note_error(why);
                        b.delay = (b.delay * 2).min(MAX_DELAY);
                        b.next = Instant::now() + b.delay;
                    }
                }
            }
        }
        backoff.retain(|k, _| seen.contains(k));
    }
}

/// Reach the export again; if it holds this member's superblock, remove
/// the failed member and add it back.  Not into an array that has failed
/// (md's `MD_BROKEN`: more members lost than its level survives): md
/// could only bind the member as a spare, whose superblock, written as a
/// spare's, would lose the role that `assemble --force` needs to bring
/// the array back, as mdadm warns ("has failed so using --add cannot
/// work and might destroy data").
fn try_readd(m: &Arc<Mddev>, r: &Arc<Rdev>, c: &NbdClient) -> Result<(), String> {
    if m.flags.test(mf::BROKEN) {
        return Err(
            "the array has failed: adding the member back would make it a spare \
                    (stop the array and assemble it again)"
                .into(),
        );
    }
    let uri = c.uri().text.clone();
    let version = m
        .cfg
        .lock()
        .metadata
        .ok_or_else(|| "the array has no metadata version".to_owned())?;
    {
        // A server that accepts and then says nothing holds this thread
        // no longer than the member's own deadline.
        let disk = Disk::open_nbd_timeout(&uri, false, c.timeout_ms()).map_err(|e| match e {
            crate::disk::DiskError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        })?;
        let found = match crate::format::probe(&disk, version) {
            Probe::Found(sb) => sb,
            Probe::Absent => return Err("the export holds no md superblock".into()),
            Probe::Invalid(e) => return Err(format!("the export's superblock: {e}")),
            Probe::Io(e) => return Err(format!("reading the superblock: {e}")),
        };
        let sb = r.sb.lock();
        let same = match (&sb.image, &found) {
            (Some(SbImage::V1(_, a)), AnySuper::V1(_, b)) => {
                a.set_uuid == b.set_uuid
                    && a.device_uuid == b.device_uuid
                    && a.dev_number == b.dev_number
            }
            (Some(SbImage::V090(a)), AnySuper::V090(b)) => {
                a.uuid() == b.uuid() && a.this_disk.number == b.this_disk.number
            }
            _ => false,
        };
        if !same {
            return Err("the export holds another member's superblock".into());
        }
    }
    let ctx = RdevCtx {
        mddev: m.clone(),
        rdev: r.clone(),
    };
    state_store(&ctx, "remove").map_err(|e| format!("remove: {e:?}"))?;
    let timeout = c.timeout_ms();
    let auto = c.auto_readd();
    m.log().info(format!(
        "md: {}: {uri} is back: adding {} again",
        m.name, r.name
    ));
    match m.new_dev(&uri) {
        Ok(new) => {
            if let Some(nc) = new.disk.nbd() {
                nc.set_timeout_ms(timeout);
                nc.set_auto_readd(auto);
            }
            Ok(())
        }
        Err(e) => {
            // The member is gone from the array now; the user adds it.
            m.log()
                .warn(format!("md: {}: adding {uri} again failed: {e:?}", m.name));
            Ok(())
        }
    }
}
