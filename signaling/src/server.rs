//! The accept loop: TCP (optionally TLS) connections served by hyper with axum's router, a cap
//! on open connections, and graceful shutdown.

use crate::Error;
use crate::config::Config;
use crate::shared::Shared;
use crate::web;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_service::Service;
use tracing::{debug, info, warn};

/// TCP connections allowed beyond `--max-connections`, for plain HTTP requests and for telling
/// WebSocket clients past the limit that the relay is full.
const HTTP_HEADROOM: usize = 64;
/// A client must send its request headers (or finish TLS) within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (usually out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the WebSocket handler learns about its TCP connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub addr: SocketAddr,
    /// Held for as long as the connection (or the WebSocket it became) lives.
    _tcp_slot: Arc<OwnedSemaphorePermit>,
}

/// Serves the relay on `listener` until `shutdown` completes, then closes every connection
/// (WebSocket clients get a close frame) and returns within `config.shutdown_timeout`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.check()?;
    let tls = tls_acceptor(&config)?;
    let shutdown_token = tokio_util::sync::CancellationToken::new();
    let sfu = if config.no_sfu {
        None
    } else {
        let bind = match config.sfu_udp {
            Some(addr) => addr,
            None => listener.local_addr().map_err(Error::Runtime)?,
        };
        let (handle, announce) =
            crate::sfu::SfuHandle::start(bind, config.sfu_announce, shutdown_token.clone())
                .await
                .map_err(|error| Error::SfuBind { addr: bind, error })?;
        info!("SFU on udp://{bind}, clients send to {announce}");
        Some(handle)
    };
    let shared = Arc::new(Shared::new(config, sfu, shutdown_token));
    if let Some(url) = &shared.config.redis {
        let password = shared.config.redis_password.as_ref().map(|p| p.as_str());
        let cluster = crate::cluster::Cluster::start(
            url,
            password,
            shared.config.max_group(),
            shared.clone(),
        )
        .await
        .map_err(Error::Redis)?;
        shared.rooms.share(cluster);
    }
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            let stop = shared.shutdown.clone();
            shared.rooms.clock(&shared.metrics, stop).await;
        });
    }
    let app = web::router(shared.clone());
    let tcp_slots = Arc::new(Semaphore::new(
        shared.config.max_connections.saturating_add(HTTP_HEADROOM),
    ));
    let mut shutdown = pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        info!("relay listening on {scheme}://{addr}");
    }
    #[cfg(feature = "bench-no-e2ee")]
    tracing::warn!(
        "BENCHMARK BUILD (bench-no-e2ee): the web client this relay serves does NOT encrypt \
         media end to end; never use it for calls"
    );

    loop {
        let (tcp, addr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = tcp_slots.clone().try_acquire_owned() else {
            shared
                .metrics
                .connections_refused_total
                .fetch_add(1, Relaxed);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // Large reads from the kernel, no buffer held at rest (io.rs).
        let tcp = crate::io::ChunkedReads::new(tcp);
        let conn = ConnInfo {
            addr,
            _tcp_slot: Arc::new(slot),
        };
        let app = app.clone();
        let stop = shared.shutdown.clone();
        let tls = tls.clone();
        shared.tasks.spawn(async move {
            match tls {
                None => serve_http(tcp, conn, app, stop).await,
                Some(acceptor) => match timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve_http(stream, conn, app, stop).await,
                    Ok(Err(e)) => debug!(%addr, error = %e, "TLS handshake failed"),
                    Err(_) => debug!(%addr, "TLS handshake timed out"),
                },
            }
        });
    }

    info!("shutting down");
    drop(listener);
    shared.shutdown.cancel();
    shared.tasks.close();
    if timeout(shared.config.shutdown_timeout, shared.tasks.wait())
        .await
        .is_err()
    {
        warn!("connections still open at the shutdown deadline; exiting anyway");
    }
    if let Some(cluster) = shared.rooms.cluster() {
        cluster.stop().await;
    }
    info!("relay stopped");
    Ok(())
}

async fn serve_http<S>(
    io: S,
    conn: ConnInfo,
    app: axum::Router,
    stop: tokio_util::sync::CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = conn.addr;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(conn.clone());
        // axum's Router is always ready: `call` without `poll_ready` is its documented use.
        app.clone().call(req)
    });
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut http = pin!(http);
    let result = tokio::select! {
        result = http.as_mut() => result,
        () = stop.cancelled() => {
            // Finish the request in flight, then close; an upgrade already handed over is
            // the WebSocket session's to close.
            http.as_mut().graceful_shutdown();
            http.await
        }
    };
    if let Err(e) = result {
        debug!(%addr, error = %e, "HTTP connection ended with an error");
    }
}

/// A PEM reading error in words: `what` is what the file should hold.
fn pem_error(e: rustls_pki_types::pem::Error, what: &str) -> String {
    match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!("no PEM {what} in the file"),
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM {what} ({other})"),
    }
}

/// The TLS acceptor for `--tls-cert`/`--tls-key`, or `None` to serve plain HTTP.
fn tls_acceptor(config: &Config) -> Result<Option<TlsAcceptor>, Error> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => {
            return Err(Error::BadConfig(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
    };
    let cert_error = |reason: String| Error::BadTlsFile {
        flag: "--tls-cert",
        path: cert_path.to_owned(),
        reason,
    };
    let key_error = |reason: String| Error::BadTlsFile {
        flag: "--tls-key",
        path: key_path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_error(pem_error(e, "certificate")))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(pem_error(e, "certificate")))?;
    if certs.is_empty() {
        return Err(cert_error("no PEM certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| key_error(pem_error(e, "private key")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadConfig(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| key_error(format!("cannot be used with --tls-cert ({e})")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}
