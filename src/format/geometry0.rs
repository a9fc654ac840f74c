//! What a new v0.90 array holds, computed as mdadm's `--create` does
//! (super0.c `validate_geometry0`, `init_super0`, `add_to_super0`,
//! `add_internal_bitmap0`, `write_init_super0`, `write_bitmap0`; Create.c's
//! counts), so that an array made here is byte for byte one made by mdadm
//! with the same options on the same devices.
//!
//! A 0.90 member keeps its last 64 KiB (64 KiB-aligned) for md: the 4 KiB
//! superblock, then up to 60 KiB of bitmap.  Data starts at sector 0.
//!
//! ```text
//! 0                       data (size KiB used)
//! sb_start                superblock (4 KiB), sb_start = (sectors & ~127) - 128
//! sb_start + 8            bitmap superblock + bits, 60 KiB written
//! ```

use super::bitmap::BITMAP_SB_LEN;
use super::geometry::{BitmapError, BitmapPlan, choose_bitmap_chunk};
use super::kint;
use super::super0::{self, Disk0, MD_SB_DISKS, Superblock0, disk_state, sb_state};
use super::super1::MD_SB_MAGIC;

/// Bytes `write_bitmap0` writes after the superblock: the bitmap's room.
pub const BITMAP0_BYTES: usize = 60 * 1024;

/// `validate_geometry0`'s `freesize`: sectors a member of `dev_sectors`
/// offers for data (`MD_NEW_SIZE_SECTORS`), or None below 64 KiB.
pub fn free_sectors0(dev_sectors: u64) -> Option<u64> {
    super0::sb_start(dev_sectors)
}

/// `add_internal_bitmap0`: the bitmap follows the superblock and has 60 KiB
/// at most; its chunk is `chunk_bytes` if given (refused below the
/// smallest that fits), else the smallest that fits and at least 64 MiB.
/// It covers `sync_size` sectors.
pub fn plan_bitmap0(sync_size: u64, chunk_bytes: Option<u64>) -> Result<BitmapPlan, BitmapError> {
    let max_bits = (BITMAP0_BYTES as u64 - BITMAP_SB_LEN as u64) * 8;
    let chunk = choose_bitmap_chunk(max_bits, sync_size, chunk_bytes)?;
    Ok(BitmapPlan {
        offset: 8,
        chunk_bytes: chunk,
        sync_size,
        write_behind: 0,
    })
}

/// What `write_bitmap0` writes 4 KiB past the superblock: the bitmap
/// superblock, then every bit set (0xff) to the end of the 60 KiB.
pub fn bitmap_area0(plan: &BitmapPlan, uuid: [u8; 16]) -> Vec<u8> {
    let mut buf = vec![0xffu8; BITMAP0_BYTES];
    buf[..BITMAP_SB_LEN].copy_from_slice(&plan.superblock(uuid).to_bytes());
    buf
}

/// One present member's descriptor (`add_to_super0`): its device number,
/// the block device's numbers (0:0 for an image file), the slot it was
/// given (its device number; at or beyond raid_disks for a spare) and
/// whether it is active.  mdadm keeps only the active and sync bits:
/// write-mostly is for the kernel to record.
pub fn disk0(number: u32, major: u32, minor: u32, raid_disks: u32) -> Disk0 {
    Disk0 {
        number,
        major,
        minor,
        raid_disk: number,
        state: if number < raid_disks {
            disk_state::ACTIVE | disk_state::SYNC
        } else {
            0
        },
        reserved: [0; 27],
    }
}

/// What is common to every member's 0.90 superblock (`init_super0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array0Spec {
    pub level: i32,
    pub layout: u32,
    /// Bytes (`chunk_size`); linear's rounding; 0 for RAID1.
    pub chunk_bytes: u32,
    /// KiB of each member used (0 for linear and RAID0).
    pub size_kib: u32,
    pub raid_disks: u32,
    /// The md device's minor (`md_minor`, "Preferred Minor").
    pub md_minor: u32,
    /// `set_uuid0..3` as stored (host-endian words).
    pub uuid_words: [u32; 4],
    /// Seconds since the epoch (32 bits on disk); also the update time.
    pub ctime: u32,
    /// Created clean (resync not needed).
    pub clean: bool,
    pub bitmap: bool,
    /// Create's counts: present members in active slots, present members,
    /// missing members, spares (a member moved to spare counts as missing
    /// and as spare).
    pub active: u32,
    pub working: u32,
    pub failed: u32,
    pub spare: u32,
    /// Each present member's descriptor, by device number.
    pub disks: Vec<Disk0>,
}

impl Array0Spec {
    /// The words `init_super0` stores for a 16-byte UUID given with
    /// `--uuid`: mdadm's `parse_uuid` reads each 8 hex digits as a number.
    pub fn words_of_uuid(u: [u8; 16]) -> [u32; 4] {
        let w = |i: usize| u32::from_be_bytes([u[i], u[i + 1], u[i + 2], u[i + 3]]);
        [w(0), w(4), w(8), w(12)]
    }

    /// A random UUID's words; with a home host its last two words are the
    /// first 8 bytes of the host name's SHA-1, which is how mdadm knows an
    /// array of its host.
    pub fn words_random(random: [u8; 16], homehost_sha1: Option<[u8; 20]>) -> [u32; 4] {
        let mut u = random;
        if let Some(h) = homehost_sha1 {
            u[8..16].copy_from_slice(&h[..8]);
        }
        let w = |i: usize| u32::from_le_bytes([u[i], u[i + 1], u[i + 2], u[i + 3]]);
        [w(0), w(4), w(8), w(12)]
    }
}

/// The superblock `write_init_super0` writes on the member with device
/// number `number`, checksum set.
pub fn superblock0_for(spec: &Array0Spec, number: u32) -> Superblock0 {
    let mut sb = Superblock0::zeroed();
    sb.md_magic = MD_SB_MAGIC;
    sb.major_version = 0;
    sb.minor_version = 90;
    sb.ctime = spec.ctime;
    sb.level = spec.level;
    sb.size = spec.size_kib;
    sb.nr_disks = spec.working + spec.failed;
    sb.raid_disks = spec.raid_disks;
    sb.md_minor = spec.md_minor;
    [sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3] = spec.uuid_words;
    sb.utime = spec.ctime;
    sb.state = if spec.clean { sb_state::CLEAN } else { 0 }
        | if spec.bitmap {
            sb_state::BITMAP_PRESENT
        } else {
            0
        };
    sb.active_disks = spec.active;
    sb.working_disks = spec.working;
    sb.failed_disks = spec.failed;
    sb.spare_disks = spec.spare;
    sb.set_events(1);
    sb.layout = spec.layout;
    sb.chunk_size = spec.chunk_bytes;
    for d in &spec.disks {
        if let Some(slot) = sb.disks.get_mut(kint::buf_len(u64::from(d.number))) {
            *slot = *d;
        }
    }
    sb.this_disk = sb.disks.get(number as usize).copied().unwrap_or_default();
    sb.update_csum();
    sb
}

/// The most members (active and spare, with any member Create moves to
/// spare) a 0.90 superblock describes.
pub const MAX_DEVS0: u32 = 27;
const _: () = assert!(MAX_DEVS0 as usize == MD_SB_DISKS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_words_as_mdadm_stores_them() {
        let u = [0, 0, 0, 1, 0x5e, 0xed, 0, 0, 0, 0, 0xc0, 0xde, 0, 0, 0, 1];
        assert_eq!(Array0Spec::words_of_uuid(u), [1, 0x5eed_0000, 0xc0de, 1]);
        let h = [7u8; 20];
        let w = Array0Spec::words_random([0; 16], Some(h));
        assert_eq!(w[2], 0x0707_0707);
        assert_eq!(w[0], 0);
    }

    #[test]
    fn bitmap_fits_60k() {
        // 16 MiB members: 4 KiB bits would fit, 64 MiB is the floor.
        let p = plan_bitmap0(32640, None).unwrap();
        assert_eq!((p.offset, p.chunk_bytes), (8, 64 << 20));
        // 1 TiB: (60K - 256) * 8 = 489472 bits; 4 MiB chunks are 262144.
        let tib = 2u64 << 30;
        assert_eq!(
            plan_bitmap0(tib, Some(2 << 20)),
            Err(BitmapError::ChunkTooSmall { min_chunk: 4 << 20 })
        );
        assert_eq!(bitmap_area0(&p, [0; 16]).len(), 60 * 1024);
    }
}
