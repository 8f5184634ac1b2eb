//! Linearizability of a run's client history, checked by stateright's
//! [`LinearizabilityTester`] with the real calendar state machine
//! ([`Calendar::apply`] and its queries) as the sequential specification.
//!
//! Each client is a thread of the tester. A call without a domain outcome
//! (a timeout, or still running when the run ended) may or may not have
//! taken effect. It stays in flight on a thread of its own, and the client
//! goes on under a fresh thread id. Reads without an outcome changed
//! nothing and are left out, and so are logins and resends, whose effect is
//! the exactly-once check's business.
//!
//! The tester searches the interleavings depth first without memoization,
//! so a violating history can take exponential time. [`STEPS_MAX`] bounds
//! the search; a search that runs out is reported as inconclusive, not as a
//! violation.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use almanac::calendar::{
    Calendar, Command, Effect, EventChanges, Outcome, Rejection, Request, SearchQuery, UnixMinute,
    UNTRACKED_CLIENT_ID,
};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

use crate::cluster::EPOCH_MS;
use crate::history::{
    draft, summarize_events, summarize_notifications, Call, EventSummary, NotificationSummary,
    Operation, Response,
};

/// Maximum number of specification steps one check may take. A passing
/// history of this harness's size needs a few thousand; the bound only
/// stops the search on a violating one.
pub const STEPS_MAX: u64 = 200_000;

/// Maximum number of operations checked; a longer history is not checked.
pub const OPERATIONS_MAX: usize = 400;

/// Password hash stored for every user by the specification; the real
/// cluster stores an argon2 hash, which no query returns.
const SPEC_PASSWORD_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2ltdWxhdGlvbg$c3BlYw";

/// One client call as the specification applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecOp {
    Register {
        user: String,
    },
    Schedule {
        client: String,
        user: String,
        title: String,
        start: UnixMinute,
        public: bool,
    },
    Edit {
        user: String,
        event_id: u64,
        version: u64,
        title: String,
    },
    Delete {
        user: String,
        event_id: u64,
    },
    Read {
        user: String,
        event_id: u64,
    },
    Agenda {
        user: String,
        from: UnixMinute,
        to: UnixMinute,
    },
    Search {
        user: String,
        text: String,
    },
    Inbox {
        user: String,
    },
}

/// The observable result of one call, compared between the cluster and the
/// specification. Rejections compare by kind, such as `Conflict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecRet {
    Registered,
    Written {
        event_id: u64,
        version: u64,
    },
    Deleted,
    Read {
        version: u64,
        title: String,
    },
    Events(Vec<EventSummary>),
    Inbox(Vec<NotificationSummary>),
    Rejected(String),
    /// An outcome this model does not expect, such as a scheduled series.
    Other(String),
}

/// The calendar state machine as a stateright sequential specification.
#[derive(Clone, Debug)]
pub struct CalendarSpec {
    calendar: Calendar,
    /// Steps left in this check, shared by every clone.
    steps_left: Rc<Cell<u64>>,
}

impl CalendarSpec {
    fn new(steps: u64) -> CalendarSpec {
        CalendarSpec {
            calendar: Calendar::new(),
            steps_left: Rc::new(Cell::new(steps)),
        }
    }

    fn apply(&mut self, command: Command) -> Outcome {
        let request = Request {
            client_id: UNTRACKED_CLIENT_ID,
            seq: 0,
            now_ms: EPOCH_MS as i64,
            command,
        };
        self.calendar.apply(&request)
    }
}

impl SequentialSpec for CalendarSpec {
    type Op = SpecOp;
    type Ret = SpecRet;

    fn invoke(&mut self, op: &SpecOp) -> SpecRet {
        self.steps_left.set(self.steps_left.get().saturating_sub(1));
        match op {
            SpecOp::Register { user } => outcome_ret(self.apply(Command::Register {
                username: user.clone(),
                password_hash: SPEC_PASSWORD_HASH.to_owned(),
            })),
            SpecOp::Schedule {
                client,
                user,
                title,
                start,
                public,
            } => outcome_ret(self.apply(Command::Schedule {
                caller: user.clone(),
                draft: draft(client, user, title, *start, *public),
            })),
            SpecOp::Edit {
                user,
                event_id,
                version,
                title,
            } => outcome_ret(self.apply(Command::Edit {
                caller: user.clone(),
                event_id: *event_id,
                expected_version: *version,
                changes: EventChanges {
                    title: Some(title.clone()),
                    ..EventChanges::default()
                },
            })),
            SpecOp::Delete { user, event_id } => outcome_ret(self.apply(Command::Delete {
                caller: user.clone(),
                event_id: *event_id,
            })),
            SpecOp::Read { user, event_id } => match self.calendar.event(user, *event_id) {
                Ok(event) => SpecRet::Read {
                    version: event.version,
                    title: event.title,
                },
                Err(rejection) => SpecRet::Rejected(rejection_kind(&rejection)),
            },
            SpecOp::Agenda { user, from, to } => {
                SpecRet::Events(summarize_events(&self.calendar.agenda(user, *from, *to)))
            }
            SpecOp::Search { user, text } => {
                let query = SearchQuery {
                    text: Some(text.clone()),
                    ..SearchQuery::default()
                };
                match self.calendar.search(user, &query) {
                    Ok(events) => SpecRet::Events(summarize_events(&events)),
                    Err(rejection) => SpecRet::Rejected(rejection_kind(&rejection)),
                }
            }
            SpecOp::Inbox { user } => SpecRet::Inbox(summarize_notifications(
                &self.calendar.notifications(user, 0),
            )),
        }
    }

    fn is_valid_step(&mut self, op: &SpecOp, ret: &SpecRet) -> bool {
        if self.steps_left.get() == 0 {
            return false;
        }
        self.invoke(op) == *ret
    }
}

/// Returns the kind of a rejection: its variant name, such as `NotFound`.
pub fn rejection_kind(rejection: &Rejection) -> String {
    let text = format!("{rejection:?}");
    let end = text
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(text.len());
    text[..end].to_owned()
}

fn outcome_ret(outcome: Outcome) -> SpecRet {
    match outcome {
        Outcome::Done(Effect::Registered { .. }) => SpecRet::Registered,
        Outcome::Done(Effect::Scheduled { event_id, version })
        | Outcome::Done(Effect::Edited { event_id, version }) => {
            SpecRet::Written { event_id, version }
        }
        Outcome::Done(Effect::Deleted { .. }) => SpecRet::Deleted,
        Outcome::Done(other) => SpecRet::Other(format!("{other:?}")),
        Outcome::Rejected(rejection) => SpecRet::Rejected(rejection_kind(&rejection)),
    }
}

/// The verdict of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists; the number of operations checked.
    Linearizable(usize),
    /// No linearization exists.
    Violated,
    /// The search ran out of steps, or the history was too long.
    Inconclusive(String),
}

enum Action {
    Invoke(SpecOp),
    Return(SpecRet),
}

/// Checks `history` for linearizability against the calendar.
pub fn check(history: &[Operation]) -> Verdict {
    check_with(history, STEPS_MAX)
}

/// Checks like [`check`] with a bound of `steps` specification steps.
pub fn check_with(history: &[Operation], steps: u64) -> Verdict {
    if history.len() > OPERATIONS_MAX {
        return Verdict::Inconclusive(format!(
            "{} operations exceed the checked maximum of {OPERATIONS_MAX}",
            history.len()
        ));
    }
    let events = tester_events(history);
    let checked = events
        .iter()
        .filter(|(_, _, _, action)| matches!(action, Action::Invoke(_)))
        .count();
    let spec = CalendarSpec::new(steps);
    let steps_left = spec.steps_left.clone();
    let mut tester = LinearizabilityTester::new(spec);
    for (_, _, thread, action) in events {
        let result = match action {
            Action::Invoke(op) => tester.on_invoke(thread, op).map(|_| ()),
            Action::Return(ret) => tester.on_return(thread, ret).map(|_| ()),
        };
        if let Err(error) = result {
            return Verdict::Inconclusive(format!("the history is malformed: {error}"));
        }
    }
    let consistent = tester.is_consistent();
    if steps_left.get() == 0 {
        return Verdict::Inconclusive(format!("the search took more than {steps} steps"));
    }
    if consistent {
        Verdict::Linearizable(checked)
    } else {
        Verdict::Violated
    }
}

/// Returns the tester's invocations and returns in simulated-time order.
/// At equal times a return comes first: a call invoked in the millisecond
/// in which another returned reaches a node at least one millisecond later,
/// after the other took effect.
fn tester_events(history: &[Operation]) -> Vec<(Duration, u8, u64, Action)> {
    let mut threads: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_thread = 0;
    let mut events = Vec::new();
    for operation in history {
        let Some(op) = spec_op(operation) else {
            continue;
        };
        let ret = operation.response.as_ref().and_then(spec_ret);
        let is_read = matches!(
            op,
            SpecOp::Read { .. }
                | SpecOp::Agenda { .. }
                | SpecOp::Search { .. }
                | SpecOp::Inbox { .. }
        );
        if ret.is_none() && is_read {
            continue;
        }
        let thread = *threads.entry(&operation.client).or_insert_with(|| {
            next_thread += 1;
            next_thread
        });
        events.push((operation.invoked, 1, thread, Action::Invoke(op)));
        match (ret, operation.completed) {
            (Some(ret), Some(completed)) => {
                events.push((completed, 0, thread, Action::Return(ret)));
            }
            _ => {
                // The call stays in flight on this thread; the client goes
                // on under a fresh one.
                next_thread += 1;
                threads.insert(&operation.client, next_thread);
            }
        }
    }
    events.sort_by_key(|(at, order, _, _)| (*at, *order));
    events
}

fn spec_op(operation: &Operation) -> Option<SpecOp> {
    let user = operation.user.clone();
    let op = match &operation.call {
        Call::Register { user } => SpecOp::Register { user: user.clone() },
        Call::Login { .. } | Call::Resend { .. } => return None,
        Call::Schedule {
            title,
            start,
            public,
        } => SpecOp::Schedule {
            client: operation.client.clone(),
            user,
            title: title.clone(),
            start: *start,
            public: *public,
        },
        Call::Edit {
            event_id,
            version,
            title,
        } => SpecOp::Edit {
            user,
            event_id: *event_id,
            version: *version,
            title: title.clone(),
        },
        Call::Delete { event_id } => SpecOp::Delete {
            user,
            event_id: *event_id,
        },
        Call::Read { event_id } => SpecOp::Read {
            user,
            event_id: *event_id,
        },
        Call::Agenda { from, to } => SpecOp::Agenda {
            user,
            from: *from,
            to: *to,
        },
        Call::Search { text } => SpecOp::Search {
            user,
            text: text.clone(),
        },
        Call::Inbox => SpecOp::Inbox { user },
    };
    Some(op)
}

/// Returns the specification's form of a domain outcome, or None for a
/// call whose outcome is unknown.
fn spec_ret(response: &Response) -> Option<SpecRet> {
    let ret = match response {
        Response::Session => SpecRet::Registered,
        Response::Written { event_id, version } => SpecRet::Written {
            event_id: *event_id,
            version: *version,
        },
        Response::Deleted => SpecRet::Deleted,
        Response::Read { version, title } => SpecRet::Read {
            version: *version,
            title: title.clone(),
        },
        Response::Events(events) => SpecRet::Events(events.clone()),
        Response::Inbox(notifications) => SpecRet::Inbox(notifications.clone()),
        Response::Rejected(rejection) => SpecRet::Rejected(rejection_kind(rejection)),
        Response::Unknown(_) => return None,
    };
    Some(ret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::build::{operation, register, schedule};

    fn read(client: &str, span: (u64, u64), event_id: u64, response: Response) -> Operation {
        operation(client, Call::Read { event_id }, span, response)
    }

    fn not_found() -> Response {
        Response::Rejected(Rejection::NotFound {
            what: "event 1".into(),
        })
    }

    #[test]
    fn sequential_history_linearizable() {
        let history = [
            register("alice", (0, 10)),
            schedule("alice", "Standup", (20, 30), 1),
            read(
                "alice",
                (40, 50),
                1,
                Response::Read {
                    version: 1,
                    title: "Standup".into(),
                },
            ),
        ];
        assert_eq!(check(&history), Verdict::Linearizable(3));
    }

    #[test]
    fn stale_read_violates() {
        // Bob's read begins after Alice's schedule was acknowledged, so it
        // must find the public event.
        let history = [
            register("alice", (0, 10)),
            register("bob", (0, 10)),
            schedule("alice", "Standup", (20, 30), 1),
            read("bob", (40, 50), 1, not_found()),
        ];
        assert_eq!(check(&history), Verdict::Violated);
    }

    #[test]
    fn concurrent_read_may_miss_write() {
        let history = [
            register("alice", (0, 10)),
            register("bob", (0, 10)),
            schedule("alice", "Standup", (20, 60), 1),
            read("bob", (30, 50), 1, not_found()),
        ];
        assert_eq!(check(&history), Verdict::Linearizable(4));
    }

    #[test]
    fn unknown_write_may_take_effect() {
        let mut lost = schedule("alice", "Standup", (20, 30), 1);
        lost.response = Some(Response::Unknown("timed out".into()));
        let seen = Response::Read {
            version: 1,
            title: "Standup".into(),
        };
        let history = [
            register("alice", (0, 10)),
            lost.clone(),
            read("alice", (40, 50), 1, seen),
        ];
        assert_eq!(check(&history), Verdict::Linearizable(3));
        let history = [
            register("alice", (0, 10)),
            lost,
            read("alice", (40, 50), 1, not_found()),
        ];
        assert_eq!(check(&history), Verdict::Linearizable(3));
    }

    #[test]
    fn event_ids_follow_order() {
        // Two sequential schedules cannot get the ids in reverse.
        let history = [
            register("alice", (0, 10)),
            schedule("alice", "First", (20, 30), 2),
            schedule("alice", "Second", (40, 50), 1),
        ];
        assert_eq!(check(&history), Verdict::Violated);
    }

    #[test]
    fn exhausted_search_inconclusive() {
        let history = [
            register("alice", (0, 10)),
            schedule("alice", "First", (20, 30), 1),
        ];
        assert!(matches!(check_with(&history, 1), Verdict::Inconclusive(_)));
    }

    #[test]
    fn rejection_kind_names_variant() {
        assert_eq!(
            rejection_kind(&Rejection::Conflict { slots: Vec::new() }),
            "Conflict"
        );
        assert_eq!(
            rejection_kind(&Rejection::NotFound { what: "x".into() }),
            "NotFound"
        );
    }
}
