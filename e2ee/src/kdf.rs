//! The hash and key-derivation helpers every part of the protocol uses.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HKDF-SHA256 (RFC 5869) of `ikm` with `salt`, expanded with the concatenation of `info`
/// into `out`. An empty salt is HashLen zeros (RFC 5869 §2.2), as the hkdf crate does.
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    // Outputs here are at most 32 bytes, far below HKDF's limit of 255 * 32.
    hk.expand_multi_info(info, out)
        .unwrap_or_else(|_| unreachable!("HKDF output length within 255 * HashLen"));
}

/// HKDF-Extract with SHA-256.
pub(crate) fn extract_sha256(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    prk.into()
}

/// HKDF-Expand with SHA-256 from a pseudorandom key.
pub(crate) fn expand_sha256(prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    // A 32-byte PRK is always a valid HMAC-SHA256 key, and outputs are short.
    let hk =
        Hkdf::<Sha256>::from_prk(prk).unwrap_or_else(|_| unreachable!("a 32-byte PRK is HashLen"));
    hk.expand_multi_info(info, out)
        .unwrap_or_else(|_| unreachable!("HKDF output length within 255 * HashLen"));
}
