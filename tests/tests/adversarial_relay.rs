//! A relay that misbehaves: a proxy in front of the real relay alters what it forwards. Every
//! attack ends the set-up with its documented error (or, for a man in the middle who holds the
//! link, with two different safety codes), never panics, and decodes no media.

use sotto_client::call::Outcome;
use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};
use sotto_proto::{Payload, ServerMessage};
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
        assert!(run.heard.is_empty());
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
        }
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
                Ok(Received::Message(plain)) => self.with_a.seal(&plain).ok(),
                _ => None,
            },
            (0, 0x04) => match self.with_a.receive(bytes) {
                Ok(Received::Message(plain)) => self.with_o.seal(&plain).ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_who_holds_the_link_shows_two_different_safety_codes() {
    let secret = LinkSecret::generate().unwrap();
    let mut mitm = ManInTheMiddle::new(&secret);
    let hook: Hook = Box::new(move |dir, conn, text| match (dir, payload(&text)) {
        (Dir::Down, Some((msg, bytes))) => match mitm.rewrite(conn, &bytes) {
            Some(rewritten) => vec![with_payload(&msg, &rewritten)],
            None => vec![],
        },
        _ => vec![text],
    });
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
