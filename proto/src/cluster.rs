//! What relays that share their rooms (`--redis`, DESIGN §4.12) say to each other through
//! Redis: an [`Envelope`] per message one relay hands another for a peer connected to it.
//! Like everything the relay reads, it is decoded strictly: what is in Redis is trusted no more
//! than what comes from a client.

use crate::{PeerId, RoomId, ServerMessage};

/// One relay process of a cluster: 16 random bytes, base64url, fresh at each start and after
/// each loss of Redis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(PeerId);

impl NodeId {
    /// The id of these 16 bytes.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        Self(PeerId::from_bytes(bytes))
    }

    /// The id as text (22 characters of base64url).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// A node id as text; anything but 22 characters of canonical base64url is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        PeerId::parse(s).ok().map(Self)
    }
}

/// What one relay hands another for one of its peers, on that relay's channel: one line
/// `"{from node} {room} {to peer}"`, a newline, and the relay message as the peer will get it.
/// Strict: every part must be canonical, and nothing may follow the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The relay that sent it (where the sender of a `signal` is, and where a `peer-joined`
    /// newcomer is connected).
    pub from: NodeId,
    /// The room it is about.
    pub room: RoomId,
    /// The peer it is for, connected to the receiving relay.
    pub to: PeerId,
    /// What that peer is sent.
    pub msg: ServerMessage,
}

impl Envelope {
    /// The envelope as published.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {}\n{}",
            self.from.as_str(),
            self.room.as_str(),
            self.to.as_str(),
            self.msg.encode()
        )
    }

    /// An envelope as received from Redis; anything else is `None` (and counted by the
    /// caller): the relay never trusts what is in Redis more than what comes from a client.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, msg) = text.split_once('\n')?;
        let mut parts = head.split(' ');
        let (from, room, to) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let msg = ServerMessage::decode(msg).ok()??;
        let envelope = Self {
            from: NodeId::parse(from)?,
            room: RoomId::parse(room).ok()?,
            to: PeerId::parse(to).ok()?,
            msg,
        };
        // The message must be exactly what encoding it gives (no extra spaces or fields).
        (envelope.encode() == text).then_some(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            from: NodeId::from_bytes(&[1; 16]),
            room: RoomId::from_bytes(&[2; 16]),
            to: PeerId::from_bytes(&[3; 16]),
            msg: ServerMessage::PeerJoined {
                peer: PeerId::from_bytes(&[4; 16]),
            },
        }
    }

    #[test]
    fn an_envelope_round_trips_and_anything_else_is_refused() {
        let e = envelope();
        let text = e.encode();
        assert_eq!(Envelope::decode(text.as_bytes()), Some(e));
        for bad in [
            text.replacen(' ', "  ", 1),
            format!("{text} "),
            format!("x{text}"),
            text.replace('\n', " "),
            text.replacen("AQEB", "AQE!", 1),
            format!(
                "{}\n{{\"type\":\"dance\"}}",
                text.split_once('\n').unwrap().0
            ),
            String::new(),
        ] {
            assert_eq!(Envelope::decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(Envelope::decode(&[0xff, 0xfe]), None);
    }
}
