//! Proof that the explorer works: each planted bug is caught within a
//! bounded number of seeds, on a seed that passes without the bug, reported
//! with its replay command, and shrunk. Runs only with `--features
//! planted-bugs`.
#![cfg(feature = "planted-bugs")]

use almanac::planted::Bug;
use almanac_sim::run::{run, Class, Failure};
use almanac_sim::schedule::Schedule;
use almanac_sim::shrink::shrink;

/// Seeds each bug gets before the test gives up on it. The rarest catches,
/// `apply-uncommitted` and `ack-before-fsync`, take over a hundred seeds:
/// the first needs a view change that replaces an op a backup already
/// applied, the second an fdatasync that fails. The budget leaves room for
/// schedule changes.
const SEEDS_MAX: u64 = 1000;

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

/// Run budget of each shrink: enough to drop most faults and steps.
const SHRINK_RUNS_MAX: usize = 60;

/// Checks that `bug` is caught, that the explorer binary reports the seed
/// with its replay command and exit status, and that the seed
/// shrinks to a schedule file that still fails the same check.
fn assert_caught(bug: Bug) {
    let (seed, failure) = first_catch(bug);
    eprintln!(
        "{} caught on seed {seed} by {}: {}",
        bug.name(),
        failure.check,
        failure.violations[0].lines().next().unwrap_or_default()
    );
    assert_reported(bug, seed, &failure);
    assert_shrinks(bug, seed, &failure);
}

fn assert_reported(bug: Bug, seed: u64, failure: &Failure) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_almanac-sim"))
        .args(["explore", "--seeds", "1", "--from", &seed.to_string()])
        .args(["--bug", bug.name()])
        .output()
        .expect("almanac-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(failure.class.exit_code()),
        "{stdout}"
    );
    let replay = format!(
        "replay: cargo run -p almanac-sim --release --features planted-bugs -- replay --seed \
         {seed} --bug {}",
        bug.name()
    );
    assert!(stdout.contains(&replay), "no replay command in:\n{stdout}");
    let check = format!("first violated check {}", failure.check);
    assert!(stdout.contains(&check), "no check name in:\n{stdout}");
}

fn assert_shrinks(bug: Bug, seed: u64, failure: &Failure) {
    let schedule = Schedule::derive(seed, Some(bug.name()));
    let shrunk = shrink(&schedule, SHRINK_RUNS_MAX, &mut |_| {}).expect("the caught seed fails");
    assert_eq!(shrunk.failure.check, failure.check);
    assert!(shrunk.schedule.faults.len() <= schedule.faults.len());
    let steps = |schedule: &Schedule| schedule.clients.iter().map(Vec::len).sum::<usize>();
    assert!(steps(&shrunk.schedule) <= steps(&schedule));
    let replayed = Schedule::parse(&shrunk.schedule.to_text()).expect("the shrunk file parses");
    let again = run(&replayed)
        .failure
        .expect("the shrunk schedule fails on replay");
    assert_eq!(again.check, failure.check);
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

/// A directed run for the unconfirmed-read hook: q1 stays with the deposed
/// primary and reads an event after q2 edited it through the new primary.
/// With the bug the read returns the old title, which both the
/// linearizability search and the per-read STALE check flag.
#[test]
fn unconfirmed_read_serves_old_value() {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use almanac_sim::history::sleep_until;
    use almanac_sim::{Cluster, Options, Response};

    const SECOND: Duration = Duration::from_secs(1);
    almanac::planted::set_active(Some(Bug::UnconfirmedRead));
    let mut cluster = Cluster::new(11, Options::default());
    let event = Rc::new(Cell::new(None));
    let written = event.clone();
    cluster.client("q2", "q2", move |mut client| async move {
        client.register().await;
        let start = client.next_slot();
        if let Response::Written { event_id, .. } = client.schedule_at("Room 1", start, true).await
        {
            written.set(Some(event_id));
            sleep_until(6 * SECOND).await;
            client.edit_title(event_id, 1, "Room 7").await;
        }
    });
    let read = event.clone();
    cluster.client("q1", "q1", move |mut client| async move {
        client.register().await;
        sleep_until(12 * SECOND).await;
        if let Some(event_id) = read.get() {
            client.read(event_id).await;
        }
    });
    let primary = cluster.await_primary(5 * SECOND).unwrap();
    cluster.run_until(2 * SECOND).unwrap();
    let minority = [format!("n{primary}"), "q1".to_owned()];
    let majority: Vec<String> = (1..=3u8)
        .filter(|&id| id != primary)
        .map(|id| format!("n{id}"))
        .chain(["q2".to_owned()])
        .collect();
    let minority: Vec<&str> = minority.iter().map(String::as_str).collect();
    let majority: Vec<&str> = majority.iter().map(String::as_str).collect();
    cluster.partition(&minority, &majority);
    cluster.run_until(14 * SECOND).unwrap();
    let (violations, outcome) = cluster.check();
    almanac::planted::set_active(None);
    let history: Vec<String> = outcome.history.iter().map(|op| op.to_string()).collect();
    assert!(
        violations
            .iter()
            .any(|violation| violation.starts_with("LIN")),
        "no stale read was flagged: {violations:?}\n{}",
        history.join("\n")
    );
    assert!(
        violations
            .iter()
            .any(|violation| violation.starts_with("STALE")),
        "the per-read check missed the stale read: {violations:?}\n{}",
        history.join("\n")
    );
}
