//! A request cut into pieces, one per member it reaches, as the
//! personalities that map each sector to one member (linear, raid0) cut
//! theirs; reading and writing such a list in order.

use std::sync::Arc;

use super::{Errno, Rdev};

/// One piece of a request: a member, the sector on it (from its
/// data_offset), and the sectors it takes.
pub type Piece = (Arc<Rdev>, u64, u64);

/// Read `buf` from `pieces`, which cover it in order.  A member's I/O
/// error is the reader's EIO.
pub fn read_pieces(pieces: &[Piece], buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0usize;
    for (rdev, s, n) in pieces {
        let piece = &mut buf[done..done + (n * 512) as usize];
        rdev.read_data(piece, *s).map_err(|_| Errno::EIO)?;
        done += piece.len();
    }
    Ok(())
}

/// Write `data` to `pieces`, which cover it in order.  A member's I/O
/// error is the writer's EIO.
pub fn write_pieces(pieces: &[Piece], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0usize;
    for (rdev, s, n) in pieces {
        let piece = &data[done..done + (n * 512) as usize];
        rdev.write_data(piece, *s).map_err(|_| Errno::EIO)?;
        done += piece.len();
    }
    Ok(())
}

/// `md_flush_request` for such a personality: a flush to every member;
/// EIO if any fails.
pub fn flush_members<'a>(members: impl Iterator<Item = &'a Arc<Rdev>>) -> Result<(), Errno> {
    let mut result = Ok(());
    for rdev in members {
        if rdev.disk.flush().is_err() {
            result = Err(Errno::EIO);
        }
    }
    result
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
