//! Rendering of responses, free time, suggestions, history and the week and
//! month grids. Every time is shown in the viewer's zone; the week view
//! lists each event's own time beneath the grid when its zone differs.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::calendar::{Change, EventView, HistoryEntry, Response, TimeSlot, Timing, UnixMinute};
use crate::repl::render::{
    clock_span, dated_span, day_label, event_dated_span, format_duration, local, padding, quote,
    zone_note, Style,
};

/// Row of the week grid for all-day events, above the hour rows.
const ALL_DAY_ROW: u32 = 0;

/// Width of one day column of the week grid, the separating space included,
/// when the terminal has room: 7 columns of hours and 7 days of 14 take
/// 105 terminal columns.
const WEEK_COLUMN_WIDTH: usize = 14;

/// The narrowest day column, which still shows `#1234 +2`: 7 of 8 take
/// 63 terminal columns.
const WEEK_COLUMN_WIDTH_MIN: usize = 8;

/// Width of the hour labels at the start of each week row, `09:00  `.
const WEEK_LABEL_WIDTH: usize = 7;

/// Returns the day column width that fits the week grid into `columns`
/// terminal columns, or the full width when the width is unknown.
pub fn week_column_width(columns: Option<usize>) -> usize {
    match columns {
        Some(columns) => (columns.saturating_sub(WEEK_LABEL_WIDTH) / 7)
            .clamp(WEEK_COLUMN_WIDTH_MIN, WEEK_COLUMN_WIDTH),
        None => WEEK_COLUMN_WIDTH,
    }
}

/// The verb of a notification about a guest's response: `accepted`, ...
pub fn response_verb(response: Response) -> &'static str {
    match response {
        Response::NeedsAction => "withdrew the response to",
        Response::Accepted => "accepted",
        Response::Tentative => "tentatively accepted",
        Response::Declined => "declined",
    }
}

/// The `responses` line of `show`: every guest of a private event with their
/// response, or the responses given to a public one. `None` for a private event
/// without guests and a public one without responses.
pub fn responses_detail(event: &EventView) -> Option<String> {
    if event.is_public() {
        if event.responses.is_empty() {
            return None;
        }
        let given: Vec<String> = event
            .responses
            .iter()
            .filter(|entry| entry.occurrence.is_none())
            .map(|entry| format!("{} {}", entry.guest, entry.response.as_str()))
            .collect();
        if given.is_empty() {
            return Some("everyone needs-action".to_string());
        }
        return Some(format!("{}; everyone else needs-action", given.join(", ")));
    }
    if event.guests().is_empty() {
        return None;
    }
    let each: Vec<String> = event
        .guests()
        .iter()
        .map(|guest| {
            let response = event.response_of(&guest.to_ascii_lowercase());
            format!("{guest} {}", response.as_str())
        })
        .collect();
    Some(each.join(", "))
}

/// Formats the `by occurrence` line of `show`: the responses guests gave to
/// single occurrences of a series, as `bob declined Mon 2027-01-18 10:00`, each
/// occurrence named by its original start in the viewer's zone. `None` when
/// no guest responded to a single occurrence.
pub fn occurrence_responses_detail(event: &EventView, zone: Tz) -> Option<String> {
    let each: Vec<String> = event
        .responses
        .iter()
        .filter_map(|entry| {
            let start = local(entry.occurrence?, zone);
            let day = day_label(start.date_naive());
            let time = start.format("%H:%M");
            Some(format!(
                "{} {} {day} {time}",
                entry.guest,
                entry.response.as_str()
            ))
        })
        .collect();
    (!each.is_empty()).then(|| each.join(", "))
}

/// Converts the responses to an event's JSON: `{"guest", "response"}`,
/// with `occurrence_start_minute` for a response to one occurrence.
pub fn responses_json(event: &EventView) -> Value {
    let entries: Vec<Value> = event
        .responses
        .iter()
        .map(|entry| match entry.occurrence {
            Some(start) => json!({ "guest": entry.guest, "response": entry.response.as_str(),
                                   "occurrence_start_minute": start }),
            None => json!({ "guest": entry.guest, "response": entry.response.as_str() }),
        })
        .collect();
    Value::Array(entries)
}

pub fn slots_json(slots: &[TimeSlot]) -> Value {
    let entries: Vec<Value> = slots
        .iter()
        .map(|slot| json!({ "start_minute": slot.start, "end_minute": slot.end }))
        .collect();
    Value::Array(entries)
}

/// Lists free slots grouped by local day: `Mon 2027-01-04  09:00-10:00 (1h)`.
pub fn render_free(users: &[String], slots: &[TimeSlot], zone: Tz, style: Style) -> String {
    let who = users.join(", ");
    if slots.is_empty() {
        return format!("No common free time for {who} in their working hours.");
    }
    let mut days: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for slot in slots {
        let day = local(slot.start, zone).date_naive();
        let length = format_duration(minutes_between(slot.start, slot.end));
        let text = format!("{} ({length})", clock_span(slot.start, slot.end, zone));
        days.entry(day).or_default().push(text);
    }
    let mut lines = vec![style.heading(&format!("Free for {who} ({}):", zone.name()))];
    for (day, spans) in days {
        lines.push(format!(
            "  {}  {}",
            style.strong(&day_label(day)),
            spans.join("  ")
        ));
    }
    lines.join("\n")
}

/// Numbers the proposals of `suggest`, for `schedule suggestion N`.
pub fn render_suggestions(title: &str, slots: &[TimeSlot], zone: Tz, style: Style) -> String {
    if slots.is_empty() {
        return format!(
            "No slot fits {} for everyone in working hours; try a longer range or a shorter \
             meeting.",
            quote(title)
        );
    }
    let mut lines = vec![style.heading(&format!("Slots for {}:", quote(title)))];
    for (index, slot) in slots.iter().enumerate() {
        let number = style.id(&format!("{}.", index + 1));
        lines.push(format!(
            "  {number} {}",
            dated_span(slot.start, slot.end, zone)
        ));
    }
    lines.push(style.muted("Type schedule suggestion N to schedule one of them."));
    lines.join("\n")
}

/// Lists an event's history: `2027-01-04 10:00  alice  created the event`.
pub fn render_history(
    event: &EventView,
    entries: &[HistoryEntry],
    zone: Tz,
    style: Style,
) -> String {
    let header = format!(
        "History of {} {}:",
        style.id(&format!("#{}", event.id)),
        quote(&event.title)
    );
    if entries.is_empty() {
        return format!("{header} no changes recorded");
    }
    let actor_width = entries
        .iter()
        .map(|e| e.actor.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = vec![header];
    for entry in entries {
        let at = DateTime::<Utc>::from_timestamp_millis(entry.at_ms).unwrap_or_default();
        let at = at.with_timezone(&zone).format("%Y-%m-%d %H:%M");
        let occurrence = match entry.occurrence {
            Some(start) => {
                let start = DateTime::<Utc>::from_timestamp(start * 60, 0).unwrap_or_default();
                format!(
                    " (occurrence of {})",
                    start.with_timezone(&zone).format("%a %Y-%m-%d %H:%M")
                )
            }
            None => String::new(),
        };
        lines.push(format!(
            "  {}  {}{}  {}{occurrence}",
            style.muted(&at.to_string()),
            entry.actor,
            padding(&entry.actor, actor_width),
            describe_change(&entry.change)
        ));
    }
    if !matches!(entries[0].change, Change::Created) {
        lines.push(style.muted("  (older changes were dropped)"));
    }
    lines.join("\n")
}

fn describe_change(change: &Change) -> String {
    match change {
        Change::Created => "created the event".to_string(),
        Change::Edited { fields } => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {} -> {}", f.field, quote(&f.before), quote(&f.after)))
                .collect();
            format!("changed {}", parts.join("; "))
        }
        Change::Responded { response } => {
            format!("{} the invitation", response_verb(*response))
        }
        Change::GuestRemoved { guest } => {
            format!("left the guests ({guest}'s account was deleted)")
        }
    }
}

pub fn history_json(entries: &[HistoryEntry]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let change = match &entry.change {
                Change::Created => json!({ "kind": "created" }),
                Change::Edited { fields } => {
                    let fields: Vec<Value> = fields
                        .iter()
                        .map(|f| json!({ "field": f.field, "before": f.before, "after": f.after }))
                        .collect();
                    json!({ "kind": "edited", "fields": fields })
                }
                Change::Responded { response } => {
                    json!({ "kind": "responded", "response": response.as_str() })
                }
                Change::GuestRemoved { guest } => {
                    json!({ "kind": "guest_removed", "guest": guest })
                }
            };
            json!({ "at_ms": entry.at_ms, "actor": entry.actor, "change": change,
                    "occurrence_start_minute": entry.occurrence })
        })
        .collect();
    Value::Array(entries)
}

/// Returns the instant a local day starts, for grids. A midnight inside a DST gap
/// is replaced by the first minute that exists.
fn day_start(day: NaiveDate, zone: Tz) -> UnixMinute {
    let mut minute = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..(24 * 60) {
        if let Some(time) = minute.and_local_timezone(zone).earliest() {
            return time.timestamp() / 60;
        }
        minute += chrono::TimeDelta::minutes(1);
    }
    minute.and_utc().timestamp() / 60
}

fn minutes_between(start: UnixMinute, end: UnixMinute) -> u32 {
    u32::try_from(end - start).unwrap_or(u32::MAX)
}

/// Cuts `text` to `width` terminal columns, ending with `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if UnicodeWidthStr::width(text) <= width {
        return text.to_string();
    }
    let mut prefix = String::new();
    let mut used = 0;
    for character in text.chars() {
        let cells = UnicodeWidthChar::width(character).unwrap_or(0);
        if used + cells > width.saturating_sub(1) {
            break;
        }
        prefix.push(character);
        used += cells;
    }
    format!("{prefix}…")
}

/// Lists the local hours of `day` that `event` overlaps, in the viewer's zone.
fn hours_on_day(event: &EventView, day: NaiveDate, zone: Tz) -> Vec<u32> {
    let from = day_start(day, zone);
    let to = day_start(day + Days::new(1), zone);
    let start = event.start.max(from);
    let end = event.end().min(to);
    if start >= end {
        return Vec::new();
    }
    let first = local(start, zone).hour();
    let last = local(end - 1, zone).hour();
    (first..=last).collect()
}

/// Rows of the week grid that `event` fills on `day`: [`ALL_DAY_ROW`] for an
/// all-day event, and one past each local hour for other events.
fn week_rows(event: &EventView, day: NaiveDate, zone: Tz) -> Vec<u32> {
    let hours = hours_on_day(event, day, zone);
    if event.timing == Timing::AllDay {
        return if hours.is_empty() {
            Vec::new()
        } else {
            vec![ALL_DAY_ROW]
        };
    }
    hours.into_iter().map(|hour| hour + 1).collect()
}

/// Renders the seven days from `monday` as a grid with a row for all-day
/// events and one row per local hour that has an event. Each cell names the
/// event that runs then, and the viewer's declined events are dimmed. The
/// events must already be seen in `zone` (see `timing::seen_in`). Each day
/// column is `column_width` wide (see [`week_column_width`]).
pub fn render_week(
    events: &[EventView],
    monday: NaiveDate,
    viewer: &str,
    today: NaiveDate,
    zone: Tz,
    style: Style,
    column_width: usize,
) -> String {
    let days: Vec<NaiveDate> = (0..7).map(|offset| monday + Days::new(offset)).collect();
    let mut cells: BTreeMap<(u32, usize), Vec<&EventView>> = BTreeMap::new();
    for event in events {
        for (column, day) in days.iter().enumerate() {
            for row in week_rows(event, *day, zone) {
                cells.entry((row, column)).or_default().push(event);
            }
        }
    }
    let title = format!("Week of {} ({})", day_label(monday), zone.name());
    if cells.is_empty() {
        return format!("{}\nNo events this week.", style.heading(&title));
    }

    let mut header = " ".repeat(WEEK_LABEL_WIDTH);
    for day in &days {
        let label = day.format("%a %d").to_string();
        let shown = if *day == today {
            style.tag(&label)
        } else {
            style.strong(&label)
        };
        header.push_str(&format!("{shown}{}", padding(&label, column_width)));
    }
    let mut lines = vec![style.heading(&title), header.trim_end().to_string()];
    let rows: std::collections::BTreeSet<u32> = cells.keys().map(|(row, _)| *row).collect();
    for row in rows {
        let mut line = if row == ALL_DAY_ROW {
            "all    ".to_string()
        } else {
            format!("{:02}:00  ", row - 1)
        };
        for column in 0..days.len() {
            let text = match cells.get(&(row, column)) {
                None => style.muted("·"),
                Some(found) => week_cell(found, viewer, style, column_width),
            };
            let plain = match cells.get(&(row, column)) {
                None => "·".to_string(),
                Some(found) => week_cell(found, viewer, Style::plain(), column_width),
            };
            line.push_str(&format!("{text}{}", padding(&plain, column_width)));
        }
        lines.push(line.trim_end().to_string());
    }
    lines.push(String::new());
    lines.extend(week_legend(events, viewer, zone, style));
    lines.join("\n")
}

fn week_cell(found: &[&EventView], viewer: &str, style: Style, column_width: usize) -> String {
    // An event the viewer still attends is named before one they declined.
    let first = found
        .iter()
        .find(|event| event.response_of(viewer) != Response::Declined)
        .unwrap_or(&found[0]);
    let text = if found.len() == 1 {
        fit(&format!("#{} {}", first.id, first.title), column_width - 1)
    } else {
        fit(
            &format!("#{} +{}", first.id, found.len() - 1),
            column_width - 1,
        )
    };
    if first.response_of(viewer) == Response::Declined {
        style.muted(&text)
    } else {
        style.id(&text)
    }
}

/// Formats one line per event under the week grid, with the event's own zone when
/// it differs from the viewer's and the viewer's response when not accepted.
fn week_legend(events: &[EventView], viewer: &str, zone: Tz, style: Style) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            let viewer_day = local(event.start, zone).date_naive();
            let mut line = format!(
                "{} {}  {}",
                style.id(&format!("#{}", event.id)),
                quote(&event.title),
                event_dated_span(event, zone)
            );
            if let Some(note) = zone_note(event, zone, viewer_day) {
                line.push_str(&format!(" ({note})"));
            }
            let invited = event.is_public() || event.involves(viewer);
            let response = event.response_of(viewer);
            if invited && response != Response::Accepted {
                line.push_str(&format!(" [{}]", response.as_str()));
            }
            line
        })
        .collect()
}

/// Renders a month like `cal`, Monday first, with `*` after each day that
/// has an event the viewer has not declined, and a count per busy day.
pub fn render_month(
    events: &[EventView],
    first: NaiveDate,
    viewer: &str,
    today: NaiveDate,
    zone: Tz,
    style: Style,
) -> String {
    let next = first + Months::new(1);
    let mut busy: BTreeMap<u32, usize> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e.response_of(viewer) != Response::Declined)
    {
        let mut day = first;
        while day < next {
            if !hours_on_day(event, day, zone).is_empty() {
                *busy.entry(day.day()).or_default() += 1;
            }
            day = day + Days::new(1);
        }
    }

    let title = first.format("%B %Y").to_string();
    let mut lines = vec![style.heading(&format!("{title} ({})", zone.name()))];
    lines.push("Mo  Tu  We  Th  Fr  Sa  Su".to_string());
    let mut line = "    ".repeat(first.weekday().num_days_from_monday() as usize);
    let mut day = first;
    while day < next {
        let number = format!("{:>2}", day.day());
        let mark = if busy.contains_key(&day.day()) {
            "*"
        } else {
            " "
        };
        let shown = if day == today {
            style.tag(&number)
        } else if busy.contains_key(&day.day()) {
            style.strong(&number)
        } else {
            number
        };
        line.push_str(&format!("{shown}{mark} "));
        if day.weekday() == chrono::Weekday::Sun {
            lines.push(line.trim_end().to_string());
            line = String::new();
        }
        day = day + Days::new(1);
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    if busy.is_empty() {
        lines.push(style.muted("No events this month."));
    } else {
        let counts: Vec<String> = busy
            .iter()
            .map(|(day, count)| {
                let noun = if *count == 1 { "event" } else { "events" };
                format!("{day} ({count} {noun})")
            })
            .collect();
        lines.push(format!("* busy: {}", counts.join(", ")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{FieldChange, GuestResponse, Visibility};

    fn minute(text: &str) -> UnixMinute {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp() / 60
    }

    fn event(id: u64, title: &str, start: &str, minutes: u32, zone: &str) -> EventView {
        EventView {
            id,
            version: 1,
            title: title.into(),
            description: String::new(),
            start: minute(start),
            duration_minutes: minutes,
            zone: zone.into(),
            host: "alice".into(),
            visibility: Visibility::Private {
                guests: vec!["bob".into(), "carol".into()],
            },
            responses: vec![GuestResponse {
                guest: "bob".into(),
                response: Response::Declined,
                occurrence: None,
            }],
            recurrence: None,
            timing: Timing::Zoned,
        }
    }

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn responses_list_every_guest() {
        let plan = event(1, "Plan", "2027-01-04T10:00:00+01:00", 60, "Europe/Berlin");
        assert_eq!(
            responses_detail(&plan).unwrap(),
            "bob declined, carol needs-action"
        );
        let mut town = plan.clone();
        town.visibility = Visibility::Public;
        assert_eq!(
            responses_detail(&town).unwrap(),
            "bob declined; everyone else needs-action"
        );
        town.responses.clear();
        assert_eq!(responses_detail(&town), None);
        let mut alone = plan;
        alone.visibility = Visibility::Private { guests: vec![] };
        assert_eq!(responses_detail(&alone), None);
    }

    #[test]
    fn occurrence_responses_listed_apart() {
        let mut plan = event(1, "Plan", "2027-01-04T10:00:00+01:00", 60, "Europe/Berlin");
        assert_eq!(occurrence_responses_detail(&plan, berlin()), None);
        plan.responses.push(GuestResponse {
            guest: "carol".into(),
            response: Response::Accepted,
            occurrence: Some(minute("2027-01-11T10:00:00+01:00")),
        });
        assert_eq!(
            occurrence_responses_detail(&plan, berlin()).unwrap(),
            "carol accepted Mon 2027-01-11 10:00"
        );
        // The series line shows carol's response to the whole event.
        assert_eq!(
            responses_detail(&plan).unwrap(),
            "bob declined, carol needs-action"
        );
        let shown = crate::repl::render::render_event(&plan, berlin(), Style::plain());
        assert!(
            shown.contains("by occurrence  carol accepted Mon 2027-01-11 10:00"),
            "{shown}"
        );
        let json = responses_json(&plan);
        assert_eq!(json[0].get("occurrence_start_minute"), None);
        assert_eq!(
            json[1]["occurrence_start_minute"],
            minute("2027-01-11T10:00:00+01:00")
        );

        let mut town = plan;
        town.visibility = Visibility::Public;
        town.responses.remove(0);
        assert_eq!(responses_detail(&town).unwrap(), "everyone needs-action");
    }

    #[test]
    fn responded_notification_names_response() {
        let plan = event(1, "Plan", "2027-01-04T10:00:00+01:00", 60, "Europe/Berlin");
        let notification = crate::calendar::Notification {
            seq: 4,
            at_ms: 0,
            kind: crate::calendar::NotificationKind::Responded,
            event: plan,
            actor: "bob".into(),
        };
        let text =
            crate::repl::render::render_notification(&notification, berlin(), Style::plain());
        assert_eq!(
            text,
            "[responded] bob declined #1 \"Plan\" Mon 2027-01-04 10:00-11:00"
        );
        let json = crate::repl::render::notification_json(&notification);
        assert_eq!(json["kind"], "responded");
        assert_eq!(json["event"]["responses"][0]["response"], "declined");
    }

    #[test]
    fn free_slots_grouped_by_day() {
        let slots = [
            TimeSlot {
                start: minute("2027-01-04T09:00:00+01:00"),
                end: minute("2027-01-04T10:00:00+01:00"),
            },
            TimeSlot {
                start: minute("2027-01-04T11:00:00+01:00"),
                end: minute("2027-01-04T12:30:00+01:00"),
            },
            TimeSlot {
                start: minute("2027-01-05T09:00:00+01:00"),
                end: minute("2027-01-05T17:00:00+01:00"),
            },
        ];
        let users = ["bob".to_string(), "carol".to_string()];
        let text = render_free(&users, &slots, berlin(), Style::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Free for bob, carol (Europe/Berlin):");
        assert_eq!(
            lines[1],
            "  Mon 2027-01-04  09:00-10:00 (1h)  11:00-12:30 (1h30m)"
        );
        assert_eq!(lines[2], "  Tue 2027-01-05  09:00-17:00 (8h)");
        let none = render_free(&users, &[], berlin(), Style::plain());
        assert!(none.starts_with("No common free time for bob, carol"));
    }

    #[test]
    fn suggestions_are_numbered() {
        let slots = [TimeSlot {
            start: minute("2027-01-04T11:00:00+01:00"),
            end: minute("2027-01-04T12:00:00+01:00"),
        }];
        let text = render_suggestions("Plan", &slots, berlin(), Style::plain());
        assert!(text.contains("  1. Mon 2027-01-04 11:00-12:00"), "{text}");
        assert!(text.contains("schedule suggestion N"), "{text}");
    }

    #[test]
    fn history_lines_name_actor_and_change() {
        let plan = event(3, "Plan", "2027-01-04T10:00:00+01:00", 60, "Europe/Berlin");
        let at = DateTime::parse_from_rfc3339("2027-01-03T10:00:00+01:00")
            .unwrap()
            .timestamp_millis();
        let entries = [
            HistoryEntry {
                occurrence: None,
                at_ms: at,
                actor: "alice".into(),
                change: Change::Created,
            },
            HistoryEntry {
                occurrence: None,
                at_ms: at + 60_000,
                actor: "bob".into(),
                change: Change::Responded {
                    response: Response::Declined,
                },
            },
            HistoryEntry {
                occurrence: None,
                at_ms: at + 120_000,
                actor: "alice".into(),
                change: Change::Edited {
                    fields: vec![FieldChange {
                        field: "title".into(),
                        before: "Plan".into(),
                        after: "Plan B".into(),
                    }],
                },
            },
        ];
        let text = render_history(&plan, &entries, berlin(), Style::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "History of #3 \"Plan\":");
        assert_eq!(lines[1], "  2027-01-03 10:00  alice  created the event");
        assert_eq!(
            lines[2],
            "  2027-01-03 10:01  bob    declined the invitation"
        );
        assert_eq!(
            lines[3],
            "  2027-01-03 10:02  alice  changed title \"Plan\" -> \"Plan B\""
        );
        let json = history_json(&entries);
        assert_eq!(json[1]["change"]["response"], "declined");
    }

    #[test]
    fn week_grid_all_day_row() {
        let mut fair = event(
            5,
            "Fair",
            "2027-01-05T00:00:00+01:00",
            24 * 60,
            "Europe/Berlin",
        );
        fair.timing = Timing::AllDay;
        let standup = event(
            1,
            "Standup",
            "2027-01-04T09:00:00+01:00",
            30,
            "Europe/Berlin",
        );
        let text = render_week(
            &[standup, fair],
            day("2027-01-04"),
            "carol",
            day("2027-01-04"),
            berlin(),
            Style::plain(),
            WEEK_COLUMN_WIDTH,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].starts_with("all    ·             #5 Fair   "),
            "{text}"
        );
        assert!(lines[3].starts_with("09:00  #1 Standup"), "{text}");
        assert_eq!(lines.len(), 7, "{text}");
        assert!(
            lines[6].starts_with("#5 \"Fair\"  Tue 2027-01-05 all day"),
            "{text}"
        );
    }

    #[test]
    fn week_width_fits_terminal() {
        assert_eq!(week_column_width(None), WEEK_COLUMN_WIDTH);
        assert_eq!(week_column_width(Some(80)), 10);
        assert_eq!(week_column_width(Some(200)), WEEK_COLUMN_WIDTH);
        assert_eq!(week_column_width(Some(40)), WEEK_COLUMN_WIDTH_MIN);
    }

    #[test]
    fn week_grid_in_80_columns() {
        let events = [
            event(
                1,
                "Standup meeting",
                "2027-01-04T09:00:00+01:00",
                30,
                "Europe/Berlin",
            ),
            event(
                2,
                "日本語の会議 🎉",
                "2027-01-10T09:00:00+01:00",
                30,
                "Europe/Berlin",
            ),
        ];
        let text = render_week(
            &events,
            day("2027-01-04"),
            "carol",
            day("2027-01-04"),
            berlin(),
            Style::plain(),
            week_column_width(Some(80)),
        );
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[..3] {
            assert!(UnicodeWidthStr::width(*line) <= 80, "{line:?} in\n{text}");
        }
        assert!(lines[1].ends_with("Sun 10"), "{text}");
        assert!(lines[2].starts_with("09:00  #1 Stand… ·"), "{text}");
        // Sunday's cell is cut by display width, two cells per character.
        assert!(lines[2].ends_with("#2 日本…"), "{text}");
    }

    #[test]
    fn week_cell_names_attended_event() {
        let declined = event(
            2,
            "Skipped",
            "2027-01-04T09:00:00+01:00",
            60,
            "Europe/Berlin",
        );
        let mut attended = event(7, "Kept", "2027-01-04T09:00:00+01:00", 60, "Europe/Berlin");
        attended.responses.clear();
        let text = render_week(
            &[declined, attended],
            day("2027-01-04"),
            "bob",
            day("2027-01-04"),
            berlin(),
            Style::plain(),
            WEEK_COLUMN_WIDTH,
        );
        let row = text.lines().nth(2).expect("the 09:00 row");
        assert!(row.starts_with("09:00  #7 +1"), "{text}");
    }

    #[test]
    fn week_grid_rows_are_hours_with_events() {
        let events = [
            event(
                1,
                "Standup",
                "2027-01-04T09:00:00+01:00",
                30,
                "Europe/Berlin",
            ),
            event(
                2,
                "Call with New York",
                "2027-01-06T15:00:00+01:00",
                90,
                "America/New_York",
            ),
        ];
        let text = render_week(
            &events,
            day("2027-01-04"),
            "carol",
            day("2027-01-04"),
            berlin(),
            Style::plain(),
            WEEK_COLUMN_WIDTH,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Week of Mon 2027-01-04 (Europe/Berlin)");
        assert!(
            lines[1].starts_with("       Mon 04        Tue 05"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("09:00  #1 Standup    ·             ·"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("15:00  ·             ·             #2 Call with…"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("16:00  ·             ·             #2 Call with…"),
            "{text}"
        );
        assert_eq!(lines.len(), 8, "{text}");
        assert_eq!(
            lines[7],
            "#2 \"Call with New York\"  Wed 2027-01-06 15:00-16:30 (09:00-10:30 America/New_York) [needs-action]"
        );
        let empty = render_week(
            &[],
            day("2027-01-04"),
            "carol",
            day("2027-01-04"),
            berlin(),
            Style::plain(),
            WEEK_COLUMN_WIDTH,
        );
        assert!(empty.ends_with("No events this week."));
    }

    #[test]
    fn week_grid_columns_align_with_colour() {
        let events = [event(
            1,
            "Standup",
            "2027-01-04T09:00:00+01:00",
            30,
            "Europe/Berlin",
        )];
        let plain = render_week(
            &events,
            day("2027-01-04"),
            "bob",
            day("2027-01-05"),
            berlin(),
            Style::plain(),
            WEEK_COLUMN_WIDTH,
        );
        let colored = render_week(
            &events,
            day("2027-01-04"),
            "bob",
            day("2027-01-05"),
            berlin(),
            Style::colored(),
            WEEK_COLUMN_WIDTH,
        );
        let strip = |text: &str| {
            let mut out = String::new();
            let mut escape = false;
            for c in text.chars() {
                match (escape, c) {
                    (false, '\u{1b}') => escape = true,
                    (true, 'm') => escape = false,
                    (true, _) => {}
                    (false, c) => out.push(c),
                }
            }
            out
        };
        assert_eq!(strip(&colored), plain);
        assert!(plain.contains("[declined]"), "{plain}");
    }

    #[test]
    fn month_marks_busy_days() {
        let events = [
            event(
                1,
                "Standup",
                "2027-01-04T09:00:00+01:00",
                30,
                "Europe/Berlin",
            ),
            event(
                2,
                "Night",
                "2027-01-05T23:00:00+01:00",
                120,
                "Europe/Berlin",
            ),
        ];
        let text = render_month(
            &events,
            day("2027-01-01"),
            "carol",
            day("2027-01-20"),
            berlin(),
            Style::plain(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "January 2027 (Europe/Berlin)");
        assert_eq!(lines[1], "Mo  Tu  We  Th  Fr  Sa  Su");
        assert_eq!(lines[2], "                 1   2   3");
        assert_eq!(lines[3], " 4*  5*  6*  7   8   9  10");
        assert_eq!(
            lines.last().unwrap(),
            &"* busy: 4 (1 event), 5 (1 event), 6 (1 event)"
        );
        // bob declined both, so his month has no busy days.
        let declined = render_month(
            &events,
            day("2027-01-01"),
            "bob",
            day("2027-01-20"),
            berlin(),
            Style::plain(),
        );
        assert!(declined.ends_with("No events this month."));
    }
}
