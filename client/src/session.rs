//! The I/O shell of a call: the relay connection, the transports, and the audio, driven by one
//! loop that feeds the [`Room`] and carries out its [`Action`]s. Three things are kept apart:
//! each other *person* (name, device, conversation, what is heard of them), each *transport*
//! (a peer connection: one per pair here, one to the SFU in a conference) and the *key source*
//! ([`FrameKeys`]: each pair's keys here, the group's in a conference), so that the key for a
//! sender is never taken to be the key of a connection. The microphone is encoded once and
//! sealed for each transport with its key; what comes in is attributed to its sender by the key
//! that opens it, decoded, and mixed into the speakers (or the WAV file). Frames are sealed
//! before they reach the WebRTC stack and opened before they reach the decoder.

use crate::ClientError;
use crate::audio::{Due, Encoder, FRAME, Sink, Source};
use crate::call::Outcome;
use crate::chat::{Chat, ChatEvent, Command, FileOptions};
use crate::conversation::Direction;
use crate::frame_keys::FrameKeys;
use crate::known::{KnownDevices, ThisDevice, unix_now};
use crate::playout::{Playout, mix};
use crate::relay::{Endpoint, RelayEvent, RelaySender};
use crate::room::{Action, PairEnd, PairKeys, PeerAction, PeerNotice, Room, RoomNotice};
use crate::rtc::{DataEvent, NetworkConfig, RtcEvent, carries_data_channel};
use crate::transport::{Inlets, Transport, TransportId};
use serde::Serialize;
use sotto_e2ee::{DeviceId, EphemeralKey, Link};
use sotto_proto::{GroupSize, IceServer, PeerId, ServerMessage};
use std::collections::BTreeMap;
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
    /// Our name for the others (`hello`), at most 64 bytes.
    pub name: Option<String>,
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
    /// This device's key and the devices its person verified; `None`: incognito (no identity
    /// sent, nothing stored).
    pub device: Option<ThisDevice>,
    /// The sound card's report, when the microphone or the speakers are devices: told once as
    /// the `audio` event, and its levels and echo figures in every `stats`.
    pub audio: Option<crate::devices::Report>,
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
    /// Frames' time the machine was too busy to send or play (see `audio::MAX_LATE`).
    pub frames_late: u64,
    /// RTP packets that carried no payload at all (padding): not frames, ignored.
    pub empty_packets: u64,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Fraction of our packets the peer reports lost.
    pub loss: Option<f64>,
    /// The level of what was sent since the last stats (after processing), in dBFS (RMS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_level_db: Option<f64>,
    /// The level of what was played since the last stats, in dBFS (RMS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_level_db: Option<f64>,
    /// How much echo the canceller removes, in dB, once it has measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_removed_db: Option<f64>,
    /// Echo cancellation has converged (removes at least 10 dB); absent when it is off or
    /// there is no microphone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_converged: Option<bool>,
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
        /// In a group call, whose pair it is about (their relay id); none in a one-to-one call
        /// and for the room's own states.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
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
        /// In a group call, whose pair's code it is.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// The name someone gave (sealed; control characters removed).
    Name {
        /// What they call themselves.
        name: String,
        /// In a group call, who.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// Whether the other device is one this person verified before (PROTOCOL.md §3.8): once
    /// per pair when its identity arrives or is known not to come, and again after `/verify`.
    Identity {
        /// `known` (its key is stored under `name`: no need to compare the code), `unknown`
        /// (a device not verified here: compare the code) or `none` (it sent no device key).
        status: IdentityStatus,
        /// The name this person gave the device, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// In a group call, whose device.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// A `/verify` that could not be done, and why.
    VerifyError {
        /// What to do about it.
        error: String,
    },
    /// In a group call, someone's pair ended; the call goes on with the others.
    PeerGone {
        /// Their relay id.
        peer: String,
        /// Why (`hung up`, `left`, `set-up tampered with: ...`, ...).
        reason: String,
    },
    /// The sound card, once, before the call: what was opened and what runs on the microphone.
    Audio {
        /// The microphone, if it is a device.
        #[serde(skip_serializing_if = "Option::is_none")]
        input: Option<crate::devices::Format>,
        /// The speakers, if they are a device.
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<crate::devices::Format>,
        /// Echo cancellation runs on the microphone.
        echo_cancellation: bool,
        /// Noise suppression runs on the microphone.
        noise_suppression: bool,
        /// Automatic gain control runs on the microphone.
        gain_control: bool,
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
    Chat {
        /// In a group call, the pair it is about.
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// What happened.
        #[serde(flatten)]
        event: ChatEvent,
    },
}

impl Event {
    /// A state of the call (not of a pair).
    fn state(s: &str) -> Self {
        Self::State {
            state: s.to_owned(),
            peer: None,
        }
    }

    /// A chat event of the one-to-one call, or of a group's pair with `peer`.
    fn chat(peer: Option<&PeerId>, event: ChatEvent) -> Self {
        Self::Chat {
            peer: peer.map(|p| p.as_str().to_owned()),
            event,
        }
    }
}

/// What is known of another device (see [`Event::Identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityStatus {
    /// Verified here before: its signature over this call's transcript proves it is that device.
    Known,
    /// A device key this person never verified: a new device, or a man in the middle.
    Unknown,
    /// It sent no device key (incognito, an older client).
    None,
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
    let (room, actions) = Room::new(
        link.secret().clone(),
        group,
        Box::new(EphemeralKey::generate),
    );
    let (device_key, known) = match options.device.take() {
        Some(ThisDevice { key, known }) => (Some(key), Some(known)),
        None => (None, None),
    };
    let mut room = room.with_name(options.name.clone()).with_device(device_key);
    let (control, control_rx) = mpsc::unbounded_channel();
    let (audio, audio_rx) = mpsc::channel(512);
    let (data, data_rx) = mpsc::channel(256);
    let mut shell = Shell {
        relay,
        relay_events: Some(relay_events),
        reconnect_at: None,
        group: group.is_some(),
        people: BTreeMap::new(),
        transports: BTreeMap::new(),
        keys: FrameKeys::default(),
        inlets: Inlets {
            control,
            audio,
            data,
        },
        control_rx,
        audio_rx,
        data_rx,
        ice: Vec::new(),
        gone: Counters::default(),
        frames_late: 0,
        outcome: None,
        connected_at: None,
        heard: false,
        known,
    };
    shell
        .execute(&mut room, actions, &options, &mut notify)
        .await;

    let mut encoder = Encoder::new()?;
    let mut media_tick = interval(Duration::from_millis(20));
    // The tick stands for a sound card's clock, which loses no samples: a tick this loop was
    // too busy to take is taken late, not skipped, so what is sent and what is played stay in
    // step with time (a skipped tick would leave a hole in the sound and make every jitter
    // buffer drop a frame to catch up: a click).
    media_tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut stats_tick = interval(options.stats_interval);
    stats_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut reconnecting: Option<Reconnecting> = None;
    let far_future = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut input = options.input.take();
    if let Some(report) = &options.audio {
        let r = crate::devices::read(report);
        notify(Event::Audio {
            input: r.input,
            output: r.output,
            echo_cancellation: r.processing.echo_cancellation,
            noise_suppression: r.processing.noise_suppression,
            gain_control: r.processing.gain_control,
        });
    }
    let (mut sent_level, mut played_level) = (Level::default(), Level::default());
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
            Some((via, event)) = shell.control_rx.recv() => {
                let peer = via.person().clone();
                if !shell.transports.contains_key(&via) {
                    // From a connection already closed.
                    Vec::new()
                } else {
                    match event {
                        RtcEvent::LocalCandidate(c) => {
                            let typ = c.candidate.split_whitespace().skip_while(|w| *w != "typ").nth(1);
                            notify(Event::Candidate { typ: typ.unwrap_or("unknown").to_owned() });
                            room.local_candidate(&peer, c)
                        }
                        RtcEvent::GatheringComplete => room.gathering_complete(&peer),
                        RtcEvent::State(s) => {
                            let actions = room.connection_state(&peer, s, std::time::Instant::now());
                            if room.is_connected() && shell.connected_at.is_none() {
                                shell.connected_at = Some(Instant::now());
                            }
                            actions
                        }
                        RtcEvent::RemoteAudio { .. } => Vec::new(),
                    }
                }
            }
            // A pair still setting up when its time is up is given up (SETUP_TIMEOUT).
            () = sleep_until(room.poll_timeout().map_or(far_future, Instant::from_std)) => {
                room.handle_timeout(std::time::Instant::now())
            }
            Some((via, event)) = shell.audio_rx.recv() => {
                if let RtcEvent::RemoteAudio { payload, .. } = event {
                    shell.receive_audio(&via, &payload);
                    if !shell.heard && shell.counters().frames_received > 0 {
                        shell.heard = true;
                        notify(Event::state("receiving-audio"));
                    }
                }
                Vec::new()
            }
            // The call's clock: the microphone's when it is a device, else 20 ms ticks.
            due = options.source.next_due(&mut media_tick) => if let Some(Due { frame, missed }) = due {
                shell.frames_late += missed;
                sent_level.add(&frame);
                shell.send_audio(&room, &frame, &mut encoder).await;
                // The next 20 ms of everyone who has something to play, mixed.
                let pcm = shell.play();
                played_level.add(&pcm);
                match options.sink.skip(missed).and_then(|()| options.sink.write(&pcm)) {
                    Ok(()) => Vec::new(),
                    // The speakers or the WAV file failed: hang up properly, then say so.
                    Err(e) => {
                        failure = Some(e);
                        room.hang_up()
                    }
                }
            } else {
                failure = Some(ClientError::Audio("the microphone stopped".into()));
                room.hang_up()
            },
            _ = stats_tick.tick() => {
                shell.refresh_stats().await;
                if shell.keys.can_send() {
                    let mut c = shell.counters();
                    c.input_level_db = sent_level.take_db();
                    c.output_level_db = played_level.take_db();
                    if let Some(report) = &options.audio {
                        let r = crate::devices::read(report);
                        if r.input.is_some() && r.processing.echo_cancellation {
                            // Infinite when the microphone hears no echo at all.
                            c.echo_removed_db =
                                r.engine.processing.erle_db.filter(|db| db.is_finite());
                            c.echo_converged = Some(r.engine.processing.converged());
                        }
                    }
                    notify(Event::Stats(c));
                }
                Vec::new()
            }
            Some((via, event)) = shell.data_rx.recv() => {
                shell.data_event(&via, event, &mut notify);
                Vec::new()
            }
            peer = chunk_ready(shell.people.iter().filter_map(|(p, c)| c.chat.as_ref().map(|c| (p, c))).collect()) => {
                let tag = shell.tag(&peer);
                if let Some(chat) = shell.people.get_mut(&peer).and_then(|p| p.chat.as_mut()) {
                    chat.send_next_chunk(&mut |e| notify(Event::chat(tag.as_ref(), e)));
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
                Some(Ok(Some(Command::Verify { who, name }))) => {
                    shell.verify(who.as_deref(), name.as_deref(), &mut notify);
                    Vec::new()
                }
                Some(Ok(Some(command))) => {
                    shell.command(&command, &mut notify);
                    Vec::new()
                }
                Some(Err(error)) => {
                    notify(Event::chat(None, ChatEvent::MessagesError { error }));
                    Vec::new()
                }
            },
            () = sleep_until(deadline) => room.hang_up(),
            () = &mut hang_up => room.hang_up(),
        };
        shell
            .execute(&mut room, actions, &options, &mut notify)
            .await;
    }

    let counters = shell.counters();
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
    // Held mutably across the awaits: a connection's decoder may not be shared.
    for transport in shell.transports.values_mut() {
        transport.rtc.close().await;
    }
    // The WAV file is finished whatever ended the call; a failure during it is what is told.
    let finished = options.sink.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    finished?;
    let outcome = shell.outcome.unwrap_or(Outcome::HungUp);
    notify(Event::Ended {
        reason: outcome.to_string(),
        counters,
    });
    Ok((outcome, counters))
}

/// Resolves with a person whose chat wants the next chunk of a file read; never while none
/// does. Takes the chats only: the rest of a connection (its decoder) stays with the loop.
async fn chunk_ready(chats: Vec<(&PeerId, &Chat)>) -> PeerId {
    if chats.is_empty() {
        return std::future::pending().await;
    }
    let waiting = chats.into_iter().map(|(peer, chat)| {
        Box::pin(async move {
            chat.chunk_ready().await;
            peer.clone()
        })
    });
    futures_util::future::select_all(waiting).await.0
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

/// The next message, or never while there is no channel (no relay connection, no input).
async fn recv_some_bounded<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a typed line is answered with when the other side's client set up the call without a
/// data channel (PROTOCOL.md §3.6): no message or file can reach them in this call.
pub const NO_DATA_CHANNEL: &str = "the other side's client offered no data channel: messages and files cannot reach them in this call";

/// One other person of the call: who they are, what is said with them, what is heard of them.
/// How their frames travel is a [`Transport`]'s, and which key opens them the [`FrameKeys`]'.
struct Person {
    /// The transport that reaches them: their pair's.
    via: TransportId,
    /// The name they gave, for the commands that name a person.
    name: Option<String>,
    /// Their device key, once it signed this pair's transcript.
    device: Option<DeviceId>,
    /// Messages and files with them, once the keys exist.
    chat: Option<Chat>,
    /// What they send, waiting to be played.
    playout: Playout,
    /// What was heard from them: frames opened and frames concealed.
    counters: Counters,
}

struct Shell {
    relay: RelaySender,
    /// `None` while the relay is lost.
    relay_events: Option<mpsc::Receiver<RelayEvent>>,
    /// When to try the relay again, while it is lost.
    reconnect_at: Option<Instant>,
    /// A group call: events about a person say whose they are.
    group: bool,
    /// Everyone else in the call, by relay id.
    people: BTreeMap<PeerId, Person>,
    /// The peer connections.
    transports: BTreeMap<TransportId, Transport>,
    /// Whose key seals what goes out on a transport, and opens what comes from a sender.
    keys: FrameKeys,
    /// Where every transport's events go; they come out of the three receivers below.
    inlets: Inlets,
    control_rx: mpsc::UnboundedReceiver<(TransportId, RtcEvent)>,
    audio_rx: mpsc::Receiver<(TransportId, RtcEvent)>,
    data_rx: mpsc::Receiver<(TransportId, DataEvent)>,
    ice: Vec<IceServer>,
    /// What was counted with people whose connection has closed, while others remain.
    gone: Counters,
    /// Frames' time the call's loop was too busy for (see `Source::next_due`).
    frames_late: u64,
    outcome: Option<Outcome>,
    connected_at: Option<Instant>,
    /// `receiving-audio` was said.
    heard: bool,
    /// The devices this person verified; `None` in incognito.
    known: Option<KnownDevices>,
}

impl Counters {
    /// Adds `other`'s frame counts to these (round trip and loss are not sums).
    fn add_frames(&mut self, other: &Counters) {
        self.frames_sent += other.frames_sent;
        self.frames_received += other.frames_received;
        self.frames_failed += other.frames_failed;
        self.frames_concealed += other.frames_concealed;
        self.frames_late += other.frames_late;
        self.empty_packets += other.empty_packets;
    }
}

impl Shell {
    /// `peer`'s id for events, in a group call; `None` in a one-to-one call.
    fn tag(&self, peer: &PeerId) -> Option<PeerId> {
        self.group.then(|| peer.clone())
    }

    /// The call's counters: every transport's and everyone's, summed.
    fn counters(&self) -> Counters {
        let mut sum = self.gone;
        let mut rtts = Vec::new();
        let mut losses = Vec::new();
        let transports = self.transports.values().map(|t| t.counters);
        for c in transports.chain(self.people.values().map(|p| p.counters)) {
            sum.add_frames(&c);
            rtts.extend(c.rtt_ms);
            losses.extend(c.loss);
        }
        // The worst connection is the one to show.
        sum.frames_late = self.frames_late;
        sum.rtt_ms = rtts.into_iter().reduce(f64::max);
        sum.loss = losses.into_iter().reduce(f64::max);
        sum
    }

    /// The transport of `peer`'s pair, and the person it reaches, made on first use.
    async fn pair_transport(
        &mut self,
        peer: &PeerId,
        options: &CallOptions,
    ) -> Result<&mut Transport, String> {
        let via = TransportId::Pair(peer.clone());
        if !self.transports.contains_key(&via) {
            let net = NetworkConfig {
                ice_servers: options
                    .ice_servers
                    .clone()
                    .unwrap_or_else(|| self.ice.clone()),
                relay_only: options.relay_only,
                loopback_only: options.loopback_only,
            };
            let playout = Playout::new().map_err(|e| e.to_string())?;
            let transport = Transport::open(&via, &net, &self.inlets)
                .await
                .map_err(|e| e.to_string())?;
            self.transports.insert(via.clone(), transport);
            self.people.insert(
                peer.clone(),
                Person {
                    via: via.clone(),
                    name: None,
                    device: None,
                    chat: None,
                    playout,
                    counters: Counters::default(),
                },
            );
        }
        self.transports
            .get_mut(&via)
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

    /// Carries out one action for the pair with `peer`.
    async fn for_peer(
        &mut self,
        room: &mut Room,
        peer: PeerId,
        action: PeerAction,
        options: &CallOptions,
        notify: &mut impl FnMut(Event),
    ) -> Vec<Action> {
        match action {
            PeerAction::CreateOffer => match self.pair_transport(&peer, options).await {
                Ok(transport) => match transport.rtc.create_offer().await {
                    Ok(sdp) => room.offer_created(&peer, sdp),
                    Err(e) => room.rtc_failed(&peer, e.to_string()),
                },
                Err(e) => room.rtc_failed(&peer, e),
            },
            PeerAction::CreateAnswer(offer) => {
                let has_data = carries_data_channel(&offer);
                match self.pair_transport(&peer, options).await {
                    Ok(transport) => match transport.rtc.answer(offer).await {
                        Ok(sdp) => {
                            transport.peer_has_data = has_data;
                            room.answer_created(&peer, sdp)
                        }
                        Err(e) => room.rtc_failed(&peer, e.to_string()),
                    },
                    Err(e) => room.rtc_failed(&peer, e),
                }
            }
            PeerAction::AcceptAnswer(answer) => {
                match self.transports.get_mut(&TransportId::Pair(peer.clone())) {
                    Some(transport) => {
                        transport.peer_has_data = carries_data_channel(&answer);
                        match transport.rtc.accept_answer(answer).await {
                            Ok(()) => Vec::new(),
                            Err(e) => room.rtc_failed(&peer, e.to_string()),
                        }
                    }
                    None => room.rtc_failed(&peer, "answer before offer".into()),
                }
            }
            PeerAction::AddCandidate(c) => {
                if let Some(transport) = self.transports.get_mut(&TransportId::Pair(peer.clone())) {
                    // A candidate the stack cannot use is not fatal: others may work.
                    let _ = transport.rtc.add_candidate(c).await;
                }
                Vec::new()
            }
            PeerAction::Keys(keys) => {
                let PairKeys {
                    send,
                    receive,
                    conversation,
                } = *keys;
                // Frames: the key source. Messages: the person's, over their pair's channel.
                self.keys.pairwise(&peer, send, receive);
                if let Some(person) = self.people.get_mut(&peer)
                    && let Some(transport) = self.transports.get(&person.via)
                {
                    person.chat = Some(Chat::new(
                        conversation,
                        transport.rtc.data_writer(),
                        transport.data_open,
                        options.files.clone(),
                    ));
                }
                Vec::new()
            }
            PeerAction::Close => {
                self.close_peer(&peer).await;
                Vec::new()
            }
            PeerAction::Notify(PeerNotice::Identity(device)) => {
                if let Some(person) = self.people.get_mut(&peer) {
                    person.device = device;
                }
                notify(self.identity_event(&peer, device));
                Vec::new()
            }
            PeerAction::Notify(notice) => {
                if let (PeerNotice::Name(name), Some(person)) =
                    (&notice, self.people.get_mut(&peer))
                {
                    person.name = Some(name.clone());
                }
                if let Some(event) = peer_event(self.tag(&peer).as_ref(), notice) {
                    notify(event);
                }
                Vec::new()
            }
        }
    }

    /// The pair is over: its transport closes, its keys go, and the person goes with their
    /// conversation and audio. In a one-to-one call its counters go too (the next person
    /// starts from zero); in a group they stay in the call's.
    async fn close_peer(&mut self, peer: &PeerId) {
        self.keys.forget(peer);
        let person = self.people.remove(peer);
        let transport = self.transports.remove(&TransportId::Pair(peer.clone()));
        let closed = match transport {
            Some(transport) => Some(transport.close().await),
            None => None,
        };
        if person.is_none() && closed.is_none() {
            return;
        }
        if self.group {
            for counters in person.map(|p| p.counters).iter().chain(closed.iter()) {
                self.gone.add_frames(counters);
            }
        } else {
            self.heard = false;
        }
        // `--duration` counts from the connection: in a one-to-one call the next person's, in
        // a group the first (the call goes on, alone or not, until it is up).
        if !self.group && self.transports.is_empty() {
            self.connected_at = None;
        }
    }

    /// One 20 ms frame of the source: encoded once, sealed for each transport with its key,
    /// sent. Nothing goes out on a transport before its key exists.
    async fn send_audio(&mut self, room: &Room, pcm: &[i16; FRAME], encoder: &mut Encoder) {
        if !room.is_connected() || !self.keys.can_send() {
            return;
        }
        let Ok(opus) = encoder.encode(pcm) else {
            return;
        };
        for (via, transport) in &mut self.transports {
            let Some(Ok(sealed)) = self.keys.seal_for(via, &opus) else {
                continue;
            };
            if transport
                .rtc
                .send_audio(sealed, Duration::from_millis(20))
                .await
                .is_ok()
            {
                transport.counters.frames_sent += 1;
            }
        }
    }

    /// One payload that came in on `via`: opened with its sender's key, decoded, queued for
    /// the mix as theirs. A frame that does not open is dropped and counted on the transport it
    /// came by; it never reaches the decoder.
    fn receive_audio(&mut self, via: &TransportId, payload: &[u8]) {
        let Some(transport) = self.transports.get_mut(via) else {
            return;
        };
        if payload.is_empty() {
            // RTP packets without payload (padding, as Chromium sends for bandwidth probing)
            // carry no frame: nothing to open, nothing to play. Counted apart from failures.
            transport.counters.empty_packets += 1;
            return;
        }
        // Media before the keys opens with nothing, as does a frame that does not authenticate.
        match self.keys.open(via, payload) {
            Ok((sender, opened)) => match self.people.get_mut(&sender) {
                Some(person) => {
                    person.counters.frames_received += 1;
                    // The clear prefix is Opus' TOC byte: the whole frame is the Opus packet.
                    person
                        .playout
                        .push(opened.position(), opened.frame, std::time::Instant::now());
                }
                None => transport.counters.frames_failed += 1,
            },
            Err(_) => transport.counters.frames_failed += 1,
        }
    }

    /// The next 20 ms of everyone, mixed; silence when no one has anything to play. The sink
    /// gets 20 ms on every tick of the call's clock, so a WAV file runs in step with what was
    /// sent, from the start of the call to its end.
    fn play(&mut self) -> [i16; FRAME] {
        let mut frames = Vec::new();
        for person in self.people.values_mut() {
            frames.extend(person.playout.pull());
            person.counters.frames_concealed = person.playout.counters.concealed;
        }
        mix(&frames)
    }

    async fn refresh_stats(&mut self) {
        for transport in self.transports.values_mut() {
            transport.refresh_stats().await;
        }
    }

    /// An event of the data channel of `via`: the conversation with the person it reaches.
    fn data_event(&mut self, via: &TransportId, event: DataEvent, notify: &mut impl FnMut(Event)) {
        let tag = self.tag(via.person());
        let mut chat_notify = |e| notify(Event::chat(tag.as_ref(), e));
        let (Some(transport), Some(person)) = (
            self.transports.get_mut(via),
            self.people.get_mut(via.person()),
        ) else {
            return;
        };
        match (event, person.chat.as_mut()) {
            (DataEvent::Open, chat) => {
                transport.data_open = true;
                chat_notify(ChatEvent::MessagesReady);
                if let Some(chat) = chat {
                    chat.channel_open();
                }
            }
            (DataEvent::Message(bytes), Some(chat)) => chat.receive(&bytes, &mut chat_notify),
            (DataEvent::Text, Some(chat)) => chat.text_frame(&mut chat_notify),
            // The channel closed: the pair's end, or our own close after tampering, already
            // says why.
            (DataEvent::Closed, _) => {}
            (DataEvent::Message(_) | DataEvent::Text, None) => {
                // Nothing opens before the pair's keys exist (they are made before the
                // connection can start, so only a broken peer gets here): tampering, as in the
                // page (PROTOCOL.md §3.6).
                let writer = transport.rtc.data_writer();
                tokio::spawn(async move { writer.close().await });
                chat_notify(ChatEvent::MessagesError {
                    error: "messages tampered with (a message before the keys)".into(),
                });
            }
        }
    }

    /// A line typed during the call: a text or a file for everyone whose channel is open.
    fn command(&mut self, command: &Command, notify: &mut impl FnMut(Event)) {
        // Only once a channel is open (`messages-ready`), as the page's message box: webrtc
        // 0.21.1 drops what arrives on a negotiated stream before its side has handled the
        // association coming up, so a line sent the instant the channel opens could be lost
        // and break the sequence (PROTOCOL.md §3.6).
        let group = self.group;
        // A file command goes to the one person whose file has that number.
        let only = match command.file() {
            Some(file) => match self.file_owner(file) {
                Ok(peer) => Some(peer),
                Err(error) => {
                    return notify(Event::chat(None, ChatEvent::MessagesError { error }));
                }
            },
            None => None,
        };
        let mut sent = false;
        for (peer, person) in &mut self.people {
            if only.as_ref().is_some_and(|o| o != peer) {
                continue;
            }
            let tag = group.then(|| peer.clone());
            let (open, has_data) = self
                .transports
                .get(&person.via)
                .map_or((false, true), |t| (t.data_open, t.peer_has_data));
            if let (Some(chat), true) = (person.chat.as_mut(), open) {
                chat.command(command.clone(), &mut |e| {
                    notify(Event::chat(tag.as_ref(), e))
                });
                sent = true;
            } else if person.chat.is_some() && !has_data {
                // Waiting would not help: say so rather than "once connected".
                notify(Event::chat(
                    tag.as_ref(),
                    ChatEvent::MessagesError {
                        error: NO_DATA_CHANNEL.into(),
                    },
                ));
                sent = true;
            }
        }
        if !sent {
            notify(Event::chat(
                None,
                ChatEvent::MessagesError {
                    error: "messages and files go once the call is connected".into(),
                },
            ));
        }
    }
}

impl Shell {
    /// What `peer`'s device is to this person: known under a name, unknown, or not told.
    fn identity_event(&self, peer: &PeerId, device: Option<DeviceId>) -> Event {
        let name = device.and_then(|d| self.known.as_ref()?.name_of(&d).map(str::to_owned));
        let status = match (device, &name) {
            (None, _) => IdentityStatus::None,
            (Some(_), Some(_)) => IdentityStatus::Known,
            (Some(_), None) => IdentityStatus::Unknown,
        };
        Event::Identity {
            status,
            name,
            peer: self.tag(peer).map(|p| p.as_str().to_owned()),
        }
    }

    /// `/verify [WHO =] [NAME]`: the person compared the safety code with WHO (whoever's device
    /// is the one not yet known, when that is one person), and stores their device under NAME
    /// (else the name they gave).
    fn verify(&mut self, who: Option<&str>, name: Option<&str>, notify: &mut impl FnMut(Event)) {
        match self.verified(who, name) {
            Ok((peer, device)) => notify(self.identity_event(&peer, Some(device))),
            Err(error) => notify(Event::VerifyError { error }),
        }
    }

    fn verified(
        &mut self,
        who: Option<&str>,
        name: Option<&str>,
    ) -> Result<(PeerId, DeviceId), String> {
        let Some(known) = self.known.as_mut() else {
            return Err("incognito: no device is stored (and yours is not sent)".into());
        };
        let people = self.people.iter().map(|(peer, person)| Named {
            peer,
            name: person.name.as_deref(),
            device: person.device,
            known: person.device.is_some_and(|d| known.name_of(&d).is_some()),
        });
        let (peer, device, given) = device_to_verify(who, people)?;
        let Some(name) = name.map(str::to_owned).or(given) else {
            return Err("/verify needs a name for their device, e.g. /verify Ada's laptop".into());
        };
        known
            .remember(&name, device, unix_now())
            .map_err(|e| e.to_string())?;
        Ok((peer, device))
    }
}

/// One person of the call, as a command that names people sees them.
struct Named<'a> {
    peer: &'a PeerId,
    /// The name they gave.
    name: Option<&'a str>,
    /// Their device key, when it signed the pair's transcript.
    device: Option<DeviceId>,
    /// Their device is one this person verified before.
    known: bool,
}

impl Named<'_> {
    /// `who` (their name, any case, or the start of their relay id) means them.
    fn is(&self, who: &str) -> bool {
        self.peer.as_str().starts_with(who)
            || self.name.is_some_and(|n| n.eq_ignore_ascii_case(who))
    }

    /// How a command's error names them: the start of their id, and their name.
    fn label(&self) -> String {
        let short: String = self.peer.as_str().chars().take(6).collect();
        self.name
            .map_or_else(|| short.clone(), |n| format!("{short} ({n})"))
    }
}

/// Whose device `/verify` means: the one person `who` names; without `who`, the one whose
/// device is not yet known (or the only device there is, to rename it). Returns their id,
/// their device key and the name they gave; otherwise words saying why not.
fn device_to_verify<'a>(
    who: Option<&str>,
    people: impl Iterator<Item = Named<'a>>,
) -> Result<(PeerId, DeviceId, Option<String>), String> {
    let people: Vec<Named<'a>> = people.collect();
    let with_device: Vec<&Named<'a>> = people.iter().filter(|p| p.device.is_some()).collect();
    let candidates: Vec<&Named<'a>> = match who {
        Some(w) => with_device.iter().copied().filter(|p| p.is(w)).collect(),
        None => {
            let unknown: Vec<&Named<'a>> =
                with_device.iter().copied().filter(|p| !p.known).collect();
            if unknown.is_empty() && with_device.len() == 1 {
                with_device.clone()
            } else {
                unknown
            }
        }
    };
    match candidates.as_slice() {
        [one] => match one.device {
            Some(device) => Ok((one.peer.clone(), device, one.name.map(str::to_owned))),
            None => Err("no device to verify yet".into()),
        },
        [] if with_device.is_empty() && !people.is_empty() => Err(
            "no device to verify: they sent no device key (incognito, or an older client); \
             compare the code on each call"
                .into(),
        ),
        [] => Err(match who {
            Some(w) => format!("no one called {w} with a device key in this call"),
            None => "no device to verify yet".into(),
        }),
        several => Err(format!(
            "{} devices could be meant: say whose, /verify WHO = NAME (WHO: {})",
            several.len(),
            several
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl Shell {
    /// Who has file `id` going `direction`, of those named `who` (see [`file_owner`]).
    fn file_owner(
        &self,
        (id, direction, who): (u32, Direction, Option<&str>),
    ) -> Result<PeerId, String> {
        file_owner(
            id,
            who,
            self.people.iter().map(|(peer, person)| {
                let has = person
                    .chat
                    .as_ref()
                    .is_some_and(|c| c.has_file(id, direction));
                (peer, person.name.as_deref(), has)
            }),
        )
    }
}

/// Of `people` (their id, name, and whether they have file `id`), the one a file command is
/// for: the only one with the file, among those `who` names (their name, any case, or the start
/// of their id); otherwise words saying why not (no one, or several: then whose to say).
fn file_owner<'a>(
    id: u32,
    who: Option<&str>,
    people: impl Iterator<Item = (&'a PeerId, Option<&'a str>, bool)>,
) -> Result<PeerId, String> {
    let owners: Vec<Named<'a>> = people
        .filter(|(_, _, has)| *has)
        .map(|(peer, name, _)| Named {
            peer,
            name,
            device: None,
            known: false,
        })
        .filter(|p| who.is_none_or(|w| p.is(w)))
        .collect();
    let with = who.map(|w| format!(" with {w}")).unwrap_or_default();
    match owners.as_slice() {
        [one] => Ok(one.peer.clone()),
        [] => Err(format!("no file {id}{with} to do that with")),
        several => Err(format!(
            "file {id}: {} people have a file of that number; say whose, e.g. after the number: {}",
            several.len(),
            several
                .iter()
                .map(Named::label)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `delay` plus up to a fifth more, at random: clients that lost the same relay do not all
/// come back in the same instant.
/// The level of what passed since it was last read: RMS in dBFS (full-scale sine -3 dB),
/// never below -90.
#[derive(Debug, Default)]
struct Level {
    squares: f64,
    samples: usize,
}

impl Level {
    fn add(&mut self, pcm: &[i16]) {
        self.squares += pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        self.samples += pcm.len();
    }

    fn take_db(&mut self) -> Option<f64> {
        let Level { squares, samples } = std::mem::take(self);
        (samples > 0).then(|| {
            let rms = (squares / samples as f64).sqrt() / 32768.0;
            (20.0 * rms.max(1e-9).log10()).max(-90.0)
        })
    }
}

fn jittered(delay: Duration) -> Duration {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    delay + delay.mul_f64(f64::from(b[0]) / 255.0 / 5.0)
}

fn room_event(notice: RoomNotice) -> Event {
    match notice {
        RoomNotice::WaitingForPeers => Event::state("waiting-for-peer"),
        RoomNotice::Reconnecting { attempt, delay } => Event::Reconnecting {
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        },
    }
}

/// The event of a notice about a person (`tag`: their id, in a group call). In a one-to-one
/// call a pair that ends for any reason but their leaving ends the call, which says why itself;
/// in a group their going is an event of its own.
fn peer_event(tag: Option<&PeerId>, notice: PeerNotice) -> Option<Event> {
    let peer = tag.map(|p| p.as_str().to_owned());
    let state = |s: &str| Event::State {
        state: s.to_owned(),
        peer: peer.clone(),
    };
    Some(match notice {
        PeerNotice::Found(_) => state("handshake"),
        PeerNotice::KeysConfirmed => state("keys-confirmed"),
        PeerNotice::SafetyCode(code) => Event::Sas {
            code: code.digits(),
            peer,
        },
        PeerNotice::Connection(c) => state(match c {
            crate::rtc::ConnectionState::Connecting => "connecting",
            crate::rtc::ConnectionState::Connected => "connected",
            crate::rtc::ConnectionState::Disconnected => "disconnected",
            crate::rtc::ConnectionState::Failed => "failed",
            crate::rtc::ConnectionState::Closed => "closed",
        }),
        PeerNotice::LostRelay => state("peer-lost-relay"),
        // The pair is made again (PROTOCOL.md §3.3): a new handshake and code follow.
        PeerNotice::Dropped => state("connection-dropped"),
        PeerNotice::Name(name) => Event::Name { name, peer },
        // Looked up in the known devices by the shell (`Shell::identity_event`).
        PeerNotice::Identity(_) => return None,
        PeerNotice::Gone(why) => match peer {
            Some(peer) => Event::PeerGone {
                peer,
                reason: why.to_string(),
            },
            None if why == PairEnd::Left => state("peer-left"),
            None => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_means_the_one_unknown_device_or_the_person_named_and_asks_whose_otherwise() {
        let (a, b, c) = (
            PeerId::from_bytes(&[1; 16]),
            PeerId::from_bytes(&[2; 16]),
            PeerId::from_bytes(&[3; 16]),
        );
        let key = |n: u8| sotto_e2ee::DeviceKey::from_seed(&[n; 32]).id();
        let person = |peer, name, device: Option<DeviceId>, known| Named {
            peer,
            name,
            device,
            known,
        };
        // Ada's device is known, Bea's is not, Cy sent none: /verify alone means Bea's.
        let people = || {
            [
                person(&a, Some("Ada"), Some(key(1)), true),
                person(&b, Some("Bea"), Some(key(2)), false),
                person(&c, Some("Cy"), None, false),
            ]
            .into_iter()
        };
        assert_eq!(
            device_to_verify(None, people()),
            Ok((b.clone(), key(2), Some("Bea".into())))
        );
        assert_eq!(
            device_to_verify(Some("ada"), people()),
            Ok((a.clone(), key(1), Some("Ada".into())))
        );
        assert_eq!(
            device_to_verify(Some("Cy"), people()),
            Err("no one called Cy with a device key in this call".into())
        );
        // Two unknown devices: say whose.
        let two = [
            person(&a, Some("Ada"), Some(key(1)), false),
            person(&b, None, Some(key(2)), false),
        ];
        let err = device_to_verify(None, two.into_iter()).unwrap_err();
        assert!(
            err.contains("2 devices could be meant") && err.contains("(Ada)"),
            "{err}"
        );
        // The one device there is, already known: it may be renamed.
        let one = [person(&a, None, Some(key(1)), true)];
        assert_eq!(
            device_to_verify(None, one.into_iter()),
            Ok((a.clone(), key(1), None))
        );
        // Someone who sent no key.
        let none = [person(&c, None, None, false)];
        assert!(
            device_to_verify(None, none.into_iter())
                .unwrap_err()
                .contains("sent no device key")
        );
        assert_eq!(
            device_to_verify(None, std::iter::empty()),
            Err("no device to verify yet".into())
        );
    }

    #[test]
    fn a_file_command_goes_to_the_one_person_with_that_file_or_asks_whose() {
        let (a, b, c) = (
            PeerId::from_bytes(&[1; 16]),
            PeerId::from_bytes(&[2; 16]),
            PeerId::from_bytes(&[3; 16]),
        );
        let short = |p: &PeerId| p.as_str()[..6].to_owned();
        let people = || {
            [
                (&a, Some("Ada"), true),
                (&b, None, true),
                (&c, Some("Cy"), false),
            ]
            .into_iter()
        };
        let several = file_owner(3, None, people()).unwrap_err();
        assert!(
            several.contains("2 people")
                && several.contains(&format!("{} (Ada), {}", short(&a), short(&b))),
            "{several}"
        );
        assert_eq!(file_owner(3, Some("ada"), people()), Ok(a.clone()));
        assert_eq!(
            file_owner(3, Some(&short(&b)[..4]), people()),
            Ok(b.clone())
        );
        assert_eq!(
            file_owner(3, Some("Cy"), people()),
            Err("no file 3 with Cy to do that with".into())
        );
        let one = [(&a, None, false), (&c, None, true)];
        assert_eq!(file_owner(0, None, one.into_iter()), Ok(c.clone()));
        assert_eq!(
            file_owner(0, None, std::iter::empty()),
            Err("no file 0 to do that with".into())
        );
    }
}
