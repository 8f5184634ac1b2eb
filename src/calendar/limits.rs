//! Named limits of the calendar domain, with the reason for each value.

use super::types::UnixMinute;

/// Longest event: two weeks covers conferences and holidays. Conflict and
/// agenda lookups scan starts from this far before a range, so the value
/// bounds their cost.
pub const MAX_DURATION_MINUTES: u32 = 14 * 24 * 60;

/// Most guests of one private event; larger groups use a public event.
pub const MAX_GUESTS: usize = 200;

/// Longest title in characters (Unicode scalar values), after trimming.
pub const MAX_TITLE_CHARS: usize = 200;

/// Longest description in characters (Unicode scalar values).
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

/// Longest username in characters. Usernames are 1 to this many characters
/// from [`USERNAME_SYMBOLS`], ASCII letters and ASCII digits.
pub const MAX_USERNAME_CHARS: usize = 32;

/// Characters besides ASCII letters and digits allowed in a username.
pub const USERNAME_SYMBOLS: &[char] = &['_', '-', '.'];

/// Shortest password in characters, checked before hashing.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password in characters, which bounds the work of hashing it.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Earliest allowed start: 1970-01-01 00:00 UTC.
pub const EARLIEST_START: UnixMinute = 0;

/// First minute that is no longer an allowed start: 2200-01-01 00:00 UTC.
/// Time-zone rules that far out are extrapolations, and the bound keeps every
/// end well inside `i64` arithmetic.
pub const LATEST_START: UnixMinute = 120_968_640;

/// Open sessions kept per user; opening one more closes the oldest, so
/// clients that never log out cannot grow the state without bound.
pub const MAX_SESSIONS_PER_USER: usize = 32;

/// Notifications kept per inbox; the oldest are dropped beyond this, acked
/// or not, so one busy user cannot grow the snapshot without bound.
pub const MAX_INBOX_NOTIFICATIONS: usize = 1000;

/// How long an acknowledged notification stays in its inbox, in
/// milliseconds (30 days), so that other devices of the user can still
/// show recent history. After it, the next notification or acknowledgement
/// for that inbox drops it, which keeps snapshots bounded by activity over
/// the window.
pub const ACKED_NOTIFICATION_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How far a recurring event without an end is checked for conflicts: two
/// years (731 days, so a leap day does not cut the second year short) from
/// its start. Later occurrences are still shown, and a later event that
/// collides with one is still rejected, because a new event's own span is
/// always checked in full.
pub const CONFLICT_HORIZON_MINUTES: UnixMinute = 731 * 24 * 60;

/// Most occurrences of a recurring event that ends (by COUNT or UNTIL):
/// daily for about five and a half years. Every occurrence is checked for
/// conflicts, so the value bounds the cost of one schedule.
pub const MAX_SERIES_OCCURRENCES: usize = 2000;

/// Most cancelled plus moved occurrences kept per recurring event, which
/// bounds the event's size in the state.
pub const MAX_SERIES_EXCEPTIONS: usize = 500;

/// Most busy slots listed in one conflict rejection; two colliding daily
/// series would otherwise list hundreds.
pub const MAX_CONFLICT_SLOTS: usize = 50;

/// Changes kept per event in its history; the oldest are dropped beyond
/// this, so an event edited over years cannot grow the snapshot without
/// bound. A hundred covers the life of an ordinary meeting.
pub const MAX_HISTORY_PER_EVENT: usize = 100;

/// Maximum length of the range a free-time query or a suggestion searches:
/// one month, which bounds the working windows and events one query reads.
pub const MAX_FREE_RANGE_MINUTES: UnixMinute = 31 * 24 * 60;

/// Maximum number of users one free-time query compares: the host and every
/// guest of the largest private event.
pub const MAX_FREE_USERS: usize = MAX_GUESTS + 1;

/// Maximum number of slots one suggestion proposes, a short list to pick
/// from by number.
pub const MAX_SUGGESTIONS: usize = 3;

const _: () = assert!(MAX_GUESTS > 0 && MAX_TITLE_CHARS > 0);
const _: () = assert!(MAX_HISTORY_PER_EVENT > 0 && MAX_SUGGESTIONS > 0);
const _: () = assert!(MIN_PASSWORD_CHARS <= MAX_PASSWORD_CHARS);
const _: () = assert!(EARLIEST_START < LATEST_START);
const _: () = assert!(CONFLICT_HORIZON_MINUTES > MAX_DURATION_MINUTES as UnixMinute);
const _: () = assert!(MAX_SERIES_OCCURRENCES > 0 && MAX_CONFLICT_SLOTS > 0);
const _: () = assert!(MAX_SESSIONS_PER_USER > 0 && MAX_INBOX_NOTIFICATIONS > 0);

#[cfg(test)]
mod tests {
    use super::*;

    fn minute_of(year: i32) -> UnixMinute {
        chrono::NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
            / 60
    }

    #[test]
    fn start_bounds_match_dates() {
        assert_eq!(EARLIEST_START, minute_of(1970));
        assert_eq!(LATEST_START, minute_of(2200));
    }
}
