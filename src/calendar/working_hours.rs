//! Working hours per user: the daily window, on chosen weekdays, within which
//! free-time queries look for slots.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::state::Calendar;
use super::types::{Effect, Rejection, UnixMinute};
use super::validate::canonical_zone;

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Bit of each weekday in [`WorkingHours::weekdays`], Monday first.
pub const MONDAY_BIT: u8 = 1;
/// Monday to Friday.
pub const WEEKDAYS_MON_FRI: u8 = 0b001_1111;
const ALL_WEEKDAYS: u8 = 0b111_1111;

/// A daily window `[start_minute, end_minute)` of local time in `zone` on the
/// weekdays whose bits are set. Windows that cross midnight are not
/// supported: a night shift is set as two windows' worth of hours ending at
/// 24:00.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// Minutes after local midnight, below `end_minute`.
    pub start_minute: u16,
    /// Minutes after local midnight, at most 1440 (24:00).
    pub end_minute: u16,
    /// Bit 0 is Monday, bit 6 is Sunday.
    pub weekdays: u8,
    /// IANA zone name.
    pub zone: String,
}

impl WorkingHours {
    /// 09:00 to 17:00, Monday to Friday, in `zone`: the hours of a user who
    /// never set theirs.
    pub fn standard(zone: &str) -> WorkingHours {
        WorkingHours {
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            weekdays: WEEKDAYS_MON_FRI,
            zone: zone.to_string(),
        }
    }

    /// Checks the window and the weekdays, and returns the hours with the
    /// zone's canonical name.
    pub fn validated(&self) -> Result<WorkingHours, Rejection> {
        if self.end_minute > MINUTES_PER_DAY || self.start_minute >= self.end_minute {
            return Err(Rejection::invalid(
                "working hours",
                format!(
                    "{}-{} is not a window within one day; give a start before the end, \
                     ending at 24:00 at the latest",
                    clock(self.start_minute),
                    clock(self.end_minute)
                ),
            ));
        }
        if self.weekdays == 0 || self.weekdays > ALL_WEEKDAYS {
            return Err(Rejection::invalid(
                "working days",
                format!(
                    "bit set {:#b} names no weekday or an unknown one; give days Monday to Sunday",
                    self.weekdays
                ),
            ));
        }
        Ok(WorkingHours {
            zone: canonical_zone(&self.zone)?,
            ..self.clone()
        })
    }

    /// Working windows that overlap `[from, to)`, clipped to it, in order.
    /// The zone must be valid (checked when the hours were stored); an
    /// unknown zone falls back to UTC.
    pub fn windows(&self, from: UnixMinute, to: UnixMinute) -> Vec<(UnixMinute, UnixMinute)> {
        let zone: Tz = self.zone.parse().unwrap_or(Tz::UTC);
        let (Some(first), Some(last)) = (local_date(zone, from), local_date(zone, to)) else {
            return Vec::new();
        };
        let mut windows = Vec::new();
        let mut day = first.pred_opt().unwrap_or(first);
        while day <= last {
            let bit = MONDAY_BIT << day.weekday().num_days_from_monday();
            if self.weekdays & bit != 0 {
                let start = resolve(zone, day, self.start_minute).max(from);
                let end = resolve(zone, day, self.end_minute).min(to);
                if start < end {
                    windows.push((start, end));
                }
            }
            day = match day.succ_opt() {
                Some(next) => next,
                None => break,
            };
        }
        windows
    }
}

impl Calendar {
    pub(crate) fn set_working_hours(
        &mut self,
        caller: &str,
        hours: &WorkingHours,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let hours = hours.validated()?;
        self.working_hours.insert(key, hours);
        Ok(Effect::WorkingHoursSet)
    }

    /// Returns the working hours a user set, or `None` when they use the standard
    /// ones (see [`WorkingHours::standard`]).
    pub fn working_hours(&self, username: &str) -> Option<&WorkingHours> {
        self.working_hours.get(&username.to_ascii_lowercase())
    }
}

/// Formats minutes after midnight as `HH:MM`.
fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn local_date(zone: Tz, minute: UnixMinute) -> Option<NaiveDate> {
    let utc = chrono::DateTime::from_timestamp(minute.checked_mul(60)?, 0)?;
    Some(utc.with_timezone(&zone).date_naive())
}

/// Returns the instant of a local time of day. A time in a DST gap is read
/// with the offset before the gap, so it moves forward by the gap's length.
/// A time in a repeated hour takes the first occurrence.
fn resolve(zone: Tz, day: NaiveDate, minute_of_day: u16) -> UnixMinute {
    let local: NaiveDateTime =
        day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(minute_of_day));
    let offset_seconds = match zone.from_local_datetime(&local).earliest() {
        Some(time) => time.offset().fix().local_minus_utc(),
        None => {
            let before = local - Duration::hours(3);
            let offset = zone.offset_from_utc_datetime(&before);
            offset.fix().local_minus_utc()
        }
    };
    (local.and_utc().timestamp() - i64::from(offset_seconds)) / 60
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{Harness, HOUR, MONDAY};
    use super::super::types::{Command, Effect, Rejection};
    use super::*;

    const DAY: i64 = 24 * HOUR;

    #[test]
    fn standard_windows_skip_weekend() {
        let hours = WorkingHours::standard("UTC");
        let windows = hours.windows(MONDAY, MONDAY + 7 * DAY);
        assert_eq!(windows.len(), 5);
        assert_eq!(windows[0], (MONDAY + 9 * HOUR, MONDAY + 17 * HOUR));
        assert_eq!(windows[4].0, MONDAY + 4 * DAY + 9 * HOUR);
    }

    #[test]
    fn windows_are_clipped_to_range() {
        let hours = WorkingHours::standard("UTC");
        let windows = hours.windows(MONDAY + 10 * HOUR, MONDAY + 12 * HOUR);
        assert_eq!(windows, vec![(MONDAY + 10 * HOUR, MONDAY + 12 * HOUR)]);
        assert!(hours.windows(MONDAY + 5 * DAY, MONDAY + 7 * DAY).is_empty());
    }

    #[test]
    fn windows_follow_zone_offset() {
        // Tokyo is UTC+9 all year, so 09:00 there is 00:00 UTC.
        let hours = WorkingHours::standard("Asia/Tokyo");
        let windows = hours.windows(MONDAY, MONDAY + DAY);
        assert_eq!(windows[0], (MONDAY, MONDAY + 8 * HOUR));
    }

    #[test]
    fn window_start_in_dst_gap_moves_forward() {
        // Europe/Paris skips 02:00-03:00 on Sunday 2027-03-28.
        let hours = WorkingHours {
            start_minute: 2 * 60 + 30,
            end_minute: 5 * 60,
            weekdays: MONDAY_BIT << 6,
            zone: "Europe/Paris".into(),
        };
        let sunday = NaiveDate::from_ymd_opt(2027, 3, 28).unwrap();
        let midnight_utc = sunday
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp()
            / 60;
        let windows = hours.windows(midnight_utc - DAY, midnight_utc + DAY);
        // 02:30 read at +01:00 is 01:30 UTC (03:30 local); 05:00 at +02:00 is 03:00 UTC.
        assert_eq!(windows, vec![(midnight_utc + 90, midnight_utc + 3 * HOUR)]);
    }

    #[test]
    fn validated_rejects_bad_windows() {
        let mut hours = WorkingHours::standard("UTC");
        hours.end_minute = hours.start_minute;
        let message = hours.validated().unwrap_err().to_string();
        assert!(message.contains("09:00-09:00"), "{message}");
        let mut late = WorkingHours::standard("UTC");
        late.end_minute = 24 * 60 + 1;
        assert!(late.validated().is_err());
        let mut no_days = WorkingHours::standard("UTC");
        no_days.weekdays = 0;
        let message = no_days.validated().unwrap_err().to_string();
        assert!(message.contains("working days"), "{message}");
        let mut zone = WorkingHours::standard("Mars/Base");
        zone.end_minute = 24 * 60;
        assert!(matches!(zone.validated(), Err(Rejection::Invalid { .. })));
    }

    #[test]
    fn set_working_hours_is_stored_per_user() {
        let mut harness = Harness::with_users(&["alice"]);
        let hours = WorkingHours {
            start_minute: 8 * 60 + 30,
            end_minute: 16 * 60 + 30,
            weekdays: WEEKDAYS_MON_FRI,
            zone: "Europe/Paris".into(),
        };
        let effect = harness.ok(Command::SetWorkingHours {
            caller: "Alice".into(),
            hours: hours.clone(),
        });
        assert_eq!(effect, Effect::WorkingHoursSet);
        let stored = harness.calendar.working_hours("alice").unwrap();
        assert_eq!(stored.zone, "Europe/Paris");
        assert_eq!(stored.start_minute, 8 * 60 + 30);
        let unknown = harness.rejected(Command::SetWorkingHours {
            caller: "ghost".into(),
            hours,
        });
        assert_eq!(unknown, Rejection::not_found("user \"ghost\""));
    }
}
