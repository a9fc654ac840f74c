//! mdfuse: Linux md software RAID in userspace.
//!
//! Layers, bottom to top: `disk` (one component device) → `format`
//! (on-disk structures) → `md` (the array: run, stop, superblocks,
//! state machine) with `bitmap`, personalities (`raid1`) and the sync
//! worker (`sync`) → `sysfs` (the attribute tables served by the
//! `sysfs-like` crate) → `daemon` (the mount) and `cli` (the commands).

pub mod bitmap;
pub mod cli;
pub mod daemon;
pub mod disk;
pub mod format;
pub mod md;
pub mod raid1;
pub mod sync;
pub mod sysfs;
