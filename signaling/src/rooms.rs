//! The room table as the shell sees it: this relay's own (the default), or the one it shares
//! with other relays through Redis (`--redis`, cluster.rs). Either way the table here holds
//! every room with a peer connected to this relay, each member with its [`Route`]; with a
//! cluster it is a mirror, kept by the joins' and leaves' answers from Redis and by the
//! `peer-joined` and `peer-left` other relays send, while Redis decides who gets a place.

use crate::cluster::{Cluster, Route};
use crate::conference::Refusal;
use crate::hub::{Hub, Joined, Left, Refused};
use crate::metrics::Metrics;
use crate::session::Lookup;
use crate::ws::Outbound;
use sotto_proto::{
    ClientMessage, Envelope, ErrorCode, GroupSize, NodeId, PeerId, RoomId, ServerMessage,
};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;
use tokio::sync::Notify;

/// Every room a peer of this relay is in.
#[derive(Debug)]
pub(crate) struct Rooms {
    hub: Mutex<Hub<Route>>,
    cluster: OnceLock<Arc<Cluster>>,
    /// Woken when a conference's deadline may have moved earlier (see [`Rooms::clock`]).
    deadline_moved: Notify,
}

/// A mirror keeps a room while one of its members is connected here.
fn is_local(route: &Route) -> bool {
    matches!(route, Route::Local(_))
}

impl Rooms {
    /// An empty table; a group link may ask for rooms of up to `max_group` people.
    pub(crate) fn new(max_group: u8) -> Self {
        Self {
            hub: Mutex::new(Hub::new(max_group)),
            cluster: OnceLock::new(),
            deadline_moved: Notify::new(),
        }
    }

    /// From now on, rooms are shared through `cluster`.
    pub(crate) fn share(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The cluster, when rooms are shared.
    pub(crate) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The table. Held only for a few map operations, never across an await.
    fn hub(&self) -> MutexGuard<'_, Hub<Route>> {
        // The table's methods do not panic; if one ever did, its maps are still consistent
        // (each method finishes its mutation before returning), so the poison is ignored.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many rooms have a peer connected here.
    pub(crate) fn room_count(&self) -> usize {
        self.hub().room_count()
    }

    /// Adds `peer` (reached through `me`, a connection of this relay) to `room`.
    pub(crate) async fn join(
        &self,
        room: &RoomId,
        peer: &PeerId,
        me: Route,
        max: Option<GroupSize>,
    ) -> Result<Joined<Route>, Refused> {
        let Some(cluster) = self.cluster() else {
            return self.hub().join(room, peer.clone(), me, max);
        };
        let (node, capacity, members) = cluster.join(room, peer, max).await?;
        let mut hub = self.hub();
        let before = crate::cluster::routes(&node, room, members, &hub);
        for (other, route) in &before {
            hub.insert(room, other.clone(), route.clone());
        }
        hub.insert(room, peer.clone(), me);
        Ok(Joined { before, capacity })
    }

    /// Takes `peer` out of `room`: the members left, to be told, and what a conference's
    /// delivery service sends.
    pub(crate) async fn leave(&self, room: &RoomId, peer: &PeerId) -> Left<Route> {
        let Some(cluster) = self.cluster() else {
            let left = self.hub().leave(room, peer, Instant::now());
            self.deadline_moved.notify_one();
            return left;
        };
        Left {
            remaining: self.leave_cluster(cluster, room, peer).await,
            sends: Vec::new(),
        }
    }

    async fn leave_cluster(&self, cluster: &Cluster, room: &RoomId, peer: &PeerId) -> Vec<Route> {
        let here: Vec<Route> = {
            let mut hub = self.hub();
            let here = hub.others(room, peer);
            hub.remove(room, peer, is_local);
            here
        };
        let left = cluster.leave(room, peer).await;
        if left.is_empty() {
            // Alone, or Redis is lost: then those connected here are told at least (the
            // other relays take this one's peers out themselves).
            return here.into_iter().filter(is_local).collect();
        }
        let Some(node) = cluster.node() else {
            return here.into_iter().filter(is_local).collect();
        };
        let hub = self.hub();
        crate::cluster::routes(&node, room, left, &hub)
            .into_iter()
            .map(|(_, route)| route)
            .collect()
    }

    /// `from`'s conference message in `room`, handed to the room's delivery service: what it
    /// sends, or why it refuses. (With `--redis`, conferences are not shared yet: refused.)
    pub(crate) fn conference(
        &self,
        room: &RoomId,
        from: &PeerId,
        msg: ClientMessage,
    ) -> Result<Vec<(Route, ServerMessage)>, Refusal> {
        let result = self.hub().conference(room, from, msg, Instant::now());
        self.deadline_moved.notify_one();
        result
    }

    /// Runs the conferences' delivery-service clock until the relay shuts down: when a named
    /// committer stays silent past its deadline, the next member is named too.
    pub(crate) async fn clock(&self, metrics: &Metrics, stop: tokio_util::sync::CancellationToken) {
        loop {
            let next = self.hub().next_conference_deadline();
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.deadline_moved.notified() => continue,
                () = wait => {}
            }
            let sends = self.hub().conference_timeouts(Instant::now());
            for (to, msg) in sends {
                self.deliver(&to, msg, metrics);
            }
        }
    }

    /// Sends `msg` to the connection `to` leads to.
    pub(crate) fn deliver(&self, to: &Route, msg: ServerMessage, metrics: &Metrics) {
        match to {
            Route::Local(handle) => handle.push(Outbound::Text(msg.encode().into()), metrics),
            Route::Remote { node, room, peer } => {
                let Some(cluster) = self.cluster() else {
                    return;
                };
                let Some(from) = cluster.node() else {
                    // Redis is lost: this relay's connections in rooms are closing.
                    return;
                };
                let envelope = Envelope {
                    from,
                    room: room.clone(),
                    to: peer.clone(),
                    msg,
                };
                cluster.send(node.clone(), &envelope);
            }
        }
    }

    /// An envelope from another relay for a peer connected here. `peer-joined` and
    /// `peer-left` keep the mirror; a `signal` for a peer no longer here is answered
    /// `unknown-peer` to its sender, as this relay would answer its own.
    pub(crate) fn on_envelope(&self, env: Envelope, metrics: &Metrics, cluster: &Cluster) {
        let target = {
            let mut hub = self.hub();
            match hub.get(&env.room, &env.to) {
                Some(Route::Local(handle)) => {
                    match &env.msg {
                        ServerMessage::PeerJoined { peer } => hub.insert(
                            &env.room,
                            peer.clone(),
                            Route::Remote {
                                node: env.from.clone(),
                                room: env.room.clone(),
                                peer: peer.clone(),
                            },
                        ),
                        ServerMessage::PeerLeft { peer } => hub.remove(&env.room, peer, is_local),
                        _ => {}
                    }
                    Some(handle)
                }
                _ => None,
            }
        };
        match (target, env.msg) {
            (Some(handle), msg) => {
                if let ServerMessage::Signal { data, .. } = &msg {
                    metrics.messages_relayed_total.fetch_add(1, Relaxed);
                    metrics
                        .bytes_relayed_total
                        .fetch_add(data.len() as u64, Relaxed);
                }
                handle.push(Outbound::Text(msg.encode().into()), metrics);
            }
            (None, ServerMessage::Signal { from, .. }) => {
                let Some(me) = cluster.node() else { return };
                let bounce = Envelope {
                    from: me,
                    room: env.room,
                    to: from,
                    msg: ServerMessage::error(ErrorCode::UnknownPeer, "no such peer in your room"),
                };
                cluster.send(env.from, &bounce);
            }
            // Told about a room no one here is in any more: nothing to do.
            (None, _) => {}
        }
    }

    /// `peer`, of a relay that stopped, was taken out of `room` by this relay (`me`): the
    /// members `left` are told, those here directly, the others through their relays.
    pub(crate) fn gone_elsewhere(
        &self,
        cluster: &Cluster,
        me: &NodeId,
        room: &RoomId,
        peer: &PeerId,
        left: Vec<(PeerId, NodeId)>,
        metrics: &Metrics,
    ) {
        let routes = {
            let mut hub = self.hub();
            hub.remove(room, peer, is_local);
            crate::cluster::routes(me, room, left, &hub)
        };
        let msg = ServerMessage::PeerLeft { peer: peer.clone() };
        for (_, route) in routes {
            match &route {
                Route::Local(handle) => {
                    handle.push(Outbound::Text(msg.encode().into()), metrics);
                }
                Route::Remote {
                    node,
                    room,
                    peer: to,
                } if node != me => {
                    let envelope = Envelope {
                        from: me.clone(),
                        room: room.clone(),
                        to: to.clone(),
                        msg: msg.clone(),
                    };
                    cluster.send(node.clone(), &envelope);
                }
                // One of ours Redis lists but this relay no longer has: gone already.
                Route::Remote { .. } => {}
            }
        }
    }
}

impl Lookup<Route> for Rooms {
    fn find_other(&self, room: &RoomId, from: &PeerId, to: &PeerId) -> Option<Route> {
        self.hub().find_other(room, from, to)
    }
}
