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

/// A data directory of its own (`XDG_DATA_HOME`: the device key and known devices), empty, so
/// that no test touches the home directory's.
fn data_home(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sotto-cli-data-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `sotto`; a call with `--tone` writes what it hears to a WAV file, never the speakers.
fn sotto(args: &[&str]) -> (Option<i32>, String, String) {
    sotto_in(&data_home("shared"), args)
}

/// [`sotto`] with this `XDG_DATA_HOME`.
fn sotto_in(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out_path = wav_out();
    let mut args = args.to_vec();
    if args.first() == Some(&"call") && args.contains(&"--tone") {
        args.extend(["--output", out_path.as_str()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(&args)
        .env("XDG_DATA_HOME", data)
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
    start_relay_with(sotto_signaling::Config::default()).await
}

async fn start_relay_with(config: sotto_signaling::Config) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sotto_signaling::run(
        listener,
        config,
        std::future::pending::<()>(),
    ));
    addr
}

/// A port nothing listens on: bind, read, release.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_prints_a_link_to_a_relay_that_answers() {
    let addr = start_relay().await;
    let relay = format!("http://{addr}");
    let (code, out, err) = tokio::task::spawn_blocking(move || sotto(&["new", "--relay", &relay]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let link = out.trim();
    assert!(link.starts_with(&format!("http://{addr}/#")), "{link}");
    assert_eq!(link.len(), format!("http://{addr}/#").len() + 43);
    let again =
        tokio::task::spawn_blocking(move || sotto(&["new", "--relay", &format!("http://{addr}")]))
            .await
            .unwrap();
    assert_ne!(again.1, out, "every link is fresh");
}

#[test]
fn new_group_prints_a_group_link_and_refuses_a_size_out_of_range() {
    let (code, out, err) = sotto(&[
        "new",
        "--relay",
        "https://call.example.org",
        "--no-check",
        "--group",
        "5",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let link = out.trim();
    assert!(link.starts_with("https://call.example.org/#"), "{link}");
    assert!(link.ends_with(".5"), "{link}");
    assert_eq!(link.len(), "https://call.example.org/#".len() + 43 + 2);
    for bad in ["2", "7", "17", "x"] {
        let (code, _, err) = sotto(&["new", "--no-check", "--group", bad]);
        assert_eq!(code, Some(2), "--group {bad}: {err}");
        assert!(err.contains("--group"), "{err}");
    }
}

#[test]
fn new_refuses_a_relay_that_does_not_answer_unless_told_not_to_check() {
    let relay = format!("http://127.0.0.1:{}", free_port());
    let (code, out, err) = sotto(&["new", "--relay", &relay]);
    assert_eq!(code, Some(3));
    assert!(out.is_empty(), "no link for a relay that is down: {out}");
    assert!(
        err.contains("cannot reach the relay") && err.contains("--no-check"),
        "{err}"
    );
    let (code, out, _) = sotto(&["new", "--relay", &relay, "--no-check"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with(&format!("{relay}/#")), "{out}");
}

#[test]
fn new_keeps_the_path_a_relay_is_served_under() {
    for relay in [
        "https://call.example.org/sotto",
        "https://call.example.org/sotto/",
    ] {
        let (code, out, _) = sotto(&["new", "--relay", relay, "--no-check"]);
        assert_eq!(code, Some(0));
        assert!(out.starts_with("https://call.example.org/sotto/#"), "{out}");
    }
}

#[test]
fn new_explains_a_relay_address_without_a_scheme() {
    let (code, out, err) = sotto(&["new", "--relay", "127.0.0.1:18080"]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert!(
        err.contains("--relay 127.0.0.1:18080") && err.contains("https://127.0.0.1:18080"),
        "{err}"
    );
    assert!(!err.contains("not a valid Sotto link"), "{err}");
}

#[test]
fn call_options_out_of_range_are_refused_by_name() {
    let link = "http://127.0.0.1:1/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    for (args, flag) in [
        (vec!["--tone", "0"], "--tone"),
        (vec!["--tone", "100000"], "--tone"),
        (vec!["--tone", "x"], "--tone"),
        (vec!["--duration=-1"], "--duration"),
        (vec!["--duration", "inf"], "--duration"),
        (
            vec!["--turn", "http://t", "--turn-user", "u", "--turn-pass", "p"],
            "--turn",
        ),
        (vec!["--stun", "turn:t:3478"], "--stun"),
        (vec!["--turn-user", "u"], "--turn"),
    ] {
        let mut all = vec!["call", link];
        all.extend(&args);
        let (code, _, err) = sotto(&all);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn a_malformed_link_exits_2_with_the_reason() {
    let (code, _, err) = sotto(&["call", "https://h/#short", "--tone", "440"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("43 base64url characters"), "{err}");
}

#[test]
fn a_conference_link_exits_2_and_points_to_a_browser() {
    let link = "http://127.0.0.1:9/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8.8";
    let (code, _, err) = sotto(&["call", link, "--tone", "440"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("conference of up to 8 people"), "{err}");
    assert!(err.contains("open the link in a browser"), "{err}");
}

#[test]
fn an_unreachable_relay_exits_3() {
    let port = free_port();
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

/// The link secret of the raw clients below.
const RAW_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// A bare WebSocket client in RAW_SECRET's room, welcomed, that then says nothing: it holds a
/// place, and never answers anyone.
async fn raw_joiner(
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::{SinkExt, StreamExt};
    let room = sotto_e2ee::LinkSecret::parse(RAW_SECRET)
        .unwrap()
        .room_id()
        .to_base64url();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let join = format!(r#"{{"type":"join","room":"{room}"}}"#);
    ws.send(tokio_tungstenite::tungstenite::Message::Text(join.into()))
        .await
        .unwrap();
    ws.next().await.unwrap().unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_exits_4_with_the_relays_code() {
    let addr = start_relay().await;
    // Two raw WebSocket clients fill the room.
    let _fillers = [raw_joiner(addr).await, raw_joiner(addr).await];
    let secret = RAW_SECRET;
    let link = format!("http://{addr}/#{secret}");
    let (code, out, err) =
        tokio::task::spawn_blocking(move || sotto(&["call", &link, "--tone", "440"]))
            .await
            .unwrap();
    assert_eq!(code, Some(4));
    // Said once, on standard error.
    assert_eq!(err.matches("room-full").count(), 1, "{err}");
    assert!(!out.contains("room-full"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_finishes_the_handshake_is_given_up_after_the_set_up_deadline() {
    let addr = start_relay().await;
    // Someone is in the room first, so the call waits for their commit, which never comes.
    let silent = raw_joiner(addr).await;
    let secret = RAW_SECRET;
    let link = format!("http://{addr}/#{secret}");
    let started = std::time::Instant::now();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || sotto(&["call", &link, "--tone", "440"]))
            .await
            .unwrap();
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains("did not finish setting up the call within 30 s"),
        "{err}"
    );
    assert!(started.elapsed() >= sotto_client::room::SETUP_TIMEOUT);
    drop(silent);
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
        .env("XDG_DATA_HOME", data_home("no-sound-card"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sotto: audio: microphone"), "{err}");
    assert!(err.contains("--tone") && err.contains("--input"), "{err}");
}

/// A `sotto call` process whose JSON events are read line by line, and whose standard input
/// takes typed lines.
struct CallProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdin: std::process::ChildStdin,
}

impl CallProcess {
    fn start(link: &str, hz: &str) -> Self {
        Self::start_with(link, hz, &[])
    }

    fn start_with(link: &str, hz: &str, more: &[&str]) -> Self {
        Self::start_in(&data_home(&format!("call-{hz}")), link, hz, more)
    }

    /// A call with this `XDG_DATA_HOME` (its device key and known devices).
    fn start_in(data: &std::path::Path, link: &str, hz: &str, more: &[&str]) -> Self {
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
            .args(more)
            .env("XDG_DATA_HOME", data)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
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
        Self {
            child,
            lines,
            stdin,
        }
    }

    /// Waits (20 s at most) for one line with each of `needles`, in any order; returns them in
    /// the order of `needles`.
    fn wait_for_each(&self, needles: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!("within 20 s, no line for {needles:?}: found {found:?}");
            };
            if let Some(i) =
                (0..needles.len()).find(|&i| found[i].is_none() && line.contains(needles[i]))
            {
                found[i] = Some(line);
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Types a line, as a person would during the call.
    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits (20 s at most) for an event line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                let tail = seen[seen.len().saturating_sub(5)..].join("\n");
                panic!("no line with {needle} within 20 s; the last lines:\n{tail}");
            };
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
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

impl Drop for CallProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA, and a relay certificate it signed for `names`, as PEM files.
struct Pki {
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki(tag: &str, names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = std::env::temp_dir().join(format!("sotto-pki-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("relay.pem"),
        key: dir.join("relay-key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

async fn start_tls_relay(pki: &Pki) -> u16 {
    let addr = start_relay_with(sotto_signaling::Config {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.key.clone()),
        ..sotto_signaling::Config::default()
    })
    .await;
    addr.port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_runs_through_the_relays_own_tls_with_its_ca_file() {
    let pki = pki("ok", &["localhost"]);
    let port = start_tls_relay(&pki).await;
    tokio::task::spawn_blocking(move || {
        let ca = pki.ca.display().to_string();
        let relay = format!("https://localhost:{port}/");
        let (code, out, err) = sotto(&["new", "--relay", &relay, "--ca-file", &ca]);
        assert_eq!(code, Some(0), "{err}");
        let link = out.trim().to_owned();
        let a = CallProcess::start_with(&link, "440", &["--ca-file", &ca]);
        assert!(
            a.wait_for(r#""event":"relay""#)
                .contains(&format!("wss://localhost:{port}/ws"))
        );
        a.wait_for("waiting-for-peer");
        let b = CallProcess::start_with(&link, "880", &["--ca-file", &ca]);
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_certificate_this_computer_does_not_trust_is_refused_with_exit_8() {
    let pki = pki("untrusted", &["localhost"]);
    let port = start_tls_relay(&pki).await;
    tokio::task::spawn_blocking(move || {
        let link = format!("https://localhost:{port}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        for args in [
            vec!["call", &link, "--tone", "440"],
            vec!["new", "--relay", &link[..link.find('#').unwrap()]],
        ] {
            let (code, out, err) = sotto(&args);
            assert_eq!(code, Some(8), "{args:?}: {err}");
            assert!(out.is_empty(), "{out}");
            assert!(
                err.contains("certificate was refused")
                    && err.contains("not signed by an authority this computer trusts")
                    && err.contains("--ca-file"),
                "{err}"
            );
            assert!(!err.contains("cannot reach"), "{err}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_certificate_for_another_name_is_refused_with_exit_8() {
    let pki = pki("wrong-name", &["relay.example.org"]);
    let port = start_tls_relay(&pki).await;
    tokio::task::spawn_blocking(move || {
        let link = format!("https://localhost:{port}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let ca = pki.ca.display().to_string();
        let (code, _, err) = sotto(&["call", &link, "--tone", "440", "--ca-file", &ca]);
        assert_eq!(code, Some(8), "{err}");
        assert!(
            err.contains(&format!("not valid for localhost:{port}")),
            "{err}"
        );
    })
    .await
    .unwrap();
}

#[test]
fn a_ca_file_that_is_not_a_certificate_is_refused_with_exit_2() {
    let path = std::env::temp_dir().join(format!("sotto-not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&path, "hello\n").unwrap();
    let link = "https://localhost:1/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let p = path.display().to_string();
    let (code, _, err) = sotto(&["call", link, "--tone", "440", "--ca-file", &p]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--ca-file") && err.contains(&p) && err.contains("no PEM certificate"),
        "{err}"
    );
    let missing = "/nonexistent/ca.pem";
    let (code, _, err) = sotto(&["call", link, "--tone", "440", "--ca-file", missing]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(missing), "{err}");
}

/// A relay that can be stopped and started again on the same port.
struct RestartingRelay {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), sotto_signaling::Error>>>,
}

impl RestartingRelay {
    async fn start(addr: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sotto_signaling::run(
            listener,
            sotto_signaling::Config::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.take().unwrap().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restart_while_waiting_is_ridden_out_and_the_call_still_happens() {
    let mut relay = RestartingRelay::start("127.0.0.1:0".parse().unwrap()).await;
    let addr = relay.addr;
    let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    let a = {
        let link = link.clone();
        tokio::task::spawn_blocking(move || {
            let a = CallProcess::start(&link, "440");
            a.wait_for("waiting-for-peer");
            a
        })
        .await
        .unwrap()
    };
    relay.stop().await;
    let a = tokio::task::spawn_blocking(move || {
        // It says what is happening, and keeps trying.
        assert!(
            a.wait_for(r#""event":"reconnecting""#)
                .contains(r#""attempt":1"#)
        );
        a
    })
    .await
    .unwrap();
    let _relay = RestartingRelay::start(addr).await;
    tokio::task::spawn_blocking(move || {
        a.wait_for(r#""event":"relay""#);
        a.wait_for("waiting-for-peer");
        let b = CallProcess::start(&link, "880");
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_other_side_vanishes_the_call_waits_and_they_meet_again() {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let a = CallProcess::start(&link, "440");
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start(&link, "880");
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
        // The other side is killed: no bye.
        b.child.kill().unwrap();
        b.child.wait().unwrap();
        a.wait_for(r#""state":"peer-left""#);
        a.wait_for("waiting-for-peer");
        // They come back on the same link: a new handshake, a new safety code, a call.
        let c = CallProcess::start(&link, "880");
        a.wait_for(r#""event":"sas""#);
        a.wait_for(r#""state":"receiving-audio""#);
        c.wait_for(r#""state":"receiving-audio""#);
    })
    .await
    .unwrap();
}

/// Stops (`STOP`) or wakes (`CONT`) a process, as a laptop lid closing and opening does.
fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_frozen_past_the_ice_timeout_meets_the_other_again_soon_after_waking() {
    // The relay gives up a silent connection after 4 s here (2 s to its ping, 2 s for the
    // answer), so the frozen side is also dropped from the room, as it would be after 40 s.
    let addr = start_relay_with(sotto_signaling::Config {
        ping_interval: std::time::Duration::from_secs(2),
        pong_timeout: std::time::Duration::from_secs(2),
        ..sotto_signaling::Config::default()
    })
    .await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let a = CallProcess::start(&link, "440");
        a.wait_for("waiting-for-peer");
        let b = CallProcess::start(&link, "880");
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
        // The lid closes on B for 30 s: longer than ICE takes to fail (25 s) and than the
        // relay's keepalive. A gives B up meanwhile and waits for them.
        let frozen = std::time::Instant::now();
        signal(&b.child, "STOP");
        a.wait_for("waiting-for-peer");
        // The freeze itself is what is tested: it lasts its 30 s whatever A does.
        std::thread::sleep(std::time::Duration::from_secs(30).saturating_sub(frozen.elapsed()));
        signal(&b.child, "CONT");
        let woke = std::time::Instant::now();
        // B says in words what happened, goes back to the relay, and the two meet again: a new
        // handshake, a new safety code on both sides, sound both ways.
        b.wait_for(r#""state":"connection-dropped""#);
        let code_a = field(&a.wait_for(r#""event":"sas""#), "code");
        let code_b = field(&b.wait_for(r#""event":"sas""#), "code");
        assert_eq!(code_a, code_b);
        a.wait_for(r#""state":"receiving-audio""#);
        b.wait_for(r#""state":"receiving-audio""#);
        eprintln!(
            "whole again {:.1} s after waking",
            woke.elapsed().as_secs_f64()
        );
    })
    .await
    .unwrap();
}

/// A 60-column tmux terminal running `sotto call`, read as a person sees it.
struct Terminal {
    name: String,
}

impl Terminal {
    fn start(command: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "sotto-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "60", "-y", "20"])
            .arg(format!("{command}; sleep 600"))
            .status()
            .expect("tmux (the test command installs it)")
            .success();
        assert!(ok);
        Self { name }
    }

    /// The screen, wrapped lines joined back (`-J`): a line longer than 60 columns shows.
    fn screen(&self) -> Vec<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn wait_for(&self, needle: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.iter().any(|l| l.contains(needle)) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} on the screen:\n{}",
                screen.join("\n")
            );
            // Polling a terminal's screen: tmux has no way to wait for text.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The terminal's echo setting, as `stty` reads it: `true` while typed keys would show.
    fn echoes(&self) -> bool {
        let tty = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{pane_tty}"])
            .output()
            .unwrap();
        let tty = String::from_utf8_lossy(&tty.stdout).trim().to_owned();
        let stty = Command::new("stty")
            .args(["-F", &tty, "-a"])
            .output()
            .unwrap();
        let settings = String::from_utf8_lossy(&stty.stdout).into_owned();
        assert!(settings.contains("echo"), "{tty}: {settings}");
        settings.split_whitespace().any(|w| w == "echo")
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status()
            .unwrap();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_60_column_terminal_the_status_line_is_redrawn_in_place_and_typed_messages_go_from_the_bottom_line()
 {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let term = Terminal::start(&format!(
            "XDG_DATA_HOME={} {} call '{link}' --tone 440 --output {} --loopback",
            data_home("tmux").display(),
            env!("CARGO_BIN_EXE_sotto"),
            wav_out()
        ));
        term.wait_for("waiting for the other person | Ctrl-C hangs up");
        let mut other = CallProcess::start(&link, "880");
        other.wait_for_each(&[
            r#""state":"receiving-audio""#,
            r#""event":"messages-ready""#,
        ]);
        term.wait_for("in the call 00:0");
        assert!(!term.echoes(), "typed keys would echo into the status line");
        term.wait_for("messages: type and press Enter");
        // Three more seconds of status updates, each a redraw of the same line.
        term.wait_for("in the call 00:04");
        let screen = term.screen();
        let text = screen.join("\n");
        for line in &screen {
            assert!(
                line.chars().count() <= 60,
                "wider than the terminal: {line:?}\n{text}"
            );
        }
        // relay, two lines of safety code, whether the other device is verified, connected, how
        // to send messages, the status line: nothing piles up.
        assert_eq!(screen.len(), 7, "{text}");
        assert_eq!(
            screen
                .iter()
                .filter(|l| l.starts_with("in the call"))
                .count(),
            1,
            "{text}"
        );
        // Typing shows on the bottom line (drawn by the program, not echoed); Enter sends it.
        term.keys("hello there");
        term.wait_for("> hello there");
        term.keys("Enter");
        assert_eq!(
            field(&other.wait_for(r#""event":"message""#), "text"),
            "hello there"
        );
        // What was sent stays on the screen, numbered for its receipt.
        term.wait_for("you (0): hello there");
        term.wait_for("(message 0 delivered)");
        // A message from the other side lands above the status line, its escapes defused.
        other.type_line("hi \x1b[2J back");
        let screen = term.wait_for("them: hi");
        assert!(
            screen.iter().any(|l| l == "them: hi ?[2J back"),
            "{}",
            screen.join("\n")
        );
        // The other side vanishes: the news gets its own line, not glued to the status line.
        drop(other);
        let screen = term.wait_for("the other person left; waiting for them to come back");
        assert!(
            screen
                .iter()
                .any(|l| l == "the other person left; waiting for them to come back"),
            "{}",
            screen.join("\n")
        );
        // Ctrl-C hangs up, and says so once.
        term.keys("C-c");
        let screen = term.wait_for("call ended: you hung up");
        assert_eq!(
            screen.iter().filter(|l| l.contains("you hung up")).count(),
            1
        );
        assert!(term.echoes(), "the terminal's echo was not given back");
    })
    .await
    .unwrap();
}

/// A file of `len` bytes that no two calls of this test share, and its path.
fn test_file(dir: &std::path::Path, name: &str, len: usize, seed: u32) -> std::path::PathBuf {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sotto-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON value of `field` in an event line.
fn field(line: &str, field: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(line).unwrap()[field].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_files_go_both_ways_with_receipts_and_arrive_byte_identical() {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let (dir_a, dir_b) = (temp_dir("chat-a"), temp_dir("chat-b"));
        let src = temp_dir("chat-src");
        let dl_a = dir_a.to_str().unwrap().to_owned();
        let dl_b = dir_b.to_str().unwrap().to_owned();
        let mut a = CallProcess::start_with(&link, "440", &["--download-dir", &dl_a]);
        a.wait_for("waiting-for-peer");
        // Nothing is sent, or kept to be sent, before the channel is open: it says so.
        a.type_line("too early");
        let early = a.wait_for(r#""event":"messages-error""#);
        assert!(
            field(&early, "error")
                .as_str()
                .is_some_and(|e| e.contains("once the call is connected")),
            "{early}"
        );
        let mut b = CallProcess::start_with(&link, "880", &["--download-dir", &dl_b]);
        // Both data channels open (webrtc 0.21.1 drops what arrives on a negotiated stream
        // before its own side saw the association come up).
        a.wait_for(r#""event":"messages-ready""#);
        b.wait_for(r#""event":"messages-ready""#);

        // Text both ways, each turning delivered.
        a.type_line("hello from A — <b>not markup</b>");
        let sent = a.wait_for(r#""event":"message-sent""#);
        let got = b.wait_for(r#""event":"message""#);
        assert_eq!(field(&got, "text"), "hello from A — <b>not markup</b>");
        assert_eq!(
            field(&a.wait_for(r#""event":"message-delivered""#), "id"),
            field(&sent, "id")
        );
        b.type_line("and back from B");
        assert_eq!(
            field(&a.wait_for(r#""event":"message""#), "text"),
            "and back from B"
        );
        b.wait_for(r#""event":"message-delivered""#);

        // 5 MB each way, at the same time: both arrive whole under their own names.
        let fa = test_file(&src, "from-a.bin", 5_000_000, 1);
        let fb = test_file(&src, "from-b.bin", 5_000_000, 2);
        a.type_line(&format!("/send {}", fa.display()));
        b.type_line(&format!("/send {}", fb.display()));
        // Above the default 10 MB nothing would be taken unasked; 5 MB is.
        assert_eq!(
            field(&b.wait_for(r#""event":"file-offered""#), "accepted"),
            true
        );
        let at_a = a.wait_for_each(&[r#""event":"file-received""#, r#""event":"file-delivered""#]);
        let at_b = b.wait_for_each(&[r#""event":"file-received""#, r#""event":"file-delivered""#]);
        let (at_a, at_b) = (&at_a[0], &at_b[0]);
        let path_b = field(at_b, "path").as_str().unwrap().to_owned();
        let path_a = field(at_a, "path").as_str().unwrap().to_owned();
        assert_eq!(path_b, dir_b.join("from-a.bin").display().to_string());
        assert_eq!(std::fs::read(&path_b).unwrap(), std::fs::read(&fa).unwrap());
        assert_eq!(std::fs::read(&path_a).unwrap(), std::fs::read(&fb).unwrap());

        // The same name again never overwrites the first.
        a.type_line(&format!("/send {}", fa.display()));
        let again = b.wait_for(r#""event":"file-received""#);
        assert_eq!(
            field(&again, "path"),
            dir_b.join("from-a (1).bin").display().to_string()
        );

        // A bad command is said, and the call goes on.
        a.type_line("/send /no/such/file");
        assert!(
            a.wait_for(r#""event":"messages-error""#)
                .contains("cannot send /no/such/file")
        );
        a.type_line("/quit");
        assert!(a.wait_for(r#""event":"ended""#).contains("you hung up"));
        b.wait_for(r#""event":"ended""#);
        assert_eq!(a.child.wait().unwrap().code(), Some(0));
        for d in [dir_a, dir_b, src] {
            std::fs::remove_dir_all(d).unwrap();
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_waits_for_accept_and_a_cancel_midway_leaves_nothing_behind() {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let link = format!("http://{addr}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let (dir_b, src) = (temp_dir("cancel-b"), temp_dir("cancel-src"));
        let dl_b = dir_b.to_str().unwrap().to_owned();
        let mut a = CallProcess::start(&link, "440");
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start_with(
            &link,
            "880",
            &["--download-dir", &dl_b, "--accept-below", "1000"],
        );
        a.wait_for(r#""event":"messages-ready""#);
        b.wait_for(r#""event":"messages-ready""#);
        let big = test_file(&src, "big.bin", 30_000_000, 3);
        a.type_line(&format!("/send {}", big.display()));
        let offer = b.wait_for(r#""event":"file-offered""#);
        assert_eq!(field(&offer, "accepted"), false);
        let id = field(&offer, "id");
        b.type_line(&format!("/accept {id}"));
        b.wait_for(r#""direction":"incoming""#);
        b.type_line(&format!("/decline {id}"));
        let stopped = a.wait_for(r#""event":"file-stopped""#);
        assert_eq!(field(&stopped, "by"), "peer");
        assert!(
            b.wait_for(r#""event":"file-stopped""#)
                .contains(r#""by":"us""#)
        );
        // Nothing of it stays in the download directory, not even the part file.
        let left: Vec<_> = std::fs::read_dir(&dir_b)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // The call goes on: a message still arrives.
        a.type_line("still here");
        assert_eq!(
            field(&b.wait_for(r#""event":"message""#), "text"),
            "still here"
        );
        for d in [dir_b, src] {
            std::fs::remove_dir_all(d).unwrap();
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_verified_once_is_known_on_the_next_call_until_it_is_forgotten() {
    let addr = start_relay().await;
    tokio::task::spawn_blocking(move || {
        let (ada, bea) = (data_home("ada"), data_home("bea"));
        let relay = format!("http://{addr}");
        let new_link = || sotto(&["new", "--relay", &relay]).1.trim().to_owned();
        // Two people who never called: each device is unknown to the other.
        let link = new_link();
        let mut a = CallProcess::start_in(&ada, &link, "440", &[]);
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start_in(&bea, &link, "880", &["--name", "Bea"]);
        let unknown = r#"{"event":"identity","status":"unknown"}"#;
        assert_eq!(a.wait_for(r#""event":"identity""#), unknown);
        assert_eq!(b.wait_for(r#""event":"identity""#), unknown);
        // They compare the code, and store each other: Ada under the name Bea gave.
        a.type_line("/verify");
        assert_eq!(
            a.wait_for(r#""event":"identity""#),
            r#"{"event":"identity","status":"known","name":"Bea"}"#
        );
        b.type_line("/verify");
        assert!(b.wait_for("verify-error").contains("needs a name"));
        b.type_line("/verify Ada's laptop");
        assert!(
            b.wait_for(r#""event":"identity""#)
                .contains(r#""name":"Ada's laptop""#)
        );
        // Ada hangs up; the call ends for Bea too.
        a.type_line("/quit");
        assert_eq!(a.child.wait().unwrap().code(), Some(0));
        assert_eq!(b.child.wait().unwrap().code(), Some(0));
        // The key is private to its owner, and the list too.
        use std::os::unix::fs::PermissionsExt;
        for file in ["device-key", "known-devices.json"] {
            let mode = std::fs::metadata(ada.join("sotto").join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
        // The next call, on a new link: known at once, no code to compare.
        let link = new_link();
        let mut a = CallProcess::start_in(&ada, &link, "440", &[]);
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start_in(&bea, &link, "880", &[]);
        assert_eq!(
            a.wait_for(r#""event":"identity""#),
            r#"{"event":"identity","status":"known","name":"Bea"}"#
        );
        assert_eq!(
            b.wait_for(r#""event":"identity""#),
            r#"{"event":"identity","status":"known","name":"Ada's laptop"}"#
        );
        a.type_line("/quit");
        let _ = (a.child.wait(), b.child.wait());
        // Listed, then forgotten.
        let (code, out, _) = sotto_in(&ada, &["known"]);
        assert_eq!(code, Some(0));
        assert!(out.starts_with("Bea  key "), "{out}");
        let (code, out, _) = sotto_in(&ada, &["known", "--forget", "Bea"]);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            sotto_in(&ada, &["known"])
                .1
                .contains("no known devices yet")
        );
        let (code, _, err) = sotto_in(&ada, &["known", "--forget", "Bea"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("no known device is called \"Bea\""), "{err}");
        // Incognito: Bea sends no identity and stores nothing.
        let link = new_link();
        let mut a = CallProcess::start_in(&ada, &link, "440", &[]);
        a.wait_for("waiting-for-peer");
        let mut b = CallProcess::start_in(&bea, &link, "880", &["--incognito"]);
        assert_eq!(
            a.wait_for(r#""event":"identity""#),
            r#"{"event":"identity","status":"none"}"#
        );
        assert_eq!(b.wait_for(r#""event":"identity""#), unknown);
        b.type_line("/verify Ada");
        assert!(b.wait_for("verify-error").contains("incognito"));
        a.type_line("/quit");
        let _ = (a.child.wait(), b.child.wait());
        let (_, out, _) = sotto_in(&bea, &["known"]);
        assert!(out.starts_with("Ada's laptop  key "), "{out}");
        for dir in [ada, bea] {
            let _ = std::fs::remove_dir_all(dir);
        }
    })
    .await
    .unwrap();
}

#[test]
fn a_damaged_device_key_stops_the_call_with_exit_2_and_is_left_as_it_is() {
    let data = data_home("damaged");
    std::fs::create_dir_all(data.join("sotto")).unwrap();
    let key = data.join("sotto/device-key");
    std::fs::write(&key, "not a key\n").unwrap();
    let link = "http://127.0.0.1:1/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let (code, _, err) = sotto_in(&data, &["call", link, "--tone", "440"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a Sotto device key"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), b"not a key\n");
    // Incognito does not need it.
    let (code, _, err) = sotto_in(&data, &["call", link, "--tone", "440", "--incognito"]);
    assert_eq!(
        code,
        Some(3),
        "the relay is unreachable, as expected: {err}"
    );
    let _ = std::fs::remove_dir_all(data);
}
