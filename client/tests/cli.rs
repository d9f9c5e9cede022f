//! The `sotto` binary as a person runs it: links, and a clear error with its own exit code for
//! each way a call cannot happen.

use std::process::Command;
use tokio::net::TcpListener;

fn sotto(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_exits_4_with_the_relays_code() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sotto_signaling::run(
        listener,
        sotto_signaling::Config::default(),
        std::future::pending::<()>(),
    ));
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
fn without_a_source_the_call_explains_the_options() {
    let (code, _, err) = sotto(&[
        "call",
        "http://127.0.0.1:1/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--tone") && err.contains("--input"), "{err}");
}
