//! The TURN credentials a relay hands out open a real allocation on coturn (Debian's
//! `coturn`, configured with `use-auth-secret`), and tampered ones do not.

mod common;

use common::*;
use sotto_proto::{ClientMessage, ServerMessage};
use sotto_signaling::{Config, TurnSecret};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const SECRET: &str = "north-wind-turn-secret";

struct Coturn {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Coturn {
    fn start() -> Self {
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
                &format!("--static-auth-secret={SECRET}"),
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
    fn allocate(&self, user: &str, password: &str) -> bool {
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

#[tokio::test]
async fn turn_credentials_from_welcome_open_a_coturn_allocation_and_tampered_ones_do_not() {
    let coturn = Coturn::start();
    let relay = Relay::start(Config {
        turn_urls: vec![format!("turn:127.0.0.1:{}?transport=udp", coturn.port)],
        turn_secret: Some(TurnSecret::from(SECRET.to_owned())),
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(&relay).await;
    client.send(&ClientMessage::Join { room: room(1) }).await;
    let ServerMessage::Welcome { ice, .. } = client.recv().await else {
        panic!("expected welcome");
    };
    let turn = &ice[0];
    assert_eq!(
        turn.urls[0],
        format!("turn:127.0.0.1:{}?transport=udp", coturn.port)
    );
    let user = turn.username.clone().unwrap();
    let password = turn.credential.clone().unwrap();
    let mut tampered = password.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let coturn = std::sync::Arc::new(coturn);
    let (good, bad) = tokio::join!(
        tokio::task::spawn_blocking({
            let c = coturn.clone();
            move || c.allocate(&user, &password)
        }),
        tokio::task::spawn_blocking({
            let c = coturn.clone();
            let user = turn.username.clone().unwrap();
            move || c.allocate(&user, &tampered)
        }),
    );
    assert!(good.unwrap(), "coturn refused the relay's credentials");
    assert!(!bad.unwrap(), "coturn accepted a tampered password");
}
