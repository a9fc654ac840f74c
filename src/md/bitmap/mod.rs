//! The internal write-intent bitmap (drivers/md/md-bitmap.c).
//!
//! Two layers, as in the kernel:
//! * the *storage*: the on-disk area (superblock + one bit per chunk) held
//!   in memory as 4 KiB pages, each with DIRTY / PENDING / NEEDWRITE
//!   attributes, written to every member that holds a slot;
//! * the *counters*: one 16-bit counter per chunk (bit 15 NEEDED, bit 14
//!   RESYNC, 14 bits of in-flight writes), grouped in pages of 2048 that
//!   count as "used" while any counter in them is non-zero (mdstat's
//!   `bitmap: used/total pages`).
//!
//! Writers call `startwrite` before data goes to any member and `unplug`
//! to make the bits they rely on durable; many concurrent writers share
//! one bitmap write (group commit on a sequence number).  `endwrite`,
//! the daemon (`daemon_work`, every `daemon_sleep`), and the sync calls
//! follow the kernel's counter protocol exactly.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::format::bitmap::{BITMAP_SB_LEN, BitmapSuper, state};
use crate::md::flags::{Bits, Flags, rdev as rf, recovery as rec, sb as sbf};
use crate::md::{Config, Errno, HZ, Mddev, Rdev};

mod unflushed;
use unflushed::Unflushed;

const PAGE: usize = 4096;
/// Counters per in-memory page (`PAGE_COUNTER_RATIO`).
const PAGE_COUNTER_RATIO: u64 = 2048;
const COUNTER_MAX: u16 = 0x3fff;
const NEEDED: u16 = 0x8000;
const RESYNC: u16 = 0x4000;
/// `KMALLOC_MAX_SIZE` of Linux x86-64 (an order-10 allocation): the most
/// one kmalloc/kcalloc gives.
const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// `sizeof(struct bitmap_page)`: the kernel's index of counter pages.
const BITMAP_PAGE_BYTES: u64 = 16;

/// Page attributes of the storage.
const PAGE_DIRTY: u8 = 1;
const PAGE_PENDING: u8 = 2;
const PAGE_NEEDWRITE: u8 = 4;

/// In-memory counters (`struct bitmap_counts`).
struct Counts {
    counters: Vec<u16>,
    /// Non-zero counters per counter page (`bp[page].count`).
    page_count: Vec<u32>,
    /// `bp[page].pending`.
    page_pending: Vec<bool>,
    /// Chunks a member may hold only in its cache (`member_leaves`).
    unflushed: Unflushed,
}

/// The on-disk image (`struct bitmap_storage`).
struct Store {
    /// `file_pages * 4096` bytes: the superblock, then the bits.
    data: Vec<u8>,
    attrs: Vec<u8>,
}

/// Group commit of bitmap writes.
#[derive(Default)]
struct Unplug {
    /// Sequence of the last bit set in memory.
    dirty_seq: u64,
    /// Every bit set up to this sequence is durable.
    flushed_seq: u64,
    busy: bool,
}

pub struct Bitmap {
    /// Sectors per chunk, as a shift.
    chunkshift: u32,
    chunks: u64,
    /// Counter pages.
    pages: u64,
    /// Bytes of superblock + bits (`store->bytes`).
    bytes: u64,
    file_pages: usize,
    counts: Mutex<Counts>,
    store: Mutex<Store>,
    unplug: Mutex<Unplug>,
    unplug_cv: Condvar,
    /// Held while pages are written to the members.  Each write sends a
    /// copy of the page taken after this is acquired, so an older copy of
    /// a page (the daemon clearing bits) never lands after a newer one
    /// (a writer setting a bit).
    page_io: Mutex<()>,
    /// Bits were cleared in the pages since the members were last
    /// flushed: the next page write flushes first.
    cleared: AtomicBool,
    /// Members that left their slot so far (`member_leaves`).
    departures: AtomicU64,
    dirty_seq: AtomicU64,
    flushed_seq: AtomicU64,
    overflow_cv: Condvar,
    /// STALE, WRITE_ERROR, HOSTENDIAN (as the on-disk state word).
    pub flags: Flags<BitmapState>,
    events_cleared: AtomicU64,
    need_sync: AtomicBool,
    allclean: AtomicBool,
    daemon_lastrun: Mutex<Instant>,
    /// `bitmap_info.daemon_sleep` in jiffies (`time_base`).
    daemon_sleep: AtomicU64,
    last_end_sync: Mutex<Instant>,
    /// `bitmap_info.max_write_behind` (`backlog`), read by every write.
    max_write_behind: AtomicU64,
    /// Writes to write-mostly members still under way after the caller
    /// was answered, and readers waiting for them to land.
    behind: Mutex<Behind>,
    /// `behind_wait`: woken when the last behind write lands.
    behind_wait: Condvar,
    behind_writes_used: AtomicU64,
}

/// `bitmap->behind_writes` and the readers in `behind_wait`.
#[derive(Default)]
struct Behind {
    writes: u64,
    waiters: u32,
}

/// The bitmap's state word (`bitmap->flags`): the on-disk state bits.
pub enum BitmapState {}

fn sb_flag(bit: u32) -> Bits<BitmapState> {
    Bits::new(u64::from(bit))
}

impl Bitmap {
    /// `md_bitmap_create` + `md_bitmap_read_sb`: read and check the bitmap
    /// superblock, size the counters.
    pub fn create(mddev: &Mddev, cfg: &mut Config) -> Result<Arc<Bitmap>, Errno> {
        // `bitmap_type` set to none (Linux 6.18's md_bitmap_create).
        if !cfg.bitmap_type_bitmap {
            return Err(Errno::EINVAL);
        }
        let log = mddev.log();
        let name = &mddev.name;
        let mut page = vec![0u8; PAGE];
        read_sb_page(
            cfg,
            cfg.bitmap_info.offset,
            0,
            &mut page[..BITMAP_SB_LEN.max(512)],
        )?;
        let sb = BitmapSuper::parse(&page).map_err(|_| Errno::EINVAL)?;
        if let Err(e) = sb.validate() {
            log.warn(format!("{name}: {e}"));
            if sb.is_llbitmap() {
                log.warn(format!(
                    "{name}: bitmap version {} is the lockless bitmap (llbitmap), which Linux 6.18 and later read; mdfuse runs only the classic bitmap (versions 3-5)",
                    sb.version
                ));
            }
            return Err(Errno::EINVAL);
        }
        let flags = Flags::default();
        if sb.uuid != cfg.uuid {
            log.warn(format!("{name}: bitmap superblock UUID mismatch"));
            return Err(Errno::EINVAL);
        }
        // A clustered bitmap (version 5) with nodes needs md-cluster,
        // which mdfuse has not: as the kernel without the module.
        if sb.version == crate::format::bitmap::BITMAP_MAJOR_CLUSTERED && sb.nodes != 0 {
            log.warn(format!(
                "{name}: bitmap version {} names a cluster of {} nodes",
                sb.version, sb.nodes
            ));
            log.warn("can't find md-cluster module or get its reference.");
            log.warn(format!(
                "{name}: Could not setup cluster service ({})",
                -libc::ENOENT
            ));
            return Err(Errno::ENOENT);
        }
        if sb.events < cfg.events {
            log.warn(format!(
                "{name}: bitmap file is out of date ({} < {}) -- forcing full recovery",
                sb.events, cfg.events
            ));
            flags.set(sb_flag(state::STALE));
        }
        flags.set(sb_flag(sb.state));
        if sb.version == crate::format::bitmap::BITMAP_MAJOR_HOSTENDIAN {
            flags.set(sb_flag(state::HOSTENDIAN));
        }
        let mut events_cleared = sb.events_cleared;
        if flags.test(sb_flag(state::STALE)) {
            events_cleared = cfg.events;
        }
        cfg.bitmap_info.chunksize = sb.chunksize as u64;
        cfg.bitmap_info.daemon_sleep = sb.daemon_sleep as u64 * HZ;
        cfg.bitmap_info.max_write_behind = sb.write_behind as u64;
        cfg.bitmap_info.nodes = 0;
        if cfg.bitmap_info.space == 0 || cfg.bitmap_info.space > sb.sectors_reserved as u64 {
            cfg.bitmap_info.space = sb.sectors_reserved as u64;
        }
        // __bitmap_resize(init): sizes from the chunk size.
        let chunkshift = sb.chunksize.trailing_zeros().saturating_sub(9);
        let blocks = mddev.sync.resync_max_sectors();
        let chunks = blocks.div_ceil(1u64 << chunkshift);
        let pages = chunks.div_ceil(PAGE_COUNTER_RATIO);
        // The kernel indexes the counter pages with one kcalloc of 16
        // bytes a page, which cannot exceed KMALLOC_MAX_SIZE: a bitmap of
        // more chunks than 2^18 pages hold (2^29; an array size or chunk
        // size no real array has) cannot be set up, ENOMEM.  The same
        // bound keeps our counters and copy of the bits in proportion.
        if pages > KMALLOC_MAX_SIZE / BITMAP_PAGE_BYTES {
            log.warn(format!(
                "{name}: bitmap of {chunks} chunks (array size {blocks} sectors, bitmap chunksize {}) cannot be allocated",
                sb.chunksize
            ));
            return Err(Errno::ENOMEM);
        }
        let bytes = chunks.div_ceil(8) + BITMAP_SB_LEN as u64;
        let file_pages = bytes.div_ceil(PAGE as u64) as usize;
        let mut data = vec![0u8; file_pages * PAGE];
        data[..BITMAP_SB_LEN].copy_from_slice(&page[..BITMAP_SB_LEN]);
        // sync_size is kept up to date in the copy we hold.
        let mut held = sb.clone();
        held.sync_size = blocks;
        data[..BITMAP_SB_LEN].copy_from_slice(&held.to_bytes());
        let now = Instant::now();
        Ok(Arc::new(Bitmap {
            chunkshift,
            chunks,
            pages,
            bytes,
            file_pages,
            counts: Mutex::new(Counts {
                counters: vec![0; chunks as usize],
                page_count: vec![0; pages as usize],
                page_pending: vec![false; pages as usize],
                unflushed: Unflushed::default(),
            }),
            store: Mutex::new(Store {
                data,
                attrs: vec![0; file_pages],
            }),
            unplug: Mutex::new(Unplug::default()),
            unplug_cv: Condvar::new(),
            page_io: Mutex::new(()),
            cleared: AtomicBool::new(false),
            departures: AtomicU64::new(0),
            dirty_seq: AtomicU64::new(0),
            flushed_seq: AtomicU64::new(0),
            overflow_cv: Condvar::new(),
            flags,
            events_cleared: AtomicU64::new(events_cleared),
            need_sync: AtomicBool::new(false),
            allclean: AtomicBool::new(false),
            daemon_lastrun: Mutex::new(now),
            daemon_sleep: AtomicU64::new(cfg.bitmap_info.daemon_sleep),
            last_end_sync: Mutex::new(now),
            max_write_behind: AtomicU64::new(u64::from(sb.write_behind)),
            behind: Mutex::new(Behind::default()),
            behind_wait: Condvar::new(),
            behind_writes_used: AtomicU64::new(0),
        }))
    }

    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Pages of the on-disk image (`storage.file_pages`).
    pub fn file_pages(&self) -> usize {
        self.file_pages
    }

    pub fn chunk_sectors(&self) -> u64 {
        1 << self.chunkshift
    }

    pub fn events_cleared(&self) -> u64 {
        self.events_cleared.load(Ordering::Acquire)
    }

    /// `can_clear`: false while a cleared-events update is pending.
    pub fn need_sync(&self) -> bool {
        self.need_sync.load(Ordering::Acquire)
    }

    pub fn set_need_sync(&self, v: bool) {
        self.need_sync.store(v, Ordering::Release)
    }

    pub fn max_backlog_used(&self) -> u64 {
        self.behind_writes_used.load(Ordering::Relaxed)
    }

    pub fn reset_max_backlog_used(&self) {
        self.behind_writes_used.store(0, Ordering::Relaxed)
    }

    /// `backlog` changed (`bitmap_info.max_write_behind`).
    pub fn set_max_write_behind(&self, v: u64) {
        self.max_write_behind.store(v, Ordering::Release)
    }

    /// Writes to write-mostly members still under way.
    pub fn behind_writes(&self) -> u64 {
        self.behind.lock().writes
    }

    /// May a write go behind, and if so count it (`bitmap_startwrite`'s
    /// `behind` part, with raid1's test before it): not when `backlog`
    /// writes are behind already, nor while a reader waits for them to
    /// land (it would never get its turn).  The test and the count are
    /// one step here, so `max_backlog_used` never passes `backlog`.
    pub fn start_behind_write(&self) -> bool {
        let mut b = self.behind.lock();
        if b.waiters > 0 || b.writes >= self.max_write_behind.load(Ordering::Acquire) {
            return false;
        }
        b.writes += 1;
        self.behind_writes_used
            .fetch_max(b.writes, Ordering::Relaxed);
        true
    }

    /// A behind write landed on every write-mostly member it went to
    /// (`bitmap_endwrite`'s `behind` part).
    pub fn end_behind_write(&self) {
        let mut b = self.behind.lock();
        b.writes -= 1;
        if b.writes == 0 {
            self.behind_wait.notify_all();
        }
    }

    /// `md_bitmap_wait_behind_writes`: until no write is behind.  New
    /// writes do not go behind while this waits.
    pub fn wait_behind_writes(&self) {
        let mut b = self.behind.lock();
        if b.writes == 0 {
            return;
        }
        b.waiters += 1;
        while b.writes > 0 {
            self.behind_wait.wait(&mut b);
        }
        b.waiters -= 1;
    }

    /// `bitmap_load`: read the bits, turn each set bit into a counter
    /// (NEEDED past `start`), write a stale bitmap full, update the sb.
    pub fn load(&self, mddev: &Mddev, cfg: &mut Config) -> Result<(), Errno> {
        // Forget cached state: all clean, nothing needed.
        {
            let mut c = self.counts.lock();
            c.counters.iter_mut().for_each(|x| *x = 0);
            c.page_count.iter_mut().for_each(|x| *x = 0);
        }
        let start = if mddev.degraded() == 0 || self.events_cleared() == cfg.events {
            mddev.recovery_cp()
        } else {
            0
        };
        self.init_from_disk(mddev, cfg, start)?;
        self.flags.clear(sb_flag(state::STALE));
        mddev.recovery.set(rec::NEEDED);
        *self.daemon_lastrun.lock() = Instant::now();
        mddev.wakeup();
        self.update_sb(mddev, cfg);
        if self.flags.test(sb_flag(state::WRITE_ERROR)) {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn init_from_disk(&self, mddev: &Mddev, cfg: &Config, start: u64) -> Result<(), Errno> {
        let outofdate = self.flags.test(sb_flag(state::STALE));
        {
            let mut st = self.store.lock();
            for i in 0..self.file_pages {
                let count = if i == self.file_pages - 1 {
                    let c = (self.bytes as usize) % PAGE;
                    if c == 0 { PAGE } else { c }
                } else {
                    PAGE
                };
                let count = count.div_ceil(512) * 512;
                let mut buf = vec![0u8; count];
                read_sb_page(cfg, cfg.bitmap_info.offset, i, &mut buf)?;
                // Keep our (sync_size-updated) superblock in page 0.
                let skip = if i == 0 { BITMAP_SB_LEN } else { 0 };
                let base = i * PAGE;
                st.data[base + skip..base + count.min(PAGE)]
                    .copy_from_slice(&buf[skip..count.min(PAGE)]);
            }
            if outofdate {
                mddev.log().warn(format!(
                    "{}: bitmap file is out of date, doing full recovery",
                    mddev.name
                ));
                let n = st.data.len();
                st.data[BITMAP_SB_LEN..n].iter_mut().for_each(|b| *b = 0xff);
            }
        }
        if outofdate {
            for i in 0..self.file_pages {
                self.write_page(mddev, i);
            }
            if self.flags.test(sb_flag(state::WRITE_ERROR)) {
                mddev.log().warn(format!(
                    "{}: bitmap initialisation failed: {}",
                    mddev.name,
                    -Errno::EIO.raw()
                ));
                return Err(Errno::EIO);
            }
        }
        let hostendian = self.flags.test(sb_flag(state::HOSTENDIAN));
        let set_chunks: Vec<u64> = {
            let st = self.store.lock();
            (0..self.chunks)
                .filter(|&i| test_file_bit(&st.data, i, hostendian))
                .collect()
        };
        for i in set_chunks {
            let needed = ((i + 1) << self.chunkshift) >= start;
            self.set_memory_bits(i << self.chunkshift, needed);
        }
        Ok(())
    }

    /// `md_bitmap_set_memory_bits`.
    fn set_memory_bits(&self, offset: u64, needed: bool) {
        let chunk = offset >> self.chunkshift;
        if chunk >= self.chunks {
            return;
        }
        let mut c = self.counts.lock();
        let page = (chunk / PAGE_COUNTER_RATIO) as usize;
        if c.counters[chunk as usize] == 0 {
            c.counters[chunk as usize] = 2;
            c.page_count[page] += 1;
            c.page_pending[page] = true;
            self.allclean.store(false, Ordering::Release);
        }
        if needed {
            c.counters[chunk as usize] |= NEEDED;
        }
    }

    /// `bitmap_dirty_bits` (sysfs `bitmap_set_bits`): chunks `s..=e`
    /// dirty in memory and on disk; pulls `recovery_cp` back.
    pub fn dirty_bits(&self, mddev: &Mddev, s: u64, e: u64) {
        for chunk in s..=e.min(self.chunks.saturating_sub(1)) {
            let sec = chunk << self.chunkshift;
            self.set_memory_bits(sec, true);
            self.file_set_bit(chunk);
            if sec < mddev.recovery_cp() {
                mddev.set_recovery_cp(sec);
            }
        }
    }

    fn file_set_bit(&self, chunk: u64) -> u64 {
        let hostendian = self.flags.test(sb_flag(state::HOSTENDIAN));
        let mut st = self.store.lock();
        set_file_bit(&mut st.data, chunk, true, hostendian);
        let pg = file_page_of(chunk);
        st.attrs[pg] |= PAGE_DIRTY;
        drop(st);
        let mut u = self.unplug.lock();
        u.dirty_seq += 1;
        self.dirty_seq.store(u.dirty_seq, Ordering::Release);
        u.dirty_seq
    }

    fn file_clear_bit(&self, st: &mut Store, chunk: u64) {
        let hostendian = self.flags.test(sb_flag(state::HOSTENDIAN));
        set_file_bit(&mut st.data, chunk, false, hostendian);
        self.cleared.store(true, Ordering::Release);
        let pg = file_page_of(chunk);
        if st.attrs[pg] & PAGE_NEEDWRITE == 0 {
            st.attrs[pg] |= PAGE_PENDING;
            self.allclean.store(false, Ordering::Release);
        }
    }

    fn chunks_touched(&self, offset: u64, sectors: u64) -> Range<u64> {
        chunks_touched(offset, sectors, self.chunkshift, self.chunks)
    }

    /// A member is leaving its slot (it failed).  It may hold the writes
    /// of some chunks only in its volatile cache, which nothing will flush
    /// now (see [`Unflushed`]); writes under way may still complete on it
    /// after this.  Taken back on the bitmap's word after a power loss, it
    /// would serve what it held before them.  So those chunks keep (or get
    /// back) their bits as NEEDED, and the catch-up that takes the member
    /// back rewrites them.  (Linux 6.1 clears them once their writes are
    /// done, as for any chunk, and a re-add after a power loss keeps the
    /// member's stale blocks there.)
    pub fn member_leaves(&self) {
        let hostendian = self.flags.test(sb_flag(state::HOSTENDIAN));
        let mut c = self.counts.lock();
        let mut again = c.unflushed.take_all();
        again.extend((0..self.chunks).filter(|&i| c.counters[i as usize] & COUNTER_MAX > 2));
        let mut st = self.store.lock();
        for chunk in again {
            let page = (chunk / PAGE_COUNTER_RATIO) as usize;
            let v = &mut c.counters[chunk as usize];
            if *v == 0 {
                *v = 2;
                c.page_count[page] += 1;
            }
            c.counters[chunk as usize] |= NEEDED;
            c.page_pending[page] = true;
            self.allclean.store(false, Ordering::Release);
            // On disk the bit is still set, or is being cleared by the
            // page write under way, which sends the page again with it.
            set_file_bit(&mut st.data, chunk, true, hostendian);
        }
        self.departures.fetch_add(1, Ordering::AcqRel);
    }

    /// A flush of every member in a slot is about to be issued (a flush
    /// of md0/data): see [`Bitmap::flush_end`].
    pub fn flush_begin(&self) -> u64 {
        self.counts.lock().unflushed.flush_begin()
    }

    /// The flush `token` is done; `reached_all`: it reached every member
    /// in a slot (a member it failed has left by now).
    pub fn flush_end(&self, token: u64, reached_all: bool) {
        self.counts.lock().unflushed.flush_end(token, reached_all);
    }

    /// `bitmap_startwrite`: before writing `sectors` at `offset`, count the
    /// write in every chunk it touches, setting on-disk bits where a chunk
    /// was clean.  Returns the sequence `unplug` must reach.
    pub fn startwrite(&self, offset: u64, sectors: u64) -> u64 {
        for chunk in self.chunks_touched(offset, sectors) {
            let mut c = self.counts.lock();
            while c.counters[chunk as usize] & COUNTER_MAX == COUNTER_MAX {
                self.overflow_cv.wait(&mut c);
            }
            let v = c.counters[chunk as usize];
            let mut newbit = false;
            match v {
                0 => {
                    newbit = true;
                    let page = (chunk / PAGE_COUNTER_RATIO) as usize;
                    c.page_count[page] += 1;
                    c.counters[chunk as usize] = 2;
                }
                1 => c.counters[chunk as usize] = 2,
                _ => {}
            }
            c.counters[chunk as usize] += 1;
            // Set the on-disk bit before another writer can see the
            // counter: that writer's unplug must then wait for the bit.
            if newbit {
                self.file_set_bit(chunk);
            }
        }
        self.dirty_seq.load(Ordering::Acquire)
    }

    /// `bitmap_unplug`: make every bit set up to `seq` durable on every
    /// member before the caller's data goes out.  Concurrent callers share
    /// one write.
    pub fn unplug(&self, mddev: &Mddev, seq: u64) {
        if self.flushed_seq.load(Ordering::Acquire) >= seq {
            return;
        }
        let mut u = self.unplug.lock();
        loop {
            if u.flushed_seq >= seq {
                return;
            }
            if !u.busy {
                break;
            }
            self.unplug_cv.wait(&mut u);
        }
        u.busy = true;
        let target = u.dirty_seq;
        drop(u);
        self.write_dirty_pages(mddev);
        let mut u = self.unplug.lock();
        u.busy = false;
        u.flushed_seq = u.flushed_seq.max(target);
        self.flushed_seq.store(u.flushed_seq, Ordering::Release);
        self.unplug_cv.notify_all();
    }

    /// `__bitmap_unplug`: write DIRTY and NEEDWRITE pages, durable.
    fn write_dirty_pages(&self, mddev: &Mddev) {
        let _io = self.page_io.lock();
        let pages: Vec<usize> = {
            let mut st = self.store.lock();
            (0..self.file_pages)
                .filter(|&i| {
                    let a = st.attrs[i];
                    if a & (PAGE_DIRTY | PAGE_NEEDWRITE) != 0 {
                        st.attrs[i] &= !(PAGE_DIRTY | PAGE_NEEDWRITE | PAGE_PENDING);
                        true
                    } else {
                        false
                    }
                })
                .collect()
        };
        self.write_pages(mddev, &pages);
        if self.flags.test(sb_flag(state::WRITE_ERROR)) {
            self.kick(mddev);
        }
    }

    /// `bitmap_endwrite`.
    pub fn endwrite(
        &self,
        mddev: &Mddev,
        offset: u64,
        sectors: u64,
        success: bool,
        array_events: u64,
    ) {
        if success && self.events_cleared() < array_events {
            if mddev.degraded() == 0 {
                self.events_cleared.store(array_events, Ordering::Release);
                self.need_sync.store(true, Ordering::Release);
            } else if slot_held_by_rebuilding(mddev) {
                self.forget_absent(mddev, array_events);
            }
        }
        for chunk in self.chunks_touched(offset, sectors) {
            let mut c = self.counts.lock();
            c.unflushed.note(chunk);
            let v = &mut c.counters[chunk as usize];
            if !success && *v & NEEDED == 0 {
                *v |= NEEDED;
            }
            if *v & COUNTER_MAX == COUNTER_MAX {
                self.overflow_cv.notify_all();
            }
            *v -= 1;
            if *v <= 2 {
                let page = (chunk / PAGE_COUNTER_RATIO) as usize;
                c.page_pending[page] = true;
                self.allclean.store(false, Ordering::Release);
            }
        }
    }

    /// When the daemon next has work: `daemon_sleep` after its last run,
    /// unless everything is clean.
    pub fn daemon_deadline(&self) -> Option<Instant> {
        if self.allclean.load(Ordering::Acquire) {
            return None;
        }
        let sleep = self.daemon_sleep_cached();
        Some(*self.daemon_lastrun.lock() + sleep)
    }

    fn daemon_sleep_cached(&self) -> Duration {
        let j = self.daemon_sleep.load(Ordering::Acquire).max(1);
        Duration::from_millis(j * 1000 / HZ)
    }

    /// `time_base` changed (jiffies).
    pub fn set_daemon_sleep(&self, jiffies: u64) {
        self.daemon_sleep.store(jiffies.max(1), Ordering::Release);
    }

    /// `bitmap_daemon_work`.
    pub fn daemon_work(&self, mddev: &Mddev) {
        self.daemon_work_inner(mddev, false);
    }

    fn daemon_work_inner(&self, mddev: &Mddev, force: bool) {
        {
            let mut last = self.daemon_lastrun.lock();
            if !force && Instant::now() < *last + self.daemon_sleep_cached() {
                return;
            }
            *last = Instant::now();
        }
        if self.allclean.load(Ordering::Acquire) {
            return;
        }
        self.allclean.store(true, Ordering::Release);
        {
            let mut st = self.store.lock();
            for a in st.attrs.iter_mut() {
                if *a & PAGE_PENDING != 0 {
                    *a &= !PAGE_PENDING;
                    *a |= PAGE_NEEDWRITE;
                }
            }
            if self.need_sync.swap(false, Ordering::AcqRel) {
                let ec = self.events_cleared().to_le_bytes();
                st.data[32..40].copy_from_slice(&ec);
                st.attrs[0] |= PAGE_NEEDWRITE;
            }
        }
        let need_sync = self.need_sync.load(Ordering::Acquire);
        {
            let mut c = self.counts.lock();
            let mut st = self.store.lock();
            let mut j = 0u64;
            while j < self.chunks {
                let page = (j / PAGE_COUNTER_RATIO) as usize;
                if j % PAGE_COUNTER_RATIO == 0 {
                    if !c.page_pending[page] {
                        j += PAGE_COUNTER_RATIO;
                        continue;
                    }
                    c.page_pending[page] = false;
                }
                let v = c.counters[j as usize];
                if v == 1 && !need_sync {
                    c.counters[j as usize] = 0;
                    c.page_count[page] -= 1;
                    self.file_clear_bit(&mut st, j);
                } else if v != 0 && v <= 2 {
                    c.counters[j as usize] = 1;
                    c.page_pending[page] = true;
                    self.allclean.store(false, Ordering::Release);
                }
                j += 1;
            }
        }
        // Write NEEDWRITE pages, stopping at a DIRTY one (unplug owns it).
        if !self.flags.test(sb_flag(state::STALE)) {
            let _io = self.page_io.lock();
            let mut pages = Vec::new();
            {
                let mut st = self.store.lock();
                for i in 0..self.file_pages {
                    if st.attrs[i] & PAGE_DIRTY != 0 {
                        break;
                    }
                    if st.attrs[i] & PAGE_NEEDWRITE != 0 {
                        st.attrs[i] &= !PAGE_NEEDWRITE;
                        pages.push(i);
                    }
                }
            }
            self.write_pages(mddev, &pages);
        }
        if !self.allclean.load(Ordering::Acquire) {
            mddev
                .thread
                .wakeup_at(Instant::now() + self.daemon_sleep_cached());
        }
    }

    /// `bitmap_flush`: three daemon passes, then the superblock.
    pub fn flush(&self, mddev: &Mddev, cfg: &Config) {
        for _ in 0..3 {
            self.daemon_work_inner(mddev, true);
        }
        self.update_sb(mddev, cfg);
    }

    /// `bitmap_write_all`: every page will be written (a spare joined).
    pub fn write_all(&self) {
        let mut st = self.store.lock();
        for a in st.attrs.iter_mut() {
            *a |= PAGE_NEEDWRITE;
        }
        self.allclean.store(false, Ordering::Release);
    }

    /// `bitmap_update_sb`: refresh the superblock from the array and write
    /// page 0 to every member.
    pub fn update_sb(&self, mddev: &Mddev, cfg: &Config) {
        {
            let mut st = self.store.lock();
            let mut sb = match BitmapSuper::parse(&st.data[..BITMAP_SB_LEN]) {
                Ok(s) => s,
                Err(_) => return,
            };
            sb.events = cfg.events;
            if cfg.events < self.events_cleared() {
                self.events_cleared.store(cfg.events, Ordering::Release);
            }
            sb.events_cleared = self.events_cleared();
            sb.state = (self.flags.bits().raw() as u32) & !state::WRITE_ERROR;
            // Whole seconds on disk.  The kernel writes 0 for a time_base
            // under a second, which it then refuses at the next assembly
            // ("daemon sleep period out of range"); 1 keeps the images
            // usable.
            sb.daemon_sleep = ((cfg.bitmap_info.daemon_sleep / HZ) as u32).max(1);
            sb.write_behind = cfg.bitmap_info.max_write_behind as u32;
            sb.sync_size = mddev.sync.resync_max_sectors();
            sb.chunksize = cfg.bitmap_info.chunksize as u32;
            sb.nodes = cfg.bitmap_info.nodes;
            sb.sectors_reserved = cfg.bitmap_info.space as u32;
            st.data[..BITMAP_SB_LEN].copy_from_slice(&sb.to_bytes());
        }
        let _io = self.page_io.lock();
        self.write_pages(mddev, &[0]);
    }

    /// Write page `i` to every member with a slot, durable.
    fn write_page(&self, mddev: &Mddev, i: usize) {
        let _io = self.page_io.lock();
        self.write_pages(mddev, &[i]);
    }

    /// Write `pages` to every usable member, each durable when this
    /// returns (`md_super_write`: REQ_PREFLUSH | REQ_FUA).  The caller
    /// holds `page_io`.  The pages are copied first; if the copies may
    /// hold cleared bits, the members are flushed before the pages go
    /// out, so the writes a cleared bit vouches for are on disk before
    /// the bit is clear there.  Setting bits needs no such flush: a
    /// durable write of just the page (RWF_DSYNC) does, and costs far
    /// less than flushing every dirty page of an image file.
    fn write_pages(&self, mddev: &Mddev, pages: &[usize]) {
        if pages.is_empty() {
            return;
        }
        let copy = |st: &Store| -> Vec<(usize, Vec<u8>)> {
            pages
                .iter()
                .map(|&i| {
                    let size = if i == self.file_pages - 1 {
                        let last = (self.bytes as usize) % PAGE;
                        let last = if last == 0 { PAGE } else { last };
                        last.div_ceil(512) * 512
                    } else {
                        PAGE
                    };
                    (i, st.data[i * PAGE..i * PAGE + size].to_vec())
                })
                .collect()
        };
        let departures = self.departures.load(Ordering::Acquire);
        let mut copies = copy(&self.store.lock());
        // A cleared bit in the copies was cleared (under the store lock)
        // after its writes were done and before `cleared` was set.
        let flushed = self.cleared.swap(false, Ordering::AcqRel);
        if flushed {
            let token = self.flush_begin();
            self.sync_members(mddev);
            self.flush_end(token, true);
        }
        if self.departures.load(Ordering::Acquire) != departures {
            // A member that left after the copies were taken may not have
            // been flushed: `member_leaves` set again the bits it may
            // still need, and the pages go out with them.
            copies = copy(&self.store.lock());
        }
        for (i, buf) in &copies {
            self.write_page_copy(mddev, *i, buf);
        }
    }

    /// `__write_sb_page` of one page copy to every usable member, the last
    /// page rounded to 512 bytes, refused where it would run into data or
    /// metadata.
    fn write_page_copy(&self, mddev: &Mddev, i: usize, buf: &[u8]) {
        let size = buf.len();
        let offset = mddev.bitmap_offset();
        let dev_sectors = mddev.dev_sectors();
        for r in mddev.rdevs().iter() {
            if r.raid_disk() < 0 || r.faulty() {
                continue;
            }
            let ps = (i * PAGE / 512) as i64;
            let sboff = r.sb_start() as i64 + offset;
            let doff = r.data_offset() as i64;
            let sectors = (size / 512) as i64;
            let ok = if offset < 0 {
                offset + ps + sectors <= 0 && doff + dev_sectors as i64 <= sboff
            } else if (r.sb_start() as i64) < doff {
                sboff + ps + sectors <= doff
            } else {
                true
            };
            if !ok || sboff + ps < 0 {
                self.flags.set(sb_flag(state::WRITE_ERROR));
                continue;
            }
            if let Err(e) = r.disk.write_at_durable(buf, ((sboff + ps) as u64) * 512) {
                super_written_error(mddev, r, &e);
            }
        }
    }

    fn sync_members(&self, mddev: &Mddev) {
        for r in mddev.rdevs().iter() {
            if r.raid_disk() < 0 || r.faulty() {
                continue;
            }
            if let Err(e) = r.disk.flush() {
                super_written_error(mddev, r, &e);
            }
        }
    }

    /// `md_bitmap_file_kick`: stop using a bitmap that cannot be written.
    fn kick(&self, mddev: &Mddev) {
        if !self.flags.test_and_set(sb_flag(state::STALE)) {
            mddev.log().warn(format!(
                "{}: disabling internal bitmap due to errors",
                mddev.name
            ));
        }
    }

    /// `bitmap_start_sync` (whole 4 KiB granules): does the range at
    /// `offset` need syncing?  Returns (needed, sectors covered).  A sync
    /// that takes over a chunk's NEEDED mark (not `degraded`) lets its bit
    /// be cleared: see `forget_absent`.
    pub fn start_sync(&self, mddev: &Mddev, offset: u64, degraded: bool) -> (bool, u64) {
        let mut rv = false;
        let mut blocks = 0u64;
        let mut off = offset;
        let mut took = false;
        while blocks < (PAGE as u64 >> 9) {
            let (r, b, t) = self.start_sync_one(off, degraded);
            rv |= r;
            took |= t;
            off += b;
            blocks += b;
        }
        if took {
            self.forget_absent(mddev, mddev.events());
        }
        (rv, blocks)
    }

    /// Some bits are about to be cleared while the array is short of a
    /// member (a write that reached all its slots while one of the array's
    /// holds a member being rebuilt, or a sync step that took over a
    /// NEEDED mark): from then on the bitmap no longer holds every write
    /// a member that is away has missed.  So `events_cleared` moves to the
    /// array's events,
    /// as for a write that reached a whole array (`endwrite`), and members
    /// bound but out of their slot lose the slot they would have caught up
    /// in: such a member can only come back for a full recovery.  (Linux
    /// 6.1 does neither, and takes back a member that left before a spare
    /// was rebuilt in its place as in sync, without the writes it missed.)
    fn forget_absent(&self, mddev: &Mddev, events: u64) {
        if self.events_cleared() < events {
            self.events_cleared.fetch_max(events, Ordering::AcqRel);
            self.need_sync.store(true, Ordering::Release);
        }
        for r in mddev.rdevs().iter() {
            if r.raid_disk() < 0 && r.saved_raid_disk() >= 0 {
                r.set_saved_raid_disk(-1);
            }
        }
    }

    /// One chunk: (needed, sectors covered, NEEDED taken over).
    fn start_sync_one(&self, offset: u64, degraded: bool) -> (bool, u64, bool) {
        let (chunk, blocks) = self.locate(offset);
        let Some(chunk) = chunk else {
            return (false, blocks, false);
        };
        let mut c = self.counts.lock();
        let v = &mut c.counters[chunk as usize];
        if *v & RESYNC != 0 {
            (true, blocks, false)
        } else if *v & NEEDED != 0 {
            if !degraded {
                *v |= RESYNC;
                *v &= !NEEDED;
            }
            (true, blocks, !degraded)
        } else {
            (false, blocks, false)
        }
    }

    /// The counter for `offset` and the sectors to the end of its unit
    /// (a chunk, or a whole counter page when that page is unused).
    fn locate(&self, offset: u64) -> (Option<u64>, u64) {
        let chunk = offset >> self.chunkshift;
        let mut csize = self.chunk_sectors();
        if chunk >= self.chunks {
            return (None, csize - (offset & (csize - 1)));
        }
        let page = (chunk / PAGE_COUNTER_RATIO) as usize;
        let c = self.counts.lock();
        if c.page_count[page] == 0 {
            csize <<= 11;
            return (None, csize - (offset & (csize - 1)));
        }
        (Some(chunk), csize - (offset & (csize - 1)))
    }

    /// `__bitmap_end_sync`; returns the sectors covered.
    pub fn end_sync(&self, offset: u64, aborted: bool) -> u64 {
        let (chunk, blocks) = self.locate(offset);
        let Some(chunk) = chunk else { return blocks };
        let mut c = self.counts.lock();
        let page = (chunk / PAGE_COUNTER_RATIO) as usize;
        let v = c.counters[chunk as usize];
        if v & RESYNC != 0 {
            let mut nv = v & !RESYNC;
            if nv & NEEDED == 0 && aborted {
                nv |= NEEDED;
            } else if nv <= 2 {
                c.page_pending[page] = true;
                self.allclean.store(false, Ordering::Release);
            }
            c.counters[chunk as usize] = nv;
        }
        blocks
    }

    /// `bitmap_close_sync`.
    pub fn close_sync(&self, resync_max_sectors: u64) {
        let mut s = 0;
        while s < resync_max_sectors {
            s += self.end_sync(s, false);
        }
    }

    /// `bitmap_cond_end_sync`: every `daemon_sleep` (or when forced),
    /// checkpoint the sync at `sector`.  The caller has drained its
    /// in-flight sync I/O.  Returns true when it checkpointed.
    pub fn cond_end_sync(&self, mddev: &Mddev, sector: u64, force: bool) -> bool {
        let now = Instant::now();
        if sector == 0 {
            *self.last_end_sync.lock() = now;
            return false;
        }
        if !force && now < *self.last_end_sync.lock() + self.daemon_sleep_cached() {
            return false;
        }
        mddev.sync.set_curr_resync_completed(sector);
        mddev.sb_flags.set(sbf::CHANGE_CLEAN);
        let end = sector & !(self.chunk_sectors() - 1);
        let max = mddev.sync.resync_max_sectors();
        let mut s = 0;
        while s < end && s < max {
            s += self.end_sync(s, false);
        }
        *self.last_end_sync.lock() = Instant::now();
        mddev.notify("sync_completed");
        true
    }

    /// mdstat's `bitmap:` line (without the trailing newline).
    pub fn status(&self, chunksize: u64) -> String {
        let used = self
            .counts
            .lock()
            .page_count
            .iter()
            .filter(|&&n| n > 0)
            .count() as u64;
        let kb = chunksize >> 10;
        let (n, unit) = if kb > 0 { (kb, "KB") } else { (chunksize, "B") };
        format!(
            "bitmap: {used}/{} pages [{}KB], {n}{unit} chunk",
            self.pages,
            used * 4
        )
    }

    /// Chunks whose on-disk bit is set (for tests and `examine`).
    pub fn dirty_chunks(&self) -> u64 {
        let hostendian = self.flags.test(sb_flag(state::HOSTENDIAN));
        let st = self.store.lock();
        (0..self.chunks)
            .filter(|&i| test_file_bit(&st.data, i, hostendian))
            .count() as u64
    }
}

/// `super_written` with an error: bitmap pages go out through
/// `md_super_write` (a flush and a FUA write), and a failed metadata write
/// fails the member.
fn super_written_error(mddev: &Mddev, r: &Arc<Rdev>, e: &std::io::Error) {
    mddev.log().err(format!(
        "md: super_written gets error=-{}",
        Errno::from_io(e)
    ));
    crate::md::update::md_error_io(mddev, r, mddev.fail_last_dev());
}

/// Storage page of chunk `i` (bits start after the 256-byte superblock).
fn file_page_of(chunk: u64) -> usize {
    ((chunk + (BITMAP_SB_LEN as u64) * 8) / (PAGE as u64 * 8)) as usize
}

fn bit_pos(chunk: u64, hostendian: bool) -> (usize, u8) {
    let bit = chunk + BITMAP_SB_LEN as u64 * 8;
    if hostendian {
        // Host-endian longs: on little-endian hosts identical to LE.
        ((bit / 8) as usize, (bit % 8) as u8)
    } else {
        ((bit / 8) as usize, (bit % 8) as u8)
    }
}

fn test_file_bit(data: &[u8], chunk: u64, hostendian: bool) -> bool {
    let (byte, bit) = bit_pos(chunk, hostendian);
    data.get(byte).is_some_and(|b| b & (1 << bit) != 0)
}

fn set_file_bit(data: &mut [u8], chunk: u64, on: bool, hostendian: bool) {
    let (byte, bit) = bit_pos(chunk, hostendian);
    if let Some(b) = data.get_mut(byte) {
        if on {
            *b |= 1 << bit;
        } else {
            *b &= !(1 << bit);
        }
    }
}

/// `read_sb_page`: read from the first in-sync, working member that is
/// not catching up by bitmap.
fn read_sb_page(cfg: &Config, offset: i64, index: usize, buf: &mut [u8]) -> Result<(), Errno> {
    for r in &cfg.rdevs {
        if !r.in_sync() || r.faulty() || r.flags.test(rf::BITMAP_SYNC) {
            continue;
        }
        let sector = r.sb_start() as i64 + offset + (index * PAGE / 512) as i64;
        if sector < 0 {
            continue;
        }
        if read_member(r, buf, sector as u64).is_ok() {
            return Ok(());
        }
    }
    Err(Errno::EIO)
}

fn read_member(r: &Rdev, buf: &mut [u8], sector: u64) -> std::io::Result<()> {
    let size = r.disk.size_bytes();
    let off = sector * 512;
    if off >= size {
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    let n = (buf.len() as u64).min(size - off) as usize;
    r.disk.read_at(&mut buf[..n], off)
}

/// The chunks (of `1 << chunkshift` sectors, `chunks` of them) that a
/// request of `sectors` at `offset` touches, in order; none past the last
/// chunk (the kernel's start/endwrite loops stop there).
fn chunks_touched(offset: u64, sectors: u64, chunkshift: u32, chunks: u64) -> Range<u64> {
    if sectors == 0 {
        return 0..0;
    }
    let first = offset >> chunkshift;
    let last = (offset + sectors - 1) >> chunkshift;
    first.min(chunks)..(last + 1).min(chunks)
}

/// Whether a slot holds a member being rebuilt (a spare, or a member
/// catching up from the bitmap).  A write that reached it reached every
/// copy it has while degraded; it did not reach the member that held the
/// slot before, which the bitmap must then stop speaking for
/// (`forget_absent`).  A write that succeeded only because none of its
/// copies lie in an empty slot (RAID10's, while a member is away) missed
/// nothing any member holds: the member can still come back by the
/// bitmap, as in Linux.
fn slot_held_by_rebuilding(mddev: &Mddev) -> bool {
    mddev
        .rdevs()
        .iter()
        .any(|r| r.raid_disk() >= 0 && !r.in_sync() && !r.faulty())
}

#[cfg(test)]
mod tests {
    use super::chunks_touched;
    use proptest::prelude::*;

    proptest! {
        /// The range equals the kernel's walk: a chunk at a time from
        /// `offset`, each step to the next chunk boundary.
        #[test]
        fn chunks_touched_walks_like_the_kernel(
            offset in 0u64..1 << 20,
            sectors in 0u64..1 << 16,
            chunkshift in 0u32..14,
            chunks in 0u64..1 << 12,
        ) {
            let mut walked = Vec::new();
            let (mut at, mut left) = (offset, sectors);
            let chunk_sectors = 1u64 << chunkshift;
            while left > 0 {
                let chunk = at >> chunkshift;
                if chunk >= chunks {
                    break;
                }
                walked.push(chunk);
                let blocks = chunk_sectors - (at & (chunk_sectors - 1));
                at += blocks;
                left = left.saturating_sub(blocks);
            }
            let got: Vec<u64> = chunks_touched(offset, sectors, chunkshift, chunks).collect();
            prop_assert_eq!(got, walked);
        }
    }
}
