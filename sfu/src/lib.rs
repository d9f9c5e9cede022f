//! Sotto's selective forwarding unit (DESIGN §4.13, PROTOCOL.md §7.7), sans-IO over str0m:
//! datagrams, signaling and `now` in; datagrams, answers and deadlines out. The relay's shell
//! owns the one UDP socket every member reaches it on and the clock.
//!
//! Each conference member has one peer connection to the SFU, which it always offers (the SFU
//! only answers, so offers never cross): one send-only audio and one send-only video m-line
//! (simulcast with rids `h` and `l`, or one layer), and as many receive-only m-lines of each
//! kind as it wants to show. It then says, per receive m-line (by its `mid`), whose media it
//! wants there and, for video, which layer (a *view*). The SFU forwards each sender's frames,
//! SFrame-encrypted end to end, into the m-lines that asked for them; it cannot decrypt them
//! and never needs to. It relays key-frame requests to the sender (at most one per second per
//! sender and layer), asks for key frames itself when a view switches or the group's epoch
//! changes, and drops (and counts) any frame that carries no SFrame header.
//!
//! What the SFU learns: members' addresses, who sends, sizes and timing of frames, and who
//! views whom. It never sees a key, a name, a message or a frame's content, and no audio level
//! is negotiated (the speaker is found in the clients, from decoded audio).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod frame;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

/// At most one key-frame request per sender and layer in this time (DESIGN §5: unthrottled,
/// three viewers raised key frames tenfold).
pub const KEYFRAME_THROTTLE: Duration = Duration::from_secs(1);
/// A member whose connection never came up, or went away, is dropped after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A simulcast layer that sent no frame for this long counts as stopped: its viewers get the
/// other layer until it comes back (a sender short of CPU or bandwidth stops its full layer).
pub const LAYER_STALE: Duration = Duration::from_secs(1);

/// Why the SFU refused a member's request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The member's offer is not SDP the SFU can answer (the text says why).
    MemberSentBadOffer(String),
    /// The member's view names an m-line it does not have, or one of the wrong kind.
    MemberSentBadView(&'static str),
    /// A view from a member with no connection to the SFU.
    NotConnected,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MemberSentBadOffer(why) => write!(f, "the offer cannot be answered: {why}"),
            Self::MemberSentBadView(why) => write!(f, "the view is not valid: {why}"),
            Self::NotConnected => f.write_str("no connection to the SFU: offer first"),
        }
    }
}

impl std::error::Error for Error {}

/// A simulcast layer a viewer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// The full-size layer (`h`), for a large tile.
    High,
    /// The smallest layer (`l`), for a small tile.
    Low,
}

impl Layer {
    fn rid(self) -> Rid {
        match self {
            Self::High => "h".into(),
            Self::Low => "l".into(),
        }
    }

    fn of_rid(rid: &Rid) -> Option<Self> {
        match &**rid {
            "h" => Some(Self::High),
            "l" => Some(Self::Low),
            _ => None,
        }
    }

    fn other(self) -> Self {
        match self {
            Self::High => Self::Low,
            Self::Low => Self::High,
        }
    }
}

/// What one of a member's receive m-lines shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot<P> {
    /// The receive m-line, as its `mid` is in the member's offer.
    pub mid: String,
    /// Whose media goes there.
    pub peer: P,
    /// For video, which layer (when the sender sends simulcast).
    pub layer: Layer,
}

/// The SFU's counters, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames written to a viewer.
    pub frames_forwarded: u64,
    /// Frames dropped because they carry no SFrame header (must stay zero).
    pub frames_clear_dropped: u64,
    /// Key-frame requests sent to senders (relayed or the SFU's own).
    pub keyframe_requests: u64,
    /// Key-frame requests not sent because one went out within [`KEYFRAME_THROTTLE`].
    pub keyframe_requests_throttled: u64,
    /// Datagrams no member's connection accepted.
    pub datagrams_unmatched: u64,
}

/// What the shell must do.
#[derive(Debug)]
pub enum Action<R, P> {
    /// Send these bytes from the SFU's socket.
    Transmit {
        /// Where to.
        destination: SocketAddr,
        /// The datagram.
        contents: Vec<u8>,
    },
    /// A member's connection came up.
    Connected {
        /// Its room.
        room: R,
        /// The member.
        peer: P,
    },
    /// A member's connection failed or timed out; the SFU forgot it (it may offer again).
    Disconnected {
        /// Its room.
        room: R,
        /// The member.
        peer: P,
    },
}

/// One incoming m-line of a member: what it sends.
#[derive(Debug, Clone)]
struct Publish {
    mid: Mid,
    kind: MediaKind,
}

/// One member: its connection and what it asked to see.
struct Member<R, P> {
    room: R,
    peer: P,
    rtc: Rtc,
    /// What it sends.
    publish: Vec<Publish>,
    /// Its receive m-lines, with what each shows.
    view: BTreeMap<Mid, (MediaKind, Option<(P, Layer)>)>,
    /// A view that came before str0m announced the m-lines (the connection still coming up):
    /// applied to each receive m-line as it is announced.
    early: BTreeMap<Mid, (P, Layer)>,
    /// When each of its simulcast layers last sent a frame (by its send m-line).
    layers_seen: BTreeMap<(Mid, Layer), Instant>,
    /// What each of its video receive m-lines is being sent now: the layer (none: the sender
    /// sends one), and whether a key frame of it went out (until then, nothing does: a decoder
    /// fed a stream from a delta frame shows garbage).
    forwarding: BTreeMap<Mid, (Option<Layer>, bool)>,
    connected: bool,
    since: Instant,
    /// When its connection next needs the clock.
    next: Instant,
}

/// The SFU: every member of every conference on this relay.
pub struct Sfu<R, P> {
    /// The address members send to (the candidate the SFU announces).
    announce: SocketAddr,
    crypto: Arc<CryptoProvider>,
    members: Vec<Member<R, P>>,
    /// When a sender (room, peer, mid, rid) was last asked for a key frame.
    keyframes: BTreeMap<(R, P, Mid, Option<Layer>), Instant>,
    actions: VecDeque<Action<R, P>>,
    counters: Counters,
}

impl<R, P> fmt::Debug for Sfu<R, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sfu")
            .field("announce", &self.announce)
            .field("members", &self.members.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// RTP header extensions the SFU negotiates: Chrome's usual ones without the audio level
/// (`urn:ietf:params:rtp-hdrext:ssrc-audio-level` would put every packet's level in clear).
fn extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    exts.set(2, Extension::AbsoluteSendTime);
    exts.set(3, Extension::TransportSequenceNumber);
    exts.set(4, Extension::RtpMid);
    exts.set(10, Extension::RtpStreamId);
    exts.set(11, Extension::RepairedRtpStreamId);
    exts.set(13, Extension::VideoOrientation);
    exts
}

impl<R, P> Sfu<R, P>
where
    R: Clone + Ord + fmt::Debug,
    P: Clone + Ord + fmt::Debug,
{
    /// An SFU that members reach at `announce` (the relay's UDP address, or the public one
    /// given with `--sfu-announce`).
    pub fn new(announce: SocketAddr) -> Self {
        Self {
            announce,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            members: Vec::new(),
            keyframes: BTreeMap::new(),
            actions: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// How many members have a connection (or are making one).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    fn find(&self, room: &R, peer: &P) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.room == *room && m.peer == *peer)
    }

    /// `peer` of `room` offers its connection: the SFU's answer. A second offer from the same
    /// member replaces its connection (a fresh start after its network changed).
    pub fn offer(&mut self, room: R, peer: P, sdp: &str, now: Instant) -> Result<String, Error> {
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| Error::MemberSentBadOffer(e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(self.crypto.clone())
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_extension_map(extensions())
            .build(now);
        let candidate = Candidate::host(self.announce, "udp")
            .map_err(|e| Error::MemberSentBadOffer(format!("no candidate: {e}")))?;
        let _ = rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| Error::MemberSentBadOffer(e.to_string()))?;
        if let Some(i) = self.find(&room, &peer) {
            self.members.remove(i);
        }
        self.members.push(Member {
            room,
            peer,
            rtc,
            publish: Vec::new(),
            view: BTreeMap::new(),
            early: BTreeMap::new(),
            layers_seen: BTreeMap::new(),
            forwarding: BTreeMap::new(),
            connected: false,
            since: now,
            next: now,
        });
        self.drive(now);
        Ok(answer.to_sdp_string())
    }

    /// `peer` says what each of its receive m-lines shows (an m-line it leaves out shows
    /// nothing). A slot that changes asks its sender for a key frame.
    pub fn view(
        &mut self,
        room: &R,
        peer: &P,
        slots: Vec<Slot<P>>,
        now: Instant,
    ) -> Result<(), Error> {
        let i = self.find(room, peer).ok_or(Error::NotConnected)?;
        let member = &mut self.members[i];
        // Until str0m announced the m-lines, the view waits for them.
        let announced = !member.view.is_empty() || !member.publish.is_empty();
        let mut wanted: BTreeMap<Mid, (P, Layer)> = BTreeMap::new();
        for slot in slots {
            let mid: Mid = slot.mid.as_str().into();
            if announced && !member.view.contains_key(&mid) {
                return Err(Error::MemberSentBadView("a mid that is no receive m-line"));
            }
            if wanted.insert(mid, (slot.peer, slot.layer)).is_some() {
                return Err(Error::MemberSentBadView("a mid named twice"));
            }
        }
        if !announced {
            member.early = wanted;
            return Ok(());
        }
        let mut changed = Vec::new();
        for (mid, (kind, shows)) in &mut member.view {
            let next = wanted.remove(mid);
            if *shows != next {
                // Someone else's stream, or none: it starts again at a key frame.
                member.forwarding.remove(mid);
                if let (MediaKind::Video, Some((p, layer))) = (*kind, &next) {
                    changed.push((p.clone(), *layer));
                }
                *shows = next;
            }
        }
        for (p, layer) in changed {
            self.ask_keyframe(room, &p, Some(layer), now);
        }
        self.drive(now);
        Ok(())
    }

    /// `peer` left the room: its connection goes, and nothing more is forwarded to it or from
    /// it.
    pub fn leave(&mut self, room: &R, peer: &P) {
        if let Some(i) = self.find(room, peer) {
            let mut member = self.members.remove(i);
            member.rtc.disconnect();
        }
        self.keyframes
            .retain(|(r, p, _, _), _| r != room || p != peer);
    }

    /// The group of `room` moved to a new epoch: every video sender is asked for a key frame,
    /// so that viewers decode the new key's frames at once.
    pub fn epoch_changed(&mut self, room: &R, now: Instant) {
        let senders: Vec<P> = self
            .members
            .iter()
            .filter(|m| m.room == *room)
            .map(|m| m.peer.clone())
            .collect();
        for peer in senders {
            for layer in [None, Some(Layer::High), Some(Layer::Low)] {
                self.ask_keyframe(room, &peer, layer, now);
            }
        }
        self.drive(now);
    }

    /// A datagram arrived on the SFU's socket from `source`.
    pub fn receive(&mut self, source: SocketAddr, contents: &[u8], now: Instant) {
        let Ok(contents) = contents.try_into() else {
            self.counters.datagrams_unmatched += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.announce,
                contents,
            },
        );
        match self.members.iter_mut().find(|m| m.rtc.accepts(&input)) {
            Some(member) => {
                if member.rtc.handle_input(input).is_err() {
                    member.rtc.disconnect();
                }
            }
            None => self.counters.datagrams_unmatched += 1,
        }
        self.drive(now);
    }

    /// The time given by [`Sfu::poll_timeout`] came.
    pub fn handle_timeout(&mut self, now: Instant) {
        for member in &mut self.members {
            if member.rtc.handle_input(Input::Timeout(now)).is_err() {
                member.rtc.disconnect();
            }
        }
        self.drive(now);
    }

    /// What the shell must do next, if anything.
    pub fn poll_action(&mut self) -> Option<Action<R, P>> {
        self.actions.pop_front()
    }

    /// When [`Sfu::handle_timeout`] must run next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().map(|m| m.next).min()
    }

    /// Polls every connection until each waits for time or input, carrying media between
    /// them; then drops the connections that died.
    fn drive(&mut self, now: Instant) {
        let mut media: Vec<(usize, MediaData)> = Vec::new();
        let mut keyframe_asks: Vec<(usize, Mid, Option<Rid>)> = Vec::new();
        // Key frames for views that waited for their m-lines.
        let mut asks: Vec<(R, P, Layer)> = Vec::new();
        loop {
            for (i, member) in self.members.iter_mut().enumerate() {
                while member.rtc.is_alive() {
                    match member.rtc.poll_output() {
                        Ok(Output::Timeout(t)) => {
                            member.next = t;
                            break;
                        }
                        Ok(Output::Transmit(t)) => self.actions.push_back(Action::Transmit {
                            destination: t.destination,
                            contents: t.contents.to_vec(),
                        }),
                        Ok(Output::Event(event)) => match event {
                            Event::Connected => {
                                member.connected = true;
                                self.actions.push_back(Action::Connected {
                                    room: member.room.clone(),
                                    peer: member.peer.clone(),
                                });
                            }
                            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                                member.rtc.disconnect();
                            }
                            Event::MediaAdded(added) => match added.direction {
                                // The member sends on it.
                                Direction::RecvOnly => member.publish.push(Publish {
                                    mid: added.mid,
                                    kind: added.kind,
                                }),
                                // The member receives on it: a slot of its view.
                                Direction::SendOnly => {
                                    let shows = member.early.remove(&added.mid);
                                    if let Some((p, layer)) = &shows
                                        && added.kind == MediaKind::Video
                                    {
                                        asks.push((member.room.clone(), p.clone(), *layer));
                                    }
                                    member.view.insert(added.mid, (added.kind, shows));
                                }
                                _ => {}
                            },
                            Event::MediaData(data) => media.push((i, data)),
                            Event::KeyframeRequest(req) => {
                                keyframe_asks.push((i, req.mid, req.rid));
                            }
                            _ => {}
                        },
                        Err(_) => member.rtc.disconnect(),
                    }
                }
            }
            for (room, peer, layer) in asks.drain(..) {
                self.ask_keyframe(&room, &peer, Some(layer), now);
            }
            if media.is_empty() && keyframe_asks.is_empty() {
                break;
            }
            for (from, data) in media.drain(..) {
                self.forward(from, &data, now);
            }
            for (from, mid, _) in std::mem::take(&mut keyframe_asks) {
                self.relay_keyframe_request(from, mid, now);
            }
        }
        let before = self.members.len();
        let mut gone = Vec::new();
        self.members.retain(|m| {
            let idle = !m.connected && now.saturating_duration_since(m.since) > IDLE_TIMEOUT;
            let keep = m.rtc.is_alive() && !idle;
            if !keep {
                gone.push((m.room.clone(), m.peer.clone()));
            }
            keep
        });
        if self.members.len() != before {
            for (room, peer) in gone {
                self.keyframes
                    .retain(|(r, p, _, _), _| *r != room || *p != peer);
                self.actions.push_back(Action::Disconnected { room, peer });
            }
        }
    }

    /// A frame from member `from`: to every member of its room whose view shows it there, at
    /// the layer asked for, or the other one while the one asked for is stopped.
    fn forward(&mut self, from: usize, data: &MediaData, now: Instant) {
        let layer = match &data.rid {
            None => None,
            Some(rid) => match Layer::of_rid(rid) {
                Some(layer) => Some(layer),
                // A rid the SFU never asks for: not forwarded.
                None => return,
            },
        };
        let sender = &mut self.members[from];
        if let Some(layer) = layer {
            sender.layers_seen.insert((data.mid, layer), now);
        }
        let fresh = |l: Layer| {
            sender
                .layers_seen
                .get(&(data.mid, l))
                .is_some_and(|t| now.saturating_duration_since(*t) < LAYER_STALE)
        };
        // For a viewer who asked for `wanted`: the layer it gets now.
        let effective = |wanted: Layer| {
            if fresh(wanted) || !fresh(wanted.other()) {
                wanted
            } else {
                wanted.other()
            }
        };
        let effective_of = [
            (Layer::High, effective(Layer::High)),
            (Layer::Low, effective(Layer::Low)),
        ];
        let sender = &self.members[from];
        let Some(publish) = sender.publish.iter().find(|p| p.mid == data.mid) else {
            return;
        };
        let kind = match publish.kind {
            MediaKind::Audio => frame::Kind::Audio,
            MediaKind::Video => frame::Kind::Video,
        };
        match frame::check(kind, &data.data) {
            frame::Check::Sealed => {}
            frame::Check::Empty => return,
            frame::Check::Clear => {
                self.counters.frames_clear_dropped += 1;
                return;
            }
        }
        let (room, peer, media_kind) = (sender.room.clone(), sender.peer.clone(), publish.kind);
        let key_frame = media_kind == MediaKind::Video && frame::is_key_frame(&data.data);
        let mut switched = Vec::new();
        for (i, member) in self.members.iter_mut().enumerate() {
            if i == from || member.room != room || !member.connected {
                continue;
            }
            let mut targets: Vec<Mid> = Vec::new();
            for (mid, (kind, shows)) in &member.view {
                let Some((p, wanted)) = shows else { continue };
                if *kind != media_kind || *p != peer {
                    continue;
                }
                if media_kind == MediaKind::Audio {
                    targets.push(*mid);
                    continue;
                }
                let now_sent = layer.map(|_| {
                    effective_of
                        .iter()
                        .find(|(w, _)| w == wanted)
                        .map_or(*wanted, |(_, e)| *e)
                });
                if layer != now_sent {
                    continue;
                }
                let state = member.forwarding.entry(*mid).or_insert((now_sent, false));
                if state.0 != now_sent {
                    // A layer switch: the viewer decodes from the new layer's next key frame.
                    *state = (now_sent, false);
                    switched.push(now_sent.unwrap_or(*wanted));
                }
                if !state.1 {
                    if !key_frame {
                        continue;
                    }
                    state.1 = true;
                }
                targets.push(*mid);
            }
            for mid in targets {
                let Some(writer) = member.rtc.writer(mid) else {
                    continue;
                };
                let Some(pt) = writer.match_params(data.params) else {
                    continue;
                };
                if writer
                    .write(pt, data.network_time, data.time, data.data.clone())
                    .is_ok()
                {
                    self.counters.frames_forwarded += 1;
                }
            }
        }
        for layer in switched {
            self.ask_keyframe(&room, &peer, Some(layer), now);
        }
    }

    /// Member `from` asked for a key frame on its receive m-line `mid`: the sender shown there
    /// is asked (throttled).
    fn relay_keyframe_request(&mut self, from: usize, mid: Mid, now: Instant) {
        let member = &self.members[from];
        let Some((_, Some((peer, layer)))) = member.view.get(&mid) else {
            return;
        };
        let (room, peer, layer) = (member.room.clone(), peer.clone(), *layer);
        self.ask_keyframe(&room, &peer, Some(layer), now);
    }

    /// Asks `peer`'s video for a key frame on `layer` (or its only layer), at most once per
    /// [`KEYFRAME_THROTTLE`].
    fn ask_keyframe(&mut self, room: &R, peer: &P, layer: Option<Layer>, now: Instant) {
        let Some(i) = self.find(room, peer) else {
            return;
        };
        let member = &mut self.members[i];
        let videos: Vec<Mid> = member
            .publish
            .iter()
            .filter(|p| p.kind == MediaKind::Video)
            .map(|p| p.mid)
            .collect();
        for mid in videos {
            let key = (room.clone(), peer.clone(), mid, layer);
            if self
                .keyframes
                .get(&key)
                .is_some_and(|t| now.saturating_duration_since(*t) < KEYFRAME_THROTTLE)
            {
                self.counters.keyframe_requests_throttled += 1;
                continue;
            }
            let Some(mut writer) = member.rtc.writer(mid) else {
                continue;
            };
            // A rid the sender does not send is refused by str0m; its only layer is asked then.
            let rid = layer.map(Layer::rid);
            let sent = writer
                .request_keyframe(rid, KeyframeRequestKind::Pli)
                .is_ok()
                || (rid.is_some()
                    && writer
                        .request_keyframe(None, KeyframeRequestKind::Pli)
                        .is_ok());
            if sent {
                self.counters.keyframe_requests += 1;
                self.keyframes.insert(key, now);
            }
        }
    }
}

#[cfg(test)]
mod tests;
