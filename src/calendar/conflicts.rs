//! Conflict detection. Two overlapping events conflict when some user is
//! blocked by both: a host by the events they host, a guest by the events
//! they have not declined, and every user by a public event they have not
//! declined. Until someone declines, a public event conflicts with every
//! overlapping event, and a private event with every overlapping public event
//! and every overlapping private event that shares a participant (host or
//! guest). Overlap is half-open, so back-to-back events do not conflict.
//! Recurring events take part occurrence by occurrence, each with the
//! responses that hold for it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::index::starts_near;
use super::limits::MAX_CONFLICT_SLOTS;
use super::recurrence::Occurrence;
use super::series::{checked_spans, overlapping, stored_expander};
use super::state::Calendar;
use super::types::{BusySlot, EventId, EventView, UnixMinute};
use super::users::user_key;

/// Sorts slots by time, then participant, then event, and keeps one per
/// event and participant.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SlotKey {
    start: UnixMinute,
    end: UnixMinute,
    participant_key: String,
    event_id: EventId,
    participant: String,
}

impl Calendar {
    /// Lists every slot that `candidate` would conflict with, sorted, ignoring the
    /// stored event with the candidate's own id. Events `viewer_key` cannot
    /// see appear without their details. A recurring candidate is checked
    /// occurrence by occurrence (see `checked_spans` for which ones).
    pub(crate) fn find_conflicts(&self, candidate: &EventView, viewer_key: &str) -> Vec<BusySlot> {
        let spans = checked_spans(candidate);
        self.find_span_conflicts(candidate, &spans, viewer_key, false)
    }

    /// Lists the slots that collide with any of `spans`, which are sorted
    /// occurrences of `candidate`. With `check_own`, the other occurrences
    /// of the candidate series (those with other original starts) count too,
    /// for a moved occurrence.
    pub(crate) fn find_span_conflicts(
        &self,
        candidate: &EventView,
        spans: &[Occurrence],
        viewer_key: &str,
        check_own: bool,
    ) -> Vec<BusySlot> {
        let Some(first) = spans.first() else {
            return Vec::new();
        };
        let (from, to) = (
            first.start,
            spans.iter().map(|span| span.end).max().unwrap_or(first.end),
        );
        let mut slots = BTreeSet::new();
        for event_id in self.conflict_candidates(candidate, from, to) {
            let other = &self.events[&event_id];
            if event_id == candidate.id {
                continue;
            }
            let span = Occurrence {
                start: other.start,
                end: other.end(),
                original_start: other.start,
            };
            self.add_slots(&mut slots, candidate, spans, other, &span);
        }
        for event_id in self.index.series.conflict_candidates(candidate, from, to) {
            if event_id == candidate.id {
                continue;
            }
            let other = &self.events[&event_id];
            for occurrence in stored_expander(other).occurrences(from, to) {
                self.add_slots(&mut slots, candidate, spans, other, &occurrence);
            }
        }
        if check_own {
            let own: BTreeSet<UnixMinute> = spans.iter().map(|span| span.original_start).collect();
            for occurrence in stored_expander(candidate).occurrences(from, to) {
                if !own.contains(&occurrence.original_start) {
                    self.add_slots(&mut slots, candidate, spans, candidate, &occurrence);
                }
            }
        }
        let to_slot = |slot: SlotKey| self.busy_slot(slot, viewer_key, candidate);
        // NOTE: slots beyond the limit are left out of the rejection without
        // saying how many there were.
        slots
            .into_iter()
            .take(MAX_CONFLICT_SLOTS)
            .map(to_slot)
            .collect()
    }

    /// Ids of the one-off events whose start lies in the scan window of
    /// `[from, to)` and which the rules could make conflict with the
    /// candidate.
    fn conflict_candidates(
        &self,
        candidate: &EventView,
        from: UnixMinute,
        to: UnixMinute,
    ) -> BTreeSet<EventId> {
        if candidate.is_public() {
            return starts_near(&self.index.by_start, from, to).collect();
        }
        let mut ids: BTreeSet<EventId> =
            starts_near(&self.index.public_by_start, from, to).collect();
        for participant in candidate.participants() {
            let key = user_key(participant);
            if let Some(starts) = self.index.private_by_participant.get(&key) {
                ids.extend(starts_near(starts, from, to));
            }
        }
        ids
    }

    fn busy_slot(&self, slot: SlotKey, viewer_key: &str, candidate: &EventView) -> BusySlot {
        let event = match self.events.get(&slot.event_id) {
            Some(event) if slot.event_id != candidate.id => event,
            _ => candidate,
        };
        let brief = event.is_visible_to(viewer_key).then(|| event.brief());
        BusySlot {
            participant: slot.participant,
            start: slot.start,
            end: slot.end,
            event: brief,
        }
    }
}

impl Calendar {
    /// Adds a slot for each user that both events block where `occurrence` of
    /// `other` overlaps one of the candidate's `spans`. Each side counts the
    /// responses of its own occurrence, so a declined invitation, or a
    /// declined occurrence, frees its guest's time.
    fn add_slots(
        &self,
        slots: &mut BTreeSet<SlotKey>,
        candidate: &EventView,
        spans: &[Occurrence],
        other: &EventView,
        occurrence: &Occurrence,
    ) {
        let other_view = responses_for(other, occurrence);
        for span in overlapping(spans, occurrence.start, occurrence.end) {
            let candidate_view = responses_for(candidate, span);
            let reported = busy_participants(&candidate_view, &other_view);
            for participant in self.blocked_by_both(&candidate_view, &other_view, reported) {
                slots.insert(SlotKey {
                    start: occurrence.start,
                    end: occurrence.end,
                    participant_key: user_key(&participant),
                    event_id: other.id,
                    participant,
                });
            }
        }
    }
}

/// Returns the event with the responses that hold for one of its occurrences.
fn responses_for<'a>(event: &'a EventView, occurrence: &Occurrence) -> Cow<'a, EventView> {
    if event.is_recurring() {
        event.at_occurrence(occurrence.original_start)
    } else {
        Cow::Borrowed(event)
    }
}

/// Returns the participants of `other` that `candidate` also involves, or the host of
/// `other` when they share none (a conflict caused by a public event).
fn busy_participants<'a>(candidate: &EventView, other: &'a EventView) -> Vec<&'a String> {
    let shared: Vec<&String> = other
        .participants()
        .filter(|name| candidate.involves(&user_key(name)))
        .collect();
    if shared.is_empty() {
        vec![&other.host]
    } else {
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{guests, private, public, schedule, Harness, HOUR, MONDAY};
    use super::super::types::{BusySlot, EventBrief, EventChanges, Outcome, Rejection};

    fn slots_of(rejection: Rejection) -> Vec<BusySlot> {
        match rejection {
            Rejection::Conflict { slots } => slots,
            other => panic!("expected Conflict, got {other:?}"),
        }
    }

    fn slot(participant: &str, start: i64, end: i64, event: Option<(u64, &str, &str)>) -> BusySlot {
        BusySlot {
            participant: participant.to_string(),
            start,
            end,
            event: event.map(|(id, title, host)| EventBrief {
                id,
                title: title.to_string(),
                host: host.to_string(),
            }),
        }
    }

    #[test]
    fn back_to_back_is_free() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", public("First", MONDAY, 60));
        harness.schedule("bob", public("After", MONDAY + HOUR, 60));
        harness.schedule("bob", public("Before", MONDAY - HOUR, 60));
        assert_eq!(harness.calendar.event_count(), 3);
    }

    #[test]
    fn public_conflicts_with_anyones_event() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("bob", private("Dentist", MONDAY, 60, &["carol"]));
        let rejection = harness.rejected(schedule("alice", public("Talk", MONDAY + 30, 60)));
        let expected = vec![slot("bob", MONDAY, MONDAY + HOUR, None)];
        assert_eq!(slots_of(rejection), expected);
    }

    #[test]
    fn private_conflicts_with_public() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("bob", public("All hands", MONDAY, 60));
        let rejection = harness.rejected(schedule("alice", private("Focus", MONDAY + 59, 10, &[])));
        let expected = vec![slot(
            "bob",
            MONDAY,
            MONDAY + HOUR,
            Some((1, "All hands", "bob")),
        )];
        assert_eq!(slots_of(rejection), expected);
    }

    #[test]
    fn private_conflicts_on_shared_participant() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        harness.schedule("bob", private("Sync", MONDAY, 60, &["carol"]));
        // carol is a guest of both events.
        let draft = private("Review", MONDAY, 30, &["carol", "dave"]);
        let rejection = harness.rejected(schedule("alice", draft));
        assert_eq!(
            slots_of(rejection),
            vec![slot("carol", MONDAY, MONDAY + HOUR, None)]
        );
        // bob hosts the existing event and is a guest of the new one.
        let rejection = harness.rejected(schedule("dave", private("1:1", MONDAY, 30, &["bob"])));
        assert_eq!(
            slots_of(rejection),
            vec![slot("bob", MONDAY, MONDAY + HOUR, None)]
        );
        // The host of the existing event books over it again.
        let rejection = harness.rejected(schedule("bob", private("Gym", MONDAY + 10, 5, &[])));
        let expected = vec![slot("bob", MONDAY, MONDAY + HOUR, Some((1, "Sync", "bob")))];
        assert_eq!(slots_of(rejection), expected);
    }

    #[test]
    fn private_events_without_shared_participant_coexist() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        harness.schedule("alice", private("A", MONDAY, 60, &["bob"]));
        harness.schedule("carol", private("C", MONDAY, 60, &["dave"]));
        assert_eq!(harness.calendar.event_count(), 2);
    }

    #[test]
    fn conflict_lists_every_slot_sorted() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        harness.schedule("bob", private("Late", MONDAY + 30, 60, &["carol"]));
        harness.schedule("dave", private("Early", MONDAY, 20, &["alice"]));
        let draft = private("Long", MONDAY, 120, &["bob", "carol"]);
        let rejection = harness.rejected(schedule("alice", draft));
        let expected = vec![
            slot("alice", MONDAY, MONDAY + 20, Some((2, "Early", "dave"))),
            slot("bob", MONDAY + 30, MONDAY + 90, None),
            slot("carol", MONDAY + 30, MONDAY + 90, None),
        ];
        assert_eq!(slots_of(rejection), expected);
    }

    #[test]
    fn conflict_with_long_earlier_event() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let week = 7 * 24 * 60;
        harness.schedule("bob", public("Conference", MONDAY - 24 * HOUR, week));
        let rejection = harness.rejected(schedule("alice", public("Talk", MONDAY + 48 * HOUR, 30)));
        assert_eq!(slots_of(rejection).len(), 1);
    }

    #[test]
    fn edit_ignores_own_slot() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        let later = EventChanges {
            start: Some(MONDAY + 30),
            ..EventChanges::default()
        };
        assert!(matches!(harness.edit("alice", id, later), Outcome::Done(_)));
    }

    #[test]
    fn edit_rechecks_conflicts() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &[]));
        harness.schedule("carol", private("Busy", MONDAY, 60, &[]));
        let invite = EventChanges {
            visibility: Some(guests(&["carol"])),
            ..EventChanges::default()
        };
        let outcome = harness.edit("alice", id, invite);
        let Outcome::Rejected(rejection) = outcome else {
            panic!("inviting a busy guest was applied");
        };
        assert_eq!(
            slots_of(rejection),
            vec![slot("carol", MONDAY, MONDAY + HOUR, None)]
        );
        let publish = EventChanges {
            visibility: Some(super::super::types::Visibility::Public),
            ..EventChanges::default()
        };
        let outcome = harness.edit("alice", id, publish);
        assert!(matches!(
            outcome,
            Outcome::Rejected(Rejection::Conflict { .. })
        ));
        assert_eq!(harness.calendar.events[&id].version, 1);
    }
}
