//! Secondary indexes over the events, so agenda, conflict and search lookups
//! scan only the starts that can matter.
//!
//! Because no event lasts longer than `MAX_DURATION_MINUTES`, an event that
//! overlaps `[from, to)` starts in `[from - MAX_DURATION_MINUTES, to)`; the
//! lookups scan that window and keep the events whose end is after `from`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::limits::MAX_DURATION_MINUTES;
use super::types::{EventId, EventView, UnixMinute};

/// Index entries sort by start, then id.
pub(crate) type StartKey = (UnixMinute, EventId);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventIndex {
    /// Every event.
    pub by_start: BTreeSet<StartKey>,
    /// Public events only.
    pub public_by_start: BTreeSet<StartKey>,
    /// Private events under each participant's lowercase username, host and
    /// guests alike.
    pub private_by_participant: BTreeMap<String, BTreeSet<StartKey>>,
    /// Every event under its host's lowercase username.
    pub by_host: BTreeMap<String, BTreeSet<EventId>>,
}

impl EventIndex {
    pub fn insert(&mut self, event: &EventView) {
        let key = (event.start, event.id);
        self.by_start.insert(key);
        if event.is_public() {
            self.public_by_start.insert(key);
        } else {
            for participant in event.participants() {
                self.private_by_participant
                    .entry(participant.to_ascii_lowercase())
                    .or_default()
                    .insert(key);
            }
        }
        self.by_host
            .entry(event.host.to_ascii_lowercase())
            .or_default()
            .insert(event.id);
    }

    /// Removes an event as it was inserted; pass the stored value, not an
    /// edited copy.
    pub fn remove(&mut self, event: &EventView) {
        let key = (event.start, event.id);
        self.by_start.remove(&key);
        if event.is_public() {
            self.public_by_start.remove(&key);
        } else {
            for participant in event.participants() {
                remove_nested(
                    &mut self.private_by_participant,
                    &participant.to_ascii_lowercase(),
                    &key,
                );
            }
        }
        remove_nested(
            &mut self.by_host,
            &event.host.to_ascii_lowercase(),
            &event.id,
        );
    }

    pub fn hosted_by(&self, host_key: &str) -> impl Iterator<Item = EventId> + '_ {
        self.by_host.get(host_key).into_iter().flatten().copied()
    }

    /// Ids of the private events the user takes part in, in start order.
    pub fn private_of(&self, key: &str) -> impl Iterator<Item = EventId> + '_ {
        let entries = self.private_by_participant.get(key);
        entries.into_iter().flatten().map(|&(_, id)| id)
    }
}

/// Ids in `set` whose start can overlap `[from, to)`, in start order. The
/// caller still checks each event's end against `from`.
pub(crate) fn starts_near(
    set: &BTreeSet<StartKey>,
    from: UnixMinute,
    to: UnixMinute,
) -> impl Iterator<Item = EventId> + '_ {
    let lowest = from.saturating_sub(i64::from(MAX_DURATION_MINUTES));
    // Clamping keeps the range valid (BTreeSet::range panics when its start
    // is after its end); an empty window then yields nothing.
    let upper = to.max(lowest);
    set.range((lowest, EventId::MIN)..(upper, EventId::MIN))
        .map(|&(_, id)| id)
}

fn remove_nested<T: Ord>(map: &mut BTreeMap<String, BTreeSet<T>>, key: &str, value: &T) {
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
