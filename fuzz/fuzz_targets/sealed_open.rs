//! An established sealed channel fed arbitrary bytes as if from the relay: never panics, and
//! nothing opens that the peer did not seal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::Received;

fuzz_target!(|data: &[u8]| {
    let (_o, mut a) = sotto_fuzz::keyed(1);
    for msg in data.split(|&b| b == 0xfe) {
        assert!(!matches!(a.receive(msg), Ok(Received::Message(_))), "forged message opened");
    }
});
