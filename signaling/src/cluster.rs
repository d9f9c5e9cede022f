//! Several relays, one set of rooms (DESIGN §4.12): with `--redis`, relays share their rooms
//! through Redis, so that any relay can serve any peer of any room.
//!
//! What lives where (docs/relay.md says the same for operators):
//!
//! - `sotto:room:{R}`, a hash: `cap` (the room's capacity, fixed by the join that made it),
//!   `seq` (a join counter), and one field per member, its peer id, whose value is
//!   `"{seq} {node}"`: when it joined and which relay holds its connection. Joins and leaves are
//!   Lua scripts, so that a room's capacity holds however joins race across relays.
//! - `sotto:node:{N}:alive`, a key each relay sets every second with a 3-second expiry: the
//!   relay is alive while it exists. `sotto:nodes` is the set of relays that registered, and
//!   `sotto:node:{N}:peers` the set of `"{R} {P}"` a relay holds.
//! - `sotto:node:{N}`, a pub/sub channel per relay: what one relay delivers to a peer
//!   connected to another (a `signal`, `peer-joined`, `peer-left`) is published there, as an
//!   [`Envelope`]. Each relay publishes from one connection in the order its peers' messages
//!   came, and Redis delivers a channel's messages in the order they were published: messages
//!   between two peers keep their order, and each arrives once.
//!
//! When a relay dies its `alive` key expires; every relay looks once a second for relays that
//! registered and are no longer alive, and the first to find one takes it out in one script:
//! its peers leave their rooms and the members left are told. A peer of a dead relay is gone
//! from its room within `ALIVE_FOR + SWEEP_EVERY` (4 s) and the others hear it right after.
//!
//! A relay that cannot reach Redis takes no join (`unavailable`), closes the connections it
//! had in rooms (their rooms are being taken apart by the others, who see it as dead), reports
//! itself unhealthy, and tries again every second; when Redis answers it comes back as a new
//! relay (a fresh node id), so nothing of its old state lingers.

use crate::hub::{Hub, Refused};
use crate::shared::Shared;
use crate::ws::PeerHandle;
use sotto_proto::{Envelope, GroupSize, NodeId, PeerId, RoomId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// How long a relay counts as alive after its last heartbeat.
pub(crate) const ALIVE_FOR: Duration = Duration::from_secs(3);
/// How often a relay says it is alive, and looks for relays that are not.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The longest a Redis command may take before Redis counts as lost.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Envelopes waiting to be published, at most (beyond that they are dropped and counted).
const PUBLISH_QUEUE: usize = 16_384;
/// Envelopes published in one round trip, at most.
const PUBLISH_BATCH: usize = 256;

/// A fresh node id: 16 random bytes.
fn random_node() -> Option<NodeId> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(NodeId::from_bytes(&bytes))
}

/// How a connection is reached: on this relay through its queue, or through another relay.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// Connected to this relay.
    Local(PeerHandle),
    /// Connected to relay `node`, in `room`.
    Remote {
        node: NodeId,
        room: RoomId,
        peer: PeerId,
    },
}

/// The cluster's counters, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ClusterMetrics {
    pub published_total: AtomicU64,
    pub received_total: AtomicU64,
    /// Envelopes from Redis that did not decode, or a script's answer that did not parse.
    pub bad_data_total: AtomicU64,
    pub relays_swept_total: AtomicU64,
    /// Envelopes dropped because the queue to Redis was full.
    pub dropped_total: AtomicU64,
}

/// This relay's part of a cluster.
pub(crate) struct Cluster {
    client: redis::Client,
    /// This relay's id and its command connection, while Redis answers.
    link: Mutex<Option<(NodeId, redis::aio::MultiplexedConnection)>>,
    up: AtomicBool,
    /// Bumped each time Redis is lost: connections in rooms close.
    lost: watch::Sender<u64>,
    publish: mpsc::Sender<(NodeId, String)>,
    max_group: u8,
    pub metrics: ClusterMetrics,
    /// Cancelled once the relay's connections are closed: the background work ends.
    stop: tokio_util::sync::CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("up", &self.up.load(Relaxed))
            .finish_non_exhaustive()
    }
}

fn room_key(room: &str) -> String {
    format!("sotto:room:{room}")
}
fn alive_key(node: &str) -> String {
    format!("sotto:node:{node}:alive")
}
fn peers_key(node: &str) -> String {
    format!("sotto:node:{node}:peers")
}
fn channel(node: &str) -> String {
    format!("sotto:node:{node}")
}
const NODES: &str = "sotto:nodes";

/// The Lua every script starts with: a room's members as `peer, "seq node", ...` (its other
/// fields, `cap` and `seq`, left out).
macro_rules! members_lua {
    () => {
        r#"
local function members(room)
  local all = redis.call('HGETALL', room)
  local out = {}
  for i = 1, #all, 2 do
    if all[i] ~= 'cap' and all[i] ~= 'seq' then
      table.insert(out, all[i])
      table.insert(out, all[i + 1])
    end
  end
  return out
end
"#
    };
}

/// Adds a member if the room has a place: `{"ok", cap, peer, "seq node", ...}` (the members
/// before, in any order), `{"full"}`, `{"too-large"}` or `{"duplicate"}`.
static JOIN: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        members_lua!(),
        r#"
local room, mine = KEYS[1], KEYS[2]
local peer, node, max, limit, entry = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local cap = tonumber(redis.call('HGET', room, 'cap'))
if not cap then
  cap = max
  if max == 0 then cap = 2 end
  if cap > math.max(limit, 2) then return {'too-large'} end
  redis.call('HSET', room, 'cap', cap)
end
local before = members(room)
if redis.call('HEXISTS', room, peer) == 1 then return {'duplicate'} end
if #before / 2 >= cap then return {'full'} end
local seq = redis.call('HINCRBY', room, 'seq', 1)
redis.call('HSET', room, peer, seq .. ' ' .. node)
redis.call('SADD', mine, entry)
local out = {'ok', tostring(cap)}
for _, v in ipairs(before) do table.insert(out, v) end
return out
"#
    ))
});

/// Removes a member; returns the members left (`peer, "seq node", ...`) and removes the room
/// once it has none.
static LEAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        members_lua!(),
        r#"
local room, mine = KEYS[1], KEYS[2]
redis.call('HDEL', room, ARGV[1])
redis.call('SREM', mine, ARGV[2])
local left = members(room)
if #left == 0 then redis.call('DEL', room) end
return left
"#
    ))
});

/// Takes out a relay that is no longer alive, once (the first relay to run this for it does
/// the work): each of its peers leaves its room. Returns, per peer, `{room, peer, members
/// left (peer, "seq node", ...)}`.
static SWEEP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        members_lua!(),
        r#"
local dead = ARGV[1]
if redis.call('EXISTS', 'sotto:node:' .. dead .. ':alive') == 1 then return {} end
if redis.call('SREM', 'sotto:nodes', dead) == 0 then return {} end
local key = 'sotto:node:' .. dead .. ':peers'
local entries = redis.call('SMEMBERS', key)
redis.call('DEL', key)
local out = {}
for _, e in ipairs(entries) do
  local room, peer = string.match(e, '^(%S+) (%S+)$')
  if room then
    local rk = 'sotto:room:' .. room
    if redis.call('TYPE', rk)['ok'] == 'hash' then
      redis.call('HDEL', rk, peer)
      local left = members(rk)
      if #left == 0 then redis.call('DEL', rk) end
      table.insert(out, {room, peer, left})
    end
  end
end
return out
"#
    ))
});

/// What a script answered, read strictly: text items only.
fn texts(value: redis::Value) -> Option<Vec<String>> {
    match value {
        redis::Value::Array(items) => items.into_iter().map(text).collect(),
        _ => None,
    }
}

fn text(value: redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Members as a script lists them (`peer, "seq node", ...`), oldest first; an entry that does
/// not parse (someone else's data in the relay's keys) is left out.
fn members(flat: &[String]) -> Option<Vec<(PeerId, NodeId)>> {
    if !flat.len().is_multiple_of(2) {
        return None;
    }
    let mut out: Vec<(u64, PeerId, NodeId)> = flat
        .chunks(2)
        .filter_map(|pair| {
            let peer = PeerId::parse(&pair[0]).ok()?;
            let (seq, node) = pair[1].split_once(' ')?;
            Some((seq.parse().ok()?, peer, NodeId::parse(node)?))
        })
        .collect();
    out.sort_by_key(|(seq, _, _)| *seq);
    Some(out.into_iter().map(|(_, p, n)| (p, n)).collect())
}

impl Cluster {
    /// Connects to Redis at `url` (`redis://` or `rediss://`, with `password` if given, else
    /// the URL's) and starts this relay's part: its heartbeat, the sweep of dead relays, the
    /// subscription to its channel, and the publisher. Fails if Redis does not answer now.
    pub(crate) async fn start(
        url: &str,
        password: Option<&str>,
        max_group: u8,
        shared: Arc<Shared>,
    ) -> Result<Arc<Self>, String> {
        use redis::IntoConnectionInfo;
        // `rediss://` builds its TLS configuration with the process's default provider: ring,
        // as the relay's own TLS (an error only means one is installed already).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let mut info = url
            .into_connection_info()
            .map_err(|e| format!("--redis {}: {e}", redacted(url)))?;
        if let Some(password) = password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| format!("--redis: {e}"))?;
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let cluster = Arc::new(Self {
            client,
            link: Mutex::new(None),
            up: AtomicBool::new(false),
            lost: watch::channel(0).0,
            publish,
            max_group,
            metrics: ClusterMetrics::default(),
            stop: tokio_util::sync::CancellationToken::new(),
            task: Mutex::new(None),
        });
        let subscription = cluster
            .connect()
            .await
            .map_err(|e| format!("cannot reach Redis at {}: {e}", redacted(url)))?;
        let task = tokio::spawn(cluster.clone().run(subscription, queue, shared));
        *cluster.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        Ok(cluster)
    }

    fn link(&self) -> MutexGuard<'_, Option<(NodeId, redis::aio::MultiplexedConnection)>> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This relay's id and command connection while Redis answers.
    pub(crate) fn current(&self) -> Option<(NodeId, redis::aio::MultiplexedConnection)> {
        if !self.up.load(Relaxed) {
            return None;
        }
        self.link().clone()
    }

    /// True while Redis answers.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Changes each time Redis is lost: a joined connection closes on it.
    pub(crate) fn lost(&self) -> watch::Receiver<u64> {
        self.lost.subscribe()
    }

    /// A new node id, its command connection, its subscription and its first heartbeat; then
    /// this relay counts as up.
    async fn connect(&self) -> Result<redis::aio::PubSubStream, String> {
        let node = random_node().ok_or("no randomness for a node id")?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        let mut pubsub = tokio::time::timeout(COMMAND_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(COMMAND_TIMEOUT, pubsub.subscribe(channel(node.as_str())))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        heartbeat(&mut conn, &node)
            .await
            .map_err(|e| e.to_string())?;
        info!(node = node.as_str(), "cluster: connected to Redis");
        *self.link() = Some((node, conn));
        self.up.store(true, Relaxed);
        Ok(pubsub.into_on_message())
    }

    /// Redis stopped answering: no joins, and the connections in rooms close (the other
    /// relays take this one's peers out of their rooms once its heartbeat expires).
    fn down(&self, why: &str) {
        if self.up.swap(false, Relaxed) {
            warn!(
                error = why,
                "cluster: lost Redis; refusing joins until it answers again"
            );
            self.lost.send_modify(|n| *n += 1);
        }
        *self.link() = None;
    }

    /// The relay's background work until shutdown: heartbeat and sweep every second,
    /// envelopes in from its channel, envelopes out from the queue.
    async fn run(
        self: Arc<Self>,
        mut subscription: redis::aio::PubSubStream,
        mut queue: mpsc::Receiver<(NodeId, String)>,
        shared: Arc<Shared>,
    ) {
        use futures_util::StreamExt;
        let stop = self.stop.clone();
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connected = true;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    if connected {
                        if let Err(e) = self.beat_and_sweep(&shared).await {
                            self.down(&e);
                            connected = false;
                        }
                    } else {
                        match self.connect().await {
                            Ok(s) => {
                                subscription = s;
                                connected = true;
                                info!("cluster: Redis answers again; taking joins");
                            }
                            Err(e) => tracing::debug!(error = %e, "cluster: Redis still unreachable"),
                        }
                    }
                }
                msg = subscription.next(), if connected => match msg {
                    Some(msg) => {
                        self.metrics.received_total.fetch_add(1, Relaxed);
                        match Envelope::decode(msg.get_payload_bytes()) {
                            Some(envelope) => shared.rooms.on_envelope(envelope, &shared.metrics, self.as_ref()),
                            None => {
                                self.metrics.bad_data_total.fetch_add(1, Relaxed);
                                warn!("cluster: an envelope from Redis did not decode; dropped");
                            }
                        }
                    }
                    None => {
                        self.down("the subscription ended");
                        connected = false;
                    }
                },
                first = queue.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while batch.len() < PUBLISH_BATCH {
                        match queue.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    self.publish_batch(batch).await;
                }
            }
        }
        // What the last connections left queued goes out, then this relay leaves.
        queue.close();
        let mut rest = Vec::new();
        while let Ok(item) = queue.try_recv() {
            rest.push(item);
        }
        if !rest.is_empty() {
            self.publish_batch(rest).await;
        }
        self.leave_cluster().await;
    }

    /// Ends the background work once the relay's connections are closed (their leaves are
    /// told to the other relays first), and takes this relay out of the cluster.
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Publishes envelopes in order, in one round trip.
    async fn publish_batch(&self, batch: Vec<(NodeId, String)>) {
        let Some((_, mut conn)) = self.current() else {
            return;
        };
        let mut pipe = redis::pipe();
        for (node, text) in &batch {
            pipe.cmd("PUBLISH")
                .arg(channel(node.as_str()))
                .arg(text)
                .ignore();
        }
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                self.metrics
                    .published_total
                    .fetch_add(batch.len() as u64, Relaxed);
            }
            Err(e) => self.down(&e.to_string()),
        }
    }

    /// Queues `envelope` for relay `node`, behind everything this relay queued before. A full
    /// queue (Redis far slower than the relays) drops it, counted and said once in the log:
    /// waiting here could hold up the task that empties the queue.
    pub(crate) fn send(&self, node: NodeId, envelope: &Envelope) {
        if self.publish.try_send((node, envelope.encode())).is_err()
            && self.metrics.dropped_total.fetch_add(1, Relaxed) == 0
        {
            warn!(
                "cluster: the queue to Redis is full; a message was dropped (further drops are \
                 counted in sotto_cluster_dropped_total)"
            );
        }
    }

    /// The heartbeat, and the sweep of relays that stopped beating.
    async fn beat_and_sweep(&self, shared: &Shared) -> Result<(), String> {
        let (me, mut conn) = self.current().ok_or("down")?;
        heartbeat(&mut conn, &me).await.map_err(|e| e.to_string())?;
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(NODES)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        for node in nodes.iter().filter(|n| n.as_str() != me.as_str()) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(alive_key(node))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if alive {
                continue;
            }
            let swept: redis::Value = SWEEP
                .arg(node)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let redis::Value::Array(peers) = swept else {
                continue;
            };
            if !peers.is_empty() {
                self.metrics.relays_swept_total.fetch_add(1, Relaxed);
                info!(node = %node, peers = peers.len(), "cluster: a relay stopped; its peers left their rooms");
            }
            for entry in peers {
                match sweep_entry(entry) {
                    Some((room, peer, left)) => {
                        shared
                            .rooms
                            .gone_elsewhere(self, &me, &room, &peer, left, &shared.metrics);
                    }
                    None => {
                        self.metrics.bad_data_total.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        Ok(())
    }

    /// Leaves the cluster on shutdown: this relay is no longer alive, now.
    async fn leave_cluster(&self) {
        let Some((me, mut conn)) = self.current() else {
            return;
        };
        let _: Result<(), _> = redis::pipe()
            .cmd("DEL")
            .arg(alive_key(me.as_str()))
            .ignore()
            .cmd("DEL")
            .arg(peers_key(me.as_str()))
            .ignore()
            .cmd("SREM")
            .arg(NODES)
            .arg(me.as_str())
            .ignore()
            .query_async(&mut conn)
            .await;
    }

    /// Adds `peer` to `room` across the cluster: the room's members before it, with the relay
    /// of each, and the room's capacity.
    pub(crate) async fn join(
        &self,
        room: &RoomId,
        peer: &PeerId,
        max: Option<GroupSize>,
    ) -> Result<(NodeId, u8, Vec<(PeerId, NodeId)>), Refused> {
        let Some((me, mut conn)) = self.current() else {
            return Err(Refused::Unavailable);
        };
        let answer = JOIN
            .key(room_key(room.as_str()))
            .key(peers_key(me.as_str()))
            .arg(peer.as_str())
            .arg(me.as_str())
            .arg(max.map_or(0, GroupSize::get))
            .arg(self.max_group)
            .arg(format!("{} {}", room.as_str(), peer.as_str()))
            .invoke_async::<redis::Value>(&mut conn)
            .await;
        let answer = match answer {
            Ok(value) => texts(value),
            Err(e) if link_lost(&e) => {
                self.down(&e.to_string());
                return Err(Refused::Unavailable);
            }
            Err(e) => {
                // A script error: someone else's data where the room should be.
                warn!(error = %e, "cluster: a join failed in Redis; refused");
                self.metrics.bad_data_total.fetch_add(1, Relaxed);
                return Err(Refused::Unavailable);
            }
        };
        let parsed = answer.and_then(|items| match items.split_first() {
            Some((status, rest)) if status == "ok" => {
                let (cap, flat) = rest.split_first()?;
                let cap: u8 = cap.parse().ok()?;
                Some(Ok((cap, members(flat)?)))
            }
            Some((status, _)) if status == "full" => Some(Err(Refused::RoomFull)),
            Some((status, _)) if status == "too-large" => Some(Err(Refused::GroupTooLarge {
                limit: self.max_group,
            })),
            // 128 random bits twice: never in practice; refused rather than merged.
            Some((status, _)) if status == "duplicate" => {
                warn!("cluster: a peer id already in the room; join refused");
                Some(Err(Refused::Unavailable))
            }
            _ => None,
        });
        match parsed {
            Some(Ok((cap, before))) => Ok((me, cap, before)),
            Some(Err(refused)) => Err(refused),
            None => {
                warn!("cluster: a join's answer from Redis did not parse; refused");
                self.metrics.bad_data_total.fetch_add(1, Relaxed);
                Err(Refused::Unavailable)
            }
        }
    }

    /// Removes `peer` from `room` across the cluster: the members left, with their relays
    /// (none when Redis cannot be reached: the other relays then take this one's peers out
    /// themselves).
    pub(crate) async fn leave(&self, room: &RoomId, peer: &PeerId) -> Vec<(PeerId, NodeId)> {
        let Some((me, mut conn)) = self.current() else {
            return Vec::new();
        };
        let answer = LEAVE
            .key(room_key(room.as_str()))
            .key(peers_key(me.as_str()))
            .arg(peer.as_str())
            .arg(format!("{} {}", room.as_str(), peer.as_str()))
            .invoke_async::<redis::Value>(&mut conn)
            .await;
        match answer {
            Ok(value) => texts(value)
                .and_then(|flat| members(&flat))
                .unwrap_or_else(|| {
                    self.metrics.bad_data_total.fetch_add(1, Relaxed);
                    Vec::new()
                }),
            Err(e) => {
                if link_lost(&e) {
                    self.down(&e.to_string());
                }
                Vec::new()
            }
        }
    }
}

/// The error says Redis is out of reach (not that a script failed on what it found).
fn link_lost(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// One peer of a swept relay: its room, its id, and the members left (with their relays).
type Swept = (RoomId, PeerId, Vec<(PeerId, NodeId)>);

/// One entry of a sweep's answer, read strictly.
fn sweep_entry(value: redis::Value) -> Option<Swept> {
    let redis::Value::Array(mut parts) = value else {
        return None;
    };
    if parts.len() != 3 {
        return None;
    }
    let left = texts(parts.pop()?)?;
    let peer = PeerId::parse(&text(parts.pop()?)?).ok()?;
    let room = RoomId::parse(&text(parts.pop()?)?).ok()?;
    Some((room, peer, members(&left)?))
}

async fn heartbeat(
    conn: &mut redis::aio::MultiplexedConnection,
    node: &NodeId,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("SET")
        .arg(alive_key(node.as_str()))
        .arg(1)
        .arg("PX")
        .arg(ALIVE_FOR.as_millis() as u64)
        .ignore()
        .cmd("SADD")
        .arg(NODES)
        .arg(node.as_str())
        .ignore()
        .query_async(conn)
        .await
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// How to reach each of a room's members as Redis lists them (with their relays): those on
/// this relay (`me`) through the table here, the others through their relays.
pub(crate) fn routes(
    me: &NodeId,
    room: &RoomId,
    members: Vec<(PeerId, NodeId)>,
    hub: &Hub<Route>,
) -> Vec<(PeerId, Route)> {
    members
        .into_iter()
        .map(|(peer, node)| {
            let here = (&node == me).then(|| hub.get(room, &peer)).flatten();
            let route = here.unwrap_or_else(|| Route::Remote {
                node,
                room: room.clone(),
                peer: peer.clone(),
            });
            (peer, route)
        })
        .collect()
}

impl Cluster {
    /// This relay's node id while Redis answers.
    pub(crate) fn node(&self) -> Option<NodeId> {
        self.current().map(|(node, _)| node)
    }
}

impl Cluster {
    /// The cluster's lines for `/metrics`.
    pub(crate) fn render(&self) -> String {
        let m = &self.metrics;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            crate::metrics::write_metric(&mut out, name, kind, help, value);
        };
        metric(
            "sotto_cluster_up",
            "gauge",
            "1 while Redis answers (rooms shared with other relays), else 0.",
            u64::from(self.is_up()),
        );
        let counters = [
            (
                "published",
                "Envelopes published to other relays.",
                &m.published_total,
            ),
            (
                "received",
                "Envelopes received from other relays.",
                &m.received_total,
            ),
            (
                "bad_data",
                "Data from Redis that did not parse (dropped).",
                &m.bad_data_total,
            ),
            (
                "relays_swept",
                "Stopped relays whose peers this relay took out of their rooms.",
                &m.relays_swept_total,
            ),
            (
                "dropped",
                "Messages for other relays dropped because the queue to Redis was full.",
                &m.dropped_total,
            ),
        ];
        for (name, help, value) in counters {
            metric(
                &format!("sotto_cluster_{name}_total"),
                "counter",
                help,
                value.load(Relaxed),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_oldest_first_and_foreign_entries_are_left_out() {
        let (a, b) = (PeerId::from_bytes(&[1; 16]), PeerId::from_bytes(&[2; 16]));
        let n = NodeId::from_bytes(&[9; 16]);
        let flat = vec![
            b.as_str().to_owned(),
            format!("7 {}", n.as_str()),
            "junk".to_owned(),
            "1 x".to_owned(),
            a.as_str().to_owned(),
            format!("3 {}", n.as_str()),
        ];
        assert_eq!(members(&flat), Some(vec![(a, n.clone()), (b, n)]));
        assert_eq!(members(&["odd".to_owned()]), None);
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(redacted("redis://:secret@host:6379"), "redis://…@host:6379");
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
    }
}
