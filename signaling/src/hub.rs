//! The room table: which peers are in which room, and how to reach each one.
//!
//! Sans-IO: `H` is whatever the shell uses to reach a connection (a queue sender in the relay,
//! a plain number in tests). The table never blocks and never does I/O, so the relay holds its
//! lock only for a few map operations.

use crate::conference::{Conference, Refusal};
use sotto_proto::{ClientMessage, GroupSize, ONE_TO_ONE, PeerId, RoomId, ServerMessage};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Why a newcomer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The room already holds as many people as it was made for.
    RoomFull,
    /// The link asks for a group larger than this relay allows; no room was made.
    GroupTooLarge {
        /// The most people this relay puts in one room.
        limit: u8,
    },
    /// The rooms are shared with other relays through a store this relay cannot reach now.
    Unavailable,
}

/// One room: how many it holds (fixed by the join that made it) and who is in it, oldest first.
#[derive(Debug)]
struct Room<H> {
    capacity: u8,
    members: Vec<(PeerId, H)>,
    /// A conference's delivery service (rooms for more than a mesh holds).
    conference: Option<Box<ConferenceRoom>>,
}

/// A conference room's delivery service and the deadline it is filed under.
#[derive(Debug, Default)]
struct ConferenceRoom {
    ds: Conference,
    deadline: Option<Instant>,
}

/// All rooms of one relay.
#[derive(Debug)]
pub(crate) struct Hub<H> {
    rooms: HashMap<RoomId, Room<H>>,
    /// The largest group a link may ask for (`--max-peers`).
    max_group: u8,
    /// Conference rooms whose delivery service waits for a time, earliest first.
    deadlines: BTreeSet<(Instant, RoomId)>,
}

/// What a leave changes: the members still there (to be told), and the conference messages it
/// causes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Left<H> {
    pub(crate) remaining: Vec<H>,
    pub(crate) sends: Vec<(H, ServerMessage)>,
}

impl<H> Default for Left<H> {
    fn default() -> Self {
        Self {
            remaining: Vec::new(),
            sends: Vec::new(),
        }
    }
}

/// What a newcomer learns on joining: who was there, and how many the room holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Joined<H> {
    /// The peers already in the room, oldest first, each with its handle (they must be told).
    pub(crate) before: Vec<(PeerId, H)>,
    /// The room's capacity.
    pub(crate) capacity: u8,
}

impl<H: Clone> Hub<H> {
    /// An empty table; a group link may ask for rooms of up to `max_group` people.
    pub(crate) fn new(max_group: u8) -> Self {
        Self {
            rooms: HashMap::new(),
            max_group,
            deadlines: BTreeSet::new(),
        }
    }

    /// Adds `peer` to `room`. The join that creates the room fixes its capacity: `max`, or 2
    /// without (a one-to-one link); a later join's `max` changes nothing. Checked and done
    /// in one step under the caller's lock, so two newcomers never both take the last place.
    pub(crate) fn join(
        &mut self,
        room: &RoomId,
        peer: PeerId,
        handle: H,
        max: Option<GroupSize>,
    ) -> Result<Joined<H>, Refused> {
        let target = match self.rooms.get_mut(room) {
            Some(existing) => existing,
            None => {
                let capacity = max.map_or(ONE_TO_ONE, GroupSize::get);
                if capacity > self.max_group.max(ONE_TO_ONE) {
                    return Err(Refused::GroupTooLarge {
                        limit: self.max_group,
                    });
                }
                self.rooms.entry(room.clone()).or_insert(Room {
                    capacity,
                    // Never more than this, so never moved; a growing Vec would take room for
                    // four members at the first (a fifth of an idle connection's memory).
                    members: Vec::with_capacity(usize::from(capacity)),
                    conference: max.is_some_and(GroupSize::is_conference).then(Box::default),
                })
            }
        };
        if target.members.len() >= usize::from(target.capacity) {
            return Err(Refused::RoomFull);
        }
        let before = target.members.clone();
        if let Some(conference) = &mut target.conference {
            conference.ds.joined(peer.clone());
        }
        target.members.push((peer, handle));
        Ok(Joined {
            before,
            capacity: target.capacity,
        })
    }

    /// Removes `peer` from `room`, and the room once empty: the peers still in the room (they
    /// must be told), and in a conference what its delivery service sends.
    pub(crate) fn leave(&mut self, room: &RoomId, peer: &PeerId, now: Instant) -> Left<H> {
        let Some(target) = self.rooms.get_mut(room) else {
            return Left::default();
        };
        target.members.retain(|(id, _)| id != peer);
        if target.members.is_empty() {
            self.forget(room);
            return Left::default();
        }
        let remaining = target.members.iter().map(|(_, h)| h.clone()).collect();
        let sends = match &mut target.conference {
            Some(conference) => conference.ds.leave(peer, now),
            None => Vec::new(),
        };
        Left {
            remaining,
            sends: self.routed(room, sends),
        }
    }

    /// Drops `room` and its deadline.
    fn forget(&mut self, room: &RoomId) {
        if let Some(Room {
            conference: Some(conference),
            ..
        }) = self.rooms.remove(room)
            && let Some(at) = conference.deadline
        {
            self.deadlines.remove(&(at, room.clone()));
        }
    }

    /// `from`'s conference message in `room`: the messages its delivery service sends, each
    /// with the handle of its recipient, or why it refuses it.
    pub(crate) fn conference(
        &mut self,
        room: &RoomId,
        from: &PeerId,
        msg: ClientMessage,
        now: Instant,
    ) -> Result<Vec<(H, ServerMessage)>, Refusal> {
        let conference = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.conference.as_mut())
            .ok_or(Refusal::NotConference)?;
        let sends = conference.ds.receive(from, msg, now)?;
        Ok(self.routed(room, sends))
    }

    /// When [`Hub::conference_timeouts`] must next run, if ever.
    pub(crate) fn next_conference_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Every conference whose deadline came by `now`: the messages its delivery service sends.
    pub(crate) fn conference_timeouts(&mut self, now: Instant) -> Vec<(H, ServerMessage)> {
        let mut out = Vec::new();
        while let Some((at, room)) = self.deadlines.first().cloned()
            && at <= now
        {
            self.deadlines.remove(&(at, room.clone()));
            let sends = match self
                .rooms
                .get_mut(&room)
                .and_then(|r| r.conference.as_mut())
            {
                Some(conference) => {
                    conference.deadline = None;
                    conference.ds.timeout(now)
                }
                None => continue,
            };
            out.extend(self.routed(&room, sends));
        }
        out
    }

    /// `sends` with each recipient's handle (one who left meanwhile gets nothing), after
    /// filing `room`'s next deadline.
    fn routed(
        &mut self,
        room: &RoomId,
        sends: Vec<(PeerId, ServerMessage)>,
    ) -> Vec<(H, ServerMessage)> {
        let Some(target) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        if let Some(conference) = &mut target.conference {
            let next = conference.ds.poll_timeout();
            if next != conference.deadline {
                if let Some(at) = conference.deadline {
                    self.deadlines.remove(&(at, room.clone()));
                }
                if let Some(at) = next {
                    self.deadlines.insert((at, room.clone()));
                }
                conference.deadline = next;
            }
        }
        sends
            .into_iter()
            .filter_map(|(to, msg)| {
                let handle = target.members.iter().find(|(id, _)| *id == to)?;
                Some((handle.1.clone(), msg))
            })
            .collect()
    }

    /// The handle of `to`, when `to` is in `room` and is not `from` itself.
    pub(crate) fn find_other(&self, room: &RoomId, from: &PeerId, to: &PeerId) -> Option<H> {
        if from == to {
            return None;
        }
        self.rooms
            .get(room)?
            .members
            .iter()
            .find(|(id, _)| id == to)
            .map(|(_, h)| h.clone())
    }

    /// Puts `peer` in `room` as it is elsewhere (a relay's mirror of a room shared with
    /// others: the capacity is the shared room table's to keep, not this one's).
    pub(crate) fn insert(&mut self, room: &RoomId, peer: PeerId, handle: H) {
        let target = self.rooms.entry(room.clone()).or_insert(Room {
            capacity: u8::MAX,
            members: Vec::new(),
            conference: None,
        });
        if !target.members.iter().any(|(id, _)| id == &peer) {
            target.members.push((peer, handle));
        }
    }

    /// Takes `peer` out of `room`; the room goes once none of its members is one `keep` says
    /// to keep a room for (in a mirror: once no member is connected to this relay).
    pub(crate) fn remove(&mut self, room: &RoomId, peer: &PeerId, keep: impl Fn(&H) -> bool) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.members.retain(|(id, _)| id != peer);
            if !r.members.iter().any(|(_, h)| keep(h)) {
                self.forget(room);
            }
        }
    }

    /// The handle of `peer` in `room`.
    pub(crate) fn get(&self, room: &RoomId, peer: &PeerId) -> Option<H> {
        self.rooms
            .get(room)?
            .members
            .iter()
            .find(|(id, _)| id == peer)
            .map(|(_, h)| h.clone())
    }

    /// The handles of `room`'s members but `peer`.
    pub(crate) fn others(&self, room: &RoomId, peer: &PeerId) -> Vec<H> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.members
                .iter()
                .filter(|(id, _)| id != peer)
                .map(|(_, h)| h.clone())
                .collect()
        })
    }

    /// How many rooms have at least one peer.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

impl<H: Clone> crate::session::Lookup<H> for Hub<H> {
    fn find_other(&self, room: &RoomId, from: &PeerId, to: &PeerId) -> Option<H> {
        Hub::find_other(self, room, from, to)
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

    fn now() -> Instant {
        Instant::now()
    }

    fn joined(before: Vec<(PeerId, i32)>, capacity: u8) -> Result<Joined<i32>, Refused> {
        Ok(Joined { before, capacity })
    }
    fn group(n: u64) -> Option<GroupSize> {
        Some(GroupSize::new(n).unwrap())
    }

    #[test]
    fn rooms_are_created_on_first_join_and_removed_when_empty() {
        let mut hub = Hub::new(6);
        assert_eq!(hub.join(&room(1), peer(1), 1, None), joined(vec![], 2));
        assert_eq!(hub.room_count(), 1);
        assert_eq!(
            hub.join(&room(1), peer(2), 2, None),
            joined(vec![(peer(1), 1)], 2)
        );
        assert_eq!(hub.leave(&room(1), &peer(1), now()).remaining, vec![2]);
        assert_eq!(hub.room_count(), 1);
        assert_eq!(hub.leave(&room(1), &peer(2), now()), Left::default());
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn a_room_without_max_refuses_a_third_and_a_freed_place_is_taken_again() {
        let mut hub = Hub::new(6);
        hub.join(&room(1), peer(1), 1, None).unwrap();
        hub.join(&room(1), peer(2), 2, None).unwrap();
        assert_eq!(hub.join(&room(1), peer(3), 3, None), Err(Refused::RoomFull));
        // A group link cannot widen a room a one-to-one link made.
        assert_eq!(
            hub.join(&room(1), peer(3), 3, group(6)),
            Err(Refused::RoomFull)
        );
        // Another room is unaffected, and a freed place can be taken again.
        assert!(hub.join(&room(2), peer(3), 3, None).is_ok());
        hub.leave(&room(1), &peer(2), now());
        assert_eq!(
            hub.join(&room(1), peer(4), 4, None),
            joined(vec![(peer(1), 1)], 2)
        );
    }

    #[test]
    fn the_first_join_fixes_a_groups_capacity_and_later_maxes_change_nothing() {
        let mut hub = Hub::new(6);
        assert_eq!(hub.join(&room(1), peer(1), 1, group(3)), joined(vec![], 3));
        assert_eq!(
            hub.join(&room(1), peer(2), 2, group(6)).unwrap().capacity,
            3
        );
        assert_eq!(hub.join(&room(1), peer(3), 3, None).unwrap().capacity, 3);
        assert_eq!(
            hub.join(&room(1), peer(4), 4, group(6)),
            Err(Refused::RoomFull)
        );
    }

    #[test]
    fn a_group_above_the_relays_limit_is_refused_and_makes_no_room() {
        let mut hub = Hub::new(6);
        assert_eq!(
            hub.join(&room(1), peer(1), 1, group(7)),
            Err(Refused::GroupTooLarge { limit: 6 })
        );
        assert_eq!(hub.room_count(), 0);
        assert_eq!(hub.join(&room(1), peer(1), 1, group(6)), joined(vec![], 6));
        // A relay whose limit is 2 takes one-to-one calls only.
        let mut small = Hub::new(2);
        assert_eq!(
            small.join(&room(1), peer(1), 1, group(3)),
            Err(Refused::GroupTooLarge { limit: 2 })
        );
        assert!(small.join(&room(1), peer(1), 1, None).is_ok());
    }

    #[test]
    fn peers_are_found_only_in_their_own_room_and_never_as_themselves() {
        let mut hub = Hub::new(6);
        hub.join(&room(1), peer(1), 1, group(3)).unwrap();
        hub.join(&room(1), peer(2), 2, None).unwrap();
        hub.join(&room(2), peer(3), 3, None).unwrap();
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(2)), Some(2));
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(3)), None);
        assert_eq!(hub.find_other(&room(1), &peer(1), &peer(1)), None);
    }

    #[test]
    fn a_conference_room_runs_its_delivery_service_and_its_clock() {
        use crate::conference::TASK_TIMEOUT;
        use sotto_proto::Payload;
        let t0 = now();
        let kp = |b: u8| ClientMessage::KeyPackage {
            data: Payload::from_bytes(&[b; 8]),
        };
        let mut hub = Hub::new(50);
        for p in 1..=3 {
            hub.join(&room(1), peer(p), i32::from(p), group(8)).unwrap();
        }
        // A mesh room has no delivery service.
        hub.join(&room(2), peer(9), 9, group(6)).unwrap();
        assert_eq!(
            hub.conference(&room(2), &peer(9), kp(9), t0),
            Err(Refusal::NotConference)
        );
        assert_eq!(
            hub.conference(&room(1), &peer(1), kp(1), t0),
            Ok(vec![(1, ServerMessage::CreateGroup)])
        );
        let named = hub.conference(&room(1), &peer(2), kp(2), t0).unwrap();
        assert!(matches!(
            named.as_slice(),
            [(1, ServerMessage::CommitTask { epoch: 0, add, .. })] if add.len() == 1
        ));
        assert_eq!(hub.next_conference_deadline(), Some(t0 + TASK_TIMEOUT));
        // Nothing is due before the deadline; at it, the next member (Bea is not one yet, so
        // Ada again) is named.
        assert_eq!(hub.conference_timeouts(t0 + TASK_TIMEOUT / 2), vec![]);
        let again = hub.conference_timeouts(t0 + TASK_TIMEOUT);
        assert!(matches!(
            again.as_slice(),
            [(1, ServerMessage::CommitTask { .. })]
        ));
        // Ada's commit goes to her, its Welcome to Bea.
        let commit = ClientMessage::Commit {
            epoch: 0,
            data: Payload::from_bytes(b"commit"),
            welcome: Some(Payload::from_bytes(b"welcome")),
            refused: vec![],
        };
        let sent = hub.conference(&room(1), &peer(1), commit, t0).unwrap();
        assert!(matches!(
            sent.as_slice(),
            [
                (1, ServerMessage::Commit { epoch: 0, .. }),
                (2, ServerMessage::GroupWelcome { epoch: 1, .. })
            ]
        ));
        assert_eq!(hub.next_conference_deadline(), None);
        // Ada leaves: the others hear it, and Bea is named to remove her.
        let left = hub.leave(&room(1), &peer(1), t0);
        assert_eq!(left.remaining, vec![2, 3]);
        assert!(matches!(
            left.sends.as_slice(),
            [(2, ServerMessage::CommitTask { epoch: 1, remove, .. })] if remove == &vec![peer(1)]
        ));
        // The room goes with its last member, and its deadline with it.
        hub.leave(&room(1), &peer(2), t0);
        hub.leave(&room(1), &peer(3), t0);
        assert_eq!(hub.next_conference_deadline(), None);
        assert_eq!(hub.room_count(), 1);
    }
}
