//! The handshake state machine driven through arbitrary interleavings of honest messages,
//! tampered ones and forged ones, on both sides at once: never panics, and whenever both sides
//! end up established they agree on the safety code and open each other's messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};
use std::collections::VecDeque;

fuzz_target!(|data: &[u8]| {
    let secret = LinkSecret::from_bytes([5; 32]);
    let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes([1; 32]));
    let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes([2; 32]));
    // Messages in flight: to A, to O.
    let mut to_a: VecDeque<Vec<u8>> = VecDeque::from([commit]);
    let mut to_o: VecDeque<Vec<u8>> = VecDeque::new();
    let mut ops = data.chunks(3);
    while let Some(op) = ops.next() {
        let (kind, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        let (me, inbox, outbox) = if kind & 1 == 0 {
            (&mut a, &mut to_a, &mut to_o)
        } else {
            (&mut o, &mut to_o, &mut to_a)
        };
        match kind >> 1 & 7 {
            // Deliver the next honest message.
            0 | 1 => {
                if let Some(m) = inbox.pop_front()
                    && let Ok(Received::Reply(r) | Received::KeysReady { reply: Some(r) }) =
                        me.receive(&m)
                {
                    outbox.push_back(r);
                }
            }
            // Deliver it with one bit flipped.
            2 => {
                if let Some(mut m) = inbox.pop_front() {
                    let i = usize::from(arg) % m.len().max(1);
                    if let Some(b) = m.get_mut(i) {
                        *b ^= 1 << (op.get(2).copied().unwrap_or(0) % 8);
                    }
                    let _ = me.receive(&m);
                }
            }
            // Replay it (deliver without removing).
            3 => {
                if let Some(m) = inbox.front().cloned() {
                    let _ = me.receive(&m);
                }
            }
            // Seal something for the peer.
            4 => {
                if let Ok(m) = me.seal(&[arg; 5]) {
                    outbox.push_back(m);
                }
            }
            // Drop a message.
            5 => {
                inbox.pop_front();
            }
            // Forge a message of this kind from the remaining ops' bytes.
            _ => {
                let forged: Vec<u8> = std::iter::once(arg % 6).chain(ops.by_ref().take(11).flatten().copied()).collect();
                let _ = me.receive(&forged);
            }
        }
    }
    if o.is_established() && a.is_established() {
        assert_eq!(o.safety_code(), a.safety_code());
    }
});
