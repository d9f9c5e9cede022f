//! The WebSocket shell: moves frames between a socket and its [`Session`], and carries out the
//! session's effects. Each connection is one task with a reader and a writer; other
//! connections reach it only through its bounded queue.

use crate::cluster::Route;
use crate::metrics::Metrics;
use crate::outbox::{Next, Outbox, Pushed};
use crate::server::ConnInfo;
use crate::session::{CloseCode, Effect, Limits, Session};
use crate::shared::Shared;
use crate::turn;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sotto_proto::{ClientMessage, ErrorCode, PeerId, ServerMessage};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Bytes tungstenite takes from the socket at a time, and keeps allocated per connection for
/// its whole life. Signaling messages are small; the default (128 KiB) would dominate an idle
/// connection's memory (measured before the other savings: 4 KiB gave 9.5 KiB per joined idle
/// connection, 1 KiB 6.8 KiB). The kernel is still read 8 KiB at a time (io.rs).
const READ_BUFFER: usize = 1024;
/// How long a closing connection may take to flush its last frames.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(Utf8Bytes),
    Ping,
    Close(CloseCode, &'static str),
}

/// How the room table and other sessions reach one connection: its outbound queue.
#[derive(Debug, Clone)]
pub(crate) struct PeerHandle {
    outbox: Arc<Outbox<Outbound>>,
}

impl PeerHandle {
    /// See [`Outbox::hold`].
    pub(crate) fn hold(&self) {
        self.outbox.hold();
    }

    /// See [`Outbox::release`]: `first`, then what was held.
    pub(crate) fn release(&self, first: Option<Outbound>) {
        self.outbox.release(first);
    }

    /// Queues `item` without waiting. A full queue means the client stopped reading: it is
    /// dropped as a slow consumer rather than let grow the relay's memory.
    pub(crate) fn push(&self, item: Outbound, metrics: &Metrics) {
        if self.outbox.push(item) == Pushed::Kicked {
            metrics.slow_consumers_total.fetch_add(1, Relaxed);
            metrics.count_error(&ErrorCode::SlowConsumer);
        }
    }
}

/// `GET /ws`: upgrades to a WebSocket sized for signaling.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnInfo>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = shared.config.max_message_bytes;
    let slot = shared.session_slots.clone().try_acquire_owned().ok();
    let tracked = shared.tasks.token();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        // Write each frame straight to the socket; what the socket cannot take waits in a
        // buffer bounded to two messages, then the connection is dropped.
        .write_buffer_size(0)
        .max_write_buffer_size(2 * max + 1024)
        .on_upgrade(move |socket| async move {
            let _tracked = tracked;
            match slot {
                Some(slot) => serve(socket, shared, conn, slot).await,
                // Boxed: a task holds room for the largest future it may await, and this one
                // (a socket and two sends) is larger than a whole connection's `serve`: inline,
                // every connection's task took 4.3 KB instead of 2.4 for a refusal it never
                // makes.
                None => Box::pin(refuse(socket, &shared, ErrorCode::ServerFull)).await,
            }
        })
}

/// Tells a client the relay cannot take it, then closes.
async fn refuse(mut socket: WebSocket, shared: &Shared, code: ErrorCode) {
    shared.metrics.count_error(&code);
    let text = ServerMessage::error(code, "the relay is at its connection limit; try later");
    let close = CloseFrame {
        code: 1013, // try again later
        reason: Utf8Bytes::from_static("relay full"),
    };
    let _ = timeout(CLOSE_GRACE, async {
        socket.send(Message::Text(text.encode().into())).await?;
        socket.send(Message::Close(Some(close))).await
    })
    .await;
}

fn random_peer_id() -> Option<PeerId> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(PeerId::from_bytes(&bytes))
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Why the reader stopped.
enum ReadEnd {
    /// The session decided to close, for this reason (its close frame's); the frame is
    /// queued.
    Closing(&'static str),
    /// The client sent a close frame.
    ClientClosed,
    /// The socket ended or failed.
    Gone,
}

async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    conn: ConnInfo,
    _slot: OwnedSemaphorePermit,
) {
    let Some(peer) = random_peer_id() else {
        warn!("the operating system's random generator failed; refusing a connection");
        return;
    };
    let cfg = &shared.config;
    let me = PeerHandle {
        outbox: Outbox::new(cfg.send_queue as usize),
    };
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ice = turn::ice_servers(
        &cfg.stun,
        &cfg.turn_urls,
        cfg.turn_secret.as_ref(),
        unix_now,
        cfg.turn_ttl,
    );
    let limits = Limits {
        join_timeout: cfg.join_timeout,
        ping_interval: cfg.ping_interval,
        pong_timeout: cfg.pong_timeout,
        rate_per_sec: cfg.rate,
        burst: cfg.burst,
        max_message_bytes: cfg.max_message_bytes,
    };
    let mut session = Session::new(peer.clone(), Route::Local(me.clone()), ice, limits, now());
    shared.metrics.connections_open.fetch_add(1, Relaxed);
    shared.metrics.connections_total.fetch_add(1, Relaxed);
    debug!(%peer, addr = %conn.addr, "connected");

    let (sink, mut stream) = socket.split();
    let mut writer = pin!(write(sink, &me.outbox, shared.shutdown.clone()));
    let ended = tokio::select! {
        end = read(&mut session, &mut stream, &shared, &me) => Ok(end),
        how = &mut writer => Err(how),
    };
    let how = match ended {
        Err(how) => how,
        Ok(ReadEnd::Closing(reason)) => {
            // Send the close frame, and read on until the client's reply (RFC 6455 §7.1.1):
            // closing the socket on unread data would reset it, and could destroy the error
            // message and close frame before the client reads them.
            let _ = timeout(CLOSE_GRACE, async {
                (&mut writer).await;
                drain_until_close(&mut stream).await;
            })
            .await;
            closed_because(reason)
        }
        Ok(ReadEnd::ClientClosed) => {
            // Flushes tungstenite's automatic reply to the client's close frame.
            me.push(Outbound::Close(CloseCode::Normal, ""), &shared.metrics);
            let _ = timeout(CLOSE_GRACE, &mut writer).await;
            "client closed the connection"
        }
        Ok(ReadEnd::Gone) => "connection lost",
    };

    let mut out = Vec::new();
    session.on_closed(&mut out);
    apply(&mut out, &mut session, &me, &shared).await;
    me.outbox.close();
    shared.metrics.connections_open.fetch_sub(1, Relaxed);
    info!(%peer, how, "disconnected");
}

/// Reads frames into the session until it closes or the socket ends.
async fn read(
    session: &mut Session<Route>,
    stream: &mut SplitStream<WebSocket>,
    shared: &Shared,
    me: &PeerHandle,
) -> ReadEnd {
    let mut out = Vec::new();
    let mut timer = pin!(sleep_until(Instant::from_std(session.next_deadline())));
    // With rooms shared through Redis, losing Redis closes the connections in rooms.
    let mut lost = shared.rooms.cluster().map(|c| c.lost());
    loop {
        // The timer moves only when something is due sooner (or it fired). Deadlines move
        // later with every message; re-arming for each would cost a timer-wheel update per
        // message, where an early wake costs one `on_timer` that finds nothing due.
        let deadline = Instant::from_std(session.next_deadline());
        if deadline < timer.deadline() || timer.is_elapsed() {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            frame = stream.next() => {
                let now = now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        session.on_text(text.as_str(), now, &shared.rooms, &mut out);
                    }
                    Some(Ok(Message::Binary(_))) => session.on_binary(now, &mut out),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => session.on_heard(now),
                    Some(Ok(Message::Close(_))) => return ReadEnd::ClientClosed,
                    Some(Err(e)) if is_too_large(&e) => {
                        session.on_too_large(&mut out);
                    }
                    Some(Err(e)) => {
                        debug!(peer = %session.peer(), error = %e, "read failed");
                        return ReadEnd::Gone;
                    }
                    None => return ReadEnd::Gone,
                }
            }
            () = &mut timer => session.on_timer(now(), &mut out),
            Ok(()) = changed(&mut lost), if session.room().is_some() => session.on_rooms_lost(&mut out),
        }
        let reason = apply(&mut out, session, me, shared).await;
        if session.is_closing() {
            return ReadEnd::Closing(reason.unwrap_or("closed"));
        }
    }
}

/// Discards what the client still sends until its close frame or the end of the socket.
async fn drain_until_close(stream: &mut SplitStream<WebSocket>) {
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Close(_) = msg {
            break;
        }
    }
}

/// True for tungstenite's refusal of a frame or message over the size limit.
fn is_too_large(e: &axum::Error) -> bool {
    matches!(
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Resolves when the watch changes; never without one.
async fn changed(watch: &mut Option<tokio::sync::watch::Receiver<u64>>) -> Result<(), ()> {
    match watch {
        Some(w) => w.changed().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// Carries out a session's effects, emptying `out`: a join or leave goes to the room table
/// (which may be Redis: it is awaited, and the frames of this connection wait behind it), and
/// what the session makes of its answer is carried out in its place. Returns the reason of the
/// close it carried out, if any.
///
/// This runs for every message, so it allocates nothing of its own: `out` is used as a stack
/// (reversed once, next effect last). A join or leave is awaited in a box of its own: every
/// connection's task holds room for the largest future it may await, and a join through Redis
/// is large (with it and a refusal inline, an idle connection cost 7.2 KiB instead of 6.0;
/// docs/benchmarks.md).
async fn apply(
    out: &mut Vec<Effect<Route>>,
    session: &mut Session<Route>,
    me: &PeerHandle,
    shared: &Shared,
) -> Option<&'static str> {
    let mut closed = None;
    out.reverse();
    while let Some(effect) = out.pop() {
        match effect {
            Effect::Reply(msg) => me.push(reply(msg, shared), &shared.metrics),
            Effect::Deliver(to, msg) => {
                if let ServerMessage::Signal { data, .. } = &msg {
                    shared.metrics.messages_relayed_total.fetch_add(1, Relaxed);
                    shared
                        .metrics
                        .bytes_relayed_total
                        .fetch_add(data.len() as u64, Relaxed);
                }
                shared.rooms.deliver(&to, msg, &shared.metrics);
            }
            Effect::Ping => me.push(Outbound::Ping, &shared.metrics),
            Effect::Close(code, reason) => {
                closed.get_or_insert(reason);
                me.push(Outbound::Close(code, reason), &shared.metrics);
            }
            rooms @ (Effect::Join { .. }
            | Effect::Leave { .. }
            | Effect::Conference { .. }
            | Effect::Sfu { .. }) => {
                // What the session makes of the table's answer comes before the rest.
                let more = Box::pin(in_rooms(rooms, session, me, shared)).await;
                out.extend(more.into_iter().rev());
            }
        }
    }
    closed
}

/// A join or a leave, carried out in the room table; the session's effects in answer.
async fn in_rooms(
    effect: Effect<Route>,
    session: &mut Session<Route>,
    me: &PeerHandle,
    shared: &Shared,
) -> Vec<Effect<Route>> {
    let mut more = Vec::new();
    match effect {
        Effect::Join { room, max, handle } => {
            // The answer (`welcome`, or why not) is the first thing this connection hears
            // of the room: what the others send it once the table holds it waits behind.
            me.hold();
            let result = shared.rooms.join(&room, session.peer(), handle, max).await;
            if result.is_ok() {
                // Room ids are not secret from the relay, but a log may travel further: a
                // prefix is enough to correlate two peers.
                info!(peer = %session.peer(), room = room.as_str().get(..6).unwrap_or(""), "joined");
            }
            session.on_joined(result, &mut more);
            let answer = more
                .iter()
                .position(|e| matches!(e, Effect::Reply(_)))
                .map(|i| more.remove(i));
            me.release(match answer {
                Some(Effect::Reply(msg)) => Some(reply(msg, shared)),
                _ => None,
            });
        }
        Effect::Leave { room } => {
            let left = shared.rooms.leave(&room, session.peer()).await;
            if let Some(sfu) = &shared.sfu {
                sfu.leave(room, session.peer().clone()).await;
            }
            session.on_left(left, &mut more);
        }
        Effect::Conference { room, msg } => {
            let result = shared.rooms.conference(&room, session.peer(), msg);
            let commit = result.as_ref().is_ok_and(|sends| {
                sends
                    .iter()
                    .any(|(_, m)| matches!(m, ServerMessage::Commit { .. }))
            });
            if commit && let Some(sfu) = &shared.sfu {
                // A new epoch: senders' next key frames open under its keys at once.
                sfu.epoch_changed(room).await;
            }
            session.on_conference(result, &mut more);
        }
        Effect::Sfu { room, msg } => {
            let peer = session.peer().clone();
            let result = match (&shared.sfu, msg) {
                (None, _) => Err("this relay runs no SFU".to_owned()),
                (Some(sfu), ClientMessage::SfuOffer { sdp }) => {
                    sfu.offer(room, peer, sdp).await.map(Some)
                }
                (Some(sfu), ClientMessage::SfuView { slots }) => {
                    sfu.view(room, peer, slots).await.map(|()| None)
                }
                (Some(_), _) => Err("not an SFU message".to_owned()),
            };
            session.on_sfu(result, &mut more);
        }
        // `apply` carries these out itself and never passes them here. (Named, not `_`: a new
        // kind of effect must be placed in both matches.)
        other @ (Effect::Reply(_) | Effect::Deliver(..) | Effect::Ping | Effect::Close(..)) => {
            more.push(other);
        }
    }
    more
}

/// A reply to this connection, as its writer sends it (errors counted).
fn reply(msg: ServerMessage, shared: &Shared) -> Outbound {
    if let ServerMessage::Error { code, .. } = &msg {
        shared.metrics.count_error(code);
    }
    Outbound::Text(msg.encode().into())
}

/// Sends queued frames until a close frame, a kick, shutdown or a failed write.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: &Outbox<Outbound>,
    shutdown: CancellationToken,
) -> &'static str {
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = outbox.next() => next,
        };
        let item = match next {
            Next::Item(item) => item,
            Next::Kicked => return "dropped as a slow consumer",
        };
        let (msg, last) = match item {
            Outbound::Text(text) => (Message::Text(text), false),
            Outbound::Ping => (Message::Ping(Default::default()), false),
            Outbound::Close(code, reason) => (close_frame(code, reason), true),
        };
        tokio::select! {
            biased;
            () = outbox.kicked() => return "dropped as a slow consumer",
            () = shutdown.cancelled() => break,
            sent = sink.send(msg) => if sent.is_err() { return "write failed" },
        }
        if last {
            return "closed";
        }
    }
    let _ = timeout(
        CLOSE_GRACE,
        sink.send(close_frame(CloseCode::GoingAway, "relay shutting down")),
    )
    .await;
    "relay shutting down"
}

/// Who closed a connection, and why, for the log: the session's close reason in words.
fn closed_because(reason: &'static str) -> &'static str {
    match reason {
        "bye" => "client hung up (leave)",
        "room full" => "refused by the relay: room full",
        "rate limit" => "closed by the relay: rate limit exceeded",
        "message too large" => "closed by the relay: message too large",
        "join timeout" => "timeout: no join in time",
        "keepalive timeout" => "timeout: no answer to keepalive pings",
        other => other,
    }
}

fn close_frame(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code as u16,
        reason: Utf8Bytes::from_static(reason),
    }))
}
