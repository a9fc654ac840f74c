//! The error currency of md and its tree: a kernel errno (`libc::EINVAL`
//! and its kin), returned as the kernel returns `-EINVAL`.

/// A positive `libc` errno value such as `libc::EINVAL`.
pub type Errno = i32;
