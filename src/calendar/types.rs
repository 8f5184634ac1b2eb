//! The values that cross the log, the snapshot and the RPC boundary.

use serde::{Deserialize, Serialize};

use super::responses::{GuestResponse, Response};
use super::working_hours::WorkingHours;

/// Event identifier, assigned from a counter in the state starting at 1.
pub type EventId = u64;

/// Minutes since 1970-01-01T00:00Z (UTC). Minute resolution everywhere.
pub type UnixMinute = i64;

/// One logged command, already stamped by the primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Client that sent the request; keys the client table.
    pub client_id: u64,
    /// Per-client request number; must grow with each new request.
    pub seq: u64,
    /// Wall-clock time stamped by the primary, in milliseconds since the epoch.
    pub now_ms: i64,
    pub command: Command,
}

/// A state-changing command. Callers are usernames the shell has already
/// authenticated (through a session); the state machine checks that they exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `password_hash` is an argon2id PHC string computed by the primary; the
    /// plaintext never enters the log.
    Register {
        username: String,
        password_hash: String,
    },
    /// Login after the primary verified the password against
    /// `Calendar::password_hash`; also used right after `Register`.
    /// `token_digest` is the SHA-256 of a random token that only the client
    /// has, so a session can be resumed on any node.
    OpenSession {
        username: String,
        token_digest: [u8; 32],
    },
    CloseSession {
        token_digest: [u8; 32],
    },
    DeleteAccount {
        caller: String,
    },
    Schedule {
        caller: String,
        draft: EventDraft,
    },
    Edit {
        caller: String,
        event_id: EventId,
        expected_version: u64,
        changes: EventChanges,
    },
    Delete {
        caller: String,
        event_id: EventId,
    },
    /// Marks the caller's notifications up to and including `up_to_seq` as seen.
    AckNotifications {
        caller: String,
        up_to_seq: u64,
    },
    /// Changes one occurrence of a recurring event, or with `following` that
    /// occurrence and every later one (which splits the series in two).
    EditOccurrence {
        caller: String,
        event_id: EventId,
        expected_version: u64,
        /// Original start of the occurrence (its RFC 5545 RECURRENCE-ID).
        occurrence_start: UnixMinute,
        changes: EventChanges,
        following: bool,
    },
    /// Cancels one occurrence of a recurring event, or with `following` that
    /// occurrence and every later one (which ends the series before it).
    DeleteOccurrence {
        caller: String,
        event_id: EventId,
        occurrence_start: UnixMinute,
        following: bool,
    },
    /// A guest's response to an invitation; the host's own response is implied.
    Respond {
        caller: String,
        event_id: EventId,
        response: Response,
        /// Original start of the one occurrence of a series answered; `None`
        /// answers the whole event.
        #[serde(default)]
        occurrence_start: Option<UnixMinute>,
    },
    SetWorkingHours {
        caller: String,
        hours: WorkingHours,
    },
}

/// A new event as the host typed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDraft {
    pub title: String,
    pub description: String,
    pub start: UnixMinute,
    /// IANA zone name the start was entered in, such as `Europe/Paris`.
    pub zone: String,
    pub duration_minutes: u32,
    pub visibility: Visibility,
    /// Makes the event recurring; `None` for a one-off event.
    pub recurrence: Option<Recurrence>,
    /// Whether `start` is a fixed instant, a wall-clock time or a date.
    pub timing: Timing,
}

/// Anchor of an event's start and end in time.
///
/// Conflict checks and the indexes work on instants, so every event stores
/// `start` as an instant. For a floating or all-day event that instant is its
/// wall-clock time or date resolved in the event's `zone`. The client records
/// that zone in the draft at submit time (the host's zone), so every replica
/// derives the same instants whatever zone its server process runs in.
/// Viewers in other zones see the event through
/// [`crate::calendar::timing::seen_in`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Timing {
    /// A fixed instant, shown in each viewer's zone at the same instant.
    #[default]
    Zoned,
    /// The same zoned timing, with the TZID text of an imported file (such
    /// as `(UTC+01:00) Zürich, Bern, Genève`) kept byte for byte, so that an
    /// export names the zone as the file did.
    Labelled { tzid: String },
    /// A wall-clock time without a zone (an RFC 5545 floating DATE-TIME):
    /// 15:00 is 15:00 in whatever zone the viewer uses.
    ///
    /// NOTE: a time in a DST gap of the event's zone is stored moved forward
    /// by the gap, so every viewer then sees the moved time.
    Floating,
    /// Whole local days (RFC 5545 DATE values): `start` is midnight of the
    /// first day in `zone` and the end is midnight after the last day.
    AllDay,
}

impl Timing {
    /// Returns whether the event keeps its wall-clock time or date in every
    /// viewer's zone instead of its instant.
    pub fn is_local(&self) -> bool {
        matches!(self, Timing::Floating | Timing::AllDay)
    }

    /// Returns the TZID text kept from an imported file, if any.
    pub fn tzid_label(&self) -> Option<&str> {
        match self {
            Timing::Labelled { tzid } => Some(tzid),
            _ => None,
        }
    }
}

/// Visibility of an event, which also names the guests of a private one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Seen by everyone; every user is invited.
    Public,
    /// Seen by the host and the listed guests only.
    Private { guests: Vec<String> },
}

/// Changes to an event; `None` leaves a field unchanged.
///
/// NOTE: an edit keeps the event's timing, so an all-day event cannot become
/// a timed one, because its new times must still be local midnights. Delete
/// it and schedule it again instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub start: Option<UnixMinute>,
    pub zone: Option<String>,
    pub duration_minutes: Option<u32>,
    pub visibility: Option<Visibility>,
}

/// The result of applying one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done(Effect),
    Rejected(Rejection),
}

/// Result of a successful command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Registered {
        username: String,
    },
    SessionOpened {
        username: String,
    },
    SessionClosed,
    AccountDeleted {
        username: String,
        /// Events the user hosted, in id order; all were deleted.
        cancelled_events: Vec<EventId>,
    },
    Scheduled {
        event_id: EventId,
        version: u64,
    },
    Edited {
        event_id: EventId,
        version: u64,
    },
    Deleted {
        event_id: EventId,
    },
    /// `up_to_seq` is the acknowledged sequence number after the command,
    /// which stays at the old value when an older one was acknowledged.
    Acked {
        up_to_seq: u64,
    },
    /// A recurring event was scheduled or changed. `event_id` is the new
    /// series when a "this and following" edit split one.
    SeriesWritten {
        event_id: EventId,
        version: u64,
        /// Set when the series has no end: conflicts were checked only for
        /// occurrences starting before this minute.
        conflicts_checked_until: Option<UnixMinute>,
    },
    /// An occurrence, or an occurrence and every later one, was cancelled.
    /// `version` is `None` when no occurrence was left, so the whole event
    /// was deleted.
    OccurrenceDeleted {
        event_id: EventId,
        version: Option<u64>,
    },
    Responded {
        event_id: EventId,
        response: Response,
    },
    WorkingHoursSet,
}

/// Reason a command was rejected. A rejected command changes nothing but the
/// client table entry of its request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("{}", conflict_message(slots))]
    Conflict { slots: Vec<BusySlot> },
    #[error("{what} not found; check the name or id and try again")]
    NotFound { what: String },
    #[error("not allowed: {reason}")]
    Forbidden { reason: String },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error(
        "event {event_id} is at version {current}, not version {expected}; \
         reload the event and apply the edit again"
    )]
    StaleVersion {
        event_id: EventId,
        expected: u64,
        current: u64,
    },
    #[error("{what} already exists; choose another")]
    AlreadyExists { what: String },
    #[error(
        "request {seq} of client {client_id} is older than its last applied \
         request {last_seq}, so it was not applied; send new requests with a \
         higher sequence number"
    )]
    StaleRequest {
        client_id: u64,
        seq: u64,
        last_seq: u64,
    },
}

impl Rejection {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Rejection::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Rejection::NotFound { what: what.into() }
    }
}

/// One conflicting slot. `event` is `None` when the caller may not see that
/// event (a private event they are neither host nor guest of): then only the
/// participant and the time are shown, never the title or the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusySlot {
    /// The user who is busy: a participant the two events share, or the host
    /// of the existing event when they share none (a public event conflicts
    /// with everything).
    pub participant: String,
    pub start: UnixMinute,
    /// Exclusive end.
    pub end: UnixMinute,
    pub event: Option<EventBrief>,
}

/// The part of an event shown in a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBrief {
    pub id: EventId,
    pub title: String,
    pub host: String,
}

/// An event as stored and as shown to those who may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub id: EventId,
    /// Starts at 1 and grows by one with each successful edit, including the
    /// removal of a guest whose account was deleted.
    pub version: u64,
    /// Trimmed, 1 to `MAX_TITLE_CHARS` characters.
    pub title: String,
    pub description: String,
    pub start: UnixMinute,
    pub duration_minutes: u32,
    /// Canonical IANA zone name.
    pub zone: String,
    /// Username of the host as registered.
    pub host: String,
    /// For private events, guests as registered, sorted case-insensitively.
    pub visibility: Visibility,
    /// The rule of a recurring event; `None` for a one-off event. In a view
    /// of one occurrence, `start`, `duration_minutes`, `title` and
    /// `description` are the occurrence's and `Recurrence::occurrence` is set.
    /// Boxed, because most events have none and views are copied often.
    pub recurrence: Option<Box<Recurrence>>,
    /// Responses of the guests who responded, sorted by lowercase username; a
    /// guest without an entry has not responded yet (needs-action). Responses
    /// do not change `version`, so a host's edit never goes stale because a
    /// guest responded.
    pub responses: Vec<GuestResponse>,
    /// Whether `start` is a fixed instant, a wall-clock time or a date.
    pub timing: Timing,
}

impl EventView {
    /// Exclusive end minute.
    pub fn end(&self) -> UnixMinute {
        self.start + i64::from(self.duration_minutes)
    }

    /// Whether the event has a recurrence rule.
    pub fn is_recurring(&self) -> bool {
        self.recurrence.is_some()
    }

    pub fn is_public(&self) -> bool {
        matches!(self.visibility, Visibility::Public)
    }

    /// Guests of a private event; empty for a public one.
    pub fn guests(&self) -> &[String] {
        match &self.visibility {
            Visibility::Public => &[],
            Visibility::Private { guests } => guests,
        }
    }

    /// Host first, then guests.
    pub fn participants(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.host).chain(self.guests())
    }

    /// Whether the user with this lowercase key is host or guest.
    pub(crate) fn involves(&self, key: &str) -> bool {
        self.participants()
            .any(|name| name.eq_ignore_ascii_case(key))
    }

    /// Public events are visible to all; private ones to host and guests.
    pub(crate) fn is_visible_to(&self, key: &str) -> bool {
        self.is_public() || self.involves(key)
    }

    pub(crate) fn overlaps(&self, start: UnixMinute, end: UnixMinute) -> bool {
        self.start < end && start < self.end()
    }

    pub(crate) fn brief(&self) -> EventBrief {
        EventBrief {
            id: self.id,
            title: self.title.clone(),
            host: self.host.clone(),
        }
    }
}

/// How an event repeats: an RFC 5545 recurrence rule and its exceptions.
/// The event's `start` is the rule's DTSTART and its zone the rule's zone, so
/// every occurrence keeps the wall-clock time of the start in that zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// RFC 5545 RRULE value such as `FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH`,
    /// with UNTIL as a UTC date-time (`UNTIL=20270630T215900Z`) or a date
    /// in the event's zone (`UNTIL=20270630`).
    pub rule: String,
    /// Original starts of cancelled occurrences (EXDATE), sorted.
    pub exceptions: Vec<UnixMinute>,
    /// Occurrences moved or changed one by one, sorted by original start.
    pub overrides: Vec<OccurrenceOverride>,
    /// Set only in the view of one occurrence, as the agenda returns it.
    pub occurrence: Option<OccurrenceOf>,
}

/// One occurrence that differs from what the rule gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceOverride {
    /// Start the rule gives this occurrence (its RECURRENCE-ID).
    pub original_start: UnixMinute,
    pub start: UnixMinute,
    pub duration_minutes: u32,
    /// `None` keeps the series' title.
    pub title: Option<String>,
    /// `None` keeps the series' description.
    pub description: Option<String>,
}

/// Where one occurrence belongs in its series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceOf {
    /// Start the rule gives this occurrence; it names the occurrence in
    /// `EditOccurrence` and `DeleteOccurrence`.
    pub original_start: UnixMinute,
    /// Start of the series (the rule's DTSTART).
    pub series_start: UnixMinute,
}

/// One entry of a user's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Per-user number, starting at 1 and never reused.
    pub seq: u64,
    /// Time of the request that caused it, as stamped by the primary.
    pub at_ms: i64,
    pub kind: NotificationKind,
    /// The event as it is after the change, or as it was when cancelled.
    pub event: EventView,
    /// The user whose command caused it: the host, or a guest whose account
    /// was deleted (see `NotificationKind::Changed`).
    pub actor: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NotificationKind {
    /// Sent to new guests, and to every user for a new or newly public event.
    Invited,
    /// Sent to remaining participants when the title, description, start,
    /// duration or zone changed; also sent to the host when a guest's account
    /// was deleted, with that guest as the actor.
    Changed,
    /// Sent to every participant but the host when an event is deleted.
    Cancelled,
    /// Sent to guests an edit dropped, including everyone but the guests when
    /// a public event becomes private.
    RemovedFromGuests,
    /// Sent to the host when a guest accepts, declines or responds
    /// tentatively. The guest is the actor, and `event.responses` contains
    /// the response.
    Responded,
}

/// Filters of a search; unset filters match everything, but at least one must
/// be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Username of the host, matched case-insensitively.
    pub host: Option<String>,
    /// Case-insensitive substring of the title or the description.
    pub text: Option<String>,
    /// Only events ending after this minute.
    pub from: Option<UnixMinute>,
    /// Only events starting before this minute.
    pub to: Option<UnixMinute>,
}

/// Bytes that do not decode as the expected value.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {what}: {source}; the bytes are corrupt or were written by an incompatible version")]
pub struct DecodeError {
    pub what: &'static str,
    #[source]
    pub source: postcard::Error,
}

pub(crate) fn decode_as<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|source| DecodeError { what, source })
}

pub(crate) fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a growing Vec cannot fail.
    postcard::to_allocvec(value).expect("postcard serializes calendar data into a Vec")
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        encode_value(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        decode_as("request", bytes)
    }
}

impl Outcome {
    pub fn encode(&self) -> Vec<u8> {
        encode_value(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Outcome, DecodeError> {
        decode_as("outcome", bytes)
    }
}

/// Formats a minute as `2027-01-05 10:00 UTC`.
pub fn format_minute(minute: UnixMinute) -> String {
    match chrono::DateTime::from_timestamp(minute.saturating_mul(60), 0) {
        Some(time) => time.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => format!("minute {minute}"),
    }
}

fn conflict_message(slots: &[BusySlot]) -> String {
    let mut message = format!("the time conflicts with {} busy slot(s): ", slots.len());
    let described: Vec<String> = slots.iter().map(describe_slot).collect();
    message.push_str(&described.join("; "));
    message.push_str("; choose another time or other guests");
    message
}

fn describe_slot(slot: &BusySlot) -> String {
    let time = format!(
        "{} to {}",
        format_minute(slot.start),
        format_minute(slot.end)
    );
    match &slot.event {
        Some(event) => format!(
            "{} is busy {time} with event {} \"{}\" hosted by {}",
            slot.participant, event.id, event.title, event.host
        ),
        None => format!("{} is busy {time}", slot.participant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> Request {
        Request {
            client_id: 7,
            seq: 3,
            now_ms: 1_800_000_000_000,
            command: Command::Schedule {
                caller: "alice".into(),
                draft: EventDraft {
                    title: "Standup".into(),
                    description: "daily".into(),
                    start: 29_000_000,
                    zone: "Europe/Paris".into(),
                    duration_minutes: 15,
                    visibility: Visibility::Private {
                        guests: vec!["bob".into()],
                    },
                    recurrence: None,
                    timing: Timing::Floating,
                },
            },
        }
    }

    #[test]
    fn request_round_trips() {
        let request = sample_request();
        let decoded = Request::decode(&request.encode()).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn outcome_round_trips() {
        let outcome = Outcome::Rejected(Rejection::StaleVersion {
            event_id: 4,
            expected: 1,
            current: 2,
        });
        assert_eq!(Outcome::decode(&outcome.encode()).unwrap(), outcome);
    }

    #[test]
    fn truncated_request_fails_decode() {
        let bytes = sample_request().encode();
        let error = Request::decode(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(error.to_string().contains("cannot decode request"));
    }

    #[test]
    fn format_minute_is_utc() {
        // 2027-01-05 10:00 UTC.
        let minute = chrono::NaiveDate::from_ymd_opt(2027, 1, 5)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
            / 60;
        assert_eq!(format_minute(minute), "2027-01-05 10:00 UTC");
    }

    #[test]
    fn conflict_message_redacts_invisible() {
        let slots = vec![
            BusySlot {
                participant: "bob".into(),
                start: 0,
                end: 60,
                event: None,
            },
            BusySlot {
                participant: "carol".into(),
                start: 60,
                end: 90,
                event: Some(EventBrief {
                    id: 2,
                    title: "Lunch".into(),
                    host: "carol".into(),
                }),
            },
        ];
        let message = Rejection::Conflict { slots }.to_string();
        assert!(message.contains("2 busy slot(s)"));
        assert!(message.contains("bob is busy 1970-01-01 00:00 UTC to 1970-01-01 01:00 UTC;"));
        assert!(message.contains("event 2 \"Lunch\" hosted by carol"));
    }

    #[test]
    fn rejection_messages_name_value_and_fix() {
        let stale = Rejection::StaleVersion {
            event_id: 4,
            expected: 1,
            current: 3,
        };
        let message = stale.to_string();
        assert!(
            message.contains("event 4 is at version 3, not version 1"),
            "{message}"
        );
        assert!(message.contains("reload the event"), "{message}");
        let missing = Rejection::not_found("guest \"zed\"").to_string();
        assert!(missing.starts_with("guest \"zed\" not found"), "{missing}");
        let invalid = Rejection::invalid("zone", "\"X\" is not an IANA time zone").to_string();
        assert_eq!(invalid, "invalid zone: \"X\" is not an IANA time zone");
        let request = Rejection::StaleRequest {
            client_id: 9,
            seq: 2,
            last_seq: 5,
        };
        let message = request.to_string();
        assert!(message.contains("request 2 of client 9"), "{message}");
        assert!(message.contains("last applied request 5"), "{message}");
    }

    #[test]
    fn overlap_is_half_open() {
        let event = EventView {
            id: 1,
            version: 1,
            title: "t".into(),
            description: String::new(),
            start: 100,
            duration_minutes: 30,
            zone: "UTC".into(),
            host: "alice".into(),
            visibility: Visibility::Public,
            recurrence: None,
            responses: Vec::new(),
            timing: Timing::Zoned,
        };
        assert!(event.overlaps(129, 200));
        assert!(event.overlaps(0, 101));
        assert!(!event.overlaps(130, 200));
        assert!(!event.overlaps(0, 100));
    }
}
