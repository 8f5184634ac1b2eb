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
use crate::calendar::{EventView, UnixMinute, Visibility};

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
    for (zone, span) in zone_spans(events, range).into_values() {
        write_timezone(&mut out, zone, span);
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

/// Formats a minute as a DATE-TIME property: UTC with `Z`, or local with TZID.
fn time_property(name: &str, zone: Tz, minute: UnixMinute) -> String {
    let utc = utc_of(minute);
    if zone == Tz::UTC {
        return format!("{name}:{}", utc.format("%Y%m%dT%H%M%SZ"));
    }
    let local = utc.with_timezone(&zone).naive_local();
    format!(
        "{name};TZID={}:{}",
        param_value(zone.name()),
        local.format("%Y%m%dT%H%M%S")
    )
}

fn utc_of(minute: UnixMinute) -> DateTime<Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn write_event(out: &mut String, event: &EventView, stamp: &str) {
    let zone = zone_of(event);
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
    push_line(out, &time_property("DTSTART", zone, event.start));
    push_line(out, &time_property("DTEND", zone, event.end()));
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
            &format!("RRULE:{}", export_rule(&recurrence.rule, zone)),
        );
        for &exception in &recurrence.exceptions {
            push_line(out, &time_property("EXDATE", zone, exception));
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
            &time_property("RECURRENCE-ID", zone, moved.original_start),
        );
        let title = moved.title.as_deref().unwrap_or(&event.title);
        push_line(out, &format!("SUMMARY:{}", escape_text(title)));
        let description = moved.description.as_deref().unwrap_or(&event.description);
        if !description.is_empty() {
            push_line(out, &format!("DESCRIPTION:{}", escape_text(description)));
        }
        push_line(out, &time_property("DTSTART", zone, moved.start));
        let end = moved.start + i64::from(moved.duration_minutes);
        push_line(out, &time_property("DTEND", zone, end));
        push_line(out, "END:VEVENT");
    }
}

/// Writes a rule for a DATE-TIME DTSTART. RFC 5545 requires its UNTIL to be
/// a UTC date-time then, so an UNTIL date (the last local date, as Almanac
/// stores it) becomes the last second of that date in the event's zone.
fn export_rule(rule: &str, zone: Tz) -> String {
    let parts: Vec<String> = rule
        .split(';')
        .map(|part| {
            let date = part
                .strip_prefix("UNTIL=")
                .and_then(|value| chrono::NaiveDate::parse_from_str(value, "%Y%m%d").ok());
            let Some(date) = date else {
                return part.to_string();
            };
            let next_midnight = date
                .succ_opt()
                .unwrap_or(date)
                .and_time(chrono::NaiveTime::MIN);
            let last_minute = crate::calendar::recurrence::resolve_local(zone, next_midnight) - 1;
            let last_second = utc_of(last_minute) + chrono::Duration::seconds(59);
            format!("UNTIL={}", last_second.format("%Y%m%dT%H%M%SZ"))
        })
        .collect();
    parts.join(";")
}

/// Returns, per zone other than UTC, the span of time its VTIMEZONE must
/// cover: from the first start to the last end of a series that ends, or to
/// the end of the exported range for one that does not.
fn zone_spans(
    events: &[EventView],
    range: (UnixMinute, UnixMinute),
) -> BTreeMap<&'static str, (Tz, (UnixMinute, UnixMinute))> {
    let mut spans: BTreeMap<&'static str, (Tz, (UnixMinute, UnixMinute))> = BTreeMap::new();
    for event in events {
        let zone = zone_of(event);
        if zone == Tz::UTC {
            continue;
        }
        let mut last = event.end();
        if let Ok(expander) = Expander::new(event) {
            match expander.all_occurrences() {
                Some(all) => {
                    last = all.iter().map(|o| o.end).max().unwrap_or(last);
                }
                None => last = last.max(range.1),
            }
        }
        let (_, span) = spans
            .entry(zone.name())
            .or_insert((zone, (event.start, last)));
        span.0 = span.0.min(event.start);
        span.1 = span.1.max(last);
    }
    spans
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
fn write_timezone(out: &mut String, zone: Tz, span: (UnixMinute, UnixMinute)) {
    // Start a day early and end a day late, so that events at the span's
    // edges are covered in any offset.
    let from = span.0.saturating_mul(60) - 86_400;
    let to = span.1.saturating_mul(60) + 86_400;
    push_line(out, "BEGIN:VTIMEZONE");
    push_line(out, &format!("TZID:{}", zone.name()));
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
    use crate::calendar::Recurrence;

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
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            export_rule("FREQ=DAILY;UNTIL=20270630", berlin),
            "FREQ=DAILY;UNTIL=20270630T215959Z"
        );
        assert_eq!(
            export_rule("FREQ=WEEKLY;UNTIL=20240315T130000Z", berlin),
            "FREQ=WEEKLY;UNTIL=20240315T130000Z"
        );
        assert_eq!(
            export_rule("FREQ=DAILY;COUNT=3", Tz::UTC),
            "FREQ=DAILY;COUNT=3"
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
