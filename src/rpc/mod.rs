//! Cap'n Proto glue: the generated schema code, conversions between schema
//! structs and calendar types, and the server objects of both ports.

pub mod generated;

pub use generated::{calendar_capnp, replication_capnp};
