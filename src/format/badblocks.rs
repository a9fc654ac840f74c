//! The v1 bad-block log: up to one 4 KiB page of little-endian u64 entries at
//! `sb_start + bblog_offset`.  Entry = `(block << 10) | len`, both in units of
//! `512 << bblog_shift`, `len` 1..=512; an all-ones word ends the list and
//! fills the rest of the area.  Sectors are device-absolute.

use super::FormatError;

/// The kernel reads at most one page of log.
pub const BB_MAX_BYTES: usize = 4096;
pub const BB_MAX_ENTRIES: usize = BB_MAX_BYTES / 8;
/// Longest run one entry can hold (10-bit length field; 0 is not used).
pub const BB_MAX_LEN: u64 = 512;

/// One bad range, in 512-byte sectors from the start of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BadRange {
    pub sector: u64,
    pub sectors: u64,
}

/// The largest `bblog_shift` Linux takes; above it super_1_load says
/// "bogus bblog_shift" and refuses the device (checked in the oracle: 63
/// loads, 64 does not).
pub const BB_MAX_SHIFT: u8 = 63;

/// Decode a log area (`bblog_size` sectors read from disk).  Entries up to
/// the first all-ones word, in the units the shift gives, as the kernel
/// decodes them: the block number shifted in 64 bits (bits shifted out
/// are lost there too).  An entry of length 0 is skipped: Linux 6.1's
/// `badblocks_set` does nothing with it (mdadm has written logs of zeros
/// with the feature bit set; later kernels refuse them).
pub fn parse(buf: &[u8], shift: u8) -> Result<Vec<BadRange>, FormatError> {
    let mut out = Vec::new();
    if shift > BB_MAX_SHIFT {
        return Err(FormatError::BadBlockLog {
            reason: format!("bogus bblog_shift {shift} for badblocks."),
        });
    }
    for w in buf.chunks_exact(8).take(BB_MAX_ENTRIES) {
        let bb = u64::from_le_bytes(w.try_into().expect("chunks_exact(8)"));
        if bb == u64::MAX {
            break;
        }
        let len = bb & 0x3ff;
        if len == 0 {
            continue;
        }
        out.push(BadRange {
            sector: (bb >> 10) << shift,
            // Below 2^10, the length fits in 64 bits up to shift 54; a
            // longer run than that can be nowhere on a device.
            sectors: if shift <= 54 { len << shift } else { u64::MAX },
        });
    }
    Ok(out)
}

/// Encode a log area of `bytes` bytes: entries, then 0xff fill.
/// Ranges must be aligned to the shift and at most 512 units long; longer
/// ones are split.  Returns an error if they do not fit.
pub fn serialize(ranges: &[BadRange], shift: u8, bytes: usize) -> Result<Vec<u8>, FormatError> {
    let mut buf = vec![0xffu8; bytes];
    let mut i = 0;
    for r in ranges {
        let mut block = r.sector >> shift;
        let mut left = r.sectors.div_ceil(1 << shift);
        while left > 0 {
            let len = left.min(BB_MAX_LEN);
            if (i + 1) * 8 > bytes {
                return Err(FormatError::BadBlockLog {
                    reason: "bad-block log is full".into(),
                });
            }
            let word = (block << 10) | (len & 0x3ff);
            // A full 512-unit run has length bits 0 in the 10-bit field only
            // if len were 1024; 512 fits in 10 bits, so nothing is lost.
            buf[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
            i += 1;
            block += len;
            left -= len;
        }
    }
    Ok(buf)
}

/// "N entries available at offset S sectors": mdadm counts one entry per 8
/// bytes of the reserved area.
pub fn capacity(bblog_size: u16) -> u64 {
    bblog_size as u64 * 512 / 8
}
