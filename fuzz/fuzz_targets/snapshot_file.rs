//! Raw bytes as a snapshot file, and the same bytes as the body of a file
//! whose header is valid: reading the header, verifying and decoding return
//! an error or agree with each other, and a decoded state encodes to a file
//! that decodes to the same state.

#![no_main]

use almanac::snapshot::{read_header, verify, Snapshot, FormatError, HEADER_BYTES};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Checks that the three readers agree on `bytes`.
fn check_file(bytes: &[u8]) {
    let header = read_header(bytes);
    let verified = verify(bytes);
    let decoded = Snapshot::decode(bytes);
    if let Ok(verified) = &verified {
        assert_eq!(header.as_ref().ok(), Some(verified));
        assert_eq!(verified.body_bytes as usize, bytes.len() - HEADER_BYTES);
    }
    if header.is_err() {
        assert_eq!(verified.as_ref().err(), header.as_ref().err());
    }
    let Ok(snapshot) = decoded else {
        return;
    };
    let verified = verified.expect("a decoded file passed verification");
    assert_eq!(snapshot.op, verified.op);
    assert_eq!(snapshot.calendar.digest(), verified.digest);
    let encoded = Snapshot::encode(snapshot.op, &snapshot.calendar);
    let again = Snapshot::decode(&encoded).expect("an encoded snapshot decodes");
    assert_eq!(again, snapshot);
}

/// Builds a file with a valid header around `body`, so that the body
/// decoder is reached on every input and not only when the fuzzer finds a
/// matching CRC and SHA-256.
fn with_valid_header(op: u64, body: &[u8]) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(body).into();
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body.len());
    bytes.extend_from_slice(b"ALSN");
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&op.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&digest);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fuzz_target!(|data: &[u8]| {
    check_file(data);

    // A seed is a whole snapshot file, so its body starts after the header.
    let (op, body) = match read_header(data) {
        Ok(header) => (header.op, &data[HEADER_BYTES..]),
        Err(FormatError::TooShort { .. }) => (0, data),
        Err(_) => (7, data),
    };
    let rebuilt = with_valid_header(op, body);
    assert!(read_header(&rebuilt).is_ok(), "a rebuilt header is valid");
    assert!(verify(&rebuilt).is_ok(), "a rebuilt file verifies");
    check_file(&rebuilt);
});
