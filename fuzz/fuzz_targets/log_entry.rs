//! Log payloads as a node reads them back: a log entry, the calendar
//! request inside it, and that request applied to the state machine. A
//! sequence of requests must apply without panicking, and the same sequence
//! must give the same state twice.

#![no_main]

use almanac::calendar::{Calendar, Request};
use almanac::node::service::LogEntry;
use libfuzzer_sys::fuzz_target;

/// Most requests applied per input, which keeps one run fast.
const REQUESTS_MAX: usize = 32;

fuzz_target!(|chunks: Vec<Vec<u8>>| {
    let mut requests = Vec::new();
    for chunk in chunks.iter().take(REQUESTS_MAX) {
        // Each chunk is tried both as a whole log entry and as a bare
        // request, so the fuzzer reaches requests without framing them.
        let bytes = match LogEntry::decode(chunk) {
            Ok(entry) => entry.request,
            Err(_) => chunk.clone(),
        };
        if let Ok(request) = Request::decode(&bytes) {
            requests.push(request);
        }
    }
    let mut first = Calendar::new();
    let mut second = Calendar::new();
    for request in &requests {
        let outcome = first.apply(request);
        assert_eq!(second.apply(request), outcome, "apply is not deterministic");
    }
    assert_eq!(first.digest(), second.digest());
});
