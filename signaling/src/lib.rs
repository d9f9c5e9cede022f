//! Sotto's signaling relay.
//!
//! The relay introduces the two peers of a call and forwards their messages. Those messages are
//! sealed by the peers (PROTOCOL.md): the relay checks their shape and size, stamps the sender,
//! and forwards them. It depends on the wire types only (`sotto-proto`), never on the crypto
//! core or the WebRTC stack; CI checks this.
//!
//! Layout: `session` and `hub` are the protocol, sans-IO and tested without sockets; `ws`,
//! `web` and `server` are the thin I/O shell; `main.rs` parses flags and calls [`run`].
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cluster;
pub mod conference;
mod config;
mod error;
mod hub;
mod io;
mod metrics;
mod outbox;
mod rooms;
mod server;
mod session;
mod sfu;
mod shared;
mod turn;
mod web;
mod ws;

pub use config::{Cli, Config, LogFormat, RedisPassword, TurnSecret};
pub use error::Error;
pub use server::run;

/// The runtime the relay runs on, with `threads` workers (0: one per core this process may
/// run on, as `taskset` or a container's CPU set allows).
///
/// One worker gets tokio's single-threaded scheduler, whose one run queue serves tasks in the
/// order they woke. The multi-threaded scheduler's per-worker queue holds 256 tasks; under
/// overload the rest spill to a shared queue it visits only every 61st task, and a message
/// whose connection task spilled there waits that much longer: on one core with 2,000
/// ping-ponging clients, p99 was 165 ms with the multi-threaded scheduler and 29 ms with the
/// single-threaded one at the same throughput (docs/benchmarks.md).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, the signals that ask a service to stop.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives after the relay said it listens, but before its accept loop first ran,
/// must still stop it cleanly rather than kill it. Call it within the runtime.
pub fn terminate_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind, name| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle {name}: it will not stop the relay cleanly");
                None
            }
        };
        let interrupt = install(SignalKind::interrupt(), "SIGINT");
        let terminate = install(SignalKind::terminate(), "SIGTERM");
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Sends log lines to standard error in the chosen format, filtered by `filter`.
pub fn init_logging(filter: &str, format: LogFormat) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::BadConfig(format!("--log: {e}")))?;
    // Colour only for a person at a terminal: never in a pipe, a file or journald, nor with
    // NO_COLOR set (https://no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| Error::BadConfig(format!("logging: {e}")))
}
