//! The committed changes of each event: who did what, stamped with the
//! primary's time of the request. Kept in the replicated state, so it
//! survives failover and restarts, and bounded per event.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::limits::MAX_HISTORY_PER_EVENT;
use super::responses::Response;
use super::state::Calendar;
use super::types::{format_minute, EventId, EventView, Rejection, UnixMinute, Visibility};

/// One committed change of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `now_ms` of the request, as stamped by the primary.
    pub at_ms: i64,
    /// Username of the user whose command made the change.
    pub actor: String,
    pub change: Change,
    /// Original start of the one occurrence of a series the change applies
    /// to; `None` for the whole event.
    #[serde(default)]
    pub occurrence: Option<UnixMinute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Created,
    /// The host edited these fields, in the order title, description, start,
    /// duration, zone, guests, responses.
    Edited {
        fields: Vec<FieldChange>,
    },
    /// The actor, a guest, responded.
    Responded {
        response: Response,
    },
    /// The guest's account was deleted, which removed them from the guests.
    GuestRemoved {
        guest: String,
    },
}

/// One field before and after an edit, as text; times are in UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

impl Calendar {
    /// Returns the changes of an event, oldest first; only the newest
    /// `MAX_HISTORY_PER_EVENT` are kept. A private event the caller does not
    /// take part in is `NotFound`, like a missing one.
    pub fn history(&self, caller: &str, event_id: EventId) -> Result<Vec<HistoryEntry>, Rejection> {
        self.event(caller, event_id)?;
        let entries = self.history.get(&event_id).into_iter().flatten();
        Ok(entries.cloned().collect())
    }

    pub(crate) fn record_history(
        &mut self,
        event_id: EventId,
        at_ms: i64,
        actor: &str,
        change: Change,
    ) {
        self.record_occurrence_history(event_id, at_ms, actor, None, change);
    }

    /// Records a change of one occurrence (`Some(original start)`) or of the
    /// whole event (`None`).
    pub(crate) fn record_occurrence_history(
        &mut self,
        event_id: EventId,
        at_ms: i64,
        actor: &str,
        occurrence: Option<UnixMinute>,
        change: Change,
    ) {
        // Most events are created and never changed: room for one entry
        // instead of the four a first push reserves saves a few hundred
        // bytes per event.
        let entries = self
            .history
            .entry(event_id)
            .or_insert_with(|| VecDeque::with_capacity(1));
        entries.push_back(HistoryEntry {
            at_ms,
            actor: actor.to_string(),
            change,
            occurrence,
        });
        if entries.len() > MAX_HISTORY_PER_EVENT {
            entries.pop_front();
        }
    }

    /// Drops the history of a deleted event.
    pub(crate) fn forget_history(&mut self, event_id: EventId) {
        self.history.remove(&event_id);
    }
}

/// Lists the fields an edit changed, with their old and new values.
pub(crate) fn edited_fields(old: &EventView, new: &EventView) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    let mut compare = |field: &str, before: String, after: String| {
        if before != after {
            fields.push(FieldChange {
                field: field.to_string(),
                before,
                after,
            });
        }
    };
    compare("title", old.title.clone(), new.title.clone());
    compare(
        "description",
        old.description.clone(),
        new.description.clone(),
    );
    compare("start", format_minute(old.start), format_minute(new.start));
    compare(
        "duration",
        format!("{}m", old.duration_minutes),
        format!("{}m", new.duration_minutes),
    );
    compare("zone", old.zone.clone(), new.zone.clone());
    compare(
        "guests",
        describe_visibility(&old.visibility),
        describe_visibility(&new.visibility),
    );
    compare(
        "responses",
        describe_responses(old),
        describe_responses(new),
    );
    fields
}

fn describe_visibility(visibility: &Visibility) -> String {
    match visibility {
        Visibility::Public => "public (everyone)".to_string(),
        Visibility::Private { guests } if guests.is_empty() => "private, no guests".to_string(),
        Visibility::Private { guests } => format!("private with {}", guests.join(", ")),
    }
}

fn describe_responses(event: &EventView) -> String {
    if event.responses.is_empty() {
        return "none".to_string();
    }
    let responses: Vec<String> = event
        .responses
        .iter()
        .map(|entry| format!("{} {}", entry.guest, entry.response.as_str()))
        .collect();
    responses.join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_HISTORY_PER_EVENT;
    use super::super::responses::Response;
    use super::super::test_support::{private, Harness, HOUR, MONDAY};
    use super::super::types::{Command, EventChanges, Rejection};
    use super::{Change, FieldChange};

    #[test]
    fn history_records_each_change() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        let created_at = harness.now_ms;
        harness.ok(Command::Respond {
            caller: "bob".into(),
            event_id: id,
            response: Response::Accepted,
            occurrence_start: None,
        });
        let changes = EventChanges {
            title: Some("Plan B".into()),
            start: Some(MONDAY + HOUR),
            ..EventChanges::default()
        };
        harness.edit("alice", id, changes);
        let history = harness.calendar.history("bob", id).unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].change, Change::Created);
        assert_eq!(history[0].actor, "alice");
        assert_eq!(history[0].at_ms, created_at);
        assert_eq!(
            history[1].change,
            Change::Responded {
                response: Response::Accepted
            }
        );
        assert_eq!(history[1].actor, "bob");
        let Change::Edited { fields } = &history[2].change else {
            panic!("expected an edit, got {:?}", history[2].change);
        };
        let names: Vec<&str> = fields.iter().map(|field| field.field.as_str()).collect();
        assert_eq!(names, vec!["title", "start", "responses"]);
        assert_eq!(
            fields[0],
            FieldChange {
                field: "title".into(),
                before: "Plan".into(),
                after: "Plan B".into()
            }
        );
        assert_eq!(fields[1].after, "2027-01-04 01:00 UTC");
        assert_eq!(fields[2].before, "bob accepted");
        assert_eq!(
            harness.calendar.history("carol", id),
            Err(Rejection::not_found("event 1"))
        );
    }

    #[test]
    fn history_is_bounded_and_dropped_with_event() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        for round in 0..MAX_HISTORY_PER_EVENT {
            let changes = EventChanges {
                description: Some(format!("round {round}")),
                ..EventChanges::default()
            };
            harness.edit("alice", id, changes);
        }
        let history = harness.calendar.history("alice", id).unwrap();
        assert_eq!(history.len(), MAX_HISTORY_PER_EVENT);
        assert!(matches!(history[0].change, Change::Edited { .. }));
        harness.ok(Command::Delete {
            caller: "alice".into(),
            event_id: id,
        });
        assert!(harness.calendar.history.is_empty());
    }

    #[test]
    fn history_records_deleted_guest() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        harness.ok(Command::DeleteAccount {
            caller: "bob".into(),
        });
        let history = harness.calendar.history("alice", id).unwrap();
        assert_eq!(
            history.last().unwrap().change,
            Change::GuestRemoved {
                guest: "bob".into()
            }
        );
    }
}
