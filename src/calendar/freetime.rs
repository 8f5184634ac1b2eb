//! Free time: the slots in which every named user is within working hours
//! and blocked by no event, and suggestions for a new meeting.
//!
//! Busy time comes from the per-participant index and the public index, so a
//! query reads only the events of the users it names. Results list free
//! slots only: a private event of someone else shows as time that is not
//! free, never with its title.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::index::starts_near;
use super::limits::MAX_SUGGESTIONS;
use super::limits::{MAX_DURATION_MINUTES, MAX_FREE_RANGE_MINUTES, MAX_FREE_USERS};
use super::state::Calendar;
use super::types::{EventId, EventView, Rejection, UnixMinute};
use super::validate::canonical_zone;
use super::working_hours::WorkingHours;

/// A half-open time range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSlot {
    pub start: UnixMinute,
    pub end: UnixMinute,
}

/// What a free-time query or a suggestion looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeQuery {
    /// Usernames, matched case-insensitively.
    pub users: Vec<String>,
    pub from: UnixMinute,
    pub to: UnixMinute,
    /// Shortest slot to list; for a suggestion, the meeting's length.
    pub min_minutes: u32,
    /// Zone of the standard working hours of users who never set theirs;
    /// the client sends the asking user's zone.
    pub default_zone: String,
}

impl Calendar {
    /// Lists the slots of at least `min_minutes` within `[from, to)` in which
    /// every listed user is in working hours and not busy, in time order.
    pub fn free_slots(&self, caller: &str, query: &FreeQuery) -> Result<Vec<TimeSlot>, Rejection> {
        self.existing_user(caller)?;
        let keys = self.check_free_query(query)?;
        let mut free = vec![TimeSlot {
            start: query.from,
            end: query.to,
        }];
        for key in &keys {
            let hours = self.hours_of(key, &query.default_zone);
            free = intersect(&free, &to_slots(hours.windows(query.from, query.to)));
        }
        let mut busy = Vec::new();
        for key in &keys {
            let events = self.events_blocking(key, query.from, query.to);
            busy.extend(events.iter().map(|event| TimeSlot {
                start: event.start,
                end: event.end(),
            }));
            busy.extend(self.occurrences_blocking(key, query.from, query.to));
        }
        let free = subtract(&free, &merge(busy));
        let long_enough = |slot: &TimeSlot| slot.end - slot.start >= i64::from(query.min_minutes);
        Ok(free.into_iter().filter(long_enough).collect())
    }

    /// Proposes up to `MAX_SUGGESTIONS` slots of exactly `min_minutes` in
    /// which the caller and the listed users are all free: the start of each
    /// free slot, earliest first, so that the proposals spread over the range
    /// instead of crowding into one free afternoon.
    pub fn suggest(&self, caller: &str, query: &FreeQuery) -> Result<Vec<TimeSlot>, Rejection> {
        let mut everyone = query.clone();
        everyone.users.insert(0, caller.to_string());
        let free = self.free_slots(caller, &everyone)?;
        let length = i64::from(query.min_minutes);
        let proposals = free.into_iter().take(MAX_SUGGESTIONS);
        let to_meeting = |slot: TimeSlot| TimeSlot {
            start: slot.start,
            end: slot.start + length,
        };
        Ok(proposals.map(to_meeting).collect())
    }

    /// Events overlapping `[from, to)` that keep the user busy: private ones
    /// the user takes part in and public ones, minus those the user
    /// declined, in (start, id) order.
    pub(crate) fn events_blocking(
        &self,
        key: &str,
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<&EventView> {
        let mut ids: BTreeSet<(UnixMinute, EventId)> = BTreeSet::new();
        let public = starts_near(&self.index.public_by_start, from, to);
        let private = self.index.private_by_participant.get(key);
        let private = private
            .into_iter()
            .flat_map(|set| starts_near(set, from, to));
        for id in public.chain(private) {
            let event = &self.events[&id];
            if event.overlaps(from, to) && event.blocks(key) {
                ids.insert((event.start, id));
            }
        }
        ids.into_iter().map(|(_, id)| &self.events[&id]).collect()
    }

    /// Occurrences of recurring events overlapping `[from, to)` that keep
    /// the user busy, expanded only for the series that can reach the range.
    fn occurrences_blocking(&self, key: &str, from: UnixMinute, to: UnixMinute) -> Vec<TimeSlot> {
        let mut slots = Vec::new();
        for id in self.index.series.visible_running(key, from, to) {
            let event = &self.events[&id];
            let invited = event.is_public() || event.involves(key);
            if !invited {
                continue;
            }
            for occurrence in super::series::stored_expander(event).occurrences(from, to) {
                // A guest may answer one occurrence apart from the series.
                let answer = event.response_at(key, Some(occurrence.original_start));
                if answer.blocks_time() && occurrence.start < to && occurrence.end > from {
                    slots.push(TimeSlot {
                        start: occurrence.start,
                        end: occurrence.end,
                    });
                }
            }
        }
        slots
    }

    fn hours_of(&self, key: &str, default_zone: &str) -> WorkingHours {
        let stored = self.working_hours.get(key).cloned();
        stored.unwrap_or_else(|| WorkingHours::standard(default_zone))
    }

    /// Checks the query and returns the users' lowercase keys, deduplicated.
    fn check_free_query(&self, query: &FreeQuery) -> Result<BTreeSet<String>, Rejection> {
        if query.users.is_empty() {
            return Err(Rejection::invalid(
                "users",
                "none given; name at least one user",
            ));
        }
        if query.users.len() > MAX_FREE_USERS {
            return Err(Rejection::invalid(
                "users",
                format!(
                    "{} given, more than the {MAX_FREE_USERS} a query can compare; name fewer",
                    query.users.len()
                ),
            ));
        }
        if query.from >= query.to || query.to - query.from > MAX_FREE_RANGE_MINUTES {
            return Err(Rejection::invalid(
                "time range",
                format!(
                    "[{}, {}) is empty or longer than {} days; give a start before the end \
                     and a shorter range",
                    super::types::format_minute(query.from),
                    super::types::format_minute(query.to),
                    MAX_FREE_RANGE_MINUTES / (24 * 60)
                ),
            ));
        }
        if query.min_minutes == 0 || query.min_minutes > MAX_DURATION_MINUTES {
            return Err(Rejection::invalid(
                "duration",
                format!(
                    "{} minutes is outside 1 to {MAX_DURATION_MINUTES}; give a positive length",
                    query.min_minutes
                ),
            ));
        }
        canonical_zone(&query.default_zone)?;
        let mut keys = BTreeSet::new();
        for user in &query.users {
            keys.insert(self.existing_user(user)?);
        }
        Ok(keys)
    }
}

fn to_slots(windows: Vec<(UnixMinute, UnixMinute)>) -> Vec<TimeSlot> {
    let to_slot = |(start, end)| TimeSlot { start, end };
    windows.into_iter().map(to_slot).collect()
}

/// Sorts slots and joins those that overlap or touch.
fn merge(mut slots: Vec<TimeSlot>) -> Vec<TimeSlot> {
    slots.sort_by_key(|slot| (slot.start, slot.end));
    let mut merged: Vec<TimeSlot> = Vec::with_capacity(slots.len());
    for slot in slots {
        match merged.last_mut() {
            Some(last) if slot.start <= last.end => last.end = last.end.max(slot.end),
            _ => merged.push(slot),
        }
    }
    merged
}

/// The time covered by both sorted, disjoint lists.
fn intersect(first: &[TimeSlot], second: &[TimeSlot]) -> Vec<TimeSlot> {
    let (mut i, mut j) = (0, 0);
    let mut both = Vec::new();
    while i < first.len() && j < second.len() {
        let start = first[i].start.max(second[j].start);
        let end = first[i].end.min(second[j].end);
        if start < end {
            both.push(TimeSlot { start, end });
        }
        if first[i].end < second[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    both
}

/// The time of the sorted, disjoint `slots` not covered by the sorted,
/// disjoint `busy`.
fn subtract(slots: &[TimeSlot], busy: &[TimeSlot]) -> Vec<TimeSlot> {
    let mut free = Vec::new();
    let mut next_busy = 0;
    for slot in slots {
        let mut start = slot.start;
        while next_busy < busy.len() && busy[next_busy].end <= start {
            next_busy += 1;
        }
        let mut index = next_busy;
        while index < busy.len() && busy[index].start < slot.end {
            if busy[index].start > start {
                free.push(TimeSlot {
                    start,
                    end: busy[index].start,
                });
            }
            start = start.max(busy[index].end);
            index += 1;
        }
        if start < slot.end {
            free.push(TimeSlot {
                start,
                end: slot.end,
            });
        }
    }
    free
}

#[cfg(test)]
mod tests {
    use super::super::responses::Response;
    use super::super::test_support::{private, public, Harness, HOUR, MONDAY};
    use super::super::types::{Command, Rejection};
    use super::super::working_hours::{WorkingHours, WEEKDAYS_MON_FRI};
    use super::*;

    fn slot(start: UnixMinute, end: UnixMinute) -> TimeSlot {
        TimeSlot { start, end }
    }

    fn query(users: &[&str], from: UnixMinute, to: UnixMinute, minutes: u32) -> FreeQuery {
        FreeQuery {
            users: users.iter().map(|user| user.to_string()).collect(),
            from,
            to,
            min_minutes: minutes,
            default_zone: "UTC".into(),
        }
    }

    #[test]
    fn interval_helpers() {
        let merged = merge(vec![slot(5, 8), slot(0, 2), slot(2, 3), slot(7, 9)]);
        assert_eq!(merged, vec![slot(0, 3), slot(5, 9)]);
        let both = intersect(&[slot(0, 10), slot(20, 30)], &[slot(5, 25)]);
        assert_eq!(both, vec![slot(5, 10), slot(20, 25)]);
        let left = subtract(&[slot(0, 10), slot(20, 30)], &[slot(2, 4), slot(8, 22)]);
        assert_eq!(left, vec![slot(0, 2), slot(4, 8), slot(22, 30)]);
        assert_eq!(subtract(&[slot(0, 10)], &[slot(0, 10)]), vec![]);
    }

    #[test]
    fn free_slots_skip_series_occurrences() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let mut standup = private("Standup", MONDAY + 9 * HOUR + 15, 15, &["bob"]);
        standup.recurrence = Some(crate::calendar::Recurrence {
            rule: "FREQ=DAILY;COUNT=5".into(),
            ..crate::calendar::Recurrence::default()
        });
        harness.ok(super::super::test_support::schedule("alice", standup));
        // Tuesday, the second occurrence, 09:15-09:30 in UTC (the draft's zone).
        let tuesday = MONDAY + 24 * HOUR;
        let day = query(&["bob"], tuesday, tuesday + 24 * HOUR, 15);
        let free = harness.calendar.free_slots("alice", &day).unwrap();
        let expected = vec![
            slot(tuesday + 9 * HOUR, tuesday + 9 * HOUR + 15),
            slot(tuesday + 9 * HOUR + 30, tuesday + 17 * HOUR),
        ];
        assert_eq!(free, expected);

        // Declining Tuesday's occurrence frees that slot, and only that one.
        harness.ok(crate::calendar::Command::Respond {
            caller: "bob".into(),
            event_id: 1,
            response: crate::calendar::Response::Declined,
            occurrence_start: Some(tuesday + 9 * HOUR + 15),
        });
        let free = harness.calendar.free_slots("alice", &day).unwrap();
        assert_eq!(free, vec![slot(tuesday + 9 * HOUR, tuesday + 17 * HOUR)]);
        let monday = query(&["bob"], MONDAY, MONDAY + 24 * HOUR, 15);
        let free = harness.calendar.free_slots("alice", &monday).unwrap();
        assert_eq!(
            free.len(),
            2,
            "Monday's occurrence still blocks bob: {free:?}"
        );
    }

    #[test]
    fn free_slots_skip_busy_time() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("bob", private("Sync", MONDAY + 10 * HOUR, 60, &[]));
        harness.schedule("carol", private("Lunch", MONDAY + 12 * HOUR, 90, &[]));
        let day = query(&["bob", "Carol"], MONDAY, MONDAY + 24 * HOUR, 30);
        let free = harness.calendar.free_slots("alice", &day).unwrap();
        let expected = vec![
            slot(MONDAY + 9 * HOUR, MONDAY + 10 * HOUR),
            slot(MONDAY + 11 * HOUR, MONDAY + 12 * HOUR),
            slot(MONDAY + 13 * HOUR + 30, MONDAY + 17 * HOUR),
        ];
        assert_eq!(free, expected);
        let long = query(&["bob", "carol"], MONDAY, MONDAY + 24 * HOUR, 90);
        let free = harness.calendar.free_slots("alice", &long).unwrap();
        assert_eq!(
            free,
            vec![slot(MONDAY + 13 * HOUR + 30, MONDAY + 17 * HOUR)]
        );
    }

    #[test]
    fn free_slots_use_each_users_hours() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let early = WorkingHours {
            start_minute: 7 * 60,
            end_minute: 11 * 60,
            weekdays: WEEKDAYS_MON_FRI,
            zone: "UTC".into(),
        };
        harness.ok(Command::SetWorkingHours {
            caller: "bob".into(),
            hours: early,
        });
        let day = query(&["alice", "bob"], MONDAY, MONDAY + 24 * HOUR, 15);
        let free = harness.calendar.free_slots("alice", &day).unwrap();
        assert_eq!(free, vec![slot(MONDAY + 9 * HOUR, MONDAY + 11 * HOUR)]);
        let weekend = query(&["bob"], MONDAY + 5 * 24 * HOUR, MONDAY + 7 * 24 * HOUR, 15);
        assert!(harness
            .calendar
            .free_slots("alice", &weekend)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn declined_and_public_events_in_free_time() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let town = harness.schedule("alice", public("Town hall", MONDAY + 9 * HOUR, 60));
        let day = query(&["bob"], MONDAY, MONDAY + 24 * HOUR, 15);
        let free = harness.calendar.free_slots("bob", &day).unwrap();
        assert_eq!(free, vec![slot(MONDAY + 10 * HOUR, MONDAY + 17 * HOUR)]);
        harness.ok(Command::Respond {
            caller: "bob".into(),
            event_id: town,
            response: Response::Declined,
            occurrence_start: None,
        });
        let free = harness.calendar.free_slots("bob", &day).unwrap();
        assert_eq!(free, vec![slot(MONDAY + 9 * HOUR, MONDAY + 17 * HOUR)]);
    }

    #[test]
    fn suggest_includes_caller_and_spreads() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", private("Focus", MONDAY + 9 * HOUR, 120, &[]));
        let week = query(&["bob"], MONDAY, MONDAY + 7 * 24 * HOUR, 60);
        let proposals = harness.calendar.suggest("alice", &week).unwrap();
        let day = 24 * HOUR;
        let expected = vec![
            slot(MONDAY + 11 * HOUR, MONDAY + 12 * HOUR),
            slot(MONDAY + day + 9 * HOUR, MONDAY + day + 10 * HOUR),
            slot(MONDAY + 2 * day + 9 * HOUR, MONDAY + 2 * day + 10 * HOUR),
        ];
        assert_eq!(proposals, expected);
    }

    /// Computes free slots minute by minute, scanning every event, with the
    /// standard working hours in UTC.
    fn brute_free(
        calendar: &Calendar,
        users: &[&str],
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<TimeSlot> {
        let keys: Vec<String> = users.iter().map(|user| user.to_ascii_lowercase()).collect();
        let hours = WorkingHours::standard("UTC");
        let windows = hours.windows(from, to);
        let is_free = |minute: UnixMinute| {
            let working = windows
                .iter()
                .any(|&(start, end)| start <= minute && minute < end);
            let busy = calendar.events.values().any(|event| {
                event.overlaps(minute, minute + 1) && keys.iter().any(|key| event.blocks(key))
            });
            working && !busy
        };
        let mut slots: Vec<TimeSlot> = Vec::new();
        for minute in from..to {
            if !is_free(minute) {
                continue;
            }
            match slots.last_mut() {
                Some(last) if last.end == minute => last.end = minute + 1,
                _ => slots.push(slot(minute, minute + 1)),
            }
        }
        slots
    }

    #[test]
    fn free_slots_match_scan_after_random_ops() {
        use super::super::test_support::{random_command, Lcg, RANDOM_USERS};
        let mut harness = Harness::with_users(&RANDOM_USERS);
        let mut rng = Lcg::new(0x5eed);
        for _ in 0..1500 {
            let command = random_command(&mut rng, &harness.calendar);
            harness.run(command);
        }
        // Accounts deleted by the random commands come back without events.
        for user in RANDOM_USERS {
            if !harness.calendar.user_exists(user) {
                harness.register(user);
            }
        }
        assert!(harness.calendar.event_count() > 10);
        let mut compared = 0;
        let mut shaped_by_events = 0;
        for round in 0..40 {
            let first = *rng.pick(&RANDOM_USERS);
            let second = *rng.pick(&RANDOM_USERS);
            let users = [first, second];
            let from = rng.start();
            let to = from + 1 + rng.below(2 * 24 * 60) as i64;
            let free = harness
                .calendar
                .free_slots(first, &query(&users, from, to, 1))
                .unwrap();
            let expected = brute_free(&harness.calendar, &users, from, to);
            assert_eq!(free, expected, "round {round}: {users:?} in [{from}, {to})");
            let working = to_slots(WorkingHours::standard("UTC").windows(from, to));
            if free != working {
                shaped_by_events += 1;
            }
            compared += 1;
        }
        assert_eq!(compared, 40);
        assert!(
            shaped_by_events > 5,
            "events shaped only {shaped_by_events} results"
        );
    }

    #[test]
    fn free_query_is_checked() {
        let harness = Harness::with_users(&["alice", "bob"]);
        let cases = [
            (query(&[], MONDAY, MONDAY + HOUR, 15), "users"),
            (query(&["bob"], MONDAY, MONDAY, 15), "time range"),
            (
                query(&["bob"], MONDAY, MONDAY + MAX_FREE_RANGE_MINUTES + 1, 15),
                "time range",
            ),
            (query(&["bob"], MONDAY, MONDAY + HOUR, 0), "duration"),
        ];
        for (bad, field) in cases {
            match harness.calendar.free_slots("alice", &bad) {
                Err(Rejection::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let ghost = query(&["ghost"], MONDAY, MONDAY + HOUR, 15);
        assert_eq!(
            harness.calendar.free_slots("alice", &ghost),
            Err(Rejection::not_found("user \"ghost\""))
        );
        let mut zone = query(&["bob"], MONDAY, MONDAY + HOUR, 15);
        zone.default_zone = "Nowhere".into();
        assert!(matches!(
            harness.calendar.free_slots("alice", &zone),
            Err(Rejection::Invalid { .. })
        ));
    }
}
