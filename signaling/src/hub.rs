//! The room table: which peers are in which room, and how to reach each one.
//!
//! Sans-IO: `H` is whatever the shell uses to reach a connection (a queue sender in the relay,
//! a plain number in tests). The table never blocks and never does I/O, so the relay holds its
//! lock only for a few map operations.

use sotto_proto::{PeerId, RoomId};
use std::collections::HashMap;

/// The room is at its capacity; the newcomer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomFull;

/// All rooms of one relay.
#[derive(Debug)]
pub(crate) struct Hub<H> {
    rooms: HashMap<RoomId, Vec<(PeerId, H)>>,
    max_peers: usize,
}

impl<H: Clone> Hub<H> {
    /// An empty table whose rooms hold at most `max_peers` peers each.
    pub(crate) fn new(max_peers: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            max_peers,
        }
    }

    /// Adds `peer` to `room`, creating the room on first join. Returns the peers that were
    /// already there, oldest first, each with its handle (they must be told of the newcomer).
    pub(crate) fn join(
        &mut self,
        room: &RoomId,
        peer: PeerId,
        handle: H,
    ) -> Result<Vec<(PeerId, H)>, RoomFull> {
        let members = self.rooms.entry(room.clone()).or_default();
        if members.len() >= self.max_peers {
            return Err(RoomFull);
        }
        let before = members.clone();
        members.push((peer, handle));
        Ok(before)
    }

    /// Removes `peer` from `room`, and the room once empty. Returns the handles of the peers
    /// still in the room (they must be told).
    pub(crate) fn leave(&mut self, room: &RoomId, peer: &PeerId) -> Vec<H> {
        let Some(members) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        members.retain(|(id, _)| id != peer);
        if members.is_empty() {
            self.rooms.remove(room);
            return Vec::new();
        }
        members.iter().map(|(_, h)| h.clone()).collect()
    }

    /// The handle of `to`, when `to` is in `room` and is not `from` itself.
    pub(crate) fn find_other(&self, room: &RoomId, from: &PeerId, to: &PeerId) -> Option<H> {
        if from == to {
            return None;
        }
        self.rooms
            .get(room)?
            .iter()
            .find(|(id, _)| id == to)
            .map(|(_, h)| h.clone())
    }

    /// How many rooms have at least one peer.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[b; 16])
    }
    fn room(b: u8) -> RoomId {
        RoomId::from_bytes(&[b; 16])
    }

    #[test]
    fn rooms_are_created_on_first_join_and_removed_when_empty() {
        let mut hub = Hub::new(2);
        assert_eq!(hub.join(&room(1), peer(1), 1), Ok(vec![]));
        assert_eq!(hub.room_count(), 1);
        assert_eq!(hub.join(&room(1), peer(2), 2), Ok(vec![(peer(1), 1)]));
        assert_eq!(hub.leave(&room(1), &peer(1)), vec![2]);
        assert_eq!(hub.room_count(), 1);
        assert_eq!(hub.leave(&room(1), &peer(2)), Vec::<i32>::new());
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn a_room_refuses_peers_past_its_capacity() {
        let mut hub = Hub::new(2);
        hub.join(&room(1), peer(1), 1).unwrap();
        hub.join(&room(1), peer(2), 2).unwrap();
        assert_eq!(hub.join(&room(1), peer(3), 3), Err(RoomFull));
        // Another room is unaffected, and a freed place can be taken again.
        assert!(hub.join(&room(2), peer(3), 3).is_ok());
        hub.leave(&room(1), &peer(2));
        assert_eq!(hub.join(&room(1), peer(4), 4), Ok(vec![(peer(1), 1)]));
    }

    #[test]
    fn peers_are_found_only_in_their_own_room_and_never_as_themselves() {
        let mut hub = Hub::new(3);
        hub.join(&room(1), peer(1), 1).unwrap();
        hub.join(&room(1), peer(2), 2).unwrap();
        hub.join(&room(2), peer(3), 3).unwrap();
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(2)), Some(2));
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(3)), None);
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(1)), None);
    }
}
