//! Sotto's media frames (PROTOCOL.md §4): SFrame suite 0x0004 on every encoded audio and video
//! frame, with the KID scheme, the codec prefixes left in clear, and the receiver's checks.
//!
//! ```text
//! frame on the wire = prefix || SFrame header || ciphertext || tag(16)
//! prefix            = the bytes the receiving depacketizer must read in clear; it is the
//!                     SFrame metadata (authenticated, not encrypted)
//! KID               = gen << 3 | stream << 1 | role                      (a pair's call)
//!                     gen << 16 | stream << 14 | leaf << 6 | epoch % 64  (a conference)
//! ```

use crate::handshake::Role;
use crate::keys::BaseKey;
use crate::sframe::{CipherSuite, Header, KidKey, MAX_HEADER_LEN, TAG_LEN};
use crate::{Error, FrameFault};

/// The cipher suite of Sotto v1's media frames.
pub const SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;
/// The largest CTR a sender uses under one KID; receivers refuse larger ones.
pub const MAX_CTR: u64 = (1 << 32) - 1;
/// The largest generation: the KID (gen << 3 | ...) must fit in 64 bits.
pub const MAX_GEN: u64 = (1 << 61) - 1;
/// How many CTRs below the highest one a receiver still accepts (once each).
pub const REPLAY_WINDOW: u64 = 128;
/// Key generations a receiver keeps at once (the current one and the one before, so frames
/// reordered around a sender's switch still open).
const KEPT_GENERATIONS: usize = 2;
/// The longest clear prefix (a VP8 key frame).
const MAX_PREFIX_LEN: usize = 10;

/// Which media stream a frame belongs to: the KID's two stream bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Microphone: Opus.
    Audio = 0,
    /// Camera: VP8.
    Video = 1,
    /// Screen share: VP8.
    Screen = 2,
}

impl Stream {
    /// The stream of these two KID bits; 3 is invalid.
    pub fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            0 => Some(Self::Audio),
            1 => Some(Self::Video),
            2 => Some(Self::Screen),
            _ => None,
        }
    }

    /// The codec v1 uses for this stream.
    pub fn codec(self) -> Codec {
        match self {
            Self::Audio => Codec::Opus,
            Self::Video | Self::Screen => Codec::Vp8,
        }
    }
}

/// The codecs of v1 (VP9, H264 and AV1 are refused while E2EE is on: their packetizers
/// rewrite the bitstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
}

/// How many bytes at the start of `frame` stay in clear, or `None` when the frame is shorter
/// than that (such a frame is dropped by sender and receiver).
///
/// - Opus: 1 byte, the TOC (RFC 6716 §3.1).
/// - VP8: the frame tag's P bit (RFC 6386 §9.1: `byte0 & 1 == 0` is a key frame) decides:
///   10 bytes for a key frame (3-byte frame tag, start code, dimensions), 3 for a delta frame.
///   The receiver reads the P bit from the frame itself, never from a flag of its WebRTC stack.
pub fn clear_prefix_len(codec: Codec, frame: &[u8]) -> Option<usize> {
    let len = match codec {
        Codec::Opus => 1,
        Codec::Vp8 => {
            if frame.first()? & 1 == 0 {
                10
            } else {
                3
            }
        }
    };
    (frame.len() >= len).then_some(len)
}

/// `gen << 3 | stream << 1 | role`.
pub fn kid(generation: u64, stream: Stream, role: Role) -> u64 {
    KidLayout::Pair { stream, role }.kid(generation)
}

/// The KID bits a conference gives a member's epoch (PROTOCOL.md §7.6): its leaf index.
pub const LEAF_BITS: u32 = 8;
/// The KID bits of the epoch (its low bits: a receiver keeps at most two epochs).
pub const EPOCH_BITS: u32 = 6;

/// Who a KID says sent a frame, below its generation (PROTOCOL.md §4.3 and §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidLayout {
    /// A pair's call: `gen << 3 | stream << 1 | role`.
    Pair {
        /// The stream.
        stream: Stream,
        /// The sender's role.
        role: Role,
    },
    /// A conference: `gen << 16 | stream << 14 | leaf << 6 | epoch % 64` (RFC 9605 §5.2, its
    /// context id being `gen << 2 | stream`).
    Conference {
        /// The stream.
        stream: Stream,
        /// The sender's leaf index in the group (below 2^8).
        leaf: u32,
        /// The group's epoch.
        epoch: u64,
    },
}

impl KidLayout {
    /// How many bits sit below the generation.
    fn shift(self) -> u32 {
        match self {
            Self::Pair { .. } => 3,
            Self::Conference { .. } => 2 + LEAF_BITS + EPOCH_BITS,
        }
    }

    /// The bits below the generation.
    fn low(self) -> u64 {
        match self {
            Self::Pair { stream, role } => ((stream as u64) << 1) | role.bit(),
            Self::Conference {
                stream,
                leaf,
                epoch,
            } => {
                ((stream as u64) << (LEAF_BITS + EPOCH_BITS))
                    | (u64::from(leaf) << EPOCH_BITS)
                    | (epoch % (1 << EPOCH_BITS))
            }
        }
    }

    fn stream(self) -> Stream {
        match self {
            Self::Pair { stream, .. } | Self::Conference { stream, .. } => stream,
        }
    }

    /// The largest generation: the KID must fit in 64 bits.
    pub fn max_generation(self) -> u64 {
        (1 << (64 - self.shift())) - 1
    }

    /// The KID of `generation`.
    pub fn kid(self, generation: u64) -> u64 {
        (generation << self.shift()) | self.low()
    }

    /// The generation of `kid` if it has this layout's low bits, or why not.
    fn generation_of(self, kid: u64) -> Result<u64, FrameFault> {
        let mask = (1 << self.shift()) - 1;
        if kid & mask == self.low() {
            return Ok(kid >> self.shift());
        }
        Err(match self {
            Self::Pair { role, .. } if kid & 1 != role.bit() => FrameFault::WrongRole,
            Self::Pair { .. } => FrameFault::WrongStream,
            Self::Conference { .. } => FrameFault::UnknownSender,
        })
    }
}

/// Encrypts one stream's frames. Re-create it with the next `gen` whenever the sending side is
/// re-created, so a counter never restarts under one key.
pub struct FrameEncryptor {
    base: BaseKey,
    layout: KidLayout,
    generation: u64,
    ctr: u64,
    key: KidKey,
}

/// Shows the public state only.
impl std::fmt::Debug for FrameEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FrameEncryptor({:?}, generation {}, ctr {})",
            self.layout, self.generation, self.ctr
        )
    }
}

impl FrameEncryptor {
    /// An encryptor for `stream`, sending as `role`, starting at generation `gen`.
    pub fn new(base: BaseKey, role: Role, stream: Stream, generation: u64) -> Result<Self, Error> {
        Self::with_layout(base, KidLayout::Pair { stream, role }, generation)
    }

    /// An encryptor whose KIDs have `layout` (a conference member's: its stream, leaf and
    /// epoch, with that epoch's base key), starting at generation `gen`.
    pub fn with_layout(base: BaseKey, layout: KidLayout, generation: u64) -> Result<Self, Error> {
        if generation > layout.max_generation() {
            return Err(Error::FrameUnsendable("key generations exhausted"));
        }
        if let KidLayout::Conference { leaf, .. } = layout
            && leaf >= 1 << LEAF_BITS
        {
            return Err(Error::FrameUnsendable("leaf index beyond the KID's 8 bits"));
        }
        let key = KidKey::derive(SUITE, base.0.as_ref(), layout.kid(generation));
        Ok(Self {
            base,
            layout,
            generation,
            ctr: 0,
            key,
        })
    }

    /// The generation in use (the next encryptor for this stream starts above it).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Encrypts one encoded frame: `prefix || header || ciphertext || tag`.
    pub fn encrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, Error> {
        let prefix = clear_prefix_len(self.layout.stream().codec(), frame).ok_or(
            Error::FrameUnsendable("frame shorter than its codec prefix"),
        )?;
        if self.ctr > MAX_CTR {
            // 2^32 frames under one key: move to the next generation instead of wrapping.
            if self.generation == self.layout.max_generation() {
                return Err(Error::FrameUnsendable("key generations exhausted"));
            }
            self.generation += 1;
            self.ctr = 0;
            self.key = KidKey::derive(
                SUITE,
                self.base.0.as_ref(),
                self.layout.kid(self.generation),
            );
        }
        let ctr = self.ctr;
        let mut header = [0u8; MAX_HEADER_LEN];
        let hlen = Header {
            kid: self.layout.kid(self.generation),
            ctr,
        }
        .encode_into(&mut header);
        let (metadata, payload) = frame.split_at(prefix);
        let mut aad = [0u8; MAX_HEADER_LEN + MAX_PREFIX_LEN];
        aad[..hlen].copy_from_slice(&header[..hlen]);
        aad[hlen..hlen + prefix].copy_from_slice(metadata);

        let mut out = Vec::with_capacity(frame.len() + hlen + TAG_LEN);
        out.extend_from_slice(metadata);
        out.extend_from_slice(&header[..hlen]);
        let start = out.len();
        out.extend_from_slice(payload);
        let tag = self.key.seal(ctr, &aad[..hlen + prefix], &mut out[start..]);
        out.extend_from_slice(&tag);
        self.ctr += 1;
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn set_counter_for_test(&mut self, ctr: u64) {
        self.ctr = ctr;
    }
}

/// Which CTRs of one KID were seen: `top`, the highest authenticated CTR, and a bit per CTR in
/// `(top - 128, top]` (bit i is `top - i`).
#[derive(Debug, Clone, Default)]
struct ReplayWindow {
    top: Option<u64>,
    seen: u128,
}

impl ReplayWindow {
    /// True when `ctr` may be accepted: above `top`, or unseen and within the window.
    fn allows(&self, ctr: u64) -> bool {
        let Some(top) = self.top else { return true };
        if ctr > top {
            return true;
        }
        let age = top - ctr;
        age < REPLAY_WINDOW && self.seen & (1u128 << age) == 0
    }

    /// Records `ctr` as seen; only ever called after the frame authenticated.
    fn record(&mut self, ctr: u64) {
        match self.top {
            Some(top) if ctr <= top => self.seen |= 1u128 << (top - ctr),
            Some(top) => {
                let shift = ctr - top;
                self.seen = if shift >= 128 { 0 } else { self.seen << shift };
                self.seen |= 1;
                self.top = Some(ctr);
            }
            None => {
                self.seen = 1;
                self.top = Some(ctr);
            }
        }
    }
}

struct Generation {
    generation: u64,
    key: KidKey,
    window: ReplayWindow,
}

/// Decrypts the frames of one of the peer's streams.
pub struct FrameDecryptor {
    base: BaseKey,
    /// The layout the sender's KIDs have.
    layout: KidLayout,
    /// At most [`KEPT_GENERATIONS`], oldest first; keys derived lazily.
    gens: Vec<Generation>,
}

/// Shows the public state only.
impl std::fmt::Debug for FrameDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gens: Vec<u64> = self.gens.iter().map(|g| g.generation).collect();
        write!(f, "FrameDecryptor(from {:?}, gens {gens:?})", self.layout)
    }
}

impl FrameDecryptor {
    /// A decryptor for the frames `peer` sends on `stream`.
    pub fn new(base: BaseKey, peer: Role, stream: Stream) -> Self {
        Self::with_layout(base, KidLayout::Pair { stream, role: peer })
    }

    /// A decryptor for the frames whose KIDs have `layout` (a conference sender's).
    pub fn with_layout(base: BaseKey, layout: KidLayout) -> Self {
        Self {
            base,
            layout,
            gens: Vec::with_capacity(KEPT_GENERATIONS + 1),
        }
    }

    /// Checks and decrypts one frame from the network; returns `prefix || plaintext`, the
    /// frame as the peer's encoder made it. A frame that breaks any rule is refused, and the
    /// replay window moves only for frames that authenticated.
    pub fn decrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, Error> {
        self.open(frame).map(|opened| opened.frame)
    }

    /// As [`FrameDecryptor::decrypt`], also giving the frame's authenticated position.
    pub fn open(&mut self, frame: &[u8]) -> Result<OpenedFrame, Error> {
        let reject = Error::FrameRejected;
        let prefix = clear_prefix_len(self.layout.stream().codec(), frame)
            .ok_or(reject(FrameFault::TooShort))?;
        let (metadata, rest) = frame.split_at(prefix);
        let (header, hlen) = Header::parse(rest).map_err(reject)?;
        let generation = self.layout.generation_of(header.kid).map_err(reject)?;
        if header.ctr > MAX_CTR {
            return Err(reject(FrameFault::CounterTooLarge));
        }
        let body = &rest[hlen..];
        if body.len() < TAG_LEN {
            return Err(reject(FrameFault::TooShort));
        }
        let (ct, tag) = body.split_at(body.len() - TAG_LEN);

        let known = self.gens.iter().position(|g| g.generation == generation);
        if known.is_none()
            && self.gens.len() == KEPT_GENERATIONS
            && self
                .gens
                .first()
                .is_some_and(|oldest| generation < oldest.generation)
        {
            return Err(reject(FrameFault::StaleGeneration));
        }
        if let Some(i) = known
            && !self.gens[i].window.allows(header.ctr)
        {
            return Err(reject(FrameFault::Replayed));
        }
        // A new generation's key is derived here and kept only if the frame authenticates.
        let fresh;
        let key = match known {
            Some(i) => &self.gens[i].key,
            None => {
                fresh = KidKey::derive(SUITE, self.base.0.as_ref(), header.kid);
                &fresh
            }
        };
        let mut aad = [0u8; MAX_HEADER_LEN + MAX_PREFIX_LEN];
        aad[..hlen].copy_from_slice(&rest[..hlen]);
        aad[hlen..hlen + prefix].copy_from_slice(metadata);
        let mut out = Vec::with_capacity(prefix + ct.len());
        out.extend_from_slice(metadata);
        out.extend_from_slice(ct);
        if !key.open(header.ctr, &aad[..hlen + prefix], &mut out[prefix..], tag) {
            return Err(reject(FrameFault::AuthenticationFailed));
        }
        let opened = OpenedFrame {
            frame: out,
            generation,
            ctr: header.ctr,
        };
        match known {
            Some(i) => self.gens[i].window.record(header.ctr),
            None => {
                let mut window = ReplayWindow::default();
                window.record(header.ctr);
                let key = KidKey::derive(SUITE, self.base.0.as_ref(), header.kid);
                let at = self.gens.partition_point(|g| g.generation < generation);
                self.gens.insert(
                    at,
                    Generation {
                        generation,
                        key,
                        window,
                    },
                );
                if self.gens.len() > KEPT_GENERATIONS {
                    self.gens.remove(0);
                }
            }
        }
        Ok(opened)
    }
}

/// A frame that authenticated, with the position its sender gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedFrame {
    /// `prefix || plaintext`: the frame as the peer's encoder made it.
    pub frame: Vec<u8>,
    /// The sender's key generation.
    pub generation: u64,
    /// The frame's counter under that generation (one more per frame).
    pub ctr: u64,
}

impl OpenedFrame {
    /// A single increasing position across generations: generation in the high bits.
    pub fn position(&self) -> u64 {
        (self.generation.min(u64::from(u32::MAX)) << 32) | self.ctr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(b: u8) -> BaseKey {
        BaseKey::from_bytes([b; 32])
    }

    fn pair(stream: Stream) -> (FrameEncryptor, FrameDecryptor) {
        (
            FrameEncryptor::new(base(1), Role::Offerer, stream, 0).unwrap(),
            FrameDecryptor::new(base(1), Role::Offerer, stream),
        )
    }

    const OPUS: &[u8] = b"\x78opus payload";
    /// A VP8 key frame: P bit 0, start code, 640x480.
    const VP8_KEY: &[u8] = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01key frame data";
    /// A VP8 delta frame: P bit 1.
    const VP8_DELTA: &[u8] = b"\x31\x02\x00delta frame data";

    #[test]
    fn codec_prefixes_follow_the_rfcs() {
        assert_eq!(clear_prefix_len(Codec::Opus, OPUS), Some(1));
        assert_eq!(clear_prefix_len(Codec::Opus, b""), None);
        assert_eq!(clear_prefix_len(Codec::Vp8, VP8_KEY), Some(10));
        assert_eq!(clear_prefix_len(Codec::Vp8, VP8_DELTA), Some(3));
        assert_eq!(clear_prefix_len(Codec::Vp8, &VP8_KEY[..9]), None);
        assert_eq!(clear_prefix_len(Codec::Vp8, &VP8_DELTA[..2]), None);
        assert_eq!(clear_prefix_len(Codec::Vp8, &VP8_KEY[..10]), Some(10));
    }

    #[test]
    fn frames_keep_their_prefix_in_clear_and_round_trip() {
        for (stream, frame) in [
            (Stream::Audio, OPUS),
            (Stream::Video, VP8_KEY),
            (Stream::Video, VP8_DELTA),
            (Stream::Screen, VP8_DELTA),
        ] {
            let (mut enc, mut dec) = pair(stream);
            let sealed = enc.encrypt(frame).unwrap();
            let p = clear_prefix_len(stream.codec(), frame).unwrap();
            assert_eq!(&sealed[..p], &frame[..p], "prefix in clear");
            assert!(
                !sealed
                    .windows(8)
                    .any(|w| frame[p..].windows(8).any(|f| f == w)),
                "payload encrypted"
            );
            let (h, _) = Header::parse(&sealed[p..]).unwrap();
            assert_eq!(h.kid, kid(0, stream, Role::Offerer));
            assert_eq!(dec.decrypt(&sealed).unwrap(), frame);
        }
    }

    #[test]
    fn the_kid_scheme_packs_gen_stream_and_role() {
        assert_eq!(kid(0, Stream::Audio, Role::Offerer), 0);
        assert_eq!(kid(0, Stream::Video, Role::Answerer), 0b011);
        assert_eq!(kid(5, Stream::Screen, Role::Answerer), 5 << 3 | 0b101);
        assert_eq!(Stream::from_bits(3), None);
    }

    #[test]
    fn frames_shorter_than_their_prefix_are_dropped_by_both_sides() {
        let (mut enc, mut dec) = pair(Stream::Video);
        assert!(matches!(
            enc.encrypt(&VP8_KEY[..5]),
            Err(Error::FrameUnsendable(_))
        ));
        assert!(matches!(enc.encrypt(b""), Err(Error::FrameUnsendable(_))));
        assert_eq!(
            dec.decrypt(&VP8_KEY[..5]),
            Err(Error::FrameRejected(FrameFault::TooShort))
        );
        // Long enough for the prefix but not for header and tag.
        let sealed = enc.encrypt(VP8_DELTA).unwrap();
        assert_eq!(
            dec.decrypt(&sealed[..sealed.len() - 17]),
            Err(Error::FrameRejected(FrameFault::TooShort))
        );
    }

    #[test]
    fn receivers_accept_only_the_peers_role_and_their_own_stream() {
        let mut own = FrameEncryptor::new(base(1), Role::Answerer, Stream::Audio, 0).unwrap();
        let mut dec = FrameDecryptor::new(base(1), Role::Offerer, Stream::Audio);
        assert_eq!(
            dec.decrypt(&own.encrypt(OPUS).unwrap()),
            Err(Error::FrameRejected(FrameFault::WrongRole))
        );
        // A screen frame offered to the camera's decryptor.
        let mut screen = FrameEncryptor::new(base(1), Role::Offerer, Stream::Screen, 0).unwrap();
        let mut camera = FrameDecryptor::new(base(1), Role::Offerer, Stream::Video);
        assert_eq!(
            camera.decrypt(&screen.encrypt(VP8_DELTA).unwrap()),
            Err(Error::FrameRejected(FrameFault::WrongStream))
        );
        // Stream bits 3, hand-made with a valid tag.
        let forged = crate::sframe::encrypt(SUITE, &[1; 32], 0b110, 0, &VP8_DELTA[..3], b"x");
        let frame = [&VP8_DELTA[..3], &forged[..]].concat();
        assert_eq!(
            camera.decrypt(&frame),
            Err(Error::FrameRejected(FrameFault::WrongStream))
        );
    }

    #[test]
    fn tampered_frames_fail_authentication_and_do_not_move_the_window() {
        let (mut enc, mut dec) = pair(Stream::Video);
        let sealed = enc.encrypt(VP8_KEY).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x04;
            assert!(dec.decrypt(&bad).is_err(), "flip at byte {i} accepted");
        }
        // The genuine frame still opens: failures recorded nothing.
        assert_eq!(dec.decrypt(&sealed).unwrap(), VP8_KEY);
        let mut wrong_key = FrameDecryptor::new(base(2), Role::Offerer, Stream::Video);
        assert_eq!(
            wrong_key.decrypt(&sealed),
            Err(Error::FrameRejected(FrameFault::AuthenticationFailed))
        );
    }

    #[test]
    fn the_replay_window_accepts_unseen_counters_within_128_and_any_above() {
        let (mut enc, mut dec) = pair(Stream::Audio);
        let frames: Vec<_> = (0..300).map(|_| enc.encrypt(OPUS).unwrap()).collect();
        assert!(dec.decrypt(&frames[200]).is_ok()); // top = 200
        assert_eq!(
            dec.decrypt(&frames[200]),
            Err(Error::FrameRejected(FrameFault::Replayed))
        );
        assert!(dec.decrypt(&frames[73]).is_ok()); // 200 - 73 = 127: inside (top - 128, top]
        assert_eq!(
            dec.decrypt(&frames[72]),
            Err(Error::FrameRejected(FrameFault::Replayed))
        );
        assert_eq!(
            dec.decrypt(&frames[73]),
            Err(Error::FrameRejected(FrameFault::Replayed))
        );
        assert!(dec.decrypt(&frames[150]).is_ok());
        assert!(dec.decrypt(&frames[299]).is_ok()); // jump: 150 now out of the window
        assert_eq!(
            dec.decrypt(&frames[150]),
            Err(Error::FrameRejected(FrameFault::Replayed))
        );
        assert!(dec.decrypt(&frames[298]).is_ok());
    }

    #[test]
    fn counters_past_2_to_the_32_are_refused_and_the_sender_moves_to_the_next_gen() {
        let (mut enc, mut dec) = pair(Stream::Audio);
        enc.set_counter_for_test(MAX_CTR);
        let last = enc.encrypt(OPUS).unwrap();
        let (h, _) = Header::parse(&last[1..]).unwrap();
        assert_eq!((h.kid >> 3, h.ctr), (0, MAX_CTR));
        let next = enc.encrypt(OPUS).unwrap();
        let (h, _) = Header::parse(&next[1..]).unwrap();
        assert_eq!((h.kid >> 3, h.ctr), (1, 0));
        assert_eq!(enc.generation(), 1);
        // The receiver derives generation 1 lazily and opens both.
        assert_eq!(dec.decrypt(&last).unwrap(), OPUS);
        assert_eq!(dec.decrypt(&next).unwrap(), OPUS);
        // A hand-made CTR of 2^32 (valid tag) is refused before any decryption.
        let forged = crate::sframe::encrypt(SUITE, &[1; 32], 0, 1 << 32, b"\x78", b"x");
        assert_eq!(
            dec.decrypt(&[&b"\x78"[..], &forged[..]].concat()),
            Err(Error::FrameRejected(FrameFault::CounterTooLarge))
        );
    }

    #[test]
    fn a_recreated_sender_uses_a_new_generation_and_old_ones_retire() {
        let mut dec = FrameDecryptor::new(base(1), Role::Answerer, Stream::Audio);
        let mut g0 = FrameEncryptor::new(base(1), Role::Answerer, Stream::Audio, 0).unwrap();
        let old = g0.encrypt(OPUS).unwrap();
        let old2 = g0.encrypt(OPUS).unwrap();
        assert!(dec.decrypt(&old).is_ok());
        // Re-created twice: generations 1 and 2 both start again at CTR 0 under new keys.
        for generation in [1, 2] {
            let mut g =
                FrameEncryptor::new(base(1), Role::Answerer, Stream::Audio, generation).unwrap();
            assert!(dec.decrypt(&g.encrypt(OPUS).unwrap()).is_ok());
        }
        assert_eq!(
            dec.decrypt(&old2),
            Err(Error::FrameRejected(FrameFault::StaleGeneration))
        );
        assert!(FrameEncryptor::new(base(1), Role::Answerer, Stream::Audio, MAX_GEN + 1).is_err());
    }
}
