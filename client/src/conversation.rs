//! Messages and files with one peer over the pair's data channel (PROTOCOL.md §3.6), sans-IO:
//! sealed bytes from the channel and the user's requests go in; sealed bytes for the channel
//! and events for the user come out. The shell owns the files: it reads an outgoing file one
//! chunk at a time when [`Conversation::wants_chunk`] asks (and the channel's buffer has room),
//! and writes each incoming chunk where [`Event::FileData`] says. Hashing, ids, the transfer
//! rules and every check of the peer's messages live here.

use sha2::{Digest, Sha256};
use sotto_e2ee::data::{MAX_CHUNK, MAX_TEXT};
use sotto_e2ee::{DataChannel, DataMessage, Error as E2eeError, StopReason};
use sotto_proto::safe_file_name;
use std::collections::{HashMap, VecDeque};

/// How many offered or incoming files the receiver keeps under way at once (PROTOCOL.md §3.6).
pub const MAX_INCOMING: usize = 16;
/// Ids of finished or stopped files remembered, so messages that crossed a stop are ignored.
const ENDED_MEMORY: usize = 64;
/// Texts remembered until their receipt arrives.
const PENDING_TEXTS: usize = 1024;

/// Which way a file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We send it.
    Outgoing,
    /// The peer sends it.
    Incoming,
}

/// Who stopped a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// This side (the user, or this program's checks).
    Us,
    /// The peer.
    Peer,
}

/// What the user learns. Texts and names are the peer's: shown as text, never interpreted.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// A text arrived (its receipt is already on its way back).
    Text { id: u32, text: String },
    /// Our text `id` arrived.
    Delivered { id: u32 },
    /// The peer offers a file (`name` already made safe). `accepted`: taken at once (under
    /// the threshold); otherwise the user decides with [`Conversation::accept`] or
    /// [`Conversation::cancel`].
    FileOffered {
        id: u32,
        name: String,
        size: u64,
        accepted: bool,
    },
    /// Bytes of incoming file `id` to write at `offset`.
    FileData { id: u32, offset: u64, data: Vec<u8> },
    /// Progress of a file either way.
    FileProgress {
        id: u32,
        direction: Direction,
        done: u64,
        size: u64,
    },
    /// Incoming file `id` is complete and its SHA-256 matched: present it.
    FileReceived { id: u32 },
    /// Our file `id` arrived whole at the peer.
    FileDelivered { id: u32 },
    /// A transfer stopped; an incoming file's partial content must be discarded.
    FileStopped {
        id: u32,
        direction: Direction,
        by: By,
        reason: StopReason,
    },
    /// Whether the peer's microphone and camera are on now (until this comes, both are).
    PeerMedia { microphone: bool, camera: bool },
    /// The peer sent a message that breaks the rules (the text says which); it was dropped.
    PeerError(String),
    /// A message did not open: the channel is closed for good ("messages tampered with"); the
    /// call goes on.
    Tampered(String),
}

/// Shows no text, name or data.
impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text { id, text } => write!(f, "Text({id}, {} bytes)", text.len()),
            Self::FileOffered {
                id, size, accepted, ..
            } => {
                write!(f, "FileOffered({id}, {size} bytes, accepted {accepted})")
            }
            Self::FileData { id, offset, data } => {
                write!(f, "FileData({id}, at {offset}, {} bytes)", data.len())
            }
            Self::Delivered { id } => write!(f, "Delivered({id})"),
            Self::FileProgress {
                id,
                direction,
                done,
                size,
            } => {
                write!(f, "FileProgress({id}, {direction:?}, {done}/{size})")
            }
            Self::FileReceived { id } => write!(f, "FileReceived({id})"),
            Self::FileDelivered { id } => write!(f, "FileDelivered({id})"),
            Self::FileStopped {
                id,
                direction,
                by,
                reason,
            } => {
                write!(f, "FileStopped({id}, {direction:?}, {by:?}, {reason:?})")
            }
            Self::PeerMedia { microphone, camera } => {
                write!(f, "PeerMedia(microphone {microphone}, camera {camera})")
            }
            Self::PeerError(e) => write!(f, "PeerError({e})"),
            Self::Tampered(e) => write!(f, "Tampered({e})"),
        }
    }
}

/// What comes out of the conversation, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these sealed bytes on the data channel.
    Send(Vec<u8>),
    /// Tell the user.
    Event(Event),
    /// Close the data channel: it was tampered with.
    CloseChannel,
}

/// A request this side cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Empty, or longer than 4096 bytes.
    TextLength,
    /// The name is empty or longer than 255 bytes.
    NameLength,
    /// No file `id` that this request applies to.
    NoSuchFile(u32),
    /// The channel was closed after tampering.
    ChannelClosed,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TextLength => write!(f, "a message is 1 to {MAX_TEXT} bytes"),
            Self::NameLength => f.write_str("a file name is 1 to 255 bytes"),
            Self::NoSuchFile(id) => write!(f, "no file {id} to do that with"),
            Self::ChannelClosed => f.write_str("messages are off: the channel was tampered with"),
        }
    }
}

/// Limits of what this side receives.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Files up to this size are accepted without asking.
    pub accept_below: u64,
    /// Files above this size are declined as too large.
    pub max_size: u64,
}

/// A file we send, by what it waits for.
enum Outgoing {
    /// The peer has not answered the offer.
    AwaitingAnswer { size: u64 },
    /// Accepted: chunks go out from `sent`.
    Sending { size: u64, sent: u64, hash: Sha256 },
    /// Everything is sent; waits for the peer's `file-received`.
    AwaitingReceipt,
}

/// A file the peer sends, by what it waits for.
enum Incoming {
    /// Offered; waits for the user's decision.
    AwaitingDecision { size: u64 },
    /// Accepted: waits for chunks at `received`, then for `file-end`.
    Receiving {
        size: u64,
        received: u64,
        hash: Sha256,
    },
}

/// One pair's messages and files.
pub struct Conversation {
    channel: Option<DataChannel>,
    limits: Limits,
    next_text: u32,
    next_file: u32,
    pending_texts: VecDeque<u32>,
    outgoing: HashMap<u32, Outgoing>,
    incoming: HashMap<u32, Incoming>,
    ended_outgoing: VecDeque<u32>,
    ended_incoming: VecDeque<u32>,
}

fn remember(ring: &mut VecDeque<u32>, id: u32, cap: usize) {
    if ring.len() == cap {
        ring.pop_front();
    }
    ring.push_back(id);
}

impl Conversation {
    /// A conversation over this sealed channel.
    pub fn new(channel: DataChannel, limits: Limits) -> Self {
        Self {
            channel: Some(channel),
            limits,
            next_text: 0,
            next_file: 0,
            pending_texts: VecDeque::new(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            ended_outgoing: VecDeque::new(),
            ended_incoming: VecDeque::new(),
        }
    }

    /// Whether the channel still works (it closes for good after tampering).
    pub fn is_open(&self) -> bool {
        self.channel.is_some()
    }

    fn send(&mut self, msg: &DataMessage, out: &mut Vec<Output>) -> Result<(), Refused> {
        let channel = self.channel.as_mut().ok_or(Refused::ChannelClosed)?;
        // Every message built here is within the limits encode() checks (callers check user
        // input first), and a channel never runs out of its 2^64 sequence numbers.
        match msg.encode().and_then(|plain| channel.seal(&plain)) {
            Ok(bytes) => {
                out.push(Output::Send(bytes));
                Ok(())
            }
            Err(_) => Err(Refused::ChannelClosed),
        }
    }

    /// Tells the peer whether this side's microphone and camera are on (PROTOCOL.md §3.6).
    pub fn send_media_state(
        &mut self,
        microphone: bool,
        camera: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), Refused> {
        self.send(&DataMessage::MediaState { microphone, camera }, out)
    }

    /// Sends a text; returns its id (for the later [`Event::Delivered`]).
    pub fn send_text(&mut self, text: &str, out: &mut Vec<Output>) -> Result<u32, Refused> {
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err(Refused::TextLength);
        }
        let id = self.next_text;
        self.send(
            &DataMessage::Text {
                id,
                text: text.to_owned(),
            },
            out,
        )?;
        self.next_text = self.next_text.wrapping_add(1);
        remember(&mut self.pending_texts, id, PENDING_TEXTS);
        Ok(id)
    }

    /// Offers a file of `size` bytes called `name`; returns its id. Its chunks are asked for
    /// once the peer accepts.
    pub fn offer_file(
        &mut self,
        name: &str,
        size: u64,
        out: &mut Vec<Output>,
    ) -> Result<u32, Refused> {
        if name.is_empty() || name.len() > 255 {
            return Err(Refused::NameLength);
        }
        let id = self.next_file;
        self.send(
            &DataMessage::FileOffer {
                id,
                size,
                name: name.to_owned(),
            },
            out,
        )?;
        self.next_file = self.next_file.wrapping_add(1);
        self.outgoing.insert(id, Outgoing::AwaitingAnswer { size });
        Ok(id)
    }

    /// The next chunk the shell should read and hand to [`Conversation::send_chunk`]: file id,
    /// offset and the most bytes to read. `None` while nothing is accepted and unsent.
    pub fn wants_chunk(&self) -> Option<(u32, u64, usize)> {
        self.outgoing
            .iter()
            .filter_map(|(&id, o)| match o {
                Outgoing::Sending { size, sent, .. } => {
                    let left = size - sent;
                    Some((
                        id,
                        *sent,
                        usize::try_from(left).unwrap_or(MAX_CHUNK).min(MAX_CHUNK),
                    ))
                }
                _ => None,
            })
            .min_by_key(|&(id, ..)| id)
    }

    /// Sends the next chunk of file `id` (exactly what [`Conversation::wants_chunk`] asked for,
    /// or less); after its last byte, the file's end with its SHA-256.
    pub fn send_chunk(
        &mut self,
        id: u32,
        data: &[u8],
        out: &mut Vec<Output>,
    ) -> Result<(), Refused> {
        let Some(Outgoing::Sending { size, sent, hash }) = self.outgoing.get_mut(&id) else {
            return Err(Refused::NoSuchFile(id));
        };
        let (size, offset) = (*size, *sent);
        let len = data.len() as u64;
        if data.is_empty() || data.len() > MAX_CHUNK || len > size - offset {
            // The file changed under us (it grew, or shrank and we got nothing): stop it.
            self.stop_outgoing(id, StopReason::CouldNotStore, out);
            return Err(Refused::NoSuchFile(id));
        }
        hash.update(data);
        *sent += len;
        let done = *sent;
        self.send(
            &DataMessage::FileChunk {
                id,
                offset,
                data: data.to_vec(),
            },
            out,
        )?;
        out.push(Output::Event(Event::FileProgress {
            id,
            direction: Direction::Outgoing,
            done,
            size,
        }));
        if done == size {
            self.finish_sending(id, out)?;
        }
        Ok(())
    }

    /// The shell could not read file `id` any further (it vanished, a read failed): stop it.
    pub fn sending_failed(&mut self, id: u32, out: &mut Vec<Output>) {
        self.stop_outgoing(id, StopReason::CouldNotStore, out);
    }

    fn finish_sending(&mut self, id: u32, out: &mut Vec<Output>) -> Result<(), Refused> {
        if let Some(Outgoing::Sending { hash, .. }) =
            self.outgoing.insert(id, Outgoing::AwaitingReceipt)
        {
            let sha256 = hash.finalize().into();
            self.send(&DataMessage::FileEnd { id, sha256 }, out)?;
        }
        Ok(())
    }

    /// The user takes incoming file `id`.
    pub fn accept(&mut self, id: u32, out: &mut Vec<Output>) -> Result<(), Refused> {
        let Some(Incoming::AwaitingDecision { size }) = self.incoming.get(&id) else {
            return Err(Refused::NoSuchFile(id));
        };
        let size = *size;
        self.send(&DataMessage::FileAccept { id }, out)?;
        self.incoming.insert(
            id,
            Incoming::Receiving {
                size,
                received: 0,
                hash: Sha256::new(),
            },
        );
        if size == 0 {
            out.push(Output::Event(Event::FileProgress {
                id,
                direction: Direction::Incoming,
                done: 0,
                size,
            }));
        }
        Ok(())
    }

    /// The user stops file `id`: one we send (`file-abort`) or one the peer sends or offers
    /// (`file-decline`).
    pub fn cancel(
        &mut self,
        id: u32,
        direction: Direction,
        out: &mut Vec<Output>,
    ) -> Result<(), Refused> {
        match direction {
            Direction::Outgoing if self.outgoing.contains_key(&id) => {
                self.stop_outgoing(id, StopReason::Cancelled, out);
                Ok(())
            }
            Direction::Incoming if self.incoming.contains_key(&id) => {
                self.stop_incoming(id, StopReason::Cancelled, out);
                Ok(())
            }
            _ => Err(Refused::NoSuchFile(id)),
        }
    }

    fn stop_outgoing(&mut self, id: u32, reason: StopReason, out: &mut Vec<Output>) {
        if self.outgoing.remove(&id).is_some() {
            remember(&mut self.ended_outgoing, id, ENDED_MEMORY);
            let _ = self.send(&DataMessage::FileAbort { id, reason }, out);
            out.push(Output::Event(Event::FileStopped {
                id,
                direction: Direction::Outgoing,
                by: By::Us,
                reason,
            }));
        }
    }

    fn stop_incoming(&mut self, id: u32, reason: StopReason, out: &mut Vec<Output>) {
        self.incoming.remove(&id);
        remember(&mut self.ended_incoming, id, ENDED_MEMORY);
        let _ = self.send(&DataMessage::FileDecline { id, reason }, out);
        out.push(Output::Event(Event::FileStopped {
            id,
            direction: Direction::Incoming,
            by: By::Us,
            reason,
        }));
    }

    /// Bytes from the data channel.
    pub fn receive(&mut self, bytes: &[u8], out: &mut Vec<Output>) {
        let Some(channel) = self.channel.as_mut() else {
            return; // closed after tampering: nothing more is read
        };
        let plain = match channel.open(bytes) {
            Ok(plain) => plain,
            Err(e) => return self.tampered(e.to_string(), out),
        };
        match DataMessage::decode(&plain) {
            Ok(msg) => self.handle(msg, out),
            Err(E2eeError::MessageMalformed(fault)) => {
                out.push(Output::Event(Event::PeerError(format!(
                    "the other side sent a bad message ({fault}); it was dropped"
                ))));
            }
            Err(e) => out.push(Output::Event(Event::PeerError(e.to_string()))),
        }
    }

    /// A text frame on the data channel: never sealed, so never accepted (PROTOCOL.md §3.6):
    /// the same as a message that does not open.
    pub fn receive_unsealed(&mut self, out: &mut Vec<Output>) {
        if self.channel.is_some() {
            self.tampered(
                "messages tampered with (a text frame, which is never sealed)".into(),
                out,
            );
        }
    }

    /// The channel is closed for good and nothing half-received is presented: every file
    /// under way, either way, is dropped.
    fn tampered(&mut self, why: String, out: &mut Vec<Output>) {
        self.channel = None;
        out.push(Output::CloseChannel);
        out.push(Output::Event(Event::Tampered(why)));
        let incoming: Vec<u32> = self.incoming.keys().copied().collect();
        let outgoing: Vec<u32> = self.outgoing.keys().copied().collect();
        for id in incoming {
            self.stopped_by_peer(id, Direction::Incoming, StopReason::ProtocolViolation, out);
        }
        for id in outgoing {
            self.stopped_by_peer(id, Direction::Outgoing, StopReason::ProtocolViolation, out);
        }
    }

    fn peer_broke_rules(
        &mut self,
        id: u32,
        direction: Direction,
        what: &str,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Event(Event::PeerError(format!(
            "the other side broke the file rules: {what}"
        ))));
        // Only a file this side knows is stopped; an id it never saw is reported, nothing more.
        match direction {
            Direction::Incoming if self.incoming.contains_key(&id) => {
                self.stop_incoming(id, StopReason::ProtocolViolation, out);
            }
            Direction::Incoming => {}
            Direction::Outgoing => self.stop_outgoing(id, StopReason::ProtocolViolation, out),
        }
    }

    fn handle(&mut self, msg: DataMessage, out: &mut Vec<Output>) {
        match msg {
            DataMessage::Text { id, text } => {
                let _ = self.send(&DataMessage::Delivered { id }, out);
                out.push(Output::Event(Event::Text { id, text }));
            }
            DataMessage::Delivered { id } => {
                if let Some(at) = self.pending_texts.iter().position(|&t| t == id) {
                    self.pending_texts.remove(at);
                    out.push(Output::Event(Event::Delivered { id }));
                } else {
                    out.push(Output::Event(Event::PeerError(format!(
                        "a receipt for message {id}, which was never sent"
                    ))));
                }
            }
            DataMessage::FileOffer { id, size, name } => self.offered(id, size, &name, out),
            DataMessage::FileAccept { id } => match self.outgoing.get(&id) {
                Some(Outgoing::AwaitingAnswer { size }) => {
                    let size = *size;
                    self.outgoing.insert(
                        id,
                        Outgoing::Sending {
                            size,
                            sent: 0,
                            hash: Sha256::new(),
                        },
                    );
                    if size == 0 {
                        let _ = self.finish_sending(id, out);
                    }
                }
                _ if self.ended_outgoing.contains(&id) => {}
                _ => self.peer_broke_rules(
                    id,
                    Direction::Outgoing,
                    "an accept for a file not offered",
                    out,
                ),
            },
            DataMessage::FileChunk { id, offset, data } => self.chunk(id, offset, data, out),
            DataMessage::FileEnd { id, sha256 } => self.end(id, sha256, out),
            DataMessage::FileReceived { id } => match self.outgoing.get(&id) {
                Some(Outgoing::AwaitingReceipt) => {
                    self.outgoing.remove(&id);
                    remember(&mut self.ended_outgoing, id, ENDED_MEMORY);
                    out.push(Output::Event(Event::FileDelivered { id }));
                }
                _ if self.ended_outgoing.contains(&id) => {}
                _ => self.peer_broke_rules(
                    id,
                    Direction::Outgoing,
                    "a receipt for a file not sent",
                    out,
                ),
            },
            DataMessage::FileAbort { id, reason } => {
                self.stopped_by_peer(id, Direction::Incoming, reason, out);
            }
            DataMessage::FileDecline { id, reason } => {
                self.stopped_by_peer(id, Direction::Outgoing, reason, out);
            }
            DataMessage::MediaState { microphone, camera } => {
                out.push(Output::Event(Event::PeerMedia { microphone, camera }));
            }
        }
    }

    /// The peer ended file `id` (or broke the channel): forgotten, remembered as ended, told.
    /// Nothing happens for a file this side does not have under way.
    fn stopped_by_peer(
        &mut self,
        id: u32,
        direction: Direction,
        reason: StopReason,
        out: &mut Vec<Output>,
    ) {
        let (had, ended) = match direction {
            Direction::Incoming => (
                self.incoming.remove(&id).is_some(),
                &mut self.ended_incoming,
            ),
            Direction::Outgoing => (
                self.outgoing.remove(&id).is_some(),
                &mut self.ended_outgoing,
            ),
        };
        if had {
            remember(ended, id, ENDED_MEMORY);
            out.push(Output::Event(Event::FileStopped {
                id,
                direction,
                by: By::Peer,
                reason,
            }));
        }
    }

    fn offered(&mut self, id: u32, size: u64, name: &str, out: &mut Vec<Output>) {
        if self.incoming.contains_key(&id) || self.ended_incoming.contains(&id) {
            out.push(Output::Event(Event::PeerError(format!(
                "file {id} offered twice; the second offer was dropped"
            ))));
            return;
        }
        let name = safe_file_name(name);
        let refused = if self.incoming.len() >= MAX_INCOMING {
            Some(StopReason::TooManyFiles)
        } else if size > self.limits.max_size {
            Some(StopReason::TooLarge)
        } else {
            None
        };
        if let Some(reason) = refused {
            remember(&mut self.ended_incoming, id, ENDED_MEMORY);
            out.push(Output::Event(Event::FileOffered {
                id,
                name,
                size,
                accepted: false,
            }));
            let _ = self.send(&DataMessage::FileDecline { id, reason }, out);
            out.push(Output::Event(Event::FileStopped {
                id,
                direction: Direction::Incoming,
                by: By::Us,
                reason,
            }));
            return;
        }
        self.incoming
            .insert(id, Incoming::AwaitingDecision { size });
        let accepted = size <= self.limits.accept_below;
        out.push(Output::Event(Event::FileOffered {
            id,
            name,
            size,
            accepted,
        }));
        if accepted {
            let _ = self.accept(id, out);
        }
    }

    fn chunk(&mut self, id: u32, offset: u64, data: Vec<u8>, out: &mut Vec<Output>) {
        let Some(Incoming::Receiving {
            size,
            received,
            hash,
        }) = self.incoming.get_mut(&id)
        else {
            if !self.ended_incoming.contains(&id) {
                self.peer_broke_rules(
                    id,
                    Direction::Incoming,
                    "a chunk of a file not accepted",
                    out,
                );
            }
            return;
        };
        let len = data.len() as u64;
        if offset != *received {
            return self.peer_broke_rules(
                id,
                Direction::Incoming,
                "a chunk at the wrong offset",
                out,
            );
        }
        if len > *size - *received {
            return self.peer_broke_rules(
                id,
                Direction::Incoming,
                "a chunk past the announced size",
                out,
            );
        }
        hash.update(&data);
        *received += len;
        let (done, size) = (*received, *size);
        out.push(Output::Event(Event::FileData { id, offset, data }));
        out.push(Output::Event(Event::FileProgress {
            id,
            direction: Direction::Incoming,
            done,
            size,
        }));
    }

    fn end(&mut self, id: u32, sha256: [u8; 32], out: &mut Vec<Output>) {
        match self.incoming.get(&id) {
            Some(Incoming::Receiving { size, received, .. }) if received == size => {}
            Some(Incoming::Receiving { .. }) => {
                return self.peer_broke_rules(
                    id,
                    Direction::Incoming,
                    "the end of a file before all of it",
                    out,
                );
            }
            _ if self.ended_incoming.contains(&id) => return,
            _ => {
                return self.peer_broke_rules(
                    id,
                    Direction::Incoming,
                    "the end of a file not accepted",
                    out,
                );
            }
        }
        let Some(Incoming::Receiving { hash, .. }) = self.incoming.remove(&id) else {
            return; // matched just above
        };
        remember(&mut self.ended_incoming, id, ENDED_MEMORY);
        let got: [u8; 32] = hash.finalize().into();
        if got == sha256 {
            let _ = self.send(&DataMessage::FileReceived { id }, out);
            out.push(Output::Event(Event::FileReceived { id }));
        } else {
            let _ = self.send(
                &DataMessage::FileDecline {
                    id,
                    reason: StopReason::IntegrityFailed,
                },
                out,
            );
            out.push(Output::Event(Event::FileStopped {
                id,
                direction: Direction::Incoming,
                by: By::Us,
                reason: StopReason::IntegrityFailed,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};

    const LIMITS: Limits = Limits {
        accept_below: 100_000,
        max_size: 10_000_000,
    };

    fn channels() -> (DataChannel, DataChannel) {
        let secret = LinkSecret::from_bytes([7; 32]);
        let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes([1; 32]));
        let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes([2; 32]));
        let Received::Reply(key) = a.receive(&commit).unwrap() else {
            panic!("KEY")
        };
        let Received::KeysReady {
            reply: Some(reveal),
        } = o.receive(&key).unwrap()
        else {
            panic!("REVEAL")
        };
        a.receive(&reveal).unwrap();
        a.receive(&o.seal(b"offer").unwrap()).unwrap();
        o.receive(&a.seal(b"answer").unwrap()).unwrap();
        (
            o.data_channel("fp o", "fp a").unwrap(),
            a.data_channel("fp o", "fp a").unwrap(),
        )
    }

    fn pair() -> (Conversation, Conversation) {
        let (o, a) = channels();
        (Conversation::new(o, LIMITS), Conversation::new(a, LIMITS))
    }

    /// Hands every Send of `out` to `to`; returns the events of `out` and what `to` produced.
    fn deliver(out: Vec<Output>, to: &mut Conversation) -> (Vec<Event>, Vec<Output>) {
        let mut events = Vec::new();
        let mut reply = Vec::new();
        for o in out {
            match o {
                Output::Send(bytes) => to.receive(&bytes, &mut reply),
                Output::Event(e) => events.push(e),
                Output::CloseChannel => {}
            }
        }
        (events, reply)
    }

    fn events(out: &[Output]) -> Vec<Event> {
        out.iter()
            .filter_map(|o| {
                if let Output::Event(e) = o {
                    Some(e.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Runs the sender's file to the end: reads from `content` whenever asked, delivering
    /// everything both ways; returns the receiver's and the sender's events.
    fn run(
        tx: &mut Conversation,
        rx: &mut Conversation,
        content: &[u8],
        first: Vec<Output>,
    ) -> (Vec<Event>, Vec<Event>) {
        let (mut tx_events, mut rx_events) = (Vec::new(), Vec::new());
        let mut to_rx = first;
        loop {
            let (e, to_tx) = deliver(std::mem::take(&mut to_rx), rx);
            tx_events.extend(e);
            let (e, more) = deliver(to_tx, tx);
            rx_events.extend(e);
            to_rx = more;
            if to_rx.is_empty() {
                match tx.wants_chunk() {
                    Some((id, offset, max)) => {
                        let at = usize::try_from(offset).unwrap();
                        let end = (at + max).min(content.len());
                        tx.send_chunk(id, &content[at..end], &mut to_rx).unwrap();
                    }
                    None => break,
                }
            }
        }
        (rx_events, tx_events)
    }

    fn received_bytes(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            if let Event::FileData { offset, data, .. } = e {
                assert_eq!(*offset as usize, out.len());
                out.extend_from_slice(data);
            }
        }
        out
    }

    #[test]
    fn microphone_and_camera_states_reach_the_peer_with_no_answer() {
        let (mut o, mut a) = pair();
        let mut out = Vec::new();
        o.send_media_state(false, true, &mut out).unwrap();
        let (_, reply) = deliver(out, &mut a);
        assert_eq!(
            reply,
            vec![Output::Event(Event::PeerMedia {
                microphone: false,
                camera: true
            })]
        );
    }

    #[test]
    fn texts_go_both_ways_and_come_back_as_delivered() {
        let (mut o, mut a) = pair();
        let mut out = Vec::new();
        let id = o.send_text("hello <b>there</b>", &mut out).unwrap();
        let (_, reply) = deliver(out.clone(), &mut a);
        assert_eq!(
            events(&reply),
            vec![Event::Text {
                id,
                text: "hello <b>there</b>".into()
            }]
        );
        let (_, back) = deliver(reply, &mut o);
        assert_eq!(events(&back), vec![Event::Delivered { id }]);
        let mut out = Vec::new();
        let id2 = a.send_text("hi", &mut out).unwrap();
        let (_, reply) = deliver(out, &mut o);
        assert_eq!(
            events(&reply),
            vec![Event::Text {
                id: id2,
                text: "hi".into()
            }]
        );
        assert_eq!(o.send_text("", &mut Vec::new()), Err(Refused::TextLength));
        assert_eq!(
            o.send_text(&"x".repeat(MAX_TEXT + 1), &mut Vec::new()),
            Err(Refused::TextLength)
        );
    }

    #[test]
    fn a_small_file_is_taken_at_once_arrives_whole_and_is_reported_delivered() {
        let (mut o, mut a) = pair();
        let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let mut out = Vec::new();
        let id = o
            .offer_file("notes.txt", content.len() as u64, &mut out)
            .unwrap();
        let (rx, tx) = run(&mut o, &mut a, &content, out);
        assert_eq!(
            rx[0],
            Event::FileOffered {
                id,
                name: "notes.txt".into(),
                size: 50_000,
                accepted: true
            }
        );
        assert_eq!(received_bytes(&rx), content);
        assert_eq!(rx.last(), Some(&Event::FileReceived { id }));
        assert!(rx.contains(&Event::FileProgress {
            id,
            direction: Direction::Incoming,
            done: 50_000,
            size: 50_000
        }));
        assert_eq!(tx.last(), Some(&Event::FileDelivered { id }));
        assert!(tx.contains(&Event::FileProgress {
            id,
            direction: Direction::Outgoing,
            done: 50_000,
            size: 50_000
        }));
        assert_eq!(o.wants_chunk(), None);
    }

    #[test]
    fn an_empty_file_has_no_chunks_and_still_arrives() {
        let (mut o, mut a) = pair();
        let mut out = Vec::new();
        let id = o.offer_file("empty", 0, &mut out).unwrap();
        let (rx, tx) = run(&mut o, &mut a, &[], out);
        assert!(rx.contains(&Event::FileReceived { id }));
        assert_eq!(tx.last(), Some(&Event::FileDelivered { id }));
    }

    #[test]
    fn a_large_file_waits_for_the_receiver_who_may_take_it_or_decline_it() {
        let (mut o, mut a) = pair();
        let mut out = Vec::new();
        let id = o.offer_file("big.bin", 200_000, &mut out).unwrap();
        let (_, reply) = deliver(out, &mut a);
        assert_eq!(
            events(&reply),
            vec![Event::FileOffered {
                id,
                name: "big.bin".into(),
                size: 200_000,
                accepted: false
            }]
        );
        assert_eq!(o.wants_chunk(), None, "nothing is sent before the answer");
        let mut out = Vec::new();
        a.accept(id, &mut out).unwrap();
        deliver(out, &mut o);
        assert_eq!(o.wants_chunk(), Some((id, 0, MAX_CHUNK)));
        // A second file, declined.
        let mut out = Vec::new();
        let id2 = o.offer_file("other.bin", 300_000, &mut out).unwrap();
        deliver(out, &mut a);
        let mut out = Vec::new();
        a.cancel(id2, Direction::Incoming, &mut out).unwrap();
        let (_, back) = deliver(out, &mut o);
        assert_eq!(
            events(&back),
            vec![Event::FileStopped {
                id: id2,
                direction: Direction::Outgoing,
                by: By::Peer,
                reason: StopReason::Cancelled
            }]
        );
        assert_eq!(o.wants_chunk().map(|c| c.0), Some(id));
    }

    #[test]
    fn either_side_cancels_midway_and_nothing_half_received_is_presented() {
        for sender_cancels in [true, false] {
            let (mut o, mut a) = pair();
            let mut out = Vec::new();
            let id = o.offer_file("f", 64_000, &mut out).unwrap();
            let (mut rx_events, to_tx) = (Vec::new(), deliver(out, &mut a).1);
            deliver(to_tx, &mut o);
            for _ in 0..2 {
                let (_, offset, max) = o.wants_chunk().unwrap();
                let mut out = Vec::new();
                o.send_chunk(id, &vec![1; max], &mut out).unwrap();
                assert_eq!(offset % MAX_CHUNK as u64, 0);
                let (_, reply) = deliver(out, &mut a);
                rx_events.extend(events(&reply));
            }
            let mut out = Vec::new();
            if sender_cancels {
                o.cancel(id, Direction::Outgoing, &mut out).unwrap();
                let (_, reply) = deliver(out, &mut a);
                rx_events.extend(events(&reply));
                assert!(rx_events.contains(&Event::FileStopped {
                    id,
                    direction: Direction::Incoming,
                    by: By::Peer,
                    reason: StopReason::Cancelled
                }));
            } else {
                a.cancel(id, Direction::Incoming, &mut out).unwrap();
                rx_events.extend(events(&out));
                let (_, back) = deliver(out, &mut o);
                assert_eq!(
                    events(&back),
                    vec![Event::FileStopped {
                        id,
                        direction: Direction::Outgoing,
                        by: By::Peer,
                        reason: StopReason::Cancelled
                    }]
                );
            }
            assert!(
                !rx_events
                    .iter()
                    .any(|e| matches!(e, Event::FileReceived { .. }))
            );
            assert_eq!(o.wants_chunk(), None);
        }
    }

    /// A peer that writes its own messages: sealed with the real keys, breaking the rules.
    fn hostile() -> (DataChannel, Conversation) {
        let (o, a) = channels();
        (o, Conversation::new(a, LIMITS))
    }

    fn send_raw(from: &mut DataChannel, to: &mut Conversation, msg: DataMessage) -> Vec<Output> {
        let mut out = Vec::new();
        to.receive(&from.seal(&msg.encode().unwrap()).unwrap(), &mut out);
        out
    }

    /// The peer offers file `id`, 10 bytes called "a" (taken at once: it is small).
    fn offer_ten_bytes(from: &mut DataChannel, to: &mut Conversation, id: u32) {
        send_raw(
            from,
            to,
            DataMessage::FileOffer {
                id,
                size: 10,
                name: "a".into(),
            },
        );
    }

    #[test]
    fn a_file_whose_bytes_do_not_match_its_hash_is_discarded() {
        let (mut peer, mut me) = hostile();
        send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileOffer {
                id: 1,
                size: 3,
                name: "a".into(),
            },
        );
        send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileChunk {
                id: 1,
                offset: 0,
                data: b"abc".to_vec(),
            },
        );
        let out = send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileEnd {
                id: 1,
                sha256: [0; 32],
            },
        );
        assert_eq!(
            events(&out),
            vec![Event::FileStopped {
                id: 1,
                direction: Direction::Incoming,
                by: By::Us,
                reason: StopReason::IntegrityFailed
            }]
        );
    }

    #[test]
    fn rule_breaking_file_messages_stop_that_file_only_and_keep_the_channel() {
        let (mut peer, mut me) = hostile();
        offer_ten_bytes(&mut peer, &mut me, 1);
        send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileOffer {
                id: 2,
                size: 10,
                name: "b".into(),
            },
        );
        send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileChunk {
                id: 2,
                offset: 0,
                data: vec![5; 4],
            },
        );
        // Past the announced size.
        let out = send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileChunk {
                id: 1,
                offset: 0,
                data: vec![0; 11],
            },
        );
        let ev = events(&out);
        assert!(
            matches!(&ev[0], Event::PeerError(e) if e.contains("past the announced size")),
            "{ev:?}"
        );
        assert_eq!(
            ev[1],
            Event::FileStopped {
                id: 1,
                direction: Direction::Incoming,
                by: By::Us,
                reason: StopReason::ProtocolViolation
            }
        );
        // The wrong offset, an unknown id, an end before the whole file.
        for (msg, what) in [
            (
                DataMessage::FileChunk {
                    id: 3,
                    offset: 0,
                    data: vec![1],
                },
                "not accepted",
            ),
            (
                DataMessage::FileEnd {
                    id: 9,
                    sha256: [0; 32],
                },
                "not accepted",
            ),
            (DataMessage::FileAccept { id: 4 }, "not offered"),
        ] {
            let ev = events(&send_raw(&mut peer, &mut me, msg));
            assert!(
                matches!(&ev[0], Event::PeerError(e) if e.contains(what)),
                "{ev:?}"
            );
        }
        let ev = events(&send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileChunk {
                id: 2,
                offset: 9,
                data: vec![1],
            },
        ));
        assert!(
            matches!(&ev[0], Event::PeerError(e) if e.contains("wrong offset")),
            "{ev:?}"
        );
        // A chunk of file 1 after it was stopped: crossed the stop, ignored.
        assert!(
            events(&send_raw(
                &mut peer,
                &mut me,
                DataMessage::FileChunk {
                    id: 1,
                    offset: 0,
                    data: vec![1]
                }
            ))
            .is_empty()
        );
        // A malformed message and an unknown receipt: reported, dropped.
        let mut out = Vec::new();
        me.receive(&peer.seal(b"\x7f").unwrap(), &mut out);
        assert!(
            matches!(&events(&out)[0], Event::PeerError(e) if e.contains("unknown message kind"))
        );
        // The channel still works.
        assert!(me.is_open());
        let ev = events(&send_raw(
            &mut peer,
            &mut me,
            DataMessage::Text {
                id: 5,
                text: "still here".into(),
            },
        ));
        assert_eq!(
            ev,
            vec![Event::Text {
                id: 5,
                text: "still here".into()
            }]
        );
    }

    #[test]
    fn hostile_names_land_as_plain_names_and_too_large_or_too_many_files_are_declined() {
        let (mut peer, mut me) = hostile();
        let ev = events(&send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileOffer {
                id: 1,
                size: 1,
                name: "../../etc/passwd".into(),
            },
        ));
        assert_eq!(
            ev[0],
            Event::FileOffered {
                id: 1,
                name: "passwd".into(),
                size: 1,
                accepted: true
            }
        );
        let ev = events(&send_raw(
            &mut peer,
            &mut me,
            DataMessage::FileOffer {
                id: 2,
                size: LIMITS.max_size + 1,
                name: "x".into(),
            },
        ));
        assert_eq!(
            ev[1],
            Event::FileStopped {
                id: 2,
                direction: Direction::Incoming,
                by: By::Us,
                reason: StopReason::TooLarge
            }
        );
        // File 1 and 15 more make 16 under way; the 17th is declined, and the person told so.
        let mut last = Vec::new();
        for id in 3..(3 + MAX_INCOMING as u32) {
            last = send_raw(
                &mut peer,
                &mut me,
                DataMessage::FileOffer {
                    id,
                    size: 1_000_000,
                    name: "x".into(),
                },
            );
        }
        let id = 2 + MAX_INCOMING as u32;
        assert_eq!(
            events(&last),
            vec![
                Event::FileOffered {
                    id,
                    name: "x".into(),
                    size: 1_000_000,
                    accepted: false
                },
                Event::FileStopped {
                    id,
                    direction: Direction::Incoming,
                    by: By::Us,
                    reason: StopReason::TooManyFiles
                },
            ]
        );
        assert_eq!(me.incoming.len(), MAX_INCOMING, "bounded");
    }

    #[test]
    fn a_tampered_message_closes_the_channel_and_drops_every_unfinished_file() {
        let (mut peer, mut me) = hostile();
        offer_ten_bytes(&mut peer, &mut me, 1);
        let mut bytes = peer
            .seal(
                &DataMessage::Text {
                    id: 1,
                    text: "x".into(),
                }
                .encode()
                .unwrap(),
            )
            .unwrap();
        bytes[9] ^= 0x40;
        let mut out = Vec::new();
        me.receive(&bytes, &mut out);
        assert_eq!(out[0], Output::CloseChannel);
        assert!(
            matches!(&out[1], Output::Event(Event::Tampered(e)) if e.starts_with("messages tampered with"))
        );
        assert_eq!(
            out[2],
            Output::Event(Event::FileStopped {
                id: 1,
                direction: Direction::Incoming,
                by: By::Peer,
                reason: StopReason::ProtocolViolation
            })
        );
        assert!(!me.is_open());
        assert_eq!(
            me.send_text("hi", &mut Vec::new()),
            Err(Refused::ChannelClosed)
        );
        // Genuine messages after it are not read.
        let mut out = Vec::new();
        me.receive(
            &peer
                .seal(
                    &DataMessage::Text {
                        id: 2,
                        text: "y".into(),
                    }
                    .encode()
                    .unwrap(),
                )
                .unwrap(),
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_text_frame_closes_the_channel_as_tampering_and_drops_every_unfinished_file() {
        let (mut peer, mut me) = hostile();
        offer_ten_bytes(&mut peer, &mut me, 1);
        let mut out = Vec::new();
        me.receive_unsealed(&mut out);
        assert_eq!(out[0], Output::CloseChannel);
        assert_eq!(
            out[1],
            Output::Event(Event::Tampered(
                "messages tampered with (a text frame, which is never sealed)".into()
            ))
        );
        assert!(matches!(
            out[2],
            Output::Event(Event::FileStopped { id: 1, .. })
        ));
        assert!(!me.is_open());
        // A second one finds the channel closed already: nothing more is said.
        let mut out = Vec::new();
        me.receive_unsealed(&mut out);
        assert!(out.is_empty());
    }
}
