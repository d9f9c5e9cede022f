//! The load generator's Sotto adapter and scenarios against the real relay, in-process on a
//! free port. These check that the benchmark measures what it says (messages really relayed,
//! connections really joined, the silent peer really dropped), never how fast.

use sotto_bench::load;
use sotto_bench::peers::Server;
use sotto_signaling::Config;
use sotto_tests::Relay;

fn unlimited() -> Config {
    Config {
        rate: 1e6,
        burst: 1_000_000,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_relays_stamped_messages_between_every_pair() {
    let relay = Relay::start_with(unlimited()).await;
    let addr = relay.addr.to_string();
    let me = std::process::id();
    let result = load::pingpong(Server::Sotto, (&addr, None), 6, 2048, 0.3, Some(me))
        .await
        .unwrap();
    assert_eq!(result.clients, 6);
    assert!(result.messages_per_s > 0.0);
    // Latencies are read back from the stamps: real numbers, in order (never a time limit).
    assert!(
        result.p50_ms.is_finite() && result.p50_ms <= result.p99_ms,
        "{result:?}"
    );
    assert!(result.server_cpu.is_some() && result.generator_cpu.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_on_schedule_and_every_message_arrives() {
    let relay = Relay::start_with(unlimited()).await;
    let addr = relay.addr.to_string();
    // Four senders at 200 messages/s in all: each sends every 20 ms for half a second.
    let result = load::openloop(Server::Sotto, &addr, 4, 1024, 200.0, 0.5, None)
        .await
        .unwrap();
    assert_eq!(result.clients, 4);
    assert_eq!((result.messages, result.lost), (100, 0), "{result:?}");
    assert!(
        result.p50_ms.is_finite()
            && result.p50_ms <= result.p99_ms
            && result.p99_ms <= result.p999_ms,
        "{result:?}"
    );
    // The distribution the charts draw: one figure per percentile, never decreasing, its
    // middle the median.
    assert_eq!(result.dist_ms.len(), load::DIST_PERCENTILES.len());
    assert!(
        result.dist_ms.windows(2).all(|w| w[0] <= w[1]),
        "{result:?}"
    );
    assert_eq!(result.dist_ms[5], result.p50_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_joined_and_counted() {
    let relay = Relay::start_with(Config::default()).await;
    let addr = relay.addr.to_string();
    let result = load::idle(Server::Sotto, &addr, 20, std::process::id())
        .await
        .unwrap();
    assert_eq!(result.clients, 20);
    assert!(result.rss_after_kib > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_a_silent_peer_gets_that_peer_dropped() {
    let relay = Relay::start_with(unlimited()).await;
    let addr = relay.addr.to_string();
    let result = load::flood(Server::Sotto, &addr, 4096, 1.0, std::process::id())
        .await
        .unwrap();
    assert!(result.sent > 64, "{result:?}");
    assert!(result.reader_dropped, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_is_a_clear_error() {
    let relay = Relay::start_with(Config {
        max_connections: 1,
        ..Config::default()
    })
    .await;
    let addr = relay.addr.to_string();
    let err = load::pingpong(Server::Sotto, (&addr, None), 2, 16, 0.1, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("server"), "{err}");
}
