//! The data channel (PROTOCOL.md §3.6) fed arbitrary bytes as if from the peer: the message
//! decoder never panics, and whatever it accepts encodes back to a message that decodes the
//! same; an established channel never opens a message the peer did not seal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::DataMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = DataMessage::decode(data) {
        let again = msg.encode().expect("a decoded message is one this side may send");
        assert_eq!(DataMessage::decode(&again).ok(), Some(msg));
    }
    let (_o, a) = sotto_fuzz::keyed(2);
    let Ok(mut channel) = a.data_channel("sha-256 AA", "sha-256 BB") else { unreachable!() };
    for msg in data.split(|&b| b == 0xfe) {
        assert!(channel.open(msg).is_err(), "forged data message opened");
    }
});
