//! STALE: every read shows the writes acknowledged before it began.
//!
//! The linearizability search in [`crate::linearizability`] decides the
//! whole history, but its depth-first search has no memoization. On a
//! violating history of a hundred calls it often runs out of steps and
//! reports "inconclusive", which hides exactly the stale reads that a
//! deposed primary serves. This check looks at each read on its own: a
//! write acknowledged before the read was invoked must be visible in it,
//! and so must a delete. Each rule below follows from linearizability
//! alone, so a violation here is a violation there too, and no timing
//! makes a correct cluster fail it.
//!
//! - A read of one event, an agenda or a search never returns an event at
//!   a version older than an edit acknowledged before the read began, nor
//!   an event whose delete was acknowledged before it began.
//! - Some events must be in a read: those acknowledged before it began,
//!   visible to the reader (public, or hosted by the reader), and not
//!   removable by a delete invoked before it ended. Each such event is in
//!   every agenda whose range it overlaps and in a read by id. It is in
//!   every search whose text its description or each of its possible
//!   titles contains.
//! - A public event acknowledged before an inbox read began, scheduled by
//!   another user after the reader's account certainly existed, has its
//!   `Invited` notification in that inbox unless a delete may have removed
//!   the event.

use std::collections::BTreeMap;
use std::time::Duration;

use almanac::calendar::{NotificationKind, Rejection, UnixMinute};

use crate::history::{draft, Call, EventSummary, NotificationSummary, Operation, Response};

/// One event whose schedule was acknowledged, and what became of it.
struct Acknowledged<'a> {
    host: &'a str,
    start: UnixMinute,
    minutes: i64,
    public: bool,
    description: String,
    /// When the schedule was invoked and acknowledged.
    invoked: Duration,
    completed: Duration,
    /// The first title, then each edit's title with its invocation time.
    titles: Vec<(Duration, &'a str)>,
}

/// Everything the rules need from the history, by event id.
#[derive(Default)]
struct Writes<'a> {
    scheduled: BTreeMap<u64, Acknowledged<'a>>,
    /// Acknowledged edits: (completed, version).
    edits: BTreeMap<u64, Vec<(Duration, u64)>>,
    /// The earliest invocation of a delete that the calendar did not reject.
    delete_invoked: BTreeMap<u64, Duration>,
    /// The earliest acknowledgement of a delete.
    delete_completed: BTreeMap<u64, Duration>,
    /// When each user's account certainly existed: the first granted
    /// session.
    user_exists: BTreeMap<&'a str, Duration>,
}

impl<'a> Writes<'a> {
    /// Collects the writes of `history`, which is in invocation order. An
    /// edit names an event id its client learned from a returned schedule,
    /// so the schedule comes before its edits.
    fn collect(history: &'a [Operation]) -> Writes<'a> {
        let mut writes = Writes::default();
        for operation in history {
            writes.add(operation);
        }
        writes
    }

    fn add(&mut self, operation: &'a Operation) {
        let completed = operation.completed;
        if let Call::Edit {
            event_id, title, ..
        } = &operation.call
        {
            // A search expects an event only if every title it may have
            // by then matches, acknowledged edit or not.
            if let Some(event) = self.scheduled.get_mut(event_id) {
                event.titles.push((operation.invoked, title.as_str()));
            }
        }
        match (&operation.call, &operation.response, completed) {
            (
                Call::Register { .. } | Call::Login { .. },
                Some(Response::Session),
                Some(completed),
            ) => {
                let at = self.user_exists.entry(&operation.user).or_insert(completed);
                *at = (*at).min(completed);
            }
            (
                Call::Schedule {
                    title,
                    start,
                    public,
                },
                Some(Response::Written { event_id, .. }),
                Some(completed),
            ) => {
                let draft = draft(&operation.client, &operation.user, title, *start, *public);
                self.scheduled.insert(
                    *event_id,
                    Acknowledged {
                        host: &operation.user,
                        start: *start,
                        minutes: i64::from(draft.duration_minutes),
                        public: *public,
                        description: draft.description,
                        invoked: operation.invoked,
                        completed,
                        titles: vec![(operation.invoked, title.as_str())],
                    },
                );
            }
            (Call::Edit { .. }, Some(Response::Written { event_id, version }), Some(completed)) => {
                self.edits
                    .entry(*event_id)
                    .or_default()
                    .push((completed, *version));
            }
            (Call::Delete { event_id }, response, _) => {
                if !matches!(response, Some(Response::Rejected(_))) {
                    let at = self
                        .delete_invoked
                        .entry(*event_id)
                        .or_insert(operation.invoked);
                    *at = (*at).min(operation.invoked);
                }
                if let (Some(Response::Deleted), Some(completed)) = (response, completed) {
                    self.delete_completed.insert(*event_id, completed);
                }
            }
            _ => {}
        }
    }

    /// Returns whether a delete invoked before `until` may have removed
    /// the event.
    fn maybe_deleted(&self, event_id: u64, until: Duration) -> bool {
        self.delete_invoked
            .get(&event_id)
            .is_some_and(|invoked| *invoked < until)
    }

    /// The events `read` must show: acknowledged before it began, visible
    /// to its user, and certainly not deleted by the time it ended.
    fn expected<'s>(
        &'s self,
        read: &'s Operation,
    ) -> impl Iterator<Item = (u64, &'s Acknowledged<'a>)> + 's {
        let (invoked, ended) = (read.invoked, read.completed.unwrap_or(Duration::MAX));
        self.scheduled.iter().filter_map(move |(id, event)| {
            let visible = event.public || event.host.eq_ignore_ascii_case(&read.user);
            let certain = event.completed < invoked && !self.maybe_deleted(*id, ended);
            (visible && certain).then_some((*id, event))
        })
    }
}

/// Returns one STALE line per read that missed an earlier acknowledged
/// write.
pub fn fresh_reads(history: &[Operation]) -> Vec<String> {
    let writes = Writes::collect(history);
    let mut violations = Vec::new();
    for read in history {
        let Some(response) = &read.response else {
            continue;
        };
        match (&read.call, response) {
            (Call::Read { event_id }, Response::Read { version, .. }) => {
                let shown = [(*event_id, *version, String::new())];
                check_shown(&writes, read, &shown, &mut violations);
            }
            (
                Call::Read { event_id },
                Response::Rejected(Rejection::NotFound { .. } | Rejection::Forbidden { .. }),
            ) => {
                let missed = writes.expected(read).any(|(id, _)| id == *event_id);
                if missed {
                    violations.push(format!(
                        "STALE: {read} missed event {event_id}, acknowledged at {:?}",
                        writes.scheduled[event_id].completed
                    ));
                }
            }
            (Call::Agenda { from, to }, Response::Events(shown)) => {
                check_shown(&writes, read, shown, &mut violations);
                let missing = writes.expected(read).filter(|(id, event)| {
                    let overlaps = event.start < *to && event.start + event.minutes > *from;
                    overlaps && !shown.iter().any(|(shown_id, _, _)| shown_id == id)
                });
                report_missing(read, missing, &mut violations);
            }
            (Call::Search { text }, Response::Events(shown)) => {
                check_shown(&writes, read, shown, &mut violations);
                let ended = read.completed.unwrap_or(Duration::MAX);
                let text = text.to_lowercase();
                let missing = writes.expected(read).filter(|(id, event)| {
                    let matches = event.description.to_lowercase().contains(&text)
                        || event
                            .titles
                            .iter()
                            .filter(|(invoked, _)| *invoked < ended)
                            .all(|(_, title)| title.to_lowercase().contains(&text));
                    matches && !shown.iter().any(|(shown_id, _, _)| shown_id == id)
                });
                report_missing(read, missing, &mut violations);
            }
            (Call::Inbox, Response::Inbox(notifications)) => {
                check_inbox(&writes, read, notifications, &mut violations);
            }
            _ => {}
        }
    }
    violations
}

/// Flags each shown event that is older than an acknowledged edit, or
/// whose delete was acknowledged, before `read` began.
fn check_shown(
    writes: &Writes,
    read: &Operation,
    shown: &[EventSummary],
    violations: &mut Vec<String>,
) {
    for (event_id, version, _) in shown {
        let newer = writes
            .edits
            .get(event_id)
            .into_iter()
            .flatten()
            .filter(|(completed, edited)| *completed < read.invoked && edited > version)
            .map(|(completed, edited)| (*completed, *edited))
            .max_by_key(|(_, edited)| *edited);
        if let Some((completed, edited)) = newer {
            violations.push(format!(
                "STALE: {read} shows event {event_id} at version {version}, but version \
                 {edited} was acknowledged at {completed:?}"
            ));
        }
        if let Some(deleted) = writes.delete_completed.get(event_id) {
            if *deleted < read.invoked {
                violations.push(format!(
                    "STALE: {read} shows event {event_id}, whose delete was acknowledged at \
                     {deleted:?}"
                ));
            }
        }
    }
}

fn report_missing<'a, 'b: 'a>(
    read: &Operation,
    missing: impl Iterator<Item = (u64, &'a Acknowledged<'b>)>,
    violations: &mut Vec<String>,
) {
    for (event_id, event) in missing {
        violations.push(format!(
            "STALE: {read} misses event {event_id} of {}, acknowledged at {:?}",
            event.host, event.completed
        ));
    }
}

fn check_inbox(
    writes: &Writes,
    read: &Operation,
    notifications: &[NotificationSummary],
    violations: &mut Vec<String>,
) {
    let Some(user_exists) = writes.user_exists.get(read.user.as_str()) else {
        return;
    };
    for (event_id, event) in writes.expected(read) {
        let invites_reader = event.public
            && !event.host.eq_ignore_ascii_case(&read.user)
            && *user_exists < event.invoked;
        let invited = notifications
            .iter()
            .any(|(_, kind, id)| *kind == NotificationKind::Invited && *id == event_id);
        if invites_reader && !invited {
            violations.push(format!(
                "STALE: {read} lacks the invitation to event {event_id} of {}, acknowledged \
                 at {:?}",
                event.host, event.completed
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::build::{operation, register, schedule, START};

    fn agenda(client: &str, span: (u64, u64), shown: Vec<EventSummary>) -> Operation {
        let call = Call::Agenda {
            from: START - 100,
            to: START + 100,
        };
        operation(client, call, span, Response::Events(shown))
    }

    #[test]
    fn agenda_missing_event_flagged() {
        let history = vec![
            register("q1", (0, 5)),
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            agenda("q1", (30, 40), Vec::new()),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].starts_with("STALE"), "{violations:?}");
        assert!(violations[0].contains("misses event 1"), "{violations:?}");
    }

    #[test]
    fn concurrent_agenda_may_miss_event() {
        let history = vec![
            register("q1", (0, 5)),
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 30), 1),
            agenda("q1", (20, 40), Vec::new()),
        ];
        assert_eq!(fresh_reads(&history), Vec::<String>::new());
    }

    #[test]
    fn agenda_after_delete_may_miss_event() {
        let delete = Call::Delete { event_id: 1 };
        let history = vec![
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            operation(
                "q2",
                delete,
                (25, 50),
                Response::Unknown("timed out".into()),
            ),
            agenda("q1", (30, 40), Vec::new()),
        ];
        assert_eq!(fresh_reads(&history), Vec::<String>::new());
    }

    #[test]
    fn agenda_old_version_flagged() {
        let edit = Call::Edit {
            event_id: 1,
            version: 1,
            title: "q2-2-edit".to_owned(),
        };
        let edited = Response::Written {
            event_id: 1,
            version: 2,
        };
        let history = vec![
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            operation("q2", edit, (25, 30), edited),
            agenda("q1", (40, 50), vec![(1, 1, "q2-1".to_owned())]),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("version 2"), "{violations:?}");
    }

    #[test]
    fn agenda_deleted_event_flagged() {
        let delete = Call::Delete { event_id: 1 };
        let history = vec![
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            operation("q2", delete, (25, 30), Response::Deleted),
            agenda("q1", (40, 50), vec![(1, 1, "q2-1".to_owned())]),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("delete was acknowledged"),
            "{violations:?}"
        );
    }

    #[test]
    fn search_needs_every_title_to_match() {
        let edit = Call::Edit {
            event_id: 1,
            version: 1,
            title: "renamed".to_owned(),
        };
        let search = |text: &str, span| {
            let call = Call::Search {
                text: text.to_owned(),
            };
            operation("q1", call, span, Response::Events(Vec::new()))
        };
        let history = vec![
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            search("q2-1", (30, 40)),
            operation("q2", edit, (50, 60), Response::Unknown("timed out".into())),
            search("q2-1", (70, 80)),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("at 30ms"), "{violations:?}");
    }

    #[test]
    fn inbox_without_invitation_flagged() {
        let inbox = |span, notifications| operation("q1", Call::Inbox, span, notifications);
        let invited = vec![(1, NotificationKind::Invited, 1)];
        let history = vec![
            register("q1", (0, 5)),
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            inbox((30, 40), Response::Inbox(Vec::new())),
            inbox((50, 60), Response::Inbox(invited)),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("lacks the invitation"),
            "{violations:?}"
        );
    }

    #[test]
    fn read_not_found_after_schedule_flagged() {
        let read = Call::Read { event_id: 1 };
        let not_found = Response::Rejected(Rejection::NotFound {
            what: "event 1".to_owned(),
        });
        let history = vec![
            register("q2", (0, 5)),
            schedule("q2", "q2-1", (10, 20), 1),
            operation("q1", read, (30, 40), not_found),
        ];
        let violations = fresh_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("missed event 1"), "{violations:?}");
    }
}
