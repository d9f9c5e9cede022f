//! A conference member's media keys (PROTOCOL.md §7.6): each epoch's SFrame base key is the
//! group's MLS exporter output, and the KID tells senders apart (`gen << 16 | stream << 14 |
//! leaf << 6 | epoch % 64`, RFC 9605 §5.2), so every sender has its own keys and nonces under
//! one base key. A receiver holds the current epoch and, for [`PREVIOUS_EPOCH_KEPT`] after a
//! commit, the one before (frames sent just before it); a frame opens only under the epoch and
//! leaf its KID names, from a member of that epoch other than this one.

use crate::media::{EPOCH_BITS, FrameDecryptor, KidLayout, LEAF_BITS, OpenedFrame, Stream};
use crate::sframe::Header;
use crate::{BaseKey, Error, FrameFault, MemberId, media::clear_prefix_len};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a receiver keeps the previous epoch's keys after moving to a new one.
pub const PREVIOUS_EPOCH_KEPT: Duration = Duration::from_secs(10);

/// One epoch's keys as a receiver holds them.
struct EpochKeys {
    epoch: u64,
    base: BaseKey,
    /// The members of this epoch by leaf, this member's own left out.
    senders: BTreeMap<u32, MemberId>,
    /// When these keys go (the previous epoch's only).
    until: Option<Instant>,
    /// One decryptor per sender and stream, made at its first frame.
    decryptors: BTreeMap<(u32, u8), FrameDecryptor>,
}

/// A frame that opened, with who sent it.
#[derive(Debug)]
pub struct ConferenceFrame {
    /// The sender's relay id.
    pub sender: MemberId,
    /// Its leaf in the epoch the frame was sent in.
    pub leaf: u32,
    /// That epoch.
    pub epoch: u64,
    /// The frame and its position.
    pub opened: OpenedFrame,
}

/// The frames a conference member receives, from every other member, on every stream.
#[derive(Default)]
pub struct ConferenceFrames {
    /// The current epoch last, the previous one (while kept) before it.
    epochs: Vec<EpochKeys>,
}

/// Shows the epochs held, never a key.
impl std::fmt::Debug for ConferenceFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let epochs: Vec<u64> = self.epochs.iter().map(|e| e.epoch).collect();
        write!(f, "ConferenceFrames(epochs {epochs:?})")
    }
}

impl ConferenceFrames {
    /// A receiver with no keys yet (it refuses every frame until [`Self::set_epoch`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The group moved to `epoch`, whose base key is `base` and whose members are `members`
    /// (leaf, relay id); `own` is this member's leaf. The epoch before is kept until
    /// `now + PREVIOUS_EPOCH_KEPT`; any older one goes.
    pub fn set_epoch(
        &mut self,
        epoch: u64,
        base: BaseKey,
        members: &[(u32, MemberId)],
        own: u32,
        now: Instant,
    ) {
        self.epochs.retain(|e| e.epoch + 1 == epoch);
        for previous in &mut self.epochs {
            previous.until = Some(now + PREVIOUS_EPOCH_KEPT);
        }
        self.epochs.push(EpochKeys {
            epoch,
            base,
            senders: members
                .iter()
                .filter(|(leaf, _)| *leaf != own)
                .map(|&(leaf, id)| (leaf, id))
                .collect(),
            until: None,
            decryptors: BTreeMap::new(),
        });
    }

    /// Checks and opens one frame that arrived on a track of `stream`. Refused: a KID of
    /// another stream, of an epoch not held (or whose time ran out by `now`), of a leaf that is
    /// no other member of that epoch; and everything [`FrameDecryptor`] refuses.
    pub fn open(
        &mut self,
        stream: Stream,
        frame: &[u8],
        now: Instant,
    ) -> Result<ConferenceFrame, Error> {
        let reject = Error::FrameRejected;
        self.epochs.retain(|e| e.until.is_none_or(|t| now < t));
        let prefix = clear_prefix_len(stream.codec(), frame).ok_or(reject(FrameFault::TooShort))?;
        let (header, _) = Header::parse(&frame[prefix..]).map_err(reject)?;
        let kid = header.kid;
        let epoch_bits = kid % (1 << EPOCH_BITS);
        let leaf = u32::try_from((kid >> EPOCH_BITS) % (1 << LEAF_BITS)).unwrap_or(u32::MAX);
        let kid_stream = (kid >> (EPOCH_BITS + LEAF_BITS)) & 3;
        if Stream::from_bits(kid_stream) != Some(stream) {
            return Err(reject(FrameFault::WrongStream));
        }
        let keys = self
            .epochs
            .iter_mut()
            .find(|e| e.epoch % (1 << EPOCH_BITS) == epoch_bits)
            .ok_or(reject(FrameFault::UnknownEpoch))?;
        let sender = *keys
            .senders
            .get(&leaf)
            .ok_or(reject(FrameFault::UnknownSender))?;
        let epoch = keys.epoch;
        let layout = KidLayout::Conference {
            stream,
            leaf,
            epoch,
        };
        let decryptor = keys
            .decryptors
            .entry((leaf, stream as u8))
            .or_insert_with(|| FrameDecryptor::with_layout(BaseKey(keys.base.0.clone()), layout));
        let opened = decryptor.open(frame)?;
        Ok(ConferenceFrame {
            sender,
            leaf,
            epoch,
            opened,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::FrameEncryptor;

    const OPUS: &[u8] = b"\x78opus payload";

    fn base(b: u8) -> BaseKey {
        BaseKey::from_exporter(&[b; 16])
    }

    fn sender(b: u8, leaf: u32, epoch: u64, stream: Stream) -> FrameEncryptor {
        let layout = KidLayout::Conference {
            stream,
            leaf,
            epoch,
        };
        FrameEncryptor::with_layout(base(b), layout, 0).expect("an encryptor")
    }

    /// Ada (leaf 0), Bea (leaf 1) and Cy (leaf 2); this receiver is Cy.
    fn members() -> Vec<(u32, MemberId)> {
        vec![(0, [0xad; 16]), (1, [0xbe; 16]), (2, [0xc0; 16])]
    }

    #[test]
    fn each_sender_opens_under_its_own_kid_and_is_named() {
        let now = Instant::now();
        let mut rx = ConferenceFrames::new();
        rx.set_epoch(7, base(7), &members(), 2, now);
        let mut ada = sender(7, 0, 7, Stream::Audio);
        let mut bea = sender(7, 1, 7, Stream::Audio);
        let a = ada.encrypt(OPUS).expect("sealed");
        let b = bea.encrypt(OPUS).expect("sealed");
        // Same base key, same counter, different KIDs: different ciphertexts.
        assert_ne!(a, b);
        let got = rx.open(Stream::Audio, &a, now).expect("opens");
        assert_eq!((got.sender, got.leaf, got.epoch), ([0xad; 16], 0, 7));
        assert_eq!(got.opened.frame, OPUS);
        assert_eq!(
            rx.open(Stream::Audio, &b, now).expect("opens").sender,
            [0xbe; 16]
        );
        // A replay is refused per sender.
        assert!(matches!(
            rx.open(Stream::Audio, &a, now),
            Err(Error::FrameRejected(FrameFault::Replayed))
        ));
    }

    #[test]
    fn frames_of_no_member_of_another_stream_or_of_an_epoch_not_held_are_refused() {
        let now = Instant::now();
        let mut rx = ConferenceFrames::new();
        rx.set_epoch(7, base(7), &members(), 2, now);
        let refused = |rx: &mut ConferenceFrames, s: Stream, f: &[u8]| match rx.open(s, f, now) {
            Err(Error::FrameRejected(fault)) => fault,
            other => panic!("{other:?}"),
        };
        // Leaf 3 is no member; leaf 2 is this receiver (a reflected frame).
        let f = sender(7, 3, 7, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert_eq!(
            refused(&mut rx, Stream::Audio, &f),
            FrameFault::UnknownSender
        );
        let f = sender(7, 2, 7, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert_eq!(
            refused(&mut rx, Stream::Audio, &f),
            FrameFault::UnknownSender
        );
        // An audio frame on a video track.
        let f = sender(7, 0, 7, Stream::Audio)
            .encrypt(b"\x31\x02\x00delta frame")
            .expect("sealed");
        assert_eq!(refused(&mut rx, Stream::Video, &f), FrameFault::WrongStream);
        // The next epoch, before this member is in it.
        let f = sender(8, 0, 8, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert_eq!(
            refused(&mut rx, Stream::Audio, &f),
            FrameFault::UnknownEpoch
        );
        // The right KID under another epoch's key (epoch 71 has epoch 7's low bits).
        let f = sender(71, 0, 71, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert_eq!(
            refused(&mut rx, Stream::Audio, &f),
            FrameFault::AuthenticationFailed
        );
    }

    #[test]
    fn the_previous_epoch_opens_for_ten_seconds_and_a_removed_member_only_in_it() {
        let t0 = Instant::now();
        let mut rx = ConferenceFrames::new();
        rx.set_epoch(7, base(7), &members(), 2, t0);
        let mut bea_old = sender(7, 1, 7, Stream::Audio);
        // Epoch 8 removes Bea.
        let after: Vec<(u32, MemberId)> = vec![(0, [0xad; 16]), (2, [0xc0; 16])];
        rx.set_epoch(8, base(8), &after, 2, t0);
        // What Bea sent before the commit still opens, for ten seconds.
        let f = bea_old.encrypt(OPUS).expect("sealed");
        assert!(
            rx.open(Stream::Audio, &f, t0 + PREVIOUS_EPOCH_KEPT / 2)
                .is_ok()
        );
        // Bea holds only epoch 7's key: sealing as leaf 1 of epoch 8 fails to authenticate,
        // and leaf 1 is no member of epoch 8 anyway.
        let f = FrameEncryptor::with_layout(
            base(7),
            KidLayout::Conference {
                stream: Stream::Audio,
                leaf: 1,
                epoch: 8,
            },
            0,
        )
        .expect("an encryptor")
        .encrypt(OPUS)
        .expect("sealed");
        assert!(matches!(
            rx.open(Stream::Audio, &f, t0),
            Err(Error::FrameRejected(FrameFault::UnknownSender))
        ));
        let ada_new = sender(8, 0, 8, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert!(rx.open(Stream::Audio, &ada_new, t0).is_ok());
        // Ten seconds on, epoch 7 is gone.
        let f = bea_old.encrypt(OPUS).expect("sealed");
        assert!(matches!(
            rx.open(Stream::Audio, &f, t0 + PREVIOUS_EPOCH_KEPT),
            Err(Error::FrameRejected(FrameFault::UnknownEpoch))
        ));
        // Epoch 9 drops epoch 7 at once, whatever the time.
        rx.set_epoch(9, base(9), &after, 2, t0);
        rx.set_epoch(10, base(10), &after, 2, t0);
        let f = sender(8, 0, 8, Stream::Audio)
            .encrypt(OPUS)
            .expect("sealed");
        assert!(matches!(
            rx.open(Stream::Audio, &f, t0),
            Err(Error::FrameRejected(FrameFault::UnknownEpoch))
        ));
    }
}
