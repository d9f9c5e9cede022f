//! The connection to the relay: where it is, how its certificate is checked, and a task that
//! owns the WebSocket and speaks in typed messages.

use crate::ClientError;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sotto_proto::{ClientMessage, ServerMessage};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long the relay has to accept a connection (TCP, TLS and the WebSocket upgrade).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the relay task reports.
#[derive(Debug)]
pub enum RelayEvent {
    /// A message from the relay (types this version does not know are skipped).
    Message(ServerMessage),
    /// The connection ended (closed by the relay, or lost).
    Closed,
}

/// The sending side of a relay connection.
#[derive(Debug, Clone)]
pub struct RelaySender(mpsc::UnboundedSender<ClientMessage>);

impl RelaySender {
    /// Queues a message for the relay; dropped silently only if the connection is gone, which
    /// the receiving side reports as [`RelayEvent::Closed`].
    pub fn send(&self, msg: ClientMessage) {
        let _ = self.0.send(msg);
    }
}

/// A relay: its WebSocket URL and the roots its certificate must chain to. Cheap to clone; a
/// client reconnects with the same one.
#[derive(Clone)]
pub struct Endpoint {
    url: String,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.url)
    }
}

impl Endpoint {
    /// The relay at `url` (`ws://` or `wss://`). Its certificate must chain to the CA in
    /// `ca_file` (PEM) when one is given, as curl's `--cacert` does; otherwise to the system's
    /// roots or the bundled web PKI roots.
    pub fn new(url: String, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let bad = |why: String| ClientError::CaFile(format!("{}: {why}", path.display()));
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad(pem_error(e)))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(pem_error(e)))?;
                if certs.is_empty() {
                    return Err(bad("no PEM certificate in it".into()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| bad(format!("not a usable CA certificate ({e})")))?;
                }
            }
            None => {
                // Certificates the system cannot parse are skipped; the bundled roots remain.
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            // The provider's own protocol list: not the user's file, never expected to fail.
            .map_err(|e| ClientError::Crypto(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            url,
            tls: Arc::new(tls),
        })
    }

    /// The relay's WebSocket URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn open(
        &self,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        ClientError,
    > {
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            self.url.as_str(),
            None,
            // No Nagle: sealed messages are small and come in bursts (an answer, then the
            // hello and identity that belong with it); with Nagle the second waited for the
            // relay's delayed ACK of the first, about 40 ms each time.
            true,
            Some(Connector::Rustls(self.tls.clone())),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(e)) => Err(connect_error(&self.url, e)),
            Err(_) => Err(ClientError::RelayUnreachable(format!(
                "{}: no answer within {} s",
                self.url,
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Checks that the relay answers: a WebSocket is opened and closed again, nothing sent.
    pub async fn probe(&self) -> Result<(), ClientError> {
        let mut ws = self.open().await?;
        let _ = ws.close(None).await;
        Ok(())
    }

    /// Connects and starts the task that owns the socket.
    pub async fn connect(&self) -> Result<(RelaySender, mpsc::Receiver<RelayEvent>), ClientError> {
        let ws = self.open().await?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ClientMessage>();
        let (in_tx, in_rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = out_rx.recv() => match msg {
                        Some(msg) => {
                            let leaving = matches!(msg, ClientMessage::Leave);
                            if sink.send(Message::Text(msg.encode().into())).await.is_err() {
                                break;
                            }
                            if leaving {
                                let _ = sink.close().await;
                            }
                        }
                        None => {
                            let _ = sink.close().await;
                            break;
                        }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            // A relay is not trusted: a malformed message ends the connection
                            // (the call loop decides what that means).
                            match ServerMessage::decode(text.as_str()) {
                                Ok(Some(msg)) => {
                                    if in_tx.send(RelayEvent::Message(msg)).await.is_err() {
                                        break;
                                    }
                                }
                                Ok(None) => {}
                                Err(_) => break,
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
            let _ = in_tx.send(RelayEvent::Closed).await;
        });
        Ok((RelaySender(out_tx), in_rx))
    }
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// Why a connection to the relay failed, in words: a certificate the client refuses is its own
/// error (never "unreachable"), an HTTP answer says what it was.
fn connect_error(url: &str, e: tungstenite::Error) -> ClientError {
    use rustls::CertificateError as C;
    let unreachable = |why: String| ClientError::RelayUnreachable(format!("{url}: {why}"));
    match e {
        tungstenite::Error::Io(io) => {
            match io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(c)) => {
                    let why = match c {
                        C::UnknownIssuer => "it is not signed by an authority this computer \
                             trusts (for a private CA, pass --ca-file CA.pem)"
                            .to_owned(),
                        C::NotValidForName | C::NotValidForNameContext { .. } => {
                            format!("it is not valid for {}", host_of(url))
                        }
                        C::Expired | C::ExpiredContext { .. } => "it has expired".to_owned(),
                        C::NotValidYet | C::NotValidYetContext { .. } => {
                            "it is not valid yet (is this computer's clock right?)".to_owned()
                        }
                        C::Revoked => "it has been revoked".to_owned(),
                        other => format!("{other:?}"),
                    };
                    ClientError::RelayCertificate(format!("{url}: {why}"))
                }
                Some(rustls::Error::NoCertificatesPresented) => {
                    ClientError::RelayCertificate(format!("{url}: it presented no certificate"))
                }
                Some(tls) => unreachable(format!(
                    "the TLS handshake failed ({tls}); does it serve HTTPS on this port?"
                )),
                None => unreachable(io.to_string()),
            }
        }
        tungstenite::Error::Http(response) => unreachable(format!(
            "it answered HTTP {} instead of a WebSocket: is this a Sotto relay, and its path?",
            response.status()
        )),
        tungstenite::Error::Url(u) => unreachable(format!("bad address ({u})")),
        other => unreachable(other.to_string()),
    }
}

/// `HOST[:PORT]` of a `ws(s)://HOST[:PORT]/...` URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
