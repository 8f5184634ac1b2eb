//! Scheduling, editing and deleting events, with the authorisation, version
//! and conflict checks that come before any change.

use super::state::Calendar;
use super::types::{Effect, EventChanges, EventDraft, EventId, EventView, NotificationKind};
use super::types::{Rejection, Visibility};
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
        };
        let changes = EventChanges {
            title: Some(draft.title.clone()),
            description: Some(draft.description.clone()),
            start: Some(draft.start),
            zone: Some(draft.zone.clone()),
            duration_minutes: Some(draft.duration_minutes),
            visibility: Some(draft.visibility.clone()),
        };
        let event = self.changed_event(&blank, &changes)?;
        self.reject_conflicts(&event, &key)?;

        self.next_event_id += 1;
        self.insert_event(event.clone());
        let audience = self.audience(&event);
        self.notify(
            &audience,
            NotificationKind::Invited,
            &event,
            &event.host,
            now_ms,
        );
        Ok(Effect::Scheduled {
            event_id: event.id,
            version: event.version,
        })
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
        if new == old {
            return Err(Rejection::invalid(
                "changes",
                format!("nothing to change: every given field already has its value in event {event_id}"),
            ));
        }
        self.reject_conflicts(&new, &key)?;

        new.version += 1;
        self.replace_event(event_id, new.clone());
        self.notify_edit(&old, &new, now_ms);
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
    fn hosted_event(
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
    fn changed_event(
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
