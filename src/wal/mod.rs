//! The write-ahead log of one node, and the disk it is written to.
//!
//! The log stores opaque payloads keyed by contiguous op numbers (1, 2, 3, ...)
//! in segment files inside one directory. Each record is framed with its
//! length, op number and a CRC32C. Recovery truncates a torn tail, the normal
//! result of a crash. It reports corruption in the middle as an error that
//! names the file and byte offset.
//!
//! Durability follows the POSIX rules: record data is durable after
//! `fdatasync`, and a new file, a removal or a rename is durable only after
//! the directory is synced as well. [`Wal::sync`] covers every record appended
//! since the previous sync with one `fdatasync` (group commit).
//! [`Wal::start_sync`] and [`Wal::finish_sync`] do the same with the
//! `fdatasync` on another thread, so appends go on while it runs.
//!
//! All I/O goes through the [`Disk`] trait: [`StdDisk`] in production and,
//! with the `sim` feature, [`SimDisk`] on turmoil's simulated file system,
//! which drops unsynced writes when a host crashes.

mod disk;
mod error;
mod log;
mod meta;
mod record;
mod segment;
#[cfg(feature = "sim")]
mod sim_disk;

pub use disk::{DetachedSync, Disk, DiskFile, StdDisk};
pub use error::{CorruptReason, WalError};
pub use log::{
    Record, Recovery, Repair, SyncStart, SyncTicket, Wal, WalOptions, SEGMENT_BYTES_DEFAULT,
};
pub use meta::MetaFile;
pub use record::PAYLOAD_BYTES_MAX;
#[cfg(feature = "sim")]
pub use sim_disk::SimDisk;
