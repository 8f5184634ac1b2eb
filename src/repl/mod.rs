//! See the crate documentation for this layer's place.

pub mod dates;
pub mod grammar;
