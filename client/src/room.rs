//! The room, sans-IO: everyone this side meets on one link, each over a pair link of their own
//! (PROTOCOL.md §3, DESIGN §4.9). A one-to-one room holds one pair link; a group room one per
//! other person. Every pair runs the one-to-one protocol unchanged: its own handshake, keys,
//! safety code and peer connection, and it can end (the person left, hung up, tampered with the
//! set-up, timed out) without ending the room. Relay messages, WebRTC results and the clock go
//! in; [`Action`]s come out, each naming the peer it concerns.
//!
//! What ends a room: this side hangs up, the relay is lost for good or refuses us, or, in a
//! one-to-one room, whatever ends its one pair (the person is the call).

use crate::call::{KeySource, Outcome, RECONNECT_ATTEMPTS, reconnect_delay};
use crate::rtc::{Candidate, ConnectionState};
use sotto_e2ee::{
    DataChannel, DeviceId, DeviceKey, Error as E2eeError, FrameDecryptor, FrameEncryptor,
    Handshake, LinkSecret, Received, Role, SafetyCode, Stream, dtls_fingerprint, handshake,
};
use sotto_proto::{
    ClientMessage, ErrorCode, GroupSize, MAX_NAME, Payload, PeerId, PeerSignal, ServerMessage,
    clean_name,
};
use std::time::{Duration, Instant};

/// How long a pair has, from meeting to a working connection, before it is given up: a peer
/// that goes silent mid-handshake is dropped with a clear message instead of being waited for
/// forever. Generous: ICE through TURN on a slow network takes seconds, not tens of them.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection that worked may stay `disconnected` before it counts as dropped and is
/// made again (PROTOCOL.md §3.3 "A connection that drops"): ICE recovers from shorter
/// interruptions by itself.
pub const DROP_AFTER: Duration = Duration::from_secs(4);

/// What the shell must do.
#[derive(Debug)]
pub enum Action {
    /// Send this message to the relay.
    Relay(ClientMessage),
    /// Something for the pair with this peer (its peer connection, or the user).
    Peer(PeerId, PeerAction),
    /// Connect to the relay again after this delay, then report with
    /// [`Room::relay_connected`] or [`Room::reconnect_failed`].
    Reconnect(Duration),
    /// Tell the user something about the room.
    Notify(RoomNotice),
    /// The call is over: every pair's connection closes with it (no [`PeerAction::Close`]
    /// comes for them, so the shell keeps their last counters to report).
    End(Outcome),
}

/// What the shell does for one pair.
#[derive(Debug)]
pub enum PeerAction {
    /// Make this pair's peer connection and its offer (we are O), then report it with
    /// [`Room::offer_created`].
    CreateOffer,
    /// Make this pair's peer connection, apply the offer and create the answer (we are A),
    /// then report it with [`Room::answer_created`].
    CreateAnswer(String),
    /// Apply the peer's answer (O).
    AcceptAnswer(String),
    /// Add the peer's candidate.
    AddCandidate(Candidate),
    /// The pair's keys exist (both fingerprints are known): see [`PairKeys`].
    Keys(Box<PairKeys>),
    /// Close this pair's peer connection and forget its keys: the pair is over.
    Close,
    /// Tell the user about this person.
    Notify(PeerNotice),
}

/// A pair's keys, for the three parts of the shell they belong to: what goes out on the pair's
/// transport is sealed with `send`; what this person sends is opened with `receive` (the key
/// for a sender, not for a connection: in a conference one connection carries everyone's); and
/// the conversation with them is sealed and opened with `conversation`.
#[derive(Debug)]
pub struct PairKeys {
    /// Seals this side's frames on the pair's transport.
    pub send: FrameEncryptor,
    /// Opens the frames this person sends.
    pub receive: FrameDecryptor,
    /// Seals and opens the messages and files with this person (PROTOCOL.md §3.6).
    pub conversation: DataChannel,
}

/// What the user is told about the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNotice {
    /// In the room, with no one else: waiting for someone to join.
    WaitingForPeers,
    /// The relay connection was lost before any pair connected: this is attempt `attempt`
    /// to reach it again, after `delay`.
    Reconnecting {
        /// 1 for the first attempt.
        attempt: u32,
        /// How long the shell waits before it.
        delay: Duration,
    },
}

/// What the user is told about one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerNotice {
    /// Someone is here; the handshake with them runs, in this role.
    Found(Role),
    /// They proved they hold the same keys.
    KeysConfirmed,
    /// The safety code of this pair: compare it aloud with them.
    SafetyCode(SafetyCode),
    /// The name they gave (cleaned: no control characters); a later one replaces it.
    Name(String),
    /// Their device's key, which signed this pair's transcript (PROTOCOL.md §3.8): whether it
    /// is one this person verified before is the shell's to look up. `None`: they sent none
    /// (incognito, an older client), known once their candidates or the connection came first;
    /// an identity that still comes later is told as well.
    Identity(Option<DeviceId>),
    /// The pair's connection changed state.
    Connection(ConnectionState),
    /// The relay says they left while the pair is connected: they may only have lost the
    /// relay, and the pair goes on while media flows.
    LostRelay,
    /// The pair's connection, which worked, dropped: the pair is being made again (a new
    /// handshake, a new safety code), with them or, after a rejoin, as a newcomer.
    Dropped,
    /// The pair is over; why.
    Gone(PairEnd),
}

/// Why a pair ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairEnd {
    /// They hung up (`bye`).
    HungUp,
    /// They left without hanging up (a reload, a crash, a lost connection).
    Left,
    /// Wrong link, or the relay tampered with this pair's set-up.
    WrongLinkOrTamperedRelay,
    /// Someone between us altered the set-up (the text says how).
    Tampered(String),
    /// Their connection failed (ICE or DTLS), or a WebRTC operation for it did.
    Failed(String),
    /// The set-up did not finish within [`SETUP_TIMEOUT`].
    TimedOut,
}

impl PairEnd {
    /// What the end of a one-to-one room's only pair makes of the call.
    fn outcome(self) -> Outcome {
        match self {
            Self::HungUp | Self::Left => Outcome::PeerHungUp,
            Self::WrongLinkOrTamperedRelay => Outcome::WrongLinkOrTamperedRelay,
            Self::Tampered(why) => Outcome::Tampered(why),
            Self::Failed(why) => Outcome::ConnectionFailed(why),
            Self::TimedOut => Outcome::ConnectionFailed(format!(
                "the other side did not finish setting up the call within {} s",
                SETUP_TIMEOUT.as_secs()
            )),
        }
    }
}

impl std::fmt::Display for PairEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HungUp => f.write_str("hung up"),
            Self::Left => f.write_str("left"),
            Self::WrongLinkOrTamperedRelay => f.write_str("wrong link or tampered relay"),
            Self::Tampered(why) => write!(f, "set-up tampered with: {why}"),
            Self::Failed(why) => write!(f, "connection failed: {why}"),
            Self::TimedOut => write!(
                f,
                "did not finish setting up the call within {} s",
                SETUP_TIMEOUT.as_secs()
            ),
        }
    }
}

fn e2ee_end(e: E2eeError) -> PairEnd {
    match e {
        E2eeError::WrongLinkOrTamperedRelay => PairEnd::WrongLinkOrTamperedRelay,
        other => PairEnd::Tampered(other.to_string()),
    }
}

/// The pair with one other person.
struct Pair {
    peer: PeerId,
    hs: Handshake,
    /// The offer's SDP (O: ours; A: the peer's), for its fingerprint.
    offer: Option<String>,
    media_started: bool,
    /// The peer's device identity: waited for, known to be absent, or verified (at most one
    /// per pair).
    identity: PeerIdentity,
    /// What the pair waits for beyond the handshake's own steps.
    link: Link,
    /// A COMMIT from the peer asking for the pair to be made again (their side saw the
    /// connection drop), kept while the connection still works here (PROTOCOL.md §3.3).
    restart: Option<Vec<u8>>,
}

/// What a pair knows of the peer's device identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerIdentity {
    /// Nothing yet: it comes right after the offer or answer (and `hello`), if at all.
    Awaiting,
    /// Their candidates or the connection came first: they sent none.
    Absent,
    /// Their device key signed this pair's transcript.
    Verified(DeviceId),
}

/// Where a pair's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Handshake, offer/answer and ICE under way; given up at this instant (`None`: a pair made
    /// again after a drop, which waits as long as the peer is on the relay: they may be asleep).
    SettingUp { deadline: Option<Instant> },
    /// Media can flow; the peer is on the relay. `disconnected_since`: when ICE said
    /// `disconnected` (the connection drops [`DROP_AFTER`] later unless it recovers).
    Connected { disconnected_since: Option<Instant> },
    /// Media flows, but the relay said the peer left: the pair ends when the connection does.
    ConnectedOffRelay,
}

impl Pair {
    /// A pair; `deadline`: when its set-up is given up (`None` for one made again).
    fn new(peer: PeerId, hs: Handshake, deadline: Option<Instant>) -> Self {
        Self {
            peer,
            hs,
            offer: None,
            media_started: false,
            identity: PeerIdentity::Awaiting,
            link: Link::SettingUp { deadline },
            restart: None,
        }
    }

    fn is_connected(&self) -> bool {
        !matches!(self.link, Link::SettingUp { .. })
    }

    /// The connection works as far as this side knows: connected and not `disconnected`
    /// (or the peer is off the relay and it still carries media).
    fn is_working(&self) -> bool {
        matches!(
            self.link,
            Link::Connected {
                disconnected_since: None
            } | Link::ConnectedOffRelay
        )
    }

    /// When the pair must next be looked at: its set-up deadline, or when a `disconnected`
    /// connection counts as dropped.
    fn deadline(&self) -> Option<Instant> {
        match self.link {
            Link::SettingUp { deadline } => deadline,
            Link::Connected {
                disconnected_since: Some(since),
            } => Some(since + DROP_AFTER),
            _ => None,
        }
    }

    fn signal(&self, bytes: &[u8]) -> Action {
        Action::Relay(ClientMessage::Signal {
            to: self.peer.clone(),
            data: Payload::from_bytes(bytes),
        })
    }

    fn notify(&self, notice: PeerNotice) -> Action {
        Action::Peer(self.peer.clone(), PeerAction::Notify(notice))
    }

    fn act(&self, action: PeerAction) -> Action {
        Action::Peer(self.peer.clone(), action)
    }

    fn seal(&mut self, msg: &PeerSignal, out: &mut Vec<Action>) -> Result<(), PairEnd> {
        let bytes = self
            .hs
            .seal(&msg.encode())
            .map_err(|e| PairEnd::Tampered(e.to_string()))?;
        out.push(self.signal(&bytes));
        Ok(())
    }

    /// Bytes from this peer through the relay.
    fn receive(&mut self, bytes: &[u8], out: &mut Vec<Action>) -> Result<(), PairEnd> {
        match self.hs.receive(bytes).map_err(e2ee_end)? {
            Received::Reply(bytes) => out.push(self.signal(&bytes)),
            Received::KeysReady { reply } => {
                if let Some(reveal) = reply {
                    out.push(self.signal(&reveal));
                    // O: the handshake is done on this side; make the offer.
                    out.push(self.act(PeerAction::CreateOffer));
                }
            }
            Received::Message(plain) => {
                let first = self.offer.is_none()
                    || (self.hs.role() == Role::Offerer && !self.media_started);
                let msg =
                    PeerSignal::decode(&plain).map_err(|e| PairEnd::Tampered(e.to_string()))?;
                self.on_signal(msg, first, out)?;
            }
            // `Received` is non-exhaustive: a kind this version does not handle is refused.
            _ => return Err(PairEnd::Tampered("unexpected handshake result".into())),
        }
        Ok(())
    }

    fn on_signal(
        &mut self,
        msg: Option<PeerSignal>,
        first: bool,
        out: &mut Vec<Action>,
    ) -> Result<(), PairEnd> {
        match (self.hs.role(), msg) {
            (Role::Answerer, Some(PeerSignal::Offer { sdp })) if self.offer.is_none() => {
                self.confirmed(out);
                self.offer = Some(sdp.clone());
                out.push(self.act(PeerAction::CreateAnswer(sdp)));
            }
            (Role::Offerer, Some(PeerSignal::Answer { sdp })) if first => {
                self.confirmed(out);
                let offer = self.offer.clone().unwrap_or_default();
                self.start_media(&offer, &sdp, out)?;
                out.push(self.act(PeerAction::AcceptAnswer(sdp)));
            }
            (_, _) if first => {
                // The first sealed message must be the offer (from O) or the answer (from A).
                return Err(PairEnd::Tampered(
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
                self.no_identity_before(out);
                out.push(self.act(PeerAction::AddCandidate(Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                })));
            }
            (_, Some(PeerSignal::Bye)) => return Err(PairEnd::HungUp),
            (_, Some(PeerSignal::Identity { key, sig })) => {
                if let PeerIdentity::Verified(_) = self.identity {
                    return Err(PairEnd::Tampered("a second device identity".into()));
                }
                let id = self
                    .hs
                    .verify_identity_text(&key, &sig)
                    .map_err(|e| PairEnd::Tampered(e.to_string()))?;
                self.identity = PeerIdentity::Verified(id);
                out.push(self.notify(PeerNotice::Identity(Some(id))));
            }
            (_, Some(PeerSignal::Hello { name })) => {
                if let Some(name) = clean_name(&name) {
                    out.push(self.notify(PeerNotice::Name(name)));
                }
            }
            (_, Some(PeerSignal::Offer { .. } | PeerSignal::Answer { .. })) => {
                return Err(PairEnd::Tampered(
                    "a second offer or answer (v1 never renegotiates)".into(),
                ));
            }
            (_, Some(PeerSignal::EndOfCandidates)) => self.no_identity_before(out),
            (_, None) => {}
        }
        Ok(())
    }

    /// Their candidates (or the connection) came while their identity was still awaited: they
    /// sent none, since it comes before them (PROTOCOL.md §3.8).
    fn no_identity_before(&mut self, out: &mut Vec<Action>) {
        if self.identity == PeerIdentity::Awaiting {
            self.identity = PeerIdentity::Absent;
            out.push(self.notify(PeerNotice::Identity(None)));
        }
    }

    /// The peer's first sealed message opened: both sides hold the same keys. Only now is the
    /// safety code shown (a wrong link never shows one).
    fn confirmed(&self, out: &mut Vec<Action>) {
        out.push(self.notify(PeerNotice::KeysConfirmed));
        if let Some(code) = self.hs.safety_code() {
            out.push(self.notify(PeerNotice::SafetyCode(code)));
        }
    }

    fn start_media(
        &mut self,
        offer: &str,
        answer: &str,
        out: &mut Vec<Action>,
    ) -> Result<(), PairEnd> {
        let fp_o = dtls_fingerprint(offer)
            .ok_or_else(|| PairEnd::Tampered("the offer has no DTLS fingerprint".into()))?;
        let fp_a = dtls_fingerprint(answer)
            .ok_or_else(|| PairEnd::Tampered("the answer has no DTLS fingerprint".into()))?;
        let keys = self.hs.media_keys(fp_o, fp_a).map_err(e2ee_end)?;
        let role = self.hs.role();
        let send = FrameEncryptor::new(keys.send, role, Stream::Audio, 0).map_err(e2ee_end)?;
        let receive = FrameDecryptor::new(keys.receive, role.peer(), Stream::Audio);
        let conversation = self.hs.data_channel(fp_o, fp_a).map_err(e2ee_end)?;
        self.media_started = true;
        out.push(self.act(PeerAction::Keys(Box::new(PairKeys {
            send,
            receive,
            conversation,
        }))));
        Ok(())
    }
}

/// What the room waits for.
enum State {
    /// The relay connection was lost while no pair was connected; waits for reconnection
    /// attempt `attempt` (see [`Action::Reconnect`]).
    AwaitingRelay { attempt: u32 },
    /// Connected to the relay; `join` sent; waits for `welcome`. `attempt` counts
    /// reconnections since the last `welcome` (0 on the first connection).
    AwaitingWelcome { attempt: u32 },
    /// In the room, with a pair for each other person (none while alone), oldest first.
    /// `on_relay`: false once the relay connection was lost while a pair was connected (the
    /// connected go on; nothing can be set up until a pair drops and the relay is reached).
    InRoom { pairs: Vec<Pair>, on_relay: bool },
    /// Over.
    Ended,
}

/// One call's room, from joining to hanging up.
pub struct Room {
    secret: LinkSecret,
    /// Sent to each person in a `hello` after the offer or answer.
    name: Option<String>,
    /// Signs each pair's transcript in an `identity` after the offer or answer (and `hello`);
    /// none in incognito.
    device: Option<DeviceKey>,
    /// `Some(N)`: a group call for up to N people; `None`: one-to-one.
    group: Option<GroupSize>,
    keys: KeySource,
    state: State,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::AwaitingRelay { .. } => "AwaitingRelay".to_owned(),
            State::AwaitingWelcome { .. } => "AwaitingWelcome".to_owned(),
            State::InRoom { pairs, .. } => format!("InRoom({} pairs)", pairs.len()),
            State::Ended => "Ended".to_owned(),
        };
        write!(f, "Room({state})")
    }
}

impl Room {
    /// A room on `secret`'s link, on a connected relay: one-to-one, or a group of up to
    /// `group` people; `keys` gives a fresh key for each pair. Returns the `join` to send.
    pub fn new(
        secret: LinkSecret,
        group: Option<GroupSize>,
        keys: KeySource,
    ) -> (Self, Vec<Action>) {
        let mut room = Self {
            secret,
            name: None,
            device: None,
            group,
            keys,
            state: State::Ended,
        };
        let mut out = Vec::new();
        room.join(0, &mut out);
        (room, out)
    }

    /// Gives each person this name (at most [`MAX_NAME`] bytes) after the offer or answer.
    pub fn with_name(mut self, name: Option<String>) -> Self {
        self.name = name.filter(|n| n.len() <= MAX_NAME);
        self
    }

    /// Signs each pair's transcript with this device key (PROTOCOL.md §3.8); `None`: incognito.
    pub fn with_device(mut self, device: Option<DeviceKey>) -> Self {
        self.device = device;
        self
    }

    /// Introduces us to `peer`: our `hello` when we have a name, then our `identity` when we
    /// have a device key.
    fn introduce_to(&mut self, peer: &PeerId, out: &mut Vec<Action>) {
        if let Some(name) = self.name.clone() {
            self.seal_to(peer, &PeerSignal::Hello { name }, out);
        }
        let identity = self.device.as_ref().and_then(|device| {
            let State::InRoom { pairs, .. } = &self.state else {
                return None;
            };
            let pair = pairs.iter().find(|p| &p.peer == peer)?;
            // The offer or answer was just sealed: the pair's keys exist.
            pair.hs.identity(device).ok()
        });
        if let Some(identity) = identity {
            let (key, sig) = identity.to_text();
            self.seal_to(peer, &PeerSignal::Identity { key, sig }, out);
        }
    }

    fn join(&mut self, attempt: u32, out: &mut Vec<Action>) {
        self.state = State::AwaitingWelcome { attempt };
        out.push(Action::Relay(ClientMessage::Join {
            room: sotto_proto::RoomId::from_bytes(self.secret.room_id().as_bytes()),
            max: self.group,
        }));
    }

    /// True once the call is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// True while media flows with at least one person.
    pub fn is_connected(&self) -> bool {
        matches!(&self.state, State::InRoom { pairs, .. } if pairs.iter().any(Pair::is_connected))
    }

    /// The people this side has a pair with, oldest first.
    pub fn peers(&self) -> Vec<PeerId> {
        match &self.state {
            State::InRoom { pairs, .. } => pairs.iter().map(|p| p.peer.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// When [`Room::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let State::InRoom { pairs, .. } = &self.state else {
            return None;
        };
        pairs.iter().filter_map(Pair::deadline).min()
    }

    /// The clock reached `now`: pairs still setting up past their deadline are given up, and
    /// connections `disconnected` for [`DROP_AFTER`] count as dropped.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let due: Vec<(PeerId, bool)> = match &self.state {
            State::InRoom { pairs, .. } => pairs
                .iter()
                .filter(|p| p.deadline().is_some_and(|d| d <= now))
                .map(|p| (p.peer.clone(), p.is_connected()))
                .collect(),
            _ => Vec::new(),
        };
        for (peer, dropped) in due {
            if dropped {
                self.drop_pair(&peer, &mut out);
            } else {
                self.end_pair(&peer, PairEnd::TimedOut, &mut out);
            }
        }
        out
    }

    fn pairs_mut(&mut self) -> Option<&mut Vec<Pair>> {
        match &mut self.state {
            State::InRoom { pairs, .. } => Some(pairs),
            _ => None,
        }
    }

    fn pair_mut(&mut self, peer: &PeerId) -> Option<&mut Pair> {
        self.pairs_mut()?.iter_mut().find(|p| &p.peer == peer)
    }

    /// Ends the pair with `peer`. In a one-to-one room the person is the call: their leaving
    /// before the call connected is waited out (a reload, a crash: they may come back on the
    /// same link); anything else ends the call. In a group the room goes on.
    fn end_pair(&mut self, peer: &PeerId, why: PairEnd, out: &mut Vec<Action>) {
        let Some(pairs) = self.pairs_mut() else {
            return;
        };
        let Some(i) = pairs.iter().position(|p| &p.peer == peer) else {
            return;
        };
        let pair = pairs.remove(i);
        let alone = pairs.is_empty();
        if self.group.is_none() && why != PairEnd::Left {
            // The call ends with the pair, and closes its connection with it.
            out.push(pair.notify(PeerNotice::Gone(why.clone())));
            return self.end(why.outcome(), out);
        }
        out.push(pair.act(PeerAction::Close));
        out.push(pair.notify(PeerNotice::Gone(why)));
        if self.reconnect_if_stranded(out) {
            return;
        }
        if alone {
            out.push(Action::Notify(RoomNotice::WaitingForPeers));
        }
    }

    /// Off the relay with no connection left: nothing can be set up or made again from here,
    /// so the relay is reached again and the room joined afresh (PROTOCOL.md §3.3). True when
    /// that is what happens.
    fn reconnect_if_stranded(&mut self, out: &mut Vec<Action>) -> bool {
        let State::InRoom {
            pairs,
            on_relay: false,
        } = &mut self.state
        else {
            return false;
        };
        if pairs.iter().any(Pair::is_connected) {
            return false;
        }
        for pair in pairs.drain(..) {
            out.push(pair.act(PeerAction::Close));
        }
        self.retry(1, out);
        true
    }

    /// The connection with `peer`, which worked, dropped: it is made again.
    fn drop_pair(&mut self, peer: &PeerId, out: &mut Vec<Action>) {
        self.remake_pair(peer, None, out);
    }

    /// The connection with `peer`, which worked, dropped (PROTOCOL.md §3.3 "A connection that
    /// drops"): the pair closes and is made again with a fresh handshake, in the same roles,
    /// while both are on the relay; off the relay, this side rejoins it when no connection is
    /// left. `commit`: the peer's COMMIT that asked for it, for the new pair to take.
    fn remake_pair(&mut self, peer: &PeerId, commit: Option<Vec<u8>>, out: &mut Vec<Action>) {
        let State::InRoom { pairs, on_relay } = &mut self.state else {
            return;
        };
        let Some(i) = pairs.iter().position(|p| &p.peer == peer) else {
            return;
        };
        let on_relay = *on_relay;
        let old = pairs.remove(i);
        out.push(old.act(PeerAction::Close));
        let stranded = !on_relay && !pairs.iter().any(Pair::is_connected);
        if !on_relay && !stranded {
            // No relay to make it again through, and others still connected: they are gone
            // for this side (and meet it again when it is back on the relay).
            out.push(old.notify(PeerNotice::Gone(PairEnd::Left)));
            return;
        }
        out.push(old.notify(PeerNotice::Dropped));
        if stranded {
            // Back on the relay first, as a newcomer everyone meets again.
            self.reconnect_if_stranded(out);
            return;
        }
        let role = old.hs.role();
        // No set-up deadline: the peer may still be asleep; the relay says when they leave.
        self.add_pair(peer.clone(), role, None, out);
        if let Some(commit) = commit {
            self.receive_from(peer, &commit, out);
        }
    }

    fn end(&mut self, outcome: Outcome, out: &mut Vec<Action>) {
        if let State::InRoom { pairs, .. } = &mut self.state {
            for pair in pairs.iter_mut() {
                if matches!(outcome, Outcome::HungUp) && pair.hs.is_established() {
                    // A pair whose keys never worked gets no `bye`: nothing could open it.
                    let _ = pair.seal(&PeerSignal::Bye, out);
                }
            }
        }
        if !matches!(self.state, State::Ended | State::AwaitingRelay { .. }) {
            out.push(Action::Relay(ClientMessage::Leave));
        }
        self.state = State::Ended;
        out.push(Action::End(outcome));
    }

    /// The user hangs up: `bye` to every pair, then `leave`.
    pub fn hang_up(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_ended() {
            self.end(Outcome::HungUp, &mut out);
        }
        out
    }

    /// A new pair with `peer` in `role`, with a fresh key (a handshake's key is never used
    /// twice), given up at `deadline` if not connected by then. O commits at once; A waits
    /// for the commit.
    fn add_pair(
        &mut self,
        peer: PeerId,
        role: Role,
        deadline: Option<Instant>,
        out: &mut Vec<Action>,
    ) {
        let key = match (self.keys)() {
            Ok(key) => key,
            Err(e) => return self.end(Outcome::LocalFailure(e.to_string()), out),
        };
        let pair = match role {
            Role::Offerer => {
                let (hs, commit) = Handshake::offerer(&self.secret, key);
                let pair = Pair::new(peer, hs, deadline);
                out.push(pair.notify(PeerNotice::Found(Role::Offerer)));
                out.push(pair.signal(&commit));
                pair
            }
            Role::Answerer => {
                let pair = Pair::new(peer, Handshake::answerer(&self.secret, key), deadline);
                out.push(pair.notify(PeerNotice::Found(Role::Answerer)));
                pair
            }
        };
        if let Some(pairs) = self.pairs_mut() {
            pairs.push(pair);
        }
    }

    /// A message from the relay.
    pub fn relay_message(&mut self, msg: ServerMessage, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match (&mut self.state, msg) {
            (State::Ended, _) => {}
            // A signal in flight to a peer who just left: expected, and harmless.
            (
                _,
                ServerMessage::Error {
                    code: ErrorCode::UnknownPeer,
                    ..
                },
            ) => {}
            // Back after losing the relay, whose old connection of ours it has not yet noticed
            // is gone (it holds our place until its keepalive fails): try again.
            (
                &mut State::AwaitingWelcome { attempt },
                ServerMessage::Error {
                    code: ErrorCode::RoomFull,
                    ..
                },
            ) if attempt > 0 => self.retry(attempt + 1, &mut out),
            // A relay of several that lost the room store they share: it takes no join now,
            // and closes the connections it had in rooms. Tried again as a lost relay is (in
            // a room, the close that follows says what to do).
            (
                &mut State::AwaitingWelcome { attempt },
                ServerMessage::Error {
                    code: ErrorCode::Unavailable,
                    ..
                },
            ) => self.retry(attempt + 1, &mut out),
            (
                State::InRoom { .. },
                ServerMessage::Error {
                    code: ErrorCode::Unavailable,
                    ..
                },
            ) => {}
            (_, ServerMessage::Error { code, message }) => {
                self.end(Outcome::RelayError(code, message), &mut out);
            }
            (State::AwaitingWelcome { .. }, ServerMessage::Welcome { peers, .. }) => {
                if self.group.is_none() && peers.len() > 1 {
                    self.state = State::InRoom {
                        pairs: Vec::new(),
                        on_relay: true,
                    };
                    self.end(
                        Outcome::ProtocolViolation(
                            "more than one peer in a one-to-one call".into(),
                        ),
                        &mut out,
                    );
                    return out;
                }
                self.state = State::InRoom {
                    pairs: Vec::new(),
                    on_relay: true,
                };
                if peers.is_empty() {
                    out.push(Action::Notify(RoomNotice::WaitingForPeers));
                }
                // Those here first are O of their pair with us: each commits to us.
                for peer in peers {
                    self.add_pair(peer, Role::Answerer, Some(now + SETUP_TIMEOUT), &mut out);
                }
            }
            (State::InRoom { pairs, .. }, ServerMessage::PeerJoined { peer }) => {
                if self.group.is_none()
                    && let Some(old) = pairs.first()
                {
                    if old.link != Link::ConnectedOffRelay {
                        self.end(
                            Outcome::ProtocolViolation(
                                "a third peer joined a one-to-one call".into(),
                            ),
                            &mut out,
                        );
                        return out;
                    }
                    // The one who left the relay is back (a reload): a new pair with them.
                    let old = pairs.remove(0);
                    out.push(old.act(PeerAction::Close));
                }
                self.add_pair(peer, Role::Offerer, Some(now + SETUP_TIMEOUT), &mut out);
            }
            (State::InRoom { pairs, .. }, ServerMessage::PeerLeft { peer }) => {
                let Some(pair) = pairs.iter_mut().find(|p| p.peer == peer) else {
                    return out;
                };
                if pair.is_working() {
                    // Media flows peer to peer: they may only have lost the relay. The pair
                    // goes on; it is over when the connection drops, or when they join again.
                    pair.link = Link::ConnectedOffRelay;
                    out.push(pair.notify(PeerNotice::LostRelay));
                } else {
                    self.end_pair(&peer, PairEnd::Left, &mut out);
                }
            }
            (State::InRoom { pairs, .. }, ServerMessage::Signal { from, data }) => {
                let bytes = data.decode();
                match pairs.iter_mut().find(|p| p.peer == from) {
                    // A COMMIT from the pair's O once the pair had connected: the peer saw the
                    // connection drop and asks for the pair to be made again (PROTOCOL.md
                    // §3.3). Taken only if the connection does not work here either: a relay
                    // can forge a COMMIT, and must not tear down a working connection with one.
                    Some(pair)
                        if pair.is_connected()
                            && pair.hs.role() == Role::Answerer
                            && bytes.first() == Some(&handshake::COMMIT) =>
                    {
                        if pair.is_working() {
                            pair.restart = Some(bytes);
                        } else {
                            self.remake_pair(&from, Some(bytes), &mut out);
                        }
                    }
                    Some(_) => self.receive_from(&from, &bytes, &mut out),
                    None if self.group.is_none() => self.end(
                        Outcome::ProtocolViolation(
                            "a signal from a peer we are not talking to".into(),
                        ),
                        &mut out,
                    ),
                    // In a group, bytes from someone without a pair (one whose pair just
                    // ended) can only be dropped: they open nothing.
                    None => {}
                }
            }
            (
                State::AwaitingRelay { .. } | State::AwaitingWelcome { .. },
                ServerMessage::Signal { .. },
            ) => {
                self.end(
                    Outcome::ProtocolViolation("a signal before the welcome".into()),
                    &mut out,
                );
            }
            // Anything else (a second welcome, ...) changes nothing.
            _ => {}
        }
        out
    }

    /// The relay connection ended. Media is peer to peer: pairs that are connected go on
    /// without the relay. With none connected, the room tries to reach the relay again and
    /// joins afresh (handshakes under way are lost with the relay's peer ids).
    pub fn relay_closed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        match &mut self.state {
            State::Ended | State::AwaitingRelay { .. } => {}
            // Closed before it let us in: the same attempt count goes on, so a relay that
            // keeps accepting and closing is given up like one that refuses.
            &mut State::AwaitingWelcome { attempt } => self.retry(attempt + 1, &mut out),
            State::InRoom { pairs, on_relay } => {
                if pairs.iter().any(Pair::is_connected) {
                    // The connected go on; the others cannot finish without the relay. When
                    // the last connection drops, the relay is reached again.
                    *on_relay = false;
                    let unfinished: Vec<PeerId> = pairs
                        .iter()
                        .filter(|p| !p.is_connected())
                        .map(|p| p.peer.clone())
                        .collect();
                    for peer in unfinished {
                        self.end_pair(&peer, PairEnd::Left, &mut out);
                    }
                } else {
                    for pair in pairs.drain(..) {
                        out.push(pair.act(PeerAction::Close));
                    }
                    self.retry(1, &mut out);
                }
            }
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
        out.push(Action::Notify(RoomNotice::Reconnecting { attempt, delay }));
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

    /// The shell could not reach the relay: try again later, or give up.
    pub fn reconnect_failed(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if let State::AwaitingRelay { attempt } = self.state {
            self.retry(attempt + 1, &mut out);
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

    /// Bytes from `peer` for their pair; what the pair refuses ends it.
    fn receive_from(&mut self, peer: &PeerId, bytes: &[u8], out: &mut Vec<Action>) {
        let Some(pair) = self.pair_mut(peer) else {
            return;
        };
        if let Err(why) = pair.receive(bytes, out) {
            self.end_pair(peer, why, out);
        }
    }

    /// Seals `msg` to `peer`'s pair; a failure ends that pair.
    fn seal_to(&mut self, peer: &PeerId, msg: &PeerSignal, out: &mut Vec<Action>) {
        let Some(pair) = self.pair_mut(peer) else {
            return;
        };
        if let Err(why) = pair.seal(msg, out) {
            self.end_pair(peer, why, out);
        }
    }

    /// O's offer for `peer` exists: seal and send it.
    pub fn offer_created(&mut self, peer: &PeerId, sdp: String) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(pair) = self.pair_mut(peer) {
            pair.offer = Some(sdp.clone());
        }
        self.seal_to(peer, &PeerSignal::Offer { sdp }, &mut out);
        self.introduce_to(peer, &mut out);
        out
    }

    /// A's answer for `peer` exists: the media keys can be made (both fingerprints are known);
    /// then seal and send the answer.
    pub fn answer_created(&mut self, peer: &PeerId, sdp: String) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(pair) = self.pair_mut(peer) else {
            return out;
        };
        let offer = pair.offer.clone().unwrap_or_default();
        if let Err(why) = pair.start_media(&offer, &sdp, &mut out) {
            self.end_pair(peer, why, &mut out);
            return out;
        }
        self.seal_to(peer, &PeerSignal::Answer { sdp }, &mut out);
        self.introduce_to(peer, &mut out);
        out
    }

    /// A local candidate of `peer`'s connection, to trickle to them (sealed).
    pub fn local_candidate(&mut self, peer: &PeerId, c: Candidate) -> Vec<Action> {
        let mut out = Vec::new();
        let msg = PeerSignal::Candidate {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
        };
        self.seal_to(peer, &msg, &mut out);
        out
    }

    /// Gathering for `peer`'s connection finished.
    pub fn gathering_complete(&mut self, peer: &PeerId) -> Vec<Action> {
        let mut out = Vec::new();
        self.seal_to(peer, &PeerSignal::EndOfCandidates, &mut out);
        out
    }

    /// `peer`'s connection changed state at `now`.
    pub fn connection_state(
        &mut self,
        peer: &PeerId,
        state: ConnectionState,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let on_relay = matches!(self.state, State::InRoom { on_relay: true, .. });
        let Some(pair) = self.pair_mut(peer) else {
            return out;
        };
        out.push(pair.notify(PeerNotice::Connection(state)));
        if state == ConnectionState::Connected {
            pair.no_identity_before(&mut out);
        }
        match (pair.link, state) {
            (Link::SettingUp { .. } | Link::Connected { .. }, ConnectionState::Connected) => {
                pair.link = Link::Connected {
                    disconnected_since: None,
                }
            }
            // Off the relay and now off the connection too: they are gone.
            (
                Link::ConnectedOffRelay,
                ConnectionState::Disconnected | ConnectionState::Failed | ConnectionState::Closed,
            ) => self.end_pair(peer, PairEnd::Left, &mut out),
            // It worked and stopped: with the peer asking for a new pair, or no relay to wait
            // for recovery through, it is made again now; else after [`DROP_AFTER`] unless it
            // recovers (PROTOCOL.md §3.3 "A connection that drops").
            (
                Link::Connected {
                    disconnected_since: None,
                },
                ConnectionState::Disconnected,
            ) => {
                if let Some(commit) = pair.restart.take() {
                    self.remake_pair(peer, Some(commit), &mut out);
                } else if !on_relay {
                    self.drop_pair(peer, &mut out);
                } else {
                    pair.link = Link::Connected {
                        disconnected_since: Some(now),
                    };
                }
            }
            (Link::Connected { .. }, ConnectionState::Failed) => {
                let commit = pair.restart.take();
                self.remake_pair(peer, commit, &mut out);
            }
            // A connection that never came up is not made again: what to try is said.
            (Link::SettingUp { .. }, ConnectionState::Failed) => self.end_pair(
                peer,
                PairEnd::Failed(
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

    /// A WebRTC operation for `peer`'s connection failed.
    pub fn rtc_failed(&mut self, peer: &PeerId, why: String) -> Vec<Action> {
        let mut out = Vec::new();
        self.end_pair(peer, PairEnd::Failed(why), &mut out);
        out
    }
}

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod tests;
