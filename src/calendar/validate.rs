//! Checks of single input values. Each returns `Rejection::Invalid` naming the
//! field, the value and the rule, or the cleaned value to store.

use std::collections::BTreeSet;

use super::limits::{
    EARLIEST_START, LATEST_START, MAX_DESCRIPTION_CHARS, MAX_DURATION_MINUTES, MAX_GUESTS,
    MAX_PASSWORD_CHARS, MAX_TITLE_CHARS, MAX_USERNAME_CHARS, MIN_PASSWORD_CHARS, USERNAME_SYMBOLS,
};
use super::types::{format_minute, Rejection, UnixMinute};

/// Checks a username: 1 to `MAX_USERNAME_CHARS` ASCII letters, digits, `_`,
/// `-` or `.`. Uniqueness (case-insensitive) is checked against the state.
pub fn validate_username(username: &str) -> Result<(), Rejection> {
    if username.is_empty() || username.len() > MAX_USERNAME_CHARS {
        return Err(Rejection::invalid(
            "username",
            format!(
                "\"{username}\" has {} characters; use 1 to {MAX_USERNAME_CHARS}",
                username.chars().count()
            ),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || USERNAME_SYMBOLS.contains(&c);
    if let Some(bad) = username.chars().find(|&c| !allowed(c)) {
        return Err(Rejection::invalid(
            "username",
            format!(
                "\"{username}\" contains {bad:?}; use only ASCII letters, digits, '_', '-' and '.'"
            ),
        ));
    }
    Ok(())
}

/// Checks a plaintext password before it is hashed: `MIN_PASSWORD_CHARS` to
/// `MAX_PASSWORD_CHARS` characters. The password itself is never echoed.
pub fn validate_password(password: &str) -> Result<(), Rejection> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Rejection::invalid(
            "password",
            format!("it has {chars} characters; use at least {MIN_PASSWORD_CHARS}"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Rejection::invalid(
            "password",
            format!("it has {chars} characters; use at most {MAX_PASSWORD_CHARS}"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_password_hash(hash: &str) -> Result<(), Rejection> {
    if hash.trim().is_empty() {
        return Err(Rejection::invalid(
            "password hash",
            "it is empty; the server must hash the password before registering",
        ));
    }
    Ok(())
}

/// Returns the trimmed title, which must have 1 to `MAX_TITLE_CHARS`
/// characters and no control characters.
pub fn normalize_title(title: &str) -> Result<String, Rejection> {
    let trimmed = title.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Rejection::invalid(
            "title",
            "it is empty; give the event a title",
        ));
    }
    if chars > MAX_TITLE_CHARS {
        return Err(Rejection::invalid(
            "title",
            format!("it has {chars} characters; use at most {MAX_TITLE_CHARS}"),
        ));
    }
    if let Some(bad) = trimmed.chars().find(|c| c.is_control()) {
        return Err(Rejection::invalid(
            "title",
            format!("it contains the control character {bad:?}; remove it"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Checks a description: at most `MAX_DESCRIPTION_CHARS` characters, and no
/// control characters other than newline and tab.
pub fn validate_description(description: &str) -> Result<(), Rejection> {
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Rejection::invalid(
            "description",
            format!("it has {chars} characters; use at most {MAX_DESCRIPTION_CHARS}"),
        ));
    }
    let bad = description
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t');
    if let Some(bad) = bad {
        return Err(Rejection::invalid(
            "description",
            format!("it contains the control character {bad:?}; remove it"),
        ));
    }
    Ok(())
}

pub fn validate_duration(duration_minutes: u32) -> Result<(), Rejection> {
    if duration_minutes == 0 || duration_minutes > MAX_DURATION_MINUTES {
        return Err(Rejection::invalid(
            "duration",
            format!(
                "{duration_minutes} minutes is outside 1 to {MAX_DURATION_MINUTES} minutes (14 days)"
            ),
        ));
    }
    Ok(())
}

pub fn validate_start(start: UnixMinute) -> Result<(), Rejection> {
    if !(EARLIEST_START..LATEST_START).contains(&start) {
        return Err(Rejection::invalid(
            "start",
            format!(
                "{} is outside the supported dates, {} to {} (exclusive)",
                format_minute(start),
                format_minute(EARLIEST_START),
                format_minute(LATEST_START)
            ),
        ));
    }
    Ok(())
}

/// Returns the canonical IANA name of a zone, such as `Europe/Paris`.
pub fn canonical_zone(zone: &str) -> Result<String, Rejection> {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Ok(tz.name().to_string()),
        Err(_) => Err(Rejection::invalid(
            "zone",
            format!("\"{zone}\" is not an IANA time zone; use a name like Europe/Paris or UTC"),
        )),
    }
}

/// Resolves a private guest list to registered usernames sorted
/// case-insensitively. `lookup` maps a name to the registered spelling.
/// Rejects more than `MAX_GUESTS`, duplicates, the host and unknown users.
pub(crate) fn resolve_guests<'a>(
    host: &str,
    guests: &[String],
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<Vec<String>, Rejection> {
    if guests.len() > MAX_GUESTS {
        return Err(Rejection::invalid(
            "guests",
            format!(
                "{} guests is more than {MAX_GUESTS}; make the event public instead",
                guests.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for guest in guests {
        let key = guest.to_ascii_lowercase();
        if key == host.to_ascii_lowercase() {
            return Err(Rejection::invalid(
                "guests",
                format!("\"{guest}\" is the host; the host takes part without being a guest"),
            ));
        }
        let Some(registered) = lookup(guest) else {
            return Err(Rejection::not_found(format!("guest \"{guest}\"")));
        };
        if !seen.insert((key, registered.to_string())) {
            return Err(Rejection::invalid(
                "guests",
                format!("\"{guest}\" is listed twice; list each guest once"),
            ));
        }
    }
    Ok(seen.into_iter().map(|(_, name)| name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(rejection: Rejection) -> String {
        match rejection {
            Rejection::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn username_accepts_allowed_characters() {
        assert!(validate_username("a").is_ok());
        assert!(validate_username("Alice_B-c.9").is_ok());
        assert!(validate_username(&"x".repeat(MAX_USERNAME_CHARS)).is_ok());
    }

    #[test]
    fn username_rejects_bad_length_and_characters() {
        let too_long = "x".repeat(MAX_USERNAME_CHARS + 1);
        for bad in ["", too_long.as_str(), "al ice", "élise", "bob!", "a/b"] {
            let rejection = validate_username(bad).unwrap_err();
            assert_eq!(field_of(rejection), "username", "value {bad:?}");
        }
    }

    #[test]
    fn username_message_names_value() {
        let message = validate_username("bob!").unwrap_err().to_string();
        assert!(message.contains("\"bob!\""), "{message}");
        assert!(message.contains("'!'"), "{message}");
    }

    #[test]
    fn password_length_bounds() {
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"p".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert!(validate_password(&"p".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn password_message_hides_password() {
        let message = validate_password("secret1").unwrap_err().to_string();
        assert!(!message.contains("secret1"), "{message}");
    }

    #[test]
    fn password_hash_must_be_nonempty() {
        assert!(validate_password_hash("$argon2id$v=19$m=19456,t=2,p=1$x$y").is_ok());
        assert!(validate_password_hash("").is_err());
        assert!(validate_password_hash("  ").is_err());
    }

    #[test]
    fn title_is_trimmed_and_bounded() {
        assert_eq!(normalize_title("  Standup \n").unwrap(), "Standup");
        assert!(normalize_title(&"t".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(normalize_title(&format!(" {} ", "t".repeat(MAX_TITLE_CHARS))).is_ok());
        assert!(normalize_title(&"t".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(normalize_title("   ").is_err());
        assert!(normalize_title("a\u{7}b").is_err());
        assert!(normalize_title("a\nb").is_err());
    }

    #[test]
    fn description_allows_newlines_only() {
        assert!(validate_description("").is_ok());
        assert!(validate_description("line one\n\tline two").is_ok());
        assert!(validate_description("bell\u{7}").is_err());
        assert!(validate_description(&"d".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(validate_description(&"d".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
    }

    #[test]
    fn duration_bounds() {
        assert!(validate_duration(0).is_err());
        assert!(validate_duration(1).is_ok());
        assert!(validate_duration(MAX_DURATION_MINUTES).is_ok());
        assert!(validate_duration(MAX_DURATION_MINUTES + 1).is_err());
    }

    #[test]
    fn start_bounds() {
        assert!(validate_start(EARLIEST_START).is_ok());
        let error = validate_start(EARLIEST_START - 1).unwrap_err().to_string();
        assert!(
            error.contains("1969-12-31 23:59 UTC is outside the supported dates"),
            "{error}"
        );
        assert!(validate_start(LATEST_START - 1).is_ok());
        assert!(validate_start(LATEST_START).is_err());
    }

    #[test]
    fn zone_must_be_iana() {
        assert_eq!(canonical_zone("Europe/Paris").unwrap(), "Europe/Paris");
        assert_eq!(canonical_zone("UTC").unwrap(), "UTC");
        let message = canonical_zone("Mars/Olympus").unwrap_err().to_string();
        assert!(message.contains("\"Mars/Olympus\""), "{message}");
    }

    fn registered(name: &str) -> Option<&'static str> {
        ["Bob", "carol", "dave"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(name))
    }

    #[test]
    fn guests_resolve_to_registered_sorted() {
        let guests = vec!["dave".to_string(), "bob".to_string(), "Carol".to_string()];
        let resolved = resolve_guests("alice", &guests, registered).unwrap();
        assert_eq!(resolved, vec!["Bob", "carol", "dave"]);
    }

    #[test]
    fn guests_reject_unknown_by_name() {
        let guests = vec!["bob".to_string(), "zed".to_string()];
        let rejection = resolve_guests("alice", &guests, registered).unwrap_err();
        assert_eq!(rejection, Rejection::not_found("guest \"zed\""));
    }

    #[test]
    fn guests_reject_duplicates_case_insensitively() {
        let guests = vec!["bob".to_string(), "BOB".to_string()];
        let rejection = resolve_guests("alice", &guests, registered).unwrap_err();
        assert_eq!(field_of(rejection), "guests");
    }

    #[test]
    fn guests_reject_host() {
        let guests = vec!["carol".to_string()];
        let rejection = resolve_guests("Carol", &guests, registered).unwrap_err();
        assert!(rejection.to_string().contains("is the host"));
    }

    #[test]
    fn guests_reject_too_many() {
        let guests: Vec<String> = (0..=MAX_GUESTS).map(|i| format!("u{i}")).collect();
        let rejection = resolve_guests("alice", &guests, |_| Some("x")).unwrap_err();
        assert_eq!(field_of(rejection), "guests");
    }
}
