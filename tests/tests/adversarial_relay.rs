//! A relay that misbehaves: a proxy in front of the real relay alters what it forwards. Every
//! attack ends the set-up with its documented error (or, for a man in the middle who holds the
//! link, with two different safety codes), never panics, and decodes no media.

use sotto_client::call::Outcome;
use sotto_client::known::{DataDir, ThisDevice};
use sotto_client::session::{Event, IdentityStatus};
use sotto_e2ee::{DeviceKey, EphemeralKey, Handshake, LinkSecret, Received};
use sotto_proto::{Payload, PeerSignal, ServerMessage};
use sotto_tests::*;

/// The peer payload of a relay `signal`, and a way to rebuild the message with another one.
fn payload(text: &str) -> Option<(ServerMessage, Vec<u8>)> {
    match ServerMessage::decode(text) {
        Ok(Some(msg @ ServerMessage::Signal { .. })) => {
            let ServerMessage::Signal { data, .. } = &msg else {
                unreachable!()
            };
            let bytes = data.decode();
            Some((msg, bytes))
        }
        _ => None,
    }
}

fn with_payload(msg: &ServerMessage, bytes: &[u8]) -> String {
    let ServerMessage::Signal { from, .. } = msg else {
        unreachable!()
    };
    ServerMessage::Signal {
        from: from.clone(),
        data: Payload::from_bytes(bytes),
    }
    .encode()
}

/// Runs a call between two native clients through a proxy with `hook`; returns (first to
/// join = O, second = A). A side whose peer leaves (because the peer ended the set-up) would
/// wait for them to come back: it hangs up instead, so its outcome is `HungUp`.
async fn call_through(hook: Hook, link_secret: Option<LinkSecret>) -> (ClientRun, ClientRun) {
    let relay = Relay::start().await;
    let tap = Tap::start(relay.addr, hook).await;
    let link = match link_secret {
        Some(secret) => sotto_e2ee::Link::new(&format!("http://{}", tap.addr), secret).unwrap(),
        None => link_to(tap.addr),
    };
    // O joins first: start A only once O is in the room.
    let (watch, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let o = tokio::spawn(run_client_until(
        link.clone(),
        440.0,
        1.0,
        Some(watch),
        "peer-left",
    ));
    while let Some(event) = seen.recv().await {
        if matches!(&event, sotto_client::session::Event::State { state, .. } if state == "waiting-for-peer")
        {
            break;
        }
    }
    let a = run_client_until(link, 880.0, 1.0, None, "peer-left").await;
    (o.await.unwrap(), a)
}

fn assert_no_media(runs: &[&ClientRun]) {
    for run in runs {
        assert_eq!(
            run.counters.frames_received, 0,
            "media decoded: {:?}",
            run.counters
        );
        assert!(run.heard.iter().all(|&s| s == 0), "something was played");
    }
}

fn tampered(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Tampered(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_sealed_message_ends_the_set_up_as_tampering() {
    let mut sealed_to_a = 0;
    let hook: Hook = Box::new(move |dir, conn, text| {
        if let (Dir::Down, 1, Some((msg, mut bytes))) = (dir, conn, payload(&text))
            && bytes[0] == 0x04
        {
            sealed_to_a += 1;
            // The second sealed message to A: after the offer confirmed the keys.
            if sealed_to_a == 2 {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x01;
                return vec![with_payload(&msg, &bytes)];
            }
        }
        vec![text]
    });
    let (o, a) = call_through(hook, None).await;
    assert!(tampered(&a.outcome), "A: {:?}", a.outcome);
    // O is told A left, and would wait for A to come back.
    assert!(
        o.saw("peer-left") && o.outcome == Outcome::HungUp,
        "O: {:?}",
        o.outcome
    );
    assert_no_media(&[&o, &a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_sealed_message_ends_the_set_up_as_tampering() {
    let hook: Hook = Box::new(|dir, conn, text| {
        if let (Dir::Down, 0, Some((_, bytes))) = (dir, conn, payload(&text))
            && bytes[0] == 0x04
        {
            // Every sealed message to O arrives twice.
            return vec![text.clone(), text];
        }
        vec![text]
    });
    let (o, a) = call_through(hook, None).await;
    assert!(tampered(&o.outcome), "O: {:?}", o.outcome);
    assert_no_media(&[&o, &a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reordered_sealed_messages_end_the_set_up_as_tampering() {
    let mut held: Option<String> = None;
    let mut sealed_to_a = 0;
    let hook: Hook = Box::new(move |dir, conn, text| {
        if let (Dir::Down, 1, Some((_, bytes))) = (dir, conn, payload(&text))
            && bytes[0] == 0x04
        {
            sealed_to_a += 1;
            match sealed_to_a {
                // Hold the second sealed message, deliver it after the third.
                2 => {
                    held = Some(text);
                    return vec![];
                }
                3 => return [Some(text), held.take()].into_iter().flatten().collect(),
                _ => {}
            }
        }
        vec![text]
    });
    let (o, a) = call_through(hook, None).await;
    assert!(tampered(&a.outcome), "A: {:?}", a.outcome);
    assert_no_media(&[&o, &a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reveal_ends_the_set_up_as_tampering() {
    let hook: Hook = Box::new(|dir, conn, text| match (dir, conn, payload(&text)) {
        (Dir::Down, 1, Some((_, bytes))) if bytes[0] == 0x03 => vec![],
        _ => vec![text],
    });
    let (o, a) = call_through(hook, None).await;
    // A still waits for REVEAL when the sealed offer arrives: out of order.
    assert!(tampered(&a.outcome), "A: {:?}", a.outcome);
    assert_no_media(&[&o, &a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_substituted_without_the_secret_are_a_wrong_link_or_tampered_relay() {
    // The relay answers O's COMMIT with a KEY of its own: O derives keys with the relay's
    // public key, and without the link's secret the relay can do nothing with them. A cannot
    // open O's offer.
    let relay_key = EphemeralKey::from_bytes([0x42; 32]).public();
    let hook: Hook = Box::new(move |dir, conn, text| match (dir, conn, payload(&text)) {
        (Dir::Down, 0, Some((msg, bytes))) if bytes[0] == 0x02 => {
            let mut forged = vec![0x02];
            forged.extend_from_slice(&relay_key);
            vec![with_payload(&msg, &forged)]
        }
        _ => vec![text],
    });
    let (o, a) = call_through(hook, None).await;
    assert!(
        matches!(a.outcome, Outcome::WrongLinkOrTamperedRelay),
        "A: {:?}",
        a.outcome
    );
    assert_eq!(
        a.safety_code(),
        None,
        "no code is shown for a failed set-up"
    );
    assert_no_media(&[&o, &a]);
}

/// A relay that holds the link runs one handshake with each side and re-seals everything
/// between them: the only attack left. It fails at the safety code.
struct ManInTheMiddle {
    /// Plays A towards O.
    with_o: Handshake,
    /// Plays O towards A.
    with_a: Handshake,
    /// Our own COMMIT towards A.
    commit_for_a: Option<Vec<u8>>,
    key_for_o: Option<Vec<u8>>,
    reveal_for_a: Option<Vec<u8>>,
    /// A device key of its own: each side's `identity` is replaced by one it signs over the
    /// transcript it shares with the other side (else identities go through as they are).
    device: Option<DeviceKey>,
}

impl ManInTheMiddle {
    fn new(secret: &LinkSecret) -> Self {
        let (with_a, commit) = Handshake::offerer(secret, EphemeralKey::from_bytes([0x66; 32]));
        Self {
            with_o: Handshake::answerer(secret, EphemeralKey::from_bytes([0x77; 32])),
            with_a,
            commit_for_a: Some(commit),
            key_for_o: None,
            reveal_for_a: None,
            device: None,
        }
    }

    /// The same, with a device key of its own for the identities.
    fn with_device(secret: &LinkSecret, device: DeviceKey) -> Self {
        Self {
            device: Some(device),
            ..Self::new(secret)
        }
    }

    /// `plain`, re-sealed with `onward`; an identity is replaced by the man in the middle's
    /// own, when it has a device key.
    fn reseal(onward: &mut Handshake, device: Option<&DeviceKey>, plain: &[u8]) -> Option<Vec<u8>> {
        let plain = match (PeerSignal::decode(plain), device) {
            (Ok(Some(PeerSignal::Identity { .. })), Some(device)) => {
                let (key, sig) = onward.identity(device).ok()?.to_text();
                PeerSignal::Identity { key, sig }.encode()
            }
            _ => plain.to_vec(),
        };
        onward.seal(&plain).ok()
    }

    /// Rewrites one peer payload going to `conn` (0 = O, 1 = A).
    fn rewrite(&mut self, conn: usize, bytes: &[u8]) -> Option<Vec<u8>> {
        match (conn, bytes[0]) {
            // O's COMMIT, on its way to A: take it, send ours.
            (1, 0x01) => {
                if let Ok(Received::Reply(key)) = self.with_o.receive(bytes) {
                    self.key_for_o = Some(key);
                }
                self.commit_for_a.take()
            }
            // A's KEY, on its way to O: take it, send ours.
            (0, 0x02) => {
                if let Ok(Received::KeysReady {
                    reply: Some(reveal),
                }) = self.with_a.receive(bytes)
                {
                    self.reveal_for_a = Some(reveal);
                }
                self.key_for_o.take()
            }
            // O's REVEAL, on its way to A: take it, send ours.
            (1, 0x03) => {
                self.with_o.receive(bytes).ok()?;
                self.reveal_for_a.take()
            }
            // Sealed messages: open with one side's keys, seal with the other's.
            (1, 0x04) => match self.with_o.receive(bytes) {
                Ok(Received::Message(plain)) => {
                    Self::reseal(&mut self.with_a, self.device.as_ref(), &plain)
                }
                _ => None,
            },
            (0, 0x04) => match self.with_a.receive(bytes) {
                Ok(Received::Message(plain)) => {
                    Self::reseal(&mut self.with_o, self.device.as_ref(), &plain)
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// A relay hook that runs every peer payload through the man in the middle.
fn through(mut mitm: ManInTheMiddle) -> Hook {
    Box::new(move |dir, conn, text| match (dir, payload(&text)) {
        (Dir::Down, Some((msg, bytes))) => match mitm.rewrite(conn, &bytes) {
            Some(rewritten) => vec![with_payload(&msg, &rewritten)],
            None => vec![],
        },
        _ => vec![text],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_who_holds_the_link_shows_two_different_safety_codes() {
    let secret = LinkSecret::generate().unwrap();
    let mitm = ManInTheMiddle::new(&secret);
    let hook = through(mitm);
    let (o, a) = call_through(hook, Some(secret)).await;
    let (code_o, code_a) = (o.safety_code(), a.safety_code());
    assert!(
        code_o.is_some() && code_a.is_some(),
        "both sides got as far as a code"
    );
    assert_ne!(
        code_o, code_a,
        "the man in the middle must show up in the codes"
    );
    // The media keys differ as well: nothing the peers send each other decodes.
    assert_no_media(&[&o, &a]);
}

/// What a client said of the other device: its `identity` events, in order.
fn identities(run: &ClientRun) -> Vec<(IdentityStatus, Option<String>)> {
    run.events
        .iter()
        .filter_map(|e| match e {
            Event::Identity { status, name, .. } => Some((*status, name.clone())),
            _ => None,
        })
        .collect()
}

/// A known-devices data directory of its own, empty.
fn data_dir(tag: &str) -> DataDir {
    let dir = std::env::temp_dir().join(format!("sotto-known-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    DataDir::at(dir)
}

/// One call between two people, each on their own device and data directory, through the
/// relay at `addr` (or a tap in front of it): O joins first. A person given a name for the
/// other's device types `/verify NAME` as soon as that device is shown as unknown.
async fn call_between(
    link: sotto_e2ee::Link,
    (dir_o, verify_o): (&DataDir, Option<&'static str>),
    (dir_a, verify_a): (&DataDir, Option<&'static str>),
) -> (ClientRun, ClientRun) {
    let person = |dir: &DataDir, verify: Option<&'static str>, link: sotto_e2ee::Link| {
        let device = ThisDevice::open(dir).expect("a device key");
        let (typed, input) = tokio::sync::mpsc::channel(4);
        let (watch, mut seen) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let (here_tx, here) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut here_tx = Some(here_tx);
            while let Some(event) = seen.recv().await {
                match &event {
                    Event::State { state, .. } if state == "waiting-for-peer" => {
                        if let Some(tx) = here_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Event::Identity {
                        status: IdentityStatus::Unknown,
                        ..
                    } => {
                        if let Some(name) = verify {
                            let _ = typed.send(format!("/verify {name}\n")).await;
                        }
                    }
                    _ => {}
                }
            }
        });
        let extra = Extra {
            hang_up_at: Some("peer-left"),
            device: Some(device),
            input: Some(input),
            ..Extra::default()
        };
        (
            tokio::spawn(run_client_extra(link, 440.0, 1.0, Some(watch), extra)),
            here,
        )
    };
    let (o, o_here) = person(dir_o, verify_o, link.clone());
    o_here.await.expect("O is in the room");
    let (a, _) = person(dir_a, verify_a, link);
    (o.await.unwrap(), a.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_device_is_known_on_the_next_call_and_a_man_in_the_middle_is_a_stranger() {
    let relay = Relay::start().await;
    let (ada, bea) = (data_dir("ada"), data_dir("bea"));
    // First call: each device is new to the other; both compare the code and verify.
    let link = link_to(relay.addr);
    let (o, a) = call_between(
        link,
        (&ada, Some("Bea's laptop")),
        (&bea, Some("Ada's phone")),
    )
    .await;
    assert_eq!(o.safety_code(), a.safety_code());
    for (run, name) in [(&o, "Bea's laptop"), (&a, "Ada's phone")] {
        assert_eq!(
            identities(run),
            [
                (IdentityStatus::Unknown, None),
                (IdentityStatus::Known, Some(name.to_owned()))
            ],
            "{:?}",
            run.events
        );
    }
    // Second call, on another link: each knows the other's device at once.
    let link = link_to(relay.addr);
    let (o, a) = call_between(link, (&ada, None), (&bea, None)).await;
    assert_eq!(
        identities(&o),
        [(IdentityStatus::Known, Some("Bea's laptop".into()))]
    );
    assert_eq!(
        identities(&a),
        [(IdentityStatus::Known, Some("Ada's phone".into()))]
    );
    assert!(o.counters.frames_received > 0 && a.counters.frames_received > 0);
    // Third call, through a man in the middle who holds the link and signs with a device key
    // of its own: neither device is known, and the codes differ.
    let secret = LinkSecret::generate().unwrap();
    let mitm = ManInTheMiddle::with_device(&secret, DeviceKey::generate().unwrap());
    let hook = through(mitm);
    let tap = Tap::start(relay.addr, hook).await;
    let link = sotto_e2ee::Link::new(&format!("http://{}", tap.addr), secret).unwrap();
    let (o, a) = call_between(link, (&ada, None), (&bea, None)).await;
    assert_eq!(identities(&o), [(IdentityStatus::Unknown, None)]);
    assert_eq!(identities(&a), [(IdentityStatus::Unknown, None)]);
    assert!(o.safety_code().is_some() && a.safety_code().is_some());
    assert_ne!(o.safety_code(), a.safety_code());
    assert_no_media(&[&o, &a]);
    for dir in [ada, bea] {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_who_forwards_a_device_identity_ends_the_set_up_as_tampering() {
    // The identity signs the transcript O shares with the man in the middle, not A's.
    let secret = LinkSecret::generate().unwrap();
    let mitm = ManInTheMiddle::new(&secret);
    let relay = Relay::start().await;
    let hook = through(mitm);
    let tap = Tap::start(relay.addr, hook).await;
    let link = sotto_e2ee::Link::new(&format!("http://{}", tap.addr), secret).unwrap();
    let (ada, bea) = (data_dir("fwd-ada"), data_dir("fwd-bea"));
    let (o, a) = call_between(link, (&ada, None), (&bea, None)).await;
    for run in [&o, &a] {
        assert!(
            matches!(&run.outcome, Outcome::Tampered(why) if why.contains("device signature does not verify"))
                || run.saw("peer-left"),
            "{:?}",
            run.outcome
        );
    }
    assert!(tampered(&o.outcome) || tampered(&a.outcome));
    assert_no_media(&[&o, &a]);
    for dir in [ada, bea] {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
