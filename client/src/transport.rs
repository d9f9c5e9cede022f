//! How a call's frames and messages travel, kept apart from who they are for (the people of
//! `session.rs`) and whose keys seal them ([`crate::frame_keys`]). In a one-to-one call or a
//! mesh each pair has a transport of its own: one peer connection, with its audio track and
//! its data channel. A conference will have one transport for everyone, to the SFU.

use crate::rtc::{DataEvent, NetworkConfig, Rtc, RtcError, RtcEvent, RtcEvents};
use crate::session::Counters;
use sotto_proto::PeerId;
use tokio::sync::mpsc;

/// Which transport: the pair's with one person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportId {
    /// The pair's own peer connection with this person (one-to-one and mesh).
    Pair(PeerId),
}

impl TransportId {
    /// The one person this transport reaches, when it reaches one person only: whose data
    /// channel it is, and whose pair its connection's events belong to.
    pub fn person(&self) -> &PeerId {
        let Self::Pair(peer) = self;
        peer
    }
}

/// One transport: its peer connection and what is known of it.
pub struct Transport {
    /// The peer connection.
    pub rtc: Rtc,
    /// Its data channel opened (it may before the keys exist).
    pub data_open: bool,
    /// The other end's offer or answer carried a data channel (PROTOCOL.md §3.6): one that did
    /// not means messages and files cannot go this way in this call, however long we wait.
    pub peer_has_data: bool,
    /// What was counted on it: frames sent, frames that did not open, empty packets, its round
    /// trip and loss. (What was heard from a person is that person's.)
    pub counters: Counters,
    /// The tasks that bring its events into the call loop's channels, tagged with its id.
    forwarders: Vec<tokio::task::JoinHandle<()>>,
}

/// Where every transport's events go, tagged with the transport they came from: control events
/// never dropped, audio and data bounded.
#[derive(Debug, Clone)]
pub struct Inlets {
    /// Candidates, gathering and state changes.
    pub control: mpsc::UnboundedSender<(TransportId, RtcEvent)>,
    /// Audio payloads.
    pub audio: mpsc::Sender<(TransportId, RtcEvent)>,
    /// Data-channel events and messages.
    pub data: mpsc::Sender<(TransportId, DataEvent)>,
}

impl Transport {
    /// A new peer connection for `id`, its events forwarded into `inlets`.
    pub async fn open(
        id: &TransportId,
        net: &NetworkConfig,
        inlets: &Inlets,
    ) -> Result<Self, RtcError> {
        let (
            rtc,
            RtcEvents {
                control,
                audio,
                data,
            },
        ) = Rtc::new(net).await?;
        let forwarders = vec![
            forward_unbounded(id.clone(), control, inlets.control.clone()),
            forward(id.clone(), audio, inlets.audio.clone()),
            forward(id.clone(), data, inlets.data.clone()),
        ];
        Ok(Self {
            rtc,
            data_open: false,
            peer_has_data: true,
            counters: Counters::default(),
            forwarders,
        })
    }

    /// Closes the connection; nothing more of it reaches the loop.
    pub async fn close(mut self) -> Counters {
        self.rtc.close().await;
        for task in self.forwarders.drain(..) {
            task.abort();
        }
        self.counters
    }

    /// Its round trip and loss, from the stack's statistics.
    pub async fn refresh_stats(&mut self) {
        let stats = self.rtc.stats().await;
        self.counters.rtt_ms = stats.rtt.map(|s| s * 1000.0);
        self.counters.loss = stats.loss;
    }
}

/// Forwards every event of a bounded `rx` into `tx`, tagged with `id`, until either closes.
fn forward<T: Send + 'static>(
    id: TransportId,
    mut rx: mpsc::Receiver<T>,
    tx: mpsc::Sender<(TransportId, T)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if tx.send((id.clone(), event)).await.is_err() {
                break;
            }
        }
    })
}

/// [`forward`] for the unbounded control events.
fn forward_unbounded<T: Send + 'static>(
    id: TransportId,
    mut rx: mpsc::UnboundedReceiver<T>,
    tx: mpsc::UnboundedSender<(TransportId, T)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if tx.send((id.clone(), event)).is_err() {
                break;
            }
        }
    })
}
