//! Bit sets shared between threads, as the kernel's `unsigned long flags`
//! used with `set_bit`/`test_bit`, and the names of their bits.  Each
//! word has its own kind: an rdev bit cannot be tested on the recovery
//! word, nor a recovery bit set on the superblock flags.

use std::marker::PhantomData;
use std::ops::BitOr;
use std::sync::atomic::{AtomicU64, Ordering};

/// One or more bits of a flag word of kind `K`.
pub struct Bits<K>(u64, PhantomData<fn() -> K>);

impl<K> Bits<K> {
    pub const fn new(bits: u64) -> Bits<K> {
        Bits(bits, PhantomData)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl<K> Clone for Bits<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Bits<K> {}

impl<K> PartialEq for Bits<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K> Eq for Bits<K> {}

impl<K> std::fmt::Debug for Bits<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl<K> BitOr for Bits<K> {
    type Output = Bits<K>;
    fn bitor(self, rhs: Self) -> Self {
        Bits::new(self.0 | rhs.0)
    }
}

/// A flag word of kind `K`, manipulated atomically.  A bit of another
/// kind does not compile:
///
/// ```compile_fail
/// use mdfuse::md::flags::{Flags, rdev, recovery};
/// let recovery_word: Flags<recovery::Recovery> = Flags::default();
/// recovery_word.test(rdev::FAULTY);
/// ```
///
/// ```
/// use mdfuse::md::flags::{Flags, recovery};
/// let recovery_word: Flags<recovery::Recovery> = Flags::default();
/// recovery_word.set(recovery::CHECK | recovery::SYNC);
/// assert!(recovery_word.test(recovery::SYNC) && !recovery_word.test(recovery::RUNNING));
/// ```
pub struct Flags<K>(AtomicU64, PhantomData<fn() -> K>);

impl<K> Default for Flags<K> {
    fn default() -> Self {
        Flags(AtomicU64::new(0), PhantomData)
    }
}

impl<K> std::fmt::Debug for Flags<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flags({:#x})", self.0.load(Ordering::Relaxed))
    }
}

impl<K> Flags<K> {
    pub fn test(&self, bit: Bits<K>) -> bool {
        self.0.load(Ordering::Acquire) & bit.0 != 0
    }

    pub fn set(&self, bit: Bits<K>) {
        self.0.fetch_or(bit.0, Ordering::AcqRel);
    }

    pub fn clear(&self, bit: Bits<K>) {
        self.0.fetch_and(!bit.0, Ordering::AcqRel);
    }

    pub fn assign(&self, bit: Bits<K>, on: bool) {
        if on { self.set(bit) } else { self.clear(bit) }
    }

    /// Set `bit`; true if it was already set.
    pub fn test_and_set(&self, bit: Bits<K>) -> bool {
        self.0.fetch_or(bit.0, Ordering::AcqRel) & bit.0 != 0
    }

    /// Clear `bit`; true if it was set.
    pub fn test_and_clear(&self, bit: Bits<K>) -> bool {
        self.0.fetch_and(!bit.0, Ordering::AcqRel) & bit.0 != 0
    }

    /// Every bit that is set.
    pub fn bits(&self) -> Bits<K> {
        Bits::new(self.0.load(Ordering::Acquire))
    }

    /// Is any bit set?
    pub fn any(&self) -> bool {
        self.0.load(Ordering::Acquire) != 0
    }

    /// Is any bit but those of `except` set?
    pub fn any_except(&self, except: Bits<K>) -> bool {
        self.0.load(Ordering::Acquire) & !except.0 != 0
    }

    /// Clear every bit.
    pub fn clear_all(&self) {
        self.0.store(0, Ordering::Release)
    }

    /// `bit_clear_unless`: clear `clear` unless any of `unless` is set;
    /// true if cleared.
    pub fn clear_unless(&self, clear: Bits<K>, unless: Bits<K>) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                if v & unless.0 != 0 {
                    None
                } else {
                    Some(v & !clear.0)
                }
            })
            .is_ok()
    }
}

/// `enum flag_bits` of struct md_rdev.
pub mod rdev {
    /// The word's kind.
    pub enum Rdev {}
    type B = super::Bits<Rdev>;

    pub const FAULTY: B = B::new(1 << 0);
    pub const IN_SYNC: B = B::new(1 << 1);
    pub const BITMAP_SYNC: B = B::new(1 << 2);
    pub const WRITE_MOSTLY: B = B::new(1 << 3);
    pub const BLOCKED: B = B::new(1 << 4);
    pub const WRITE_ERROR_SEEN: B = B::new(1 << 5);
    pub const FAULT_RECORDED: B = B::new(1 << 6);
    pub const BLOCKED_BAD_BLOCKS: B = B::new(1 << 7);
    pub const WANT_REPLACEMENT: B = B::new(1 << 8);
    pub const REPLACEMENT: B = B::new(1 << 9);
    pub const JOURNAL: B = B::new(1 << 10);
    pub const EXTERNAL_BBL: B = B::new(1 << 11);
    pub const FAIL_FAST: B = B::new(1 << 12);
    pub const LAST_DEV: B = B::new(1 << 13);
    /// mdfuse's own: the member failed while it was being rebuilt from
    /// nothing (see `update::md_error`).
    pub const PARTLY_REBUILT: B = B::new(1 << 14);
}

/// `enum recovery_flags` (mddev->recovery).
pub mod recovery {
    /// The word's kind.
    pub enum Recovery {}
    type B = super::Bits<Recovery>;

    pub const RUNNING: B = B::new(1 << 0);
    pub const SYNC: B = B::new(1 << 1);
    pub const RECOVER: B = B::new(1 << 2);
    pub const INTR: B = B::new(1 << 3);
    pub const DONE: B = B::new(1 << 4);
    pub const NEEDED: B = B::new(1 << 5);
    pub const REQUESTED: B = B::new(1 << 6);
    pub const CHECK: B = B::new(1 << 7);
    pub const RESHAPE: B = B::new(1 << 8);
    pub const FROZEN: B = B::new(1 << 9);
    pub const ERROR: B = B::new(1 << 10);
    pub const WAIT: B = B::new(1 << 11);
}

/// `enum mddev_sb_flags`.
pub mod sb {
    /// The word's kind.
    pub enum SbFlags {}
    type B = super::Bits<SbFlags>;

    pub const CHANGE_DEVS: B = B::new(1 << 0);
    pub const CHANGE_CLEAN: B = B::new(1 << 1);
    pub const CHANGE_PENDING: B = B::new(1 << 2);
}

/// `enum mddev_flags` that mdfuse uses.
pub mod mddev {
    /// The word's kind.
    pub enum Mddev {}
    type B = super::Bits<Mddev>;

    /// RAID1 lost its last working leg.
    pub const BROKEN: B = B::new(1 << 0);
    /// md_run in progress: array_state reads as inactive.
    pub const NOT_READY: B = B::new(1 << 1);
    /// A stop is in progress.
    pub const CLOSING: B = B::new(1 << 2);
}
