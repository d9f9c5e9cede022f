//! Sotto's sans-IO cryptographic core (PROTOCOL.md): call links, the handshake and the sealed
//! signaling channel it opens, the safety code, the media keys, SFrame media frames, and the
//! data channel's sealed messages.
//!
//! No tokio, no sockets, no clock reads: bytes go in, bytes and events come out. Randomness is
//! read only by the `generate` constructors; everything else is deterministic, which is what
//! lets the vectors in `tests/vectors/sotto-v1.json` pin every byte. The relay never depends
//! on this crate (CI checks it), so the relay cannot hold a key even by accident.
//!
//! Keys are zeroized on drop and have no `Debug`; errors name who is at fault and carry no
//! secret.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod conference;
pub mod data;
mod error;
pub mod handshake;
pub mod identity;
mod kdf;
mod keys;
pub mod link;
pub mod media;
pub mod sdp;
pub mod sframe;

#[cfg(test)]
mod conference_vectors;
#[cfg(test)]
mod rfc9605_vectors;
#[cfg(test)]
mod sotto_vectors;

pub use conference::{
    Commit, CommitOutcome, ConferenceFrame, ConferenceFrames, ConferenceKeys, GroupCode, Member,
    MemberId, MlsKind,
};
pub use data::{DataChannel, DataMessage, StopReason};
pub use error::{Error, FrameFault, MessageFault};
pub use handshake::{EphemeralKey, Handshake, Received, Role};
pub use identity::{DeviceId, DeviceKey, Identity};
pub use keys::{BaseKey, MediaKeys, SafetyCode};
pub use link::{Link, LinkSecret, RoomId};
pub use media::{Codec, FrameDecryptor, FrameEncryptor, KidLayout, OpenedFrame, Stream};
pub use sdp::dtls_fingerprint;
