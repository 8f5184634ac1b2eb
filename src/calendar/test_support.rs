//! Helpers for the unit tests: a calendar driven by one client with growing
//! request numbers, and short constructors for drafts.

use super::responses::Response;
use super::state::Calendar;
use super::types::{Command, Effect, EventChanges, EventDraft, EventId, Outcome, Rejection};
use super::types::{Request, Timing, UnixMinute, Visibility};

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
        assert_eq!(
            unchanged, self.calendar,
            "rejected {command:?} changed the state"
        );
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

/// Builds a public event draft in UTC.
pub fn public(title: &str, start: UnixMinute, duration_minutes: u32) -> EventDraft {
    EventDraft {
        title: title.to_string(),
        description: String::new(),
        start,
        zone: "UTC".to_string(),
        duration_minutes,
        visibility: Visibility::Public,
        recurrence: None,
        timing: Timing::Zoned,
    }
}

/// Builds a private event draft in UTC.
pub fn private(
    title: &str,
    start: UnixMinute,
    duration_minutes: u32,
    guests: &[&str],
) -> EventDraft {
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

/// Names the random generator registers and deletes.
pub const RANDOM_USERS: [&str; 6] = ["ann", "Ben", "cat", "dan", "eve", "fay"];

/// A 64-bit linear congruential generator (Knuth's MMIX constants), enough to
/// spread test operations and fully determined by its seed.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Draws a value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Draws a start within a week after `MONDAY`, on a 15-minute grid.
    pub fn start(&mut self) -> UnixMinute {
        MONDAY + self.below(7 * 24 * 4) as i64 * 15
    }

    /// Mostly short durations, sometimes up to the maximum.
    pub fn duration(&mut self) -> u32 {
        if self.chance(2) {
            1 + self.below(u64::from(super::limits::MAX_DURATION_MINUTES)) as u32
        } else {
            15 * (1 + self.below(12) as u32)
        }
    }

    pub fn visibility(&mut self, host: &str) -> Visibility {
        if self.chance(10) {
            return Visibility::Public;
        }
        let mut names = Vec::new();
        for name in RANDOM_USERS {
            if !name.eq_ignore_ascii_case(host) && self.chance(25) {
                names.push(name.to_string());
            }
        }
        Visibility::Private { guests: names }
    }
}

/// Draws a random command against the current state: mostly schedules and edits,
/// some deletes, account deletions, registrations, answers and acks. Many are
/// rejected (conflicts, unknown users), which the tests want too.
pub fn random_command(rng: &mut Lcg, calendar: &Calendar) -> Command {
    let user = rng.pick(&RANDOM_USERS).to_string();
    let event_ids: Vec<EventId> = calendar.events.keys().copied().collect();
    let some_event = |rng: &mut Lcg| -> Option<(EventId, String, u64)> {
        if event_ids.is_empty() {
            return None;
        }
        let event = &calendar.events[rng.pick(&event_ids)];
        Some((event.id, event.host.clone(), event.version))
    };
    match rng.below(100) {
        0..=39 | 77..=79 => {
            let draft = EventDraft {
                title: format!("event {}", rng.below(1000)),
                description: if rng.chance(50) {
                    "weekly sync".into()
                } else {
                    String::new()
                },
                start: rng.start(),
                zone: rng.pick(&["UTC", "Europe/Paris", "Asia/Tokyo"]).to_string(),
                duration_minutes: rng.duration(),
                visibility: rng.visibility(&user),
                recurrence: None,
                timing: Timing::Zoned,
            };
            Command::Schedule {
                caller: user,
                draft,
            }
        }
        40..=69 => match some_event(rng) {
            Some((event_id, host, version)) => {
                let mut changes = EventChanges::default();
                if rng.chance(50) {
                    changes.start = Some(rng.start());
                }
                if rng.chance(30) {
                    changes.duration_minutes = Some(rng.duration());
                }
                if rng.chance(30) {
                    changes.visibility = Some(rng.visibility(&host));
                }
                if rng.chance(20) {
                    changes.title = Some(format!("renamed {}", rng.below(1000)));
                }
                let caller = if rng.chance(90) { host } else { user };
                let expected_version = if rng.chance(90) { version } else { version + 1 };
                Command::Edit {
                    caller,
                    event_id,
                    expected_version,
                    changes,
                }
            }
            None => Command::DeleteAccount { caller: user },
        },
        70..=76 => match some_event(rng) {
            Some((event_id, host, _)) => Command::Delete {
                caller: host,
                event_id,
            },
            None => Command::DeleteAccount { caller: user },
        },
        80..=81 => Command::DeleteAccount { caller: user },
        90..=94 => match some_event(rng) {
            Some((event_id, _, _)) => Command::Respond {
                caller: user,
                event_id,
                response: *rng.pick(&[Response::Accepted, Response::Tentative, Response::Declined]),
                occurrence_start: None,
            },
            None => Command::DeleteAccount { caller: user },
        },
        82..=89 => Command::Register {
            password_hash: format!("$argon2id$hash-of-{user}"),
            username: user,
        },
        _ => {
            let up_to_seq = calendar.notifications(&user, 0).last().map_or(0, |n| n.seq);
            Command::AckNotifications {
                caller: user,
                up_to_seq,
            }
        }
    }
}
