//! Recurrence rules: parsing, validation and expansion of RFC 5545 RRULEs.
//!
//! The `rrule` crate expands a rule over wall-clock date-times. This module
//! hands it the start's local time in the event's zone as a floating
//! date-time (labelled UTC, so the crate applies no zone of its own) and
//! turns every result into an instant itself. The zone policy is therefore
//! this module's, and nothing depends on the host's zone or clock:
//!
//! - a local time that falls into a DST gap moves forward by the gap's
//!   length (02:30 on the spring-forward night in New York is 03:30 EDT);
//! - a local time in a repeated hour takes the first of its two instants;
//! - dates the rule names but the calendar lacks (the 31st of a 30-day
//!   month, 29 February in other years) give no occurrence, as RFC 5545
//!   requires.
//!
//! UNTIL is inclusive. As a UTC date-time it bounds the occurrence's instant;
//! as a date it bounds the occurrence's local date in the event's zone.

use std::ops::ControlFlow;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use rrule::{Frequency, NWeekday, RRule, RRuleSet, Unvalidated, Weekday};

use super::limits::{LATEST_START, MAX_SERIES_OCCURRENCES};
use super::timing::all_day_count;
use super::types::{EventView, OccurrenceOf, Recurrence, Timing, UnixMinute};

/// One occurrence of a series as it takes place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub start: UnixMinute,
    /// Exclusive end.
    pub end: UnixMinute,
    /// Start the rule gives it; differs from `start` for a moved occurrence.
    pub original_start: UnixMinute,
}

impl Occurrence {
    pub fn overlaps(&self, from: UnixMinute, to: UnixMinute) -> bool {
        self.start < to && from < self.end
    }
}

/// The inclusive end of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    /// The last instant an occurrence may start at.
    Instant(UnixMinute),
    /// The last local date, in the event's zone, an occurrence may start on.
    LocalDate(NaiveDate),
}

/// A rule split into what the crate expands and the UNTIL this module applies.
#[derive(Clone, Debug)]
pub struct ParsedRule {
    rrule: RRule<Unvalidated>,
    until: Option<Until>,
}

impl ParsedRule {
    /// Parses an RRULE value, with or without the `RRULE:` prefix. Errors
    /// describe what is wrong with the text in a way a user can act on.
    pub fn parse(text: &str) -> Result<ParsedRule, String> {
        let text = text.trim();
        // RFC 5545 writes a rule in ASCII, and the rrule crate (0.14) panics
        // on a multi-byte character inside a BYDAY value.
        if let Some(found) = text.chars().find(|character| !character.is_ascii()) {
            return Err(format!(
                "\"{text}\" is not a valid RRULE: it contains the non-ASCII character {found:?}; \
                 write the rule in ASCII, such as FREQ=WEEKLY;BYDAY=MO,TH"
            ));
        }
        let text = text
            .strip_prefix("RRULE:")
            .or_else(|| text.strip_prefix("rrule:"))
            .unwrap_or(text)
            .to_ascii_uppercase();
        let mut until = None;
        let mut parts = Vec::new();
        for part in text.split(';').filter(|part| !part.is_empty()) {
            match part.strip_prefix("UNTIL=") {
                Some(value) => until = Some(parse_until(value)?),
                None => parts.push(part),
            }
        }
        let rest = parts.join(";");
        let rrule = RRule::<Unvalidated>::from_str(&rest)
            .map_err(|error| format!("\"{text}\" is not a valid RRULE: {error}"))?;
        check_supported(&rrule)?;
        if until.is_some() && rrule.get_count().is_some() {
            return Err("it has both COUNT and UNTIL; RFC 5545 allows one of them".into());
        }
        if rrule.get_count() == Some(0) {
            return Err("COUNT=0 gives no occurrence; give a COUNT of 1 or more".into());
        }
        Ok(ParsedRule { rrule, until })
    }

    /// Returns the rules the crate expands. A BYDAY list that mixes plain weekdays
    /// with numbered ones (`MO,-1WE`) is split into one rule per kind,
    /// without COUNT, which `Expander` applies to the merged starts.
    ///
    /// NOTE: rrule 0.14.0 gives no occurrence at all for such a mixed list,
    /// which is why it is split here. With BYSETPOS the split would change
    /// the meaning, so that combination is rejected.
    fn parts(&self) -> Result<Vec<RRule<Unvalidated>>, String> {
        let weekdays = self.rrule.get_by_weekday();
        let plain: Vec<String> = weekdays
            .iter()
            .filter(|day| matches!(day, NWeekday::Every(_)))
            .map(ToString::to_string)
            .collect();
        let numbered: Vec<String> = weekdays
            .iter()
            .filter(|day| matches!(day, NWeekday::Nth(..)))
            .map(ToString::to_string)
            .collect();
        if plain.is_empty() || numbered.is_empty() {
            return Ok(vec![self.rrule.clone()]);
        }
        if !self.rrule.get_by_set_pos().is_empty() {
            return Err("BYSETPOS with a BYDAY list that mixes plain and numbered \
                 weekdays is not supported; use one kind of weekday"
                .into());
        }
        let text = self.rrule.to_string();
        let others: Vec<&str> = text
            .split(';')
            .filter(|part| !part.starts_with("COUNT=") && !part.starts_with("BYDAY="))
            .collect();
        [plain, numbered]
            .iter()
            .map(|days| {
                let part = format!("{};BYDAY={}", others.join(";"), days.join(","));
                RRule::<Unvalidated>::from_str(&part)
                    .map_err(|error| format!("cannot split the rule into \"{part}\": {error}"))
            })
            .collect()
    }

    /// Returns whether the rule ends, by COUNT or UNTIL.
    pub fn is_bounded(&self) -> bool {
        self.until.is_some() || self.rrule.get_count().is_some()
    }

    pub fn count(&self) -> Option<u32> {
        self.rrule.get_count()
    }

    /// Formats the rule as canonical RRULE text, which is what the state
    /// stores.
    pub fn canonical(&self) -> String {
        let text = self.rrule.to_string();
        let Some(until) = self.until else {
            return text;
        };
        let until = match until {
            Until::Instant(minute) => minute_to_utc(minute)
                .format("UNTIL=%Y%m%dT%H%M%SZ")
                .to_string(),
            Until::LocalDate(date) => date.format("UNTIL=%Y%m%d").to_string(),
        };
        match text.split_once(';') {
            Some((freq, rest)) => format!("{freq};{until};{rest}"),
            None => format!("{text};{until}"),
        }
    }

    /// Returns a copy that ends with the occurrence starting before `start`:
    /// COUNT becomes `kept` when the rule counts, UNTIL is set otherwise.
    pub fn ended_before(&self, start: UnixMinute, kept: u32) -> ParsedRule {
        match self.count() {
            Some(_) => ParsedRule {
                rrule: self.rrule.clone().count(kept),
                until: None,
            },
            None => ParsedRule {
                rrule: self.rrule.clone(),
                until: Some(Until::Instant(start - 1)),
            },
        }
    }

    /// Returns a copy whose COUNT is reduced by `skipped`; unchanged without
    /// COUNT.
    pub fn counted_after(&self, skipped: u32) -> ParsedRule {
        let mut copy = self.clone();
        if let Some(count) = self.count() {
            copy.rrule = copy.rrule.count(count.saturating_sub(skipped));
        }
        copy
    }

    /// Describes the rule in words, such as "every 2 weeks on Tuesday and
    /// Thursday, 5 times".
    pub fn describe(&self) -> String {
        let rule = &self.rrule;
        let interval = rule.get_interval();
        let unit = match rule.get_freq() {
            Frequency::Yearly => "year",
            Frequency::Monthly => "month",
            Frequency::Weekly => "week",
            _ => "day",
        };
        let mut words = if interval == 1 {
            format!("every {unit}")
        } else {
            format!("every {interval} {unit}s")
        };
        if !rule.get_by_month().is_empty() {
            let months: Vec<String> = rule.get_by_month().iter().map(|m| month_name(*m)).collect();
            words.push_str(&format!(" in {}", join_words(&months)));
        }
        if !rule.get_by_month_day().is_empty() {
            let days: Vec<String> = rule
                .get_by_month_day()
                .iter()
                .map(|d| day_words(*d))
                .collect();
            words.push_str(&format!(" on {}", join_words(&days)));
        }
        if !rule.get_by_weekday().is_empty() {
            let days: Vec<String> = rule.get_by_weekday().iter().map(weekday_words).collect();
            words.push_str(&format!(" on {}", join_words(&days)));
        }
        if !rule.get_by_set_pos().is_empty() {
            let positions: Vec<String> = rule
                .get_by_set_pos()
                .iter()
                .map(|position| ordinal_words(*position))
                .collect();
            words.push_str(&format!(", only the {} of those", join_words(&positions)));
        }
        if let Some(count) = rule.get_count() {
            words.push_str(&format!(", {count} times"));
        }
        match self.until {
            Some(Until::Instant(minute)) => {
                words.push_str(&format!(", until {}", super::types::format_minute(minute)));
            }
            Some(Until::LocalDate(date)) => words.push_str(&format!(", until {date}")),
            None => {}
        }
        words
    }
}

fn parse_until(value: &str) -> Result<Until, String> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y%m%d") {
        return Ok(Until::LocalDate(date));
    }
    if let Some(utc) = value.strip_suffix('Z') {
        if let Ok(time) = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S") {
            let minute = time.and_utc().timestamp().div_euclid(60);
            return Ok(Until::Instant(minute));
        }
    }
    Err(format!(
        "UNTIL={value} is not a date (20270630) or a UTC date-time (20270630T215900Z)"
    ))
}

/// Rejects the parts of RFC 5545 that do not fit events that repeat at the
/// start's time of day with one duration.
fn check_supported(rrule: &RRule<Unvalidated>) -> Result<(), String> {
    let freq = rrule.get_freq();
    if !matches!(
        freq,
        Frequency::Daily | Frequency::Weekly | Frequency::Monthly | Frequency::Yearly
    ) {
        return Err(format!(
            "FREQ={freq} is not supported; occurrences repeat at the start's time \
             of day, so use DAILY, WEEKLY, MONTHLY or YEARLY"
        ));
    }
    let times = !rrule.get_by_hour().is_empty()
        || !rrule.get_by_minute().is_empty()
        || !rrule.get_by_second().is_empty();
    if times {
        return Err("BYHOUR, BYMINUTE and BYSECOND are not supported; \
             every occurrence starts at the start's time of day"
            .into());
    }
    Ok(())
}

/// A series ready to expand: its rule, zone and local start.
pub struct Expander<'a> {
    recurrence: &'a Recurrence,
    rule: ParsedRule,
    zone: Tz,
    /// The start's wall-clock time in the zone: the rule's DTSTART.
    local_start: NaiveDateTime,
    duration_minutes: u32,
    /// Number of local days of each occurrence of an all-day series, so that
    /// each ends at a local midnight whatever DST change falls inside it.
    /// `None` for other series, whose occurrences last `duration_minutes`.
    all_day_count: Option<u32>,
    series_start: UnixMinute,
}

impl<'a> Expander<'a> {
    /// Prepares a recurring event for expansion; fails on a one-off event or
    /// on a rule or zone that does not parse.
    pub fn new(event: &'a EventView) -> Result<Expander<'a>, String> {
        let recurrence = event
            .recurrence
            .as_ref()
            .ok_or_else(|| format!("event {} does not recur", event.id))?;
        let rule = ParsedRule::parse(&recurrence.rule)?;
        let zone: Tz = event
            .zone
            .parse()
            .map_err(|_| format!("unknown time zone \"{}\"", event.zone))?;
        let local_start = minute_to_utc(event.start)
            .with_timezone(&zone)
            .naive_local();
        let expander = Expander {
            recurrence,
            rule,
            zone,
            local_start,
            duration_minutes: event.duration_minutes,
            all_day_count: (event.timing == Timing::AllDay)
                .then(|| all_day_count(event.duration_minutes)),
            series_start: event.start,
        };
        expander.rule_set()?;
        Ok(expander)
    }

    pub fn rule(&self) -> &ParsedRule {
        &self.rule
    }

    fn rule_set(&self) -> Result<RRuleSet, String> {
        let start = rrule::Tz::UTC.from_utc_datetime(&self.local_start);
        let mut set = RRuleSet::new(start);
        for part in self.rule.parts()? {
            let part = part
                .validate(start)
                .map_err(|error| format!("the rule does not fit the start: {error}"))?;
            set = set.rrule(part);
        }
        // `limit` makes the crate give up on a rule that never matches
        // instead of searching forever.
        Ok(set.limit())
    }

    /// Calls `visit` with the start of every occurrence the rule gives, in
    /// order, before exceptions and overrides, until `visit` breaks, the rule
    /// ends or `LATEST_START` is reached.
    pub fn for_each_rule_start(&self, mut visit: impl FnMut(UnixMinute) -> ControlFlow<()>) {
        let set = self
            .rule_set()
            .expect("Expander::new checked that the rule builds");
        let count = self.rule.count().map_or(usize::MAX, |count| count as usize);
        let mut previous = None;
        // The parts of a split rule are merged by the crate; a date that two
        // parts both give is one occurrence.
        let locals = set
            .into_iter()
            .map(|local| local.naive_utc())
            .filter(|&local| {
                let new = previous != Some(local);
                previous = Some(local);
                new
            });
        for local in locals.take(count) {
            let start = resolve_local(self.zone, local);
            let past_until = match self.rule.until {
                Some(Until::Instant(until)) => start > until,
                Some(Until::LocalDate(until)) => local.date() > until,
                None => false,
            };
            if past_until || start >= LATEST_START || visit(start).is_break() {
                break;
            }
        }
    }

    /// Rule starts before `to`, at most `max` of them.
    pub fn rule_starts_before(&self, to: UnixMinute, max: usize) -> Vec<UnixMinute> {
        let mut starts = Vec::new();
        self.for_each_rule_start(|start| {
            if start >= to || starts.len() >= max {
                return ControlFlow::Break(());
            }
            starts.push(start);
            ControlFlow::Continue(())
        });
        starts
    }

    /// Returns whether the rule gives an occurrence starting at
    /// `original_start`.
    pub fn has_rule_start(&self, original_start: UnixMinute) -> bool {
        let mut found = false;
        self.for_each_rule_start(|start| {
            found = start == original_start;
            if start >= original_start {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        found
    }

    /// Number of rule starts before `original_start`, cancelled ones included.
    pub fn rule_starts_before_count(&self, original_start: UnixMinute) -> u32 {
        let mut count = 0;
        self.for_each_rule_start(|start| {
            if start >= original_start {
                return ControlFlow::Break(());
            }
            count += 1;
            ControlFlow::Continue(())
        });
        count
    }

    /// Expands the occurrences overlapping `[from, to)`, sorted by start: the rule's,
    /// without the cancelled ones, with overrides in place of the ones they
    /// replace.
    pub fn occurrences(&self, from: UnixMinute, to: UnixMinute) -> Vec<Occurrence> {
        let mut found = Vec::new();
        self.for_each_rule_start(|start| {
            if start >= to {
                return ControlFlow::Break(());
            }
            let skipped = self.recurrence.exceptions.binary_search(&start).is_ok()
                || self.override_of(start).is_some();
            let occurrence = Occurrence {
                start,
                end: self.rule_end(start),
                original_start: start,
            };
            if !skipped && occurrence.overlaps(from, to) {
                found.push(occurrence);
            }
            ControlFlow::Continue(())
        });
        for moved in &self.recurrence.overrides {
            let occurrence = Occurrence {
                start: moved.start,
                end: moved.start + i64::from(moved.duration_minutes),
                original_start: moved.original_start,
            };
            if occurrence.overlaps(from, to) {
                found.push(occurrence);
            }
        }
        found.sort();
        found
    }

    /// Expands every occurrence of a series that ends, or returns `None` for
    /// one without an end. Stops after `MAX_SERIES_OCCURRENCES + 1` rule starts, so a
    /// caller can tell a series that is too long.
    pub fn all_occurrences(&self) -> Option<Vec<Occurrence>> {
        if !self.rule.is_bounded() {
            return None;
        }
        let starts = self.rule_starts_before(UnixMinute::MAX, MAX_SERIES_OCCURRENCES + 1);
        let Some(&last) = starts.last() else {
            return Some(self.occurrences(UnixMinute::MIN, UnixMinute::MAX));
        };
        let first = starts[0].min(self.first_override_start());
        let to = (last + 1).max(self.last_override_start() + 1);
        Some(self.occurrences(first, to))
    }

    /// Returns the occurrence the rule starts at `original_start`, moved if an
    /// override moved it. The caller checks that the rule gives that start.
    pub fn occurrence_at(&self, original_start: UnixMinute) -> Occurrence {
        match self.override_of(original_start) {
            Some(index) => {
                let moved = &self.recurrence.overrides[index];
                Occurrence {
                    start: moved.start,
                    end: moved.start + i64::from(moved.duration_minutes),
                    original_start,
                }
            }
            None => Occurrence {
                start: original_start,
                end: self.rule_end(original_start),
                original_start,
            },
        }
    }

    /// End of the occurrence the rule starts at `start`.
    fn rule_end(&self, start: UnixMinute) -> UnixMinute {
        let Some(days) = self.all_day_count else {
            return start + i64::from(self.duration_minutes);
        };
        let first = self.local_time(start).date();
        let after = first + chrono::Days::new(u64::from(days));
        resolve_local(self.zone, after.and_time(NaiveTime::MIN))
    }

    fn first_override_start(&self) -> UnixMinute {
        let starts = self.recurrence.overrides.iter().map(|moved| moved.start);
        starts.min().unwrap_or(UnixMinute::MAX)
    }

    fn last_override_start(&self) -> UnixMinute {
        let starts = self.recurrence.overrides.iter().map(|moved| moved.start);
        starts.max().unwrap_or(UnixMinute::MIN)
    }

    fn override_of(&self, original_start: UnixMinute) -> Option<usize> {
        let overrides = &self.recurrence.overrides;
        overrides
            .binary_search_by_key(&original_start, |moved| moved.original_start)
            .ok()
    }

    /// Builds the view of one occurrence: the series with the occurrence's
    /// start, duration, title, description and responses.
    pub fn occurrence_view(&self, series: &EventView, occurrence: &Occurrence) -> EventView {
        let mut view = series.clone();
        view.responses = series.responses_at(occurrence.original_start);
        view.start = occurrence.start;
        view.duration_minutes = (occurrence.end - occurrence.start) as u32;
        if let Some(index) = self.override_of(occurrence.original_start) {
            let moved = &self.recurrence.overrides[index];
            if let Some(title) = &moved.title {
                view.title = title.clone();
            }
            if let Some(description) = &moved.description {
                view.description = description.clone();
            }
        }
        if let Some(recurrence) = view.recurrence.as_mut() {
            recurrence.occurrence = Some(OccurrenceOf {
                original_start: occurrence.original_start,
                series_start: self.series_start,
            });
        }
        view
    }

    /// Converts a rule start to a local wall-clock time, for moving
    /// exceptions along with a changed series start.
    pub fn local_time(&self, minute: UnixMinute) -> NaiveDateTime {
        minute_to_utc(minute)
            .with_timezone(&self.zone)
            .naive_local()
    }

    pub fn local_start(&self) -> NaiveDateTime {
        self.local_start
    }
}

/// Converts a local wall-clock time to an instant with this module's DST
/// policy: a time in a gap moves forward by the gap's length, and a time in
/// a repeated hour takes the earlier instant.
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> UnixMinute {
    let instant = match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(time) => time.timestamp(),
        chrono::LocalResult::Ambiguous(first, second) => first.timestamp().min(second.timestamp()),
        chrono::LocalResult::None => {
            // Read the time with the offset in force before the gap; a day
            // earlier is before any gap that contains `local`.
            let before = local - Duration::days(1);
            let offset = zone.offset_from_utc_datetime(&before).fix();
            (local - Duration::seconds(i64::from(offset.local_minus_utc())))
                .and_utc()
                .timestamp()
        }
    };
    instant.div_euclid(60)
}

/// Local time of a minute in a zone given by name, for callers outside this
/// module; `None` for an unknown zone.
pub fn local_time_in(zone: &str, minute: UnixMinute) -> Option<NaiveDateTime> {
    let zone: Tz = zone.parse().ok()?;
    Some(minute_to_utc(minute).with_timezone(&zone).naive_local())
}

/// Converts a local time in a zone given by name to an instant, with the DST policy
/// of [`resolve_local`]; `None` for an unknown zone.
pub fn instant_in(zone: &str, local: NaiveDateTime) -> Option<UnixMinute> {
    let zone: Tz = zone.parse().ok()?;
    Some(resolve_local(zone, local))
}

fn minute_to_utc(minute: UnixMinute) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn month_name(month: u8) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let index = usize::from(month.clamp(1, 12)) - 1;
    NAMES[index].to_string()
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn weekday_words(weekday: &NWeekday) -> String {
    match weekday {
        NWeekday::Every(day) => weekday_name(*day).to_string(),
        NWeekday::Nth(number, day) => {
            format!(
                "the {} {}",
                ordinal_words(i32::from(*number)),
                weekday_name(*day)
            )
        }
    }
}

fn day_words(day: i8) -> String {
    format!("the {} day", ordinal_words(i32::from(day)))
}

/// "1st", "2nd", "last", "2nd to last".
fn ordinal_words(number: i32) -> String {
    match number {
        -1 => "last".to_string(),
        n if n < 0 => format!("{} to last", ordinal_words(-n)),
        n => {
            let suffix = match (n % 10, n % 100) {
                (1, 11) | (2, 12) | (3, 13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
    }
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::{EventView, OccurrenceOverride, Recurrence, Timing, Visibility};
    use super::*;

    #[test]
    fn non_ascii_weekday_rejected() {
        // Found by fuzzing the iCalendar import: the rrule crate panicked on
        // the two-byte character inside "THԷR".
        let rule = "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH\u{537}R;BYSETPOS=-1;COUNT=3";
        let error = ParsedRule::parse(rule).expect_err("a rule with a non-ASCII weekday");
        assert!(error.contains("non-ASCII character"), "{error}");
    }

    fn local(zone: &str, date: &str, time: &str) -> UnixMinute {
        let naive =
            NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap();
        instant_in(zone, naive).unwrap()
    }

    fn utc(text: &str) -> UnixMinute {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        naive.and_utc().timestamp() / 60
    }

    fn series(zone: &str, start: UnixMinute, minutes: u32, rule: &str) -> EventView {
        EventView {
            id: 1,
            version: 1,
            title: "Series".into(),
            description: String::new(),
            start,
            duration_minutes: minutes,
            zone: zone.into(),
            host: "alice".into(),
            visibility: Visibility::Public,
            recurrence: Some(Box::new(Recurrence {
                rule: rule.into(),
                ..Recurrence::default()
            })),
            responses: Vec::new(),
            timing: Timing::Zoned,
        }
    }

    /// Local start times of every occurrence, as `YYYY-MM-DD HH:MM`.
    fn local_starts(event: &EventView) -> Vec<String> {
        let expander = Expander::new(event).unwrap();
        let occurrences = expander.occurrences(UnixMinute::MIN, UnixMinute::MAX);
        occurrences
            .iter()
            .map(|occurrence| {
                let time = local_time_in(&event.zone, occurrence.start).unwrap();
                time.format("%Y-%m-%d %H:%M").to_string()
            })
            .collect()
    }

    fn utc_starts(event: &EventView) -> Vec<UnixMinute> {
        let expander = Expander::new(event).unwrap();
        let occurrences = expander.occurrences(UnixMinute::MIN, UnixMinute::MAX);
        occurrences
            .iter()
            .map(|occurrence| occurrence.start)
            .collect()
    }

    #[test]
    fn all_day_occurrences_end_at_midnight() {
        let zone = "Europe/Berlin";
        let start = local(zone, "2025-03-29", "00:00");
        let mut event = series(zone, start, 24 * 60, "FREQ=DAILY;COUNT=3");
        event.timing = Timing::AllDay;
        let expander = Expander::new(&event).unwrap();
        let ends: Vec<UnixMinute> = expander
            .occurrences(UnixMinute::MIN, UnixMinute::MAX)
            .iter()
            .map(|occurrence| occurrence.end)
            .collect();
        // 03-30 has 23 hours in Berlin, so its occurrence is 23 hours long.
        let expected = [
            local(zone, "2025-03-30", "00:00"),
            local(zone, "2025-03-31", "00:00"),
            local(zone, "2025-04-01", "00:00"),
        ];
        assert_eq!(ends, expected);
        assert_eq!(expected[1] - expected[0], 23 * 60);
        let at = expander.occurrence_at(local(zone, "2025-03-30", "00:00"));
        assert_eq!(at.end, expected[1]);
    }

    #[test]
    fn daily_with_interval_and_count() {
        let start = local("UTC", "2027-01-04", "09:00");
        let event = series("UTC", start, 30, "FREQ=DAILY;INTERVAL=3;COUNT=4");
        let expected = [
            "2027-01-04 09:00",
            "2027-01-07 09:00",
            "2027-01-10 09:00",
            "2027-01-13 09:00",
        ];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn weekly_on_several_weekdays() {
        let start = local("Europe/Paris", "2027-01-05", "10:00");
        let rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=5";
        let event = series("Europe/Paris", start, 60, rule);
        let expected = [
            "2027-01-05 10:00",
            "2027-01-07 10:00",
            "2027-01-19 10:00",
            "2027-01-21 10:00",
            "2027-02-02 10:00",
        ];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn monthly_by_day_skips_short_months() {
        let start = local("UTC", "2027-01-31", "08:00");
        let event = series("UTC", start, 30, "FREQ=MONTHLY;COUNT=4");
        let expected = [
            "2027-01-31 08:00",
            "2027-03-31 08:00",
            "2027-05-31 08:00",
            "2027-07-31 08:00",
        ];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn monthly_last_friday() {
        let start = local("UTC", "2027-01-29", "16:00");
        let event = series("UTC", start, 60, "FREQ=MONTHLY;BYDAY=-1FR;COUNT=3");
        let expected = ["2027-01-29 16:00", "2027-02-26 16:00", "2027-03-26 16:00"];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn yearly_skips_missing_leap_day() {
        let start = local("UTC", "2028-02-29", "12:00");
        let event = series("UTC", start, 60, "FREQ=YEARLY;COUNT=2");
        assert_eq!(
            local_starts(&event),
            ["2028-02-29 12:00", "2032-02-29 12:00"]
        );
    }

    #[test]
    fn until_date_is_inclusive_local_day() {
        let start = local("America/New_York", "2027-06-28", "23:00");
        let rule = "FREQ=DAILY;UNTIL=20270630";
        let event = series("America/New_York", start, 30, rule);
        let expected = ["2027-06-28 23:00", "2027-06-29 23:00", "2027-06-30 23:00"];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn exceptions_and_overrides_apply() {
        let start = local("UTC", "2027-01-04", "09:00");
        let mut event = series("UTC", start, 15, "FREQ=WEEKLY;COUNT=4");
        let week = 7 * 24 * 60;
        let recurrence = event.recurrence.as_mut().unwrap();
        recurrence.exceptions = vec![start + week];
        recurrence.overrides = vec![OccurrenceOverride {
            original_start: start + 2 * week,
            start: start + 2 * week + 24 * 60,
            duration_minutes: 45,
            title: Some("Moved".into()),
            description: None,
        }];
        let expander = Expander::new(&event).unwrap();
        let found = expander.occurrences(UnixMinute::MIN, UnixMinute::MAX);
        let expected = vec![
            Occurrence {
                start,
                end: start + 15,
                original_start: start,
            },
            Occurrence {
                start: start + 2 * week + 24 * 60,
                end: start + 2 * week + 24 * 60 + 45,
                original_start: start + 2 * week,
            },
            Occurrence {
                start: start + 3 * week,
                end: start + 3 * week + 15,
                original_start: start + 3 * week,
            },
        ];
        assert_eq!(found, expected);
        let view = expander.occurrence_view(&event, &found[1]);
        assert_eq!(view.title, "Moved");
        assert_eq!(view.duration_minutes, 45);
        let of = view.recurrence.unwrap().occurrence.unwrap();
        assert_eq!(of.original_start, start + 2 * week);
        assert_eq!(of.series_start, start);
    }

    #[test]
    fn dst_keeps_wall_clock_in_berlin() {
        let start = local("Europe/Berlin", "2027-03-22", "09:15");
        let event = series("Europe/Berlin", start, 15, "FREQ=WEEKLY;COUNT=3");
        // Berlin moves from +01:00 to +02:00 on 2027-03-28.
        let expected = vec![
            utc("2027-03-22 08:15"),
            utc("2027-03-29 07:15"),
            utc("2027-04-05 07:15"),
        ];
        assert_eq!(utc_starts(&event), expected);
        let autumn = local("Europe/Berlin", "2027-10-25", "09:15");
        let event = series("Europe/Berlin", autumn, 15, "FREQ=WEEKLY;COUNT=2");
        // And back to +01:00 on 2027-10-31.
        let expected = vec![utc("2027-10-25 07:15"), utc("2027-11-01 08:15")];
        assert_eq!(utc_starts(&event), expected);
    }

    #[test]
    fn dst_gap_moves_forward_in_new_york() {
        // 02:30 does not exist on 2027-03-14 in New York.
        let start = local("America/New_York", "2027-03-13", "02:30");
        let event = series("America/New_York", start, 30, "FREQ=DAILY;COUNT=3");
        let expected = ["2027-03-13 02:30", "2027-03-14 03:30", "2027-03-15 02:30"];
        assert_eq!(local_starts(&event), expected);
        assert_eq!(utc_starts(&event)[1], utc("2027-03-14 07:30"));
    }

    #[test]
    fn repeated_hour_takes_first_instant() {
        // 01:30 happens twice on 2027-11-07 in New York: EDT, then EST.
        let start = local("America/New_York", "2027-11-06", "01:30");
        let event = series("America/New_York", start, 30, "FREQ=DAILY;COUNT=3");
        let starts = utc_starts(&event);
        assert_eq!(starts[0], utc("2027-11-06 05:30"));
        assert_eq!(starts[1], utc("2027-11-07 05:30"));
        assert_eq!(starts[2], utc("2027-11-08 06:30"));
    }

    #[test]
    fn desk_duty_mixes_plain_and_numbered_weekdays() {
        let start = local("Europe/London", "2025-01-06", "10:00");
        let rule = "FREQ=MONTHLY;COUNT=7;BYDAY=MO,-1WE;WKST=SU";
        let event = series("Europe/London", start, 30, rule);
        let expected = [
            "2025-01-06 10:00",
            "2025-01-13 10:00",
            "2025-01-20 10:00",
            "2025-01-27 10:00",
            "2025-01-29 10:00",
            "2025-02-03 10:00",
            "2025-02-10 10:00",
        ];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn timesheets_on_last_weekday() {
        let start = local("Europe/London", "2025-01-31", "17:00");
        let rule = "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3";
        let event = series("Europe/London", start, 30, rule);
        let expected = vec![
            utc("2025-01-31 17:00"),
            utc("2025-02-28 17:00"),
            utc("2025-03-31 16:00"),
        ];
        assert_eq!(utc_starts(&event), expected);
    }

    #[test]
    fn negative_month_day_picks_31_day_months() {
        let start = local("Europe/London", "2025-01-01", "00:00");
        let event = series(
            "Europe/London",
            start,
            24 * 60,
            "FREQ=MONTHLY;BYMONTHDAY=-31;COUNT=3",
        );
        let expected = ["2025-01-01 00:00", "2025-03-01 00:00", "2025-05-01 00:00"];
        assert_eq!(local_starts(&event), expected);
    }

    #[test]
    fn until_at_dst_change_is_included() {
        let start = local("America/New_York", "2024-03-01", "09:00");
        let rule = "FREQ=WEEKLY;UNTIL=20240315T130000Z";
        let event = series("America/New_York", start, 60, rule);
        let expected = vec![
            utc("2024-03-01 14:00"),
            utc("2024-03-08 14:00"),
            utc("2024-03-15 13:00"),
        ];
        assert_eq!(utc_starts(&event), expected);
    }

    #[test]
    fn tijuana_until_after_dst_is_included() {
        let start = local("America/Tijuana", "2024-01-08", "09:30");
        let rule = "FREQ=WEEKLY;BYDAY=MO;UNTIL=20240311T163000Z";
        let event = series("America/Tijuana", start, 60, rule);
        let starts = utc_starts(&event);
        assert_eq!(starts.len(), 10);
        assert_eq!(starts[0], utc("2024-01-08 17:30"));
        assert_eq!(starts[9], utc("2024-03-11 16:30"));
        let locals = local_starts(&event);
        assert!(
            locals.iter().all(|time| time.ends_with("09:30")),
            "{locals:?}"
        );
        assert_eq!(locals[9], "2024-03-11 09:30");
    }

    #[test]
    fn parse_rejects_unsupported_rules() {
        let cases = [
            ("FREQ=HOURLY", "FREQ=HOURLY"),
            ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
            ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "COUNT and UNTIL"),
            ("FREQ=DAILY;COUNT=0", "COUNT=0"),
            ("FREQ=DAILY;UNTIL=2027", "UNTIL=2027"),
            ("FREQ=SOMETIMES", "not a valid RRULE"),
        ];
        for (text, expected) in cases {
            let error = ParsedRule::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn canonical_text_keeps_until() {
        let rule =
            ParsedRule::parse("rrule:freq=weekly;until=20270630T215900Z;byday=tu,th").unwrap();
        assert_eq!(
            rule.canonical(),
            "FREQ=WEEKLY;UNTIL=20270630T215900Z;BYDAY=TU,TH"
        );
        let rule = ParsedRule::parse("FREQ=DAILY;INTERVAL=2;UNTIL=20270630").unwrap();
        assert_eq!(rule.canonical(), "FREQ=DAILY;UNTIL=20270630;INTERVAL=2");
        assert!(rule.is_bounded());
        assert!(!ParsedRule::parse("FREQ=DAILY").unwrap().is_bounded());
    }

    #[test]
    fn describe_in_words() {
        let cases = [
            (
                "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                "every week on Monday, Tuesday, Wednesday, Thursday and Friday",
            ),
            (
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=5",
                "every 2 weeks on Tuesday and Thursday, 5 times",
            ),
            ("FREQ=MONTHLY;BYDAY=-1FR", "every month on the last Friday"),
            (
                "FREQ=MONTHLY;BYMONTHDAY=-31",
                "every month on the 31st to last day",
            ),
            ("FREQ=DAILY;UNTIL=20270630", "every day, until 2027-06-30"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                ParsedRule::parse(text).unwrap().describe(),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn split_helpers_keep_the_count() {
        let rule = ParsedRule::parse("FREQ=DAILY;COUNT=10").unwrap();
        assert_eq!(rule.ended_before(1000, 4).canonical(), "FREQ=DAILY;COUNT=4");
        assert_eq!(rule.counted_after(4).canonical(), "FREQ=DAILY;COUNT=6");
        let endless = ParsedRule::parse("FREQ=DAILY").unwrap();
        let ended = endless.ended_before(utc("2027-01-05 09:00"), 4);
        assert_eq!(ended.canonical(), "FREQ=DAILY;UNTIL=20270105T085900Z");
    }
}
