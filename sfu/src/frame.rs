//! What the SFU may check of a frame it forwards: that it carries an SFrame header where
//! PROTOCOL.md §4 puts one (after the codec's clear prefix), of the stream its track carries.
//! The SFU holds no key, so it cannot tell a forged frame from a real one; this catches a
//! browser that sends media in the clear (Chromium does, when a frame transform is set too
//! late: DESIGN §5), and such frames are dropped and counted, never forwarded.
//!
//! The header codec is RFC 9605 §4.3's, as `sotto-e2ee`'s `sframe.rs` decodes it (a test
//! checks the two agree on every frame of the vectors); it is repeated here so that the relay
//! links no key-handling code.

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opus.
    Audio,
    /// VP8 (camera or screen).
    Video,
}

/// What the SFU makes of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A frame with an SFrame header of a stream this track may carry: forwarded.
    Sealed,
    /// Zero bytes (Chromium's receive path and str0m emit them at start): not a frame.
    Empty,
    /// No SFrame header where one must be: dropped and counted.
    Clear,
}

/// Whether a VP8 frame is a key frame: the P bit of its frame tag (RFC 6386 §9.1), in the
/// prefix a sealed frame keeps in clear.
pub fn is_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// The AEAD tag every sealed frame ends with.
const TAG_LEN: usize = 16;

/// Checks one frame of a track of `kind`.
pub fn check(kind: Kind, frame: &[u8]) -> Check {
    if frame.is_empty() {
        return Check::Empty;
    }
    let prefix = match kind {
        Kind::Audio => 1,
        // The P bit of the VP8 frame tag (RFC 6386 §9.1): a key frame keeps 10 bytes in clear.
        Kind::Video if frame[0] & 1 == 0 => 10,
        Kind::Video => 3,
    };
    let Some(rest) = frame.get(prefix..) else {
        return Check::Clear;
    };
    let Some((kid, ctr, header_len)) = header(rest) else {
        return Check::Clear;
    };
    // The stream bits: 14 and 15 of a conference KID (PROTOCOL.md §7.6).
    let stream = (kid >> 14) & 3;
    let stream_fits = match kind {
        Kind::Audio => stream == 0,
        Kind::Video => stream == 1 || stream == 2,
    };
    if stream_fits && ctr < 1 << 32 && rest.len() >= header_len + TAG_LEN {
        Check::Sealed
    } else {
        Check::Clear
    }
}

/// RFC 9605 §4.3: `(kid, ctr, header length)`, or `None` for a truncated or non-minimal header.
pub fn header(bytes: &[u8]) -> Option<(u64, u64, usize)> {
    let config = *bytes.first()?;
    let mut at = 1;
    let mut field = |extended: bool, value: u8| -> Option<u64> {
        if !extended {
            return Some(u64::from(value));
        }
        let len = usize::from(value) + 1;
        let raw = bytes.get(at..at + len)?;
        at += len;
        // Minimal: no leading zero byte, and an extended value is at least 8.
        if raw[0] == 0 {
            return None;
        }
        let v = raw.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
        (v >= 8).then_some(v)
    };
    let kid = field(config & 0x80 != 0, (config >> 4) & 7)?;
    let ctr = field(config & 0x08 != 0, config & 7)?;
    Some((kid, ctr, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_conference_frame_of_the_vectors_passes_and_loses_it_without_its_header() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/sotto-v2.json"
        );
        let text = std::fs::read_to_string(path).expect("the vectors");
        let v2: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let inputs = v2["inputs"]["frames"].as_array().expect("frames");
        let frames = v2["frames"].as_array().expect("frames");
        assert_eq!(frames.len(), inputs.len());
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
                .collect()
        };
        for (input, f) in inputs.iter().zip(frames) {
            let kind = match input["stream"].as_str() {
                Some("audio") => Kind::Audio,
                _ => Kind::Video,
            };
            let sealed = hex(f["sealed"].as_str().expect("hex"));
            assert_eq!(check(kind, &sealed), Check::Sealed, "{f}");
            // The plaintext frame itself carries no header of its stream.
            let plain = hex(input["frame"].as_str().expect("hex"));
            assert_eq!(check(kind, &plain), Check::Clear, "{input}");
        }
    }

    #[test]
    fn sealed_frames_pass_and_clear_ones_do_not() {
        // Opus TOC, then KID 0 and CTR 0 in one byte, then 16 bytes of tag.
        let mut audio = vec![0x78, 0x00];
        audio.extend([0xaa; TAG_LEN]);
        assert_eq!(check(Kind::Audio, &audio), Check::Sealed);
        assert_eq!(check(Kind::Audio, &[]), Check::Empty);
        // Too short for a tag; a non-minimal KID; a video KID on audio.
        assert_eq!(check(Kind::Audio, &audio[..10]), Check::Clear);
        assert_eq!(
            check(Kind::Audio, &[0x78, 0x80, 0x05, 0, 0, 0]),
            Check::Clear
        );
        let mut video_on_audio = vec![0x78, 0x90, 0x40, 0x00];
        video_on_audio.extend([0; TAG_LEN]);
        assert_eq!(check(Kind::Audio, &video_on_audio), Check::Clear);
        // A VP8 delta frame with the camera's KID (stream 1: 1 << 14 = 0x4000).
        let mut delta = vec![0x31, 0x02, 0x00, 0x90, 0x40, 0x00];
        delta.extend([0; TAG_LEN]);
        assert_eq!(check(Kind::Video, &delta), Check::Sealed);
        // A plaintext VP8 key frame as an encoder makes it.
        let key = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        assert_eq!(check(Kind::Video, key), Check::Clear);
    }
}
