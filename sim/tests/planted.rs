//! Proof that the explorer works: each planted bug is caught within a
//! bounded number of seeds, on a seed that passes without the bug. Runs
//! only with `--features planted-bugs`.
#![cfg(feature = "planted-bugs")]

use almanac::planted::Bug;
use almanac_sim::run::{run, Class, Failure};
use almanac_sim::schedule::Schedule;
use almanac_sim::shrink::shrink;

/// Seeds each bug gets before the test gives up on it.
const SEEDS_MAX: u64 = 300;

/// Returns the first seed on which `bug` fails a safety check (or panics)
/// while the same seed passes without the bug, with that failure.
fn first_catch(bug: Bug) -> (u64, Failure) {
    for seed in 1..=SEEDS_MAX {
        let Some(failure) = run(&Schedule::derive(seed, Some(bug.name()))).failure else {
            continue;
        };
        if failure.class == Class::Liveness {
            continue;
        }
        if run(&Schedule::derive(seed, None)).failure.is_none() {
            return (seed, failure);
        }
    }
    panic!(
        "planted bug {} went unnoticed in seeds 1 to {SEEDS_MAX}; the harness lost the \
         power to find it",
        bug.name()
    );
}

fn assert_caught(bug: Bug) {
    let (seed, failure) = first_catch(bug);
    eprintln!(
        "{} caught on seed {seed} by {}: {}",
        bug.name(),
        failure.check,
        failure.violations[0].lines().next().unwrap_or_default()
    );
}

#[test]
fn skip_quorum_caught() {
    assert_caught(Bug::SkipQuorum);
}

#[test]
fn ack_before_fsync_caught() {
    assert_caught(Bug::AckBeforeFsync);
}

#[test]
fn stale_view_caught() {
    assert_caught(Bug::StaleView);
}

#[test]
fn apply_uncommitted_caught() {
    assert_caught(Bug::ApplyUncommitted);
}

#[test]
fn forget_client_table_caught() {
    assert_caught(Bug::ForgetClientTable);
}

#[test]
fn unconfirmed_read_caught() {
    assert_caught(Bug::UnconfirmedRead);
}

#[test]
fn shrunk_schedule_still_fails() {
    let (seed, failure) = first_catch(Bug::SkipQuorum);
    let schedule = Schedule::derive(seed, Some(Bug::SkipQuorum.name()));
    let shrunk = shrink(&schedule, 80, &mut |_| {}).expect("the caught seed fails");
    assert_eq!(shrunk.failure.check, failure.check);
    assert!(shrunk.schedule.faults.len() <= schedule.faults.len());
    let steps = |schedule: &Schedule| schedule.clients.iter().map(Vec::len).sum::<usize>();
    assert!(steps(&shrunk.schedule) <= steps(&schedule));
    let replayed = Schedule::parse(&shrunk.schedule.to_text()).expect("the shrunk file parses");
    let again = run(&replayed).failure.expect("the shrunk schedule fails on replay");
    assert_eq!(again.check, failure.check);
}
