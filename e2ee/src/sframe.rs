//! SFrame (RFC 9605): the header, the per-KID key and salt, and frame encryption with the
//! AES-GCM cipher suites 0x0004 (AES_128_GCM_SHA256_128) and 0x0005 (AES_256_GCM_SHA512_128).
//!
//! This module is the RFC, nothing more; Sotto's KID scheme, replay window and codec prefixes
//! are in `media`.

use crate::FrameFault;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

/// Bytes of the AEAD tag of both suites.
pub const TAG_LEN: usize = 16;
/// The longest SFrame header: a config byte, 8 KID bytes, 8 CTR bytes.
pub const MAX_HEADER_LEN: usize = 17;

/// The SFrame cipher suites implemented here (IANA "SFrame Cipher Suites").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0004 AES_128_GCM_SHA256_128: Sotto v1's suite.
    AesGcm128Sha256,
    /// 0x0005 AES_256_GCM_SHA512_128.
    AesGcm256Sha512,
}

impl CipherSuite {
    /// The IANA value.
    pub fn id(self) -> u16 {
        match self {
            Self::AesGcm128Sha256 => 0x0004,
            Self::AesGcm256Sha512 => 0x0005,
        }
    }

    /// The suite with this IANA value, if implemented here.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(Self::AesGcm128Sha256),
            0x0005 => Some(Self::AesGcm256Sha512),
            _ => None,
        }
    }
}

/// A decoded SFrame header: key id and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// KID: which key encrypted the frame.
    pub kid: u64,
    /// CTR: the frame's counter under that key (its nonce).
    pub ctr: u64,
}

/// Bytes needed for `v` big-endian without leading zeros (v > 0).
fn min_len(v: u64) -> usize {
    8 - (v.leading_zeros() / 8) as usize
}

impl Header {
    /// Encodes the header (RFC 9605 §4.3) into `out`; returns its length. Values below 8 sit
    /// in the config byte; larger ones follow in the fewest bytes, KID first.
    pub fn encode_into(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let mut len = 1;
        let mut config = 0u8;
        for (value, shift) in [(self.kid, 4), (self.ctr, 0)] {
            if value < 8 {
                config |= (value as u8) << shift;
            } else {
                let n = min_len(value);
                config |= (0x8 | (n as u8 - 1)) << shift;
                out[len..len + n].copy_from_slice(&value.to_be_bytes()[8 - n..]);
                len += n;
            }
        }
        out[0] = config;
        len
    }

    /// The encoded header as a vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = self.encode_into(&mut buf);
        buf[..len].to_vec()
    }

    /// Parses a header at the start of `bytes`; returns it and its length. Refuses truncated
    /// headers and any encoding that is not the minimal one (an extended field holding a
    /// value below 8, or with a leading zero byte), so each header has exactly one encoding.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), FrameFault> {
        let &config = bytes.first().ok_or(FrameFault::MalformedHeader)?;
        let mut pos = 1;
        let mut field = |nibble: u8| -> Result<u64, FrameFault> {
            if nibble & 0x8 == 0 {
                return Ok(u64::from(nibble));
            }
            let n = usize::from(nibble & 0x7) + 1;
            let raw = bytes.get(pos..pos + n).ok_or(FrameFault::MalformedHeader)?;
            pos += n;
            let value = raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            if value < 8 || min_len(value) != n {
                return Err(FrameFault::MalformedHeader);
            }
            Ok(value)
        };
        let kid = field(config >> 4)?;
        let ctr = field(config & 0x0f)?;
        Ok((Self { kid, ctr }, pos))
    }
}

// One per KID, built once and never moved on the per-frame path: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Aead {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

/// The key and salt of one KID under one base key (RFC 9605 §4.4.2), ready to use. Derived
/// once per KID, never per frame. Its key schedule is zeroized on drop; no Debug.
pub(crate) struct KidKey {
    aead: Aead,
    salt: [u8; 12],
}

fn labels(kid: u64, suite: CipherSuite) -> ([u8; 32], [u8; 33]) {
    let mut key_label = [0u8; 32];
    key_label[..22].copy_from_slice(b"SFrame 1.0 Secret key ");
    key_label[22..30].copy_from_slice(&kid.to_be_bytes());
    key_label[30..].copy_from_slice(&suite.id().to_be_bytes());
    let mut salt_label = [0u8; 33];
    salt_label[..23].copy_from_slice(b"SFrame 1.0 Secret salt ");
    salt_label[23..31].copy_from_slice(&kid.to_be_bytes());
    salt_label[31..].copy_from_slice(&suite.id().to_be_bytes());
    (key_label, salt_label)
}

impl KidKey {
    pub(crate) fn derive(suite: CipherSuite, base_key: &[u8], kid: u64) -> Self {
        let (key_label, salt_label) = labels(kid, suite);
        let mut salt = [0u8; 12];
        // Output lengths (16, 32, 12) are far below HKDF's limit: expand cannot fail.
        let fixed = |_| unreachable!("HKDF output length within 255 * HashLen");
        let aead = match suite {
            CipherSuite::AesGcm128Sha256 => {
                let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
                let mut key = Zeroizing::new([0u8; 16]);
                hk.expand(&key_label, key.as_mut()).unwrap_or_else(fixed);
                hk.expand(&salt_label, &mut salt).unwrap_or_else(fixed);
                Aead::Aes128(Aes128Gcm::new(key.as_ref().into()))
            }
            CipherSuite::AesGcm256Sha512 => {
                let hk = Hkdf::<Sha512>::new(Some(&[]), base_key);
                let mut key = Zeroizing::new([0u8; 32]);
                hk.expand(&key_label, key.as_mut()).unwrap_or_else(fixed);
                hk.expand(&salt_label, &mut salt).unwrap_or_else(fixed);
                Aead::Aes256(Aes256Gcm::new(key.as_ref().into()))
            }
        };
        Self { aead, salt }
    }

    /// `salt XOR CTR` (CTR left-padded to 12 bytes).
    fn nonce(&self, ctr: u64) -> [u8; 12] {
        let mut nonce = self.salt;
        for (n, c) in nonce[4..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn seal(&self, ctr: u64, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = self.nonce(ctr);
        let nonce = Nonce::from_slice(&nonce);
        // AES-GCM refuses only inputs over 2^36 bytes; frames are far smaller.
        let tag = match &self.aead {
            Aead::Aes128(c) => c.encrypt_in_place_detached(nonce, aad, buf),
            Aead::Aes256(c) => c.encrypt_in_place_detached(nonce, aad, buf),
        }
        .unwrap_or_else(|_| unreachable!("AES-GCM input under 2^36 bytes"));
        tag.into()
    }

    /// Decrypts `buf` in place; false (and `buf` garbage) when the tag does not verify.
    pub(crate) fn open(&self, ctr: u64, aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let nonce = self.nonce(ctr);
        let nonce = Nonce::from_slice(&nonce);
        let tag = Tag::from_slice(tag);
        match &self.aead {
            Aead::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
            Aead::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

#[cfg(test)]
impl KidKey {
    pub(crate) fn salt_and_nonce_for_test(&self, ctr: u64) -> ([u8; 12], [u8; 12]) {
        (self.salt, self.nonce(ctr))
    }

    pub(crate) fn from_raw_for_test(suite: CipherSuite, key: &[u8], salt: &[u8]) -> Self {
        let aead = match suite {
            CipherSuite::AesGcm128Sha256 => Aead::Aes128(Aes128Gcm::new_from_slice(key).unwrap()),
            CipherSuite::AesGcm256Sha512 => Aead::Aes256(Aes256Gcm::new_from_slice(key).unwrap()),
        };
        Self {
            aead,
            salt: salt.try_into().unwrap(),
        }
    }

    pub(crate) fn seal_for_test(&self, ctr: u64, aad: &[u8], pt: &[u8]) -> Vec<u8> {
        let mut buf = pt.to_vec();
        let tag = self.seal(ctr, aad, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }
}

/// RFC 9605 §4.4.3 encryption of one frame: `header || ciphertext || tag`, with
/// `aad = header || metadata`. Derives the KID's key on every call: for tests and other
/// implementations' vectors; the media path caches keys.
pub fn encrypt(
    suite: CipherSuite,
    base_key: &[u8],
    kid: u64,
    ctr: u64,
    metadata: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let key = KidKey::derive(suite, base_key, kid);
    let header = Header { kid, ctr }.encode();
    let aad = [header.as_slice(), metadata].concat();
    let mut out = header;
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = key.seal(ctr, &aad, &mut out[start..]);
    out.extend_from_slice(&tag);
    out
}

/// RFC 9605 §4.4.4 decryption of `header || ciphertext || tag` with `metadata`.
pub fn decrypt(
    suite: CipherSuite,
    base_key: &[u8],
    metadata: &[u8],
    frame: &[u8],
) -> Result<(Header, Vec<u8>), FrameFault> {
    let (header, hlen) = Header::parse(frame)?;
    let body = &frame[hlen..];
    if body.len() < TAG_LEN {
        return Err(FrameFault::TooShort);
    }
    let (ct, tag) = body.split_at(body.len() - TAG_LEN);
    let key = KidKey::derive(suite, base_key, header.kid);
    let aad = [&frame[..hlen], metadata].concat();
    let mut plain = ct.to_vec();
    if !key.open(header.ctr, &aad, &mut plain, tag) {
        return Err(FrameFault::AuthenticationFailed);
    }
    Ok((header, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_fewest_bytes() {
        let h = |kid, ctr| Header { kid, ctr }.encode();
        assert_eq!(h(0, 0), [0x00]);
        assert_eq!(h(7, 7), [0x77]);
        assert_eq!(h(8, 0), [0x80, 0x08]);
        assert_eq!(h(0x123, 0x4567), [0x99, 0x01, 0x23, 0x45, 0x67]);
        assert_eq!(h(u64::MAX, u64::MAX).len(), 17);
    }

    #[test]
    fn non_minimal_and_truncated_headers_are_refused() {
        for bad in [
            &[][..],
            &[0x80],                   // KID byte missing
            &[0x80, 0x07],             // 7 in an extended field
            &[0x81, 0x00, 0x08],       // leading zero byte
            &[0x08, 0x00],             // CTR 0 extended
            &[0x99, 0x01, 0x23, 0x45], // CTR truncated
        ] {
            assert_eq!(
                Header::parse(bad),
                Err(FrameFault::MalformedHeader),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn round_trips_empty_and_one_byte_frames_and_large_values() {
        for suite in [CipherSuite::AesGcm128Sha256, CipherSuite::AesGcm256Sha512] {
            for (kid, ctr) in [(0, 0), (7, 8), (u64::MAX, u64::MAX), (1 << 40, 1 << 32)] {
                for (meta, pt) in [(&b""[..], &b""[..]), (b"", b"x"), (b"\x9c", b"opus")] {
                    let frame = encrypt(suite, b"base", kid, ctr, meta, pt);
                    let (h, plain) = decrypt(suite, b"base", meta, &frame).unwrap();
                    assert_eq!((h.kid, h.ctr, plain.as_slice()), (kid, ctr, pt));
                }
            }
        }
    }
}
