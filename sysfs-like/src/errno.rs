//! [`Errno`]: a kernel error number, positive by construction.

use std::num::NonZeroI32;

/// An error: a positive `errno` value such as `EINVAL`, as the kernel's
/// `-EINVAL`.  Whatever an [`Attribute`](crate::Attribute) or
/// [`BinFile`](crate::BinFile) returns becomes the errno of the system call
/// that reached it.  A `NonZeroI32`, as fuser's: a value that is not an
/// errno cannot be made, so none needs checking on the way out.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(NonZeroI32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno::known(libc::$name);
            )*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    ENOTTY,
    EFBIG,
    ENOSPC,
    EROFS,
    ERANGE,
    ENAMETOOLONG,
    ENOSYS,
    ELOOP,
    ENODATA,
    EOVERFLOW,
    EOPNOTSUPP,
    EUCLEAN,
    ENOTBLK,
);

impl Errno {
    /// A positive constant from `libc`.
    const fn known(raw: i32) -> Errno {
        match NonZeroI32::new(raw) {
            Some(v) if raw > 0 => Errno(v),
            _ => panic!("an errno is positive"),
        }
    }

    /// `raw` as an errno, if it is one (positive).
    pub fn from_raw(raw: i32) -> Option<Errno> {
        if raw > 0 {
            NonZeroI32::new(raw).map(Errno)
        } else {
            None
        }
    }

    /// The errno an I/O error carries; `EIO` when it carries none.
    pub fn from_io(e: &std::io::Error) -> Errno {
        e.raw_os_error()
            .and_then(Errno::from_raw)
            .unwrap_or(Errno::EIO)
    }

    /// The positive value, as `libc` spells it.
    pub fn raw(self) -> i32 {
        self.0.get()
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.raw())
    }
}

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.raw(),
            std::io::Error::from_raw_os_error(self.raw())
        )
    }
}

impl std::fmt::Display for Errno {
    /// The number, as the kernel's messages print one (`error=-5` is
    /// `-{e}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_values_are_errnos() {
        assert_eq!(Errno::from_raw(libc::EINVAL), Some(Errno::EINVAL));
        assert_eq!(Errno::from_raw(0), None);
        assert_eq!(Errno::from_raw(-5), None);
        assert_eq!(Errno::EIO.raw(), 5);
        let io = std::io::Error::other("no errno");
        assert_eq!(Errno::from_io(&io), Errno::EIO);
        assert_eq!(
            Errno::from_io(&std::io::Error::from_raw_os_error(libc::ENOSPC)),
            Errno::ENOSPC
        );
    }
}
