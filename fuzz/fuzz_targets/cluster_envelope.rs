//! What one relay reads from another through Redis (`--redis`), on arbitrary bytes: anyone who
//! can write to Redis can publish on a relay's channel. It must never panic, and an envelope it
//! accepts must encode to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Some(envelope) = Envelope::decode(data) {
        assert_eq!(envelope.encode().as_bytes(), data);
        assert_eq!(Envelope::decode(envelope.encode().as_bytes()), Some(envelope));
    }
});
