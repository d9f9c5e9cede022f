//! The TURN credentials a relay hands out open a real allocation on coturn (Debian's
//! `coturn`, configured with `use-auth-secret`), and tampered ones do not.

use sotto_proto::{ClientMessage, ServerMessage};
use sotto_signaling::{Config, TurnSecret};
use sotto_tests::*;

/// The ICE servers a relay's `welcome` lists.
async fn welcome_ice(relay: &Relay) -> Vec<sotto_proto::IceServer> {
    use futures_util::{SinkExt, StreamExt};
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", relay.addr))
        .await
        .unwrap();
    let join = ClientMessage::Join {
        room: sotto_proto::RoomId::from_bytes(&[1; 16]),
        max: None,
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        join.encode().into(),
    ))
    .await
    .unwrap();
    let reply = ws.next().await.unwrap().unwrap().into_text().unwrap();
    let Ok(Some(ServerMessage::Welcome { ice, .. })) = ServerMessage::decode(reply.as_str()) else {
        panic!("expected welcome, got {reply}");
    };
    ice
}

fn turn_config(coturn: &Coturn) -> Config {
    Config {
        turn_urls: vec![format!("turn:127.0.0.1:{}?transport=udp", coturn.port)],
        turn_secret: Some(TurnSecret::from(TURN_SECRET.to_owned())),
        ..Config::default()
    }
}

#[tokio::test]
async fn turn_credentials_from_welcome_open_a_coturn_allocation_and_tampered_ones_do_not() {
    let coturn = Coturn::start();
    let relay = Relay::start_with(turn_config(&coturn)).await;
    let ice = welcome_ice(&relay).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_talk_through_coturn_and_offer_only_relayed_candidates() {
    let coturn = Coturn::start();
    let relay = Relay::start_with(turn_config(&coturn)).await;
    let link = link_to(relay.addr);
    let (a, b) = tokio::join!(
        run_relay_only_client(link.clone(), 440.0, 2.0),
        run_relay_only_client(link, 880.0, 2.0)
    );
    for (run, want, not) in [(&a, 880.0, 440.0), (&b, 440.0, 880.0)] {
        assert_eq!(run.counters.frames_failed, 0);
        assert!(
            run.counters.frames_received >= 60,
            "{:?} {:?}",
            run.outcome,
            run.counters
        );
        let types: Vec<&str> = run
            .events
            .iter()
            .filter_map(|e| match e {
                sotto_client::session::Event::Candidate { typ } => Some(typ.as_str()),
                _ => None,
            })
            .collect();
        assert!(!types.is_empty(), "no candidates gathered");
        assert!(
            types.iter().all(|t| *t == "relay"),
            "non-relayed candidates: {types:?}"
        );
        let heard = &run.heard[run.heard.len().min(9600)..];
        assert!(tone_power(heard, want) > 100.0 * tone_power(heard, not).max(1e-9));
    }
}
