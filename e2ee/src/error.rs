use std::fmt;

/// Everything that can go wrong in Sotto's cryptography. Each variant names who is at fault;
/// none carries key material or plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The user's link is not a Sotto link (the text says which rule it breaks).
    LinkMalformed(&'static str),
    /// The peer or the relay broke the handshake: a message of the wrong size, out of order,
    /// duplicated, a reveal that does not match its commitment, or a key that gives an all-zero
    /// shared secret. The call set-up must end.
    HandshakeTampered(&'static str),
    /// The first sealed message did not open: the peer used another link's secret, or the
    /// relay substituted keys. The call set-up must end.
    WrongLinkOrTamperedRelay,
    /// A later sealed message did not open or came out of sequence: someone between the peers
    /// altered, replayed, reordered or dropped messages. The call set-up must end.
    SealedTampered(&'static str),
    /// This program asked for something its state does not allow (sealing before the keys
    /// exist, or before the peer's first message confirmed them).
    CallerMisuse(&'static str),
    /// A media frame from the network was refused (the text says which rule it broke); it is
    /// dropped and counted, never passed on.
    FrameRejected(FrameFault),
    /// The operating system's random generator failed; no key could be made.
    RandomnessUnavailable,
    /// A media frame handed to the sender cannot be encrypted (shorter than its codec prefix,
    /// or the sender's counters are exhausted); it is dropped.
    FrameUnsendable(&'static str),
}

/// Why a received media frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameFault {
    /// Shorter than its codec prefix plus an SFrame header and tag.
    TooShort,
    /// The SFrame header is truncated or not minimally encoded.
    MalformedHeader,
    /// The KID carries our own role bit: a reflected frame.
    WrongRole,
    /// The KID names another stream than the track it arrived on, or stream 3.
    WrongStream,
    /// The CTR is at or above 2^32.
    CounterTooLarge,
    /// The CTR was seen already, or is too old for the replay window.
    Replayed,
    /// The AEAD tag did not verify: wrong key or altered bytes.
    AuthenticationFailed,
    /// The KID's generation is older than the ones this receiver keeps.
    StaleGeneration,
}

impl fmt::Display for FrameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooShort => "frame too short",
            Self::MalformedHeader => "malformed SFrame header",
            Self::WrongRole => "frame carries our own role bit",
            Self::WrongStream => "frame belongs to another stream",
            Self::CounterTooLarge => "frame counter at or above 2^32",
            Self::Replayed => "frame replayed or too old",
            Self::AuthenticationFailed => "frame failed authentication",
            Self::StaleGeneration => "frame from a retired key generation",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkMalformed(why) => write!(f, "not a valid Sotto link: {why}"),
            Self::HandshakeTampered(why) => {
                write!(
                    f,
                    "handshake tampered with ({why}): the call set-up was stopped"
                )
            }
            Self::WrongLinkOrTamperedRelay => f.write_str("wrong link or tampered relay"),
            Self::SealedTampered(why) => {
                write!(
                    f,
                    "signaling tampered with ({why}): the call set-up was stopped"
                )
            }
            Self::CallerMisuse(why) => write!(f, "not allowed now: {why}"),
            Self::FrameRejected(fault) => write!(f, "media frame dropped: {fault}"),
            Self::FrameUnsendable(why) => write!(f, "media frame not sent: {why}"),
            Self::RandomnessUnavailable => f.write_str("the system's random generator failed"),
        }
    }
}

impl std::error::Error for Error {}
