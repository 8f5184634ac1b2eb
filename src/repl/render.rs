//! Text and JSON renderings of calendar data for the REPL.
//!
//! Every function here is pure: the caller passes the viewer's zone and a
//! [`Style`], and gets text back without a trailing newline. Times are shown
//! in the viewer's zone, and an event entered in another zone also shows its
//! time in that zone. Floating events keep their wall-clock time and all-day
//! events their dates in the viewer's zone, shown as `all day`. Columns are
//! aligned by character count.
//!
//! The JSON forms carry each instant three ways: the raw minute
//! (`*_minute`, minutes since 1970-01-01T00:00Z), ISO-8601 in UTC (`*_utc`)
//! and ISO-8601 with the offset of the event's zone (`*_local`).

use anstyle::{AnsiColor, Color};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use unicode_width::UnicodeWidthStr;

use crate::calendar::timing::{all_day_count, all_day_first_date, seen_in};
use crate::calendar::{
    BusySlot, EventView, Notification, NotificationKind, Rejection, Timing, UnixMinute, Visibility,
};

/// Widest title column in an agenda. Longer titles are kept whole and push
/// the rest of their own line to the right, so one long title does not widen
/// every line.
const TITLE_COLUMN_MAX: usize = 40;

/// Width that [`render_users`] fills with columns of names, the classic
/// terminal width.
const USERS_LINE_WIDTH: usize = 80;

/// Output setting: whether text carries ANSI colour codes. The caller decides
/// from the terminal, and the layout is the same either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn new(color: bool) -> Self {
        Style { color }
    }

    /// Creates a style without escape codes, for pipes, files and tests.
    pub fn plain() -> Self {
        Style::new(false)
    }

    pub fn colored() -> Self {
        Style::new(true)
    }

    pub fn is_colored(self) -> bool {
        self.color
    }

    fn paint(self, text: &str, look: anstyle::Style) -> String {
        if !self.color || text.is_empty() {
            return text.to_string();
        }
        format!("{}{text}{}", look.render(), look.render_reset())
    }

    pub(crate) fn heading(self, text: &str) -> String {
        self.paint(text, anstyle::Style::new().bold().underline())
    }

    pub(crate) fn id(self, text: &str) -> String {
        self.paint(text, foreground(AnsiColor::Cyan))
    }

    pub(crate) fn strong(self, text: &str) -> String {
        self.paint(text, anstyle::Style::new().bold())
    }

    pub(crate) fn muted(self, text: &str) -> String {
        self.paint(text, anstyle::Style::new().dimmed())
    }

    pub(crate) fn tag(self, text: &str) -> String {
        self.paint(text, foreground(AnsiColor::Yellow).bold())
    }

    pub(crate) fn error(self, text: &str) -> String {
        self.paint(text, foreground(AnsiColor::Red).bold())
    }
}

fn foreground(color: AnsiColor) -> anstyle::Style {
    anstyle::Style::new().fg_color(Some(Color::Ansi(color)))
}

/// One node's row in the `status` table, as that node reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRow {
    pub id: u8,
    pub address: String,
    /// Replication role as the node reports it, such as `primary` or `backup`.
    pub role: String,
    pub view: u64,
    /// Highest op number in the node's log.
    pub op: u64,
    /// Highest committed op number known to the node.
    pub commit: u64,
    /// Ops the node is behind the primary's op number.
    pub lag: u64,
    pub reachable: bool,
    /// Reason the node could not be reached, or empty when it replied.
    pub error: String,
}

// ---------------------------------------------------------------------------
// Time helpers

/// Converts a minute to an instant. Minutes beyond chrono's range (about
/// 262,000 years either side of 1970, far outside what the calendar accepts)
/// are clamped to that range.
fn instant(minute: UnixMinute) -> DateTime<Utc> {
    let fallback = if minute < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    };
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(fallback)
}

pub(crate) fn local(minute: UnixMinute, zone: Tz) -> DateTime<Tz> {
    instant(minute).with_timezone(&zone)
}

/// Formats the dates of an all-day event as the viewer sees it:
/// `all day` for one day, `all day to Sun 2025-11-02` for several.
fn all_day_span(event: &EventView) -> String {
    let days = all_day_count(event.duration_minutes);
    if days <= 1 {
        return "all day".to_string();
    }
    let last = all_day_first_date(event) + Days::new(u64::from(days - 1));
    format!("all day to {}", day_label(last))
}

/// Formats the time of an event seen by the viewer, without its start day.
fn event_clock_span(event: &EventView, viewer_zone: Tz) -> String {
    match event.timing {
        Timing::AllDay => all_day_span(event),
        _ => clock_span(event.start, end_minute(event), viewer_zone),
    }
}

/// Formats the time of an event seen by the viewer, with its start day.
pub(crate) fn event_dated_span(event: &EventView, viewer_zone: Tz) -> String {
    let day = local(event.start, viewer_zone).date_naive();
    format!(
        "{} {}",
        day_label(day),
        event_clock_span(event, viewer_zone)
    )
}

/// Parses the event's zone name, returning `None` when it is not an IANA name.
fn event_zone(event: &EventView) -> Option<Tz> {
    event.zone.parse().ok()
}

fn end_minute(event: &EventView) -> UnixMinute {
    event
        .start
        .saturating_add(i64::from(event.duration_minutes))
}

/// Formats a day heading such as `Thu 2027-01-07`.
pub(crate) fn day_label(day: NaiveDate) -> String {
    day.format("%a %Y-%m-%d").to_string()
}

fn clock(time: &DateTime<Tz>) -> String {
    time.format("%H:%M").to_string()
}

/// Checks that a span can be written with the start day alone, because it
/// ends that day or exactly at the midnight that closes it (written `24:00`).
fn ends_same_day(start: &DateTime<Tz>, end: &DateTime<Tz>) -> bool {
    let start_day = start.date_naive();
    let end_day = end.date_naive();
    end_day == start_day || (Some(end_day) == start_day.succ_opt() && end.time() == NaiveTime::MIN)
}

/// Formats the end of a span: `10:45`, `24:00` for the closing midnight, or
/// `Sat 2027-01-09 01:00` when it ends on a later day.
fn end_label(start: &DateTime<Tz>, end: &DateTime<Tz>) -> String {
    if end.date_naive() == start.date_naive() {
        clock(end)
    } else if ends_same_day(start, end) {
        "24:00".to_string()
    } else {
        format!("{} {}", day_label(end.date_naive()), clock(end))
    }
}

/// Formats a span without its start day: `10:00-10:45` or `23:00-Sat 2027-01-09 01:00`.
///
/// Both ends carry their abbreviation when the span touches an hour that
/// the wall clock repeats, as at the end of summer time, because the span
/// would read wrong (`02:30-02:00`) or like another (`02:30-03:00`) without
/// them: `02:30 CEST-02:00 CET`, `02:30 CET-03:00 CET`.
pub(crate) fn clock_span(start: UnixMinute, end: UnixMinute, zone: Tz) -> String {
    let start = local(start, zone);
    let end = local(end, zone);
    let repeated = |time: &DateTime<Tz>| {
        matches!(
            chrono::TimeZone::from_local_datetime(&zone, &time.naive_local()),
            chrono::LocalResult::Ambiguous(..)
        )
    };
    if end.naive_local() <= start.naive_local() || repeated(&start) || repeated(&end) {
        return format!(
            "{} {}-{} {}",
            clock(&start),
            start.format("%Z"),
            end_label(&start, &end),
            end.format("%Z")
        );
    }
    format!("{}-{}", clock(&start), end_label(&start, &end))
}

/// Formats a span with its start day: `Fri 2027-01-08 10:00-10:45`.
pub(crate) fn dated_span(start: UnixMinute, end: UnixMinute, zone: Tz) -> String {
    let day = local(start, zone).date_naive();
    format!("{} {}", day_label(day), clock_span(start, end, zone))
}

/// Formats a duration as it is typed: `45m`, `1h30m`, `2d`, `1d2h`.
pub(crate) fn format_duration(minutes: u32) -> String {
    let days = minutes / (24 * 60);
    let hours = minutes / 60 % 24;
    let rest = minutes % 60;
    let mut text = String::new();
    for (amount, unit) in [(days, "d"), (hours, "h"), (rest, "m")] {
        if amount > 0 {
            text.push_str(&format!("{amount}{unit}"));
        }
    }
    if text.is_empty() {
        text.push_str("0m");
    }
    text
}

/// Formats the event's time in its own zone, such as `10:00-10:45
/// America/New_York`, or returns `None` when that zone is the viewer's. The
/// day is added when it differs from `viewer_day`, the start day in the
/// viewer's zone.
pub(crate) fn zone_note(
    event: &EventView,
    viewer_zone: Tz,
    viewer_day: NaiveDate,
) -> Option<String> {
    if event.zone == viewer_zone.name() {
        return None;
    }
    let Some(zone) = event_zone(event) else {
        return Some(format!("zone {} unknown", quote(&event.zone)));
    };
    let end = end_minute(event);
    let own_day = local(event.start, zone).date_naive();
    let span = if own_day == viewer_day {
        clock_span(event.start, end, zone)
    } else {
        dated_span(event.start, end, zone)
    };
    Some(format!("{span} {}", zone.name()))
}

// ---------------------------------------------------------------------------
// Small text helpers

/// Spaces that pad `text` to `width` characters.
// NOTE: counts characters, so wide characters (CJK, most emoji) and combining
// marks misalign the columns that follow them.
/// Returns the spaces that pad `text` to `width` terminal columns. Widths
/// are display cells, so that CJK characters and emoji, which take two,
/// keep columns aligned.
pub(crate) fn padding(text: &str, width: usize) -> String {
    " ".repeat(width.saturating_sub(UnicodeWidthStr::width(text)))
}

pub(crate) fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// Joins clauses into a sentence that starts with a capital letter and ends
/// with one full stop, whatever the clauses brought.
fn sentence(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches(['.', ';', ',']);
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Summarises who takes part, as shown in agenda lines: `public` or `private: bob, carol`.
fn visibility_summary(visibility: &Visibility) -> String {
    match visibility {
        Visibility::Public => "public".to_string(),
        Visibility::Private { guests } if guests.is_empty() => "private".to_string(),
        Visibility::Private { guests } => format!("private: {}", guests.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Agenda

/// One agenda line before alignment.
struct AgendaRow {
    day: NaiveDate,
    time: String,
    id: String,
    title: String,
    detail: String,
    zone_note: Option<String>,
}

impl AgendaRow {
    /// Builds the row of an event already seen in the viewer's zone.
    fn new(event: &EventView, viewer_zone: Tz) -> Self {
        let day = local(event.start, viewer_zone).date_naive();
        AgendaRow {
            day,
            time: event_clock_span(event, viewer_zone),
            id: format!("#{}", event.id),
            title: event.title.clone(),
            detail: format!(
                "(host {}, {}{})",
                event.host,
                visibility_summary(&event.visibility),
                if event.is_recurring() {
                    ", repeats"
                } else {
                    ""
                }
            ),
            zone_note: zone_note(event, viewer_zone, day),
        }
    }
}

/// Column widths shared by every line of one agenda.
struct AgendaWidths {
    time: usize,
    id: usize,
    title: usize,
    detail: usize,
}

impl AgendaWidths {
    fn of(rows: &[AgendaRow]) -> Self {
        let widest = |column: fn(&AgendaRow) -> &str| {
            rows.iter()
                .map(|row| column(row).chars().count())
                .max()
                .unwrap_or(0)
        };
        AgendaWidths {
            time: widest(|row| &row.time),
            id: widest(|row| &row.id),
            title: widest(|row| &row.title).min(TITLE_COLUMN_MAX),
            detail: widest(|row| &row.detail),
        }
    }
}

fn agenda_line(row: &AgendaRow, widths: &AgendaWidths, style: Style) -> String {
    let mut line = format!(
        "  {}{}  {}{}  {}{}  {}",
        row.time,
        padding(&row.time, widths.time),
        padding(&row.id, widths.id),
        style.id(&row.id),
        style.strong(&row.title),
        padding(&row.title, widths.title),
        style.muted(&row.detail),
    );
    if let Some(note) = &row.zone_note {
        line.push_str(&padding(&row.detail, widths.detail));
        line.push_str("  ");
        line.push_str(note);
    }
    line.trim_end().to_string()
}

/// Renders events grouped by the viewer's local day, in start order. An
/// event that spans midnight is listed on its start day with its end date.
/// `from` and `to` are the queried range, named when there is no event.
pub fn render_agenda(
    events: &[EventView],
    from: UnixMinute,
    to: UnixMinute,
    viewer_zone: Tz,
    style: Style,
) -> String {
    if events.is_empty() {
        let from = local(from, viewer_zone);
        let to = local(to, viewer_zone);
        return format!(
            "No events from {} {} to {} {} ({}).",
            day_label(from.date_naive()),
            clock(&from),
            day_label(to.date_naive()),
            clock(&to),
            viewer_zone.name()
        );
    }

    let mut ordered: Vec<EventView> = events
        .iter()
        .map(|event| seen_in(event, viewer_zone))
        .collect();
    ordered.sort_by_key(|event| (event.start, event.id));
    let rows: Vec<AgendaRow> = ordered
        .iter()
        .map(|event| AgendaRow::new(event, viewer_zone))
        .collect();
    let widths = AgendaWidths::of(&rows);

    let mut lines = Vec::new();
    let mut current_day = None;
    for row in &rows {
        if current_day != Some(row.day) {
            if current_day.is_some() {
                lines.push(String::new());
            }
            lines.push(style.heading(&day_label(row.day)));
            current_day = Some(row.day);
        }
        lines.push(agenda_line(row, &widths, style));
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// One event

fn visibility_detail(visibility: &Visibility) -> String {
    match visibility {
        Visibility::Public => "public (everyone is invited)".to_string(),
        Visibility::Private { guests } if guests.is_empty() => {
            "private (no guests, only the host)".to_string()
        }
        Visibility::Private { guests } => format!("private, guests: {}", guests.join(", ")),
    }
}

fn zone_detail(event: &EventView, viewer_zone: Tz) -> String {
    match &event.timing {
        Timing::Floating => return "floating (the same wall-clock time in every zone)".into(),
        Timing::AllDay => return "all day (the same dates in every zone)".into(),
        Timing::Labelled { tzid } if event.zone == viewer_zone.name() => {
            return format!("{} (imported as {})", event.zone, quote(tzid));
        }
        Timing::Zoned | Timing::Labelled { .. } => {}
    }
    if event.zone == viewer_zone.name() {
        return event.zone.clone();
    }
    match event_zone(event) {
        Some(zone) => format!(
            "{}: {}",
            zone.name(),
            dated_span(event.start, end_minute(event), zone)
        ),
        None => format!(
            "{} (unknown zone, times shown in {})",
            event.zone,
            viewer_zone.name()
        ),
    }
}

/// Renders every field of one event as labelled lines under a header with
/// its id and title. A multi-line description keeps its line breaks.
pub fn render_event(event: &EventView, viewer_zone: Tz, style: Style) -> String {
    let event = &seen_in(event, viewer_zone);
    let when = match event.timing {
        Timing::AllDay => {
            let days = all_day_count(event.duration_minutes);
            format!(
                "{} ({})",
                event_dated_span(event, viewer_zone),
                plural(days as usize, "day", "days")
            )
        }
        _ => format!(
            "{} {} ({})",
            dated_span(event.start, end_minute(event), viewer_zone),
            viewer_zone.name(),
            format_duration(event.duration_minutes)
        ),
    };
    let description = if event.description.is_empty() {
        style.muted("(none)")
    } else {
        event.description.clone()
    };
    let mut fields = vec![
        ("when", when),
        ("zone", zone_detail(event, viewer_zone)),
        ("host", event.host.clone()),
        ("visibility", visibility_detail(&event.visibility)),
        ("version", event.version.to_string()),
        ("description", description),
    ];
    if let Some(responses) = super::views::responses_detail(event) {
        fields.insert(4, ("responses", responses));
    }
    if let Some(answers) = super::views::occurrence_responses_detail(event, viewer_zone) {
        let version = fields.iter().position(|(label, _)| *label == "version");
        fields.insert(version.unwrap_or(fields.len()), ("by occurrence", answers));
    }
    let label_width = fields
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);

    let mut lines = vec![format!(
        "{}  {}",
        style.id(&format!("#{}", event.id)),
        style.strong(&event.title)
    )];
    for (label, value) in &fields {
        let continuation = " ".repeat(2 + label_width + 2);
        let mut value_lines = value.lines();
        let first = value_lines.next().unwrap_or("");
        lines.push(format!(
            "  {}{}  {first}",
            style.muted(label),
            padding(label, label_width)
        ));
        for more in value_lines {
            lines.push(format!("{continuation}{more}").trim_end().to_string());
        }
    }
    lines.join("\n")
}

/// Renders the lines `show` adds for a recurring event: its rule in words,
/// and the next occurrences after `now`, each with the start that names it
/// in `edit ID occurrence DATE` when it was moved.
pub fn render_series(event: &EventView, viewer_zone: Tz, now: UnixMinute, style: Style) -> String {
    let Some(rule) = crate::repl::recurrence::describe(event) else {
        return String::new();
    };
    // Aligned with the labels of `render_event`, whose longest is this one.
    let width = "description".len();
    let mut lines = vec![format!(
        "  {}{}  {rule} ({})",
        style.muted("repeats"),
        padding("repeats", width),
        event.zone
    )];
    let next = crate::repl::recurrence::next_occurrences(event, now, SHOWN_OCCURRENCES);
    if next.is_empty() {
        lines.push(format!(
            "  {}{}  {}",
            style.muted("next"),
            padding("next", width),
            style.muted("(no more occurrences)")
        ));
    }
    for (index, occurrence) in next.iter().enumerate() {
        let label = if index == 0 { "next" } else { "" };
        // A floating or all-day occurrence moves into the viewer's zone.
        let mut stored = event.clone();
        stored.start = occurrence.start;
        stored.duration_minutes = (occurrence.end - occurrence.start) as u32;
        let seen = seen_in(&stored, viewer_zone);
        let mut line = format!(
            "  {}{}  {}",
            style.muted(label),
            padding(label, width),
            event_dated_span(&seen, viewer_zone)
        );
        if occurrence.start != occurrence.original_start {
            let original = local(occurrence.original_start, viewer_zone);
            line.push_str(&format!(
                " (moved from {} {})",
                day_label(original.date_naive()),
                clock(&original)
            ));
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// How many coming occurrences `show` lists for a recurring event.
const SHOWN_OCCURRENCES: usize = 5;

/// " (occurrence of a series)" for the view of one occurrence, " (repeats)"
/// for a series, nothing for a one-off event.
fn series_note(event: &EventView) -> String {
    match &event.recurrence {
        Some(recurrence) if recurrence.occurrence.is_some() => " (one occurrence)".to_string(),
        Some(_) => " (repeats)".to_string(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Rejections

/// Finds the start day shared by every slot, if each slot also ends that day.
fn shared_day(slots: &[BusySlot], zone: Tz) -> Option<NaiveDate> {
    let first = local(slots.first()?.start, zone).date_naive();
    let all_on_first = slots.iter().all(|slot| {
        let start = local(slot.start, zone);
        start.date_naive() == first && ends_same_day(&start, &local(slot.end, zone))
    });
    all_on_first.then_some(first)
}

fn busy_line(slot: &BusySlot, dated: bool, zone: Tz, style: Style) -> String {
    let span = if dated {
        dated_span(slot.start, slot.end, zone)
    } else {
        clock_span(slot.start, slot.end, zone)
    };
    let what = match &slot.event {
        Some(event) => format!("#{} {}, host {}", event.id, quote(&event.title), event.host),
        None => "private event".to_string(),
    };
    format!(
        "  {} is busy {span} ({what})",
        style.strong(&slot.participant)
    )
}

fn render_conflict(slots: &[BusySlot], viewer_zone: Tz, style: Style) -> String {
    let day = shared_day(slots, viewer_zone);
    // The state machine stops collecting at the limit, so more may exist.
    let count = if slots.len() >= crate::calendar::limits::MAX_CONFLICT_SLOTS {
        format!("at least {} busy slots (the first are listed)", slots.len())
    } else {
        plural(slots.len(), "busy slot", "busy slots")
    };
    let headline = match day {
        _ if slots.is_empty() => "The time conflicts with another event".to_string(),
        Some(day) => format!("The time conflicts with {count} on {}", day_label(day)),
        None => format!("The time conflicts with {count}"),
    };
    let mut lines = vec![style.error(&format!("{headline}. Choose another time or other guests."))];
    for slot in slots {
        lines.push(busy_line(slot, day.is_none(), viewer_zone, style));
    }
    lines.join("\n")
}

/// Renders why a command was rejected as one sentence that names the value
/// and the fix. A conflict adds one line per busy slot, in the viewer's zone,
/// and never names a private event the caller may not see.
pub fn render_rejection(rejection: &Rejection, viewer_zone: Tz, style: Style) -> String {
    let text = match rejection {
        Rejection::Conflict { slots } => return render_conflict(slots, viewer_zone, style),
        Rejection::NotFound { what } => {
            format!(
                "{} not found. Check the name or id and try again.",
                sentence(what).trim_end_matches('.')
            )
        }
        Rejection::Forbidden { reason } => sentence(&format!("not allowed: {reason}")),
        Rejection::Invalid { field, message } => sentence(&format!("invalid {field}: {message}")),
        Rejection::StaleVersion {
            event_id,
            expected,
            current,
        } => format!(
            "Event #{event_id} changed since you read it: you edited version {expected}, \
             it is now version {current}. Run `show {event_id}` and retry."
        ),
        Rejection::AlreadyExists { what } => {
            format!(
                "{} already exists. Choose another.",
                sentence(what).trim_end_matches('.')
            )
        }
        Rejection::StaleRequest {
            client_id,
            seq,
            last_seq,
        } => format!(
            "Request {seq} of client {client_id} was not applied because the client's last \
             applied request is {last_seq}. Run the command again as a new request."
        ),
    };
    style.error(&text)
}

// ---------------------------------------------------------------------------
// Notifications

fn kind_tag(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Invited => "invited",
        NotificationKind::Changed => "changed",
        NotificationKind::Cancelled => "cancelled",
        NotificationKind::RemovedFromGuests => "removed",
        NotificationKind::Responded => "responded",
    }
}

fn kind_key(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Invited => "invited",
        NotificationKind::Changed => "changed",
        NotificationKind::Cancelled => "cancelled",
        NotificationKind::RemovedFromGuests => "removed_from_guests",
        NotificationKind::Responded => "responded",
    }
}

/// Renders one notification as a line:
/// `[invited] alice invited you to #3 "Team sync" Fri 2027-01-08 10:00-10:45`.
pub fn render_notification(notification: &Notification, viewer_zone: Tz, style: Style) -> String {
    let event = &seen_in(&notification.event, viewer_zone);
    let actor = &notification.actor;
    let mut reference = format!(
        "{} {}",
        style.id(&format!("#{}", event.id)),
        quote(&event.title)
    );
    reference.push_str(&series_note(event));
    let action = match notification.kind {
        NotificationKind::Invited => format!("{actor} invited you to {reference}"),
        // The host receives a Changed notification from a guest when that
        // guest's account was deleted.
        NotificationKind::Changed if *actor != event.host => {
            format!("{actor} deleted their account and left the guests of {reference}")
        }
        NotificationKind::Changed => format!("{actor} changed {reference}, now"),
        NotificationKind::Cancelled => format!("{actor} cancelled {reference}"),
        NotificationKind::RemovedFromGuests => {
            format!("{actor} removed you from the guests of {reference}")
        }
        NotificationKind::Responded => {
            let response = event.response_of(&actor.to_ascii_lowercase());
            format!(
                "{actor} {} {reference}",
                super::views::response_verb(response)
            )
        }
    };
    let viewer_day = local(event.start, viewer_zone).date_naive();
    let mut line = format!(
        "{} {action} {}",
        style.tag(&format!("[{}]", kind_tag(notification.kind))),
        event_dated_span(event, viewer_zone)
    );
    if let Some(note) = zone_note(event, viewer_zone, viewer_day) {
        line.push_str(&format!(" ({note})"));
    }
    line
}

// ---------------------------------------------------------------------------
// Users and status

/// Renders usernames in columns, filled top to bottom, within 80 characters.
pub fn render_users(names: &[String]) -> String {
    if names.is_empty() {
        return "No users found.".to_string();
    }
    let name_width = names
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0);
    let column_width = name_width + 2;
    let columns = (USERS_LINE_WIDTH / column_width).clamp(1, names.len());
    let rows = names.len().div_ceil(columns);

    let mut lines = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut line = String::new();
        for name in names.iter().skip(row).step_by(rows) {
            line.push_str(name);
            line.push_str(&padding(name, column_width));
        }
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n")
}

const STATUS_HEADER: [&str; 7] = ["id", "address", "role", "view", "op", "commit", "lag"];

fn status_cells(row: &StatusRow) -> [String; 7] {
    let number = |value: u64| {
        if row.reachable {
            value.to_string()
        } else {
            "-".to_string()
        }
    };
    let role = if row.reachable {
        row.role.clone()
    } else {
        "unreachable".to_string()
    };
    // The id of a node that did not answer is unknown: only its address is
    // configured.
    let id = if row.reachable {
        row.id.to_string()
    } else {
        "-".to_string()
    };
    [
        id,
        row.address.clone(),
        role,
        number(row.view),
        number(row.op),
        number(row.commit),
        number(row.lag),
    ]
}

/// Renders the cluster as each node reported it, one row per node. Numbers
/// are right-aligned, and an unreachable node shows its error after the row.
pub fn render_status(rows: &[StatusRow]) -> String {
    if rows.is_empty() {
        return "No nodes to show.".to_string();
    }
    let cells: Vec<[String; 7]> = rows.iter().map(status_cells).collect();
    let mut widths = STATUS_HEADER.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let header = STATUS_HEADER.map(str::to_string);
    let mut lines = vec![status_line(&header, &widths)];
    for (row, cells) in rows.iter().zip(&cells) {
        let mut line = status_line(cells, &widths);
        if !row.reachable || !row.error.is_empty() {
            line.push_str("  ");
            line.push_str(&row.error);
        }
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n")
}

/// Joins one table row. Columns 0 to 2 (id, address, role) are text and
/// left-aligned, and the rest are numbers and right-aligned.
fn status_line(cells: &[String; 7], widths: &[usize; 7]) -> String {
    let mut parts = Vec::with_capacity(cells.len());
    for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if column < 3 {
            parts.push(format!("{cell}{}", padding(cell, *width)));
        } else {
            parts.push(format!("{}{cell}", padding(cell, *width)));
        }
    }
    parts.join("  ").trim_end().to_string()
}

// ---------------------------------------------------------------------------
// JSON

fn iso_utc(minute: UnixMinute) -> String {
    instant(minute).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn iso_in(minute: UnixMinute, zone: Tz) -> String {
    local(minute, zone).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Converts an event to JSON with these keys:
///
/// - `id`, `version`, `title`, `description`, `host`, `zone` (IANA name)
/// - `visibility`: `"public"` or `"private"`
/// - `guests`: usernames, empty for a public event
/// - `responses`: `{"guest", "response"}` objects of the guests who responded,
///   with `response` one of `accepted`, `tentative`, `declined`, and
///   `occurrence_start_minute` (original start) for an answer to one
///   occurrence of a series
/// - `start_minute`, `end_minute` (exclusive), `duration_minutes`
/// - `start_utc`, `end_utc`: ISO-8601 in UTC, such as `2027-01-08T15:00:00Z`
/// - `start_local`, `end_local`: ISO-8601 with the offset of the event's
///   zone, such as `2027-01-08T10:00:00-05:00`, or in UTC when the zone
///   name does not parse
/// - `timing`: `{"kind", "tzid"}` with `kind` one of `zoned`, `floating`,
///   `all_day` and `tzid` the TZID text kept from an imported file or null.
///   The instants of a floating or all-day event are those of the view
///   passed in, which callers have already moved into the viewer's zone.
pub fn event_json(event: &EventView) -> Value {
    let end = end_minute(event);
    let zone = event_zone(event).unwrap_or(Tz::UTC);
    let (visibility, guests) = match &event.visibility {
        Visibility::Public => ("public", Vec::new()),
        Visibility::Private { guests } => ("private", guests.clone()),
    };
    json!({
        "id": event.id,
        "version": event.version,
        "title": event.title,
        "description": event.description,
        "host": event.host,
        "zone": event.zone,
        "visibility": visibility,
        "guests": guests,
        "responses": super::views::responses_json(event),
        "start_minute": event.start,
        "end_minute": end,
        "duration_minutes": event.duration_minutes,
        "start_utc": iso_utc(event.start),
        "end_utc": iso_utc(end),
        "start_local": iso_in(event.start, zone),
        "end_local": iso_in(end, zone),
        "recurrence": recurrence_json(event),
        "timing": timing_json(&event.timing),
    })
}

/// Converts the timing of an event to JSON: `zoned`, `floating` or
/// `all_day`, with the kept TZID text of a zoned event or null.
fn timing_json(timing: &Timing) -> Value {
    let kind = match timing {
        Timing::Zoned | Timing::Labelled { .. } => "zoned",
        Timing::Floating => "floating",
        Timing::AllDay => "all_day",
    };
    json!({ "kind": kind, "tzid": timing.tzid_label() })
}

/// The rule of a recurring event for JSON output, with `occurrence_start`
/// (the start the rule gives it) in a view of one occurrence; null for a
/// one-off event.
fn recurrence_json(event: &EventView) -> Value {
    let Some(recurrence) = &event.recurrence else {
        return Value::Null;
    };
    let occurrence = recurrence.occurrence;
    json!({
        "rule": recurrence.rule,
        "exceptions": recurrence.exceptions,
        "moved": recurrence.overrides.len(),
        "occurrence_start_minute": occurrence.map(|of| of.original_start),
        "occurrence_start_utc": occurrence.map(|of| iso_utc(of.original_start)),
        "series_start_minute": occurrence.map(|of| of.series_start),
    })
}

/// Converts a busy slot to JSON. A slot has no zone of its own, so its times
/// are in UTC only.
fn slot_json(slot: &BusySlot) -> Value {
    let event = slot
        .event
        .as_ref()
        .map(|event| json!({ "id": event.id, "title": event.title, "host": event.host }));
    json!({
        "participant": slot.participant,
        "start_minute": slot.start,
        "end_minute": slot.end,
        "start_utc": iso_utc(slot.start),
        "end_utc": iso_utc(slot.end),
        "event": event,
    })
}

/// Converts a rejection to JSON. Every rejection has `kind` and `message`
/// (the sentence of its `Display`). The other keys depend on the kind:
///
/// - `conflict`: `slots`, each with `participant`, `start_minute`,
///   `end_minute`, `start_utc`, `end_utc` and `event` (`id`, `title`, `host`,
///   or null for a private event the caller may not see)
/// - `not_found`, `already_exists`: `what`
/// - `forbidden`: `reason`
/// - `invalid`: `field`, `reason`
/// - `stale_version`: `event_id`, `expected`, `current`
/// - `stale_request`: `client_id`, `seq`, `last_seq`
pub fn rejection_json(rejection: &Rejection) -> Value {
    let message = rejection.to_string();
    match rejection {
        Rejection::Conflict { slots } => json!({
            "kind": "conflict",
            "message": message,
            "slots": slots.iter().map(slot_json).collect::<Vec<_>>(),
        }),
        Rejection::NotFound { what } => {
            json!({ "kind": "not_found", "message": message, "what": what })
        }
        Rejection::Forbidden { reason } => {
            json!({ "kind": "forbidden", "message": message, "reason": reason })
        }
        Rejection::Invalid {
            field,
            message: reason,
        } => json!({
            "kind": "invalid",
            "message": message,
            "field": field,
            "reason": reason,
        }),
        Rejection::StaleVersion {
            event_id,
            expected,
            current,
        } => json!({
            "kind": "stale_version",
            "message": message,
            "event_id": event_id,
            "expected": expected,
            "current": current,
        }),
        Rejection::AlreadyExists { what } => {
            json!({ "kind": "already_exists", "message": message, "what": what })
        }
        Rejection::StaleRequest {
            client_id,
            seq,
            last_seq,
        } => json!({
            "kind": "stale_request",
            "message": message,
            "client_id": client_id,
            "seq": seq,
            "last_seq": last_seq,
        }),
    }
}

/// Converts a notification to JSON with these keys:
///
/// - `seq`, `actor`
/// - `kind`: `invited`, `changed`, `cancelled`, `removed_from_guests` or
///   `responded`
/// - `at_ms`: milliseconds since 1970-01-01T00:00Z
/// - `at_utc`: ISO-8601 in UTC with milliseconds, or null when `at_ms` is
///   outside chrono's range
/// - `event`: the event as [`event_json`] converts it
pub fn notification_json(notification: &Notification) -> Value {
    let at_utc = DateTime::from_timestamp_millis(notification.at_ms)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true));
    json!({
        "seq": notification.seq,
        "kind": kind_key(notification.kind),
        "actor": notification.actor,
        "at_ms": notification.at_ms,
        "at_utc": at_utc,
        "event": event_json(&notification.event),
    })
}

/// Converts an import report to JSON with these keys:
///
/// - `command` (`import`), `ok` (false when the import stopped early),
///   `imported`, `skipped`, `stopped` (the error, or null)
/// - `events`: per planned event `uid`, `title`, `outcome` (`imported` or
///   `skipped`), `event_id` or `reason`, and `notes`
pub fn import_json(report: &crate::ical::ImportReport) -> Value {
    use crate::ical::EventOutcome;
    let events: Vec<Value> = report
        .events
        .iter()
        .map(|event| match &event.outcome {
            EventOutcome::Imported { event_id } => json!({
                "uid": event.uid, "title": event.title, "outcome": "imported",
                "event_id": event_id, "notes": event.notes,
            }),
            EventOutcome::Skipped { reason } => json!({
                "uid": event.uid, "title": event.title, "outcome": "skipped",
                "reason": reason, "notes": event.notes,
            }),
        })
        .collect();
    json!({
        "command": "import",
        "ok": report.stopped.is_none(),
        "imported": report.imported_count(),
        "skipped": report.skipped_count(),
        "stopped": report.stopped,
        "events": events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{America::New_York, Asia::Tokyo, Europe::Berlin};

    use crate::calendar::{Calendar, Command, EventBrief, EventDraft, Outcome, Request};

    /// Converts a local wall-clock time to its minute, panicking on a time that
    /// the zone skips or repeats.
    fn at(zone: Tz, date: (i32, u32, u32), hour: u32, min: u32) -> UnixMinute {
        let (year, month, day) = date;
        let time = zone
            .with_ymd_and_hms(year, month, day, hour, min, 0)
            .single()
            .expect("test times are unambiguous");
        time.timestamp() / 60
    }

    fn event(id: u64, title: &str, zone: Tz, start: UnixMinute, minutes: u32) -> EventView {
        EventView {
            id,
            version: 1,
            title: title.to_string(),
            description: String::new(),
            start,
            duration_minutes: minutes,
            zone: zone.name().to_string(),
            host: "alice".to_string(),
            visibility: Visibility::Public,
            recurrence: None,
            responses: Vec::new(),
            timing: Timing::Zoned,
        }
    }

    fn hosted(mut event: EventView, host: &str, guests: Option<&[&str]>) -> EventView {
        event.host = host.to_string();
        event.visibility = match guests {
            None => Visibility::Public,
            Some(guests) => Visibility::Private {
                guests: guests.iter().map(|guest| guest.to_string()).collect(),
            },
        };
        event
    }

    fn slot(
        participant: &str,
        start: UnixMinute,
        end: UnixMinute,
        brief: Option<(u64, &str, &str)>,
    ) -> BusySlot {
        BusySlot {
            participant: participant.to_string(),
            start,
            end,
            event: brief.map(|(id, title, host)| EventBrief {
                id,
                title: title.to_string(),
                host: host.to_string(),
            }),
        }
    }

    fn notification(kind: NotificationKind, actor: &str, event: EventView) -> Notification {
        Notification {
            seq: 7,
            at_ms: 1_799_000_000_123,
            kind,
            event,
            actor: actor.to_string(),
        }
    }

    /// Removes ANSI SGR sequences (`ESC [ ... m`).
    fn strip_escapes(text: &str) -> String {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for inner in chars.by_ref() {
                    if inner == 'm' {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    const JAN_7: (i32, u32, u32) = (2027, 1, 7);
    const JAN_8: (i32, u32, u32) = (2027, 1, 8);

    #[test]
    fn agenda_empty_names_range() {
        let from = at(Berlin, JAN_7, 0, 0);
        let to = at(Berlin, (2027, 1, 14), 0, 0);
        let text = render_agenda(&[], from, to, Berlin, Style::plain());
        assert_eq!(
            text,
            "No events from Thu 2027-01-07 00:00 to Thu 2027-01-14 00:00 (Europe/Berlin)."
        );
    }

    #[test]
    fn agenda_groups_by_day_aligned() {
        let events = [
            hosted(
                event(12, "Lunch", Berlin, at(Berlin, JAN_7, 12, 30), 60),
                "bob",
                None,
            ),
            hosted(
                event(3, "Team sync", Berlin, at(Berlin, JAN_7, 10, 0), 45),
                "alice",
                Some(&["bob", "carol"]),
            ),
            hosted(
                event(4, "Retro", Berlin, at(Berlin, JAN_8, 9, 0), 90),
                "carol",
                Some(&[]),
            ),
        ];
        let text = render_agenda(&events, 0, 0, Berlin, Style::plain());
        let expected = "\
Thu 2027-01-07
  10:00-10:45   #3  Team sync  (host alice, private: bob, carol)
  12:30-13:30  #12  Lunch      (host bob, public)

Fri 2027-01-08
  09:00-10:30   #4  Retro      (host carol, private)";
        assert_eq!(text, expected);
    }

    #[test]
    fn agenda_spanning_midnight_shows_end_date() {
        let events = [
            event(5, "Release night", Berlin, at(Berlin, JAN_8, 23, 0), 150),
            event(6, "Party", Berlin, at(Berlin, JAN_8, 20, 0), 240),
        ];
        let text = render_agenda(&events, 0, 0, Berlin, Style::plain());
        let expected = "\
Fri 2027-01-08
  20:00-24:00                 #6  Party          (host alice, public)
  23:00-Sat 2027-01-09 01:30  #5  Release night  (host alice, public)";
        assert_eq!(text, expected);
    }

    #[test]
    fn agenda_new_york_event_seen_from_berlin() {
        // Between 2027-03-14 (US) and 2027-03-28 (EU) New York is five hours
        // behind Berlin instead of six.
        let events = [
            hosted(
                event(9, "Coffee break", Berlin, at(Berlin, JAN_8, 9, 0), 30),
                "erin",
                None,
            ),
            hosted(
                event(7, "Planning", New_York, at(New_York, JAN_8, 10, 0), 60),
                "dave",
                None,
            ),
            hosted(
                event(
                    8,
                    "Standup",
                    New_York,
                    at(New_York, (2027, 3, 20), 10, 0),
                    15,
                ),
                "dave",
                Some(&["erin"]),
            ),
        ];
        let text = render_agenda(&events, 0, 0, Berlin, Style::plain());
        let expected = "\
Fri 2027-01-08
  09:00-09:30  #9  Coffee break  (host erin, public)
  16:00-17:00  #7  Planning      (host dave, public)         10:00-11:00 America/New_York

Sat 2027-03-20
  15:00-15:15  #8  Standup       (host dave, private: erin)  10:00-10:15 America/New_York";
        assert_eq!(text, expected);
    }

    #[test]
    fn agenda_spring_forward_in_berlin() {
        // Clocks jump from 02:00 to 03:00, so one hour from 01:30 ends at 03:30.
        let start = at(Berlin, (2027, 3, 28), 1, 30);
        let events = [event(2, "Night shift", Berlin, start, 60)];
        let text = render_agenda(&events, 0, 0, Berlin, Style::plain());
        let expected = "\
Sun 2027-03-28
  01:30-03:30  #2  Night shift  (host alice, public)";
        assert_eq!(text, expected);
    }

    #[test]
    fn agenda_colour_adds_escapes_only() {
        let events = [
            event(5, "Release night", Berlin, at(Berlin, JAN_8, 23, 0), 150),
            event(7, "Planning", New_York, at(New_York, JAN_8, 10, 0), 60),
        ];
        let plain = render_agenda(&events, 0, 0, Berlin, Style::plain());
        let colored = render_agenda(&events, 0, 0, Berlin, Style::colored());
        assert!(!plain.contains('\x1b'));
        assert!(
            colored.contains("\x1b[1m"),
            "bold title missing: {colored:?}"
        );
        assert!(
            colored.contains("\x1b[36m#5"),
            "cyan id missing: {colored:?}"
        );
        assert!(colored.contains("\x1b[0m"), "reset missing: {colored:?}");
        assert_eq!(strip_escapes(&colored), plain);
    }

    #[test]
    fn event_private_cross_zone_every_field() {
        let mut team_sync = hosted(
            event(12, "Team sync", New_York, at(New_York, JAN_8, 10, 0), 45),
            "alice",
            Some(&["bob", "carol"]),
        );
        team_sync.version = 3;
        team_sync.description = "Weekly check-in.\nBring numbers.".to_string();
        let text = render_event(&team_sync, Berlin, Style::plain());
        let expected = "\
#12  Team sync
  when         Fri 2027-01-08 16:00-16:45 Europe/Berlin (45m)
  zone         America/New_York: Fri 2027-01-08 10:00-10:45
  host         alice
  visibility   private, guests: bob, carol
  responses    bob needs-action, carol needs-action
  version      3
  description  Weekly check-in.
               Bring numbers.";
        assert_eq!(text, expected);
    }

    #[test]
    fn event_public_same_zone() {
        let town_hall = event(1, "Town hall", Berlin, at(Berlin, (2027, 1, 5), 18, 0), 120);
        let text = render_event(&town_hall, Berlin, Style::plain());
        let expected = "\
#1  Town hall
  when         Tue 2027-01-05 18:00-20:00 Europe/Berlin (2h)
  zone         Europe/Berlin
  host         alice
  visibility   public (everyone is invited)
  version      1
  description  (none)";
        assert_eq!(text, expected);
    }

    #[test]
    fn event_fall_back_keeps_duration() {
        // 02:00-03:00 CEST is followed by 02:00-03:00 CET, so an hour from
        // the first 02:30 ends at the second 02:30.
        let start = at(Berlin, (2027, 10, 31), 0, 30) + 120;
        let night = hosted(event(4, "Backup", Berlin, start, 60), "alice", Some(&[]));
        let text = render_event(&night, Berlin, Style::plain());
        assert!(
            text.contains("when         Sun 2027-10-31 02:30 CEST-02:30 CET Europe/Berlin (1h)"),
            "{text}"
        );
        assert!(
            text.contains("visibility   private (no guests, only the host)"),
            "{text}"
        );
    }

    #[test]
    fn event_colour_marks_id_and_title() {
        let town_hall = event(1, "Town hall", Berlin, at(Berlin, (2027, 1, 5), 18, 0), 120);
        let plain = render_event(&town_hall, Berlin, Style::plain());
        let colored = render_event(&town_hall, Berlin, Style::colored());
        assert!(
            colored.starts_with("\x1b[36m#1\x1b[0m  \x1b[1mTown hall\x1b[0m"),
            "{colored:?}"
        );
        assert_eq!(strip_escapes(&colored), plain);
    }

    #[test]
    fn conflict_on_one_day() {
        let slots = vec![
            slot(
                "bob",
                at(Berlin, JAN_8, 10, 0),
                at(Berlin, JAN_8, 11, 0),
                Some((12, "Standup", "carol")),
            ),
            slot(
                "dave",
                at(Berlin, JAN_8, 10, 30),
                at(Berlin, JAN_8, 11, 30),
                None,
            ),
        ];
        let text = render_rejection(&Rejection::Conflict { slots }, Berlin, Style::plain());
        let expected = "\
The time conflicts with 2 busy slots on Fri 2027-01-08. Choose another time or other guests.
  bob is busy 10:00-11:00 (#12 \"Standup\", host carol)
  dave is busy 10:30-11:30 (private event)";
        assert_eq!(text, expected);
    }

    #[test]
    fn conflict_across_days_dates_each_slot() {
        let slots = vec![
            slot(
                "bob",
                at(Berlin, JAN_8, 23, 0),
                at(Berlin, (2027, 1, 9), 1, 0),
                Some((12, "Deploy \"v2\"", "carol")),
            ),
            slot(
                "bob",
                at(Berlin, (2027, 1, 9), 9, 0),
                at(Berlin, (2027, 1, 9), 10, 0),
                None,
            ),
        ];
        let text = render_rejection(&Rejection::Conflict { slots }, Berlin, Style::plain());
        let expected = "\
The time conflicts with 2 busy slots. Choose another time or other guests.
  bob is busy Fri 2027-01-08 23:00-Sat 2027-01-09 01:00 (#12 \"Deploy \\\"v2\\\"\", host carol)
  bob is busy Sat 2027-01-09 09:00-10:00 (private event)";
        assert_eq!(text, expected);
    }

    #[test]
    fn padding_counts_display_cells() {
        assert_eq!(padding("abc", 6), "   ");
        assert_eq!(padding("日本", 6), "  ");
        assert_eq!(padding("🎉", 3), " ");
        assert_eq!(padding("toolong", 3), "");
    }

    #[test]
    fn span_across_fall_back_names_offsets() {
        // Summer time ends in Berlin at 01:00 UTC on 2027-10-31.
        let start = at(Tz::UTC, (2027, 10, 31), 0, 30);
        assert_eq!(
            clock_span(start, start + 30, Berlin),
            "02:30 CEST-02:00 CET"
        );
        assert_eq!(
            dated_span(start, start + 30, Berlin),
            "Sun 2027-10-31 02:30 CEST-02:00 CET"
        );
        // The second 02:30 differs from the first in its abbreviation.
        assert_eq!(
            clock_span(start + 60, start + 90, Berlin),
            "02:30 CET-03:00 CET"
        );
        // A span clear of the repeated hour keeps the short form.
        assert_eq!(clock_span(start + 150, start + 180, Berlin), "04:00-04:30");
    }

    #[test]
    fn conflict_at_limit_says_at_least() {
        let limit = crate::calendar::limits::MAX_CONFLICT_SLOTS;
        let slots: Vec<BusySlot> = (0..limit)
            .map(|day| {
                let date = (2027, 2, 1 + (day as u32 % 28));
                slot("bob", at(Berlin, date, 9, 0), at(Berlin, date, 10, 0), None)
            })
            .collect();
        let text = render_rejection(&Rejection::Conflict { slots }, Berlin, Style::plain());
        let headline = text.lines().next().expect("a headline");
        assert_eq!(
            headline,
            format!(
                "The time conflicts with at least {limit} busy slots (the first are listed). \
                 Choose another time or other guests."
            )
        );
        assert_eq!(text.lines().count(), limit + 1);
    }

    #[test]
    fn conflict_in_viewer_zone() {
        // 15:00Z is 10:00 in New York and 16:00 in Berlin.
        let start = at(Tz::UTC, JAN_8, 15, 0);
        let slots = vec![slot("bob", start, start + 60, None)];
        let rejection = Rejection::Conflict { slots };
        let in_new_york = render_rejection(&rejection, New_York, Style::plain());
        let in_berlin = render_rejection(&rejection, Berlin, Style::plain());
        assert!(in_new_york.starts_with("The time conflicts with 1 busy slot on Fri"));
        assert!(in_new_york.ends_with("  bob is busy 10:00-11:00 (private event)"));
        assert!(in_berlin.ends_with("  bob is busy 16:00-17:00 (private event)"));
    }

    #[test]
    fn conflict_without_slots() {
        let text = render_rejection(
            &Rejection::Conflict { slots: vec![] },
            Berlin,
            Style::plain(),
        );
        assert_eq!(
            text,
            "The time conflicts with another event. Choose another time or other guests."
        );
    }

    #[test]
    fn rejection_sentences() {
        let cases = [
            (
                Rejection::StaleVersion {
                    event_id: 12,
                    expected: 2,
                    current: 3,
                },
                "Event #12 changed since you read it: you edited version 2, it is now \
                 version 3. Run `show 12` and retry.",
            ),
            (
                Rejection::NotFound {
                    what: "event #12".to_string(),
                },
                "Event #12 not found. Check the name or id and try again.",
            ),
            (
                Rejection::Forbidden {
                    reason: "only the host alice can edit event #3".to_string(),
                },
                "Not allowed: only the host alice can edit event #3.",
            ),
            (
                Rejection::Invalid {
                    field: "title".to_string(),
                    message: "must not be empty.".to_string(),
                },
                "Invalid title: must not be empty.",
            ),
            (
                Rejection::AlreadyExists {
                    what: "user \"bob\"".to_string(),
                },
                "User \"bob\" already exists. Choose another.",
            ),
            (
                Rejection::StaleRequest {
                    client_id: 9,
                    seq: 4,
                    last_seq: 5,
                },
                "Request 4 of client 9 was not applied because the client's last applied \
                 request is 5. Run the command again as a new request.",
            ),
        ];
        for (rejection, expected) in cases {
            assert_eq!(
                render_rejection(&rejection, Berlin, Style::plain()),
                expected
            );
        }
    }

    #[test]
    fn rejection_colour_is_red() {
        let rejection = Rejection::NotFound {
            what: "event #12".to_string(),
        };
        let text = render_rejection(&rejection, Berlin, Style::colored());
        assert!(
            text.starts_with("\x1b[1m\x1b[31m"),
            "bold red missing: {text:?}"
        );
        assert!(text.ends_with("\x1b[0m"), "{text:?}");
    }

    #[test]
    fn notification_each_kind() {
        let team_sync = event(3, "Team sync", Berlin, at(Berlin, JAN_8, 10, 0), 45);
        let cases = [
            (
                NotificationKind::Invited,
                "alice",
                "[invited] alice invited you to #3 \"Team sync\" Fri 2027-01-08 10:00-10:45",
            ),
            (
                NotificationKind::Changed,
                "alice",
                "[changed] alice changed #3 \"Team sync\", now Fri 2027-01-08 10:00-10:45",
            ),
            (
                NotificationKind::Changed,
                "bob",
                "[changed] bob deleted their account and left the guests of #3 \"Team sync\" \
                 Fri 2027-01-08 10:00-10:45",
            ),
            (
                NotificationKind::Cancelled,
                "alice",
                "[cancelled] alice cancelled #3 \"Team sync\" Fri 2027-01-08 10:00-10:45",
            ),
            (
                NotificationKind::RemovedFromGuests,
                "alice",
                "[removed] alice removed you from the guests of #3 \"Team sync\" \
                 Fri 2027-01-08 10:00-10:45",
            ),
        ];
        for (kind, actor, expected) in cases {
            let note = notification(kind, actor, team_sync.clone());
            assert_eq!(render_notification(&note, Berlin, Style::plain()), expected);
        }
    }

    #[test]
    fn notification_other_zone_and_day() {
        let sync = hosted(
            event(9, "Sync", Tokyo, at(Tokyo, (2027, 1, 9), 2, 0), 60),
            "kenji",
            None,
        );
        let note = notification(NotificationKind::Invited, "kenji", sync);
        assert_eq!(
            render_notification(&note, Berlin, Style::plain()),
            "[invited] kenji invited you to #9 \"Sync\" Fri 2027-01-08 18:00-19:00 \
             (Sat 2027-01-09 02:00-03:00 Asia/Tokyo)"
        );
    }

    #[test]
    fn notification_colour_marks_tag() {
        let team_sync = event(3, "Team sync", Berlin, at(Berlin, JAN_8, 10, 0), 45);
        let note = notification(NotificationKind::Invited, "alice", team_sync);
        let plain = render_notification(&note, Berlin, Style::plain());
        let colored = render_notification(&note, Berlin, Style::colored());
        assert!(colored.contains("[invited]"));
        assert!(colored.starts_with('\x1b'), "{colored:?}");
        assert_eq!(strip_escapes(&colored), plain);
    }

    #[test]
    fn users_in_columns() {
        let names: Vec<String> = ["alice", "bob", "carol", "dave", "erin-with-a-long-name-24"]
            .iter()
            .map(|name| name.to_string())
            .collect();
        let expected = format!(
            "{:<26}{:<26}{}\n{:<26}{}",
            "alice", "carol", "erin-with-a-long-name-24", "bob", "dave"
        );
        assert_eq!(render_users(&names), expected);
    }

    #[test]
    fn users_few_on_one_line() {
        let names = vec!["alice".to_string(), "bob".to_string(), "carol".to_string()];
        assert_eq!(render_users(&names), "alice  bob    carol");
    }

    #[test]
    fn users_empty() {
        assert_eq!(render_users(&[]), "No users found.");
    }

    fn status_row(id: u8, role: &str, op: u64, lag: u64) -> StatusRow {
        StatusRow {
            id,
            address: format!("127.0.0.1:700{}", id + 1),
            role: role.to_string(),
            view: 4,
            op,
            commit: op,
            lag,
            reachable: true,
            error: String::new(),
        }
    }

    #[test]
    fn status_table_aligned() {
        let mut down = status_row(2, "backup", 0, 0);
        down.reachable = false;
        down.error = "connection refused".to_string();
        let rows = [
            status_row(0, "primary", 120, 0),
            status_row(1, "backup", 118, 2),
            down,
        ];
        let expected = "\
id  address         role         view   op  commit  lag
0   127.0.0.1:7001  primary         4  120     120    0
1   127.0.0.1:7002  backup          4  118     118    2
-   127.0.0.1:7003  unreachable     -    -       -    -  connection refused";
        assert_eq!(render_status(&rows), expected);
    }

    #[test]
    fn status_empty() {
        assert_eq!(render_status(&[]), "No nodes to show.");
    }

    #[test]
    fn durations_as_typed() {
        let cases = [
            (1, "1m"),
            (45, "45m"),
            (60, "1h"),
            (90, "1h30m"),
            (1440, "1d"),
            (1590, "1d2h30m"),
            (20160, "14d"),
        ];
        for (minutes, expected) in cases {
            assert_eq!(format_duration(minutes), expected, "{minutes} minutes");
        }
    }

    #[test]
    fn event_json_times_in_utc_and_zone() {
        let mut planning = hosted(
            event(7, "Planning", New_York, at(New_York, JAN_8, 10, 0), 90),
            "dave",
            Some(&["erin"]),
        );
        planning.version = 2;
        planning.description = "Q1".to_string();
        let start = at(Tz::UTC, JAN_8, 15, 0);
        let expected = json!({
            "id": 7,
            "version": 2,
            "title": "Planning",
            "description": "Q1",
            "host": "dave",
            "zone": "America/New_York",
            "visibility": "private",
            "guests": ["erin"],
            "responses": [],
            "start_minute": start,
            "end_minute": start + 90,
            "duration_minutes": 90,
            "start_utc": "2027-01-08T15:00:00Z",
            "end_utc": "2027-01-08T16:30:00Z",
            "start_local": "2027-01-08T10:00:00-05:00",
            "end_local": "2027-01-08T11:30:00-05:00",
            "recurrence": null,
            "timing": { "kind": "zoned", "tzid": null },
        });
        assert_eq!(event_json(&planning), expected);
    }

    #[test]
    fn all_day_shown_on_viewer_dates() {
        // Three days from Fri 2027-01-08, scheduled in Tokyo.
        let mut fair = event(3, "Fair", Tokyo, at(Tokyo, JAN_8, 0, 0), 3 * 24 * 60);
        fair.timing = Timing::AllDay;
        let agenda = render_agenda(
            std::slice::from_ref(&fair),
            at(New_York, JAN_8, 0, 0),
            at(New_York, (2027, 1, 11), 0, 0),
            New_York,
            Style::plain(),
        );
        assert!(agenda.starts_with("Fri 2027-01-08\n"), "{agenda}");
        assert!(
            agenda.contains("  all day to Sun 2027-01-10  #3  Fair"),
            "{agenda}"
        );
        assert!(!agenda.contains("Tokyo"), "{agenda}");
        let shown = render_event(&fair, New_York, Style::plain());
        assert!(
            shown.contains("when         Fri 2027-01-08 all day to Sun 2027-01-10 (3 days)"),
            "{shown}"
        );
        assert!(
            shown.contains("all day (the same dates in every zone)"),
            "{shown}"
        );
        assert_eq!(event_json(&fair)["timing"]["kind"], "all_day");
    }

    #[test]
    fn floating_shown_at_wall_clock() {
        let mut alarm = event(4, "Alarm", Tokyo, at(Tokyo, JAN_8, 7, 0), 15);
        alarm.timing = Timing::Floating;
        let shown = render_event(&alarm, Berlin, Style::plain());
        assert!(
            shown.contains("Fri 2027-01-08 07:00-07:15 Europe/Berlin (15m)"),
            "{shown}"
        );
        assert!(
            shown.contains("floating (the same wall-clock time"),
            "{shown}"
        );
        let agenda = render_agenda(
            std::slice::from_ref(&alarm),
            at(Berlin, JAN_8, 0, 0),
            at(Berlin, (2027, 1, 9), 0, 0),
            Berlin,
            Style::plain(),
        );
        assert!(agenda.contains("  07:00-07:15  #4  Alarm"), "{agenda}");
        assert!(!agenda.contains("Tokyo"), "{agenda}");
    }

    #[test]
    fn series_lines_list_rule_and_next_occurrences() {
        let mut standup = event(3, "Standup", Tz::UTC, at(Tz::UTC, JAN_8, 9, 15), 15);
        standup.recurrence = Some(Box::new(crate::calendar::Recurrence {
            rule: "FREQ=DAILY;COUNT=3".into(),
            overrides: vec![crate::calendar::OccurrenceOverride {
                original_start: at(Tz::UTC, JAN_8, 9, 15) + 24 * 60,
                start: at(Tz::UTC, JAN_8, 10, 0) + 24 * 60,
                duration_minutes: 15,
                title: None,
                description: None,
            }],
            ..Default::default()
        }));
        let text = render_series(&standup, Tz::UTC, at(Tz::UTC, JAN_8, 0, 0), Style::plain());
        let expected = [
            "  repeats      every day, 3 times, 1 moved (UTC)",
            "  next         Fri 2027-01-08 09:15-09:30",
            "               Sat 2027-01-09 10:00-10:15 (moved from Sat 2027-01-09 09:15)",
            "               Sun 2027-01-10 09:15-09:30",
        ];
        assert_eq!(text, expected.join("\n"));
        let json = event_json(&standup);
        assert_eq!(json["recurrence"]["rule"], "FREQ=DAILY;COUNT=3");
        assert_eq!(json["recurrence"]["moved"], 1);
        let after = render_series(
            &standup,
            Tz::UTC,
            at(Tz::UTC, JAN_8, 0, 0) + 7 * 24 * 60,
            Style::plain(),
        );
        assert!(after.ends_with("(no more occurrences)"), "{after}");
    }

    #[test]
    fn floating_series_rings_at_local_time() {
        // Scheduled in Tokyo. Berlin changes to CEST on 2027-03-28.
        let mut alarm = event(6, "Alarm", Tokyo, at(Tokyo, (2027, 3, 27), 7, 0), 15);
        alarm.timing = Timing::Floating;
        alarm.recurrence = Some(Box::new(crate::calendar::Recurrence {
            rule: "FREQ=DAILY;COUNT=3".into(),
            ..Default::default()
        }));
        let now = at(Berlin, (2027, 3, 26), 0, 0);
        let text = render_series(&alarm, Berlin, now, Style::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1], "  next         Sat 2027-03-27 07:00-07:15",
            "{text}"
        );
        assert_eq!(
            lines[2], "               Sun 2027-03-28 07:00-07:15",
            "{text}"
        );
        assert_eq!(
            lines[3], "               Mon 2027-03-29 07:00-07:15",
            "{text}"
        );
    }

    #[test]
    fn event_json_public_across_dst() {
        // The event starts in CET and ends in CEST.
        let night = event(
            2,
            "Night shift",
            Berlin,
            at(Berlin, (2027, 3, 28), 1, 30),
            60,
        );
        let value = event_json(&night);
        assert_eq!(value["visibility"], "public");
        assert_eq!(value["guests"], json!([]));
        assert_eq!(value["start_local"], "2027-03-28T01:30:00+01:00");
        assert_eq!(value["end_local"], "2027-03-28T03:30:00+02:00");
        assert_eq!(value["end_utc"], "2027-03-28T01:30:00Z");
    }

    #[test]
    fn rejection_json_conflict_redacts() {
        let start = at(Tz::UTC, JAN_8, 9, 0);
        let slots = vec![
            slot("bob", start, start + 60, Some((12, "Standup", "carol"))),
            slot("dave", start, start + 30, None),
        ];
        let rejection = Rejection::Conflict { slots };
        let value = rejection_json(&rejection);
        assert_eq!(value["kind"], "conflict");
        assert_eq!(value["message"], rejection.to_string());
        assert_eq!(
            value["slots"][0],
            json!({
                "participant": "bob",
                "start_minute": start,
                "end_minute": start + 60,
                "start_utc": "2027-01-08T09:00:00Z",
                "end_utc": "2027-01-08T10:00:00Z",
                "event": { "id": 12, "title": "Standup", "host": "carol" },
            })
        );
        assert_eq!(value["slots"][1]["event"], Value::Null);
    }

    #[test]
    fn rejection_json_fields_per_kind() {
        let stale = Rejection::StaleVersion {
            event_id: 12,
            expected: 2,
            current: 3,
        };
        assert_eq!(
            rejection_json(&stale),
            json!({
                "kind": "stale_version",
                "message": stale.to_string(),
                "event_id": 12,
                "expected": 2,
                "current": 3,
            })
        );

        let invalid = Rejection::Invalid {
            field: "title".to_string(),
            message: "empty".to_string(),
        };
        let value = rejection_json(&invalid);
        assert_eq!(value["kind"], "invalid");
        assert_eq!(value["field"], "title");
        assert_eq!(value["reason"], "empty");

        let kinds = [
            (
                Rejection::NotFound {
                    what: "x".to_string(),
                },
                "not_found",
                "what",
            ),
            (
                Rejection::Forbidden {
                    reason: "x".to_string(),
                },
                "forbidden",
                "reason",
            ),
            (
                Rejection::AlreadyExists {
                    what: "x".to_string(),
                },
                "already_exists",
                "what",
            ),
        ];
        for (rejection, kind, key) in kinds {
            let value = rejection_json(&rejection);
            assert_eq!(value["kind"], kind);
            assert_eq!(value[key], "x", "{kind}");
            assert_eq!(value["message"], rejection.to_string(), "{kind}");
        }

        let request = Rejection::StaleRequest {
            client_id: 9,
            seq: 4,
            last_seq: 5,
        };
        let value = rejection_json(&request);
        assert_eq!(value["kind"], "stale_request");
        assert_eq!(value["client_id"], 9);
        assert_eq!(value["seq"], 4);
        assert_eq!(value["last_seq"], 5);
    }

    #[test]
    fn notification_json_keys() {
        let team_sync = event(3, "Team sync", Berlin, at(Berlin, JAN_8, 10, 0), 45);
        let note = notification(
            NotificationKind::RemovedFromGuests,
            "alice",
            team_sync.clone(),
        );
        let value = notification_json(&note);
        assert_eq!(value["seq"], 7);
        assert_eq!(value["kind"], "removed_from_guests");
        assert_eq!(value["actor"], "alice");
        assert_eq!(value["at_ms"], 1_799_000_000_123_i64);
        assert_eq!(value["at_utc"], "2027-01-03T18:13:20.123Z");
        assert_eq!(value["event"], event_json(&team_sync));
    }

    fn apply(calendar: &mut Calendar, seq: u64, command: Command) -> Outcome {
        let request = Request {
            client_id: 1,
            seq,
            now_ms: 0,
            command,
        };
        calendar.apply(&request)
    }

    fn private_draft(title: &str, start: UnixMinute, guests: &[&str]) -> EventDraft {
        EventDraft {
            title: title.to_string(),
            description: String::new(),
            start,
            zone: "Europe/Berlin".to_string(),
            duration_minutes: 60,
            visibility: Visibility::Private {
                guests: guests.iter().map(|guest| guest.to_string()).collect(),
            },
            recurrence: None,
            timing: Timing::Zoned,
        }
    }

    #[test]
    fn calendar_outcomes_render() {
        let mut calendar = Calendar::new();
        for (seq, name) in (1..).zip(["alice", "bob", "carol"]) {
            let register = Command::Register {
                username: name.to_string(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
            };
            assert!(matches!(
                apply(&mut calendar, seq, register),
                Outcome::Done(_)
            ));
        }
        let standup = Command::Schedule {
            caller: "carol".to_string(),
            draft: private_draft("Standup", at(Berlin, JAN_8, 10, 0), &["bob"]),
        };
        assert!(matches!(apply(&mut calendar, 4, standup), Outcome::Done(_)));

        let clash = Command::Schedule {
            caller: "alice".to_string(),
            draft: private_draft("Review", at(Berlin, JAN_8, 10, 30), &["bob"]),
        };
        let Outcome::Rejected(rejection) = apply(&mut calendar, 5, clash) else {
            panic!("an overlapping event for bob was accepted");
        };
        assert_eq!(
            render_rejection(&rejection, Berlin, Style::plain()),
            "The time conflicts with 1 busy slot on Fri 2027-01-08. Choose another time \
             or other guests.\n  bob is busy 10:00-11:00 (private event)"
        );

        let from = at(Berlin, JAN_8, 0, 0);
        let agenda = calendar.agenda("bob", from, from + 24 * 60);
        assert_eq!(
            render_agenda(&agenda, from, from + 24 * 60, Berlin, Style::plain()),
            "Fri 2027-01-08\n  10:00-11:00  #1  Standup  (host carol, private: bob)"
        );
    }
}
