//! The relay scenarios. Each returns one result; `main` prints it as one `key=value` line that
//! bench/run.sh collects into the table.

use crate::BenchError;
use crate::peers::{Endpoint, Server, Template, Ws, next_text, payload, read_stamp};
use crate::procfs::{Cpu, CpuMeter, peak_rss_kib, rss_kib};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// What a ping-pong run measured.
#[derive(Debug, Clone)]
pub struct PingPong {
    /// Clients (two per room).
    pub clients: usize,
    /// Payload bytes per message, before base64url.
    pub size: usize,
    /// Messages relayed (and their latencies measured).
    pub messages: u64,
    /// Messages relayed per second, all pairs together.
    pub messages_per_s: f64,
    /// One-way latency, milliseconds.
    pub p50_ms: f64,
    /// One-way latency, milliseconds.
    pub p99_ms: f64,
    /// One-way latency, milliseconds.
    pub p999_ms: f64,
    /// One-way latency at each of [`DIST_PERCENTILES`], milliseconds: the distribution's shape
    /// for the charts.
    pub dist_ms: Vec<f64>,
    /// Open loop: how late the generator sent, p50 and p99, milliseconds (tokio's timers
    /// fire on whole milliseconds, so about half of one is the floor); part of every latency.
    pub send_lag_ms: Option<(f64, f64)>,
    /// Messages sent that never arrived (open loop only: a ping-pong waits for each).
    pub lost: u64,
    /// The server's CPU use during the run (1.0 = one core).
    pub server_cpu: Option<f64>,
    /// The part of `server_cpu` spent in the server's own code (the rest is the kernel's).
    pub server_user_cpu: Option<f64>,
    /// The generator's own CPU use: near 1.0 means the generator, not the server, set the pace.
    pub generator_cpu: Option<f64>,
}

/// Above this share of its core, the generator, not the server, may have set the pace: such a
/// result says more about the generator than about the server.
pub const GENERATOR_BOUND: f64 = 0.9;

impl PingPong {
    /// The server's CPU time per relayed message, microseconds.
    pub fn server_us_per_msg(&self) -> Option<f64> {
        Some(self.server_cpu? * 1e6 / self.messages_per_s)
    }

    /// The part of [`Self::server_us_per_msg`] in the server's own code, microseconds.
    pub fn server_user_us_per_msg(&self) -> Option<f64> {
        Some(self.server_user_cpu? * 1e6 / self.messages_per_s)
    }

    /// The generator's CPU time per message (sent and received), microseconds.
    pub fn generator_us_per_msg(&self) -> Option<f64> {
        Some(self.generator_cpu? * 1e6 / self.messages_per_s)
    }

    /// Whether the generator ran near its whole core (see [`GENERATOR_BOUND`]).
    pub fn generator_bound(&self) -> bool {
        self.generator_cpu.is_some_and(|c| c > GENERATOR_BOUND)
    }
}

/// One send: the template stamped with the time since `epoch`.
fn stamped(template: &Template, epoch: Instant) -> Message {
    Message::Text(template.stamped(epoch.elapsed().as_micros() as u64).into())
}

/// The next relayed message's one-way latency in microseconds; other messages are skipped.
async fn receive(server: Server, ws: &mut Ws, epoch: Instant) -> Result<u64, BenchError> {
    loop {
        let text = next_text(ws).await?;
        if let Some(sent) = server.payload_of(&text).and_then(read_stamp) {
            return Ok((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
        }
    }
}

/// Bounces one message between the two clients of a pair until `until`; returns each
/// message's latency.
async fn bounce(
    server: Server,
    mut a: Endpoint,
    mut b: Endpoint,
    size: usize,
    epoch: Instant,
    until: Instant,
) -> Result<Vec<u64>, BenchError> {
    let data = payload(size);
    let to_b = server.signal(&b.id, &data)?;
    let to_a = server.signal(&a.id, &data)?;
    let mut latencies = Vec::new();
    let send_err =
        |e: tokio_tungstenite::tungstenite::Error| BenchError::ServerClosed(e.to_string());
    a.ws.send(stamped(&to_b, epoch)).await.map_err(send_err)?;
    let mut towards_b = true;
    while Instant::now() < until {
        // Whoever the last message went to receives it and answers the other side.
        let (rx, reply) = if towards_b {
            (&mut b.ws, &to_a)
        } else {
            (&mut a.ws, &to_b)
        };
        latencies.push(receive(server, rx, epoch).await?);
        rx.send(stamped(reply, epoch)).await.map_err(send_err)?;
        towards_b = !towards_b;
    }
    Ok(latencies)
}

/// The percentiles `dist_ms` reports, from the fastest message to the slowest.
pub const DIST_PERCENTILES: [f64; 13] = [
    0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0,
];

impl PingPong {
    /// The result of a run that relayed the messages whose one-way latencies (microseconds)
    /// are `latencies`, in `elapsed` seconds.
    fn from_latencies(
        clients: usize,
        size: usize,
        mut latencies: Vec<u64>,
        elapsed: f64,
        lost: u64,
        (server_cpu, generator_cpu): (Option<Cpu>, Option<Cpu>),
    ) -> Self {
        latencies.sort_unstable();
        let at = |p: f64| percentile_ms(&latencies, p);
        Self {
            clients,
            size,
            messages: latencies.len() as u64,
            messages_per_s: latencies.len() as f64 / elapsed,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            dist_ms: DIST_PERCENTILES.iter().map(|p| at(p / 100.0)).collect(),
            send_lag_ms: None,
            lost,
            server_cpu: server_cpu.map(|c| c.total()),
            server_user_cpu: server_cpu.map(|c| c.user),
            generator_cpu: generator_cpu.map(|c| c.total()),
        }
    }
}

/// Joins `pairs` pairs, each in a room of its own; with `addr2`, the second of each pair
/// through that relay.
async fn join_pairs(
    server: Server,
    addr: &str,
    addr2: Option<&str>,
    pairs: usize,
) -> Result<Vec<(Endpoint, Endpoint)>, BenchError> {
    let mut joined = Vec::with_capacity(pairs);
    for room in 0..pairs {
        joined.push(server.pair_on(addr, addr2.unwrap_or(addr), room).await?);
    }
    Ok(joined)
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// `clients / 2` pairs in rooms of their own bounce a message of `size` bytes for `seconds`;
/// with `addr2`, the second of each pair is connected there (another relay of a cluster).
pub async fn pingpong(
    server: Server,
    (addr, addr2): (&str, Option<&str>),
    clients: usize,
    size: usize,
    seconds: f64,
    server_pid: Option<u32>,
) -> Result<PingPong, BenchError> {
    let pairs = (clients / 2).max(1);
    let joined = join_pairs(server, addr, addr2, pairs).await?;
    let server_meter = server_pid.and_then(CpuMeter::start);
    let generator_meter = CpuMeter::start(std::process::id());
    let epoch = Instant::now();
    let until = epoch + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = joined
        .into_iter()
        .map(|(a, b)| tokio::spawn(bounce(server, a, b, size, epoch, until)))
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            task.await
                .map_err(|e| BenchError::Generator(e.to_string()))??,
        );
    }
    let elapsed = epoch.elapsed().as_secs_f64();
    let cpu = (
        server_meter.and_then(|m| m.share()),
        generator_meter.and_then(|m| m.share()),
    );
    Ok(PingPong::from_latencies(
        pairs * 2,
        size,
        all,
        elapsed,
        0,
        cpu,
    ))
}

/// How long after the open loop's readers are spawned its schedule starts.
const START_LEAD: Duration = Duration::from_millis(100);

/// `clients / 2` pairs send, both ways, `rate` messages per second in all, each on its own
/// schedule, whatever the answers: the load a server takes when its users do not wait for it
/// (a ping-pong, closed-loop, slows down with the server and so hides its queueing). Every
/// message is stamped with the moment it was due, not the moment it went out, so a generator
/// or server that falls behind shows in the latencies instead of thinning the load.
pub async fn openloop(
    server: Server,
    addr: &str,
    clients: usize,
    size: usize,
    rate: f64,
    seconds: f64,
    server_pid: Option<u32>,
) -> Result<PingPong, BenchError> {
    let pairs = (clients / 2).max(1);
    let joined = join_pairs(server, addr, None, pairs).await?;
    let data = payload(size);
    // Each of the 2 * pairs senders sends every `senders / rate` seconds, their turns spread
    // evenly over that period so that the load is even rather than in waves.
    let senders = 2 * pairs;
    let step = 1.0 / rate.max(1e-3);
    // The schedule starts a little after the readers are spawned: spawning 4,000 of them takes
    // milliseconds on this one thread, and the first messages, due at once, would otherwise be
    // stamped as late by that much (the tail of every run at 2,000 clients was this: a p99.9
    // near 20 ms at any rate, 2.3 ms at 200 clients).
    let epoch = Instant::now() + START_LEAD;
    let until = epoch + Duration::from_secs_f64(seconds);
    let mut readers = Vec::with_capacity(senders);
    let mut sinks = Vec::with_capacity(senders);
    for (a, b) in joined {
        let to_b = server.signal(&b.id, &data)?;
        let to_a = server.signal(&a.id, &data)?;
        for (endpoint, template) in [(a, to_b), (b, to_a)] {
            let (sink, mut stream) = endpoint.ws.split();
            sinks.push((sink, template));
            // Reads until a little after the last send is due: what has not arrived by then
            // is counted as lost.
            let last = until + Duration::from_secs(2);
            readers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                // One timer for the whole run (a timeout per read would put one in the timer
                // wheel for every message).
                let mut end = std::pin::pin!(tokio::time::sleep_until(last.into()));
                loop {
                    let msg = tokio::select! {
                        biased;
                        msg = stream.next() => msg,
                        () = &mut end => break,
                    };
                    let Some(Ok(msg)) = msg else { break };
                    if let Message::Text(text) = msg
                        && let Some(sent) = server.payload_of(&text).and_then(read_stamp)
                    {
                        latencies.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
                    }
                }
                latencies
            }));
        }
    }
    tokio::time::sleep_until(epoch.into()).await;
    let server_meter = server_pid.and_then(CpuMeter::start);
    let generator_meter = CpuMeter::start(std::process::id());
    // One pacer sends every message, each sender in its turn, when it is due: per message a
    // write and nothing more. (A task and a timer per sender cost the generator about 24 us a
    // message, against 15 in the ping-pong, and it fell behind the relay it was measuring.)
    // tokio's timers fire on whole milliseconds, so it wakes once a millisecond and sends
    // what is due by then. How late each send went out is the generator's own share of the
    // latencies.
    let mut lags = Vec::new();
    let mut without_sleep = 0;
    for k in 0.. {
        let due = epoch + Duration::from_secs_f64(k as f64 * step);
        if due >= until {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
            without_sleep = 0;
        } else if without_sleep == 64 {
            // Behind schedule: the readers still get their turn.
            tokio::task::yield_now().await;
            without_sleep = 0;
        }
        without_sleep += 1;
        lags.push(due.elapsed().as_micros() as u64);
        let (sink, template) = &mut sinks[k % senders];
        let stamp = due.duration_since(epoch).as_micros() as u64;
        sink.send(Message::Text(template.stamped(stamp).into()))
            .await
            .map_err(|e| BenchError::ServerClosed(e.to_string()))?;
    }
    let sent = lags.len() as u64;
    let elapsed = epoch.elapsed().as_secs_f64();
    let server_cpu = server_meter.and_then(|m| m.share());
    let generator_cpu = generator_meter.and_then(|m| m.share());
    let mut all = Vec::new();
    for reader in readers {
        all.extend(
            reader
                .await
                .map_err(|e| BenchError::Generator(e.to_string()))?,
        );
    }
    drop(sinks);
    let lost = sent.saturating_sub(all.len() as u64);
    let mut result = PingPong::from_latencies(
        pairs * 2,
        size,
        all,
        elapsed,
        lost,
        (server_cpu, generator_cpu),
    );
    lags.sort_unstable();
    result.send_lag_ms = Some((percentile_ms(&lags, 0.5), percentile_ms(&lags, 0.99)));
    Ok(result)
}

/// What an idle run measured.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Connections held.
    pub clients: usize,
    /// The server's resident memory before the first connection, KiB.
    pub rss_before_kib: u64,
    /// ... and with every connection joined and silent, KiB.
    pub rss_after_kib: u64,
}

impl Idle {
    /// Resident memory the server spends per connection, KiB.
    pub fn kib_per_connection(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.clients as f64
    }
}

/// Opens `clients` connections that each join a room of their own and then stay silent.
pub async fn idle(
    server: Server,
    addr: &str,
    clients: usize,
    server_pid: u32,
) -> Result<Idle, BenchError> {
    let rss_before_kib = rss_kib(server_pid).ok_or(BenchError::NoServerProcess(server_pid))?;
    let mut held = Vec::with_capacity(clients);
    for i in 0..clients {
        held.push(server.join(addr, 1_000_000 + i, 0).await?);
    }
    let rss_after_kib = rss_kib(server_pid).ok_or(BenchError::NoServerProcess(server_pid))?;
    drop(held);
    Ok(Idle {
        clients,
        rss_before_kib,
        rss_after_kib,
    })
}

/// What a flood run measured.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Messages the flooder got onto its socket before it stopped.
    pub sent: u64,
    /// The server's peak resident memory (VmHWM) over its whole life, KiB: run it fresh.
    pub peak_rss_kib: u64,
    /// Whether the server closed the connection of the peer that never read.
    pub reader_dropped: bool,
    /// Whether the server closed the flooder's connection.
    pub flooder_closed: bool,
}

/// One client sends messages of `size` bytes as fast as its socket takes them, for `seconds`,
/// to a peer that never reads.
pub async fn flood(
    server: Server,
    addr: &str,
    size: usize,
    seconds: f64,
    server_pid: u32,
) -> Result<Flood, BenchError> {
    let (a, mut b) = server.pair(addr, 0).await?;
    let template = server.signal(&b.id, &payload(size))?;
    let (mut sink, mut stream) = a.ws.split();
    // The flooder reads whatever the server says to it (errors, pings), so that it is never
    // the slow one itself; it ends when the server closes the flooder.
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    });
    let epoch = Instant::now();
    let until = epoch + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    let mut flooder_closed = false;
    while Instant::now() < until {
        // A server that stops reading the flooder stalls this send; the deadline still ends it.
        let left = until.saturating_duration_since(Instant::now());
        match timeout(left, sink.send(stamped(&template, epoch))).await {
            Ok(Ok(())) => {
                sent += 1;
                // Lets the reader task run on this one-threaded generator between sends.
                tokio::task::yield_now().await;
            }
            Ok(Err(_)) => {
                flooder_closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    let peak = peak_rss_kib(server_pid).ok_or(BenchError::NoServerProcess(server_pid))?;
    flooder_closed |= reader.is_finished();
    reader.abort();
    // Now read what reached the silent peer: a server that dropped it ends the stream once the
    // kernel's buffers are drained; one that did not keeps it open.
    let reader_dropped = loop {
        match timeout(Duration::from_secs(2), b.ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break true,
            Ok(Some(Ok(_))) => {}
            Err(_) => break false,
        }
    };
    Ok(Flood {
        sent,
        peak_rss_kib: peak,
        reader_dropped,
        flooder_closed,
    })
}

/// What a hold run measured.
#[derive(Debug, Clone)]
pub struct Hold {
    /// Connections joined and held.
    pub clients: usize,
    /// How long the joins took, seconds.
    pub seconds: f64,
}

/// Joins `clients` connections, one after another, to rooms `first_room..` (each connection
/// its own room, as seat `seat`: another generator may fill the other seats through another
/// relay), and keeps reading each (pings are answered) until the returned handle is dropped.
pub async fn hold(
    server: Server,
    addr: &str,
    clients: usize,
    first_room: usize,
    seat: u8,
) -> Result<(Hold, Vec<tokio::task::JoinHandle<()>>), BenchError> {
    let epoch = Instant::now();
    let mut readers = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut endpoint = server.join(addr, first_room + i, seat).await?;
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = endpoint.ws.next().await {}
        }));
    }
    Ok((
        Hold {
            clients,
            seconds: epoch.elapsed().as_secs_f64(),
        },
        readers,
    ))
}
