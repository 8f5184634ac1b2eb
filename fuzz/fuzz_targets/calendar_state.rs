//! Raw bytes as an encoded calendar state, the payload of a snapshot:
//! decoding returns an error or a state that encodes and decodes to the
//! same state.

#![no_main]

use almanac::calendar::Calendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = Calendar::decode(data) else {
        return;
    };
    let encoded = state.encode();
    let again = Calendar::decode(&encoded).expect("an encoded state decodes");
    assert_eq!(again.digest(), state.digest());
});
