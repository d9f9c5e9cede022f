//! What every connection task of one relay shares.

use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::ws::PeerHandle;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    hub: Mutex<Hub<PeerHandle>>,
    pub metrics: Metrics,
    /// Cancelled when the relay begins to shut down.
    pub shutdown: CancellationToken,
    /// Every connection task (HTTP or WebSocket), so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// One permit per open WebSocket session (`--max-connections`).
    pub session_slots: Arc<Semaphore>,
}

impl Shared {
    pub fn new(config: Config) -> Self {
        Self {
            hub: Mutex::new(Hub::new(config.max_peers)),
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            session_slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
        }
    }

    /// The room table. Held only for a few map operations, never across an await.
    pub fn hub(&self) -> MutexGuard<'_, Hub<PeerHandle>> {
        // The table's methods do not panic; if one ever did, its maps are still consistent
        // (each method finishes its mutation before returning), so the poison is ignored.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn room_count(&self) -> usize {
        self.hub().room_count()
    }
}
