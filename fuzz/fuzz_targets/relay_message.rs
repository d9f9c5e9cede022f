//! The relay's decoder of client messages, on arbitrary bytes from the network: it must never
//! panic, whatever it accepts must re-encode to text that decodes to the same message, and its
//! fast path for `signal` must agree with the full JSON decoder on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::ClientMessage;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 by the time the relay sees them (tungstenite checks).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = ClientMessage::decode(text);
    assert_eq!(decoded, ClientMessage::decode_json(text));
    if let Ok(msg) = decoded {
        assert_eq!(ClientMessage::decode(&msg.encode()), Ok(msg));
    }
});
