//! Helpers for the relay's integration tests: the real relay on 127.0.0.1 port 0, in-process,
//! and real WebSocket clients.
#![allow(dead_code)] // each test file uses a different subset

use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, ErrorCode, Payload, PeerId, RoomId, ServerMessage};
use sotto_signaling::Config;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Long enough for anything on loopback; tests wait for conditions, this only bounds a hang.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Relay {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), sotto_signaling::Error>>>,
}

impl Relay {
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sotto_signaling::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A relay running elsewhere (another process) at `addr`.
    pub fn external(addr: SocketAddr) -> Self {
        Self {
            addr,
            stop: None,
            task: None,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Asks the relay to shut down and waits for `run` to return.
    pub async fn shutdown(mut self) -> Result<(), sotto_signaling::Error> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task.take().unwrap())
            .await
            .expect("run returns after shutdown")
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        http_get(self.addr, "/metrics").await.body
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
}

impl Client {
    pub async fn connect(relay: &Relay) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(relay.ws_url())
            .await
            .unwrap();
        Self { ws }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .unwrap();
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(msg.encode()).await;
    }

    /// The next frame, whatever it is; `None` when the connection ended.
    pub async fn next_frame(&mut self) -> Option<Message> {
        match tokio::time::timeout(WAIT, self.ws.next()).await {
            Ok(Some(Ok(msg))) => Some(msg),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no frame from the relay within {WAIT:?}"),
        }
    }

    /// The next relay message (skipping pings and pongs); panics on close.
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            match self.next_frame().await {
                Some(Message::Text(t)) => {
                    return ServerMessage::decode(t.as_str())
                        .unwrap()
                        .expect("a known message type");
                }
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    pub async fn expect_error(&mut self, want: ErrorCode) -> String {
        match self.recv().await {
            ServerMessage::Error { code, message } if code == want => message,
            other => panic!("expected error {want}, got {other:?}"),
        }
    }

    /// Waits for the relay's close frame and returns it; panics if a message comes first.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_frame().await {
                Some(Message::Close(frame)) => return frame,
                Some(Message::Ping(_) | Message::Pong(_)) => continue,
                None => return None,
                Some(other) => panic!("expected close, got {other:?}"),
            }
        }
    }

    /// Joins `room` and returns (my id, peers already there).
    pub async fn join(&mut self, room: &RoomId) -> (PeerId, Vec<PeerId>) {
        self.send(&ClientMessage::Join {
            room: room.clone(),
            max: None,
        })
        .await;
        match self.recv().await {
            ServerMessage::Welcome { you, peers, .. } => (you, peers),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn signal(&mut self, to: &PeerId, data: &str) {
        self.send(&ClientMessage::Signal {
            to: to.clone(),
            data: Payload::parse(data.to_owned()).unwrap(),
        })
        .await;
    }
}

pub fn room(n: u8) -> RoomId {
    RoomId::from_bytes(&[n; 16])
}

/// Two clients in room `n`: (first, first's id, second, second's id). The first has already
/// received `peer-joined` for the second.
pub async fn pair(relay: &Relay, n: u8) -> (Client, PeerId, Client, PeerId) {
    let mut a = Client::connect(relay).await;
    let (a_id, _) = a.join(&room(n)).await;
    let mut b = Client::connect(relay).await;
    let (b_id, peers) = b.join(&room(n)).await;
    assert_eq!(peers, vec![a_id.clone()]);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined { peer: b_id.clone() }
    );
    (a, a_id, b, b_id)
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET over a fresh TCP connection.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[]).await
}

pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse_http(&raw)
}

pub fn parse_http(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The value of one metric line (`name` including labels) in Prometheus text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
}

/// `sotto-relay` in a process of its own, its log read line by line.
pub struct RelayProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// Log lines after the "listening" one.
    log: std::sync::mpsc::Receiver<String>,
}

impl RelayProcess {
    pub fn start(args: &[&str]) -> Self {
        // Its standard error is a pipe, as under systemd or docker: no colour, NO_COLOR or not.
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
            .args(args)
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The relay logs its address once it listens; wait for that line.
        let addr = loop {
            let line = rx.recv_timeout(WAIT).expect("the relay logs its address");
            assert!(!line.contains('\x1b'), "colour codes in a pipe: {line:?}");
            if let Some(rest) = line.split("relay listening on http://").nth(1) {
                break rest.trim().parse().unwrap();
            }
        };
        Self {
            child,
            addr,
            log: rx,
        }
    }

    /// Waits for a log line containing `needle`; returns it. No line may carry colour codes.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            assert!(!line.contains('\x1b'), "colour codes in a pipe: {line:?}");
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Peak resident memory of the relay process so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    pub fn relay(&self) -> Relay {
        Relay::external(self.addr)
    }

    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the relay did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(10)); // polling a child's exit
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
