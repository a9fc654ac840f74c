//! The error currency of md and its tree: a kernel errno (`EINVAL` and
//! its kin), returned as the kernel returns `-EINVAL`.  One type for the
//! whole program: the tree's crate defines it (it is what a sysfs store
//! returns), md and everything below use it from here.

pub use sysfs_like::Errno;
