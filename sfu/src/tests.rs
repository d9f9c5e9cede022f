//! The SFU with real WebRTC peers (str0m clients), wired in memory: three members connect over
//! ICE, DTLS and SRTP, send sealed-looking audio and video, and receive what their views ask
//! for. No socket, no sleep: the test moves the clock itself.

use super::*;
use std::net::Ipv4Addr;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Simulcast, SimulcastLayer};

const SFU: ([u8; 4], u16) = ([10, 0, 0, 1], 3478);

/// A conference member's peer connection, as a browser would make it.
struct Client {
    name: u8,
    addr: SocketAddr,
    rtc: Rtc,
    send_audio: Mid,
    send_video: Mid,
    recv_audio: Vec<Mid>,
    recv_video: Vec<Mid>,
    next: Instant,
    /// Frames it received: (mid, bytes).
    got: Vec<(Mid, Vec<u8>)>,
    keyframe_requests: usize,
    connected: bool,
}

/// An Opus frame as a member seals it: TOC, SFrame header (KID 0, CTR), ciphertext and tag.
fn audio_frame(ctr: u8, fill: u8) -> Vec<u8> {
    let mut f = vec![0x78, ctr & 7];
    f.extend([fill; 20]);
    f
}

/// A VP8 delta frame as a member seals it: the frame tag, then a KID of stream 1 (`0x4000`).
fn video_frame(ctr: u8, fill: u8) -> Vec<u8> {
    let mut f = vec![0x31, 0x02, 0x00, 0x90 | (ctr & 7), 0x40, 0x00];
    f.extend([fill; 40]);
    f
}

/// A VP8 key frame as a member seals it: the ten bytes of its tag in clear, then the header.
fn key_frame(ctr: u8, fill: u8) -> Vec<u8> {
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    f.extend([0x90 | (ctr & 7), 0x40, 0x00]);
    f.extend([fill; 40]);
    f
}

/// Frame `ctr` of a camera: a key frame first, then delta frames.
fn camera(ctr: u8, fill: u8) -> Vec<u8> {
    if ctr == 0 {
        key_frame(ctr, fill)
    } else {
        video_frame(ctr, fill)
    }
}

struct World {
    sfu: Sfu<u8, u8>,
    clients: Vec<Client>,
    now: Instant,
    /// Datagrams in flight: (destination, source, bytes).
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    events: Vec<Action<u8, u8>>,
}

impl World {
    fn new() -> Self {
        Self {
            sfu: Sfu::new(SFU.into()),
            clients: Vec::new(),
            now: Instant::now(),
            wire: VecDeque::new(),
            events: Vec::new(),
        }
    }

    /// Member `name` of room 1 offers: one audio and one video to send, `audio` and `video`
    /// m-lines to receive.
    fn join(&mut self, name: u8, audio: usize, video: usize) {
        self.join_with(name, audio, video, false);
    }

    /// As [`World::join`]; with `simulcast`, the video goes as layers `h` and `l`.
    fn join_with(&mut self, name: u8, audio: usize, video: usize, simulcast: bool) {
        let addr: SocketAddr = (Ipv4Addr::new(192, 168, 0, name), 5000).into();
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(self.now);
        let _ = rtc.add_local_candidate(Candidate::host(addr, "udp").expect("a candidate"));
        let mut change = rtc.sdp_api();
        let send_audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let layers = simulcast.then(|| {
            let mut s = Simulcast::new();
            s.add_send_layer(SimulcastLayer::new("h"));
            s.add_send_layer(SimulcastLayer::new("l"));
            s
        });
        let send_video =
            change.add_media(MediaKind::Video, Direction::SendOnly, None, None, layers);
        let recv_audio = (0..audio)
            .map(|_| change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None))
            .collect();
        let recv_video = (0..video)
            .map(|_| change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None))
            .collect();
        let (offer, pending) = change.apply().expect("an offer");
        let answer = self
            .sfu
            .offer(1, name, &offer.to_sdp_string(), self.now)
            .expect("the SFU answers");
        // The client offers the audio level and other codecs; the SFU takes neither: VP8 and
        // Opus only, no level in clear, and ICE-lite on one address.
        let offered = offer.to_sdp_string();
        assert!(offered.contains("ssrc-audio-level") && offered.contains("VP9"));
        assert!(!answer.contains("ssrc-audio-level"), "{answer}");
        assert!(
            !answer.contains("VP9") && !answer.contains("H264"),
            "{answer}"
        );
        assert!(answer.contains("a=ice-lite") && answer.contains("10.0.0.1 3478 typ host"));
        let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).expect("an answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("accepted");
        self.clients.push(Client {
            name,
            addr,
            rtc,
            send_audio,
            send_video,
            recv_audio,
            recv_video,
            next: self.now,
            got: Vec::new(),
            keyframe_requests: 0,
            connected: false,
        });
        self.pump();
    }

    fn client(&mut self, name: u8) -> &mut Client {
        self.clients
            .iter_mut()
            .find(|c| c.name == name)
            .expect("a client")
    }

    /// Moves every datagram and every clock until `done`, or fails after 10 simulated s.
    fn run_until(&mut self, what: &str, done: impl Fn(&World) -> bool) {
        let end = self.now + Duration::from_secs(10);
        while !done(self) {
            assert!(self.now < end, "not within 10 s: {what}");
            let next = self
                .clients
                .iter()
                .map(|c| c.next)
                .chain(self.sfu.poll_timeout())
                .min()
                .unwrap_or(self.now)
                .max(self.now)
                .min(self.now + Duration::from_millis(5));
            self.now = next.max(self.now + Duration::from_micros(100));
            for c in &mut self.clients {
                let _ = c.rtc.handle_input(Input::Timeout(self.now));
            }
            self.sfu.handle_timeout(self.now);
            self.pump();
        }
    }

    /// Delivers everything in flight, both ways, until quiet.
    fn pump(&mut self) {
        loop {
            for c in &mut self.clients {
                loop {
                    match c.rtc.poll_output().expect("a client output") {
                        Output::Timeout(t) => {
                            c.next = t;
                            break;
                        }
                        Output::Transmit(t) => {
                            self.wire
                                .push_back((t.destination, c.addr, t.contents.to_vec()));
                        }
                        Output::Event(Event::Connected) => c.connected = true,
                        Output::Event(Event::MediaData(d)) => c.got.push((d.mid, d.data.to_vec())),
                        Output::Event(Event::KeyframeRequest(_)) => c.keyframe_requests += 1,
                        Output::Event(_) => {}
                    }
                }
            }
            while let Some(action) = self.sfu.poll_action() {
                match action {
                    Action::Transmit {
                        destination,
                        contents,
                    } => self.wire.push_back((destination, SFU.into(), contents)),
                    other => self.events.push(other),
                }
            }
            let Some((to, from, bytes)) = self.wire.pop_front() else {
                return;
            };
            if to == SocketAddr::from(SFU) {
                self.sfu.receive(from, &bytes, self.now);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == to) {
                let input = Input::Receive(
                    self.now,
                    Receive {
                        proto: Protocol::Udp,
                        source: from,
                        destination: to,
                        contents: bytes.as_slice().try_into().expect("a datagram"),
                    },
                );
                c.rtc.handle_input(input).expect("the client takes it");
            }
        }
    }

    /// `name` sends one audio and one video frame.
    fn send(&mut self, name: u8, ctr: u8, audio: Vec<u8>, video: Vec<u8>) {
        let now = self.now;
        let c = self.client(name);
        let time = MediaTime::new(u64::from(ctr) * 960, Frequency::FORTY_EIGHT_KHZ);
        for (mid, codec, data) in [
            (c.send_audio, Codec::Opus, audio),
            (c.send_video, Codec::Vp8, video),
        ] {
            let writer = c.rtc.writer(mid).expect("a send m-line");
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == codec)
                .expect("the codec")
                .pt();
            let time = if codec == Codec::Vp8 {
                MediaTime::new(u64::from(ctr) * 3000, Frequency::NINETY_KHZ)
            } else {
                time
            };
            writer.write(pt, now, time, data).expect("written");
        }
        self.pump();
    }

    /// `name` sends one video frame on simulcast layer `rid`.
    fn send_layer(&mut self, name: u8, ctr: u8, rid: &str, frame: Vec<u8>) {
        let now = self.now;
        let c = self.client(name);
        let writer = c.rtc.writer(c.send_video).expect("a send m-line");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Vp8)
            .expect("VP8")
            .pt();
        let time = MediaTime::new(u64::from(ctr) * 3000, Frequency::NINETY_KHZ);
        writer
            .rid(rid.into())
            .write(pt, now, time, frame)
            .expect("written");
        self.pump();
    }

    fn received(&self, name: u8, mid: Mid) -> Vec<Vec<u8>> {
        self.clients
            .iter()
            .find(|c| c.name == name)
            .expect("a client")
            .got
            .iter()
            .filter(|(m, _)| *m == mid)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

#[test]
fn members_receive_the_sealed_frames_their_views_ask_for_and_nothing_else() {
    let mut w = World::new();
    for name in [1, 2, 3] {
        w.join(name, 2, 1);
    }
    // Cy says what he shows at once, before his connection is up (a page that joined the
    // group before its connection to the SFU came up): it takes effect when it is.
    let cy_audio = w.client(3).recv_audio[1];
    let early = Slot {
        mid: cy_audio.to_string(),
        peer: 1,
        layer: Layer::Low,
    };
    w.sfu.view(&1, &3, vec![early], w.now).expect("a view");
    w.run_until("every member connects", |w| {
        w.clients.iter().all(|c| c.connected)
            && w.events
                .iter()
                .filter(|e| matches!(e, Action::Connected { .. }))
                .count()
                == 3
    });
    // Bea shows Ada's audio and video; Cy shows Ada's audio only.
    let (bea_audio, bea_video) = (w.client(2).recv_audio[0], w.client(2).recv_video[0]);
    let slot = |mid: Mid, layer| Slot {
        mid: mid.to_string(),
        peer: 1,
        layer,
    };
    w.sfu
        .view(
            &1,
            &2,
            vec![slot(bea_audio, Layer::Low), slot(bea_video, Layer::High)],
            w.now,
        )
        .expect("a view");
    // A view naming a send m-line, or a mid twice, is refused.
    let ada_send = w.client(3).send_audio;
    assert!(matches!(
        w.sfu.view(&1, &3, vec![slot(ada_send, Layer::Low)], w.now),
        Err(Error::MemberSentBadView(_))
    ));
    assert!(matches!(
        w.sfu.view(
            &1,
            &3,
            vec![slot(cy_audio, Layer::Low), slot(cy_audio, Layer::Low)],
            w.now
        ),
        Err(Error::MemberSentBadView(_))
    ));
    for ctr in 0..5 {
        w.send(
            1,
            ctr,
            audio_frame(ctr, 0xa0 + ctr),
            camera(ctr, 0xb0 + ctr),
        );
        w.run_until("the frame arrives", |w| {
            w.received(2, bea_audio).len() > usize::from(ctr)
                && w.received(2, bea_video).len() > usize::from(ctr)
                && w.received(3, cy_audio).len() > usize::from(ctr)
        });
    }
    // Byte for byte what Ada sent, in order, and only where asked.
    let want: Vec<Vec<u8>> = (0..5).map(|c| audio_frame(c, 0xa0 + c)).collect();
    assert_eq!(w.received(2, bea_audio), want);
    assert_eq!(w.received(3, cy_audio), want);
    let want: Vec<Vec<u8>> = (0..5).map(|c| camera(c, 0xb0 + c)).collect();
    assert_eq!(w.received(2, bea_video), want);
    let cy_video = w.client(3).recv_video[0];
    assert!(w.received(3, cy_video).is_empty());
    assert!(w.client(1).got.is_empty(), "nobody showed Ada anything");
    assert_eq!(w.sfu.counters().frames_clear_dropped, 0);

    // A frame in the clear (no SFrame header after the VP8 tag) is dropped and counted.
    let clear = b"\x31\x02\x00plain video payload, no header here".to_vec();
    w.send(1, 5, audio_frame(5, 0xa5), clear);
    w.run_until("the audio arrives", |w| w.received(2, bea_audio).len() == 6);
    assert_eq!(w.received(2, bea_video).len(), 5);
    assert_eq!(w.sfu.counters().frames_clear_dropped, 1);

    // Ada is asked for key frames when a view switches to her and when the epoch changes, at
    // most once a second.
    let asked = w.client(1).keyframe_requests;
    assert!(asked >= 1, "Bea's new view asked Ada for a key frame");
    w.sfu.epoch_changed(&1, w.now);
    w.sfu.epoch_changed(&1, w.now);
    w.run_until("Ada hears the request", |w| {
        w.clients[0].keyframe_requests > asked
    });
    assert!(w.sfu.counters().keyframe_requests_throttled > 0);

    // Ada leaves: nothing more of hers arrives, and the others carry on.
    w.sfu.leave(&1, &1);
    w.send(1, 6, audio_frame(6, 0xa6), video_frame(6, 0xb6));
    w.run_until("a moment passes", |w| {
        w.clients
            .iter()
            .all(|c| c.next > w.now + Duration::from_millis(1))
    });
    assert_eq!(w.received(2, bea_audio).len(), 6);
    assert_eq!(w.sfu.member_count(), 2);
}

#[test]
fn viewers_get_the_layer_they_ask_for_and_the_other_while_it_is_stopped() {
    let mut w = World::new();
    w.join_with(1, 0, 0, true);
    w.join(2, 0, 1);
    w.join(3, 0, 1);
    w.run_until("every member connects", |w| {
        w.clients.iter().all(|c| c.connected)
    });
    let (bea, cy) = (w.client(2).recv_video[0], w.client(3).recv_video[0]);
    let slot = |mid: Mid, layer| Slot {
        mid: mid.to_string(),
        peer: 1,
        layer,
    };
    w.sfu
        .view(&1, &2, vec![slot(bea, Layer::High)], w.now)
        .expect("a view");
    w.sfu
        .view(&1, &3, vec![slot(cy, Layer::Low)], w.now)
        .expect("a view");
    // Delta frames before any key frame reach no one: a decoder would show garbage.
    w.send_layer(1, 0, "h", video_frame(0, 0xd0));
    w.send_layer(1, 0, "l", video_frame(0, 0xe0));
    // Then both layers flow from a key frame: Bea gets h, Cy gets l.
    for ctr in 1..4 {
        let frame = if ctr == 1 { key_frame } else { video_frame };
        w.send_layer(1, ctr, "h", frame(ctr, 0xd0));
        w.send_layer(1, ctr, "l", frame(ctr, 0xe0));
    }
    w.run_until("both have three frames", |w| {
        w.received(2, bea).len() == 3 && w.received(3, cy).len() == 3
    });
    assert!(w.received(2, bea).iter().all(|f| f[f.len() - 1] == 0xd0));
    assert!(w.received(3, cy).iter().all(|f| f[f.len() - 1] == 0xe0));
    assert!(
        w.received(2, bea)[0][0] & 1 == 0,
        "the first frame a viewer gets is a key frame"
    );
    // Ada's full layer stops (her encoder is short of CPU): after a second Bea gets the small
    // one from its next key frame, which Ada is asked for.
    let start = w.now;
    w.run_until("the full layer goes stale", |w| w.now > start + LAYER_STALE);
    let asked = w.client(1).keyframe_requests;
    w.send_layer(1, 4, "l", video_frame(4, 0xe0));
    w.run_until("Ada is asked for a key frame", |w| {
        w.clients[0].keyframe_requests > asked
    });
    assert_eq!(
        w.received(2, bea).len(),
        3,
        "no delta frame of the new layer"
    );
    w.send_layer(1, 5, "l", key_frame(5, 0xe0));
    w.run_until("Bea has the small layer", |w| w.received(2, bea).len() == 4);
    assert_eq!(w.received(2, bea)[3], key_frame(5, 0xe0));
    // The full layer is back: Bea goes back to it, from its key frame.
    w.send_layer(1, 6, "h", key_frame(6, 0xd0));
    w.run_until("Bea has the full layer again", |w| {
        w.received(2, bea)
            .last()
            .is_some_and(|f| f[f.len() - 1] == 0xd0)
    });
}
