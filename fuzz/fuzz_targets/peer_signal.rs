//! The decoder of what a peer says inside a sealed message (offer, answer, candidates, `bye`,
//! `hello`, `identity`), on arbitrary bytes: the plaintext is authenticated but the peer may
//! still be hostile or broken. It must never panic, a decoded message must encode to a
//! plaintext that decodes to the same message, a name it accepts cleans without panicking, and
//! an identity's key and signature go through the device check (PROTOCOL.md §3.8) without
//! panicking: accepted only as the key it carries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::{MAX_NAME, PeerSignal, clean_name};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(msg)) = PeerSignal::decode(data) {
        assert_eq!(PeerSignal::decode(&msg.encode()), Ok(Some(msg.clone())));
        match msg {
            PeerSignal::Hello { name } => {
                assert!(name.len() <= MAX_NAME);
                if let Some(clean) = clean_name(&name) {
                    assert!(!clean.is_empty() && !clean.chars().any(char::is_control));
                }
            }
            PeerSignal::Identity { key, sig } => {
                if let Ok(id) = sotto_fuzz::keyed(0).1.verify_identity_text(&key, &sig) {
                    let (text, _) = sotto_e2ee::Identity { key: id, sig: [0; 64] }.to_text();
                    assert_eq!(text, key, "accepted as another key than it carries");
                }
            }
            _ => {}
        }
    }
});
