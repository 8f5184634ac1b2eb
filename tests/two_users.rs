//! Two users sharing one real server over TCP: conflicts, authorisation,
//! privacy of private events, and the user directory.

mod common;

use common::{login, register, repl, repl_json, run_as, Scratch, Server};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";
const BOB_PASSWORD: &str = "bob-password-22";
const CAROL_PASSWORD: &str = "carol-password-333";

/// The events alice hosts, by id.
struct AliceEvents {
    town_hall: u64,
    dentist: u64,
    planning: u64,
}

/// Registers alice, bob and carol, then has alice schedule a public event,
/// a private one without guests and a private one with bob as guest.
fn populate(server: &Server) -> AliceEvents {
    let script = [
        register("alice", ALICE_PASSWORD),
        register("bob", BOB_PASSWORD),
        register("carol", CAROL_PASSWORD),
        login("alice", ALICE_PASSWORD),
        "schedule public \"Town hall\" 2031-01-07 18:00 for 2h about \"budget review\"\n".into(),
        "schedule \"Dentist\" 2031-01-07 10:00 for 1h about \"root canal\"\n".into(),
        "schedule \"Planning\" 2031-01-08 10:00 for 1h with bob\n".into(),
    ]
    .concat();
    let replies = repl_json(&server.cluster(), &script);
    assert_eq!(replies.len(), 7, "one JSON object per command: {replies:?}");
    let id = |index: usize| {
        assert_eq!(replies[index]["command"], "schedule", "{}", replies[index]);
        replies[index]["event_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no event_id in {}", replies[index]))
    };
    AliceEvents {
        town_hall: id(4),
        dentist: id(5),
        planning: id(6),
    }
}

fn event_ids(reply: &Value) -> Vec<u64> {
    reply["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events array in {reply}"))
        .iter()
        .map(|event| event["id"].as_u64().expect("event id"))
        .collect()
}

fn error_kind(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "expected a failure: {reply}");
    reply["error"]["kind"].as_str().unwrap_or("(no kind)")
}

#[test]
fn overlap_rejected_with_busy_slots() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let events = populate(&server);
    let replies = run_as::<String>(
        &server,
        "bob",
        BOB_PASSWORD,
        &[
            "schedule \"Clash\" 2031-01-07 18:30 for 30m".into(),
            "schedule \"Ask alice\" 2031-01-07 10:15 for 30m with alice".into(),
            "schedule \"Before\" 2031-01-07 17:00 for 1h".into(),
        ],
    );

    let public_clash = &replies[0];
    assert_eq!(error_kind(public_clash), "conflict");
    let slots = public_clash["error"]["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1, "{public_clash}");
    assert_eq!(slots[0]["participant"], "alice");
    assert_eq!(slots[0]["start_utc"], "2031-01-07T18:00:00Z");
    assert_eq!(slots[0]["end_utc"], "2031-01-07T20:00:00Z");
    assert_eq!(slots[0]["event"]["id"], events.town_hall);
    assert_eq!(slots[0]["event"]["title"], "Town hall");

    let hidden_clash = &replies[1];
    assert_eq!(error_kind(hidden_clash), "conflict");
    let slots = hidden_clash["error"]["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1, "{hidden_clash}");
    assert_eq!(slots[0]["participant"], "alice");
    assert_eq!(slots[0]["start_utc"], "2031-01-07T10:00:00Z");
    assert!(
        slots[0]["event"].is_null(),
        "private event leaked: {hidden_clash}"
    );
    let message = hidden_clash["error"]["message"].as_str().expect("message");
    assert!(!message.contains("Dentist"), "title leaked: {message}");

    // Back-to-back with the town hall is no overlap.
    assert_eq!(replies[2]["ok"], true, "{}", replies[2]);
}

#[test]
fn conflict_text_names_busy_slot() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    populate(&server);
    let script = format!(
        "{}schedule \"Ask alice\" 2031-01-07 09:30 for 2h with alice\n",
        login("bob", BOB_PASSWORD)
    );
    let finished = repl(&server.cluster(), &script, &[]);
    finished.expect_code(1);
    let error = &finished.stderr;
    assert!(error.contains("conflicts with 1 busy slot"), "{finished}");
    assert!(error.contains("alice is busy 10:00-11:00"), "{finished}");
    assert!(error.contains("(private event)"), "{finished}");
    assert!(!error.contains("Dentist"), "title leaked: {finished}");
    assert!(
        !error.contains("root canal"),
        "description leaked: {finished}"
    );
}

#[test]
fn host_only_edits_and_deletes() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let events = populate(&server);
    let town_hall = events.town_hall;
    let replies = run_as::<String>(
        &server,
        "bob",
        BOB_PASSWORD,
        &[
            format!("edit {town_hall} title \"Hijacked\""),
            format!("delete {town_hall}"),
            format!("edit {} at 2031-01-08 11:00", events.planning),
            format!("show {town_hall}"),
        ],
    );
    assert_eq!(error_kind(&replies[0]), "forbidden");
    assert_eq!(error_kind(&replies[1]), "forbidden");
    assert_eq!(error_kind(&replies[2]), "forbidden", "a guest is no host");
    assert_eq!(replies[3]["ok"], true, "{}", replies[3]);
    assert_eq!(replies[3]["event"]["title"], "Town hall");
    assert_eq!(replies[3]["event"]["version"], 1);

    let replies = run_as::<String>(
        &server,
        "alice",
        ALICE_PASSWORD,
        &[
            format!("edit {town_hall} title \"Town hall (moved)\""),
            format!("delete {}", events.dentist),
        ],
    );
    assert_eq!(replies[0]["ok"], true, "{}", replies[0]);
    assert_eq!(replies[0]["event"]["version"], 2);
    assert_eq!(replies[1]["ok"], true, "{}", replies[1]);
}

#[test]
fn private_event_hidden_from_others() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let events = populate(&server);
    let (dentist, planning) = (events.dentist, events.planning);
    let probes = [
        format!("show {dentist}"),
        format!("show {planning}"),
        "agenda 2031-01-06 to 2031-01-12".to_owned(),
        "search host alice".to_owned(),
        "search Dentist".to_owned(),
        "search root canal".to_owned(),
    ];

    // bob is a guest of the planning event, not of the dentist.
    let bob = run_as::<String>(&server, "bob", BOB_PASSWORD, &probes);
    assert_eq!(error_kind(&bob[0]), "not_found");
    assert_eq!(bob[1]["ok"], true, "a guest sees the event: {}", bob[1]);
    assert_eq!(bob[1]["event"]["guests"][0], "bob", "{}", bob[1]);
    assert_eq!(event_ids(&bob[2]), vec![events.town_hall, planning]);
    assert_eq!(event_ids(&bob[3]), vec![events.town_hall, planning]);
    assert_eq!(event_ids(&bob[4]), Vec::<u64>::new());
    assert_eq!(event_ids(&bob[5]), Vec::<u64>::new());

    // carol is no guest at all.
    let carol = run_as::<String>(&server, "carol", CAROL_PASSWORD, &probes);
    assert_eq!(error_kind(&carol[0]), "not_found");
    assert_eq!(error_kind(&carol[1]), "not_found");
    assert_eq!(event_ids(&carol[2]), vec![events.town_hall]);
    assert_eq!(event_ids(&carol[3]), vec![events.town_hall]);
    assert_eq!(event_ids(&carol[4]), Vec::<u64>::new());

    // The host sees all three.
    let alice = run_as::<String>(&server, "alice", ALICE_PASSWORD, &probes);
    assert_eq!(alice[0]["ok"], true, "{}", alice[0]);
    assert_eq!(alice[0]["event"]["title"], "Dentist");
    assert_eq!(
        event_ids(&alice[2]),
        vec![dentist, events.town_hall, planning]
    );
    assert_eq!(event_ids(&alice[4]), vec![dentist]);
    assert_eq!(event_ids(&alice[5]), vec![dentist]);
}

#[test]
fn user_listing_and_whois() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    populate(&server);
    let replies = run_as::<String>(
        &server,
        "bob",
        BOB_PASSWORD,
        &[
            "users".into(),
            "users c*".into(),
            "whois alice".into(),
            "whois zed".into(),
        ],
    );
    assert_eq!(
        replies[0]["users"],
        serde_json::json!(["alice", "bob", "carol"])
    );
    assert_eq!(replies[1]["users"], serde_json::json!(["carol"]));
    assert_eq!(replies[2]["exists"], true, "{}", replies[2]);
    assert_eq!(replies[3]["ok"], true, "{}", replies[3]);
    assert_eq!(replies[3]["exists"], false, "{}", replies[3]);

    let text = repl(
        &server.cluster(),
        &format!(
            "{}users\nwhois carol\nwhois zed\n",
            login("bob", BOB_PASSWORD)
        ),
        &[],
    );
    text.expect_code(0);
    let listing: Vec<&str> = text
        .stdout
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(listing, ["alice", "bob", "carol"], "{text}");
    assert!(text.stdout.contains("carol exists"), "{text}");
    assert!(text.stdout.contains("no user named zed"), "{text}");
}

#[test]
fn duplicate_registration_rejected() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let first = repl(&server.cluster(), &register("dave", "dave-password-1"), &[]);
    first.expect_code(0);
    let again = repl(
        &server.cluster(),
        &register("Dave", "another-password"),
        &["--output", "json"],
    );
    again.expect_code(1);
    let replies = again.replies();
    assert_eq!(error_kind(&replies[0]), "already_exists", "{again}");
}

/// Starts a scripted REPL that registers dave while the server is stopped
/// with SIGSTOP, so the first attempt times out and the client retries with
/// the same request id; then resumes the server.
fn register_across_stall(server: &Server) -> common::Finished {
    server.signal("STOP");
    let cluster = server.cluster();
    let script = register("dave", "dave-password-1");
    let run = std::thread::spawn(move || repl(&cluster, &script, &["--output", "json"]));
    // The client's per-call timeout is 3 s; stall past it.
    std::thread::sleep(std::time::Duration::from_secs(5));
    server.signal("CONT");
    run.join().expect("REPL thread")
}

#[test]
fn register_survives_server_stall() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let finished = register_across_stall(&server);
    finished.expect_code(0);
    let replies = finished.replies();
    assert_eq!(replies.len(), 1, "{finished}");
    assert_eq!(replies[0]["ok"], true, "{finished}");
    assert_eq!(replies[0]["user"], "dave", "{finished}");

    let again = repl_json(
        &server.cluster(),
        &format!("{}users\n", login("dave", "dave-password-1")),
    );
    assert_eq!(again[1]["users"], serde_json::json!(["dave"]));
}

/// Registers erin and stops the server with SIGSTOP as soon as the
/// registration's record reaches the log, before the reply can leave, for
/// longer than the client's call timeout. The stop sometimes comes after
/// the reply, so a single pass proves little; about two runs in three hit
/// the window on a 2-core machine.
fn register_stalled_after_commit(server: &Server) -> common::Finished {
    let segment = std::fs::read_dir(&server.data_dir)
        .expect("read the data directory")
        .map(|entry| entry.expect("directory entry").path())
        .find(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .expect("a segment file");
    let size = || std::fs::metadata(&segment).map_or(0, |meta| meta.len());
    let before = size();
    let cluster = server.cluster();
    let script = register("erin", "erin-password-1");
    let run = std::thread::spawn(move || repl(&cluster, &script, &["--output", "json"]));
    // Poll without sleeping: the reply follows the record within about a
    // millisecond.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() == before && std::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
    let grew = size() > before;
    server.signal("STOP");
    assert!(grew, "the registration never reached the log");
    std::thread::sleep(std::time::Duration::from_secs(5));
    server.signal("CONT");
    run.join().expect("REPL thread")
}

#[test]
fn register_retry_after_commit() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let finished = register_stalled_after_commit(&server);
    let replies = finished.replies();
    assert_eq!(replies[0]["ok"], true, "{finished}");
    assert_eq!(replies[0]["user"], "erin", "{finished}");
}
