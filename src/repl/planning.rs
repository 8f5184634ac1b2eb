//! The grammar of responses, working hours, free time, suggestions, history
//! and the week and month views. [`crate::repl::grammar`] dispatches these
//! commands here.
//!
//! - `accept ID`, `decline ID`, `tentative ID`, each optionally followed by
//!   `occurrence DATE` for one occurrence of a recurring event
//! - `history ID`
//! - `workhours HH:MM-HH:MM DAYS [ZONE]`, DAYS such as `mon-fri` or
//!   `mon,wed,fri`
//! - `free USER[, USER...] [on DATE | between A and B] [for DURATION]`
//! - `suggest "TITLE" for DURATION with USER[, USER...] [RANGE]`, RANGE as
//!   for free or `this week` / `next week`
//! - `schedule suggestion N`: schedules the Nth proposal of the last suggest
//! - `week [DATE | next week]`, `month [next | YYYY-MM | MONTH [YEAR]]`

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::calendar::working_hours::MONDAY_BIT;
use crate::calendar::{Response, WorkingHours};
use crate::repl::dates::{self, parse_duration, DateContext};
use crate::repl::grammar::{agenda_between, agenda_day, parse_guests, parse_id, Args, EventId};
use crate::repl::grammar::{parse_occurrence, AgendaRange, GrammarError};
use crate::repl::recurrence::OccurrenceRef;

/// Length of the slots `free` lists when no `for DURATION` is given.
pub const DEFAULT_FREE_MINUTES: u32 = 30;

/// Days `free` and `suggest` search when no range is given, from now.
pub const DEFAULT_SEARCH_DAYS: u64 = 7;

/// Free time is searched from the next multiple of this many minutes after
/// now, so that proposals start at round times.
pub const SEARCH_START_ROUNDING_MINUTES: i64 = 15;

/// A half-open range of instants, `[from, to)`.
type Range = (DateTime<Utc>, DateTime<Utc>);

/// A command of this module, as the grammar reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanCommand {
    Respond {
        id: EventId,
        response: Response,
        /// The one occurrence responded to, or `None` for the whole event.
        occurrence: Option<OccurrenceRef>,
    },
    History {
        id: EventId,
    },
    /// Working hours; `zone` is the one typed or the user's.
    WorkHours(WorkingHours),
    Free(FreeRequest),
    Suggest(SuggestRequest),
    /// `schedule suggestion N`, with N counted from 1.
    ScheduleSuggestion {
        number: usize,
    },
    /// The seven days from a Monday; `today` is highlighted.
    Week {
        monday: NaiveDate,
        today: NaiveDate,
        zone: Tz,
    },
    /// The month starting on `first`.
    Month {
        first: NaiveDate,
        today: NaiveDate,
        zone: Tz,
    },
}

impl PlanCommand {
    /// Returns the command word, for JSON replies.
    pub fn name(&self) -> &'static str {
        match self {
            PlanCommand::Respond { response, .. } => match response {
                Response::Declined => "decline",
                Response::Tentative => "tentative",
                _ => "accept",
            },
            PlanCommand::History { .. } => "history",
            PlanCommand::WorkHours(_) => "workhours",
            PlanCommand::Free(_) => "free",
            PlanCommand::Suggest(_) => "suggest",
            PlanCommand::ScheduleSuggestion { .. } => "schedule",
            PlanCommand::Week { .. } => "week",
            PlanCommand::Month { .. } => "month",
        }
    }

    /// Checks whether the command requests a change of the cluster's state.
    pub fn changes_state(&self) -> bool {
        match self {
            PlanCommand::Respond { .. }
            | PlanCommand::WorkHours(_)
            | PlanCommand::ScheduleSuggestion { .. } => true,
            PlanCommand::History { .. }
            | PlanCommand::Free(_)
            | PlanCommand::Suggest(_)
            | PlanCommand::Week { .. }
            | PlanCommand::Month { .. } => false,
        }
    }
}

/// `free`: the users and the range to search, `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeRequest {
    pub users: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub min_minutes: u32,
}

/// `suggest`: the meeting to fit and where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestRequest {
    pub title: String,
    pub guests: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub minutes: u32,
}

/// Parses the arguments of one of this module's commands.
pub(super) fn parse(
    name: &str,
    args: &Args<'_>,
    ctx: &DateContext,
) -> Result<PlanCommand, GrammarError> {
    match name {
        "accept" | "decline" | "tentative" => {
            let response = match name {
                "accept" => Response::Accepted,
                "decline" => Response::Declined,
                _ => Response::Tentative,
            };
            parse_respond(args, ctx, response)
        }
        "history" => Ok(PlanCommand::History { id: args.one_id()? }),
        "workhours" => parse_workhours(args, ctx).map(PlanCommand::WorkHours),
        "free" => parse_free(args, ctx).map(PlanCommand::Free),
        "suggest" => parse_suggest(args, ctx).map(PlanCommand::Suggest),
        "week" => parse_week(args, ctx),
        "month" => parse_month(args, ctx),
        other => unreachable!("command {other} is not a planning command"),
    }
}

/// Reads `ID [occurrence DATE]` after `accept`, `decline` or `tentative`.
fn parse_respond(
    args: &Args<'_>,
    ctx: &DateContext,
    response: Response,
) -> Result<PlanCommand, GrammarError> {
    if args.tokens.len() <= 1 {
        let id = args.one_id()?;
        return Ok(PlanCommand::Respond {
            id,
            response,
            occurrence: None,
        });
    }
    let id = parse_id(&args.tokens[0].text).map_err(|message| args.invalid(message))?;
    if !args.tokens[1].is_keyword("occurrence") {
        return Err(args.invalid(format!(
            "unexpected \"{}\": expected occurrence DATE or nothing after the id",
            args.tokens[1].text
        )));
    }
    let (occurrence, used) = parse_occurrence(args, ctx, 2, &[])?;
    if occurrence.following {
        return Err(args.invalid(
            "invalid \"and following\": a response is for one occurrence or, without occurrence, for every one",
        ));
    }
    if let Some(extra) = args.tokens.get(2 + used) {
        return Err(args.invalid(format!(
            "unexpected \"{}\" after the occurrence",
            extra.text
        )));
    }
    Ok(PlanCommand::Respond {
        id,
        response,
        occurrence: Some(occurrence),
    })
}

/// Checks whether `schedule` is followed by the keyword `suggestion`.
pub(super) fn is_schedule_suggestion(args: &Args<'_>) -> bool {
    args.tokens
        .first()
        .is_some_and(|t| t.is_keyword("suggestion"))
}

/// Reads `schedule suggestion N`.
pub(super) fn parse_schedule_suggestion(args: &Args<'_>) -> Result<PlanCommand, GrammarError> {
    let usage = "write schedule suggestion N with N from the list suggest printed, e.g. 1";
    let [_, number] = args.tokens else {
        return Err(args.invalid(format!("expected one number after suggestion: {usage}")));
    };
    match number.text.parse::<usize>() {
        Ok(number) if number >= 1 => Ok(PlanCommand::ScheduleSuggestion { number }),
        _ => Err(args.invalid(format!(
            "\"{}\" is not a suggestion number: {usage}",
            number.text
        ))),
    }
}

fn unquoted<'a>(args: &Args<'a>) -> Result<Vec<&'a str>, GrammarError> {
    if let Some(token) = args.tokens.iter().find(|t| t.quoted) {
        return Err(args.invalid(format!("unexpected quoted \"{}\"", token.text)));
    }
    Ok(args.tokens.iter().map(|t| t.text.as_str()).collect())
}

fn parse_workhours(args: &Args<'_>, ctx: &DateContext) -> Result<WorkingHours, GrammarError> {
    let words = unquoted(args)?;
    let (window, days, zone) = match words.as_slice() {
        [window, days] => (*window, *days, ctx.zone),
        [window, days, zone] => {
            let Some(zone) = dates::zone_from_name(zone) else {
                return Err(args.invalid(format!(
                    "\"{zone}\" is not an IANA time zone: write e.g. Europe/Paris or UTC"
                )));
            };
            (*window, *days, zone)
        }
        _ => {
            return Err(
                args.invalid("expected the hours and the days, e.g. workhours 08:30-16:30 mon-fri")
            )
        }
    };
    let (start_minute, end_minute) = parse_window(window).map_err(|m| args.invalid(m))?;
    let weekdays = parse_weekdays(days).map_err(|m| args.invalid(m))?;
    Ok(WorkingHours {
        start_minute,
        end_minute,
        weekdays,
        zone: zone.name().to_string(),
    })
}

/// Reads `08:30-16:30` as minutes after midnight; the end may be `24:00`.
fn parse_window(text: &str) -> Result<(u16, u16), String> {
    let Some((start, end)) = text.split_once('-') else {
        return Err(format!(
            "\"{text}\" is not a window of hours: write start-end, e.g. 08:30-16:30"
        ));
    };
    let start = clock_minutes(start)?;
    let end = clock_minutes(end)?;
    if start >= end {
        return Err(format!(
            "\"{text}\" ends before it starts: working hours stay within one day, \
             so give a start before the end"
        ));
    }
    Ok((start, end))
}

/// Reads `8:30`, `08:30` or `24:00` as minutes after midnight.
fn clock_minutes(text: &str) -> Result<u16, String> {
    let invalid = || format!("\"{text}\" is not a time of day: write HH:MM, e.g. 08:30");
    let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
    let hours: u16 = hours.parse().map_err(|_| invalid())?;
    let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(format!(
            "\"{text}\" is not a time of day: hours go to 23 and minutes to 59, and 24:00 \
             ends a day"
        ));
    }
    Ok(hours * 60 + minutes)
}

/// Reads `mon-fri`, `mon,wed,fri`, `sat-sun,tue` or `weekdays` into
/// weekday bits, Monday first. A range may wrap (`fri-mon`).
fn parse_weekdays(text: &str) -> Result<u8, String> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "weekdays" => return Ok(0b001_1111),
        "daily" | "everyday" => return Ok(0b111_1111),
        "weekends" => return Ok(0b110_0000),
        _ => {}
    }
    let day = |word: &str| {
        dates::weekday_from_word(word).ok_or_else(|| {
            format!("\"{word}\" is not a weekday: write days like mon-fri or mon,wed,fri")
        })
    };
    let mut bits = 0u8;
    for part in lower.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (day(first)?, day(last)?),
            None => (day(part)?, day(part)?),
        };
        let mut current = first;
        loop {
            bits |= MONDAY_BIT << current.num_days_from_monday();
            if current == last {
                break;
            }
            current = current.succ();
        }
    }
    Ok(bits)
}

/// Keywords that end the user list of `free`.
const FREE_KEYWORDS: &[&str] = &["on", "between", "for"];

fn parse_free(args: &Args<'_>, ctx: &DateContext) -> Result<FreeRequest, GrammarError> {
    let words = unquoted(args)?;
    let user_words = args.words_until(0, FREE_KEYWORDS);
    if user_words.is_empty() {
        return Err(args.invalid("missing the user names, e.g. free bob, carol"));
    }
    let users = parse_guests(&user_words).map_err(|m| args.invalid(m))?;
    let clauses = read_clauses(args, ctx, &words[user_words.len()..], FREE_KEYWORDS)?;
    let (from, to) = clauses.range_or_default(ctx)?;
    Ok(FreeRequest {
        users,
        from,
        to,
        min_minutes: clauses.minutes.unwrap_or(DEFAULT_FREE_MINUTES),
    })
}

/// Keywords of `suggest` after the title.
const SUGGEST_KEYWORDS: &[&str] = &["for", "with", "on", "between", "this", "next"];

fn parse_suggest(args: &Args<'_>, ctx: &DateContext) -> Result<SuggestRequest, GrammarError> {
    let Some(title) = args.tokens.first().filter(|t| t.quoted) else {
        return Err(args
            .invalid("missing the quoted title first, e.g. suggest \"Planning\" for 1h with bob"));
    };
    if let Some(token) = args.tokens[1..].iter().find(|t| t.quoted) {
        return Err(args.invalid(format!("unexpected quoted \"{}\"", token.text)));
    }
    let words: Vec<&str> = args.tokens[1..].iter().map(|t| t.text.as_str()).collect();
    let clauses = read_clauses(args, ctx, &words, SUGGEST_KEYWORDS)?;
    let Some(minutes) = clauses.minutes else {
        return Err(args.invalid("missing the length, e.g. for 1h"));
    };
    let Some(guests) = clauses.guests.clone() else {
        return Err(args.invalid("missing the guests, e.g. with bob, carol"));
    };
    let (from, to) = clauses.range_or_default(ctx)?;
    Ok(SuggestRequest {
        title: title.text.clone(),
        guests,
        from,
        to,
        minutes,
    })
}

/// The clauses `free` and `suggest` share.
struct Clauses<'a, 'b> {
    args: &'b Args<'a>,
    range: Option<Range>,
    minutes: Option<u32>,
    guests: Option<Vec<String>>,
}

impl Clauses<'_, '_> {
    /// Returns the range given, or the default one, starting no earlier than
    /// now rounded up to `SEARCH_START_ROUNDING_MINUTES`.
    fn range_or_default(&self, ctx: &DateContext) -> Result<Range, GrammarError> {
        let now_minute = ctx.now.timestamp().div_euclid(60);
        let rounded = (now_minute + SEARCH_START_ROUNDING_MINUTES - 1)
            .div_euclid(SEARCH_START_ROUNDING_MINUTES)
            * SEARCH_START_ROUNDING_MINUTES;
        let earliest = DateTime::from_timestamp(rounded * 60, 0).unwrap_or(ctx.now);
        let (from, to) = match self.range {
            Some(range) => range,
            None => {
                let days = DEFAULT_SEARCH_DAYS as i64;
                (earliest, earliest + chrono::TimeDelta::days(days))
            }
        };
        let from = from.max(earliest);
        if from >= to {
            return Err(self
                .args
                .invalid("the range is already over: give a range that ends in the future"));
        }
        Ok((from, to))
    }
}

/// Reads `for DURATION`, `with USERS`, `on DATE`, `between A and B`,
/// `this week` and `next week`, each at most once.
fn read_clauses<'a, 'b>(
    args: &'b Args<'a>,
    ctx: &DateContext,
    words: &[&str],
    keywords: &[&str],
) -> Result<Clauses<'a, 'b>, GrammarError> {
    let mut clauses = Clauses {
        args,
        range: None,
        minutes: None,
        guests: None,
    };
    let mut pos = 0;
    let is_keyword = |word: &str| keywords.iter().any(|k| k.eq_ignore_ascii_case(word));
    let value_end = |start: usize| {
        let rest = words[start..].iter().position(|w| is_keyword(w));
        rest.map_or(words.len(), |offset| start + offset)
    };
    while let Some(word) = words.get(pos) {
        let keyword = word.to_ascii_lowercase();
        if !is_keyword(&keyword) {
            return Err(args.invalid(format!(
                "unexpected \"{word}\": expected one of {}",
                keywords.join(", ")
            )));
        }
        let twice = || args.invalid(format!("\"{keyword}\" is given twice"));
        match keyword.as_str() {
            "for" => {
                let end = value_end(pos + 1);
                let text = words[pos + 1..end].join(" ");
                if clauses.minutes.is_some() {
                    return Err(twice());
                }
                let minutes = parse_duration(&text).map_err(|e| args.date_error(e))?;
                clauses.minutes = Some(minutes);
                pos = end;
            }
            "with" => {
                let end = value_end(pos + 1);
                if clauses.guests.is_some() {
                    return Err(twice());
                }
                let guests = parse_guests(&words[pos + 1..end]).map_err(|m| args.invalid(m))?;
                clauses.guests = Some(guests);
                pos = end;
            }
            _ => {
                if clauses.range.is_some() {
                    return Err(
                        args.invalid("give only one range: on, between, this week or next week")
                    );
                }
                let (range, end) = read_range(args, ctx, words, pos)?;
                clauses.range = Some(range);
                pos = end;
            }
        }
    }
    Ok(clauses)
}

/// Reads the range clause at `pos` and returns it with the position after it.
fn read_range(
    args: &Args<'_>,
    ctx: &DateContext,
    words: &[&str],
    pos: usize,
) -> Result<(Range, usize), GrammarError> {
    let keyword = words[pos].to_ascii_lowercase();
    let until_keyword = |start: usize| {
        let stop = ["for", "with"];
        let rest = words[start..]
            .iter()
            .position(|w| stop.iter().any(|s| s.eq_ignore_ascii_case(w)));
        rest.map_or(words.len(), |offset| start + offset)
    };
    let to_pair = |range: AgendaRange| (range.from, range.to);
    match keyword.as_str() {
        "this" | "next" => {
            if !words
                .get(pos + 1)
                .is_some_and(|w| w.eq_ignore_ascii_case("week"))
            {
                return Err(args.invalid(format!(
                    "expected week after {keyword}, e.g. {keyword} week"
                )));
            }
            let today = dates::today(ctx);
            let monday = monday_of(today) + Days::new(if keyword == "next" { 7 } else { 0 });
            let from = dates::start_of_day(monday, ctx.zone).map_err(|e| args.date_error(e))?;
            let sunday = monday + Days::new(6);
            let to = dates::end_of_day(sunday, ctx.zone, "week").map_err(|e| args.date_error(e))?;
            Ok(((from, to), pos + 2))
        }
        "on" => {
            let end = until_keyword(pos + 1);
            if end == pos + 1 {
                return Err(args.invalid("missing the date after on, e.g. on fri"));
            }
            let range = agenda_day(args, ctx, &words[pos + 1..end])?;
            Ok((to_pair(range), end))
        }
        _ => {
            let end = until_keyword(pos + 1);
            let span = &words[pos + 1..end];
            let Some(split) = span.iter().position(|w| w.eq_ignore_ascii_case("and")) else {
                return Err(
                    args.invalid("between takes two dates joined by and, e.g. between mon and wed")
                );
            };
            let range = agenda_between(args, ctx, &span[..split], &span[split + 1..])?;
            Ok((to_pair(range), end))
        }
    }
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day - Days::new(back)
}

fn parse_week(args: &Args<'_>, ctx: &DateContext) -> Result<PlanCommand, GrammarError> {
    let words = unquoted(args)?;
    let today = dates::today(ctx);
    let day = match words.as_slice() {
        [] => today,
        [next, week] if next.eq_ignore_ascii_case("next") && week.eq_ignore_ascii_case("week") => {
            today + Days::new(7)
        }
        _ => {
            let range = agenda_day(args, ctx, &words)?;
            range.from.with_timezone(&ctx.zone).date_naive()
        }
    };
    Ok(PlanCommand::Week {
        monday: monday_of(day),
        today,
        zone: ctx.zone,
    })
}

fn parse_month(args: &Args<'_>, ctx: &DateContext) -> Result<PlanCommand, GrammarError> {
    let words = unquoted(args)?;
    let today = dates::today(ctx);
    let this_month = today.with_day(1).expect("day 1 exists in every month");
    let first = match words.as_slice() {
        [] => Some(this_month),
        [next] if next.eq_ignore_ascii_case("next") => {
            this_month.checked_add_months(chrono::Months::new(1))
        }
        [word] if word.contains('-') => {
            let parsed = word.split_once('-').and_then(|(year, month)| {
                NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
            });
            if parsed.is_none() {
                return Err(args.invalid(format!(
                    "\"{word}\" is not a month: write YYYY-MM, e.g. 2027-02"
                )));
            }
            parsed
        }
        [name] | [name, _] => {
            let Some(month) = dates::month_from_word(name) else {
                return Err(args.invalid(format!(
                    "\"{name}\" is not a month: write e.g. month, month next, month 2027-02 \
                     or month february 2027"
                )));
            };
            let year = match words.get(1) {
                None => today.year(),
                Some(year) => year.parse().map_err(|_| {
                    args.invalid(format!("\"{year}\" is not a year: write e.g. 2027"))
                })?,
            };
            NaiveDate::from_ymd_opt(year, month.number_from_month(), 1)
        }
        _ => None,
    };
    let Some(first) = first else {
        return Err(args.invalid("expected at most a month, e.g. month february 2027"));
    };
    Ok(PlanCommand::Month {
        first,
        today,
        zone: ctx.zone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::grammar::{parse_command, ReplCommand};

    /// Monday 2027-01-04 09:07 in Berlin.
    fn ctx() -> DateContext {
        DateContext {
            now: DateTime::parse_from_rfc3339("2027-01-04T09:07:00+01:00")
                .unwrap()
                .with_timezone(&Utc),
            zone: "Europe/Berlin".parse().unwrap(),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn plan(line: &str) -> PlanCommand {
        match parse_command(line, &ctx()) {
            Ok(ReplCommand::Plan(plan)) => plan,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse_command(line, &ctx()) {
            Err(error) => error.to_string(),
            Ok(other) => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn responses_take_an_id() {
        assert_eq!(
            plan("accept 3"),
            PlanCommand::Respond {
                id: 3,
                response: Response::Accepted,
                occurrence: None,
            }
        );
        assert_eq!(
            plan("decline #4"),
            PlanCommand::Respond {
                id: 4,
                response: Response::Declined,
                occurrence: None,
            }
        );
        assert_eq!(
            plan("tentative 5"),
            PlanCommand::Respond {
                id: 5,
                response: Response::Tentative,
                occurrence: None,
            }
        );
        assert_eq!(plan("history 6"), PlanCommand::History { id: 6 });
        assert!(error("accept").contains("missing event id"));
        assert!(error("decline x").contains("not an event id"));
    }

    #[test]
    fn responses_name_an_occurrence() {
        let PlanCommand::Respond {
            id,
            response,
            occurrence: Some(occurrence),
        } = plan("decline 12 occurrence 2027-01-18")
        else {
            panic!("no occurrence read");
        };
        assert_eq!((id, response), (12, Response::Declined));
        assert_eq!(occurrence.text, "2027-01-18");
        assert_eq!(occurrence.from, utc("2027-01-18T00:00:00+01:00"));
        assert_eq!(occurrence.to, utc("2027-01-19T00:00:00+01:00"));
        assert_eq!(occurrence.at, None);
        let PlanCommand::Respond {
            occurrence: Some(timed),
            ..
        } = plan("tentative 12 occurrence 2027-01-18 9:00")
        else {
            panic!("no occurrence read");
        };
        assert_eq!(timed.at, Some(utc("2027-01-18T09:00:00+01:00")));
        assert!(error("accept 12 occurrence").contains("missing the date after occurrence"));
        assert!(error("accept 12 occurrence 2027-01-18 and following")
            .contains("invalid \"and following\""));
        assert!(error("accept 12 2027-01-18").contains("expected occurrence DATE"));
    }

    #[test]
    fn workhours_read_window_days_and_zone() {
        let PlanCommand::WorkHours(hours) = plan("workhours 08:30-16:30 mon-fri") else {
            panic!("not workhours");
        };
        assert_eq!(hours.start_minute, 8 * 60 + 30);
        assert_eq!(hours.end_minute, 16 * 60 + 30);
        assert_eq!(hours.weekdays, 0b001_1111);
        assert_eq!(hours.zone, "Europe/Berlin");
        let PlanCommand::WorkHours(hours) = plan("workhours 9:00-24:00 mon,wed,sat-sun Asia/Tokyo")
        else {
            panic!("not workhours");
        };
        assert_eq!(hours.end_minute, 24 * 60);
        assert_eq!(hours.weekdays, 0b110_0101);
        assert_eq!(hours.zone, "Asia/Tokyo");
        let PlanCommand::WorkHours(hours) = plan("workhours 10:00-12:00 fri-mon") else {
            panic!("not workhours");
        };
        assert_eq!(hours.weekdays, 0b111_0001);
        assert!(error("workhours 17:00-09:00 mon-fri").contains("ends before it starts"));
        assert!(error("workhours 08:00-25:00 mon-fri").contains("not a time of day"));
        assert!(error("workhours 08:00-16:00 mon-fry").contains("\"fry\" is not a weekday"));
        assert!(error("workhours 08:00-16:00 mon-fri Mars/Base").contains("IANA"));
        assert!(error("workhours 08:00").contains("expected the hours and the days"));
    }

    #[test]
    fn free_defaults_to_week_from_now() {
        let PlanCommand::Free(free) = plan("free bob, carol") else {
            panic!("not free");
        };
        assert_eq!(free.users, vec!["bob".to_string(), "carol".to_string()]);
        assert_eq!(free.from, utc("2027-01-04T09:15:00+01:00"));
        assert_eq!(free.to, utc("2027-01-11T09:15:00+01:00"));
        assert_eq!(free.min_minutes, DEFAULT_FREE_MINUTES);
    }

    #[test]
    fn free_reads_ranges_and_duration() {
        let PlanCommand::Free(free) = plan("free bob on fri for 1h") else {
            panic!("not free");
        };
        assert_eq!(free.from, utc("2027-01-08T00:00:00+01:00"));
        assert_eq!(free.to, utc("2027-01-09T00:00:00+01:00"));
        assert_eq!(free.min_minutes, 60);
        let PlanCommand::Free(free) = plan("free bob carol between tue and wed") else {
            panic!("not free");
        };
        assert_eq!(free.users.len(), 2);
        assert_eq!(free.from, utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(free.to, utc("2027-01-07T00:00:00+01:00"));
        // Today is searched from now on.
        let PlanCommand::Free(free) = plan("free bob on today") else {
            panic!("not free");
        };
        assert_eq!(free.from, utc("2027-01-04T09:15:00+01:00"));
        assert!(error("free").contains("missing"));
        assert!(error("free bob on 2026-12-01").contains("already over"));
        assert!(error("free bob between mon").contains("joined by and"));
        assert!(error("free bob for 1h for 2h").contains("given twice"));
    }

    #[test]
    fn suggest_reads_title_length_guests_and_week() {
        let line = "suggest \"Planning\" for 1h with bob, carol this week";
        let PlanCommand::Suggest(suggest) = plan(line) else {
            panic!("not suggest");
        };
        assert_eq!(suggest.title, "Planning");
        assert_eq!(suggest.minutes, 60);
        assert_eq!(suggest.guests, vec!["bob".to_string(), "carol".to_string()]);
        assert_eq!(suggest.from, utc("2027-01-04T09:15:00+01:00"));
        assert_eq!(suggest.to, utc("2027-01-11T00:00:00+01:00"));
        let PlanCommand::Suggest(next) = plan("suggest \"Retro\" with bob for 30m next week")
        else {
            panic!("not suggest");
        };
        assert_eq!(next.from, utc("2027-01-11T00:00:00+01:00"));
        assert_eq!(next.to, utc("2027-01-18T00:00:00+01:00"));
        assert!(error("suggest for 1h with bob").contains("quoted title"));
        assert!(error("suggest \"X\" with bob").contains("missing the length"));
        assert!(error("suggest \"X\" for 1h").contains("missing the guests"));
    }

    #[test]
    fn schedule_suggestion_takes_a_number() {
        assert_eq!(
            plan("schedule suggestion 2"),
            PlanCommand::ScheduleSuggestion { number: 2 }
        );
        assert!(error("schedule suggestion 0").contains("not a suggestion number"));
        assert!(error("schedule suggestion").contains("expected one number"));
    }

    #[test]
    fn week_and_month_pick_their_start() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert_eq!(
            plan("week"),
            PlanCommand::Week {
                monday: day("2027-01-04"),
                today: day("2027-01-04"),
                zone: berlin
            }
        );
        assert_eq!(
            plan("week 2027-01-14"),
            PlanCommand::Week {
                monday: day("2027-01-11"),
                today: day("2027-01-04"),
                zone: berlin
            }
        );
        assert_eq!(
            plan("week next week"),
            PlanCommand::Week {
                monday: day("2027-01-11"),
                today: day("2027-01-04"),
                zone: berlin
            }
        );
        for (line, first) in [
            ("month", "2027-01-01"),
            ("month next", "2027-02-01"),
            ("month 2027-06", "2027-06-01"),
            ("month february 2028", "2028-02-01"),
            ("month mar", "2027-03-01"),
        ] {
            assert_eq!(
                plan(line),
                PlanCommand::Month {
                    first: day(first),
                    today: day("2027-01-04"),
                    zone: berlin
                },
                "{line}"
            );
        }
        assert!(error("month 2027-13").contains("not a month"));
        assert!(error("month blue").contains("not a month"));
    }
}
