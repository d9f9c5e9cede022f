//! Several relays, one set of rooms (`--redis`): real relays, in-process and in processes of
//! their own, sharing rooms through Debian's `redis-server` on loopback (installed by the test
//! command), with real WebSocket clients.

mod common;

use common::*;
use futures_util::future::join_all;
use sotto_proto::{ClientMessage, ErrorCode, GroupSize, Payload, RoomId, ServerMessage};
use sotto_signaling::Config;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long peers of a relay that died may stay in their rooms (the relay's heartbeat expiry
/// and sweep, docs/relay.md), with room for a loaded machine.
const GONE_WITHIN: Duration = Duration::from_secs(8);

/// A `redis-server` of the test's own on a free loopback port, no persistence.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { child: None, port };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, and waits until it answers.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server from Debian's package (the test command installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20)); // polling a server's start
        }
    }

    /// Stops it (SIGKILL: as a crash or a lost network looks to the relays).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn clustered(redis: &Redis) -> Config {
    Config {
        redis: Some(redis.url()),
        ..Config::default()
    }
}

async fn join_max(c: &mut Client, room: &RoomId, max: Option<u64>) -> ServerMessage {
    c.send(&ClientMessage::Join {
        room: room.clone(),
        max: max.map(|n| GroupSize::new(n).unwrap()),
    })
    .await;
    c.recv().await
}

/// Waits until `GET /healthz` on `relay` answers `status`.
async fn health_becomes(relay: &Relay, status: u16) -> HttpResponse {
    let deadline = Instant::now() + WAIT;
    loop {
        let res = http_get(relay.addr, "/healthz").await;
        if res.status == status {
            return res;
        }
        assert!(
            Instant::now() < deadline,
            "healthz stayed {}: {}",
            res.status,
            res.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling a health endpoint
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_two_relays_meet_and_their_messages_arrive_in_order_exactly_once() {
    let redis = Redis::start();
    // No rate limit in the way: this is about order and counts.
    let unlimited = || Config {
        rate: 1e6,
        burst: 1_000_000,
        send_queue: 1024,
        ..clustered(&redis)
    };
    let (one, two) = (
        Relay::start(unlimited()).await,
        Relay::start(unlimited()).await,
    );
    let mut a = Client::connect(&one).await;
    let (a_id, peers) = a.join(&room(1)).await;
    assert!(peers.is_empty());
    let mut b = Client::connect(&two).await;
    let (b_id, peers) = b.join(&room(1)).await;
    assert_eq!(
        peers,
        vec![a_id.clone()],
        "b's welcome lists a, on the other relay"
    );
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined { peer: b_id.clone() }
    );
    // 300 signals each way, interleaved: each side gets the other's in order, once each.
    let payload = |n: u32| Payload::from_bytes(&n.to_be_bytes());
    for n in 0..300 {
        a.send(&ClientMessage::Signal {
            to: b_id.clone(),
            data: payload(n),
        })
        .await;
        b.send(&ClientMessage::Signal {
            to: a_id.clone(),
            data: payload(n),
        })
        .await;
    }
    for (c, from) in [(&mut a, &b_id), (&mut b, &a_id)] {
        for n in 0..300 {
            assert_eq!(
                c.recv().await,
                ServerMessage::Signal {
                    from: from.clone(),
                    data: payload(n)
                }
            );
        }
    }
    // A signal to someone not in the room is answered as on one relay.
    a.signal(&sotto_proto::PeerId::from_bytes(&[9; 16]), "AQID")
        .await;
    a.expect_error(ErrorCode::UnknownPeer).await;
    // b leaves: a is told, and a newcomer on either relay finds a place.
    b.send(&ClientMessage::Leave).await;
    assert_eq!(a.recv().await, ServerMessage::PeerLeft { peer: b_id });
    let mut c = Client::connect(&two).await;
    assert_eq!(c.join(&room(1)).await.1, vec![a_id]);
    let m = two.metrics().await;
    assert_eq!(metric(&m, "sotto_cluster_up"), 1);
    assert!(metric(&m, "sotto_cluster_published_total") >= 300, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_racing_for_the_last_seats_on_two_relays_leave_every_room_at_its_capacity() {
    let redis = Redis::start();
    let (one, two) = (
        Relay::start(clustered(&redis)).await,
        Relay::start(clustered(&redis)).await,
    );
    // 50 one-to-one rooms and 10 groups of 3, each with one member already: the last places
    // are raced for by one newcomer on each relay at the same moment.
    let mut first = Vec::new();
    for n in 0..60u8 {
        let mut c = Client::connect(&one).await;
        let max = (n >= 50).then_some(3);
        assert!(matches!(
            join_max(&mut c, &room(n), max).await,
            ServerMessage::Welcome { .. }
        ));
        first.push(c);
    }
    let race = (0..60u8).flat_map(|n| {
        let (one, two) = (&one, &two);
        let max = (n >= 50).then_some(3);
        let per_room = if n >= 50 { 3 } else { 1 };
        (0..per_room).map(move |i| async move {
            let relay = if i % 2 == 0 { one } else { two };
            let mut c = Client::connect(relay).await;
            let answer = join_max(&mut c, &room(n), max).await;
            (n, answer, c)
        })
    });
    let answers = join_all(race).await;
    for n in 0..60u8 {
        let got: Vec<_> = answers.iter().filter(|(r, ..)| *r == n).collect();
        let welcomed = got
            .iter()
            .filter(|(_, a, _)| matches!(a, ServerMessage::Welcome { .. }))
            .count();
        let full = got
            .iter()
            .filter(|(_, a, _)| {
                matches!(
                    a,
                    ServerMessage::Error {
                        code: ErrorCode::RoomFull,
                        ..
                    }
                )
            })
            .count();
        let (want_in, want_full) = if n >= 50 { (2, 1) } else { (1, 0) };
        let answers: Vec<_> = got.iter().map(|(_, a, _)| a).collect();
        assert_eq!(
            (welcomed, full),
            (want_in, want_full),
            "room {n}: {answers:?}"
        );
    }
    // Redis agrees: every room holds exactly its capacity.
    let mut conn = redis.conn().await;
    for n in 0..60u8 {
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(format!("sotto:room:{}", room(n).as_str()))
            .query_async(&mut conn)
            .await
            .unwrap();
        let members = fields.iter().filter(|f| *f != "cap" && *f != "seq").count();
        assert_eq!(members, if n >= 50 { 3 } else { 2 }, "room {n}: {fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_call_frees_its_peers_seats_and_the_other_side_hears_they_left() {
    let redis = Redis::start();
    let one = RelayProcess::start(&["--redis", &redis.url()]);
    let mut two = RelayProcess::start(&["--redis", &redis.url()]);
    let mut a = Client::connect(&one.relay()).await;
    let (a_id, _) = a.join(&room(1)).await;
    let mut b = Client::connect(&two.relay()).await;
    let (b_id, _) = b.join(&room(1)).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined { peer: b_id.clone() }
    );
    // kill -9: no close, no leave, nothing said to Redis.
    two.child.kill().unwrap();
    two.child.wait().unwrap();
    let killed = Instant::now();
    let told = tokio::time::timeout(GONE_WITHIN, a.recv())
        .await
        .expect("peer-left within the bound");
    assert_eq!(told, ServerMessage::PeerLeft { peer: b_id });
    eprintln!("peer-left {:?} after the kill", killed.elapsed());
    // The seat is free: someone new (on the relay still up) gets it and can call a.
    let mut c = Client::connect(&one.relay()).await;
    let (c_id, peers) = c.join(&room(1)).await;
    assert_eq!(peers, vec![a_id.clone()]);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined { peer: c_id.clone() }
    );
    c.signal(&a_id, "AQID").await;
    assert!(matches!(a.recv().await, ServerMessage::Signal { from, .. } if from == c_id));
    one.wait_log("a relay stopped; its peers left their rooms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_joins_are_refused_and_the_room_closes_then_all_works_again() {
    let mut redis = Redis::start();
    let relay = Relay::start(clustered(&redis)).await;
    let mut a = Client::connect(&relay).await;
    a.join(&room(1)).await;
    redis.stop();
    // The joined connection is told to come back later and closed (1013).
    a.expect_error(ErrorCode::Unavailable).await;
    let close = a.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);
    let res = health_becomes(&relay, 503).await;
    assert!(res.body.contains("redis unreachable"), "{}", res.body);
    assert_eq!(metric(&relay.metrics().await, "sotto_cluster_up"), 0);
    // Joins are refused with a code clients retry on.
    let mut b = Client::connect(&relay).await;
    b.send(&ClientMessage::Join {
        room: room(2),
        max: None,
    })
    .await;
    let why = b.expect_error(ErrorCode::Unavailable).await;
    assert!(why.contains("try again"), "{why}");
    // Redis is back (empty): so is the relay, by itself.
    redis.restart();
    health_becomes(&relay, 200).await;
    let (x, y) = (Client::connect(&relay).await, Client::connect(&relay).await);
    let (mut x, mut y) = (x, y);
    let (x_id, _) = x.join(&room(3)).await;
    assert_eq!(y.join(&room(3)).await.1, vec![x_id]);
    assert_eq!(metric(&relay.metrics().await, "sotto_cluster_up"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_data_in_the_relays_keys_never_crashes_a_relay() {
    let redis = Redis::start();
    let relay = Relay::start(clustered(&redis)).await;
    // Serving: so it has registered in Redis (it does before it serves).
    health_becomes(&relay, 200).await;
    let mut conn = redis.conn().await;
    // A room key that is not a hash; a room hash with garbage in it; a node that never was.
    let _: () = redis::cmd("SET")
        .arg(format!("sotto:room:{}", room(1).as_str()))
        .arg("not a hash")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("sotto:room:{}", room(2).as_str()))
        .arg("cap")
        .arg("lots")
        .arg("someone")
        .arg("not a member")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("sotto:nodes")
        .arg("ghost")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("sotto:node:ghost:peers")
        .arg("garbage entry")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Garbage published on the relay's own channel.
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg("sotto:nodes")
        .query_async(&mut conn)
        .await
        .unwrap();
    for node in nodes.iter().filter(|n| *n != "ghost") {
        for junk in [
            "",
            "x y z\n{}",
            "\u{0}\u{1}",
            "a b c d\n{\"type\":\"peer-left\"}",
        ] {
            let _: () = redis::cmd("PUBLISH")
                .arg(format!("sotto:node:{node}"))
                .arg(junk)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    // The room that is not a hash refuses its join with a clear error; the garbage room is
    // joinable (its junk member ignored); other rooms work; the relay counts what it dropped.
    let mut a = Client::connect(&relay).await;
    assert!(matches!(
        join_max(&mut a, &room(1), None).await,
        ServerMessage::Error {
            code: ErrorCode::Unavailable,
            ..
        }
    ));
    let mut b = Client::connect(&relay).await;
    let answer = join_max(&mut b, &room(2), None).await;
    assert!(
        matches!(
            answer,
            ServerMessage::Welcome { .. } | ServerMessage::Error { .. }
        ),
        "{answer:?}"
    );
    let (mut x, mut y) = (Client::connect(&relay).await, Client::connect(&relay).await);
    let (x_id, _) = x.join(&room(3)).await;
    assert_eq!(y.join(&room(3)).await.1, vec![x_id]);
    let deadline = Instant::now() + WAIT;
    while metric(&relay.metrics().await, "sotto_cluster_bad_data_total") < 4 {
        assert!(Instant::now() < deadline, "bad data not counted");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling a counter
    }
    assert_eq!(http_get(relay.addr, "/healthz").await.status, 200);
    // Signals still go through.
    let y_id = match x.recv().await {
        ServerMessage::PeerJoined { peer } => peer,
        other => panic!("{other:?}"),
    };
    x.signal(&y_id, "AQID").await;
    assert!(matches!(y.recv().await, ServerMessage::Signal { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_cannot_reach_redis_at_start_says_so() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        redis: Some(format!("redis://:hunter2@127.0.0.1:{free}")),
        ..Config::default()
    };
    let err = sotto_signaling::run(listener, config, std::future::pending::<()>())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "the password is never shown: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_shuts_down_takes_its_peers_out_of_their_rooms_before_it_exits() {
    let redis = Redis::start();
    let (one, two) = (
        Relay::start(clustered(&redis)).await,
        Relay::start(clustered(&redis)).await,
    );
    let mut a = Client::connect(&one).await;
    let (a_id, _) = a.join(&room(1)).await;
    let mut b = Client::connect(&two).await;
    let (b_id, _) = b.join(&room(1)).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined { peer: b_id.clone() }
    );
    one.shutdown().await.unwrap();
    // Its client got a close it can reconnect from; by the time it exited, Redis no longer
    // held its peer or the relay itself (no waiting for a heartbeat to expire), and the peer
    // on the other relay is told.
    let close = a.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    let mut conn = redis.conn().await;
    let members: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("sotto:room:{}", room(1).as_str()))
        .query_async(&mut conn)
        .await
        .unwrap();
    let members: Vec<_> = members
        .into_iter()
        .filter(|f| f != "cap" && f != "seq")
        .collect();
    assert_eq!(members, vec![b_id.as_str().to_owned()]);
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg("sotto:nodes")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(nodes.len(), 1, "only the relay still running: {nodes:?}");
    assert_eq!(b.recv().await, ServerMessage::PeerLeft { peer: a_id });
}
