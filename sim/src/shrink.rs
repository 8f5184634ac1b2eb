//! Shrinking: given a failing schedule, remove faults, clients and client
//! steps for as long as the run still fails the same check, so that what is
//! left is a small schedule that shows the failure.
//!
//! Each candidate is one full run, so the search removes chunks first
//! (halves, quarters, ... single items, as in delta debugging) and stops
//! after a bounded number of runs.

use crate::run::{run, Class, Failure};
use crate::schedule::Schedule;

/// Default maximum number of runs one shrink may take.
pub const RUNS_MAX: usize = 300;

/// The smallest failing schedule found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub schedule: Schedule,
    pub failure: Failure,
    /// Runs made, the first (the unshrunk schedule) included.
    pub runs: usize,
}

struct Search<'a> {
    class: Class,
    check: String,
    runs: usize,
    runs_max: usize,
    progress: &'a mut dyn FnMut(&str),
}

impl Search<'_> {
    /// Returns the failure if `candidate` fails the same check, and None if
    /// it passes, fails otherwise, or the run budget is spent.
    fn reproduces(&mut self, candidate: &Schedule) -> Option<Failure> {
        if self.runs >= self.runs_max {
            return None;
        }
        self.runs += 1;
        let failure = run(candidate).failure?;
        (failure.class == self.class && failure.check == self.check).then_some(failure)
    }

    /// Removes chunks of the items that `items` selects while the failure
    /// reproduces, from chunks of half the items down to single items.
    fn remove_chunks<T: Clone>(
        &mut self,
        best: &mut (Schedule, Failure),
        what: &str,
        items: fn(&mut Schedule) -> &mut Vec<T>,
    ) {
        let mut chunk = items(&mut best.0.clone()).len().div_ceil(2);
        while chunk >= 1 {
            let mut start = 0;
            while start < items(&mut best.0.clone()).len() {
                let mut candidate = best.0.clone();
                let list = items(&mut candidate);
                let end = (start + chunk).min(list.len());
                list.drain(start..end);
                match self.reproduces(&candidate) {
                    Some(failure) => {
                        let left = items(&mut candidate).len();
                        (self.progress)(&format!("removed {} {what}, {left} left", end - start));
                        *best = (candidate, failure);
                    }
                    None => start += chunk,
                }
                if self.runs >= self.runs_max {
                    return;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
}

/// Shrinks `schedule`, which must fail, with at most `runs_max` runs.
/// `progress` receives one line per accepted removal. Returns an error if
/// the schedule passes.
pub fn shrink(
    schedule: &Schedule,
    runs_max: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Shrunk, String> {
    let Some(failure) = run(schedule).failure else {
        return Err(format!(
            "seed {} passes, so there is nothing to shrink; check the seed and the --bug flag",
            schedule.seed
        ));
    };
    let mut search = Search {
        class: failure.class,
        check: failure.check.clone(),
        runs: 1,
        runs_max,
        progress,
    };
    let mut best = (schedule.clone(), failure);
    search.remove_chunks(&mut best, "faults", |schedule| &mut schedule.faults);
    search.remove_chunks(&mut best, "clients", |schedule| &mut schedule.clients);
    for client in 0..best.0.clients.len() {
        shrink_client(&mut search, &mut best, client);
    }
    Ok(Shrunk {
        schedule: best.0,
        failure: best.1,
        runs: search.runs,
    })
}

/// Removes steps of client `client` while the failure reproduces, one step
/// at a time from the end.
fn shrink_client(search: &mut Search<'_>, best: &mut (Schedule, Failure), client: usize) {
    let mut index = best.0.clients[client].len();
    while index > 0 {
        index -= 1;
        let mut candidate = best.0.clone();
        candidate.clients[client].remove(index);
        if let Some(failure) = search.reproduces(&candidate) {
            let left = candidate.clients[client].len();
            (search.progress)(&format!("removed a step of q{}, {left} left", client + 1));
            *best = (candidate, failure);
        }
        if search.runs >= search.runs_max {
            return;
        }
    }
}
