//! Recurring events at the prompt: the phrases that make `schedule` repeat
//! an event, the occurrence that `edit ID occurrence DATE` and
//! `delete ID occurrence DATE` name, and the lines `show` adds for a series.
//!
//! Phrases become RFC 5545 rules:
//!
//! | typed                                  | rule                               |
//! |----------------------------------------|------------------------------------|
//! | `daily`, `every day`                   | `FREQ=DAILY`                       |
//! | `weekdays`, `every weekday`            | `FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR` |
//! | `weekly`, `every week [on DAYS]`       | `FREQ=WEEKLY[;BYDAY=...]`          |
//! | `every monday`, `every mon,wed`        | `FREQ=WEEKLY;BYDAY=MO[,WE]`        |
//! | `every 2 weeks on tue,thu`             | `FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH` |
//! | `monthly on the last friday`           | `FREQ=MONTHLY;BYDAY=-1FR`          |
//! | `monthly on the 15th`, `on day 15`     | `FREQ=MONTHLY;BYMONTHDAY=15`       |
//! | `yearly`, `every 2 years`              | `FREQ=YEARLY[;INTERVAL=2]`         |
//!
//! and `until DATE` (inclusive, in the event's zone) or `N times` end them.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::calendar::recurrence::{Expander, Occurrence};
use crate::calendar::{EventView, Recurrence, Timing, UnixMinute, Visibility};

/// The end of a repeat typed at the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatEnd {
    /// The last local date an occurrence may be on.
    Until(NaiveDate),
    /// How many occurrences there are.
    Count(u32),
}

/// The occurrence an `edit` or `delete` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceRef {
    /// The date as typed, for messages.
    pub text: String,
    /// The local day of the date, as a UTC range `[from, to)`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The exact start, when a time was typed.
    pub at: Option<DateTime<Utc>>,
    /// Whether every later occurrence is meant too.
    pub following: bool,
}

/// Largest INTERVAL accepted at the prompt; the rule type stores a `u16`.
const MAX_INTERVAL: u32 = 999;

const WEEKDAYS: &[(&str, &str)] = &[
    ("mon", "MO"),
    ("monday", "MO"),
    ("tue", "TU"),
    ("tues", "TU"),
    ("tuesday", "TU"),
    ("wed", "WE"),
    ("wednesday", "WE"),
    ("thu", "TH"),
    ("thur", "TH"),
    ("thurs", "TH"),
    ("thursday", "TH"),
    ("fri", "FR"),
    ("friday", "FR"),
    ("sat", "SA"),
    ("saturday", "SA"),
    ("sun", "SU"),
    ("sunday", "SU"),
];

fn weekday_code(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let singular = word.strip_suffix('s').filter(|stem| stem.len() >= 3);
    WEEKDAYS
        .iter()
        .find(|(name, _)| *name == word || Some(*name) == singular)
        .map(|(_, code)| *code)
}

/// Reads a list of weekdays (`tue,thu`, `tue, thu`, `tue and thu`) at the
/// start of `words`; returns the BYDAY codes and the words used.
fn weekday_list(words: &[&str]) -> (Vec<&'static str>, usize) {
    let mut codes = Vec::new();
    let mut used = 0;
    for (index, word) in words.iter().enumerate() {
        if word.eq_ignore_ascii_case("and") && !codes.is_empty() {
            continue;
        }
        let parts: Vec<&str> = word.split(',').filter(|part| !part.is_empty()).collect();
        let days: Option<Vec<&'static str>> = parts.iter().map(|part| weekday_code(part)).collect();
        match days {
            Some(days) if !days.is_empty() => {
                for day in days {
                    if !codes.contains(&day) {
                        codes.push(day);
                    }
                }
                used = index + 1;
            }
            _ => break,
        }
    }
    (codes, used)
}

/// Reads a position such as `1st`, `first`, `2nd` or `last` and returns it
/// as an RFC 5545 ordinal, with `-1` for last.
fn ordinal(word: &str) -> Option<i32> {
    let word = word.to_ascii_lowercase();
    let named = [
        ("first", 1),
        ("second", 2),
        ("third", 3),
        ("fourth", 4),
        ("fifth", 5),
        ("last", -1),
    ];
    if let Some((_, value)) = named.iter().find(|(name, _)| *name == word) {
        return Some(*value);
    }
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    let value: i32 = digits.parse().ok()?;
    matches!(suffix, "st" | "nd" | "rd" | "th").then_some(value)
}

/// Reads what follows `monthly on`: `the last friday`, `the 2nd tuesday`,
/// `the 15th`, `day 15`, `the last day`.
fn monthly_on(words: &[&str]) -> Result<(String, usize), String> {
    let mut index = 0;
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case("the")) {
        index = 1;
    }
    let Some(first) = words.get(index) else {
        return Err(
            "missing the day after \"monthly on\", e.g. the last friday or the 15th".into(),
        );
    };
    if first.eq_ignore_ascii_case("day") {
        let day = words.get(index + 1).and_then(|w| w.parse::<i32>().ok());
        return match day {
            Some(day @ 1..=31) => Ok((format!("BYMONTHDAY={day}"), index + 2)),
            _ => Err("expected a day of the month from 1 to 31 after \"day\"".into()),
        };
    }
    let Some(position) = ordinal(first) else {
        return Err(format!(
            "\"{first}\" is not a position: write e.g. the last friday, the 2nd tuesday or the 15th"
        ));
    };
    match words.get(index + 1).copied() {
        Some(next) if weekday_code(next).is_some() => {
            if !(-5..=5).contains(&position) || position == 0 {
                return Err(format!(
                    "there is no {first} weekday in a month; use first to fifth or last"
                ));
            }
            let code = weekday_code(next).expect("checked");
            Ok((format!("BYDAY={position}{code}"), index + 2))
        }
        Some(next) if next.eq_ignore_ascii_case("day") => {
            Ok((format!("BYMONTHDAY={position}"), index + 2))
        }
        _ if (1..=31).contains(&position) => Ok((format!("BYMONTHDAY={position}"), index + 1)),
        _ => Err(format!(
            "\"{first}\" needs a weekday or \"day\" after it, e.g. the last friday"
        )),
    }
}

fn frequency_of(unit: &str) -> Option<&'static str> {
    match unit.to_ascii_lowercase().as_str() {
        "day" | "days" => Some("DAILY"),
        "week" | "weeks" => Some("WEEKLY"),
        "month" | "months" => Some("MONTHLY"),
        "year" | "years" => Some("YEARLY"),
        _ => None,
    }
}

/// Reads an optional `on ...` after a frequency.
fn on_clause(freq: &str, words: &[&str]) -> Result<(Option<String>, usize), String> {
    if !words.first().is_some_and(|w| w.eq_ignore_ascii_case("on")) {
        return Ok((None, 0));
    }
    match freq {
        "WEEKLY" => {
            let (codes, used) = weekday_list(&words[1..]);
            if codes.is_empty() {
                return Err("expected weekdays after \"on\", e.g. on tue,thu".into());
            }
            Ok((Some(format!("BYDAY={}", codes.join(","))), 1 + used))
        }
        "MONTHLY" => {
            let (part, used) = monthly_on(&words[1..])?;
            Ok((Some(part), 1 + used))
        }
        other => Err(format!(
            "\"on\" after a {} repeat is not supported; use weekly or monthly",
            other.to_ascii_lowercase()
        )),
    }
}

/// Reads a repeat phrase at the start of `words`. Returns the rule (without
/// an end) and how many words it used, or `None` when the words do not
/// start with a phrase.
pub fn parse_repeat(words: &[&str]) -> Result<Option<(String, usize)>, String> {
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let first = first.to_ascii_lowercase();
    let simple = match first.as_str() {
        "daily" => Some("DAILY"),
        "weekly" => Some("WEEKLY"),
        "monthly" => Some("MONTHLY"),
        "yearly" | "annually" => Some("YEARLY"),
        "weekdays" => return Ok(Some(("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(), 1))),
        "every" => None,
        _ => return Ok(None),
    };
    if let Some(freq) = simple {
        let (on, used) = on_clause(freq, &words[1..])?;
        return Ok(Some((rule_text(freq, 1, on), 1 + used)));
    }
    every(&words[1..]).map(|(rule, used)| Some((rule, 1 + used)))
}

/// Reads what follows `every`.
fn every(words: &[&str]) -> Result<(String, usize), String> {
    let Some(next) = words.first() else {
        return Err(
            "missing what repeats after \"every\", e.g. every monday or every 2 weeks".into(),
        );
    };
    if next.eq_ignore_ascii_case("weekday") {
        return Ok(("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".into(), 1));
    }
    let (codes, used) = weekday_list(words);
    if !codes.is_empty() {
        return Ok((format!("FREQ=WEEKLY;BYDAY={}", codes.join(",")), used));
    }
    let (interval, unit_index) = match next.parse::<u32>() {
        Ok(interval) => (interval, 1),
        Err(_) => (1, 0),
    };
    if !(1..=MAX_INTERVAL).contains(&interval) {
        return Err(format!(
            "every {interval} is out of range: use 1 to {MAX_INTERVAL}"
        ));
    }
    let unit = words.get(unit_index).copied().unwrap_or("");
    let Some(freq) = frequency_of(unit) else {
        return Err(format!(
            "\"{unit}\" is not a weekday or a unit: write e.g. every monday, every 2 weeks or every month"
        ));
    };
    let (on, used) = on_clause(freq, &words[unit_index + 1..])?;
    Ok((rule_text(freq, interval, on), unit_index + 1 + used))
}

fn rule_text(freq: &str, interval: u32, on: Option<String>) -> String {
    let mut rule = format!("FREQ={freq}");
    if interval != 1 {
        rule.push_str(&format!(";INTERVAL={interval}"));
    }
    if let Some(on) = on {
        rule.push(';');
        rule.push_str(&on);
    }
    rule
}

/// Removes a trailing `N times` from `words` and returns the count.
pub fn take_count(words: &mut Vec<&str>) -> Result<Option<u32>, String> {
    let [.., number, last] = words.as_slice() else {
        return Ok(None);
    };
    if !last.eq_ignore_ascii_case("times") {
        return Ok(None);
    }
    let count = number
        .parse::<u32>()
        .ok()
        .filter(|count| *count >= 1)
        .ok_or_else(|| format!("\"{number} times\" needs a whole number of 1 or more"))?;
    words.truncate(words.len() - 2);
    Ok(Some(count))
}

/// Appends the end to a rule.
pub fn with_end(rule: &str, end: Option<RepeatEnd>) -> String {
    match end {
        None => rule.to_string(),
        Some(RepeatEnd::Count(count)) => format!("{rule};COUNT={count}"),
        Some(RepeatEnd::Until(date)) => format!("{rule};UNTIL={}", date.format("%Y%m%d")),
    }
}

fn draft_view(rule: &str, start: UnixMinute, zone: Tz, duration_minutes: u32) -> EventView {
    EventView {
        id: 0,
        version: 0,
        title: String::new(),
        description: String::new(),
        start,
        duration_minutes,
        zone: zone.name().to_string(),
        host: String::new(),
        visibility: Visibility::Public,
        recurrence: Some(Box::new(Recurrence {
            rule: rule.to_string(),
            ..Recurrence::default()
        })),
        responses: Vec::new(),
        timing: Timing::Zoned,
    }
}

/// Finds the first occurrence of the rule at or after `start`, which becomes
/// the series' start so that the rule and its DTSTART agree.
pub fn first_occurrence(
    rule: &str,
    start: UnixMinute,
    zone: Tz,
    duration_minutes: u32,
) -> Result<UnixMinute, String> {
    let view = draft_view(rule, start, zone, duration_minutes);
    let expander = Expander::new(&view)?;
    let first = expander.rule_starts_before(UnixMinute::MAX, 1);
    first.first().copied().ok_or_else(|| {
        "the repeat gives no occurrence from the start on; check the dates".to_string()
    })
}

/// Finds the original start of the occurrence a user named: one whose
/// current or original start is on the named day (or at the named time).
pub fn resolve_occurrence(event: &EventView, wanted: &OccurrenceRef) -> Result<UnixMinute, String> {
    let expander = Expander::new(event)?;
    let from = wanted.from.timestamp() / 60;
    let to = wanted.to.timestamp() / 60;
    let mut candidates: Vec<Occurrence> = expander
        .occurrences(from, to)
        .into_iter()
        .filter(|occurrence| occurrence.start >= from)
        .collect();
    let exceptions = event
        .recurrence
        .as_ref()
        .map(|r| r.exceptions.clone())
        .unwrap_or_default();
    for start in expander.rule_starts_before(to, usize::MAX) {
        let cancelled = exceptions.binary_search(&start).is_ok();
        if start >= from && !cancelled && !candidates.iter().any(|o| o.original_start == start) {
            candidates.push(expander.occurrence_at(start));
        }
    }
    if let Some(at) = wanted.at {
        let at = at.timestamp() / 60;
        candidates.retain(|o| o.start == at || o.original_start == at);
    }
    match candidates.as_slice() {
        [] => Err(format!(
            "event #{} has no occurrence on {}; run `show {}` to list the next ones",
            event.id, wanted.text, event.id
        )),
        [one] => Ok(one.original_start),
        several => Err(format!(
            "event #{} has {} occurrences on {}; add the time, e.g. {} 09:00",
            event.id,
            several.len(),
            wanted.text,
            wanted.text
        )),
    }
}

/// Describes the rule of a series in words; `None` for a one-off event.
pub fn describe(event: &EventView) -> Option<String> {
    let recurrence = event.recurrence.as_ref()?;
    let words = match crate::calendar::recurrence::ParsedRule::parse(&recurrence.rule) {
        Ok(rule) => rule.describe(),
        Err(_) => recurrence.rule.clone(),
    };
    let cancelled = recurrence.exceptions.len();
    let moved = recurrence.overrides.len();
    let mut text = words;
    if cancelled > 0 {
        text.push_str(&format!(", {cancelled} cancelled"));
    }
    if moved > 0 {
        text.push_str(&format!(", {moved} moved"));
    }
    Some(text)
}

/// Lists the next `count` occurrences of a series that end after `now`,
/// with their original starts.
pub fn next_occurrences(event: &EventView, now: UnixMinute, count: usize) -> Vec<Occurrence> {
    let Ok(expander) = Expander::new(event) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut window = 31 * 24 * 60;
    // Widen the window until enough occurrences are found or ten years are
    // covered, so a yearly rule is listed as well as a daily one.
    while found.len() < count && window <= 10 * 366 * 24 * 60 {
        found = expander.occurrences(now, now.saturating_add(window));
        window *= 4;
    }
    found.truncate(count);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repeat(text: &str) -> (String, usize) {
        let words: Vec<&str> = text.split_whitespace().collect();
        parse_repeat(&words).unwrap().unwrap()
    }

    fn repeat_error(text: &str) -> String {
        let words: Vec<&str> = text.split_whitespace().collect();
        parse_repeat(&words).unwrap_err()
    }

    #[test]
    fn phrases_become_rules() {
        let cases = [
            ("daily 9:00", "FREQ=DAILY", 1),
            ("every day 9:00", "FREQ=DAILY", 2),
            ("weekdays 9:15", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", 1),
            ("every weekday 9:15", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", 2),
            ("every monday 10:00", "FREQ=WEEKLY;BYDAY=MO", 2),
            ("every mon,wed 10:00", "FREQ=WEEKLY;BYDAY=MO,WE", 2),
            ("every mondays and fridays", "FREQ=WEEKLY;BYDAY=MO,FR", 4),
            (
                "every 2 weeks on tue,thu 14:00",
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
                5,
            ),
            (
                "every 2 weeks on tue, thu",
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
                6,
            ),
            ("weekly on fri", "FREQ=WEEKLY;BYDAY=FR", 3),
            (
                "monthly on the last friday 16:00",
                "FREQ=MONTHLY;BYDAY=-1FR",
                5,
            ),
            ("monthly on the 2nd tuesday", "FREQ=MONTHLY;BYDAY=2TU", 5),
            ("monthly on the 15th", "FREQ=MONTHLY;BYMONTHDAY=15", 4),
            ("monthly on day 31", "FREQ=MONTHLY;BYMONTHDAY=31", 4),
            ("monthly on the last day", "FREQ=MONTHLY;BYMONTHDAY=-1", 5),
            ("every 3 months", "FREQ=MONTHLY;INTERVAL=3", 3),
            ("yearly 2027-03-01", "FREQ=YEARLY", 1),
            ("every 2 years", "FREQ=YEARLY;INTERVAL=2", 3),
        ];
        for (text, rule, used) in cases {
            assert_eq!(repeat(text), (rule.to_string(), used), "{text}");
        }
    }

    #[test]
    fn other_words_are_no_phrase() {
        for text in ["tomorrow 10:00", "fri 14:00", "2027-01-05"] {
            let words: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(parse_repeat(&words), Ok(None), "{text}");
        }
    }

    #[test]
    fn bad_phrases_say_why() {
        let cases = [
            ("every", "missing what repeats"),
            ("every 0 days", "out of range"),
            ("every fortnight", "not a weekday or a unit"),
            ("weekly on", "expected weekdays"),
            ("monthly on the 6th friday", "no 6th weekday"),
            ("daily on mon", "not supported"),
        ];
        for (text, expected) in cases {
            let error = repeat_error(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn count_is_taken_from_the_end() {
        let mut words = vec!["9:15", "for", "15m", "5", "times"];
        assert_eq!(take_count(&mut words), Ok(Some(5)));
        assert_eq!(words, vec!["9:15", "for", "15m"]);
        let mut none = vec!["9:15"];
        assert_eq!(take_count(&mut none), Ok(None));
        let mut zero = vec!["9:15", "0", "times"];
        assert!(take_count(&mut zero).is_err());
    }

    #[test]
    fn ends_append_to_rule() {
        let until = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        assert_eq!(
            with_end("FREQ=DAILY", Some(RepeatEnd::Until(until))),
            "FREQ=DAILY;UNTIL=20270630"
        );
        assert_eq!(
            with_end("FREQ=DAILY", Some(RepeatEnd::Count(5))),
            "FREQ=DAILY;COUNT=5"
        );
        assert_eq!(with_end("FREQ=DAILY", None), "FREQ=DAILY");
    }

    #[test]
    fn first_occurrence_aligns_start() {
        // 2027-01-06 is a Wednesday; the first Monday after it is the 11th.
        let wednesday = NaiveDate::from_ymd_opt(2027, 1, 6)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let start = wednesday.and_utc().timestamp() / 60;
        let first = first_occurrence("FREQ=WEEKLY;BYDAY=MO", start, Tz::UTC, 30).unwrap();
        assert_eq!(first, start + 5 * 24 * 60);
        let same = first_occurrence("FREQ=WEEKLY;BYDAY=WE", start, Tz::UTC, 30).unwrap();
        assert_eq!(same, start);
    }

    #[test]
    fn occurrence_is_found_by_day_or_time() {
        let monday = NaiveDate::from_ymd_opt(2027, 1, 4)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let start = monday.and_utc().timestamp() / 60;
        let mut event = draft_view("FREQ=DAILY;COUNT=10", start, Tz::UTC, 30);
        event.id = 7;
        let day = |offset: i64, at: Option<i64>| OccurrenceRef {
            text: format!("day {offset}"),
            from: DateTime::from_timestamp((start - 9 * 60 + offset * 1440) * 60, 0).unwrap(),
            to: DateTime::from_timestamp((start - 9 * 60 + (offset + 1) * 1440) * 60, 0).unwrap(),
            at: at.and_then(|minute| DateTime::from_timestamp(minute * 60, 0)),
            following: false,
        };
        assert_eq!(
            resolve_occurrence(&event, &day(2, None)),
            Ok(start + 2 * 1440)
        );
        assert_eq!(
            resolve_occurrence(&event, &day(2, Some(start + 2 * 1440))),
            Ok(start + 2 * 1440)
        );
        let error = resolve_occurrence(&event, &day(2, Some(start + 2 * 1440 + 5))).unwrap_err();
        assert!(error.contains("no occurrence"), "{error}");
        let error = resolve_occurrence(&event, &day(20, None)).unwrap_err();
        assert!(error.contains("no occurrence"), "{error}");
    }

    #[test]
    fn next_occurrences_of_yearly_rule() {
        let start = NaiveDate::from_ymd_opt(2027, 3, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let start = start.and_utc().timestamp() / 60;
        let event = draft_view("FREQ=YEARLY", start, Tz::UTC, 60);
        let running = next_occurrences(&event, start + 1, 3);
        assert_eq!(running[0].start, start);
        let next = next_occurrences(&event, start + 60, 3);
        assert_eq!(next.len(), 3);
        // 2028 is a leap year.
        assert_eq!(next[0].start, start + 366 * 1440);
    }
}
