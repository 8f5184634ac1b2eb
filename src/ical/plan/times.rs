//! Start, zone and length of planned events: DATE, DATE-TIME and DURATION
//! values turned into the minute, zone and duration Almanac stores.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use crate::calendar::recurrence::resolve_local;
use crate::calendar::validate::validate_start;
use crate::calendar::{Timing, UnixMinute, MAX_DURATION_MINUTES};
use crate::ical::read::{parse_duration, parse_time, IcsComponent, IcsTime};

use super::{push_once, Planner};

/// Start, zone and length of one event as Almanac stores them.
pub(super) struct Times {
    pub(super) start: UnixMinute,
    pub(super) zone: Tz,
    pub(super) duration_minutes: u32,
    /// Whether DTSTART was a DATE.
    pub(super) all_day: bool,
    /// The kind of DTSTART: a DATE, a floating DATE-TIME or a zoned one,
    /// with the file's TZID text when it is not the IANA name stored.
    pub(super) timing: Timing,
}

impl Planner<'_> {
    pub(super) fn times(
        &mut self,
        event: &IcsComponent,
        notes: &mut Vec<String>,
    ) -> Result<Times, String> {
        let start_property = event.first("DTSTART").ok_or("it has no DTSTART")?;
        let start_value = parse_time(start_property)?;
        let end = event.first("DTEND");
        let duration = event.first("DURATION");
        let use_duration = match (end, duration) {
            (Some(_), Some(_)) if !self.options.lenient => {
                return Err("it has both DTEND and DURATION, which RFC 5545 forbids; \
                     remove one of them"
                    .into());
            }
            (Some(_), Some(_)) => {
                notes.push("it has both DTEND and DURATION; DTEND was used".into());
                false
            }
            (None, Some(_)) => true,
            _ => false,
        };

        let (zone, start_local, all_day) = match &start_value {
            IcsTime::Date(date) => (self.options.user_zone, midnight(*date), true),
            other => {
                let (zone, local) = self.zoned(other, notes);
                (zone, local, false)
            }
        };
        let start = resolve_local(zone, start_local);
        validate_start(start).map_err(|rejection| rejection.to_string())?;
        let timing = match &start_value {
            IcsTime::Date(_) => Timing::AllDay,
            IcsTime::Floating(_) => Timing::Floating,
            IcsTime::Zoned(_, tzid) if tzid != zone.name() => {
                Timing::Labelled { tzid: tzid.clone() }
            }
            IcsTime::Zoned(..) | IcsTime::Utc(_) => Timing::Zoned,
        };
        if all_day {
            notes.push(format!(
                "all-day event kept as whole days, placed for conflict checks from \
                 midnight in your zone {}",
                zone.name()
            ));
        }

        let end_minute = if use_duration {
            let duration = parse_duration(&duration.expect("checked above").value)?;
            if duration.negative {
                return Err(format!(
                    "DURATION {} is negative; give a positive duration",
                    duration_text(event)
                ));
            }
            // Nominal days move the wall clock; the exact part is added after.
            let local_end = Duration::try_days(duration.days)
                .and_then(|days| start_local.checked_add_signed(days))
                .ok_or_else(|| format!("DURATION {} is out of range", duration_text(event)))?;
            resolve_local(zone, local_end) + duration.seconds.div_euclid(60)
        } else if let Some(end) = end {
            match parse_time(end)? {
                IcsTime::Date(date) => resolve_local(zone, midnight(date)),
                other => {
                    let (end_zone, local) = self.zoned(&other, notes);
                    resolve_local(end_zone, local)
                }
            }
        } else if all_day {
            let next_day = start_local
                .checked_add_signed(Duration::days(1))
                .ok_or("its DTSTART is the last representable date")?;
            resolve_local(zone, next_day)
        } else {
            start
        };

        let mut minutes = end_minute - start;
        if minutes < 0 {
            return Err("it ends before it starts; check DTEND or DURATION".into());
        }
        if minutes == 0 {
            notes.push("it has no length, so it was given 1 minute".into());
            minutes = 1;
        }
        if minutes > i64::from(MAX_DURATION_MINUTES) {
            return Err(format!(
                "it lasts {minutes} minutes, longer than the {MAX_DURATION_MINUTES} \
                 minutes (14 days) Almanac allows; split it into shorter events"
            ));
        }
        Ok(Times {
            start,
            zone,
            duration_minutes: minutes as u32,
            all_day,
            timing,
        })
    }

    /// Returns the zone and wall-clock time of a DATE-TIME value.
    pub(super) fn zoned(&mut self, time: &IcsTime, notes: &mut Vec<String>) -> (Tz, NaiveDateTime) {
        match time {
            IcsTime::Date(date) => (self.options.user_zone, midnight(*date)),
            IcsTime::Utc(local) => (Tz::UTC, *local),
            IcsTime::Floating(local) => {
                push_once(
                    notes,
                    format!(
                        "floating time kept as wall-clock time, with conflicts checked \
                         in your zone {}",
                        self.options.user_zone.name()
                    ),
                );
                (self.options.user_zone, *local)
            }
            IcsTime::Zoned(local, tzid) => {
                let resolution = self.resolver.resolve(tzid);
                if let Some(note) = resolution.note(tzid) {
                    push_once(notes, note);
                }
                (resolution.zone, *local)
            }
        }
    }

    /// Returns the instant a DATE or DATE-TIME names in a series: a DATE
    /// names the occurrence on that local date at the series' time of day.
    pub(super) fn series_instant(
        &mut self,
        time: &IcsTime,
        times: &Times,
        notes: &mut Vec<String>,
    ) -> UnixMinute {
        let series_time =
            crate::calendar::recurrence::local_time_in(times.zone.name(), times.start)
                .map(|local| local.time())
                .unwrap_or(NaiveTime::MIN);
        match time {
            IcsTime::Date(date) => resolve_local(times.zone, date.and_time(series_time)),
            // In an all-day series an EXDATE written as a date-time names a
            // day, and that day is read as written, never shifted by a zone.
            IcsTime::Floating(local) | IcsTime::Zoned(local, _) if times.all_day => {
                resolve_local(times.zone, local.date().and_time(series_time))
            }
            other => {
                let (zone, local) = self.zoned(other, notes);
                resolve_local(zone, local)
            }
        }
    }
}

pub(super) fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

pub(super) fn duration_text(event: &IcsComponent) -> String {
    event.value("DURATION").unwrap_or("").to_string()
}

/// Rewrites a floating UNTIL (a date-time without `Z`) as UTC, reading it in
/// the series' zone, because the recurrence rules take UNTIL as a UTC
/// date-time or a date.
pub(super) fn utc_until(rule: &str, zone: Tz) -> String {
    let parts: Vec<String> = rule
        .trim()
        .split(';')
        .map(|part| {
            let Some(value) = part.strip_prefix("UNTIL=") else {
                return part.to_string();
            };
            match NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S") {
                Ok(local) => {
                    let minute = resolve_local(zone, local);
                    let utc = chrono::DateTime::from_timestamp(minute * 60, 0)
                        .unwrap_or_default()
                        .format("%Y%m%dT%H%M%SZ");
                    format!("UNTIL={utc}")
                }
                Err(_) => part.to_string(),
            }
        })
        .collect();
    parts.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_until_becomes_utc() {
        let rule = utc_until(
            "FREQ=DAILY;UNTIL=20250330T070000",
            chrono_tz::Europe::Berlin,
        );
        assert_eq!(rule, "FREQ=DAILY;UNTIL=20250330T050000Z");
        let unchanged = utc_until("FREQ=DAILY;UNTIL=20250330", chrono_tz::Europe::Berlin);
        assert_eq!(unchanged, "FREQ=DAILY;UNTIL=20250330");
    }
}
