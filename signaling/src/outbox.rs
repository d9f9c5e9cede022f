//! A connection's bounded outbound queue: other connections push, its writer takes.
//!
//! tokio's mpsc channel would do, but it allocates a 32-slot block and a cache-padded channel
//! up front for every connection, about 1.8 KiB that an idle connection never uses. This queue
//! holds a `VecDeque` that is freed whenever it empties, a mutex and one `Notify`: an idle
//! connection costs about a hundred bytes here.
//!
//! A full queue means the client stopped reading: the connection is marked *kicked* (dropped
//! as a slow consumer) instead of letting the relay's memory grow. Once closed, pushes are
//! ignored: the connection is ending and its own task tells the room.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The queue was full: the connection is now kicked (first time only).
    Kicked,
    /// Dropped: the connection was already kicked or has closed.
    Dropped,
}

/// What the writer gets next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    /// The oldest queued item.
    Item(T),
    /// The connection was dropped as a slow consumer; nothing more will be queued.
    Kicked,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// While held ([`Outbox::hold`]): what others pushed, kept back until the owner's own
    /// answer has gone in front of it.
    held: Option<VecDeque<T>>,
    kicked: bool,
    closed: bool,
}

/// The queue, shared by the connection (its writer takes) and everyone who may push to it.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    state: Mutex<State<T>>,
    /// Wakes the one writer; `notify_one` keeps a permit when it is not waiting, so no push or
    /// kick is ever missed.
    ready: Notify,
    capacity: usize,
}

impl<T> Outbox<T> {
    /// An empty queue holding at most `capacity` items.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                held: None,
                kicked: false,
                closed: false,
            }),
            ready: Notify::new(),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every update
        // is a single push, pop or flag), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` without waiting (behind the hold, while held).
    pub(crate) fn push(&self, item: T) -> Pushed {
        let mut state = self.lock();
        let queued = state.items.len() + state.held.as_ref().map_or(0, VecDeque::len);
        let pushed = if state.closed || state.kicked {
            Pushed::Dropped
        } else if queued >= self.capacity {
            state.kicked = true;
            state.items = VecDeque::new();
            state.held = None;
            Pushed::Kicked
        } else {
            match state.held.as_mut() {
                Some(held) => held.push_back(item),
                None => state.items.push_back(item),
            }
            Pushed::Queued
        };
        drop(state);
        if pushed != Pushed::Dropped {
            self.ready.notify_one();
        }
        pushed
    }

    /// From now until [`Outbox::release`], what is pushed waits behind what the owner queues
    /// with `release`. A connection joining a room holds its queue from before the room table
    /// knows it until its own answer is queued: the table's other members can reach it from the
    /// moment they know it, and what they send (`peer-joined` of someone who joined right after,
    /// their signals) must come after its `welcome`, never before.
    pub(crate) fn hold(&self) {
        let mut state = self.lock();
        if state.held.is_none() {
            state.held = Some(VecDeque::new());
        }
    }

    /// Queues `first` (if any), then everything pushed while held, in order; pushes go
    /// straight to the queue again.
    pub(crate) fn release(&self, first: Option<T>) {
        let mut state = self.lock();
        let held = state.held.take().unwrap_or_default();
        if state.closed || state.kicked {
            return;
        }
        state.items.extend(first);
        state.items.extend(held);
        drop(state);
        self.ready.notify_one();
    }

    /// The next item for the writer, waiting for one; [`Next::Kicked`] once kicked.
    pub(crate) async fn next(&self) -> Next<T> {
        loop {
            {
                let mut state = self.lock();
                if state.kicked {
                    return Next::Kicked;
                }
                if let Some(item) = state.items.pop_front() {
                    if state.items.is_empty() {
                        // Free the ring: an idle connection should hold nothing here.
                        state.items = VecDeque::new();
                    }
                    return Next::Item(item);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Resolves once the connection is kicked (for a writer blocked on its socket).
    pub(crate) async fn kicked(&self) {
        loop {
            if self.lock().kicked {
                return;
            }
            self.ready.notified().await;
            // A push may have consumed nothing but woken us: `next` re-checks the queue, so
            // taking this wake here loses no item.
        }
    }

    /// The connection is ending: later pushes are dropped and queued items freed.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.items = VecDeque::new();
        state.held = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn what_others_push_while_held_comes_after_the_owners_answer() {
        let outbox = Outbox::new(8);
        outbox.push("pong");
        outbox.hold();
        outbox.push("peer-joined");
        outbox.push("signal");
        assert_eq!(outbox.next().await, Next::Item("pong"));
        assert!(outbox.next().now_or_never().is_none(), "held back");
        outbox.release(Some("welcome"));
        for want in ["welcome", "peer-joined", "signal"] {
            assert_eq!(outbox.next().await, Next::Item(want));
        }
        // Released: pushes go straight through again.
        outbox.push("after");
        assert_eq!(outbox.next().await, Next::Item("after"));
        // What is held counts toward the bound.
        let small = Outbox::new(2);
        small.hold();
        assert_eq!(small.push(1), Pushed::Queued);
        assert_eq!(small.push(2), Pushed::Queued);
        assert_eq!(small.push(3), Pushed::Kicked);
        small.release(None);
        assert_eq!(small.next().await, Next::Kicked);
    }

    #[tokio::test]
    async fn items_come_out_in_order_and_the_writer_waits_for_the_next() {
        let outbox = Outbox::new(4);
        assert_eq!(outbox.push(1), Pushed::Queued);
        assert_eq!(outbox.push(2), Pushed::Queued);
        assert_eq!(outbox.next().await, Next::Item(1));
        assert_eq!(outbox.next().await, Next::Item(2));
        assert!(
            outbox.next().now_or_never().is_none(),
            "empty: the writer waits"
        );
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.next().await }
        });
        assert_eq!(outbox.push(3), Pushed::Queued);
        assert_eq!(waiting.await.unwrap(), Next::Item(3));
    }

    #[tokio::test]
    async fn a_full_queue_kicks_the_connection_once_and_frees_what_it_held() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.push(1), Pushed::Queued);
        assert_eq!(outbox.push(2), Pushed::Queued);
        assert_eq!(outbox.push(3), Pushed::Kicked);
        assert_eq!(outbox.push(4), Pushed::Dropped);
        assert_eq!(outbox.next().await, Next::Kicked);
        assert!(outbox.kicked().now_or_never().is_some());
        assert_eq!(outbox.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn a_writer_blocked_on_its_socket_learns_of_the_kick() {
        let outbox = Outbox::new(1);
        let kicked = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.kicked().await }
        });
        assert_eq!(outbox.push(1), Pushed::Queued);
        assert_eq!(outbox.push(2), Pushed::Kicked);
        kicked.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_queue_drops_pushes_and_an_emptied_one_holds_no_memory() {
        let outbox = Outbox::new(8);
        outbox.push("a");
        assert_eq!(outbox.next().await, Next::Item("a"));
        assert_eq!(outbox.lock().items.capacity(), 0);
        outbox.close();
        assert_eq!(outbox.push("b"), Pushed::Dropped);
        assert_eq!(outbox.lock().items.len(), 0);
    }
}
