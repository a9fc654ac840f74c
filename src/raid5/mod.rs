//! The raid456 personality (drivers/md/raid5.c): raid4, raid5 and raid6.

pub mod geometry;
pub mod parity;
