//! Where a call's frame keys come from, kept apart from where its frames travel: "the key for
//! sender X" is not "the key of this connection". In a one-to-one call or a mesh every key is a
//! pair's (PROTOCOL.md §3.5): what goes out on the transport to a person is sealed with that
//! pair's send key, and what comes in on it is that person's, opened with the pair's receive
//! key. A conference will have one transport (to the SFU) carrying everyone's frames, each
//! opened with its sender's key from the group: the shell asks this source the same two
//! questions either way, "seal for this transport" and "whose is this frame, and what does it
//! say", so it never needs to know which kind of keys it holds.

use crate::transport::TransportId;
use sotto_e2ee::{Error, FrameDecryptor, FrameEncryptor, OpenedFrame};
use sotto_proto::PeerId;
use std::collections::BTreeMap;

/// The call's frame keys. Keys zeroize with the e2ee types that hold them.
#[derive(Debug, Default)]
pub struct FrameKeys {
    /// Each pair's send key, by the transport that carries the pair's frames.
    send: BTreeMap<TransportId, FrameEncryptor>,
    /// Each person's frames as a sender: opened with their pair's receive key.
    receive: BTreeMap<PeerId, FrameDecryptor>,
}

/// Why a frame that came in did not open. Every variant is dropped and counted by the shell:
/// nothing that did not authenticate is played.
#[derive(Debug)]
pub enum OpenFault {
    /// No key for it exists (yet, or any more): frames before the keys, or after the pair.
    NoKey,
    /// It did not authenticate, or broke a rule of PROTOCOL.md §4.
    Refused(Error),
}

impl FrameKeys {
    /// The pair with `peer` has keys: `send` for what goes out on its transport, `receive` for
    /// what `peer` sends.
    pub fn pairwise(&mut self, peer: &PeerId, send: FrameEncryptor, receive: FrameDecryptor) {
        self.send.insert(TransportId::Pair(peer.clone()), send);
        self.receive.insert(peer.clone(), receive);
    }

    /// The pair with `peer` is over: its keys go.
    pub fn forget(&mut self, peer: &PeerId) {
        self.send.remove(&TransportId::Pair(peer.clone()));
        self.receive.remove(peer);
    }

    /// Some transport has a key to send with.
    pub fn can_send(&self) -> bool {
        !self.send.is_empty()
    }

    /// `frame` sealed for `transport`; `None` when it has no key yet (nothing goes out).
    pub fn seal_for(
        &mut self,
        transport: &TransportId,
        frame: &[u8],
    ) -> Option<Result<Vec<u8>, Error>> {
        self.send.get_mut(transport).map(|e| e.encrypt(frame))
    }

    /// A frame that came in on `transport`: whose it is, and what it says. On a pair's
    /// transport only that person's key is tried (a frame that opens with anyone else's was
    /// not sent to us by them).
    pub fn open(
        &mut self,
        transport: &TransportId,
        frame: &[u8],
    ) -> Result<(PeerId, OpenedFrame), OpenFault> {
        let TransportId::Pair(peer) = transport;
        let decryptor = self.receive.get_mut(peer).ok_or(OpenFault::NoKey)?;
        let opened = decryptor.open(frame).map_err(OpenFault::Refused)?;
        Ok((peer.clone(), opened))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_e2ee::{BaseKey, Role, Stream};

    fn peer(b: u8) -> PeerId {
        PeerId::from_bytes(&[b; 16])
    }

    /// The keys of a pair as each side holds them: (ours to send, theirs to open).
    fn pair(seed: u8, role: Role) -> (FrameEncryptor, FrameDecryptor) {
        let mine = BaseKey::from_bytes([seed; 32]);
        let theirs = BaseKey::from_bytes([seed + 1; 32]);
        (
            FrameEncryptor::new(mine, role, Stream::Audio, 0).expect("generation 0"),
            FrameDecryptor::new(theirs, role.peer(), Stream::Audio),
        )
    }

    /// What `peer` seals for us: their send key is our receive key.
    fn from_them(seed: u8, our_role: Role, frame: &[u8]) -> Vec<u8> {
        let theirs = BaseKey::from_bytes([seed + 1; 32]);
        FrameEncryptor::new(theirs, our_role.peer(), Stream::Audio, 0)
            .expect("generation 0")
            .encrypt(frame)
            .expect("seals")
    }

    #[test]
    fn a_frame_is_attributed_to_the_person_whose_pair_key_opens_it_on_their_transport() {
        let (ada, bob) = (peer(1), peer(2));
        let mut keys = FrameKeys::default();
        let (send, receive) = pair(10, Role::Offerer);
        keys.pairwise(&ada, send, receive);
        let (send, receive) = pair(20, Role::Answerer);
        keys.pairwise(&bob, send, receive);

        // Opus: the TOC byte stays in clear.
        let frame = [0x78, 1, 2, 3];
        let sealed = from_them(10, Role::Offerer, &frame);
        let (who, opened) = keys
            .open(&TransportId::Pair(ada.clone()), &sealed)
            .expect("Ada's frame opens on her transport");
        assert_eq!((who, opened.frame.as_slice()), (ada.clone(), &frame[..]));

        // The same bytes on Bob's transport are not Bob's: refused, not passed on.
        let fault = keys.open(&TransportId::Pair(bob.clone()), &sealed);
        assert!(matches!(fault, Err(OpenFault::Refused(_))), "{fault:?}");
    }

    #[test]
    fn frames_go_out_only_on_transports_with_a_key_and_stop_once_the_pair_is_forgotten() {
        let ada = peer(1);
        let mut keys = FrameKeys::default();
        let to_ada = TransportId::Pair(ada.clone());
        assert!(!keys.can_send());
        assert!(keys.seal_for(&to_ada, &[0x78, 1]).is_none());

        let (send, receive) = pair(30, Role::Answerer);
        keys.pairwise(&ada, send, receive);
        assert!(keys.can_send());
        let sealed = keys
            .seal_for(&to_ada, &[0x78, 1])
            .expect("a key")
            .expect("seals");
        assert_ne!(sealed, [0x78, 1]);

        keys.forget(&ada);
        assert!(!keys.can_send());
        assert!(keys.seal_for(&to_ada, &[0x78, 1]).is_none());
        let late = from_them(30, Role::Answerer, &[0x78, 9]);
        assert!(matches!(keys.open(&to_ada, &late), Err(OpenFault::NoKey)));
    }
}
