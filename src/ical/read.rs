//! Reading an iCalendar file into owned components, and the RFC 5545 value
//! types the planner needs (DATE, DATE-TIME, DURATION).
//!
//! The `icalendar` crate parses the content lines, and it takes a `&str`.
//! A file folded inside a multi-byte character is not valid UTF-8 until it
//! is unfolded, so [`unfold_bytes`] removes the folds on bytes first, as RFC
//! 5545 section 3.1 requires. Only the unfolded bytes are decoded.

use chrono::{NaiveDate, NaiveDateTime};

/// One content line after parsing: the name in upper case, the parameters,
/// and the value with TEXT escapes already removed by the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcsProperty {
    pub name: String,
    /// Parameter names in upper case, values without their quotes.
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl IcsProperty {
    /// Returns the value of a parameter, matched case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A component such as VEVENT or VTIMEZONE, with its sub-components.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcsComponent {
    /// Upper case, such as `VEVENT`.
    pub name: String,
    pub properties: Vec<IcsProperty>,
    pub children: Vec<IcsComponent>,
}

impl IcsComponent {
    /// Returns the first property with this name.
    pub fn first(&self, name: &str) -> Option<&IcsProperty> {
        self.properties
            .iter()
            .find(|property| property.name.eq_ignore_ascii_case(name))
    }

    /// Returns every property with this name, in file order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a IcsProperty> + 'a {
        self.properties
            .iter()
            .filter(move |property| property.name.eq_ignore_ascii_case(name))
    }

    /// Returns the trimmed value of the first property with this name.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.first(name).map(|property| property.value.trim())
    }
}

/// The events and zone definitions of one file, in file order.
#[derive(Clone, Debug, Default)]
pub struct IcsFile {
    pub events: Vec<IcsComponent>,
    pub timezones: Vec<IcsComponent>,
}

/// Removes every line fold (CRLF or LF followed by one space or tab) from
/// raw bytes, so that a fold inside a UTF-8 sequence restores that sequence.
pub fn unfold_bytes(raw: &[u8]) -> Vec<u8> {
    let mut unfolded = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        let fold_len = match raw[index..] {
            [b'\r', b'\n', b' ' | b'\t', ..] => 3,
            [b'\n', b' ' | b'\t', ..] => 2,
            _ => 0,
        };
        if fold_len > 0 {
            index += fold_len;
            continue;
        }
        unfolded.push(raw[index]);
        index += 1;
    }
    unfolded
}

/// Parses a whole file: unfolds, decodes UTF-8, and collects the VEVENT and
/// VTIMEZONE components wherever they are nested.
pub fn read_file(raw: &[u8]) -> Result<IcsFile, String> {
    let unfolded = unfold_bytes(raw);
    let text = String::from_utf8(unfolded).map_err(|error| {
        format!(
            "the file is not valid UTF-8 after unfolding (byte {}); \
             save it as UTF-8 and import it again",
            error.utf8_error().valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let parsed = icalendar::parser::read_calendar(text)
        .map_err(|error| format!("the file is not valid iCalendar: {}", error.trim()))?;
    let mut file = IcsFile::default();
    for component in &parsed.components {
        collect(&owned_component(component), &mut file);
    }
    if file.events.is_empty() && file.timezones.is_empty() {
        return Err(
            "the file contains no VEVENT; check that it is an iCalendar (.ics) file".into(),
        );
    }
    Ok(file)
}

fn collect(component: &IcsComponent, file: &mut IcsFile) {
    match component.name.as_str() {
        "VEVENT" => file.events.push(component.clone()),
        "VTIMEZONE" => file.timezones.push(component.clone()),
        _ => {
            for child in &component.children {
                collect(child, file);
            }
        }
    }
}

fn owned_component(component: &icalendar::parser::Component<'_>) -> IcsComponent {
    IcsComponent {
        name: component.name.as_str().to_ascii_uppercase(),
        properties: component
            .properties
            .iter()
            .map(|property| IcsProperty {
                name: property.name.as_str().to_ascii_uppercase(),
                params: property
                    .params
                    .iter()
                    .map(|param| {
                        let value = param.val.as_ref().map(|v| v.as_str()).unwrap_or("");
                        (param.key.as_str().to_ascii_uppercase(), value.to_string())
                    })
                    .collect(),
                value: property.val.as_str().to_string(),
            })
            .collect(),
        children: component.components.iter().map(owned_component).collect(),
    }
}

/// A DATE or DATE-TIME value with the form it was written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcsTime {
    /// A DATE value: a whole day with no zone.
    Date(NaiveDate),
    /// A DATE-TIME without `Z` and without TZID: wall-clock time wherever
    /// the reader is.
    Floating(NaiveDateTime),
    /// A DATE-TIME ending in `Z`.
    Utc(NaiveDateTime),
    /// A DATE-TIME with a TZID parameter, which is kept as written.
    Zoned(NaiveDateTime, String),
}

/// Parses the one value of a DTSTART, DTEND or RECURRENCE-ID property.
pub fn parse_time(property: &IcsProperty) -> Result<IcsTime, String> {
    parse_time_value(property, property.value.trim())
}

/// Parses the comma-separated values of an EXDATE or RDATE property. A
/// PERIOD value (`start/end` or `start/duration`) gives its start.
pub fn parse_time_list(property: &IcsProperty) -> Result<Vec<IcsTime>, String> {
    property
        .value
        .split(',')
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| {
            let start = value.split('/').next().unwrap_or(value);
            parse_time_value(property, start)
        })
        .collect()
}

fn parse_time_value(property: &IcsProperty, value: &str) -> Result<IcsTime, String> {
    let is_date = property
        .param("VALUE")
        .is_some_and(|kind| kind.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && !value.contains('T'));
    if is_date {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(IcsTime::Date)
            .map_err(|_| {
                format!(
                    "{} value \"{value}\" is not a DATE (YYYYMMDD)",
                    property.name
                )
            });
    }
    let (local, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(local) => (local, true),
        None => (value, false),
    };
    let time = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").map_err(|_| {
        format!(
            "{} value \"{value}\" is not a DATE-TIME (YYYYMMDDTHHMMSS, optionally ending in Z)",
            property.name
        )
    })?;
    Ok(match (utc, property.param("TZID")) {
        (true, _) => IcsTime::Utc(time),
        (false, Some(tzid)) => IcsTime::Zoned(time, tzid.to_string()),
        (false, None) => IcsTime::Floating(time),
    })
}

/// An RFC 5545 DURATION, keeping nominal days apart from exact seconds:
/// `P1D` is one calendar day (23 or 25 hours across a DST change) while
/// `PT24H` is always 24 hours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcsDuration {
    pub negative: bool,
    /// Calendar days, weeks counted as 7 days.
    pub days: i64,
    pub seconds: i64,
}

/// Parses a DURATION value such as `P1W`, `P1DT2H`, `PT1H30M` or `-PT15M`.
pub fn parse_duration(value: &str) -> Result<IcsDuration, String> {
    let invalid = || {
        format!(
            "DURATION value \"{value}\" is not an RFC 5545 duration; \
             write it like P1D, PT1H30M or P1W"
        )
    };
    let text = value.trim();
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let text = text.strip_prefix(['P', 'p']).ok_or_else(invalid)?;
    let mut duration = IcsDuration {
        negative,
        ..IcsDuration::default()
    };
    let mut in_time = false;
    let mut number = String::new();
    let mut parts = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let c = c.to_ascii_uppercase();
        if c == 'T' && number.is_empty() && !in_time {
            in_time = true;
            continue;
        }
        // At most 9 digits, so no sum of parts can overflow.
        if number.len() > 9 {
            return Err(invalid());
        }
        let amount: i64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        parts += 1;
        match (in_time, c) {
            (false, 'W') => duration.days += amount * 7,
            (false, 'D') => duration.days += amount,
            (true, 'H') => duration.seconds += amount * 3600,
            (true, 'M') => duration.seconds += amount * 60,
            (true, 'S') => duration.seconds += amount,
            _ => return Err(invalid()),
        }
    }
    if !number.is_empty() || parts == 0 {
        return Err(invalid());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(name: &str, params: &[(&str, &str)], value: &str) -> IcsProperty {
        IcsProperty {
            name: name.into(),
            params: params
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            value: value.into(),
        }
    }

    #[test]
    fn unfold_restores_split_utf8() {
        // "ö" is C3 B6; the fold sits between its two bytes.
        let raw = b"LOCATION:K\xc3\r\n \xb6ln\r\nLOCA\r\n\tTION:x\n y\r\n";
        let unfolded = unfold_bytes(raw);
        assert_eq!(unfolded, "LOCATION:Köln\r\nLOCATION:xy\r\n".as_bytes());
    }

    #[test]
    fn unfold_keeps_plain_line_breaks() {
        let raw = b"A:1\r\nB:2\r\n";
        assert_eq!(unfold_bytes(raw), raw.to_vec());
    }

    #[test]
    fn read_file_rejects_invalid_utf8() {
        let error = read_file(b"BEGIN:VCALENDAR\r\nX:\xff\r\nEND:VCALENDAR\r\n").unwrap_err();
        assert!(error.contains("not valid UTF-8"), "{error}");
    }

    #[test]
    fn read_file_rejects_empty_calendar() {
        let error = read_file(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n").unwrap_err();
        assert!(error.contains("no VEVENT"), "{error}");
    }

    #[test]
    fn read_file_keeps_quoted_params() {
        let raw = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\n\
                   DTSTART;TZID=\"(UTC+01:00) Zürich, Bern\":20240115T090000\r\n\
                   SUMMARY:a\\, b\\; c\\nd\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let file = read_file(raw.as_bytes()).unwrap();
        assert_eq!(file.events.len(), 1);
        let event = &file.events[0];
        let start = event.first("DTSTART").unwrap();
        assert_eq!(start.param("tzid"), Some("(UTC+01:00) Zürich, Bern"));
        assert_eq!(event.value("SUMMARY"), Some("a, b; c\nd"));
    }

    #[test]
    fn parse_time_forms() {
        let date = property("DTSTART", &[("VALUE", "DATE")], "20250901");
        assert_eq!(
            parse_time(&date).unwrap(),
            IcsTime::Date(NaiveDate::from_ymd_opt(2025, 9, 1).unwrap())
        );
        let time = NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let utc = property("DTSTART", &[], "20240301T090000Z");
        assert_eq!(parse_time(&utc).unwrap(), IcsTime::Utc(time));
        let floating = property("DTSTART", &[], "20240301T090000");
        assert_eq!(parse_time(&floating).unwrap(), IcsTime::Floating(time));
        let zoned = property("DTSTART", &[("TZID", "Europe/Berlin")], "20240301T090000");
        assert_eq!(
            parse_time(&zoned).unwrap(),
            IcsTime::Zoned(time, "Europe/Berlin".into())
        );
    }

    #[test]
    fn parse_time_rejects_garbage() {
        let bad = property("DTSTART", &[], "tomorrow");
        let error = parse_time(&bad).unwrap_err();
        assert!(error.contains("DTSTART value \"tomorrow\""), "{error}");
    }

    #[test]
    fn parse_time_list_splits_and_takes_period_start() {
        let list = property("RDATE", &[], "20240301T090000Z,20240302T090000Z/PT1H");
        let times = parse_time_list(&list).unwrap();
        assert_eq!(times.len(), 2);
        assert!(matches!(times[1], IcsTime::Utc(_)));
    }

    #[test]
    fn parse_duration_keeps_days_nominal() {
        assert_eq!(
            parse_duration("P1D").unwrap(),
            IcsDuration {
                negative: false,
                days: 1,
                seconds: 0
            }
        );
        assert_eq!(parse_duration("PT24H").unwrap().seconds, 86_400);
        assert_eq!(parse_duration("PT24H").unwrap().days, 0);
        assert_eq!(parse_duration("P2W").unwrap().days, 14);
        assert_eq!(parse_duration("PT1H30M").unwrap().seconds, 5_400);
        let both = parse_duration("P1DT2H").unwrap();
        assert_eq!((both.days, both.seconds), (1, 7_200));
        assert!(parse_duration("-PT15M").unwrap().negative);
    }

    #[test]
    fn parse_duration_rejects_malformed() {
        for bad in [
            "",
            "P",
            "1H",
            "PT",
            "P1H",
            "PT1D",
            "P1",
            "PXD",
            "P9999999999D",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
