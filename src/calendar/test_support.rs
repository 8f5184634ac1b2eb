//! Helpers for the unit tests: a calendar driven by one client with growing
//! request numbers, and short constructors for drafts.

use super::state::Calendar;
use super::types::{Command, Effect, EventChanges, EventDraft, EventId, Outcome, Rejection};
use super::types::{Request, UnixMinute, Visibility};

/// 2027-01-04 00:00 UTC, a Monday.
pub const MONDAY: UnixMinute = 29_983_680;
pub const HOUR: UnixMinute = 60;

pub struct Harness {
    pub calendar: Calendar,
    pub client_id: u64,
    seq: u64,
    pub now_ms: i64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            calendar: Calendar::new(),
            client_id: 1,
            seq: 0,
            now_ms: 1_800_000_000_000,
        }
    }

    pub fn with_users(names: &[&str]) -> Harness {
        let mut harness = Harness::new();
        for name in names {
            harness.register(name);
        }
        harness
    }

    pub fn request(&mut self, command: Command) -> Request {
        self.seq += 1;
        self.now_ms += 1000;
        Request {
            client_id: self.client_id,
            seq: self.seq,
            now_ms: self.now_ms,
            command,
        }
    }

    pub fn run(&mut self, command: Command) -> Outcome {
        let request = self.request(command);
        self.calendar.apply(&request)
    }

    pub fn ok(&mut self, command: Command) -> Effect {
        match self.run(command.clone()) {
            Outcome::Done(effect) => effect,
            Outcome::Rejected(rejection) => panic!("{command:?} was rejected: {rejection}"),
        }
    }

    /// Runs a command that must be rejected and checks that it changed
    /// nothing but the client table.
    pub fn rejected(&mut self, command: Command) -> Rejection {
        let before = self.calendar.clone();
        let outcome = self.run(command.clone());
        let Outcome::Rejected(rejection) = outcome else {
            panic!("{command:?} was applied: {outcome:?}");
        };
        let mut unchanged = before;
        unchanged.clients = self.calendar.clients.clone();
        assert_eq!(unchanged, self.calendar, "rejected {command:?} changed the state");
        rejection
    }

    pub fn register(&mut self, name: &str) {
        self.ok(Command::Register {
            username: name.to_string(),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        });
    }

    pub fn schedule(&mut self, host: &str, draft: EventDraft) -> EventId {
        match self.ok(schedule(host, draft)) {
            Effect::Scheduled { event_id, .. } => event_id,
            other => panic!("unexpected effect {other:?}"),
        }
    }

    pub fn edit(&mut self, host: &str, event_id: EventId, changes: EventChanges) -> Outcome {
        let version = self.calendar.events[&event_id].version;
        self.run(Command::Edit {
            caller: host.to_string(),
            event_id,
            expected_version: version,
            changes,
        })
    }
}

pub fn schedule(host: &str, draft: EventDraft) -> Command {
    Command::Schedule {
        caller: host.to_string(),
        draft,
    }
}

/// A public event in UTC.
pub fn public(title: &str, start: UnixMinute, duration_minutes: u32) -> EventDraft {
    EventDraft {
        title: title.to_string(),
        description: String::new(),
        start,
        zone: "UTC".to_string(),
        duration_minutes,
        visibility: Visibility::Public,
    }
}

/// A private event in UTC.
pub fn private(title: &str, start: UnixMinute, duration_minutes: u32, guests: &[&str]) -> EventDraft {
    EventDraft {
        visibility: Visibility::Private {
            guests: guests.iter().map(|guest| guest.to_string()).collect(),
        },
        ..public(title, start, duration_minutes)
    }
}

pub fn guests(names: &[&str]) -> Visibility {
    Visibility::Private {
        guests: names.iter().map(|name| name.to_string()).collect(),
    }
}
