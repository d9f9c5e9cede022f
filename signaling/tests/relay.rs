//! The relay protocol end to end: real WebSocket clients against the real relay on loopback.

mod common;

use common::*;
use futures_util::SinkExt;
use sotto_proto::{ErrorCode, Payload, ServerMessage};
use sotto_signaling::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn two_peers_relay_signals_both_ways_with_from_stamped() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, a_id, mut b, b_id) = pair(&relay, 1).await;
    a.signal(&b_id, "AQID").await;
    assert_eq!(
        b.recv().await,
        ServerMessage::Signal {
            from: a_id.clone(),
            data: Payload::parse("AQID".into()).unwrap()
        }
    );
    b.signal(&a_id, "BAUG").await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Signal {
            from: b_id,
            data: Payload::parse("BAUG".into()).unwrap()
        }
    );
}

#[tokio::test]
async fn a_client_cannot_spoof_the_sender() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, _a_id, mut b, b_id) = pair(&relay, 1).await;
    // A `from` field is not part of a client's signal: refused, not forwarded.
    a.send_text(format!(
        r#"{{"type":"signal","to":"{b_id}","from":"{b_id}","data":"AQID"}}"#
    ))
    .await;
    a.expect_error(ErrorCode::BadMessage).await;
    // b received nothing: the next thing it sees is a's real, stamped signal.
    a.signal(&b_id, "AA").await;
    match b.recv().await {
        ServerMessage::Signal { from, .. } => assert_ne!(from, b_id),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn peers_are_told_when_others_leave_or_drop() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, a_id, mut b, b_id) = pair(&relay, 1).await;
    b.send_text(r#"{"type":"leave"}"#).await;
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { peer: b_id });
    assert_eq!(
        b.expect_close().await.map(|f| u16::from(f.code)),
        Some(1000)
    );

    // A new peer takes the free place; then a's connection simply drops.
    let mut c = Client::connect(&relay).await;
    let (c_id, peers) = c.join(&room(1)).await;
    assert_eq!(peers, vec![a_id.clone()]);
    assert_eq!(a.recv().await, ServerMessage::PeerJoined { peer: c_id });
    drop(a);
    assert_eq!(c.recv().await, ServerMessage::PeerLeft { peer: a_id });
}

#[tokio::test]
async fn a_third_peer_gets_room_full_and_is_closed() {
    let relay = Relay::start(Config::default()).await;
    let (_a, _, _b, _) = pair(&relay, 1).await;
    let mut c = Client::connect(&relay).await;
    c.send(&sotto_proto::ClientMessage::Join {
        room: room(1),
        max: None,
    })
    .await;
    c.expect_error(ErrorCode::RoomFull).await;
    assert_eq!(
        c.expect_close().await.map(|f| u16::from(f.code)),
        Some(1008)
    );
}

#[tokio::test]
async fn a_group_room_holds_what_its_link_asks_up_to_the_relays_limit() {
    use sotto_proto::{ClientMessage, GroupSize};
    let relay = Relay::start(Config {
        max_peers: 4,
        ..Config::default()
    })
    .await;
    let group = |n| Some(GroupSize::new(n).unwrap());
    // Four people on a link for 4: each welcome lists those before and says 4.
    let mut people = Vec::new();
    for i in 0..4 {
        let mut c = Client::connect(&relay).await;
        c.send(&ClientMessage::Join {
            room: room(3),
            max: group(4),
        })
        .await;
        match c.recv().await {
            ServerMessage::Welcome { peers, max, .. } => {
                assert_eq!((peers.len(), max), (i, 4));
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        people.push(c);
    }
    // A fifth is refused, whatever its link says.
    let mut e = Client::connect(&relay).await;
    e.send(&ClientMessage::Join {
        room: room(3),
        max: group(16),
    })
    .await;
    e.expect_error(ErrorCode::RoomFull).await;
    // A link for more than the relay allows gets its own code and makes no room.
    let mut f = Client::connect(&relay).await;
    f.send(&ClientMessage::Join {
        room: room(4),
        max: group(5),
    })
    .await;
    f.expect_error(ErrorCode::GroupTooLarge).await;
    assert_eq!(
        f.expect_close().await.map(|f| u16::from(f.code)),
        Some(1008)
    );
    let (_g, g_id, _h, h_id) = pair(&relay, 4).await;
    assert_ne!(g_id, h_id, "room 4 was free for a one-to-one call");
}

#[tokio::test]
async fn after_a_bad_message_the_same_connection_still_works() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, _, mut b, b_id) = pair(&relay, 1).await;
    a.send_text("{not json").await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.send_text(r#"{"type":"teleport"}"#).await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.send_text(format!(
        r#"{{"type":"signal","to":"{b_id}","data":"not base64!"}}"#
    ))
    .await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    a.expect_error(ErrorCode::BadMessage).await;
    a.signal(&b_id, "AQID").await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { .. }));
}

#[tokio::test]
async fn signal_before_join_is_not_joined() {
    let relay = Relay::start(Config::default()).await;
    let (_a, a_id, _b, _) = pair(&relay, 1).await;
    let mut c = Client::connect(&relay).await;
    c.signal(&a_id, "AQID").await;
    c.expect_error(ErrorCode::NotJoined).await;
    // Still usable: it can join another room afterwards.
    c.join(&room(2)).await;
}

#[tokio::test]
async fn a_second_join_is_already_joined() {
    let relay = Relay::start(Config::default()).await;
    let mut a = Client::connect(&relay).await;
    a.join(&room(1)).await;
    a.send(&sotto_proto::ClientMessage::Join {
        room: room(2),
        max: None,
    })
    .await;
    a.expect_error(ErrorCode::AlreadyJoined).await;
}

#[tokio::test]
async fn a_peer_in_another_room_is_an_unknown_peer() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, _, _b, _) = pair(&relay, 1).await;
    let (mut c, c_id, mut d, d_id) = pair(&relay, 2).await;
    a.signal(&d_id, "AQID").await;
    a.expect_error(ErrorCode::UnknownPeer).await;
    // d never received a's message: the first thing it sees is its own room's traffic.
    c.signal(&d_id, "BAUG").await;
    assert_eq!(
        d.recv().await,
        ServerMessage::Signal {
            from: c_id,
            data: Payload::parse("BAUG".into()).unwrap()
        }
    );
}

#[tokio::test]
async fn a_flooding_client_is_limited_and_closed_while_other_rooms_are_unaffected() {
    let relay = Relay::start(Config::default()).await;
    let (mut flooder, _, mut victim, victim_id) = pair(&relay, 1).await;
    let (mut x, x_id, mut y, y_id) = pair(&relay, 2).await;

    // 1,000 messages per second from one client, for up to a second, while reading answers.
    let flood = async {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut limited = 0;
        for _ in 0..1000 {
            tick.tick().await;
            let text = format!(r#"{{"type":"signal","to":"{victim_id}","data":"AQID"}}"#);
            if flooder.ws.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        // Read everything the relay said: rate-limited errors, then the close.
        loop {
            match flooder.next_frame().await {
                Some(Message::Text(t)) => {
                    if let Ok(Some(ServerMessage::Error { code, .. })) =
                        ServerMessage::decode(t.as_str())
                    {
                        assert_eq!(code, ErrorCode::RateLimited);
                        limited += 1;
                    }
                }
                Some(Message::Close(frame)) => {
                    return (limited, frame.map(|f| u16::from(f.code)));
                }
                Some(_) => {}
                None => return (limited, None),
            }
        }
    };
    // Meanwhile, another room ping-pongs 40 messages at a normal pace.
    let other_room = async {
        for i in 0..20 {
            x.signal(&y_id, "AQID").await;
            assert!(
                matches!(y.recv().await, ServerMessage::Signal { .. }),
                "round {i}"
            );
            y.signal(&x_id, "BAUG").await;
            assert!(
                matches!(x.recv().await, ServerMessage::Signal { .. }),
                "round {i}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // a human-paced call set-up
        }
    };
    let ((limited, close), ()) = tokio::join!(flood, other_room);
    assert!(limited >= 1, "the flooder was never told it was limited");
    assert_eq!(close, Some(1008), "sustained abuse closes the connection");
    // The victim got what the limit let through, then learned the flooder is gone.
    let mut delivered = 0;
    loop {
        match victim.recv().await {
            ServerMessage::Signal { .. } => delivered += 1,
            ServerMessage::PeerLeft { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    // At most the burst (60) plus what the sustained rate (20/s) refilled during the flood,
    // which lasted well under a second before the relay closed it.
    assert!(
        delivered <= 60 + 20,
        "{delivered} messages passed the limit"
    );
    let metrics = relay.metrics().await;
    assert!(metric(&metrics, "sotto_errors_total{code=\"rate-limited\"}") >= 1);
}

#[tokio::test]
async fn an_idle_unjoined_socket_is_closed_at_the_join_deadline() {
    let relay = Relay::start(Config {
        join_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let mut idle = Client::connect(&relay).await;
    let started = tokio::time::Instant::now();
    idle.expect_error(ErrorCode::JoinTimeout).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        idle.expect_close().await.map(|f| u16::from(f.code)),
        Some(1008)
    );
    // A client that joins in time is not affected.
    let mut quick = Client::connect(&relay).await;
    quick.join(&room(1)).await;
    let mut other = Client::connect(&relay).await;
    let (other_id, _) = other.join(&room(1)).await;
    assert_eq!(
        quick.recv().await,
        ServerMessage::PeerJoined { peer: other_id }
    );
}

#[tokio::test]
async fn keepalive_drops_a_peer_that_stops_answering() {
    let relay = Relay::start(Config {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let (mut alive, _, dead, dead_id) = pair(&relay, 1).await;
    // `dead` is never polled again, so it never answers a ping; `alive` answers (tungstenite
    // replies to pings while `recv` reads).
    let started = tokio::time::Instant::now();
    assert_eq!(
        alive.recv().await,
        ServerMessage::PeerLeft { peer: dead_id }
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The live peer survives many ping intervals: it is still in the room and usable.
    let mut c = Client::connect(&relay).await;
    let (c_id, peers) = c.join(&room(1)).await;
    assert_eq!(peers.len(), 1);
    assert_eq!(alive.recv().await, ServerMessage::PeerJoined { peer: c_id });
    drop(dead);
}

#[tokio::test]
async fn past_the_connection_limit_a_client_gets_server_full() {
    let relay = Relay::start(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    let (_a, _, _b, _) = pair(&relay, 1).await;
    let mut c = Client::connect(&relay).await;
    c.expect_error(ErrorCode::ServerFull).await;
    assert_eq!(
        c.expect_close().await.map(|f| u16::from(f.code)),
        Some(1013)
    );
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_as_a_slow_consumer() {
    let relay = Relay::start(Config {
        send_queue: 4,
        rate: 10_000.0,
        burst: 10_000,
        ..Config::default()
    })
    .await;
    let (mut sender, _, stalled, stalled_id) = pair(&relay, 1).await;
    // 64 KiB messages (the limit, less the envelope) until the relay gives up on `stalled`,
    // which never reads: its socket buffers, the writer's bounded buffer and its 4-message
    // queue fill, and it is dropped instead of growing the relay's memory.
    let data = "A".repeat(65_536 - 100);
    let text = format!(r#"{{"type":"signal","to":"{stalled_id}","data":"{data}"}}"#);
    let mut sent = 0;
    let left = loop {
        sender.send_text(text.clone()).await;
        sent += 1;
        assert!(sent < 2_000, "the stalled peer was never dropped");
        // Answers come only when something happened; peek without blocking the sending.
        if let Ok(frame) = tokio::time::timeout(
            Duration::from_millis(1),
            futures_util::StreamExt::next(&mut sender.ws),
        )
        .await
        {
            match frame {
                Some(Ok(Message::Text(t))) => break ServerMessage::decode(t.as_str()).unwrap(),
                Some(Ok(_)) => {}
                other => panic!("sender lost its connection: {other:?}"),
            }
        }
    };
    assert_eq!(left, Some(ServerMessage::PeerLeft { peer: stalled_id }));
    let metrics = relay.metrics().await;
    assert_eq!(metric(&metrics, "sotto_slow_consumers_total"), 1);
    drop(stalled);
}

#[tokio::test]
async fn metrics_count_connections_rooms_messages_and_errors() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, _, mut b, b_id) = pair(&relay, 1).await;
    a.signal(&b_id, "AQIDBA").await;
    b.recv().await;
    a.send_text("nope").await;
    a.expect_error(ErrorCode::BadMessage).await;
    let m = relay.metrics().await;
    assert_eq!(metric(&m, "sotto_connections"), 2);
    assert_eq!(metric(&m, "sotto_rooms"), 1);
    assert_eq!(metric(&m, "sotto_messages_relayed_total"), 1);
    assert_eq!(metric(&m, "sotto_bytes_relayed_total"), 6);
    assert_eq!(metric(&m, "sotto_errors_total{code=\"bad-message\"}"), 1);
}

#[tokio::test]
async fn graceful_shutdown_closes_every_socket_and_returns() {
    let relay = Relay::start(Config::default()).await;
    let (mut a, _, mut b, _) = pair(&relay, 1).await;
    let mut unjoined = Client::connect(&relay).await;
    let addr = relay.addr;
    relay.shutdown().await.unwrap();
    for client in [&mut a, &mut b, &mut unjoined] {
        let frame = client.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1001);
        assert_eq!(frame.reason.as_str(), "relay shutting down");
    }
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// What one of several people joining a group room at once heard of it: its id, those its
/// `welcome` listed, and those announced after (`peer-joined`), in order.
async fn join_at_once(
    relay: &Relay,
    room: &sotto_proto::RoomId,
    n: usize,
) -> Vec<(
    sotto_proto::PeerId,
    Vec<sotto_proto::PeerId>,
    Vec<sotto_proto::PeerId>,
)> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(Client::connect(relay).await);
    }
    // Every join leaves before any answer is read.
    for c in &mut clients {
        c.send(&sotto_proto::ClientMessage::Join {
            room: room.clone(),
            max: Some(sotto_proto::GroupSize::new(n as u64).unwrap()),
        })
        .await;
    }
    let mut heard = Vec::new();
    // Every client stays connected until all were read: one dropped early would send the
    // others a `peer-left`, which the relay's workers may deliver before a `peer-joined` of
    // someone else (no order is promised between events about different people).
    for c in &mut clients {
        let (you, before) = match c.recv().await {
            ServerMessage::Welcome { you, peers, .. } => (you, peers),
            other => panic!("the first message after a join must be its welcome, got {other:?}"),
        };
        let mut after = Vec::new();
        while before.len() + after.len() < n - 1 {
            match c.recv().await {
                ServerMessage::PeerJoined { peer } => after.push(peer),
                other => panic!("expected peer-joined, got {other:?}"),
            }
        }
        heard.push((you, before, after));
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_joining_at_once_each_hear_their_welcome_first_and_every_pair_has_one_newcomer() {
    let relay = Relay::start(Config::default()).await;
    for r in 0..30u8 {
        let heard = join_at_once(&relay, &room(100 + r), 6).await;
        // For every two people, exactly one was there first: it got `peer-joined` for the
        // other, whose welcome listed it (so one of them commits to the pair, the other waits).
        for (a, a_before, a_after) in &heard {
            for (b, b_before, _) in &heard {
                if a == b {
                    continue;
                }
                let a_first = a_after.contains(b);
                assert_eq!(a_first, b_before.contains(a), "room {r}: {heard:?}");
                assert_ne!(a_first, a_before.contains(b), "room {r}: {heard:?}");
            }
        }
    }
}
