//! One WebSocket connection's protocol state, sans-IO: frames and `now` in, effects out.
//!
//! The shell (`ws.rs`) reads frames, calls these methods and carries out the returned
//! [`Effect`]s; it decides nothing itself. Everything about the protocol (join, signal, leave,
//! rate limits, deadlines, keepalive) is here and is tested without a socket.
//!
//! Joining and leaving go through the room table, which may be another process's (several
//! relays share their rooms through Redis): the session asks with [`Effect::Join`] and
//! [`Effect::Leave`], and the shell hands the table's answer back ([`Session::on_joined`],
//! [`Session::on_left`]). Signals are routed with a [`Lookup`] of who is in the room.

use crate::conference::Refusal;
use crate::hub::{Joined, Left, Refused};
use sotto_proto::{ClientMessage, ErrorCode, GroupSize, IceServer, PeerId, RoomId, ServerMessage};
use std::time::{Duration, Instant};

/// The per-connection limits a session enforces.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Close a connection that has not joined a room by then.
    pub join_timeout: Duration,
    /// Ping a connection that has been silent this long.
    pub ping_interval: Duration,
    /// Drop a connection that has not answered a ping by then.
    pub pong_timeout: Duration,
    /// Sustained messages per second.
    pub rate_per_sec: f64,
    /// Messages allowed in a burst; also the abuse score (refused messages, forgiven at
    /// `rate_per_sec`) that closes the connection.
    pub burst: u32,
    /// The largest message, in bytes (for the error text only: the shell enforces it).
    pub max_message_bytes: usize,
}

/// WebSocket close codes the relay uses (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCode {
    /// 1000: the client left.
    Normal = 1000,
    /// 1001: the relay is shutting down, or the peer stopped answering.
    GoingAway = 1001,
    /// 1008: the client broke a rule (room full, rate limit, join deadline).
    Policy = 1008,
    /// 1009: the client sent a message over the size limit.
    TooBig = 1009,
    /// 1013: try again later (the rooms this relay shares with others cannot be reached).
    TryAgainLater = 1013,
}

/// Who is in a room, for routing a signal: the handle of `to` when `to` is in `room` and is
/// not `from` itself.
pub(crate) trait Lookup<H> {
    fn find_other(&self, room: &RoomId, from: &PeerId, to: &PeerId) -> Option<H>;
}

/// What the shell must do after an input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect<H> {
    /// Send this message to this connection's own client.
    Reply(ServerMessage),
    /// Send this message to another connection.
    Deliver(H, ServerMessage),
    /// Send a WebSocket ping to this connection's client.
    Ping,
    /// Send a close frame and end the connection.
    Close(CloseCode, &'static str),
    /// Ask the room table to add this connection to `room` (made with capacity `max`, or 2,
    /// if it is new); its answer goes to [`Session::on_joined`].
    Join {
        room: RoomId,
        max: Option<GroupSize>,
        /// How the others reach this connection.
        handle: H,
    },
    /// Ask the room table to remove this connection from `room`; the peers still there go to
    /// [`Session::on_left`].
    Leave { room: RoomId },
    /// Hand a conference message (`key-package`, `commit`, `group-message`) to `room`'s
    /// delivery service; its answer goes to [`Session::on_conference`].
    Conference { room: RoomId, msg: ClientMessage },
    /// Hand a conference member's `sfu-offer` or `sfu-view` to the SFU; its answer goes to
    /// [`Session::on_sfu`].
    Sfu { room: RoomId, msg: ClientMessage },
}

/// A conference member's share of the rate limit: the relay, not the member, sends its
/// messages to everyone, so it needs no share per other person (PROTOCOL.md §2).
const CONFERENCE_SHARES: f64 = 4.0;

/// A token bucket: `burst` tokens, refilled at `rate` per second, one taken per message.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32, now: Instant) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// `factor` times the rate and the burst, from now on (the tokens in hand too).
    fn widen(&mut self, factor: f64) {
        self.rate *= factor;
        self.burst *= factor;
        self.tokens *= factor;
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Liveness: ping after `interval` of silence, give up `timeout` after an unanswered ping.
#[derive(Debug)]
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

enum Liveness {
    Fine,
    PingNow,
    Dead,
}

impl Keepalive {
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    fn deadline(&self) -> Instant {
        match self.ping_sent {
            None => self.last_heard + self.interval,
            Some(sent) => sent + self.timeout,
        }
    }

    fn poll(&mut self, now: Instant) -> Liveness {
        if now < self.deadline() {
            Liveness::Fine
        } else if self.ping_sent.is_none() {
            self.ping_sent = Some(now);
            Liveness::PingNow
        } else {
            Liveness::Dead
        }
    }
}

/// The abuse score: +1 per refused message, forgiven at the sustained rate. It reaches the
/// burst only when a client keeps sending at more than twice the rate; a client that is
/// briefly over the limit is refused messages but stays connected.
#[derive(Debug)]
struct Abuse {
    score: f64,
    at: Instant,
}

impl Abuse {
    fn refused(&mut self, now: Instant, forgive_per_sec: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.score = (self.score - elapsed * forgive_per_sec).max(0.0) + 1.0;
        self.at = now;
        self.score
    }
}

/// What a connection is waiting for.
#[derive(Debug)]
enum State {
    /// Connected; waits for `join` until the deadline.
    AwaitingJoin { deadline: Instant },
    /// Sent `join` on to the room table; waits for its answer.
    AwaitingRoom {
        room: RoomId,
        max: Option<GroupSize>,
    },
    /// In a room; relays signals until `leave` or disconnect.
    InRoom { room: RoomId },
    /// A close was decided; no further input is acted on. `joining`: the room a join was
    /// still being answered for, whose place is given back if the answer gives one.
    Closing { joining: Option<RoomId> },
}

/// The protocol state of one connection. `H` is how other connections reach this one.
#[derive(Debug)]
pub(crate) struct Session<H> {
    peer: PeerId,
    handle: H,
    ice: Vec<IceServer>,
    limits: Limits,
    state: State,
    bucket: TokenBucket,
    /// How many times the configured rate and burst this connection gets: one share for each
    /// other person its room can hold (a group's member sets up a pair with each).
    shares: f64,
    /// Its room is a conference (the SFU serves it).
    conference: bool,
    abuse: Abuse,
    keepalive: Keepalive,
}

impl<H: Clone> Session<H> {
    /// A fresh connection with id `peer`, reachable through `handle`, that will be offered
    /// these ICE servers when it joins.
    pub(crate) fn new(
        peer: PeerId,
        handle: H,
        ice: Vec<IceServer>,
        limits: Limits,
        now: Instant,
    ) -> Self {
        Self {
            peer,
            handle,
            ice,
            state: State::AwaitingJoin {
                deadline: now + limits.join_timeout,
            },
            bucket: TokenBucket::new(limits.rate_per_sec, limits.burst, now),
            shares: 1.0,
            conference: false,
            abuse: Abuse {
                score: 0.0,
                at: now,
            },
            keepalive: Keepalive {
                interval: limits.ping_interval,
                timeout: limits.pong_timeout,
                last_heard: now,
                ping_sent: None,
            },
            limits,
        }
    }

    /// This connection's peer id.
    pub(crate) fn peer(&self) -> &PeerId {
        &self.peer
    }

    /// The room this connection is in, if any.
    pub(crate) fn room(&self) -> Option<&RoomId> {
        match &self.state {
            State::InRoom { room } => Some(room),
            _ => None,
        }
    }

    /// True once the session decided to close; the shell stops reading.
    pub(crate) fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing { .. })
    }

    /// When [`Session::on_timer`] must run next.
    pub(crate) fn next_deadline(&self) -> Instant {
        let keepalive = self.keepalive.deadline();
        match self.state {
            State::AwaitingJoin { deadline } => deadline.min(keepalive),
            _ => keepalive,
        }
    }

    /// A pong or any other sign of life from the client.
    pub(crate) fn on_heard(&mut self, now: Instant) {
        self.keepalive.heard(now);
    }

    /// A text frame from the client.
    pub(crate) fn on_text(
        &mut self,
        text: &str,
        now: Instant,
        rooms: &impl Lookup<H>,
        out: &mut Vec<Effect<H>>,
    ) {
        self.keepalive.heard(now);
        if self.is_closing() {
            return;
        }
        if !self.bucket.take(now) {
            let abuse = self
                .abuse
                .refused(now, self.limits.rate_per_sec * self.shares)
                >= f64::from(self.limits.burst) * self.shares;
            let message = if abuse {
                "sustained sending over the rate limit: closing"
            } else {
                "too many messages: this one was dropped"
            };
            out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::RateLimited,
                message,
            )));
            if abuse {
                self.close(CloseCode::Policy, "rate limit", out);
            }
            return;
        }
        match ClientMessage::decode(text) {
            Ok(msg) => self.on_message(msg, rooms, out),
            Err(e) => out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::BadMessage,
                e.to_string(),
            ))),
        }
    }

    /// A binary frame: the protocol is JSON text only. The message is refused, the connection
    /// stays usable.
    pub(crate) fn on_binary(&mut self, now: Instant, out: &mut Vec<Effect<H>>) {
        self.keepalive.heard(now);
        if !self.is_closing() {
            out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::BadMessage,
                "binary frames are not part of the protocol; send JSON text",
            )));
        }
    }

    /// The client sent a message over the size limit: its bytes were not read, the framing is
    /// lost, so the connection must close.
    pub(crate) fn on_too_large(&mut self, out: &mut Vec<Effect<H>>) {
        if self.is_closing() {
            return;
        }
        out.push(Effect::Reply(ServerMessage::error(
            ErrorCode::TooLarge,
            format!(
                "messages are limited to {} bytes: closing",
                self.limits.max_message_bytes
            ),
        )));
        self.close(CloseCode::TooBig, "message too large", out);
    }

    /// The time given by [`Session::next_deadline`] has come.
    pub(crate) fn on_timer(&mut self, now: Instant, out: &mut Vec<Effect<H>>) {
        if self.is_closing() {
            return;
        }
        if let State::AwaitingJoin { deadline } = self.state
            && now >= deadline
        {
            out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::JoinTimeout,
                format!(
                    "no join within {} ms of connecting: closing",
                    self.limits.join_timeout.as_millis()
                ),
            )));
            self.close(CloseCode::Policy, "join timeout", out);
            return;
        }
        match self.keepalive.poll(now) {
            Liveness::Fine => {}
            Liveness::PingNow => out.push(Effect::Ping),
            Liveness::Dead => self.close(CloseCode::GoingAway, "keepalive timeout", out),
        }
    }

    /// The connection is gone (closed by either side, or failed). Tells the room.
    pub(crate) fn on_closed(&mut self, out: &mut Vec<Effect<H>>) {
        self.stop(out);
    }

    /// The relay can no longer keep this connection in its room (it lost the room store it
    /// shares with other relays): the client is told to come back later.
    pub(crate) fn on_rooms_lost(&mut self, out: &mut Vec<Effect<H>>) {
        if self.is_closing() {
            return;
        }
        out.push(Effect::Reply(ServerMessage::error(
            ErrorCode::Unavailable,
            "this relay lost the room store it shares with other relays; reconnect: closing",
        )));
        self.close(CloseCode::TryAgainLater, "rooms unavailable", out);
    }

    /// The room table's answer to [`Effect::Join`].
    pub(crate) fn on_joined(
        &mut self,
        result: Result<Joined<H>, Refused>,
        out: &mut Vec<Effect<H>>,
    ) {
        let (room, max) = match &mut self.state {
            State::AwaitingRoom { room, max } => (room.clone(), *max),
            // Closed while the table answered: a place it gave is given back.
            State::Closing { joining } => {
                if let (Ok(_), Some(room)) = (&result, joining.take()) {
                    out.push(Effect::Leave { room });
                }
                return;
            }
            _ => return,
        };
        match result {
            Ok(Joined { before, capacity }) => {
                for (_, handle) in &before {
                    out.push(Effect::Deliver(
                        handle.clone(),
                        ServerMessage::PeerJoined {
                            peer: self.peer.clone(),
                        },
                    ));
                }
                out.push(Effect::Reply(ServerMessage::Welcome {
                    you: self.peer.clone(),
                    peers: before.into_iter().map(|(id, _)| id).collect(),
                    ice: self.ice.clone(),
                    max: capacity,
                }));
                // Signals go to each other person: the budget is per other person, but for a
                // conference, where the relay does the fanning out.
                self.conference = capacity > GroupSize::MESH_MAX;
                self.shares = if self.conference {
                    CONFERENCE_SHARES
                } else {
                    f64::from(capacity.saturating_sub(1).max(1))
                };
                self.bucket.widen(self.shares);
                self.state = State::InRoom { room };
            }
            Err(Refused::RoomFull) => {
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::RoomFull,
                    "this call already has all its participants: closing",
                )));
                self.close(CloseCode::Policy, "room full", out);
            }
            Err(Refused::GroupTooLarge { limit }) => {
                let asked = max.map_or(0, |m| m.get());
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::GroupTooLarge,
                    format!(
                        "this link asks for a group of {asked}; this relay allows at most \
                         {limit} people in a call: closing"
                    ),
                )));
                self.close(CloseCode::Policy, "group too large", out);
            }
            Err(Refused::Unavailable) => {
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::Unavailable,
                    "this relay cannot reach the room store it shares with other relays; try \
                     again shortly: closing",
                )));
                self.close(CloseCode::TryAgainLater, "rooms unavailable", out);
            }
        }
    }

    /// The room table's answer to [`Effect::Leave`]: the peers still in the room, to be told,
    /// then what a conference's delivery service sends because of it.
    pub(crate) fn on_left(&mut self, left: Left<H>, out: &mut Vec<Effect<H>>) {
        for handle in left.remaining {
            out.push(Effect::Deliver(
                handle,
                ServerMessage::PeerLeft {
                    peer: self.peer.clone(),
                },
            ));
        }
        out.extend(left.sends.into_iter().map(|(h, m)| Effect::Deliver(h, m)));
    }

    /// The SFU's answer to [`Effect::Sfu`]: an SDP answer to send, nothing (a view was
    /// taken), or why it refused (the connection stays).
    pub(crate) fn on_sfu(
        &mut self,
        result: Result<Option<String>, String>,
        out: &mut Vec<Effect<H>>,
    ) {
        match result {
            Ok(Some(sdp)) => out.push(Effect::Reply(ServerMessage::SfuAnswer { sdp })),
            Ok(None) => {}
            Err(why) => out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::BadMessage,
                why,
            ))),
        }
    }

    /// The delivery service's answer to [`Effect::Conference`]: what it sends, or why it
    /// refused the message (the connection stays).
    pub(crate) fn on_conference(
        &mut self,
        result: Result<Vec<(H, ServerMessage)>, Refusal>,
        out: &mut Vec<Effect<H>>,
    ) {
        match result {
            Ok(sends) => out.extend(sends.into_iter().map(|(h, m)| Effect::Deliver(h, m))),
            Err(refusal) => out.push(Effect::Reply(refusal.message())),
        }
    }

    fn on_message(&mut self, msg: ClientMessage, rooms: &impl Lookup<H>, out: &mut Vec<Effect<H>>) {
        match (&self.state, msg) {
            (State::AwaitingJoin { .. }, ClientMessage::Join { room, max }) => {
                self.state = State::AwaitingRoom {
                    room: room.clone(),
                    max,
                };
                out.push(Effect::Join {
                    room,
                    max,
                    handle: self.handle.clone(),
                });
            }
            (State::AwaitingRoom { .. }, ClientMessage::Join { .. }) => {
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::AlreadyJoined,
                    "this connection is already joining a room",
                )));
            }
            (State::InRoom { .. }, ClientMessage::Join { .. }) => {
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::AlreadyJoined,
                    "this connection is already in a room",
                )));
            }
            (State::InRoom { room }, ClientMessage::Signal { to, data }) => {
                match rooms.find_other(room, &self.peer, &to) {
                    Some(handle) => out.push(Effect::Deliver(
                        handle,
                        ServerMessage::Signal {
                            from: self.peer.clone(),
                            data,
                        },
                    )),
                    None => out.push(Effect::Reply(ServerMessage::error(
                        ErrorCode::UnknownPeer,
                        "no such peer in your room",
                    ))),
                }
            }
            (
                State::InRoom { room },
                msg @ (ClientMessage::KeyPackage { .. }
                | ClientMessage::Commit { .. }
                | ClientMessage::GroupMessage { .. }),
            ) => out.push(Effect::Conference {
                room: room.clone(),
                msg,
            }),
            (
                State::InRoom { room },
                msg @ (ClientMessage::SfuOffer { .. } | ClientMessage::SfuView { .. }),
            ) => {
                if self.conference {
                    out.push(Effect::Sfu {
                        room: room.clone(),
                        msg,
                    });
                } else {
                    out.push(Effect::Reply(ServerMessage::error(
                        ErrorCode::BadMessage,
                        "the SFU carries conferences only (a link for 7 or more)",
                    )));
                }
            }
            (
                State::AwaitingJoin { .. } | State::AwaitingRoom { .. },
                ClientMessage::Signal { .. }
                | ClientMessage::KeyPackage { .. }
                | ClientMessage::Commit { .. }
                | ClientMessage::GroupMessage { .. }
                | ClientMessage::SfuOffer { .. }
                | ClientMessage::SfuView { .. },
            ) => {
                out.push(Effect::Reply(ServerMessage::error(
                    ErrorCode::NotJoined,
                    "join a room before sending signals",
                )));
            }
            (_, ClientMessage::Leave) => self.close(CloseCode::Normal, "bye", out),
            // Closing sessions return before decoding; this arm is for the compiler only.
            (State::Closing { .. }, _) => {}
            // `ClientMessage` is non-exhaustive: a variant added to the protocol but not yet
            // handled here is refused rather than silently ignored.
            (_, _) => out.push(Effect::Reply(ServerMessage::error(
                ErrorCode::BadMessage,
                "message type not accepted by this relay",
            ))),
        }
    }

    /// Stops acting on input: a room is left (a place still being answered for is given
    /// back when the answer comes).
    fn stop(&mut self, out: &mut Vec<Effect<H>>) {
        let joining = match std::mem::replace(&mut self.state, State::Closing { joining: None }) {
            State::InRoom { room } => {
                out.push(Effect::Leave { room });
                None
            }
            State::AwaitingRoom { room, .. } => Some(room),
            State::Closing { joining } => joining,
            State::AwaitingJoin { .. } => None,
        };
        self.state = State::Closing { joining };
    }

    fn close(&mut self, code: CloseCode, reason: &'static str, out: &mut Vec<Effect<H>>) {
        self.stop(out);
        out.push(Effect::Close(code, reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use sotto_proto::Payload;

    /// The shell's part, against a [`Hub`]: each join and leave goes to the table, and its
    /// answer back to the session, in place of the effect that asked.
    fn settle(s: &mut Session<u8>, hub: &mut Hub<u8>, out: &mut Vec<Effect<u8>>) {
        let mut i = 0;
        while i < out.len() {
            let mut more = Vec::new();
            match out[i].clone() {
                Effect::Join { room, max, handle } => {
                    let result = hub.join(&room, s.peer().clone(), handle, max);
                    s.on_joined(result, &mut more);
                }
                Effect::Leave { room } => {
                    let left = hub.leave(&room, s.peer(), Instant::now());
                    s.on_left(left, &mut more);
                }
                Effect::Conference { room, msg } => {
                    let result = hub.conference(&room, s.peer(), msg, Instant::now());
                    s.on_conference(result, &mut more);
                }
                _ => {
                    i += 1;
                    continue;
                }
            }
            out.splice(i..=i, more);
        }
    }

    fn text(
        s: &mut Session<u8>,
        t: &str,
        now: Instant,
        hub: &mut Hub<u8>,
        out: &mut Vec<Effect<u8>>,
    ) {
        s.on_text(t, now, hub, out);
        settle(s, hub, out);
    }

    fn timer(s: &mut Session<u8>, now: Instant, hub: &mut Hub<u8>, out: &mut Vec<Effect<u8>>) {
        s.on_timer(now, out);
        settle(s, hub, out);
    }

    fn closed(s: &mut Session<u8>, hub: &mut Hub<u8>, out: &mut Vec<Effect<u8>>) {
        s.on_closed(out);
        settle(s, hub, out);
    }

    fn limits() -> Limits {
        Limits {
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(5),
            rate_per_sec: 10.0,
            burst: 5,
            max_message_bytes: 65536,
        }
    }

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[b; 16])
    }

    fn room() -> RoomId {
        RoomId::from_bytes(&[7; 16])
    }

    fn join_text() -> String {
        ClientMessage::Join {
            room: room(),
            max: None,
        }
        .encode()
    }

    fn signal_text(to: &PeerId) -> String {
        ClientMessage::Signal {
            to: to.clone(),
            data: Payload::parse("AQID".into()).unwrap(),
        }
        .encode()
    }

    fn error_codes(out: &[Effect<u8>]) -> Vec<ErrorCode> {
        out.iter()
            .filter_map(|e| match e {
                Effect::Reply(ServerMessage::Error { code, .. }) => Some(code.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn conference_messages_go_to_the_rooms_delivery_service_and_only_in_a_conference() {
        let now = Instant::now();
        let key_package = ClientMessage::KeyPackage {
            data: Payload::parse("AQID".into()).unwrap(),
        }
        .encode();
        let mut hub = Hub::new(50);
        let mut out = Vec::new();
        // Before a join: not joined.
        let mut a = Session::new(peer(1), 1, vec![], limits(), now);
        text(&mut a, &key_package, now, &mut hub, &mut out);
        assert_eq!(error_codes(&out), [ErrorCode::NotJoined]);
        // In a one-to-one room: refused, the connection stays.
        out.clear();
        text(&mut a, &join_text(), now, &mut hub, &mut out);
        text(&mut a, &key_package, now, &mut hub, &mut out);
        assert_eq!(error_codes(&out), [ErrorCode::BadMessage]);
        assert!(!a.is_closing());
        // In a conference room: the first KeyPackage makes its sender the group's creator.
        let mut b = Session::new(peer(2), 2, vec![], limits(), now);
        out.clear();
        let join = ClientMessage::Join {
            room: RoomId::from_bytes(&[8; 16]),
            max: Some(GroupSize::new(7).unwrap()),
        };
        text(&mut b, &join.encode(), now, &mut hub, &mut out);
        out.clear();
        text(&mut b, &key_package, now, &mut hub, &mut out);
        assert_eq!(out, [Effect::Deliver(2, ServerMessage::CreateGroup)]);
        // A commit from someone never named is refused by the service, with its code.
        out.clear();
        let commit = ClientMessage::Commit {
            epoch: 3,
            data: Payload::parse("AQID".into()).unwrap(),
            welcome: None,
            refused: vec![],
        };
        text(&mut b, &commit.encode(), now, &mut hub, &mut out);
        assert_eq!(error_codes(&out), [ErrorCode::StaleEpoch]);
    }

    struct Pair {
        hub: Hub<u8>,
        a: Session<u8>,
        b: Session<u8>,
        now: Instant,
    }

    fn joined_pair() -> Pair {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let mut a = Session::new(peer(1), 1, vec![], limits(), now);
        let mut b = Session::new(peer(2), 2, vec![], limits(), now);
        let mut out = Vec::new();
        text(&mut a, &join_text(), now, &mut hub, &mut out);
        text(&mut b, &join_text(), now, &mut hub, &mut out);
        Pair { hub, a, b, now }
    }

    #[test]
    fn join_welcomes_the_newcomer_and_tells_the_room() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let ice = vec![IceServer {
            urls: vec!["stun:s".into()],
            username: None,
            credential: None,
        }];
        let mut a = Session::new(peer(1), 1u8, ice.clone(), limits(), now);
        let mut b = Session::new(peer(2), 2u8, ice.clone(), limits(), now);
        let mut out = Vec::new();
        text(&mut a, &join_text(), now, &mut hub, &mut out);
        assert_eq!(
            out,
            vec![Effect::Reply(ServerMessage::Welcome {
                you: peer(1),
                peers: vec![],
                ice: ice.clone(),
                max: 2
            })]
        );
        out.clear();
        text(&mut b, &join_text(), now, &mut hub, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::Deliver(1, ServerMessage::PeerJoined { peer: peer(2) }),
                Effect::Reply(ServerMessage::Welcome {
                    you: peer(2),
                    peers: vec![peer(1)],
                    ice,
                    max: 2
                }),
            ]
        );
        assert_eq!(b.room(), Some(&room()));
    }

    #[test]
    fn signals_are_stamped_with_the_senders_id() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        text(
            &mut p.a,
            &signal_text(&peer(2)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        assert_eq!(
            out,
            vec![Effect::Deliver(
                2,
                ServerMessage::Signal {
                    from: peer(1),
                    data: Payload::parse("AQID".into()).unwrap()
                }
            )]
        );
    }

    #[test]
    fn signal_to_a_peer_outside_the_room_is_unknown_peer() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        text(
            &mut p.a,
            &signal_text(&peer(9)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        text(
            &mut p.a,
            &signal_text(&peer(1)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        assert_eq!(
            error_codes(&out),
            vec![ErrorCode::UnknownPeer, ErrorCode::UnknownPeer]
        );
    }

    #[test]
    fn signal_before_join_is_not_joined_and_join_twice_is_already_joined() {
        let mut p = joined_pair();
        let mut lone = Session::new(peer(3), 3, vec![], limits(), p.now);
        let mut out = Vec::new();
        text(
            &mut lone,
            &signal_text(&peer(1)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        text(&mut p.a, &join_text(), p.now, &mut p.hub, &mut out);
        assert_eq!(
            error_codes(&out),
            vec![ErrorCode::NotJoined, ErrorCode::AlreadyJoined]
        );
    }

    #[test]
    fn a_third_peer_gets_room_full_and_is_closed() {
        let mut p = joined_pair();
        let mut c = Session::new(peer(3), 3, vec![], limits(), p.now);
        let mut out = Vec::new();
        text(&mut c, &join_text(), p.now, &mut p.hub, &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::RoomFull]);
        assert_eq!(
            out.last(),
            Some(&Effect::Close(CloseCode::Policy, "room full"))
        );
        assert!(c.is_closing());
    }

    #[test]
    fn a_group_room_holds_its_max_and_its_welcome_says_so() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let join = |n| {
            ClientMessage::Join {
                room: room(),
                max: Some(sotto_proto::GroupSize::new(n).unwrap()),
            }
            .encode()
        };
        let mut out = Vec::new();
        let mut sessions: Vec<_> = (1..=4)
            .map(|i| Session::new(peer(i), i, vec![], limits(), now))
            .collect();
        for s in &mut sessions {
            text(s, &join(3), now, &mut hub, &mut out);
        }
        let welcomes: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                Effect::Reply(ServerMessage::Welcome { peers, max, .. }) => {
                    Some((peers.len(), *max))
                }
                _ => None,
            })
            .collect();
        assert_eq!(welcomes, vec![(0, 3), (1, 3), (2, 3)]);
        assert_eq!(error_codes(&out), vec![ErrorCode::RoomFull]);
        assert!(sessions[3].is_closing());
    }

    #[test]
    fn a_group_above_the_relays_limit_is_refused_by_name_and_closed() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let mut s = Session::new(peer(1), 1u8, vec![], limits(), now);
        let mut out = Vec::new();
        let join = ClientMessage::Join {
            room: room(),
            max: Some(sotto_proto::GroupSize::new(8).unwrap()),
        };
        text(&mut s, &join.encode(), now, &mut hub, &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::GroupTooLarge]);
        assert!(out.iter().any(|e| matches!(e,
            Effect::Reply(ServerMessage::Error { message, .. })
                if message.contains("group of 8") && message.contains("at most 6"))));
        assert_eq!(
            out.last(),
            Some(&Effect::Close(CloseCode::Policy, "group too large"))
        );
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn bad_messages_are_refused_and_the_session_stays_usable() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        text(&mut p.a, "{not json", p.now, &mut p.hub, &mut out);
        text(&mut p.a, r#"{"type":"dance"}"#, p.now, &mut p.hub, &mut out);
        p.a.on_binary(p.now, &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::BadMessage; 3]);
        out.clear();
        text(
            &mut p.a,
            &signal_text(&peer(2)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        assert!(matches!(out[..], [Effect::Deliver(2, _)]));
    }

    #[test]
    fn leave_tells_the_room_and_closes_normally() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        text(&mut p.a, r#"{"type":"leave"}"#, p.now, &mut p.hub, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::Deliver(2, ServerMessage::PeerLeft { peer: peer(1) }),
                Effect::Close(CloseCode::Normal, "bye")
            ]
        );
        // Closing twice (the socket then ends) tells nobody a second time.
        out.clear();
        closed(&mut p.a, &mut p.hub, &mut out);
        assert_eq!(out, vec![]);
    }

    #[test]
    fn a_dropped_connection_tells_the_room() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        closed(&mut p.b, &mut p.hub, &mut out);
        assert_eq!(
            out,
            vec![Effect::Deliver(
                1,
                ServerMessage::PeerLeft { peer: peer(2) }
            )]
        );
        assert_eq!(p.hub.room_count(), 1);
    }

    #[test]
    fn messages_over_the_rate_are_refused_then_sustained_excess_closes() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        // The burst (5) was partly used by the join: 4 signals pass, then refusals begin.
        for _ in 0..4 {
            text(
                &mut p.a,
                &signal_text(&peer(2)),
                p.now,
                &mut p.hub,
                &mut out,
            );
        }
        assert!(error_codes(&out).is_empty());
        text(
            &mut p.a,
            &signal_text(&peer(2)),
            p.now,
            &mut p.hub,
            &mut out,
        );
        assert_eq!(error_codes(&out), vec![ErrorCode::RateLimited]);
        // Tokens come back with time: after 100 ms one message passes and the one refusal
        // is forgiven.
        out.clear();
        let later = p.now + Duration::from_millis(100);
        text(
            &mut p.a,
            &signal_text(&peer(2)),
            later,
            &mut p.hub,
            &mut out,
        );
        assert!(matches!(out[..], [Effect::Deliver(2, _)]));
        // Five refusals with no time to forgive them close the connection.
        out.clear();
        for _ in 0..5 {
            text(
                &mut p.a,
                &signal_text(&peer(2)),
                later,
                &mut p.hub,
                &mut out,
            );
        }
        assert_eq!(error_codes(&out), vec![ErrorCode::RateLimited; 5]);
        assert_eq!(
            out.last(),
            Some(&Effect::Close(CloseCode::Policy, "rate limit"))
        );
        assert!(out.contains(&Effect::Deliver(
            2,
            ServerMessage::PeerLeft { peer: peer(1) }
        )));
    }

    #[test]
    fn a_group_member_gets_the_rate_and_burst_once_per_other_person_its_room_holds() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let mut a = Session::new(peer(1), 1u8, vec![], limits(), now);
        let mut out = Vec::new();
        let join = ClientMessage::Join {
            room: room(),
            max: Some(sotto_proto::GroupSize::new(4).unwrap()),
        };
        text(&mut a, &join.encode(), now, &mut hub, &mut out);
        // The burst of 5 had 4 tokens left after the join; a room of 4 makes that 3 times:
        // 12 signals pass (to no one yet: refused as unknown peers, not rate-limited).
        out.clear();
        for _ in 0..12 {
            text(&mut a, &signal_text(&peer(9)), now, &mut hub, &mut out);
        }
        assert!(
            !error_codes(&out).contains(&ErrorCode::RateLimited),
            "{out:?}"
        );
        text(&mut a, &signal_text(&peer(9)), now, &mut hub, &mut out);
        assert_eq!(error_codes(&out).last(), Some(&ErrorCode::RateLimited));
        // Refilled at 3 times the rate: 100 ms give 3 messages.
        out.clear();
        let later = now + Duration::from_millis(100);
        for _ in 0..3 {
            text(&mut a, &signal_text(&peer(9)), later, &mut hub, &mut out);
        }
        assert!(
            !error_codes(&out).contains(&ErrorCode::RateLimited),
            "{out:?}"
        );
        // And it takes 15 refusals, not 5, to close it.
        out.clear();
        for _ in 0..14 {
            text(&mut a, &signal_text(&peer(9)), later, &mut hub, &mut out);
        }
        assert!(!a.is_closing());
        text(&mut a, &signal_text(&peer(9)), later, &mut hub, &mut out);
        assert!(a.is_closing());
    }

    #[test]
    fn an_unjoined_connection_is_closed_at_the_join_deadline() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let mut s = Session::new(peer(1), 1u8, vec![], limits(), now);
        assert_eq!(s.next_deadline(), now + Duration::from_secs(10));
        let mut out = Vec::new();
        timer(&mut s, now + Duration::from_secs(9), &mut hub, &mut out);
        assert!(out.is_empty());
        timer(&mut s, now + Duration::from_secs(10), &mut hub, &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::JoinTimeout]);
        assert!(s.is_closing());
    }

    #[test]
    fn keepalive_pings_after_silence_and_drops_a_peer_that_never_answers() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        let t20 = p.now + Duration::from_secs(20);
        assert_eq!(p.a.next_deadline(), t20);
        timer(&mut p.a, t20, &mut p.hub, &mut out);
        assert_eq!(out, vec![Effect::Ping]);
        assert_eq!(p.a.next_deadline(), t20 + Duration::from_secs(5));
        out.clear();
        timer(&mut p.a, t20 + Duration::from_secs(5), &mut p.hub, &mut out);
        assert_eq!(
            out,
            vec![
                Effect::Deliver(2, ServerMessage::PeerLeft { peer: peer(1) }),
                Effect::Close(CloseCode::GoingAway, "keepalive timeout")
            ]
        );
    }

    #[test]
    fn an_answered_ping_keeps_the_connection() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        let t20 = p.now + Duration::from_secs(20);
        timer(&mut p.a, t20, &mut p.hub, &mut out);
        p.a.on_heard(t20 + Duration::from_secs(1));
        out.clear();
        timer(&mut p.a, t20 + Duration::from_secs(5), &mut p.hub, &mut out);
        assert!(out.is_empty());
        assert!(!p.a.is_closing());
        assert_eq!(p.a.next_deadline(), t20 + Duration::from_secs(21));
    }

    #[test]
    fn without_the_shared_room_store_a_join_is_refused_and_a_room_is_left_to_come_back_later() {
        let now = Instant::now();
        let mut s = Session::new(peer(1), 1u8, vec![], limits(), now);
        let mut out = Vec::new();
        s.on_text(&join_text(), now, &Hub::new(6), &mut out);
        assert_eq!(
            out,
            vec![Effect::Join {
                room: room(),
                max: None,
                handle: 1
            }]
        );
        out.clear();
        s.on_joined(Err(Refused::Unavailable), &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::Unavailable]);
        assert_eq!(
            out.last(),
            Some(&Effect::Close(
                CloseCode::TryAgainLater,
                "rooms unavailable"
            ))
        );
        // In a room when the store is lost: the room is left, the client told to come back.
        let mut p = joined_pair();
        let mut out = Vec::new();
        p.a.on_rooms_lost(&mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::Unavailable]);
        assert!(out.contains(&Effect::Leave { room: room() }));
        assert!(p.a.is_closing());
    }

    #[test]
    fn a_place_given_after_the_connection_closed_is_given_back() {
        let now = Instant::now();
        let mut hub = Hub::new(6);
        let mut s = Session::new(peer(1), 1u8, vec![], limits(), now);
        let mut out = Vec::new();
        s.on_text(&join_text(), now, &hub, &mut out);
        // The client is gone before the table answered.
        s.on_closed(&mut out);
        out.clear();
        let given = hub.join(&room(), peer(1), 1, None);
        s.on_joined(given, &mut out);
        assert_eq!(out, vec![Effect::Leave { room: room() }]);
    }

    #[test]
    fn too_large_is_reported_then_closed() {
        let mut p = joined_pair();
        let mut out = Vec::new();
        p.a.on_too_large(&mut out);
        settle(&mut p.a, &mut p.hub, &mut out);
        assert_eq!(error_codes(&out), vec![ErrorCode::TooLarge]);
        assert_eq!(
            out.last(),
            Some(&Effect::Close(CloseCode::TooBig, "message too large"))
        );
    }
}
