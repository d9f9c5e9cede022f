//! The SFrame header parser (RFC 9605 §4.3) on arbitrary bytes: never panics, and whatever it
//! accepts is canonical (re-encoding gives back exactly the bytes it consumed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::sframe::Header;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, len)) = Header::parse(data) {
        assert!(len <= data.len());
        assert_eq!(header.encode(), &data[..len]);
    }
});
