//! Recurring events in the state: their index, their conflict spans, and the
//! commands that change or cancel one occurrence or an occurrence and every
//! later one.
//!
//! A series is stored once, as one event with a rule, and expanded on demand
//! with [`Expander`]. The index keeps each series under the end of its last
//! occurrence, which is `UnixMinute::MAX` for a rule without an end. A lookup
//! for `[from, to)` therefore reads only the series still running at `from`,
//! then drops those whose first occurrence starts at or after `to`.

use std::collections::BTreeSet;
use std::ops::Bound;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::history::{edited_fields, Change, FieldChange};
use super::limits::{
    CONFLICT_HORIZON_MINUTES, MAX_DURATION_MINUTES, MAX_SERIES_EXCEPTIONS, MAX_SERIES_OCCURRENCES,
};
use super::recurrence::{instant_in, Expander, Occurrence, ParsedRule};
use super::state::Calendar;
use super::types::{
    Effect, EventChanges, EventId, EventView, NotificationKind, OccurrenceOverride, Recurrence,
    Rejection, UnixMinute,
};
use super::users::user_key;
use super::validate::{normalize_title, validate_description, validate_duration, validate_start};

/// The occurrence an `EditOccurrence` command names.
pub(crate) struct OccurrenceTarget {
    pub event_id: EventId,
    pub expected_version: u64,
    pub occurrence_start: UnixMinute,
    pub following: bool,
}

/// Index entries sort by the end of a series' last occurrence, then id.
type EndKey = (UnixMinute, EventId);

/// First start and last end of one series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeriesSpan {
    pub first_start: UnixMinute,
    /// Exclusive end of the last occurrence; `UnixMinute::MAX` without an end.
    pub last_end: UnixMinute,
}

/// Index of the recurring events, which the start-ordered indexes of one-off
/// events leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeriesIndex {
    pub spans: OrdMap<EventId, SeriesSpan>,
    /// Every series.
    pub by_end: OrdSet<EndKey>,
    /// Public series only.
    pub public_by_end: OrdSet<EndKey>,
    /// Private series under each participant's lowercase username.
    pub private_by_participant: OrdMap<String, OrdSet<EndKey>>,
}

impl SeriesIndex {
    pub fn insert(&mut self, event: &EventView) {
        let span = series_span(event);
        let key = (span.last_end, event.id);
        self.spans.insert(event.id, span);
        self.by_end.insert(key);
        if event.is_public() {
            self.public_by_end.insert(key);
        } else {
            for participant in event.participants() {
                self.private_by_participant
                    .entry(user_key(participant))
                    .or_default()
                    .insert(key);
            }
        }
    }

    /// Removes a series as it was inserted; pass the stored value.
    pub fn remove(&mut self, event: &EventView) {
        let Some(span) = self.spans.remove(&event.id) else {
            return;
        };
        let key = (span.last_end, event.id);
        self.by_end.remove(&key);
        self.public_by_end.remove(&key);
        for participant in event.participants() {
            let participant = user_key(participant);
            if let Some(set) = self.private_by_participant.get_mut(&participant) {
                set.remove(&key);
                if set.is_empty() {
                    self.private_by_participant.remove(&participant);
                }
            }
        }
    }

    /// Ids in `set` of the series whose span overlaps `[from, to)`.
    fn running<'a>(
        &'a self,
        set: &'a OrdSet<EndKey>,
        from: UnixMinute,
        to: UnixMinute,
    ) -> impl Iterator<Item = EventId> + 'a {
        let after = Bound::Excluded((from, EventId::MAX));
        set.range((after, Bound::Unbounded))
            .map(|&(_, id)| id)
            .filter(move |id| self.spans[id].first_start < to)
    }

    /// Series a user can see (public ones and their private ones) that can
    /// have an occurrence in `[from, to)`.
    pub fn visible_running(&self, key: &str, from: UnixMinute, to: UnixMinute) -> Vec<EventId> {
        let mut ids: Vec<EventId> = self.running(&self.public_by_end, from, to).collect();
        if let Some(set) = self.private_by_participant.get(key) {
            ids.extend(self.running(set, from, to));
        }
        ids
    }

    /// Series the conflict rules could make collide with `candidate` in
    /// `[from, to)`: every series for a public candidate, and public series
    /// plus those of the candidate's participants for a private one.
    pub fn conflict_candidates(
        &self,
        candidate: &EventView,
        from: UnixMinute,
        to: UnixMinute,
    ) -> BTreeSet<EventId> {
        if candidate.is_public() {
            return self.running(&self.by_end, from, to).collect();
        }
        let mut ids: BTreeSet<EventId> = self.running(&self.public_by_end, from, to).collect();
        for participant in candidate.participants() {
            if let Some(set) = self.private_by_participant.get(&user_key(participant)) {
                ids.extend(self.running(set, from, to));
            }
        }
        ids
    }

    /// Ids of the private series the user takes part in.
    pub fn private_of<'a>(&'a self, key: &str) -> impl Iterator<Item = EventId> + 'a {
        let entries = self.private_by_participant.get(key);
        entries.into_iter().flatten().map(|&(_, id)| id)
    }
}

/// Computes the span of a stored series, whose rule was validated when it
/// was stored.
fn series_span(event: &EventView) -> SeriesSpan {
    let expander = stored_expander(event);
    match expander.all_occurrences() {
        Some(all) => SeriesSpan {
            first_start: all.first().map_or(UnixMinute::MAX, |first| first.start),
            last_end: all.iter().map(|o| o.end).max().unwrap_or(UnixMinute::MIN),
        },
        None => {
            let first =
                expander.occurrences(UnixMinute::MIN, event.start + CONFLICT_HORIZON_MINUTES);
            let first_start = first.first().map_or(event.start, |first| first.start);
            SeriesSpan {
                first_start: first_start.min(event.start),
                last_end: UnixMinute::MAX,
            }
        }
    }
}

/// Prepares a stored series for expansion.
///
/// # Panics
///
/// If the stored rule does not parse, which `validate_series` rules out
/// before anything is stored.
pub(crate) fn stored_expander(event: &EventView) -> Expander<'_> {
    Expander::new(event)
        .unwrap_or_else(|error| panic!("stored event {} has a broken rule: {error}", event.id))
}

/// Returns the spans that overlap `[start, end)`, latest first. `spans` is sorted
/// by start and no span is longer than `MAX_DURATION_MINUTES`.
pub(crate) fn overlapping(
    spans: &[Occurrence],
    start: UnixMinute,
    end: UnixMinute,
) -> impl Iterator<Item = &Occurrence> {
    let upper = spans.partition_point(|span| span.start < end);
    let lowest = start - i64::from(MAX_DURATION_MINUTES);
    spans[..upper]
        .iter()
        .rev()
        .take_while(move |span| span.start >= lowest)
        .filter(move |span| span.end > start)
}

/// Lists the occurrences of an event that conflict checks cover: the event itself
/// for a one-off event, every occurrence of a series that ends, and those
/// starting within `CONFLICT_HORIZON_MINUTES` of the start for a series
/// without an end.
pub(crate) fn checked_spans(event: &EventView) -> Vec<Occurrence> {
    if !event.is_recurring() {
        return vec![Occurrence {
            start: event.start,
            end: event.end(),
            original_start: event.start,
        }];
    }
    let expander = stored_expander(event);
    match expander.all_occurrences() {
        Some(all) => all,
        None => expander.occurrences(UnixMinute::MIN, event.start + CONFLICT_HORIZON_MINUTES),
    }
}

fn invalid_rule(message: impl Into<String>) -> Rejection {
    Rejection::invalid("recurrence", message)
}

/// Normalizes the recurrence of a new event: the canonical rule, sorted
/// exceptions that name real occurrences, no overrides.
pub(crate) fn normalized_recurrence(
    event: &EventView,
    recurrence: &Recurrence,
) -> Result<Recurrence, Rejection> {
    let rule = ParsedRule::parse(&recurrence.rule).map_err(invalid_rule)?;
    if !recurrence.overrides.is_empty() || recurrence.occurrence.is_some() {
        return Err(invalid_rule(
            "a new recurring event cannot carry moved occurrences; \
             schedule the series, then edit single occurrences",
        ));
    }
    let mut exceptions = recurrence.exceptions.clone();
    exceptions.sort_unstable();
    exceptions.dedup();
    let normalized = Recurrence {
        rule: rule.canonical(),
        exceptions,
        overrides: Vec::new(),
        occurrence: None,
    };
    let mut candidate = event.clone();
    candidate.recurrence = Some(Box::new(normalized.clone()));
    let expander = Expander::new(&candidate).map_err(invalid_rule)?;
    for &exception in &normalized.exceptions {
        if !expander.has_rule_start(exception) {
            return Err(invalid_rule(format!(
                "the exception at {} is not an occurrence of the rule; \
                 give the start of an occurrence",
                super::types::format_minute(exception)
            )));
        }
    }
    Ok(normalized)
}

/// Checks a series before it is stored and returns the end of its conflict
/// horizon when it has no end: it must fit its limits, have an occurrence,
/// and no two of its occurrences may overlap.
pub(crate) fn validate_series(event: &EventView) -> Result<Option<UnixMinute>, Rejection> {
    let expander = Expander::new(event).map_err(invalid_rule)?;
    check_exception_limit(event)?;
    let bounded = expander.rule().is_bounded();
    if bounded {
        let starts = expander.rule_starts_before(UnixMinute::MAX, MAX_SERIES_OCCURRENCES + 1);
        if starts.len() > MAX_SERIES_OCCURRENCES {
            return Err(invalid_rule(format!(
                "it has more than {MAX_SERIES_OCCURRENCES} occurrences; \
                 use a smaller COUNT, an earlier UNTIL, or no end"
            )));
        }
    }
    let spans = checked_spans(event);
    if spans.is_empty() {
        return Err(invalid_rule(
            "the rule gives no occurrence from the start on; check the rule and the start date",
        ));
    }
    for pair in spans.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(invalid_rule(format!(
                "the occurrence at {} starts before the one at {} ends; \
                 shorten the event or space the occurrences further apart",
                super::types::format_minute(pair[1].start),
                super::types::format_minute(pair[0].start)
            )));
        }
    }
    Ok((!bounded).then_some(event.start + CONFLICT_HORIZON_MINUTES))
}

fn check_exception_limit(event: &EventView) -> Result<(), Rejection> {
    let recurrence = event.recurrence.as_ref().expect("a series");
    let exceptions = recurrence.exceptions.len() + recurrence.overrides.len();
    if exceptions > MAX_SERIES_EXCEPTIONS {
        return Err(invalid_rule(format!(
            "it has {exceptions} cancelled or moved occurrences, more than the \
             {MAX_SERIES_EXCEPTIONS} allowed; end the series and start a new one"
        )));
    }
    Ok(())
}

/// Moves the exceptions and the original starts of overrides along with a
/// change of the series' start or zone: each keeps its local distance from
/// the start. Those that no longer name an occurrence of the rule are
/// dropped.
pub(crate) fn carry_exceptions(old: &EventView, new: &mut EventView) -> Result<(), Rejection> {
    let same_start = old.start == new.start && old.zone == new.zone;
    if same_start || !old.is_recurring() {
        return Ok(());
    }
    let old_expander = stored_expander(old);
    let shift = |minute: UnixMinute| -> Option<UnixMinute> {
        let offset = old_expander.local_time(minute) - old_expander.local_start();
        let new_local = super::recurrence::local_time_in(&new.zone, new.start)? + offset;
        instant_in(&new.zone, new_local)
    };

    let recurrence = old.recurrence.as_ref().expect("old is a series");
    let exceptions: Vec<UnixMinute> = recurrence
        .exceptions
        .iter()
        .filter_map(|&e| shift(e))
        .collect();
    let overrides: Vec<OccurrenceOverride> = recurrence
        .overrides
        .iter()
        .filter_map(|moved| {
            let original_start = shift(moved.original_start)?;
            Some(OccurrenceOverride {
                original_start,
                ..moved.clone()
            })
        })
        .collect();

    let mut shifted = new.clone();
    let target = shifted.recurrence.as_mut().expect("new is a series");
    target.exceptions = Vec::new();
    target.overrides = Vec::new();
    let new_expander = Expander::new(&shifted).map_err(invalid_rule)?;
    // NOTE: an exception or moved occurrence whose shifted start is not an
    // occurrence of the rule any more is dropped without a notice.
    let mut kept_exceptions: Vec<UnixMinute> = exceptions
        .into_iter()
        .filter(|&e| new_expander.has_rule_start(e))
        .collect();
    kept_exceptions.sort_unstable();
    let mut kept_overrides: Vec<OccurrenceOverride> = overrides
        .into_iter()
        .filter(|moved| new_expander.has_rule_start(moved.original_start))
        .collect();
    kept_overrides.sort_by_key(|moved| moved.original_start);

    let target = new.recurrence.as_mut().expect("new is a series");
    target.exceptions = kept_exceptions;
    target.overrides = kept_overrides;
    Ok(())
}

impl Calendar {
    pub(crate) fn edit_occurrence(
        &mut self,
        caller: &str,
        target: OccurrenceTarget,
        changes: &EventChanges,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let OccurrenceTarget {
            event_id,
            expected_version,
            occurrence_start,
            following,
        } = target;
        let key = self.existing_user(caller)?;
        let old = self.hosted_event(&key, event_id, "edit")?.clone();
        if expected_version != old.version {
            return Err(Rejection::StaleVersion {
                event_id,
                expected: expected_version,
                current: old.version,
            });
        }
        check_occurrence(&old, occurrence_start)?;
        let before = stored_expander(&old).rule_starts_before_count(occurrence_start);
        if following && before == 0 {
            // The first occurrence and all that follow: the whole series.
            return self.edit(caller, event_id, expected_version, changes, now_ms);
        }
        if following {
            self.split_series(&key, old, occurrence_start, before, changes, now_ms)
        } else {
            self.move_occurrence(&key, old, occurrence_start, changes, now_ms)
        }
    }

    pub(crate) fn delete_occurrence(
        &mut self,
        caller: &str,
        event_id: EventId,
        occurrence_start: UnixMinute,
        following: bool,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let old = self.hosted_event(&key, event_id, "delete")?.clone();
        check_occurrence(&old, occurrence_start)?;
        let expander = stored_expander(&old);
        let before = expander.rule_starts_before_count(occurrence_start);
        let cancelled = expander.occurrence_at(occurrence_start);
        let cancelled_view = expander.occurrence_view(&old, &cancelled);

        let new = if following {
            truncated(&old, occurrence_start, before)
        } else {
            let mut new = old.clone();
            let recurrence = new.recurrence.as_mut().expect("checked to be a series");
            recurrence
                .overrides
                .retain(|moved| moved.original_start != occurrence_start);
            recurrence.exceptions.push(occurrence_start);
            recurrence.exceptions.sort_unstable();
            new.retain_occurrence_responses(|start| start != occurrence_start);
            new
        };
        if (following && before == 0) || has_no_occurrence(&new) {
            self.delete(caller, event_id, now_ms)?;
            return Ok(Effect::OccurrenceDeleted {
                event_id,
                version: None,
            });
        }
        validate_series(&new)?;

        let mut new = new;
        new.version += 1;
        self.replace_event(event_id, new.clone());
        let after = if following {
            "cancelled with every later occurrence"
        } else {
            "cancelled"
        };
        let cancel = Change::Edited {
            fields: vec![FieldChange {
                field: "occurrence".into(),
                before: super::types::format_minute(cancelled.start),
                after: after.into(),
            }],
        };
        let host = new.host.clone();
        self.record_occurrence_history(event_id, now_ms, &host, Some(occurrence_start), cancel);
        let audience = self.audience(&new);
        if following {
            self.notify(
                &audience,
                NotificationKind::Changed,
                &new,
                &new.host,
                now_ms,
            );
        } else {
            let host = new.host.clone();
            self.notify(
                &audience,
                NotificationKind::Cancelled,
                &cancelled_view,
                &host,
                now_ms,
            );
        }
        Ok(Effect::OccurrenceDeleted {
            event_id,
            version: Some(new.version),
        })
    }

    /// Changes one occurrence: stores an override and checks the moved
    /// occurrence against every other event and every other occurrence of
    /// its own series.
    fn move_occurrence(
        &mut self,
        key: &str,
        old: EventView,
        original_start: UnixMinute,
        changes: &EventChanges,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        if changes.zone.is_some() || changes.visibility.is_some() {
            return Err(Rejection::invalid(
                "changes",
                "one occurrence keeps the zone and the guests of its series; \
                 change them for this and the following occurrences, or for the whole event",
            ));
        }
        let recurrence = old.recurrence.as_ref().expect("checked to be a series");
        let current = recurrence
            .overrides
            .iter()
            .find(|moved| moved.original_start == original_start)
            .cloned()
            .unwrap_or(OccurrenceOverride {
                original_start,
                start: original_start,
                duration_minutes: old.duration_minutes,
                title: None,
                description: None,
            });
        let moved = changed_override(&old, &current, changes)?;
        if moved == current {
            return Err(Rejection::invalid(
                "changes",
                format!(
                    "nothing to change: the occurrence at {} of event {} already has every given value",
                    super::types::format_minute(original_start),
                    old.id
                ),
            ));
        }
        let mut new = old.clone();
        let overrides = &mut new.recurrence.as_mut().expect("series").overrides;
        overrides.retain(|other| other.original_start != original_start);
        let plain = moved.start == original_start
            && moved.duration_minutes == old.duration_minutes
            && moved.title.is_none()
            && moved.description.is_none();
        if !plain {
            overrides.push(moved.clone());
            overrides.sort_by_key(|other| other.original_start);
        }
        let retimed =
            moved.start != current.start || moved.duration_minutes != current.duration_minutes;
        if retimed {
            // The guests responded to this occurrence for another time.
            new.retain_occurrence_responses(|start| start != original_start);
        }
        // Overlaps with the series' own occurrences are reported as conflicts
        // below, so only the size limit is checked here.
        check_exception_limit(&new)?;
        let span = Occurrence {
            start: moved.start,
            end: moved.start + i64::from(moved.duration_minutes),
            original_start,
        };
        let slots = self.find_span_conflicts(&new, &[span], key, true);
        if !slots.is_empty() {
            return Err(Rejection::Conflict { slots });
        }

        new.version += 1;
        self.replace_event(old.id, new.clone());
        let view = stored_expander(&new).occurrence_view(&new, &span);
        let before_view = stored_expander(&old)
            .occurrence_view(&old, &stored_expander(&old).occurrence_at(original_start));
        let fields = edited_fields(&before_view, &view);
        let host = new.host.clone();
        self.record_occurrence_history(
            old.id,
            now_ms,
            &host,
            Some(original_start),
            Change::Edited { fields },
        );
        let audience = self.audience(&new);
        self.notify(
            &audience,
            NotificationKind::Changed,
            &view,
            &new.host,
            now_ms,
        );
        Ok(Effect::SeriesWritten {
            event_id: new.id,
            version: new.version,
            conflicts_checked_until: None,
        })
    }

    /// Ends the series before `split_start` and continues it, with the
    /// changes, as a new series from there.
    fn split_series(
        &mut self,
        key: &str,
        old: EventView,
        split_start: UnixMinute,
        before: u32,
        changes: &EventChanges,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let recurrence = old.recurrence.as_ref().expect("checked to be a series");
        let rule = ParsedRule::parse(&recurrence.rule).map_err(invalid_rule)?;
        let mut base = old.clone();
        base.id = self.next_event_id;
        base.version = 1;
        base.start = split_start;
        base.recurrence = Some(Box::new(Recurrence {
            rule: rule.counted_after(before).canonical(),
            exceptions: recurrence
                .exceptions
                .iter()
                .copied()
                .filter(|&e| e >= split_start)
                .collect(),
            overrides: recurrence
                .overrides
                .iter()
                .filter(|moved| moved.original_start >= split_start)
                .cloned()
                .collect(),
            occurrence: None,
        }));
        base.retain_occurrence_responses(|start| start >= split_start);
        let mut continued = self.changed_event(&base, changes)?;
        if continued == base {
            return Err(Rejection::invalid(
                "changes",
                "nothing to change: the following occurrences already have every given value",
            ));
        }
        carry_exceptions(&base, &mut continued)?;
        Calendar::carry_responses(&base, &mut continued);
        let checked_until = validate_series(&continued)?;
        let mut ended = truncated(&old, split_start, before);
        validate_series(&ended)?;
        ended.version += 1;

        // Check the continued series against the state with the old one
        // already ended, and put the old one back if it conflicts.
        self.replace_event(old.id, ended.clone());
        let slots = self.find_conflicts(&continued, key);
        if !slots.is_empty() {
            self.replace_event(old.id, old);
            return Err(Rejection::Conflict { slots });
        }
        self.next_event_id += 1;
        self.insert_event(continued.clone());
        let end = Change::Edited {
            fields: vec![FieldChange {
                field: "occurrences".into(),
                before: format!("from {}", super::types::format_minute(split_start)),
                after: format!("continued as event {}", continued.id),
            }],
        };
        let host = ended.host.clone();
        self.record_occurrence_history(old.id, now_ms, &host, Some(split_start), end);
        self.record_history(continued.id, now_ms, &host, Change::Created);
        let audience = self.audience(&ended);
        self.notify(
            &audience,
            NotificationKind::Changed,
            &ended,
            &ended.host,
            now_ms,
        );
        self.notify_split(&old, &continued, now_ms);
        Ok(Effect::SeriesWritten {
            event_id: continued.id,
            version: continued.version,
            conflicts_checked_until: checked_until,
        })
    }

    /// Tells the continued series' audience about it: `Invited` to everyone
    /// in it, and `RemovedFromGuests` to guests of the old series left out.
    fn notify_split(&mut self, old: &EventView, continued: &EventView, now_ms: i64) {
        let before = self.audience(old);
        let after = self.audience(continued);
        let actor = continued.host.clone();
        self.notify(&after, NotificationKind::Invited, continued, &actor, now_ms);
        let removed = before.difference(&after).cloned().collect();
        self.notify(
            &removed,
            NotificationKind::RemovedFromGuests,
            old,
            &actor,
            now_ms,
        );
    }

    /// Occurrences of visible series overlapping `[from, to)`, as views.
    pub(crate) fn series_occurrences(
        &self,
        key: &str,
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<EventView> {
        let mut views = Vec::new();
        for id in self.index.series.visible_running(key, from, to) {
            let series = &self.events[&id];
            let expander = stored_expander(series);
            for occurrence in expander.occurrences(from, to) {
                views.push(expander.occurrence_view(series, &occurrence));
            }
        }
        views
    }
}

/// Checks that `original_start` names an occurrence of a series that has
/// not been cancelled.
pub(crate) fn check_occurrence(
    event: &EventView,
    original_start: UnixMinute,
) -> Result<(), Rejection> {
    let Some(recurrence) = &event.recurrence else {
        return Err(Rejection::invalid(
            "occurrence",
            format!(
                "event {} does not recur; edit or delete the whole event instead",
                event.id
            ),
        ));
    };
    let missing = || {
        Rejection::not_found(format!(
            "occurrence at {} of event {}",
            super::types::format_minute(original_start),
            event.id
        ))
    };
    if recurrence.exceptions.binary_search(&original_start).is_ok() {
        return Err(missing());
    }
    if !stored_expander(event).has_rule_start(original_start) {
        return Err(missing());
    }
    Ok(())
}

/// Applies the changes to an override, validating each value.
fn changed_override(
    series: &EventView,
    current: &OccurrenceOverride,
    changes: &EventChanges,
) -> Result<OccurrenceOverride, Rejection> {
    let mut moved = current.clone();
    if let Some(start) = changes.start {
        validate_start(start)?;
        moved.start = start;
    }
    if let Some(duration) = changes.duration_minutes {
        validate_duration(duration)?;
        moved.duration_minutes = duration;
    }
    if let Some(title) = &changes.title {
        let title = normalize_title(title)?;
        moved.title = (title != series.title).then_some(title);
    }
    if let Some(description) = &changes.description {
        validate_description(description)?;
        moved.description = (*description != series.description).then(|| description.clone());
    }
    Ok(moved)
}

/// Returns the series ended before `split_start`, keeping its first `before` rule
/// starts, with the exceptions and overrides of the later ones removed.
fn truncated(event: &EventView, split_start: UnixMinute, before: u32) -> EventView {
    let mut ended = event.clone();
    let recurrence = ended.recurrence.as_mut().expect("truncated of a series");
    let rule = ParsedRule::parse(&recurrence.rule).expect("stored rules parse");
    recurrence.rule = rule.ended_before(split_start, before).canonical();
    recurrence.exceptions.retain(|&e| e < split_start);
    recurrence
        .overrides
        .retain(|moved| moved.original_start < split_start);
    ended.retain_occurrence_responses(|start| start < split_start);
    ended
}

/// Returns whether every occurrence of a series that ends has been
/// cancelled.
fn has_no_occurrence(event: &EventView) -> bool {
    match Expander::new(event) {
        Ok(expander) => expander.all_occurrences().is_some_and(|all| all.is_empty()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::CONFLICT_HORIZON_MINUTES;
    use super::super::test_support::{private, public, schedule, Harness, HOUR, MONDAY};
    use super::super::types::{
        BusySlot, Command, Effect, EventChanges, EventDraft, EventId, NotificationKind, Outcome,
        Recurrence, Rejection, UnixMinute,
    };

    const DAY: UnixMinute = 24 * HOUR;
    const WEEK: UnixMinute = 7 * DAY;

    fn recurring(mut draft: EventDraft, rule: &str) -> EventDraft {
        draft.recurrence = Some(Recurrence {
            rule: rule.into(),
            ..Recurrence::default()
        });
        draft
    }

    fn schedule_series(
        harness: &mut Harness,
        host: &str,
        draft: EventDraft,
    ) -> (EventId, Option<UnixMinute>) {
        match harness.ok(schedule(host, draft)) {
            Effect::SeriesWritten {
                event_id,
                conflicts_checked_until,
                ..
            } => (event_id, conflicts_checked_until),
            other => panic!("expected SeriesWritten, got {other:?}"),
        }
    }

    fn slots_of(rejection: Rejection) -> Vec<BusySlot> {
        match rejection {
            Rejection::Conflict { slots } => slots,
            other => panic!("expected Conflict, got {other:?}"),
        }
    }

    /// (id, start, original start) of the agenda entries of a user.
    fn agenda(
        harness: &Harness,
        user: &str,
        from: UnixMinute,
        to: UnixMinute,
    ) -> Vec<(EventId, UnixMinute, Option<UnixMinute>)> {
        let views = harness.calendar.agenda(user, from, to);
        views
            .iter()
            .map(|view| {
                let original = view
                    .recurrence
                    .as_ref()
                    .and_then(|recurrence| recurrence.occurrence)
                    .map(|of| of.original_start);
                (view.id, view.start, original)
            })
            .collect()
    }

    fn edit_occurrence(
        id: EventId,
        version: u64,
        original: UnixMinute,
        changes: EventChanges,
        following: bool,
    ) -> Command {
        Command::EditOccurrence {
            caller: "alice".into(),
            event_id: id,
            expected_version: version,
            occurrence_start: original,
            changes,
            following,
        }
    }

    fn delete_occurrence(id: EventId, original: UnixMinute, following: bool) -> Command {
        Command::DeleteOccurrence {
            caller: "alice".into(),
            event_id: id,
            occurrence_start: original,
            following,
        }
    }

    fn move_to(start: UnixMinute) -> EventChanges {
        EventChanges {
            start: Some(start),
            ..EventChanges::default()
        }
    }

    #[test]
    fn schedule_reports_horizon_without_end() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let endless = recurring(private("Standup", nine, 15, &[]), "FREQ=DAILY");
        let (_, until) = schedule_series(&mut harness, "alice", endless);
        assert_eq!(until, Some(nine + CONFLICT_HORIZON_MINUTES));
        let counted = recurring(
            private("Review", nine + HOUR, 15, &[]),
            "FREQ=DAILY;COUNT=5",
        );
        let (_, until) = schedule_series(&mut harness, "alice", counted);
        assert_eq!(until, None);
    }

    #[test]
    fn schedule_stores_canonical_rule() {
        let mut harness = Harness::with_users(&["alice"]);
        let draft = recurring(public("Sync", MONDAY, 30), "rrule:freq=weekly;byday=mo,we");
        let (id, _) = schedule_series(&mut harness, "alice", draft);
        let event = harness.calendar.event("alice", id).unwrap();
        assert_eq!(event.recurrence.unwrap().rule, "FREQ=WEEKLY;BYDAY=MO,WE");
    }

    #[test]
    fn schedule_rejects_bad_series() {
        let mut harness = Harness::with_users(&["alice"]);
        let cases = [
            (
                recurring(public("x", MONDAY, 30), "FREQ=HOURLY"),
                "FREQ=HOURLY",
            ),
            (
                recurring(public("x", MONDAY, 25 * 60), "FREQ=DAILY;COUNT=3"),
                "starts before",
            ),
            (
                recurring(public("x", MONDAY, 30), "FREQ=DAILY;COUNT=5000"),
                "more than",
            ),
            (
                recurring(
                    public("x", MONDAY, 30),
                    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2",
                ),
                "no occurrence",
            ),
        ];
        for (draft, expected) in cases {
            let rule = draft.recurrence.clone().unwrap().rule;
            match harness.rejected(schedule("alice", draft)) {
                Rejection::Invalid { field, message } => {
                    assert_eq!(field, "recurrence", "{rule}");
                    assert!(message.contains(expected), "{rule}: {message}");
                }
                other => panic!("{rule}: expected Invalid, got {other:?}"),
            }
        }
        let mut excepted = recurring(public("x", MONDAY, 30), "FREQ=DAILY;COUNT=3");
        excepted.recurrence.as_mut().unwrap().exceptions = vec![MONDAY + 10];
        let rejection = harness.rejected(schedule("alice", excepted));
        assert!(
            matches!(rejection, Rejection::Invalid { .. }),
            "{rejection:?}"
        );
    }

    #[test]
    fn series_conflicts_with_series() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(
            private("Standup", nine, 30, &["bob"]),
            "FREQ=WEEKLY;COUNT=10",
        );
        let (first, _) = schedule_series(&mut harness, "alice", weekly);
        // Every other Monday, starting on the third week, for bob.
        let start = nine + 2 * WEEK + 15;
        let draft = recurring(
            private("1:1", start, 30, &[]),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=3",
        );
        let slots = slots_of(harness.rejected(schedule("bob", draft)));
        let starts: Vec<UnixMinute> = slots.iter().map(|slot| slot.start).collect();
        assert_eq!(
            starts,
            vec![nine + 2 * WEEK, nine + 4 * WEEK, nine + 6 * WEEK]
        );
        assert!(slots
            .iter()
            .all(|slot| slot.event.as_ref().unwrap().id == first));
        assert!(slots.iter().all(|slot| slot.participant == "bob"));
        // On Tuesdays it fits.
        let draft = recurring(
            private("1:1", start + DAY, 30, &[]),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=3",
        );
        schedule_series(&mut harness, "bob", draft);
    }

    #[test]
    fn series_conflicts_with_single_event() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let dentist = harness.schedule("bob", private("Dentist", nine + 3 * DAY, 60, &[]));
        let daily = recurring(private("Standup", nine, 15, &["bob"]), "FREQ=DAILY");
        let slots = slots_of(harness.rejected(schedule("alice", daily.clone())));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].start, nine + 3 * DAY);
        assert_eq!(slots[0].event.as_ref().map(|brief| brief.id), None);
        harness.ok(Command::Delete {
            caller: "bob".into(),
            event_id: dentist,
        });
        schedule_series(&mut harness, "alice", daily);
        // A one-off event years later still meets the series without an end.
        let later = nine + 3 * CONFLICT_HORIZON_MINUTES;
        let slots = slots_of(harness.rejected(schedule("bob", private("Late", later, 30, &[]))));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].start, later);
        assert_eq!(slots[0].participant, "bob");
    }

    #[test]
    fn horizon_bounds_series_against_series() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let endless = recurring(private("Standup", nine, 15, &[]), "FREQ=DAILY");
        schedule_series(&mut harness, "alice", endless);
        // A second endless daily series at the same time, starting after the
        // first one's horizon, is checked only over its own horizon, in
        // which the first one keeps meeting it.
        let late = nine + CONFLICT_HORIZON_MINUTES + WEEK;
        let again = recurring(private("Again", late, 15, &[]), "FREQ=DAILY");
        let slots = slots_of(harness.rejected(schedule("alice", again)));
        assert_eq!(slots[0].start, late);
        // A yearly series is checked for two of its occurrences only.
        let yearly = recurring(private("Audit", nine + HOUR, 60, &[]), "FREQ=YEARLY");
        let (_, until) = schedule_series(&mut harness, "alice", yearly);
        assert_eq!(until, Some(nine + HOUR + CONFLICT_HORIZON_MINUTES));
    }

    #[test]
    fn agenda_lists_occurrences_with_series_id() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let single = harness.schedule("alice", public("Lunch", MONDAY + 12 * HOUR, 60));
        let weekdays = recurring(
            public("Standup", nine, 15),
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        );
        let (id, _) = schedule_series(&mut harness, "alice", weekdays);
        let found = agenda(&harness, "bob", MONDAY, MONDAY + WEEK);
        let expected = vec![
            (id, nine, Some(nine)),
            (single, MONDAY + 12 * HOUR, None),
            (id, nine + DAY, Some(nine + DAY)),
            (id, nine + 2 * DAY, Some(nine + 2 * DAY)),
            (id, nine + 3 * DAY, Some(nine + 3 * DAY)),
            (id, nine + 4 * DAY, Some(nine + 4 * DAY)),
        ];
        assert_eq!(found, expected);
        let later = agenda(
            &harness,
            "bob",
            MONDAY + 52 * WEEK,
            MONDAY + 52 * WEEK + DAY,
        );
        assert_eq!(later, vec![(id, nine + 52 * WEEK, Some(nine + 52 * WEEK))]);
    }

    #[test]
    fn search_by_range_lists_occurrences() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(public("Standup", nine, 15), "FREQ=WEEKLY;COUNT=4");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        let ranged = super::super::types::SearchQuery {
            text: Some("stand".into()),
            from: Some(MONDAY + WEEK),
            to: Some(MONDAY + 3 * WEEK),
            ..Default::default()
        };
        let found = harness.calendar.search("alice", &ranged).unwrap();
        let starts: Vec<UnixMinute> = found.iter().map(|view| view.start).collect();
        assert_eq!(starts, vec![nine + WEEK, nine + 2 * WEEK]);
        let by_host = super::super::types::SearchQuery {
            host: Some("alice".into()),
            ..Default::default()
        };
        let found = harness.calendar.search("alice", &by_host).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, id);
        assert_eq!(found[0].recurrence.as_ref().unwrap().occurrence, None);
        let by_text = super::super::types::SearchQuery {
            text: Some("standup".into()),
            ..Default::default()
        };
        let found = harness.calendar.search("alice", &by_text).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, id);
    }

    #[test]
    fn cancelled_occurrence_frees_time() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(
            private("Standup", nine, 15, &["bob"]),
            "FREQ=WEEKLY;COUNT=3",
        );
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        let effect = harness.ok(delete_occurrence(id, nine + WEEK, false));
        assert_eq!(
            effect,
            Effect::OccurrenceDeleted {
                event_id: id,
                version: Some(2)
            }
        );
        let found = agenda(&harness, "bob", MONDAY, MONDAY + 3 * WEEK);
        assert_eq!(
            found,
            vec![
                (id, nine, Some(nine)),
                (id, nine + 2 * WEEK, Some(nine + 2 * WEEK))
            ]
        );
        harness.schedule("bob", private("Dentist", nine + WEEK, 60, &[]));
        let again = harness.rejected(delete_occurrence(id, nine + WEEK, false));
        assert!(matches!(again, Rejection::NotFound { .. }), "{again:?}");
        let wrong = harness.rejected(delete_occurrence(id, nine + 5, false));
        assert!(matches!(wrong, Rejection::NotFound { .. }), "{wrong:?}");
        let inbox = harness.calendar.notifications("bob", 0);
        let last = inbox.last().unwrap();
        assert_eq!(last.kind, NotificationKind::Cancelled);
        let of = last.event.recurrence.as_ref().unwrap().occurrence.unwrap();
        assert_eq!(of.original_start, nine + WEEK);
    }

    #[test]
    fn history_names_occurrence_changes() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(
            private("Standup", nine, 15, &["bob"]),
            "FREQ=WEEKLY;COUNT=4",
        );
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.ok(delete_occurrence(id, nine + WEEK, false));
        harness.ok(edit_occurrence(
            id,
            2,
            nine + 2 * WEEK,
            move_to(nine + 2 * WEEK + HOUR),
            false,
        ));
        let history = harness.calendar.history("alice", id).unwrap();
        let occurrences: Vec<Option<UnixMinute>> = history.iter().map(|e| e.occurrence).collect();
        assert_eq!(
            occurrences,
            vec![None, Some(nine + WEEK), Some(nine + 2 * WEEK)]
        );
        let super::super::history::Change::Edited { fields } = &history[1].change else {
            panic!("expected an edit for the cancellation: {:?}", history[1]);
        };
        assert_eq!(fields[0].after, "cancelled");
        let super::super::history::Change::Edited { fields } = &history[2].change else {
            panic!("expected an edit for the move: {:?}", history[2]);
        };
        assert_eq!(fields[0].field, "start");
    }

    #[test]
    fn cancelling_every_occurrence_deletes_event() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(public("Standup", nine, 15), "FREQ=WEEKLY;COUNT=2");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.ok(delete_occurrence(id, nine, false));
        let effect = harness.ok(delete_occurrence(id, nine + WEEK, false));
        assert_eq!(
            effect,
            Effect::OccurrenceDeleted {
                event_id: id,
                version: None
            }
        );
        assert_eq!(harness.calendar.event_count(), 0);
        assert!(harness.calendar.index.series.spans.is_empty());
    }

    #[test]
    fn moved_occurrence_is_checked_and_listed() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let daily = recurring(private("Standup", nine, 15, &["bob"]), "FREQ=DAILY;COUNT=5");
        let (id, _) = schedule_series(&mut harness, "alice", daily);
        harness.schedule("bob", private("Gym", nine + DAY + 2 * HOUR, 60, &[]));
        // Onto bob's gym slot: rejected.
        let onto_gym = edit_occurrence(id, 1, nine + DAY, move_to(nine + DAY + 2 * HOUR), false);
        let slots = slots_of(harness.rejected(onto_gym));
        assert_eq!(slots[0].start, nine + DAY + 2 * HOUR);
        // Onto the next day's occurrence of the same series: rejected.
        let onto_own = edit_occurrence(id, 1, nine + DAY, move_to(nine + 2 * DAY + 5), false);
        let slots = slots_of(harness.rejected(onto_own));
        assert_eq!(slots[0].start, nine + 2 * DAY);
        assert_eq!(slots[0].event.as_ref().unwrap().id, id);
        // An hour later: applied.
        let mut changes = move_to(nine + DAY + HOUR);
        changes.title = Some("Standup (late)".into());
        let effect = harness.ok(edit_occurrence(id, 1, nine + DAY, changes, false));
        assert!(
            matches!(effect, Effect::SeriesWritten { event_id, version: 2, .. } if event_id == id)
        );
        let found = agenda(&harness, "bob", MONDAY + DAY, MONDAY + 2 * DAY);
        assert_eq!(found[0], (id, nine + DAY + HOUR, Some(nine + DAY)));
        let view = &harness
            .calendar
            .agenda("bob", MONDAY + DAY, MONDAY + 2 * DAY)[0];
        assert_eq!(view.title, "Standup (late)");
        // The original slot is free now.
        harness.schedule("bob", private("Call", nine + DAY, 15, &[]));
        let changed = harness.calendar.notifications("bob", 0);
        let last = changed.last().unwrap();
        assert_eq!(last.kind, NotificationKind::Changed);
        assert_eq!(last.event.start, nine + DAY + HOUR);
    }

    #[test]
    fn occurrence_edit_keeps_zone_and_guests() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let weekly = recurring(public("Sync", MONDAY, 15), "FREQ=WEEKLY;COUNT=3");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        let changes = EventChanges {
            zone: Some("Europe/Paris".into()),
            ..EventChanges::default()
        };
        let rejection = harness.rejected(edit_occurrence(id, 1, MONDAY + WEEK, changes, false));
        assert!(matches!(rejection, Rejection::Invalid { field, .. } if field == "changes"));
        let single = harness.schedule("alice", public("Once", MONDAY + HOUR, 15));
        let rejection = harness.rejected(edit_occurrence(
            single,
            1,
            MONDAY + HOUR,
            move_to(MONDAY),
            false,
        ));
        assert!(matches!(rejection, Rejection::Invalid { field, .. } if field == "occurrence"));
    }

    #[test]
    fn this_and_following_splits_series() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(
            private("Standup", nine, 15, &["bob"]),
            "FREQ=WEEKLY;COUNT=6",
        );
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.ok(delete_occurrence(id, nine + 4 * WEEK, false));
        let later = move_to(nine + 2 * WEEK + 30);
        let effect = harness.ok(edit_occurrence(id, 2, nine + 2 * WEEK, later, true));
        let Effect::SeriesWritten {
            event_id: new_id,
            version: 1,
            conflicts_checked_until: None,
        } = effect
        else {
            panic!("unexpected {effect:?}");
        };
        assert_ne!(new_id, id);
        let old = harness.calendar.event("alice", id).unwrap();
        assert_eq!(old.recurrence.as_ref().unwrap().rule, "FREQ=WEEKLY;COUNT=2");
        assert_eq!(old.version, 3);
        let new = harness.calendar.event("alice", new_id).unwrap();
        assert_eq!(new.recurrence.as_ref().unwrap().rule, "FREQ=WEEKLY;COUNT=4");
        // The cancelled fifth week moved along with the new time.
        assert_eq!(
            new.recurrence.as_ref().unwrap().exceptions,
            vec![nine + 4 * WEEK + 30]
        );
        let found: Vec<(EventId, UnixMinute)> = agenda(&harness, "bob", MONDAY, MONDAY + 8 * WEEK)
            .into_iter()
            .map(|(event, start, _)| (event, start))
            .collect();
        let expected = vec![
            (id, nine),
            (id, nine + WEEK),
            (new_id, nine + 2 * WEEK + 30),
            (new_id, nine + 3 * WEEK + 30),
            (new_id, nine + 5 * WEEK + 30),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn split_conflict_restores_series() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(private("Standup", nine, 15, &["bob"]), "FREQ=WEEKLY");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.schedule("bob", private("Dentist", nine + 5 * WEEK + HOUR, 30, &[]));
        let later = move_to(nine + 2 * WEEK + HOUR);
        let rejection = harness.rejected(edit_occurrence(id, 1, nine + 2 * WEEK, later, true));
        let slots = slots_of(rejection);
        assert_eq!(slots[0].start, nine + 5 * WEEK + HOUR);
        assert_eq!(harness.calendar.events[&id].version, 1);
    }

    #[test]
    fn delete_following_ends_series() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let daily = recurring(public("Standup", nine, 15), "FREQ=DAILY");
        let (id, _) = schedule_series(&mut harness, "alice", daily);
        harness.ok(delete_occurrence(id, nine + 3 * DAY, true));
        let found = agenda(&harness, "alice", MONDAY, MONDAY + WEEK);
        assert_eq!(found.len(), 3);
        let span = harness.calendar.index.series.spans[&id];
        assert_eq!(span.last_end, nine + 2 * DAY + 15);
        let effect = harness.ok(delete_occurrence(id, nine, true));
        assert_eq!(
            effect,
            Effect::OccurrenceDeleted {
                event_id: id,
                version: None
            }
        );
        assert_eq!(harness.calendar.event_count(), 0);
    }

    #[test]
    fn series_edit_moves_exceptions_along() {
        let mut harness = Harness::with_users(&["alice"]);
        let nine = MONDAY + 9 * HOUR;
        let weekly = recurring(public("Standup", nine, 15), "FREQ=WEEKLY;COUNT=4");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.ok(delete_occurrence(id, nine + WEEK, false));
        let outcome = harness.edit("alice", id, move_to(nine + HOUR));
        assert!(
            matches!(outcome, Outcome::Done(Effect::SeriesWritten { .. })),
            "{outcome:?}"
        );
        let event = harness.calendar.event("alice", id).unwrap();
        assert_eq!(
            event.recurrence.unwrap().exceptions,
            vec![nine + WEEK + HOUR]
        );
        let found = agenda(&harness, "alice", MONDAY, MONDAY + 4 * WEEK);
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn deleted_guest_leaves_series() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let weekly = recurring(private("Standup", MONDAY, 15, &["bob"]), "FREQ=WEEKLY");
        let (id, _) = schedule_series(&mut harness, "alice", weekly);
        harness.ok(Command::DeleteAccount {
            caller: "bob".into(),
        });
        let event = harness.calendar.event("alice", id).unwrap();
        assert!(event.guests().is_empty());
        assert!(!harness
            .calendar
            .index
            .series
            .private_by_participant
            .contains_key("bob"));
    }

    #[test]
    fn index_lookups_skip_finished_series() {
        let mut harness = Harness::with_users(&["alice"]);
        let old = recurring(public("Old", MONDAY, 15), "FREQ=DAILY;COUNT=3");
        let (old_id, _) = schedule_series(&mut harness, "alice", old);
        let new = recurring(public("New", MONDAY + WEEK, 15), "FREQ=DAILY");
        let (new_id, _) = schedule_series(&mut harness, "alice", new);
        let index = &harness.calendar.index.series;
        let running = index.visible_running("alice", MONDAY + 4 * DAY, MONDAY + 5 * DAY);
        assert!(running.is_empty(), "{running:?}");
        let running = index.visible_running("alice", MONDAY + 2 * WEEK, MONDAY + 3 * WEEK);
        assert_eq!(running, vec![new_id]);
        let running = index.visible_running("alice", MONDAY, MONDAY + DAY);
        assert_eq!(running, vec![old_id]);
    }

    #[test]
    fn status_call_until_after_dst_via_agenda() {
        let mut harness = Harness::with_users(&["alice"]);
        let start = super::super::recurrence::instant_in(
            "America/New_York",
            chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
        )
        .unwrap();
        let mut draft = recurring(
            public("Status call", start, 60),
            "FREQ=WEEKLY;UNTIL=20240315T130000Z",
        );
        draft.zone = "America/New_York".into();
        let (id, until) = schedule_series(&mut harness, "alice", draft);
        assert_eq!(until, None);
        let utc = |text: &str| {
            let time = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
            time.and_utc().timestamp() / 60
        };
        let found = agenda(
            &harness,
            "alice",
            utc("2024-02-01 00:00"),
            utc("2024-05-01 00:00"),
        );
        let expected = vec![
            (id, utc("2024-03-01 14:00"), Some(utc("2024-03-01 14:00"))),
            (id, utc("2024-03-08 14:00"), Some(utc("2024-03-08 14:00"))),
            (id, utc("2024-03-15 13:00"), Some(utc("2024-03-15 13:00"))),
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn desk_duty_via_agenda() {
        let mut harness = Harness::with_users(&["alice"]);
        let local = |date: &str| {
            let time = chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M").unwrap();
            super::super::recurrence::instant_in("Europe/London", time).unwrap()
        };
        let mut draft = recurring(
            public("Desk duty", local("2025-01-06 10:00"), 30),
            "FREQ=MONTHLY;COUNT=7;BYDAY=MO,-1WE;WKST=SU",
        );
        draft.zone = "Europe/London".into();
        schedule_series(&mut harness, "alice", draft);
        let found = agenda(
            &harness,
            "alice",
            local("2025-01-01 00:00"),
            local("2025-12-31 00:00"),
        );
        let starts: Vec<UnixMinute> = found.iter().map(|(_, start, _)| *start).collect();
        let expected: Vec<UnixMinute> = [
            "2025-01-06 10:00",
            "2025-01-13 10:00",
            "2025-01-20 10:00",
            "2025-01-27 10:00",
            "2025-01-29 10:00",
            "2025-02-03 10:00",
            "2025-02-10 10:00",
        ]
        .iter()
        .map(|date| local(date))
        .collect();
        assert_eq!(starts, expected);
    }

    /// Schedules random one-off and recurring events among four users and
    /// checks after each step, by expanding everything, that no two
    /// occurrences the conflict rules forbid together overlap.
    #[test]
    fn no_conflicting_occurrences_after_random_schedules() {
        use super::super::test_support::Lcg;
        let users = ["ann", "ben", "cat", "dan"];
        let rules = [
            "FREQ=DAILY;COUNT=5",
            "FREQ=WEEKLY",
            "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=9",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
            "FREQ=MONTHLY;BYDAY=-1FR",
            "FREQ=DAILY;INTERVAL=3;UNTIL=20270301",
        ];
        let mut harness = Harness::with_users(&users);
        let mut rng = Lcg::new(0xca1e);
        let (mut applied, mut rejected) = (0, 0);
        for step in 0..150 {
            let host = *rng.pick(&users);
            let guest = *rng.pick(&users);
            let start = MONDAY + (rng.below(28 * 24) as i64) * 60;
            let minutes = 30 + 30 * rng.below(4) as u32;
            let guests: Vec<&str> = if guest == host { vec![] } else { vec![guest] };
            let mut draft = if rng.chance(10) {
                public("p", start, minutes)
            } else {
                private("q", start, minutes, &guests)
            };
            if rng.chance(60) {
                let rule = *rng.pick(&rules);
                draft = recurring(draft, rule);
            }
            match harness.run(schedule(host, draft)) {
                Outcome::Done(_) => applied += 1,
                Outcome::Rejected(Rejection::Conflict { .. }) => rejected += 1,
                Outcome::Rejected(other) => panic!("step {step}: unexpected {other:?}"),
            }
            check_no_overlaps(&harness, step);
        }
        assert!(applied > 20, "only {applied} applied");
        assert!(rejected > 20, "only {rejected} rejected");
    }

    fn check_no_overlaps(harness: &Harness, step: usize) {
        let window = (MONDAY - WEEK, MONDAY + 20 * WEEK);
        let events: Vec<&super::EventView> = harness.calendar.events.values().collect();
        let spans: Vec<Vec<super::Occurrence>> = events
            .iter()
            .map(|event| {
                if event.is_recurring() {
                    super::stored_expander(event).occurrences(window.0, window.1)
                } else {
                    super::checked_spans(event)
                }
            })
            .collect();
        for (i, a) in events.iter().enumerate() {
            for (j, b) in events.iter().enumerate().skip(i + 1) {
                let shared = a
                    .participants()
                    .any(|name| b.involves(&name.to_ascii_lowercase()));
                if !(a.is_public() || b.is_public() || shared) {
                    continue;
                }
                for x in &spans[i] {
                    let clash = spans[j].iter().any(|y| x.overlaps(y.start, y.end));
                    assert!(
                        !clash,
                        "step {step}: events {} and {} overlap at {}",
                        a.id, b.id, x.start
                    );
                }
            }
        }
    }
}
