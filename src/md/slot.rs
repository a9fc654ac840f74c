//! A slot of a personality that rebuilds a replacement beside the member
//! it replaces (raid10.c, raid5.c): what their `spare_active` does to
//! one slot.

use std::sync::Arc;

use super::flags::rdev as rf;
use super::{Mddev, Rdev};
use crate::format::MAX_SECTOR;

/// One slot's part of `spare_active`: a replacement recovered whole goes
/// in sync and the member it replaces is marked failed, to leave and
/// never come back; else a member recovered whole goes in sync.  Returns
/// how many slots this made whole again (0 or 1).
pub fn activate_slot(mddev: &Mddev, rdev: Option<&Arc<Rdev>>, repl: Option<&Arc<Rdev>>) -> u32 {
    let recovered = |r: &Rdev| {
        r.recovery_offset() == MAX_SECTOR && !r.faulty() && !r.flags.test_and_set(rf::IN_SYNC)
    };
    if repl.is_some_and(|r| recovered(r)) {
        let count = u32::from(rdev.is_none_or(|r| !r.flags.test_and_clear(rf::IN_SYNC)));
        if let Some(r) = rdev {
            r.flags.set(rf::FAULTY);
            mddev.observer().notify_rdev(mddev, r, "state");
        }
        if let Some(r) = repl {
            mddev.observer().notify_rdev(mddev, r, "state");
        }
        return count;
    }
    match rdev {
        Some(r) if recovered(r) => {
            mddev.observer().notify_rdev(mddev, r, "state");
            1
        }
        _ => 0,
    }
}

/// One slot's part of `hot_remove_disk`, once the personality allows the
/// removal: `rdev` leaves the slot (as its member when `is_member`, else
/// as its replacement), and a replacement whose member left takes the
/// slot.
pub fn leave_slot(
    member: &mut Option<Arc<Rdev>>,
    replacement: &mut Option<Arc<Rdev>>,
    is_member: bool,
    rdev: &Rdev,
) {
    if is_member {
        *member = None;
    } else {
        *replacement = None;
    }
    if let Some(repl) = replacement.take() {
        repl.flags.clear(rf::REPLACEMENT);
        *member = Some(repl);
    }
    rdev.flags.clear(rf::WANT_REPLACEMENT);
}
