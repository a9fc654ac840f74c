//! Pieces of the model test (tests/model.rs) that know nothing of md:
//! the random source, the flat byte-array model of what the array must
//! hold, and each member image's volatile write cache (what a power loss
//! may take away).

pub mod cache;
pub mod contents;
pub mod rng;
