//! One adapter per signaling protocol: how a client joins a room, how it addresses a peer and
//! how a message is wrapped. Every adapter carries the same payload, the base64url text of
//! `size` bytes, so each server moves the same bytes; only its envelope differs.
//!
//! - Sotto (PROTOCOL.md): `GET /ws`, `join` → `welcome`, `signal {to, data}`.
//! - matchbox_server 0.15: `GET /<room>` → `{"IdAssigned":id}`; the first in the room hears
//!   `{"NewPeer":id}`; `{"Signal":{"receiver":id,"data":D}}`.
//! - PeerJS server 1.0.2: `GET /peerjs?key=peerjs&id=ID&token=T` → `{"type":"OPEN"}`; no
//!   rooms, peers address each other by the ids they chose; `{"type":"OFFER","dst":id,
//!   "payload":D}`.

use crate::BenchError;
use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, Payload, PeerId, RoomId, ServerMessage};
use std::fmt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// Sotto's relay.
    Sotto,
    /// matchbox_server 0.15.
    Matchbox,
    /// The PeerJS server 1.0.2 (`peer` on npm).
    Peerjs,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Sotto => "sotto",
            Server::Matchbox => "matchbox",
            Server::Peerjs => "peerjs",
        })
    }
}

/// A client that has joined, with the id the server knows it by.
pub struct Endpoint {
    /// Its connection.
    pub ws: Ws,
    /// How other clients address it.
    pub id: String,
}

/// Characters of a payload that hold the stamp: 9 bytes (a zero, then 8 bytes of
/// microseconds), which base64url turns into 12 characters independent of what follows.
const STAMP_CHARS: usize = 12;

/// A ready-made message to a peer; only the stamp changes between sends.
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    stamp_at: usize,
}

impl Template {
    /// The message text carrying `micros` as its stamp: one copy of the template, the one
    /// allocation a send needs (the socket's writer takes the text).
    pub fn stamped(&self, micros: u64) -> String {
        let mut text = self.text.clone();
        // The stamp's characters are base64url, ASCII: written over ASCII, the text stays UTF-8.
        let mut bytes = std::mem::take(&mut text).into_bytes();
        bytes[self.stamp_at..self.stamp_at + STAMP_CHARS].copy_from_slice(&stamp(micros));
        // Invariant: ASCII replaced ASCII in a valid UTF-8 string.
        String::from_utf8(bytes).expect("ASCII over ASCII")
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The stamp's 12 characters: base64url of a zero byte and the 8 bytes of `micros`, written
/// here without allocating (the generator must cost less than what it measures).
fn stamp(micros: u64) -> [u8; STAMP_CHARS] {
    let mut bytes = [0u8; 9];
    bytes[1..].copy_from_slice(&micros.to_be_bytes());
    let mut out = [0u8; STAMP_CHARS];
    for (group, chars) in bytes.chunks(3).zip(out.chunks_mut(4)) {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for (i, c) in chars.iter_mut().enumerate() {
            *c = BASE64URL[(n >> (18 - 6 * i) & 63) as usize];
        }
    }
    out
}

/// The payload sent by every adapter: the canonical base64url text of `size` bytes whose first
/// 9 hold a stamp (zero here) and the rest zeros.
pub fn payload(size: usize) -> String {
    Payload::from_bytes(&vec![0u8; size.max(9)])
        .as_str()
        .to_owned()
}

/// Reads the stamp back from a payload's first characters, without allocating.
pub fn read_stamp(payload: &str) -> Option<u64> {
    let head = payload.as_bytes().get(..STAMP_CHARS)?;
    let mut bytes = [0u8; 9];
    for (chars, group) in head.chunks(4).zip(bytes.chunks_mut(3)) {
        let mut n = 0u32;
        for &c in chars {
            let v = BASE64URL.iter().position(|&b| b == c)?;
            n = n << 6 | v as u32;
        }
        group.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&bytes[1..]);
    Some(u64::from_be_bytes(micros))
}

/// A stable room number → Sotto room id.
fn sotto_room(i: usize) -> RoomId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    bytes[8..].copy_from_slice(b"sottoben");
    RoomId::from_bytes(&bytes)
}

async fn connect(url: &str) -> Result<Ws, BenchError> {
    // The generator's own buffers stay small so that 20,000 of its sockets do not crowd the
    // core it shares with nothing else; writes go straight to the socket.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .map_err(|e| BenchError::Connect(format!("{url}: {e}")))?;
    Ok(ws)
}

/// The next text frame (not copied); pings are answered by tungstenite itself.
pub async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes, BenchError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(frame))) => {
                return Err(BenchError::ServerClosed(
                    frame
                        .map(|f| format!("{} {}", f.code, f.reason))
                        .unwrap_or_default(),
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(BenchError::ServerClosed(e.to_string())),
            None => return Err(BenchError::ServerClosed(String::new())),
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Result<(), BenchError> {
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| BenchError::ServerClosed(e.to_string()))
}

fn json(text: &str) -> Result<serde_json::Value, BenchError> {
    serde_json::from_str(text).map_err(|_| BenchError::Unexpected(text.chars().take(80).collect()))
}

/// Waits for a matchbox event named `kind` (`IdAssigned`, `NewPeer`) and returns its id.
async fn matchbox_event(ws: &mut Ws, kind: &str) -> Result<String, BenchError> {
    let text = next_text(ws).await?;
    json(&text)?
        .get(kind)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Unexpected(text.chars().take(80).collect()))
}

impl Server {
    /// Connects one client to room `room` (`seat` 0 or 1 of it) at `addr` (`host:port`) and
    /// waits until the server has given it an id.
    pub async fn join(&self, addr: &str, room: usize, seat: u8) -> Result<Endpoint, BenchError> {
        match self {
            Server::Sotto => {
                let mut ws = connect(&format!("ws://{addr}/ws")).await?;
                let join = ClientMessage::Join {
                    room: sotto_room(room),
                    max: None,
                };
                send_text(&mut ws, join.encode()).await?;
                let text = next_text(&mut ws).await?;
                match ServerMessage::decode(&text) {
                    Ok(Some(ServerMessage::Welcome { you, .. })) => Ok(Endpoint {
                        ws,
                        id: you.as_str().to_owned(),
                    }),
                    _ => Err(BenchError::Unexpected(text.chars().take(80).collect())),
                }
            }
            Server::Matchbox => {
                let mut ws = connect(&format!("ws://{addr}/r{room}")).await?;
                let id = matchbox_event(&mut ws, "IdAssigned").await?;
                Ok(Endpoint { ws, id })
            }
            Server::Peerjs => {
                let id = format!("r{room}s{seat}");
                let mut ws =
                    connect(&format!("ws://{addr}/peerjs?key=peerjs&id={id}&token=t")).await?;
                let text = next_text(&mut ws).await?;
                match json(&text)?.get("type").and_then(|t| t.as_str()) {
                    Some("OPEN") => Ok(Endpoint { ws, id }),
                    _ => Err(BenchError::Unexpected(text.chars().take(80).collect())),
                }
            }
        }
    }

    /// Two clients in room `room` that can address each other.
    pub async fn pair(&self, addr: &str, room: usize) -> Result<(Endpoint, Endpoint), BenchError> {
        self.pair_on(addr, addr, room).await
    }

    /// Two clients in room `room`, the first through the server at `addr`, the second through
    /// the one at `addr2` (two relays that share their rooms; the same address for one).
    pub async fn pair_on(
        &self,
        addr: &str,
        addr2: &str,
        room: usize,
    ) -> Result<(Endpoint, Endpoint), BenchError> {
        let mut a = self.join(addr, room, 0).await?;
        let b = self.join(addr2, room, 1).await?;
        // Wait until the server has told the first one about the second: only then is the
        // room complete on every server (matchbox and Sotto announce newcomers).
        match self {
            Server::Sotto => {
                let text = next_text(&mut a.ws).await?;
                let Ok(Some(ServerMessage::PeerJoined { .. })) = ServerMessage::decode(&text)
                else {
                    return Err(BenchError::Unexpected(text.chars().take(80).collect()));
                };
            }
            Server::Matchbox => {
                matchbox_event(&mut a.ws, "NewPeer").await?;
            }
            Server::Peerjs => {}
        }
        Ok((a, b))
    }

    /// A message carrying `payload` to the peer `to`.
    pub fn signal(&self, to: &str, payload: &str) -> Result<Template, BenchError> {
        let text = match self {
            Server::Sotto => ClientMessage::Signal {
                to: PeerId::parse(to).map_err(|e| BenchError::Unexpected(e.to_string()))?,
                data: Payload::parse(payload.to_owned())
                    .map_err(|e| BenchError::Unexpected(e.to_string()))?,
            }
            .encode(),
            Server::Matchbox => {
                serde_json::json!({"Signal": {"receiver": to, "data": payload}}).to_string()
            }
            Server::Peerjs => {
                serde_json::json!({"type": "OFFER", "dst": to, "payload": payload}).to_string()
            }
        };
        let stamp_at = text
            .find(payload)
            .ok_or_else(|| BenchError::Unexpected("payload not in message".into()))?;
        Ok(Template { text, stamp_at })
    }

    /// The payload of a relayed message, found without decoding the whole message (the
    /// generator must stay cheaper than the servers it loads), or `None` for anything else.
    pub fn payload_of<'a>(&self, text: &'a str) -> Option<&'a str> {
        let key = match self {
            Server::Sotto | Server::Matchbox => "\"data\":\"",
            Server::Peerjs => "\"payload\":\"",
        };
        let start = text.find(key)? + key.len();
        let len = text[start..].find('"')?;
        Some(&text[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_round_trip_through_a_payload() {
        let text = payload(1024);
        assert_eq!(text.len(), 1366);
        assert_eq!(read_stamp(&text), Some(0));
        let template = Server::Peerjs.signal("r1s1", &text).unwrap();
        let sent = template.stamped(1_234_567_890_123);
        let carried = Server::Peerjs.payload_of(&sent).unwrap();
        assert_eq!(carried.len(), text.len());
        assert_eq!(read_stamp(carried), Some(1_234_567_890_123));
    }

    #[test]
    fn the_stamp_is_the_base64url_of_its_bytes() {
        for micros in [0, 1, 63, 64, 1_234_567_890_123, u64::MAX] {
            let mut bytes = [0u8; 9];
            bytes[1..].copy_from_slice(&u64::to_be_bytes(micros));
            let canonical = Payload::from_bytes(&bytes);
            assert_eq!(
                &stamp(micros)[..],
                canonical.as_str().as_bytes(),
                "{micros}"
            );
            assert_eq!(read_stamp(canonical.as_str()), Some(micros));
        }
        assert_eq!(read_stamp("AAAAAAAAAA+A"), None, "not base64url");
        assert_eq!(read_stamp("AAAA"), None, "too short");
    }

    #[test]
    fn the_sotto_template_is_a_valid_signal_with_a_canonical_payload() {
        let to = sotto_room(7).as_str().to_owned();
        let template = Server::Sotto.signal(&to, &payload(4096)).unwrap();
        let sent = template.stamped(u64::MAX - 1);
        let Ok(ClientMessage::Signal { data, .. }) = ClientMessage::decode(&sent) else {
            panic!("not a signal: {sent}");
        };
        assert_eq!(data.decode().len(), 4096);
        assert_eq!(read_stamp(data.as_str()), Some(u64::MAX - 1));
    }

    #[test]
    fn the_payload_is_found_in_each_servers_relayed_form() {
        let p = payload(16);
        let sotto = format!(r#"{{"type":"signal","from":"x","data":"{p}"}}"#);
        let matchbox = format!(r#"{{"Signal":{{"sender":"x","data":"{p}"}}}}"#);
        let peerjs = format!(r#"{{"type":"OFFER","src":"a","dst":"b","payload":"{p}"}}"#);
        assert_eq!(Server::Sotto.payload_of(&sotto), Some(p.as_str()));
        assert_eq!(Server::Matchbox.payload_of(&matchbox), Some(p.as_str()));
        assert_eq!(Server::Peerjs.payload_of(&peerjs), Some(p.as_str()));
        assert_eq!(Server::Sotto.payload_of(r#"{"type":"peer-left"}"#), None);
    }
}
