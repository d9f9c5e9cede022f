//! Sotto's native client: joins a call from a link, runs the handshake over the relay and talks
//! through the webrtc crate. Its contents arrive with the terminal-call issue.
#![forbid(unsafe_code)]
