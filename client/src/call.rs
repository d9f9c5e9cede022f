//! The call, sans-IO: one state machine from "connected to the relay" to "hung up". Relay
//! messages, WebRTC events and results go in; [`Action`]s come out for the shell to carry out.
//! It decides everything about the protocol (roles, handshake, what is sealed when, when the
//! media keys exist) and does no I/O, so every rule is tested without a socket.

use crate::rtc::{Candidate, ConnectionState};
use serde::{Deserialize, Serialize};
use sotto_e2ee::{
    DataChannel, EphemeralKey, Error as E2eeError, FrameDecryptor, FrameEncryptor, Handshake,
    LinkSecret, Received, Role, SafetyCode, Stream, dtls_fingerprint,
};
use sotto_proto::{ClientMessage, ErrorCode, Payload, PeerId, ServerMessage};
use std::time::Duration;

/// The plaintext of a sealed message (PROTOCOL.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum PeerSignal {
    /// O's first sealed message.
    Offer {
        /// The offer's SDP.
        sdp: String,
    },
    /// A's first sealed message.
    Answer {
        /// The answer's SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// `candidate:...`
        candidate: String,
        /// The media section id.
        #[serde(rename = "sdpMid")]
        sdp_mid: Option<String>,
        /// The media section index.
        #[serde(rename = "sdpMLineIndex")]
        sdp_mline_index: Option<u16>,
    },
    /// No more candidates.
    EndOfCandidates,
    /// Hanging up.
    Bye,
}

impl PeerSignal {
    /// Decodes a sealed plaintext; `Ok(None)` for a `t` this version does not know (ignored).
    fn decode(bytes: &[u8]) -> Result<Option<Self>, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        match value.get("t").and_then(|t| t.as_str()) {
            Some("offer" | "answer" | "candidate" | "end-of-candidates" | "bye") => {
                serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| format!("malformed message: {e}"))
            }
            Some(_) => Ok(None),
            None => Err("no `t` field".into()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        // Plain structs of strings: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

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

/// What the shell must do.
#[derive(Debug)]
pub enum Action {
    /// Send this message to the relay.
    Relay(ClientMessage),
    /// Create the offer (O), then report it with [`Call::offer_created`].
    CreateOffer,
    /// Apply this offer and create the answer (A), then report it with
    /// [`Call::answer_created`].
    CreateAnswer(String),
    /// Apply the peer's answer (O).
    AcceptAnswer(String),
    /// Add the peer's candidate.
    AddCandidate(Candidate),
    /// The media keys exist: encrypt with the first, decrypt with the second; the data
    /// channel's messages are sealed and opened with the third.
    StartMedia(Box<FrameEncryptor>, Box<FrameDecryptor>, Box<DataChannel>),
    /// Close the peer connection and forget its media keys: the peer is gone, a new one (or
    /// the same person again) will start afresh.
    ResetPeer,
    /// Connect to the relay again after this delay, then report with
    /// [`Call::relay_connected`] or [`Call::reconnect_failed`].
    Reconnect(Duration),
    /// Tell the user (status line / JSON events).
    Notify(Notice),
    /// The call is over.
    End(Outcome),
}

/// Things the user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Joined the room; waiting for the other side.
    WaitingForPeer,
    /// The other side is here; the handshake runs.
    PeerFound(Role),
    /// The handshake gave this safety code: compare it aloud.
    SafetyCode(SafetyCode),
    /// The peer proved it holds the same keys.
    KeysConfirmed,
    /// The connection's state changed.
    Connection(ConnectionState),
    /// The relay connection was lost before the call connected: this is attempt `attempt` to
    /// reach it again, after `delay`.
    Reconnecting {
        /// 1 for the first attempt.
        attempt: u32,
        /// How long the shell waits before it.
        delay: Duration,
    },
    /// The peer left (a reload, a crash, a lost connection) without hanging up; the call waits
    /// in the room for them to come back.
    PeerLeft,
    /// The relay says the peer left while the call is connected: they may only have lost the
    /// relay, and the call goes on while media flows.
    PeerLostRelay,
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

/// What the call waits for.
enum State {
    /// The relay connection was lost before the call connected; waits for reconnection
    /// attempt `attempt` (see [`Action::Reconnect`]).
    AwaitingRelay { attempt: u32 },
    /// Connected to the relay; `join` sent; waits for `welcome`.
    /// `attempt` counts reconnections since the last `welcome` (0 on the first connection).
    AwaitingWelcome { key: EphemeralKey, attempt: u32 },
    /// Alone in the room; waits for `peer-joined`.
    AwaitingPeer { key: EphemeralKey },
    /// With a peer: the handshake, offer/answer and ICE, then the call itself.
    WithPeer(Box<Session>),
    /// Over.
    Ended,
}

struct Session {
    peer: PeerId,
    hs: Handshake,
    /// The offer's SDP (O: ours; A: the peer's), for its fingerprint.
    offer: Option<String>,
    connected: bool,
    media_started: bool,
    /// False once the relay said the peer left while the call was connected: the peer may
    /// only have lost its relay connection, so the call goes on while media flows.
    peer_on_relay: bool,
}

impl Session {
    fn new(peer: PeerId, hs: Handshake) -> Box<Self> {
        Box::new(Self {
            peer,
            hs,
            offer: None,
            connected: false,
            media_started: false,
            peer_on_relay: true,
        })
    }
}

/// One call, from joining the room to hanging up.
pub struct Call {
    secret: LinkSecret,
    keys: KeySource,
    state: State,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::AwaitingRelay { .. } => "AwaitingRelay",
            State::AwaitingWelcome { .. } => "AwaitingWelcome",
            State::AwaitingPeer { .. } => "AwaitingPeer",
            State::WithPeer(_) => "WithPeer",
            State::Ended => "Ended",
        };
        write!(f, "Call({state})")
    }
}

fn signal(to: &PeerId, bytes: &[u8]) -> Action {
    Action::Relay(ClientMessage::Signal {
        to: to.clone(),
        data: Payload::from_bytes(bytes),
    })
}

fn e2ee_outcome(e: E2eeError) -> Outcome {
    match e {
        E2eeError::WrongLinkOrTamperedRelay => Outcome::WrongLinkOrTamperedRelay,
        other => Outcome::Tampered(other.to_string()),
    }
}

impl Call {
    /// A call on `secret`'s room, on a connected relay; `keys` gives a fresh key for each
    /// handshake. Returns the `join` to send.
    pub fn new(secret: LinkSecret, keys: KeySource) -> (Self, Vec<Action>) {
        let mut call = Self {
            secret,
            keys,
            state: State::Ended,
        };
        let mut out = Vec::new();
        call.join(0, &mut out);
        (call, out)
    }

    /// Joins the room with a fresh key.
    fn join(&mut self, attempt: u32, out: &mut Vec<Action>) {
        match (self.keys)() {
            Ok(key) => {
                self.state = State::AwaitingWelcome { key, attempt };
                out.push(Action::Relay(ClientMessage::Join {
                    room: sotto_proto::RoomId::from_bytes(self.secret.room_id().as_bytes()),
                    max: None,
                }));
            }
            Err(e) => self.end(Outcome::LocalFailure(e.to_string()), out),
        }
    }

    /// The peer is gone without hanging up: the call forgets it and waits for someone to join,
    /// with a fresh key (a handshake's key is never used twice).
    fn peer_gone(&mut self, out: &mut Vec<Action>) {
        out.push(Action::ResetPeer);
        out.push(Action::Notify(Notice::PeerLeft));
        match (self.keys)() {
            Ok(key) => {
                self.state = State::AwaitingPeer { key };
                out.push(Action::Notify(Notice::WaitingForPeer));
            }
            Err(e) => self.end(Outcome::LocalFailure(e.to_string()), out),
        }
    }

    /// True once the call is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// True while media may flow (keys set and the connection up).
    pub fn is_connected(&self) -> bool {
        matches!(&self.state, State::WithPeer(s) if s.connected)
    }

    fn end(&mut self, outcome: Outcome, out: &mut Vec<Action>) {
        if let State::WithPeer(s) = &mut self.state
            && matches!(outcome, Outcome::HungUp)
            && s.hs.is_established()
            && let Ok(bye) = s.hs.seal(&PeerSignal::Bye.encode())
        {
            out.push(signal(&s.peer, &bye));
        }
        if !matches!(self.state, State::Ended) {
            out.push(Action::Relay(ClientMessage::Leave));
        }
        self.state = State::Ended;
        out.push(Action::End(outcome));
    }

    /// The user hangs up (Ctrl-C, end of `--duration`).
    pub fn hang_up(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_ended() {
            self.end(Outcome::HungUp, &mut out);
        }
        out
    }

    /// The relay connection ended. Once connected, media is peer to peer: the call goes on
    /// without the relay. Before that, the call tries to reach the relay again and starts
    /// over in the room (any handshake in progress is lost with the relay's peer ids).
    pub fn relay_closed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Ended | State::AwaitingRelay { .. } => {}
            State::WithPeer(ref s) if s.connected => {}
            // Closed before it let us in: the same attempt count goes on, so a relay that
            // keeps accepting and closing is given up like one that refuses.
            State::AwaitingWelcome { attempt, .. } => self.retry(attempt + 1, &mut out),
            State::WithPeer(_) => {
                out.push(Action::ResetPeer);
                self.retry(1, &mut out);
            }
            State::AwaitingPeer { .. } => self.retry(1, &mut out),
        }
        out
    }

    fn retry(&mut self, attempt: u32, out: &mut Vec<Action>) {
        if attempt > RECONNECT_ATTEMPTS {
            self.state = State::Ended;
            out.push(Action::End(Outcome::RelayLost));
            return;
        }
        let delay = reconnect_delay(attempt);
        self.state = State::AwaitingRelay { attempt };
        out.push(Action::Notify(Notice::Reconnecting { attempt, delay }));
        out.push(Action::Reconnect(delay));
    }

    /// The shell reached the relay again: join the room afresh.
    pub fn relay_connected(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if let State::AwaitingRelay { attempt } = self.state {
            self.join(attempt, &mut out);
        }
        out
    }

    /// The relay's certificate was refused on a reconnection: that is no outage to wait out
    /// (it may be someone in the way), the call ends.
    pub fn relay_untrusted(&mut self, why: String) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_ended() {
            self.end(Outcome::RelayCertificate(why), &mut out);
        }
        out
    }

    /// Starts the handshake with a peer who joined after us: we are the offerer and commit.
    fn offer_to(&mut self, peer: PeerId, key: EphemeralKey, out: &mut Vec<Action>) {
        let (hs, commit) = Handshake::offerer(&self.secret, key);
        out.push(Action::Notify(Notice::PeerFound(Role::Offerer)));
        out.push(signal(&peer, &commit));
        self.state = State::WithPeer(Session::new(peer, hs));
    }

    /// The shell could not reach the relay: try again later, or give up.
    pub fn reconnect_failed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if let State::AwaitingRelay { attempt } = self.state {
            self.retry(attempt + 1, &mut out);
        }
        out
    }

    /// A message from the relay.
    pub fn relay_message(&mut self, msg: ServerMessage) -> Vec<Action> {
        let mut out = Vec::new();
        if self.is_ended() {
            return out;
        }
        let state = std::mem::replace(&mut self.state, State::Ended);
        match (state, msg) {
            // A signal in flight to a peer who just left: expected, and harmless.
            (
                state,
                ServerMessage::Error {
                    code: ErrorCode::UnknownPeer,
                    ..
                },
            ) => {
                self.state = state;
            }
            // Back after losing the relay, whose old connection of ours it has not yet noticed
            // is gone (it holds our place until its keepalive fails): try again.
            (
                State::AwaitingWelcome { attempt, .. },
                ServerMessage::Error {
                    code: ErrorCode::RoomFull,
                    ..
                },
            ) if attempt > 0 => self.retry(attempt + 1, &mut out),
            (_, ServerMessage::Error { code, message }) => {
                self.end(Outcome::RelayError(code, message), &mut out);
            }
            (State::AwaitingWelcome { key, .. }, ServerMessage::Welcome { peers, .. }) => {
                match peers.as_slice() {
                    [] => {
                        self.state = State::AwaitingPeer { key };
                        out.push(Action::Notify(Notice::WaitingForPeer));
                    }
                    [peer] => {
                        // The peer was here first: we are the answerer and wait for COMMIT.
                        self.state = State::WithPeer(Session::new(
                            peer.clone(),
                            Handshake::answerer(&self.secret, key),
                        ));
                        out.push(Action::Notify(Notice::PeerFound(Role::Answerer)));
                    }
                    _ => self.end(
                        Outcome::ProtocolViolation(
                            "more than one peer in a one-to-one call".into(),
                        ),
                        &mut out,
                    ),
                }
            }
            (State::AwaitingPeer { key }, ServerMessage::PeerJoined { peer }) => {
                self.offer_to(peer, key, &mut out);
            }
            (State::WithPeer(mut s), ServerMessage::PeerLeft { peer }) if peer == s.peer => {
                if s.connected {
                    // Media flows peer to peer: the peer may only have lost the relay. The call
                    // goes on; it is over for them when the connection drops, or when they
                    // join again (a reload).
                    s.peer_on_relay = false;
                    self.state = State::WithPeer(s);
                    out.push(Action::Notify(Notice::PeerLostRelay));
                } else {
                    // Left without `bye` before the call connected: reloaded, crashed or lost.
                    // They may come back on the same link; the call waits for them.
                    drop(s);
                    self.peer_gone(&mut out);
                }
            }
            (State::WithPeer(s), ServerMessage::PeerJoined { peer }) if !s.peer_on_relay => {
                // The one who left the relay is back (a reload): a new handshake with them.
                drop(s);
                out.push(Action::ResetPeer);
                match (self.keys)() {
                    Ok(key) => self.offer_to(peer, key, &mut out),
                    Err(e) => self.end(Outcome::LocalFailure(e.to_string()), &mut out),
                }
            }
            (State::WithPeer(s), ServerMessage::PeerJoined { .. }) => {
                self.state = State::WithPeer(s);
                self.end(
                    Outcome::ProtocolViolation("a third peer joined a one-to-one call".into()),
                    &mut out,
                );
            }
            (State::WithPeer(mut s), ServerMessage::Signal { from, data }) if from == s.peer => {
                match s.hs.receive(&data.decode()) {
                    Ok(received) => {
                        let result = Self::on_received(&mut s, received, &mut out);
                        self.state = State::WithPeer(s);
                        if let Err(outcome) = result {
                            self.end(outcome, &mut out);
                        }
                    }
                    Err(e) => {
                        self.state = State::WithPeer(s);
                        self.end(e2ee_outcome(e), &mut out);
                    }
                }
            }
            (state, ServerMessage::Signal { .. }) => {
                self.state = state;
                self.end(
                    Outcome::ProtocolViolation("a signal from a peer we are not talking to".into()),
                    &mut out,
                );
            }
            // Anything else (a welcome twice, peer-left of someone else, ...) changes nothing.
            (state, _) => self.state = state,
        }
        out
    }

    fn on_received(
        s: &mut Session,
        received: Received,
        out: &mut Vec<Action>,
    ) -> Result<(), Outcome> {
        match received {
            Received::Reply(bytes) => out.push(signal(&s.peer, &bytes)),
            Received::KeysReady { reply } => {
                if let Some(reveal) = reply {
                    out.push(signal(&s.peer, &reveal));
                    // O: the handshake is done on this side; make the offer.
                    out.push(Action::CreateOffer);
                }
            }
            Received::Message(plain) => {
                let first = s.offer.is_none() || (s.hs.role() == Role::Offerer && !s.media_started);
                let msg = PeerSignal::decode(&plain).map_err(Outcome::Tampered)?;
                Self::on_signal(s, msg, first, out)?;
            }
            // `Received` is non-exhaustive: a kind this version does not handle is refused.
            _ => return Err(Outcome::Tampered("unexpected handshake result".into())),
        }
        Ok(())
    }

    fn on_signal(
        s: &mut Session,
        msg: Option<PeerSignal>,
        first: bool,
        out: &mut Vec<Action>,
    ) -> Result<(), Outcome> {
        match (s.hs.role(), msg) {
            (Role::Answerer, Some(PeerSignal::Offer { sdp })) if s.offer.is_none() => {
                Self::confirmed(s, out);
                s.offer = Some(sdp.clone());
                out.push(Action::CreateAnswer(sdp));
            }
            (Role::Offerer, Some(PeerSignal::Answer { sdp })) if first => {
                Self::confirmed(s, out);
                let offer = s.offer.clone().unwrap_or_default();
                Self::start_media(s, &offer, &sdp, out)?;
                out.push(Action::AcceptAnswer(sdp));
            }
            (_, _) if first => {
                // The first sealed message must be the offer (from O) or the answer (from A).
                return Err(Outcome::Tampered(
                    "the first sealed message is not the offer/answer".into(),
                ));
            }
            (
                _,
                Some(PeerSignal::Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                }),
            ) => {
                out.push(Action::AddCandidate(Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                }));
            }
            (_, Some(PeerSignal::Bye)) => return Err(Outcome::PeerHungUp),
            (_, Some(PeerSignal::Offer { .. } | PeerSignal::Answer { .. })) => {
                return Err(Outcome::Tampered(
                    "a second offer or answer (v1 never renegotiates)".into(),
                ));
            }
            (_, Some(PeerSignal::EndOfCandidates) | None) => {}
        }
        Ok(())
    }

    /// The peer's first sealed message opened: both sides hold the same keys. Only now is
    /// the safety code shown (a wrong link never shows one).
    fn confirmed(s: &Session, out: &mut Vec<Action>) {
        out.push(Action::Notify(Notice::KeysConfirmed));
        if let Some(code) = s.hs.safety_code() {
            out.push(Action::Notify(Notice::SafetyCode(code)));
        }
    }

    fn start_media(
        s: &mut Session,
        offer: &str,
        answer: &str,
        out: &mut Vec<Action>,
    ) -> Result<(), Outcome> {
        let fp_o = dtls_fingerprint(offer)
            .ok_or_else(|| Outcome::Tampered("the offer has no DTLS fingerprint".into()))?;
        let fp_a = dtls_fingerprint(answer)
            .ok_or_else(|| Outcome::Tampered("the answer has no DTLS fingerprint".into()))?;
        let keys = s.hs.media_keys(fp_o, fp_a).map_err(e2ee_outcome)?;
        let role = s.hs.role();
        let enc = FrameEncryptor::new(keys.send, role, Stream::Audio, 0).map_err(e2ee_outcome)?;
        let dec = FrameDecryptor::new(keys.receive, role.peer(), Stream::Audio);
        let data = s.hs.data_channel(fp_o, fp_a).map_err(e2ee_outcome)?;
        s.media_started = true;
        out.push(Action::StartMedia(
            Box::new(enc),
            Box::new(dec),
            Box::new(data),
        ));
        Ok(())
    }

    fn seal_to_peer(&mut self, msg: &PeerSignal, out: &mut Vec<Action>) {
        let State::WithPeer(s) = &mut self.state else {
            return;
        };
        match s.hs.seal(&msg.encode()) {
            Ok(bytes) => out.push(signal(&s.peer, &bytes)),
            Err(e) => self.end(Outcome::Tampered(e.to_string()), out),
        }
    }

    /// O's offer exists: seal and send it.
    pub fn offer_created(&mut self, sdp: String) -> Vec<Action> {
        let mut out = Vec::new();
        if let State::WithPeer(s) = &mut self.state {
            s.offer = Some(sdp.clone());
        }
        self.seal_to_peer(&PeerSignal::Offer { sdp }, &mut out);
        out
    }

    /// A's answer exists: the media keys can be made (both fingerprints are known); then seal
    /// and send the answer.
    pub fn answer_created(&mut self, sdp: String) -> Vec<Action> {
        let mut out = Vec::new();
        let State::WithPeer(s) = &mut self.state else {
            return out;
        };
        let offer = s.offer.clone().unwrap_or_default();
        if let Err(outcome) = Self::start_media(s, &offer, &sdp, &mut out) {
            self.end(outcome, &mut out);
            return out;
        }
        self.seal_to_peer(&PeerSignal::Answer { sdp }, &mut out);
        out
    }

    /// A local candidate to trickle to the peer (sealed).
    pub fn local_candidate(&mut self, c: Candidate) -> Vec<Action> {
        let mut out = Vec::new();
        self.seal_to_peer(
            &PeerSignal::Candidate {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
            },
            &mut out,
        );
        out
    }

    /// Local gathering finished.
    pub fn gathering_complete(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.seal_to_peer(&PeerSignal::EndOfCandidates, &mut out);
        out
    }

    /// The WebRTC connection changed state.
    pub fn connection_state(&mut self, state: ConnectionState) -> Vec<Action> {
        let mut out = vec![Action::Notify(Notice::Connection(state))];
        let State::WithPeer(s) = &mut self.state else {
            return out;
        };
        match state {
            ConnectionState::Connected => s.connected = true,
            // Off the relay and now off the connection too: they are gone.
            ConnectionState::Disconnected | ConnectionState::Failed | ConnectionState::Closed
                if !s.peer_on_relay =>
            {
                self.peer_gone(&mut out);
            }
            ConnectionState::Failed => self.end(
                Outcome::ConnectionFailed(
                    "could not reach the other side directly (ICE or DTLS failed); \
                     try a TURN server (--turn) or --relay-only"
                        .into(),
                ),
                &mut out,
            ),
            _ => {}
        }
        out
    }

    /// A WebRTC operation failed.
    pub fn rtc_failed(&mut self, why: String) -> Vec<Action> {
        let mut out = Vec::new();
        self.end(Outcome::ConnectionFailed(why), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> LinkSecret {
        LinkSecret::from_bytes([1; 32])
    }

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[b; 16])
    }

    fn welcome(peers: Vec<PeerId>) -> ServerMessage {
        ServerMessage::Welcome {
            you: peer(9),
            peers,
            ice: vec![],
            max: 2,
        }
    }

    fn ended(actions: &[Action]) -> Option<&Outcome> {
        actions.iter().find_map(|a| match a {
            Action::End(o) => Some(o),
            _ => None,
        })
    }

    /// Keys 2, 3, 4, ...: each handshake gets its own.
    fn keys() -> KeySource {
        let mut next = 1u8;
        Box::new(move || {
            next += 1;
            Ok(EphemeralKey::from_bytes([next; 32]))
        })
    }

    fn commit_to(actions: &[Action], to: &PeerId) -> Option<Vec<u8>> {
        actions.iter().find_map(|x| match x {
            Action::Relay(ClientMessage::Signal { to: t, data }) if t == to => Some(data.decode()),
            _ => None,
        })
    }

    fn new_call() -> Call {
        let (call, actions) = Call::new(secret(), keys());
        assert!(matches!(
            &actions[..],
            [Action::Relay(ClientMessage::Join { .. })]
        ));
        call
    }

    #[test]
    fn the_first_in_the_room_commits_when_the_peer_arrives() {
        let mut call = new_call();
        let a = call.relay_message(welcome(vec![]));
        assert!(matches!(&a[..], [Action::Notify(Notice::WaitingForPeer)]));
        let a = call.relay_message(ServerMessage::PeerJoined { peer: peer(3) });
        let commit = commit_to(&a, &peer(3));
        assert_eq!(commit.map(|c| (c[0], c.len())), Some((0x01, 33)));
    }

    #[test]
    fn a_welcome_with_two_peers_is_a_protocol_violation() {
        let mut call = new_call();
        let a = call.relay_message(welcome(vec![peer(3), peer(4)]));
        assert!(matches!(ended(&a), Some(Outcome::ProtocolViolation(_))));
        assert!(call.is_ended());
    }

    #[test]
    fn relay_errors_end_the_call_with_their_code() {
        let mut call = new_call();
        let a = call.relay_message(ServerMessage::error(ErrorCode::RoomFull, "full"));
        assert_eq!(
            ended(&a),
            Some(&Outcome::RelayError(ErrorCode::RoomFull, "full".into()))
        );
    }

    #[test]
    fn a_failed_ice_or_dtls_connection_ends_the_call() {
        let mut call = new_call();
        call.relay_message(welcome(vec![peer(3)]));
        let a = call.connection_state(ConnectionState::Failed);
        let Some(Outcome::ConnectionFailed(why)) = ended(&a) else {
            panic!("{a:?}");
        };
        // It says what to try.
        assert!(
            why.contains("--turn") && why.contains("--relay-only"),
            "{why}"
        );
        assert!(call.is_ended());
    }

    /// A call in the room as the offerer, with peer 3; connected if asked.
    fn call_with_peer(connected: bool) -> (Call, Option<Vec<u8>>) {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        let commit = commit_to(
            &call.relay_message(ServerMessage::PeerJoined { peer: peer(3) }),
            &peer(3),
        );
        if connected {
            call.connection_state(ConnectionState::Connected);
            assert!(call.is_connected());
        }
        (call, commit)
    }

    fn waits_again(a: &[Action]) -> bool {
        matches!(
            a,
            [
                Action::ResetPeer,
                Action::Notify(Notice::PeerLeft),
                Action::Notify(Notice::WaitingForPeer)
            ]
        )
    }

    #[test]
    fn a_peer_who_leaves_before_the_call_connected_is_waited_for_with_a_fresh_key() {
        let (mut call, first) = call_with_peer(false);
        // A reload or a crash: peer-left, no bye.
        let a = call.relay_message(ServerMessage::PeerLeft { peer: peer(3) });
        assert!(waits_again(&a), "{a:?}");
        // They come back (a new peer id): a new handshake on a new key.
        let again = commit_to(
            &call.relay_message(ServerMessage::PeerJoined { peer: peer(4) }),
            &peer(4),
        );
        assert!(again.is_some() && first.is_some() && again != first);
    }

    #[test]
    fn a_connected_call_goes_on_when_the_peer_only_lost_the_relay() {
        let (mut call, _) = call_with_peer(true);
        let a = call.relay_message(ServerMessage::PeerLeft { peer: peer(3) });
        assert!(
            matches!(&a[..], [Action::Notify(Notice::PeerLostRelay)]),
            "{a:?}"
        );
        assert!(call.is_connected());
        // Their media stops too: now they are gone, and the call waits for them.
        let a = call.connection_state(ConnectionState::Disconnected);
        assert!(waits_again(&a[1..]), "{a:?}");
        assert!(!call.is_connected() && !call.is_ended());
    }

    #[test]
    fn a_peer_who_left_the_relay_and_joins_again_gets_a_new_handshake() {
        let (mut call, first) = call_with_peer(true);
        call.relay_message(ServerMessage::PeerLeft { peer: peer(3) });
        // A reload: the same person, a new peer id, while the old connection still lingers.
        let a = call.relay_message(ServerMessage::PeerJoined { peer: peer(4) });
        assert!(matches!(a.first(), Some(Action::ResetPeer)), "{a:?}");
        let again = commit_to(&a, &peer(4));
        assert!(again.is_some() && again != first);
        // While the peer is on the relay, a newcomer is still a third person.
        let a = call.relay_message(ServerMessage::PeerJoined { peer: peer(5) });
        assert!(matches!(ended(&a), Some(Outcome::ProtocolViolation(_))));
    }

    #[test]
    fn a_signal_to_a_peer_who_just_left_is_no_error() {
        let (mut call, _) = call_with_peer(false);
        call.relay_message(ServerMessage::PeerLeft { peer: peer(3) });
        let a = call.relay_message(ServerMessage::error(ErrorCode::UnknownPeer, "gone"));
        assert!(a.is_empty(), "{a:?}");
        assert!(!call.is_ended());
    }

    #[test]
    fn hanging_up_sends_leave_to_the_relay() {
        let mut call = new_call();
        call.relay_message(welcome(vec![peer(3)]));
        let a = call.hang_up();
        assert_eq!(ended(&a), Some(&Outcome::HungUp));
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Relay(ClientMessage::Leave)))
        );
    }

    #[test]
    fn signals_from_a_stranger_end_the_call() {
        let mut call = new_call();
        call.relay_message(welcome(vec![peer(3)]));
        let a = call.relay_message(ServerMessage::Signal {
            from: peer(4),
            data: Payload::from_bytes(&[1; 33]),
        });
        assert!(matches!(ended(&a), Some(Outcome::ProtocolViolation(_))));
    }

    fn reconnect_after(actions: &[Action]) -> Option<Duration> {
        actions.iter().find_map(|a| match a {
            Action::Reconnect(d) => Some(*d),
            _ => None,
        })
    }

    #[test]
    fn a_lost_relay_is_tried_again_with_backoff_and_the_room_joined_afresh() {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        let a = call.relay_closed();
        assert_eq!(reconnect_after(&a), Some(Duration::from_millis(500)));
        assert!(ended(&a).is_none());
        let mut delays = vec![];
        for _ in 0..5 {
            delays.push(
                reconnect_after(&call.reconnect_failed())
                    .unwrap()
                    .as_millis(),
            );
        }
        assert_eq!(delays, [1000, 2000, 4000, 8000, 15000]);
        let a = call.relay_connected();
        assert!(
            matches!(&a[..], [Action::Relay(ClientMessage::Join { .. })]),
            "{a:?}"
        );
        // Back in the room: the peer may be there already.
        let a = call.relay_message(welcome(vec![peer(5)]));
        assert!(matches!(
            &a[..],
            [Action::Notify(Notice::PeerFound(Role::Answerer))]
        ));
    }

    #[test]
    fn a_handshake_cut_by_the_relay_is_dropped_and_started_over() {
        let mut call = new_call();
        call.relay_message(welcome(vec![peer(3)]));
        let a = call.relay_closed();
        assert!(matches!(a.first(), Some(Action::ResetPeer)), "{a:?}");
        assert!(reconnect_after(&a).is_some());
        assert!(matches!(
            &call.relay_connected()[..],
            [Action::Relay(ClientMessage::Join { .. })]
        ));
    }

    #[test]
    fn a_full_room_after_a_reconnection_is_tried_again_but_not_on_the_first_join() {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        call.relay_closed();
        call.relay_connected();
        // The relay still holds our old connection's place.
        let a = call.relay_message(ServerMessage::error(ErrorCode::RoomFull, "full"));
        assert_eq!(reconnect_after(&a), Some(Duration::from_secs(1)));
        assert!(!call.is_ended());
        let mut first = new_call();
        let a = first.relay_message(ServerMessage::error(ErrorCode::RoomFull, "full"));
        assert!(matches!(
            ended(&a),
            Some(Outcome::RelayError(ErrorCode::RoomFull, _))
        ));
    }

    #[test]
    fn a_relay_that_closes_before_letting_us_in_is_given_up_too() {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        call.relay_closed();
        for _ in 1..RECONNECT_ATTEMPTS {
            call.relay_connected();
            assert!(reconnect_after(&call.relay_closed()).is_some());
        }
        call.relay_connected();
        assert_eq!(ended(&call.relay_closed()), Some(&Outcome::RelayLost));
    }

    #[test]
    fn a_refused_certificate_on_reconnection_ends_the_call() {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        call.relay_closed();
        let a = call.relay_untrusted("unknown issuer".into());
        assert_eq!(
            ended(&a),
            Some(&Outcome::RelayCertificate("unknown issuer".into()))
        );
    }

    #[test]
    fn the_relay_is_given_up_after_its_last_attempt() {
        let mut call = new_call();
        call.relay_message(welcome(vec![]));
        call.relay_closed();
        let mut total = Duration::ZERO;
        for _ in 1..RECONNECT_ATTEMPTS {
            total += reconnect_after(&call.reconnect_failed()).expect("another attempt");
        }
        assert!(total > Duration::from_secs(120), "{total:?}");
        assert_eq!(ended(&call.reconnect_failed()), Some(&Outcome::RelayLost));
        assert!(call.is_ended());
    }

    #[test]
    fn a_connected_call_goes_on_without_the_relay() {
        let mut call = new_call();
        call.relay_message(welcome(vec![peer(3)]));
        call.connection_state(ConnectionState::Connected);
        assert!(call.relay_closed().is_empty());
        assert!(call.is_connected());
    }

    #[test]
    fn sealed_plaintexts_follow_the_protocol_json() {
        let c = PeerSignal::Candidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        };
        assert_eq!(
            String::from_utf8(c.encode()).unwrap(),
            r#"{"t":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}"#
        );
        assert_eq!(
            String::from_utf8(PeerSignal::EndOfCandidates.encode()).unwrap(),
            r#"{"t":"end-of-candidates"}"#
        );
        assert_eq!(PeerSignal::decode(br#"{"t":"chat","text":"hi"}"#), Ok(None));
        assert_eq!(
            PeerSignal::decode(br#"{"t":"bye"}"#),
            Ok(Some(PeerSignal::Bye))
        );
        assert!(PeerSignal::decode(br#"{"t":"offer"}"#).is_err());
        assert!(PeerSignal::decode(b"\xff").is_err());
    }
}
