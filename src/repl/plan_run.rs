//! Runs the commands of [`crate::repl::planning`] against the cluster and
//! renders their replies.

use chrono::{Days, Months, NaiveDate};
use chrono_tz::Tz;
use serde_json::json;

use crate::calendar::{EventDraft, FreeQuery, Rejection, Response, TimeSlot, UnixMinute};
use crate::calendar::{Timing, Visibility, WorkingHours};
use crate::client::{Client, ClientError};
use crate::repl::executor::{agenda_in_zone, Reply, View};
use crate::repl::planning::{FreeRequest, PlanCommand, SuggestRequest};
use crate::repl::recurrence::{self, OccurrenceRef};
use crate::repl::render::{self, clock_span};
use crate::repl::views;
use crate::rpc::convert::ApiRejection;

/// The proposals of the last `suggest`, kept by the executor.
#[derive(Debug, Clone)]
pub struct Suggestion {
    title: String,
    guests: Vec<String>,
    slots: Vec<TimeSlot>,
}

/// Sends a response, first finding the original start of the occurrence a
/// user named.
async fn respond(
    client: &mut Client,
    id: u64,
    response: Response,
    occurrence: Option<OccurrenceRef>,
) -> Result<Reply, ClientError> {
    let original = match &occurrence {
        Some(wanted) => {
            let event = client.event(id).await?;
            let original = recurrence::resolve_occurrence(&event, wanted).map_err(|message| {
                ClientError::Rejected(ApiRejection::Calendar(Rejection::Invalid {
                    field: "occurrence".into(),
                    message,
                }))
            })?;
            Some(original)
        }
        None => None,
    };
    client.respond_at(id, response, original).await?;
    let event = client.event(id).await?;
    let target = match &occurrence {
        Some(wanted) => format!("the occurrence on {} of #{id}", wanted.text),
        None => format!("#{id}"),
    };
    let text = format!(
        "you {} {target} \"{}\"; {} was notified",
        views::response_verb(response),
        event.title,
        event.host
    );
    let json = json!({ "command": command_name(response), "ok": true, "event_id": id,
                       "response": response.as_str(), "occurrence_start_minute": original });
    Ok(Reply::ok(text, json))
}

pub(super) async fn run(
    client: &mut Client,
    view: &View,
    last_suggestion: &mut Option<Suggestion>,
    command: PlanCommand,
) -> Result<Reply, ClientError> {
    match command {
        PlanCommand::Respond {
            id,
            response,
            occurrence,
        } => respond(client, id, response, occurrence).await,
        PlanCommand::History { id } => {
            let event = client.event(id).await?;
            let entries = client.history(id).await?;
            let text = views::render_history(&event, &entries, view.zone, view.style);
            let json = json!({ "command": "history", "ok": true, "event_id": id,
                               "history": views::history_json(&entries) });
            Ok(Reply::ok(text, json))
        }
        PlanCommand::WorkHours(hours) => {
            client.set_working_hours(&hours).await?;
            let text = format!("working hours set: {}", describe_hours(&hours));
            let json = json!({ "command": "workhours", "ok": true,
                               "start_minute": hours.start_minute, "end_minute": hours.end_minute,
                               "weekdays": hours.weekdays, "zone": hours.zone });
            Ok(Reply::ok(text, json))
        }
        PlanCommand::Free(request) => free(client, view, request).await,
        PlanCommand::Suggest(request) => suggest(client, view, last_suggestion, request).await,
        PlanCommand::ScheduleSuggestion { number } => {
            schedule_suggestion(client, view, last_suggestion.as_ref(), number).await
        }
        PlanCommand::Week {
            monday,
            today,
            zone,
        } => {
            let from = day_minute(monday, zone)?;
            let to = day_minute(monday + Days::new(7), zone)?;
            let events = agenda_in_zone(client, from, to, view.zone).await?;
            let viewer = viewer_key(client);
            let width = views::week_column_width(view.terminal_columns());
            let text = views::render_week(
                &events, monday, &viewer, today, view.zone, view.style, width,
            );
            let json_events: Vec<_> = events.iter().map(render::event_json).collect();
            Ok(Reply::ok(
                text,
                json!({ "command": "week", "ok": true, "monday": monday.to_string(),
                        "events": json_events }),
            ))
        }
        PlanCommand::Month { first, today, zone } => {
            let from = day_minute(first, zone)?;
            let to = day_minute(first + Months::new(1), zone)?;
            let events = agenda_in_zone(client, from, to, view.zone).await?;
            let viewer = viewer_key(client);
            let text = views::render_month(&events, first, &viewer, today, view.zone, view.style);
            let json_events: Vec<_> = events.iter().map(render::event_json).collect();
            Ok(Reply::ok(
                text,
                json!({ "command": "month", "ok": true, "month": first.format("%Y-%m").to_string(),
                        "events": json_events }),
            ))
        }
    }
}

fn command_name(response: crate::calendar::Response) -> &'static str {
    match response {
        crate::calendar::Response::Declined => "decline",
        crate::calendar::Response::Tentative => "tentative",
        _ => "accept",
    }
}

fn viewer_key(client: &Client) -> String {
    client.username().unwrap_or_default().to_ascii_lowercase()
}

fn day_minute(day: NaiveDate, zone: Tz) -> Result<UnixMinute, ClientError> {
    let start = crate::repl::dates::start_of_day(day, zone).map_err(|error| {
        ClientError::Rejected(ApiRejection::Unavailable(format!(
            "cannot place {day} in {zone}: {error}"
        )))
    })?;
    Ok(start.timestamp() / 60)
}

fn describe_hours(hours: &WorkingHours) -> String {
    let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days: Vec<&str> = (0..7)
        .filter(|bit| hours.weekdays & (1 << bit) != 0)
        .map(|bit| names[bit])
        .collect();
    let clock = |minutes: u16| format!("{:02}:{:02}", minutes / 60, minutes % 60);
    format!(
        "{}-{} on {} ({})",
        clock(hours.start_minute),
        clock(hours.end_minute),
        days.join(", "),
        hours.zone
    )
}

async fn free(
    client: &mut Client,
    view: &View,
    request: FreeRequest,
) -> Result<Reply, ClientError> {
    let query = FreeQuery {
        users: request.users.clone(),
        from: request.from.timestamp() / 60,
        to: request.to.timestamp() / 60,
        min_minutes: request.min_minutes,
        default_zone: view.zone.name().to_string(),
    };
    let slots = client.free_slots(&query).await?;
    let text = views::render_free(&request.users, &slots, view.zone, view.style);
    let json = json!({ "command": "free", "ok": true, "users": request.users,
                       "slots": views::slots_json(&slots) });
    Ok(Reply::ok(text, json))
}

async fn suggest(
    client: &mut Client,
    view: &View,
    last_suggestion: &mut Option<Suggestion>,
    request: SuggestRequest,
) -> Result<Reply, ClientError> {
    let query = FreeQuery {
        users: request.guests.clone(),
        from: request.from.timestamp() / 60,
        to: request.to.timestamp() / 60,
        min_minutes: request.minutes,
        default_zone: view.zone.name().to_string(),
    };
    let slots = client.suggest(&query).await?;
    let text = views::render_suggestions(&request.title, &slots, view.zone, view.style);
    let json = json!({ "command": "suggest", "ok": true, "title": request.title,
                       "slots": views::slots_json(&slots) });
    *last_suggestion = Some(Suggestion {
        title: request.title,
        guests: request.guests,
        slots,
    });
    Ok(Reply::ok(text, json))
}

async fn schedule_suggestion(
    client: &mut Client,
    view: &View,
    last_suggestion: Option<&Suggestion>,
    number: usize,
) -> Result<Reply, ClientError> {
    let invalid = |message: String| {
        ClientError::Rejected(ApiRejection::Calendar(
            crate::calendar::Rejection::Invalid {
                field: "suggestion".into(),
                message,
            },
        ))
    };
    let Some(suggestion) = last_suggestion else {
        return Err(invalid(
            "there is no suggestion yet; run suggest first, e.g. suggest \"Plan\" for 1h with bob"
                .into(),
        ));
    };
    let Some(slot) = suggestion.slots.get(number - 1) else {
        return Err(invalid(format!(
            "suggestion {number} does not exist; the last suggest proposed {}",
            suggestion.slots.len()
        )));
    };
    let draft = EventDraft {
        title: suggestion.title.clone(),
        description: String::new(),
        start: slot.start,
        zone: view.zone.name().to_string(),
        duration_minutes: u32::try_from(slot.end - slot.start).unwrap_or(u32::MAX),
        visibility: Visibility::Private {
            guests: suggestion.guests.clone(),
        },
        recurrence: None,
        timing: Timing::Zoned,
    };
    let (event_id, version) = client.schedule(&draft).await?;
    let event = client.event(event_id).await?;
    let mut text = format!(
        "scheduled #{event_id} at suggestion {number} ({})\n",
        clock_span(slot.start, slot.end, view.zone)
    );
    text.push_str(&render::render_event(&event, view.zone, view.style));
    let json = json!({ "command": "schedule", "ok": true, "event_id": event_id,
                       "version": version, "event": render::event_json(&event) });
    Ok(Reply::ok(text, json))
}
