//! Clients' decoder of relay messages (a relay is not trusted), on arbitrary bytes: it must
//! never panic, and whatever it accepts must re-encode to text that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::ServerMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(msg)) = ServerMessage::decode(text) {
        assert_eq!(ServerMessage::decode(&msg.encode()), Ok(Some(msg)));
    }
});
