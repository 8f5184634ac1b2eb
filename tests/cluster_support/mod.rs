//! Helpers for the cluster tests: three `almanac server` processes on
//! loopback ports ([`Cluster`]) and scripted `almanac repl` clients
//! ([`Repl`]), all with bounded waits.
//!
//! Every process started here is a child of the test and is killed and
//! reaped when its handle drops, so a failing test leaves nothing running.

mod cluster;
mod process;
mod repl;

pub use cluster::Cluster;
pub use repl::{Repl, PASSWORD, REPLY_TIMEOUT};
