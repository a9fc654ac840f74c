//! What the mirroring personalities share when a member's I/O fails:
//! recording bad blocks where the member can hold them, narrowing a
//! failed write to the blocks that really fail (`narrow_write_error`, which
//! raid1.c and raid10.c each carry), and waiting for md to put a member's
//! failure or new bad blocks on disk (`md_wait_for_blocked_rdev`).

use super::Mddev;
use super::flags::{rdev as rf, sb as sbf};
use super::rdev::Rdev;

/// `rdev_set_badblocks` (unacknowledged, array sectors made absolute; the
/// next superblock write records them).  A range that does not lie on the
/// device (its data_offset is damaged) cannot be recorded, so the caller
/// fails the member instead.
pub fn set_badblocks(mddev: &Mddev, r: &Rdev, sector: u64, sectors: u64) -> bool {
    let on_device = r
        .dev_sector(sector)
        .and_then(|abs| abs.checked_add(sectors))
        .is_some_and(|end| end <= r.disk.sectors());
    on_device && mddev.rdev_set_badblocks(r, sector, sectors)
}

/// `narrow_write_error`: rewrite block by block, aligned to the bad-block
/// unit; record the blocks that still fail as bad.  False when bad blocks
/// cannot be recorded.
pub fn narrow_write_error(mddev: &Mddev, r: &Rdev, data: &[u8], sector: u64) -> bool {
    let Some(shift) = r.badblocks.lock().shift else {
        return false;
    };
    let block = (1u64 << shift).max(1);
    let total = (data.len() / 512) as u64;
    let mut ok = true;
    let mut s = 0;
    while s < total {
        let at = sector + s;
        let piece = (block - (at & (block - 1))).min(total - s);
        let bytes = &data[(s * 512) as usize..((s + piece) * 512) as usize];
        if r.write_data(bytes, at).is_err() {
            ok = set_badblocks(mddev, r, at, piece) && ok;
        }
        s += piece;
    }
    ok
}

/// `md_wait_for_blocked_rdev`: wait until a member is no longer blocked on
/// a failure or on bad blocks not yet on disk, at most 5 s per round as
/// the kernel.
pub fn wait_unblocked(mddev: &Mddev, r: &Rdev) {
    mddev.observer().notify_rdev(mddev, r, "state");
    let mut st = mddev.lock.lock();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while r.flags.test(rf::BLOCKED | rf::BLOCKED_BAD_BLOCKS) && std::time::Instant::now() < deadline
    {
        mddev.wakeup();
        mddev
            .sb_wait
            .wait_for(&mut st, std::time::Duration::from_millis(50));
    }
}

/// Wait until no superblock change is pending (a failure or bad block
/// recorded on disk), while the array runs writable.
pub fn wait_sb_written(mddev: &Mddev) {
    let mut st = mddev.lock.lock();
    while mddev.sb_flags.test(sbf::CHANGE_PENDING) && mddev.is_running() && mddev.is_rdwr() {
        mddev.wakeup();
        mddev
            .sb_wait
            .wait_for(&mut st, std::time::Duration::from_millis(50));
    }
}
