//! See the crate documentation for this layer's place.

pub mod render;
