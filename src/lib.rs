//! mdfuse: Linux md software RAID in userspace.
//!
//! Layers, bottom to top: `errno` and `kstr` (the kernel's errnos and
//! string parsers) and `disk` (one component device) → `format` (on-disk
//! structures) → `md` (the array: run, stop, superblocks, state machine,
//! with its write-intent bitmap and sync worker, as md-mod has them) →
//! personalities (`linear`, `raid0`, `raid1`, `raid10`), handed to md by registration → `sysfs` (the
//! attribute tables served by the `sysfs-like` crate) → `daemon` (the
//! mount) and `cli` (the commands).  ARCHITECTURE.md says more.

pub mod cli;
pub mod daemon;
pub mod disk;
pub mod errno;
pub mod format;
pub mod kstr;
pub mod linear;
pub mod md;
pub mod nbd_export;
pub mod nbd_readd;
pub mod raid0;
pub mod raid1;
pub mod raid10;
pub mod raid5;
pub mod sysfs;

/// Every personality this program has, in the order the kernel's modules
/// register theirs (mdstat's `Personalities :` line lists them so).
pub const PERSONALITIES: &[&dyn md::Personality] = &[
    &linear::LINEAR,
    &raid0::RAID0,
    &raid1::RAID1,
    &raid10::RAID10,
    &raid5::RAID6,
    &raid5::RAID5,
    &raid5::RAID4,
];

/// Hand every personality to `md` (`register_md_personality` from each
/// module's init).  Called once by whatever runs arrays: the daemon, and
/// tests that drive md in process.
pub fn register_personalities(md: &md::Md) {
    for p in PERSONALITIES {
        md.register_md_personality(*p);
    }
}
