//! Two native clients in one call through the real relay on loopback: they hear each other,
//! show the same safety code, and the relay sees only sealed bytes.

use sotto_client::call::Outcome;
use sotto_client::session::Event;
use sotto_proto::ServerMessage;
use sotto_tests::*;

/// What an SDP or a candidate always contains, and a relay must never see.
const SECRETS_OF_THE_SETUP: [&str; 6] = [
    "v=0\r\n",
    "a=fingerprint",
    "candidate:",
    "ice-ufrag",
    "a=rtpmap",
    "opus/48000",
];

/// Skips the first 200 ms of what a client heard (encoder start-up).
fn settled(samples: &[i16]) -> &[i16] {
    &samples[samples.len().min(9600)..]
}

fn assert_hears(run: &ClientRun, want: f64, not: f64) {
    let heard = settled(&run.heard);
    assert!(heard.len() >= 48_000, "heard only {} samples", heard.len());
    let (p_want, p_not) = (tone_power(heard, want), tone_power(heard, not));
    assert!(
        p_want > 100.0 * p_not.max(1e-9),
        "{want} Hz power {p_want:.3} is not far above {not} Hz power {p_not:.3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_clients_hear_each_others_tone_and_show_the_same_safety_code() {
    let relay = Relay::start().await;
    let tap = Tap::transparent(relay.addr).await;
    let link = link_to(tap.addr);
    let (a, b) = tokio::join!(
        run_client(link.clone(), 440.0, 2.0),
        run_client(link.clone(), 880.0, 2.0)
    );
    // What the relay forwarded: the sealed payloads never show SDP, candidates, fingerprints,
    // ICE credentials or media, and the media never crossed it at all.
    let record = tap.record.lock().unwrap().clone();
    let mut payloads = 0;
    for (_, _, text) in &record {
        // Needles of 5 bytes or more: random ciphertext cannot contain them by chance.
        for needle in SECRETS_OF_THE_SETUP {
            assert!(!text.contains(needle), "the relay saw {needle:?} in {text}");
        }
        if let Ok(Some(ServerMessage::Signal { data, .. })) = ServerMessage::decode(text) {
            let bytes = data.decode();
            payloads += 1;
            match bytes.first() {
                Some(0x01..=0x03) => assert_eq!(bytes.len(), 33),
                Some(0x04) => {
                    let body = String::from_utf8_lossy(&bytes);
                    for needle in SECRETS_OF_THE_SETUP {
                        assert!(!body.contains(needle), "sealed payload shows {needle:?}");
                    }
                }
                other => panic!("unexpected payload kind {other:?}"),
            }
        }
    }
    assert!(
        payloads >= 5,
        "the set-up crossed the relay ({payloads} payloads)"
    );
    assert!(
        payloads < 100,
        "{payloads} payloads: media must not cross the relay"
    );
    for run in [&a, &b] {
        assert!(
            matches!(run.outcome, Outcome::HungUp | Outcome::PeerHungUp),
            "{:?}",
            run.outcome
        );
        assert_eq!(run.counters.frames_failed, 0, "authentication failures");
        assert!(run.counters.frames_received >= 80, "{:?}", run.counters);
    }
    let code = a.safety_code().expect("a safety code");
    assert_eq!(code.len(), 6);
    assert_eq!(b.safety_code(), Some(code));
    assert_hears(&a, 880.0, 440.0);
    assert_hears(&b, 440.0, 880.0);
    assert!(
        b.events
            .iter()
            .any(|e| matches!(e, Event::State { state, .. } if state == "connected"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_tells_the_other_side_with_a_sealed_bye() {
    let relay = Relay::start().await;
    let link = link_to(relay.addr);
    // A hangs up after one second; B would stay for twenty.
    let (a, b) = tokio::join!(
        run_client(link.clone(), 440.0, 1.0),
        run_client(link.clone(), 880.0, 20.0)
    );
    assert_eq!(a.outcome, Outcome::HungUp);
    assert_eq!(b.outcome, Outcome::PeerHungUp);
    assert!(b.counters.frames_received >= 30, "{:?}", b.counters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_native_clients_in_a_group_each_hear_the_two_others_with_a_code_per_pair() {
    let relay = Relay::start().await;
    let link = link_to(relay.addr).with_group(Some(3)).unwrap();
    let (a, b, c) = tokio::join!(
        run_client(link.clone(), 440.0, 4.0),
        run_client(link.clone(), 660.0, 4.0),
        run_client(link.clone(), 990.0, 4.0)
    );
    for (run, own, others) in [
        (&a, 440.0, [660.0, 990.0]),
        (&b, 660.0, [440.0, 990.0]),
        (&c, 990.0, [440.0, 660.0]),
    ] {
        assert_eq!(run.outcome, Outcome::HungUp);
        assert_eq!(run.counters.frames_failed, 0);
        let heard = settled(&run.heard);
        assert!(heard.len() >= 48_000, "heard only {} samples", heard.len());
        let p_own = tone_power(heard, own);
        for f in others {
            let p = tone_power(heard, f);
            assert!(
                p > 100.0 * p_own.max(1e-9),
                "{own} Hz hears {f} Hz at {p:.3}, its own at {p_own:.3}"
            );
        }
    }
    // Each of the three pairs shows one code, on both of its ends: six codes, three distinct,
    // each twice.
    let mut codes: Vec<String> = [&a, &b, &c]
        .iter()
        .flat_map(|r| {
            r.events.iter().filter_map(|e| match e {
                Event::Sas {
                    code,
                    peer: Some(_),
                } => Some(code.clone()),
                _ => None,
            })
        })
        .collect();
    codes.sort();
    assert_eq!(codes.len(), 6, "{codes:?}");
    for pair in codes.chunks(2) {
        assert_eq!(pair[0], pair[1], "{codes:?}");
    }
    codes.dedup();
    assert_eq!(codes.len(), 3, "{codes:?}");
}
