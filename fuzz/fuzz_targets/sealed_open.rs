//! An established sealed channel fed arbitrary bytes as if from the relay: never panics, and
//! nothing opens that the peer did not seal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};

fn established() -> (Handshake, Handshake) {
    let secret = LinkSecret::from_bytes([3; 32]);
    let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes([1; 32]));
    let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes([2; 32]));
    let Ok(Received::Reply(key)) = a.receive(&commit) else { unreachable!() };
    let Ok(Received::KeysReady { reply: Some(reveal) }) = o.receive(&key) else { unreachable!() };
    a.receive(&reveal).ok();
    let offer = o.seal(b"offer").ok().unwrap_or_default();
    a.receive(&offer).ok();
    (o, a)
}

fuzz_target!(|data: &[u8]| {
    let (_o, mut a) = established();
    for msg in data.split(|&b| b == 0xfe) {
        assert!(!matches!(a.receive(msg), Ok(Received::Message(_))), "forged message opened");
    }
});
