//! Secondary indexes over the events, so agenda, conflict and search lookups
//! scan only the starts that can matter.
//!
//! An event that overlaps `[from, to)` starts in `[from - d, to)`, where d is
//! the longest duration among the events of the set being searched (never
//! more than `MAX_DURATION_MINUTES`). Each [`StartSet`] counts its events'
//! durations, so the lookups scan only that window and keep the events whose
//! end is after `from`. Recurring events live in their own index,
//! `SeriesIndex`.

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::limits::MAX_DURATION_MINUTES;
use super::series::SeriesIndex;
use super::types::{EventId, EventView, UnixMinute};

/// Index entries sort by start, then id.
pub(crate) type StartKey = (UnixMinute, EventId);

/// The one-off events of one index, by start, with the number of events of
/// each duration, so that a lookup looks back only as far as the longest
/// event of this set lasts.
///
/// NOTE: one long event widens the window of every lookup in its set until
/// it is removed, up to `MAX_DURATION_MINUTES`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StartSet {
    keys: OrdSet<StartKey>,
    /// Event count by duration in minutes; the last key is the longest.
    durations: OrdMap<u32, u32>,
}

impl StartSet {
    pub fn insert(&mut self, key: StartKey, duration_minutes: u32) {
        if self.keys.insert(key).is_none() {
            *self.durations.entry(duration_minutes).or_insert(0) += 1;
        }
    }

    /// Removes `key`, which was inserted with `duration_minutes`.
    ///
    /// # Panics
    ///
    /// If `key` is stored but no event of `duration_minutes` is counted,
    /// which means the caller passed an edited event instead of the stored one.
    pub fn remove(&mut self, key: &StartKey, duration_minutes: u32) {
        if self.keys.remove(key).is_none() {
            return;
        }
        let count = self
            .durations
            .get_mut(&duration_minutes)
            .unwrap_or_else(|| {
                panic!(
                    "the index contains event {} but counts no event of {duration_minutes} \
                     minutes; remove the stored event, not an edited copy",
                    key.1
                )
            });
        *count -= 1;
        if *count == 0 {
            self.durations.remove(&duration_minutes);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StartKey> + '_ {
        self.keys.iter()
    }

    /// The maximum duration of an event in this set, in minutes.
    fn longest_minutes(&self) -> u32 {
        self.durations.keys().next_back().copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventIndex {
    /// Every event.
    pub by_start: StartSet,
    /// Public events only.
    pub public_by_start: StartSet,
    /// Private events under each participant's lowercase username, host and
    /// guests alike.
    pub private_by_participant: OrdMap<String, StartSet>,
    /// Every event under its host's lowercase username.
    pub by_host: OrdMap<String, OrdSet<EventId>>,
    /// Recurring events, which the start-ordered sets above leave out.
    pub series: SeriesIndex,
}

impl EventIndex {
    pub fn insert(&mut self, event: &EventView) {
        self.by_host
            .entry(event.host.to_ascii_lowercase())
            .or_default()
            .insert(event.id);
        if event.is_recurring() {
            self.series.insert(event);
            return;
        }
        let key = (event.start, event.id);
        let duration = event.duration_minutes;
        self.by_start.insert(key, duration);
        if event.is_public() {
            self.public_by_start.insert(key, duration);
        } else {
            for participant in event.participants() {
                self.private_by_participant
                    .entry(participant.to_ascii_lowercase())
                    .or_default()
                    .insert(key, duration);
            }
        }
    }

    /// Removes an event as it was inserted; pass the stored value, not an
    /// edited copy.
    pub fn remove(&mut self, event: &EventView) {
        let host_key = event.host.to_ascii_lowercase();
        if let Some(ids) = self.by_host.get_mut(&host_key) {
            ids.remove(&event.id);
            if ids.is_empty() {
                self.by_host.remove(&host_key);
            }
        }
        if event.is_recurring() {
            self.series.remove(event);
            return;
        }
        let key = (event.start, event.id);
        let duration = event.duration_minutes;
        self.by_start.remove(&key, duration);
        if event.is_public() {
            self.public_by_start.remove(&key, duration);
        } else {
            for participant in event.participants() {
                let participant_key = participant.to_ascii_lowercase();
                if let Some(set) = self.private_by_participant.get_mut(&participant_key) {
                    set.remove(&key, duration);
                    if set.is_empty() {
                        self.private_by_participant.remove(&participant_key);
                    }
                }
            }
        }
    }

    pub fn hosted_by(&self, host_key: &str) -> impl Iterator<Item = EventId> + '_ {
        self.by_host.get(host_key).into_iter().flatten().copied()
    }

    /// Ids of the private events the user takes part in: one-off events in
    /// start order, then recurring ones.
    pub fn private_of(&self, key: &str) -> impl Iterator<Item = EventId> + '_ {
        let entries = self.private_by_participant.get(key);
        let single = entries
            .into_iter()
            .flat_map(StartSet::iter)
            .map(|&(_, id)| id);
        single.chain(self.series.private_of(key))
    }
}

/// Ids in `set` whose start can overlap `[from, to)`, in start order. The
/// caller still checks each event's end against `from`.
pub(crate) fn starts_near(
    set: &StartSet,
    from: UnixMinute,
    to: UnixMinute,
) -> impl Iterator<Item = EventId> + '_ {
    debug_assert!(set.longest_minutes() <= MAX_DURATION_MINUTES);
    let lowest = from.saturating_sub(i64::from(set.longest_minutes()));
    // Clamping keeps the range valid (BTreeSet::range panics when its start
    // is after its end); an empty window then yields nothing.
    let upper = to.max(lowest);
    set.keys
        .range((lowest, EventId::MIN)..(upper, EventId::MIN))
        .map(|&(_, id)| id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::limits::MAX_DURATION_MINUTES;
    use super::super::state::Calendar;
    use super::super::test_support::{random_command, Harness, Lcg, RANDOM_USERS};
    use super::super::types::{EventId, EventView, UnixMinute, Visibility};
    use super::{starts_near, EventIndex, StartSet};

    /// Rebuilds the index from scratch by scanning every event.
    fn rebuilt(calendar: &Calendar) -> EventIndex {
        let mut index = EventIndex::default();
        for event in calendar.events.values() {
            index.insert(event);
        }
        index
    }

    fn brute_agenda(
        calendar: &Calendar,
        user: &str,
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<EventId> {
        let key = user.to_ascii_lowercase();
        let mut found: Vec<&EventView> = calendar
            .events
            .values()
            .filter(|event| event.is_visible_to(&key) && event.overlaps(from, to))
            .collect();
        found.sort_by_key(|event| (event.start, event.id));
        found.iter().map(|event| event.id).collect()
    }

    /// Pairs of stored events that the conflict rules forbid together: some
    /// user is blocked by both.
    fn brute_conflicting_pairs(calendar: &Calendar) -> Vec<(EventId, EventId)> {
        let events: Vec<&EventView> = calendar.events.values().collect();
        let mut pairs = Vec::new();
        for (i, a) in events.iter().enumerate() {
            for b in &events[i + 1..] {
                let shared = calendar
                    .users
                    .keys()
                    .any(|key| a.blocks(key) && b.blocks(key));
                if shared && a.overlaps(b.start, b.end()) {
                    pairs.push((a.id, b.id));
                }
            }
        }
        pairs
    }

    fn check_against_scan(calendar: &Calendar, rng: &mut Lcg, step: usize) {
        let index = &calendar.index;
        let expected = rebuilt(calendar);
        assert_eq!(
            index.by_start, expected.by_start,
            "by_start after step {step}"
        );
        assert_eq!(
            index.public_by_start, expected.public_by_start,
            "public after step {step}"
        );
        assert_eq!(
            index.private_by_participant, expected.private_by_participant,
            "private_by_participant after step {step}"
        );
        assert_eq!(index.by_host, expected.by_host, "by_host after step {step}");

        let user = rng.pick(&RANDOM_USERS).to_string();
        let from = rng.start() - 24 * 60;
        let to = from + 1 + rng.below(3 * 24 * 60) as i64;
        let agenda: Vec<EventId> = calendar
            .agenda(&user, from, to)
            .iter()
            .map(|e| e.id)
            .collect();
        let scanned = brute_agenda(calendar, &user, from, to);
        assert_eq!(
            agenda, scanned,
            "agenda of {user} in [{from}, {to}) after step {step}"
        );
    }

    fn check_search(calendar: &Calendar, user: &str) {
        let key = user.to_ascii_lowercase();
        for host in RANDOM_USERS {
            let query = super::super::types::SearchQuery {
                host: Some(host.to_string()),
                ..Default::default()
            };
            let Ok(found) = calendar.search(user, &query) else {
                assert!(
                    !calendar.user_exists(host),
                    "search by existing host {host} failed"
                );
                continue;
            };
            let found: Vec<EventId> = found.iter().map(|event| event.id).collect();
            let mut scanned: Vec<&EventView> = calendar
                .events
                .values()
                .filter(|e| e.is_visible_to(&key) && e.host.eq_ignore_ascii_case(host))
                .collect();
            scanned.sort_by_key(|event| (event.start, event.id));
            let scanned: Vec<EventId> = scanned.iter().map(|event| event.id).collect();
            assert_eq!(found, scanned, "search of {user} for host {host}");
        }
    }

    #[test]
    fn index_matches_scan_after_random_ops() {
        let mut harness = Harness::with_users(&RANDOM_USERS);
        let mut rng = Lcg::new(0x5eed);
        let mut applied = BTreeMap::new();
        for step in 0..1500 {
            let command = random_command(&mut rng, &harness.calendar);
            let kind = format!("{command:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string();
            let done = matches!(harness.run(command), super::super::types::Outcome::Done(_));
            *applied.entry((kind, done)).or_insert(0) += 1;
            check_against_scan(&harness.calendar, &mut rng, step);
            assert_eq!(
                brute_conflicting_pairs(&harness.calendar),
                vec![],
                "after step {step}"
            );
        }
        for user in RANDOM_USERS {
            check_search(&harness.calendar, user);
        }
        // The sequence must exercise every command both ways that matter.
        for kind in ["Schedule", "Edit", "Delete", "DeleteAccount", "Respond"] {
            let done = applied.get(&(kind.to_string(), true)).copied().unwrap_or(0);
            assert!(done > 5, "only {done} {kind} commands applied: {applied:?}");
        }
        let conflicts = applied
            .get(&("Schedule".to_string(), false))
            .copied()
            .unwrap_or(0);
        assert!(
            conflicts > 5,
            "only {conflicts} schedules rejected: {applied:?}"
        );
        let events = harness.calendar.event_count();
        assert!(events > 10, "only {events} events left: {applied:?}");
    }

    #[test]
    fn private_index_covers_guests() {
        let mut harness = Harness::with_users(&["ann", "Ben"]);
        let draft = super::super::test_support::private("x", 0, 30, &["ben"]);
        let id = harness.schedule("ann", draft);
        let index = &harness.calendar.index;
        let mut expected = StartSet::default();
        expected.insert((0, id), 30);
        assert_eq!(index.private_by_participant.get("ben"), Some(&expected));
        assert_eq!(index.private_by_participant.get("ann"), Some(&expected));
        assert!(index.public_by_start.is_empty());
        let event = &harness.calendar.events[&id];
        assert!(matches!(event.visibility, Visibility::Private { .. }));
    }

    fn near(set: &StartSet, from: UnixMinute, to: UnixMinute) -> Vec<EventId> {
        starts_near(set, from, to).collect()
    }

    #[test]
    fn start_set_window_follows_longest() {
        let mut set = StartSet::default();
        set.insert((0, 1), 30);
        set.insert((80, 2), 30);
        // With 30-minute events the window of [100, 200) starts at 70, so
        // the event at 0, which ended at 30, is not even a candidate.
        assert_eq!(near(&set, 100, 200), vec![2]);
        set.insert((10, 3), 120);
        assert_eq!(
            near(&set, 100, 200),
            vec![1, 3, 2],
            "lookback of 120 minutes"
        );
        set.remove(&(10, 3), 120);
        assert_eq!(near(&set, 100, 200), vec![2], "lookback back to 30 minutes");
    }

    #[test]
    fn start_set_counts_durations() {
        let mut set = StartSet::default();
        set.insert((0, 1), 90);
        set.insert((0, 1), 90);
        set.insert((5, 2), 90);
        set.remove(&(0, 1), 90);
        assert_eq!(set.iter().count(), 1);
        assert_eq!(set.longest_minutes(), 90, "one 90-minute event is left");
        set.remove(&(0, 1), 90);
        assert_eq!(
            set.longest_minutes(),
            90,
            "removing a missing key changed counts"
        );
        set.remove(&(5, 2), 90);
        assert!(set.is_empty());
        assert_eq!(set.longest_minutes(), 0);
        assert_eq!(near(&set, 0, 100), Vec::<EventId>::new());
    }

    #[test]
    #[should_panic(expected = "the index contains event 1 but counts no event of 45 minutes")]
    fn start_set_remove_with_wrong_duration_panics() {
        let mut set = StartSet::default();
        set.insert((0, 1), 30);
        set.remove(&(0, 1), 45);
    }

    #[test]
    fn start_set_longest_event_found() {
        let mut set = StartSet::default();
        for slot in 0..100 {
            set.insert((slot * 60, slot as EventId + 1), 30);
        }
        // Ends one minute into the range.
        let long_start = 100 * 60 - i64::from(MAX_DURATION_MINUTES) + 1;
        set.insert((long_start, 1000), MAX_DURATION_MINUTES);
        let found = near(&set, 100 * 60, 101 * 60);
        assert_eq!(
            found.first(),
            Some(&1000),
            "the 14-day event reaches the range"
        );
    }
}
