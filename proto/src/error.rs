use std::fmt;

/// Why a message could not be decoded. The sender of the bytes is at fault in every case.
///
/// The texts never quote the offending bytes back: they name the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The sender's text is not a JSON object of the expected shape.
    SenderSentMalformedJson(String),
    /// The sender used a `type` this protocol version does not have.
    SenderSentUnknownType,
    /// The sender left out a field that its message type requires.
    SenderOmittedField(&'static str),
    /// The sender included a field that its message type does not have.
    SenderAddedField(&'static str),
    /// The sender's room id is not canonical base64url of 16 bytes.
    SenderSentInvalidRoomId,
    /// The sender's peer id is not canonical base64url of 16 bytes.
    SenderSentInvalidPeerId,
    /// The sender's `data` is not canonical base64url.
    SenderSentInvalidPayload,
    /// The sender's `max` is not a whole number from 3 to 50.
    SenderSentInvalidGroupSize,
    /// The sender's `epoch` is above 2^53 - 1.
    SenderSentInvalidEpoch,
    /// The sender's `sdp` is empty.
    SenderSentInvalidSdp,
    /// The sender's `slots` break a rule (the text says which).
    SenderSentInvalidView(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SenderSentMalformedJson(why) => write!(f, "malformed message: {why}"),
            Self::SenderSentUnknownType => f.write_str("unknown message type"),
            Self::SenderOmittedField(name) => write!(f, "missing field `{name}`"),
            Self::SenderAddedField(name) => write!(f, "unexpected field `{name}`"),
            Self::SenderSentInvalidRoomId => {
                f.write_str("`room` must be canonical base64url of 16 bytes")
            }
            Self::SenderSentInvalidPeerId => {
                f.write_str("peer id must be canonical base64url of 16 bytes")
            }
            Self::SenderSentInvalidPayload => f.write_str("`data` must be canonical base64url"),
            Self::SenderSentInvalidGroupSize => {
                f.write_str("`max` must be a whole number of people from 3 to 50")
            }
            Self::SenderSentInvalidEpoch => f.write_str("`epoch` must be at most 2^53 - 1"),
            Self::SenderSentInvalidSdp => f.write_str("`sdp` must not be empty"),
            Self::SenderSentInvalidView(why) => write!(f, "`slots`: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}
