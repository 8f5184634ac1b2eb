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
    #[error(
        "the file does not start with the snapshot magic ALSN but with \"{}\", so it is not \
         a backup or snapshot written by almanac",
        found.escape_ascii()
    )]
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
    #[error(
        "the body decodes, but its state encodes to other bytes (SHA-256 {computed}): \
         the body was not written by Almanac; use another snapshot or backup"
    )]
    NotCanonical { computed: String },
}

/// Returns `bytes` as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Snapshot {
    /// Encodes the file bytes of the state `calendar` after op `op`.
    pub fn encode(op: u64, calendar: &Calendar) -> Vec<u8> {
        Snapshot::frame(op, &calendar.encode())
    }

    /// Puts the header in front of `body`, the encoded state after op `op`.
    /// Split from [`Snapshot::encode`] so that a node can apply ops again as
    /// soon as the state is encoded, while the digest and the write go on.
    pub fn frame(op: u64, body: &[u8]) -> Vec<u8> {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let mut bytes = Vec::with_capacity(HEADER_BYTES + body.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&op.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&digest);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(bytes.len(), HEADER_BYTES);
        bytes.extend_from_slice(body);
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
        // The header's digest doubles as the state digest by which nodes and
        // backups are compared, so it must also be the digest of the state's
        // own encoding. The decoder accepts some bodies that the encoder
        // never writes, and those would break that.
        let canonical = calendar.digest();
        if canonical != header.digest {
            return Err(FormatError::NotCanonical {
                computed: hex(&canonical),
            });
        }
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

    /// Returns a file with a valid header around any `body`.
    fn file_with_body(op: u64, body: &[u8]) -> Vec<u8> {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&op.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&digest);
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    /// A body the fuzzer derived from a backup of a small calendar. It
    /// decodes, but the decoded state encodes to different bytes.
    const NOT_CANONICAL_BODY: &[&str] = &[
        "01036f7073036f707361246172676f6e32696424763d3139246d3d31393435362c743d322c703d31242b5873",
        "494a394b486e325947643471516450366e5a41244e673133413559437468374a35756c460000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000066674a446769544a614b63325556784345724a45353269",
        "4342756f017b8d8396e2006fd30d1960a3f2028807318cc79f114c39796b20804ac8b9c989000000017b8d83",
        "96e2006fd30d1960a3f2028807318cc79f114c39796b20804ac8b9c989036f707319010101044576203100f8",
        "99d61c3c074574632f555443036f70730100000000020201044576203200b8b0d61c3c074574632f55544303",
        "6f7073010000000003030000000000000000000000000000000000000000000001044576203300f8c6d61c3c",
        "074574632f555443036f70730100000000040401044576203400b8ddd61c3c074574632f555443036f707301",
        "00000000050501044576203500f8f3d61c3c074574632f555443036f70730100000000060601044576203600",
        "b88ad71c3c074574632f555443036f70730100000000070701044576203700f8a0d71c3c074574632f555443",
        "036f70730100000000080801044576203800b8b7d71c3c074574632f555443036f7073010000000009090104",
        "4576203900f8cdd71c3c074574632f555443036f707301000000000a0a0105457620313000b8e4d71c3c0745",
        "74632f555443036f707301000000000b0b0105457620313100f8fad71c3c074574632f555443036f70730100",
        "0000000c0c0105457620313200b891d81c3c074574632f555443036f707301000000000d0d01054576203133",
        "00f8a7d81c3c074574632f555443036f707301000000000e0e0105457620313400b8bed81c3c074574632f55",
        "5443036f707301000000000f0f0105457620313500f8d4d81c3c074574632f555443036f7073010000000010",
        "100105457620313600b8ebd81c3c074574632f555443036f7073010000000011110105457620313700f881d9",
        "1c3c074574632f555443036f7073010000000012120105457620313800b898d91c3c074574632f555443036f",
        "7073010000000013130105457620313900f8aed91c3c074574632f555443036f707301000000001414010545",
        "7620323000b8c5d91c3c074574632f555443036f7073010000000015150105457620323100f8dbd91c3c0745",
        "74632f555443036f7073010000000016160105457620323200b8f2d91c3c074574632f555443036f70730100",
        "00000017170105457620323300f888da1c3c074574632f555443036f70730100000000181801054576203234",
        "00b89fda1c3c074574632f555443036f7073010000000019190105457620323500f8b5da1c3c074574632f55",
        "5443036f7073010000000019f899d61c01b8b0d61c02f8c6d61c03b8ddd61c04f8f3d61c05b88ad71c06f8a0",
        "d71c07b8b7d71c08f8cdd71c09b8e4d71c0af8fad71c0bb89125d81c0cf8a7d81c0db8bed81c0ef8d4d81c0f",
        "b8ebd81c10f881d91c11b898d91c12f8aed91c13b8c5d91c14f8dbd91c15b8f2036f70730000120188caf3a7",
        "c868036f707300001301b0caf3a7c868036f707300001401d6caf3a7c868036f707300001501e4caf3a7c868",
        "036f707300001601f2caf3a7c868036f70730000170180cbf3a7c868036f70730000180192cbf3a7c868036f",
        "707300001901a0cbf3a7c868036f70730000",
    ];

    fn from_hex(lines: &[&str]) -> Vec<u8> {
        let text: String = lines.concat();
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex digits"))
            .collect()
    }

    #[test]
    fn not_canonical_body_rejected() {
        let body = from_hex(NOT_CANONICAL_BODY);
        let bytes = file_with_body(7, &body);
        assert!(verify(&bytes).is_ok(), "the header and digest are valid");
        let state = Calendar::decode(&body).expect("the body decodes as a state");
        assert_ne!(state.encode(), body, "the body is not the state's encoding");
        let error = Snapshot::decode(&bytes).expect_err("a body that is not canonical");
        assert!(
            matches!(error, FormatError::NotCanonical { .. }),
            "unexpected error {error}"
        );
    }

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
        let error = verify(&other).unwrap_err();
        assert!(matches!(error, FormatError::BadMagic { .. }));
        assert_eq!(
            error.to_string(),
            "the file does not start with the snapshot magic ALSN but with \"XLSN\", so it is \
             not a backup or snapshot written by almanac"
        );
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
