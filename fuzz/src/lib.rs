//! What the fuzz targets share: a handshake whose keys exist, with fixed keys so that every run
//! starts from the same state.
#![forbid(unsafe_code)]

use sotto_e2ee::{EphemeralKey, Handshake, LinkSecret, Received};

/// O and A after COMMIT, KEY and REVEAL (both hold the keys), and `exchanged` sealed messages
/// after it: none, O's offer, or O's offer and A's answer.
pub fn keyed(exchanged: usize) -> (Handshake, Handshake) {
    let secret = LinkSecret::from_bytes([3; 32]);
    let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes([1; 32]));
    let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes([2; 32]));
    let Ok(Received::Reply(key)) = a.receive(&commit) else {
        unreachable!("A answers a commit with its key")
    };
    let Ok(Received::KeysReady {
        reply: Some(reveal),
    }) = o.receive(&key)
    else {
        unreachable!("O answers a key with its reveal")
    };
    a.receive(&reveal).ok();
    if exchanged >= 1 {
        let offer = o.seal(b"offer").ok().unwrap_or_default();
        a.receive(&offer).ok();
    }
    if exchanged >= 2 {
        let answer = a.seal(b"answer").ok().unwrap_or_default();
        o.receive(&answer).ok();
    }
    (o, a)
}
