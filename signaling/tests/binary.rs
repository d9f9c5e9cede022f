//! The `sotto-relay` binary as an operator runs it: its own process, so its memory and its
//! signal handling can be observed.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, ErrorCode, ServerMessage};
use std::process::Command;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_10_mib_frame_is_refused_without_growing_memory_or_killing_the_relay() {
    let process = RelayProcess::start(&[]);
    let relay = process.relay();
    // Warm up: a full call set-up, so the baseline includes every code path's allocations.
    let (mut a, _, mut b, b_id) = pair(&relay, 1).await;
    a.signal(&b_id, &"A".repeat(60_000)).await;
    b.recv().await;
    let baseline = process.peak_rss_kib();

    let mut big = Client::connect(&relay).await;
    big.join(&room(2)).await;
    let (mut tx, mut rx) = big.ws.split();
    let frame = Message::Text("A".repeat(10 * 1024 * 1024).into());
    // Send from a task: the relay stops reading after the frame header, so the send may
    // block or fail; the answer is read meanwhile.
    let sender = tokio::spawn(async move {
        let _ = tx.send(frame).await;
        tx
    });
    let mut got_error = false;
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, rx.next()).await {
        match msg {
            Message::Text(t) => {
                let msg = ServerMessage::decode(t.as_str()).unwrap().unwrap();
                assert!(
                    matches!(
                        &msg,
                        ServerMessage::Error {
                            code: ErrorCode::TooLarge,
                            ..
                        }
                    ),
                    "{msg:?}"
                );
                got_error = true;
            }
            Message::Close(f) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    sender.abort();
    assert!(got_error, "the client was told `too-large`");
    assert_eq!(close_code, Some(1009));

    let after = process.peak_rss_kib();
    assert!(
        after < baseline + 2048,
        "peak RSS grew from {baseline} KiB to {after} KiB: the frame was buffered"
    );
    // The relay is alive and the other call is unaffected.
    a.signal(&b_id, "AQID").await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { .. }));
    let (_c, _, _d, _) = pair(&relay, 3).await;
}

#[tokio::test]
async fn sigterm_closes_every_socket_and_exits_cleanly() {
    let mut process = RelayProcess::start(&["--shutdown-timeout", "3s"]);
    let relay = process.relay();
    let (mut a, _, mut b, _) = pair(&relay, 1).await;
    process.signal("TERM");
    for c in [&mut a, &mut b] {
        let frame = c.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1001);
    }
    assert_eq!(process.wait_exit(), Some(0));
}

#[tokio::test]
async fn a_relay_on_one_worker_thread_relays_and_stops_cleanly() {
    let mut process = RelayProcess::start(&["--threads", "1"]);
    let threads = std::fs::read_to_string(format!("/proc/{}/status", process.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_owned()))
        .unwrap();
    // The main thread is the one worker; tokio adds no others until blocking work needs one.
    assert_eq!(threads, "1");
    let (mut a, _, mut b, b_id) = pair(&process.relay(), 1).await;
    a.signal(&b_id, "AQID").await;
    assert!(matches!(b.recv().await, ServerMessage::Signal { .. }));
    process.signal("TERM");
    assert_eq!(process.wait_exit(), Some(0));
}

#[tokio::test]
async fn sigint_stops_an_idle_relay() {
    let mut process = RelayProcess::start(&[]);
    process.signal("INT");
    assert_eq!(process.wait_exit(), Some(0));
}

#[test]
fn bad_configuration_exits_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--turn-url",
            "turn:t.example:3478",
        ])
        .env_remove("SOTTO_TURN_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--turn-url needs --turn-secret"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert /nonexistent/cert.pem"));
}

#[test]
fn a_key_file_without_a_key_is_named_by_its_flag() {
    let dir = std::env::temp_dir().join(format!("sotto-keyless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    // The certificate given as the key too: a file with no key in it.
    let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&cert_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--tls-key {}: no PEM private key in the file",
            cert_path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_address_in_use_is_named_with_its_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .args(["--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--listen {addr}: cannot listen")) && stderr.contains("another"),
        "{stderr}"
    );
}

#[test]
fn the_sfus_udp_address_problems_are_named_with_their_flags() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The UDP port is taken.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = run(&["--sfu-udp", &addr]);
    assert!(
        err.contains(&format!("cannot bind the SFU to udp://{addr}")) && err.contains("--no-sfu"),
        "{err}"
    );
    // Every address, and no address to tell clients.
    let err = run(&["--sfu-udp", "0.0.0.0:0"]);
    assert!(err.contains("--sfu-announce"), "{err}");
    // An address clients cannot send to.
    let err = run(&["--sfu-announce", "0.0.0.0"]);
    assert!(
        err.contains("--sfu-announce must be an address clients can send to"),
        "{err}"
    );
}

#[tokio::test]
async fn the_log_says_who_closed_each_connection() {
    let mut process = RelayProcess::start(&["--join-timeout", "1s"]);
    let relay = process.relay();
    let (mut a, _, mut b, _) = pair(&relay, 41).await;
    // A third person is refused: the log gives the reason.
    let mut c = Client::connect(&relay).await;
    c.send(&ClientMessage::Join {
        room: room(41),
        max: None,
    })
    .await;
    c.expect_error(ErrorCode::RoomFull).await;
    process.wait_log("refused by the relay: room full");
    // A hangs up.
    a.send(&ClientMessage::Leave).await;
    process.wait_log("client hung up (leave)");
    // B's connection just ends.
    drop(b.next_frame().await);
    drop(b);
    process.wait_log("connection lost");
    // D never joins.
    let _d = Client::connect(&relay).await;
    process.wait_log("timeout: no join in time");
    // E is there when the operator stops the relay.
    let mut e = Client::connect(&relay).await;
    e.send(&ClientMessage::Join {
        room: room(42),
        max: None,
    })
    .await;
    e.recv().await;
    process.signal("TERM");
    process.wait_log("relay shutting down");
    assert_eq!(process.wait_exit(), Some(0));
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--max-peers",
        "--max-connections",
        "--max-message-bytes",
        "--rate",
        "--burst",
        "--join-timeout",
        "--ping-interval",
        "--pong-timeout",
        "--send-queue",
        "--shutdown-timeout",
        "--stun",
        "--turn-url",
        "--turn-secret",
        "--turn-ttl",
        "--tls-cert",
        "--tls-key",
        "--log",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
        let var = format!(
            "SOTTO_{}",
            flag.trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase()
        );
        assert!(help.contains(&var), "--help lacks {var}");
    }
}
