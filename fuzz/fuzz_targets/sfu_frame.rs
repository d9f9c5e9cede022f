//! The SFU's check of a forwarded frame (sfu/src/frame.rs) on arbitrary bytes: never panics,
//! and its SFrame header reader agrees with the crypto core's (sotto-e2ee's `sframe.rs`) on
//! every input. The module is compiled in here by path, so the fuzz build links no WebRTC stack.
#![no_main]

#[path = "../../sfu/src/frame.rs"]
#[allow(dead_code)]
mod frame;

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::sframe::Header;

fuzz_target!(|data: &[u8]| {
    let theirs = Header::parse(data).ok().map(|(h, len)| (h.kid, h.ctr, len));
    assert_eq!(frame::header(data), theirs);
    for kind in [frame::Kind::Audio, frame::Kind::Video] {
        let _ = frame::check(kind, data);
    }
});
