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

/// Maximum wait for a pushed notification.
const NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to keep reading after the expected notifications, to catch one
/// printed twice.
const NOTIFICATION_SETTLE: Duration = Duration::from_secs(2);

/// Builds a `schedule` line for a one-hour event titled `title` in hour `index`
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

/// Extracts (id, title) from an acknowledged `schedule` reply.
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

/// Checks that `found` contains every event of `expected` exactly once and
/// nothing else.
fn assert_exactly_once(found: &[(u64, String)], expected: &[(u64, String)], context: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, title) in found {
        *counts.entry(title.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, &count)| count > 1).collect();
    assert!(
        doubled.is_empty(),
        "{context}: titles found more than once: {doubled:?}"
    );
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

/// Queries the events of `user` with each node as the primary in turn, so
/// that every node's copy of the calendar serves the query. Kills the
/// primary to move on (the next view's primary is the next node), and
/// restarts it before the next kill so that a majority stays up.
fn assert_every_node_has(cluster: &mut Cluster, user: &str, expected: &[(u64, String)]) {
    // One round per node, plus slack in case a spurious view change makes a
    // checked node primary again.
    let rounds_max = 2 * cluster.ids().count();
    let mut checked: Vec<u8> = Vec::new();
    for _ in 0..rounds_max {
        let primary = cluster.wait_for_primary(None);
        if !checked.contains(&primary) {
            let found = hosted_events(cluster, user);
            assert_exactly_once(&found, expected, &format!("served by node {primary}"));
            checked.push(primary);
        }
        if checked.len() == cluster.ids().count() {
            return;
        }
        cluster.kill(primary);
        cluster.wait_for_primary(Some(primary));
        cluster.restart(primary);
        cluster.converge();
    }
    panic!("only nodes {checked:?} served as primary in {rounds_max} rounds");
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
        assert_eq!(
            reply["ok"],
            true,
            "{line:?} failed: {reply}; stderr:\n{}",
            repl.stderr()
        );
        acknowledged.push(scheduled(&reply));
        if elapsed > slowest.0 {
            slowest = (elapsed, index);
        }
        thread::sleep(WORKLOAD_PAUSE);
    }
    let killed = killed.expect("the workload killed the primary");
    let last_node = repl.switches.last().cloned().unwrap_or_default();
    assert_ne!(
        last_node,
        cluster.address(killed),
        "the client did not announce a move away from the killed node {killed}"
    );
    let status = repl.finish();
    assert!(status.success(), "the workload REPL exited with {status}");
    eprintln!(
        "failover pause seen by the client: the slowest command took {:?} (command {})",
        slowest.0, slowest.1
    );

    cluster.restart(killed);
    cluster.converge();
    assert_every_node_has(&mut cluster, "loader", &acknowledged);
}

#[test]
fn minority_rejects_writes_until_majority_returns() {
    let mut cluster = Cluster::start();
    let primary = cluster.wait_for_primary(None);
    let mut repl = Repl::spawn(cluster.address(primary), &["--keep-going"]);
    repl.register("solo");
    let before = scheduled(&repl.ok(&schedule_line("before", 0, &[])));

    let backups: Vec<u8> = cluster.ids().filter(|&id| id != primary).collect();
    for &id in &backups {
        cluster.kill(id);
    }
    let (reply, elapsed) = repl.timed(&schedule_line("minority", 1, &[]));
    eprintln!("the write to a primary without backups failed after {elapsed:?}: {reply}");
    assert_eq!(
        reply["ok"], false,
        "a write without a majority succeeded: {reply}"
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no node completed the request") || message.contains("unavailable"),
        "the failure does not say the cluster is unavailable: {reply}"
    );
    let status = repl.finish();
    assert_eq!(
        status.code(),
        Some(1),
        "the REPL did not report the failed write"
    );

    for &id in &backups {
        cluster.restart(id);
    }
    cluster.converge();
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.login("solo");
    let after = scheduled(&repl.ok(&schedule_line("after", 2, &[])));
    let status = repl.finish();
    assert!(
        status.success(),
        "the REPL after the restart exited with {status}"
    );

    // The failed write stays in the old primary's log, so the returning
    // backups may still commit it: it may be present, but only once.
    let found = hosted_events(&cluster, "solo");
    let (minority, others): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|(_, title)| title == "minority");
    assert!(
        minority.len() <= 1,
        "the failed write was applied twice: {minority:?}"
    );
    assert_exactly_once(&others, &[before, after], "after the majority returned");
}

#[test]
fn full_restart_then_wiped_node_recovers() {
    let mut cluster = Cluster::start();
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.register("keeper");
    let mut expected = Vec::new();
    for index in 0..5 {
        let line = schedule_line(&format!("kept-{index}"), index, &[]);
        expected.push(scheduled(&repl.ok(&line)));
    }
    assert!(repl.finish().success(), "the first REPL failed");

    let ids: Vec<u8> = cluster.ids().collect();
    for &id in &ids {
        cluster.kill(id);
    }
    for &id in &ids {
        cluster.restart(id);
    }
    cluster.converge();
    let found = hosted_events(&cluster, "keeper");
    assert_exactly_once(&found, &expected, "after restarting every node");

    // Wipe the primary, whose log is the most complete, and write while it
    // is gone so that it must fetch ops it never had.
    let wiped = cluster.wait_for_primary(None);
    cluster.kill(wiped);
    cluster.wipe(wiped);
    let mut repl = Repl::spawn(&cluster.addresses(), &[]);
    repl.login("keeper");
    expected.push(scheduled(&repl.ok(&schedule_line("while-wiped", 5, &[]))));
    assert!(
        repl.finish().success(),
        "the REPL writing without node {wiped} failed"
    );

    cluster.restart(wiped);
    let status = cluster.converge();
    let row = status
        .iter()
        .filter_map(|row| row.report.as_ref())
        .find(|report| report.id == wiped)
        .expect("the converged status lists every node");
    assert_eq!(
        row.role, "backup",
        "the recovered node is not a backup: {status:?}"
    );
    assert_every_node_has(&mut cluster, "keeper", &expected);
}

#[test]
fn data_dir_of_other_node_refused() {
    let mut cluster = Cluster::start();
    cluster.converge();
    cluster.kill(1);
    cluster.kill(2);
    let config = cluster.config_path().to_owned();
    let theirs = cluster.data_dir(1).to_owned();
    let finished = cluster.run(&[
        "server".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--id".as_ref(),
        "2".as_ref(),
        "--data".as_ref(),
        theirs.as_os_str(),
    ]);
    assert_eq!(finished.status.code(), Some(3), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("belongs to node 1, not node 2"),
        "{}",
        finished.stderr
    );

    // Nor may a copy of it run as a one-node cluster of its own.
    let listen = std::net::TcpListener::bind("127.0.0.1:0").expect("probe a free port");
    let address = listen.local_addr().expect("probe address").to_string();
    drop(listen);
    let finished = cluster.run(&[
        "server".as_ref(),
        "--listen".as_ref(),
        address.as_ref(),
        "--data".as_ref(),
        theirs.as_os_str(),
    ]);
    assert_eq!(finished.status.code(), Some(3), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("belongs to a cluster of 3 nodes, not of 1"),
        "{}",
        finished.stderr
    );

    // Each node on its own directory starts as before.
    cluster.restart(1);
    cluster.restart(2);
    let status = cluster.converge();
    assert_eq!(status.len(), 3, "{status:?}");
}

/// Keeps user ann's REPL open while ben invites her twice, the second time
/// after the primary was killed, and checks that her REPL prints each
/// invitation exactly once. With `nudge`, ann runs `agenda` after the
/// failover, which reconnects her client; without it she stays idle.
fn invitations_across_failover(nudge: bool) {
    let mut cluster = Cluster::start();
    let mut invitee = Repl::spawn(&cluster.addresses(), &[]);
    invitee.register("ann");
    let mut host = Repl::spawn(&cluster.addresses(), &[]);
    host.register("ben");

    let first = scheduled(&host.ok(&schedule_line("invite-1", 0, &["ann"])));
    let seen = invitee.wait_notifications(1, NOTIFICATION_TIMEOUT, Duration::ZERO);
    assert_eq!(
        seen.len(),
        1,
        "the first invitation was not pushed: {seen:?}"
    );

    let primary = cluster.wait_for_primary(None);
    cluster.kill(primary);
    let second = scheduled(&host.ok(&schedule_line("invite-2", 1, &["ann"])));
    if nudge {
        invitee.ok("agenda");
    }
    let seen = invitee
        .wait_notifications(2, NOTIFICATION_TIMEOUT, NOTIFICATION_SETTLE)
        .to_vec();
    let titles: Vec<&str> = seen
        .iter()
        .map(|n| n["event"]["title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        titles,
        [first.1.as_str(), second.1.as_str()],
        "notifications after killing primary node {primary}: {seen:?}; stderr:\n{}",
        invitee.stderr()
    );
    for notification in &seen {
        assert_eq!(notification["kind"], "invited", "{notification}");
        assert_eq!(notification["actor"], "ben", "{notification}");
    }
    let ids: Vec<u64> = seen
        .iter()
        .map(|n| n["event"]["id"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [first.0, second.0],
        "notifications name the wrong events"
    );

    assert!(host.finish().success(), "the host's REPL failed");
    assert!(invitee.finish().success(), "the invitee's REPL failed");
}

#[test]
fn notifications_resume_after_failover() {
    invitations_across_failover(true);
}

#[test]
fn notifications_reach_idle_client_after_failover() {
    invitations_across_failover(false);
}

#[test]
fn status_text_and_json_list_nodes() {
    let mut cluster = Cluster::start();
    let (status, text) = cluster.status_output("text");
    assert!(status.success(), "status exited with {status}:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["id", "address", "role", "view", "op", "commit", "lag"]
    );
    let mut roles = Vec::new();
    for id in cluster.ids() {
        let address = cluster.address(id);
        let rows: Vec<&&str> = lines.iter().filter(|l| l.contains(address)).collect();
        assert_eq!(
            rows.len(),
            1,
            "node {id} ({address}) is not one row of:\n{text}"
        );
        let cells: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(cells[0], id.to_string(), "row of node {id}: {}", rows[0]);
        roles.push(cells[2].to_owned());
    }
    roles.sort();
    assert_eq!(roles, ["backup", "backup", "primary"], "roles in:\n{text}");

    let (status, json) = cluster.status_output("json");
    assert!(
        status.success(),
        "status --output json exited with {status}"
    );
    let rows: Value = serde_json::from_str(json.trim()).expect("status prints JSON");
    let rows = rows.as_array().expect("status prints a JSON array");
    assert_eq!(rows.len(), cluster.ids().count(), "{json}");
    for (row, id) in rows.iter().zip(cluster.ids()) {
        let keys: Vec<&str> = row
            .as_object()
            .expect("each row is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["address", "commit", "id", "lag", "op", "role", "view"],
            "{row}"
        );
        assert_eq!(row["id"], id, "{row}");
        assert_eq!(row["address"], cluster.address(id), "{row}");
    }

    let primary = cluster.wait_for_primary(None);
    let backup = cluster
        .ids()
        .find(|&id| id != primary)
        .expect("a cluster of three has a backup");
    cluster.kill(backup);
    let (status, json) = cluster.status_output("json");
    assert!(
        status.success(),
        "status with one node down exited with {status}"
    );
    let rows: Value = serde_json::from_str(json.trim()).expect("status prints JSON");
    let down = &rows[usize::from(backup) - 1];
    let keys: Vec<&String> = down
        .as_object()
        .expect("each row is an object")
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["address", "error"],
        "row of the stopped node: {down}"
    );
    assert_eq!(down["address"], cluster.address(backup), "{json}");
    let error = down["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "the stopped node has no error: {json}");

    let (_, text) = cluster.status_output("text");
    let row = text
        .lines()
        .find(|line| line.contains(cluster.address(backup)))
        .unwrap_or_else(|| panic!("the stopped node is missing from:\n{text}"));
    assert!(
        row.contains(error),
        "the row does not show {error:?}: {row}"
    );
}

#[test]
fn client_given_backup_finds_primary() {
    let cluster = Cluster::start();
    let primary = cluster.wait_for_primary(None);
    let backup = cluster.ids().find(|&id| id != primary).unwrap();
    let mut repl = Repl::spawn(cluster.address(backup), &[]);
    repl.register("hinted");
    let reply = repl.ok(&schedule_line("through a backup", 0, &[]));
    assert_eq!(reply["ok"], true, "{reply}");
    let status = repl.finish();
    assert!(status.success(), "the REPL failed: {status:?}");
}

/// Types `line` into the terminal REPL, waits `wait` for the command to be
/// waiting on the cluster, presses Ctrl-C and expects the stop notice.
fn stop_with_ctrl_c(
    repl: &mut rexpect::session::PtySession,
    line: &str,
    command: &str,
    wait: Duration,
) {
    repl.send_line(line).expect("type the command");
    thread::sleep(wait);
    repl.send_control('c').expect("press Ctrl-C");
    repl.exp_string(&format!("stopped waiting for `{command}`"))
        .expect("Ctrl-C stops the waiting command");
    repl.exp_string("keeper> ").expect("the prompt again");
}

#[test]
fn ctrl_c_stops_commands_without_quorum() {
    let mut cluster = Cluster::start();
    cluster.converge();
    let mut setup = Repl::spawn(&cluster.addresses(), &[]);
    setup.register("keeper");
    assert!(setup.finish().success(), "the setup REPL failed");

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_almanac"));
    command
        .args(["repl", "--cluster", &cluster.addresses(), "--tz", "UTC"])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("HOME", cluster.config_path().parent().expect("config dir"));
    let timeout_ms = REPLY_TIMEOUT.as_millis() as u64;
    let mut repl = rexpect::session::spawn_command(command, Some(timeout_ms))
        .expect("start the REPL in a terminal");
    repl.exp_string("almanac> ").expect("the first prompt");
    repl.send_line("login keeper").expect("type login");
    repl.exp_string("Password for keeper:")
        .expect("the password prompt");
    repl.send_line(cluster_support::PASSWORD)
        .expect("type the password");
    repl.exp_string("keeper> ").expect("the logged-in prompt");

    // The primary alone accepts connections but commits nothing. The first
    // command runs to the client's deadline and drops its connection at
    // each call timeout. From then on the client also tries to resume its
    // notification stream in the background, and each try waits for the
    // call timeout too.
    let primary = cluster.wait_for_primary(None);
    let backups: Vec<u8> = cluster.ids().filter(|id| *id != primary).collect();
    for id in backups {
        cluster.kill(id);
    }
    repl.send_line("agenda 2027-01-05").expect("type agenda");
    repl.exp_string("no node completed the request")
        .expect("the first command fails after the client's deadline");
    repl.exp_string("keeper> ").expect("the prompt again");
    for _ in 0..3 {
        let moment = Duration::from_millis(500);
        stop_with_ctrl_c(&mut repl, "agenda 2027-01-05", "agenda", moment);
        let line = "schedule \"Lost\" 2027-01-05 10:00 for 1h";
        stop_with_ctrl_c(&mut repl, line, "schedule", moment);
    }
    repl.send_line("quit").expect("type quit");
    repl.exp_eof().expect("the REPL ends after quit");
}
