//! The `sotto` binary as a person runs it: links, and a clear error with its own exit code for
//! each way a call cannot happen.

use std::process::Command;
use tokio::net::TcpListener;

/// A WAV file for `--output`: these tests are about calls, not sound cards, so they never open
/// the speakers (a fresh machine has none; tests/tests/audio_devices.rs covers devices).
fn wav_out() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("sotto-cli-{}-{n}.wav", std::process::id()))
        .display()
        .to_string()
}

/// Runs `sotto`; a call with `--tone` writes what it hears to a WAV file, never the speakers.
fn sotto(args: &[&str]) -> (Option<i32>, String, String) {
    let out_path = wav_out();
    let mut args = args.to_vec();
    if args.first() == Some(&"call") && args.contains(&"--tone") {
        args.extend(["--output", out_path.as_str()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(&args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real relay on a free loopback port, for the rest of the test.
async fn start_relay() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sotto_signaling::run(
        listener,
        sotto_signaling::Config::default(),
        std::future::pending::<()>(),
    ));
    addr
}

#[test]
fn new_prints_a_link_to_the_relay() {
    let (code, out, _) = sotto(&["new", "--relay", "https://call.example.org"]);
    assert_eq!(code, Some(0));
    let link = out.trim();
    assert!(link.starts_with("https://call.example.org/#"), "{link}");
    assert_eq!(link.len(), "https://call.example.org/#".len() + 43);
    assert_ne!(sotto(&["new"]).1, out, "every link is fresh");
}

#[test]
fn a_malformed_link_exits_2_with_the_reason() {
    let (code, _, err) = sotto(&["call", "https://h/#short", "--tone", "440"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("43 base64url characters"), "{err}");
}

#[test]
fn an_unreachable_relay_exits_3() {
    // A port nothing listens on: bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let link = format!("http://127.0.0.1:{port}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    let (code, _, err) = sotto(&["call", &link, "--tone", "440"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("cannot reach the relay"), "{err}");
    // With --json the error is also an event on standard output.
    let (code, out, _) = sotto(&["call", &link, "--tone", "440", "--json"]);
    assert_eq!(code, Some(3));
    let event: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (event["event"].as_str(), event["exit"].as_u64()),
        (Some("error"), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_exits_4_with_the_relays_code() {
    let addr = start_relay().await;
    let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let room = sotto_e2ee::LinkSecret::parse(secret)
        .unwrap()
        .room_id()
        .to_base64url();
    // Two raw WebSocket clients fill the room.
    let mut fillers = Vec::new();
    for _ in 0..2 {
        use futures_util::{SinkExt, StreamExt};
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
        ws.send(tokio_tungstenite::tungstenite::Message::Text(join.into()))
            .await
            .unwrap();
        ws.next().await.unwrap().unwrap();
        fillers.push(ws);
    }
    let link = format!("http://{addr}/#{secret}");
    let (code, _, err) =
        tokio::task::spawn_blocking(move || sotto(&["call", &link, "--tone", "440"]))
            .await
            .unwrap();
    assert_eq!(code, Some(4));
    assert!(err.contains("room-full"), "{err}");
}

#[test]
fn without_a_sound_card_the_call_says_so_and_names_the_alternatives() {
    // An empty ALSA configuration: no device exists, as on a server.
    let out = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args([
            "call",
            "http://127.0.0.1:1/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ])
        .env("ALSA_CONFIG_PATH", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sotto: audio: microphone"), "{err}");
    assert!(err.contains("--tone") && err.contains("--input"), "{err}");
}

/// A `sotto call` process whose JSON events are read line by line.
struct CallProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl CallProcess {
    fn start(link: &str, hz: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sotto"))
            .args([
                "call",
                link,
                "--tone",
                hz,
                "--json",
                "--loopback",
                "--output",
                &wav_out(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for an event line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line with {needle}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_hangs_up_and_the_other_side_is_told() {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let mut a = CallProcess::start(&link, "440");
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start(&link, "880");
        let sas_a = a.wait_for(r#""event":"sas""#);
        assert_eq!(
            b.wait_for(r#""event":"sas""#),
            sas_a,
            "both show the same code"
        );
        a.wait_for(r#""state":"connected""#);
        b.wait_for(r#""state":"connected""#);
        // Each side announces the first frame it authenticated and decoded.
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
        let interrupted = Command::new("kill")
            .args(["-INT", &a.child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupted.success());
        assert!(a.wait_for(r#""event":"ended""#).contains("you hung up"));
        assert!(
            b.wait_for(r#""event":"ended""#)
                .contains("the other side hung up")
        );
        assert_eq!(a.child.wait().unwrap().code(), Some(0));
        assert_eq!(b.child.wait().unwrap().code(), Some(0));
    })
    .await
    .unwrap();
}
