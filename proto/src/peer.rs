//! What one peer says to another inside a sealed message (PROTOCOL.md §3.3): the offer or
//! answer, candidates, the end of candidates, `bye`, `hello` and `identity`. The relay never
//! sees these (it carries them sealed in a [`Payload`](crate::Payload)); they live here, beside
//! the relay's wire types, so that every client and the fuzz targets decode them the same way.

use crate::DecodeError;
use serde::{Deserialize, Serialize};

/// The plaintext of a sealed message (PROTOCOL.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum PeerSignal {
    /// O's first sealed message.
    Offer {
        /// The offer's SDP.
        sdp: String,
    },
    /// A's first sealed message.
    Answer {
        /// The answer's SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// `candidate:...`
        candidate: String,
        /// The media section id.
        #[serde(rename = "sdpMid")]
        sdp_mid: Option<String>,
        /// The media section index.
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: Option<u16>,
    },
    /// No more candidates.
    EndOfCandidates,
    /// Hanging up.
    Bye,
    /// The sender's device identity (PROTOCOL.md §3.8): its Ed25519 public key and its
    /// signature over the pair's transcript hash, base64url; checked by the e2ee crate.
    Identity {
        /// 32 bytes, base64url.
        key: String,
        /// 64 bytes, base64url.
        sig: String,
    },
    /// The sender's name (DESIGN §4.9), after its offer or answer.
    Hello {
        /// At most [`MAX_NAME`] bytes of UTF-8.
        name: String,
    },
}

/// The longest name a `hello` may carry, in bytes of UTF-8.
pub const MAX_NAME: usize = 64;

/// A name from a `hello`, made fit to show (PROTOCOL.md §3.7 "Names"): control characters
/// removed, white space trimmed; `None` when nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .filter(|&c| !matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'))
        .collect();
    let trimmed = kept.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

impl PeerSignal {
    /// Decodes a sealed plaintext; `Ok(None)` for a `t` this version does not know, and for a
    /// `hello` whose name is not a string of at most [`MAX_NAME`] bytes (both ignored).
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>, DecodeError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| DecodeError::SenderSentMalformedJson(e.to_string()))?;
        match value.get("t").and_then(|t| t.as_str()) {
            Some("hello") => Ok(value
                .get("name")
                .and_then(|n| n.as_str())
                .filter(|n| n.len() <= MAX_NAME)
                .map(|name| Self::Hello {
                    name: name.to_owned(),
                })),
            Some("offer" | "answer" | "candidate" | "end-of-candidates" | "bye" | "identity") => {
                serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| DecodeError::SenderSentMalformedJson(e.to_string()))
            }
            Some(_) => Ok(None),
            None => Err(DecodeError::SenderOmittedField("t")),
        }
    }

    /// The plaintext to seal.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs of strings: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_control_characters_and_surrounding_space() {
        assert_eq!(
            clean_name(" Ada\u{1b}[31m Lovelace\u{85}\n").as_deref(),
            Some("Ada[31m Lovelace")
        );
        assert_eq!(clean_name("\u{7}\t "), None);
        assert_eq!(clean_name("Zoë 🎧").as_deref(), Some("Zoë 🎧"));
    }

    #[test]
    fn sealed_plaintexts_follow_the_protocol_json() {
        let c = PeerSignal::Candidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        };
        assert_eq!(
            String::from_utf8(c.encode()).unwrap(),
            r#"{"t":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}"#
        );
        assert_eq!(
            String::from_utf8(PeerSignal::EndOfCandidates.encode()).unwrap(),
            r#"{"t":"end-of-candidates"}"#
        );
        assert_eq!(PeerSignal::decode(br#"{"t":"chat","text":"hi"}"#), Ok(None));
        assert_eq!(
            PeerSignal::decode(br#"{"t":"bye"}"#),
            Ok(Some(PeerSignal::Bye))
        );
        assert!(PeerSignal::decode(br#"{"t":"offer"}"#).is_err());
        assert_eq!(
            String::from_utf8(PeerSignal::Hello { name: "Ada".into() }.encode()).unwrap(),
            r#"{"t":"hello","name":"Ada"}"#
        );
        assert_eq!(
            PeerSignal::decode(br#"{"t":"hello","name":"Ada"}"#),
            Ok(Some(PeerSignal::Hello { name: "Ada".into() }))
        );
        // A name that is not a string, or longer than 64 bytes, is ignored, not fatal.
        assert_eq!(PeerSignal::decode(br#"{"t":"hello","name":7}"#), Ok(None));
        let long = format!(r#"{{"t":"hello","name":"{}"}}"#, "é".repeat(33));
        assert_eq!(PeerSignal::decode(long.as_bytes()), Ok(None));
        assert!(PeerSignal::decode(b"\xff").is_err());
    }
}
