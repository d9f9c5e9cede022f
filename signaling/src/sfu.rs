//! The SFU's shell (DESIGN §4.13, PROTOCOL.md §7.7): one UDP socket, one task, and the sans-IO
//! `sotto_sfu::Sfu` inside it. Sessions reach it through [`SfuHandle`]: a member's offer and
//! view go in as commands, a leave or a new epoch as notices. The task alone touches the SFU,
//! so it needs no lock; its counters are copied out for `/metrics` after every step.

use crate::metrics::write_metric;
use sotto_proto::{Layer, PeerId, RoomId, ViewSlot};
use sotto_sfu::{Action, Counters, Sfu, Slot};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Commands waiting for the SFU's task, at most.
const QUEUE: usize = 4096;
/// The largest datagram read (above any path MTU; a larger one is cut and fails to parse).
const DATAGRAM: usize = 2048;

enum Command {
    Offer {
        room: RoomId,
        peer: PeerId,
        sdp: String,
        reply: oneshot::Sender<Result<String, sotto_sfu::Error>>,
    },
    View {
        room: RoomId,
        peer: PeerId,
        slots: Vec<Slot<PeerId>>,
        reply: oneshot::Sender<Result<(), sotto_sfu::Error>>,
    },
    Leave {
        room: RoomId,
        peer: PeerId,
    },
    Epoch {
        room: RoomId,
    },
}

/// How sessions reach the SFU.
#[derive(Debug, Clone)]
pub(crate) struct SfuHandle {
    commands: mpsc::Sender<Command>,
    counters: Arc<Mutex<Counters>>,
    members: Arc<Mutex<usize>>,
}

impl SfuHandle {
    /// Binds the SFU's socket on `bind` and starts its task, which ends when `stop` is
    /// cancelled. Members are told to send to `announce`, or the bound address (with the port
    /// bound, when `bind` asked for any); returns the handle and that address.
    pub(crate) async fn start(
        bind: SocketAddr,
        announce: Option<std::net::IpAddr>,
        stop: CancellationToken,
    ) -> std::io::Result<(Self, SocketAddr)> {
        let socket = UdpSocket::bind(bind).await?;
        let bound = socket.local_addr()?;
        let announce = SocketAddr::new(announce.unwrap_or(bound.ip()), bound.port());
        if announce.ip().is_unspecified() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "bound to every address: give --sfu-announce the one clients reach",
            ));
        }
        let (commands, queue) = mpsc::channel(QUEUE);
        let handle = Self {
            commands,
            counters: Arc::default(),
            members: Arc::default(),
        };
        let sfu = Sfu::new(announce);
        tokio::spawn(run(socket, sfu, queue, handle.clone(), stop));
        Ok((handle, announce))
    }

    /// `peer`'s offer: the SFU's answer, or why not.
    pub(crate) async fn offer(
        &self,
        room: RoomId,
        peer: PeerId,
        sdp: String,
    ) -> Result<String, String> {
        self.ask(|reply| Command::Offer {
            room,
            peer,
            sdp,
            reply,
        })
        .await
    }

    /// Sends the command `make` builds and waits for the SFU's answer to it.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, sotto_sfu::Error>>) -> Command,
    ) -> Result<T, String> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(make(reply)).await.is_err() {
            return Err("the SFU has stopped".into());
        }
        match answer.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("the SFU has stopped".into()),
        }
    }

    /// `peer`'s view.
    pub(crate) async fn view(
        &self,
        room: RoomId,
        peer: PeerId,
        slots: Vec<ViewSlot>,
    ) -> Result<(), String> {
        let slots = slots
            .into_iter()
            .map(|s| Slot {
                mid: s.mid,
                peer: s.peer,
                layer: match s.layer {
                    Layer::High => sotto_sfu::Layer::High,
                    Layer::Low => sotto_sfu::Layer::Low,
                },
            })
            .collect();
        self.ask(|reply| Command::View {
            room,
            peer,
            slots,
            reply,
        })
        .await
    }

    /// `peer` left `room`: nothing more is forwarded to or from it.
    pub(crate) async fn leave(&self, room: RoomId, peer: PeerId) {
        let _ = self.commands.send(Command::Leave { room, peer }).await;
    }

    /// `room`'s group moved to a new epoch: its video senders are asked for key frames.
    pub(crate) async fn epoch_changed(&self, room: RoomId) {
        let _ = self.commands.send(Command::Epoch { room }).await;
    }

    /// The SFU's lines of `/metrics`.
    pub(crate) fn render(&self) -> String {
        let c = *self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let members = *self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            write_metric(&mut out, name, kind, help, value)
        };
        metric(
            "sotto_sfu_members",
            "gauge",
            "Conference members with a connection to the SFU.",
            members as u64,
        );
        metric(
            "sotto_sfu_frames_forwarded_total",
            "counter",
            "Frames the SFU wrote to a viewer.",
            c.frames_forwarded,
        );
        metric(
            "sotto_sfu_frames_clear_dropped_total",
            "counter",
            "Frames dropped by the SFU because they carried no SFrame header (must stay 0).",
            c.frames_clear_dropped,
        );
        metric(
            "sotto_sfu_keyframe_requests_total",
            "counter",
            "Key-frame requests the SFU sent to senders.",
            c.keyframe_requests,
        );
        metric(
            "sotto_sfu_keyframe_requests_throttled_total",
            "counter",
            "Key-frame requests not sent: one had gone out within a second.",
            c.keyframe_requests_throttled,
        );
        metric(
            "sotto_sfu_datagrams_unmatched_total",
            "counter",
            "Datagrams on the SFU's port that no member's connection accepted.",
            c.datagrams_unmatched,
        );
        out
    }
}

/// The SFU's task: datagrams, commands and the clock in; datagrams out.
async fn run(
    socket: UdpSocket,
    mut sfu: Sfu<RoomId, PeerId>,
    mut queue: mpsc::Receiver<Command>,
    handle: SfuHandle,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let deadline = sfu
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = stop.cancelled() => return,
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = received {
                    sfu.receive(source, &buf[..n], Instant::now());
                }
            }
            command = queue.recv() => match command {
                None => return,
                Some(command) => apply(&mut sfu, command),
            },
            () = tokio::time::sleep_until(deadline.into()) => sfu.handle_timeout(Instant::now()),
        }
        while let Some(action) = sfu.poll_action() {
            match action {
                Action::Transmit {
                    destination,
                    contents,
                } => {
                    // UDP: a datagram the kernel will not take now is lost, as on the network.
                    let _ = socket.try_send_to(&contents, destination);
                }
                Action::Connected { peer, .. } => debug!(%peer, "connected to the SFU"),
                Action::Disconnected { peer, .. } => debug!(%peer, "left the SFU"),
            }
        }
        *handle
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = sfu.counters();
        *handle
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = sfu.member_count();
    }
}

fn apply(sfu: &mut Sfu<RoomId, PeerId>, command: Command) {
    let now = Instant::now();
    match command {
        Command::Offer {
            room,
            peer,
            sdp,
            reply,
        } => {
            let _ = reply.send(sfu.offer(room, peer, &sdp, now));
        }
        Command::View {
            room,
            peer,
            slots,
            reply,
        } => {
            let _ = reply.send(sfu.view(&room, &peer, slots, now));
        }
        Command::Leave { room, peer } => sfu.leave(&room, &peer),
        Command::Epoch { room } => sfu.epoch_changed(&room, now),
    }
}
