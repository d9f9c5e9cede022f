//! Messages a client sends to the relay.

use crate::ids::ID_CHARS;
use crate::{DecodeError, GroupSize, MAX_EPOCH, Payload, PeerId, RoomId};
use serde::{Deserialize, Serialize};

/// One message from a client to the relay, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// `{"type":"join","room":R}` or, from a group link, `{"type":"join","room":R,"max":N}`:
    /// enter room `R`. The join that creates the room fixes how many it holds: `max`, or 2
    /// without; a later join's `max` changes nothing.
    Join {
        /// The room to enter.
        room: RoomId,
        /// The group size its link asks for; `None` for a one-to-one link.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<GroupSize>,
    },
    /// `{"type":"signal","to":P,"data":D}`: relay opaque bytes to peer `P` of the same room.
    Signal {
        /// The recipient, a peer of the sender's room.
        to: PeerId,
        /// Sealed bytes, forwarded unchanged.
        data: Payload,
    },
    /// `{"type":"leave"}`: hang up; the relay tells the room and closes the connection.
    Leave,
    /// `{"type":"key-package","data":D}`: a conference joiner's sealed KeyPackage
    /// (PROTOCOL.md §7.5).
    KeyPackage {
        /// The sealed KeyPackage (kind 1).
        data: Payload,
    },
    /// `{"type":"commit","epoch":E,"data":D[,"welcome":W][,"refused":[P...]]}`: the commit
    /// this member was named to make, made in `epoch`.
    Commit {
        /// The epoch it was made in.
        epoch: u64,
        /// The sealed commit (kind 2).
        data: Payload,
        /// The sealed Welcome for the joiners it adds (kind 3), when it adds anyone.
        #[serde(skip_serializing_if = "Option::is_none")]
        welcome: Option<Payload>,
        /// The joiners of the task whose KeyPackage the committer refused.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        refused: Vec<PeerId>,
    },
    /// `{"type":"group-message","epoch":E,"data":D}`: a sealed MLS application message for
    /// every other member.
    GroupMessage {
        /// The epoch it was sent in.
        epoch: u64,
        /// The sealed message (kind 4).
        data: Payload,
    },
}

/// Every field any client message may carry; which ones a type requires is checked after.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientMessage {
    #[serde(rename = "type")]
    kind: String,
    room: Option<String>,
    max: Option<u64>,
    to: Option<String>,
    data: Option<String>,
    epoch: Option<u64>,
    welcome: Option<String>,
    refused: Option<Vec<String>>,
}

fn required<T>(field: Option<T>, name: &'static str) -> Result<T, DecodeError> {
    field.ok_or(DecodeError::SenderOmittedField(name))
}

fn absent<T>(field: &Option<T>, name: &'static str) -> Result<(), DecodeError> {
    match field {
        Some(_) => Err(DecodeError::SenderAddedField(name)),
        None => Ok(()),
    }
}

impl ClientMessage {
    /// Decodes one WebSocket text frame. Unknown types and fields, missing or extra fields,
    /// ids of the wrong shape, non-canonical payloads and trailing characters are all errors.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        match Self::decode_canonical_signal(text) {
            Some(msg) => Ok(msg),
            None => Self::decode_json(text),
        }
    }

    /// The relay's hot path: a `signal` exactly as clients write it,
    /// `{"type":"signal","to":"<id>","data":"<base64url>"}`, recognised without a JSON parser.
    /// Whatever this accepts, [`Self::decode_json`] accepts as the same message (its fields
    /// are base64url, which holds no JSON escapes or quotes; a test and the `relay_message`
    /// fuzz target check the two agree). Any other text returns `None` and goes through the
    /// full decoder, which also names what is wrong.
    fn decode_canonical_signal(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(r#"{"type":"signal","to":""#)?;
        let (to, rest) = rest.split_at_checked(ID_CHARS)?;
        let data = rest.strip_prefix(r#"","data":""#)?.strip_suffix(r#""}"#)?;
        Some(Self::Signal {
            to: PeerId::parse(to).ok()?,
            data: Payload::parse(data.to_owned()).ok()?,
        })
    }

    /// The full decoder, without the fast path of [`Self::decode`]; for the differential test
    /// and fuzz target.
    #[doc(hidden)]
    pub fn decode_json(text: &str) -> Result<Self, DecodeError> {
        let raw: RawClientMessage = serde_json::from_str(text).map_err(|e| {
            // serde_json's message names the problem and its position, never the input itself.
            DecodeError::SenderSentMalformedJson(e.to_string())
        })?;
        match raw.kind.as_str() {
            "key-package" | "commit" | "group-message" => Self::decode_conference(raw),
            "join" => {
                absent(&raw.to, "to")?;
                absent(&raw.data, "data")?;
                absent(&raw.epoch, "epoch")?;
                absent(&raw.welcome, "welcome")?;
                absent(&raw.refused, "refused")?;
                let room = RoomId::parse(&required(raw.room, "room")?)?;
                let max = raw.max.map(GroupSize::new).transpose()?;
                Ok(Self::Join { room, max })
            }
            "signal" => {
                absent(&raw.room, "room")?;
                absent(&raw.max, "max")?;
                absent(&raw.epoch, "epoch")?;
                absent(&raw.welcome, "welcome")?;
                absent(&raw.refused, "refused")?;
                let to = PeerId::parse(&required(raw.to, "to")?)?;
                let data = Payload::parse(required(raw.data, "data")?)?;
                Ok(Self::Signal { to, data })
            }
            "leave" => {
                absent(&raw.room, "room")?;
                absent(&raw.max, "max")?;
                absent(&raw.to, "to")?;
                absent(&raw.data, "data")?;
                absent(&raw.epoch, "epoch")?;
                absent(&raw.welcome, "welcome")?;
                absent(&raw.refused, "refused")?;
                Ok(Self::Leave)
            }
            _ => Err(DecodeError::SenderSentUnknownType),
        }
    }

    /// The delivery service's messages (PROTOCOL.md §7.5): `key-package`, `commit`,
    /// `group-message`.
    fn decode_conference(raw: RawClientMessage) -> Result<Self, DecodeError> {
        absent(&raw.room, "room")?;
        absent(&raw.max, "max")?;
        absent(&raw.to, "to")?;
        let data = Payload::parse(required(raw.data, "data")?)?;
        let epoch = || match required(raw.epoch, "epoch")? {
            e if e <= MAX_EPOCH => Ok(e),
            _ => Err(DecodeError::SenderSentInvalidEpoch),
        };
        if raw.kind != "commit" {
            absent(&raw.welcome, "welcome")?;
            absent(&raw.refused, "refused")?;
        }
        match raw.kind.as_str() {
            "key-package" => {
                absent(&raw.epoch, "epoch")?;
                Ok(Self::KeyPackage { data })
            }
            "commit" => {
                let refused: Vec<PeerId> = raw
                    .refused
                    .unwrap_or_default()
                    .iter()
                    .map(|p| PeerId::parse(p))
                    .collect::<Result<_, _>>()?;
                Ok(Self::Commit {
                    epoch: epoch()?,
                    data,
                    welcome: raw.welcome.map(Payload::parse).transpose()?,
                    refused,
                })
            }
            _ => Ok(Self::GroupMessage {
                epoch: epoch()?,
                data,
            }),
        }
    }

    /// The JSON text of this message.
    pub fn encode(&self) -> String {
        // Serializing these plain structs of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const PEER: &str = "_____________________w";

    #[test]
    fn the_fast_path_and_the_full_decoder_agree() {
        let texts = [
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":""}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQI"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQJ"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQ\u0049D"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID"}} "#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID","data":"AQID"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQ"ID"}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}x","data":"AQID"}}"#),
            format!(r#"{{"type":"signal","to":"{}","data":"AQID"}}"#, &PEER[1..]),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID"}}}}"#),
            format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID""#),
        ];
        let mut fast = 0;
        for text in &texts {
            if let Some(msg) = ClientMessage::decode_canonical_signal(text) {
                fast += 1;
                assert_eq!(ClientMessage::decode_json(text), Ok(msg), "{text}");
            }
            assert_eq!(
                ClientMessage::decode(text),
                ClientMessage::decode_json(text),
                "{text}"
            );
        }
        assert_eq!(fast, 3, "the canonical forms take the fast path");
    }

    #[test]
    fn decodes_each_client_message() {
        assert_eq!(
            ClientMessage::decode(&format!(r#"{{"type":"join","room":"{ROOM}"}}"#)),
            Ok(ClientMessage::Join {
                room: RoomId::parse(ROOM).unwrap(),
                max: None
            })
        );
        assert_eq!(
            ClientMessage::decode(&format!(r#"{{"type":"join","room":"{ROOM}","max":6}}"#)),
            Ok(ClientMessage::Join {
                room: RoomId::parse(ROOM).unwrap(),
                max: Some(GroupSize::new(6).unwrap())
            })
        );
        assert_eq!(
            ClientMessage::decode(&format!(
                r#"{{"type":"signal","to":"{PEER}","data":"AQID"}}"#
            )),
            Ok(ClientMessage::Signal {
                to: PeerId::parse(PEER).unwrap(),
                data: Payload::parse("AQID".into()).unwrap()
            })
        );
        assert_eq!(
            ClientMessage::decode(r#" {"type":"leave"} "#),
            Ok(ClientMessage::Leave)
        );
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for msg in [
            ClientMessage::Join {
                room: RoomId::parse(ROOM).unwrap(),
                max: None,
            },
            ClientMessage::Join {
                room: RoomId::parse(ROOM).unwrap(),
                max: Some(GroupSize::new(50).unwrap()),
            },
            ClientMessage::Signal {
                to: PeerId::parse(PEER).unwrap(),
                data: Payload::parse("AQID".into()).unwrap(),
            },
            ClientMessage::Leave,
            ClientMessage::KeyPackage {
                data: Payload::parse("AQID".into()).unwrap(),
            },
            ClientMessage::Commit {
                epoch: 0,
                data: Payload::parse("AQID".into()).unwrap(),
                welcome: None,
                refused: vec![],
            },
            ClientMessage::Commit {
                epoch: MAX_EPOCH,
                data: Payload::parse("AQID".into()).unwrap(),
                welcome: Some(Payload::parse("BAU".into()).unwrap()),
                refused: vec![PeerId::parse(PEER).unwrap()],
            },
            ClientMessage::GroupMessage {
                epoch: 7,
                data: Payload::parse("".into()).unwrap(),
            },
        ] {
            assert_eq!(ClientMessage::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn conference_messages_decode_as_documented_and_refuse_fields_of_other_kinds() {
        assert_eq!(
            ClientMessage::decode(&format!(
                r#"{{"type":"commit","epoch":3,"data":"AQID","welcome":"BAU","refused":["{PEER}"]}}"#
            )),
            Ok(ClientMessage::Commit {
                epoch: 3,
                data: Payload::parse("AQID".into()).unwrap(),
                welcome: Some(Payload::parse("BAU".into()).unwrap()),
                refused: vec![PeerId::parse(PEER).unwrap()],
            })
        );
        use DecodeError::*;
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"{"type":"key-package","data":"AQID","epoch":0}"#,
                SenderAddedField("epoch"),
            ),
            (r#"{"type":"key-package"}"#, SenderOmittedField("data")),
            (
                r#"{"type":"group-message","data":"AQID"}"#,
                SenderOmittedField("epoch"),
            ),
            (
                r#"{"type":"group-message","epoch":1,"data":"AQID","welcome":"AQID"}"#,
                SenderAddedField("welcome"),
            ),
            (
                r#"{"type":"group-message","epoch":1,"data":"AQID","refused":[]}"#,
                SenderAddedField("refused"),
            ),
            (
                &format!(r#"{{"type":"commit","epoch":1,"data":"AQID","to":"{PEER}"}}"#),
                SenderAddedField("to"),
            ),
            (
                r#"{"type":"commit","epoch":9007199254740992,"data":"AQID"}"#,
                SenderSentInvalidEpoch,
            ),
            (
                r#"{"type":"commit","epoch":1,"data":"AQID","refused":["nobody"]}"#,
                SenderSentInvalidPeerId,
            ),
            (
                r#"{"type":"commit","epoch":1,"data":"AQID","welcome":"AQ=="}"#,
                SenderSentInvalidPayload,
            ),
            (
                &format!(r#"{{"type":"signal","to":"{PEER}","data":"AQID","epoch":1}}"#),
                SenderAddedField("epoch"),
            ),
            (
                &format!(r#"{{"type":"join","room":"{ROOM}","max":51}}"#),
                SenderSentInvalidGroupSize,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&ClientMessage::decode(text).unwrap_err(), want, "{text}");
        }
        for text in [
            r#"{"type":"commit","epoch":-1,"data":"AQID"}"#,
            r#"{"type":"commit","epoch":1.5,"data":"AQID"}"#,
            r#"{"type":"commit","epoch":"1","data":"AQID"}"#,
            r#"{"type":"commit","epoch":1,"data":"AQID","refused":"x"}"#,
        ] {
            assert!(
                matches!(
                    ClientMessage::decode(text),
                    Err(DecodeError::SenderSentMalformedJson(_))
                ),
                "{text:?} should be malformed"
            );
        }
    }

    #[test]
    fn rejects_each_kind_of_bad_message() {
        use DecodeError::*;
        let cases: &[(&str, DecodeError)] = &[
            (r#"{"type":"dance"}"#, SenderSentUnknownType),
            (r#"{"type":"join"}"#, SenderOmittedField("room")),
            (
                &format!(r#"{{"type":"join","room":"{ROOM}","to":"{PEER}"}}"#),
                SenderAddedField("to"),
            ),
            (r#"{"type":"join","room":"short"}"#, SenderSentInvalidRoomId),
            (
                &format!(r#"{{"type":"join","room":"{ROOM}","max":2}}"#),
                SenderSentInvalidGroupSize,
            ),
            (
                &format!(r#"{{"type":"join","room":"{ROOM}","max":300}}"#),
                SenderSentInvalidGroupSize,
            ),
            (r#"{"type":"leave","max":6}"#, SenderAddedField("max")),
            (
                &format!(r#"{{"type":"signal","to":"{PEER}"}}"#),
                SenderOmittedField("data"),
            ),
            (
                &format!(r#"{{"type":"signal","to":"{PEER}","data":"AQ=="}}"#),
                SenderSentInvalidPayload,
            ),
            (
                r#"{"type":"signal","to":"nobody","data":"AQID"}"#,
                SenderSentInvalidPeerId,
            ),
            (
                &format!(r#"{{"type":"leave","room":"{ROOM}"}}"#),
                SenderAddedField("room"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&ClientMessage::decode(text).unwrap_err(), want, "{text}");
        }
        for text in [
            "",
            "null",
            "[]",
            r#"{"type":1}"#,
            r#"{"type":"leave","extra":1}"#,
            r#"{"type":"leave"} {"type":"leave"}"#,
            r#"{"type":"leave"}x"#,
            r#"{"type":"join","room":"AAAAAAAAAAAAAAAAAAAAAA","max":6.5}"#,
            r#"{"type":"join","room":"AAAAAAAAAAAAAAAAAAAAAA","max":-3}"#,
            r#"{"type":"join","room":"AAAAAAAAAAAAAAAAAAAAAA","max":"6"}"#,
            r#"{"type":"join","room":"AAAAAAAAAAAAAAAAAAAAAA","room":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
        ] {
            assert!(
                matches!(
                    ClientMessage::decode(text),
                    Err(DecodeError::SenderSentMalformedJson(_))
                ),
                "{text:?} should be malformed"
            );
        }
    }
}
