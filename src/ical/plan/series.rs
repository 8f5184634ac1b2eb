//! Recurrence of planned events: RRULE and EXDATE, RECURRENCE-ID overrides
//! and RDATEs, checked against the rule before anything is submitted.

use chrono_tz::Tz;

use crate::calendar::recurrence::{Expander, ParsedRule};
use crate::calendar::{EventChanges, EventDraft, EventView, Recurrence, Timing, Visibility};
use crate::ical::read::{parse_time, parse_time_list, IcsComponent};

use super::times::{utc_until, Times};
use super::{description, push_once, MovedOccurrence, PlanAction, PlanItem, Planner};

impl Planner<'_> {
    pub(super) fn recurrence(
        &mut self,
        event: &IcsComponent,
        rule: &str,
        times: &Times,
        notes: &mut Vec<String>,
    ) -> Result<Recurrence, String> {
        let rule = utc_until(rule, times.zone);
        let parsed = ParsedRule::parse(&rule)?;
        let mut exceptions = Vec::new();
        for exdate in event.all("EXDATE") {
            for time in parse_time_list(exdate)? {
                exceptions.push(self.series_instant(&time, times, notes));
            }
        }
        exceptions.sort_unstable();
        exceptions.dedup();
        Ok(Recurrence {
            rule: parsed.canonical(),
            exceptions,
            overrides: Vec::new(),
            occurrence: None,
        })
    }

    /// Turns the overrides of a series into cancelled occurrences (added to
    /// the draft's exceptions) and occurrence edits. Returns items for
    /// overrides that cannot apply to this series.
    pub(super) fn attach_overrides(
        &mut self,
        draft: &mut EventDraft,
        moved: &mut Vec<MovedOccurrence>,
        overrides: &[&IcsComponent],
        notes: &mut Vec<String>,
    ) -> Vec<PlanItem> {
        let mut extra = Vec::new();
        if overrides.is_empty() {
            return extra;
        }
        let zone: Tz = draft.zone.parse().unwrap_or(self.options.user_zone);
        let series = Times {
            start: draft.start,
            zone,
            duration_minutes: draft.duration_minutes,
            all_day: draft.timing == Timing::AllDay,
            timing: draft.timing.clone(),
        };
        for component in overrides {
            let uid = component.value("UID").unwrap_or("");
            let Some(recurrence) = draft.recurrence.as_mut() else {
                extra.push(PlanItem {
                    uid: uid.to_string(),
                    title: self.title(component, &mut Vec::new()),
                    action: PlanAction::Skip {
                        reason: format!(
                            "invalid event {uid}: it has a RECURRENCE-ID but its \
                             series has no RRULE"
                        ),
                    },
                    notes: Vec::new(),
                });
                continue;
            };
            let id_property = component.first("RECURRENCE-ID").expect("an override");
            let original = match parse_time(id_property) {
                Ok(time) => self.series_instant(&time, &series, notes),
                Err(reason) => {
                    notes.push(format!("an override was ignored: {reason}"));
                    continue;
                }
            };
            let cancelled = component
                .value("STATUS")
                .is_some_and(|status| status.eq_ignore_ascii_case("CANCELLED"));
            if cancelled {
                recurrence.exceptions.push(original);
                continue;
            }
            let mut override_notes = Vec::new();
            // An override without SUMMARY or DESCRIPTION keeps the series' own.
            let title = match component.first("SUMMARY") {
                Some(_) => self.title(component, &mut override_notes),
                None => draft.title.clone(),
            };
            let times = match self.times(component, &mut override_notes) {
                Ok(times) => times,
                Err(reason) => {
                    notes.push(format!(
                        "the override of the occurrence at {} was ignored: {reason}",
                        crate::calendar::format_minute(original)
                    ));
                    continue;
                }
            };
            let description = match component.first("DESCRIPTION") {
                Some(_) => description(component, &mut override_notes),
                None => draft.description.clone(),
            };
            for note in override_notes {
                push_once(notes, note);
            }
            let changes = EventChanges {
                title: (title != draft.title).then_some(title),
                description: (description != draft.description).then_some(description),
                start: (times.start != original).then_some(times.start),
                zone: None,
                duration_minutes: (times.duration_minutes != draft.duration_minutes)
                    .then_some(times.duration_minutes),
                visibility: None,
            };
            moved.push(MovedOccurrence {
                original_start: original,
                changes,
            });
        }
        if let Some(recurrence) = draft.recurrence.as_mut() {
            recurrence.exceptions.sort_unstable();
            recurrence.exceptions.dedup();
        }
        moved.sort_by_key(|occurrence| occurrence.original_start);
        extra
    }

    /// Lists one-off events for the RDATEs of a series.
    pub(super) fn rdate_events(
        &mut self,
        uid: &str,
        master: &IcsComponent,
        draft: &EventDraft,
    ) -> Vec<PlanItem> {
        let mut items = Vec::new();
        let zone: Tz = draft.zone.parse().unwrap_or(self.options.user_zone);
        let series = Times {
            start: draft.start,
            zone,
            duration_minutes: draft.duration_minutes,
            all_day: false,
            timing: draft.timing.clone(),
        };
        for rdate in master.all("RDATE") {
            let times = match parse_time_list(rdate) {
                Ok(times) => times,
                Err(reason) => {
                    items.push(PlanItem {
                        uid: uid.to_string(),
                        title: draft.title.clone(),
                        action: PlanAction::Skip {
                            reason: format!("invalid RDATE of {uid}: {reason}"),
                        },
                        notes: Vec::new(),
                    });
                    continue;
                }
            };
            for time in times {
                let mut notes = Vec::new();
                let start = self.series_instant(&time, &series, &mut notes);
                if start == draft.start {
                    continue;
                }
                notes.push(
                    "an RDATE of a series, imported as a one-off event \
                     because Almanac series have no extra dates"
                        .into(),
                );
                let one_off = EventDraft {
                    start,
                    recurrence: None,
                    ..draft.clone()
                };
                items.push(PlanItem {
                    uid: uid.to_string(),
                    title: draft.title.clone(),
                    action: PlanAction::Schedule {
                        draft: one_off,
                        moved: Vec::new(),
                    },
                    notes,
                });
            }
        }
        items
    }
}

/// Drops exceptions that name no occurrence of the draft's rule, and takes
/// out the moved occurrences that name none, because the state rejects
/// both. Returns the moved occurrences taken out.
pub(super) fn match_rule(
    draft: &mut EventDraft,
    moved: &mut Vec<MovedOccurrence>,
    notes: &mut Vec<String>,
) -> Vec<MovedOccurrence> {
    let Some(recurrence) = draft.recurrence.as_mut() else {
        return Vec::new();
    };
    let view = EventView {
        id: 0,
        version: 1,
        title: draft.title.clone(),
        description: String::new(),
        start: draft.start,
        duration_minutes: draft.duration_minutes,
        zone: draft.zone.clone(),
        host: String::new(),
        visibility: Visibility::Public,
        recurrence: Some(Box::new(Recurrence {
            rule: recurrence.rule.clone(),
            ..Recurrence::default()
        })),
        responses: Vec::new(),
        timing: draft.timing.clone(),
    };
    // The rule parsed when the draft was planned, so this succeeds.
    let Ok(expander) = Expander::new(&view) else {
        return Vec::new();
    };

    let before = recurrence.exceptions.len();
    recurrence
        .exceptions
        .retain(|&exception| expander.has_rule_start(exception));
    let dropped = before - recurrence.exceptions.len();
    if dropped > 0 {
        notes.push(format!(
            "{dropped} EXDATE(s) or cancelled occurrence(s) name no occurrence of \
             the rule and were ignored"
        ));
    }

    let (kept, strays): (Vec<MovedOccurrence>, Vec<MovedOccurrence>) = std::mem::take(moved)
        .into_iter()
        .partition(|occurrence| expander.has_rule_start(occurrence.original_start));
    *moved = kept;
    strays
}

/// Turns a moved occurrence whose RECURRENCE-ID names no occurrence of its
/// series into a one-off event with the override's values.
pub(super) fn stray_item(uid: &str, series: &EventDraft, stray: MovedOccurrence) -> PlanItem {
    let changes = stray.changes;
    let draft = EventDraft {
        title: changes.title.unwrap_or_else(|| series.title.clone()),
        description: changes
            .description
            .unwrap_or_else(|| series.description.clone()),
        start: changes.start.unwrap_or(stray.original_start),
        duration_minutes: changes.duration_minutes.unwrap_or(series.duration_minutes),
        recurrence: None,
        ..series.clone()
    };
    PlanItem {
        uid: uid.to_string(),
        title: draft.title.clone(),
        action: PlanAction::Schedule {
            draft,
            moved: Vec::new(),
        },
        notes: vec![format!(
            "its RECURRENCE-ID {} names no occurrence of the series, so it was \
             imported as a one-off event",
            crate::calendar::format_minute(stray.original_start)
        )],
    }
}
