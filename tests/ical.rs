//! iCalendar import and export end to end: a three-node cluster of real
//! `almanac server` processes fed through the scripted REPL and through
//! `almanac import`, and an exported file read back by Python's
//! `icalendar` package.

// The cluster helpers are shared with other test binaries that use more of
// them.
#[allow(dead_code, unused_imports)]
mod cluster_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use almanac::calendar::{Calendar, Command as CalendarCommand, Effect, Outcome, Request};
use almanac::ical::{
    export_calendar, plan_import, read_file, ImportOptions, ImportPlan, PlanAction,
    IMPORT_BATCH_EVENTS,
};
use cluster_support::Cluster;
use common::{register, Scratch};

const PASSWORD: &str = "alice-password-1";

/// The pip line that installs what the Python check needs; tested with
/// icalendar 7.3.2.
const PIP_INSTALL: &str = "python3 -m pip install icalendar==7.3.2";

/// Returns the Python interpreter: $ALMANAC_PYTHON, else `python3`.
fn python() -> String {
    std::env::var("ALMANAC_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn case_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ical")
        .join(name)
}

fn events_titled<'a>(reply: &'a Value, title: &str) -> Vec<&'a Value> {
    reply["events"]
        .as_array()
        .expect("an agenda reply has events")
        .iter()
        .filter(|event| event["title"] == title)
        .collect()
}

fn start_utc(event: &Value) -> String {
    event["start_utc"]
        .as_str()
        .unwrap_or_else(|| panic!("no start_utc in {event}"))
        .to_string()
}

#[test]
fn repl_import_then_agenda() {
    let _serial = common::serial();
    let cluster = Cluster::start();
    let scratch = Scratch::new();
    let exported = scratch.path("july.ics");
    let script = format!(
        "{}import {}\nagenda 2024-07-01 to 2024-07-31\nexport {} 2024-07-01 to 2024-07-31\n",
        register("alice", PASSWORD),
        case_path("R10.ics").display(),
        exported.display()
    );
    let finished = common::repl(&cluster.addresses(), &script, &["--output", "json"]);
    finished.expect_code(0);
    let replies = finished.replies();
    assert_eq!(replies.len(), 4, "{finished}");

    let import = &replies[1];
    assert_eq!(import["command"], "import", "{import}");
    assert_eq!(import["imported"], 2, "{import}");
    assert_eq!(import["skipped"], 0, "{import}");

    let agenda = &replies[2];
    let planning: Vec<String> = events_titled(agenda, "Planning")
        .into_iter()
        .map(start_utc)
        .collect();
    assert_eq!(planning.len(), 2, "{agenda}");
    assert!(planning[0].starts_with("2024-07-03T06:00"), "{planning:?}");
    assert!(planning[1].starts_with("2024-07-24T06:00"), "{planning:?}");
    let moved = events_titled(agenda, "Planning (moved)");
    assert_eq!(moved.len(), 1, "{agenda}");
    assert!(
        start_utc(moved[0]).starts_with("2024-07-12T13:00"),
        "{agenda}"
    );
    let birthday = events_titled(agenda, "Birthday (only this year's instance was shared)");
    assert_eq!(birthday.len(), 1, "{agenda}");
    assert!(
        start_utc(birthday[0]).starts_with("2024-07-05T00:00"),
        "{agenda}"
    );

    assert_eq!(replies[3]["events"], 2, "{}", replies[3]);
    let text = std::fs::read_to_string(&exported).expect("the export wrote its file");
    assert!(text.contains("RRULE:FREQ=WEEKLY;COUNT=4\r\n"), "{text}");
    assert!(
        text.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"),
        "{text}"
    );
}

/// Runs a scripted REPL with JSON output in `zone` and returns its replies.
fn replies_in_zone(addresses: &str, zone: &str, script: &str) -> Vec<Value> {
    let args = [
        "repl",
        "--cluster",
        addresses,
        "--now",
        common::NOW,
        "--tz",
        zone,
        "--output",
        "json",
    ];
    let finished = common::almanac(&args, script);
    finished.expect_code(0);
    finished.replies()
}

#[test]
fn floating_and_all_day_in_viewer_zone() {
    let _serial = common::serial();
    let cluster = Cluster::start();
    let addresses = cluster.addresses();
    let script = format!(
        "{}import {}\nimport {}\nschedule \"Offsite\" 2027-01-05 all day\n",
        register("alice", PASSWORD),
        case_path("R03.ics").display(),
        case_path("R04.ics").display()
    );
    let imported = replies_in_zone(&addresses, "Europe/Berlin", &script);
    assert_eq!(imported.len(), 4, "{imported:?}");
    assert_eq!(imported[3]["ok"], true, "{}", imported[3]);

    // Another session of the same user, in Auckland.
    let script = format!(
        "{}agenda 2024-10-06 to 2024-10-07\nagenda 2025-09-01 to 2025-09-05\n\
         agenda 2027-01-05 to 2027-01-06\n",
        common::login("alice", PASSWORD)
    );
    let replies = replies_in_zone(&addresses, "Pacific/Auckland", &script);
    assert_eq!(replies.len(), 4, "{replies:?}");

    // 15:00 wall-clock in Auckland, +13:00 then.
    let booking = events_titled(&replies[1], "Room booking 160");
    assert_eq!(booking.len(), 1, "{}", replies[1]);
    assert_eq!(start_utc(booking[0]), "2024-10-06T02:00:00Z");
    assert_eq!(booking[0]["start_local"], "2024-10-06T15:00:00+13:00");
    assert_eq!(booking[0]["timing"]["kind"], "floating");

    // The trade fair on 09-01 and 09-03, each one Auckland day.
    let fair = events_titled(&replies[2], "Trade fair");
    let starts: Vec<&Value> = fair.iter().map(|event| &event["start_local"]).collect();
    assert_eq!(
        starts,
        ["2025-09-01T00:00:00+12:00", "2025-09-03T00:00:00+12:00"],
        "{}",
        replies[2]
    );
    for event in &fair {
        assert_eq!(event["duration_minutes"], 24 * 60, "{event}");
    }

    let offsite = events_titled(&replies[3], "Offsite");
    assert_eq!(offsite.len(), 1, "{}", replies[3]);
    assert_eq!(offsite[0]["start_local"], "2027-01-05T00:00:00+13:00");
    assert_eq!(offsite[0]["end_local"], "2027-01-06T00:00:00+13:00");
    assert_eq!(offsite[0]["timing"]["kind"], "all_day");
}

#[test]
fn import_subcommand_reports_each_event() {
    let _serial = common::serial();
    let cluster = Cluster::start();
    let addresses = cluster.addresses();
    let setup = common::repl(&addresses, &register("alice", PASSWORD), &[]);
    setup.expect_code(0);

    let file = case_path("R11.ics");
    let file = file.to_str().expect("a UTF-8 path");
    let stdin = format!("{PASSWORD}\n");
    let args = [
        "import",
        "--cluster",
        &addresses,
        "--user",
        "alice",
        "--tz",
        "Europe/Berlin",
        file,
    ];
    let finished = common::almanac(&args, &stdin);
    finished.expect_code(0);
    let stdout = &finished.stdout;
    assert!(
        stdout.contains("imported \"Concert\" as event"),
        "{finished}"
    );
    assert!(
        stdout.contains("skipped \"Exact 24 hours over DST end\": conflict:"),
        "{finished}"
    );
    assert!(
        stdout.contains("skipped \"Has both DTEND and DURATION\": invalid event r11-f-both"),
        "{finished}"
    );
    assert!(
        stdout.contains("note: it has no length, so it was given 1 minute"),
        "{finished}"
    );
    assert!(
        stdout.contains("4 event(s) imported, 2 skipped"),
        "{finished}"
    );
    assert!(
        finished.stderr.contains("importing 6 event(s)"),
        "{finished}"
    );

    let agenda = common::repl(
        &addresses,
        &format!(
            "{}agenda 2024-11-29 to 2024-11-30\n",
            common::login("alice", PASSWORD)
        ),
        &["--output", "json"],
    );
    agenda.expect_code(0);
    let replies = agenda.replies();
    let concert = events_titled(&replies[1], "Concert");
    assert_eq!(concert.len(), 1, "{agenda}");
    assert!(
        start_utc(concert[0]).starts_with("2024-11-29T19:30"),
        "{agenda}"
    );
}

/// Events in the generated file of the progress test: more than two
/// batches of `IMPORT_BATCH_EVENTS`.
const LARGE_FILE_EVENTS: usize = 2 * IMPORT_BATCH_EVENTS + 50;

#[test]
fn large_import_reports_progress() {
    let _serial = common::serial();
    let cluster = Cluster::start();
    let addresses = cluster.addresses();
    common::repl(&addresses, &register("alice", PASSWORD), &[]).expect_code(0);

    let scratch = Scratch::new();
    let path = scratch.path("large.ics");
    let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for index in 0..LARGE_FILE_EVENTS {
        let start = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap()
            + chrono::Duration::hours(index as i64);
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:large-{index}\r\nDTSTAMP:20250101T000000Z\r\n\
             SUMMARY:Slot {index}\r\nDTSTART:{}\r\nDURATION:PT1H\r\nEND:VEVENT\r\n",
            start.format("%Y%m%dT%H%M%SZ")
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    std::fs::write(&path, text).expect("write the generated file");

    let stdin = format!("{PASSWORD}\n");
    let file = path.to_str().expect("a UTF-8 path");
    let args = ["import", "--cluster", &addresses, "--user", "alice", file];
    let finished = common::almanac(&args, &stdin);
    finished.expect_code(0);
    let summary = format!("{LARGE_FILE_EVENTS} event(s) imported, 0 skipped");
    assert!(finished.stdout.contains(&summary), "{finished}");
    for done in [
        IMPORT_BATCH_EVENTS,
        2 * IMPORT_BATCH_EVENTS,
        LARGE_FILE_EVENTS,
    ] {
        let line = format!("imported {done} of {LARGE_FILE_EVENTS} events");
        assert!(finished.stderr.contains(&line), "no {line:?}: {finished}");
    }
}

#[test]
fn import_subcommand_rejects_missing_file() {
    let _serial = common::serial();
    let cluster = Cluster::start();
    let addresses = cluster.addresses();
    common::repl(&addresses, &register("alice", PASSWORD), &[]).expect_code(0);
    let stdin = format!("{PASSWORD}\n");
    let args = [
        "import",
        "--cluster",
        &addresses,
        "--user",
        "alice",
        "/nonexistent/x.ics",
    ];
    let finished = common::almanac(&args, &stdin);
    finished.expect_code(1);
    assert!(
        finished.stderr.contains("cannot read /nonexistent/x.ics"),
        "{finished}"
    );
}

/// An in-process state machine fed requests with growing numbers.
struct Store {
    calendar: Calendar,
    seq: u64,
}

impl Store {
    fn apply(&mut self, command: CalendarCommand) -> Outcome {
        self.seq += 1;
        let request = Request {
            client_id: 1,
            seq: self.seq,
            now_ms: 1_700_000_000_000,
            command,
        };
        self.calendar.apply(&request)
    }

    /// Schedules every planned event and moves its occurrences, as the
    /// client would, and returns the ids of those scheduled. Events that
    /// conflict with an earlier case are left out.
    fn submit(&mut self, plan: &ImportPlan) -> Vec<u64> {
        let mut ids = Vec::new();
        for item in &plan.items {
            let PlanAction::Schedule { moved, .. } = &item.action else {
                continue;
            };
            let (event_id, mut version) = match self.apply(item.schedule_command("alice").unwrap())
            {
                Outcome::Done(Effect::Scheduled { event_id, version })
                | Outcome::Done(Effect::SeriesWritten {
                    event_id, version, ..
                }) => (event_id, version),
                Outcome::Rejected(_) => continue,
                other => panic!("unexpected {other:?}"),
            };

            for occurrence in moved {
                let edited = self.apply(CalendarCommand::EditOccurrence {
                    caller: "alice".into(),
                    event_id,
                    expected_version: version,
                    occurrence_start: occurrence.original_start,
                    changes: occurrence.changes.clone(),
                    following: false,
                });
                if let Outcome::Done(Effect::SeriesWritten { version: next, .. }) = edited {
                    version = next;
                }
            }
            ids.push(event_id);
        }
        ids
    }
}

/// Imports every case into an in-process state machine and exports it.
fn export_all_cases() -> String {
    let mut store = Store {
        calendar: Calendar::new(),
        seq: 0,
    };
    let registered = store.apply(CalendarCommand::Register {
        username: "alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    });
    assert!(matches!(registered, Outcome::Done(_)), "{registered:?}");

    let options = ImportOptions {
        username: "alice".into(),
        user_zone: chrono_tz::Europe::Berlin,
        users: vec!["alice".into()],
        lenient: false,
    };
    let mut ids = Vec::new();
    for name in ["R01", "R03", "R04", "R07", "R08", "R10", "R11", "R12"] {
        let raw = std::fs::read(case_path(&format!("{name}.ics"))).expect("a case file");
        let plan = plan_import(&read_file(&raw).expect("the case parses"), &options);
        ids.extend(store.submit(&plan));
    }

    let events: Vec<_> = ids
        .iter()
        .map(|&id| store.calendar.event("alice", id).expect("a stored event"))
        .collect();
    let minute = |year| {
        Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp()
            / 60
    };
    let stamp = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    export_calendar(&events, (minute(2024), minute(2026)), stamp)
}

#[test]
fn export_parses_with_python_icalendar() {
    let available = Command::new(python())
        .args(["-c", "import icalendar"])
        .output()
        .expect("the Python interpreter runs");
    assert!(
        available.status.success(),
        "Python's icalendar package is missing; install it with `{PIP_INSTALL}`: {}",
        String::from_utf8_lossy(&available.stderr)
    );

    let scratch = Scratch::new();
    let path = scratch.path("all-cases.ics");
    std::fs::write(&path, export_all_cases()).expect("write the export");
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_ics.py");
    let output = Command::new(python())
        .arg(&checker)
        .arg(&path)
        .output()
        .expect("the Python interpreter runs the checker");
    assert!(
        output.status.success(),
        "icalendar rejected the export: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the checker prints JSON");
    let zones: Vec<&str> = parsed["timezones"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // R01's Exchange TZID text is written back as the file had it.
    for zone in [
        "(UTC+01:00) Zürich, Bern, Genève",
        "Europe/Berlin",
        "Europe/London",
        "America/New_York",
    ] {
        assert!(zones.contains(&zone), "no VTIMEZONE for {zone}: {zones:?}");
    }

    let events = parsed["events"].as_array().unwrap();
    let find = |summary: &str| -> &Value {
        events
            .iter()
            .find(|event| event["summary"] == summary)
            .unwrap_or_else(|| panic!("no {summary} in {events:?}"))
    };
    assert_eq!(find("Summer review")["start_utc"], "2024-07-15T11:30Z");
    assert_eq!(find("Status call")["start_utc"], "2024-03-01T14:00Z");
    assert_eq!(find("Sales call")["start_utc"], "2024-01-08T17:30Z");
    let moved = find("Planning (moved)");
    assert_eq!(moved["start_utc"], "2024-07-12T13:00Z");
    assert_eq!(moved["recurrence_id_utc"], "2024-07-10T06:00Z");
    let planning = events
        .iter()
        .find(|event| event["summary"] == "Planning" && event["rrule"].is_string())
        .expect("the Planning series");
    assert_eq!(planning["exdates_utc"][0], "2024-07-17T06:00Z");
    let offsite = find("Offsite, day 1; room Ost second line \\ end");
    assert_eq!(offsite["end_utc"], "2025-06-12T15:00Z");

    // R03: floating times stay floating.
    let booking = find("Room booking 160");
    assert_eq!(booking["start_utc"], "2024-10-06T15:00");
    assert_eq!(booking["end_utc"], "2024-10-09T10:00");
    let alarm = find("Wake-up alarm");
    assert_eq!(alarm["start_utc"], "2025-03-28T07:00");
    assert_eq!(alarm["rrule"], "FREQ=DAILY;COUNT=3");

    // R04: all-day events are dates, DTEND exclusive.
    let fair = find("Trade fair");
    assert_eq!(fair["start_utc"], "2025-09-01");
    assert_eq!(fair["end_utc"], "2025-09-02");
    assert_eq!(
        fair["exdates_utc"],
        serde_json::json!(["2025-09-02", "2025-09-04"])
    );
    let weekend = find("Long weekend");
    assert_eq!(weekend["start_utc"], "2025-10-31");
    assert_eq!(weekend["end_utc"], "2025-11-03");
}
