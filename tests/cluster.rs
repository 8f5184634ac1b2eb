//! A three-node cluster of real `almanac server` processes over loopback
//! TCP, driven through the scripted REPL and `almanac status`: failover
//! under load, a minority that rejects writes, full restarts, recovery of a
//! wiped node, and notifications across a failover.

mod cluster_support;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use cluster_support::{Cluster, Repl, REPLY_TIMEOUT};

/// Events scheduled by the failover workload.
const WORKLOAD_EVENTS: usize = 40;

/// The workload command during which the primary is killed.
const KILL_AT: usize = WORKLOAD_EVENTS / 2;

/// Pause between workload commands, so that the REPL is fed slowly as a
/// person would type and the kill lands between and during commands.
const WORKLOAD_PAUSE: Duration = Duration::from_millis(20);

/// Longest wait for a pushed notification.
const NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to keep reading after the expected notifications, to catch one
/// printed twice.
const NOTIFICATION_SETTLE: Duration = Duration::from_secs(2);

/// A `schedule` line for a one-hour event titled `title` in hour `index`
/// counted from 2027-02-01 00:00 UTC, so that no two events overlap.
fn schedule_line(title: &str, index: usize, guests: &[&str]) -> String {
    let day = 1 + index / 24;
    let hour = index % 24;
    let mut line = format!("schedule \"{title}\" 2027-02-{day:02} {hour:02}:00 for 1h");
    if !guests.is_empty() {
        line.push_str(" with ");
        line.push_str(&guests.join(", "));
    }
    line
}

/// (id, title) of an acknowledged `schedule` reply.
fn scheduled(reply: &Value) -> (u64, String) {
    let id = reply["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("schedule reply without event_id: {reply}"));
    let title = reply["event"]["title"]
        .as_str()
        .unwrap_or_else(|| panic!("schedule reply without a title: {reply}"));
    (id, title.to_owned())
}

/// Logs in as `user` through the whole cluster and returns (id, title) of
/// every event `search host USER` finds.
fn hosted_events(cluster: &Cluster, user: &str) -> Vec<(u64, String)> {
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.login(user);
    let reply = repl.ok(&format!("search host {user}"));
    let status = repl.finish();
    assert!(status.success(), "the query REPL exited with {status}");
    let events = reply["events"]
        .as_array()
        .unwrap_or_else(|| panic!("search reply without events: {reply}"));
    events
        .iter()
        .map(|event| {
            let id = event["id"].as_u64().expect("every event has an id");
            let title = event["title"].as_str().expect("every event has a title");
            (id, title.to_owned())
        })
        .collect()
}

/// Checks that `found` holds every event of `expected` exactly once and
/// nothing else.
fn assert_exactly_once(found: &[(u64, String)], expected: &[(u64, String)], context: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, title) in found {
        *counts.entry(title.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, &count)| count > 1).collect();
    assert!(doubled.is_empty(), "{context}: titles found more than once: {doubled:?}");
    for event in expected {
        assert!(
            found.contains(event),
            "{context}: acknowledged event {event:?} is missing; found {found:?}"
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "{context}: found events that were never acknowledged: {found:?}"
    );
}

/// Queries the events of `user` once with each node as the primary, so that
/// every node's copy of the calendar answers once. Kills the primary to move
/// on to the next node, and restarts it before the next kill so that a
/// majority stays up.
fn assert_every_node_has(cluster: &mut Cluster, user: &str, expected: &[(u64, String)]) {
    let mut checked = Vec::new();
    let mut primary = cluster.wait_for_primary(None);
    loop {
        let found = hosted_events(cluster, user);
        assert_exactly_once(&found, expected, &format!("served by node {primary}"));
        checked.push(primary);
        if checked.len() == cluster.ids().count() {
            return;
        }
        cluster.kill(primary);
        let next = cluster.wait_for_primary(Some(primary));
        assert!(
            !checked.contains(&next),
            "node {next} became primary again; checked {checked:?}"
        );
        cluster.restart(primary);
        cluster.converge();
        // The restarted node rejoined as a backup; the primary is unchanged.
        primary = cluster.wait_for_primary(None);
        assert_eq!(primary, next, "the primary changed while node {next} rejoined");
    }
}

#[test]
fn failover_under_load_loses_and_doubles_nothing() {
    let mut cluster = Cluster::start();
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.register("loader");

    let mut acknowledged = Vec::new();
    let mut slowest = (Duration::ZERO, 0);
    let mut killed = None;
    for index in 0..WORKLOAD_EVENTS {
        let line = schedule_line(&format!("load-{index:02}"), index, &[]);
        let (reply, elapsed) = if index == KILL_AT {
            let primary = cluster.wait_for_primary(None);
            let started = Instant::now();
            repl.send(&line);
            cluster.kill(primary);
            killed = Some(primary);
            (repl.reply(REPLY_TIMEOUT), started.elapsed())
        } else {
            repl.timed(&line)
        };
        assert_eq!(reply["ok"], true, "{line:?} failed: {reply}; stderr:\n{}", repl.stderr());
        acknowledged.push(scheduled(&reply));
        if elapsed > slowest.0 {
            slowest = (elapsed, index);
        }
        thread::sleep(WORKLOAD_PAUSE);
    }
    let status = repl.finish();
    assert!(status.success(), "the workload REPL exited with {status}");
    eprintln!(
        "failover pause seen by the client: the slowest command took {:?} (command {})",
        slowest.0, slowest.1
    );

    let killed = killed.expect("the workload killed the primary");
    cluster.restart(killed);
    cluster.converge();
    assert_every_node_has(&mut cluster, "loader", &acknowledged);
}
