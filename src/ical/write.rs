//! Writing events as an iCalendar file.
//!
//! The lines are written here rather than through the `icalendar` crate's
//! builder, because its `Event::new` stamps the host clock and a random UID,
//! and its line folder (0.17.17) tests for whitespace at a character index taken
//! from a byte offset. [`fold_line`] is the one folding rule: at most 75
//! octets per line, split only between characters, CRLF line ends.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

use crate::calendar::recurrence::Expander;
use crate::calendar::timing::all_day_count;
use crate::calendar::{EventView, Timing, UnixMinute, Visibility};
use crate::ical::zones::MATCH_YEARS;

/// Most octets of one physical line, without its CRLF (RFC 5545 section 3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// Product identifier written into every exported calendar.
pub const PRODUCT_ID: &str = "-//Almanac//Almanac calendar//EN";

/// Returns the UID an event is exported with; it depends only on the event id,
/// so exporting the same event twice gives the same UID.
pub fn event_uid(event: &EventView) -> String {
    format!("almanac-event-{}@almanac.invalid", event.id)
}

/// Renders series and one-off events (not occurrence views) as one
/// calendar. Each zone's VTIMEZONE covers its events' span, up to the end
/// of `range` for a series without an end. `stamp` becomes each event's
/// DTSTAMP.
pub fn export_calendar(
    events: &[EventView],
    range: (UnixMinute, UnixMinute),
    stamp: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    push_line(&mut out, "BEGIN:VCALENDAR");
    push_line(&mut out, "VERSION:2.0");
    push_line(&mut out, &format!("PRODID:{PRODUCT_ID}"));
    push_line(&mut out, "CALSCALE:GREGORIAN");
    for (tzid, (zone, span)) in zone_spans(events, range) {
        write_timezone(&mut out, tzid, zone, span);
    }
    let stamp = stamp.format("%Y%m%dT%H%M%SZ").to_string();
    for event in events {
        write_event(&mut out, event, &stamp);
    }
    push_line(&mut out, "END:VCALENDAR");
    out
}

/// Folds one content line: the first line carries up to 75 octets, each
/// continuation line a space and up to 74 more, and no split falls inside a
/// UTF-8 sequence. Lines are joined with CRLF; no CRLF is added at the end.
pub fn fold_line(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + line.len() / 25);
    let mut rest = line;
    let mut limit = MAX_LINE_OCTETS;
    loop {
        if rest.len() <= limit {
            folded.push_str(rest);
            return folded;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        folded.push_str(&rest[..cut]);
        folded.push_str("\r\n ");
        rest = &rest[cut..];
        limit = MAX_LINE_OCTETS - 1;
    }
}

/// Escapes a TEXT value: backslash, semicolon, comma and line breaks.
pub fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            other => escaped.push(other),
        }
    }
    escaped
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(&fold_line(line));
    out.push_str("\r\n");
}

/// Writes a parameter value, quoted when it contains `:`, `;` or `,`.
/// Double quotes cannot appear in a parameter value and are dropped.
fn param_value(value: &str) -> String {
    let value: String = value.chars().filter(|&c| c != '"').collect();
    if value.contains([':', ';', ',']) {
        format!("\"{value}\"")
    } else {
        value
    }
}

fn zone_of(event: &EventView) -> Tz {
    event.zone.parse().unwrap_or(Tz::UTC)
}

/// Form in which one event's times are written, chosen by its timing.
#[derive(Clone, Copy)]
enum TimeForm<'a> {
    /// A UTC DATE-TIME with `Z`.
    Utc,
    /// A local DATE-TIME with this TZID text, which names a VTIMEZONE of
    /// the file.
    Zoned(Tz, &'a str),
    /// A local DATE-TIME without TZID, read in the stored zone.
    Floating(Tz),
    /// A DATE (`VALUE=DATE`), the local date in the stored zone.
    Date(Tz),
}

impl TimeForm<'_> {
    fn of(event: &EventView) -> TimeForm<'_> {
        let zone = zone_of(event);
        match &event.timing {
            Timing::Floating => TimeForm::Floating(zone),
            Timing::AllDay => TimeForm::Date(zone),
            Timing::Labelled { tzid } => TimeForm::Zoned(zone, tzid),
            Timing::Zoned if zone == Tz::UTC => TimeForm::Utc,
            Timing::Zoned => TimeForm::Zoned(zone, zone.name()),
        }
    }
}

/// Formats a minute as a DATE-TIME or DATE property in the event's form.
fn time_property(name: &str, form: TimeForm, minute: UnixMinute) -> String {
    let utc = utc_of(minute);
    match form {
        TimeForm::Utc => format!("{name}:{}", utc.format("%Y%m%dT%H%M%SZ")),
        TimeForm::Zoned(zone, tzid) => format!(
            "{name};TZID={}:{}",
            param_value(tzid),
            utc.with_timezone(&zone)
                .naive_local()
                .format("%Y%m%dT%H%M%S")
        ),
        TimeForm::Floating(zone) => format!(
            "{name}:{}",
            utc.with_timezone(&zone)
                .naive_local()
                .format("%Y%m%dT%H%M%S")
        ),
        TimeForm::Date(zone) => format!(
            "{name};VALUE=DATE:{}",
            utc.with_timezone(&zone).date_naive().format("%Y%m%d")
        ),
    }
}

/// Formats the DTEND of an event or moved occurrence that starts at `start`
/// and lasts `duration_minutes`. An all-day end is the date after the last
/// day, counted in whole days, because a DST change inside the span makes
/// the minutes no exact multiple of a day.
fn end_property(form: TimeForm, start: UnixMinute, duration_minutes: u32) -> String {
    let TimeForm::Date(zone) = form else {
        return time_property("DTEND", form, start + i64::from(duration_minutes));
    };
    let first = utc_of(start).with_timezone(&zone).date_naive();
    let after = first + chrono::Days::new(u64::from(all_day_count(duration_minutes)));
    format!("DTEND;VALUE=DATE:{}", after.format("%Y%m%d"))
}

fn utc_of(minute: UnixMinute) -> DateTime<Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn write_event(out: &mut String, event: &EventView, stamp: &str) {
    let form = TimeForm::of(event);
    let uid = event_uid(event);
    push_line(out, "BEGIN:VEVENT");
    push_line(out, &format!("UID:{uid}"));
    push_line(out, &format!("DTSTAMP:{stamp}"));
    push_line(out, &format!("SUMMARY:{}", escape_text(&event.title)));
    if !event.description.is_empty() {
        push_line(
            out,
            &format!("DESCRIPTION:{}", escape_text(&event.description)),
        );
    }
    push_line(out, &time_property("DTSTART", form, event.start));
    push_line(
        out,
        &end_property(form, event.start, event.duration_minutes),
    );
    push_line(
        out,
        &format!("SEQUENCE:{}", event.version.saturating_sub(1)),
    );
    let class = if event.is_public() {
        "PUBLIC"
    } else {
        "PRIVATE"
    };
    push_line(out, &format!("CLASS:{class}"));
    if let Visibility::Private { guests } = &event.visibility {
        for guest in guests {
            push_line(
                out,
                &format!(
                    "ATTENDEE;CN={}:urn:almanac:user:{guest}",
                    param_value(guest)
                ),
            );
        }
    }
    if let Some(recurrence) = &event.recurrence {
        push_line(
            out,
            &format!("RRULE:{}", export_rule(&recurrence.rule, form)),
        );
        for &exception in &recurrence.exceptions {
            push_line(out, &time_property("EXDATE", form, exception));
        }
    }
    push_line(out, "END:VEVENT");

    let Some(recurrence) = &event.recurrence else {
        return;
    };
    for moved in &recurrence.overrides {
        push_line(out, "BEGIN:VEVENT");
        push_line(out, &format!("UID:{uid}"));
        push_line(out, &format!("DTSTAMP:{stamp}"));
        push_line(
            out,
            &time_property("RECURRENCE-ID", form, moved.original_start),
        );
        let title = moved.title.as_deref().unwrap_or(&event.title);
        push_line(out, &format!("SUMMARY:{}", escape_text(title)));
        let description = moved.description.as_deref().unwrap_or(&event.description);
        if !description.is_empty() {
            push_line(out, &format!("DESCRIPTION:{}", escape_text(description)));
        }
        push_line(out, &time_property("DTSTART", form, moved.start));
        push_line(
            out,
            &end_property(form, moved.start, moved.duration_minutes),
        );
        push_line(out, "END:VEVENT");
    }
}

/// Writes a rule with its UNTIL in the form RFC 5545 requires for the
/// DTSTART: a DATE for a DATE start, a local date-time for a floating start
/// and a UTC date-time otherwise. Almanac stores UNTIL as the last local
/// date or as a UTC date-time, and the last second of that date in the
/// event's zone is the UNTIL date-time.
fn export_rule(rule: &str, form: TimeForm) -> String {
    let parts: Vec<String> = rule
        .split(';')
        .map(|part| match part.strip_prefix("UNTIL=") {
            Some(value) => format!("UNTIL={}", export_until(value, form)),
            None => part.to_string(),
        })
        .collect();
    parts.join(";")
}

fn export_until(value: &str, form: TimeForm) -> String {
    let zone = match form {
        TimeForm::Utc => Tz::UTC,
        TimeForm::Zoned(zone, _) | TimeForm::Floating(zone) | TimeForm::Date(zone) => zone,
    };
    let last_second = match chrono::NaiveDate::parse_from_str(value, "%Y%m%d") {
        Ok(date) => {
            if matches!(form, TimeForm::Date(_)) {
                return value.to_string();
            }
            let next_midnight = date
                .succ_opt()
                .unwrap_or(date)
                .and_time(chrono::NaiveTime::MIN);
            let last_minute = crate::calendar::recurrence::resolve_local(zone, next_midnight) - 1;
            utc_of(last_minute) + chrono::Duration::seconds(59)
        }
        Err(_) => match NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ") {
            Ok(utc) => utc.and_utc(),
            // The state accepts only these two forms, so this keeps a value
            // it never stores unchanged.
            Err(_) => return value.to_string(),
        },
    };
    let local = last_second.with_timezone(&zone).naive_local();
    match form {
        TimeForm::Date(_) => local.format("%Y%m%d").to_string(),
        TimeForm::Floating(_) => local.format("%Y%m%dT%H%M%S").to_string(),
        TimeForm::Utc | TimeForm::Zoned(..) => last_second.format("%Y%m%dT%H%M%SZ").to_string(),
    }
}

/// Returns, per TZID text of a zoned event other than UTC, its zone and the
/// span of time its VTIMEZONE must cover: from the first start to the last
/// end of a series that ends, or to the end of the exported range for one
/// that does not. Floating and all-day events need no VTIMEZONE.
fn zone_spans(
    events: &[EventView],
    range: (UnixMinute, UnixMinute),
) -> BTreeMap<&str, (Tz, (UnixMinute, UnixMinute))> {
    let mut spans: BTreeMap<&str, (Tz, (UnixMinute, UnixMinute))> = BTreeMap::new();
    for event in events {
        let TimeForm::Zoned(zone, tzid) = TimeForm::of(event) else {
            continue;
        };
        let mut last = event.end();
        if let Ok(expander) = Expander::new(event) {
            match expander.all_occurrences() {
                Some(all) => {
                    last = all.iter().map(|o| o.end).max().unwrap_or(last);
                }
                None => last = last.max(range.1),
            }
        }
        let (_, span) = spans.entry(tzid).or_insert((zone, (event.start, last)));
        span.0 = span.0.min(event.start);
        span.1 = span.1.max(last);
        if tzid != zone.name() {
            // Only the VTIMEZONE tells an importer what a kept TZID text
            // means, and importers such as this crate's match it against
            // IANA zones over `MATCH_YEARS`, so it covers those years too.
            span.0 = span.0.min(year_start_minute(*MATCH_YEARS.start()));
            span.1 = span.1.max(year_start_minute(*MATCH_YEARS.end() + 1));
        }
    }
    spans
}

fn year_start_minute(year: i32) -> UnixMinute {
    let date = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() / 60
}

fn offset_seconds(zone: Tz, instant: i64) -> i32 {
    zone.offset_from_utc_datetime(&utc_of(instant.div_euclid(60)).naive_utc())
        .fix()
        .local_minus_utc()
}

/// Lists the instants (seconds) in `[from, to]` at which the zone's offset
/// changes. Offsets are sampled daily and each change is narrowed to the
/// minute by bisection.
///
/// NOTE: two offset changes less than a day apart are seen as one change
/// or none.
fn transitions(zone: Tz, from: i64, to: i64) -> Vec<i64> {
    const DAY: i64 = 86_400;
    let offset = |instant: i64| offset_seconds(zone, instant);
    let mut found = Vec::new();
    let mut at = from;
    while at < to {
        let next = (at + DAY).min(to);
        if offset(at) != offset(next) {
            let (mut low, mut high) = (at, next);
            while high - low > 60 {
                let middle = low + (high - low) / 2 / 60 * 60;
                let middle = if middle == low { low + 60 } else { middle };
                if offset(middle) == offset(low) {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            found.push(high);
        }
        at = next;
    }
    found
}

fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let total = seconds.unsigned_abs();
    let (hours, minutes, rest) = (total / 3600, total % 3600 / 60, total % 60);
    if rest == 0 {
        format!("{sign}{hours:02}{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}{rest:02}")
    }
}

/// Writes one VTIMEZONE with an observance at the span's start and one per
/// offset change inside the span, each a single onset without RRULE.
fn write_timezone(out: &mut String, tzid: &str, zone: Tz, span: (UnixMinute, UnixMinute)) {
    // Start a day early and end a day late, so that events at the span's
    // edges are covered in any offset.
    let from = span.0.saturating_mul(60) - 86_400;
    let to = span.1.saturating_mul(60) + 86_400;
    push_line(out, "BEGIN:VTIMEZONE");
    push_line(out, &format!("TZID:{tzid}"));
    let first = offset_seconds(zone, from);
    write_observance(out, zone, from, first, first);
    let mut previous = first;
    for change in transitions(zone, from, to) {
        let next = offset_seconds(zone, change);
        write_observance(out, zone, change, previous, next);
        previous = next;
    }
    push_line(out, "END:VTIMEZONE");
}

fn write_observance(out: &mut String, zone: Tz, onset: i64, from: i32, to: i32) {
    let after = zone.offset_from_utc_datetime(&utc_of(onset.div_euclid(60)).naive_utc());
    let kind = if after.dst_offset().num_seconds() != 0 {
        "DAYLIGHT"
    } else {
        "STANDARD"
    };
    let local: NaiveDateTime =
        utc_of(onset.div_euclid(60)).naive_utc() + chrono::Duration::seconds(i64::from(from));
    push_line(out, &format!("BEGIN:{kind}"));
    push_line(out, &format!("DTSTART:{}", local.format("%Y%m%dT%H%M%S")));
    push_line(out, &format!("TZOFFSETFROM:{}", format_offset(from)));
    push_line(out, &format!("TZOFFSETTO:{}", format_offset(to)));
    if let Some(name) = after.abbreviation() {
        push_line(out, &format!("TZNAME:{}", escape_text(name)));
    }
    push_line(out, &format!("END:{kind}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Recurrence, Timing};

    #[test]
    fn fold_line_leaves_short_lines() {
        assert_eq!(fold_line("SUMMARY:short"), "SUMMARY:short");
        let exact = "x".repeat(MAX_LINE_OCTETS);
        assert_eq!(fold_line(&exact), exact);
    }

    #[test]
    fn fold_line_splits_at_75_octets() {
        let line = "x".repeat(200);
        let folded = fold_line(&line);
        let lines: Vec<&str> = folded.split("\r\n").collect();
        assert_eq!(lines[0].len(), 75);
        assert_eq!(lines[1].len(), 75);
        assert!(lines[1].starts_with(' '));
        assert_eq!(folded.replace("\r\n ", ""), line);
    }

    #[test]
    fn fold_line_never_splits_characters() {
        // Every width of character at every position around the limit.
        for prefix in 60..80 {
            for sample in ["é", "—", "🎒"] {
                let line = format!("{}{}", "x".repeat(prefix), sample.repeat(30));
                let folded = fold_line(&line);
                for physical in folded.split("\r\n") {
                    assert!(physical.len() <= MAX_LINE_OCTETS, "{physical:?}");
                }
                assert_eq!(folded.replace("\r\n ", ""), line);
            }
        }
    }

    #[test]
    fn escape_text_escapes_specials() {
        assert_eq!(escape_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }

    #[test]
    fn param_value_quotes_when_needed() {
        assert_eq!(param_value("Europe/Berlin"), "Europe/Berlin");
        assert_eq!(param_value("a, b"), "\"a, b\"");
        assert_eq!(param_value("say \"hi\""), "say hi");
    }

    #[test]
    fn export_rule_writes_until_in_utc() {
        let berlin = TimeForm::Zoned(chrono_tz::Europe::Berlin, "Europe/Berlin");
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20270630", berlin),
            "FREQ=DAILY;UNTIL=20270630T215959Z"
        );
        assert_eq!(
            export_rule("FREQ=WEEKLY;UNTIL=20240315T130000Z", berlin),
            "FREQ=WEEKLY;UNTIL=20240315T130000Z"
        );
        assert_eq!(
            export_rule("FREQ=DAILY;COUNT=3", TimeForm::Utc),
            "FREQ=DAILY;COUNT=3"
        );
    }

    #[test]
    fn export_rule_until_matches_start_form() {
        let berlin = chrono_tz::Europe::Berlin;
        let date = TimeForm::Date(berlin);
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20250904", date),
            "FREQ=DAILY;UNTIL=20250904"
        );
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20250903T215959Z", date),
            "FREQ=DAILY;UNTIL=20250903"
        );
        let floating = TimeForm::Floating(berlin);
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20250330", floating),
            "FREQ=DAILY;UNTIL=20250330T235959"
        );
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20250330T050000Z", floating),
            "FREQ=DAILY;UNTIL=20250330T070000"
        );
    }

    #[test]
    fn time_forms_follow_timing() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2025-09-01 00:00 in Berlin is 2025-08-31 22:00Z.
        let minute = 29_276_640 + 22 * 60;
        assert_eq!(
            time_property("DTSTART", TimeForm::Date(berlin), minute),
            "DTSTART;VALUE=DATE:20250901"
        );
        assert_eq!(
            time_property("DTSTART", TimeForm::Floating(berlin), minute),
            "DTSTART:20250901T000000"
        );
        assert_eq!(
            time_property(
                "DTSTART",
                TimeForm::Zoned(berlin, "W. Europe, Berlin"),
                minute
            ),
            "DTSTART;TZID=\"W. Europe, Berlin\":20250901T000000"
        );
        assert_eq!(
            time_property("DTSTART", TimeForm::Utc, minute),
            "DTSTART:20250831T220000Z"
        );
        // Three days over the change of 2025-10-26: 73 hours.
        assert_eq!(
            end_property(TimeForm::Date(berlin), minute + 60 * 24 * 55, 73 * 60),
            "DTEND;VALUE=DATE:20251029"
        );
    }

    #[test]
    fn format_offset_signs() {
        assert_eq!(format_offset(3600), "+0100");
        assert_eq!(format_offset(-19_800), "-0530");
        assert_eq!(format_offset(0), "+0000");
        assert_eq!(format_offset(5415), "+013015");
    }

    #[test]
    fn transitions_found_to_the_minute() {
        // Berlin in 2024: 03-31 01:00Z and 10-27 01:00Z.
        let from = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let to = Utc
            .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let found = transitions(chrono_tz::Europe::Berlin, from, to);
        let spring = Utc
            .with_ymd_and_hms(2024, 3, 31, 1, 0, 0)
            .unwrap()
            .timestamp();
        let autumn = Utc
            .with_ymd_and_hms(2024, 10, 27, 1, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(found, vec![spring, autumn]);
    }

    fn series_event() -> EventView {
        let start = Utc
            .with_ymd_and_hms(2024, 7, 3, 6, 0, 0)
            .unwrap()
            .timestamp()
            / 60;
        EventView {
            id: 7,
            version: 2,
            title: "Planning, weekly".into(),
            description: "line one\nline two".into(),
            start,
            duration_minutes: 60,
            zone: "Europe/Berlin".into(),
            host: "alice".into(),
            visibility: Visibility::Private {
                guests: vec!["bob".into()],
            },
            recurrence: Some(Box::new(Recurrence {
                rule: "FREQ=WEEKLY;COUNT=4".into(),
                exceptions: vec![start + 14 * 24 * 60],
                overrides: vec![crate::calendar::OccurrenceOverride {
                    original_start: start + 7 * 24 * 60,
                    start: start + 9 * 24 * 60 + 7 * 60,
                    duration_minutes: 60,
                    title: Some("Planning (moved)".into()),
                    description: None,
                }],
                occurrence: None,
            })),
            responses: Vec::new(),
            timing: Timing::Zoned,
        }
    }

    #[test]
    fn export_writes_series_with_override() {
        let event = series_event();
        let stamp = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let text = export_calendar(
            std::slice::from_ref(&event),
            (event.start, event.start + 1),
            stamp,
        );
        let unfolded = text.replace("\r\n ", "");
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in output"
        );
        assert!(unfolded.contains("UID:almanac-event-7@almanac.invalid\r\n"));
        assert!(unfolded.contains("SUMMARY:Planning\\, weekly\r\n"));
        assert!(unfolded.contains("DESCRIPTION:line one\\nline two\r\n"));
        assert!(unfolded.contains("DTSTART;TZID=Europe/Berlin:20240703T080000\r\n"));
        assert!(unfolded.contains("DTEND;TZID=Europe/Berlin:20240703T090000\r\n"));
        assert!(unfolded.contains("RRULE:FREQ=WEEKLY;COUNT=4\r\n"));
        assert!(unfolded.contains("EXDATE;TZID=Europe/Berlin:20240717T080000\r\n"));
        assert!(unfolded.contains("RECURRENCE-ID;TZID=Europe/Berlin:20240710T080000\r\n"));
        assert!(unfolded.contains("DTSTART;TZID=Europe/Berlin:20240712T150000\r\n"));
        assert!(unfolded.contains("ATTENDEE;CN=bob:urn:almanac:user:bob\r\n"));
        assert!(unfolded.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"));
        assert_eq!(unfolded.matches("BEGIN:VEVENT").count(), 2);
    }

    #[test]
    fn export_timezone_has_offsets() {
        let event = series_event();
        let stamp = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let text = export_calendar(
            std::slice::from_ref(&event),
            (event.start, event.start + 1),
            stamp,
        );
        // The first observance is summer time in July 2024.
        assert!(text.contains("BEGIN:DAYLIGHT\r\n"), "{text}");
        assert!(text.contains("TZOFFSETTO:+0200\r\n"), "{text}");
        assert!(text.contains("TZNAME:CEST\r\n"), "{text}");
    }

    #[test]
    fn export_lines_fit_75_octets() {
        let mut event = series_event();
        event.description = "Grüße 🎒 — ".repeat(40);
        let stamp = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let text = export_calendar(
            std::slice::from_ref(&event),
            (event.start, event.start + 1),
            stamp,
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= MAX_LINE_OCTETS, "{line:?}");
        }
    }
}
