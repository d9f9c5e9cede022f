//! What every connection task of one relay shares.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::sfu::SfuHandle;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    /// Who is in which room (this relay's own, or shared with others through Redis).
    pub rooms: Rooms,
    pub metrics: Metrics,
    /// Cancelled when the relay begins to shut down.
    pub shutdown: CancellationToken,
    /// Every connection task (HTTP or WebSocket), so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// One permit per open WebSocket session (`--max-connections`).
    pub session_slots: Arc<Semaphore>,
    /// The SFU that carries conferences' media (none with `--no-sfu`).
    pub sfu: Option<SfuHandle>,
}

impl Shared {
    pub fn new(config: Config, sfu: Option<SfuHandle>, shutdown: CancellationToken) -> Self {
        Self {
            sfu,
            rooms: Rooms::new(config.max_group()),
            metrics: Metrics::default(),
            shutdown,
            tasks: TaskTracker::new(),
            session_slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms.room_count()
    }
}
