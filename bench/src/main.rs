//! `relay-load`: measures a signaling relay from outside, as its users load it.
//!
//! - `pingpong`: pairs of clients in rooms of their own send a message of `--size` bytes back
//!   and forth for `--seconds`; reports messages relayed per second and the one-way latency of
//!   each message (p50, p99), stamped by the sender and read by the receiver on one clock.
//! - `idle`: opens `--clients` connections that each join a room and then stay silent; reports
//!   the relay's resident memory per connection (`--server-pid`).
//!
//! Only Sotto's protocol is spoken so far; adapters for matchbox_server and the PeerJS server
//! are the next step (bench/README.md). Benchmarks are never part of the test suite.
#![forbid(unsafe_code)]

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, Payload, PeerId, RoomId, ServerMessage};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Pingpong,
    Idle,
}

#[derive(Debug, Parser)]
#[command(name = "relay-load", about = "Load a signaling relay and measure it.")]
struct Args {
    /// What to measure.
    #[arg(value_enum)]
    mode: Mode,
    /// The relay's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Clients (two per room).
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Payload bytes per message (before base64url).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// How long to ping-pong.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The relay's process id, for its memory (idle mode).
    #[arg(long)]
    server_pid: Option<u32>,
}

fn room(i: usize) -> RoomId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    bytes[8..].copy_from_slice(&0x736f74746f62656eu64.to_be_bytes());
    RoomId::from_bytes(&bytes)
}

async fn send(ws: &mut Ws, msg: &ClientMessage) {
    ws.send(Message::Text(msg.encode().into()))
        .await
        .expect("send to relay");
}

async fn recv(ws: &mut Ws) -> ServerMessage {
    loop {
        match ws.next().await.expect("relay closed").expect("relay read") {
            Message::Text(t) => {
                if let Ok(Some(msg)) = ServerMessage::decode(t.as_str()) {
                    return msg;
                }
            }
            Message::Close(_) => panic!("relay closed the connection"),
            _ => {}
        }
    }
}

/// Two clients joined to room `i`: (first, second, second's id, first's id).
async fn pair(url: &str, i: usize) -> (Ws, Ws, PeerId, PeerId) {
    let (mut a, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    send(&mut a, &ClientMessage::Join { room: room(i) }).await;
    let ServerMessage::Welcome { you: a_id, .. } = recv(&mut a).await else {
        panic!("welcome")
    };
    let (mut b, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    send(&mut b, &ClientMessage::Join { room: room(i) }).await;
    let ServerMessage::Welcome { you: b_id, .. } = recv(&mut b).await else {
        panic!("welcome")
    };
    let ServerMessage::PeerJoined { .. } = recv(&mut a).await else {
        panic!("peer-joined")
    };
    (a, b, b_id, a_id)
}

/// One message: 8 bytes of send time (micros since `epoch`), then filler to `size`.
fn stamped(epoch: Instant, size: usize) -> Payload {
    let mut bytes = vec![0x5a; size.max(8)];
    let micros = epoch.elapsed().as_micros() as u64;
    bytes[..8].copy_from_slice(&micros.to_be_bytes());
    Payload::from_bytes(&bytes)
}

fn latency(epoch: Instant, data: &Payload) -> u64 {
    let bytes = data.decode();
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&bytes[..8]);
    (epoch.elapsed().as_micros() as u64).saturating_sub(u64::from_be_bytes(sent))
}

/// Bounces messages between `a` and `b` until `until`; returns each message's latency.
async fn bounce(
    mut a: Ws,
    mut b: Ws,
    to_b: PeerId,
    to_a: PeerId,
    size: usize,
    epoch: Instant,
    until: Instant,
) -> Vec<u64> {
    let mut lat = Vec::new();
    send(
        &mut a,
        &ClientMessage::Signal {
            to: to_b.clone(),
            data: stamped(epoch, size),
        },
    )
    .await;
    let mut ab = true;
    while Instant::now() < until {
        // Whoever the last message went to receives it and answers the other side.
        let (rx, to) = if ab { (&mut b, &to_a) } else { (&mut a, &to_b) };
        match recv(rx).await {
            ServerMessage::Signal { data, .. } => lat.push(latency(epoch, &data)),
            other => panic!("unexpected {other:?}"),
        }
        send(
            rx,
            &ClientMessage::Signal {
                to: to.clone(),
                data: stamped(epoch, size),
            },
        )
        .await;
        ab = !ab;
    }
    lat
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server /proc entry");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.mode {
        Mode::Pingpong => {
            let pairs = (args.clients / 2).max(1);
            let mut set = Vec::new();
            for i in 0..pairs {
                set.push(pair(&args.url, i).await);
            }
            let epoch = Instant::now();
            let until = epoch + Duration::from_secs_f64(args.seconds);
            let tasks: Vec<_> = set
                .into_iter()
                .map(|(a, b, to_b, to_a)| {
                    tokio::spawn(bounce(a, b, to_b, to_a, args.size, epoch, until))
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("pair task"));
            }
            let elapsed = epoch.elapsed().as_secs_f64();
            all.sort_unstable();
            println!(
                "pingpong clients={} size={} messages/s={:.0} p50_ms={:.2} p99_ms={:.2}",
                pairs * 2,
                args.size,
                all.len() as f64 / elapsed,
                percentile(&all, 0.50),
                percentile(&all, 0.99)
            );
        }
        Mode::Idle => {
            let pid = args.server_pid.expect("--server-pid for idle mode");
            let before = rss_kib(pid);
            let mut held = Vec::with_capacity(args.clients);
            for i in 0..args.clients {
                let (mut ws, _) = tokio_tungstenite::connect_async(&args.url)
                    .await
                    .expect("connect");
                send(
                    &mut ws,
                    &ClientMessage::Join {
                        room: room(1_000_000 + i),
                    },
                )
                .await;
                recv(&mut ws).await;
                held.push(ws);
            }
            let after = rss_kib(pid);
            println!(
                "idle clients={} rss_before_kib={before} rss_after_kib={after} kib_per_connection={:.2}",
                args.clients,
                (after.saturating_sub(before)) as f64 / args.clients as f64
            );
        }
    }
}
