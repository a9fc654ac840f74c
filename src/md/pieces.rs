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
