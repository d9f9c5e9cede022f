//! The I/O shell of messages and files: carries out what [`Conversation`] asks (sealed bytes to
//! the data channel, in order, through one writer task; chunks read from the file being sent;
//! chunks written to the file being received), and turns the user's lines into requests.
//!
//! Received files are written to `NAME.part` in the download directory as chunks arrive, and
//! renamed to a free name (`NAME`, `NAME (1)`, ...) only once the whole file's SHA-256 matched:
//! nothing half-received or unchecked ever carries the real name. An existing file is never
//! overwritten.

use crate::conversation::{By, Conversation, Direction, Event as ConvEvent, Limits, Output};
use crate::rtc::DataWriter;
use serde::Serialize;
use sotto_e2ee::{DataChannel, StopReason};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc, watch};

/// Sealed bytes waiting for the writer task above which no further chunk is read: with the
/// data channel's own 1 MiB buffer, at most about 1.25 MiB of a file is in memory.
const QUEUE_LOW: usize = 256 * 1024;

/// What a line typed during a call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send this text.
    Text(String),
    /// Send the file at this path.
    Send(PathBuf),
    /// Take the offered file (in a group, from the person named, when several offer this
    /// number: their name or the start of their id).
    Accept(u32, Option<String>),
    /// Refuse an offered file, or stop one being received.
    Decline(u32, Option<String>),
    /// Stop sending a file (in a group, to the person named).
    Cancel(u32, Option<String>),
    /// Store the other device as known after comparing the code (`/verify [WHO =] [NAME]`):
    /// whose (their name or the start of their id, when several could be meant) and under what
    /// name (else the name they gave).
    Verify {
        /// Whose device.
        who: Option<String>,
        /// What to call it.
        name: Option<String>,
    },
    /// Hang up.
    Quit,
}

impl Command {
    /// The file a command is about: its number, which way it goes, and whose it is if said.
    pub fn file(&self) -> Option<(u32, Direction, Option<&str>)> {
        match self {
            Self::Accept(id, who) | Self::Decline(id, who) => {
                Some((*id, Direction::Incoming, who.as_deref()))
            }
            Self::Cancel(id, who) => Some((*id, Direction::Outgoing, who.as_deref())),
            _ => None,
        }
    }

    /// Reads one line: `/send PATH`, `/accept N [WHO]`, `/decline N [WHO]`, `/cancel N [WHO]`,
    /// `/quit`; any other line is a text (`//` at the start sends a text beginning with `/`).
    pub fn parse(line: &str) -> Result<Option<Self>, String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(text) = line.strip_prefix("//") {
            return Ok(Some(Self::Text(format!("/{text}"))));
        }
        let Some(command) = line.strip_prefix('/') else {
            return Ok((!line.trim().is_empty()).then(|| Self::Text(line.to_owned())));
        };
        let (word, arg) = command.split_once(' ').unwrap_or((command, ""));
        // A file number, and whose it is when several people have one of that number.
        let id = |arg: &str| {
            let mut parts = arg.split_whitespace();
            let n = parts
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| format!("/{word} needs a file number, e.g. /{word} 0"))?;
            let who = parts.collect::<Vec<_>>().join(" ");
            Ok::<_, String>((n, (!who.is_empty()).then_some(who)))
        };
        Ok(Some(match word {
            "send" if !arg.trim().is_empty() => Self::Send(PathBuf::from(arg.trim())),
            "send" => return Err("/send needs a path, e.g. /send notes.pdf".into()),
            "accept" => id(arg).map(|(n, who)| Self::Accept(n, who))?,
            "decline" => id(arg).map(|(n, who)| Self::Decline(n, who))?,
            "cancel" => id(arg).map(|(n, who)| Self::Cancel(n, who))?,
            "quit" => Self::Quit,
            "verify" => {
                let some = |t: &str| (!t.trim().is_empty()).then(|| t.trim().to_owned());
                match arg.split_once('=') {
                    Some((who, name)) => Self::Verify {
                        who: Some(some(who).ok_or("/verify WHO = NAME needs a WHO")?),
                        name: some(name),
                    },
                    None => Self::Verify {
                        who: None,
                        name: some(arg),
                    },
                }
            }
            _ => {
                return Err(format!(
                    "unknown command /{word}: /send PATH, /accept N, /decline N, /cancel N, \
                     /verify NAME, /quit (start a message with // to send a leading /)"
                ));
            }
        }))
    }
}

/// What the user is told about messages and files (the `--json` events of the same names).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ChatEvent {
    /// The data channel is open this side: texts and files can go.
    MessagesReady,
    /// A text from the other side.
    Message { id: u32, text: String },
    /// Our text went out with this id.
    MessageSent { id: u32, text: String },
    /// Our text `id` arrived.
    MessageDelivered { id: u32 },
    /// The other side offers a file: taken at once (`accepted`), or waiting for `/accept N`.
    FileOffered {
        id: u32,
        name: String,
        size: u64,
        accepted: bool,
    },
    /// Our file went out as an offer with this id.
    FileSent { id: u32, name: String, size: u64 },
    /// Bytes of a file so far.
    FileProgress {
        id: u32,
        direction: &'static str,
        done: u64,
        size: u64,
    },
    /// A file arrived whole and checked, saved at `path`.
    FileReceived { id: u32, path: String },
    /// Our file arrived whole at the other side.
    FileDelivered { id: u32 },
    /// A file stopped before the end; nothing of an incoming one was kept.
    FileStopped {
        id: u32,
        direction: &'static str,
        by: &'static str,
        reason: &'static str,
    },
    /// The other side's microphone or camera went on or off (told over the data channel).
    Media { microphone: bool, camera: bool },
    /// Something about messages or files went wrong (the text says what).
    MessagesError { error: String },
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Outgoing => "outgoing",
        Direction::Incoming => "incoming",
    }
}

fn reason(r: StopReason) -> &'static str {
    match r {
        StopReason::Cancelled => "cancelled",
        StopReason::TooLarge => "too large",
        StopReason::IntegrityFailed => "content did not match its SHA-256",
        StopReason::ProtocolViolation => "the other side broke the rules",
        StopReason::CouldNotStore => "could not be read or stored",
        StopReason::TooManyFiles => "too many files at once",
    }
}

/// Settings for received files.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Where received files go.
    pub download_dir: PathBuf,
    /// Sizes the user is asked about, and the most taken.
    pub limits: Limits,
}

struct Incoming {
    name: String,
    part: Option<(PathBuf, File)>,
}

/// Messages and files of the call's peer.
pub struct Chat {
    conversation: Conversation,
    files: FileOptions,
    queue: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    open: watch::Sender<bool>,
    writer: DataWriter,
    sending: HashMap<u32, File>,
    receiving: HashMap<u32, Incoming>,
}

impl Chat {
    /// Starts the writer task on `writer` and a conversation over `channel`. `open`: the
    /// data channel already opened (else [`Chat::channel_open`] says when).
    pub fn new(channel: DataChannel, writer: DataWriter, open: bool, files: FileOptions) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let (open, mut opened) = watch::channel(open);
        let (w, q, d) = (writer.clone(), Arc::clone(&queued), Arc::clone(&drained));
        tokio::spawn(async move {
            // Nothing is written before the channel opens (the session refuses typed lines
            // until then, and answers only follow the peer's messages); should anything be,
            // it waits here, in order.
            if opened.wait_for(|open| *open).await.is_err() {
                return;
            }
            while let Some(bytes) = rx.recv().await {
                let len = bytes.len();
                let sent = w.send(bytes).await;
                q.fetch_sub(len, Ordering::Relaxed);
                d.notify_one();
                if sent.is_err() {
                    break;
                }
            }
        });
        Self {
            conversation: Conversation::new(channel, files.limits),
            files,
            queue,
            queued,
            drained,
            open,
            writer,
            sending: HashMap::new(),
            receiving: HashMap::new(),
        }
    }

    /// Whether file `id` is under way here in `direction` (offered, or being sent or received).
    pub fn has_file(&self, id: u32, direction: Direction) -> bool {
        match direction {
            Direction::Incoming => self.receiving.contains_key(&id),
            Direction::Outgoing => self.sending.contains_key(&id),
        }
    }

    /// The data channel opened: what waits is sent.
    pub fn channel_open(&self) {
        let _ = self.open.send(true);
    }

    /// Resolves when a chunk of a file being sent should be read (the conversation wants one
    /// and the queue has room); never while there is none to send.
    pub async fn chunk_ready(&self) {
        if self.conversation.wants_chunk().is_none() {
            return std::future::pending().await;
        }
        while self.queued.load(Ordering::Relaxed) >= QUEUE_LOW {
            self.drained.notified().await;
        }
    }

    /// Reads and sends the next chunk the conversation wants.
    pub fn send_next_chunk(&mut self, notify: &mut impl FnMut(ChatEvent)) {
        let Some((id, offset, max)) = self.conversation.wants_chunk() else {
            return;
        };
        let mut out = Vec::new();
        match self.sending.get_mut(&id).map(|f| read_at(f, offset, max)) {
            Some(Ok(data)) => {
                let _ = self.conversation.send_chunk(id, &data, &mut out);
            }
            _ => self.conversation.sending_failed(id, &mut out),
        }
        self.carry_out(out, notify);
    }

    /// Bytes from the data channel.
    pub fn receive(&mut self, bytes: &[u8], notify: &mut impl FnMut(ChatEvent)) {
        let mut out = Vec::new();
        self.conversation.receive(bytes, &mut out);
        self.carry_out(out, notify);
    }

    /// A text frame on the data channel: never sealed, so tampering (PROTOCOL.md §3.6).
    pub fn text_frame(&mut self, notify: &mut impl FnMut(ChatEvent)) {
        let mut out = Vec::new();
        self.conversation.receive_unsealed(&mut out);
        self.carry_out(out, notify);
    }

    /// A line the user typed; `Quit` and `Verify` are the caller's.
    pub fn command(&mut self, command: Command, notify: &mut impl FnMut(ChatEvent)) {
        let mut out = Vec::new();
        let result = match command {
            Command::Text(text) => self
                .conversation
                .send_text(&text, &mut out)
                .map(|id| Some(ChatEvent::MessageSent { id, text })),
            Command::Send(path) => self.offer(&path, &mut out, notify).map(|()| None),
            Command::Accept(id, _) => self.conversation.accept(id, &mut out).map(|()| None),
            Command::Decline(id, _) => self
                .conversation
                .cancel(id, Direction::Incoming, &mut out)
                .map(|()| None),
            Command::Cancel(id, _) => self
                .conversation
                .cancel(id, Direction::Outgoing, &mut out)
                .map(|()| None),
            Command::Quit | Command::Verify { .. } => Ok(None),
        };
        match result {
            Ok(Some(event)) => notify(event),
            Ok(None) => {}
            Err(e) => notify(ChatEvent::MessagesError {
                error: e.to_string(),
            }),
        }
        self.carry_out(out, notify);
    }

    fn offer(
        &mut self,
        path: &Path,
        out: &mut Vec<Output>,
        notify: &mut impl FnMut(ChatEvent),
    ) -> Result<(), crate::conversation::Refused> {
        let opened = File::open(path).and_then(|f| {
            let meta = f.metadata()?;
            if meta.is_file() {
                Ok((f, meta.len()))
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        });
        let (file, size) = match opened {
            Ok(x) => x,
            Err(e) => {
                notify(ChatEvent::MessagesError {
                    error: format!("cannot send {}: {e}", path.display()),
                });
                return Ok(());
            }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        // A name over 255 bytes keeps its end (the extension), cut at a character boundary.
        let mut name = name.as_str();
        while name.len() > 255 {
            let mut cut = name.len() - 255;
            while !name.is_char_boundary(cut) {
                cut += 1;
            }
            name = &name[cut..];
        }
        let id = self.conversation.offer_file(name, size, out)?;
        self.sending.insert(id, file);
        notify(ChatEvent::FileSent {
            id,
            name: name.to_owned(),
            size,
        });
        Ok(())
    }

    /// Carries out the conversation's outputs.
    fn carry_out(&mut self, outputs: Vec<Output>, notify: &mut impl FnMut(ChatEvent)) {
        for output in outputs {
            match output {
                Output::Send(bytes) => {
                    self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
                    let _ = self.queue.send(bytes);
                }
                Output::CloseChannel => {
                    let writer = self.writer.clone();
                    tokio::spawn(async move { writer.close().await });
                }
                Output::Event(e) => self.event(e, notify),
            }
        }
    }

    fn event(&mut self, e: ConvEvent, notify: &mut impl FnMut(ChatEvent)) {
        let event = match e {
            ConvEvent::Text { id, text } => ChatEvent::Message { id, text },
            ConvEvent::Delivered { id } => ChatEvent::MessageDelivered { id },
            ConvEvent::FileOffered {
                id,
                name,
                size,
                accepted,
            } => {
                self.receiving.insert(
                    id,
                    Incoming {
                        name: name.clone(),
                        part: None,
                    },
                );
                ChatEvent::FileOffered {
                    id,
                    name,
                    size,
                    accepted,
                }
            }
            ConvEvent::FileData { id, offset, data } => {
                if let Err(error) = self.write_chunk(id, offset, &data) {
                    notify(ChatEvent::MessagesError { error });
                    let mut out = Vec::new();
                    let _ = self.conversation.cancel(id, Direction::Incoming, &mut out);
                    self.carry_out(out, notify);
                }
                return;
            }
            ConvEvent::FileProgress {
                id,
                direction: d,
                done,
                size,
            } => {
                if d == Direction::Incoming && done == 0 && size == 0 {
                    // An empty file: make its part file so that it can be renamed.
                    if let Err(error) = self.write_chunk(id, 0, &[]) {
                        notify(ChatEvent::MessagesError { error });
                    }
                }
                ChatEvent::FileProgress {
                    id,
                    direction: direction(d),
                    done,
                    size,
                }
            }
            ConvEvent::FileReceived { id } => match self.finish(id) {
                Ok(path) => ChatEvent::FileReceived {
                    id,
                    path: path.display().to_string(),
                },
                Err(error) => ChatEvent::MessagesError { error },
            },
            ConvEvent::FileDelivered { id } => {
                self.sending.remove(&id);
                ChatEvent::FileDelivered { id }
            }
            ConvEvent::FileStopped {
                id,
                direction: d,
                by,
                reason: r,
            } => {
                match d {
                    Direction::Outgoing => {
                        self.sending.remove(&id);
                    }
                    Direction::Incoming => self.discard(id),
                }
                ChatEvent::FileStopped {
                    id,
                    direction: direction(d),
                    by: match by {
                        By::Us => "us",
                        By::Peer => "peer",
                    },
                    reason: reason(r),
                }
            }
            ConvEvent::PeerMedia { microphone, camera } => ChatEvent::Media { microphone, camera },
            ConvEvent::PeerError(error) => ChatEvent::MessagesError { error },
            ConvEvent::Tampered(error) => ChatEvent::MessagesError { error },
        };
        notify(event);
    }

    fn write_chunk(&mut self, id: u32, offset: u64, data: &[u8]) -> Result<(), String> {
        let dir = self.files.download_dir.clone();
        let incoming = self
            .receiving
            .get_mut(&id)
            .ok_or_else(|| format!("file {id}: nowhere to write it"))?;
        if incoming.part.is_none() {
            let (path, file) = create_free(&dir, &format!("{}.part", incoming.name))
                .map_err(|e| format!("cannot save {} in {}: {e}", incoming.name, dir.display()))?;
            incoming.part = Some((path, file));
        }
        let Some((path, file)) = incoming.part.as_mut() else {
            return Err(format!("file {id}: nowhere to write it"));
        };
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.write_all(data))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The checked file takes a free name of its own.
    fn finish(&mut self, id: u32) -> Result<PathBuf, String> {
        let incoming = self
            .receiving
            .remove(&id)
            .ok_or_else(|| format!("file {id}: nothing received"))?;
        let Some((part, file)) = incoming.part else {
            return Err(format!("file {id}: nothing received"));
        };
        file.sync_all()
            .map_err(|e| format!("cannot save {}: {e}", part.display()))?;
        drop(file);
        let dir = self.files.download_dir.clone();
        // Reserve the final name by creating it (never overwriting), then move the part over it.
        let (path, _) = create_free(&dir, &incoming.name)
            .map_err(|e| format!("cannot save {} in {}: {e}", incoming.name, dir.display()))?;
        std::fs::rename(&part, &path)
            .map_err(|e| format!("cannot save {}: {e}", path.display()))?;
        Ok(path)
    }

    fn discard(&mut self, id: u32) {
        if let Some(Incoming {
            part: Some((path, file)),
            ..
        }) = self.receiving.remove(&id)
        {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }

    /// Every unfinished incoming file goes (the call ended).
    pub fn discard_all(&mut self) {
        for id in self.receiving.keys().copied().collect::<Vec<_>>() {
            self.discard(id);
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.discard_all();
    }
}

fn read_at(file: &mut File, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; max];
    let mut filled = 0;
    while filled < max {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Creates `name` in `dir`, or `stem (1).ext`, `stem (2).ext`, ... if it exists; never opens an
/// existing file.
fn create_free(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    for n in 0..10_000u32 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match File::options()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => return Ok((candidate, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_texts_or_commands() {
        assert_eq!(
            Command::parse("hello\n"),
            Ok(Some(Command::Text("hello".into())))
        );
        assert_eq!(Command::parse("  \n"), Ok(None));
        assert_eq!(
            Command::parse("/send a b.pdf\n"),
            Ok(Some(Command::Send("a b.pdf".into())))
        );
        assert_eq!(
            Command::parse("/accept 3"),
            Ok(Some(Command::Accept(3, None)))
        );
        assert_eq!(
            Command::parse("/accept 3 Ada  L"),
            Ok(Some(Command::Accept(3, Some("Ada L".into()))))
        );
        assert_eq!(
            Command::parse("/decline 0"),
            Ok(Some(Command::Decline(0, None)))
        );
        assert_eq!(
            Command::parse("/cancel 7\r\n"),
            Ok(Some(Command::Cancel(7, None)))
        );
        assert_eq!(Command::parse("/quit"), Ok(Some(Command::Quit)));
        let verify = |who: Option<&str>, name: Option<&str>| {
            Ok(Some(Command::Verify {
                who: who.map(str::to_owned),
                name: name.map(str::to_owned),
            }))
        };
        assert_eq!(Command::parse("/verify"), verify(None, None));
        assert_eq!(
            Command::parse("/verify Ada's laptop\n"),
            verify(None, Some("Ada's laptop"))
        );
        assert_eq!(
            Command::parse("/verify ada = Ada's phone"),
            verify(Some("ada"), Some("Ada's phone"))
        );
        assert_eq!(Command::parse("/verify 3f9a="), verify(Some("3f9a"), None));
        assert!(
            Command::parse("/verify = x")
                .unwrap_err()
                .contains("needs a WHO")
        );
        assert_eq!(
            Command::parse("//etc is a dir"),
            Ok(Some(Command::Text("/etc is a dir".into())))
        );
        assert!(
            Command::parse("/accept x")
                .unwrap_err()
                .contains("needs a file number")
        );
        assert!(
            Command::parse("/send")
                .unwrap_err()
                .contains("needs a path")
        );
        assert!(
            Command::parse("/frobnicate")
                .unwrap_err()
                .contains("unknown command")
        );
    }

    #[test]
    fn a_free_name_never_replaces_an_existing_file() {
        let dir = std::env::temp_dir().join(format!("sotto-free-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), b"mine").unwrap();
        std::fs::write(dir.join("a (1).txt"), b"mine too").unwrap();
        let (path, _) = create_free(&dir, "a.txt").unwrap();
        assert_eq!(path, dir.join("a (2).txt"));
        let (path, _) = create_free(&dir, "noext").unwrap();
        assert_eq!(path, dir.join("noext"));
        let (path, _) = create_free(&dir, "noext").unwrap();
        assert_eq!(path, dir.join("noext (1)"));
        assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"mine");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
