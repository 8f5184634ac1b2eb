//! Invitations with responses, free time, suggestions, history and the week
//! and month views, over one real server. The scripted REPLs run at
//! `NOW` (Monday 2031-01-06 09:00) in UTC.

mod common;

use common::{login, register, repl, repl_json, run_as, serial, Scratch, Server};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";
const BOB_PASSWORD: &str = "bob-password-22";
const CAROL_PASSWORD: &str = "carol-password-333";

/// Runs `commands` as `user` in plain text and returns the output.
fn text_as(server: &Server, user: &str, password: &str, commands: &[&str]) -> String {
    let script = format!("{}{}\n", login(user, password), commands.join("\n"));
    let finished = repl(&server.cluster(), &script, &[]);
    finished.expect_code(0);
    finished.stdout
}

/// Registers alice, bob and carol; alice invites bob and carol to
/// "Planning" on Wednesday 2031-01-08 10:00-11:00 and returns its id.
fn populate(server: &Server) -> u64 {
    let script = [
        register("alice", ALICE_PASSWORD),
        register("bob", BOB_PASSWORD),
        register("carol", CAROL_PASSWORD),
        login("alice", ALICE_PASSWORD),
        "schedule \"Planning\" 2031-01-08 10:00-11:00 with bob, carol\n".into(),
    ]
    .concat();
    let replies = repl_json(&server.cluster(), &script);
    assert_eq!(replies[4]["command"], "schedule", "{}", replies[4]);
    replies[4]["event_id"].as_u64().expect("event id")
}

fn response_in(event: &Value, guest: &str) -> Option<String> {
    let responses = event["responses"].as_array().expect("responses array");
    let entry = responses.iter().find(|entry| entry["guest"] == guest)?;
    Some(entry["response"].as_str()?.to_string())
}

fn slot_starts(reply: &Value) -> Vec<String> {
    let slots = reply["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("no slots in {reply}"));
    slots
        .iter()
        .map(|slot| {
            let minute = slot["start_minute"].as_i64().expect("start minute");
            let time = chrono::DateTime::from_timestamp(minute * 60, 0).expect("valid minute");
            time.format("%Y-%m-%d %H:%M").to_string()
        })
        .collect()
}

#[test]
fn responses_reach_host_and_free_time() {
    let _serial = serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("node"));
    let planning = populate(&server);

    let bob = run_as(
        &server,
        "bob",
        BOB_PASSWORD,
        &[&format!("accept {planning}")],
    );
    assert_eq!(bob[0]["ok"], true, "{}", bob[0]);
    assert_eq!(bob[0]["response"], "accepted");

    let carol = run_as(
        &server,
        "carol",
        CAROL_PASSWORD,
        &[
            "schedule \"Gym\" 2031-01-08 10:30 for 1h",
            &format!("decline {planning}"),
            "schedule \"Gym\" 2031-01-08 10:30 for 1h",
            &format!("accept {planning}"),
            &format!("show {planning}"),
        ],
    );
    assert_eq!(carol[0]["error"]["kind"], "conflict", "{}", carol[0]);
    assert_eq!(carol[1]["ok"], true, "decline: {}", carol[1]);
    assert_eq!(
        carol[2]["ok"], true,
        "a declined event frees time: {}",
        carol[2]
    );
    assert_eq!(
        carol[3]["error"]["kind"], "conflict",
        "accept over Gym: {}",
        carol[3]
    );
    // Guests see every response too.
    assert_eq!(
        response_in(&carol[4]["event"], "bob").as_deref(),
        Some("accepted")
    );
    assert_eq!(
        response_in(&carol[4]["event"], "carol").as_deref(),
        Some("declined")
    );

    let alice = run_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &["inbox", &format!("show {planning}")],
    );
    let responded: Vec<&Value> = alice[0]["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|note| note["kind"] == "responded")
        .collect();
    let actors: Vec<&str> = responded
        .iter()
        .map(|note| note["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, vec!["bob", "carol"], "{}", alice[0]);
    assert_eq!(
        response_in(&alice[1]["event"], "carol").as_deref(),
        Some("declined")
    );

    let shown = text_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &[&format!("show {planning}")],
    );
    assert!(
        shown.contains("responses    bob accepted, carol declined"),
        "{shown}"
    );
}

#[test]
fn free_time_and_suggestions_for_three() {
    let _serial = serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("node"));
    let planning = populate(&server);
    run_as(
        &server,
        "bob",
        BOB_PASSWORD,
        &[&format!("accept {planning}")],
    );

    let carol = run_as(
        &server,
        "carol",
        CAROL_PASSWORD,
        &[
            "schedule \"Dentist\" 2031-01-08 14:00 for 1h",
            "workhours 10:00-16:00 mon-fri",
        ],
    );
    assert_eq!(carol[1]["ok"], true, "{}", carol[1]);

    let alice = run_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &[
            "free bob, carol on 2031-01-08 for 1h",
            "suggest \"Retro\" for 1h with bob, carol next week",
            "schedule suggestion 1",
            "suggest \"Retro 2\" for 1h with bob, carol next week",
            "schedule suggestion 9",
            "free ghost",
        ],
    );
    // bob works 09:00-17:00 and has Planning 10-11; carol works 10:00-16:00
    // and has Planning (not yet responded) 10-11 and the dentist 14-15.
    assert_eq!(
        slot_starts(&alice[0]),
        vec!["2031-01-08 11:00", "2031-01-08 15:00"],
        "{}",
        alice[0]
    );
    // Next week, the first hour that fits all three each day is 10:00.
    assert_eq!(
        slot_starts(&alice[1]),
        vec!["2031-01-13 10:00", "2031-01-14 10:00", "2031-01-15 10:00"],
        "{}",
        alice[1]
    );
    assert_eq!(alice[2]["ok"], true, "{}", alice[2]);
    assert_eq!(alice[2]["event"]["start_utc"], "2031-01-13T10:00:00Z");
    assert_eq!(alice[2]["event"]["guests"][0], "bob");
    // The booked retro now blocks Monday 10:00-11:00.
    assert_eq!(
        slot_starts(&alice[3])[0],
        "2031-01-13 11:00",
        "{}",
        alice[3]
    );
    assert_eq!(alice[4]["error"]["kind"], "invalid", "{}", alice[4]);
    assert_eq!(alice[5]["error"]["kind"], "not_found", "{}", alice[5]);
}

#[test]
fn history_survives_restart() {
    let _serial = serial();
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.path("node"));
    let planning = populate(&server);
    run_as(
        &server,
        "bob",
        BOB_PASSWORD,
        &[&format!("tentative {planning}")],
    );
    run_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &[&format!("edit {planning} title \"Planning Q1\"")],
    );
    server.restart();

    let replies = run_as(
        &server,
        "carol",
        CAROL_PASSWORD,
        &[&format!("history {planning}"), "history 99"],
    );
    let history = replies[0]["history"].as_array().expect("history array");
    let kinds: Vec<&str> = history
        .iter()
        .map(|entry| entry["change"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["created", "responded", "edited"],
        "{}",
        replies[0]
    );
    assert_eq!(history[1]["actor"], "bob");
    assert_eq!(history[1]["change"]["response"], "tentative");
    assert_eq!(history[2]["change"]["fields"][0]["after"], "Planning Q1");
    assert!(history[0]["at_ms"].as_i64().unwrap() > 0);
    assert_eq!(replies[1]["error"]["kind"], "not_found", "{}", replies[1]);
}

#[test]
fn week_and_month_views() {
    let _serial = serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("node"));
    let planning = populate(&server);
    let output = text_as(
        &server,
        "bob",
        BOB_PASSWORD,
        &["week 2031-01-08", "month 2031-01"],
    );
    assert!(output.contains("Week of Mon 2031-01-06 (UTC)"), "{output}");
    let hour_row = output
        .lines()
        .find(|line| line.starts_with("10:00"))
        .unwrap_or_else(|| panic!("no 10:00 row: {output}"));
    assert!(
        hour_row.contains(&format!("#{planning} Planning")),
        "{hour_row}"
    );
    assert!(output.contains("January 2031 (UTC)"), "{output}");
    assert!(output.contains(" 6   7   8*  9"), "{output}");
    assert!(output.contains("* busy: 8 (1 event)"), "{output}");
}

#[test]
fn guest_answers_one_occurrence() {
    let _serial = serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("node"));
    populate(&server);
    let alice = run_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &["schedule \"Standup\" every monday 9:15 for 15m 4 times with bob"],
    );
    assert_eq!(alice[0]["ok"], true, "{}", alice[0]);
    let standup = alice[0]["event_id"].as_u64().expect("event id");

    let bob = run_as(
        &server,
        "bob",
        BOB_PASSWORD,
        &[
            &format!("decline {standup} occurrence 2031-01-13"),
            "schedule \"Dentist\" 2031-01-13 9:00 for 30m",
            "schedule \"Dentist\" 2031-01-20 9:00 for 30m",
            &format!("accept {standup} occurrence 2031-01-13"),
            &format!("accept {standup} occurrence 2031-01-20"),
            &format!("accept {standup} occurrence 2031-01-14"),
        ],
    );
    assert_eq!(bob[0]["ok"], true, "decline one: {}", bob[0]);
    assert!(bob[0]["occurrence_start_minute"].is_i64(), "{}", bob[0]);
    assert_eq!(bob[1]["ok"], true, "the declined week is free: {}", bob[1]);
    assert_eq!(bob[2]["error"]["kind"], "conflict", "{}", bob[2]);
    assert_eq!(bob[3]["error"]["kind"], "conflict", "{}", bob[3]);
    assert_eq!(bob[4]["ok"], true, "accept one: {}", bob[4]);
    assert_eq!(
        bob[5]["ok"], false,
        "no occurrence on a Tuesday: {}",
        bob[5]
    );

    let shown = text_as(
        &server,
        "alice",
        ALICE_PASSWORD,
        &[&format!("show {standup}")],
    );
    assert!(
        shown.contains("bob declined Mon 2031-01-13 09:15, bob accepted Mon 2031-01-20 09:15"),
        "{shown}"
    );
    let inbox = run_as(&server, "alice", ALICE_PASSWORD, &["inbox"]);
    let responded = inbox[0]["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|note| note["kind"] == "responded" && note["event"]["id"] == standup)
        .count();
    assert_eq!(responded, 2, "{}", inbox[0]);
}
