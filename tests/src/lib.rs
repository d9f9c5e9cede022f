//! Helpers shared by the end-to-end tests in `tests/tests/`: the real relay in-process, a
//! WebSocket proxy in front of it that records (and may tamper with) everything it forwards,
//! native clients, and tone analysis.
#![forbid(unsafe_code)]

pub mod node;

use futures_util::{SinkExt, StreamExt};
use sotto_client::audio::{Sink, Source};
use sotto_client::call::Outcome;
use sotto_client::session::{CallOptions, Counters, Event, run_call};
use sotto_e2ee::{Link, LinkSecret};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// Bounds every wait; tests wait for conditions, this only stops a hang.
pub const WAIT: Duration = Duration::from_secs(20);

/// The real relay on 127.0.0.1 port 0, in-process.
pub struct Relay {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), sotto_signaling::Error>>,
}

impl Relay {
    /// Starts a relay with default settings on a free port.
    pub async fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
    }

    /// Starts a relay with these settings on a free port.
    pub async fn start_with(config: sotto_signaling::Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_configured(listener, config).await
    }

    /// Starts a relay on this listener.
    pub async fn start_on(listener: TcpListener) -> Self {
        Self::start_configured(listener, sotto_signaling::Config::default()).await
    }

    async fn start_configured(listener: TcpListener, config: sotto_signaling::Config) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sotto_signaling::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts the relay down and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

/// Which way a message went through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From a client to the relay.
    Up,
    /// From the relay to a client.
    Down,
}

/// Decides what the proxy forwards: given the direction, the connection's number (in order of
/// arrival) and the text, returns the texts to forward instead (none to drop it).
pub type Hook = Box<dyn FnMut(Dir, usize, String) -> Vec<String> + Send>;

/// A WebSocket proxy in front of a relay: every client connection gets its own upstream
/// connection, and every text frame passes through the hook and into the record.
pub struct Tap {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Every text frame as forwarded: (direction, connection, text).
    pub record: Arc<Mutex<Vec<(Dir, usize, String)>>>,
}

impl Tap {
    /// A proxy in front of the relay at `upstream` that forwards everything unchanged.
    pub async fn transparent(upstream: SocketAddr) -> Self {
        Self::start(upstream, Box::new(|_, _, text| vec![text])).await
    }

    /// A proxy in front of the relay at `upstream` that forwards what `hook` returns.
    pub async fn start(upstream: SocketAddr, hook: Hook) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let record = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::new(Mutex::new(hook));
        let rec = record.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let (rec, hook) = (rec.clone(), hook.clone());
                let conn = n;
                n += 1;
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    let Ok((relay, _)) =
                        tokio_tungstenite::connect_async(format!("ws://{upstream}/ws")).await
                    else {
                        return;
                    };
                    let (mut client_tx, mut client_rx) = client.split();
                    let (mut relay_tx, mut relay_rx) = relay.split();
                    let pass = |dir: Dir, text: String| -> Vec<String> {
                        let out = (hook.lock().expect("hook"))(dir, conn, text);
                        let mut r = rec.lock().expect("record");
                        r.extend(out.iter().map(|t| (dir, conn, t.clone())));
                        out
                    };
                    loop {
                        tokio::select! {
                            m = client_rx.next() => match m {
                                Some(Ok(Message::Text(t))) => {
                                    for t in pass(Dir::Up, t.to_string()) {
                                        if relay_tx.send(Message::Text(t.into())).await.is_err() { return; }
                                    }
                                }
                                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                                _ => { let _ = relay_tx.close().await; return; }
                            },
                            m = relay_rx.next() => match m {
                                Some(Ok(Message::Text(t))) => {
                                    for t in pass(Dir::Down, t.to_string()) {
                                        if client_tx.send(Message::Text(t.into())).await.is_err() { return; }
                                    }
                                }
                                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                                _ => { let _ = client_tx.close().await; return; }
                            },
                        }
                    }
                });
            }
        });
        Self { addr, record }
    }

    /// Everything forwarded so far, concatenated.
    pub fn all_text(&self) -> String {
        let r = self.record.lock().expect("record");
        r.iter()
            .map(|(_, _, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A fresh link to the relay (or proxy) at `addr`.
pub fn link_to(addr: SocketAddr) -> Link {
    Link::new(
        &format!("http://{addr}"),
        LinkSecret::generate().expect("randomness"),
    )
    .expect("valid origin")
}

/// What one native client saw.
#[derive(Debug)]
pub struct ClientRun {
    /// Why its call ended.
    pub outcome: Outcome,
    /// Its final counters.
    pub counters: Counters,
    /// Every event it reported.
    pub events: Vec<Event>,
    /// Everything it decoded from the peer.
    pub heard: Vec<i16>,
}

impl ClientRun {
    /// True if it reported this state.
    pub fn saw(&self, state: &str) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::State { state: s, .. } if s == state))
    }

    /// The safety code it showed, if any.
    pub fn safety_code(&self) -> Option<String> {
        self.events.iter().find_map(|e| match e {
            Event::Sas { code, .. } => Some(code.clone()),
            _ => None,
        })
    }
}

/// Runs one native client on `link` sending a tone of `hz`, for `seconds` after connecting.
pub async fn run_client(link: Link, hz: f64, seconds: f64) -> ClientRun {
    run_client_watched(link, hz, seconds, None).await
}

/// As [`run_client`], also sending each event to `watch` as it happens.
pub async fn run_client_watched(
    link: Link,
    hz: f64,
    seconds: f64,
    watch: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
) -> ClientRun {
    run_client_with(link, Source::tone(hz), None, seconds, watch).await
}

/// A native client that uses the relay's ICE servers and relayed candidates only.
pub async fn run_relay_only_client(link: Link, hz: f64, seconds: f64) -> ClientRun {
    let extra = Extra {
        relay_only: true,
        ..Extra::default()
    };
    run_client_options(link, Source::tone(hz), None, seconds, None, extra).await
}

/// As [`run_client_watched`], but it hangs up as soon as it reports the state `state` (a
/// client whose peer leaves waits for them to come back; a test ends the wait so).
pub async fn run_client_until(
    link: Link,
    hz: f64,
    seconds: f64,
    watch: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    state: &'static str,
) -> ClientRun {
    let extra = Extra {
        hang_up_at: Some(state),
        ..Extra::default()
    };
    run_client_options(link, Source::tone(hz), None, seconds, watch, extra).await
}

/// What else a test's client may have: relayed candidates only, a state at which it hangs up,
/// a device key with known devices (incognito without), lines typed during the call.
#[derive(Debug, Default)]
pub struct Extra {
    /// The relay's ICE servers, relayed candidates only.
    pub relay_only: bool,
    /// Hang up as soon as this state is reported.
    pub hang_up_at: Option<&'static str>,
    /// This device's key and known devices; `None`: incognito.
    pub device: Option<sotto_client::known::ThisDevice>,
    /// What the person types (`/verify NAME`, ...).
    pub input: Option<tokio::sync::mpsc::Receiver<String>>,
}

/// A client sending a tone of `hz` for `seconds` after connecting, with `extra`.
pub async fn run_client_extra(
    link: Link,
    hz: f64,
    seconds: f64,
    watch: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    extra: Extra,
) -> ClientRun {
    run_client_options(link, Source::tone(hz), None, seconds, watch, extra).await
}

/// A native client with this source, and this sink (memory when `None`: see `heard`).
pub async fn run_client_with(
    link: Link,
    source: Source,
    sink: Option<Sink>,
    seconds: f64,
    watch: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
) -> ClientRun {
    run_client_options(link, source, sink, seconds, watch, Extra::default()).await
}

async fn run_client_options(
    link: Link,
    source: Source,
    sink: Option<Sink>,
    seconds: f64,
    watch: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    extra: Extra,
) -> ClientRun {
    let Extra {
        relay_only,
        hang_up_at,
        device,
        input,
    } = extra;
    let (stop, mut stopped) = tokio::sync::mpsc::unbounded_channel::<()>();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let mut events = Vec::new();
    let options = CallOptions {
        source,
        sink: sink.unwrap_or_else(|| Sink::Memory(heard.clone())),
        duration: Some(Duration::from_secs_f64(seconds)),
        // Loopback tests use no STUN/TURN unless they test TURN: then the relay's.
        ice_servers: (!relay_only).then(Vec::new),
        relay_only,
        name: None,
        loopback_only: true,
        stats_interval: Duration::from_millis(500),
        ca_file: None,
        input,
        files: sotto_client::chat::FileOptions {
            download_dir: std::env::temp_dir(),
            limits: sotto_client::conversation::Limits {
                accept_below: 0,
                max_size: 0,
            },
        },
        device,
        audio: None,
    };
    let result = tokio::time::timeout(
        WAIT,
        run_call(
            &link,
            options,
            |e| {
                if let Some(w) = &watch {
                    let _ = w.send(e.clone());
                }
                if matches!(&e, Event::State { state, .. } if Some(state.as_str()) == hang_up_at) {
                    let _ = stop.send(());
                }
                events.push(e)
            },
            async move {
                stopped.recv().await;
            },
        ),
    )
    .await
    .expect("the call ends within the test's bound")
    .expect("the call runs");
    let heard = heard.lock().expect("samples").clone();
    ClientRun {
        outcome: result.0,
        counters: result.1,
        events,
        heard,
    }
}

/// Goertzel power of `f` Hz in 48 kHz samples, per sample.
pub fn tone_power(samples: &[i16], f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / 48_000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in samples {
        let s0 = f64::from(v) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / samples.len().max(1) as f64
}

/// The shared secret of the test coturn (`use-auth-secret`).
pub const TURN_SECRET: &str = "north-wind-turn-secret";

/// Debian's coturn on loopback with `use-auth-secret`, for as long as this value lives.
pub struct Coturn {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Coturn {
    /// Starts coturn on a free port and waits until it serves.
    pub fn start() -> Self {
        // A free UDP port: bind, read it, release it for coturn.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("sotto-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={TURN_SECRET}"),
            ])
            .args(["--realm=sotto.test", "--no-tls", "--no-dtls", "--no-cli"])
            .args([
                "--allow-loopback-peers",
                "--simple-log",
                "--log-file=stdout",
            ])
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver from Debian's coturn package (the test command installs it)");
        // Ready once it has opened its database, the last step of its start-up.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.any(|l| l.is_ok_and(|l| l.contains("DB connection success")));
        assert!(ready, "coturn did not start");
        std::thread::spawn(move || lines.for_each(drop)); // keep its stdout drained
        Self { child, port, dir }
    }

    /// Runs coturn's own client: allocate with these credentials and relay packets. True when
    /// the allocation succeeded.
    pub fn allocate(&self, user: &str, password: &str) -> bool {
        let out = Command::new("turnutils_uclient")
            .args(["-u", user, "-w", password, "-p", &self.port.to_string()])
            .args(["-n", "1", "-m", "1", "-y", "127.0.0.1"])
            .output()
            .expect("turnutils_uclient from coturn");
        out.status.success()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
