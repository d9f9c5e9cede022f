//! The DTLS fingerprint reader on arbitrary SDP text from the peer: never panics, and what it
//! returns is the rest of an `a=fingerprint:` line, without its line ending (`\n` or `\r\n`;
//! a stray `\r` before it is content, kept as sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::dtls_fingerprint;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(fp) = dtls_fingerprint(sdp) {
        assert!(!fp.contains('\n'));
        assert!(sdp.contains(&format!("a=fingerprint:{fp}")));
    }
});
