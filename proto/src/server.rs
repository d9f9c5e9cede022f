//! Messages the relay sends to a client.

use crate::{DecodeError, MAX_EPOCH, Payload, PeerId};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A STUN or TURN server in the shape of WebRTC's `RTCIceServer`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name (for the relay's TURN hand-out: the expiry time, in Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub username: Option<String>,
    /// TURN password (short-lived; see PROTOCOL.md, "TURN credentials").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<String>,
}

/// Leaves the credential out: it is a live TURN password.
impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The code of an `error` message (PROTOCOL.md, "Error codes").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON, unknown type, bad field: the message was ignored, the connection stays.
    BadMessage,
    /// A message over the size limit: the connection is closed.
    TooLarge,
    /// The room already holds its maximum of peers: the connection is closed.
    RoomFull,
    /// The link asks for a larger group than this relay allows (`--max-peers`): the
    /// connection is closed.
    GroupTooLarge,
    /// Too many messages: this one was dropped; sustained excess closes the connection.
    RateLimited,
    /// The recipient is not in the sender's room.
    UnknownPeer,
    /// `signal` before `join`.
    NotJoined,
    /// A second `join` on one connection.
    AlreadyJoined,
    /// The relay is at its connection limit: the connection is closed.
    ServerFull,
    /// No `join` arrived in time after connecting: the connection is closed.
    JoinTimeout,
    /// The connection stopped reading and its send queue filled up: it is closed.
    SlowConsumer,
    /// The relay shares its rooms with other relays through a store it cannot reach now: no
    /// join is taken (and joined connections are closed) until it can; try again shortly.
    Unavailable,
    /// A conference commit for an epoch that is not the group's current one (another commit
    /// won it), or a group message older than the previous epoch: dropped.
    StaleEpoch,
    /// A commit from a member the relay did not name for the current epoch: dropped.
    NotCommitter,
    /// A commit or group message from someone who is not (or no longer) in the group: dropped.
    NotMember,
    /// The member who added this conference's joiners refused this one's KeyPackage: closed.
    RefusedByGroup,
    /// A code this version does not know (sent by a newer relay).
    Other(String),
}

impl ErrorCode {
    /// Every code this version sends, for metrics.
    pub const KNOWN: [ErrorCode; 16] = [
        ErrorCode::BadMessage,
        ErrorCode::TooLarge,
        ErrorCode::RoomFull,
        ErrorCode::GroupTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::UnknownPeer,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::ServerFull,
        ErrorCode::JoinTimeout,
        ErrorCode::SlowConsumer,
        ErrorCode::Unavailable,
        ErrorCode::StaleEpoch,
        ErrorCode::NotCommitter,
        ErrorCode::NotMember,
        ErrorCode::RefusedByGroup,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BadMessage => "bad-message",
            Self::TooLarge => "too-large",
            Self::RoomFull => "room-full",
            Self::GroupTooLarge => "group-too-large",
            Self::RateLimited => "rate-limited",
            Self::UnknownPeer => "unknown-peer",
            Self::NotJoined => "not-joined",
            Self::AlreadyJoined => "already-joined",
            Self::ServerFull => "server-full",
            Self::JoinTimeout => "join-timeout",
            Self::SlowConsumer => "slow-consumer",
            Self::Unavailable => "unavailable",
            Self::StaleEpoch => "stale-epoch",
            Self::NotCommitter => "not-committer",
            Self::NotMember => "not-member",
            Self::RefusedByGroup => "refused-by-group",
            Self::Other(code) => code,
        }
    }

    /// The code for its wire text; unknown texts become [`ErrorCode::Other`].
    pub fn from_wire(s: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or_else(|| Self::Other(s.to_owned()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One message from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The answer to `join`: your id, who is already in the room, and ICE servers to use.
    Welcome {
        /// The id the relay gave this connection.
        you: PeerId,
        /// The peers already in the room, oldest first.
        peers: Vec<PeerId>,
        /// STUN/TURN servers; empty when the relay has none configured.
        ice: Vec<IceServer>,
        /// How many people the room holds: 2 for a one-to-one call, or its group size.
        max: u8,
    },
    /// Another peer entered the room.
    PeerJoined {
        /// The newcomer.
        peer: PeerId,
    },
    /// A peer left the room (hung up, disconnected or was dropped).
    PeerLeft {
        /// The peer that left.
        peer: PeerId,
    },
    /// Opaque bytes from a peer of the room; `from` is stamped by the relay.
    Signal {
        /// The sender, as the relay knows it.
        from: PeerId,
        /// The sender's bytes, unchanged.
        data: Payload,
    },
    /// Something went wrong; see [`ErrorCode`] for what happens to the connection.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
    },
    /// Conference (PROTOCOL.md §7.5): no group exists yet; create it (epoch 0).
    CreateGroup,
    /// Conference: commit, in `epoch`, these joiners in and these members out.
    CommitTask {
        /// The epoch the commit is for.
        epoch: u64,
        /// The joiners, in the order they asked, with their sealed KeyPackages.
        add: Vec<KeyPackageFrom>,
        /// The members who left the room.
        remove: Vec<PeerId>,
    },
    /// Conference: the commit that won `epoch`, made by `from` (sent to every member, its
    /// maker included).
    Commit {
        /// The committer.
        from: PeerId,
        /// The epoch it was made in.
        epoch: u64,
        /// The sealed commit.
        data: Payload,
    },
    /// Conference: the Welcome that puts this joiner in the group at `epoch`.
    GroupWelcome {
        /// The committer.
        from: PeerId,
        /// The epoch it puts the joiner in.
        epoch: u64,
        /// The sealed Welcome.
        data: Payload,
    },
    /// Conference: the SFU's answer to this member's `sfu-offer` (PROTOCOL.md §7.7).
    SfuAnswer {
        /// The SDP answer.
        sdp: String,
    },
    /// Conference: an application message from another member.
    GroupMessage {
        /// The sender.
        from: PeerId,
        /// The epoch it was sent in.
        epoch: u64,
        /// The sealed message.
        data: Payload,
    },
}

/// A joiner's sealed KeyPackage in a `commit-task`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPackageFrom {
    /// The joiner.
    pub peer: PeerId,
    /// Its sealed KeyPackage (kind 1).
    pub data: Payload,
}

impl KeyPackageFrom {
    /// One item of `add`: a JSON object whose `peer` is a peer id and `data` canonical
    /// base64url (other fields ignored). serde would also take a JSON array for a struct, which
    /// the browser's reader does not: hence this by hand.
    fn decode(item: serde_json::Value) -> Result<Self, DecodeError> {
        let serde_json::Value::Object(mut item) = item else {
            return Err(DecodeError::SenderSentMalformedJson(
                "an `add` item is not an object".into(),
            ));
        };
        let mut text = |name: &'static str| match item.remove(name) {
            Some(serde_json::Value::String(s)) => Ok(s),
            None | Some(serde_json::Value::Null) => Err(DecodeError::SenderOmittedField(name)),
            Some(_) => Err(DecodeError::SenderSentMalformedJson(format!(
                "`{name}` in `add` is not a string"
            ))),
        };
        let peer = PeerId::parse(&text("peer")?)?;
        let data = Payload::parse(text("data")?)?;
        Ok(Self { peer, data })
    }
}

/// Every field any server message may carry. Unknown fields are ignored: a newer relay may add
/// some, and a client must keep working.
#[derive(Deserialize)]
struct RawServerMessage {
    #[serde(rename = "type")]
    kind: String,
    you: Option<String>,
    peers: Option<Vec<String>>,
    ice: Option<Vec<IceServer>>,
    max: Option<u64>,
    peer: Option<String>,
    from: Option<String>,
    data: Option<String>,
    code: Option<String>,
    message: Option<String>,
    epoch: Option<u64>,
    add: Option<Vec<serde_json::Value>>,
    remove: Option<Vec<String>>,
    sdp: Option<String>,
}

fn required<T>(field: Option<T>, name: &'static str) -> Result<T, DecodeError> {
    field.ok_or(DecodeError::SenderOmittedField(name))
}

/// A conference message's epoch: present and at most [`MAX_EPOCH`].
fn epoch(field: Option<u64>) -> Result<u64, DecodeError> {
    match required(field, "epoch")? {
        e if e <= MAX_EPOCH => Ok(e),
        _ => Err(DecodeError::SenderSentInvalidEpoch),
    }
}

impl ServerMessage {
    /// Decodes one text frame from the relay. `Ok(None)` is a message type this version does
    /// not know: clients ignore those (forward compatibility).
    pub fn decode(text: &str) -> Result<Option<Self>, DecodeError> {
        let raw: RawServerMessage = serde_json::from_str(text)
            .map_err(|e| DecodeError::SenderSentMalformedJson(e.to_string()))?;
        let msg = match raw.kind.as_str() {
            "welcome" => Self::Welcome {
                you: PeerId::parse(&required(raw.you, "you")?)?,
                peers: required(raw.peers, "peers")?
                    .iter()
                    .map(|p| PeerId::parse(p))
                    .collect::<Result<_, _>>()?,
                ice: raw.ice.unwrap_or_default(),
                // A relay from before group calls sends none: its rooms hold 2.
                max: match raw.max {
                    None => crate::ONE_TO_ONE,
                    Some(n) => u8::try_from(n)
                        .ok()
                        .filter(|n| (crate::ONE_TO_ONE..=crate::GroupSize::MAX).contains(n))
                        .ok_or(DecodeError::SenderSentInvalidGroupSize)?,
                },
            },
            "peer-joined" => Self::PeerJoined {
                peer: PeerId::parse(&required(raw.peer, "peer")?)?,
            },
            "peer-left" => Self::PeerLeft {
                peer: PeerId::parse(&required(raw.peer, "peer")?)?,
            },
            "signal" => Self::Signal {
                from: PeerId::parse(&required(raw.from, "from")?)?,
                data: Payload::parse(required(raw.data, "data")?)?,
            },
            "error" => Self::Error {
                code: ErrorCode::from_wire(&required(raw.code, "code")?),
                message: raw.message.unwrap_or_default(),
            },
            "create-group" => Self::CreateGroup,
            "commit-task" => Self::CommitTask {
                epoch: epoch(raw.epoch)?,
                add: required(raw.add, "add")?
                    .into_iter()
                    .map(KeyPackageFrom::decode)
                    .collect::<Result<_, _>>()?,
                remove: required(raw.remove, "remove")?
                    .iter()
                    .map(|p| PeerId::parse(p))
                    .collect::<Result<_, _>>()?,
            },
            "commit" => Self::Commit {
                from: PeerId::parse(&required(raw.from, "from")?)?,
                epoch: epoch(raw.epoch)?,
                data: Payload::parse(required(raw.data, "data")?)?,
            },
            "group-welcome" => Self::GroupWelcome {
                from: PeerId::parse(&required(raw.from, "from")?)?,
                epoch: epoch(raw.epoch)?,
                data: Payload::parse(required(raw.data, "data")?)?,
            },
            "sfu-answer" => Self::SfuAnswer {
                sdp: required(raw.sdp, "sdp")?,
            },
            "group-message" => Self::GroupMessage {
                from: PeerId::parse(&required(raw.from, "from")?)?,
                epoch: epoch(raw.epoch)?,
                data: Payload::parse(required(raw.data, "data")?)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(msg))
    }

    /// The JSON text of this message.
    pub fn encode(&self) -> String {
        if let Self::Signal { from, data } = self {
            // The relay's hot path. Both fields are base64url, which JSON never escapes, so the
            // text is written directly; a test checks it equals serde's for every shape.
            let (from, data) = (from.as_str(), data.as_str());
            let mut text = String::with_capacity(36 + from.len() + data.len());
            for part in [
                r#"{"type":"signal","from":""#,
                from,
                r#"","data":""#,
                data,
                r#""}"#,
            ] {
                text.push_str(part);
            }
            return text;
        }
        // Serializing these plain structs of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A shorthand for an `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[b; 16])
    }

    #[test]
    fn the_direct_signal_encoding_equals_serdes() {
        for len in [0usize, 1, 2, 3, 4, 100, 1024, 4096] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let msg = ServerMessage::Signal {
                from: peer(len as u8),
                data: Payload::from_bytes(&bytes),
            };
            assert_eq!(
                msg.encode(),
                serde_json::to_string(&msg).unwrap(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn encodes_the_documented_json() {
        let welcome = ServerMessage::Welcome {
            you: peer(1),
            peers: vec![peer(2)],
            ice: vec![IceServer {
                urls: vec!["turn:t.example:3478".into()],
                username: Some("1700000000".into()),
                credential: Some("c2VjcmV0".into()),
            }],
            max: 6,
        };
        assert_eq!(
            welcome.encode(),
            r#"{"type":"welcome","you":"AQEBAQEBAQEBAQEBAQEBAQ","peers":["AgICAgICAgICAgICAgICAg"],"ice":[{"urls":["turn:t.example:3478"],"username":"1700000000","credential":"c2VjcmV0"}],"max":6}"#
        );
        assert_eq!(
            ServerMessage::error(ErrorCode::RoomFull, "room is full").encode(),
            r#"{"type":"error","code":"room-full","message":"room is full"}"#
        );
        assert_eq!(
            ServerMessage::PeerLeft { peer: peer(3) }.encode(),
            r#"{"type":"peer-left","peer":"AwMDAwMDAwMDAwMDAwMDAw"}"#
        );
    }

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            ServerMessage::Welcome {
                you: peer(1),
                peers: vec![],
                ice: vec![IceServer {
                    urls: vec!["stun:s.example".into()],
                    username: None,
                    credential: None,
                }],
                max: 2,
            },
            ServerMessage::PeerJoined { peer: peer(2) },
            ServerMessage::PeerLeft { peer: peer(2) },
            ServerMessage::Signal {
                from: peer(2),
                data: Payload::parse("AQID".into()).unwrap(),
            },
            ServerMessage::error(ErrorCode::Other("new-code".into()), "x"),
            ServerMessage::CreateGroup,
            ServerMessage::CommitTask {
                epoch: 4,
                add: vec![KeyPackageFrom {
                    peer: peer(5),
                    data: Payload::parse("AQID".into()).unwrap(),
                }],
                remove: vec![peer(6), peer(7)],
            },
            ServerMessage::CommitTask {
                epoch: 0,
                add: vec![],
                remove: vec![],
            },
            ServerMessage::Commit {
                from: peer(2),
                epoch: MAX_EPOCH,
                data: Payload::parse("AQID".into()).unwrap(),
            },
            ServerMessage::GroupWelcome {
                from: peer(2),
                epoch: 1,
                data: Payload::parse("AQID".into()).unwrap(),
            },
            ServerMessage::SfuAnswer {
                sdp: "v=0\r\na=ice-lite\r\n".into(),
            },
            ServerMessage::GroupMessage {
                from: peer(2),
                epoch: 1,
                data: Payload::parse("".into()).unwrap(),
            },
        ];
        for msg in msgs {
            assert_eq!(ServerMessage::decode(&msg.encode()), Ok(Some(msg)));
        }
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
    }

    #[test]
    fn a_welcome_without_max_is_a_room_of_two_and_a_bad_max_is_refused() {
        let welcome = |max: &str| {
            ServerMessage::decode(&format!(
                r#"{{"type":"welcome","you":"AQEBAQEBAQEBAQEBAQEBAQ","peers":[]{max}}}"#
            ))
        };
        assert!(matches!(
            welcome(""),
            Ok(Some(ServerMessage::Welcome { max: 2, .. }))
        ));
        assert!(matches!(
            welcome(r#","max":50"#),
            Ok(Some(ServerMessage::Welcome { max: 50, .. }))
        ));
        for bad in [r#","max":1"#, r#","max":51"#, r#","max":-1"#] {
            assert!(welcome(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_server_types_and_fields_are_ignored() {
        assert_eq!(
            ServerMessage::decode(r#"{"type":"announcement","text":"hi"}"#),
            Ok(None)
        );
        assert_eq!(
            ServerMessage::decode(
                r#"{"type":"peer-left","peer":"AwMDAwMDAwMDAwMDAwMDAw","why":"x"}"#
            ),
            Ok(Some(ServerMessage::PeerLeft { peer: peer(3) }))
        );
        assert!(
            ServerMessage::decode(r#"{"type":"signal","from":"AwMDAwMDAwMDAwMDAwMDAw"}"#).is_err()
        );
    }

    #[test]
    fn a_commit_task_takes_only_objects_with_a_peer_and_data() {
        let task = |add: &str| {
            ServerMessage::decode(&format!(
                r#"{{"type":"commit-task","epoch":1,"add":{add},"remove":[]}}"#
            ))
        };
        assert!(task(r#"[{"peer":"AwMDAwMDAwMDAwMDAwMDAw","data":"AQID","x":1}]"#).is_ok());
        for bad in [
            r#"[["AwMDAwMDAwMDAwMDAwMDAw","AQID"]]"#,
            r#"[{"peer":"AwMDAwMDAwMDAwMDAwMDAw"}]"#,
            r#"[{"peer":"AwMDAwMDAwMDAwMDAwMDAw","data":5}]"#,
            r#"[{"peer":"AwMDAwMDAwMDAwMDAwMDA","data":"AQID"}]"#,
            r#"[5]"#,
            r#"{}"#,
        ] {
            assert!(task(bad).is_err(), "{bad}");
        }
        assert!(
            ServerMessage::decode(r#"{"type":"commit-task","epoch":1,"add":[]}"#).is_err(),
            "remove is required"
        );
    }

    #[test]
    fn ice_server_debug_redacts_the_credential() {
        let s = IceServer {
            urls: vec![],
            username: Some("u".into()),
            credential: Some("hunter2".into()),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
