//! Sotto's sans-IO cryptographic core (PROTOCOL.md): the handshake, the key schedule, sealed
//! signaling, SFrame media frames and the safety code.
//!
//! No tokio, no sockets, no clock reads: bytes and time go in, bytes and events come out. The
//! relay never depends on this crate (CI checks it), so the relay cannot hold a key even by
//! accident. Its contents arrive with the crypto-core issue.
#![forbid(unsafe_code)]
