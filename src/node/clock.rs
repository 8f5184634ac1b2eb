//! The one handle for "now" on a node: the system's wall clock in
//! production, tokio's (and so turmoil's) simulated time under test.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// Milliseconds since the Unix epoch at `start`, advancing with tokio's
    /// clock, which turmoil controls in a simulation, at `rate_ppm` parts
    /// per million of its speed (1,000,000 runs in step with it).
    Simulated {
        epoch_ms: i64,
        start: tokio::time::Instant,
        rate_ppm: u64,
    },
}

impl Clock {
    /// A simulated clock that reads `epoch_ms` now.
    pub fn simulated(epoch_ms: i64) -> Clock {
        Clock::simulated_at_rate(epoch_ms, 1_000_000)
    }

    /// A simulated clock that reads `epoch_ms` now and runs at `rate_ppm`
    /// parts per million of simulated time: a node whose clock drifts.
    pub fn simulated_at_rate(epoch_ms: i64, rate_ppm: u64) -> Clock {
        Clock::Simulated {
            epoch_ms,
            start: tokio::time::Instant::now(),
            rate_ppm,
        }
    }

    /// Milliseconds since 1970-01-01T00:00Z.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() as i64)
                .unwrap_or(0),
            Clock::Simulated {
                epoch_ms,
                start,
                rate_ppm,
            } => {
                let elapsed_ms = start.elapsed().as_millis() * u128::from(*rate_ppm) / 1_000_000;
                epoch_ms + elapsed_ms as i64
            }
        }
    }
}
