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
    /// `{"type":"sfu-offer","sdp":S}`: a conference member's offer for its one connection to
    /// the SFU (PROTOCOL.md §7.7). Not sealed: the SFU terminates it.
    SfuOffer {
        /// The SDP offer.
        sdp: String,
    },
    /// `{"type":"sfu-view","slots":[{"mid":M,"peer":P,"layer":"h"|"l"}...]}`: what each of the
    /// member's receive m-lines shows.
    SfuView {
        /// One per receive m-line that shows someone.
        slots: Vec<ViewSlot>,
    },
}

/// One receive m-line of a conference member's view: whose media, and which layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewSlot {
    /// The m-line's `mid`: 1 to 16 ASCII letters and digits.
    pub mid: String,
    /// Whose media it shows.
    pub peer: PeerId,
    /// For video: `h` (the full layer) or `l` (the smallest).
    pub layer: Layer,
}

/// A simulcast layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layer {
    /// `h`: the full-size layer.
    #[serde(rename = "h")]
    High,
    /// `l`: the smallest layer.
    #[serde(rename = "l")]
    Low,
}

impl ViewSlot {
    /// One item of `slots`: an object with exactly `mid`, `peer` and `layer`.
    fn decode(item: serde_json::Value) -> Result<Self, DecodeError> {
        let serde_json::Value::Object(mut item) = item else {
            return Err(DecodeError::SenderSentInvalidView(
                "a slot that is not an object",
            ));
        };
        let mut text = |name: &'static str| match item.remove(name) {
            Some(serde_json::Value::String(s)) => Ok(s),
            None => Err(DecodeError::SenderOmittedField(name)),
            Some(_) => Err(DecodeError::SenderSentInvalidView(
                "a slot field that is not text",
            )),
        };
        let mid = text("mid")?;
        let peer = PeerId::parse(&text("peer")?)?;
        let layer = match text("layer")?.as_str() {
            "h" => Layer::High,
            "l" => Layer::Low,
            _ => {
                return Err(DecodeError::SenderSentInvalidView(
                    "a layer other than h or l",
                ));
            }
        };
        if !(1..=16).contains(&mid.len()) || !mid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DecodeError::SenderSentInvalidView(
                "a mid that is not 1 to 16 letters and digits",
            ));
        }
        if !item.is_empty() {
            return Err(DecodeError::SenderSentInvalidView(
                "a slot with another field",
            ));
        }
        Ok(Self { mid, peer, layer })
    }
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
    sdp: Option<String>,
    slots: Option<Vec<serde_json::Value>>,
}

impl RawClientMessage {
    /// The names of the fields present (a JSON `null` counts as absent).
    fn present(&self) -> impl Iterator<Item = &'static str> {
        [
            ("room", self.room.is_some()),
            ("max", self.max.is_some()),
            ("to", self.to.is_some()),
            ("data", self.data.is_some()),
            ("epoch", self.epoch.is_some()),
            ("welcome", self.welcome.is_some()),
            ("refused", self.refused.is_some()),
            ("sdp", self.sdp.is_some()),
            ("slots", self.slots.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
    }
}

fn required<T>(field: Option<T>, name: &'static str) -> Result<T, DecodeError> {
    field.ok_or(DecodeError::SenderOmittedField(name))
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
        let fields: &[&str] = match raw.kind.as_str() {
            "join" => &["room", "max"],
            "signal" => &["to", "data"],
            "leave" => &[],
            "key-package" => &["data"],
            "commit" => &["epoch", "data", "welcome", "refused"],
            "group-message" => &["epoch", "data"],
            "sfu-offer" => &["sdp"],
            "sfu-view" => &["slots"],
            _ => return Err(DecodeError::SenderSentUnknownType),
        };
        if let Some(extra) = raw.present().find(|f| !fields.contains(f)) {
            return Err(DecodeError::SenderAddedField(extra));
        }
        let epoch = || match required(raw.epoch, "epoch")? {
            e if e <= MAX_EPOCH => Ok(e),
            _ => Err(DecodeError::SenderSentInvalidEpoch),
        };
        let data = || Payload::parse(required(raw.data.clone(), "data")?);
        Ok(match raw.kind.as_str() {
            "join" => Self::Join {
                room: RoomId::parse(&required(raw.room, "room")?)?,
                max: raw.max.map(GroupSize::new).transpose()?,
            },
            "signal" => Self::Signal {
                to: PeerId::parse(&required(raw.to, "to")?)?,
                data: data()?,
            },
            "key-package" => Self::KeyPackage { data: data()? },
            "commit" => Self::Commit {
                epoch: epoch()?,
                data: data()?,
                welcome: raw.welcome.map(Payload::parse).transpose()?,
                refused: raw
                    .refused
                    .unwrap_or_default()
                    .iter()
                    .map(|p| PeerId::parse(p))
                    .collect::<Result<_, _>>()?,
            },
            "group-message" => Self::GroupMessage {
                epoch: epoch()?,
                data: data()?,
            },
            "sfu-offer" => match required(raw.sdp, "sdp")? {
                sdp if sdp.is_empty() => return Err(DecodeError::SenderSentInvalidSdp),
                sdp => Self::SfuOffer { sdp },
            },
            "sfu-view" => Self::SfuView {
                slots: required(raw.slots, "slots")?
                    .into_iter()
                    .map(ViewSlot::decode)
                    .collect::<Result<_, _>>()?,
            },
            _ => Self::Leave,
        })
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
            ClientMessage::SfuOffer {
                sdp: "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n\"quoted\"".into(),
            },
            ClientMessage::SfuView {
                slots: vec![ViewSlot {
                    mid: "video1".into(),
                    peer: PeerId::parse(PEER).unwrap(),
                    layer: Layer::Low,
                }],
            },
        ] {
            assert_eq!(ClientMessage::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn sfu_messages_decode_as_documented_and_a_bad_slot_is_refused() {
        let view = |slots: &str| {
            ClientMessage::decode(&format!(r#"{{"type":"sfu-view","slots":{slots}}}"#))
        };
        assert_eq!(
            view(&format!(r#"[{{"mid":"3","peer":"{PEER}","layer":"h"}}]"#)),
            Ok(ClientMessage::SfuView {
                slots: vec![ViewSlot {
                    mid: "3".into(),
                    peer: PeerId::parse(PEER).unwrap(),
                    layer: Layer::High
                }]
            })
        );
        assert_eq!(view("[]"), Ok(ClientMessage::SfuView { slots: vec![] }));
        for bad in [
            format!(r#"[{{"mid":"","peer":"{PEER}","layer":"h"}}]"#),
            format!(r#"[{{"mid":"a-b","peer":"{PEER}","layer":"h"}}]"#),
            format!(r#"[{{"mid":"12345678901234567","peer":"{PEER}","layer":"h"}}]"#),
            format!(r#"[{{"mid":"1","peer":"{PEER}","layer":"m"}}]"#),
            format!(r#"[{{"mid":"1","peer":"{PEER}","layer":"h","x":1}}]"#),
            format!(r#"[{{"mid":1,"peer":"{PEER}","layer":"h"}}]"#),
            r#"[{"mid":"1","peer":"nobody","layer":"h"}]"#.to_owned(),
            r#"[["1"]]"#.to_owned(),
        ] {
            assert!(view(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            ClientMessage::decode(r#"{"type":"sfu-offer","sdp":"v=0\r\n"}"#),
            Ok(ClientMessage::SfuOffer {
                sdp: "v=0\r\n".into()
            })
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"sfu-offer","sdp":""}"#),
            Err(DecodeError::SenderSentInvalidSdp)
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"sfu-offer","sdp":"v=0","data":""}"#),
            Err(DecodeError::SenderAddedField("data"))
        );
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
