//! Snapshots on a three-node cluster of real `almanac server` processes over
//! loopback TCP. Every node compacts its log, and a full restart starts from
//! the snapshots. A wiped node rejoins by fetching a peer's snapshot, because
//! the log it lacks is compacted everywhere. Backup, verify and restore
//! round-trip a cluster's state into a new cluster.

// The support module serves several test files; this one uses part of it.
#[allow(dead_code, unused_imports)]
mod cluster_support;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use serde_json::Value;

use cluster_support::{Cluster, Repl};

/// A snapshot every 10 committed ops, so that the short workload below
/// compacts the log twice or more on every node.
const SNAPSHOT_CONFIG: &str = "\n[snapshot]\nevery_ops = 10\n";

/// Events the workload schedules: with the registration and the login this
/// makes 27 committed ops.
const EVENTS: usize = 25;

/// The maximum number of view changes tried to make one node the primary.
const PRIMARY_ROUNDS_MAX: usize = 6;

/// Returns the ops of the snapshot files in a node's data directory.
fn snapshot_ops(data: &Path) -> Vec<u64> {
    let mut ops: Vec<u64> = fs::read_dir(data)
        .unwrap_or_else(|error| panic!("listing {} failed: {error}", data.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("snapshot-")?
                .strip_suffix(".snap")?
                .parse()
                .ok()
        })
        .collect();
    ops.sort_unstable();
    ops
}

fn schedule_line(index: usize) -> String {
    let day = 1 + index / 24;
    let hour = index % 24;
    format!("schedule \"kept-{index}\" 2027-03-{day:02} {hour:02}:00 for 1h")
}

/// Returns the titles of the events `keeper` hosts, sorted.
fn hosted_titles(cluster: &Cluster) -> Vec<String> {
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.login("keeper");
    let reply = repl.ok("search host keeper");
    assert!(repl.finish().success(), "the query REPL failed");
    let events = reply["events"]
        .as_array()
        .unwrap_or_else(|| panic!("search reply without events: {reply}"));
    let mut titles: Vec<String> = events
        .iter()
        .map(|event: &Value| event["title"].as_str().expect("a title").to_owned())
        .collect();
    titles.sort();
    titles
}

/// Moves the primary role around until node `target` is the primary.
fn make_primary(cluster: &mut Cluster, target: u8) {
    for _ in 0..PRIMARY_ROUNDS_MAX {
        let primary = cluster.wait_for_primary(None);
        if primary == target {
            return;
        }
        cluster.kill(primary);
        cluster.wait_for_primary(Some(primary));
        cluster.restart(primary);
        cluster.converge();
    }
    panic!("node {target} did not become primary in {PRIMARY_ROUNDS_MAX} rounds");
}

#[test]
fn wiped_node_rejoins_by_snapshot() {
    let mut cluster = Cluster::start_with_config(SNAPSHOT_CONFIG);
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.register("keeper");
    for index in 0..EVENTS {
        repl.ok(&schedule_line(index));
    }
    assert!(repl.finish().success(), "the workload REPL failed");
    cluster.converge();
    let mut expected: Vec<String> = (0..EVENTS).map(|index| format!("kept-{index}")).collect();
    expected.sort();

    for id in cluster.ids() {
        let ops = snapshot_ops(cluster.data_dir(id));
        assert!(
            ops.last().is_some_and(|&op| op >= 10),
            "node {id} took no snapshot: {ops:?}"
        );
        assert!(ops.len() <= 2, "node {id} keeps more than two: {ops:?}");
    }

    // A full restart loads the snapshots and replays the log after them.
    let ids: Vec<u8> = cluster.ids().collect();
    for &id in &ids {
        cluster.kill(id);
    }
    for &id in &ids {
        cluster.restart(id);
    }
    cluster.converge();
    assert_eq!(hosted_titles(&cluster), expected, "after a full restart");

    // Wipe a backup and write while it is gone: the ops it lacks are
    // compacted on the others, so only a snapshot transfer brings them.
    let primary = cluster.wait_for_primary(None);
    let wiped = ids.iter().copied().find(|&id| id != primary).unwrap();
    cluster.kill(wiped);
    cluster.wipe(wiped);
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.login("keeper");
    repl.ok("schedule \"while-wiped\" 2027-04-01 09:00 for 1h");
    assert!(
        repl.finish().success(),
        "the REPL writing without node {wiped} failed"
    );
    expected.push("while-wiped".to_owned());
    expected.sort();

    cluster.restart(wiped);
    cluster.converge();
    let installed = snapshot_ops(cluster.data_dir(wiped));
    assert!(
        installed.last().is_some_and(|&op| op >= 10),
        "the wiped node holds no snapshot: {installed:?}"
    );
    make_primary(&mut cluster, wiped);
    assert_eq!(
        hosted_titles(&cluster),
        expected,
        "served by the rejoined node {wiped}"
    );
}

/// Returns the hexadecimal state digest from the output of `backup` or
/// `verify`.
fn state_digest(output: &str) -> String {
    let (_, rest) = output
        .split_once("state digest ")
        .unwrap_or_else(|| panic!("no state digest in {output:?}"));
    rest.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `almanac backup --config CONFIG OUT` against `cluster` and returns
/// the state digest it printed.
fn take_backup(cluster: &Cluster, out: &Path) -> String {
    let args = [
        OsStr::new("backup"),
        OsStr::new("--config"),
        cluster.config_path().as_os_str(),
        out.as_os_str(),
    ];
    let finished = cluster.run(&args);
    assert!(
        finished.status.success(),
        "backup failed: {}",
        finished.stderr
    );
    assert!(
        finished.stdout.contains("wrote backup of op"),
        "{}",
        finished.stdout
    );
    state_digest(&finished.stdout)
}

#[test]
fn backup_verify_restore_round_trip() {
    let mut cluster = Cluster::start_with_config(SNAPSHOT_CONFIG);
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.register("keeper");
    for index in 0..12 {
        repl.ok(&schedule_line(index));
    }
    assert!(repl.finish().success(), "the workload REPL failed");
    cluster.converge();
    let mut expected: Vec<String> = (0..12).map(|index| format!("kept-{index}")).collect();
    expected.sort();

    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("cluster.backup");
    let digest = take_backup(&cluster, &backup);

    let verified = cluster.run(&[OsStr::new("verify"), backup.as_os_str()]);
    assert!(
        verified.status.success(),
        "verify failed: {}",
        verified.stderr
    );
    assert_eq!(state_digest(&verified.stdout), digest);

    let damaged = dir.path().join("damaged.backup");
    let mut bytes = fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(&damaged, bytes).unwrap();
    let rejected = cluster.run(&[OsStr::new("verify"), damaged.as_os_str()]);
    assert_eq!(rejected.status.code(), Some(1), "a damaged backup passed");
    assert!(
        rejected.stderr.contains("damaged.backup is invalid")
            && rejected.stderr.contains("body is damaged"),
        "the rejection does not name the problem: {}",
        rejected.stderr
    );
    drop(cluster);

    // Compare digests before any query, because a login adds a session.
    let restored = Cluster::start_restored(&backup);
    let again = dir.path().join("restored.backup");
    assert_eq!(
        take_backup(&restored, &again),
        digest,
        "the restored cluster's state differs"
    );
    assert_eq!(
        hosted_titles(&restored),
        expected,
        "served by the restored cluster"
    );
}
