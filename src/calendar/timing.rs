//! Floating and all-day events as a viewer sees them, and the checks that
//! keep their stored instants consistent.
//!
//! The state stores every event at instants resolved in the event's own zone
//! (see [`Timing`]). A viewer in another zone sees a floating event at the
//! same wall-clock time and an all-day event on the same dates, so its
//! instants move by the difference of the two UTC offsets. Agenda queries
//! therefore scan a range widened by [`MAX_ZONE_SHIFT_MINUTES`] on both sides
//! and the client keeps what overlaps the requested range in its own zone
//! ([`agenda_for_viewer`]); the server needs no viewer zone.

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::recurrence::{local_time_in, resolve_local};
use super::types::{EventView, Rejection, Timing, UnixMinute};

/// Largest distance between the instants of one wall-clock time in two
/// zones: UTC offsets in the tz database run from -12:00 to +14:00.
pub const MAX_ZONE_SHIFT_MINUTES: UnixMinute = 26 * 60;

/// Longest TZID text kept from an imported file.
pub const MAX_TZID_LABEL_CHARS: usize = 200;

const MINUTES_PER_DAY: u32 = 24 * 60;

/// Number of local days an all-day event of this length covers. A DST
/// change makes a local day 23 or 25 hours long, so the length is rounded to
/// whole days instead of divided exactly.
pub fn all_day_count(duration_minutes: u32) -> u32 {
    ((duration_minutes + MINUTES_PER_DAY / 2) / MINUTES_PER_DAY).max(1)
}

/// First local date of an all-day event, read in the event's zone.
pub fn all_day_first_date(event: &EventView) -> NaiveDate {
    wall_clock(event, event.start).date()
}

/// Returns the event as a viewer in `viewer_zone` sees it: a zoned event
/// unchanged, a floating or all-day one at the same wall-clock times or
/// dates in the viewer's zone, which then becomes its `zone`. The
/// occurrence identity (`Recurrence::occurrence`) keeps the stored instants,
/// because edits of one occurrence name it by them.
pub fn seen_in(event: &EventView, viewer_zone: Tz) -> EventView {
    let mut seen = event.clone();
    let (start, end) = match event.timing {
        Timing::Zoned | Timing::Labelled { .. } => return seen,
        Timing::Floating => (
            resolve_local(viewer_zone, wall_clock(event, event.start)),
            resolve_local(viewer_zone, wall_clock(event, event.end())),
        ),
        Timing::AllDay => {
            let first = all_day_first_date(event);
            let after = first + Days::new(u64::from(all_day_count(event.duration_minutes)));
            (
                resolve_local(viewer_zone, midnight(first)),
                resolve_local(viewer_zone, midnight(after)),
            )
        }
    };
    seen.start = start;
    // A floating end in the viewer's DST gap can resolve before a start that
    // is not in it. One minute is the shortest event Almanac stores.
    seen.duration_minutes = u32::try_from(end - start).unwrap_or(0).max(1);
    seen.zone = viewer_zone.name().to_string();
    seen
}

/// Range a server query must scan so that it finds every floating or
/// all-day event a viewer in any zone sees in `[from, to)`.
pub fn scan_range(from: UnixMinute, to: UnixMinute) -> (UnixMinute, UnixMinute) {
    (
        from.saturating_sub(MAX_ZONE_SHIFT_MINUTES),
        to.saturating_add(MAX_ZONE_SHIFT_MINUTES),
    )
}

/// Converts the events of a scan over [`scan_range`] to the viewer's zone
/// and keeps those that overlap `[from, to)` there, sorted by start and id.
pub fn agenda_for_viewer(
    events: Vec<EventView>,
    from: UnixMinute,
    to: UnixMinute,
    viewer_zone: Tz,
) -> Vec<EventView> {
    let mut seen: Vec<EventView> = events
        .iter()
        .map(|event| seen_in(event, viewer_zone))
        .filter(|event| event.overlaps(from, to))
        .collect();
    seen.sort_by_key(|event| (event.start, event.id));
    seen
}

/// Rejects timing that does not fit the event's instants: an all-day event
/// must start and end at a local midnight in its zone, and a kept TZID text
/// must be short, printable and no IANA name.
pub(crate) fn validate_timing(event: &EventView) -> Result<(), Rejection> {
    match &event.timing {
        Timing::Zoned | Timing::Floating => Ok(()),
        Timing::Labelled { tzid } => validate_tzid_label(tzid),
        Timing::AllDay => {
            let zone: Tz = event.zone.parse().unwrap_or(Tz::UTC);
            for (what, minute) in [("start", event.start), ("end", event.end())] {
                let date = wall_clock(event, minute).date();
                if resolve_local(zone, midnight(date)) != minute {
                    return Err(Rejection::invalid(
                        "timing",
                        format!(
                            "an all-day event must {what} at midnight in its zone {}, but it \
                             {what}s at {}; give whole days",
                            event.zone,
                            wall_clock(event, minute).format("%Y-%m-%d %H:%M")
                        ),
                    ));
                }
            }
            Ok(())
        }
    }
}

fn validate_tzid_label(tzid: &str) -> Result<(), Rejection> {
    let chars = tzid.chars().count();
    if chars == 0 || chars > MAX_TZID_LABEL_CHARS {
        return Err(Rejection::invalid(
            "timing",
            format!(
                "the TZID text has {chars} characters; give 1 to {MAX_TZID_LABEL_CHARS}, \
                 or no TZID text to use the IANA name"
            ),
        ));
    }
    if tzid.chars().any(|c| c.is_control() || c == '"') {
        return Err(Rejection::invalid(
            "timing",
            format!("the TZID text {tzid:?} contains a control character or a double quote"),
        ));
    }
    // An export names each VTIMEZONE by its TZID text, so a text that is an
    // IANA name would clash with the VTIMEZONE of that zone.
    if tzid.parse::<Tz>().is_ok() {
        return Err(Rejection::invalid(
            "timing",
            format!("the TZID text {tzid:?} is an IANA name; send it as the zone instead"),
        ));
    }
    Ok(())
}

/// Wall-clock time of `minute` in the event's zone. The state machine
/// accepts only IANA zones, so the UTC fallback serves views built by hand.
fn wall_clock(event: &EventView, minute: UnixMinute) -> NaiveDateTime {
    local_time_in(&event.zone, minute).unwrap_or_else(|| {
        chrono::DateTime::from_timestamp(minute.saturating_mul(60), 0)
            .unwrap_or_default()
            .naive_utc()
    })
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::types::Visibility;
    use chrono::TimeZone;

    fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixMinute {
        zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp()
            / 60
    }

    fn event(zone: Tz, start: UnixMinute, end: UnixMinute, timing: Timing) -> EventView {
        EventView {
            id: 1,
            version: 1,
            title: "t".into(),
            description: String::new(),
            start,
            duration_minutes: (end - start) as u32,
            zone: zone.name().into(),
            host: "alice".into(),
            visibility: Visibility::Public,
            recurrence: None,
            responses: Vec::new(),
            timing,
        }
    }

    #[test]
    fn floating_keeps_wall_clock() {
        let auckland = chrono_tz::Pacific::Auckland;
        let berlin = chrono_tz::Europe::Berlin;
        let stored = event(
            auckland,
            local(auckland, 2024, 10, 6, 15, 0),
            local(auckland, 2024, 10, 9, 10, 0),
            Timing::Floating,
        );
        let seen = seen_in(&stored, berlin);
        assert_eq!(seen.start, local(berlin, 2024, 10, 6, 15, 0));
        assert_eq!(seen.end(), local(berlin, 2024, 10, 9, 10, 0));
        assert_eq!(seen.zone, "Europe/Berlin");
        assert_eq!(seen_in(&stored, auckland), stored);
    }

    #[test]
    fn zoned_keeps_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        let start = local(berlin, 2025, 1, 5, 10, 0);
        for timing in [
            Timing::Zoned,
            Timing::Labelled {
                tzid: "W. Europe".into(),
            },
        ] {
            let stored = event(berlin, start, start + 60, timing);
            assert_eq!(seen_in(&stored, chrono_tz::Asia::Tokyo), stored);
        }
    }

    #[test]
    fn all_day_is_viewer_day() {
        let los_angeles = chrono_tz::America::Los_Angeles;
        // Three days over the US change of 2025-11-02: 73 hours in the zone.
        let stored = event(
            los_angeles,
            local(los_angeles, 2025, 10, 31, 0, 0),
            local(los_angeles, 2025, 11, 3, 0, 0),
            Timing::AllDay,
        );
        assert_eq!(all_day_count(stored.duration_minutes), 3);
        for viewer in [
            chrono_tz::Europe::Berlin,
            chrono_tz::Asia::Tokyo,
            los_angeles,
        ] {
            let seen = seen_in(&stored, viewer);
            assert_eq!(seen.start, local(viewer, 2025, 10, 31, 0, 0), "{viewer}");
            assert_eq!(seen.end(), local(viewer, 2025, 11, 3, 0, 0), "{viewer}");
        }
    }

    #[test]
    fn all_day_count_rounds_dst_days() {
        assert_eq!(all_day_count(23 * 60), 1);
        assert_eq!(all_day_count(24 * 60), 1);
        assert_eq!(all_day_count(25 * 60), 1);
        assert_eq!(all_day_count(3 * 24 * 60 - 60), 3);
        assert_eq!(all_day_count(1), 1);
    }

    #[test]
    fn viewer_agenda_filters_shifted() {
        let auckland = chrono_tz::Pacific::Auckland;
        let berlin = chrono_tz::Europe::Berlin;
        // 15:00 floating, stored as 02:00Z by an Auckland host.
        let floating = event(
            auckland,
            local(auckland, 2024, 10, 6, 15, 0),
            local(auckland, 2024, 10, 6, 16, 0),
            Timing::Floating,
        );
        // A zoned event at 01:00Z on 10-06, 03:00 in Berlin.
        let mut zoned = event(berlin, 0, 60, Timing::Zoned);
        zoned.id = 2;
        zoned.start = local(berlin, 2024, 10, 6, 3, 0);
        let from = local(berlin, 2024, 10, 6, 12, 0);
        let to = local(berlin, 2024, 10, 7, 0, 0);
        // The stored 02:00Z is before `from`, so only the widened scan finds it.
        assert!(floating.end() <= from);
        let (scan_from, scan_to) = scan_range(from, to);
        assert!(scan_from <= floating.start);
        assert!(zoned.start < scan_to);
        let seen = agenda_for_viewer(vec![zoned, floating], from, to, berlin);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].id, 1);
        assert_eq!(seen[0].start, local(berlin, 2024, 10, 6, 15, 0));
    }

    #[test]
    fn all_day_rejects_off_midnight() {
        let berlin = chrono_tz::Europe::Berlin;
        let start = local(berlin, 2025, 9, 1, 0, 0);
        let whole = event(
            berlin,
            start,
            local(berlin, 2025, 9, 2, 0, 0),
            Timing::AllDay,
        );
        assert!(validate_timing(&whole).is_ok());
        let off = event(berlin, start + 60, start + 25 * 60, Timing::AllDay);
        let message = validate_timing(&off).unwrap_err().to_string();
        assert!(message.contains("must start at midnight"), "{message}");
        assert!(message.contains("2025-09-01 01:00"), "{message}");
        let short = event(berlin, start, start + 60, Timing::AllDay);
        let message = validate_timing(&short).unwrap_err().to_string();
        assert!(message.contains("must end at midnight"), "{message}");
    }

    #[test]
    fn tzid_label_bounds() {
        let berlin = chrono_tz::Europe::Berlin;
        let labelled = |tzid: &str| {
            let timing = Timing::Labelled { tzid: tzid.into() };
            validate_timing(&event(berlin, 0, 60, timing))
        };
        assert!(labelled("(UTC+01:00) Zürich, Bern, Genève").is_ok());
        assert!(labelled("").is_err());
        assert!(labelled(&"x".repeat(MAX_TZID_LABEL_CHARS + 1)).is_err());
        let message = labelled("a\"b").unwrap_err().to_string();
        assert!(message.contains("double quote"), "{message}");
        let message = labelled("Europe/Berlin").unwrap_err().to_string();
        assert!(message.contains("is an IANA name"), "{message}");
    }
}
