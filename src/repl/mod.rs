//! The terminal client.
//!
//! - [`dates`]: date, time and duration expressions as people type them.
//! - [`grammar`]: the command language, parsed into [`grammar::ReplCommand`].
//! - [`recurrence`]: repeat phrases, occurrences named by date, series lines.
//! - [`render`]: text and JSON output of events, rejections, notifications.
//! - [`shell`]: the read-eval-print loop, in a terminal (rustyline) or
//!   scripted from a pipe.
//! - [`executor`]: the thread that owns the cluster client and runs commands.
//! - [`helper`]: completion and hints for rustyline.

pub mod dates;
pub mod executor;
pub mod grammar;
pub mod helper;
pub mod recurrence;
pub mod render;
pub mod shell;

pub use shell::{print_status, run, OutputFormat, ReplOptions};
