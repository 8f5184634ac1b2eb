//! Read-only queries: one event, an agenda over a time range, and search.
//! Each returns only what the caller may see.

use std::collections::BTreeSet;

use super::index::{starts_near, StartKey};
use super::state::Calendar;
use super::types::{EventId, EventView, Rejection, SearchQuery, UnixMinute};
use super::users::user_key;

impl Calendar {
    /// One event; `NotFound` also for a private event the caller is neither
    /// host nor guest of.
    pub fn event(&self, caller: &str, id: EventId) -> Result<EventView, Rejection> {
        let key = user_key(caller);
        match self.events.get(&id) {
            Some(event) if event.is_visible_to(&key) => Ok(event.clone()),
            _ => Err(Rejection::not_found(format!("event {id}"))),
        }
    }

    /// Visible events overlapping `[from, to)`, ordered by (start, id). Empty
    /// when `from >= to`.
    pub fn agenda(&self, caller: &str, from: UnixMinute, to: UnixMinute) -> Vec<EventView> {
        if from >= to {
            return Vec::new();
        }
        let ids = self.visible_near(&user_key(caller), from, to);
        self.views_overlapping(ids, from, to)
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
        for id in ids {
            let event = &self.events[&id];
            let wanted = event.is_visible_to(&key)
                && event.overlaps(from, to)
                && text.as_deref().is_none_or(|text| mentions(event, text));
            if wanted {
                found.push(event.clone());
            }
        }
        found.sort_by_key(|event| (event.start, event.id));
        Ok(found)
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
