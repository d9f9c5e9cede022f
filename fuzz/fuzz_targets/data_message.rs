//! The data channel (PROTOCOL.md §3.6) fed arbitrary bytes as if from the peer: the message
//! decoder never panics, and whatever it accepts encodes back to a message that decodes the
//! same; an established channel never opens a message the peer did not seal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{DataMessage, EphemeralKey, Handshake, LinkSecret, Received};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = DataMessage::decode(data) {
        let again = msg.encode().expect("a decoded message is one this side may send");
        assert_eq!(DataMessage::decode(&again).ok(), Some(msg));
    }
    let (_o, a) = established();
    let Ok(mut channel) = a.data_channel("sha-256 AA", "sha-256 BB") else { unreachable!() };
    for msg in data.split(|&b| b == 0xfe) {
        assert!(channel.open(msg).is_err(), "forged data message opened");
    }
});

fn established() -> (Handshake, Handshake) {
    let secret = LinkSecret::from_bytes([3; 32]);
    let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes([1; 32]));
    let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes([2; 32]));
    let Ok(Received::Reply(key)) = a.receive(&commit) else { unreachable!() };
    let Ok(Received::KeysReady { reply: Some(reveal) }) = o.receive(&key) else { unreachable!() };
    a.receive(&reveal).ok();
    let offer = o.seal(b"offer").ok().unwrap_or_default();
    a.receive(&offer).ok();
    let answer = a.seal(b"answer").ok().unwrap_or_default();
    o.receive(&answer).ok();
    (o, a)
}
