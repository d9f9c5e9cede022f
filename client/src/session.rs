//! The I/O shell of a call: the relay connection, the WebRTC stack and the audio, driven by one
//! loop that feeds the [`Room`] and carries out its [`Action`]s. Frames are sealed before they
//! reach the WebRTC stack and opened before they reach the decoder. One peer connection: the
//! terminal makes one-to-one calls (a group link is refused before it gets here).

use crate::ClientError;
use crate::audio::{Encoder, Playout, Sink, Source};
use crate::call::Outcome;
use crate::chat::{Chat, ChatEvent, Command, FileOptions};
use crate::relay::{Endpoint, RelayEvent, RelaySender};
use crate::room::{Action, PairEnd, PeerAction, PeerNotice, Room, RoomNotice};
use crate::rtc::{DataEvent, NetworkConfig, Rtc, RtcEvent, RtcEvents};
use serde::Serialize;
use sotto_e2ee::{EphemeralKey, FrameDecryptor, FrameEncryptor, Link};
use sotto_proto::{GroupSize, IceServer, PeerId, ServerMessage};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

/// Everything a call needs besides the link.
#[derive(Debug)]
pub struct CallOptions {
    /// The microphone.
    pub source: Source,
    /// The speakers.
    pub sink: Sink,
    /// Hang up after this long in the call (from the connection).
    pub duration: Option<Duration>,
    /// ICE servers to use instead of the relay's.
    pub ice_servers: Option<Vec<IceServer>>,
    /// Relayed candidates only.
    pub relay_only: bool,
    /// Host candidates on loopback only.
    pub loopback_only: bool,
    /// How often to report statistics.
    pub stats_interval: Duration,
    /// The relay's certificate must chain to this CA (PEM) instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Lines the user types during the call: texts and commands (`/send PATH`, ...).
    pub input: Option<mpsc::Receiver<String>>,
    /// Where received files go, and which are taken without asking.
    pub files: FileOptions,
}

/// Counters of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Encrypted frames sent.
    pub frames_sent: u64,
    /// Frames received that authenticated.
    pub frames_received: u64,
    /// Frames received that did not authenticate (dropped, never decoded).
    pub frames_failed: u64,
    /// Gaps concealed by the decoder.
    pub frames_concealed: u64,
    /// RTP packets that carried no payload at all (padding): not frames, ignored.
    pub empty_packets: u64,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Fraction of our packets the peer reports lost.
    pub loss: Option<f64>,
}

/// What the user is told, as it happens. Serialized as one JSON object per line with `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Connected to the relay.
    Relay {
        /// Its WebSocket URL.
        url: String,
    },
    /// A step of the call set-up.
    State {
        /// `waiting-for-peer`, `handshake`, `keys-confirmed`, `connecting`, `connected`,
        /// `receiving-audio` (the first frame from the other side authenticated and was
        /// decoded), ...
        state: String,
    },
    /// A local ICE candidate was gathered (and sent sealed). Only its type is shown: `host`,
    /// `srflx` or `relay`; with `--relay-only` every one is `relay`.
    Candidate {
        /// The candidate's type.
        typ: String,
    },
    /// The relay was lost before the call connected; it is tried again after `delay_ms`.
    Reconnecting {
        /// 1 for the first attempt.
        attempt: u32,
        /// The wait before this attempt, in milliseconds.
        delay_ms: u64,
    },
    /// The safety code, six digits.
    Sas {
        /// e.g. `"034666"`.
        code: String,
    },
    /// Periodic statistics.
    Stats(Counters),
    /// The call ended.
    Ended {
        /// Why.
        reason: String,
        /// Final counters.
        counters: Counters,
    },
    /// Messages and files (`message`, `file-offered`, ...).
    #[serde(untagged)]
    Chat(ChatEvent),
}

/// The media side of a call once its keys exist.
struct Media {
    encryptor: FrameEncryptor,
    decryptor: FrameDecryptor,
}

/// Runs one call to its end. `notify` sees every [`Event`]; the result is why it ended.
pub async fn run_call(
    link: &Link,
    mut options: CallOptions,
    mut notify: impl FnMut(Event),
    hang_up: impl std::future::Future<Output = ()>,
) -> Result<(Outcome, Counters), ClientError> {
    let endpoint = Endpoint::new(link.relay_url(), options.ca_file.as_deref())?;
    let mut hang_up = std::pin::pin!(hang_up);
    // Hanging up while the relay is still being reached ends it there.
    let (relay, relay_events) = tokio::select! {
        connected = endpoint.connect() => connected?,
        () = &mut hang_up => {
            options.sink.finish()?;
            return Ok((Outcome::HungUp, Counters::default()));
        }
    };
    notify(Event::Relay {
        url: endpoint.url().to_owned(),
    });
    let group = link.group().and_then(|n| GroupSize::new(u64::from(n)).ok());
    let (mut room, actions) = Room::new(
        link.secret().clone(),
        group,
        Box::new(EphemeralKey::generate),
    );
    let mut shell = Shell {
        relay,
        relay_events: Some(relay_events),
        reconnect_at: None,
        peer_reset: false,
        rtc: None,
        peer: None,
        control: None,
        audio: None,
        data: None,
        chat: None,
        data_open: false,
        ice: Vec::new(),
        media: None,
        counters: Counters::default(),
        outcome: None,
        connected_at: None,
    };
    shell
        .execute(&mut room, actions, &options, &mut notify)
        .await;

    let mut encoder = Encoder::new()?;
    let mut playout = Playout::new()?;
    let mut media_tick = interval(Duration::from_millis(20));
    media_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut stats_tick = interval(options.stats_interval);
    stats_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut reconnecting: Option<Reconnecting> = None;
    let far_future = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut input = options.input.take();
    // An error of this computer's (the speakers, the WAV file, the codec) during the call: the
    // call is hung up properly (bye, leave, the file finished), then it is returned.
    let mut failure: Option<ClientError> = None;

    while shell.outcome.is_none() {
        let deadline = match (options.duration, shell.connected_at) {
            (Some(d), Some(at)) => at + d,
            _ => far_future,
        };
        let actions = tokio::select! {
            event = recv_some_bounded(&mut shell.relay_events) => match event {
                Some(RelayEvent::Message(msg)) => {
                    if let ServerMessage::Welcome { ice, .. } = &msg {
                        shell.ice.clone_from(ice);
                    }
                    room.relay_message(msg, std::time::Instant::now())
                }
                Some(RelayEvent::Closed) | None => {
                    shell.relay_events = None;
                    room.relay_closed()
                }
            },
            () = sleep_until(shell.reconnect_at.unwrap_or(far_future)) => {
                // Connecting takes up to its timeout: it runs beside everything else here
                // (Ctrl-C included), not in this branch.
                shell.reconnect_at = None;
                let endpoint = endpoint.clone();
                reconnecting = Some(Box::pin(async move { endpoint.connect().await }));
                Vec::new()
            }
            result = poll_some(&mut reconnecting) => {
                reconnecting = None;
                match result {
                    Ok((relay, events)) => {
                        shell.relay = relay;
                        shell.relay_events = Some(events);
                        notify(Event::Relay { url: endpoint.url().to_owned() });
                        room.relay_connected()
                    }
                    Err(ClientError::RelayCertificate(why)) => room.relay_untrusted(why),
                    Err(_) => room.reconnect_failed(),
                }
            }
            Some(event) = recv_some(&mut shell.control) => match (event, shell.peer.clone()) {
                (RtcEvent::LocalCandidate(c), Some(peer)) => {
                    let typ = c.candidate.split_whitespace().skip_while(|w| *w != "typ").nth(1);
                    notify(Event::Candidate { typ: typ.unwrap_or("unknown").to_owned() });
                    room.local_candidate(&peer, c)
                }
                (RtcEvent::GatheringComplete, Some(peer)) => room.gathering_complete(&peer),
                (RtcEvent::State(s), Some(peer)) => {
                    let actions = room.connection_state(&peer, s);
                    if room.is_connected() && shell.connected_at.is_none() {
                        shell.connected_at = Some(Instant::now());
                    }
                    actions
                }
                _ => Vec::new(),
            },
            // A pair still setting up when its time is up is given up (SETUP_TIMEOUT).
            () = sleep_until(room.poll_timeout().map_or(far_future, Instant::from_std)) => {
                room.handle_timeout(std::time::Instant::now())
            }
            Some(event) = recv_some_bounded(&mut shell.audio) => match event {
                RtcEvent::RemoteAudio { payload, .. } => {
                    let before = shell.counters.frames_received;
                    match shell.receive_audio(&payload, &mut playout, &options.sink) {
                        Ok(()) => {
                            if before == 0 && shell.counters.frames_received == 1 {
                                notify(Event::State { state: "receiving-audio".to_owned() });
                            }
                            Vec::new()
                        }
                        // The speakers or the WAV file failed: hang up properly, then say so.
                        Err(e) => {
                            failure = Some(e);
                            room.hang_up()
                        }
                    }
                }
                _ => Vec::new(),
            },
            _ = media_tick.tick() => {
                shell.send_audio(&room, &mut options.source, &mut encoder).await;
                Vec::new()
            }
            _ = stats_tick.tick() => {
                shell.refresh_stats(playout.concealed).await;
                if shell.media.is_some() {
                    notify(Event::Stats(shell.counters));
                }
                Vec::new()
            }
            Some(event) = recv_some_bounded(&mut shell.data) => {
                let mut chat_notify = |e| notify(Event::Chat(e));
                match (event, shell.chat.as_mut()) {
                    (DataEvent::Open, chat) => {
                        shell.data_open = true;
                        chat_notify(ChatEvent::MessagesReady);
                        if let Some(chat) = chat {
                            chat.channel_open();
                        }
                    }
                    (DataEvent::Message(bytes), Some(chat)) => chat.receive(&bytes, &mut chat_notify),
                    (DataEvent::Text, Some(chat)) => chat.text_frame(&mut chat_notify),
                    _ => {}
                }
                Vec::new()
            }
            () = chunk_ready(&shell.chat) => {
                if let Some(chat) = shell.chat.as_mut() {
                    chat.send_next_chunk(&mut |e| notify(Event::Chat(e)));
                }
                Vec::new()
            }
            line = recv_some_bounded(&mut input) => match line.map(|l| Command::parse(&l)) {
                None => {
                    input = None; // the user's input closed: the call goes on
                    Vec::new()
                }
                Some(Ok(None)) => Vec::new(),
                Some(Ok(Some(Command::Quit))) => room.hang_up(),
                Some(Ok(Some(command))) => {
                    // Only once the channel is open (`messages-ready`), as the page's message
                    // box: webrtc 0.21.1 drops what arrives on a negotiated stream before its
                    // side has handled the association coming up, so a line sent the instant
                    // the channel opens could be lost and break the sequence (PROTOCOL.md §3.6).
                    match shell.chat.as_mut().filter(|_| shell.data_open) {
                        Some(chat) => chat.command(command, &mut |e| notify(Event::Chat(e))),
                        None => notify(Event::Chat(ChatEvent::MessagesError {
                            error: "messages and files go once the call is connected".into(),
                        })),
                    }
                    Vec::new()
                }
                Some(Err(error)) => {
                    notify(Event::Chat(ChatEvent::MessagesError { error }));
                    Vec::new()
                }
            },
            () = sleep_until(deadline) => room.hang_up(),
            () = &mut hang_up => room.hang_up(),
        };
        shell
            .execute(&mut room, actions, &options, &mut notify)
            .await;
        if std::mem::take(&mut shell.peer_reset) {
            // A new peer starts its frames and counters from zero.
            match (Encoder::new(), Playout::new()) {
                (Ok(e), Ok(p)) => (encoder, playout) = (e, p),
                (Err(e), _) | (_, Err(e)) => {
                    failure = Some(e);
                    let actions = room.hang_up();
                    shell
                        .execute(&mut room, actions, &options, &mut notify)
                        .await;
                }
            }
        }
    }

    // Let the relay task flush `bye` and `leave` before the connection drops.
    drop(shell.relay);
    if let Some(mut relay_events) = shell.relay_events.take() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(event) = relay_events.recv().await {
                if matches!(event, RelayEvent::Closed) {
                    break;
                }
            }
        })
        .await;
    }
    if let Some(rtc) = &shell.rtc {
        rtc.close().await;
    }
    // The WAV file is finished whatever ended the call; a failure during it is what is told.
    let finished = options.sink.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    finished?;
    shell.counters.frames_concealed = playout.concealed;
    let outcome = shell.outcome.unwrap_or(Outcome::HungUp);
    notify(Event::Ended {
        reason: outcome.to_string(),
        counters: shell.counters,
    });
    Ok((outcome, shell.counters))
}

/// Resolves when the chat wants the next chunk of a file read; never without a chat.
async fn chunk_ready(chat: &Option<Chat>) {
    match chat {
        Some(chat) => chat.chunk_ready().await,
        None => std::future::pending().await,
    }
}

/// The next event, or never while there is no peer connection yet.
async fn recv_some(rx: &mut Option<mpsc::UnboundedReceiver<RtcEvent>>) -> Option<RtcEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A reconnection in progress.
type Reconnecting = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<(RelaySender, mpsc::Receiver<RelayEvent>), ClientError>,
            > + Send,
    >,
>;

/// The outcome of the future, or never while there is none.
async fn poll_some<F: std::future::Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The next message, or never while there is no channel (no relay connection, no peer
/// connection).
async fn recv_some_bounded<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Shell {
    relay: RelaySender,
    /// `None` while the relay is lost.
    relay_events: Option<mpsc::Receiver<RelayEvent>>,
    /// When to try the relay again, while it is lost.
    reconnect_at: Option<Instant>,
    /// The peer connection was reset: the codec state goes with it.
    peer_reset: bool,
    rtc: Option<Rtc>,
    /// Whose pair `rtc` is.
    peer: Option<PeerId>,
    control: Option<mpsc::UnboundedReceiver<RtcEvent>>,
    audio: Option<mpsc::Receiver<RtcEvent>>,
    data: Option<mpsc::Receiver<DataEvent>>,
    /// Messages and files, once the keys exist.
    chat: Option<Chat>,
    /// The data channel opened (it may before the keys exist).
    data_open: bool,
    ice: Vec<IceServer>,
    media: Option<Media>,
    counters: Counters,
    outcome: Option<Outcome>,
    connected_at: Option<Instant>,
}

impl Shell {
    /// The peer connection for `peer`'s pair, made on first use. One at a time: a second
    /// pair (the terminal makes one-to-one calls) is refused.
    async fn ensure_rtc(
        &mut self,
        peer: &PeerId,
        options: &CallOptions,
    ) -> Result<&mut Rtc, String> {
        if self.peer.as_ref().is_some_and(|p| p != peer) {
            return Err("this terminal client holds one call at a time".into());
        }
        if self.rtc.is_none() {
            let net = NetworkConfig {
                ice_servers: options
                    .ice_servers
                    .clone()
                    .unwrap_or_else(|| self.ice.clone()),
                relay_only: options.relay_only,
                loopback_only: options.loopback_only,
            };
            let (
                rtc,
                RtcEvents {
                    control,
                    audio,
                    data,
                },
            ) = Rtc::new(&net).await.map_err(|e| e.to_string())?;
            self.rtc = Some(rtc);
            self.peer = Some(peer.clone());
            self.control = Some(control);
            self.audio = Some(audio);
            self.data = Some(data);
        }
        self.rtc
            .as_mut()
            .ok_or_else(|| "no peer connection".to_owned())
    }

    /// Carries out actions, and the ones they lead to, until none are left.
    async fn execute(
        &mut self,
        room: &mut Room,
        actions: Vec<Action>,
        options: &CallOptions,
        notify: &mut impl FnMut(Event),
    ) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let more = match action {
                Action::Relay(msg) => {
                    self.relay.send(msg);
                    Vec::new()
                }
                Action::Peer(peer, action) => {
                    self.for_peer(room, peer, action, options, notify).await
                }
                Action::Reconnect(delay) => {
                    // Whatever is left of the old connection goes.
                    self.relay_events = None;
                    self.reconnect_at = Some(Instant::now() + jittered(delay));
                    Vec::new()
                }
                Action::Notify(notice) => {
                    notify(room_event(notice));
                    Vec::new()
                }
                Action::End(outcome) => {
                    self.outcome = Some(outcome);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    /// Carries out one action for the pair with `peer`, on the one peer connection.
    async fn for_peer(
        &mut self,
        room: &mut Room,
        peer: PeerId,
        action: PeerAction,
        options: &CallOptions,
        notify: &mut impl FnMut(Event),
    ) -> Vec<Action> {
        match action {
            PeerAction::CreateOffer => match self.ensure_rtc(&peer, options).await {
                Ok(rtc) => match rtc.create_offer().await {
                    Ok(sdp) => room.offer_created(&peer, sdp),
                    Err(e) => room.rtc_failed(&peer, e.to_string()),
                },
                Err(e) => room.rtc_failed(&peer, e),
            },
            PeerAction::CreateAnswer(offer) => match self.ensure_rtc(&peer, options).await {
                Ok(rtc) => match rtc.answer(offer).await {
                    Ok(sdp) => room.answer_created(&peer, sdp),
                    Err(e) => room.rtc_failed(&peer, e.to_string()),
                },
                Err(e) => room.rtc_failed(&peer, e),
            },
            PeerAction::AcceptAnswer(answer) => match self.rtc_of(&peer) {
                Some(rtc) => match rtc.accept_answer(answer).await {
                    Ok(()) => Vec::new(),
                    Err(e) => room.rtc_failed(&peer, e.to_string()),
                },
                None => room.rtc_failed(&peer, "answer before offer".into()),
            },
            PeerAction::AddCandidate(c) => {
                if let Some(rtc) = self.rtc_of(&peer) {
                    // A candidate the stack cannot use is not fatal: others may work.
                    let _ = rtc.add_candidate(c).await;
                }
                Vec::new()
            }
            PeerAction::StartMedia(encryptor, decryptor, data) => {
                self.media = Some(Media {
                    encryptor: *encryptor,
                    decryptor: *decryptor,
                });
                if let Some(rtc) = &self.rtc {
                    self.chat = Some(Chat::new(
                        *data,
                        rtc.data_writer(),
                        self.data_open,
                        options.files.clone(),
                    ));
                }
                Vec::new()
            }
            PeerAction::Close => {
                if self.peer.as_ref() == Some(&peer) {
                    self.reset_peer().await;
                }
                Vec::new()
            }
            PeerAction::Notify(notice) => {
                if let Some(event) = peer_event(notice) {
                    notify(event);
                }
                Vec::new()
            }
        }
    }

    /// The peer connection of `peer`'s pair, if it is the one this shell holds.
    fn rtc_of(&mut self, peer: &PeerId) -> Option<&mut Rtc> {
        self.rtc
            .as_mut()
            .filter(|_| self.peer.as_ref() == Some(peer))
    }

    /// The pair is over: its connection closes, and its keys, chat and counters go with it.
    async fn reset_peer(&mut self) {
        if let Some(rtc) = self.rtc.take() {
            rtc.close().await;
        }
        self.peer = None;
        (self.control, self.audio, self.media) = (None, None, None);
        // Unfinished incoming files go with the peer's keys.
        (self.data, self.chat, self.data_open) = (None, None, false);
        self.connected_at = None;
        self.counters = Counters::default();
        self.peer_reset = true;
    }

    /// One 20 ms frame from the source: encoded, sealed, sent. Nothing is sent before the
    /// media key exists and the connection is up.
    async fn send_audio(&mut self, room: &Room, source: &mut Source, encoder: &mut Encoder) {
        let (Some(media), Some(rtc)) = (self.media.as_mut(), self.rtc.as_ref()) else {
            return;
        };
        if !room.is_connected() {
            return;
        }
        let pcm = source.next_frame();
        let Ok(opus) = encoder.encode(&pcm) else {
            return;
        };
        let Ok(sealed) = media.encryptor.encrypt(&opus) else {
            return;
        };
        if rtc
            .send_audio(sealed, Duration::from_millis(20))
            .await
            .is_ok()
        {
            self.counters.frames_sent += 1;
        }
    }

    /// One received payload: opened, then decoded. A frame that does not open is dropped and
    /// counted; it never reaches the decoder.
    fn receive_audio(
        &mut self,
        payload: &[u8],
        playout: &mut Playout,
        sink: &Sink,
    ) -> Result<(), ClientError> {
        if payload.is_empty() {
            // RTP packets without payload (padding, as Chromium sends for bandwidth probing)
            // carry no frame: nothing to open, nothing to play. Counted apart from failures.
            self.counters.empty_packets += 1;
            return Ok(());
        }
        let Some(media) = self.media.as_mut() else {
            // Media before the keys: nothing can open it.
            self.counters.frames_failed += 1;
            return Ok(());
        };
        match media.decryptor.open(payload) {
            Ok(opened) => {
                self.counters.frames_received += 1;
                // The clear prefix is Opus' TOC byte: the whole frame is the Opus packet.
                let pcm = playout.push(opened.position(), opened.frame);
                sink.write(&pcm)?;
            }
            Err(_) => self.counters.frames_failed += 1,
        }
        Ok(())
    }

    async fn refresh_stats(&mut self, concealed: u64) {
        self.counters.frames_concealed = concealed;
        if let Some(rtc) = &self.rtc {
            let stats = rtc.stats().await;
            self.counters.rtt_ms = stats.rtt.map(|s| s * 1000.0);
            self.counters.loss = stats.loss;
        }
    }
}

/// `delay` plus up to a fifth more, at random: clients that lost the same relay do not all
/// come back in the same instant.
fn jittered(delay: Duration) -> Duration {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    delay + delay.mul_f64(f64::from(b[0]) / 255.0 / 5.0)
}

fn state(s: &str) -> Event {
    Event::State {
        state: s.to_owned(),
    }
}

fn room_event(notice: RoomNotice) -> Event {
    match notice {
        RoomNotice::WaitingForPeers => state("waiting-for-peer"),
        RoomNotice::Reconnecting { attempt, delay } => Event::Reconnecting {
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        },
    }
}

/// The event of a notice about the other person. A pair that ends for any reason but their
/// leaving ends the one-to-one call, which says why itself.
fn peer_event(notice: PeerNotice) -> Option<Event> {
    Some(match notice {
        PeerNotice::Found(_) => state("handshake"),
        PeerNotice::KeysConfirmed => state("keys-confirmed"),
        PeerNotice::SafetyCode(code) => Event::Sas {
            code: code.digits(),
        },
        PeerNotice::Connection(c) => state(match c {
            crate::rtc::ConnectionState::Connecting => "connecting",
            crate::rtc::ConnectionState::Connected => "connected",
            crate::rtc::ConnectionState::Disconnected => "disconnected",
            crate::rtc::ConnectionState::Failed => "failed",
            crate::rtc::ConnectionState::Closed => "closed",
        }),
        PeerNotice::LostRelay => state("peer-lost-relay"),
        PeerNotice::Gone(PairEnd::Left) => state("peer-left"),
        PeerNotice::Gone(_) => return None,
    })
}
