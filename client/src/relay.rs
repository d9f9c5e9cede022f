//! The connection to the relay: a task that owns the WebSocket and speaks in typed messages.

use crate::ClientError;
use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

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

/// Connects to the relay at `url` (`ws://` or `wss://`) and starts the task that owns the
/// socket.
pub async fn connect(url: &str) -> Result<(RelaySender, mpsc::Receiver<RelayEvent>), ClientError> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| ClientError::RelayUnreachable(format!("{url}: {e}")))?;
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
