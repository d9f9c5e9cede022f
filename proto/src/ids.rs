//! Identifiers and the opaque payload, each a string proven to have its shape.

use crate::DecodeError;
use serde::{Serialize, Serializer};
use std::fmt;

/// Length in characters of base64url (no padding) of 16 bytes.
pub(crate) const ID_CHARS: usize = 22;

/// The value of one base64url character, or `None` for a character outside the alphabet.
fn b64u_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// True when `s` is base64url without padding in its one canonical form: only alphabet
/// characters, a length that encodes whole bytes, and zero bits after the last byte.
///
/// This is what a strict decoder accepts, checked without allocating, so the relay can vouch for
/// a payload's shape without decoding it (RFC 4648 §5, §3.5).
pub fn is_canonical_base64url(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&last) = bytes.last() else {
        return true;
    };
    // A fold without early exit compiles to vector compares (about 0.12 ns a byte here; the
    // `match` per character it replaces was a quarter of the relay's instructions per message).
    let alphabet_only = bytes.iter().fold(true, |ok, &c| {
        ok & (c.is_ascii_alphanumeric() | (c == b'-') | (c == b'_'))
    });
    if bytes.len() % 4 == 1 || !alphabet_only {
        return false;
    }
    // The alphabet check above guarantees `last` has a value.
    let last = b64u_value(last).unwrap_or(0);
    match bytes.len() % 4 {
        2 => last & 0x0f == 0,
        3 => last & 0x03 == 0,
        _ => true,
    }
}

fn encode_16(bytes: &[u8; 16]) -> String {
    encode(bytes)
}

/// Base64url without padding of `bytes`.
fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out
}

/// The bytes of base64url text already checked to be canonical.
fn decode_b64u(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text.as_bytes() {
        acc = (acc << 6) | u32::from(b64u_value(c).unwrap_or(0));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $err:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses an id received from the network.
            pub fn parse(s: &str) -> Result<Self, DecodeError> {
                if s.len() == ID_CHARS && is_canonical_base64url(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(DecodeError::$err)
                }
            }

            /// The id of these 16 bytes.
            pub fn from_bytes(bytes: &[u8; 16]) -> Self {
                Self(encode_16(bytes))
            }

            /// The id as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The 16 bytes of this id.
            pub fn to_bytes(&self) -> [u8; 16] {
                let mut out = [0u8; 16];
                // 22 canonical characters hold exactly 16 bytes (checked by `parse`, or made
                // by `from_bytes`).
                for (o, b) in out.iter_mut().zip(decode_b64u(&self.0)) {
                    *o = b;
                }
                out
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A peer's id: 16 random bytes chosen by the relay for one connection, never reused.
    PeerId,
    SenderSentInvalidPeerId
);

id_type!(
    /// A room's id: 16 bytes the peers derive from the call's secret (PROTOCOL.md, "The link").
    /// The relay learns it; it cannot learn the secret from it.
    RoomId,
    SenderSentInvalidRoomId
);

/// Opaque peer-to-peer bytes in canonical base64url. The relay forwards them unchanged.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(String);

impl Payload {
    /// Parses a payload received from the network: canonical base64url, any length (the
    /// WebSocket message limit bounds it).
    pub fn parse(s: String) -> Result<Self, DecodeError> {
        if is_canonical_base64url(&s) {
            Ok(Self(s))
        } else {
            Err(DecodeError::SenderSentInvalidPayload)
        }
    }

    /// The payload carrying these bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(encode(bytes))
    }

    /// The bytes this payload carries.
    pub fn decode(&self) -> Vec<u8> {
        decode_b64u(&self.0)
    }

    /// The payload as it appears on the wire (base64url text).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length of the base64url text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty payload.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Shows the size only: a payload is sealed peer data and has no business in a log.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} chars)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_base64url_accepts_only_the_strict_form() {
        for ok in [
            "", "AA", "AAA", "AAAA", "_-8", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy",
        ] {
            assert!(is_canonical_base64url(ok), "{ok:?} should be accepted");
        }
        // Padding, standard-alphabet characters, impossible lengths and non-zero trailing bits.
        for bad in [
            "A", "AA==", "a+b/", "AAAAA", "AB", "AAB", "Zm9vYh", "Zm9vYmF", " AA", "AA\n",
        ] {
            assert!(!is_canonical_base64url(bad), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ids_are_22_canonical_characters() {
        let id = PeerId::from_bytes(&[0xff; 16]);
        assert_eq!(id.as_str(), "_____________________w");
        assert_eq!(PeerId::parse(id.as_str()), Ok(id));
        assert_eq!(
            RoomId::from_bytes(&[0; 16]).as_str(),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        assert_eq!(
            PeerId::parse("_____________________x"),
            Err(DecodeError::SenderSentInvalidPeerId)
        );
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAAA"),
            Err(DecodeError::SenderSentInvalidRoomId)
        );
        assert_eq!(
            RoomId::parse("AAAAAAAAAAAAAAAAAAAAAAAA"),
            Err(DecodeError::SenderSentInvalidRoomId)
        );
    }

    #[test]
    fn payloads_round_trip_bytes_of_every_length() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let p = Payload::from_bytes(&bytes);
            assert!(is_canonical_base64url(p.as_str()));
            assert_eq!(
                Payload::parse(p.as_str().to_owned()).unwrap().decode(),
                bytes
            );
        }
        assert_eq!(Payload::from_bytes(b"foobar").as_str(), "Zm9vYmFy");
        assert_eq!(Payload::from_bytes(&[0xfb, 0xff]).as_str(), "-_8");
    }

    #[test]
    fn an_id_gives_back_its_bytes() {
        let bytes: [u8; 16] = core::array::from_fn(|i| (i * 17 + 3) as u8);
        assert_eq!(PeerId::from_bytes(&bytes).to_bytes(), bytes);
        assert_eq!(PeerId::from_bytes(&[0xff; 16]).to_bytes(), [0xff; 16]);
    }

    #[test]
    fn payload_debug_shows_no_content() {
        let p = Payload::parse("c2VjcmV0".to_owned()).unwrap();
        assert_eq!(format!("{p:?}"), "Payload(8 chars)");
    }
}

/// How many people a group room holds, as its link says (`#S.N`): 3 to 50 (7 and more: a
/// conference). A one-to-one room (a link without `.N`, a `join` without `max`) holds 2 and
/// has no `GroupSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupSize(u8);

impl GroupSize {
    /// The smallest group: a room of 2 is a one-to-one call.
    pub const MIN: u8 = 3;
    /// The largest group a link may name.
    pub const MAX: u8 = 50;
    /// The largest group that is a mesh (a pair for every two people); larger ones are
    /// conferences (an SFU and one MLS group, PROTOCOL.md §7).
    pub const MESH_MAX: u8 = 6;

    /// `n` people, if `n` is 3 to 50.
    pub fn new(n: u64) -> Result<Self, DecodeError> {
        match u8::try_from(n) {
            Ok(n) if (Self::MIN..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(DecodeError::SenderSentInvalidGroupSize),
        }
    }

    /// The number of people.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Whether a room of this size is a conference rather than a mesh.
    pub fn is_conference(self) -> bool {
        self.0 > Self::MESH_MAX
    }
}

impl Serialize for GroupSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}
