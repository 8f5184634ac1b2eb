//! Scheduling, editing and deleting events, with the authorisation, version
//! and conflict checks that come before any change.

use super::history::{edited_fields, Change};
use super::series::{carry_exceptions, normalized_recurrence, validate_series};
use super::state::Calendar;
use super::timing::validate_timing;
use super::types::UnixMinute;
use super::types::{Effect, EventChanges, EventDraft, EventId, EventView, NotificationKind};
use super::types::{Rejection, Timing, Visibility};
use super::users::user_key;
use super::validate::{canonical_zone, normalize_title, resolve_guests, validate_description};
use super::validate::{validate_duration, validate_start};

impl Calendar {
    pub(crate) fn schedule(
        &mut self,
        caller: &str,
        draft: &EventDraft,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let blank = EventView {
            id: self.next_event_id,
            version: 1,
            title: String::new(),
            description: String::new(),
            start: 0,
            duration_minutes: 0,
            zone: String::new(),
            host: self.users[&key].username.clone(),
            visibility: Visibility::Public,
            recurrence: None,
            responses: Vec::new(),
            timing: Timing::Zoned,
        };
        let changes = EventChanges {
            title: Some(draft.title.clone()),
            description: Some(draft.description.clone()),
            start: Some(draft.start),
            zone: Some(draft.zone.clone()),
            duration_minutes: Some(draft.duration_minutes),
            visibility: Some(draft.visibility.clone()),
        };
        let mut event = self.changed_event(&blank, &changes)?;
        event.timing = draft.timing.clone();
        validate_timing(&event)?;
        let mut checked_until = None;
        if let Some(recurrence) = &draft.recurrence {
            event.recurrence = Some(Box::new(normalized_recurrence(&event, recurrence)?));
            checked_until = validate_series(&event)?;
        }
        self.reject_conflicts(&event, &key)?;

        self.next_event_id += 1;
        self.insert_event(event.clone());
        self.record_history(event.id, now_ms, &event.host, Change::Created);
        let audience = self.audience(&event);
        self.notify(
            &audience,
            NotificationKind::Invited,
            &event,
            &event.host,
            now_ms,
        );
        Ok(written(&event, checked_until))
    }

    pub(crate) fn edit(
        &mut self,
        caller: &str,
        event_id: EventId,
        expected_version: u64,
        changes: &EventChanges,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let old = self.hosted_event(&key, event_id, "edit")?.clone();
        if expected_version != old.version {
            return Err(Rejection::StaleVersion {
                event_id,
                expected: expected_version,
                current: old.version,
            });
        }
        let mut new = self.changed_event(&old, changes)?;
        validate_timing(&new)?;
        let mut checked_until = None;
        if new.is_recurring() {
            carry_exceptions(&old, &mut new)?;
            checked_until = validate_series(&new)?;
        }
        Calendar::carry_responses(&old, &mut new);
        if new == old {
            return Err(Rejection::invalid(
                "changes",
                format!("nothing to change: every given field already has its value in event {event_id}"),
            ));
        }
        self.reject_conflicts(&new, &key)?;

        new.version += 1;
        self.replace_event(event_id, new.clone());
        let fields = edited_fields(&old, &new);
        self.record_history(event_id, now_ms, &new.host, Change::Edited { fields });
        self.notify_edit(&old, &new, now_ms);
        if new.is_recurring() {
            return Ok(written(&new, checked_until));
        }
        Ok(Effect::Edited {
            event_id,
            version: new.version,
        })
    }

    pub(crate) fn delete(
        &mut self,
        caller: &str,
        event_id: EventId,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        self.hosted_event(&key, event_id, "delete")?;
        let event = self.remove_event(event_id);
        self.forget_history(event_id);
        let audience = self.audience(&event);
        self.notify(
            &audience,
            NotificationKind::Cancelled,
            &event,
            &event.host,
            now_ms,
        );
        Ok(Effect::Deleted { event_id })
    }

    /// Returns an event the caller hosts. An event the caller cannot see is
    /// `NotFound`, so its existence is not revealed; a visible event hosted
    /// by someone else is `Forbidden`.
    pub(crate) fn hosted_event(
        &self,
        key: &str,
        event_id: EventId,
        verb: &str,
    ) -> Result<&EventView, Rejection> {
        let event = self.events.get(&event_id);
        let Some(event) = event.filter(|event| event.is_visible_to(key)) else {
            return Err(Rejection::not_found(format!("event {event_id}")));
        };
        if user_key(&event.host) != key {
            return Err(Rejection::Forbidden {
                reason: format!(
                    "only the host {} can {verb} event {event_id} \"{}\"",
                    event.host, event.title
                ),
            });
        }
        Ok(event)
    }

    /// Returns a copy of `event` with the changes validated and applied; the
    /// version is left as it was.
    pub(crate) fn changed_event(
        &self,
        event: &EventView,
        changes: &EventChanges,
    ) -> Result<EventView, Rejection> {
        let mut new = event.clone();
        if let Some(title) = &changes.title {
            new.title = normalize_title(title)?;
        }
        if let Some(description) = &changes.description {
            validate_description(description)?;
            new.description = description.clone();
        }
        if let Some(start) = changes.start {
            validate_start(start)?;
            new.start = start;
        }
        if let Some(zone) = &changes.zone {
            new.zone = canonical_zone(zone)?;
            // A TZID text kept from a file names the old zone, not the new one.
            if new.zone != event.zone && matches!(new.timing, Timing::Labelled { .. }) {
                new.timing = Timing::Zoned;
            }
        }
        if let Some(duration) = changes.duration_minutes {
            validate_duration(duration)?;
            new.duration_minutes = duration;
        }
        if let Some(visibility) = &changes.visibility {
            new.visibility = self.resolve_visibility(&new.host, visibility)?;
        }
        Ok(new)
    }

    fn resolve_visibility(
        &self,
        host: &str,
        visibility: &Visibility,
    ) -> Result<Visibility, Rejection> {
        match visibility {
            Visibility::Public => Ok(Visibility::Public),
            Visibility::Private { guests } => {
                let lookup = |name: &str| {
                    let user = self.users.get(&user_key(name));
                    user.map(|user| user.username.as_str())
                };
                let guests = resolve_guests(host, guests, lookup)?;
                Ok(Visibility::Private { guests })
            }
        }
    }

    fn reject_conflicts(&self, event: &EventView, viewer_key: &str) -> Result<(), Rejection> {
        let slots = self.find_conflicts(event, viewer_key);
        if slots.is_empty() {
            Ok(())
        } else {
            Err(Rejection::Conflict { slots })
        }
    }

    pub(crate) fn insert_event(&mut self, event: EventView) {
        self.index.insert(&event);
        self.events.insert(event.id, event);
    }

    /// Removes a stored event and its index entries.
    ///
    /// # Panics
    ///
    /// If the event does not exist; callers look it up first.
    pub(crate) fn remove_event(&mut self, event_id: EventId) -> EventView {
        let event = self
            .events
            .remove(&event_id)
            .unwrap_or_else(|| panic!("remove_event: event {event_id} is not stored"));
        self.index.remove(&event);
        event
    }

    pub(crate) fn replace_event(&mut self, event_id: EventId, event: EventView) {
        assert_eq!(
            event.id, event_id,
            "replace_event: the new value changes the id"
        );
        self.remove_event(event_id);
        self.insert_event(event);
    }
}

/// The effect of scheduling: `SeriesWritten` for a recurring event, so the
/// caller learns how far conflicts were checked.
fn written(event: &EventView, checked_until: Option<UnixMinute>) -> Effect {
    if event.is_recurring() {
        return Effect::SeriesWritten {
            event_id: event.id,
            version: event.version,
            conflicts_checked_until: checked_until,
        };
    }
    Effect::Scheduled {
        event_id: event.id,
        version: event.version,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{guests, private, public, schedule, Harness, HOUR, MONDAY};
    use super::super::types::Timing;
    use super::super::types::{Command, Effect, EventChanges, Outcome, Rejection, Visibility};

    fn invalid_field(rejection: Rejection) -> String {
        match rejection {
            Rejection::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn schedule_keeps_timing() {
        let mut harness = Harness::with_users(&["alice"]);
        for (offset, timing) in [
            (0, Timing::Floating),
            (1, Timing::AllDay),
            (
                2,
                Timing::Labelled {
                    tzid: "Coordinated, Universal".into(),
                },
            ),
        ] {
            let mut draft = public("Kept", MONDAY + offset * 24 * HOUR, 24 * 60);
            draft.timing = timing.clone();
            let id = harness.schedule("alice", draft);
            assert_eq!(harness.calendar.events[&id].timing, timing);
        }
    }

    #[test]
    fn all_day_must_be_whole_days() {
        let mut harness = Harness::with_users(&["alice"]);
        let mut draft = public("Fair", MONDAY + HOUR, 24 * 60);
        draft.timing = Timing::AllDay;
        let rejection = harness.rejected(schedule("alice", draft));
        assert_eq!(invalid_field(rejection), "timing");
        let mut draft = public("Fair", MONDAY, 24 * 60);
        draft.timing = Timing::AllDay;
        let id = harness.schedule("alice", draft);
        let moved = harness.edit(
            "alice",
            id,
            EventChanges {
                duration_minutes: Some(90),
                ..EventChanges::default()
            },
        );
        let Outcome::Rejected(rejection) = moved else {
            panic!("an all-day event was given 90 minutes: {moved:?}");
        };
        assert_eq!(invalid_field(rejection), "timing");
    }

    #[test]
    fn zone_edit_drops_tzid_text() {
        let mut harness = Harness::with_users(&["alice"]);
        let mut draft = public("Review", MONDAY + 9 * HOUR, 30);
        draft.timing = Timing::Labelled {
            tzid: "(UTC) Coordinated".into(),
        };
        let id = harness.schedule("alice", draft);
        let title_only = EventChanges {
            title: Some("Review 2".into()),
            ..EventChanges::default()
        };
        assert!(matches!(
            harness.edit("alice", id, title_only),
            Outcome::Done(_)
        ));
        assert!(harness.calendar.events[&id].timing.tzid_label().is_some());
        let zone = EventChanges {
            zone: Some("Europe/Paris".into()),
            ..EventChanges::default()
        };
        assert!(matches!(harness.edit("alice", id, zone), Outcome::Done(_)));
        assert_eq!(harness.calendar.events[&id].timing, Timing::Zoned);
    }

    #[test]
    fn schedule_assigns_ids_and_version() {
        let mut harness = Harness::with_users(&["alice"]);
        let first = harness.ok(schedule("alice", public("One", MONDAY, 30)));
        let second = harness.ok(schedule("alice", public("Two", MONDAY + HOUR, 30)));
        assert_eq!(
            first,
            Effect::Scheduled {
                event_id: 1,
                version: 1
            }
        );
        assert_eq!(
            second,
            Effect::Scheduled {
                event_id: 2,
                version: 1
            }
        );
        assert_eq!(harness.calendar.event_count(), 2);
    }

    #[test]
    fn schedule_stores_cleaned_values() {
        let mut harness = Harness::with_users(&["Alice", "Bob"]);
        let mut draft = private("  Review  ", MONDAY, 45, &["bob"]);
        draft.zone = "Europe/Paris".to_string();
        let id = harness.schedule("alice", draft);
        let event = harness.calendar.event("ALICE", id).unwrap();
        assert_eq!(event.title, "Review");
        assert_eq!(event.host, "Alice");
        assert_eq!(event.zone, "Europe/Paris");
        assert_eq!(event.visibility, guests(&["Bob"]));
    }

    #[test]
    fn schedule_rejects_unknown_caller() {
        let mut harness = Harness::new();
        let rejection = harness.rejected(schedule("ghost", public("x", MONDAY, 30)));
        assert_eq!(rejection, Rejection::not_found("user \"ghost\""));
    }

    #[test]
    fn schedule_rejects_invalid_fields() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let mut cases = Vec::new();
        cases.push((public(" ", MONDAY, 30), "title"));
        cases.push((public("x", MONDAY, 0), "duration"));
        cases.push((public("x", -5, 30), "start"));
        let mut bad_zone = public("x", MONDAY, 30);
        bad_zone.zone = "Nowhere/City".to_string();
        cases.push((bad_zone, "zone"));
        let mut bad_description = public("x", MONDAY, 30);
        bad_description.description = "\u{1b}[31m".to_string();
        cases.push((bad_description, "description"));
        cases.push((private("x", MONDAY, 30, &["bob", "Bob"]), "guests"));
        cases.push((private("x", MONDAY, 30, &["alice"]), "guests"));
        for (draft, field) in cases {
            let rejection = harness.rejected(schedule("alice", draft.clone()));
            assert_eq!(invalid_field(rejection), field, "draft {draft:?}");
        }
    }

    #[test]
    fn schedule_rejects_unknown_guest() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let draft = private("x", MONDAY, 30, &["bob", "zed"]);
        let rejection = harness.rejected(schedule("alice", draft));
        assert_eq!(rejection, Rejection::not_found("guest \"zed\""));
    }

    #[test]
    fn edit_by_guest_is_forbidden() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        let rejection = harness.rejected(Command::Edit {
            caller: "bob".into(),
            event_id: id,
            expected_version: 1,
            changes: EventChanges {
                title: Some("Mine".into()),
                ..EventChanges::default()
            },
        });
        let Rejection::Forbidden { reason } = rejection else {
            panic!("expected Forbidden, got {rejection:?}");
        };
        assert!(
            reason.contains("only the host alice can edit event 1 \"Plan\""),
            "{reason}"
        );
    }

    #[test]
    fn invisible_event_is_not_found() {
        let mut harness = Harness::with_users(&["alice", "bob", "eve"]);
        let id = harness.schedule("alice", private("Secret", MONDAY, 30, &["bob"]));
        let delete = Command::Delete {
            caller: "eve".into(),
            event_id: id,
        };
        assert_eq!(harness.rejected(delete), Rejection::not_found("event 1"));
        let edit = Command::Edit {
            caller: "eve".into(),
            event_id: id,
            expected_version: 1,
            changes: EventChanges {
                title: Some("x".into()),
                ..EventChanges::default()
            },
        };
        assert_eq!(harness.rejected(edit), Rejection::not_found("event 1"));
        let missing = Command::Delete {
            caller: "alice".into(),
            event_id: 99,
        };
        assert_eq!(harness.rejected(missing), Rejection::not_found("event 99"));
    }

    #[test]
    fn delete_public_by_other_is_forbidden() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", public("Party", MONDAY, 30));
        let rejection = harness.rejected(Command::Delete {
            caller: "bob".into(),
            event_id: id,
        });
        assert!(
            matches!(rejection, Rejection::Forbidden { .. }),
            "{rejection:?}"
        );
    }

    #[test]
    fn edit_checks_expected_version() {
        let mut harness = Harness::with_users(&["alice"]);
        let id = harness.schedule("alice", public("Plan", MONDAY, 30));
        let rename = |title: &str, expected_version| Command::Edit {
            caller: "alice".into(),
            event_id: id,
            expected_version,
            changes: EventChanges {
                title: Some(title.into()),
                ..EventChanges::default()
            },
        };
        assert_eq!(
            harness.ok(rename("Plan B", 1)),
            Effect::Edited {
                event_id: id,
                version: 2
            }
        );
        assert_eq!(
            harness.ok(rename("Plan C", 2)),
            Effect::Edited {
                event_id: id,
                version: 3
            }
        );
        let stale = harness.rejected(rename("Plan D", 2));
        let expected = Rejection::StaleVersion {
            event_id: id,
            expected: 2,
            current: 3,
        };
        assert_eq!(stale, expected);
        assert_eq!(harness.calendar.event("alice", id).unwrap().title, "Plan C");
    }

    #[test]
    fn edit_without_change_is_invalid() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        let nothing = EventChanges::default();
        let same = EventChanges {
            title: Some(" Plan ".into()),
            start: Some(MONDAY),
            visibility: Some(guests(&["BOB"])),
            ..EventChanges::default()
        };
        for changes in [nothing, same] {
            let rejection = harness.rejected(Command::Edit {
                caller: "alice".into(),
                event_id: id,
                expected_version: 1,
                changes,
            });
            assert_eq!(invalid_field(rejection), "changes");
        }
    }

    #[test]
    fn edit_validates_changes() {
        let mut harness = Harness::with_users(&["alice"]);
        let id = harness.schedule("alice", public("Plan", MONDAY, 30));
        let rejection = harness.rejected(Command::Edit {
            caller: "alice".into(),
            event_id: id,
            expected_version: 1,
            changes: EventChanges {
                title: Some("New".into()),
                duration_minutes: Some(0),
                ..EventChanges::default()
            },
        });
        assert_eq!(invalid_field(rejection), "duration");
    }

    #[test]
    fn edit_moves_and_changes_visibility() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", public("Plan", MONDAY, 30));
        let changes = EventChanges {
            start: Some(MONDAY + 2 * HOUR),
            duration_minutes: Some(90),
            zone: Some("America/New_York".into()),
            visibility: Some(guests(&["bob"])),
            ..EventChanges::default()
        };
        let outcome = harness.edit("alice", id, changes);
        assert_eq!(
            outcome,
            Outcome::Done(Effect::Edited {
                event_id: id,
                version: 2
            })
        );
        let event = harness.calendar.event("bob", id).unwrap();
        assert_eq!(event.start, MONDAY + 2 * HOUR);
        assert_eq!(event.end(), MONDAY + 3 * HOUR + 30);
        assert_eq!(event.zone, "America/New_York");
        assert_eq!(
            event.visibility,
            Visibility::Private {
                guests: vec!["bob".into()]
            }
        );
    }

    #[test]
    fn delete_removes_event() {
        let mut harness = Harness::with_users(&["alice"]);
        let id = harness.schedule("alice", public("Plan", MONDAY, 30));
        let effect = harness.ok(Command::Delete {
            caller: "alice".into(),
            event_id: id,
        });
        assert_eq!(effect, Effect::Deleted { event_id: id });
        assert_eq!(harness.calendar.event_count(), 0);
        assert!(harness.calendar.event("alice", id).is_err());
        assert!(harness.calendar.index.by_start.is_empty());
        assert!(harness.calendar.index.by_host.is_empty());
    }

    #[test]
    fn deleted_id_is_not_reused() {
        let mut harness = Harness::with_users(&["alice"]);
        let id = harness.schedule("alice", public("Plan", MONDAY, 30));
        harness.ok(Command::Delete {
            caller: "alice".into(),
            event_id: id,
        });
        let next = harness.schedule("alice", public("Plan", MONDAY, 30));
        assert_eq!(next, id + 1);
    }
}
