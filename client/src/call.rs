//! How a call ends and how the relay is tried again: the outcomes a call ends with, the
//! reconnection backoff, the key source of its pairs. The call itself, sans-IO, is the
//! [`Room`](crate::room::Room); what a pair says, sealed, is [`sotto_proto::PeerSignal`].

use sotto_e2ee::{EphemeralKey, Error as E2eeError};
use sotto_proto::ErrorCode;
use std::time::Duration;

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
