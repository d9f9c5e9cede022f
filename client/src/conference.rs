//! One member's side of a conference's MLS group, sans-IO (PROTOCOL.md §7.5, "A client, in a
//! conference room"): the relay's conference messages in, the messages to send back and what
//! happened to the group out. The relay is the delivery service: it names who commits each
//! batch of joins and leaves, and delivers the winning commit to everyone, its maker included;
//! this core only follows it, and every MLS rule (who may commit what, whose message this is)
//! is checked by [`Member`] underneath.
//!
//! The browser's `web/conference-room.js` is the same machine; `tests/tests/conference.rs` puts
//! both in one group through the real relay.

use sotto_e2ee::{CommitOutcome, Error, GroupCode, LinkSecret, Member};
use sotto_proto::{ClientMessage, ErrorCode, Payload, PeerId, ServerMessage};

/// What happened to the group, for the call to act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConferenceEvent {
    /// The group is at `epoch` (after creating it, joining it or a commit): everyone in it
    /// holds the same code and the same media keys.
    Epoch {
        /// The new epoch.
        epoch: u64,
        /// The code everyone compares.
        code: GroupCode,
        /// Everyone in the group, by relay id, in leaf order.
        members: Vec<PeerId>,
    },
    /// Another member's application message.
    Message {
        /// Its sender.
        from: PeerId,
        /// Its plaintext.
        data: Vec<u8>,
    },
    /// A commit removed this member: nothing sent from now on can be opened here.
    Removed,
    /// The member who added this conference's joiners refused this one: it cannot join.
    Refused,
    /// A message from the relay that did not open or broke the group's rules: dropped and
    /// counted. After a commit that failed, this member is out of step with the group.
    Dropped {
        /// Who the relay said sent it.
        from: Option<PeerId>,
        /// Why.
        error: Error,
    },
}

/// What a member waits for.
enum State {
    /// Published its KeyPackage: waits to be told to create the group, or for its Welcome.
    AwaitingGroup,
    /// In the group; `pending` is the epoch its own commit was made in, while the relay has
    /// not delivered it back.
    InGroup { pending: Option<u64> },
    /// Removed, refused or out of step: nothing more happens here.
    Out,
}

/// One member of one conference.
pub struct ConferenceMember {
    me: PeerId,
    member: Member,
    state: State,
}

/// What one input asks of the shell.
#[derive(Debug, Default)]
pub struct Step {
    /// Relay messages to send, in order.
    pub send: Vec<ClientMessage>,
    /// What happened.
    pub events: Vec<ConferenceEvent>,
}

impl ConferenceMember {
    /// A member for the conference of `secret`, whose relay id is `me`, and the KeyPackage it
    /// publishes first.
    pub fn new(secret: &LinkSecret, me: PeerId) -> Result<(Self, ClientMessage), Error> {
        let member = Member::new(secret, me.to_bytes())?;
        let data = Payload::from_bytes(&member.key_package()?);
        let this = Self {
            me,
            member,
            state: State::AwaitingGroup,
        };
        Ok((this, ClientMessage::KeyPackage { data }))
    }

    /// The group's epoch, once a member.
    pub fn epoch(&self) -> Option<u64> {
        match self.state {
            State::InGroup { .. } => self.member.epoch(),
            _ => None,
        }
    }

    /// The MLS member (its media keys, its code).
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// A message from the relay. Messages that are not the conference's change nothing.
    pub fn handle(&mut self, msg: ServerMessage) -> Step {
        let mut step = Step::default();
        match msg {
            ServerMessage::CreateGroup => self.create(&mut step),
            ServerMessage::CommitTask { epoch, add, remove } => {
                let add: Vec<([u8; 16], Vec<u8>)> = add
                    .into_iter()
                    .map(|k| (k.peer.to_bytes(), k.data.decode()))
                    .collect();
                let remove: Vec<[u8; 16]> = remove.iter().map(PeerId::to_bytes).collect();
                self.commit_task(epoch, &add, &remove, &mut step);
            }
            ServerMessage::Commit { from, epoch, data } => {
                self.commit(from, epoch, &data.decode(), &mut step)
            }
            ServerMessage::GroupWelcome { from, epoch, data } => {
                if matches!(self.state, State::AwaitingGroup) {
                    match self.member.join(&from.to_bytes(), epoch, &data.decode()) {
                        Ok(_) => self.entered(&mut step),
                        Err(error) => step.events.push(ConferenceEvent::Dropped {
                            from: Some(from),
                            error,
                        }),
                    }
                }
            }
            ServerMessage::GroupMessage { from, epoch, data } => {
                if matches!(self.state, State::InGroup { .. }) {
                    let event = match self.member.receive(&from.to_bytes(), epoch, &data.decode()) {
                        Ok(data) => ConferenceEvent::Message { from, data },
                        Err(error) => ConferenceEvent::Dropped {
                            from: Some(from),
                            error,
                        },
                    };
                    step.events.push(event);
                }
            }
            ServerMessage::Error {
                code: ErrorCode::RefusedByGroup,
                ..
            } => {
                self.state = State::Out;
                step.events.push(ConferenceEvent::Refused);
            }
            _ => {}
        }
        step
    }

    /// An application message to everyone else.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<ClientMessage, Error> {
        let Some(epoch) = self.epoch() else {
            return Err(Error::CallerMisuse("not in the group"));
        };
        let data = Payload::from_bytes(&self.member.send(plaintext)?);
        Ok(ClientMessage::GroupMessage { epoch, data })
    }

    /// A commit that gives this member fresh keys (the relay takes it when no task is open).
    pub fn update(&mut self) -> Result<ClientMessage, Error> {
        let State::InGroup { pending: None } = self.state else {
            return Err(Error::CallerMisuse(
                "not in the group, or a commit is pending",
            ));
        };
        let mut step = Step::default();
        let epoch = self.member.epoch().unwrap_or_default();
        self.commit_task(epoch, &[], &[], &mut step);
        match (step.send.pop(), step.events.pop()) {
            (Some(msg), _) => Ok(msg),
            (None, Some(ConferenceEvent::Dropped { error, .. })) => Err(error),
            (None, _) => Err(Error::CallerMisuse("no commit made")),
        }
    }

    fn create(&mut self, step: &mut Step) {
        if !matches!(self.state, State::AwaitingGroup) {
            return;
        }
        let mut group_id = [0u8; 16];
        let made = getrandom::fill(&mut group_id)
            .map_err(|_| Error::RandomnessUnavailable)
            .and_then(|()| self.member.create(group_id));
        match made {
            Ok(()) => self.entered(step),
            Err(error) => self.out(None, error, step),
        }
    }

    fn commit_task(
        &mut self,
        epoch: u64,
        add: &[([u8; 16], Vec<u8>)],
        remove: &[[u8; 16]],
        step: &mut Step,
    ) {
        // Named for an epoch this member is not at, or with its own commit still pending:
        // another member will make it (the relay names the next one after a while).
        let State::InGroup { pending: None } = self.state else {
            return;
        };
        if self.member.epoch() != Some(epoch) {
            return;
        }
        match self.member.commit(add, remove) {
            Ok(commit) => {
                step.send.push(ClientMessage::Commit {
                    epoch: commit.epoch,
                    data: Payload::from_bytes(&commit.commit),
                    welcome: commit.welcome.as_deref().map(Payload::from_bytes),
                    refused: commit.refused.iter().map(PeerId::from_bytes).collect(),
                });
                self.state = State::InGroup {
                    pending: Some(commit.epoch),
                };
            }
            Err(error) => step
                .events
                .push(ConferenceEvent::Dropped { from: None, error }),
        }
    }

    fn commit(&mut self, from: PeerId, epoch: u64, sealed: &[u8], step: &mut Step) {
        let State::InGroup { pending } = self.state else {
            return;
        };
        if self.member.epoch() != Some(epoch) {
            // Not this member's epoch (it joined after it): not for it.
            return;
        }
        if from == self.me && pending == Some(epoch) {
            match self.member.commit_accepted() {
                Ok(_) => self.entered(step),
                Err(error) => self.out(Some(from), error, step),
            }
            return;
        }
        if pending.is_some() {
            // Another commit won this epoch: ours is forgotten.
            if let Err(error) = self.member.commit_refused() {
                return self.out(None, error, step);
            }
            self.state = State::InGroup { pending: None };
        }
        match self.member.receive_commit(&from.to_bytes(), epoch, sealed) {
            Ok(CommitOutcome::Epoch(_)) => self.entered(step),
            Ok(CommitOutcome::Removed) => {
                self.state = State::Out;
                step.events.push(ConferenceEvent::Removed);
            }
            Err(error) => self.out(Some(from), error, step),
        }
    }

    /// In the group at a new epoch.
    fn entered(&mut self, step: &mut Step) {
        self.state = State::InGroup { pending: None };
        let (Some(epoch), Ok(code)) = (self.member.epoch(), self.member.group_code()) else {
            return;
        };
        let members = self
            .member
            .members()
            .iter()
            .map(|(_, id)| PeerId::from_bytes(id))
            .collect();
        step.events.push(ConferenceEvent::Epoch {
            epoch,
            code,
            members,
        });
    }

    /// Out of step with the group: nothing more can be opened or committed here.
    fn out(&mut self, from: Option<PeerId>, error: Error, step: &mut Step) {
        self.state = State::Out;
        step.events.push(ConferenceEvent::Dropped { from, error });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_signaling::conference::Conference;
    use std::collections::VecDeque;
    use std::time::Instant;

    /// Members and the relay's delivery service, wired without sockets: what a member sends
    /// goes to the service, what it sends goes to the members, in order.
    struct World {
        ds: Conference,
        members: Vec<(PeerId, ConferenceMember)>,
        queue: VecDeque<(PeerId, ServerMessage)>,
        epochs: Vec<(PeerId, u64, String)>,
        heard: Vec<(PeerId, PeerId, Vec<u8>)>,
        refusals: Vec<ServerMessage>,
    }

    fn secret() -> LinkSecret {
        LinkSecret::from_bytes([9; 32])
    }

    impl World {
        fn new() -> Self {
            Self {
                ds: Conference::new(),
                members: Vec::new(),
                queue: VecDeque::new(),
                epochs: Vec::new(),
                heard: Vec::new(),
                refusals: Vec::new(),
            }
        }

        fn join(&mut self, b: u8) -> PeerId {
            let id = PeerId::from_bytes(&[b; 16]);
            self.ds.joined(id.clone());
            let (member, first) = ConferenceMember::new(&secret(), id.clone()).expect("a member");
            self.members.push((id.clone(), member));
            self.send_relay(&id, first);
            id
        }

        fn send_relay(&mut self, from: &PeerId, msg: ClientMessage) {
            match self.ds.receive(from, msg, Instant::now()) {
                Ok(sends) => self.queue.extend(sends),
                Err(refusal) => self.queue.push_back((from.clone(), refusal.message())),
            }
        }

        fn member(&mut self, id: &PeerId) -> &mut ConferenceMember {
            &mut self
                .members
                .iter_mut()
                .find(|(m, _)| m == id)
                .expect("a member")
                .1
        }

        /// Delivers everything until nothing moves.
        fn settle(&mut self) {
            while let Some((to, msg)) = self.queue.pop_front() {
                if matches!(msg, ServerMessage::Error { .. }) {
                    self.refusals.push(msg.clone());
                }
                if !self.members.iter().any(|(m, _)| *m == to) {
                    continue;
                }
                let step = self.member(&to).handle(msg);
                for event in step.events {
                    match event {
                        ConferenceEvent::Epoch { epoch, code, .. } => {
                            self.epochs.push((to.clone(), epoch, code.digits()))
                        }
                        ConferenceEvent::Message { from, data } => {
                            self.heard.push((to.clone(), from, data))
                        }
                        other => panic!("{to:?}: {other:?}"),
                    }
                }
                for msg in step.send {
                    self.send_relay(&to.clone(), msg);
                }
            }
        }

        fn leave(&mut self, id: &PeerId) {
            self.members.retain(|(m, _)| m != id);
            let sends = self.ds.leave(id, Instant::now());
            self.queue.extend(sends);
        }

        /// Everyone is at `epoch` with one code.
        fn agree(&self, epoch: u64) -> String {
            let codes: Vec<String> = self
                .members
                .iter()
                .map(|(_, m)| {
                    assert_eq!(m.epoch(), Some(epoch));
                    m.member().group_code().expect("a code").digits()
                })
                .collect();
            assert!(codes.windows(2).all(|w| w[0] == w[1]), "{codes:?}");
            codes[0].clone()
        }
    }

    #[test]
    fn members_following_the_relay_join_leave_update_and_talk_in_one_group() {
        let mut w = World::new();
        let ada = w.join(1);
        w.settle();
        w.agree(0);
        let bea = w.join(2);
        let cy = w.join(3);
        w.settle();
        // Bea came in with Ada's first commit, Cy with the next.
        let first = w.agree(2);
        let dee = w.join(4);
        w.settle();
        assert_ne!(w.agree(3), first);
        // A message reaches everyone else, credited to its sender.
        let msg = w.member(&cy).send(b"hello").expect("sealed");
        w.send_relay(&cy.clone(), msg);
        w.settle();
        let heard: Vec<&PeerId> = w.heard.iter().map(|(to, _, _)| to).collect();
        assert_eq!(heard, [&ada, &bea, &dee]);
        assert!(
            w.heard
                .iter()
                .all(|(_, from, data)| *from == cy && data == b"hello")
        );
        // Two update at once: one wins, the other's is refused, one group remains.
        let a = w.member(&bea).update().expect("an update");
        let b = w.member(&dee).update().expect("an update");
        w.send_relay(&bea.clone(), a);
        w.send_relay(&dee.clone(), b);
        w.settle();
        w.agree(4);
        assert!(matches!(
            w.refusals.as_slice(),
            [ServerMessage::Error {
                code: ErrorCode::StaleEpoch,
                ..
            }]
        ));
        // Ada leaves: Bea, the oldest left, removes her.
        w.leave(&ada);
        w.settle();
        w.agree(5);
        assert_eq!(w.member(&bea).member().members().len(), 3);
        // And Dee updates again, whose last commit lost: nothing of hers stayed pending.
        let c = w.member(&dee).update().expect("no commit pending");
        w.send_relay(&dee.clone(), c);
        w.settle();
        w.agree(6);
    }
}
