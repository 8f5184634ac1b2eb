//! Durability of a real server: everything acknowledged survives `kill -9`,
//! a torn tail of the log is cut off at restart, and damage in the middle
//! of the log stops the server with the file and offset.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{login, register, repl, repl_json, run_server_expecting_exit, Scratch, Server};
use serde_json::Value;

const ALICE_PASSWORD: &str = "alice-password-1";
const BOB_PASSWORD: &str = "bob-password-22";

/// The exit status of `almanac server` when the environment stops it.
const EXIT_ENVIRONMENT: i32 = 3;

/// The size of a WAL record header: magic, payload length, CRC32C and op
/// number, in that order.
const RECORD_HEADER_BYTES: usize = 20;

/// Returns the commands whose JSON replies describe the whole visible state.
fn snapshot_script() -> String {
    [
        login("alice", ALICE_PASSWORD),
        "users\n".into(),
        "agenda 2031-01-01 to 2031-02-01\n".into(),
        login("bob", BOB_PASSWORD),
        "agenda 2031-01-01 to 2031-02-01\n".into(),
        "inbox\n".into(),
    ]
    .concat()
}

/// Runs [`snapshot_script`] and splits its replies into the logins', whose
/// pending notifications change from one login to the next, and the others.
fn snapshot(server: &Server) -> (Vec<Value>, Vec<Value>) {
    repl_json(&server.cluster(), &snapshot_script())
        .into_iter()
        .partition(|reply| reply["command"] == "login")
}

fn notification_kinds(login_reply: &Value) -> Vec<String> {
    login_reply["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications in {login_reply}"))
        .iter()
        .map(|item| item["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn event_id(reply: &Value) -> u64 {
    assert_eq!(reply["ok"], true, "{reply}");
    reply["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no event_id in {reply}"))
}

fn agenda_titles(reply: &Value) -> Vec<String> {
    reply["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {reply}"))
        .iter()
        .map(|event| event["title"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Returns the segment file with the highest first op, which contains the
/// log's tail.
fn newest_segment(data_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .expect("read the data directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    segments.sort();
    segments
        .pop()
        .unwrap_or_else(|| panic!("no .wal segment in {}", data_dir.display()))
}

/// Lists the byte offset and framed length of each record in a segment by
/// walking the length fields of the record headers, up to the zeros the log
/// writes ahead of its records.
fn record_spans(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    while offset + RECORD_HEADER_BYTES <= segment.len()
        && segment[offset..offset + RECORD_HEADER_BYTES] != [0; RECORD_HEADER_BYTES]
    {
        let length_field: [u8; 4] = segment[offset + 4..offset + 8].try_into().expect("4 bytes");
        let framed = RECORD_HEADER_BYTES + u32::from_le_bytes(length_field) as usize;
        assert!(
            offset + framed <= segment.len(),
            "record at byte offset {offset} runs past the end of the segment"
        );
        spans.push((offset, framed));
        offset += framed;
    }
    assert!(
        segment[offset..].iter().all(|&byte| byte == 0),
        "bytes other than zeros after the last record, at offset {offset}"
    );
    spans
}

fn setup_users(server: &Server) {
    let script = [
        register("alice", ALICE_PASSWORD),
        register("bob", BOB_PASSWORD),
    ]
    .concat();
    repl(&server.cluster(), &script, &[]).expect_code(0);
}

#[test]
fn kill_nine_keeps_acknowledged_data() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.path("data"));
    setup_users(&server);
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}{}",
            login("alice", ALICE_PASSWORD),
            "schedule public \"Town hall\" 2031-01-07 18:00 for 2h about \"budget\"\n\
             schedule \"Review\" 2031-01-08 14:00 for 1h with bob\n\
             schedule \"Dentist\" 2031-01-09 10:00 for 30m\n\
             schedule \"Scrapped\" 2031-01-10 10:00 for 30m\n"
        ),
    );
    let review = event_id(&replies[2]);
    let scrapped = event_id(&replies[4]);
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}edit {review} at 2031-01-08 16:00 for 90m\ndelete {scrapped}\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    assert_eq!(replies[1]["event"]["version"], 2, "{}", replies[1]);
    server.restart();
    let (logins, before) = snapshot(&server);
    assert_eq!(
        agenda_titles(&before[1]),
        ["Town hall", "Review", "Dentist"],
        "alice's agenda after the first crash"
    );
    assert_eq!(agenda_titles(&before[2]), ["Town hall", "Review"]);
    // bob was offline: his notifications waited for him across the crash.
    assert_eq!(
        notification_kinds(&logins[1]),
        ["invited", "invited", "changed"]
    );

    server.restart();
    let (logins, after) = snapshot(&server);
    assert_eq!(after, before, "the state changed across kill -9");
    // The login before the crash acknowledged them, durably.
    assert_eq!(notification_kinds(&logins[1]), Vec::<String>::new());

    // Passwords were checked by the logins above; ids go on where they
    // stopped.
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"After\" 2031-01-12 10:00 for 1h\n",
            login("bob", BOB_PASSWORD)
        ),
    );
    assert_eq!(event_id(&replies[1]), scrapped + 1);
}

#[test]
fn kill_nine_twice_keeps_data() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let mut server = Server::start(&scratch.path("data"));
    setup_users(&server);
    server.restart();
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"One\" 2031-01-07 10:00 for 1h\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    let first = event_id(&replies[1]);
    server.restart();
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"Two\" 2031-01-07 11:00 for 1h\nshow {first}\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    assert_eq!(event_id(&replies[1]), first + 1);
    assert_eq!(replies[2]["event"]["title"], "One", "{}", replies[2]);
}

#[test]
fn torn_tail_drops_only_last_record() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let data_dir = scratch.path("data");
    let mut server = Server::start(&data_dir);
    setup_users(&server);
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"Kept\" 2031-01-07 10:00 for 1h\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    let kept = event_id(&replies[1]);
    let segment = newest_segment(&data_dir);
    let records_before = record_spans(&std::fs::read(&segment).expect("read segment")).len();
    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"Torn\" 2031-01-07 12:00 for 1h\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    let torn = event_id(&replies[1]);
    server.kill();

    let bytes = std::fs::read(&segment).expect("read segment");
    let spans = record_spans(&bytes);
    assert!(
        spans.len() > records_before,
        "scheduling an event appended no record"
    );
    // A crash part way through the last record's write leaves its end as
    // the zeros that were there before.
    let (last_offset, last_len) = *spans.last().expect("a record");
    let mut torn_bytes = bytes.clone();
    torn_bytes[last_offset + last_len - 5..last_offset + last_len].fill(0);
    std::fs::write(&segment, &torn_bytes).expect("write the torn segment");

    let server = Server::start_at(server.address, &data_dir);
    let replies = repl(
        &server.cluster(),
        &format!(
            "{}show {kept}\nshow {torn}\nagenda 2031-01-07\n",
            login("alice", ALICE_PASSWORD)
        ),
        &["--keep-going", "--output", "json"],
    )
    .replies();
    assert_eq!(replies[0]["ok"], true, "the users survived: {}", replies[0]);
    assert_eq!(replies[1]["event"]["title"], "Kept", "{}", replies[1]);
    assert_eq!(replies[2]["error"]["kind"], "not_found", "{}", replies[2]);
    assert_eq!(agenda_titles(&replies[3]), ["Kept"]);

    // The torn bytes were cut off: the records written since (the login's
    // at least) start where the torn record started.
    let repaired = std::fs::read(&segment).expect("read segment");
    assert_eq!(repaired[..last_offset], bytes[..last_offset]);
    let repaired_spans = record_spans(&repaired);
    assert_eq!(repaired_spans[..spans.len() - 1], spans[..spans.len() - 1]);
    assert!(
        repaired_spans.len() >= spans.len(),
        "no record was appended after the repair: {repaired_spans:?}"
    );
    assert_eq!(repaired_spans[spans.len() - 1].0, last_offset);

    let replies = repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"Again\" 2031-01-07 12:00 for 1h\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    assert_eq!(replies[1]["event"]["title"], "Again");
}

#[test]
fn flipped_byte_mid_log_stops_server() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let data_dir = scratch.path("data");
    let mut server = Server::start(&data_dir);
    setup_users(&server);
    repl_json(
        &server.cluster(),
        &format!(
            "{}schedule \"One\" 2031-01-07 10:00 for 1h\nschedule \"Two\" 2031-01-07 11:00 for 1h\n",
            login("alice", ALICE_PASSWORD)
        ),
    );
    server.kill();
    let address = server.address;
    drop(server);

    let segment = newest_segment(&data_dir);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let spans = record_spans(&bytes);
    assert!(
        spans.len() >= 3,
        "expected several records, found {spans:?}"
    );
    let (damaged_offset, damaged_len) = spans[1];
    let flip_at = damaged_offset + damaged_len / 2 + RECORD_HEADER_BYTES / 2;
    assert!(flip_at < damaged_offset + damaged_len);
    bytes[flip_at] ^= 0x5a;
    std::fs::write(&segment, &bytes).expect("write the damaged segment");

    let finished = run_server_expecting_exit(address, &data_dir, Duration::from_secs(10));
    assert_eq!(finished.status.code(), Some(EXIT_ENVIRONMENT), "{finished}");
    let segment_name = segment.display().to_string();
    assert!(finished.stderr.contains(&segment_name), "{finished}");
    assert!(
        finished
            .stderr
            .contains(&format!("corrupt at byte offset {damaged_offset}")),
        "{finished}"
    );
    // Recovery must not have cut the log at the damage.
    let after = std::fs::read(&segment).expect("read segment");
    assert_eq!(after, bytes, "the server changed a corrupt segment");
}

#[test]
fn second_process_on_data_dir_refused() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let data_dir = scratch.path("data");
    let server = Server::start(&data_dir);
    setup_users(&server);
    let segment = newest_segment(&data_dir);
    let before = std::fs::read(&segment).expect("read the segment");

    let other = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let finished = run_server_expecting_exit(other, &data_dir, Duration::from_secs(10));
    assert_eq!(finished.status.code(), Some(EXIT_ENVIRONMENT), "{finished}");
    assert!(
        finished
            .stderr
            .contains("is in use by another almanac process"),
        "{finished}"
    );
    let after = std::fs::read(&segment).expect("read the segment");
    assert_eq!(after, before, "the refused process changed the log");

    // The first server still serves, and after it stops the directory is
    // free again.
    let replies = repl_json(&server.cluster(), &login("alice", ALICE_PASSWORD));
    assert_eq!(replies[0]["ok"], true, "{}", replies[0]);
    let address = server.address;
    drop(server);
    let restarted = Server::start_at(address, &data_dir);
    let replies = repl_json(&restarted.cluster(), &login("bob", BOB_PASSWORD));
    assert_eq!(replies[0]["ok"], true, "{}", replies[0]);
}
