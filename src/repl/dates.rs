//! Date, time and duration expressions as people type them at the prompt.
//!
//! Everything here is a pure function of the text and a [`DateContext`]: the
//! caller passes "now" and the user's zone, so nothing reads a clock. Every
//! calendar computation (month lengths, leap years, offsets, DST transitions)
//! is done by chrono and chrono-tz.
//!
//! # Point expressions
//!
//! A point is `[DATE] [TIME] [ZONE]`, `DATE all day`, `all day`, `now`, or
//! `in N UNIT [TIME] [ZONE]`:
//!
//! - DATE: `2027-01-05`, `today`, `tomorrow`, `yesterday`, a weekday (`fri`,
//!   `friday`, `this friday`), `next monday` (the first Monday strictly
//!   after today), `29.02.` (current year), `29.02.24` (two-digit years are
//!   20yy), `29.02.2024`, `February 29, 2016`, `Feb 29`, `29 February 2016`.
//!   A date without a year takes the current year in the user's zone and is
//!   an error if that year lacks the day: it never rolls into the next month.
//! - TIME: `14:30`, `9:05`, `3pm`, `3 pm`, `12:12 AM`, `noon`, `midnight`,
//!   and `24:00`, which is accepted only as an end and means the end of the
//!   given day. With am/pm, 12 AM is 00:xx, 12 PM is 12:xx, and hours 0 and 13
//!   or above are errors.
//! - ZONE: an IANA name such as `Europe/Paris` (any letter case), `UTC` or
//!   `GMT`. The local date and time are read in that zone instead of the
//!   user's.
//! - `in N UNIT`: years, months, weeks and days move the local calendar date
//!   and keep the wall-clock time, unless a time follows them. chrono clamps
//!   the day to the last day of the target month, so `in 1 year` from
//!   29 February gives 28 February. Hours and minutes add elapsed time.
//!
//! Rules for missing parts:
//!
//! - A time without a date is today, unless it is already past: then it is
//!   tomorrow. So at 10:00, `14:00` is today and `09:00` is tomorrow.
//! - A date without a time is the start of that day (00:00, or the first
//!   minute that exists there). It is not all-day: write `all day` for that.
//! - A weekday name is the next such day, or today if today is that weekday,
//!   unless a time is given that is already past today: then it is the same
//!   weekday next week. So on a Friday at 10:00, `fri` and `fri 14:00` are
//!   today and `fri 09:00` is in seven days.
//!
//! # Daylight saving time
//!
//! A local time inside a DST gap does not exist. Following RFC 5545 (section
//! 3.3.5), it is read with the UTC offset in force before the gap, which
//! moves it forward by the gap's length: New York, 2007-03-11 02:30 becomes
//! 03:30 EDT (07:30 UTC). A notice reports the move. A local time that occurs twice
//! (clocks fall back) takes the first, earlier occurrence, also with a notice.
//!
//! # Spans and durations
//!
//! A span is `START [END | to END | for DURATION] [REST...]`, where a start
//! and end time may be joined by a hyphen (`10:00-11:30`); see
//! [`parse_span`]. A duration is `45m`, `1h30m`, `2h`, `1d`, `2 hours`,
//! `1 hour 30 minutes`; see [`parse_duration`].

use std::fmt;

use chrono::{
    DateTime, Datelike, Days, Month, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

/// Length of an event when a span gives neither an end nor a duration.
pub const DEFAULT_DURATION_MINUTES: u32 = 60;

/// Longest accepted duration: 366 days. Anything longer is almost surely a
/// typo (`for 500d`), and keeps every span within `u32` minutes.
pub const MAX_DURATION_MINUTES: u32 = 366 * 24 * 60;

/// Longest DST gap searched for when a local time does not exist. The largest
/// known gap is a whole day (Pacific/Apia skipped 2011-12-30); two days leave
/// room for any zone data.
const MAX_GAP_MINUTES: i64 = 2 * 24 * 60;

/// IANA area prefixes: a word starting with one of these and a `/` is meant as
/// a time zone, so a misspelling is an error instead of a title word.
const ZONE_AREAS: &[&str] = &[
    "africa",
    "america",
    "antarctica",
    "arctic",
    "asia",
    "atlantic",
    "australia",
    "europe",
    "indian",
    "pacific",
    "etc",
];

/// Examples appended to "expected a date or time" errors.
const WHEN_EXAMPLES: &str =
    "e.g. tomorrow 9:30, fri 14:00, 2027-01-05 10:00 Europe/Paris, in 3 days";

/// The reference the expressions are read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateContext {
    /// The current instant; `today`, weekdays and `in ...` count from it.
    pub now: DateTime<Utc>,
    /// The user's zone, used unless the expression names another.
    pub zone: Tz,
}

/// A parsed point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// The UTC instant, at minute resolution. For an all-day point it is the
    /// first instant of that day in `zone`.
    pub instant: DateTime<Utc>,
    /// The zone the expression was read in.
    pub zone: Tz,
    /// The calendar date when the expression was `DATE all day`.
    pub all_day: Option<NaiveDate>,
    /// Adjustments to show the user, such as a local time moved out of a DST
    /// gap.
    pub notices: Vec<String>,
}

/// A parsed start and end, with the words that follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The first minute of the span, in UTC.
    pub start: DateTime<Utc>,
    /// The first minute after the span (exclusive end), in UTC.
    pub end: DateTime<Utc>,
    /// The zone the start was read in.
    pub zone: Tz,
    /// The first calendar date of an all-day span.
    pub all_day: Option<NaiveDate>,
    /// Notices from reading the start and the end.
    pub notices: Vec<String>,
    /// How many of the input words the start and end used.
    pub consumed: usize,
    /// The input words after the span, such as a title.
    pub rest: Vec<String>,
}

impl Span {
    /// Returns the length of the span in minutes.
    pub fn duration_minutes(&self) -> u32 {
        let minutes = (self.end - self.start).num_minutes();
        u32::try_from(minutes).expect("span length is checked against MAX_DURATION_MINUTES")
    }
}

/// Rejection of a date, time or duration expression. Each message names the
/// input and shows how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// A word shaped like a time that is not a valid time of day.
    #[error("\"{text}\" is not a time of day: {reason}")]
    InvalidTime { text: String, reason: String },
    /// A word shaped like a date that names no existing day.
    #[error("\"{text}\" is not a valid date: {reason}")]
    InvalidDate { text: String, reason: String },
    /// A duration that cannot be read or is out of range.
    #[error("\"{text}\" is not a valid duration: {reason}")]
    InvalidDuration { text: String, reason: String },
    /// A word shaped like an IANA zone name that no zone has.
    #[error("\"{text}\" is not a known time zone: {reason}")]
    UnknownZone { text: String, reason: String },
    /// The input ended where a part was required.
    #[error("missing {expected}: {hint}")]
    Missing {
        expected: &'static str,
        hint: String,
    },
    /// A word that does not fit at its position.
    #[error("unexpected \"{text}\": expected {expected}; {hint}")]
    Unexpected {
        text: String,
        expected: &'static str,
        hint: String,
    },
    /// An end at or before its start.
    #[error("the end ({end}) is not after the start ({start}): {hint}")]
    EndNotAfterStart {
        start: String,
        end: String,
        hint: String,
    },
    /// A computation that leaves chrono's date range.
    #[error("\"{text}\" is out of range: {reason}")]
    OutOfRange { text: String, reason: String },
}

/// Parses a point in time that is the whole of `text`, such as
/// `tomorrow 9:30` or `2027-01-05 10:00 Europe/Paris`.
///
/// `24:00` is rejected here because it is only valid as an end.
pub fn parse_when(text: &str, ctx: &DateContext) -> Result<When, DateError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut cursor = Cursor::new(&words);
    let Some(point) = parse_point(&mut cursor, ctx, Role::Start)? else {
        return Err(match words.first() {
            None => DateError::Missing {
                expected: "a date or time",
                hint: WHEN_EXAMPLES.to_string(),
            },
            Some(word) => not_a_when(word),
        });
    };
    if let Some(word) = cursor.peek() {
        return Err(DateError::Unexpected {
            text: word.to_string(),
            expected: "the end of the date and time",
            hint: "write the date first, then the time, then an optional zone, \
                   e.g. tomorrow 10:00 Europe/Paris"
                .to_string(),
        });
    }
    resolve_start(&point, ctx)
}

/// Parses a duration that is the whole of `text` and returns it in minutes.
///
/// Accepted: a number with a unit, attached or as the next word, and several
/// of them in a row: `45m`, `1h30m`, `1h 30m`, `2h`, `1d`, `2 hours`,
/// `1 hour 30 minutes`. Units are `w`/`week(s)`, `d`/`day(s)`,
/// `h`/`hr(s)`/`hour(s)` and `m`/`min(s)`/`minute(s)`. A bare number such as
/// `90` is rejected, because it could mean minutes or hours; write `90m`.
/// The total must be at least one minute and at most
/// [`MAX_DURATION_MINUTES`].
pub fn parse_duration(text: &str) -> Result<u32, DateError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut cursor = Cursor::new(&words);
    let minutes = parse_duration_words(&mut cursor)?;
    if let Some(word) = cursor.peek() {
        return Err(DateError::InvalidDuration {
            text: text.trim().to_string(),
            reason: format!("\"{word}\" is not a duration part; write e.g. 1h30m"),
        });
    }
    Ok(minutes)
}

/// Parses a date-time span as people type it: `START [END | to END | for
/// DURATION] [REST...]`, and returns the start, the end and the words after
/// them (e.g. a title).
///
/// - END is `[DATE] TIME [ZONE]` right after the start, or after `to`,
///   `until` or `-`. Only after `to` may it be a date alone, which then ends
///   with that whole day. A word after the start that is a date not followed
///   by a time is left for REST, so `tomorrow 20:00 friday drinks` has the
///   title `friday drinks`.
/// - An END without a date is on the start's date, and moves to the next day
///   if it is earlier than the start: `20:00 12am` ends at the next midnight.
///   `24:00` ends at the end of the start's date. An END equal to the start,
///   or an END with a date that is not after the start, is an error.
/// - With neither END nor DURATION the span lasts
///   [`DEFAULT_DURATION_MINUTES`], except `DATE all day`, which lasts until
///   the next day starts. `DATE all day for 3d` lasts three calendar days; an
///   all-day duration must be whole days.
/// - Durations count elapsed minutes from the start (see [`parse_duration`]).
/// - A word shaped like a time but invalid, such as `24:30`, is an error, never
///   part of REST.
pub fn parse_span(words: &[&str], ctx: &DateContext) -> Result<Span, DateError> {
    let split = split_time_ranges(words);
    let words: Vec<&str> = split.iter().map(String::as_str).collect();
    let words = words.as_slice();
    let mut cursor = Cursor::new(words);
    let Some(point) = parse_point(&mut cursor, ctx, Role::Start)? else {
        return Err(match words.first() {
            None => DateError::Missing {
                expected: "a start date or time",
                hint: WHEN_EXAMPLES.to_string(),
            },
            Some(word) => not_a_when(word),
        });
    };
    let start = resolve_start(&point, ctx)?;
    let mut notices = start.notices.clone();

    let end = match start.all_day {
        Some(date) => parse_all_day_end(&mut cursor, date, &start)?,
        None => parse_end(&mut cursor, ctx, &start, &mut notices)?,
    };
    check_span_length(start.instant, end)?;

    let consumed = cursor.pos;
    Ok(Span {
        start: start.instant,
        end,
        zone: start.zone,
        all_day: start.all_day,
        notices,
        consumed,
        rest: words[consumed..].iter().map(|w| w.to_string()).collect(),
    })
}

/// Splits each word shaped like `10:00-11:30` or `9am-5pm` into its start
/// and end, so that the range reads like `10:00 11:30`. A side must contain
/// `:` or am/pm, which keeps ISO dates such as `2027-01-05` whole.
fn split_time_ranges(words: &[&str]) -> Vec<String> {
    let mut split = Vec::with_capacity(words.len());
    for word in words {
        let clock_like = |side: &str| {
            let lower = side.to_ascii_lowercase();
            let (clock, meridiem) = split_meridiem(&lower);
            let shaped = !clock.is_empty() && clock.chars().all(|c| c.is_ascii_digit() || c == ':');
            shaped && (clock.contains(':') || meridiem.is_some())
        };
        match word.split_once('-') {
            Some((start, end)) if clock_like(start) && clock_like(end) => {
                split.push(start.to_string());
                split.push(end.to_string());
            }
            _ => split.push(word.to_string()),
        }
    }
    split
}

/// Whether a point is read as a start (or a lone point) or as an end. Only an
/// end accepts `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Start,
    End,
}

/// A read-only position in a list of words.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    words: &'a [&'a str],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(words: &'a [&'a str]) -> Self {
        Cursor { words, pos: 0 }
    }

    /// Returns the number of words consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<&'a str> {
        self.words.get(self.pos + ahead).copied()
    }

    fn peek_is(&self, ahead: usize, word: &str) -> bool {
        self.peek_at(ahead)
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    }

    fn advance(&mut self, count: usize) {
        self.pos = (self.pos + count).min(self.words.len());
    }
}

/// The date part of a point, before it is placed on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateSpec {
    Fixed(NaiveDate),
    Weekday(Weekday),
    /// `in N years/months/weeks/days`: a shift of the local date and time.
    Shift {
        months: u32,
        days: u64,
    },
}

/// The time part of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeSpec {
    At(NaiveTime),
    /// `24:00`: the end of the given day.
    EndOfDay,
}

/// A point expression as read from the words, not yet resolved to an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Point {
    date: Option<DateSpec>,
    time: Option<TimeSpec>,
    zone: Option<Tz>,
    all_day: bool,
    /// `now` or `in N hours/minutes`: minutes added to the current minute.
    elapsed_minutes: Option<i64>,
    /// The words of the expression, for messages.
    text: String,
}

impl Point {
    /// Returns whether the point names a time of day.
    pub(crate) fn has_time(&self) -> bool {
        self.time.is_some() || self.elapsed_minutes.is_some()
    }
}

/// Reads the longest point expression at the cursor. Returns `Ok(None)`, with
/// the cursor unmoved, when the first word starts no date or time at all.
pub(crate) fn parse_point(
    cursor: &mut Cursor<'_>,
    ctx: &DateContext,
    role: Role,
) -> Result<Option<Point>, DateError> {
    let first = cursor.pos;
    let mut point = Point {
        date: None,
        time: None,
        zone: None,
        all_day: false,
        elapsed_minutes: None,
        text: String::new(),
    };

    if role == Role::Start && cursor.peek_is(0, "now") {
        cursor.advance(1);
        point.elapsed_minutes = Some(0);
    } else if role == Role::Start && cursor.peek_is(0, "in") {
        parse_relative(cursor, &mut point)?;
    } else {
        point.date = parse_date(cursor, ctx)?;
    }

    if point.elapsed_minutes.is_none() {
        if cursor.peek_is(0, "all") && cursor.peek_is(1, "day") {
            cursor.advance(2);
            point.all_day = true;
        } else {
            point.time = parse_time(cursor, role)?;
        }
    }
    point.zone = parse_zone(cursor)?;
    if point.zone.is_some()
        && !point.all_day
        && cursor.peek_is(0, "all")
        && cursor.peek_is(1, "day")
    {
        cursor.advance(2);
        point.all_day = true;
    }

    if cursor.pos == first {
        return Ok(None);
    }
    point.text = cursor.words[first..cursor.pos].join(" ");
    if point.all_day && matches!(point.date, Some(DateSpec::Shift { .. })) {
        return Err(DateError::Unexpected {
            text: point.text,
            expected: "a date before \"all day\"",
            hint: "write a date such as 2027-01-05 all day".to_string(),
        });
    }
    Ok(Some(point))
}

/// Places a start point on the calendar.
pub(crate) fn resolve_start(point: &Point, ctx: &DateContext) -> Result<When, DateError> {
    let zone = point.zone.unwrap_or(ctx.zone);
    let now = truncate_to_minute(ctx.now);
    let mut notices = Vec::new();

    if let Some(minutes) = point.elapsed_minutes {
        let instant = now
            .checked_add_signed(TimeDelta::minutes(minutes))
            .ok_or_else(|| out_of_range(&point.text))?;
        return Ok(When {
            instant,
            zone,
            all_day: None,
            notices,
        });
    }

    let now_local = now.with_timezone(&zone).naive_local();
    let (date, default_time) = match point.date {
        None => (today(ctx), NaiveTime::MIN),
        Some(DateSpec::Fixed(date)) => (date, NaiveTime::MIN),
        Some(DateSpec::Weekday(weekday)) => (next_weekday(today(ctx), weekday, 0), NaiveTime::MIN),
        Some(DateSpec::Shift { months, days }) => {
            let shifted = now_local
                .checked_add_months(Months::new(months))
                .and_then(|t| t.checked_add_days(Days::new(days)))
                .ok_or_else(|| out_of_range(&point.text))?;
            (shifted.date(), shifted.time())
        }
    };

    if point.all_day {
        let instant = start_of_day(date, zone)?;
        return Ok(When {
            instant,
            zone,
            all_day: Some(date),
            notices,
        });
    }

    let time = match point.time {
        None => default_time,
        Some(TimeSpec::At(time)) => time,
        // Only an end point can hold 24:00; read as a point it is the next day's start.
        Some(TimeSpec::EndOfDay) => {
            let next = add_days(date, 1, &point.text)?;
            let instant = resolve_local(next.and_time(NaiveTime::MIN), zone, &mut notices)?;
            return Ok(When {
                instant,
                zone,
                all_day: None,
                notices,
            });
        }
    };
    let mut instant = resolve_local(date.and_time(time), zone, &mut notices)?;

    // A weekday that is today with a time already past means next week's,
    // and a time without a date that is already past today means tomorrow's.
    if instant < now && point.time.is_some() {
        let later = match point.date {
            Some(DateSpec::Weekday(weekday)) => Some(next_weekday(today(ctx), weekday, 1)),
            None => Some(add_days(date, 1, &point.text)?),
            Some(_) => None,
        };
        if let Some(later) = later {
            notices.clear();
            instant = resolve_local(later.and_time(time), zone, &mut notices)?;
        }
    }
    Ok(When {
        instant,
        zone,
        all_day: None,
        notices,
    })
}

/// Places an end point on the calendar, after `start`. Without a date the end
/// is on the start's local date, or the next day if it would be earlier.
pub(crate) fn resolve_end(
    point: &Point,
    start: &When,
    notices: &mut Vec<String>,
) -> Result<DateTime<Utc>, DateError> {
    let zone = point.zone.unwrap_or(start.zone);
    let end = match point.date {
        Some(spec) => {
            let date = match spec {
                DateSpec::Fixed(date) => date,
                DateSpec::Weekday(weekday) => {
                    let start_date = start.instant.with_timezone(&zone).date_naive();
                    next_weekday(start_date, weekday, 0)
                }
                DateSpec::Shift { .. } => unreachable!("an end is never read as `in ...`"),
            };
            match point.time {
                None | Some(TimeSpec::EndOfDay) => end_of_day(date, zone, &point.text)?,
                Some(TimeSpec::At(time)) => resolve_local(date.and_time(time), zone, notices)?,
            }
        }
        None => {
            let base = start.instant.with_timezone(&zone).date_naive();
            match point.time {
                None | Some(TimeSpec::EndOfDay) => end_of_day(base, zone, &point.text)?,
                Some(TimeSpec::At(time)) => {
                    let mut end_notices = Vec::new();
                    let mut end = resolve_local(base.and_time(time), zone, &mut end_notices)?;
                    if end < start.instant {
                        end_notices.clear();
                        let next = add_days(base, 1, &point.text)?;
                        end = resolve_local(next.and_time(time), zone, &mut end_notices)?;
                    }
                    notices.extend(end_notices);
                    end
                }
            }
        }
    };
    if end <= start.instant {
        return Err(DateError::EndNotAfterStart {
            start: format_local(start.instant, start.zone),
            end: format_local(end, zone),
            hint: "give a later end time, or a duration such as for 1h".to_string(),
        });
    }
    Ok(end)
}

/// Reads `[END | to END | for DURATION]` after a timed start.
fn parse_end(
    cursor: &mut Cursor<'_>,
    ctx: &DateContext,
    start: &When,
    notices: &mut Vec<String>,
) -> Result<DateTime<Utc>, DateError> {
    if cursor.peek_is(0, "for") {
        cursor.advance(1);
        let minutes = parse_duration_words(cursor)?;
        return add_minutes(start.instant, minutes);
    }

    let explicit = ["to", "until", "till", "-"]
        .iter()
        .any(|word| cursor.peek_is(0, word));
    if explicit {
        let keyword = cursor.peek().unwrap_or_default();
        cursor.advance(1);
        let Some(point) = parse_point(cursor, ctx, Role::End)? else {
            return Err(match cursor.peek() {
                None => DateError::Missing {
                    expected: "an end after \"to\"",
                    hint: format!("write e.g. {keyword} 18:00 or {keyword} friday"),
                },
                Some(word) => DateError::Unexpected {
                    text: word.to_string(),
                    expected: "an end date or time",
                    hint: format!("write e.g. {keyword} 18:00 or {keyword} friday"),
                },
            });
        };
        return resolve_end(&point, start, notices);
    }

    // An end right after the start must have a time; otherwise the words are
    // left for the caller (a title such as "friday drinks").
    let before = cursor.pos;
    match parse_point(cursor, ctx, Role::End)? {
        Some(point) if point.has_time() => resolve_end(&point, start, notices),
        _ => {
            cursor.pos = before;
            add_minutes(start.instant, DEFAULT_DURATION_MINUTES)
        }
    }
}

/// Reads an optional `for DURATION` after `DATE all day` and returns the start
/// of the day after the span.
fn parse_all_day_end(
    cursor: &mut Cursor<'_>,
    date: NaiveDate,
    start: &When,
) -> Result<DateTime<Utc>, DateError> {
    let mut days = 1;
    if cursor.peek_is(0, "for") {
        let first = cursor.pos + 1;
        cursor.advance(1);
        let minutes = parse_duration_words(cursor)?;
        let text = cursor.words[first..cursor.pos].join(" ");
        if minutes % (24 * 60) != 0 {
            return Err(DateError::InvalidDuration {
                text,
                reason: "an all-day event lasts whole days; write e.g. for 3d".to_string(),
            });
        }
        days = u64::from(minutes / (24 * 60));
    }
    let text = date.to_string();
    let last = add_days(date, days - 1, &text)?;
    end_of_day(last, start.zone, &text)
}

/// Reads `in N UNIT` (or `in 1h30m`) into `point`.
fn parse_relative(cursor: &mut Cursor<'_>, point: &mut Point) -> Result<(), DateError> {
    let in_word = cursor.pos;
    cursor.advance(1);
    let Some(amount_word) = cursor.peek() else {
        return Err(DateError::Missing {
            expected: "an amount after \"in\"",
            hint: "write e.g. in 3 days, in 2 hours, in 1 year".to_string(),
        });
    };

    let (digits, attached_unit) = split_number(amount_word);
    if digits.is_empty() {
        return Err(DateError::Unexpected {
            text: amount_word.to_string(),
            expected: "a number after \"in\"",
            hint: "write e.g. in 3 days, in 2 hours, in 1 year".to_string(),
        });
    }
    let (unit_word, used) = if attached_unit.is_empty() {
        (cursor.peek_at(1).unwrap_or_default(), 2)
    } else {
        (attached_unit, 1)
    };
    let text = cursor.words[in_word..(cursor.pos + used).min(cursor.words.len())].join(" ");
    let amount: u32 = digits.parse().map_err(|_| out_of_range(&text))?;

    let unit = unit_word.to_ascii_lowercase();
    match unit.as_str() {
        "y" | "yr" | "yrs" | "year" | "years" => {
            let months = amount.checked_mul(12).ok_or_else(|| out_of_range(&text))?;
            point.date = Some(DateSpec::Shift { months, days: 0 });
        }
        "mo" | "month" | "months" => {
            point.date = Some(DateSpec::Shift {
                months: amount,
                days: 0,
            })
        }
        "w" | "wk" | "wks" | "week" | "weeks" => {
            let days = u64::from(amount) * 7;
            point.date = Some(DateSpec::Shift { months: 0, days });
        }
        "d" | "day" | "days" => {
            point.date = Some(DateSpec::Shift {
                months: 0,
                days: u64::from(amount),
            })
        }
        "h" | "hr" | "hrs" | "hour" | "hours" => {
            point.elapsed_minutes = Some(i64::from(amount) * 60);
        }
        "m" | "min" | "mins" | "minute" | "minutes" => {
            point.elapsed_minutes = Some(i64::from(amount));
        }
        _ if !attached_unit.is_empty() => {
            // A compound such as `in 1h30m`: read it as elapsed time.
            let minutes = parse_duration(amount_word)?;
            point.elapsed_minutes = Some(i64::from(minutes));
        }
        _ => {
            return Err(DateError::Unexpected {
                text: if unit_word.is_empty() {
                    text
                } else {
                    unit_word.to_string()
                },
                expected: "a unit after the number",
                hint: "write years, months, weeks, days, hours or minutes, e.g. in 3 days"
                    .to_string(),
            })
        }
    }
    cursor.advance(used);
    Ok(())
}

/// Reads a date at the cursor, if the words there are shaped like one.
fn parse_date(cursor: &mut Cursor<'_>, ctx: &DateContext) -> Result<Option<DateSpec>, DateError> {
    let Some(word) = cursor.peek() else {
        return Ok(None);
    };
    let lower = word.to_ascii_lowercase();
    let today = today(ctx);

    let relative_day = match lower.as_str() {
        "today" => Some(0),
        "tomorrow" => Some(1),
        "yesterday" => Some(-1),
        _ => None,
    };
    if let Some(offset) = relative_day {
        cursor.advance(1);
        let date = today
            .checked_add_signed(TimeDelta::days(offset))
            .ok_or_else(|| out_of_range(word))?;
        return Ok(Some(DateSpec::Fixed(date)));
    }
    if let Some(weekday) = weekday_from_word(&lower) {
        cursor.advance(1);
        return Ok(Some(DateSpec::Weekday(weekday)));
    }
    if lower == "next" || lower == "this" {
        let following = cursor.peek_at(1).map(str::to_ascii_lowercase);
        if let Some(weekday) = following.as_deref().and_then(weekday_from_word) {
            cursor.advance(2);
            if lower == "this" {
                return Ok(Some(DateSpec::Weekday(weekday)));
            }
            let tomorrow = add_days(today, 1, word)?;
            return Ok(Some(DateSpec::Fixed(next_weekday(tomorrow, weekday, 0))));
        }
    }
    if let Some(date) = parse_iso_date(word)? {
        cursor.advance(1);
        return Ok(Some(DateSpec::Fixed(date)));
    }
    if let Some(date) = parse_dotted_date(word, today.year())? {
        cursor.advance(1);
        return Ok(Some(DateSpec::Fixed(date)));
    }
    parse_month_name_date(cursor, today.year())
}

/// Reads `2027-01-05` (one- or two-digit month and day accepted).
fn parse_iso_date(word: &str) -> Result<Option<NaiveDate>, DateError> {
    let parts: Vec<&str> = word.split('-').collect();
    let shaped = parts.len() == 3
        && parts[0].len() == 4
        && (1..=2).contains(&parts[1].len())
        && (1..=2).contains(&parts[2].len())
        && parts.iter().all(|p| is_digits(p));
    if !shaped {
        return Ok(None);
    }
    let year: i32 = parts[0].parse().expect("four digits");
    let month: u32 = parts[1].parse().expect("two digits");
    let day: u32 = parts[2].parse().expect("two digits");
    make_date(word, year, month, day, false).map(Some)
}

/// Reads `29.02.`, `29.02.24` or `29.02.2024`. A date without a year takes
/// `current_year`; a two-digit year `yy` means 20yy.
fn parse_dotted_date(word: &str, current_year: i32) -> Result<Option<NaiveDate>, DateError> {
    let parts: Vec<&str> = word.split('.').collect();
    if parts.len() != 3 || !(1..=2).contains(&parts[0].len()) || !(1..=2).contains(&parts[1].len())
    {
        return Ok(None);
    }
    if !is_digits(parts[0]) || !is_digits(parts[1]) {
        return Ok(None);
    }
    let year_text = parts[2];
    let (year, yearless) = match year_text.len() {
        0 => (current_year, true),
        2 if is_digits(year_text) => (2000 + year_text.parse::<i32>().expect("two digits"), false),
        4 if is_digits(year_text) => (year_text.parse::<i32>().expect("four digits"), false),
        _ => {
            return Err(DateError::InvalidDate {
                text: word.to_string(),
                reason: "the year must have two or four digits, e.g. 29.02.24 or 29.02.2024"
                    .to_string(),
            })
        }
    };
    let day: u32 = parts[0].parse().expect("digits");
    let month: u32 = parts[1].parse().expect("digits");
    make_date(word, year, month, day, yearless).map(Some)
}

/// Reads `February 29, 2016`, `Feb 29`, `29 February 2016` or `29 Feb`.
fn parse_month_name_date(
    cursor: &mut Cursor<'_>,
    current_year: i32,
) -> Result<Option<DateSpec>, DateError> {
    let first = cursor.peek().unwrap_or_default();
    let second = cursor.peek_at(1).unwrap_or_default();

    let (month, day_word) = if let Some(month) = month_from_word(first) {
        (month, second)
    } else if let Some(month) = month_from_word(second) {
        (month, first)
    } else {
        return Ok(None);
    };
    let Some(day) = day_of_month(day_word) else {
        return Ok(None);
    };

    let year_word = cursor.peek_at(2).unwrap_or_default();
    let year = (year_word.len() == 4 && is_digits(year_word))
        .then(|| year_word.parse::<i32>().expect("four digits"));
    let used = if year.is_some() { 3 } else { 2 };
    let text = cursor.words[cursor.pos..cursor.pos + used].join(" ");
    let date = make_date(
        &text,
        year.unwrap_or(current_year),
        month.number_from_month(),
        day,
        year.is_none(),
    )?;
    cursor.advance(used);
    Ok(Some(DateSpec::Fixed(date)))
}

/// Builds a date or explains, in the words of the input, why it does not
/// exist. `yearless` is true when the year was filled in from today.
fn make_date(
    text: &str,
    year: i32,
    month: u32,
    day: u32,
    yearless: bool,
) -> Result<NaiveDate, DateError> {
    if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
        return Ok(date);
    }
    let invalid = |reason: String| DateError::InvalidDate {
        text: text.to_string(),
        reason,
    };
    let Some(month_name) = Month::try_from(u8::try_from(month).unwrap_or(0))
        .ok()
        .map(|m| m.name())
    else {
        return Err(invalid(format!(
            "there is no month {month}; months go from 1 to 12"
        )));
    };
    if day == 0 {
        return Err(invalid("there is no day 0 in a month".to_string()));
    }
    let Some(length) = NaiveDate::from_ymd_opt(year, month, 1).map(|d| d.num_days_in_month())
    else {
        return Err(invalid(format!("the year {year} is out of range")));
    };
    if !yearless {
        return Err(invalid(format!("{month_name} {year} has {length} days")));
    }
    // Only 29 February is missing from some years; suggest the next year with it.
    let next = (year + 1..=year + 8).find_map(|y| NaiveDate::from_ymd_opt(y, month, day));
    let reason = match next {
        Some(date) => format!(
            "{year} has no {day} {month_name}; give the year, e.g. {} for {date}",
            date.format("%d.%m.%y")
        ),
        None => format!("{month_name} has at most {length} days in {year}"),
    };
    Err(invalid(reason))
}

/// Reads a time of day at the cursor, with an optional separate am/pm word.
fn parse_time(cursor: &mut Cursor<'_>, role: Role) -> Result<Option<TimeSpec>, DateError> {
    let Some(word) = cursor.peek() else {
        return Ok(None);
    };
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "noon" | "midday" => {
            cursor.advance(1);
            return Ok(Some(TimeSpec::At(
                NaiveTime::from_hms_opt(12, 0, 0).expect("noon"),
            )));
        }
        "midnight" => {
            cursor.advance(1);
            return Ok(Some(TimeSpec::At(NaiveTime::MIN)));
        }
        _ => {}
    }

    let (clock, attached) = split_meridiem(&lower);
    let Some((hour, minute)) = split_clock(clock, word)? else {
        return Ok(None);
    };
    let separate = if attached.is_none() {
        cursor
            .peek_at(1)
            .and_then(|w| meridiem_from_word(&w.to_ascii_lowercase()))
    } else {
        None
    };
    let meridiem = attached.or(separate);
    // A bare number ("3") is a time only with am/pm ("3 pm").
    let is_bare_number = !clock.contains(':');
    if is_bare_number && meridiem.is_none() {
        return Ok(None);
    }

    let used = if separate.is_some() { 2 } else { 1 };
    let text = cursor.words[cursor.pos..cursor.pos + used].join(" ");
    let time = validate_time(&text, hour, minute, meridiem, role)?;
    cursor.advance(used);
    Ok(Some(time))
}

/// Checks the hour and minute read from `text` and applies am/pm.
fn validate_time(
    text: &str,
    hour: u32,
    minute: u32,
    meridiem: Option<Meridiem>,
    role: Role,
) -> Result<TimeSpec, DateError> {
    let invalid = |reason: String| DateError::InvalidTime {
        text: text.to_string(),
        reason,
    };
    if minute > 59 {
        return Err(invalid(format!("minute {minute} is past 59")));
    }
    if let Some(meridiem) = meridiem {
        if !(1..=12).contains(&hour) {
            return Err(invalid(format!(
                "hour {hour} is not valid with am/pm, which takes hours 1 to 12; \
                 write {hour}:{minute:02} without am/pm for the 24-hour clock"
            )));
        }
        let hour24 = match (meridiem, hour) {
            (Meridiem::Am, 12) => 0,
            (Meridiem::Am, h) => h,
            (Meridiem::Pm, 12) => 12,
            (Meridiem::Pm, h) => h + 12,
        };
        let time = NaiveTime::from_hms_opt(hour24, minute, 0).expect("hour and minute checked");
        return Ok(TimeSpec::At(time));
    }
    if hour == 24 {
        if minute != 0 {
            return Err(invalid(
                "only 24:00 is accepted, as the end of a day".to_string(),
            ));
        }
        if role == Role::Start {
            return Err(invalid(
                "24:00 is accepted only as an end, meaning the end of the day; \
                 to start at midnight, write 00:00 with the next day's date"
                    .to_string(),
            ));
        }
        return Ok(TimeSpec::EndOfDay);
    }
    if hour > 24 {
        return Err(invalid(format!(
            "hour {hour} is past 23; hours go from 0 to 23"
        )));
    }
    let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("hour and minute checked");
    Ok(TimeSpec::At(time))
}

/// Splits `14:30`, `9:05` or `3` into hour and minute. Returns `Ok(None)` for
/// a word not shaped like a clock time and an error for `10:5` or `10:00:30`.
fn split_clock(clock: &str, word: &str) -> Result<Option<(u32, u32)>, DateError> {
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.is_empty() || !parts.iter().all(|p| is_digits(p)) {
        return Ok(None);
    }
    let invalid = |reason: &str| DateError::InvalidTime {
        text: word.to_string(),
        reason: reason.to_string(),
    };
    if parts[0].len() > 2 {
        return Ok(None);
    }
    let hour: u32 = parts[0].parse().expect("at most two digits");
    match parts.len() {
        1 => Ok(Some((hour, 0))),
        2 if parts[1].len() == 2 => Ok(Some((hour, parts[1].parse().expect("two digits")))),
        2 => Err(invalid("write the minutes with two digits, e.g. 10:05")),
        _ => Err(invalid(
            "times have minute resolution; write hours and minutes, e.g. 10:00",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

fn meridiem_from_word(lower: &str) -> Option<Meridiem> {
    match lower {
        "am" | "a.m." => Some(Meridiem::Am),
        "pm" | "p.m." => Some(Meridiem::Pm),
        _ => None,
    }
}

/// Splits an attached am/pm suffix off a lowercased word: `3pm` -> (`3`, pm).
fn split_meridiem(lower: &str) -> (&str, Option<Meridiem>) {
    for suffix in ["a.m.", "p.m.", "am", "pm"] {
        if let Some(clock) = lower.strip_suffix(suffix) {
            if !clock.is_empty() {
                return (clock, meridiem_from_word(suffix));
            }
        }
    }
    (lower, None)
}

/// Reads an optional zone name at the cursor: an IANA name with a `/`, `UTC`
/// or `GMT`. A word with a known IANA area (`Europe/Pariss`) that names no
/// zone is an error; other words with a `/` are left alone.
fn parse_zone(cursor: &mut Cursor<'_>) -> Result<Option<Tz>, DateError> {
    let Some(word) = cursor.peek() else {
        return Ok(None);
    };
    let is_short_name = word.eq_ignore_ascii_case("utc") || word.eq_ignore_ascii_case("gmt");
    if !word.contains('/') && !is_short_name {
        return Ok(None);
    }
    if let Some(zone) = zone_from_name(word) {
        cursor.advance(1);
        return Ok(Some(zone));
    }
    let area = word
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ZONE_AREAS.contains(&area.as_str()) {
        return Err(DateError::UnknownZone {
            text: word.to_string(),
            reason: "use an IANA zone name such as Europe/Paris or America/New_York".to_string(),
        });
    }
    Ok(None)
}

/// Looks a zone up by its IANA name, ignoring letter case.
pub fn zone_from_name(name: &str) -> Option<Tz> {
    if let Ok(zone) = name.parse::<Tz>() {
        return Some(zone);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .find(|zone| zone.name().eq_ignore_ascii_case(name))
}

/// Reads a sequence of duration parts at the cursor, at least one.
pub(crate) fn parse_duration_words(cursor: &mut Cursor<'_>) -> Result<u32, DateError> {
    let first = cursor.pos;
    let mut total: u64 = 0;
    while let Some(word) = cursor.peek() {
        let next = cursor.peek_at(1);
        match duration_part(word, next) {
            Ok(Some((minutes, used))) => {
                total += minutes;
                cursor.advance(used);
            }
            Ok(None) if cursor.pos == first => {
                return Err(DateError::InvalidDuration {
                    text: word.to_string(),
                    reason: "write a number with a unit, e.g. 45m, 1h30m, 2h or 1d".to_string(),
                })
            }
            Err(error) if cursor.pos == first => return Err(error),
            // Words after a complete duration belong to the caller.
            Ok(None) | Err(_) => break,
        }
        if total > u64::from(MAX_DURATION_MINUTES) {
            break;
        }
    }
    if cursor.pos == first {
        return Err(DateError::Missing {
            expected: "a duration",
            hint: "write e.g. for 45m, for 1h30m or for 2h".to_string(),
        });
    }

    let text = cursor.words[first..cursor.pos].join(" ");
    if total == 0 {
        return Err(DateError::InvalidDuration {
            text,
            reason: "a duration must be at least 1 minute".to_string(),
        });
    }
    if total > u64::from(MAX_DURATION_MINUTES) {
        return Err(DateError::InvalidDuration {
            text,
            reason: format!(
                "the longest accepted duration is 366 days ({MAX_DURATION_MINUTES} minutes)"
            ),
        });
    }
    Ok(u32::try_from(total).expect("checked against MAX_DURATION_MINUTES"))
}

/// Reads one duration part: a compact word (`1h30m`) or a number followed by
/// a unit word (`2 hours`). Returns the minutes and the words used.
fn duration_part(word: &str, next: Option<&str>) -> Result<Option<(u64, usize)>, DateError> {
    let lower = word.to_ascii_lowercase();
    if is_digits(&lower) {
        let unit = next.and_then(|n| unit_minutes(&n.to_ascii_lowercase()));
        return match unit {
            Some(unit) => Ok(Some((parse_amount(word, &lower)? * unit, 2))),
            None => Err(DateError::InvalidDuration {
                text: word.to_string(),
                reason: format!(
                    "the number has no unit; write {word}m for minutes or {word}h for hours"
                ),
            }),
        };
    }

    let mut rest = lower.as_str();
    let mut total = 0;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(None);
    }
    while !rest.is_empty() {
        let (digits, after) = split_number(rest);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        if digits.is_empty() || unit.is_empty() {
            return Ok(None);
        }
        let Some(unit_minutes) = unit_minutes(unit) else {
            return Err(DateError::InvalidDuration {
                text: word.to_string(),
                reason: format!("\"{unit}\" is not a unit; use w, d, h or m, e.g. 1h30m"),
            });
        };
        total += parse_amount(word, digits)? * unit_minutes;
        rest = &after[unit_len..];
    }
    Ok(Some((total, 1)))
}

fn parse_amount(word: &str, digits: &str) -> Result<u64, DateError> {
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= u64::from(MAX_DURATION_MINUTES))
        .ok_or_else(|| DateError::InvalidDuration {
            text: word.to_string(),
            reason: "the number is too large".to_string(),
        })
}

fn unit_minutes(unit: &str) -> Option<u64> {
    match unit {
        "w" | "wk" | "wks" | "week" | "weeks" => Some(7 * 24 * 60),
        "d" | "day" | "days" => Some(24 * 60),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some(60),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(1),
        _ => None,
    }
}

/// Converts a local date and time in `zone` to UTC. A time in a DST gap is
/// read with the offset in force before the gap (RFC 5545, 3.3.5). A repeated
/// time takes its first occurrence. Both cases add a notice.
pub(crate) fn resolve_local(
    local: NaiveDateTime,
    zone: Tz,
    notices: &mut Vec<String>,
) -> Result<DateTime<Utc>, DateError> {
    let time = local.format("%H:%M");
    let date = local.date();
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(instant) => Ok(instant.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(earlier, _) => {
            notices.push(format!(
                "{time} occurs twice on {date} in {zone} (clocks fall back); using the first, {}",
                earlier.format("%H:%M %:z")
            ));
            Ok(earlier.with_timezone(&Utc))
        }
        chrono::LocalResult::None => {
            let offset_before =
                offset_before_gap(local, zone).ok_or_else(|| DateError::OutOfRange {
                    text: format!("{date} {time} {zone}"),
                    reason: "the local time does not exist and no offset was found before it"
                        .to_string(),
                })?;
            let utc = local - TimeDelta::seconds(i64::from(offset_before));
            let instant = Utc.from_utc_datetime(&utc);
            let moved = instant.with_timezone(&zone);
            notices.push(format!(
                "{time} does not exist on {date} in {zone} (clocks jump forward); using {}",
                moved.format("%H:%M %:z")
            ));
            Ok(instant)
        }
    }
}

/// Returns the UTC offset, in seconds, of the last local minute before the
/// gap that contains `local`.
fn offset_before_gap(local: NaiveDateTime, zone: Tz) -> Option<i32> {
    (1..=MAX_GAP_MINUTES).find_map(|back| {
        let earlier = local - TimeDelta::minutes(back);
        zone.from_local_datetime(&earlier)
            .latest()
            .map(|t| t.offset().fix().local_minus_utc())
    })
}

/// Returns the first instant of `date` in `zone`.
pub(crate) fn start_of_day(date: NaiveDate, zone: Tz) -> Result<DateTime<Utc>, DateError> {
    resolve_local(date.and_time(NaiveTime::MIN), zone, &mut Vec::new())
}

/// Returns the first instant of the day after `date` in `zone`.
pub(crate) fn end_of_day(
    date: NaiveDate,
    zone: Tz,
    text: &str,
) -> Result<DateTime<Utc>, DateError> {
    start_of_day(add_days(date, 1, text)?, zone)
}

/// Returns today's date in the user's zone.
pub(crate) fn today(ctx: &DateContext) -> NaiveDate {
    ctx.now.with_timezone(&ctx.zone).date_naive()
}

/// Returns the first `weekday` on or after `from`, plus `weeks_later` weeks.
fn next_weekday(from: NaiveDate, weekday: Weekday, weeks_later: u64) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() - from.weekday().num_days_from_monday()) % 7;
    from + Days::new(u64::from(ahead) + 7 * weeks_later)
}

pub(crate) fn add_days(date: NaiveDate, days: u64, text: &str) -> Result<NaiveDate, DateError> {
    date.checked_add_days(Days::new(days))
        .ok_or_else(|| out_of_range(text))
}

fn add_minutes(start: DateTime<Utc>, minutes: u32) -> Result<DateTime<Utc>, DateError> {
    start
        .checked_add_signed(TimeDelta::minutes(i64::from(minutes)))
        .ok_or_else(|| out_of_range(&format!("{minutes} minutes after {start}")))
}

fn check_span_length(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), DateError> {
    if (end - start).num_minutes() > i64::from(MAX_DURATION_MINUTES) {
        return Err(DateError::InvalidDuration {
            text: format!("{start} to {end}"),
            reason: format!(
                "the longest accepted span is 366 days ({MAX_DURATION_MINUTES} minutes)"
            ),
        });
    }
    Ok(())
}

fn truncate_to_minute(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("second 0 and nanosecond 0 always exist")
}

/// Formats an instant as local time in `zone`, e.g. `2024-06-30 20:00 +02:00`.
pub fn format_local(instant: DateTime<Utc>, zone: Tz) -> String {
    instant
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

pub(crate) fn weekday_from_word(lower: &str) -> Option<Weekday> {
    match lower {
        "tues" => Some(Weekday::Tue),
        "weds" => Some(Weekday::Wed),
        "thur" | "thurs" => Some(Weekday::Thu),
        // chrono reads three-letter abbreviations and full names.
        _ => lower.parse().ok(),
    }
}

pub(crate) fn month_from_word(word: &str) -> Option<Month> {
    let word = word.trim_end_matches(['.', ',']);
    if word.len() < 3 {
        return None;
    }
    word.parse().ok()
}

/// Reads a day of the month such as `29`, `29,` or `29th`.
fn day_of_month(word: &str) -> Option<u32> {
    let word = word.trim_end_matches([',', '.']).to_ascii_lowercase();
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|suffix| word.strip_suffix(suffix))
        .unwrap_or(&word);
    if !(1..=2).contains(&digits.len()) || !is_digits(digits) {
        return None;
    }
    digits.parse().ok()
}

/// Splits leading ASCII digits off `word`: `3days` -> (`3`, `days`).
fn split_number(word: &str) -> (&str, &str) {
    let end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    word.split_at(end)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn not_a_when(word: &str) -> DateError {
    DateError::Unexpected {
        text: word.to_string(),
        expected: "a date or time",
        hint: WHEN_EXAMPLES.to_string(),
    }
}

fn out_of_range(text: &str) -> DateError {
    DateError::OutOfRange {
        text: text.to_string(),
        reason: "the result is outside the supported dates".to_string(),
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.all_day {
            Some(date) => write!(f, "{date} all day ({})", self.zone),
            None => write!(f, "{} {}", format_local(self.instant, self.zone), self.zone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(now: &str, zone: &str) -> DateContext {
        DateContext {
            now: DateTime::parse_from_rfc3339(now)
                .expect("test instant is RFC 3339")
                .with_timezone(&Utc),
            zone: zone.parse().expect("test zone exists"),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    fn span(text: &str, ctx: &DateContext) -> Result<Span, DateError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        parse_span(&words, ctx)
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("test date is ISO 8601")
    }

    const BERLIN_2016: &str = "2016-02-13T10:00:00+01:00";
    const BERLIN_DEC_2024: &str = "2024-12-01T09:00:00+01:00";
    const BERLIN_JUNE_2024: &str = "2024-06-01T09:00:00+02:00";
    const CHICAGO_2024: &str = "2024-04-20T08:00:00-05:00";

    // Spans whose trailing words are the title.

    #[test]
    fn span_ending_at_24_00_tomorrow() {
        let ctx = ctx(BERLIN_2016, "Europe/Berlin");
        let span = span("tomorrow 20:00 24:00 Farewell party", &ctx).unwrap();
        assert_eq!(span.start, utc("2016-02-14T20:00:00+01:00"));
        assert_eq!(span.end, utc("2016-02-15T00:00:00+01:00"));
        assert_eq!(span.rest, ["Farewell", "party"]);
        assert_eq!(span.consumed, 3);
        assert!(span.notices.is_empty());
    }

    #[test]
    fn span_ending_at_24_00_on_new_year() {
        let ctx = ctx(BERLIN_DEC_2024, "Europe/Berlin");
        let span = span("2024-12-31 23:00 24:00 Countdown", &ctx).unwrap();
        assert_eq!(span.start, utc("2024-12-31T23:00:00+01:00"));
        assert_eq!(span.end, utc("2025-01-01T00:00:00+01:00"));
        assert_eq!(span.rest, ["Countdown"]);
    }

    #[test]
    fn span_rejects_24_30() {
        let ctx = ctx(BERLIN_JUNE_2024, "Europe/Berlin");
        let error = span("2024-06-30 23:00 24:30 Late shift", &ctx).unwrap_err();
        assert!(matches!(&error, DateError::InvalidTime { text, .. } if text == "24:30"));
        assert_eq!(
            error.to_string(),
            "\"24:30\" is not a time of day: only 24:00 is accepted, as the end of a day"
        );
    }

    #[test]
    fn span_end_12am_is_next_midnight() {
        let ctx = ctx(BERLIN_JUNE_2024, "Europe/Berlin");
        let span = span("2024-06-30 20:00 12am Movie night", &ctx).unwrap();
        assert_eq!(span.start, utc("2024-06-30T20:00:00+02:00"));
        assert_eq!(span.end, utc("2024-07-01T00:00:00+02:00"));
        assert_eq!(span.rest, ["Movie", "night"]);
    }

    /// Rule chosen: 24:00 is only an end, so a start at 24:00 is an error
    /// that points to 00:00 of the next day.
    #[test]
    fn span_rejects_24_00_as_start() {
        let ctx = ctx(BERLIN_JUNE_2024, "Europe/Berlin");
        let error = span("2024-06-30 24:00 Start at 24", &ctx).unwrap_err();
        assert!(matches!(&error, DateError::InvalidTime { text, .. } if text == "24:00"));
        assert!(error.to_string().contains("only as an end"), "{error}");
        assert!(error.to_string().contains("00:00"), "{error}");
    }

    #[test]
    fn yearless_leap_day_in_leap_year() {
        let ctx = ctx("2016-02-23T10:00:00+01:00", "Europe/Berlin");
        let span = span("29.02. 10:00 Standup", &ctx).unwrap();
        assert_eq!(span.start, utc("2016-02-29T10:00:00+01:00"));
        assert_eq!(span.end, utc("2016-02-29T11:00:00+01:00"));
        assert_eq!(span.rest, ["Standup"]);
    }

    #[test]
    fn yearless_leap_day_in_common_year() {
        let ctx = ctx("2023-02-10T10:00:00+01:00", "Europe/Berlin");
        let error = span("29.02. 10:00 Standup", &ctx).unwrap_err();
        assert!(matches!(&error, DateError::InvalidDate { text, .. } if text == "29.02."));
        let message = error.to_string();
        assert!(message.contains("2023 has no 29 February"), "{message}");
        assert!(message.contains("2024-02-29"), "{message}");
        assert!(!message.contains("03-01"), "{message}");
    }

    #[test]
    fn month_name_date_with_year() {
        let ctx = ctx("2017-02-10T10:00:00+01:00", "Europe/Berlin");
        let when = parse_when("February 29, 2016 09:00", &ctx).unwrap();
        assert_eq!(when.instant, utc("2016-02-29T09:00:00+01:00"));
        assert_eq!(when.zone, chrono_tz::Europe::Berlin);
        assert_eq!(when.all_day, None);
    }

    #[test]
    fn dotted_date_with_two_digit_year() {
        let ctx = ctx("2024-01-15T10:00:00+01:00", "Europe/Berlin");
        let when = parse_when("29.02.24 08:00", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-02-29T08:00:00+01:00"));
    }

    #[test]
    fn iso_date_that_does_not_exist() {
        let ctx = ctx("2023-01-10T10:00:00+01:00", "Europe/Berlin");
        let error = parse_when("2023-02-29", &ctx).unwrap_err();
        assert_eq!(
            error,
            DateError::InvalidDate {
                text: "2023-02-29".to_string(),
                reason: "February 2023 has 28 days".to_string(),
            }
        );
    }

    /// Rule: years and months move the calendar date and clamp to the last
    /// day of the target month, keeping the wall-clock time.
    #[test]
    fn in_one_year_from_leap_day_clamps() {
        let ctx = ctx("2024-02-29T09:00:00+01:00", "Europe/Berlin");
        let when = parse_when("in 1 year", &ctx).unwrap();
        assert_eq!(when.instant, utc("2025-02-28T09:00:00+01:00"));
    }

    // am/pm.

    #[test]
    fn twelve_am_is_midnight() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let when = parse_when("2024-05-01 12:00 AM", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-05-01T00:00:00-05:00"));
    }

    #[test]
    fn twelve_pm_is_noon() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let when = parse_when("2024-05-01 12:00 PM", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-05-01T12:00:00-05:00"));
    }

    #[test]
    fn twelve_twelve_am() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let when = parse_when("2024-05-01 12:12 AM", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-05-01T00:12:00-05:00"));
    }

    #[test]
    fn twelve_twelve_pm() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let when = parse_when("2024-05-01 12:12 PM", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-05-01T12:12:00-05:00"));
    }

    #[test]
    fn hour_zero_with_pm_is_rejected() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let error = parse_when("2024-05-01 0:00 pm", &ctx).unwrap_err();
        assert!(matches!(&error, DateError::InvalidTime { text, .. } if text == "0:00 pm"));
        assert!(
            error.to_string().contains("hour 0 is not valid with am/pm"),
            "{error}"
        );
    }

    #[test]
    fn hour_thirteen_with_pm_is_rejected() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let error = parse_when("2024-05-01 13:30 pm", &ctx).unwrap_err();
        assert!(matches!(&error, DateError::InvalidTime { text, .. } if text == "13:30 pm"));
        assert!(
            error
                .to_string()
                .contains("hour 13 is not valid with am/pm"),
            "{error}"
        );
    }

    #[test]
    fn noon_is_twelve() {
        let ctx = ctx(CHICAGO_2024, "America/Chicago");
        let when = parse_when("2024-05-01 noon", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-05-01T12:00:00-05:00"));
    }

    // Daylight saving time.

    #[test]
    fn gap_time_moves_forward_with_notice() {
        let ctx = ctx("2007-03-01T12:00:00-05:00", "America/New_York");
        let when = parse_when("2007-03-11 02:30", &ctx).unwrap();
        assert_eq!(when.instant, utc("2007-03-11T07:30:00Z"));
        assert_eq!(when.instant, utc("2007-03-11T03:30:00-04:00"));
        assert_eq!(
            when.notices,
            ["02:30 does not exist on 2007-03-11 in America/New_York \
              (clocks jump forward); using 03:30 -04:00"]
        );
    }

    #[test]
    fn gap_start_keeps_elapsed_duration() {
        let ctx = ctx("2024-03-01T12:00:00-05:00", "America/New_York");
        let span = span("2024-03-10 02:30 for 1h", &ctx).unwrap();
        assert_eq!(span.start, utc("2024-03-10T07:30:00Z"));
        assert_eq!(span.end, utc("2024-03-10T08:30:00Z"));
        assert_eq!(span.duration_minutes(), 60);
        assert_eq!(span.notices.len(), 1);
        assert!(span.rest.is_empty());
    }

    #[test]
    fn gap_time_in_berlin() {
        let ctx = ctx("2025-03-20T12:00:00+01:00", "Europe/Berlin");
        let when = parse_when("2025-03-30 02:15", &ctx).unwrap();
        assert_eq!(when.instant, utc("2025-03-30T01:15:00Z"));
        assert_eq!(when.instant, utc("2025-03-30T03:15:00+02:00"));
        assert_eq!(when.notices.len(), 1);
    }

    #[test]
    fn gap_at_midnight_in_sao_paulo() {
        let ctx = ctx("2018-10-20T12:00:00-03:00", "America/Sao_Paulo");
        let when = parse_when("2018-11-04 00:00", &ctx).unwrap();
        assert_eq!(when.instant, utc("2018-11-04T03:00:00Z"));
        assert_eq!(when.instant, utc("2018-11-04T01:00:00-02:00"));
        assert_eq!(when.notices.len(), 1);
    }

    #[test]
    fn all_day_on_gap_day_keeps_date() {
        let ctx = ctx("2018-10-20T12:00:00-03:00", "America/Sao_Paulo");
        let when = parse_when("2018-11-04 all day", &ctx).unwrap();
        assert_eq!(when.all_day, Some(date("2018-11-04")));
        assert_eq!(when.instant, utc("2018-11-04T01:00:00-02:00"));
        let span = span("2018-11-04 all day", &ctx).unwrap();
        assert_eq!(span.all_day, Some(date("2018-11-04")));
        assert_eq!(span.start, utc("2018-11-04T01:00:00-02:00"));
        assert_eq!(span.end, utc("2018-11-05T00:00:00-02:00"));
        assert_eq!(span.duration_minutes(), 23 * 60);
    }

    #[test]
    fn all_day_in_sydney_keeps_date() {
        let ctx = ctx("2019-09-30T12:00:00+10:00", "Australia/Sydney");
        let when = parse_when("2019-10-06 all day", &ctx).unwrap();
        assert_eq!(when.all_day, Some(date("2019-10-06")));
        assert_eq!(when.instant, utc("2019-10-06T00:00:00+10:00"));
        let span = span("2019-10-06 all day", &ctx).unwrap();
        assert_eq!(span.all_day, Some(date("2019-10-06")));
        assert_eq!(span.end, utc("2019-10-07T00:00:00+11:00"));
    }

    // Rules beyond the table above. MONDAY is 2027-01-04 09:00 in Berlin.

    const MONDAY: &str = "2027-01-04T09:00:00+01:00";

    fn berlin() -> DateContext {
        ctx(MONDAY, "Europe/Berlin")
    }

    fn instant(text: &str) -> DateTime<Utc> {
        parse_when(text, &berlin())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .instant
    }

    #[test]
    fn durations_in_minutes() {
        let cases = [
            ("45m", 45),
            ("1h30m", 90),
            ("1h 30m", 90),
            ("2h", 120),
            ("1d", 1440),
            ("1w", 7 * 1440),
            ("2 hours", 120),
            ("1 hour 30 minutes", 90),
            ("90min", 90),
            ("2H", 120),
        ];
        for (text, minutes) in cases {
            assert_eq!(parse_duration(text), Ok(minutes), "{text}");
        }
    }

    #[test]
    fn durations_rejected() {
        let cases = [
            ("90", "has no unit"),
            ("0m", "at least 1 minute"),
            ("367d", "longest accepted duration"),
            ("2x", "\"x\" is not a unit"),
            ("soon", "write a number with a unit"),
            ("", "missing a duration"),
            ("1h lunch", "\"lunch\" is not a duration part"),
            ("99999999999999999999m", "too large"),
        ];
        for (text, expected) in cases {
            let error = parse_duration(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn weekday_today_depends_on_time() {
        assert_eq!(instant("mon 14:00"), utc("2027-01-04T14:00:00+01:00"));
        assert_eq!(instant("mon 08:00"), utc("2027-01-11T08:00:00+01:00"));
        assert_eq!(instant("monday"), utc("2027-01-04T00:00:00+01:00"));
        assert_eq!(instant("fri"), utc("2027-01-08T00:00:00+01:00"));
        assert_eq!(instant("Sunday 10:00"), utc("2027-01-10T10:00:00+01:00"));
        assert_eq!(instant("thurs 10:00"), utc("2027-01-07T10:00:00+01:00"));
    }

    #[test]
    fn relative_days_and_times() {
        assert_eq!(instant("today 10:00"), utc("2027-01-04T10:00:00+01:00"));
        assert_eq!(instant("yesterday"), utc("2027-01-03T00:00:00+01:00"));
        assert_eq!(instant("10:00"), utc("2027-01-04T10:00:00+01:00"));
        assert_eq!(instant("in 3 days"), utc("2027-01-07T09:00:00+01:00"));
        assert_eq!(instant("in 3 days 18:30"), utc("2027-01-07T18:30:00+01:00"));
        assert_eq!(instant("in 2 hours"), utc("2027-01-04T11:00:00+01:00"));
        assert_eq!(instant("in 45m"), utc("2027-01-04T09:45:00+01:00"));
        assert_eq!(instant("in 1h30m"), utc("2027-01-04T10:30:00+01:00"));
        assert_eq!(instant("in 2 weeks"), utc("2027-01-18T09:00:00+01:00"));
        assert_eq!(instant("in 1 month"), utc("2027-02-04T09:00:00+01:00"));
        assert_eq!(instant("now"), utc("2027-01-04T09:00:00+01:00"));
    }

    #[test]
    fn bare_time_already_past_is_tomorrow() {
        // MONDAY is 09:00, so 08:59 has passed and 09:00 has not.
        assert_eq!(instant("08:59"), utc("2027-01-05T08:59:00+01:00"));
        assert_eq!(instant("9:00"), utc("2027-01-04T09:00:00+01:00"));
        assert_eq!(instant("8am"), utc("2027-01-05T08:00:00+01:00"));
        assert_eq!(instant("midnight"), utc("2027-01-05T00:00:00+01:00"));
        // A time in another zone is compared with now the same way.
        assert_eq!(instant("07:30 UTC"), utc("2027-01-05T07:30:00Z"));
        assert_eq!(instant("08:30 UTC"), utc("2027-01-04T08:30:00Z"));
        // An explicit today keeps today.
        assert_eq!(instant("today 08:00"), utc("2027-01-04T08:00:00+01:00"));
    }

    #[test]
    fn next_and_this_weekday() {
        // MONDAY is a Monday: next monday is a week later, this monday today.
        assert_eq!(instant("next monday"), utc("2027-01-11T00:00:00+01:00"));
        assert_eq!(instant("next Mon 10:00"), utc("2027-01-11T10:00:00+01:00"));
        assert_eq!(instant("next tuesday"), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(
            instant("this monday 10:00"),
            utc("2027-01-04T10:00:00+01:00")
        );
        assert_eq!(instant("this friday"), utc("2027-01-08T00:00:00+01:00"));
        assert_eq!(
            instant("this friday 15:00"),
            utc("2027-01-08T15:00:00+01:00")
        );
        let sunday = ctx("2027-01-10T12:00:00+01:00", "Europe/Berlin");
        let when = parse_when("next monday 9:00", &sunday).unwrap();
        assert_eq!(when.instant, utc("2027-01-11T09:00:00+01:00"));
        assert!(parse_when("next 10:00", &berlin()).is_err());
    }

    #[test]
    fn in_hours_and_day_first_dates() {
        assert_eq!(instant("in 2h"), utc("2027-01-04T11:00:00+01:00"));
        assert_eq!(instant("31.12. 10:00"), utc("2027-12-31T10:00:00+01:00"));
        assert_eq!(
            instant("31.12.2026 10:00"),
            utc("2026-12-31T10:00:00+01:00")
        );
        assert_eq!(instant("12am"), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(instant("12pm"), utc("2027-01-04T12:00:00+01:00"));
    }

    #[test]
    fn impossible_times_are_errors() {
        for (text, reason) in [
            ("25:00", "hour 25 is past 23"),
            ("13pm", "hour 13 is not valid with am/pm"),
            ("31.04.2027", "April 2027 has 30 days"),
        ] {
            let error = parse_when(text, &berlin()).unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn hyphenated_time_range_is_start_and_end() {
        let range = span("tomorrow 10:00-11:30 Review", &berlin()).unwrap();
        assert_eq!(range.start, utc("2027-01-05T10:00:00+01:00"));
        assert_eq!(range.end, utc("2027-01-05T11:30:00+01:00"));
        assert_eq!(range.rest, vec!["Review".to_string()]);
        let overnight = span("2027-01-08 22:00-01:30", &berlin()).unwrap();
        assert_eq!(overnight.end, utc("2027-01-09T01:30:00+01:00"));
        let meridiem = span("2027-01-08 9am-5pm", &berlin()).unwrap();
        assert_eq!(meridiem.duration_minutes(), 8 * 60);
        // An ISO date keeps its hyphens.
        let date_only = span("2027-01-08 10:00", &berlin()).unwrap();
        assert_eq!(date_only.start, utc("2027-01-08T10:00:00+01:00"));
        assert!(span("2027-01-08 10:00-25:00", &berlin()).is_err());
    }

    #[test]
    fn now_is_truncated_to_minute() {
        let ctx = ctx("2027-01-04T09:00:42.5+01:00", "Europe/Berlin");
        let when = parse_when("in 2 hours", &ctx).unwrap();
        assert_eq!(when.instant, utc("2027-01-04T11:00:00+01:00"));
    }

    /// Days move the wall clock, hours move elapsed time, across a DST change.
    #[test]
    fn relative_days_keep_wall_clock_across_dst() {
        let ctx = ctx("2027-03-27T09:00:00+01:00", "Europe/Berlin");
        let day = parse_when("in 1 day", &ctx).unwrap();
        assert_eq!(day.instant, utc("2027-03-28T09:00:00+02:00"));
        let hours = parse_when("in 24 hours", &ctx).unwrap();
        assert_eq!(hours.instant, utc("2027-03-28T10:00:00+02:00"));
    }

    #[test]
    fn relative_errors() {
        let ctx = berlin();
        let missing = parse_when("in", &ctx).unwrap_err().to_string();
        assert!(missing.contains("missing an amount"), "{missing}");
        let word = parse_when("in the park", &ctx).unwrap_err().to_string();
        assert!(word.contains("\"the\""), "{word}");
        let unit = parse_when("in 3 fortnights", &ctx).unwrap_err().to_string();
        assert!(unit.contains("\"fortnights\""), "{unit}");
    }

    #[test]
    fn am_pm_spellings() {
        assert_eq!(instant("today 3pm"), utc("2027-01-04T15:00:00+01:00"));
        assert_eq!(instant("today 3 pm"), utc("2027-01-04T15:00:00+01:00"));
        assert_eq!(instant("today 12:12am"), utc("2027-01-04T00:12:00+01:00"));
        assert_eq!(instant("today 11 a.m."), utc("2027-01-04T11:00:00+01:00"));
        assert_eq!(instant("today 9:05 PM"), utc("2027-01-04T21:05:00+01:00"));
        assert_eq!(instant("today midnight"), utc("2027-01-04T00:00:00+01:00"));
        assert_eq!(instant("today 7:30"), utc("2027-01-04T07:30:00+01:00"));
    }

    #[test]
    fn time_errors_name_the_word() {
        let cases = [
            (
                "25:00",
                "\"25:00\" is not a time of day: hour 25 is past 23",
            ),
            (
                "10:60",
                "\"10:60\" is not a time of day: minute 60 is past 59",
            ),
            ("10:5", "two digits"),
            ("10:00:30", "minute resolution"),
            ("13pm", "hour 13 is not valid with am/pm"),
            ("0am", "hour 0 is not valid with am/pm"),
        ];
        for (text, expected) in cases {
            let error = parse_when(text, &berlin()).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn date_spellings() {
        assert_eq!(instant("2027-1-5"), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(instant("05.01.2027"), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(instant("5.1."), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(instant("Jan 5"), utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(instant("5 January 2028"), utc("2028-01-05T00:00:00+01:00"));
        assert_eq!(
            instant("january 5th 10:00"),
            utc("2027-01-05T10:00:00+01:00")
        );
    }

    /// Dates without a year stay in the current year, even when already past.
    #[test]
    fn yearless_date_takes_current_year() {
        assert_eq!(instant("01.01."), utc("2027-01-01T00:00:00+01:00"));
    }

    #[test]
    fn date_errors_name_the_word() {
        let cases = [
            (
                "2027-13-01",
                "\"2027-13-01\" is not a valid date: there is no month 13",
            ),
            ("2027-04-31", "April 2027 has 30 days"),
            ("00.01.", "there is no day 0"),
            ("29.02.2027", "February 2027 has 28 days"),
            (
                "Feb 29",
                "2027 has no 29 February; give the year, e.g. 29.02.28 for 2028-02-29",
            ),
            ("31.04.", "April has at most 30 days in 2027"),
            ("1.1.027", "two or four digits"),
        ];
        for (text, expected) in cases {
            let error = parse_when(text, &berlin()).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn zone_after_time() {
        let when = parse_when("2027-01-05 10:00 Europe/Paris", &berlin()).unwrap();
        assert_eq!(when.zone, chrono_tz::Europe::Paris);
        assert_eq!(when.instant, utc("2027-01-05T09:00:00Z"));
        let lower = parse_when("2027-01-05 10:00 america/new_york", &berlin()).unwrap();
        assert_eq!(lower.zone, chrono_tz::America::New_York);
        assert_eq!(lower.instant, utc("2027-01-05T15:00:00Z"));
        assert_eq!(instant("2027-01-05 10:00 UTC"), utc("2027-01-05T10:00:00Z"));
    }

    #[test]
    fn unknown_zone_is_an_error() {
        let error = parse_when("2027-01-05 10:00 Europe/Pariss", &berlin()).unwrap_err();
        assert!(matches!(&error, DateError::UnknownZone { text, .. } if text == "Europe/Pariss"));
    }

    #[test]
    fn leftover_words_are_rejected() {
        let error = parse_when("10:00 tomorrow", &berlin())
            .unwrap_err()
            .to_string();
        assert!(error.contains("unexpected \"tomorrow\""), "{error}");
        assert!(error.contains("write the date first"), "{error}");
        let empty = parse_when("  ", &berlin()).unwrap_err();
        assert!(matches!(empty, DateError::Missing { .. }));
    }

    #[test]
    fn repeated_hour_takes_first() {
        let ctx = ctx("2024-11-01T12:00:00-04:00", "America/New_York");
        let when = parse_when("2024-11-03 01:30", &ctx).unwrap();
        assert_eq!(when.instant, utc("2024-11-03T01:30:00-04:00"));
        assert_eq!(when.notices.len(), 1);
        assert!(
            when.notices[0].contains("occurs twice"),
            "{:?}",
            when.notices
        );
    }

    #[test]
    fn all_day_without_date_is_today() {
        let when = parse_when("all day", &berlin()).unwrap();
        assert_eq!(when.all_day, Some(date("2027-01-04")));
        let error = parse_when("in 3 days all day", &berlin()).unwrap_err();
        assert!(matches!(error, DateError::Unexpected { .. }), "{error}");
    }

    #[test]
    fn span_end_forms() {
        let ctx = berlin();
        let to = span("tomorrow 10:00 to 11:30 Sync", &ctx).unwrap();
        assert_eq!(to.end, utc("2027-01-05T11:30:00+01:00"));
        assert_eq!(to.rest, ["Sync"]);
        let dash = span("tomorrow 10:00 - 11:30", &ctx).unwrap();
        assert_eq!(dash.end, to.end);
        let dated = span("tomorrow 22:00 to 2027-01-06 02:00", &ctx).unwrap();
        assert_eq!(dated.end, utc("2027-01-06T02:00:00+01:00"));
        let day = span("mon 10:00 to fri Trip", &ctx).unwrap();
        assert_eq!(day.end, utc("2027-01-09T00:00:00+01:00"));
        assert_eq!(day.rest, ["Trip"]);
        let pm = span("tomorrow 9am 5pm Work", &ctx).unwrap();
        assert_eq!(pm.duration_minutes(), 8 * 60);
        let default = span("tomorrow 10:00", &ctx).unwrap();
        assert_eq!(default.duration_minutes(), DEFAULT_DURATION_MINUTES);
        let words = span("tomorrow 10:00 for 2 hours Long lunch", &ctx).unwrap();
        assert_eq!(words.duration_minutes(), 120);
        assert_eq!(words.rest, ["Long", "lunch"]);
    }

    #[test]
    fn span_leaves_date_words_in_rest() {
        let ctx = berlin();
        let drinks = span("tomorrow 20:00 friday drinks", &ctx).unwrap();
        assert_eq!(drinks.rest, ["friday", "drinks"]);
        assert_eq!(drinks.duration_minutes(), DEFAULT_DURATION_MINUTES);
        let park = span("tomorrow 20:00 in the park", &ctx).unwrap();
        assert_eq!(park.rest, ["in", "the", "park"]);
        let number = span("tomorrow 20:00 for 2h 3 musketeers", &ctx).unwrap();
        assert_eq!(number.rest, ["3", "musketeers"]);
    }

    #[test]
    fn span_end_errors() {
        let ctx = berlin();
        let cases = [
            ("tomorrow 10:00 10:00", "is not after the start"),
            (
                "tomorrow 10:00 to 2027-01-04 11:00",
                "is not after the start",
            ),
            ("tomorrow 10:00 to", "missing an end"),
            ("tomorrow 10:00 to lunch", "unexpected \"lunch\""),
            ("tomorrow 10:00 for", "missing a duration"),
            ("2027-01-05 all day for 1h", "whole days"),
            (
                "tomorrow 10:00 to 2028-06-01 10:00",
                "longest accepted span",
            ),
            ("Farewell party", "unexpected \"Farewell\""),
        ];
        for (text, expected) in cases {
            let error = span(text, &ctx).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let empty = parse_span(&[], &ctx).unwrap_err();
        assert!(matches!(empty, DateError::Missing { .. }));
    }

    #[test]
    fn span_end_in_other_zone() {
        let ctx = berlin();
        let span = span("tomorrow 10:00 Europe/London 12:00 Call", &ctx).unwrap();
        assert_eq!(span.zone, chrono_tz::Europe::London);
        assert_eq!(span.start, utc("2027-01-05T10:00:00Z"));
        assert_eq!(span.end, utc("2027-01-05T12:00:00Z"));
    }

    #[test]
    fn all_day_span_for_days() {
        let ctx = berlin();
        let span = span("2027-03-27 all day for 2d Trip", &ctx).unwrap();
        assert_eq!(span.all_day, Some(date("2027-03-27")));
        assert_eq!(span.start, utc("2027-03-27T00:00:00+01:00"));
        assert_eq!(span.end, utc("2027-03-29T00:00:00+02:00"));
        assert_eq!(span.duration_minutes(), 47 * 60);
        assert_eq!(span.rest, ["Trip"]);
    }

    /// Samoa skipped all of 2011-12-30 when it moved west of the date line.
    #[test]
    fn gap_of_a_whole_day() {
        let ctx = ctx("2011-12-01T12:00:00-10:00", "Pacific/Apia");
        let when = parse_when("2011-12-30 12:00", &ctx).unwrap();
        assert_eq!(when.instant, utc("2011-12-30T22:00:00Z"));
        assert_eq!(when.instant, utc("2011-12-31T12:00:00+14:00"));
        assert_eq!(when.notices.len(), 1);
    }

    #[test]
    fn when_displays_local_time() {
        let when = parse_when("2027-01-05 10:00", &berlin()).unwrap();
        assert_eq!(when.to_string(), "2027-01-05 10:00 +01:00 Europe/Berlin");
        let all_day = parse_when("2027-01-05 all day", &berlin()).unwrap();
        assert_eq!(all_day.to_string(), "2027-01-05 all day (Europe/Berlin)");
    }
}
