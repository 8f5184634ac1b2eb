//! Any line typed at the REPL: parsing returns a command or an error, and
//! never panics.

#![no_main]

use almanac::repl::dates::DateContext;
use almanac::repl::grammar::parse_command;
use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    let context = DateContext {
        now: chrono::Utc.with_ymd_and_hms(2031, 1, 6, 9, 0, 0).unwrap(),
        zone: chrono_tz::Europe::Paris,
    };
    let _ = parse_command(line, &context);
});
