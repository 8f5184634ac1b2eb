//! Resolving a TZID to an IANA zone.
//!
//! The attempts, in order:
//!
//! 1. an IANA name, also in other letter case;
//! 2. a `/`-prefixed name whose last segments are an IANA name;
//! 3. a Windows name, through CLDR's windowsZones table (the `localzone`
//!    crate);
//! 4. the file's own VTIMEZONE, matched against every IANA zone by its
//!    offsets.
//!
//! The candidates include the fixed `Etc/GMT` zones, so a definition with
//! one whole-hour offset from -12 to +14 hours and no DST always matches
//! one. Anything else falls back to the user's zone, with a note.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{Tz, TZ_VARIANTS};

use super::read::{IcsComponent, IcsProperty};

/// Years whose offsets a VTIMEZONE must share with an IANA zone to match it.
/// Zone rules change over the decades, so a definition is compared over
/// recent years only.
///
/// NOTE: a file whose events lie far outside these years is still matched
/// on these years, so a zone whose rules changed since may be chosen.
pub const MATCH_YEARS: std::ops::RangeInclusive<i32> = 2015..=2030;

/// Most onsets expanded for one observance of a VTIMEZONE.
const MAX_OBSERVANCE_ONSETS: u16 = 200;

/// The IANA zone a TZID resolved to, and the method that found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneResolution {
    pub zone: Tz,
    pub resolved_by: ResolvedBy,
}

/// Method that resolved a TZID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedBy {
    /// The TZID is an IANA name, possibly after a `/` prefix was removed.
    IanaName,
    /// The TZID is a Windows zone name.
    WindowsName,
    /// The file's VTIMEZONE has the same offsets as this IANA zone.
    Definition,
    /// Nothing matched, so the user's zone is used.
    UserZone { reason: String },
}

impl ZoneResolution {
    /// Describes a resolution that a user should hear about; `None` for a
    /// plain IANA name.
    pub fn note(&self, tzid: &str) -> Option<String> {
        let zone = self.zone.name();
        match &self.resolved_by {
            ResolvedBy::IanaName => None,
            ResolvedBy::WindowsName => Some(format!(
                "time zone \"{tzid}\" is a Windows name, read as {zone}"
            )),
            ResolvedBy::Definition => Some(format!(
                "time zone \"{tzid}\" resolved to {zone}, which has the same offsets \
                 and DST rules as the file's VTIMEZONE"
            )),
            ResolvedBy::UserZone { reason } => Some(format!(
                "unknown time zone \"{tzid}\" resolved to your zone {zone}: {reason}"
            )),
        }
    }
}

/// Resolves the TZIDs of one file, caching each result.
pub struct ZoneResolver {
    user_zone: Tz,
    definitions: BTreeMap<String, IcsComponent>,
    cache: BTreeMap<String, ZoneResolution>,
}

impl ZoneResolver {
    pub fn new(user_zone: Tz, timezones: &[IcsComponent]) -> ZoneResolver {
        let definitions = timezones
            .iter()
            .filter_map(|zone| Some((zone.value("TZID")?.to_string(), zone.clone())))
            .collect();
        ZoneResolver {
            user_zone,
            definitions,
            cache: BTreeMap::new(),
        }
    }

    pub fn user_zone(&self) -> Tz {
        self.user_zone
    }

    /// Resolves a TZID as written in a TZID parameter.
    pub fn resolve(&mut self, tzid: &str) -> ZoneResolution {
        if let Some(known) = self.cache.get(tzid) {
            return known.clone();
        }
        let resolution = self.resolve_uncached(tzid);
        self.cache.insert(tzid.to_string(), resolution.clone());
        resolution
    }

    fn resolve_uncached(&self, tzid: &str) -> ZoneResolution {
        let found = |zone, resolved_by| ZoneResolution { zone, resolved_by };
        if let Some(zone) = iana_name(tzid) {
            return found(zone, ResolvedBy::IanaName);
        }
        if let Some(zone) = windows_name(tzid) {
            return found(zone, ResolvedBy::WindowsName);
        }
        let Some(definition) = self.definitions.get(tzid) else {
            return found(
                self.user_zone,
                ResolvedBy::UserZone {
                    reason: "it is no IANA or Windows name and the file has no VTIMEZONE for it"
                        .into(),
                },
            );
        };
        match match_definition(tzid, definition) {
            Ok(resolution) => resolution,
            Err(reason) => found(self.user_zone, ResolvedBy::UserZone { reason }),
        }
    }
}

/// Reads an IANA name, also with a `/` prefix such as
/// `/mozilla.org/20050126_1/Europe/Berlin` or `/Europe/Berlin`.
fn iana_name(tzid: &str) -> Option<Tz> {
    let trimmed = tzid.trim();
    if let Some(zone) = parse_iana(trimmed) {
        return Some(zone);
    }
    let prefixed = trimmed.strip_prefix('/')?;
    let segments: Vec<&str> = prefixed.split('/').collect();
    (0..segments.len()).find_map(|first| parse_iana(&segments[first..].join("/")))
}

fn parse_iana(name: &str) -> Option<Tz> {
    Tz::from_str(name).ok().or_else(|| {
        TZ_VARIANTS
            .iter()
            .copied()
            .find(|zone| zone.name().eq_ignore_ascii_case(name))
    })
}

/// Reads a Windows zone name with CLDR's world-wide default (territory 001).
fn windows_name(tzid: &str) -> Option<Tz> {
    let name = tzid.trim();
    let iana = localzone::win_zone_to_iana(name, Some("001"))
        .or_else(|| localzone::win_zone_to_iana(name, None))?;
    parse_iana(iana)
}

/// One onset of a VTIMEZONE observance: from `at` on, `offset` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Onset {
    at: i64,
    /// Seconds east of UTC.
    offset: i32,
}

/// The offset function a VTIMEZONE defines, over `MATCH_YEARS` and the year
/// before them.
struct DefinedOffsets {
    onsets: Vec<Onset>,
    /// The offset before the first onset.
    initial: i32,
}

impl DefinedOffsets {
    fn at(&self, instant: i64) -> i32 {
        let index = self.onsets.partition_point(|onset| onset.at <= instant);
        match index {
            0 => self.initial,
            _ => self.onsets[index - 1].offset,
        }
    }
}

fn match_definition(tzid: &str, definition: &IcsComponent) -> Result<ZoneResolution, String> {
    let defined = defined_offsets(definition)?;
    let samples = sample_instants(&defined);
    let mut matches: Vec<Tz> = TZ_VARIANTS
        .iter()
        .copied()
        .filter(|zone| {
            samples
                .iter()
                .all(|&instant| offset_of(*zone, instant) == defined.at(instant))
        })
        .collect();
    if !matches.is_empty() {
        matches.sort_by_key(|zone| (preference(tzid, *zone), zone.name()));
        return Ok(ZoneResolution {
            zone: matches[0],
            resolved_by: ResolvedBy::Definition,
        });
    }
    Err(format!(
        "its VTIMEZONE matches no IANA zone over the years {}-{}",
        MATCH_YEARS.start(),
        MATCH_YEARS.end()
    ))
}

/// Ranks matching zones: a city named in the TZID first, then zones under a
/// continent or ocean, then the rest (`CET`, `Etc/...`).
fn preference(tzid: &str, zone: Tz) -> u8 {
    let tzid_letters = fold_letters(tzid);
    let name = zone.name();
    let city = name.rsplit('/').next().unwrap_or(name);
    let city = fold_letters(&city.replace('_', " "));
    if !city.is_empty() && tzid_letters.contains(&city) {
        return 0;
    }
    if name.contains('/') && !name.starts_with("Etc/") {
        return 1;
    }
    2
}

/// Lower-cases and strips the accents of the Latin letters that zone display
/// names use, so that `Zürich` compares equal to `Zurich`.
fn fold_letters(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

fn offset_of(zone: Tz, instant: i64) -> i32 {
    zone.offset_from_utc_datetime(&utc_time(instant))
        .fix()
        .local_minus_utc()
}

fn utc_time(instant: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(instant, 0)
        .unwrap_or_default()
        .naive_utc()
}

/// Instants to compare at: mid-January and mid-July of every matched year,
/// and an hour either side of every onset.
fn sample_instants(defined: &DefinedOffsets) -> Vec<i64> {
    let mut samples = Vec::new();
    for year in MATCH_YEARS {
        for month in [1, 7] {
            let date = NaiveDate::from_ymd_opt(year, month, 15).expect("a valid date");
            samples.push(
                date.and_hms_opt(12, 0, 0)
                    .expect("noon")
                    .and_utc()
                    .timestamp(),
            );
        }
    }
    let first = year_start(*MATCH_YEARS.start());
    for onset in &defined.onsets {
        if onset.at >= first {
            samples.push(onset.at - 3600);
            samples.push(onset.at + 3600);
        }
    }
    samples
}

fn year_start(year: i32) -> i64 {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .expect("a valid year")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp()
}

fn defined_offsets(definition: &IcsComponent) -> Result<DefinedOffsets, String> {
    let mut onsets = Vec::new();
    let mut earliest: Option<(i64, i32)> = None;
    for observance in &definition.children {
        if observance.name != "STANDARD" && observance.name != "DAYLIGHT" {
            continue;
        }
        let from = utc_offset(observance.first("TZOFFSETFROM"))?;
        let to = utc_offset(observance.first("TZOFFSETTO"))?;
        let start = observance
            .value("DTSTART")
            .and_then(|value| NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok())
            .ok_or("a STANDARD or DAYLIGHT component has no valid DTSTART")?;
        for local in observance_onsets(observance, start)? {
            let at = local.and_utc().timestamp() - i64::from(from);
            if earliest.is_none_or(|(first, _)| at < first) {
                earliest = Some((at, from));
            }
            onsets.push(Onset { at, offset: to });
        }
    }
    let (_, initial) = earliest.ok_or("its VTIMEZONE has no STANDARD or DAYLIGHT component")?;
    onsets.sort();
    Ok(DefinedOffsets { onsets, initial })
}

/// Lists the local onset times of one observance from the year before
/// `MATCH_YEARS` to their end: DTSTART, the RRULE's repeats and any RDATEs.
fn observance_onsets(
    observance: &IcsComponent,
    start: NaiveDateTime,
) -> Result<Vec<NaiveDateTime>, String> {
    let mut onsets = vec![start];
    for rdate in observance.all("RDATE") {
        for value in rdate.value.split(',') {
            if let Ok(time) = NaiveDateTime::parse_from_str(value.trim(), "%Y%m%dT%H%M%S") {
                onsets.push(time);
            }
        }
    }
    let Some(rule) = observance.value("RRULE") else {
        return Ok(onsets);
    };

    let window_start = NaiveDate::from_ymd_opt(MATCH_YEARS.start() - 1, 1, 1).expect("a date");
    let window_end = NaiveDate::from_ymd_opt(MATCH_YEARS.end() + 1, 1, 1).expect("a date");
    // Moving an old DTSTART to the window's first year keeps its month, day
    // and time, which is all a yearly BYMONTH/BYDAY rule takes from it, and
    // spares expanding four centuries.
    let first = if start.date() < window_start {
        start.with_year(window_start.year()).unwrap_or(start)
    } else {
        start
    };

    // UNTIL is applied here, on local onsets, so that a UTC or floating
    // UNTIL works alike with the UTC-labelled DTSTART given to the crate.
    let mut until = None;
    let mut parts = Vec::new();
    for part in rule.split(';').map(str::trim) {
        match part.strip_prefix("UNTIL=") {
            Some(value) => until = Some(parse_until(value)?),
            None => parts.push(part),
        }
    }
    let text = format!(
        "DTSTART:{}Z\nRRULE:{}",
        first.format("%Y%m%dT%H%M%S"),
        parts.join(";")
    );

    let set = rrule::RRuleSet::from_str(&text)
        .map_err(|error| format!("its VTIMEZONE rule \"{rule}\" is invalid: {error}"))?;
    let to_utc = |date: NaiveDate| {
        rrule::Tz::UTC.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
    };
    let repeats = set
        .after(to_utc(window_start))
        .before(to_utc(window_end))
        .all(MAX_OBSERVANCE_ONSETS);
    let within_until = |time: &NaiveDateTime| until.is_none_or(|last| *time <= last);
    onsets.extend(
        repeats
            .dates
            .iter()
            .map(|time| time.naive_utc())
            .filter(within_until),
    );
    onsets.sort();
    onsets.dedup();
    Ok(onsets)
}

/// Reads the UNTIL of an observance rule as a local time. A UTC UNTIL is
/// taken as if local; it is off by the zone's offset, which cannot move a
/// yearly onset across the bound.
fn parse_until(value: &str) -> Result<NaiveDateTime, String> {
    let trimmed = value.trim().trim_end_matches(['Z', 'z']);
    NaiveDateTime::parse_from_str(trimmed, "%Y%m%dT%H%M%S")
        .or_else(|_| {
            NaiveDate::parse_from_str(trimmed, "%Y%m%d")
                .map(|date| date.and_hms_opt(23, 59, 59).expect("a time"))
        })
        .map_err(|_| format!("UNTIL={value} in a VTIMEZONE rule is not a date or date-time"))
}

/// Parses a UTC-OFFSET value such as `+0100` or `-053000` into seconds.
fn utc_offset(property: Option<&IcsProperty>) -> Result<i32, String> {
    let property = property.ok_or("a STANDARD or DAYLIGHT component has no TZOFFSETFROM/TO")?;
    let value = property.value.trim();
    let invalid = || {
        format!(
            "{} value \"{value}\" is not a UTC offset like +0100",
            property.name
        )
    };
    let (sign, digits) = match value.as_bytes().first() {
        Some(b'+') => (1, &value[1..]),
        Some(b'-') => (-1, &value[1..]),
        _ => return Err(invalid()),
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| digits[range].parse::<i32>().unwrap_or(0);
    let seconds = if digits.len() == 6 { number(4..6) } else { 0 };
    Ok(sign * (number(0..2) * 3600 + number(2..4) * 60 + seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ical::read::read_file;

    fn resolver_for(file: &str) -> ZoneResolver {
        let file = read_file(file.as_bytes()).unwrap();
        ZoneResolver::new(chrono_tz::Asia::Tokyo, &file.timezones)
    }

    const ZURICH: &str = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\n\
        TZID:(UTC+01:00) Zürich, Bern, Genève\r\n\
        BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\n\
        TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\n\
        END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\n\
        TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
        RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\n\
        END:VTIMEZONE\r\nEND:VCALENDAR\r\n";

    #[test]
    fn iana_names_resolve_directly() {
        let mut resolver = resolver_for(ZURICH);
        let found = resolver.resolve("Europe/Berlin");
        assert_eq!(found.zone, chrono_tz::Europe::Berlin);
        assert_eq!(found.resolved_by, ResolvedBy::IanaName);
        assert_eq!(found.note("Europe/Berlin"), None);
        assert_eq!(
            resolver.resolve("europe/berlin").zone,
            chrono_tz::Europe::Berlin
        );
    }

    #[test]
    fn prefixed_names_resolve() {
        let mut resolver = resolver_for(ZURICH);
        let long = resolver.resolve("/mozilla.org/20050126_1/America/New_York");
        assert_eq!(long.zone, chrono_tz::America::New_York);
        assert_eq!(
            resolver.resolve("/Europe/Paris").zone,
            chrono_tz::Europe::Paris
        );
    }

    #[test]
    fn windows_names_resolve() {
        let mut resolver = resolver_for(ZURICH);
        let found = resolver.resolve("W. Europe Standard Time");
        assert_eq!(found.zone, chrono_tz::Europe::Berlin);
        assert_eq!(found.resolved_by, ResolvedBy::WindowsName);
        let eastern = resolver.resolve("Eastern Standard Time");
        assert_eq!(eastern.zone, chrono_tz::America::New_York);
    }

    #[test]
    fn definition_matches_named_city() {
        let mut resolver = resolver_for(ZURICH);
        let tzid = "(UTC+01:00) Zürich, Bern, Genève";
        let found = resolver.resolve(tzid);
        assert_eq!(found.zone, chrono_tz::Europe::Zurich);
        assert_eq!(found.resolved_by, ResolvedBy::Definition);
        let note = found.note(tzid).unwrap();
        assert!(note.contains("Europe/Zurich"), "{note}");
    }

    #[test]
    fn fixed_definition_matches_zone() {
        let file = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Custom plus five\r\n\
            BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0500\r\n\
            TZOFFSETTO:+0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let mut resolver = resolver_for(file);
        let found = resolver.resolve("Custom plus five");
        // Several IANA zones sit at +05:00 all year, so one of them matches
        // before the fixed-offset fallback is needed.
        assert_eq!(offset_of(found.zone, year_start(2024)), 5 * 3600);
        assert_eq!(found.resolved_by, ResolvedBy::Definition);
    }

    #[test]
    fn fixed_offset_without_city_matches() {
        let file = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Odd\r\n\
            BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:-1100\r\n\
            TZOFFSETTO:-1100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n\
            DTSTART:19700101T000000\r\nTZOFFSETFROM:-1100\r\nTZOFFSETTO:-1100\r\n\
            END:DAYLIGHT\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let mut resolver = resolver_for(file);
        let found = resolver.resolve("Odd");
        assert_eq!(offset_of(found.zone, year_start(2024)), -11 * 3600);
    }

    #[test]
    fn ended_observance_rules_stop_at_until() {
        let file = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:US-Eastern-custom\r\n\
            BEGIN:DAYLIGHT\r\nDTSTART:19870405T020000\r\nTZOFFSETFROM:-0500\r\n\
            TZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T070000Z\r\n\
            END:DAYLIGHT\r\nBEGIN:STANDARD\r\nDTSTART:19671029T020000\r\n\
            TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n\
            RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T060000Z\r\n\
            END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\n\
            TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\n\
            END:DAYLIGHT\r\nBEGIN:STANDARD\r\nDTSTART:20071104T020000\r\n\
            TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\n\
            END:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let mut resolver = resolver_for(file);
        let found = resolver.resolve("US-Eastern-custom");
        assert_eq!(found.resolved_by, ResolvedBy::Definition);
        let new_york = chrono_tz::America::New_York;
        for month in 1..=12 {
            let instant = NaiveDate::from_ymd_opt(2024, month, 10)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp();
            assert_eq!(offset_of(found.zone, instant), offset_of(new_york, instant));
        }
    }

    #[test]
    fn unknown_zone_falls_back_to_user_zone() {
        let mut resolver = resolver_for(ZURICH);
        let found = resolver.resolve("Atlantis Standard Time");
        assert_eq!(found.zone, chrono_tz::Asia::Tokyo);
        let note = found.note("Atlantis Standard Time").unwrap();
        assert!(note.contains("resolved to your zone Asia/Tokyo"), "{note}");
    }

    #[test]
    fn utc_offset_parses_signs_and_seconds() {
        let property = |value: &str| IcsProperty {
            name: "TZOFFSETTO".into(),
            params: Vec::new(),
            value: value.into(),
        };
        assert_eq!(utc_offset(Some(&property("+0100"))).unwrap(), 3600);
        assert_eq!(utc_offset(Some(&property("-0530"))).unwrap(), -19_800);
        assert_eq!(utc_offset(Some(&property("+013015"))).unwrap(), 5415);
        assert!(utc_offset(Some(&property("0100"))).is_err());
        assert!(utc_offset(None).is_err());
    }

    #[test]
    fn fold_letters_strips_accents() {
        assert_eq!(fold_letters("Zürich, Genève"), "zurich, geneve");
    }
}
