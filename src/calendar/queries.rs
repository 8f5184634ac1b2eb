//! Read-only queries: one event, an agenda over a time range, and search.
//! Each returns only what the caller may see.

use std::collections::BTreeSet;

use super::index::{starts_near, StartKey};
use super::limits::CONFLICT_HORIZON_MINUTES;
use super::series::stored_expander;
use super::state::Calendar;
use super::types::{EventId, EventView, Rejection, SearchQuery, UnixMinute};
use super::users::user_key;

impl Calendar {
    /// Returns one event. A private event the caller is neither host nor guest
    /// of is `NotFound`, like a missing one, so its existence is not revealed.
    pub fn event(&self, caller: &str, id: EventId) -> Result<EventView, Rejection> {
        let key = user_key(caller);
        match self.events.get(&id) {
            Some(event) if event.is_visible_to(&key) => Ok(event.clone()),
            _ => Err(Rejection::not_found(format!("event {id}"))),
        }
    }

    /// Visible events overlapping `[from, to)`, ordered by (start, id), with
    /// each occurrence of a recurring event as its own view. Empty when
    /// `from >= to`.
    pub fn agenda(&self, caller: &str, from: UnixMinute, to: UnixMinute) -> Vec<EventView> {
        if from >= to {
            return Vec::new();
        }
        let key = user_key(caller);
        let ids = self.visible_near(&key, from, to);
        let mut views = self.views_overlapping(ids, from, to);
        views.extend(self.series_occurrences(&key, from, to));
        views.sort_by_key(|event| (event.start, event.id));
        views
    }

    /// Visible events matching every filter of the query, ordered by
    /// (start, id). The text filter is a case-insensitive substring of the
    /// title or the description.
    pub fn search(&self, caller: &str, query: &SearchQuery) -> Result<Vec<EventView>, Rejection> {
        let text = check_query(query)?;
        let key = user_key(caller);
        let from = query.from.unwrap_or(UnixMinute::MIN);
        let to = query.to.unwrap_or(UnixMinute::MAX);
        let ids: Vec<EventId> = match &query.host {
            Some(host) => {
                let host_key = self.existing_user(host)?;
                self.index.hosted_by(&host_key).collect()
            }
            // NOTE: a text-only search scans every visible event; there is
            // no word index yet.
            None => self.visible_near(&key, from, to),
        };
        let mut found: Vec<EventView> = Vec::new();
        let series = self.matching_series(&key, query, text.as_deref(), &ids);
        for id in ids {
            let event = &self.events[&id];
            if event.is_recurring() {
                continue;
            }
            let matches = event.is_visible_to(&key)
                && event.overlaps(from, to)
                && text.as_deref().is_none_or(|text| mentions(event, text));
            if matches {
                found.push(event.clone());
            }
        }
        found.extend(series);
        found.sort_by_key(|event| (event.start, event.id));
        Ok(found)
    }

    /// Recurring events matching a search: each occurrence in the range for a
    /// query with a time range, the series once for a query without one. A
    /// range without an end lists occurrences up to `CONFLICT_HORIZON_MINUTES`
    /// after its start.
    fn matching_series(
        &self,
        key: &str,
        query: &SearchQuery,
        text: Option<&str>,
        host_ids: &[EventId],
    ) -> Vec<EventView> {
        let ranged = query.from.is_some() || query.to.is_some();
        let from = query.from.unwrap_or(UnixMinute::MIN);
        let to = query
            .to
            .unwrap_or_else(|| from.max(0).saturating_add(CONFLICT_HORIZON_MINUTES));
        let ids: Vec<EventId> = match (&query.host, ranged) {
            (Some(_), _) => host_ids.to_vec(),
            (None, true) => self.index.series.visible_running(key, from, to),
            (None, false) => {
                let everything = (UnixMinute::MIN, UnixMinute::MAX);
                self.index
                    .series
                    .visible_running(key, everything.0, everything.1)
            }
        };
        let mut found = Vec::new();
        for id in ids {
            let series = &self.events[&id];
            let matches = series.is_recurring()
                && series.is_visible_to(key)
                && text.is_none_or(|text| mentions(series, text));
            if !matches {
                continue;
            }
            if !ranged {
                found.push(series.clone());
                continue;
            }
            let expander = stored_expander(series);
            for occurrence in expander.occurrences(from, to) {
                found.push(expander.occurrence_view(series, &occurrence));
            }
        }
        found
    }

    /// Ids of the public events and of the caller's private events whose start
    /// lies in the scan window of `[from, to)`.
    fn visible_near(&self, key: &str, from: UnixMinute, to: UnixMinute) -> Vec<EventId> {
        let mut ids: Vec<EventId> = starts_near(&self.index.public_by_start, from, to).collect();
        if let Some(starts) = self.index.private_by_participant.get(key) {
            ids.extend(starts_near(starts, from, to));
        }
        ids
    }

    fn views_overlapping(
        &self,
        ids: Vec<EventId>,
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<EventView> {
        let keys: BTreeSet<StartKey> = ids
            .into_iter()
            .map(|id| &self.events[&id])
            .filter(|event| event.overlaps(from, to))
            .map(|event| (event.start, event.id))
            .collect();
        keys.into_iter()
            .map(|(_, id)| self.events[&id].clone())
            .collect()
    }
}

/// Checks that the query has a filter and a sane range; returns the search
/// text lowercased.
fn check_query(query: &SearchQuery) -> Result<Option<String>, Rejection> {
    let text = query.text.as_deref().map(str::trim);
    if text == Some("") {
        return Err(Rejection::invalid(
            "text",
            "it is empty; give words to search for",
        ));
    }
    if query.host.is_none() && text.is_none() && query.from.is_none() && query.to.is_none() {
        return Err(Rejection::invalid(
            "query",
            "it has no filter; give a host, a text, or a time range",
        ));
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from >= to {
            return Err(Rejection::invalid(
                "time range",
                format!("from {from} is not before to {to}; give a range whose start comes first"),
            ));
        }
    }
    Ok(text.map(str::to_lowercase))
}

fn mentions(event: &EventView, text: &str) -> bool {
    event.title.to_lowercase().contains(text) || event.description.to_lowercase().contains(text)
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_DURATION_MINUTES;
    use super::super::test_support::{private, public, Harness, HOUR, MONDAY};
    use super::super::types::{EventId, Rejection, SearchQuery};

    fn ids(events: &[super::EventView]) -> Vec<EventId> {
        events.iter().map(|event| event.id).collect()
    }

    /// alice: public 1 at 9:00, private 2 with bob at 11:00, private 3 alone at
    /// 13:00; carol: private 4 at 15:00 with dave.
    fn sample() -> Harness {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        let mut standup = public("Standup", MONDAY + 9 * HOUR, 30);
        standup.description = "Daily SYNC of the team".into();
        harness.schedule("alice", standup);
        harness.schedule("alice", private("Review", MONDAY + 11 * HOUR, 60, &["bob"]));
        harness.schedule("alice", private("Dentist", MONDAY + 13 * HOUR, 60, &[]));
        harness.schedule("carol", private("Sync", MONDAY + 15 * HOUR, 60, &["dave"]));
        harness
    }

    #[test]
    fn event_hides_invisible_private() {
        let harness = sample();
        assert_eq!(harness.calendar.event("bob", 2).unwrap().title, "Review");
        assert_eq!(harness.calendar.event("BOB", 2).unwrap().id, 2);
        assert_eq!(harness.calendar.event("carol", 1).unwrap().id, 1);
        assert_eq!(
            harness.calendar.event("carol", 2),
            Err(Rejection::not_found("event 2"))
        );
        assert_eq!(
            harness.calendar.event("carol", 42),
            Err(Rejection::not_found("event 42"))
        );
    }

    #[test]
    fn agenda_shows_visible_in_order() {
        let harness = sample();
        let day = (MONDAY, MONDAY + 24 * HOUR);
        assert_eq!(
            ids(&harness.calendar.agenda("alice", day.0, day.1)),
            vec![1, 2, 3]
        );
        assert_eq!(
            ids(&harness.calendar.agenda("bob", day.0, day.1)),
            vec![1, 2]
        );
        assert_eq!(
            ids(&harness.calendar.agenda("carol", day.0, day.1)),
            vec![1, 4]
        );
        assert_eq!(
            ids(&harness.calendar.agenda("dave", day.0, day.1)),
            vec![1, 4]
        );
    }

    #[test]
    fn agenda_range_is_half_open() {
        let harness = sample();
        let nine = MONDAY + 9 * HOUR;
        let calendar = &harness.calendar;
        assert_eq!(
            ids(&calendar.agenda("alice", nine + 29, nine + 30)),
            vec![1]
        );
        assert!(calendar.agenda("alice", nine + 30, nine + 60).is_empty());
        assert!(calendar.agenda("alice", nine - 60, nine).is_empty());
        assert!(calendar.agenda("alice", nine + 10, nine).is_empty());
    }

    #[test]
    fn agenda_includes_long_event_started_before() {
        let mut harness = Harness::with_users(&["alice"]);
        let start = MONDAY - i64::from(MAX_DURATION_MINUTES) + 1;
        harness.schedule("alice", public("Fortnight", start, MAX_DURATION_MINUTES));
        let calendar = &harness.calendar;
        assert_eq!(ids(&calendar.agenda("alice", MONDAY, MONDAY + 1)), vec![1]);
        assert!(calendar.agenda("alice", MONDAY + 1, MONDAY + 2).is_empty());
    }

    #[test]
    fn search_by_host_respects_visibility() {
        let harness = sample();
        let query = SearchQuery {
            host: Some("ALICE".into()),
            ..SearchQuery::default()
        };
        assert_eq!(
            ids(&harness.calendar.search("alice", &query).unwrap()),
            vec![1, 2, 3]
        );
        assert_eq!(
            ids(&harness.calendar.search("bob", &query).unwrap()),
            vec![1, 2]
        );
        let unknown = SearchQuery {
            host: Some("ghost".into()),
            ..SearchQuery::default()
        };
        let rejection = harness.calendar.search("bob", &unknown).unwrap_err();
        assert_eq!(rejection, Rejection::not_found("user \"ghost\""));
    }

    #[test]
    fn search_by_text_is_case_insensitive() {
        let harness = sample();
        let query = SearchQuery {
            text: Some(" sync ".into()),
            ..SearchQuery::default()
        };
        assert_eq!(
            ids(&harness.calendar.search("dave", &query).unwrap()),
            vec![1, 4]
        );
        assert_eq!(
            ids(&harness.calendar.search("alice", &query).unwrap()),
            vec![1]
        );
    }

    #[test]
    fn search_combines_filters() {
        let harness = sample();
        let query = SearchQuery {
            host: Some("alice".into()),
            text: Some("e".into()),
            from: Some(MONDAY + 10 * HOUR),
            to: Some(MONDAY + 12 * HOUR),
        };
        assert_eq!(
            ids(&harness.calendar.search("alice", &query).unwrap()),
            vec![2]
        );
        let after = SearchQuery {
            from: Some(MONDAY + 11 * HOUR + 30),
            ..SearchQuery::default()
        };
        assert_eq!(
            ids(&harness.calendar.search("alice", &after).unwrap()),
            vec![2, 3]
        );
        let before = SearchQuery {
            to: Some(MONDAY + 9 * HOUR + 1),
            ..SearchQuery::default()
        };
        assert_eq!(
            ids(&harness.calendar.search("carol", &before).unwrap()),
            vec![1]
        );
    }

    #[test]
    fn search_rejects_bad_queries() {
        let harness = sample();
        let empty = SearchQuery::default();
        let blank_text = SearchQuery {
            text: Some("  ".into()),
            ..SearchQuery::default()
        };
        let backwards = SearchQuery {
            from: Some(MONDAY + 1),
            to: Some(MONDAY),
            ..SearchQuery::default()
        };
        for (query, field) in [
            (empty, "query"),
            (blank_text, "text"),
            (backwards, "time range"),
        ] {
            match harness.calendar.search("alice", &query) {
                Err(Rejection::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{query:?} gave {other:?}"),
            }
        }
    }
}
