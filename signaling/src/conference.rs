//! The relay as a conference's MLS delivery service, sans-IO (DESIGN §4.13): it sees a message's
//! kind, its epoch and its sender, never its content. Per conference it keeps one epoch, names
//! one member to commit each batch of joins and leaves (so that fifty members do not race),
//! accepts the first commit for the current epoch and refuses the rest (`stale-epoch`), and
//! says who gets each commit (every member, its sender included) and each Welcome (the
//! joiners). Room events, client messages and `now` go in; deliveries come out, each naming
//! whom it is for. The shell holds the sealed bytes and sends them; what the relay does with a
//! message never depends on them.
//!
//! [`Conference::receive`], [`Conference::leave`] and [`Conference::timeout`] speak the relay
//! messages of PROTOCOL.md §7.5; the methods under them speak [`Delivery`], which the tests
//! walk rule by rule.

use sotto_proto::{ClientMessage, ErrorCode, KeyPackageFrom, Payload, PeerId, ServerMessage};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a named committer has before the task goes to the next member too.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most joiners one commit adds (a commit and its Welcome must fit a relay frame).
pub const MAX_ADDS: usize = 8;

/// What the relay must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `to` is the only member: it creates the group (epoch 0).
    CreateGroup {
        /// The creator.
        to: PeerId,
    },
    /// `to` must commit, in `epoch`, these joiners (with their sealed KeyPackages) in and these
    /// leavers out.
    Task {
        /// The member named.
        to: PeerId,
        /// The epoch the commit is for.
        epoch: u64,
        /// Joiners, in arrival order, with their sealed KeyPackages.
        add: Vec<(PeerId, Payload)>,
        /// Leavers.
        remove: Vec<PeerId>,
    },
    /// The commit `from` made in `epoch` goes to each of `to` (its sender included).
    Commit {
        /// Every member at that epoch.
        to: Vec<PeerId>,
        /// Who made it.
        from: PeerId,
        /// The epoch it was made in.
        epoch: u64,
    },
    /// The commit's Welcome goes to each joiner it adds.
    Welcome {
        /// The joiners.
        to: Vec<PeerId>,
        /// Who made it.
        from: PeerId,
        /// The epoch it puts them in.
        epoch: u64,
    },
    /// The committer refused `to`'s KeyPackage: it cannot join (the shell closes it).
    Refused {
        /// The joiner turned away.
        to: PeerId,
    },
}

/// Why a client's conference message is refused (the relay answers with the error code; the
/// connection stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A commit for an epoch that is not the current one (another commit won it), or a
    /// message older than the previous epoch.
    StaleEpoch,
    /// A commit from a member not named for the current epoch's open task.
    NotCommitter,
    /// From someone who is not a member of the group.
    NotMember,
    /// A KeyPackage from a member or a second one; a commit's `refused` naming someone the task
    /// does not add, or a Welcome where none is due (or none where one is).
    BadMessage,
    /// A conference message in a room that is not a conference.
    NotConference,
}

impl Refusal {
    /// The `error` the sender gets (its connection stays).
    pub fn message(self) -> ServerMessage {
        let (code, text) = match self {
            Self::StaleEpoch => (
                ErrorCode::StaleEpoch,
                "not the group's current epoch: another commit came first",
            ),
            Self::NotCommitter => (
                ErrorCode::NotCommitter,
                "this member was not named to commit this epoch",
            ),
            Self::NotMember => (
                ErrorCode::NotMember,
                "not a member of this conference's group",
            ),
            Self::BadMessage => (
                ErrorCode::BadMessage,
                "this conference message does not fit the group's state",
            ),
            Self::NotConference => (
                ErrorCode::BadMessage,
                "conference messages belong in a conference (a link for 7 or more)",
            ),
        };
        ServerMessage::error(code, text)
    }
}

/// A relay message for one peer.
pub type Send = (PeerId, ServerMessage);

/// The open task: one commit the relay waits for.
#[derive(Debug)]
struct Task {
    epoch: u64,
    add: Vec<(PeerId, Payload)>,
    remove: Vec<PeerId>,
    /// The members named so far, in order; any of them may answer.
    named: Vec<PeerId>,
    deadline: Instant,
}

/// One conference's delivery service.
#[derive(Debug, Default)]
pub struct Conference {
    /// Everyone in the room, in the order they joined it (who is oldest decides who commits).
    room: Vec<PeerId>,
    /// The group's epoch, once someone created it.
    epoch: Option<u64>,
    /// Who the relay believes is in the group.
    roster: BTreeSet<PeerId>,
    /// Members who left the room and are still to be removed.
    gone: BTreeSet<PeerId>,
    /// Members who let a task time out: named last.
    skip: BTreeSet<PeerId>,
    /// Joiners' sealed KeyPackages, in arrival order, not yet in a task.
    pending: Vec<(PeerId, Payload)>,
    task: Option<Task>,
}

impl Conference {
    /// An empty conference.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client's conference message (`key-package`, `commit`, `group-message`): the relay
    /// messages it causes, each for one peer, or why it is refused.
    pub fn receive(
        &mut self,
        from: &PeerId,
        msg: ClientMessage,
        now: Instant,
    ) -> Result<Vec<Send>, Refusal> {
        match msg {
            ClientMessage::KeyPackage { data } => {
                Ok(messages(self.key_package(from, data, now)?, None, None))
            }
            ClientMessage::Commit {
                epoch,
                data,
                welcome,
                refused,
            } => {
                let out = self.commit(from, epoch, welcome.is_some(), &refused, now)?;
                Ok(messages(out, Some(&data), welcome.as_ref()))
            }
            ClientMessage::GroupMessage { epoch, data } => Ok(self
                .group_message(from, epoch)?
                .into_iter()
                .map(|to| {
                    let msg = ServerMessage::GroupMessage {
                        from: from.clone(),
                        epoch,
                        data: data.clone(),
                    };
                    (to, msg)
                })
                .collect()),
            _ => Err(Refusal::BadMessage),
        }
    }

    /// `peer` left the room: the relay messages that causes.
    pub fn leave(&mut self, peer: &PeerId, now: Instant) -> Vec<Send> {
        messages(self.left(peer, now), None, None)
    }

    /// The clock reached `now` (see [`Conference::poll_timeout`]): the relay messages that
    /// causes.
    pub fn timeout(&mut self, now: Instant) -> Vec<Send> {
        messages(self.handle_timeout(now), None, None)
    }

    /// Members still in the room.
    fn live(&self) -> impl Iterator<Item = &PeerId> {
        self.roster.iter().filter(|p| !self.gone.contains(p))
    }

    fn is_live(&self, peer: &PeerId) -> bool {
        self.roster.contains(peer) && !self.gone.contains(peer)
    }

    /// The oldest live member not yet named for the task, preferring those who never let one
    /// time out; if everyone was named, the oldest live member.
    fn pick(&self, named: &[PeerId]) -> Option<PeerId> {
        let live = |p: &&PeerId| self.is_live(p);
        let in_order = || self.room.iter().filter(live);
        in_order()
            .find(|p| !named.contains(p) && !self.skip.contains(p))
            .or_else(|| in_order().find(|p| !named.contains(p)))
            .or_else(|| in_order().next())
            .cloned()
    }

    /// Opens a task when none is open and there is something to commit.
    fn assign(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        let Some(epoch) = self.epoch else {
            return;
        };
        if self.task.is_some() || (self.pending.is_empty() && self.gone.is_empty()) {
            return;
        }
        let Some(committer) = self.pick(&[]) else {
            return;
        };
        let take = self.pending.len().min(MAX_ADDS);
        let task = Task {
            epoch,
            add: self.pending.drain(..take).collect(),
            remove: self.gone.iter().cloned().collect(),
            named: vec![committer],
            deadline: now + TASK_TIMEOUT,
        };
        out.push(task.delivery_to(&task.named[0]));
        self.task = Some(task);
    }

    /// `peer` entered the room.
    pub fn joined(&mut self, peer: PeerId) {
        if !self.room.contains(&peer) {
            self.room.push(peer);
        }
    }

    /// `peer` published its sealed KeyPackage. The first to do so in a conference with no
    /// group creates it.
    pub fn key_package(
        &mut self,
        peer: &PeerId,
        data: Payload,
        now: Instant,
    ) -> Result<Vec<Delivery>, Refusal> {
        let published = self.pending.iter().any(|(p, _)| p == peer)
            || self
                .task
                .as_ref()
                .is_some_and(|t| t.add.iter().any(|(p, _)| p == peer));
        if !self.room.contains(peer) || self.roster.contains(peer) || published {
            return Err(Refusal::BadMessage);
        }
        let mut out = Vec::new();
        if self.epoch.is_none() {
            self.epoch = Some(0);
            self.roster.insert(peer.clone());
            out.push(Delivery::CreateGroup { to: peer.clone() });
        } else {
            self.pending.push((peer.clone(), data));
            self.assign(now, &mut out);
        }
        Ok(out)
    }

    /// `from`'s commit for `epoch`; `has_welcome`: it came with a Welcome; `refused`: the
    /// joiners whose KeyPackage it would not add. The first commit for the current epoch from a
    /// member named for it wins.
    pub fn commit(
        &mut self,
        from: &PeerId,
        epoch: u64,
        has_welcome: bool,
        refused: &[PeerId],
        now: Instant,
    ) -> Result<Vec<Delivery>, Refusal> {
        if !self.is_live(from) {
            return Err(Refusal::NotMember);
        }
        if self.epoch != Some(epoch) {
            return Err(Refusal::StaleEpoch);
        }
        let Some(task) = self.task.as_ref() else {
            // No task open: a member may commit an update (it adds no one, so it has no
            // Welcome and refuses no one); the first for the epoch wins.
            if has_welcome || !refused.is_empty() {
                return Err(Refusal::BadMessage);
            }
            let recipients: Vec<PeerId> = self.live().cloned().collect();
            self.epoch = Some(epoch + 1);
            return Ok(vec![Delivery::Commit {
                to: recipients,
                from: from.clone(),
                epoch,
            }]);
        };
        if !task.named.contains(from) {
            return Err(Refusal::NotCommitter);
        }
        let adds: Vec<&PeerId> = task.add.iter().map(|(p, _)| p).collect();
        let distinct: BTreeSet<&PeerId> = refused.iter().collect();
        if distinct.len() != refused.len() || refused.iter().any(|r| !adds.contains(&r)) {
            return Err(Refusal::BadMessage);
        }
        let joiners: Vec<PeerId> = adds
            .into_iter()
            .filter(|p| !refused.contains(p))
            .cloned()
            .collect();
        // A Welcome exactly when someone joins.
        if has_welcome == joiners.is_empty() {
            return Err(Refusal::BadMessage);
        }
        let Some(task) = self.task.take() else {
            return Err(Refusal::NotCommitter);
        };
        let recipients: Vec<PeerId> = self.live().cloned().collect();
        self.epoch = Some(epoch + 1);
        for leaver in &task.remove {
            self.roster.remove(leaver);
            self.gone.remove(leaver);
            self.skip.remove(leaver);
        }
        for joiner in &joiners {
            self.roster.insert(joiner.clone());
            // A joiner who left while its commit was made leaves again at once.
            if !self.room.contains(joiner) {
                self.gone.insert(joiner.clone());
            }
        }
        let mut out = vec![Delivery::Commit {
            to: recipients,
            from: from.clone(),
            epoch,
        }];
        let present: Vec<PeerId> = joiners
            .into_iter()
            .filter(|j| self.room.contains(j))
            .collect();
        if !present.is_empty() {
            out.push(Delivery::Welcome {
                to: present,
                from: from.clone(),
                epoch: epoch + 1,
            });
        }
        out.extend(refused.iter().map(|r| Delivery::Refused { to: r.clone() }));
        self.assign(now, &mut out);
        Ok(out)
    }

    /// `from`'s application message for `epoch`: who it goes to (every other member).
    pub fn group_message(&self, from: &PeerId, epoch: u64) -> Result<Vec<PeerId>, Refusal> {
        if !self.is_live(from) {
            return Err(Refusal::NotMember);
        }
        let current = self.epoch.unwrap_or_default();
        if epoch != current && epoch + 1 != current {
            return Err(Refusal::StaleEpoch);
        }
        Ok(self.live().filter(|p| *p != from).cloned().collect())
    }

    /// `peer` left the room (hung up, lost, swept).
    pub fn left(&mut self, peer: &PeerId, now: Instant) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.room.retain(|p| p != peer);
        self.pending.retain(|(p, _)| p != peer);
        if self.roster.contains(peer) {
            self.gone.insert(peer.clone());
        }
        if self.live().next().is_none() {
            // No member left to commit: the group is gone; the joiners waiting (in the open
            // task first) start another, the first of them creating it.
            let mut waiting: Vec<(PeerId, Payload)> =
                self.task.take().map(|t| t.add).unwrap_or_default();
            waiting.append(&mut self.pending);
            waiting.retain(|(p, _)| self.room.contains(p));
            self.epoch = None;
            self.roster.clear();
            self.gone.clear();
            self.skip.clear();
            self.task = None;
            if let Some((first, _)) = waiting.first() {
                self.epoch = Some(0);
                self.roster.insert(first.clone());
                out.push(Delivery::CreateGroup { to: first.clone() });
                self.pending = waiting.into_iter().skip(1).collect();
            }
            self.assign(now, &mut out);
            return out;
        }
        // The member named last is gone: the task goes on to the next at once.
        if self
            .task
            .as_ref()
            .is_some_and(|t| t.named.last() == Some(peer))
        {
            self.name_next(now, &mut out);
        }
        self.assign(now, &mut out);
        out
    }

    /// Names one more member for the open task.
    fn name_next(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        let Some(named) = self.task.as_ref().map(|t| t.named.clone()) else {
            return;
        };
        let Some(next) = self.pick(&named) else {
            return;
        };
        if let Some(task) = self.task.as_mut() {
            task.named.push(next.clone());
            task.deadline = now + TASK_TIMEOUT;
            out.push(task.delivery_to(&next));
        }
    }

    /// When [`Conference::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.task.as_ref().map(|t| t.deadline)
    }

    /// The clock reached `now`: a task whose committer stayed silent goes to the next member
    /// as well (whichever commit comes first wins).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Delivery> {
        let mut out = Vec::new();
        let stalled = self
            .task
            .as_ref()
            .filter(|t| t.deadline <= now)
            .and_then(|t| t.named.last().cloned());
        if let Some(stalled) = stalled {
            self.skip.insert(stalled);
            self.name_next(now, &mut out);
        }
        out
    }
}

/// The relay messages for `deliveries`; `commit` and `welcome` are the sealed bytes of the
/// commit being delivered, if one is.
fn messages(
    deliveries: Vec<Delivery>,
    commit: Option<&Payload>,
    welcome: Option<&Payload>,
) -> Vec<Send> {
    let mut out = Vec::new();
    for delivery in deliveries {
        match delivery {
            Delivery::CreateGroup { to } => out.push((to, ServerMessage::CreateGroup)),
            Delivery::Task {
                to,
                epoch,
                add,
                remove,
            } => {
                let add = add
                    .into_iter()
                    .map(|(peer, data)| KeyPackageFrom { peer, data })
                    .collect();
                out.push((to, ServerMessage::CommitTask { epoch, add, remove }));
            }
            Delivery::Commit { to, from, epoch } => {
                // `Commit` comes only out of `commit`, which has its bytes.
                let Some(data) = commit else { continue };
                out.extend(to.into_iter().map(|to| {
                    let msg = ServerMessage::Commit {
                        from: from.clone(),
                        epoch,
                        data: data.clone(),
                    };
                    (to, msg)
                }));
            }
            Delivery::Welcome { to, from, epoch } => {
                let Some(data) = welcome else { continue };
                out.extend(to.into_iter().map(|to| {
                    let msg = ServerMessage::GroupWelcome {
                        from: from.clone(),
                        epoch,
                        data: data.clone(),
                    };
                    (to, msg)
                }));
            }
            Delivery::Refused { to } => out.push((
                to,
                ServerMessage::error(
                    ErrorCode::RefusedByGroup,
                    "the member adding you refused your key package: you cannot join this \
                     conference",
                ),
            )),
        }
    }
    out
}

impl Task {
    fn delivery_to(&self, to: &PeerId) -> Delivery {
        Delivery::Task {
            to: to.clone(),
            epoch: self.epoch,
            add: self.add.clone(),
            remove: self.remove.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
