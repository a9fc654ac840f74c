//! mdfuse: Linux md software RAID in userspace.
//!
//! Layers, bottom to top (see README.md, "Design"):
//! `disk` (one component device) → `format` (on-disk structures) → `md` (the
//! array) → personalities (`raid1`) → `sysfs` (the attribute table served by
//! the `sysfs-like` crate) → `cli`.

pub mod cli;
pub mod disk;
pub mod format;
