//! Submitting an import plan through the client, and reading the events an
//! export writes.
//!
//! Every event is its own replicated request, so other users' requests are
//! ordered between an import's events instead of after the whole file.
//! Events are submitted in batches of [`IMPORT_BATCH_EVENTS`]; after each
//! batch the caller hears the progress and the task yields.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::calendar::{format_minute, EventView, Rejection, UnixMinute};
use crate::client::{Client, ClientError};
use crate::node::net::Connector;
use crate::rpc::convert::ApiRejection;

use super::plan::{plan_import, ImportOptions, ImportPlan, PlanAction, PlanItem};
use super::read::read_file;
use super::write::export_calendar;

/// Events submitted between two progress reports. Small enough that a
/// progress line appears every few seconds on a loaded cluster, large enough
/// that a 20,000-event file prints at most 200 lines.
pub const IMPORT_BATCH_EVENTS: usize = 100;

/// Result of submitting one planned event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Imported { event_id: u64 },
    Skipped { reason: String },
}

/// The result of one planned event, with the planner's and the
/// submission's notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventReport {
    pub uid: String,
    pub title: String,
    pub outcome: EventOutcome,
    pub notes: Vec<String>,
}

impl EventReport {
    /// Formats the report as one line plus one indented line per note.
    pub fn lines(&self) -> Vec<String> {
        let head = match &self.outcome {
            EventOutcome::Imported { event_id } => {
                format!("imported \"{}\" as event {event_id}", self.title)
            }
            EventOutcome::Skipped { reason } => format!("skipped \"{}\": {reason}", self.title),
        };
        let mut lines = vec![head];
        lines.extend(self.notes.iter().map(|note| format!("  note: {note}")));
        lines
    }
}

/// The result of a whole import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub events: Vec<EventReport>,
    /// Set when the cluster could not be reached and the rest of the file
    /// was not submitted.
    pub stopped: Option<String>,
}

impl ImportReport {
    pub fn imported_count(&self) -> usize {
        self.events
            .iter()
            .filter(|event| matches!(event.outcome, EventOutcome::Imported { .. }))
            .count()
    }

    pub fn skipped_count(&self) -> usize {
        self.events.len() - self.imported_count()
    }

    /// Formats the summary line that ends an import.
    pub fn summary(&self) -> String {
        format!(
            "{} event(s) imported, {} skipped",
            self.imported_count(),
            self.skipped_count()
        )
    }
}

/// Reads, plans and submits one file as the logged-in user. `progress`
/// receives one line per batch. Fails before submitting anything when the
/// file cannot be read or parsed, or the user list cannot be fetched.
pub async fn import_file<C: Connector>(
    client: &mut Client<C>,
    path: &Path,
    user_zone: Tz,
    lenient: bool,
    mut progress: impl FnMut(String),
) -> Result<ImportReport, String> {
    let username = client
        .username()
        .ok_or("not logged in: use `login USER` or `register USER` first")?
        .to_string();

    let raw =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let file = read_file(&raw).map_err(|error| format!("{}: {error}", path.display()))?;
    let users = client
        .users("")
        .await
        .map_err(|error| format!("cannot list users to match attendees: {error}"))?;

    let options = ImportOptions {
        username,
        user_zone,
        users,
        lenient,
    };
    let plan = plan_import(&file, &options);
    let total = plan.items.len();
    progress(format!(
        "importing {total} event(s) from {}, {} to submit",
        path.display(),
        plan.scheduled_count()
    ));

    let large = total > IMPORT_BATCH_EVENTS;
    let report = submit_plan(client, &plan, |done, total| {
        if large {
            progress(format!("imported {done} of {total} events"));
        }
    })
    .await;
    Ok(report)
}

/// Renders the events the user sees in `[from, to)` as an iCalendar file,
/// and returns it with the number of events written.
pub async fn export_range<C: Connector>(
    client: &mut Client<C>,
    from: UnixMinute,
    to: UnixMinute,
    stamp: DateTime<Utc>,
) -> Result<(String, usize), ClientError> {
    let events = events_for_export(client, from, to).await?;
    Ok((export_calendar(&events, (from, to), stamp), events.len()))
}

/// Submits every item of the plan in order. `progress` receives the number
/// of items done and the total after each batch.
pub async fn submit_plan<C: Connector>(
    client: &mut Client<C>,
    plan: &ImportPlan,
    mut progress: impl FnMut(usize, usize),
) -> ImportReport {
    let mut report = ImportReport::default();
    let total = plan.items.len();
    for batch in plan.items.chunks(IMPORT_BATCH_EVENTS) {
        for item in batch {
            if let Some(error) = &report.stopped {
                report
                    .events
                    .push(skipped(item, format!("not submitted: {error}")));
                continue;
            }
            match submit_item(client, item).await {
                Ok(event) => report.events.push(event),
                Err(error) => {
                    report.stopped = Some(error.to_string());
                    report
                        .events
                        .push(skipped(item, format!("not submitted: {error}")));
                }
            }
        }
        progress(report.events.len(), total);
        tokio::task::yield_now().await;
    }
    report
}

fn skipped(item: &PlanItem, reason: String) -> EventReport {
    EventReport {
        uid: item.uid.clone(),
        title: item.title.clone(),
        outcome: EventOutcome::Skipped { reason },
        notes: item.notes.clone(),
    }
}

/// Submits one item. A rejection is the item's outcome; only a failure to
/// reach the cluster is an error, which stops the import.
async fn submit_item<C: Connector>(
    client: &mut Client<C>,
    item: &PlanItem,
) -> Result<EventReport, ClientError> {
    let (draft, moved) = match &item.action {
        PlanAction::Skip { reason } => return Ok(skipped(item, reason.clone())),
        PlanAction::Schedule { draft, moved } => (draft, moved),
    };
    let receipt = match client.schedule_series(draft).await {
        Ok(receipt) => receipt,
        Err(ClientError::Rejected(rejection)) => {
            return Ok(skipped(item, rejection_reason(&rejection)));
        }
        Err(error) => return Err(error),
    };
    let mut notes = item.notes.clone();
    let mut version = receipt.version;
    for occurrence in moved {
        let result = client
            .edit_occurrence(
                receipt.event_id,
                version,
                occurrence.original_start,
                &occurrence.changes,
                false,
            )
            .await;
        match result {
            Ok(edited) => version = edited.version,
            Err(ClientError::Rejected(rejection)) => notes.push(format!(
                "the occurrence at {} keeps the series' time and title: {}",
                format_minute(occurrence.original_start),
                rejection_reason(&rejection)
            )),
            Err(error) => return Err(error),
        }
    }
    Ok(EventReport {
        uid: item.uid.clone(),
        title: item.title.clone(),
        outcome: EventOutcome::Imported {
            event_id: receipt.event_id,
        },
        notes,
    })
}

fn rejection_reason(rejection: &ApiRejection) -> String {
    match rejection {
        ApiRejection::Calendar(Rejection::Conflict { .. }) => format!("conflict: {rejection}"),
        ApiRejection::Calendar(Rejection::Forbidden { .. }) => format!("forbidden: {rejection}"),
        other => format!("rejected: {other}"),
    }
}

/// Length of one agenda read during an export, so that no reply carries
/// more than a month of occurrences.
pub const EXPORT_WINDOW_MINUTES: UnixMinute = 31 * 24 * 60;

/// Reads the events to export: every event the user can see with an
/// occurrence in `[from, to)`, each once and as a whole series, in the order
/// of their first occurrence. The range is read one window at a time.
pub async fn events_for_export<C: Connector>(
    client: &mut Client<C>,
    from: UnixMinute,
    to: UnixMinute,
) -> Result<Vec<EventView>, ClientError> {
    let mut seen = BTreeSet::new();
    let mut events = Vec::new();
    let mut window_start = from;
    while window_start < to {
        let window_end = window_start.saturating_add(EXPORT_WINDOW_MINUTES).min(to);
        for view in client.agenda(window_start, window_end).await? {
            if !seen.insert(view.id) {
                continue;
            }
            if view.is_recurring() {
                events.push(client.event(view.id).await?);
            } else {
                events.push(view);
            }
        }
        window_start = window_end;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_show_outcome_and_notes() {
        let report = EventReport {
            uid: "a".into(),
            title: "Standup".into(),
            outcome: EventOutcome::Skipped {
                reason: "conflict: busy".into(),
            },
            notes: vec!["floating time read in your zone UTC".into()],
        };
        assert_eq!(
            report.lines(),
            vec![
                "skipped \"Standup\": conflict: busy".to_string(),
                "  note: floating time read in your zone UTC".to_string(),
            ]
        );
    }

    #[test]
    fn summary_counts_both_kinds() {
        let imported = EventReport {
            uid: "a".into(),
            title: "A".into(),
            outcome: EventOutcome::Imported { event_id: 1 },
            notes: Vec::new(),
        };
        let skipped = EventReport {
            outcome: EventOutcome::Skipped { reason: "x".into() },
            ..imported.clone()
        };
        let report = ImportReport {
            events: vec![imported, skipped.clone(), skipped],
            stopped: None,
        };
        assert_eq!(report.summary(), "1 event(s) imported, 2 skipped");
    }

    #[test]
    fn conflict_reason_is_labelled() {
        let rejection = ApiRejection::Calendar(Rejection::Conflict { slots: Vec::new() });
        assert!(rejection_reason(&rejection).starts_with("conflict: "));
        let invalid = ApiRejection::Calendar(Rejection::invalid("title", "empty"));
        assert!(rejection_reason(&invalid).starts_with("rejected: invalid title"));
    }
}
