//! Recurring events over a real server: a weekly standup with a cancelled
//! and a moved occurrence, as the agenda, a conflict and the guest's
//! notifications show it.

mod common;

use common::{login, register, repl, repl_json, Scratch, Server};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";
const BOB_PASSWORD: &str = "bob-password-22";

/// Minutes since the epoch of a UTC time such as `2031-01-06 09:15`.
fn minute(text: &str) -> i64 {
    let time = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time");
    time.and_utc().timestamp() / 60
}

fn checked(replies: Vec<Value>) -> Vec<Value> {
    for reply in &replies {
        assert_eq!(reply["ok"], true, "{reply}");
    }
    replies
}

/// (start minute, original start minute) of each agenda entry of one event.
fn occurrences(agenda: &Value, id: u64) -> Vec<(i64, i64)> {
    let events = agenda["events"].as_array().expect("agenda events");
    events
        .iter()
        .filter(|event| event["id"] == id)
        .map(|event| {
            let start = event["start_minute"].as_i64().expect("start");
            let original = event["recurrence"]["occurrence_start_minute"]
                .as_i64()
                .unwrap_or_else(|| panic!("no occurrence start in {event}"));
            (start, original)
        })
        .collect()
}

#[test]
fn weekly_standup_with_exceptions() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let cluster = server.cluster();
    let setup = [
        register("alice", ALICE_PASSWORD),
        register("bob", BOB_PASSWORD),
    ]
    .concat();
    repl(&cluster, &setup, &[]).expect_code(0);

    // The REPL's clock is Monday 2031-01-06 09:00 UTC.
    let script = format!(
        "{}schedule \"Standup\" every monday 9:15 for 15m with bob\n",
        login("alice", ALICE_PASSWORD)
    );
    let replies = checked(repl_json(&cluster, &script));
    let scheduled = &replies[1];
    let id = scheduled["event_id"].as_u64().expect("event id");
    assert_eq!(
        scheduled["event"]["recurrence"]["rule"], "FREQ=WEEKLY;BYDAY=MO",
        "{scheduled}"
    );
    assert_eq!(
        scheduled["event"]["start_minute"],
        minute("2031-01-06 09:15")
    );
    let horizon = scheduled["conflicts_checked_until_minute"].as_i64();
    assert_eq!(horizon, Some(minute("2031-01-06 09:15") + 731 * 24 * 60));

    let script = format!(
        "{}delete {id} occurrence 2031-01-13\n\
         edit {id} occurrence 2031-01-20 at 2031-01-20 10:00\n",
        login("alice", ALICE_PASSWORD)
    );
    checked(repl_json(&cluster, &script));

    let script = format!(
        "{}agenda 2031-01-06 to 2031-01-27\n\
         show {id}\n",
        login("bob", BOB_PASSWORD)
    );
    let replies = checked(repl_json(&cluster, &script));
    let login_reply = &replies[0];
    let kinds: Vec<&str> = login_reply["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|item| item["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds, vec!["invited", "cancelled", "changed"]);
    let expected = vec![
        (minute("2031-01-06 09:15"), minute("2031-01-06 09:15")),
        (minute("2031-01-20 10:00"), minute("2031-01-20 09:15")),
        (minute("2031-01-27 09:15"), minute("2031-01-27 09:15")),
    ];
    assert_eq!(occurrences(&replies[1], id), expected);
    let exceptions = &replies[2]["event"]["recurrence"]["exceptions"];
    assert_eq!(exceptions, &serde_json::json!([minute("2031-01-13 09:15")]));

    // bob's own event on a later Monday meets the series.
    let script = format!(
        "{}schedule \"Dentist\" 2031-02-03 9:20 for 30m\n",
        login("bob", BOB_PASSWORD)
    );
    let finished = repl(&cluster, &script, &["--output", "json"]);
    finished.expect_code(1);
    let replies = finished.replies();
    let error = &replies[1]["error"];
    assert_eq!(error["kind"], "conflict", "{error}");
    let slot = &error["slots"][0];
    assert_eq!(slot["event"]["id"], id, "{slot}");
    assert_eq!(slot["start_minute"], minute("2031-02-03 09:15"), "{slot}");

    // The text agenda lists the moved occurrence at its new time.
    let script = format!("{}agenda 2031-01-20\n", login("bob", BOB_PASSWORD));
    let finished = repl(&cluster, &script, &[]);
    finished.expect_code(0);
    assert!(
        finished.stdout.contains("10:00-10:15") && finished.stdout.contains("repeats"),
        "{}",
        finished.stdout
    );
}
