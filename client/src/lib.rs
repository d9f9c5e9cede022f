//! Sotto's native client: joins a call from a link, runs the handshake over the relay, and
//! talks through the webrtc crate with every frame SFrame-encrypted.
//!
//! Layout: `room` is the protocol, sans-IO (the room and a pair with each other person; `call`
//! its signaling messages and outcomes); `session` is the one loop that drives it; `rtc` is the
//! only module that touches the webrtc crate; `relay` owns the WebSocket; `audio` holds Opus
//! and the sources and sinks, `playout` the receive side; `devices` is the sound card (a thread of its own) and `engine`
//! what it does between the card and the call, sans-IO (`resample`, `processing`).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod audio;
pub mod call;
pub mod chat;
pub mod conference;
pub mod conversation;
pub mod devices;
pub mod engine;
pub mod frame_keys;
pub mod known;
pub mod playout;
pub mod processing;
pub mod relay;
pub mod resample;
pub mod room;
pub mod rtc;
pub mod session;
pub mod status;
pub mod transport;

use std::fmt;

/// What can stop the client. Each variant names who is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The user's link is not a Sotto link.
    BadLink(String),
    /// The relay could not be reached.
    RelayUnreachable(String),
    /// The relay's TLS certificate was refused (unknown authority, wrong name, expired, ...).
    RelayCertificate(String),
    /// The user's `--ca-file` cannot be used.
    CaFile(String),
    /// An audio file or device could not be used.
    Audio(String),
    /// The user's `--input-device` or `--output-device` names no device, or several.
    AudioDevice(String),
    /// The system could not make keys.
    Crypto(String),
    /// This computer's Sotto data (the device key, the known devices) cannot be read or
    /// written, or a change to it was refused (a name already taken).
    DataDir(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLink(why) => write!(f, "{why}"),
            Self::RelayUnreachable(why) => write!(f, "cannot reach the relay: {why}"),
            Self::RelayCertificate(why) => {
                write!(f, "the relay's TLS certificate was refused: {why}")
            }
            Self::CaFile(why) => write!(f, "--ca-file {why}"),
            Self::Audio(why) => write!(f, "audio: {why}"),
            Self::AudioDevice(why) => write!(f, "{why}"),
            Self::Crypto(why) => write!(f, "cryptography: {why}"),
            Self::DataDir(why) => write!(f, "known devices: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}
