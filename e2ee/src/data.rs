//! The data channel (PROTOCOL.md §3.6): every message sealed under the pair's own data keys,
//! and the messages inside (texts, receipts, files), parsed once at the edge into
//! [`DataMessage`].
//!
//! Sans-IO like the rest of the crate: [`DataChannel::seal`] turns a plaintext into the bytes
//! to send, [`DataChannel::open`] turns received bytes into a plaintext or the tampering they
//! show. After one message fails, the channel opens nothing more (fail closed: the caller
//! closes the WebRTC data channel and tells the user "messages tampered with").

use crate::link::RoomId;
use crate::{Error, MessageFault};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// Bytes of a sealed data message besides its plaintext: `seq` and tag.
pub const DATA_OVERHEAD: usize = 8 + 16;
/// The longest text, in bytes of UTF-8.
pub const MAX_TEXT: usize = 4096;
/// The longest file name in an offer, in bytes of UTF-8.
pub const MAX_NAME: usize = 255;
/// The most data one file chunk carries.
pub const MAX_CHUNK: usize = 16_000;
/// The longest plaintext on the channel: a full chunk.
pub const MAX_PLAINTEXT: usize = 1 + 4 + 8 + MAX_CHUNK;

/// Both directions of one pair's data channel: `data_O` seals what O sends, `data_A` what A
/// sends. Keys are zeroized with the ciphers; no Debug.
pub struct DataChannel {
    room: RoomId,
    out: Aes256Gcm,
    inbound: Aes256Gcm,
    seq_out: u64,
    seq_in: u64,
    broken: bool,
}

/// Shows the sequence numbers only.
impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DataChannel(out {}, in {}, broken {})",
            self.seq_out, self.seq_in, self.broken
        )
    }
}

/// `"sotto v1 data" || room_id_raw || seq`.
fn data_aad(room: &RoomId, seq: u64) -> [u8; 13 + 16 + 8] {
    let mut aad = [0u8; 37];
    aad[..13].copy_from_slice(b"sotto v1 data");
    aad[13..29].copy_from_slice(room.as_bytes());
    aad[29..].copy_from_slice(&seq.to_be_bytes());
    aad
}

/// `0x00000000 || seq` (each direction has its own key and `seq` never repeats).
fn data_nonce(seq: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    nonce
}

impl DataChannel {
    /// The channel of one side: `send` seals what this side sends, `receive` opens the peer's.
    pub(crate) fn new(
        room: RoomId,
        send: &Zeroizing<[u8; 32]>,
        receive: &Zeroizing<[u8; 32]>,
    ) -> Self {
        Self {
            room,
            out: Aes256Gcm::new(send.as_ref().into()),
            inbound: Aes256Gcm::new(receive.as_ref().into()),
            seq_out: 0,
            seq_in: 0,
            broken: false,
        }
    }

    /// Seals `plaintext` (an encoded [`DataMessage`]) as `seq || ciphertext || tag`.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::CallerMisuse("data message longer than a full chunk"));
        }
        let seq = self.seq_out;
        let next = seq
            .checked_add(1)
            .ok_or(Error::CallerMisuse("sequence numbers exhausted"))?;
        let mut out = Vec::with_capacity(DATA_OVERHEAD + plaintext.len());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = self
            .out
            .encrypt_in_place_detached(
                Nonce::from_slice(&data_nonce(seq)),
                &data_aad(&self.room, seq),
                &mut out[8..],
            )
            .map_err(|_| Error::CallerMisuse("message too long to seal"))?;
        out.extend_from_slice(&tag);
        self.seq_out = next;
        Ok(out)
    }

    /// Opens the peer's next message. Anything but exactly the next `seq`, authenticated,
    /// is tampering: this and every later call fail with [`Error::DataTampered`].
    pub fn open(&mut self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.broken {
            return Err(Error::DataTampered(
                "the channel was closed after tampering",
            ));
        }
        let result = self.open_next(msg);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn open_next(&mut self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if msg.len() < DATA_OVERHEAD {
            return Err(Error::DataTampered("message too short"));
        }
        if msg.len() > DATA_OVERHEAD + MAX_PLAINTEXT {
            return Err(Error::DataTampered(
                "message longer than any the protocol sends",
            ));
        }
        let (seq, rest) = msg.split_at(8);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(seq);
        let seq = u64::from_be_bytes(seq_bytes);
        if seq != self.seq_in {
            return Err(Error::DataTampered(
                "message out of sequence (dropped, replayed or reordered)",
            ));
        }
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let mut plain = Zeroizing::new(ct.to_vec());
        self.inbound
            .decrypt_in_place_detached(
                Nonce::from_slice(&data_nonce(seq)),
                &data_aad(&self.room, seq),
                plain.as_mut(),
                tag.into(),
            )
            .map_err(|_| Error::DataTampered("message failed authentication"))?;
        self.seq_in = seq
            .checked_add(1)
            .ok_or(Error::DataTampered("sequence numbers exhausted"))?;
        Ok(plain)
    }
}

/// Why a file transfer stopped (the `reason` byte of `file-abort` and `file-decline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `0`: the person cancelled or declined.
    Cancelled,
    /// `1`: larger than the receiver takes.
    TooLarge,
    /// `2`: the content did not match its SHA-256.
    IntegrityFailed,
    /// `3`: the other side broke the transfer rules (also any unknown reason byte).
    ProtocolViolation,
    /// `4`: the receiver could not store it.
    CouldNotStore,
    /// `5`: the receiver already has as many files under way as it takes.
    TooManyFiles,
}

impl StopReason {
    /// The reason byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Cancelled => 0,
            Self::TooLarge => 1,
            Self::IntegrityFailed => 2,
            Self::ProtocolViolation => 3,
            Self::CouldNotStore => 4,
            Self::TooManyFiles => 5,
        }
    }

    /// The reason a byte names; unknown values read as a protocol violation.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Cancelled,
            1 => Self::TooLarge,
            2 => Self::IntegrityFailed,
            4 => Self::CouldNotStore,
            5 => Self::TooManyFiles,
            _ => Self::ProtocolViolation,
        }
    }
}

/// One message on the data channel, decoded (PROTOCOL.md §3.6). Its content is the users'
/// (texts, file names and bytes): Debug shows kinds, ids and sizes only.
#[derive(Clone, PartialEq, Eq)]
pub enum DataMessage {
    /// `0x01`: a text message (1 to 4096 bytes of UTF-8).
    Text { id: u32, text: String },
    /// `0x02`: the text `id` arrived.
    Delivered { id: u32 },
    /// `0x10`: the sender offers a file of `size` bytes called `name` (untrusted).
    FileOffer { id: u32, size: u64, name: String },
    /// `0x11`: the receiver takes file `id`.
    FileAccept { id: u32 },
    /// `0x12`: bytes of file `id` starting at `offset` (1 to 16,000 of them).
    FileChunk { id: u32, offset: u64, data: Vec<u8> },
    /// `0x13`: file `id` is complete; the SHA-256 of its whole content.
    FileEnd { id: u32, sha256: [u8; 32] },
    /// `0x14`: the receiver has file `id`, complete and checked.
    FileReceived { id: u32 },
    /// `0x15`: the sender stops sending file `id`.
    FileAbort { id: u32, reason: StopReason },
    /// `0x16`: the receiver refuses or stops receiving file `id`.
    FileDecline { id: u32, reason: StopReason },
    /// `0x20`: whether the sender's microphone and camera are on now (sent when its channel
    /// opens and on every change; the relay never learns when someone mutes).
    MediaState { microphone: bool, camera: bool },
}

impl std::fmt::Debug for DataMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text { id, text } => write!(f, "Text {{ id: {id}, {} bytes }}", text.len()),
            Self::Delivered { id } => write!(f, "Delivered {{ id: {id} }}"),
            Self::FileOffer { id, size, .. } => write!(f, "FileOffer {{ id: {id}, size: {size} }}"),
            Self::FileAccept { id } => write!(f, "FileAccept {{ id: {id} }}"),
            Self::FileChunk { id, offset, data } => {
                write!(
                    f,
                    "FileChunk {{ id: {id}, offset: {offset}, {} bytes }}",
                    data.len()
                )
            }
            Self::FileEnd { id, .. } => write!(f, "FileEnd {{ id: {id} }}"),
            Self::FileReceived { id } => write!(f, "FileReceived {{ id: {id} }}"),
            Self::FileAbort { id, reason } => write!(f, "FileAbort {{ id: {id}, {reason:?} }}"),
            Self::FileDecline { id, reason } => {
                write!(f, "FileDecline {{ id: {id}, {reason:?} }}")
            }
            Self::MediaState { microphone, camera } => {
                write!(
                    f,
                    "MediaState {{ microphone: {microphone}, camera: {camera} }}"
                )
            }
        }
    }
}

const TEXT: u8 = 0x01;
const DELIVERED: u8 = 0x02;
const FILE_OFFER: u8 = 0x10;
const FILE_ACCEPT: u8 = 0x11;
const FILE_CHUNK: u8 = 0x12;
const FILE_END: u8 = 0x13;
const FILE_RECEIVED: u8 = 0x14;
const FILE_ABORT: u8 = 0x15;
const FILE_DECLINE: u8 = 0x16;
const MEDIA_STATE: u8 = 0x20;
/// `media-state` flag bits; the others are sent as 0 and ignored (later versions may use them).
const MICROPHONE_ON: u8 = 0x01;
const CAMERA_ON: u8 = 0x02;

/// Reads fields off the front of a message body.
struct Reader<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageFault> {
        if self.rest.len() < n {
            return Err(MessageFault::WrongLength(self.kind));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageFault> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, MessageFault> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, MessageFault> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, MessageFault> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn remaining(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Nothing may be left over.
    fn end(self) -> Result<(), MessageFault> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(MessageFault::WrongLength(self.kind))
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<String, MessageFault> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MessageFault::InvalidUtf8)
}

impl DataMessage {
    /// Decodes an opened plaintext; a message that breaks any rule of its kind is refused
    /// with the rule it broke.
    pub fn decode(plain: &[u8]) -> Result<Self, Error> {
        Self::parse(plain).map_err(Error::MessageMalformed)
    }

    fn parse(plain: &[u8]) -> Result<Self, MessageFault> {
        let (&kind, rest) = plain.split_first().ok_or(MessageFault::Empty)?;
        let mut r = Reader { kind, rest };
        let msg = match kind {
            TEXT => {
                let id = r.u32()?;
                let text = r.remaining();
                if text.is_empty() {
                    return Err(MessageFault::EmptyText);
                }
                if text.len() > MAX_TEXT {
                    return Err(MessageFault::TextTooLong);
                }
                Self::Text {
                    id,
                    text: utf8(text)?,
                }
            }
            DELIVERED => Self::Delivered { id: r.u32()? },
            FILE_OFFER => {
                let id = r.u32()?;
                let size = r.u64()?;
                let len = usize::from(r.u8()?);
                if len == 0 {
                    return Err(MessageFault::EmptyName);
                }
                let name = utf8(r.take(len)?)?;
                Self::FileOffer { id, size, name }
            }
            FILE_ACCEPT => Self::FileAccept { id: r.u32()? },
            FILE_CHUNK => {
                let id = r.u32()?;
                let offset = r.u64()?;
                let data = r.remaining();
                if data.is_empty() {
                    return Err(MessageFault::EmptyChunk);
                }
                if data.len() > MAX_CHUNK {
                    return Err(MessageFault::ChunkTooLong);
                }
                Self::FileChunk {
                    id,
                    offset,
                    data: data.to_vec(),
                }
            }
            FILE_END => Self::FileEnd {
                id: r.u32()?,
                sha256: r.array()?,
            },
            FILE_RECEIVED => Self::FileReceived { id: r.u32()? },
            FILE_ABORT => Self::FileAbort {
                id: r.u32()?,
                reason: StopReason::from_byte(r.u8()?),
            },
            FILE_DECLINE => Self::FileDecline {
                id: r.u32()?,
                reason: StopReason::from_byte(r.u8()?),
            },
            MEDIA_STATE => {
                let flags = r.u8()?;
                Self::MediaState {
                    microphone: flags & MICROPHONE_ON != 0,
                    camera: flags & CAMERA_ON != 0,
                }
            }
            other => return Err(MessageFault::UnknownKind(other)),
        };
        r.end()?;
        Ok(msg)
    }

    /// Encodes the message; one this side may not send (a text or name too long or empty, a
    /// chunk too long or empty) is refused.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(32);
        match self {
            Self::Text { id, text } => {
                if text.is_empty() || text.len() > MAX_TEXT {
                    return Err(Error::CallerMisuse("a text is 1 to 4096 bytes"));
                }
                out.push(TEXT);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            Self::Delivered { id } => id_only(&mut out, DELIVERED, *id),
            Self::FileOffer { id, size, name } => {
                let len = u8::try_from(name.len())
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or(Error::CallerMisuse("a file name is 1 to 255 bytes"))?;
                out.push(FILE_OFFER);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&size.to_be_bytes());
                out.push(len);
                out.extend_from_slice(name.as_bytes());
            }
            Self::FileAccept { id } => id_only(&mut out, FILE_ACCEPT, *id),
            Self::FileChunk { id, offset, data } => {
                if data.is_empty() || data.len() > MAX_CHUNK {
                    return Err(Error::CallerMisuse("a chunk is 1 to 16,000 bytes"));
                }
                out.reserve(data.len() + 13);
                out.push(FILE_CHUNK);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(data);
            }
            Self::FileEnd { id, sha256 } => {
                id_only(&mut out, FILE_END, *id);
                out.extend_from_slice(sha256);
            }
            Self::FileReceived { id } => id_only(&mut out, FILE_RECEIVED, *id),
            Self::FileAbort { id, reason } => {
                id_only(&mut out, FILE_ABORT, *id);
                out.push(reason.byte());
            }
            Self::FileDecline { id, reason } => {
                id_only(&mut out, FILE_DECLINE, *id);
                out.push(reason.byte());
            }
            Self::MediaState { microphone, camera } => {
                out.push(MEDIA_STATE);
                out.push(
                    if *microphone { MICROPHONE_ON } else { 0 }
                        | if *camera { CAMERA_ON } else { 0 },
                );
            }
        }
        Ok(out)
    }
}

fn id_only(out: &mut Vec<u8>, kind: u8, id: u32) {
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::tests::established;

    fn channels() -> (DataChannel, DataChannel) {
        let (o, a) = established();
        (
            o.data_channel("sha-256 AA", "sha-256 BB").unwrap(),
            a.data_channel("sha-256 AA", "sha-256 BB").unwrap(),
        )
    }

    #[test]
    fn each_side_opens_what_the_other_sealed_in_both_directions() {
        let (mut o, mut a) = channels();
        for i in 0..3u32 {
            let m = DataMessage::Text {
                id: i,
                text: format!("hello {i}"),
            };
            let sealed = o.seal(&m.encode().unwrap()).unwrap();
            assert_eq!(&sealed[..8], &u64::from(i).to_be_bytes());
            let plain = a.open(&sealed).unwrap();
            assert_eq!(DataMessage::decode(&plain).unwrap(), m);
            let back = a
                .seal(&DataMessage::Delivered { id: i }.encode().unwrap())
                .unwrap();
            assert_eq!(
                DataMessage::decode(&o.open(&back).unwrap()).unwrap(),
                DataMessage::Delivered { id: i }
            );
        }
    }

    #[test]
    fn media_state_is_one_flags_byte_whose_unknown_bits_are_ignored() {
        let m = DataMessage::MediaState {
            microphone: false,
            camera: true,
        };
        assert_eq!(m.encode().unwrap(), [0x20, 0x02]);
        assert_eq!(DataMessage::decode(&[0x20, 0x02]).unwrap(), m);
        // Bits a later version may use do not change what this one reads.
        assert_eq!(
            DataMessage::decode(&[0x20, 0xfd]).unwrap(),
            DataMessage::MediaState {
                microphone: true,
                camera: false,
            }
        );
        for bad in [&[0x20][..], &[0x20, 0x03, 0x00]] {
            assert_eq!(
                DataMessage::decode(bad).unwrap_err(),
                Error::MessageMalformed(MessageFault::WrongLength(0x20))
            );
        }
    }

    #[test]
    fn keys_are_bound_to_both_fingerprints() {
        let (o, a) = established();
        let mut o = o.data_channel("sha-256 AA", "sha-256 BB").unwrap();
        let mut a = a.data_channel("sha-256 AA", "sha-256 CC").unwrap();
        let sealed = o.seal(b"\x02\0\0\0\x01").unwrap();
        assert_eq!(
            a.open(&sealed).unwrap_err(),
            Error::DataTampered("message failed authentication")
        );
    }

    #[test]
    fn a_tampered_message_closes_the_channel_for_good() {
        let (mut o, mut a) = channels();
        let mut sealed = o.seal(b"\x02\0\0\0\x01").unwrap();
        sealed[10] ^= 1;
        assert_eq!(
            a.open(&sealed).unwrap_err(),
            Error::DataTampered("message failed authentication")
        );
        // Even a genuine message after it no longer opens.
        let next = o.seal(b"\x02\0\0\0\x02").unwrap();
        assert_eq!(
            a.open(&next).unwrap_err(),
            Error::DataTampered("the channel was closed after tampering")
        );
    }

    #[test]
    fn replayed_skipped_and_reflected_messages_are_tampering() {
        let (mut o, mut a) = channels();
        let first = o.seal(b"\x02\0\0\0\x01").unwrap();
        a.open(&first).unwrap();
        // A replay.
        assert!(matches!(a.open(&first), Err(Error::DataTampered(_))));
        // A skipped seq.
        let (mut o, mut a) = channels();
        let _lost = o.seal(b"\x02\0\0\0\x01").unwrap();
        let second = o.seal(b"\x02\0\0\0\x02").unwrap();
        assert!(matches!(a.open(&second), Err(Error::DataTampered(_))));
        // Our own message reflected back: sealed under the other key.
        let (mut o, _) = channels();
        let own = o.seal(b"\x02\0\0\0\x01").unwrap();
        assert!(matches!(o.open(&own), Err(Error::DataTampered(_))));
        // Too short to hold seq and tag.
        let (_, mut a) = channels();
        assert_eq!(
            a.open(&[0; 23]).unwrap_err(),
            Error::DataTampered("message too short")
        );
    }

    #[test]
    fn every_kind_round_trips() {
        let all = [
            DataMessage::Text {
                id: 7,
                text: "hé".into(),
            },
            DataMessage::Delivered { id: 7 },
            DataMessage::FileOffer {
                id: 1,
                size: 5_000_000,
                name: "a.pdf".into(),
            },
            DataMessage::FileAccept { id: 1 },
            DataMessage::FileChunk {
                id: 1,
                offset: 16_000,
                data: vec![9; MAX_CHUNK],
            },
            DataMessage::FileEnd {
                id: 1,
                sha256: [3; 32],
            },
            DataMessage::FileReceived { id: 1 },
            DataMessage::FileAbort {
                id: 1,
                reason: StopReason::Cancelled,
            },
            DataMessage::FileDecline {
                id: 2,
                reason: StopReason::TooManyFiles,
            },
        ];
        for m in all {
            assert_eq!(
                DataMessage::decode(&m.encode().unwrap()).unwrap(),
                m,
                "{m:?}"
            );
        }
    }

    #[test]
    fn malformed_messages_name_the_rule_they_break() {
        use MessageFault::*;
        let cases: &[(&[u8], MessageFault)] = &[
            (b"", Empty),
            (b"\x7f", UnknownKind(0x7f)),
            (b"\x01\0\0\0\x01", EmptyText),
            (b"\x01\0\0\0", WrongLength(0x01)),
            (b"\x01\0\0\0\x01\xff", InvalidUtf8),
            (b"\x02\0\0\0", WrongLength(0x02)),
            (b"\x02\0\0\0\x01\0", WrongLength(0x02)),
            (b"\x10\0\0\0\x01\0\0\0\0\0\0\0\x05\x00", EmptyName),
            (b"\x10\0\0\0\x01\0\0\0\0\0\0\0\x05\x03ab", WrongLength(0x10)),
            (b"\x10\0\0\0\x01\0\0\0\0\0\0\0\x05\x01ab", WrongLength(0x10)),
            (b"\x12\0\0\0\x01\0\0\0\0\0\0\0\0", EmptyChunk),
            (b"\x13\0\0\0\x01\0", WrongLength(0x13)),
            (b"\x15\0\0\0\x01", WrongLength(0x15)),
        ];
        for (bytes, fault) in cases {
            assert_eq!(
                DataMessage::decode(bytes).unwrap_err(),
                Error::MessageMalformed(*fault),
                "{bytes:?}"
            );
        }
        let mut long_text = vec![0x01, 0, 0, 0, 1];
        long_text.extend(std::iter::repeat_n(b'a', MAX_TEXT + 1));
        assert_eq!(
            DataMessage::decode(&long_text).unwrap_err(),
            Error::MessageMalformed(TextTooLong)
        );
        let mut long_chunk = vec![0x12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        long_chunk.extend(std::iter::repeat_n(0, MAX_CHUNK + 1));
        assert_eq!(
            DataMessage::decode(&long_chunk).unwrap_err(),
            Error::MessageMalformed(ChunkTooLong)
        );
        // An unknown reason byte reads as a protocol violation.
        assert_eq!(
            DataMessage::decode(b"\x16\0\0\0\x01\x09").unwrap(),
            DataMessage::FileDecline {
                id: 1,
                reason: StopReason::ProtocolViolation
            }
        );
    }

    #[test]
    fn this_side_never_sends_what_the_peer_would_refuse() {
        let too_long = DataMessage::Text {
            id: 1,
            text: "a".repeat(MAX_TEXT + 1),
        };
        assert!(matches!(too_long.encode(), Err(Error::CallerMisuse(_))));
        let empty = DataMessage::Text {
            id: 1,
            text: String::new(),
        };
        assert!(matches!(empty.encode(), Err(Error::CallerMisuse(_))));
        let name = DataMessage::FileOffer {
            id: 1,
            size: 1,
            name: "n".repeat(256),
        };
        assert!(matches!(name.encode(), Err(Error::CallerMisuse(_))));
        let chunk = DataMessage::FileChunk {
            id: 1,
            offset: 0,
            data: Vec::new(),
        };
        assert!(matches!(chunk.encode(), Err(Error::CallerMisuse(_))));
    }
}
