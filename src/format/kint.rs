//! The deliberate integer conversions of md's on-disk formats.
//!
//! md's superblocks keep signed kernel `int`s (level, layout, delta_disks,
//! the bitmap and bad-block log offsets) in `__le32` fields, split 64-bit
//! counters into 32-bit halves (0.90's events), and use `int` member
//! numbers as array indexes after checking them.  Each such conversion has
//! a name here, so that every bare `as` left in this code and the
//! superblock code is one the lossy-cast lints have let through.

/// The `int` the kernel reads from a `__le32` field: the same 32 bits in
/// two's complement (a level of `0xffffffff` is linear's -1).
#[allow(clippy::cast_possible_wrap)]
pub const fn int_from_le32(v: u32) -> i32 {
    v as i32
}

/// The `__le32` the kernel writes from an `int`: the same 32 bits.
#[allow(clippy::cast_sign_loss)]
pub const fn le32_from_int(v: i32) -> u32 {
    v as u32
}

/// The low 32 bits of a 64-bit value, as the kernel's assignment of a
/// `u64` to a 32-bit field keeps them (0.90's `events_lo`, `recovery_cp`).
#[allow(clippy::cast_possible_truncation)]
pub const fn lo32(v: u64) -> u32 {
    v as u32
}

/// The high 32 bits of a 64-bit value (0.90's `events_hi`).
pub const fn hi32(v: u64) -> u32 {
    lo32(v >> 32)
}

/// A 64-bit value in a 32-bit field that keeps the largest it can hold
/// when the value is larger (0.90's `ctime`, `utime`, `size` in KiB).
pub fn u32_saturating(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A kernel `int` index (`desc_nr`, `raid_disk`) as an index into a table
/// of `len` entries: `None` when it is negative or past the end.
pub fn index(v: i32, len: usize) -> Option<usize> {
    usize::try_from(v).ok().filter(|&i| i < len)
}

/// A count or offset as the `int` the kernel keeps it in, clamped to
/// `int`'s range (member numbers, slots and sector offsets within a
/// superblock's reach are far inside it).
pub fn int_clamped(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// An unsigned count (a slot, a member number, sectors) as an `int`,
/// clamped to `int`'s range.
pub fn int_from_count(v: impl TryInto<i32>) -> i32 {
    v.try_into().unwrap_or(i32::MAX)
}

/// A byte count or length that came from the device as `u64`, as a
/// buffer length; on the 64-bit hosts mdfuse runs on every `u64` fits,
/// elsewhere it stays as large as a buffer can be (and allocating fails).
pub fn buf_len(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A small buffer length (a superblock's bytes) as the `u32` md keeps it in.
pub fn len_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A sector count as a signed sector offset, as the kernel's `loff_t`
/// arithmetic does; sector counts of real devices are far below 2^63.
pub fn signed_sectors(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_fields_keep_their_bits() {
        assert_eq!(int_from_le32(0xffff_ffff), -1);
        assert_eq!(le32_from_int(-1), 0xffff_ffff);
        assert_eq!(int_from_le32(le32_from_int(i32::MIN)), i32::MIN);
        assert_eq!((hi32(0x1_2345_6789), lo32(0x1_2345_6789)), (1, 0x2345_6789));
        assert_eq!(u32_saturating(1 << 40), u32::MAX);
        assert_eq!(index(-1, 4), None);
        assert_eq!(index(4, 4), None);
        assert_eq!(index(3, 4), Some(3));
    }
}
