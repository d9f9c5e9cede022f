//! The wire types of Sotto's relay protocol (PROTOCOL.md, "Relay messages").
//!
//! These are the only types the relay understands. Everything a peer says to another peer travels
//! inside [`Payload`], which the relay checks for shape (canonical base64url) and size but never
//! decodes: it is sealed by the peers and means nothing to the relay.
//!
//! Decoding is strict ("parse, don't validate"): a text frame becomes a typed [`ClientMessage`]
//! once, at the edge, or a [`DecodeError`] that says what the sender got wrong.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod cluster;
mod error;
mod ids;
mod peer;
mod server;

pub use client::{ClientMessage, Layer, ViewSlot};
pub use cluster::{Envelope, NodeId};
pub use error::DecodeError;
pub use ids::{GroupSize, Payload, PeerId, RoomId, is_canonical_base64url};
pub use peer::{MAX_NAME, PeerSignal, clean_name, is_invisible, safe_file_name};
pub use server::{ErrorCode, IceServer, KeyPackageFrom, ServerMessage};

/// How many people a room holds when its `join` has no `max`: a one-to-one call.
pub const ONE_TO_ONE: u8 = 2;

/// The largest MLS epoch a relay message carries: a JSON integer every JavaScript reads exactly
/// (2^53 - 1; a group would need a commit a millisecond for 285,000 years to reach it).
pub const MAX_EPOCH: u64 = (1 << 53) - 1;

/// The largest WebSocket message either side may send, in bytes (PROTOCOL.md, "Limits").
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
