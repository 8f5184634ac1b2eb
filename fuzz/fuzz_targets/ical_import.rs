//! Raw bytes as an uploaded iCalendar file. The target checks that reading
//! returns an error or a file, that planning the file is deterministic and
//! does not panic, and that every planned schedule applies to a calendar
//! without panicking.

#![no_main]

use almanac::calendar::{Calendar, Command, Request};
use almanac::ical::{plan_import, read_file, ImportOptions};
use libfuzzer_sys::fuzz_target;

/// The importing user and the other registered user.
const USERS: [&str; 2] = ["ada", "bob"];

fn apply(calendar: &mut Calendar, seq: &mut u64, command: Command) {
    *seq += 1;
    calendar.apply(&Request {
        client_id: 1,
        seq: *seq,
        now_ms: 1_700_000_000_000,
        command,
    });
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = read_file(data) else {
        return;
    };
    // The first byte picks the leniency, so both settings are fuzzed.
    let lenient = data.first().is_some_and(|byte| byte & 1 == 1);
    let options = ImportOptions {
        username: USERS[0].to_string(),
        user_zone: chrono_tz::Europe::Berlin,
        users: USERS.iter().map(|name| name.to_string()).collect(),
        lenient,
    };
    let plan = plan_import(&file, &options);
    let again = plan_import(&file, &options);
    assert_eq!(plan.items, again.items, "planning is not deterministic");

    let mut calendar = Calendar::new();
    let mut seq = 0;
    for name in USERS {
        let command = Command::Register {
            username: name.to_string(),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}"),
        };
        apply(&mut calendar, &mut seq, command);
    }
    for item in &plan.items {
        if let Some(command) = item.schedule_command(USERS[0]) {
            apply(&mut calendar, &mut seq, command);
        }
    }
});
