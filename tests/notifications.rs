//! Notifications over a real server: pushed live to a logged-in REPL, and
//! kept for an offline user until the next login, shown exactly once.

mod common;

use std::time::Duration;

use common::{login, register, repl, repl_json, LiveRepl, Scratch, Server};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";
const BOB_PASSWORD: &str = "bob-password-22";

/// How long a pushed notification may take to reach the other REPL.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

fn register_both(server: &Server) {
    let script = [
        register("alice", ALICE_PASSWORD),
        register("bob", BOB_PASSWORD),
    ]
    .concat();
    repl(&server.cluster(), &script, &[]).expect_code(0);
}

/// Runs `commands` as alice, checks that each succeeded, and returns the
/// replies, the login's first.
fn as_alice(server: &Server, commands: &str) -> Vec<Value> {
    let replies = repl_json(
        &server.cluster(),
        &format!("{}{commands}", login("alice", ALICE_PASSWORD)),
    );
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
    }
    replies
}

fn notification_kinds(login_reply: &Value) -> Vec<String> {
    assert_eq!(login_reply["command"], "login", "{login_reply}");
    login_reply["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications array in {login_reply}"))
        .iter()
        .map(|item| item["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn live_notification_reaches_logged_in_user() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    register_both(&server);

    let mut bob = LiveRepl::start(&server.cluster(), &[]);
    bob.send(&login("bob", BOB_PASSWORD));
    bob.expect_line(PUSH_TIMEOUT, |line| line == "bob logged in");

    let replies = as_alice(
        &server,
        "schedule \"Sync\" 2031-01-07 10:00 for 45m with bob\n",
    );
    let id = replies[1]["event_id"].as_u64().expect("event id");
    let line = bob.expect_line(PUSH_TIMEOUT, |line| line.starts_with("[invited]"));
    assert_eq!(
        line,
        format!("[invited] alice invited you to #{id} \"Sync\" Tue 2031-01-07 10:00-10:45")
    );

    as_alice(&server, &format!("delete {id}\n"));
    let line = bob.expect_line(PUSH_TIMEOUT, |line| line.starts_with('['));
    assert!(
        line.starts_with(&format!("[cancelled] alice cancelled #{id} \"Sync\"")),
        "{line}"
    );

    // A command after the pushes runs only once the executor has
    // acknowledged them, so the acknowledgement is stored before the REPL
    // ends.
    bob.send("whois alice\n");
    bob.expect_line(PUSH_TIMEOUT, |line| line == "alice exists");
    let status = bob.finish(PUSH_TIMEOUT);
    assert!(status.success(), "bob's REPL exited with {status}");

    let replies = repl_json(&server.cluster(), &login("bob", BOB_PASSWORD));
    assert_eq!(
        notification_kinds(&replies[0]),
        Vec::<String>::new(),
        "notifications shown live came back on the next login"
    );
}

#[test]
fn live_notification_in_json() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    register_both(&server);

    let mut bob = LiveRepl::start(&server.cluster(), &["--output", "json"]);
    bob.send(&login("bob", BOB_PASSWORD));
    bob.expect_line(PUSH_TIMEOUT, |line| line.contains("\"command\":\"login\""));

    let replies = as_alice(
        &server,
        "schedule public \"Picnic\" 2031-01-11 12:00 for 3h\n",
    );
    let id = replies[1]["event_id"].as_u64().expect("event id");
    let line = bob.expect_line(PUSH_TIMEOUT, |line| line.contains("\"notification\""));
    let pushed: Value = serde_json::from_str(&line).expect("a JSON line");
    let notification = &pushed["notification"];
    assert_eq!(notification["kind"], "invited", "{pushed}");
    assert_eq!(notification["actor"], "alice", "{pushed}");
    assert_eq!(notification["event"]["id"], id, "{pushed}");
    assert_eq!(notification["event"]["title"], "Picnic", "{pushed}");
    assert!(notification["seq"].as_u64().is_some(), "{pushed}");
}

#[test]
fn offline_user_sees_notifications_once() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    register_both(&server);

    // bob is offline while alice invites him, moves the event, and cancels
    // another one.
    let replies = as_alice(
        &server,
        "schedule \"Review\" 2031-01-08 14:00 for 1h with bob\n\
         schedule \"Lunch\" 2031-01-09 12:00 for 1h with bob\n",
    );
    let review = replies[1]["event_id"].as_u64().expect("event id");
    let lunch = replies[2]["event_id"].as_u64().expect("event id");
    as_alice(
        &server,
        &format!("edit {review} at 2031-01-08 15:00\ndelete {lunch}\n"),
    );

    let first = repl(&server.cluster(), &login("bob", BOB_PASSWORD), &[]);
    first.expect_code(0);
    let text = &first.stdout;
    assert!(
        text.contains("4 notifications while you were away:"),
        "{first}"
    );
    assert!(
        text.contains(&format!(
            "[invited] alice invited you to #{review} \"Review\""
        )),
        "{first}"
    );
    assert!(
        text.contains(&format!(
            "[changed] alice changed #{review} \"Review\", now"
        )),
        "{first}"
    );
    assert!(text.contains("15:00-16:00"), "{first}");
    assert!(
        text.contains(&format!("[cancelled] alice cancelled #{lunch} \"Lunch\"")),
        "{first}"
    );

    let second = repl_json(&server.cluster(), &login("bob", BOB_PASSWORD));
    assert_eq!(notification_kinds(&second[0]), Vec::<String>::new());

    // The inbox still lists what was shown, for reference.
    let inbox = repl_json(
        &server.cluster(),
        &format!("{}inbox\n", login("bob", BOB_PASSWORD)),
    );
    let items = inbox[1]["notifications"].as_array().expect("inbox items");
    assert_eq!(items.len(), 4, "{}", inbox[1]);
}

#[test]
fn offline_notifications_in_json_once() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    register_both(&server);
    as_alice(
        &server,
        "schedule \"Standup\" 2031-01-07 09:00 for 15m with bob\n",
    );

    let first = repl_json(&server.cluster(), &login("bob", BOB_PASSWORD));
    assert_eq!(notification_kinds(&first[0]), vec!["invited".to_owned()]);
    assert_eq!(first[0]["notifications"][0]["event"]["title"], "Standup");
    let second = repl_json(&server.cluster(), &login("bob", BOB_PASSWORD));
    assert_eq!(notification_kinds(&second[0]), Vec::<String>::new());
}

/// Restarts the server under bob's open REPL, optionally lets bob run one
/// command, and checks that alice's next invitation still reaches him live.
fn push_after_restart(bob_runs_a_command: bool) {
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.path("data"));
    register_both(&server);
    let mut bob = LiveRepl::start(&server.cluster(), &[]);
    bob.send(&login("bob", BOB_PASSWORD));
    bob.expect_line(PUSH_TIMEOUT, |line| line == "bob logged in");

    server.restart();
    if bob_runs_a_command {
        bob.send("whois alice\n");
        bob.expect_line(PUSH_TIMEOUT, |line| line == "alice exists");
    }
    let replies = as_alice(
        &server,
        "schedule \"After the crash\" 2031-01-09 10:00 for 1h with bob\n",
    );
    let id = replies[1]["event_id"].as_u64().expect("event id");
    let line = bob.expect_line(PUSH_TIMEOUT, |line| line.starts_with("[invited]"));
    let expected = format!("[invited] alice invited you to #{id} \"After the crash\"");
    assert!(line.starts_with(&expected), "{line}");
}

#[test]
fn stream_resumes_on_next_command() {
    let _serial = common::serial();
    push_after_restart(true);
}

#[test]
fn idle_stream_resumes_after_restart() {
    let _serial = common::serial();
    push_after_restart(false);
}

#[test]
fn stream_follows_logged_in_user() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    register_both(&server);
    let mut shared = LiveRepl::start(&server.cluster(), &[]);
    shared.send(&login("bob", BOB_PASSWORD));
    shared.expect_line(PUSH_TIMEOUT, |line| line == "bob logged in");
    shared.send("logout\n");
    shared.expect_line(PUSH_TIMEOUT, |line| line == "bob logged out");
    shared.send(&login("alice", ALICE_PASSWORD));
    shared.expect_line(PUSH_TIMEOUT, |line| line == "alice logged in");

    // carol invites bob only: the REPL, now alice's, must not show it.
    let script = format!(
        "{}schedule \"For bob\" 2031-01-09 10:00 for 1h with bob\n\
         schedule \"For alice\" 2031-01-09 12:00 for 1h with alice\n",
        register("carol", "carol-password-333")
    );
    repl_json(&server.cluster(), &script);
    let line = shared.expect_line(PUSH_TIMEOUT, |line| line.starts_with('['));
    assert!(
        line.starts_with("[invited] carol invited you to #2 \"For alice\""),
        "alice's REPL showed another user's notification: {line}"
    );
    let rest = shared.lines_within(Duration::from_millis(500));
    let pushes: Vec<&String> = rest.iter().filter(|line| line.starts_with('[')).collect();
    assert!(pushes.is_empty(), "unexpected notifications: {pushes:?}");
}
