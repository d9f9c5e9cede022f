//! `frame-overhead`: bytes Sotto's SFrame layout adds to each media frame, measured by sealing
//! real-sized frames with the e2ee crate (never computed from a formula), at the start of a
//! call and after an hour of frames, when the counter needs more bytes.
#![forbid(unsafe_code)]

use sotto_e2ee::{BaseKey, FrameEncryptor, Role, Stream};

/// (stream, what, frame bytes, frames per second): a 20 ms Opus frame at 32 kbit/s and a
/// VP8 delta frame at about 300 kbit/s, 30 frames a second.
const CASES: [(Stream, &str, usize, u64); 2] = [
    (Stream::Audio, "audio (Opus 20 ms)", 80, 50),
    (Stream::Video, "video (VP8 delta)", 1200, 30),
];

fn main() {
    for (stream, what, size, fps) in CASES {
        // Any key will do: only lengths are read. A VP8 delta frame has its P bit set.
        let mut enc = FrameEncryptor::new(BaseKey::from_bytes([7; 32]), Role::Offerer, stream, 0)
            .expect("a fresh encryptor");
        let mut frame = vec![0x55u8; size];
        frame[0] = 0x01;
        let mut overhead_at = |n: u64| {
            let mut last = 0;
            for _ in 0..n {
                last = enc.encrypt(&frame).expect("seal").len() - size;
            }
            last
        };
        let first = overhead_at(1);
        // The encryptor keeps counting: this is frame number fps*3600 of the call.
        let hour = overhead_at(fps * 3600 - 1);
        println!(
            "scenario=overhead stream=\"{what}\" frame_bytes={size} first_frame_bytes={first} after_1h_bytes={hour}"
        );
    }
}
