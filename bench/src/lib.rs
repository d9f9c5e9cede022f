//! Benchmarks for Sotto, measured from outside as users load it, beside the relays people use
//! today. Never part of the test suite: nothing here asserts a time.
//!
//! - [`peers`]: one adapter per signaling protocol (Sotto, matchbox_server, the PeerJS server):
//!   how to join a room, address a peer and wrap a message.
//! - [`load`]: the relay scenarios (ping-pong, idle connections, a flood into a peer that
//!   never reads).
//! - [`procfs`]: a server's memory and CPU time, read from `/proc`.
#![forbid(unsafe_code)]

pub mod load;
pub mod peers;
pub mod procfs;

use std::fmt;

/// Why a benchmark could not run. Each variant names who failed: the server under test, the
/// generator, or the machine.
#[derive(Debug)]
#[non_exhaustive]
pub enum BenchError {
    /// The server refused or failed a connection.
    Connect(String),
    /// The server closed a connection the scenario needed.
    ServerClosed(String),
    /// The server said something the adapter did not expect.
    Unexpected(String),
    /// The server's process is gone (or this is not Linux).
    NoServerProcess(u32),
    /// The generator itself failed.
    Generator(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Connect(e) => write!(f, "server refused the connection: {e}"),
            BenchError::ServerClosed(e) => write!(f, "server closed a connection: {e}"),
            BenchError::Unexpected(e) => write!(f, "server sent something unexpected: {e}"),
            BenchError::NoServerProcess(pid) => write!(f, "no server process {pid} in /proc"),
            BenchError::Generator(e) => write!(f, "load generator failed: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}
