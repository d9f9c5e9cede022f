//! A media receiver fed arbitrary frames from the network: never panics, never accepts a
//! frame it did not authenticate. The first byte picks the stream; the rest is one frame per
//! 0xff-separated chunk, fed in order to one decryptor (so replay and generation state grow).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{BaseKey, FrameDecryptor, Role, Stream};

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
    let mut dec = FrameDecryptor::new(BaseKey::from_bytes([7; 32]), peer, stream);
    for frame in rest.split(|&b| b == 0xff) {
        // Without the key no frame can authenticate: every one must be refused.
        assert!(dec.decrypt(frame).is_err());
    }
});
