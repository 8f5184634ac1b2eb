//! The command line without a terminal: exit statuses of scripted REPL
//! runs, `--keep-going`, the JSON output, startup errors, `status` and
//! `local`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    almanac, free_port, login, register, repl, run_server_expecting_exit, Scratch, Server, NOW,
};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";

/// The exit status when the environment stops a command.
const EXIT_ENVIRONMENT: i32 = 3;

/// The exit status for invalid command-line flags.
const EXIT_USAGE: i32 = 2;

fn alice_script(commands: &str) -> String {
    format!("{}{commands}", register("alice", ALICE_PASSWORD))
}

#[test]
fn script_stops_at_first_failure() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let finished = repl(
        &server.cluster(),
        &alice_script("show 999\nwhois alice\n"),
        &[],
    );
    finished.expect_code(1);
    assert_eq!(
        finished.stdout.trim(),
        "alice registered and logged in",
        "{finished}"
    );
    assert!(
        finished
            .stderr
            .to_lowercase()
            .contains("event 999 not found"),
        "{finished}"
    );
    assert!(!finished.stdout.contains("alice exists"), "{finished}");
}

#[test]
fn grammar_error_fails_script() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let finished = repl(
        &server.cluster(),
        &alice_script("shcedule tomorrow 10:00\nwhois alice\n"),
        &[],
    );
    finished.expect_code(1);
    assert!(
        finished.stderr.contains("unknown command \"shcedule\""),
        "{finished}"
    );
    assert!(!finished.stdout.contains("alice exists"), "{finished}");
}

#[test]
fn keep_going_runs_every_command() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let finished = repl(
        &server.cluster(),
        &alice_script("show 999\nbogus\nwhois alice\n"),
        &["--keep-going"],
    );
    finished.expect_code(1);
    assert!(finished.stdout.contains("alice exists"), "{finished}");
    assert_eq!(finished.stderr.matches("error:").count(), 2, "{finished}");
}

#[test]
fn clean_script_exits_zero() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let script = alice_script(
        "# a comment, then a blank line\n\
         \n\
         \x20  # an indented comment\n\
         whois alice\n\
         quit\n\
         show 999\n",
    );
    let finished = repl(&server.cluster(), &script, &[]);
    finished.expect_code(0);
    assert!(finished.stdout.contains("alice exists"), "{finished}");
    assert_eq!(finished.stderr, "", "quit stops before show: {finished}");
}

#[test]
fn json_output_shape() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let script = alice_script(
        "schedule \"Team sync\" 2031-01-07 10:00 for 45m about \"weekly\"\n\
         when tomorrow 9:30\n\
         agenda 2031-01-07\n\
         status\n\
         show 42\n",
    );
    let finished = repl(
        &server.cluster(),
        &script,
        &["--output", "json", "--keep-going"],
    );
    finished.expect_code(1);
    assert_eq!(
        finished.stderr, "",
        "JSON mode prints errors as JSON: {finished}"
    );
    let replies = finished.replies();
    let commands: Vec<&str> = replies
        .iter()
        .map(|reply| reply["command"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        commands,
        ["register", "schedule", "when", "agenda", "status", "show"]
    );

    let schedule = &replies[1];
    assert_eq!(schedule["ok"], true, "{schedule}");
    let id = schedule["event_id"].as_u64().expect("event_id");
    assert_eq!(schedule["version"], 1);
    let event = &schedule["event"];
    assert_eq!(event["id"], id);
    assert_eq!(event["title"], "Team sync");
    assert_eq!(event["description"], "weekly");
    assert_eq!(event["host"], "alice");
    assert_eq!(event["visibility"], "private");
    assert_eq!(event["start_utc"], "2031-01-07T10:00:00Z");
    assert_eq!(event["end_utc"], "2031-01-07T10:45:00Z");
    assert_eq!(event["duration_minutes"], 45);

    // `--now` fixes "tomorrow" to the day after the reference time.
    assert!(NOW.starts_with("2031-01-06"));
    let when = &replies[2];
    assert_eq!(when["instant"], "2031-01-07T09:30:00+00:00", "{when}");
    assert_eq!(when["zone"], "UTC");

    let agenda_ids: Vec<Value> = replies[3]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["id"].clone())
        .collect();
    assert_eq!(agenda_ids, [Value::from(id)]);

    let status = &replies[4];
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["nodes"][0]["role"], "primary", "{status}");

    let show = &replies[5];
    assert_eq!(show["ok"], false);
    assert_eq!(show["error"]["kind"], "not_found");
    assert!(show["error"]["message"].as_str().is_some(), "{show}");
}

#[test]
fn busy_port_is_environment_error() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("first"));

    let finished = run_server_expecting_exit(
        server.address,
        &scratch.path("second"),
        Duration::from_secs(10),
    );
    assert_eq!(finished.status.code(), Some(EXIT_ENVIRONMENT), "{finished}");
    let message = &finished.stderr;
    assert!(
        message.contains(&format!("cannot listen on {}", server.address)),
        "{finished}"
    );
    assert!(
        message.contains("another process uses that port"),
        "{finished}"
    );

    let port = server.address.port().to_string();
    let data = scratch.path("local");
    let local = almanac(
        &[
            "local",
            "--port",
            &port,
            "--data",
            data.to_str().expect("utf-8 path"),
        ],
        "whois alice\n",
    );
    assert_eq!(local.status.code(), Some(EXIT_ENVIRONMENT), "{local}");
    assert!(
        local.stderr.contains("another process uses that port"),
        "{local}"
    );
}

#[test]
fn invalid_flags_exit_with_usage_status() {
    let _serial = common::serial();
    let finished = almanac(&["repl", "--tz", "Mars/Base"], "");
    assert_eq!(finished.status.code(), Some(EXIT_USAGE), "{finished}");
    assert!(
        finished.stderr.contains("unknown time zone \"Mars/Base\""),
        "{finished}"
    );

    let finished = almanac(&["repl", "--now", "yesterday"], "");
    assert_eq!(finished.status.code(), Some(EXIT_USAGE), "{finished}");
    assert!(
        finished.stderr.contains("invalid --now \"yesterday\""),
        "{finished}"
    );
}

#[test]
fn status_json_keys() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    repl(&server.cluster(), &register("alice", ALICE_PASSWORD), &[]).expect_code(0);

    let finished = almanac(
        &["status", "--cluster", &server.cluster(), "--output", "json"],
        "",
    );
    finished.expect_code(0);
    let reports: Value = serde_json::from_str(finished.stdout.trim()).expect("one JSON array");
    let reports = reports.as_array().expect("an array");
    assert_eq!(reports.len(), 1, "{finished}");
    let report = reports[0].as_object().expect("an object");
    let mut keys: Vec<&str> = report.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["address", "commit", "id", "lag", "op", "role", "view"]
    );
    assert_eq!(report["id"], 1);
    assert_eq!(report["role"], "primary");
    assert_eq!(report["address"], server.cluster());
    let op = report["op"].as_u64().expect("op");
    assert!(op >= 1, "registering wrote an op: {finished}");
    assert_eq!(report["commit"], op, "one node commits what it logs");
    assert_eq!(report["lag"], 0);

    let text = almanac(&["status", "--cluster", &server.cluster()], "");
    text.expect_code(0);
    let header: Vec<&str> = text
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["id", "address", "role", "view", "op", "commit", "lag"]
    );
}

#[test]
fn status_of_unreachable_node_fails() {
    let _serial = common::serial();
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let finished = almanac(
        &[
            "status",
            "--cluster",
            &address.to_string(),
            "--output",
            "json",
        ],
        "",
    );
    finished.expect_code(1);
    let reports: Value = serde_json::from_str(finished.stdout.trim()).expect("one JSON array");
    assert_eq!(reports[0]["address"], address.to_string());
    let error = reports[0]["error"].as_str().expect("an error message");
    assert!(error.contains(&address.to_string()), "{finished}");

    let text = almanac(&["status", "--cluster", &address.to_string()], "");
    text.expect_code(1);
    let row: Vec<&str> = text
        .stdout
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..7],
        ["-", &address.to_string(), "unreachable", "-", "-", "-", "-"],
        "{text}"
    );
}

#[test]
fn local_runs_node_and_script() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let data = scratch.path("local");
    let data_arg = data.to_str().expect("utf-8 path");
    let script = alice_script("schedule \"Solo\" 2031-01-07 10:00 for 1h\n");
    let args = [
        "local", "--port", "0", "--data", data_arg, "--now", NOW, "--tz", "UTC",
    ];
    let first = almanac(&args, &script);
    first.expect_code(0);
    assert!(first.stdout.contains("scheduled #1"), "{first}");

    // The second run finds the first one's data on disk.
    let second = almanac(
        &args,
        &format!("{}show 1\n", login("alice", ALICE_PASSWORD)),
    );
    second.expect_code(0);
    assert!(second.stdout.contains("#1  Solo"), "{second}");
    assert!(
        data.join("almanac.log").exists(),
        "local logs to its data dir"
    );
}

#[test]
fn server_log_file_has_no_colour_codes() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let log_path = scratch.path("server.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut child = std::process::Command::new(common::ALMANAC)
        .args(["server", "--listen", &address.to_string(), "--data"])
        .arg(scratch.path("data"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("clone the log file"))
        .stderr(log)
        .spawn()
        .expect("start the server");
    // The port accepts a moment before the node logs that it serves, so
    // the test waits for the line itself.
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let serving = common::wait_until(common::STARTUP_TIMEOUT, || read_log().contains("serving"));
    let _ = child.kill();
    let _ = child.wait();
    let text = read_log();
    assert!(serving, "the server did not log that it serves: {text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in the log file: {text:?}"
    );
}

#[test]
fn malformed_cluster_address_refused() {
    let finished = almanac(&["repl", "--cluster", "127.0.0.1:7401,garbage"], "");
    assert_eq!(finished.code(), 2, "{finished}");
    assert!(
        finished
            .stderr
            .contains("invalid node address \"garbage\" in --cluster"),
        "{finished}"
    );
}

#[test]
fn no_listening_node_fails_at_once() {
    let _serial = common::serial();
    // Nothing listens on a port that was free a moment ago.
    let address = format!("127.0.0.1:{}", free_port());
    let finished = repl(&address, &register("newbie", ALICE_PASSWORD), &[]);
    assert_eq!(finished.code(), 1, "{finished}");
    assert!(
        finished
            .stderr
            .contains(&format!("no node is listening at {address}")),
        "{finished}"
    );
}

/// Runs `almanac bench` for a moment against `server` and returns the
/// users that alice's `users` command then lists.
fn bench_then_users(server: &Server, extra: &[&str]) -> Vec<String> {
    let cluster = server.cluster();
    let mut args = vec![
        "bench",
        "--cluster",
        &cluster,
        "--clients",
        "2",
        "--seconds",
        "0.5",
        "--warmup",
        "0.1",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let finished = almanac(&args, "");
    assert_eq!(finished.code(), 0, "{finished}");
    let report: Value = serde_json::from_str(finished.stdout.trim()).expect("bench JSON");
    assert!(report["writes"].as_u64() > Some(0), "{report}");
    assert_eq!(report["errors"], 0, "{report}");

    let replies = common::repl_json(
        &cluster,
        &format!("{}users\n", login("alice", ALICE_PASSWORD)),
    );
    let users = replies[1]["users"].as_array().expect("the users list");
    users
        .iter()
        .map(|user| user.as_str().expect("a user name").to_owned())
        .collect()
}

#[test]
fn bench_deletes_its_accounts() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    repl(&server.cluster(), &register("alice", ALICE_PASSWORD), &[]).expect_code(0);

    let users = bench_then_users(&server, &[]);
    assert_eq!(users, ["alice"], "accounts left after the benchmark");

    let users = bench_then_users(&server, &["--keep-data"]);
    let bench_accounts = users
        .iter()
        .filter(|name| name.starts_with("bench"))
        .count();
    assert_eq!(bench_accounts, 2, "{users:?}");
}
