//! The calendar domain as a deterministic state machine.
//!
//! Every node applies the same log of [`Request`]s in the same order with
//! [`Calendar::apply`] and ends with byte-identical state, so nothing here
//! reads a clock, draws a random number, iterates a hash map or does I/O. The
//! primary stamps the time into each request; ids come from counters in the
//! state.
//!
//! - [`types`]: requests, commands, outcomes, views; what crosses the log.
//! - [`limits`]: named limits with their reasons.
//! - [`validate`]: checks of single values (usernames, titles, zones, ...).
//! - `state`: the [`Calendar`] and `apply`, which dispatches to the handlers
//!   in `users` (accounts, sessions), `events` (schedule, edit, delete) and
//!   `notifications` (inboxes, acknowledgements).
//! - `conflicts`: which existing events a new or edited one collides with.
//! - `index`: the start-ordered indexes that keep lookups logarithmic.
//! - `queries`: event, agenda and search, filtered by visibility.
//! - [`recurrence`]: RFC 5545 rules, their expansion and the DST policy.
//! - `series`: recurring events in the state: their index, occurrence
//!   edits and cancellations.
//! - `client_table`: the last request and outcome per client, for retries.
//! - [`responses`]: guests' responses and whose time an event blocks.
//! - [`working_hours`] and [`freetime`]: working hours, free slots and
//!   meeting suggestions.
//! - [`history`]: the committed changes of each event.
//! - [`timing`]: floating and all-day events as each viewer's zone sees them.

mod client_table;
mod conflicts;
mod events;
pub mod freetime;
pub mod history;
mod index;
pub mod limits;
mod notifications;
mod queries;
pub mod recurrence;
pub mod responses;
mod series;
mod state;
#[cfg(test)]
pub(crate) mod test_support;
pub mod timing;
pub mod types;
mod users;
pub mod validate;
pub mod working_hours;

pub use freetime::{FreeQuery, TimeSlot};
pub use history::{Change, FieldChange, HistoryEntry};
pub use limits::*;
pub use responses::{GuestResponse, Response};
pub use state::{Calendar, UNTRACKED_CLIENT_ID};
pub use types::{
    format_minute, BusySlot, Command, DecodeError, Effect, EventBrief, EventChanges, EventDraft,
    EventId, EventView, Notification, NotificationKind, OccurrenceOf, OccurrenceOverride, Outcome,
    Recurrence, Rejection, Request, SearchQuery, Timing, UnixMinute, Visibility,
};
pub use validate::{validate_password, validate_username};
pub use working_hours::WorkingHours;
