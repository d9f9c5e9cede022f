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

mod config;
mod error;
mod hub;
mod metrics;
mod server;
mod session;
mod shared;
mod turn;
mod web;
mod ws;

pub use config::{Cli, Config, LogFormat, TurnSecret};
pub use error::Error;
pub use server::run;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, the signals that ask a service to stop.
pub async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Sends log lines to standard error in the chosen format, filtered by `filter`.
pub fn init_logging(filter: &str, format: LogFormat) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Error::BadConfig(format!("--log: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| Error::BadConfig(format!("logging: {e}")))
}
