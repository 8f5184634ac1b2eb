//! Segment files: their names and the scan that reads their records back.

use std::path::{Path, PathBuf};

use super::error::CorruptReason;
use super::record::{self, DecodedRecord};

/// The extension of segment files.
const SEGMENT_EXTENSION: &str = ".wal";

/// The number of decimal digits in a segment name, enough for any `u64`, so
/// that names sort in op order.
const SEGMENT_NAME_DIGITS: usize = 20;

/// One segment file of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The op number of the segment's first record, also encoded in its name.
    /// An empty segment still has one: the op its first append will carry.
    pub first_op: u64,
    pub path: PathBuf,
}

impl Segment {
    pub fn new(dir: &Path, first_op: u64) -> Segment {
        Segment {
            first_op,
            path: dir.join(file_name(first_op)),
        }
    }
}

/// Returns the file name of the segment whose first record is `first_op`.
pub(crate) fn file_name(first_op: u64) -> String {
    format!(
        "{first_op:0width$}{SEGMENT_EXTENSION}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// Parses a segment file name into its first op number. Returns `None` for
/// any other name.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The records found in one segment's bytes.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    /// Each valid record with its byte offset, in file order.
    pub records: Vec<(u64, DecodedRecord<'a>)>,
    /// A damaged record with nothing valid after it: its offset and what is
    /// wrong. Everything from that offset on can be cut off as a torn tail.
    pub torn: Option<(u64, CorruptReason)>,
}

/// Reads the records of a segment whose first record is `first_op`.
///
/// A damaged record is returned as [`Scan::torn`] if no valid record follows
/// it. Returns the offset and reason for damage that cannot be a torn tail:
/// a damaged record followed by a valid one, or a valid record with the wrong
/// op number.
pub(crate) fn scan(bytes: &[u8], first_op: u64) -> Result<Scan<'_>, (u64, CorruptReason)> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut expected_op = first_op;

    while offset < bytes.len() {
        let record = match record::decode(&bytes[offset..]) {
            Ok(record) => record,
            Err(damage) => {
                // NOTE: a device that persists the pages of one unsynced write
                // out of order can leave a valid record after a torn one. That
                // is reported as corruption too, because it cannot be distinguished
                // from damage to synced data.
                if let Some(valid) = record::find_valid_record_after(bytes, offset) {
                    let reason = CorruptReason::DataAfterDamage {
                        damage: Box::new(damage),
                        valid_offset: valid as u64,
                    };
                    return Err((offset as u64, reason));
                }
                let torn = Some((offset as u64, damage));
                return Ok(Scan { records, torn });
            }
        };

        if record.op != expected_op {
            let reason = CorruptReason::OpMismatch {
                expected: expected_op,
                found: record.op,
            };
            return Err((offset as u64, reason));
        }
        let len = record.framed_len();
        records.push((offset as u64, record));
        offset += len;
        expected_op += 1;
    }
    Ok(Scan {
        records,
        torn: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_bytes(first_op: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (op, payload) in (first_op..).zip(payloads) {
            record::encode(op, payload, &mut bytes);
        }
        bytes
    }

    #[test]
    fn segment_name_round_trip() {
        assert_eq!(file_name(1), "00000000000000000001.wal");
        assert_eq!(parse_file_name("00000000000000000001.wal"), Some(1));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
    }

    #[test]
    fn segment_names_sort_by_op() {
        let mut names = [file_name(100), file_name(9), file_name(10)];
        names.sort();
        assert_eq!(names, [file_name(9), file_name(10), file_name(100)]);
    }

    #[test]
    fn segment_name_rejects_others() {
        for name in [
            "1.wal",
            "0000000000000000001.wal",
            "000000000000000000001.wal",
            "0000000000000000000a.wal",
            "00000000000000000001.tmp",
            "99999999999999999999.wal",
            "meta",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn scan_clean_segment() {
        let bytes = segment_bytes(5, &[b"a", b"bb", b"ccc"]);
        let scan = scan(&bytes, 5).unwrap();
        let ops: Vec<u64> = scan.records.iter().map(|(_, r)| r.op).collect();
        assert_eq!(ops, [5, 6, 7]);
        assert_eq!(scan.records[1].0, record::framed_len(1) as u64);
        assert_eq!(scan.records[2].1.payload, b"ccc");
        assert!(scan.torn.is_none());
    }

    #[test]
    fn scan_empty_segment() {
        let scan = scan(&[], 1).unwrap();
        assert!(scan.records.is_empty());
        assert!(scan.torn.is_none());
    }

    #[test]
    fn scan_torn_tail() {
        let bytes = segment_bytes(1, &[b"a", b"bb"]);
        let cut = bytes.len() - 1;
        let scan = scan(&bytes[..cut], 1).unwrap();
        assert_eq!(scan.records.len(), 1);
        let (offset, reason) = scan.torn.unwrap();
        assert_eq!(offset, record::framed_len(1) as u64);
        assert_eq!(
            reason,
            CorruptReason::ShortPayload {
                expected: 2,
                found: 1
            }
        );
    }

    #[test]
    fn scan_damage_before_valid_record() {
        let mut bytes = segment_bytes(1, &[b"a", b"bb", b"ccc"]);
        let second = record::framed_len(1);
        bytes[second + record::HEADER_BYTES] ^= 0x10;
        let (offset, reason) = scan(&bytes, 1).unwrap_err();
        assert_eq!(offset, second as u64);
        let CorruptReason::DataAfterDamage {
            damage,
            valid_offset,
        } = reason
        else {
            panic!("unexpected reason {reason:?}");
        };
        assert!(matches!(*damage, CorruptReason::BadChecksum { .. }));
        assert_eq!(valid_offset, (second + record::framed_len(2)) as u64);
    }

    #[test]
    fn scan_wrong_op_number() {
        let bytes = segment_bytes(3, &[b"a", b"b"]);
        let (offset, reason) = scan(&bytes, 2).unwrap_err();
        assert_eq!(offset, 0);
        assert_eq!(
            reason,
            CorruptReason::OpMismatch {
                expected: 2,
                found: 3
            }
        );
    }
}
