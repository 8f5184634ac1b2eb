//! Record framing.
//!
//! A record is a 20-byte header followed by the payload, all integers
//! little-endian:
//!
//! | bytes  | field                                              |
//! |--------|----------------------------------------------------|
//! | 0..4   | magic number `RECORD_MAGIC`                        |
//! | 4..8   | payload length in bytes                            |
//! | 8..12  | CRC32C over bytes 0..8, bytes 12..20 and the payload |
//! | 12..20 | op number                                          |
//! | 20..   | payload                                            |

use super::error::CorruptReason;

/// The largest payload a record may carry: 16 MiB. The replication layer
/// batches ops into payloads well below this. The bound also keeps a damaged
/// length field from making recovery treat most of a file as one record.
pub const PAYLOAD_BYTES_MAX: usize = 16 << 20;

/// The bytes "AWAL" read as a little-endian integer.
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"AWAL");

/// The size of a record header in bytes.
pub(crate) const HEADER_BYTES: usize = 20;

/// A record read back from a segment, borrowing its payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DecodedRecord<'a> {
    pub op: u64,
    pub payload: &'a [u8],
}

impl DecodedRecord<'_> {
    /// Returns the size of the framed record in bytes.
    pub fn framed_len(&self) -> usize {
        framed_len(self.payload.len())
    }
}

/// Returns the size in bytes of a framed record with `payload_len` bytes.
pub(crate) fn framed_len(payload_len: usize) -> usize {
    HEADER_BYTES + payload_len
}

/// Appends the framed record of `op` and `payload` to `out`.
///
/// # Panics
///
/// If the payload is longer than [`PAYLOAD_BYTES_MAX`].
pub(crate) fn encode(op: u64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= PAYLOAD_BYTES_MAX,
        "WAL payload of op {op} is {} bytes, more than the maximum {PAYLOAD_BYTES_MAX}",
        payload.len()
    );
    let start = out.len();
    let len = u32::try_from(payload.len()).expect("payload length fits in u32");

    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&op.to_le_bytes());
    out.extend_from_slice(payload);

    let checksum = checksum(&out[start..]);
    out[start + 8..start + 12].copy_from_slice(&checksum.to_le_bytes());
}

/// Decodes the record at the start of `bytes`, which runs to the end of the
/// file, and checks its framing and checksum. The caller checks the op.
pub(crate) fn decode(bytes: &[u8]) -> Result<DecodedRecord<'_>, CorruptReason> {
    decode_frame(bytes).map_err(|reason| {
        if bytes.iter().all(|&byte| byte == 0) {
            CorruptReason::ZeroFilled {
                len: bytes.len() as u64,
            }
        } else {
            reason
        }
    })
}

fn decode_frame(bytes: &[u8]) -> Result<DecodedRecord<'_>, CorruptReason> {
    let Some(header) = bytes.get(..HEADER_BYTES) else {
        return Err(CorruptReason::ShortHeader {
            len: bytes.len() as u64,
        });
    };
    let magic = read_u32(header, 0);
    if magic != RECORD_MAGIC {
        return Err(CorruptReason::BadMagic { found: magic });
    }

    let len = read_u32(header, 4) as usize;
    if len > PAYLOAD_BYTES_MAX {
        return Err(CorruptReason::LengthTooLarge { len: len as u64 });
    }
    let Some(framed) = bytes.get(..HEADER_BYTES + len) else {
        return Err(CorruptReason::ShortPayload {
            expected: len as u64,
            found: (bytes.len() - HEADER_BYTES) as u64,
        });
    };

    let stored = read_u32(header, 8);
    let computed = checksum(framed);
    if stored != computed {
        return Err(CorruptReason::BadChecksum {
            expected: stored,
            found: computed,
        });
    }
    Ok(DecodedRecord {
        op: u64::from_le_bytes(header[12..20].try_into().expect("8 bytes")),
        payload: &framed[HEADER_BYTES..],
    })
}

/// Returns the offset of the first valid record that starts after `offset`
/// in `bytes`, if any. Recovery uses it to tell a torn tail from damage in
/// the middle.
pub(crate) fn find_valid_record_after(bytes: &[u8], offset: usize) -> Option<usize> {
    let magic = RECORD_MAGIC.to_le_bytes();
    (offset + 1..bytes.len().saturating_sub(HEADER_BYTES - 1))
        .filter(|&candidate| bytes[candidate..candidate + 4] == magic)
        .find(|&candidate| decode_frame(&bytes[candidate..]).is_ok())
}

/// Computes the CRC32C of a framed record, skipping its checksum field.
fn checksum(framed: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&framed[..8]);
    crc32c::crc32c_append(crc, &framed[12..])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(op: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(op, payload, &mut out);
        out
    }

    #[test]
    fn record_round_trip() {
        let bytes = encoded(7, b"hello");
        assert_eq!(bytes.len(), framed_len(5));
        let record = decode(&bytes).unwrap();
        assert_eq!(record.op, 7);
        assert_eq!(record.payload, b"hello");
        assert_eq!(record.framed_len(), bytes.len());
    }

    #[test]
    fn record_empty_payload() {
        let bytes = encoded(1, b"");
        assert_eq!(decode(&bytes).unwrap().payload, b"");
    }

    #[test]
    fn record_decode_ignores_following_bytes() {
        let mut bytes = encoded(1, b"one");
        bytes.extend(encoded(2, b"two"));
        let record = decode(&bytes).unwrap();
        assert_eq!(record.op, 1);
        assert_eq!(record.framed_len(), framed_len(3));
    }

    #[test]
    fn record_every_flipped_byte_detected() {
        let bytes = encoded(42, b"payload");
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x01;
            assert!(
                decode(&damaged).is_err(),
                "flipped byte {index} went unnoticed"
            );
        }
    }

    #[test]
    fn record_short_header() {
        let bytes = encoded(1, b"x");
        assert_eq!(
            decode(&bytes[..10]),
            Err(CorruptReason::ShortHeader { len: 10 })
        );
    }

    #[test]
    fn record_short_payload() {
        let bytes = encoded(1, b"abcdef");
        assert_eq!(
            decode(&bytes[..HEADER_BYTES + 2]),
            Err(CorruptReason::ShortPayload {
                expected: 6,
                found: 2
            })
        );
    }

    #[test]
    fn record_bad_checksum() {
        let mut bytes = encoded(1, b"abcdef");
        bytes[HEADER_BYTES] ^= 0xff;
        assert!(matches!(
            decode(&bytes),
            Err(CorruptReason::BadChecksum { .. })
        ));
    }

    #[test]
    fn record_bad_magic() {
        let mut bytes = encoded(1, b"abcdef");
        bytes[0] = b'X';
        assert!(matches!(
            decode(&bytes),
            Err(CorruptReason::BadMagic { .. })
        ));
    }

    #[test]
    fn record_length_too_large() {
        let mut bytes = encoded(1, b"abcdef");
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&bytes),
            Err(CorruptReason::LengthTooLarge {
                len: u64::from(u32::MAX)
            })
        );
    }

    #[test]
    fn record_zero_filled() {
        assert_eq!(decode(&[0; 64]), Err(CorruptReason::ZeroFilled { len: 64 }));
        assert_eq!(decode(&[0; 3]), Err(CorruptReason::ZeroFilled { len: 3 }));
    }

    #[test]
    #[should_panic(expected = "more than the maximum")]
    fn record_oversized_payload_panics() {
        encoded(1, &vec![0; PAYLOAD_BYTES_MAX + 1]);
    }

    #[test]
    fn find_valid_record_after_damage() {
        let mut bytes = encoded(1, b"first");
        let second = bytes.len();
        bytes.extend(encoded(2, b"second"));
        bytes[HEADER_BYTES] ^= 0xff;
        assert_eq!(find_valid_record_after(&bytes, 0), Some(second));
        assert_eq!(find_valid_record_after(&bytes, second), None);
    }

    #[test]
    fn find_valid_record_after_nothing() {
        let mut bytes = encoded(1, b"first");
        bytes.truncate(bytes.len() - 1);
        bytes.extend([0; 100]);
        assert_eq!(find_valid_record_after(&bytes, 0), None);
    }
}
