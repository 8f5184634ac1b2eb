//! Rust code generated from `schema/*.capnp` by `cargo run -p almanac-codegen`.
//! Do not edit; change the schema and regenerate.

#![allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]

#[rustfmt::skip]
pub mod calendar_capnp;
#[rustfmt::skip]
pub mod replication_capnp;
