//! The relay's SFU over real sockets (PROTOCOL.md §7.7): two conference members join an `#S.8`
//! room over WebSocket, each offers its one peer connection with `sfu-offer` and connects to the
//! SFU over UDP on the relay's own port (ICE-lite, DTLS-SRTP), says with `sfu-view` whose media
//! it shows; one member's sealed frames reach the other byte for byte, a member of a mesh room
//! is refused, and `/metrics` counts what was forwarded and no clear frame. The members are
//! str0m peer connections driven by this test; the browsers' turn comes with the conference page.

use futures_util::{SinkExt, StreamExt};
use sotto_proto::{
    ClientMessage, ErrorCode, GroupSize, Layer, PeerId, RoomId, ServerMessage, ViewSlot,
};
use sotto_tests::{Relay, WAIT};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins `room` (made for `max`), returns the socket and the id the relay gave.
async fn join(relay: SocketAddr, room: &RoomId, max: u64) -> (Ws, PeerId) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{relay}/ws"))
        .await
        .expect("connected");
    let join = ClientMessage::Join {
        room: room.clone(),
        max: Some(GroupSize::new(max).expect("a size")),
    };
    ws.send(Message::text(join.encode())).await.expect("sent");
    match next(&mut ws).await {
        ServerMessage::Welcome { you, .. } => (ws, you),
        other => panic!("not welcomed: {other:?}"),
    }
}

/// The next relay message that is not about someone joining or leaving.
async fn next(ws: &mut Ws) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the relay answers")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            match ServerMessage::decode(&text)
                .expect("decodes")
                .expect("known")
            {
                ServerMessage::PeerJoined { .. } | ServerMessage::PeerLeft { .. } => {}
                msg => return msg,
            }
        }
    }
}

/// A member's peer connection to the SFU, run by a task of its own over a real UDP socket.
struct Member {
    recv_audio: Mid,
    /// Frames to send (on its audio m-line).
    frames: mpsc::UnboundedSender<Vec<u8>>,
    /// Frames it received, with the m-line.
    got: mpsc::UnboundedReceiver<(Mid, Vec<u8>)>,
    connected: tokio::sync::watch::Receiver<bool>,
}

async fn member(ws: &mut Ws) -> Member {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a UDP socket");
    let local = socket.local_addr().expect("an address");
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    let _ = rtc.add_local_candidate(Candidate::host(local, "udp").expect("a candidate"));
    let mut change = rtc.sdp_api();
    let send_audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let recv_audio = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().expect("an offer");
    let msg = ClientMessage::SfuOffer {
        sdp: offer.to_sdp_string(),
    };
    ws.send(Message::text(msg.encode())).await.expect("sent");
    let ServerMessage::SfuAnswer { sdp } = next(ws).await else {
        panic!("no answer from the SFU")
    };
    let answer = SdpAnswer::from_sdp_string(&sdp).expect("SDP");
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .expect("accepted");
    let (frames, mut to_send) = mpsc::unbounded_channel::<Vec<u8>>();
    let (received, got) = mpsc::unbounded_channel();
    let (up, connected) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut ctr = 0u64;
        loop {
            let next;
            loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        next = t;
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(Event::Connected)) => {
                        let _ = up.send(true);
                    }
                    Ok(Output::Event(Event::MediaData(d))) => {
                        let _ = received.send((d.mid, d.data.to_vec()));
                    }
                    Ok(Output::Event(_)) => {}
                    Err(_) => return,
                }
            }
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { return };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp, source, destination: local, contents,
                    });
                    if rtc.handle_input(input).is_err() { return; }
                }
                frame = to_send.recv() => {
                    let Some(frame) = frame else { return };
                    let Some(writer) = rtc.writer(send_audio) else { continue };
                    let Some(pt) = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt()) else { continue };
                    ctr += 1;
                    let time = MediaTime::new(ctr * 960, Frequency::FORTY_EIGHT_KHZ);
                    let _ = writer.write(pt, Instant::now(), time, frame);
                }
                () = tokio::time::sleep_until(next.into()) => {
                    if rtc.handle_input(Input::Timeout(Instant::now())).is_err() { return; }
                }
            }
        }
    });
    Member {
        recv_audio,
        frames,
        got,
        connected,
    }
}

/// An Opus frame as a member seals it: TOC, SFrame header (KID 0, CTR), ciphertext and tag.
fn sealed(ctr: u8) -> Vec<u8> {
    let mut f = vec![0x78, ctr & 7];
    f.extend([0xc0 | ctr; 24]);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_connect_to_the_relays_sfu_over_udp_and_receive_each_others_sealed_frames() {
    let relay = Relay::start_with(sotto_signaling::Config {
        max_peers: 8,
        ..Default::default()
    })
    .await;
    let room = RoomId::from_bytes(&[5; 16]);
    let (mut ada_ws, ada_id) = join(relay.addr, &room, 8).await;
    let (mut bea_ws, _) = join(relay.addr, &room, 8).await;
    let ada = member(&mut ada_ws).await;
    let mut bea = member(&mut bea_ws).await;
    for m in [&ada, &bea] {
        let mut up = m.connected.clone();
        tokio::time::timeout(WAIT, up.wait_for(|c| *c))
            .await
            .expect("ICE and DTLS within the wait")
            .expect("the member runs");
    }
    // Bea shows Ada's audio on her receive m-line.
    let view = ClientMessage::SfuView {
        slots: vec![ViewSlot {
            mid: bea.recv_audio.to_string(),
            peer: ada_id.clone(),
            layer: Layer::Low,
        }],
    };
    bea_ws
        .send(Message::text(view.encode()))
        .await
        .expect("sent");
    // A view naming a mid Bea does not receive on is refused; the connection stays.
    let bad = ClientMessage::SfuView {
        slots: vec![ViewSlot {
            mid: "zz9".into(),
            peer: ada_id.clone(),
            layer: Layer::Low,
        }],
    };
    bea_ws
        .send(Message::text(bad.encode()))
        .await
        .expect("sent");
    assert!(matches!(
        next(&mut bea_ws).await,
        ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));
    // Ada sends until Bea has had three frames (the first may go out before the view lands).
    let mut heard = Vec::new();
    let mut ctr = 0;
    while heard.len() < 3 {
        ada.frames.send(sealed(ctr)).expect("Ada runs");
        ctr = ctr.wrapping_add(1);
        if let Ok(Some((mid, frame))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), bea.got.recv()).await
        {
            assert_eq!(mid, bea.recv_audio);
            heard.push(frame);
        }
        assert!(ctr < 100, "Bea heard nothing of Ada's");
    }
    for frame in &heard {
        assert_eq!(
            *frame,
            sealed(frame[2] & 0x3f),
            "byte for byte as Ada sent it"
        );
    }
    // The relay's metrics count the forwarded frames and no clear one.
    let metrics = http_get(relay.addr, "/metrics").await;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(value("sotto_sfu_frames_forwarded_total") >= 3);
    assert_eq!(value("sotto_sfu_frames_clear_dropped_total"), 0);
    assert_eq!(value("sotto_sfu_members"), 2);

    // A member of a mesh room gets no SFU.
    let (mut mesh_ws, _) = join(relay.addr, &RoomId::from_bytes(&[6; 16]), 4).await;
    let offer = ClientMessage::SfuOffer {
        sdp: "v=0\r\n".into(),
    };
    mesh_ws
        .send(Message::text(offer.encode()))
        .await
        .expect("sent");
    assert!(matches!(
        next(&mut mesh_ws).await,
        ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));
    relay.stop().await;
}

/// The body of `GET path` on the relay.
async fn http_get(relay: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(relay)
        .await
        .expect("connected");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("sent");
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.expect("read");
    out
}
