//! Latency samples and the report both load generators print.

use serde::Serialize;

/// Measurements of one run, with the same fields and units (microseconds)
/// as the JSON report of `almanac bench`, so one script can read both.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub writes: u64,
    pub errors: u64,
    pub writes_per_second: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The maximum time between two consecutive acknowledged writes of one
    /// client. With the leader killed mid-run, it is the pause clients saw.
    pub longest_pause_us: u64,
}

/// The latencies, errors and longest pause that the clients of one run
/// recorded during the measured phase.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub longest_pause_us: u64,
}

impl Samples {
    /// Adds the samples of one client.
    pub fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.longest_pause_us = self.longest_pause_us.max(other.longest_pause_us);
    }

    /// Sorts the latencies and computes the report of a measured phase of
    /// `seconds`.
    pub fn into_report(mut self, clients: usize, seconds: f64) -> LoadReport {
        self.latencies_us.sort_unstable();
        let writes = self.latencies_us.len() as u64;
        LoadReport {
            clients,
            seconds,
            writes,
            errors: self.errors,
            writes_per_second: if seconds > 0.0 {
                writes as f64 / seconds
            } else {
                0.0
            },
            p50_us: percentile(&self.latencies_us, 50.0),
            p90_us: percentile(&self.latencies_us, 90.0),
            p99_us: percentile(&self.latencies_us, 99.0),
            max_us: self.latencies_us.last().copied().unwrap_or(0),
            longest_pause_us: self.longest_pause_us,
        }
    }
}

/// Returns the nearest-rank percentile `p` (0 to 100) of `sorted`,
/// or 0 when there are none. `almanac bench` ranks the same way.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

impl LoadReport {
    /// Formats the report as one line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} clients, {:.1} s: {} writes ({:.0}/s), {} errors; latency p50 {:.2} ms, \
             p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; longest pause {:.2} ms",
            self.clients,
            self.seconds,
            self.writes,
            self.writes_per_second,
            self.errors,
            self.p50_us as f64 / 1000.0,
            self.p90_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.max_us as f64 / 1000.0,
            self.longest_pause_us as f64 / 1000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_empty_is_zero() {
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn percentile_nearest_rank() {
        let values: Vec<u64> = (1..=101).collect();
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&values, 50.0), 51);
        assert_eq!(percentile(&values, 99.0), 100);
        assert_eq!(percentile(&values, 100.0), 101);
    }

    #[test]
    fn report_merges_clients() {
        let mut all = Samples::default();
        all.merge(Samples {
            latencies_us: vec![30, 10],
            errors: 1,
            longest_pause_us: 500,
        });
        all.merge(Samples {
            latencies_us: vec![20],
            errors: 2,
            longest_pause_us: 900,
        });
        let report = all.into_report(2, 2.0);
        assert_eq!(report.writes, 3);
        assert_eq!(report.errors, 3);
        assert_eq!(report.writes_per_second, 1.5);
        assert_eq!(report.p50_us, 20);
        assert_eq!(report.max_us, 30);
        assert_eq!(report.longest_pause_us, 900);
    }

    #[test]
    fn report_of_zero_seconds() {
        let report = Samples::default().into_report(1, 0.0);
        assert_eq!(report.writes_per_second, 0.0);
        assert_eq!(report.p99_us, 0);
    }
}
