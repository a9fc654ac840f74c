//! Bit sets shared between threads, as the kernel's `unsigned long flags`
//! used with `set_bit`/`test_bit`, and the names of their bits.

use std::sync::atomic::{AtomicU64, Ordering};

/// A set of flag bits manipulated atomically.
#[derive(Debug, Default)]
pub struct Flags(AtomicU64);

impl Flags {
    pub fn new(bits: u64) -> Flags {
        Flags(AtomicU64::new(bits))
    }

    pub fn test(&self, bit: u64) -> bool {
        self.0.load(Ordering::Acquire) & bit != 0
    }

    pub fn set(&self, bit: u64) {
        self.0.fetch_or(bit, Ordering::AcqRel);
    }

    pub fn clear(&self, bit: u64) {
        self.0.fetch_and(!bit, Ordering::AcqRel);
    }

    pub fn assign(&self, bit: u64, on: bool) {
        if on { self.set(bit) } else { self.clear(bit) }
    }

    /// Set `bit`; true if it was already set.
    pub fn test_and_set(&self, bit: u64) -> bool {
        self.0.fetch_or(bit, Ordering::AcqRel) & bit != 0
    }

    /// Clear `bit`; true if it was set.
    pub fn test_and_clear(&self, bit: u64) -> bool {
        self.0.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    pub fn bits(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub fn store(&self, bits: u64) {
        self.0.store(bits, Ordering::Release)
    }

    /// `bit_clear_unless`: clear `clear` unless any of `unless` is set;
    /// true if cleared.
    pub fn clear_unless(&self, clear: u64, unless: u64) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                if v & unless != 0 {
                    None
                } else {
                    Some(v & !clear)
                }
            })
            .is_ok()
    }
}

/// `enum flag_bits` of struct md_rdev.
pub mod rdev {
    pub const FAULTY: u64 = 1 << 0;
    pub const IN_SYNC: u64 = 1 << 1;
    pub const BITMAP_SYNC: u64 = 1 << 2;
    pub const WRITE_MOSTLY: u64 = 1 << 3;
    pub const BLOCKED: u64 = 1 << 4;
    pub const WRITE_ERROR_SEEN: u64 = 1 << 5;
    pub const FAULT_RECORDED: u64 = 1 << 6;
    pub const BLOCKED_BAD_BLOCKS: u64 = 1 << 7;
    pub const WANT_REPLACEMENT: u64 = 1 << 8;
    pub const REPLACEMENT: u64 = 1 << 9;
    pub const JOURNAL: u64 = 1 << 10;
    pub const EXTERNAL_BBL: u64 = 1 << 11;
    pub const FAIL_FAST: u64 = 1 << 12;
    pub const LAST_DEV: u64 = 1 << 13;
}

/// `enum recovery_flags` (mddev->recovery).
pub mod recovery {
    pub const RUNNING: u64 = 1 << 0;
    pub const SYNC: u64 = 1 << 1;
    pub const RECOVER: u64 = 1 << 2;
    pub const INTR: u64 = 1 << 3;
    pub const DONE: u64 = 1 << 4;
    pub const NEEDED: u64 = 1 << 5;
    pub const REQUESTED: u64 = 1 << 6;
    pub const CHECK: u64 = 1 << 7;
    pub const RESHAPE: u64 = 1 << 8;
    pub const FROZEN: u64 = 1 << 9;
    pub const ERROR: u64 = 1 << 10;
    pub const WAIT: u64 = 1 << 11;
}

/// `enum mddev_sb_flags`.
pub mod sb {
    pub const CHANGE_DEVS: u64 = 1 << 0;
    pub const CHANGE_CLEAN: u64 = 1 << 1;
    pub const CHANGE_PENDING: u64 = 1 << 2;
}

/// `enum mddev_flags` that mdfuse uses.
pub mod mddev {
    /// RAID1 lost its last working leg.
    pub const BROKEN: u64 = 1 << 0;
    /// md_run in progress: array_state reads as inactive.
    pub const NOT_READY: u64 = 1 << 1;
    /// A stop is in progress.
    pub const CLOSING: u64 = 1 << 2;
}
