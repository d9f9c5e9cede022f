//! Once a call is connected its media flows peer to peer: restarting the relay does not end it.

use sotto_client::call::Outcome;
use sotto_client::session::Event;
use sotto_tests::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn until_connected(events: &mut mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = events.recv().await {
        if matches!(&event, Event::State { state, .. } if state == "connected") {
            return;
        }
    }
    panic!("the client ended before connecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_a_relay_restart_after_it_is_established() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let relay = Relay::start_on(listener).await;
    let link = link_to(addr);
    let (watch_a, mut seen_a) = mpsc::unbounded_channel();
    let (watch_b, mut seen_b) = mpsc::unbounded_channel();
    let a = tokio::spawn(run_client_watched(link.clone(), 440.0, 3.0, Some(watch_a)));
    let b = tokio::spawn(run_client_watched(link, 880.0, 3.0, Some(watch_b)));
    until_connected(&mut seen_a).await;
    until_connected(&mut seen_b).await;

    relay.stop().await;
    let restarted = Relay::start_on(TcpListener::bind(addr).await.unwrap()).await;

    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    for (run, want, not) in [(&a, 880.0, 440.0), (&b, 440.0, 880.0)] {
        assert!(
            matches!(run.outcome, Outcome::HungUp | Outcome::PeerHungUp),
            "{:?}",
            run.outcome
        );
        assert_eq!(run.counters.frames_failed, 0);
        // 3 s at 50 frames a second, most of them after the relay went away.
        assert!(run.counters.frames_received >= 120, "{:?}", run.counters);
        let heard = &run.heard[9600.min(run.heard.len())..];
        assert!(tone_power(heard, want) > 100.0 * tone_power(heard, not).max(1e-9));
    }
    restarted.stop().await;
}
