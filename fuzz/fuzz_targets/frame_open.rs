//! A media receiver fed arbitrary frames from the network: never panics, never accepts a
//! frame it did not authenticate. The first byte picks the stream, the role and whether the
//! receiver is a pair's or a conference member's (two epochs, three members); the rest is one
//! frame per 0xff-separated chunk, fed in order to one receiver (so replay and generation state
//! grow).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{BaseKey, ConferenceFrames, FrameDecryptor, Role, Stream};
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let stream = match selector % 3 {
        0 => Stream::Audio,
        1 => Stream::Video,
        _ => Stream::Screen,
    };
    let peer = if selector & 0x80 == 0 { Role::Offerer } else { Role::Answerer };
    if selector & 0x40 != 0 {
        let now = Instant::now();
        let mut rx = ConferenceFrames::new();
        let members = [(0, [1; 16]), (1, [2; 16]), (5, [3; 16])];
        rx.set_epoch(63, BaseKey::from_exporter(&[7; 16]), &members, 5, now);
        rx.set_epoch(64, BaseKey::from_exporter(&[8; 16]), &members[..2], 5, now);
        for frame in rest.split(|&b| b == 0xff) {
            assert!(rx.open(stream, frame, now).is_err());
        }
        return;
    }
    let mut dec = FrameDecryptor::new(BaseKey::from_bytes([7; 32]), peer, stream);
    for frame in rest.split(|&b| b == 0xff) {
        // Without the key no frame can authenticate: every one must be refused.
        assert!(dec.decrypt(frame).is_err());
    }
});
