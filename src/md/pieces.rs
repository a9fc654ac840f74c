//! A request cut into pieces, one per member it reaches, as the
//! personalities that map each sector to one member (linear, raid0) cut
//! theirs; reading and writing such a list, each member's pieces in
//! order and the members at once.

use std::sync::Arc;

use parking_lot::Mutex;

use super::fanout::{fan_out, fan_out_lanes};
use super::{Errno, Rdev};

/// One piece of a request: a member, the sector on it (from its
/// data_offset), and the sectors it takes.
pub type Piece = (Arc<Rdev>, u64, u64);

/// Cut `buf` into consecutive slices of `lens` bytes, each behind its
/// own lock so that the jobs of a fan-out can fill them at once.
pub fn split_for_jobs(
    mut buf: &mut [u8],
    lens: impl Iterator<Item = usize>,
) -> Vec<Mutex<&mut [u8]>> {
    let mut out = Vec::new();
    for len in lens {
        let (head, rest) = std::mem::take(&mut buf).split_at_mut(len);
        out.push(Mutex::new(head));
        buf = rest;
    }
    out
}

/// The lane of each of `members` (one entry per piece of I/O, in
/// order): one lane per member, so that a member's pieces go in order
/// and the members at once ([`fan_out_lanes`]).
pub fn member_lanes<'a>(members: impl Iterator<Item = &'a Arc<Rdev>>) -> Vec<usize> {
    let mut seen: Vec<&Arc<Rdev>> = Vec::new();
    members
        .map(
            |rdev| match seen.iter().position(|m| Arc::ptr_eq(m, rdev)) {
                Some(l) => l,
                None => {
                    seen.push(rdev);
                    seen.len() - 1
                }
            },
        )
        .collect()
}

/// Read `buf` from `pieces`, which cover it in order, every member at
/// once.  A member's I/O error is the reader's EIO.
pub fn read_pieces(pieces: &[Piece], buf: &mut [u8]) -> Result<(), Errno> {
    let slices = split_for_jobs(buf, pieces.iter().map(|p| (p.2 * 512) as usize));
    let results = fan_out_lanes(&member_lanes(pieces.iter().map(|p| &p.0)), |i| {
        pieces[i].0.read_data(&mut slices[i].lock(), pieces[i].1)
    });
    match results.iter().all(|r| r.is_ok()) {
        true => Ok(()),
        false => Err(Errno::EIO),
    }
}

/// Write `data` to `pieces`, which cover it in order, every member at
/// once.  A member's I/O error is the writer's EIO.
pub fn write_pieces(pieces: &[Piece], data: &[u8]) -> Result<(), Errno> {
    let mut starts = Vec::with_capacity(pieces.len());
    let mut at = 0usize;
    for p in pieces {
        starts.push(at);
        at += (p.2 * 512) as usize;
    }
    let results = fan_out_lanes(&member_lanes(pieces.iter().map(|p| &p.0)), |i| {
        let len = (pieces[i].2 * 512) as usize;
        pieces[i]
            .0
            .write_data(&data[starts[i]..starts[i] + len], pieces[i].1)
    });
    match results.iter().all(|r| r.is_ok()) {
        true => Ok(()),
        false => Err(Errno::EIO),
    }
}

/// `md_flush_request` for such a personality: a flush to every member,
/// all at once as md sends its preflushes; EIO if any fails.
pub fn flush_members<'a>(members: impl Iterator<Item = &'a Arc<Rdev>>) -> Result<(), Errno> {
    let members: Vec<&Arc<Rdev>> = members.collect();
    let flushed = fan_out(members.len(), |i| members[i].disk.flush());
    match flushed.iter().all(|r| r.is_ok()) {
        true => Ok(()),
        false => Err(Errno::EIO),
    }
}

/// The error handler of a personality without redundancy (`raid0_error`,
/// `linear_error`): the array is broken, the member stays as it is.  The
/// kernel's message lacks the colon after the personality's name.
pub fn break_array(mddev: &super::Mddev, name: &str, rdev: &Rdev) {
    if !mddev.flags.test_and_set(super::flags::mddev::BROKEN) {
        mddev.log().err(format!(
            "md/{name}{}: Disk failure on {} detected, failing array.",
            mddev.name, rdev.name
        ));
    }
}
