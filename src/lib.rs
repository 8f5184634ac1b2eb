//! Almanac: a replicated calendar service.
//!
//! The layers, from the bottom up:
//!
//! - [`calendar`]: the domain as a deterministic state machine. Commands are
//!   applied in log order; queries read the state. No I/O, no clock.
//! - [`wal`]: the write-ahead log on a [`wal::Disk`]: framed records with
//!   CRC32C, group commit, recovery of a torn tail.
//! - [`replication`]: Viewstamped Replication as a pure state machine.
//! - [`rpc`]: the Cap'n Proto schemas' generated code and the server and client
//!   objects built on them.
//! - [`node`]: one server process, wiring the layers above to a network and a
//!   disk.
//! - [`client`]: the cluster-aware client library used by the REPL.
//! - [`ical`]: iCalendar import and export on top of the client.
//! - [`repl`]: the rustyline terminal client, its command grammar and its
//!   rendering.
//! - [`bench`]: the load generator behind `almanac bench`.

pub mod bench;
pub mod calendar;
pub mod client;
pub mod ical;
pub mod node;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod repl;
pub mod replication;
pub mod rpc;
pub mod snapshot;
pub mod wal;
