//! On-disk structures of Linux md: superblocks, bitmap, bad-block log.
