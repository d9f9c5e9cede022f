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

/// Whether a character is one that shows nothing of its own or changes how others show, and so
/// is removed from every name a peer gives (PROTOCOL.md §3.6 "Names", §3.7 "Names"): control
/// characters (Cc), format characters (Cf, Unicode 15.1: soft hyphen, the bidirectional
/// overrides and isolates that make `photo\u{202e}gpj.exe` show as `photoexe.jpg`, zero-width
/// characters, tags), and the line and paragraph separators. Listed here rather than taken from
/// a Unicode table so that every implementation removes exactly the same set.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// A name from a `hello`, made fit to show (PROTOCOL.md §3.7 "Names"): invisible characters
/// ([`is_invisible`]) removed, white space trimmed; `None` when nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let kept: String = name.chars().filter(|&c| !is_invisible(c)).collect();
    let trimmed = kept.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A received file name made safe to create in a directory and to show (PROTOCOL.md §3.6
/// "Names"): the part after the last `/` or `\\`, without invisible characters
/// ([`is_invisible`]) and without leading or trailing dots and spaces; `file` if nothing (or
/// only `.`/`..`) is left.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|&c| !is_invisible(c)).collect();
    let trimmed = clean.trim_matches(|c| c == '.' || c == ' ');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
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
    fn names_lose_the_format_characters_that_reorder_or_hide_what_they_show() {
        // Shown as "photoexe.jpg" if the right-to-left override stayed.
        assert_eq!(safe_file_name("photo\u{202e}gpj.exe"), "photogpj.exe");
        assert_eq!(clean_name("Bob\u{2066}\u{200b}").as_deref(), Some("Bob"));
        assert_eq!(clean_name("\u{feff}\u{e0041}"), None);
        // Letters of every script stay, and so does everything printable.
        assert_eq!(safe_file_name("عربي שלום 日本.txt"), "عربي שלום 日本.txt");
        for c in [
            'a', 'é', ' ', '\u{a0}', '\u{2027}', '\u{2030}', '\u{fffc}', '🎧',
        ] {
            assert!(!is_invisible(c), "{c:?}");
        }
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
