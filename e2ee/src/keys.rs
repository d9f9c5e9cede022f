//! Values the key schedule hands to the rest of the program.

use std::fmt;
use zeroize::Zeroizing;

/// An SFrame base key: 32 bytes per sender in a pair's call, or a conference epoch's 16-byte
/// MLS exporter output (shared by the group, the KID telling senders apart). Zeroized on
/// drop; no Debug.
pub struct BaseKey(pub(crate) Zeroizing<Vec<u8>>);

impl BaseKey {
    /// A base key with these bytes (tests, vectors, and the browser bridge's own tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// A conference epoch's base key: `MLS-Exporter("SFrame 1.0 Base Key", "", 16)`.
    pub fn from_exporter(bytes: &[u8; 16]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
}

/// The two SFrame base keys of one side of a call.
pub struct MediaKeys {
    /// Encrypts what this side sends (`media_O` for O, `media_A` for A).
    pub send: BaseKey,
    /// Decrypts what the peer sends.
    pub receive: BaseKey,
}

/// The 6-digit safety code both users compare aloud.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SafetyCode(u32);

impl SafetyCode {
    /// `be_u32(sas) mod 1_000_000`.
    pub(crate) fn from_sas(sas: [u8; 4]) -> Self {
        Self(u32::from_be_bytes(sas) % 1_000_000)
    }

    /// The six digits, zero-padded: `"034666"`.
    pub fn digits(&self) -> String {
        format!("{:06}", self.0)
    }

    /// The code's value, 0 to 999,999.
    pub fn value(&self) -> u32 {
        self.0
    }
}

/// `"034 666"`: how the code is shown to people.
impl fmt::Display for SafetyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// The code is public (both users read it aloud), so Debug may show it.
impl fmt::Debug for SafetyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_always_six_zero_padded_digits() {
        assert_eq!(SafetyCode::from_sas([0, 0, 0x87, 0x6a]).digits(), "034666");
        assert_eq!(
            SafetyCode::from_sas([0, 0, 0x87, 0x6a]).to_string(),
            "034 666"
        );
        assert_eq!(SafetyCode::from_sas([0; 4]).to_string(), "000 000");
        // 0xffffffff = 4294967295 -> 967295.
        assert_eq!(SafetyCode::from_sas([0xff; 4]).digits(), "967295");
    }
}
