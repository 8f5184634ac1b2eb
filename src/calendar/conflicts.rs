//! Conflict detection. A public event conflicts with every overlapping event;
//! a private event conflicts with every overlapping public event and with
//! every overlapping private event that shares a participant (host or guest).
//! Overlap is half-open, so back-to-back events do not conflict.

use std::collections::BTreeSet;

use super::index::starts_near;
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
    /// Every slot that `candidate` would conflict with, sorted, ignoring the
    /// stored event with the candidate's own id. Events `viewer_key` cannot
    /// see appear without their details.
    pub(crate) fn find_conflicts(&self, candidate: &EventView, viewer_key: &str) -> Vec<BusySlot> {
        let mut slots = BTreeSet::new();
        for event_id in self.conflict_candidates(candidate) {
            if event_id == candidate.id {
                continue;
            }
            let other = &self.events[&event_id];
            if !other.overlaps(candidate.start, candidate.end()) {
                continue;
            }
            for participant in busy_participants(candidate, other) {
                slots.insert(SlotKey {
                    start: other.start,
                    end: other.end(),
                    participant_key: user_key(participant),
                    event_id,
                    participant: participant.clone(),
                });
            }
        }
        let to_slot = |slot: SlotKey| self.busy_slot(slot, viewer_key);
        slots.into_iter().map(to_slot).collect()
    }

    /// Ids of the events whose start lies in the candidate's scan window and
    /// which the rules could make conflict with it.
    fn conflict_candidates(&self, candidate: &EventView) -> BTreeSet<EventId> {
        let (start, end) = (candidate.start, candidate.end());
        if candidate.is_public() {
            return starts_near(&self.index.by_start, start, end).collect();
        }
        let mut ids: BTreeSet<EventId> =
            starts_near(&self.index.public_by_start, start, end).collect();
        for participant in candidate.participants() {
            let key = user_key(participant);
            if let Some(starts) = self.index.private_by_participant.get(&key) {
                ids.extend(starts_near(starts, start, end));
            }
        }
        ids
    }

    fn busy_slot(&self, slot: SlotKey, viewer_key: &str) -> BusySlot {
        let event = &self.events[&slot.event_id];
        let brief = event.is_visible_to(viewer_key).then(|| event.brief());
        BusySlot {
            participant: slot.participant,
            start: slot.start,
            end: slot.end,
            event: brief,
        }
    }
}

/// The participants of `other` that `candidate` also involves, or the host of
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
