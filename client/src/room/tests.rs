//! The room's tests: a relay and a WebRTC stand-in without I/O run whole rooms of people.
use super::*;
use sotto_e2ee::EphemeralKey;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub(super) fn secret() -> LinkSecret {
    LinkSecret::from_bytes([7; 32])
}

pub(super) fn peer(b: u8) -> PeerId {
    PeerId::from_bytes(&[b; 16])
}

/// Person `n`'s device key.
fn device(n: u8) -> DeviceKey {
    DeviceKey::from_seed(&[n; 32])
}

/// Keys from a counter: each pair of each person gets its own.
fn keys(person: u8) -> KeySource {
    let mut next = 0u8;
    Box::new(move || {
        next += 1;
        Ok(EphemeralKey::from_bytes(
            [person.wrapping_mul(40).wrapping_add(next); 32],
        ))
    })
}

pub(super) fn group(n: u64) -> Option<GroupSize> {
    Some(GroupSize::new(n).unwrap())
}

/// An SDP that carries only what the room reads of it: the DTLS fingerprint of `who`'s
/// connection to `to`.
fn sdp(who: &PeerId, to: &PeerId) -> String {
    let fp: Vec<String> = who
        .as_str()
        .bytes()
        .chain(to.as_str().bytes())
        .take(32)
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("v=0\r\na=fingerprint:sha-256 {}\r\n", fp.join(":"))
}

/// One person: their room, and what the fake WebRTC stack holds per pair.
pub(super) struct Person {
    pub(super) id: PeerId,
    pub(super) room: Room,
    media: BTreeMap<PeerId, (FrameEncryptor, FrameDecryptor)>,
    codes: BTreeMap<PeerId, SafetyCode>,
    names: BTreeMap<PeerId, String>,
    identities: BTreeMap<PeerId, Option<DeviceId>>,
    gone: Vec<(PeerId, PairEnd)>,
    pub(super) connected: Vec<PeerId>,
    ended: Option<Outcome>,
    waiting: bool,
    /// What the person was told, in the shared scenarios' words (scenarios.rs).
    pub(super) events: Vec<serde_json::Value>,
}

/// A relay and a WebRTC stack without I/O: rooms of people, messages delivered in order.
pub(super) struct World {
    pub(super) people: Vec<Person>,
    members: Vec<PeerId>,
    /// (to, message) from the relay; (from, to) for a peer connection to report connected.
    pub(super) relay: VecDeque<(PeerId, ServerMessage)>,
    pub(super) now: Instant,
    capacity: usize,
    /// People whose messages wait (a frozen or unreachable client), and what waits for them.
    holding: BTreeSet<PeerId>,
    held: BTreeMap<PeerId, Vec<ServerMessage>>,
    /// The scenarios' names of people, by their number less one (scenarios.rs).
    pub(super) names: Vec<String>,
}

impl World {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            people: Vec::new(),
            members: Vec::new(),
            relay: VecDeque::new(),
            now: Instant::now(),
            capacity,
            holding: BTreeSet::new(),
            held: BTreeMap::new(),
            names: Vec::new(),
        }
    }

    /// Messages to `id` wait until [`World::release`].
    pub(super) fn hold(&mut self, id: &PeerId) {
        self.holding.insert(id.clone());
    }

    /// What waited for `id` is delivered, before anything else in flight.
    pub(super) fn release(&mut self, id: &PeerId) {
        self.holding.remove(id);
        for msg in self.held.remove(id).unwrap_or_default().into_iter().rev() {
            self.relay.push_front((id.clone(), msg));
        }
        self.run();
    }

    /// The relay loses `id`'s connection: the others are told, what was on its way to `id` is
    /// lost, and `id`'s client sees the close.
    pub(super) fn lose_relay(&mut self, id: &PeerId) {
        self.leave(id);
        self.relay.retain(|(to, _)| to != id);
        self.held.remove(id);
        let i = self.index(id);
        let actions = self.people[i].room.relay_closed();
        self.carry_out(id, actions);
        self.run();
    }

    /// Hands `id`'s room this input's actions, then delivers everything.
    pub(super) fn input(&mut self, id: &PeerId, f: impl FnOnce(&mut Room, Instant) -> Vec<Action>) {
        let i = self.index(id);
        let now = self.now;
        let actions = f(&mut self.people[i].room, now);
        self.carry_out(id, actions);
        self.run();
    }

    /// `by` passes on everyone's clock; deadlines fall due.
    pub(super) fn tick(&mut self, by: Duration) {
        self.now += by;
        let ids: Vec<PeerId> = self.people.iter().map(|p| p.id.clone()).collect();
        for id in ids {
            self.input(&id, |room, now| room.handle_timeout(now));
        }
    }

    /// The scenarios' name of a person (their relay id where they have none).
    pub(super) fn name_of(&self, id: &PeerId) -> String {
        (1..=self.names.len())
            .find(|&n| &peer(u8::try_from(n).expect("few people")) == id)
            .map_or_else(|| id.as_str().to_owned(), |n| self.names[n - 1].clone())
    }

    fn index(&self, id: &PeerId) -> usize {
        self.people
            .iter()
            .position(|p| &p.id == id)
            .expect("a person of this world")
    }

    /// Someone opens the link.
    pub(super) fn join(&mut self, n: u8, max: Option<GroupSize>) -> PeerId {
        let id = peer(n);
        let (room, actions) = Room::new(secret(), max, keys(n));
        // Odd people give a name (with a control character for the receiver to remove).
        let name = (n % 2 == 1).then(|| format!(" Person\u{7} {n}"));
        self.people.push(Person {
            id: id.clone(),
            // Everyone but person 2 has a device key (2 is incognito).
            room: room
                .with_name(name)
                .with_device((n != 2).then(|| device(n))),
            media: BTreeMap::new(),
            codes: BTreeMap::new(),
            names: BTreeMap::new(),
            identities: BTreeMap::new(),
            gone: Vec::new(),
            connected: Vec::new(),
            ended: None,
            waiting: false,
            events: Vec::new(),
        });
        self.carry_out(&id, actions);
        self.run();
        id
    }

    /// Delivers everything in flight, then connects every pair whose both ends have keys.
    pub(super) fn run(&mut self) {
        loop {
            while let Some((to, msg)) = self.relay.pop_front() {
                if self.holding.contains(&to) {
                    self.held.entry(to).or_default().push(msg);
                    continue;
                }
                let i = self.index(&to);
                let now = self.now;
                let actions = self.people[i].room.relay_message(msg, now);
                self.carry_out(&to, actions);
            }
            // A pair connects once both ends started media (the fake ICE and DTLS).
            let mut connect = Vec::new();
            for p in &self.people {
                for other in p.media.keys() {
                    let o = &self.people[self.index(other)];
                    if o.media.contains_key(&p.id) && !p.connected.contains(other) {
                        connect.push((p.id.clone(), other.clone()));
                    }
                }
            }
            if connect.is_empty() && self.relay.is_empty() {
                return;
            }
            for (who, other) in connect {
                let i = self.index(&who);
                self.people[i].connected.push(other.clone());
                let now = self.now;
                let actions =
                    self.people[i]
                        .room
                        .connection_state(&other, ConnectionState::Connected, now);
                self.carry_out(&who, actions);
            }
        }
    }

    fn carry_out(&mut self, who: &PeerId, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let i = self.index(who);
            if let Some(event) = self.told(&action) {
                self.people[i].events.push(event);
            }
            match action {
                Action::Relay(msg) => self.relay_in(who, msg),
                Action::Peer(other, PeerAction::CreateOffer) => {
                    let more = self.people[i].room.offer_created(&other, sdp(who, &other));
                    queue.extend(more);
                }
                Action::Peer(other, PeerAction::CreateAnswer(_)) => {
                    let more = self.people[i].room.answer_created(&other, sdp(who, &other));
                    queue.extend(more);
                }
                Action::Peer(other, PeerAction::Keys(keys)) => {
                    let PairKeys { send, receive, .. } = *keys;
                    self.people[i].media.insert(other, (send, receive));
                }
                Action::Peer(other, PeerAction::Close) => {
                    self.people[i].media.remove(&other);
                    self.people[i].connected.retain(|c| c != &other);
                }
                Action::Peer(other, PeerAction::Notify(PeerNotice::SafetyCode(code))) => {
                    self.people[i].codes.insert(other, code);
                }
                Action::Peer(other, PeerAction::Notify(PeerNotice::Name(name))) => {
                    self.people[i].names.insert(other, name);
                }
                Action::Peer(other, PeerAction::Notify(PeerNotice::Identity(id))) => {
                    self.people[i].identities.insert(other, id);
                }
                Action::Peer(other, PeerAction::Notify(PeerNotice::Gone(why))) => {
                    self.people[i].gone.push((other, why));
                }
                Action::Notify(RoomNotice::WaitingForPeers) => self.people[i].waiting = true,
                Action::End(outcome) => self.people[i].ended = Some(outcome),
                _ => {}
            }
        }
    }

    /// What an action tells its person, in the shared scenarios' words
    /// (tests/vectors/scenarios.json `_about.events`).
    fn told(&self, action: &Action) -> Option<serde_json::Value> {
        use serde_json::json;
        let name = |p: &PeerId| self.name_of(p);
        Some(match action {
            Action::Notify(RoomNotice::WaitingForPeers) => json!(["waiting"]),
            Action::Notify(RoomNotice::Reconnecting { attempt, .. }) => {
                json!(["reconnect", attempt])
            }
            Action::Peer(p, PeerAction::Notify(PeerNotice::Found(role))) => json!([
                "found",
                name(p),
                match role {
                    Role::Offerer => "offerer",
                    Role::Answerer => "answerer",
                }
            ]),
            Action::Peer(p, PeerAction::Notify(PeerNotice::Dropped)) => json!(["dropped", name(p)]),
            Action::Peer(p, PeerAction::Notify(PeerNotice::LostRelay)) => {
                json!(["lost-relay", name(p)])
            }
            Action::Peer(p, PeerAction::Notify(PeerNotice::Gone(why))) => {
                let end = match why {
                    PairEnd::HungUp => "hung-up",
                    PairEnd::Left => "left",
                    PairEnd::WrongLinkOrTamperedRelay => "wrong-link",
                    PairEnd::Tampered(_) => "tampered",
                    PairEnd::Failed(_) => "failed",
                    PairEnd::TimedOut => "timed-out",
                };
                json!(["gone", name(p), end])
            }
            Action::End(outcome) => {
                let kind = match outcome {
                    Outcome::HungUp => "hung-up".to_owned(),
                    Outcome::PeerHungUp => "peer-hung-up".to_owned(),
                    Outcome::RelayError(code, _) => format!("relay-error:{code}"),
                    Outcome::WrongLinkOrTamperedRelay => "wrong-link".to_owned(),
                    Outcome::Tampered(_) => "tampered".to_owned(),
                    Outcome::RelayLost => "relay-lost".to_owned(),
                    Outcome::ConnectionFailed(_) => "failed".to_owned(),
                    Outcome::ProtocolViolation(_) => "protocol-violation".to_owned(),
                    Outcome::LocalFailure(_) => "local-failure".to_owned(),
                    Outcome::RelayCertificate(_) => "relay-certificate".to_owned(),
                };
                json!(["ended", kind])
            }
            _ => return None,
        })
    }

    /// The relay's part (sans-IO, the real relay's rules: capacity, order, `from`).
    fn relay_in(&mut self, from: &PeerId, msg: ClientMessage) {
        match msg {
            ClientMessage::Join { max, .. } => {
                if self.members.len()
                    >= max
                        .map_or(self.capacity.min(2), |m| usize::from(m.get()))
                        .min(self.capacity)
                {
                    self.relay.push_back((
                        from.clone(),
                        ServerMessage::error(ErrorCode::RoomFull, "full"),
                    ));
                    return;
                }
                for m in &self.members {
                    self.relay
                        .push_back((m.clone(), ServerMessage::PeerJoined { peer: from.clone() }));
                }
                let peers = self.members.clone();
                self.members.push(from.clone());
                self.relay.push_back((
                    from.clone(),
                    ServerMessage::Welcome {
                        you: from.clone(),
                        peers,
                        ice: vec![],
                        max: 6,
                    },
                ));
            }
            ClientMessage::Signal { to, data } if self.members.contains(&to) => {
                self.relay.push_back((
                    to,
                    ServerMessage::Signal {
                        from: from.clone(),
                        data,
                    },
                ));
            }
            ClientMessage::Leave => self.leave(from),
            _ => {}
        }
    }

    fn leave(&mut self, who: &PeerId) {
        if !self.members.contains(who) {
            return;
        }
        self.members.retain(|m| m != who);
        for m in &self.members {
            self.relay
                .push_back((m.clone(), ServerMessage::PeerLeft { peer: who.clone() }));
        }
    }

    fn person(&self, id: &PeerId) -> &Person {
        &self.people[self.index(id)]
    }

    /// Every two connected people share a safety code, and what one seals the other opens.
    pub(super) fn assert_pairs_work(&mut self, ids: &[PeerId]) {
        for a in ids {
            for b in ids.iter().filter(|b| *b != a) {
                let (pa, pb) = (self.person(a), self.person(b));
                assert!(pa.connected.contains(b), "{a} is not connected to {b}");
                assert_eq!(
                    pa.codes.get(b).map(SafetyCode::digits),
                    pb.codes.get(a).map(SafetyCode::digits),
                    "{a} and {b} see different codes"
                );
                let (ia, ib) = (self.index(a), self.index(b));
                let frame = self.people[ia]
                    .media
                    .get_mut(b)
                    .unwrap()
                    .0
                    .encrypt(&[0xfc, 1, 2, 3])
                    .unwrap();
                let opened = self.people[ib].media.get_mut(a).unwrap().1.decrypt(&frame);
                assert_eq!(
                    opened.unwrap(),
                    vec![0xfc, 1, 2, 3],
                    "{b} cannot open what {a} sealed for it"
                );
            }
        }
    }
}

#[test]
fn two_people_on_a_one_to_one_link_connect_with_one_safety_code() {
    let mut w = World::new(6);
    let a = w.join(1, None);
    assert!(w.person(&a).waiting);
    let b = w.join(2, None);
    w.assert_pairs_work(&[a.clone(), b.clone()]);
    assert!(w.person(&a).room.is_connected() && w.person(&b).room.is_connected());
    assert_eq!(
        w.person(&a).room.poll_timeout(),
        None,
        "a connected pair has no deadline"
    );
}

#[test]
fn three_people_in_a_group_each_pair_with_its_own_keys_and_code() {
    let mut w = World::new(6);
    let ids: Vec<PeerId> = (1..=3).map(|n| w.join(n, group(3))).collect();
    w.assert_pairs_work(&ids);
    for id in &ids {
        assert_eq!(w.person(id).room.peers().len(), 2);
        assert!(w.person(id).ended.is_none());
    }
    // Names travel sealed after the offer or answer, cleaned by the receiver; person 2
    // gave none.
    let names = |id: &PeerId| w.person(id).names.clone().into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(&ids[1]),
        [
            (ids[0].clone(), "Person 1".to_owned()),
            (ids[2].clone(), "Person 3".to_owned())
        ]
    );
    assert_eq!(names(&ids[0]), [(ids[2].clone(), "Person 3".to_owned())]);
    // Device identities too, each verified over its own pair's transcript; person 2 is
    // incognito and sends none.
    let identities = |w: &World, id: &PeerId| {
        w.person(id)
            .identities
            .clone()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        identities(&w, &ids[1]),
        [
            (ids[0].clone(), Some(device(1).id())),
            (ids[2].clone(), Some(device(3).id()))
        ]
    );
    // Person 2 sent none: person 1 knows it once their candidates or, as here, the
    // connection came first.
    assert_eq!(
        identities(&w, &ids[0]),
        [
            (ids[1].clone(), None),
            (ids[2].clone(), Some(device(3).id()))
        ]
    );
    // Each pair's keys are its own: what 1 sealed for 2 does not open at 3.
    let (i1, i3) = (w.index(&ids[0]), w.index(&ids[2]));
    let frame = w.people[i1]
        .media
        .get_mut(&ids[1])
        .unwrap()
        .0
        .encrypt(&[0xfc, 9])
        .unwrap();
    assert!(
        w.people[i3]
            .media
            .get_mut(&ids[0])
            .unwrap()
            .1
            .decrypt(&frame)
            .is_err()
    );
    // The room refuses a fourth.
    let d = w.join(4, group(3));
    assert!(matches!(
        &w.person(&d).ended,
        Some(Outcome::RelayError(ErrorCode::RoomFull, _))
    ));
}

#[test]
fn someone_who_hangs_up_leaves_the_group_and_the_others_go_on() {
    let mut w = World::new(6);
    let ids: Vec<PeerId> = (1..=3).map(|n| w.join(n, group(4))).collect();
    let i = w.index(&ids[2]);
    let actions = w.people[i].room.hang_up();
    w.carry_out(&ids[2].clone(), actions);
    w.run();
    assert_eq!(w.person(&ids[2]).ended, Some(Outcome::HungUp));
    for id in &ids[..2] {
        assert_eq!(w.person(id).gone, vec![(ids[2].clone(), PairEnd::HungUp)]);
        assert!(w.person(id).ended.is_none());
        assert!(
            !w.person(id).media.contains_key(&ids[2]),
            "the pair's keys are gone"
        );
    }
    w.assert_pairs_work(&ids[..2]);
    // Someone new joins mid-call and meets both.
    let d = w.join(4, group(4));
    w.assert_pairs_work(&[ids[0].clone(), ids[1].clone(), d]);
}

#[test]
fn in_a_one_to_one_call_the_peer_hanging_up_ends_it() {
    let mut w = World::new(6);
    let a = w.join(1, None);
    let b = w.join(2, None);
    let i = w.index(&b);
    let actions = w.people[i].room.hang_up();
    w.carry_out(&b, actions);
    w.run();
    assert_eq!(w.person(&a).ended, Some(Outcome::PeerHungUp));
}

#[test]
fn a_peer_that_goes_silent_mid_handshake_is_dropped_at_the_deadline() {
    for max in [None, group(3)] {
        let mut w = World::new(6);
        let a = w.join(1, max);
        // Someone joins, but never answers: their messages are lost.
        let (_ghost, actions) = Room::new(secret(), max, keys(9));
        assert!(matches!(
            &actions[..],
            [Action::Relay(ClientMessage::Join { .. })]
        ));
        let ia = w.index(&a);
        let now = w.now;
        let actions = w.people[ia]
            .room
            .relay_message(ServerMessage::PeerJoined { peer: peer(9) }, now);
        assert!(
            actions
                .iter()
                .any(|x| matches!(x, Action::Relay(ClientMessage::Signal { .. }))),
            "a commits"
        );
        let deadline = w.people[ia].room.poll_timeout().expect("a set-up deadline");
        assert_eq!(deadline, now + SETUP_TIMEOUT);
        assert!(
            w.people[ia]
                .room
                .handle_timeout(deadline - Duration::from_millis(1))
                .is_empty()
        );
        let actions = w.people[ia].room.handle_timeout(deadline);
        w.carry_out(&a, actions);
        assert_eq!(w.person(&a).gone, vec![(peer(9), PairEnd::TimedOut)]);
        match max {
            // One-to-one: the person is the call, and it ends saying why.
            None => assert!(
                matches!(&w.person(&a).ended, Some(Outcome::ConnectionFailed(why)) if why.contains("within 30 s"))
            ),
            // A group goes on, alone again.
            Some(_) => {
                assert!(w.person(&a).ended.is_none());
                assert!(w.person(&a).waiting);
                assert_eq!(w.people[ia].room.poll_timeout(), None);
            }
        }
    }
}

#[test]
fn a_second_device_identity_in_a_pair_is_tampering() {
    let mut w = World::new(6);
    let ids: Vec<PeerId> = (1..=3).map(|n| w.join(n, group(3))).collect();
    // Person 1 sends its hello and identity to person 3 once more.
    let i1 = w.index(&ids[0]);
    let mut out = Vec::new();
    w.people[i1].room.introduce_to(&ids[2], &mut out);
    w.carry_out(&ids[0].clone(), out);
    w.run();
    assert_eq!(
        w.person(&ids[2]).gone,
        vec![(
            ids[0].clone(),
            PairEnd::Tampered("a second device identity".into())
        )]
    );
    // The group goes on for the others.
    assert!(w.person(&ids[2]).ended.is_none());
}

#[test]
fn a_tampered_pair_ends_alone_in_a_group_and_ends_a_one_to_one_call() {
    for max in [None, group(3)] {
        let mut w = World::new(6);
        let a = w.join(1, max);
        let ia = w.index(&a);
        let now = w.now;
        w.people[ia]
            .room
            .relay_message(ServerMessage::PeerJoined { peer: peer(5) }, now);
        // A KEY of the wrong length from the newcomer: tampering with this pair.
        let actions = w.people[ia].room.relay_message(
            ServerMessage::Signal {
                from: peer(5),
                data: Payload::from_bytes(&[0x02, 1, 2]),
            },
            now,
        );
        w.carry_out(&a, actions);
        assert!(matches!(&w.person(&a).gone[..], [(p, PairEnd::Tampered(_))] if p == &peer(5)));
        assert_eq!(w.person(&a).ended.is_some(), max.is_none());
    }
}

#[test]
fn a_one_to_one_link_refuses_a_welcome_with_two_peers_and_a_third_peer() {
    let (mut room, _) = Room::new(secret(), None, keys(1));
    let now = Instant::now();
    let a = room.relay_message(
        ServerMessage::Welcome {
            you: peer(1),
            peers: vec![peer(2), peer(3)],
            ice: vec![],
            max: 6,
        },
        now,
    );
    assert!(matches!(
        a.last(),
        Some(Action::End(Outcome::ProtocolViolation(_)))
    ));
    let mut w = World::new(6);
    w.join(1, None);
    w.join(2, None);
    let ia = w.index(&peer(1));
    let now = w.now;
    let a = w.people[ia]
        .room
        .relay_message(ServerMessage::PeerJoined { peer: peer(3) }, now);
    assert!(matches!(
        a.last(),
        Some(Action::End(Outcome::ProtocolViolation(_)))
    ));
}

#[test]
fn a_group_joins_with_its_size_and_a_one_to_one_link_without() {
    let (_, a) = Room::new(secret(), group(5), keys(1));
    assert!(
        matches!(&a[..], [Action::Relay(ClientMessage::Join { max: Some(m), .. })] if m.get() == 5)
    );
    let (_, a) = Room::new(secret(), None, keys(1));
    assert!(matches!(
        &a[..],
        [Action::Relay(ClientMessage::Join { max: None, .. })]
    ));
}

// The one-to-one rules the call always had, now as a room with one pair.

fn one_to_one() -> Room {
    Room::new(secret(), None, keys(1)).0
}

fn welcome(peers: Vec<PeerId>) -> ServerMessage {
    ServerMessage::Welcome {
        you: peer(9),
        peers,
        ice: vec![],
        max: 2,
    }
}

fn ended(actions: &[Action]) -> Option<&Outcome> {
    actions.iter().find_map(|a| match a {
        Action::End(o) => Some(o),
        _ => None,
    })
}

fn commit_to(actions: &[Action], to: &PeerId) -> Option<Vec<u8>> {
    actions.iter().find_map(|x| match x {
        Action::Relay(ClientMessage::Signal { to: t, data }) if t == to => Some(data.decode()),
        _ => None,
    })
}

fn reconnect_after(actions: &[Action]) -> Option<Duration> {
    actions.iter().find_map(|a| match a {
        Action::Reconnect(d) => Some(*d),
        _ => None,
    })
}

/// A one-to-one room as the offerer, with peer 3; connected if asked.
fn room_with_peer(connected: bool) -> (Room, Option<Vec<u8>>) {
    let mut room = one_to_one();
    let now = Instant::now();
    room.relay_message(welcome(vec![]), now);
    let commit = commit_to(
        &room.relay_message(ServerMessage::PeerJoined { peer: peer(3) }, now),
        &peer(3),
    );
    if connected {
        room.connection_state(&peer(3), ConnectionState::Connected, Instant::now());
        assert!(room.is_connected());
    }
    (room, commit)
}

/// The pair with peer 3 closed because they left, and the room waits for them.
fn waits_again(a: &[Action]) -> bool {
    matches!(
        a,
        [
            Action::Peer(p, PeerAction::Close),
            Action::Peer(q, PeerAction::Notify(PeerNotice::Gone(PairEnd::Left))),
            Action::Notify(RoomNotice::WaitingForPeers)
        ] if p == &peer(3) && q == &peer(3)
    )
}

#[test]
fn the_first_in_the_room_commits_when_the_peer_arrives() {
    let (_, commit) = room_with_peer(false);
    assert_eq!(commit.map(|c| (c[0], c.len())), Some((0x01, 33)));
}

#[test]
fn relay_errors_end_the_call_with_their_code() {
    let mut room = one_to_one();
    let a = room.relay_message(
        ServerMessage::error(ErrorCode::RoomFull, "full"),
        Instant::now(),
    );
    assert_eq!(
        ended(&a),
        Some(&Outcome::RelayError(ErrorCode::RoomFull, "full".into()))
    );
}

#[test]
fn a_failed_ice_or_dtls_connection_ends_a_one_to_one_call_and_says_what_to_try() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![peer(3)]), Instant::now());
    let a = room.connection_state(&peer(3), ConnectionState::Failed, Instant::now());
    let Some(Outcome::ConnectionFailed(why)) = ended(&a) else {
        panic!("{a:?}");
    };
    assert!(
        why.contains("--turn") && why.contains("--relay-only"),
        "{why}"
    );
    assert!(room.is_ended());
}

#[test]
fn a_peer_who_leaves_before_the_call_connected_is_waited_for_with_a_fresh_key() {
    let (mut room, first) = room_with_peer(false);
    // A reload or a crash: peer-left, no bye.
    let now = Instant::now();
    let a = room.relay_message(ServerMessage::PeerLeft { peer: peer(3) }, now);
    assert!(waits_again(&a), "{a:?}");
    // They come back (a new peer id): a new handshake on a new key.
    let again = commit_to(
        &room.relay_message(ServerMessage::PeerJoined { peer: peer(4) }, now),
        &peer(4),
    );
    assert!(again.is_some() && first.is_some() && again != first);
}

#[test]
fn a_connected_call_goes_on_when_the_peer_only_lost_the_relay() {
    let (mut room, _) = room_with_peer(true);
    let a = room.relay_message(ServerMessage::PeerLeft { peer: peer(3) }, Instant::now());
    assert!(
        matches!(&a[..], [Action::Peer(p, PeerAction::Notify(PeerNotice::LostRelay))] if p == &peer(3)),
        "{a:?}"
    );
    assert!(room.is_connected());
    // Their media stops too: now they are gone, and the call waits for them.
    let a = room.connection_state(&peer(3), ConnectionState::Disconnected, Instant::now());
    assert!(waits_again(&a[1..]), "{a:?}");
    assert!(!room.is_connected() && !room.is_ended());
}

#[test]
fn a_peer_who_left_the_relay_and_joins_again_gets_a_new_handshake() {
    let (mut room, first) = room_with_peer(true);
    let now = Instant::now();
    room.relay_message(ServerMessage::PeerLeft { peer: peer(3) }, now);
    // A reload: the same person, a new peer id, while the old connection still lingers.
    let a = room.relay_message(ServerMessage::PeerJoined { peer: peer(4) }, now);
    assert!(
        matches!(a.first(), Some(Action::Peer(p, PeerAction::Close)) if p == &peer(3)),
        "{a:?}"
    );
    let again = commit_to(&a, &peer(4));
    assert!(again.is_some() && again != first);
    // While the peer is on the relay, a newcomer is still a third person.
    let a = room.relay_message(ServerMessage::PeerJoined { peer: peer(5) }, now);
    assert!(matches!(ended(&a), Some(Outcome::ProtocolViolation(_))));
}

#[test]
fn a_signal_to_a_peer_who_just_left_is_no_error() {
    let (mut room, _) = room_with_peer(false);
    let now = Instant::now();
    room.relay_message(ServerMessage::PeerLeft { peer: peer(3) }, now);
    let a = room.relay_message(ServerMessage::error(ErrorCode::UnknownPeer, "gone"), now);
    assert!(a.is_empty(), "{a:?}");
    assert!(!room.is_ended());
}

#[test]
fn hanging_up_sends_leave_to_the_relay() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![peer(3)]), Instant::now());
    let a = room.hang_up();
    assert_eq!(ended(&a), Some(&Outcome::HungUp));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Relay(ClientMessage::Leave)))
    );
}

#[test]
fn signals_from_a_stranger_end_a_one_to_one_call() {
    let mut room = one_to_one();
    let now = Instant::now();
    room.relay_message(welcome(vec![peer(3)]), now);
    let a = room.relay_message(
        ServerMessage::Signal {
            from: peer(4),
            data: Payload::from_bytes(&[1; 33]),
        },
        now,
    );
    assert!(matches!(ended(&a), Some(Outcome::ProtocolViolation(_))));
}

#[test]
fn a_lost_relay_is_tried_again_with_backoff_and_the_room_joined_afresh() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![]), Instant::now());
    let a = room.relay_closed();
    assert_eq!(reconnect_after(&a), Some(Duration::from_millis(500)));
    assert!(ended(&a).is_none());
    let delays: Vec<u128> = (0..5)
        .map(|_| {
            reconnect_after(&room.reconnect_failed())
                .unwrap()
                .as_millis()
        })
        .collect();
    assert_eq!(delays, [1000, 2000, 4000, 8000, 15000]);
    let a = room.relay_connected();
    assert!(
        matches!(&a[..], [Action::Relay(ClientMessage::Join { .. })]),
        "{a:?}"
    );
    // Back in the room: the peer may be there already.
    let a = room.relay_message(welcome(vec![peer(5)]), Instant::now());
    assert!(matches!(
        &a[..],
        [Action::Peer(p, PeerAction::Notify(PeerNotice::Found(Role::Answerer)))] if p == &peer(5)
    ));
}

#[test]
fn a_handshake_cut_by_the_relay_is_dropped_and_started_over() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![peer(3)]), Instant::now());
    let a = room.relay_closed();
    assert!(
        matches!(a.first(), Some(Action::Peer(_, PeerAction::Close))),
        "{a:?}"
    );
    assert!(reconnect_after(&a).is_some());
    assert!(matches!(
        &room.relay_connected()[..],
        [Action::Relay(ClientMessage::Join { .. })]
    ));
}

#[test]
fn a_full_room_after_a_reconnection_is_tried_again_but_not_on_the_first_join() {
    let mut room = one_to_one();
    let now = Instant::now();
    room.relay_message(welcome(vec![]), now);
    room.relay_closed();
    room.relay_connected();
    // The relay still holds our old connection's place.
    let a = room.relay_message(ServerMessage::error(ErrorCode::RoomFull, "full"), now);
    assert_eq!(reconnect_after(&a), Some(Duration::from_secs(1)));
    assert!(!room.is_ended());
    let mut first = one_to_one();
    let a = first.relay_message(ServerMessage::error(ErrorCode::RoomFull, "full"), now);
    assert!(matches!(
        ended(&a),
        Some(Outcome::RelayError(ErrorCode::RoomFull, _))
    ));
}

#[test]
fn a_relay_without_its_shared_room_store_is_tried_again_even_on_the_first_join() {
    let mut room = one_to_one();
    let now = Instant::now();
    let a = room.relay_message(ServerMessage::error(ErrorCode::Unavailable, "later"), now);
    assert_eq!(reconnect_after(&a), Some(Duration::from_millis(500)));
    // The close that follows changes nothing; the next connection is let in.
    assert!(room.relay_closed().is_empty());
    room.relay_connected();
    room.relay_message(welcome(vec![]), now);
    // In a room, the error is followed by the close: that is what counts.
    assert!(
        room.relay_message(ServerMessage::error(ErrorCode::Unavailable, "lost"), now)
            .is_empty()
    );
    assert!(!room.is_ended());
}

#[test]
fn a_relay_that_closes_before_letting_us_in_is_given_up_too() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![]), Instant::now());
    room.relay_closed();
    for _ in 1..RECONNECT_ATTEMPTS {
        room.relay_connected();
        assert!(reconnect_after(&room.relay_closed()).is_some());
    }
    room.relay_connected();
    assert_eq!(ended(&room.relay_closed()), Some(&Outcome::RelayLost));
}

#[test]
fn a_refused_certificate_on_reconnection_ends_the_call() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![]), Instant::now());
    room.relay_closed();
    let a = room.relay_untrusted("unknown issuer".into());
    assert_eq!(
        ended(&a),
        Some(&Outcome::RelayCertificate("unknown issuer".into()))
    );
}

#[test]
fn the_relay_is_given_up_after_its_last_attempt() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![]), Instant::now());
    room.relay_closed();
    let mut total = Duration::ZERO;
    for _ in 1..RECONNECT_ATTEMPTS {
        total += reconnect_after(&room.reconnect_failed()).expect("another attempt");
    }
    assert!(total > Duration::from_secs(120), "{total:?}");
    assert_eq!(ended(&room.reconnect_failed()), Some(&Outcome::RelayLost));
    assert!(room.is_ended());
}

#[test]
fn a_connected_call_goes_on_without_the_relay() {
    let mut room = one_to_one();
    room.relay_message(welcome(vec![peer(3)]), Instant::now());
    room.connection_state(&peer(3), ConnectionState::Connected, Instant::now());
    assert!(room.relay_closed().is_empty());
    assert!(room.is_connected());
}
