//! Deterministic simulations of an Almanac cluster under turmoil.
//!
//! A run builds a [`Cluster`] from a seed: real nodes (the production node
//! code over turmoil's TCP and file system) and real clients (the client
//! library, recording a [`history`]). A scenario drives it step by step and
//! applies faults: crashes and restarts, power loss before an fsync, empty
//! or edited disks, full and one-way partitions, held messages and link
//! latency. [`Cluster::finish`] lets the run go quiet and applies the
//! checkers of [`check`]; any failure is reported by [`seed::sweep`] with the
//! seed and the command that replays it.
//!
//! Nothing here may use threads, `std::time::Instant`, the operating
//! system's randomness, `tokio::net` or the iteration order of a hash map:
//! every choice follows from the seed.

pub mod check;
pub mod cluster;
pub mod disk;
pub mod freshness;
pub mod history;
pub mod linearizability;
pub mod run;
pub mod schedule;
pub mod seed;
pub mod shrink;
pub mod workload;

pub use cluster::{Cluster, Options, Outcome};
pub use history::{Call, Operation, Response, SimClient};
pub use seed::sweep;

/// Prints the nodes' and clients' log lines with simulated time when
/// `ALMANAC_SIM_LOG` contains a filter such as `info` or `almanac=debug`.
/// Calling it more than once is harmless.
pub fn init_logging() {
    let Ok(filter) = std::env::var("ALMANAC_SIM_LOG") else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_timer(SimulatedTime)
        .with_test_writer()
        .try_init();
}

/// Formats a log line's time as the simulated time of its host.
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(
        &self,
        writer: &mut tracing_subscriber::fmt::format::Writer<'_>,
    ) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(elapsed) => write!(writer, "{:>10.3}s", elapsed.as_secs_f64()),
            None => write!(writer, "{:>11}", "harness"),
        }
    }
}
