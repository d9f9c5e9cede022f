//! The handshake (commit, key, reveal) and the sealed signaling channel it opens
//! (PROTOCOL.md §3). Sans-IO: bytes from the peer go in, bytes for the peer and opened
//! plaintexts come out.
//!
//! ```text
//! O (in the room first)                         A (newcomer)
//!   COMMIT = 01 || SHA-256("sotto v1 commit" || E_O)  ->
//!                                              <-  KEY = 02 || E_A
//!   REVEAL = 03 || E_O                              ->   (A checks the commitment)
//!   SEALED offer  (04 || seq || ct || tag)          ->   (first open = key confirmation)
//!                                              <-  SEALED answer
//! ```
//!
//! Each side fixes its X25519 key before it sees the other's: O commits to E_O before it
//! learns E_A, and A sends E_A only after the commitment arrived. The safety code depends on
//! both keys only, so a man in the middle who holds the link gets a single guess at making the
//! two codes match.

use crate::data::DataChannel;
use crate::keys::{BaseKey, MediaKeys, SafetyCode};
use crate::link::{LinkSecret, RoomId};
use crate::{Error, kdf};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Kind byte of COMMIT.
pub const COMMIT: u8 = 0x01;
/// Kind byte of KEY.
pub const KEY: u8 = 0x02;
/// Kind byte of REVEAL.
pub const REVEAL: u8 = 0x03;
/// Kind byte of a sealed message.
pub const SEALED: u8 = 0x04;
/// Bytes of a sealed message besides the ciphertext: kind, seq and tag.
pub const SEALED_OVERHEAD: usize = 1 + 8 + 16;

/// A 32-byte key, zeroized on drop.
type Key32 = Zeroizing<[u8; 32]>;

/// Which side of the call this peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// O: was in the room first (received `peer-joined`); commits, reveals, offers.
    Offerer,
    /// A: joined second (found the peer in `welcome`); sends its key, answers.
    Answerer,
}

impl Role {
    /// The role bit of the SFrame KID: O = 0, A = 1.
    pub fn bit(self) -> u64 {
        match self {
            Self::Offerer => 0,
            Self::Answerer => 1,
        }
    }

    /// The other side.
    pub fn peer(self) -> Self {
        match self {
            Self::Offerer => Self::Answerer,
            Self::Answerer => Self::Offerer,
        }
    }
}

/// A fresh X25519 key pair for one call. Zeroized on drop; no Debug.
pub struct EphemeralKey(StaticSecret);

impl EphemeralKey {
    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| Error::RandomnessUnavailable)?;
        Ok(Self::from_bytes(*bytes))
    }

    /// The key with this private scalar (tests and vectors). X25519 clamps it.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// The public key, as sent on the wire.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }
}

/// What the peer's message led to.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Send these bytes to the peer (A's KEY).
    Reply(Vec<u8>),
    /// The keys exist. O: send `reply` (REVEAL), then seal the offer. A: wait for the offer.
    KeysReady {
        /// REVEAL for O to send; `None` for A.
        reply: Option<Vec<u8>>,
    },
    /// A sealed message opened; its plaintext. The first one confirmed the keys.
    Message(Zeroizing<Vec<u8>>),
}

/// Shows the kind only: messages are plaintext signaling.
impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reply(b) => write!(f, "Reply({} bytes)", b.len()),
            Self::KeysReady { reply } => write!(f, "KeysReady(reveal: {})", reply.is_some()),
            Self::Message(b) => write!(f, "Message({} bytes)", b.len()),
        }
    }
}

/// The keys both sides derive once they have each other's public keys.
struct Keys {
    /// HKDF-Extract(salt = S, ikm = dh); the root of every later key.
    prk: Zeroizing<[u8; 32]>,
    /// The transcript hash of room id and both public keys.
    th: [u8; 32],
    seal_out: Aes256Gcm,
    seal_in: Aes256Gcm,
    seq_out: u64,
    seq_in: u64,
}

impl Keys {
    fn derive(
        role: Role,
        secret: &LinkSecret,
        room: &RoomId,
        own: EphemeralKey,
        peer_public: &[u8; 32],
    ) -> Result<Self, Error> {
        let own_public = own.public();
        let dh = own.0.diffie_hellman(&PublicKey::from(*peer_public));
        drop(own); // the private key is erased here (StaticSecret zeroizes on drop)
        if !dh.was_contributory() {
            return Err(Error::HandshakeTampered(
                "the peer's key gives an all-zero shared secret",
            ));
        }
        let (e_o, e_a) = match role {
            Role::Offerer => (own_public, *peer_public),
            Role::Answerer => (*peer_public, own_public),
        };
        let th = kdf::sha256(&[b"sotto v1 transcript", room.as_bytes(), &e_o, &e_a]);
        let prk = Zeroizing::new(kdf::extract_sha256(secret.bytes(), dh.as_bytes()));
        drop(dh); // SharedSecret zeroizes on drop
        let seal = |label: &[u8]| {
            let mut key = Zeroizing::new([0u8; 32]);
            kdf::expand_sha256(&prk, &[b"sotto v1 ", label, &th], key.as_mut());
            Aes256Gcm::new(key.as_ref().into())
        };
        let (seal_out, seal_in) = match role {
            Role::Offerer => (seal(b"seal O->A"), seal(b"seal A->O")),
            Role::Answerer => (seal(b"seal A->O"), seal(b"seal O->A")),
        };
        Ok(Self {
            prk,
            th,
            seal_out,
            seal_in,
            seq_out: 0,
            seq_in: 0,
        })
    }

    /// `K(label, L) = HKDF-Expand(prk, "sotto v1 " || label || th, L)`.
    fn expand(&self, label: &[u8], out: &mut [u8]) {
        kdf::expand_sha256(&self.prk, &[b"sotto v1 ", label, &self.th], out);
    }
}

/// `"sotto v1 seal" || room_id_raw || seq`: the additional data of every sealed message.
fn seal_aad(room: &RoomId, seq: u64) -> [u8; 13 + 16 + 8] {
    let mut aad = [0u8; 37];
    aad[..13].copy_from_slice(b"sotto v1 seal");
    aad[13..29].copy_from_slice(room.as_bytes());
    aad[29..].copy_from_slice(&seq.to_be_bytes());
    aad
}

/// `0x00000000 || seq`: the AES-GCM nonce of sealed message `seq` (unique per key, since each
/// direction has its own key and `seq` never repeats).
fn seal_nonce(seq: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    nonce
}

/// What the handshake waits for.
enum State {
    /// O sent COMMIT; waits for A's KEY.
    AwaitingKey { own: EphemeralKey },
    /// A waits for O's COMMIT.
    AwaitingCommit { own: EphemeralKey },
    /// A sent KEY; waits for O's REVEAL, which must match the commitment.
    AwaitingReveal {
        own: EphemeralKey,
        commitment: [u8; 32],
    },
    /// Keys derived; waits for the peer's first sealed message to confirm them (O: the answer,
    /// A: the offer).
    AwaitingConfirmation(Box<Keys>),
    /// The peer proved it holds the same keys.
    Established(Box<Keys>),
    /// Something went wrong; nothing more is accepted.
    Failed,
}

/// One peer's side of the handshake and of the sealed channel that follows.
pub struct Handshake {
    role: Role,
    secret: LinkSecret,
    room: RoomId,
    state: State,
}

/// Shows role and state only.
impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::AwaitingKey { .. } => "AwaitingKey",
            State::AwaitingCommit { .. } => "AwaitingCommit",
            State::AwaitingReveal { .. } => "AwaitingReveal",
            State::AwaitingConfirmation(_) => "AwaitingConfirmation",
            State::Established(_) => "Established",
            State::Failed => "Failed",
        };
        write!(f, "Handshake({:?}, {state})", self.role)
    }
}

fn commitment(e_o: &[u8; 32]) -> [u8; 32] {
    kdf::sha256(&[b"sotto v1 commit", e_o])
}

fn message(kind: u8, body: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(33);
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// The 32-byte body of a handshake message of `kind`, or the tampering it shows.
fn body(msg: &[u8], kind: u8) -> Result<[u8; 32], Error> {
    match msg.first() {
        None => Err(Error::HandshakeTampered("empty message")),
        Some(&k) if k == kind => msg[1..]
            .try_into()
            .map_err(|_| Error::HandshakeTampered("handshake message is not 33 bytes")),
        Some(COMMIT..=SEALED) => Err(Error::HandshakeTampered("message out of order")),
        Some(_) => Err(Error::HandshakeTampered("unknown message kind")),
    }
}

impl Handshake {
    /// O's side: starts the handshake. Send the returned COMMIT to the peer.
    pub fn offerer(secret: &LinkSecret, own: EphemeralKey) -> (Self, Vec<u8>) {
        let commit = message(COMMIT, &commitment(&own.public()));
        let hs = Self {
            role: Role::Offerer,
            room: secret.room_id(),
            secret: secret.clone(),
            state: State::AwaitingKey { own },
        };
        (hs, commit)
    }

    /// A's side: waits for O's COMMIT.
    pub fn answerer(secret: &LinkSecret, own: EphemeralKey) -> Self {
        Self {
            role: Role::Answerer,
            room: secret.room_id(),
            secret: secret.clone(),
            state: State::AwaitingCommit { own },
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True once the peer's first sealed message opened.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Handles one message from the peer. Any error ends the handshake for good: later calls
    /// fail with [`Error::CallerMisuse`].
    pub fn receive(&mut self, msg: &[u8]) -> Result<Received, Error> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, received) = self.step(state, msg)?;
        self.state = next;
        Ok(received)
    }

    fn step(&self, state: State, msg: &[u8]) -> Result<(State, Received), Error> {
        match state {
            State::AwaitingKey { own } => {
                let e_a = body(msg, KEY)?;
                let reveal = message(REVEAL, &own.public());
                let keys = Keys::derive(self.role, &self.secret, &self.room, own, &e_a)?;
                Ok((
                    State::AwaitingConfirmation(Box::new(keys)),
                    Received::KeysReady {
                        reply: Some(reveal),
                    },
                ))
            }
            State::AwaitingCommit { own } => {
                let commitment = body(msg, COMMIT)?;
                let key = message(KEY, &own.public());
                Ok((
                    State::AwaitingReveal { own, commitment },
                    Received::Reply(key),
                ))
            }
            State::AwaitingReveal { own, commitment: c } => {
                let e_o = body(msg, REVEAL)?;
                if !bool::from(commitment(&e_o).ct_eq(&c)) {
                    return Err(Error::HandshakeTampered(
                        "the revealed key does not match its commitment",
                    ));
                }
                let keys = Keys::derive(self.role, &self.secret, &self.room, own, &e_o)?;
                Ok((
                    State::AwaitingConfirmation(Box::new(keys)),
                    Received::KeysReady { reply: None },
                ))
            }
            State::AwaitingConfirmation(mut keys) => {
                if let Some(COMMIT..=REVEAL) = msg.first() {
                    return Err(Error::HandshakeTampered(
                        "a handshake message after the keys",
                    ));
                }
                // Whatever stops the first sealed message from opening, the likely cause is a
                // different secret on the other side; the relay may also be substituting keys.
                let plain = self
                    .open(&mut keys, msg)
                    .map_err(|_| Error::WrongLinkOrTamperedRelay)?;
                Ok((State::Established(keys), Received::Message(plain)))
            }
            State::Established(mut keys) => {
                let plain = self.open(&mut keys, msg)?;
                Ok((State::Established(keys), Received::Message(plain)))
            }
            State::Failed => Err(Error::CallerMisuse("the handshake already failed")),
        }
    }

    fn open(&self, keys: &mut Keys, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        match msg.first() {
            Some(&SEALED) => {}
            Some(COMMIT..=REVEAL) => {
                return Err(Error::SealedTampered(
                    "a handshake message after the handshake",
                ));
            }
            _ => return Err(Error::SealedTampered("not a sealed message")),
        }
        if msg.len() < SEALED_OVERHEAD {
            return Err(Error::SealedTampered("sealed message too short"));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&msg[1..9]);
        let seq = u64::from_be_bytes(seq);
        if seq != keys.seq_in {
            return Err(Error::SealedTampered(
                "sealed message out of sequence (dropped, replayed or reordered)",
            ));
        }
        let (ct, tag) = msg[9..].split_at(msg.len() - 9 - 16);
        let mut plain = Zeroizing::new(ct.to_vec());
        keys.seal_in
            .decrypt_in_place_detached(
                Nonce::from_slice(&seal_nonce(seq)),
                &seal_aad(&self.room, seq),
                plain.as_mut(),
                tag.into(),
            )
            .map_err(|_| Error::SealedTampered("sealed message failed authentication"))?;
        keys.seq_in = keys
            .seq_in
            .checked_add(1)
            .ok_or(Error::SealedTampered("sequence numbers exhausted"))?;
        Ok(plain)
    }

    /// Seals `plaintext` for the peer: `04 || seq || ciphertext || tag`. O may seal from the
    /// moment its keys exist (its first message is the offer); A only after the offer opened
    /// (its first message is the answer).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let keys = match (&mut self.state, self.role) {
            (State::Established(keys), _) => keys,
            (State::AwaitingConfirmation(keys), Role::Offerer) => keys,
            _ => {
                return Err(Error::CallerMisuse(
                    "nothing may be sealed before the handshake allows it",
                ));
            }
        };
        let seq = keys.seq_out;
        let next = seq
            .checked_add(1)
            .ok_or(Error::CallerMisuse("sequence numbers exhausted"))?;
        let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        out.push(SEALED);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = keys
            .seal_out
            .encrypt_in_place_detached(
                Nonce::from_slice(&seal_nonce(seq)),
                &seal_aad(&self.room, seq),
                &mut out[9..],
            )
            .map_err(|_| Error::CallerMisuse("message too long to seal"))?;
        out.extend_from_slice(&tag);
        keys.seq_out = next;
        Ok(out)
    }

    fn keys(&self) -> Option<&Keys> {
        match &self.state {
            State::AwaitingConfirmation(keys) | State::Established(keys) => Some(keys),
            _ => None,
        }
    }

    /// `th`, the transcript hash of room id and both public keys, once the keys exist (a
    /// device's identity signs it: identity.rs).
    pub(crate) fn transcript_hash(&self) -> Result<[u8; 32], Error> {
        self.keys().map(|k| k.th).ok_or(Error::CallerMisuse(
            "the transcript exists only once both keys are known",
        ))
    }

    /// The 6-digit safety code, once the keys exist: `be_u32(K("sas", 4)) mod 1_000_000`.
    /// Both users see it; if they read the same digits aloud, nobody is in the middle.
    pub fn safety_code(&self) -> Option<SafetyCode> {
        let keys = self.keys()?;
        let mut sas = [0u8; 4];
        keys.expand(b"sas", &mut sas);
        Some(SafetyCode::from_sas(sas))
    }

    /// `th2`, which binds the keys of media and data to both DTLS fingerprints (`fp_o` from
    /// O's SDP, `fp_a` from A's, each the text after `a=fingerprint:`); with the keys it
    /// extends. Only once the handshake is established.
    fn bound(&self, fp_o: &str, fp_a: &str) -> Result<(&Keys, [u8; 32]), Error> {
        let State::Established(keys) = &self.state else {
            return Err(Error::CallerMisuse(
                "media and data keys exist only after the peer's first sealed message opened",
            ));
        };
        let len = |fp: &str| {
            u16::try_from(fp.len())
                .map(u16::to_be_bytes)
                .map_err(|_| Error::CallerMisuse("a DTLS fingerprint longer than 65535 bytes"))
        };
        let (len_o, len_a) = (len(fp_o)?, len(fp_a)?);
        let th2 = kdf::sha256(&[
            &keys.th,
            b"dtls",
            &len_o,
            fp_o.as_bytes(),
            &len_a,
            fp_a.as_bytes(),
        ]);
        Ok((keys, th2))
    }

    /// `M(label, 32) = HKDF-Expand(prk, "sotto v1 " || label || th2, 32)` for O's and A's label,
    /// as (what this side sends, what the peer sends).
    fn derive_pair(
        &self,
        fp_o: &str,
        fp_a: &str,
        labels: [&[u8]; 2],
    ) -> Result<(Key32, Key32), Error> {
        let (keys, th2) = self.bound(fp_o, fp_a)?;
        let derive = |label: &[u8]| {
            let mut key = Zeroizing::new([0u8; 32]);
            kdf::expand_sha256(&keys.prk, &[b"sotto v1 ", label, &th2], key.as_mut());
            key
        };
        let (of_o, of_a) = (derive(labels[0]), derive(labels[1]));
        Ok(match self.role {
            Role::Offerer => (of_o, of_a),
            Role::Answerer => (of_a, of_o),
        })
    }

    /// The SFrame base keys, bound to both DTLS fingerprints (`fp_o` from O's SDP, `fp_a` from
    /// A's, each the text after `a=fingerprint:`). Only once the handshake is established.
    pub fn media_keys(&self, fp_o: &str, fp_a: &str) -> Result<MediaKeys, Error> {
        let (send, receive) = self.derive_pair(fp_o, fp_a, [b"media O", b"media A"])?;
        Ok(MediaKeys {
            send: BaseKey(zeroize::Zeroizing::new(send.to_vec())),
            receive: BaseKey(zeroize::Zeroizing::new(receive.to_vec())),
        })
    }

    /// The pair's data channel, sealed under `data_O` and `data_A` (bound to both DTLS
    /// fingerprints like the media keys). Only once the handshake is established.
    pub fn data_channel(&self, fp_o: &str, fp_a: &str) -> Result<DataChannel, Error> {
        let (send, receive) = self.derive_pair(fp_o, fp_a, [b"data O", b"data A"])?;
        Ok(DataChannel::new(self.room, &send, &receive))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn secret() -> LinkSecret {
        LinkSecret::from_bytes(core::array::from_fn(|i| i as u8))
    }

    fn key(b: u8) -> EphemeralKey {
        EphemeralKey::from_bytes([b; 32])
    }

    /// A full handshake: (O, A) both established, offer and answer exchanged.
    pub(crate) fn established() -> (Handshake, Handshake) {
        let (mut o, commit) = Handshake::offerer(&secret(), key(1));
        let mut a = Handshake::answerer(&secret(), key(2));
        let Received::Reply(key_msg) = a.receive(&commit).unwrap() else {
            panic!("A answers COMMIT with KEY")
        };
        let Received::KeysReady {
            reply: Some(reveal),
        } = o.receive(&key_msg).unwrap()
        else {
            panic!("O answers KEY with REVEAL")
        };
        assert_eq!(
            a.receive(&reveal).unwrap(),
            Received::KeysReady { reply: None }
        );
        let offer = o.seal(b"offer").unwrap();
        assert_eq!(
            a.receive(&offer).unwrap(),
            Received::Message(Zeroizing::new(b"offer".to_vec()))
        );
        let answer = a.seal(b"answer").unwrap();
        assert_eq!(
            o.receive(&answer).unwrap(),
            Received::Message(Zeroizing::new(b"answer".to_vec()))
        );
        assert!(o.is_established() && a.is_established());
        (o, a)
    }

    #[test]
    fn both_sides_agree_on_the_safety_code_and_media_keys() {
        let (o, a) = established();
        assert_eq!(o.safety_code(), a.safety_code());
        let ko = o.media_keys("sha-256 AA", "sha-256 BB").unwrap();
        let ka = a.media_keys("sha-256 AA", "sha-256 BB").unwrap();
        assert_eq!(ko.send.0, ka.receive.0);
        assert_eq!(ko.receive.0, ka.send.0);
        assert_ne!(ko.send.0, ko.receive.0);
    }

    #[test]
    fn a_different_fingerprint_changes_the_media_keys_but_not_the_code() {
        let (o, _) = established();
        let code = o.safety_code();
        let k1 = o.media_keys("sha-256 AA", "sha-256 BB").unwrap();
        let k2 = o.media_keys("sha-256 AA", "sha-256 BC").unwrap();
        let k3 = o.media_keys("sha-256 AB", "sha-256 BB").unwrap();
        assert_ne!(k1.send.0, k2.send.0);
        assert_ne!(k1.send.0, k3.send.0);
        assert_ne!(k1.receive.0, k2.receive.0);
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let k4 = o.media_keys("ab", "c").unwrap();
        let k5 = o.media_keys("a", "bc").unwrap();
        assert_ne!(k4.send.0, k5.send.0);
        assert_eq!(o.safety_code(), code);
    }

    #[test]
    fn a_different_secret_fails_at_the_first_sealed_message() {
        let other = LinkSecret::from_bytes([9; 32]);
        let (mut o, commit) = Handshake::offerer(&secret(), key(1));
        let mut a = Handshake::answerer(&other, key(2));
        let Received::Reply(k) = a.receive(&commit).unwrap() else {
            panic!()
        };
        let Received::KeysReady { reply: Some(r) } = o.receive(&k).unwrap() else {
            panic!()
        };
        a.receive(&r).unwrap();
        let offer = o.seal(b"offer").unwrap();
        assert_eq!(a.receive(&offer), Err(Error::WrongLinkOrTamperedRelay));
        assert_eq!(
            a.receive(&offer),
            Err(Error::CallerMisuse("the handshake already failed"))
        );
    }

    #[test]
    fn a_reveal_that_does_not_match_the_commitment_is_tampering() {
        let (_o, commit) = Handshake::offerer(&secret(), key(1));
        let mut a = Handshake::answerer(&secret(), key(2));
        a.receive(&commit).unwrap();
        let forged = message(REVEAL, &key(3).public());
        assert!(
            matches!(a.receive(&forged), Err(Error::HandshakeTampered(m)) if m.contains("commitment"))
        );
    }

    #[test]
    fn an_all_zero_shared_secret_is_refused() {
        let (mut o, _) = Handshake::offerer(&secret(), key(1));
        // The identity point (all zeros) gives an all-zero X25519 result.
        assert!(matches!(
            o.receive(&message(KEY, &[0; 32])),
            Err(Error::HandshakeTampered(m)) if m.contains("all-zero")
        ));
    }

    #[test]
    fn wrong_sizes_duplicates_and_order_are_tampering() {
        let (mut o, commit) = Handshake::offerer(&secret(), key(1));
        let mut a = Handshake::answerer(&secret(), key(2));
        // A gets REVEAL or KEY before COMMIT; O gets COMMIT instead of KEY.
        assert!(matches!(
            Handshake::answerer(&secret(), key(2)).receive(&message(REVEAL, &[1; 32])),
            Err(Error::HandshakeTampered(_))
        ));
        assert!(matches!(
            o.receive(&commit),
            Err(Error::HandshakeTampered(_))
        ));
        // 32 and 34 bytes, empty, unknown kind.
        for bad in [
            &commit[..32],
            &[&commit[..], &[0]].concat()[..],
            &[],
            &[0x09; 33][..],
        ] {
            assert!(
                matches!(
                    Handshake::answerer(&secret(), key(2)).receive(bad),
                    Err(Error::HandshakeTampered(_))
                ),
                "{bad:?}"
            );
        }
        // A duplicate COMMIT after KEY was sent.
        a.receive(&commit).unwrap();
        assert!(matches!(
            a.receive(&commit),
            Err(Error::HandshakeTampered(_))
        ));
    }

    #[test]
    fn sealed_messages_must_come_in_sequence_and_unaltered() {
        let (mut o, mut a) = established();
        let m1 = o.seal(b"one").unwrap();
        let m2 = o.seal(b"two").unwrap();
        // Reordered: m2 before m1.
        assert!(matches!(
            a.clone_for_test().receive(&m2),
            Err(Error::SealedTampered(_))
        ));
        // Flipped bit anywhere.
        for i in 0..m1.len() {
            let mut bad = m1.clone();
            bad[i] ^= 0x01;
            assert!(
                a.clone_for_test().receive(&bad).is_err(),
                "bit flip at {i} accepted"
            );
        }
        assert_eq!(
            a.receive(&m1).unwrap(),
            Received::Message(Zeroizing::new(b"one".to_vec()))
        );
        // Replayed.
        assert!(matches!(
            a.clone_for_test().receive(&m1),
            Err(Error::SealedTampered(_))
        ));
        assert_eq!(
            a.receive(&m2).unwrap(),
            Received::Message(Zeroizing::new(b"two".to_vec()))
        );
    }

    #[test]
    fn nothing_is_sealed_before_the_handshake_allows_it() {
        let (mut o, commit) = Handshake::offerer(&secret(), key(1));
        assert!(matches!(o.seal(b"x"), Err(Error::CallerMisuse(_))));
        let mut a = Handshake::answerer(&secret(), key(2));
        let Received::Reply(k) = a.receive(&commit).unwrap() else {
            panic!()
        };
        let Received::KeysReady { reply: Some(r) } = o.receive(&k).unwrap() else {
            panic!()
        };
        a.receive(&r).unwrap();
        // A has keys but has not seen the offer: it may not seal yet; O may.
        assert!(matches!(a.seal(b"x"), Err(Error::CallerMisuse(_))));
        assert!(o.seal(b"offer").is_ok());
        assert!(matches!(
            o.media_keys("a", "b"),
            Err(Error::CallerMisuse(_))
        ));
    }

    #[test]
    fn a_man_in_the_middle_with_the_link_sees_different_codes() {
        // M holds the link and runs one handshake with each victim.
        let (mut o, commit_o) = Handshake::offerer(&secret(), key(1));
        let mut m_as_a = Handshake::answerer(&secret(), key(7));
        let (mut m_as_o, commit_m) = Handshake::offerer(&secret(), key(8));
        let mut a = Handshake::answerer(&secret(), key(2));
        let Received::Reply(k_m) = m_as_a.receive(&commit_o).unwrap() else {
            panic!()
        };
        let Received::Reply(k_a) = a.receive(&commit_m).unwrap() else {
            panic!()
        };
        let Received::KeysReady { reply: Some(r_o) } = o.receive(&k_m).unwrap() else {
            panic!()
        };
        let Received::KeysReady { reply: Some(r_m) } = m_as_o.receive(&k_a).unwrap() else {
            panic!()
        };
        m_as_a.receive(&r_o).unwrap();
        a.receive(&r_m).unwrap();
        assert_ne!(o.safety_code(), a.safety_code());
    }

    impl Handshake {
        /// A copy for trying inputs without disturbing the original (tests only).
        pub(crate) fn clone_for_test(&self) -> Handshake {
            let State::Established(keys) = &self.state else {
                panic!("established only")
            };
            Handshake {
                role: self.role,
                secret: self.secret.clone(),
                room: self.room,
                state: State::Established(Box::new(Keys {
                    prk: keys.prk.clone(),
                    th: keys.th,
                    seal_out: keys.seal_out.clone(),
                    seal_in: keys.seal_in.clone(),
                    seq_out: keys.seq_out,
                    seq_in: keys.seq_in,
                })),
            }
        }
    }
}
