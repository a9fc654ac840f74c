//! A kernfs-like tree served over FUSE with sysfs semantics.
//!
//! This crate knows nothing of md: it holds directories, text attributes,
//! binary files and symlinks, and serves them.
