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
    /// A message on the data channel did not open or came out of sequence: someone between
    /// the peers altered, replayed, reordered or dropped it. The data channel must close; the
    /// call goes on.
    DataTampered(&'static str),
    /// The peer sent an authenticated data-channel message that breaks the rules of its kind
    /// (or of no known kind); it is dropped and reported, the channel stays open.
    MessageMalformed(MessageFault),
    /// The peer's `identity` (its device key and signature) is malformed or does not sign
    /// this handshake's transcript: a replay from another call, or a forgery. The call set-up
    /// must end as tampered with.
    IdentityRefused(&'static str),
    /// A conference's MLS message did not open under the link's key, or broke the group's
    /// rules (PROTOCOL.md §7): the relay or a member altered, moved or forged it. It is dropped
    /// and counted; a commit that fails leaves this member out of step with the group.
    GroupTampered(&'static str),
    /// The MLS library refused an operation of this member's own (making a key package, a
    /// commit, a message): a fault of this program or its state, not of anyone else.
    GroupFailed(&'static str),
}

/// Why an opened data-channel message was refused (PROTOCOL.md §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageFault {
    /// No kind byte.
    Empty,
    /// A kind this version does not know.
    UnknownKind(u8),
    /// Bytes missing or left over for this kind.
    WrongLength(u8),
    /// A text or file name that is not UTF-8.
    InvalidUtf8,
    /// A text of no bytes.
    EmptyText,
    /// A text over 4096 bytes.
    TextTooLong,
    /// A file offer with an empty name.
    EmptyName,
    /// A chunk without data.
    EmptyChunk,
    /// A chunk over 16,000 bytes.
    ChunkTooLong,
}

impl MessageFault {
    /// A stable name for the fault (the vectors' `data_malformed`, and the browser's names).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::UnknownKind(_) => "unknown-kind",
            Self::WrongLength(_) => "wrong-length",
            Self::InvalidUtf8 => "invalid-utf8",
            Self::EmptyText => "empty-text",
            Self::TextTooLong => "text-too-long",
            Self::EmptyName => "empty-name",
            Self::EmptyChunk => "empty-chunk",
            Self::ChunkTooLong => "chunk-too-long",
        }
    }
}

impl fmt::Display for MessageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty message"),
            Self::UnknownKind(k) => write!(f, "unknown message kind 0x{k:02x}"),
            Self::WrongLength(k) => write!(f, "message of kind 0x{k:02x} has the wrong length"),
            Self::InvalidUtf8 => f.write_str("text that is not UTF-8"),
            Self::EmptyText => f.write_str("empty text"),
            Self::TextTooLong => f.write_str("text over 4096 bytes"),
            Self::EmptyName => f.write_str("file offer without a name"),
            Self::EmptyChunk => f.write_str("empty file chunk"),
            Self::ChunkTooLong => f.write_str("file chunk over 16,000 bytes"),
        }
    }
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
    /// Conference: the KID names a leaf that is not a member in its epoch, or this member's
    /// own leaf (a reflected frame).
    UnknownSender,
    /// Conference: the KID names an epoch this member does not hold keys for (not yet, or no
    /// longer: the previous epoch's keys are kept 10 s).
    UnknownEpoch,
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
            Self::UnknownSender => "frame from no member of its epoch",
            Self::UnknownEpoch => "frame from an epoch whose keys are not held",
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
            Self::DataTampered(why) => write!(f, "messages tampered with ({why})"),
            Self::MessageMalformed(fault) => write!(f, "message dropped: {fault}"),
            Self::IdentityRefused(why) => {
                write!(f, "the other device's identity was refused: {why}")
            }
            Self::GroupTampered(why) => write!(f, "conference message tampered with ({why})"),
            Self::GroupFailed(why) => write!(f, "the conference's keys could not be made ({why})"),
        }
    }
}

impl std::error::Error for Error {}
