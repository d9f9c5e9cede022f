//! The one module that touches the webrtc crate (0.21.1). It turns the crate's callbacks into
//! [`RtcEvent`]s on a channel and offers a small async API; the call loop never sees a webrtc
//! type.
//!
//! What it configures, and why:
//! - Opus only (48 kHz, stereo signalling as WebRTC requires, FEC on). No video yet.
//! - The default interceptors (NACK, RTCP reports, TWCC): without them the crate's chain is
//!   empty and there are no RTCP reports for round-trip time and loss.
//! - No `ssrc-audio-level` header extension: it would put each packet's level in clear.
//! - A short ICE check interval: the default 200 ms is the whole set-up delay on a LAN.
//! - One negotiated data channel (id 0) for messages and files, its send buffer capped at
//!   1 MiB so a large file never piles up in memory.

use bytes::Bytes;
use rtc::media::Sample;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use sotto_proto::IceServer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, RTCStatsReportEntry, Registry, SettingEngineBuilder, StatsSelector,
    register_default_interceptors,
};
use webrtc::runtime::TokioRuntime;

/// Interval between ICE connectivity checks (the crate's default is 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(25);
/// Opus RTP clock rate.
const OPUS_CLOCK: u32 = 48_000;
/// Bytes the data channel may hold unsent before a send waits (PROTOCOL.md §3.6: 1 MiB).
const DATA_SEND_BUFFER: usize = 1024 * 1024;
/// Received data-channel messages queued for the call loop; when full, the channel's reader
/// waits, and SCTP's window holds the peer back.
const DATA_QUEUE: usize = 64;

/// An ICE candidate exactly as the browser's `RTCIceCandidate` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `candidate:...`
    pub candidate: String,
    /// The media section's id.
    pub sdp_mid: Option<String>,
    /// The media section's index.
    pub sdp_mline_index: Option<u16>,
}

/// The connection's overall state, as WebRTC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// ICE and DTLS are working on it.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity was lost; it may come back.
    Disconnected,
    /// ICE or DTLS failed for good.
    Failed,
    /// Closed.
    Closed,
}

/// What the WebRTC stack reports.
#[derive(Debug)]
pub enum RtcEvent {
    /// A local candidate to send to the peer (sealed).
    LocalCandidate(Candidate),
    /// Gathering finished: send `end-of-candidates`.
    GatheringComplete,
    /// The connection's state changed.
    State(ConnectionState),
    /// One RTP payload of the peer's audio track: an encrypted frame.
    RemoteAudio {
        /// The RTP sequence number.
        seq: u16,
        /// The payload, still SFrame-encrypted.
        payload: Bytes,
    },
}

/// What the pair's data channel reports.
#[derive(Debug)]
pub enum DataEvent {
    /// The channel is open both ways.
    Open,
    /// A binary message from the peer (sealed; the conversation opens it).
    Message(Vec<u8>),
    /// A text message: not part of the protocol, refused by the caller.
    Text,
    /// The channel closed.
    Closed,
}

/// Sends on the pair's data channel, in the order of the calls; a send waits while the
/// channel holds 1 MiB unsent. Cloneable, so a writer task can own one.
#[derive(Clone)]
pub struct DataWriter(Arc<dyn DataChannel>);

impl std::fmt::Debug for DataWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataWriter")
    }
}

impl DataWriter {
    /// Sends one binary message.
    pub async fn send(&self, bytes: Vec<u8>) -> Result<(), RtcError> {
        self.0
            .send(bytes::BytesMut::from(&bytes[..]))
            .await
            .map_err(err)
    }

    /// Closes the channel (after tampering: nothing more is read or sent on it).
    pub async fn close(&self) {
        let _ = self.0.close().await;
    }
}

/// Network settings for the peer connection.
#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    /// STUN/TURN servers: (urls, username, credential).
    pub ice_servers: Vec<IceServer>,
    /// Use relayed (TURN) candidates only: the peer never learns this side's address.
    pub relay_only: bool,
    /// Gather host candidates on loopback only (tests and same-host calls).
    pub loopback_only: bool,
}

/// Statistics for the status line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtcStats {
    /// Current round-trip time of the selected candidate pair, in seconds.
    pub rtt: Option<f64>,
    /// Fraction of our packets the peer reports lost (0 to 1).
    pub loss: Option<f64>,
}

struct Handler {
    events: mpsc::UnboundedSender<RtcEvent>,
    audio: mpsc::Sender<RtcEvent>,
}

fn state(s: RTCPeerConnectionState) -> Option<ConnectionState> {
    Some(match s {
        RTCPeerConnectionState::New | RTCPeerConnectionState::Connecting => {
            ConnectionState::Connecting
        }
        RTCPeerConnectionState::Connected => ConnectionState::Connected,
        RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
        RTCPeerConnectionState::Failed => ConnectionState::Failed,
        RTCPeerConnectionState::Closed => ConnectionState::Closed,
        _ => return None,
    })
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.events.send(RtcEvent::LocalCandidate(Candidate {
                candidate: init.candidate,
                // One bundled audio section: mid "0", index 0.
                sdp_mid: Some("0".to_owned()),
                sdp_mline_index: Some(0),
            }));
        }
    }

    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        if s == RTCIceGatheringState::Complete {
            let _ = self.events.send(RtcEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        if let Some(s) = state(s) {
            let _ = self.events.send(RtcEvent::State(s));
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // Handlers run on the driver task: read the track from a task of its own. A browser
        // peer also offers video; this client plays audio only, so other tracks are read and
        // discarded (unread, the stack's queue would fill).
        let audio = self.audio.clone();
        tokio::spawn(async move {
            let is_audio = track.kind().await == RtpCodecKind::Audio;
            while let Some(event) = track.poll().await {
                if !is_audio {
                    continue;
                }
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let event = RtcEvent::RemoteAudio {
                        seq: packet.header.sequence_number,
                        payload: packet.payload.clone(),
                    };
                    if audio.send(event).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
}

/// An error of the WebRTC stack, as text (the stack's own error type stays in this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcError(pub String);

impl std::fmt::Display for RtcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an SDP carries a data channel: an `m=application` section whose port is not 0 (a
/// port of 0 rejects the section). Every Sotto client offers one (PROTOCOL.md §3.6); another
/// implementation may not, and then messages and files cannot reach it.
pub fn carries_data_channel(sdp: &str) -> bool {
    sdp.lines()
        .filter_map(|line| line.trim_end().strip_prefix("m=application "))
        .any(|rest| rest.split(' ').next().is_some_and(|port| port != "0"))
}

fn err(e: impl std::fmt::Display) -> RtcError {
    RtcError(e.to_string())
}

/// One peer connection with one outgoing Opus track.
pub struct Rtc {
    pc: Arc<dyn PeerConnection>,
    data: Arc<dyn DataChannel>,
    audio: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    ssrc: u32,
    payload_type: Option<u8>,
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rtc(ssrc {:#x})", self.ssrc)
    }
}

/// The receiving ends of the stack's events: control events (never dropped) and audio
/// payloads (bounded).
#[derive(Debug)]
pub struct RtcEvents {
    /// Candidates, gathering and state changes.
    pub control: mpsc::UnboundedReceiver<RtcEvent>,
    /// The peer's audio payloads.
    pub audio: mpsc::Receiver<RtcEvent>,
    /// The data channel's events and messages (bounded).
    pub data: mpsc::Receiver<DataEvent>,
}

impl Rtc {
    /// A peer connection with an Opus track, ready to offer or answer.
    pub async fn new(net: &NetworkConfig) -> Result<(Self, RtcEvents), RtcError> {
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(err)?;
        let registry = register_default_interceptors(Registry::new(), &mut media).map_err(err)?;
        let mut config = RTCConfigurationBuilder::new().with_ice_servers(
            net.ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
        );
        if net.relay_only {
            config = config.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
            // A peer's first check often arrives before its trickled candidate does, so the
            // first working pair is peer-reflexive. The ICE agent waits 1 s after it starts
            // before nominating such a pair (in case a better one appears): that second was
            // most of call set-up on loopback (1.1 s from start to connected; 0.1 s without;
            // docs/benchmarks.md). Server-reflexive and relayed pairs keep their waits.
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            // Answering, be the DTLS server, and with it the SCTP server: the association is
            // up here when the peer's COOKIE ECHO arrives, a round trip before the peer may
            // send on the data channel. As the DTLS client, this side would learn it from a
            // COOKIE ACK that the peer's first messages can share a read burst with, and
            // webrtc 0.21.1 drops user data that reaches a negotiated stream before its side
            // has handled the association coming up (its driver reads a burst of datagrams
            // before it passes events on).
            .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server)
            .build();
        let (control_tx, control) = mpsc::unbounded_channel();
        let (audio_tx, audio) = mpsc::channel(512);
        let addr = if net.loopback_only {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        let pc = PeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_configuration(config.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_runtime(Arc::new(TokioRuntime))
            .with_handler(Arc::new(Handler {
                events: control_tx,
                audio: audio_tx,
            }))
            .with_udp_addrs(vec![addr])
            .with_data_channel_send_buffer_limit(DATA_SEND_BUFFER)
            .build()
            .await
            .map_err(err)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let mut ssrc_bytes = [0u8; 4];
        getrandom::fill(&mut ssrc_bytes).map_err(err)?;
        let ssrc = u32::from_be_bytes(ssrc_bytes);
        let audio_track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "sotto".into(),
                    "audio".into(),
                    "audio".into(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec: RTCRtpCodec {
                            mime_type: MIME_TYPE_OPUS.to_owned(),
                            clock_rate: OPUS_CLOCK,
                            channels: 2,
                            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                            rtcp_feedback: vec![],
                        },
                        ..Default::default()
                    }],
                ),
            )
            .map_err(err)?,
        );
        let sender = pc
            .add_track(Arc::clone(&audio_track) as Arc<dyn TrackLocal>)
            .await
            .map_err(err)?;
        // The pair's one data channel (PROTOCOL.md §3.6): negotiated, id 0, ordered, reliable;
        // in the offer because it exists before the offer is made.
        let data = pc
            .create_data_channel(
                "sotto",
                Some(RTCDataChannelInit {
                    ordered: true,
                    negotiated: Some(0),
                    ..Default::default()
                }),
            )
            .await
            .map_err(err)?;
        let (data_tx, data_events) = mpsc::channel(DATA_QUEUE);
        let reader = Arc::clone(&data);
        tokio::spawn(async move {
            while let Some(event) = reader.poll().await {
                let event = match event {
                    DataChannelEvent::OnOpen => DataEvent::Open,
                    DataChannelEvent::OnMessage(m) if m.is_string => DataEvent::Text,
                    DataChannelEvent::OnMessage(m) => DataEvent::Message(m.data.to_vec()),
                    DataChannelEvent::OnClose => DataEvent::Closed,
                    _ => continue,
                };
                if data_tx.send(event).await.is_err() {
                    break;
                }
            }
        });
        Ok((
            Self {
                pc,
                data,
                audio: audio_track,
                sender,
                ssrc,
                payload_type: None,
            },
            RtcEvents {
                control,
                audio,
                data: data_events,
            },
        ))
    }

    /// Creates the offer and sets it as the local description; returns its SDP.
    pub async fn create_offer(&mut self) -> Result<String, RtcError> {
        let offer = self.pc.create_offer(None).await.map_err(err)?;
        self.pc
            .set_local_description(offer.clone())
            .await
            .map_err(err)?;
        Ok(offer.sdp)
    }

    /// Applies the peer's offer, creates the answer and sets it; returns the answer's SDP.
    pub async fn answer(&mut self, offer_sdp: String) -> Result<String, RtcError> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(err)?;
        self.pc.set_remote_description(offer).await.map_err(err)?;
        let answer = self.pc.create_answer(None).await.map_err(err)?;
        self.pc
            .set_local_description(answer.clone())
            .await
            .map_err(err)?;
        self.learn_payload_type().await?;
        Ok(answer.sdp)
    }

    /// Applies the peer's answer.
    pub async fn accept_answer(&mut self, answer_sdp: String) -> Result<(), RtcError> {
        let answer = RTCSessionDescription::answer(answer_sdp).map_err(err)?;
        self.pc.set_remote_description(answer).await.map_err(err)?;
        self.learn_payload_type().await
    }

    async fn learn_payload_type(&mut self) -> Result<(), RtcError> {
        let params = self.sender.get_parameters().await.map_err(err)?;
        let codec = params
            .rtp_parameters
            .codecs
            .first()
            .ok_or_else(|| RtcError("the peer accepted no audio codec".into()))?;
        if !codec
            .rtp_codec
            .mime_type
            .eq_ignore_ascii_case(MIME_TYPE_OPUS)
        {
            return Err(RtcError("the peer did not accept Opus".into()));
        }
        self.payload_type = Some(codec.payload_type);
        Ok(())
    }

    /// Adds a candidate from the peer.
    pub async fn add_candidate(&self, c: Candidate) -> Result<(), RtcError> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
                username_fragment: None,
                url: None,
            })
            .await
            .map_err(err)
    }

    /// Sends one (already encrypted) audio frame lasting `duration`.
    pub async fn send_audio(&self, frame: Vec<u8>, duration: Duration) -> Result<(), RtcError> {
        let pt = self
            .payload_type
            .ok_or_else(|| RtcError("no payload type negotiated yet".into()))?;
        self.audio
            .sample_writer(self.ssrc, pt)
            .write_sample(&Sample {
                data: Bytes::from(frame),
                duration,
                ..Sample::new(Instant::now())
            })
            .await
            .map_err(err)
    }

    /// Round-trip time and loss, from the stack's statistics.
    pub async fn stats(&self) -> RtcStats {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let mut out = RtcStats::default();
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::IceCandidatePair(p) if p.current_round_trip_time > 0.0 => {
                    out.rtt = Some(p.current_round_trip_time);
                }
                RTCStatsReportEntry::RemoteInboundRtp(r) => out.loss = Some(r.fraction_lost),
                _ => {}
            }
        }
        out
    }

    /// A sender on the pair's data channel.
    pub fn data_writer(&self) -> DataWriter {
        DataWriter(Arc::clone(&self.data))
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
