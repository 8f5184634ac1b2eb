//! The one handle for "now" on a node: the system's wall clock in
//! production, tokio's (and so turmoil's) simulated time under test.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// Milliseconds since the Unix epoch at `start`, advancing with tokio's
    /// clock, which turmoil controls in a simulation.
    Simulated {
        epoch_ms: i64,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A simulated clock that reads `epoch_ms` now.
    pub fn simulated(epoch_ms: i64) -> Clock {
        Clock::Simulated {
            epoch_ms,
            start: tokio::time::Instant::now(),
        }
    }

    /// Milliseconds since 1970-01-01T00:00Z.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() as i64)
                .unwrap_or(0),
            Clock::Simulated { epoch_ms, start } => epoch_ms + start.elapsed().as_millis() as i64,
        }
    }
}
