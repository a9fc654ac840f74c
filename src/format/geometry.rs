//! Where a new v1.x array puts things, computed exactly as mdadm's
//! `--create` does (super1.c `validate_geometry1`, `choose_bm_space`,
//! `add_internal_bitmap1`, `init_super1`, `write_init_super1`; Create.c),
//! so that an array made here is laid out byte for byte like one made by
//! mdadm with the same options on the same devices.
//!
//! All sizes are 512-byte sectors unless the name says bytes.  Nothing here
//! does I/O: the caller measures the devices and writes what
//! [`superblock_for`] and [`bitmap_area`] return.
//!
//! ```text
//! 1.1 / 1.2                                  1.0
//! sb_start   superblock (1.1: 0, 1.2: 8)     0            data (data_offset 0)
//! +8         bitmap superblock + bits        ...
//! +8+bm      bad-block log (8 sectors)       -8-bm        bitmap (sb_start + bitmap_offset)
//! ...        headroom                        -8           bad-block log
//! data_offset data (1 MiB multiple)          sb_start     superblock, 8..12 KiB from the end
//! ```

use super::bitmap::{BITMAP_SB_LEN, BitmapSuper};
use super::kint;
use super::super1::{MAX_DEV_LIMIT, MAX_SECTOR, Minor, SB1_FIXED, Superblock1, devflags, role};

/// `ROUND_UP(x, 2048)`: mdadm rounds a default data offset to 1 MiB.
pub const ONE_MEG_SECTORS: u64 = 2048;
/// Headroom for a future reshape starts at 128 MiB and is halved until it
/// is at most about 0.1% of the device.
pub const MAX_HEADROOM_SECTORS: u64 = 128 * 1024 * 2;
/// Default bitmap chunk when none is given: 64 MiB (or larger if needed).
pub const DEFAULT_BITMAP_CHUNK: u64 = 64 * 1024 * 1024;
/// Smallest bitmap chunk mdadm uses: one page.
pub const MIN_BITMAP_CHUNK: u64 = 4096;
/// `DEFAULT_BITMAP_DELAY`: the bitmap daemon's flush period, seconds.
pub const DEFAULT_DAEMON_SLEEP: u32 = 5;
/// Sectors mdadm reserves for the bad-block log.
pub const BBLOG_SECTORS: u16 = 8;
/// RAID1's default size is rounded down to a multiple of 64 KiB (in case
/// the array is ever reshaped to a level with chunks).
pub const RAID1_SIZE_ROUNDING: u64 = 128;

/// `choose_bm_space`: sectors reserved for a bitmap on a device (or array
/// component) of `sectors`: 4 KiB, 64 KiB above 8 GiB, 128 KiB above
/// 200 GiB.  The kernel's `super_1_choose_bm_space` is the same function.
pub fn choose_bm_space(sectors: u64) -> u64 {
    if sectors < 64 * 2 {
        0
    } else if sectors - 64 * 2 >= 200 * 1024 * 1024 * 2 {
        128 * 2
    } else if sectors - 4 * 2 > 8 * 1024 * 1024 * 2 {
        64 * 2
    } else {
        4 * 2
    }
}

/// The data offset mdadm picks for the whole array from its first present
/// device of `dev_sectors` (`validate_geometry1`, RAID1 so no chunk): 0 for
/// 1.0; for 1.1/1.2 room for the superblock, bitmap and bad-block log
/// (12 KiB + bitmap space) plus a reshape headroom, rounded up to 1 MiB.
pub fn default_data_offset(minor: Minor, dev_sectors: u64) -> u64 {
    default_data_offset_chunked(minor, dev_sectors, 0)
}

/// `default_data_offset` for a striped array of `chunk_kib` KiB chunks:
/// the reshape headroom stays at least two chunks (mdadm stops halving
/// it there), so big chunks on small devices move the data further in.
pub fn default_data_offset_chunked(minor: Minor, dev_sectors: u64, chunk_kib: u64) -> u64 {
    match minor {
        Minor::V0 => 0,
        Minor::V1 | Minor::V2 => {
            let mut headroom = MAX_HEADROOM_SECTORS;
            while (headroom << 10) > dev_sectors
                && (chunk_kib == 0 || headroom / 2 >= chunk_kib * 4)
            {
                headroom >>= 1;
            }
            let want = 12 * 2 + choose_bm_space(dev_sectors) + headroom;
            want.div_ceil(ONE_MEG_SECTORS) * ONE_MEG_SECTORS
        }
    }
}

/// Why a device cannot hold a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooSmall {
    /// The metadata alone does not fit (`validate_geometry1`'s
    /// "too small for required metadata").
    ForMetadata,
    /// Less than 1 KiB would be left for data ("no free space left").
    NoFreeSpace,
}

/// Sectors a device of `dev_sectors` offers for data under `minor` with
/// the array's `data_offset` (`validate_geometry1`'s `freesize`).  For 1.0
/// this already sets aside the superblock, the bad-block log and the
/// largest bitmap mdadm would place there.
pub fn free_sectors(minor: Minor, dev_sectors: u64, data_offset: u64) -> Result<u64, TooSmall> {
    let free = match minor {
        Minor::V0 => {
            let rounded = dev_sectors & !(4 * 2 - 1);
            let overhead = 8 * 2 + 8 + choose_bm_space(dev_sectors);
            rounded.checked_sub(overhead).ok_or(TooSmall::ForMetadata)?
        }
        Minor::V1 | Minor::V2 => dev_sectors
            .checked_sub(data_offset)
            .ok_or(TooSmall::ForMetadata)?,
    };
    // mdadm works in KiB from here on: half a KiB is not space.
    if free / 2 == 0 {
        return Err(TooSmall::NoFreeSpace);
    }
    Ok(free)
}

/// RAID1's default component size from the smallest `free_sectors` of the
/// members: whole KiB, rounded down to 64 KiB.
pub fn default_raid1_size(min_free_sectors: u64) -> u64 {
    ((min_free_sectors / 2) & !(64 - 1)) * 2
}

/// `init_super1`: room for `raid_disks + spares` roles, rounded so the
/// superblock fills whole 512-byte sectors (128 roles for up to 128 devices).
pub fn max_dev_for(devices: u32) -> u32 {
    let bytes = (SB1_FIXED as u64 + 2 * devices as u64).div_ceil(512) * 512;
    kint::u32_saturating((bytes - SB1_FIXED as u64) / 2)
}

/// mdadm's `bitmap_bits`: chunks covering `sectors`.
pub fn bitmap_bits(sectors: u64, chunk_bytes: u64) -> u64 {
    if chunk_bytes == 0 {
        return 0;
    }
    sectors.wrapping_mul(512).wrapping_add(chunk_bytes - 1) / chunk_bytes
}

/// `calc_bitmap_size`: bytes of bitmap superblock plus bits, rounded up to
/// `boundary` bytes.
pub fn bitmap_bytes(sync_size: u64, chunk_bytes: u64, boundary: u64) -> u64 {
    let bytes = bitmap_bits(sync_size, chunk_bytes).div_ceil(8) + BITMAP_SB_LEN as u64;
    bytes.div_ceil(boundary) * boundary
}

/// Why `plan_bitmap` refused; mdadm reports both as "Given bitmap chunk
/// size not supported."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitmapError {
    /// The requested chunk is smaller than the smallest that fits.
    ChunkTooSmall { min_chunk: u64 },
    /// No space for a bitmap at all (component under 64 KiB).
    NoRoom,
}

/// An internal bitmap as mdadm lays it out at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapPlan {
    /// Signed sectors from the superblock to the bitmap superblock.
    pub offset: i32,
    /// Bytes per bit.
    pub chunk_bytes: u64,
    /// Sectors covered: the component size.
    pub sync_size: u64,
    /// Writes to write-mostly members allowed behind (`--write-behind`).
    pub write_behind: u32,
}

impl BitmapPlan {
    /// Sectors the bitmap occupies on each device (4 KiB-rounded).
    pub fn sectors(&self) -> u64 {
        bitmap_bytes(self.sync_size, self.chunk_bytes, 4096) / 512
    }

    /// The bitmap superblock mdadm writes: version 4, events 0.
    pub fn superblock(&self, uuid: [u8; 16]) -> BitmapSuper {
        BitmapSuper {
            write_behind: self.write_behind,
            ..BitmapSuper::new(
                uuid,
                self.sync_size,
                kint::u32_saturating(self.chunk_bytes),
                DEFAULT_DAEMON_SLEEP,
            )
        }
    }
}

/// `add_internal_bitmap1` at create: the chunk (`chunk_bytes` if given,
/// else the smallest that fits in the space `choose_bm_space(size)` leaves,
/// capped to 128 KiB, and at least 64 MiB) and the offset (+8 after the
/// superblock for 1.1/1.2; just below the bad-block log for 1.0).  The
/// bitmap covers `size` sectors: the component size, as for RAID1.
pub fn plan_bitmap(
    minor: Minor,
    size: u64,
    chunk_bytes: Option<u64>,
) -> Result<BitmapPlan, BitmapError> {
    plan_bitmap_covering(minor, size, size, chunk_bytes)
}

/// `plan_bitmap` for a bitmap that covers `sync_size` sectors while the
/// room for it follows from the component size `size`, as mdadm sizes a
/// RAID10's bitmap by the array (`size * raid_disks / copies`).
pub fn plan_bitmap_covering(
    minor: Minor,
    size: u64,
    sync_size: u64,
    chunk_bytes: Option<u64>,
) -> Result<BitmapPlan, BitmapError> {
    let bbl_size = BBLOG_SECTORS as u64;
    // mdadm reserves choose_bm_space + the log, then takes the log back.
    let mut room = choose_bm_space(size);
    if chunk_bytes.is_none() && room > 128 * 2 {
        room = 128 * 2;
    }
    if room <= 1 {
        return Err(BitmapError::NoRoom);
    }
    let max_bits = (room * 512 - BITMAP_SB_LEN as u64) * 8;
    let chunk = choose_bitmap_chunk(max_bits, sync_size, chunk_bytes)?;
    let offset = match minor {
        Minor::V1 | Minor::V2 => 4 * 2,
        Minor::V0 => {
            let bits = sync_size.wrapping_mul(512) / chunk + 1;
            let pages = (bits.div_ceil(8) + BITMAP_SB_LEN as u64).div_ceil(4096);
            -kint::int_from_count(pages * 8) - kint::int_from_count(bbl_size)
        }
    };
    Ok(BitmapPlan {
        offset,
        chunk_bytes: chunk,
        sync_size,
        write_behind: 0,
    })
}

/// The per-device placement `write_init_super1` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLayout {
    pub super_offset: u64,
    pub data_offset: u64,
    pub data_size: u64,
    /// Signed sectors from the superblock; 0 with `bblog_size` 0 = no log.
    pub bblog_offset: i32,
    pub bblog_size: u16,
}

/// Place the superblock, data and bad-block log on one device of
/// `dev_sectors` for an array of component `size` whose (1.1/1.2) data
/// offset is `data_offset`.
pub fn device_layout(
    minor: Minor,
    dev_sectors: u64,
    size: u64,
    data_offset: u64,
    bitmap: Option<&BitmapPlan>,
) -> DeviceLayout {
    let (mut bm_space, bm_offset) = match bitmap {
        Some(b) => (b.sectors(), b.offset as i64),
        None => (choose_bm_space(size), 8),
    };
    match minor {
        Minor::V0 => {
            bm_space += BBLOG_SECTORS as u64;
            let sb = minor.sb_start(dev_sectors).unwrap_or(0);
            if sb < size + bm_space {
                bm_space = sb.saturating_sub(size);
            }
            let with_log = bm_space >= BBLOG_SECTORS as u64;
            DeviceLayout {
                super_offset: sb,
                data_offset: 0,
                data_size: sb - bm_space,
                bblog_offset: if with_log { -(BBLOG_SECTORS as i32) } else { 0 },
                bblog_size: if with_log { BBLOG_SECTORS } else { 0 },
            }
        }
        Minor::V1 | Minor::V2 => {
            let sb = minor.sb_start(dev_sectors).unwrap_or(0);
            let log_at = kint::signed_sectors(sb) + bm_offset + kint::signed_sectors(bm_space);
            let (bblog_offset, bblog_size) = if kint::signed_sectors(data_offset) >= log_at + 8 {
                (
                    kint::int_clamped(bm_offset + kint::signed_sectors(bm_space)),
                    BBLOG_SECTORS,
                )
            } else if data_offset >= sb + 16 {
                (kint::int_from_count(data_offset - 8 - sb), BBLOG_SECTORS)
            } else {
                (0, 0)
            };
            DeviceLayout {
                super_offset: sb,
                data_offset,
                data_size: dev_sectors - data_offset,
                bblog_offset,
                bblog_size,
            }
        }
    }
}

/// `set_name` as `init_super1` writes it: `homehost:name` when there is a
/// homehost, the name has no ':' and the whole is under 32 bytes; else the
/// name cut to 31 bytes.
pub fn set_name(name: &str, homehost: Option<&str>) -> [u8; 32] {
    let mut out = [0u8; 32];
    let joined;
    let bytes = match homehost {
        Some(h) if !name.contains(':') && h.len() + 1 + name.len() < 32 => {
            joined = format!("{h}:{name}");
            joined.as_bytes()
        }
        _ => &name.as_bytes()[..name.len().min(31)],
    };
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

/// What is common to every member's superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySpec {
    pub minor: Minor,
    pub level: i32,
    /// The level's layout word (RAID0's multi-zone layout, RAID10's copies).
    pub layout: u32,
    /// Chunk (or linear's rounding) in sectors; 0 for RAID1.
    pub chunk_sectors: u32,
    /// Feature bits beyond the bitmap's (RAID0's `RAID0_LAYOUT`).
    pub features: u32,
    pub raid_disks: u32,
    /// Component size in sectors (`size`).
    pub size: u64,
    /// 1.1/1.2: the array's data offset; ignored for 1.0.
    pub data_offset: u64,
    pub bitmap: Option<BitmapPlan>,
    pub set_uuid: [u8; 16],
    pub set_name: [u8; 32],
    /// Seconds since the epoch; also the update time.
    pub ctime: u64,
    /// Created clean (`--assume-clean`, nothing to resync, or a parity
    /// array that starts degraded): resync_offset MaxSector instead of 0.
    pub clean: bool,
    /// `dev_roles` entries.
    pub max_dev: u32,
    /// Role per dev_number (`dev_roles`); absent numbers read as spare.
    pub roles: Vec<u16>,
}

/// One present member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub dev_number: u32,
    pub dev_sectors: u64,
    pub write_mostly: bool,
    pub device_uuid: [u8; 16],
}

impl ArraySpec {
    /// `dev_roles` for members given as (dev_number, slot) pairs, where a
    /// slot at or beyond `raid_disks` is a spare, as `add_to_super1` fills
    /// it: 0xffff everywhere else, including the slots of missing devices.
    pub fn roles_for(raid_disks: u32, members: &[(u32, u32)], max_dev: u32) -> (Vec<u16>, u32) {
        let mut max_dev = max_dev;
        for &(n, _) in members {
            if n >= max_dev && max_dev < MAX_DEV_LIMIT {
                max_dev = n + 1;
            }
        }
        let mut roles = vec![role::SPARE; max_dev as usize];
        for &(n, slot) in members {
            if let Some(r) = roles.get_mut(n as usize) {
                *r = match u16::try_from(slot) {
                    Ok(role) if slot < raid_disks => role,
                    _ => role::SPARE,
                };
            }
        }
        (roles, max_dev)
    }
}

/// The superblock `write_init_super1` writes on `member`, checksum set.
pub fn superblock_for(spec: &ArraySpec, member: &MemberSpec) -> Superblock1 {
    let layout = device_layout(
        spec.minor,
        member.dev_sectors,
        spec.size,
        spec.data_offset,
        spec.bitmap.as_ref(),
    );
    let mut roles = spec.roles.clone();
    roles.resize(spec.max_dev as usize, role::SPARE);
    let mut sb = Superblock1 {
        magic: super::super1::MD_SB_MAGIC,
        major_version: 1,
        feature_map: spec.features,
        pad0: 0,
        set_uuid: spec.set_uuid,
        set_name: spec.set_name,
        ctime: spec.ctime,
        level: spec.level,
        layout: spec.layout,
        size: spec.size,
        chunksize: spec.chunk_sectors,
        raid_disks: spec.raid_disks,
        bitmap_offset: 0,
        new_level: 0,
        reshape_position: 0,
        delta_disks: 0,
        new_layout: 0,
        new_chunk: 0,
        new_offset: 0,
        data_offset: layout.data_offset,
        data_size: layout.data_size,
        super_offset: layout.super_offset,
        recovery_offset: 0,
        dev_number: member.dev_number,
        cnt_corrected_read: 0,
        device_uuid: member.device_uuid,
        devflags: if member.write_mostly {
            devflags::WRITE_MOSTLY
        } else {
            0
        },
        bblog_shift: 0,
        bblog_size: layout.bblog_size,
        bblog_offset: layout.bblog_offset,
        utime: spec.ctime,
        events: 0,
        resync_offset: if spec.clean { MAX_SECTOR } else { 0 },
        sb_csum: 0,
        max_dev: spec.max_dev,
        logical_block_size: 0,
        pad3: [0; super::super1::PAD3_LEN],
        dev_roles: roles,
    };
    if let Some(b) = &spec.bitmap {
        sb.feature_map |= super::super1::feature::BITMAP_OFFSET;
        sb.bitmap_offset = kint::le32_from_int(b.offset);
    }
    sb.update_csum();
    sb
}

/// The bitmap area `write_bitmap1` writes at `sb_start + offset`: the
/// bitmap superblock, then every bit set (0xff) up to the 4 KiB-rounded
/// end, so the first assembly resyncs everything the bitmap covers.
pub fn bitmap_area(plan: &BitmapPlan, uuid: [u8; 16]) -> Vec<u8> {
    let len = kint::buf_len(bitmap_bytes(plan.sync_size, plan.chunk_bytes, 4096));
    let mut buf = vec![0xffu8; len];
    buf[..BITMAP_SB_LEN].copy_from_slice(&plan.superblock(uuid).to_bytes());
    buf
}

/// The bitmap chunk mdadm picks for `sync_size` sectors in `max_bits`
/// bits: `chunk_bytes` if given (refused below the smallest that fits),
/// else the smallest that fits and at least 64 MiB.
pub fn choose_bitmap_chunk(
    max_bits: u64,
    sync_size: u64,
    chunk_bytes: Option<u64>,
) -> Result<u64, BitmapError> {
    let mut min_chunk = MIN_BITMAP_CHUNK;
    let mut bits = sync_size.wrapping_mul(512) / min_chunk + 1;
    while bits > max_bits {
        min_chunk *= 2;
        bits = bits.div_ceil(2);
    }
    match chunk_bytes {
        None => Ok(min_chunk.max(DEFAULT_BITMAP_CHUNK)),
        Some(c) if c < min_chunk => Err(BitmapError::ChunkTooSmall { min_chunk }),
        Some(c) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 2048;

    #[test]
    fn bm_space_steps() {
        assert_eq!(choose_bm_space(100), 0);
        assert_eq!(choose_bm_space(16 * MIB), 8);
        assert_eq!(choose_bm_space(16 * 1024 * MIB + 100), 128);
        assert_eq!(choose_bm_space(400 * 1024 * MIB), 256);
    }

    #[test]
    fn data_offset_examples() {
        // 16 MiB: headroom shrinks to 32 sectors, 24+8+32 rounds to 1 MiB.
        assert_eq!(default_data_offset(Minor::V2, 16 * MIB), 2048);
        assert_eq!(default_data_offset(Minor::V2, 100 * MIB), 2048);
        assert_eq!(default_data_offset(Minor::V1, 64 * 1024 * MIB), 133120);
        assert_eq!(default_data_offset(Minor::V2, 128 * 1024 * MIB), 264192);
        assert_eq!(default_data_offset(Minor::V0, 128 * 1024 * MIB), 0);
        // A 512K chunk keeps 2048 sectors of headroom (fixture raid0-v1.1).
        assert_eq!(default_data_offset_chunked(Minor::V1, 16 * MIB, 512), 4096);
        assert_eq!(default_data_offset_chunked(Minor::V2, 16 * MIB, 64), 2048);
    }

    #[test]
    fn fixture_v12_geometry() {
        // raid1-v1.2-bitmap: 16 MiB legs.
        let dev = 16 * MIB;
        let off = default_data_offset(Minor::V2, dev);
        let size = default_raid1_size(free_sectors(Minor::V2, dev, off).unwrap());
        assert_eq!(size, 30720);
        let bm = plan_bitmap(Minor::V2, size, None).unwrap();
        assert_eq!((bm.offset, bm.chunk_bytes), (8, 64 << 20));
        let l = device_layout(Minor::V2, dev, size, off, Some(&bm));
        assert_eq!(
            (l.super_offset, l.data_offset, l.data_size),
            (8, 2048, 30720)
        );
        assert_eq!((l.bblog_offset, l.bblog_size), (16, 8));
    }

    #[test]
    fn fixture_v10_geometry() {
        // raid1-v1.0-bitmap: Used Dev Size 32640, Avail 32736, bitmap -16, log -8.
        let dev = 16 * MIB;
        let size = default_raid1_size(free_sectors(Minor::V0, dev, 0).unwrap());
        assert_eq!(size, 32640);
        let bm = plan_bitmap(Minor::V0, size, None).unwrap();
        assert_eq!(bm.offset, -16);
        let l = device_layout(Minor::V0, dev, size, 0, Some(&bm));
        assert_eq!((l.super_offset, l.data_size), (32752, 32736));
        assert_eq!((l.bblog_offset, l.bblog_size), (-8, 8));
    }

    #[test]
    fn small_chunk_refused() {
        // 200 MiB component: 8 sectors of room hold 30720 bits, so 4 KiB
        // chunks (51200 bits) do not fit.
        let size = 200 * MIB - 2048;
        assert_eq!(
            plan_bitmap(Minor::V2, size, Some(4096)),
            Err(BitmapError::ChunkTooSmall { min_chunk: 8192 })
        );
        assert!(plan_bitmap(Minor::V2, size, Some(8192)).is_ok());
    }

    #[test]
    fn max_dev_rounds_to_sectors() {
        assert_eq!(max_dev_for(2), 128);
        assert_eq!(max_dev_for(128), 128);
        assert_eq!(max_dev_for(129), 384);
    }

    #[test]
    fn names() {
        assert_eq!(&set_name("0", Some("realmd"))[..9], b"realmd:0\0");
        assert_eq!(&set_name("a:b", Some("h"))[..4], b"a:b\0");
        let long = "x".repeat(40);
        assert_eq!(set_name(&long, None)[31], 0);
        assert_eq!(&set_name("0", None)[..2], b"0\0");
    }
}
