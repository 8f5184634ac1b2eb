//! Snapshots of the calendar state: the file format, the snapshot directory
//! of a node, and the receiving side of a snapshot transfer.
//!
//! A snapshot file, also the format of a backup, is a 60-byte header and a
//! body. All integers are little-endian.
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `ALSN` |
//! | 4 | 4 | format version, [`FORMAT_VERSION`] |
//! | 8 | 8 | op: the last op whose effect the state contains |
//! | 16 | 8 | body length in bytes |
//! | 24 | 32 | SHA-256 of the body, equal to [`Calendar::digest`] |
//! | 56 | 4 | CRC32C of bytes 0..56 |
//! | 60 | | body: the postcard encoding of [`Calendar`], which includes the client table and the inboxes |
//!
//! The CRC guards the header, so a damaged length or op is reported as such.
//! The SHA-256 guards the body and is also the state digest by which nodes
//! and backups are compared.

pub mod backup;
mod store;
mod transfer;

pub use store::{Loaded, SnapshotError, SnapshotStore, SNAPSHOTS_KEPT};
pub use transfer::{reply_to_read, ChunkRef, Incoming, Progress, CHUNK_BYTES};

use sha2::{Digest, Sha256};

use crate::calendar::Calendar;

/// The bytes "ALSN".
pub const MAGIC: [u8; 4] = *b"ALSN";
/// The version of the layout in the module documentation.
pub const FORMAT_VERSION: u32 = 1;
/// The length of the header, before the body.
pub const HEADER_BYTES: usize = 60;

/// The fields of a snapshot header that passed its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The last op whose effect the state contains.
    pub op: u64,
    /// The length of the body in bytes.
    pub body_bytes: u64,
    /// SHA-256 of the body.
    pub digest: [u8; 32],
}

/// The calendar state after op `op`, as read from a snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub op: u64,
    pub calendar: Calendar,
}

/// A defect of the bytes of a snapshot file, as named to the operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the file has {len} bytes, fewer than the {HEADER_BYTES}-byte header")]
    TooShort { len: usize },
    #[error("the file does not start with the snapshot magic ALSN (found {found:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("the header checksum is invalid (stored {stored:08x}, computed {computed:08x}): the header is damaged")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("format version {found} is not supported; this build reads version {FORMAT_VERSION}")]
    UnsupportedVersion { found: u32 },
    #[error("the header gives a body of {header} bytes but the file holds {actual}: the file is truncated or has trailing bytes")]
    BodyLength { header: u64, actual: u64 },
    #[error(
        "the body's SHA-256 is {computed} but the header records {stored}: the body is damaged"
    )]
    Digest { stored: String, computed: String },
    #[error("the body is not a valid calendar state: {reason}")]
    Body { reason: String },
}

/// Returns `bytes` as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Snapshot {
    /// Encodes the file bytes of the state `calendar` after op `op`.
    pub fn encode(op: u64, calendar: &Calendar) -> Vec<u8> {
        let body = calendar.encode();
        let digest: [u8; 32] = Sha256::digest(&body).into();
        let mut bytes = Vec::with_capacity(HEADER_BYTES + body.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&op.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&digest);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(bytes.len(), HEADER_BYTES);
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Checks every field and digest of a snapshot file and decodes its
    /// state.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, FormatError> {
        let header = verify(bytes)?;
        let calendar =
            Calendar::decode(&bytes[HEADER_BYTES..]).map_err(|error| FormatError::Body {
                reason: error.to_string(),
            })?;
        Ok(Snapshot {
            op: header.op,
            calendar,
        })
    }
}

/// Checks the header and the body's digest of a snapshot file without
/// decoding the state.
pub fn verify(bytes: &[u8]) -> Result<Header, FormatError> {
    let header = read_header(bytes)?;
    let body = &bytes[HEADER_BYTES..];
    if body.len() as u64 != header.body_bytes {
        return Err(FormatError::BodyLength {
            header: header.body_bytes,
            actual: body.len() as u64,
        });
    }
    let computed: [u8; 32] = Sha256::digest(body).into();
    if computed != header.digest {
        return Err(FormatError::Digest {
            stored: hex(&header.digest),
            computed: hex(&computed),
        });
    }
    Ok(header)
}

/// Reads and checks the header alone.
pub fn read_header(bytes: &[u8]) -> Result<Header, FormatError> {
    if bytes.len() < HEADER_BYTES {
        return Err(FormatError::TooShort { len: bytes.len() });
    }
    let field = |range: std::ops::Range<usize>| &bytes[range];
    let magic: [u8; 4] = field(0..4).try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(FormatError::BadMagic { found: magic });
    }
    let stored = u32::from_le_bytes(field(56..60).try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(field(0..56));
    if stored != computed {
        return Err(FormatError::HeaderChecksum { stored, computed });
    }
    let version = u32::from_le_bytes(field(4..8).try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    Ok(Header {
        op: u64::from_le_bytes(field(8..16).try_into().expect("8 bytes")),
        body_bytes: u64::from_le_bytes(field(16..24).try_into().expect("8 bytes")),
        digest: field(24..56).try_into().expect("32 bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::test_support::{Harness, RANDOM_USERS};

    fn sample() -> (Calendar, Vec<u8>) {
        let calendar = Harness::with_users(&RANDOM_USERS).calendar;
        let bytes = Snapshot::encode(42, &calendar);
        (calendar, bytes)
    }

    #[test]
    fn snapshot_round_trips() {
        let (calendar, bytes) = sample();
        let snapshot = Snapshot::decode(&bytes).unwrap();
        assert_eq!(snapshot.op, 42);
        assert_eq!(snapshot.calendar, calendar);
        let header = verify(&bytes).unwrap();
        assert_eq!(header.digest, calendar.digest());
        assert_eq!(header.body_bytes as usize, bytes.len() - HEADER_BYTES);
    }

    #[test]
    fn flipped_body_byte_fails_digest() {
        let (_, mut bytes) = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let error = verify(&bytes).unwrap_err();
        assert!(matches!(error, FormatError::Digest { .. }), "{error}");
        assert!(error.to_string().contains("body is damaged"), "{error}");
    }

    #[test]
    fn flipped_header_byte_fails_crc() {
        let (_, mut bytes) = sample();
        bytes[9] ^= 0x80;
        let error = verify(&bytes).unwrap_err();
        assert!(
            matches!(error, FormatError::HeaderChecksum { .. }),
            "{error}"
        );
    }

    #[test]
    fn every_flipped_byte_detected() {
        let (_, bytes) = sample();
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            assert!(
                Snapshot::decode(&damaged).is_err(),
                "flip at byte {index} was not detected"
            );
        }
    }

    #[test]
    fn truncated_file_rejected() {
        let (_, bytes) = sample();
        let error = verify(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(error, FormatError::BodyLength { .. }), "{error}");
        let error = verify(&bytes[..10]).unwrap_err();
        assert_eq!(error, FormatError::TooShort { len: 10 });
    }

    #[test]
    fn other_magic_and_version_rejected() {
        let (_, bytes) = sample();
        let mut other = bytes.clone();
        other[0] = b'X';
        assert!(matches!(verify(&other), Err(FormatError::BadMagic { .. })));
        let mut newer = bytes;
        newer[4] = 2;
        let crc = crc32c::crc32c(&newer[..56]);
        newer[56..60].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            verify(&newer),
            Err(FormatError::UnsupportedVersion { found: 2 })
        );
    }
}
