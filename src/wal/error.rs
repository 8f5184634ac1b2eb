//! Errors of the log and of the meta file.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A failure of the write-ahead log or of a [`MetaFile`](super::MetaFile).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file system operation failed.
    #[error("failed to {action} {}{}", path.display(), OffsetSuffix(*offset))]
    Io {
        /// The operation, as a verb phrase such as "sync" or "write to".
        action: &'static str,
        /// The file or directory the operation was applied to.
        path: PathBuf,
        /// The byte offset in the file, where the operation had one.
        offset: Option<u64>,
        #[source]
        source: io::Error,
    },

    /// A record in the middle of the log is damaged, or the op numbers have a
    /// gap. The log never skips such a record, because the ops after it may
    /// depend on it.
    #[error(
        "WAL file {} is corrupt at byte offset {offset}: {reason}; move the data \
         directory aside and let the node recover its state from the other replicas",
        path.display()
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// The byte offset of the damaged record in the file.
        offset: u64,
        reason: CorruptReason,
    },

    /// A meta file exists but its contents fail the checks.
    #[error(
        "meta file {} is corrupt: {reason}; restore it from a backup or move the data \
         directory aside and let the node recover from the other replicas",
        path.display()
    )]
    MetaCorrupt {
        /// The meta file.
        path: PathBuf,
        reason: CorruptReason,
    },

    /// An earlier call on this log failed, so its state may not match the disk.
    #[error(
        "WAL in {} failed earlier and may not match the disk; reopen it to recover",
        dir.display()
    )]
    Poisoned {
        /// The log's directory.
        dir: PathBuf,
    },
}

/// The defect found in a damaged record or file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// Fewer bytes remain than a record header needs.
    ShortHeader { len: u64 },
    /// The header's magic number is wrong.
    BadMagic { found: u32 },
    /// The payload length in the header exceeds the maximum.
    LengthTooLarge { len: u64 },
    /// The header promises more payload bytes than the file holds.
    ShortPayload { expected: u64, found: u64 },
    /// The CRC32C over header and payload does not match.
    BadChecksum { expected: u32, found: u32 },
    /// The rest of the file is zero bytes where a record should start.
    ZeroFilled { len: u64 },
    /// A valid record carries an unexpected op number.
    OpMismatch { expected: u64, found: u64 },
    /// A segment does not start where the previous one ended.
    OpGap { expected: u64, found: u64 },
    /// A damaged record is followed by a valid one, so it is not a torn tail.
    DataAfterDamage {
        damage: Box<CorruptReason>,
        valid_offset: u64,
    },
    /// Bytes follow a meta file's payload.
    TrailingBytes { len: u64 },
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortHeader { len } => write!(f, "short header ({len} bytes left)"),
            Self::BadMagic { found } => write!(f, "bad magic number {found:#010x}"),
            Self::LengthTooLarge { len } => {
                write!(f, "payload length {len} exceeds the maximum")
            }
            Self::ShortPayload { expected, found } => {
                write!(f, "short payload ({found} of {expected} bytes present)")
            }
            Self::BadChecksum { expected, found } => write!(
                f,
                "checksum mismatch (stored {expected:#010x}, computed {found:#010x})"
            ),
            Self::ZeroFilled { len } => write!(f, "zero-filled remainder of {len} bytes"),
            Self::OpMismatch { expected, found } => {
                write!(f, "op number {found} where op {expected} was expected")
            }
            Self::OpGap { expected, found } => {
                write!(
                    f,
                    "segment starts at op {found} but op {expected} was expected"
                )
            }
            Self::DataAfterDamage {
                damage,
                valid_offset,
            } => write!(
                f,
                "{damage}, and a valid record follows at byte offset {valid_offset}"
            ),
            Self::TrailingBytes { len } => write!(f, "{len} unexpected bytes after the payload"),
        }
    }
}

/// Formats an optional offset as " at byte offset N" for error messages.
struct OffsetSuffix(Option<u64>);

impl fmt::Display for OffsetSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at byte offset {offset}"),
            None => Ok(()),
        }
    }
}

/// Builds the closure that wraps an `io::Error` from `action` on `path`.
pub(crate) fn io_error<'a>(
    action: &'static str,
    path: &'a std::path::Path,
    offset: Option<u64>,
) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io {
        action,
        path: path.to_path_buf(),
        offset,
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn io_error_names_path_and_offset() {
        let error = io_error("write to", std::path::Path::new("/wal/1.wal"), Some(40))(
            io::Error::other("disk full"),
        );
        assert_eq!(
            error.to_string(),
            "failed to write to /wal/1.wal at byte offset 40"
        );
        assert_eq!(error.source().unwrap().to_string(), "disk full");
    }

    #[test]
    fn io_error_without_offset() {
        let error = io_error("sync", std::path::Path::new("/wal"), None)(io::Error::other("EIO"));
        assert_eq!(error.to_string(), "failed to sync /wal");
    }

    #[test]
    fn corrupt_error_names_file_offset_reason() {
        let error = WalError::Corrupt {
            path: PathBuf::from("/wal/00000000000000000001.wal"),
            offset: 120,
            reason: CorruptReason::DataAfterDamage {
                damage: Box::new(CorruptReason::BadChecksum {
                    expected: 1,
                    found: 2,
                }),
                valid_offset: 160,
            },
        };
        let message = error.to_string();
        assert!(
            message.starts_with(
                "WAL file /wal/00000000000000000001.wal is corrupt at byte offset 120: \
                 checksum mismatch (stored 0x00000001, computed 0x00000002), \
                 and a valid record follows at byte offset 160;"
            ),
            "{message}"
        );
    }
}
