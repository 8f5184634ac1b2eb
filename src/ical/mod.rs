//! iCalendar (RFC 5545) import and export.
//!
//! - [`read`] unfolds a file on bytes and parses it with the `icalendar`
//!   crate into owned components, and reads DATE, DATE-TIME and DURATION
//!   values.
//! - [`zones`] resolves a TZID to an IANA zone.
//! - [`plan`] turns a parsed file into per-event drafts, occurrence edits or
//!   skip reasons, without any I/O.
//! - [`submit`] sends a plan through the [`Client`](crate::client::Client),
//!   so every event meets the same conflict and permission checks as a
//!   typed one.
//! - [`write`] renders events as a calendar with a VTIMEZONE per zone used.

pub mod plan;
pub mod read;
pub mod submit;
pub mod write;
pub mod zones;

#[cfg(test)]
mod cases;

pub use plan::{plan_import, ImportOptions, ImportPlan, MovedOccurrence, PlanAction, PlanItem};
pub use read::{read_file, IcsFile};
pub use submit::{
    export_range, import_file, submit_plan, EventOutcome, EventReport, ImportReport,
    IMPORT_BATCH_EVENTS,
};
pub use write::{export_calendar, fold_line};
