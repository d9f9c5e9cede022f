//! What a call says and how it ends: the sealed signaling messages of a pair (PROTOCOL.md
//! §3.3), the outcomes a call ends with, and how the relay is tried again. The call itself,
//! sans-IO, is the [`Room`](crate::room::Room).

use serde::{Deserialize, Serialize};
use sotto_e2ee::{EphemeralKey, Error as E2eeError};
use sotto_proto::ErrorCode;
use std::time::Duration;

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
}

impl PeerSignal {
    /// Decodes a sealed plaintext; `Ok(None)` for a `t` this version does not know (ignored).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Option<Self>, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        match value.get("t").and_then(|t| t.as_str()) {
            Some("offer" | "answer" | "candidate" | "end-of-candidates" | "bye") => {
                serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| format!("malformed message: {e}"))
            }
            Some(_) => Ok(None),
            None => Err("no `t` field".into()),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Plain structs of strings: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why a call ended. Each maps to a distinct exit code of the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This side hung up.
    HungUp,
    /// The peer hung up (`bye`, or left after the call connected).
    PeerHungUp,
    /// The relay answered with an error (room full, ...): its code and message.
    RelayError(ErrorCode, String),
    /// Wrong link, or the relay tampered with the set-up.
    WrongLinkOrTamperedRelay,
    /// Someone between the peers altered the set-up (the text says how).
    Tampered(String),
    /// The relay connection was lost before the call connected, and every attempt to reach
    /// it again failed.
    RelayLost,
    /// ICE or DTLS failed.
    ConnectionFailed(String),
    /// The relay broke the protocol (more than one peer in a one-to-one room, ...).
    ProtocolViolation(String),
    /// This computer could not do its part (no randomness for keys).
    LocalFailure(String),
    /// The relay's TLS certificate was refused when reconnecting.
    RelayCertificate(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HungUp => f.write_str("you hung up"),
            Self::PeerHungUp => f.write_str("the other side hung up"),
            Self::RelayError(code, msg) => write!(f, "relay error {code}: {msg}"),
            Self::WrongLinkOrTamperedRelay => f.write_str("wrong link or tampered relay"),
            Self::Tampered(why) => write!(f, "call set-up tampered with: {why}"),
            Self::RelayLost => {
                f.write_str("lost the connection to the relay and could not reach it again")
            }
            Self::ConnectionFailed(why) => write!(f, "connection failed: {why}"),
            Self::ProtocolViolation(why) => write!(f, "relay protocol violation: {why}"),
            Self::LocalFailure(why) => write!(f, "this computer could not make keys: {why}"),
            Self::RelayCertificate(why) => {
                write!(f, "the relay's TLS certificate was refused: {why}")
            }
        }
    }
}

/// How many times the relay is tried again after it was lost, and the longest wait between two
/// tries: about four minutes in all, long enough for a relay to restart.
pub const RECONNECT_ATTEMPTS: u32 = 20;
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(15);

/// The wait before reconnection attempt `attempt` (1, 2, ...): 0.5 s, doubling up to 15 s.
pub fn reconnect_delay(attempt: u32) -> Duration {
    let doubled = Duration::from_millis(500).saturating_mul(1 << attempt.saturating_sub(1).min(6));
    doubled.min(RECONNECT_MAX_DELAY)
}

/// A fresh X25519 key for each handshake (one per peer the call meets).
pub type KeySource = Box<dyn FnMut() -> Result<EphemeralKey, E2eeError> + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(PeerSignal::decode(b"\xff").is_err());
    }
}
