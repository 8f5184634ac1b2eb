//! Any text as a date, a duration or a span: parsing returns a value or an
//! error, and never panics.

#![no_main]

use almanac::repl::dates::{parse_duration, parse_span, parse_when, DateContext};
use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let context = DateContext {
        now: chrono::Utc.with_ymd_and_hms(2031, 1, 6, 9, 0, 0).unwrap(),
        zone: chrono_tz::America::New_York,
    };
    let _ = parse_when(text, &context);
    let _ = parse_duration(text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let _ = parse_span(&words, &context);
});
