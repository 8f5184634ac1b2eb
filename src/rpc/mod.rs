//! Cap'n Proto glue: the generated schema code, conversions between schema
//! structs and calendar types, and the server objects of the client port.

pub mod backup;
pub mod convert;
pub mod convert_planning;
pub mod gateway;
pub mod generated;
pub mod peer;
pub mod serve;
pub mod session;
pub mod status;

pub use generated::{calendar_capnp, replication_capnp};
