//! A conference's secrets from the link (PROTOCOL.md §7): only link holders can be members of
//! its MLS group, and the relay, which delivers every MLS message, can read none of them.
//!
//! ```text
//! psk_id   = "sotto v2 psk id" || room_id_raw                 the group's external PSK id
//! psk      = HKDF-SHA256(salt = empty, ikm = S, "sotto v2 psk", 32)
//! mls_seal = HKDF-SHA256(salt = empty, ikm = S, "sotto v2 mls seal", 32)
//! sealed   = nonce (12, random) || AES-256-GCM(mls_seal, nonce, aad, mls_message)
//! aad      = "sotto v2 mls" || room_id_raw || kind (1) || be_u64(epoch) || sender (16)
//! code     = be_u128(HKDF-SHA256(salt = empty, ikm = epoch_authenticator,
//!                                "sotto v2 group code", 16)) mod 10^30
//! ```
//!
//! The PSK goes into every commit, so a Welcome is useless without `S`; the seal keeps key
//! packages, commits, Welcomes and application messages from the relay, and its associated
//! data stops the relay moving a message to another kind, epoch, sender or room. The group
//! code is what people compare: 30 digits, so that a relay holding the link cannot grind two
//! forked groups to the same code (a 6-digit code would take it a million tries).

mod frames;
mod member;

pub use frames::{ConferenceFrame, ConferenceFrames, PREVIOUS_EPOCH_KEPT};
pub use member::{
    CIPHERSUITE, Commit, CommitOutcome, Member, MemberId, SFRAME_BASE_KEY_LEN,
    SFRAME_EXPORTER_LABEL,
};

use crate::Error;
use crate::kdf::hkdf_sha256;
use crate::link::LinkSecret;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use std::fmt;
use zeroize::Zeroizing;

/// The nonce's length in a sealed MLS message.
pub const NONCE_LEN: usize = 12;
/// The AES-GCM tag's length.
pub const TAG_LEN: usize = 16;
/// The shortest sealed message: a nonce and a tag around at least one byte.
pub const MIN_SEALED_LEN: usize = NONCE_LEN + TAG_LEN + 1;
/// The prefix of the PSK id.
const PSK_ID_LABEL: &[u8] = b"sotto v2 psk id";

/// What a sealed MLS message carries; bound into its associated data, so the relay cannot
/// present one kind as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlsKind {
    /// A joiner's KeyPackage.
    KeyPackage = 1,
    /// A commit (a PrivateMessage).
    Commit = 2,
    /// A Welcome for the joiners of a commit.
    Welcome = 3,
    /// An application message (a PrivateMessage): names, texts, mute states.
    Application = 4,
}

/// A conference's secrets, from its link. Zeroized on drop; no Debug.
pub struct ConferenceKeys {
    room: [u8; 16],
    psk: Zeroizing<[u8; 32]>,
    seal: Aes256Gcm,
    /// The sealing key's bytes, for the vectors only.
    #[cfg(test)]
    seal_key: [u8; 32],
}

impl ConferenceKeys {
    /// The secrets of the conference on `secret`'s link.
    pub fn new(secret: &LinkSecret) -> Self {
        let mut psk = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&[], secret.0.as_ref(), &[b"sotto v2 psk"], psk.as_mut());
        let mut seal = Zeroizing::new([0u8; 32]);
        hkdf_sha256(
            &[],
            secret.0.as_ref(),
            &[b"sotto v2 mls seal"],
            seal.as_mut(),
        );
        Self {
            room: secret.room_id().0,
            psk,
            seal: Aes256Gcm::new(seal.as_ref().into()),
            #[cfg(test)]
            seal_key: *seal,
        }
    }

    /// The group's external PSK id: `"sotto v2 psk id" || room_id_raw` (31 bytes).
    pub fn psk_id(&self) -> Vec<u8> {
        [PSK_ID_LABEL, &self.room].concat()
    }

    /// The group's external PSK.
    pub fn psk(&self) -> &[u8; 32] {
        &self.psk
    }

    /// `mls_seal`, for the vectors.
    #[cfg(test)]
    pub(crate) fn seal_key(&self) -> &[u8; 32] {
        &self.seal_key
    }

    /// The associated data of a sealed message.
    fn aad(&self, kind: MlsKind, epoch: u64, sender: &[u8; 16]) -> Vec<u8> {
        [
            b"sotto v2 mls".as_slice(),
            &self.room,
            &[kind as u8],
            &epoch.to_be_bytes(),
            sender,
        ]
        .concat()
    }

    /// Seals `message` (one TLS-encoded MLSMessage) of `kind`, sent in `epoch` by `sender`
    /// (their 16-byte relay id), under a fresh random nonce.
    pub fn seal(
        &self,
        kind: MlsKind,
        epoch: u64,
        sender: &[u8; 16],
        message: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::RandomnessUnavailable)?;
        Ok(self.seal_with_nonce(kind, epoch, sender, message, nonce))
    }

    /// [`ConferenceKeys::seal`] with a given nonce: the vectors' way to pin every byte. A nonce
    /// must never be used twice under one link.
    pub(crate) fn seal_with_nonce(
        &self,
        kind: MlsKind,
        epoch: u64,
        sender: &[u8; 16],
        message: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + message.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(message);
        let tag = self
            .seal
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &self.aad(kind, epoch, sender),
                &mut out[NONCE_LEN..],
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any message below 64 GiB"));
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a sealed message of `kind` that the relay says `sender` sent in `epoch`. Any
    /// change to its bytes, kind, epoch, sender or room, or another link's secret, fails.
    pub fn open(
        &self,
        kind: MlsKind,
        epoch: u64,
        sender: &[u8; 16],
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(Error::GroupTampered("a sealed MLS message too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut out = body.to_vec();
        self.seal
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &self.aad(kind, epoch, sender),
                &mut out,
                tag.into(),
            )
            .map_err(|_| Error::GroupTampered("a sealed MLS message did not open"))?;
        Ok(out)
    }
}

/// The group code everyone in a conference compares: 30 digits from the epoch authenticator,
/// the same on every member's screen, new with each epoch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GroupCode(u128);

/// 10^30: the code has 30 decimal digits.
const CODE_MODULUS: u128 = 1_000_000_000_000_000_000_000_000_000_000;

impl GroupCode {
    /// The code of the epoch whose authenticator (RFC 9420 §8.7) this is. The reduction mod
    /// 10^30 of a 128-bit value favours the low codes by at most 2^128 mod 10^30 / 2^128, under
    /// 10^-8 relative: no help to a relay grinding for a collision.
    pub fn from_epoch_authenticator(authenticator: &[u8]) -> Self {
        let mut out = [0u8; 16];
        hkdf_sha256(&[], authenticator, &[b"sotto v2 group code"], &mut out);
        Self(u128::from_be_bytes(out) % CODE_MODULUS)
    }

    /// The 30 digits, zero-padded.
    pub fn digits(&self) -> String {
        format!("{:030}", self.0)
    }
}

/// `"41445 22906 53517 11952 50805 66116"`: how the code is shown, six groups of five.
impl fmt::Display for GroupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits();
        let groups: Vec<&str> = (0..6).map(|i| &digits[i * 5..i * 5 + 5]).collect();
        f.write_str(&groups.join(" "))
    }
}

/// The code is public (people read it aloud), so Debug may show it.
impl fmt::Debug for GroupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> ConferenceKeys {
        ConferenceKeys::new(&LinkSecret::from_bytes([b; 32]))
    }

    #[test]
    fn a_sealed_message_opens_only_as_the_kind_epoch_and_sender_it_was_sealed_for() {
        let k = keys(1);
        let ada = [0xad; 16];
        let sealed = k
            .seal(MlsKind::Commit, 7, &ada, b"an MLS commit")
            .expect("randomness");
        assert_eq!(
            k.open(MlsKind::Commit, 7, &ada, &sealed).expect("opens"),
            b"an MLS commit"
        );
        for (kind, epoch, sender) in [
            (MlsKind::Application, 7, ada),
            (MlsKind::Commit, 8, ada),
            (MlsKind::Commit, 7, [0xbb; 16]),
        ] {
            assert_eq!(
                k.open(kind, epoch, &sender, &sealed),
                Err(Error::GroupTampered("a sealed MLS message did not open"))
            );
        }
        // Another link's secret, a flipped bit, a truncation.
        assert!(keys(2).open(MlsKind::Commit, 7, &ada, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert!(k.open(MlsKind::Commit, 7, &ada, &flipped).is_err());
        assert_eq!(
            k.open(MlsKind::Commit, 7, &ada, &sealed[..MIN_SEALED_LEN - 1]),
            Err(Error::GroupTampered("a sealed MLS message too short"))
        );
    }

    #[test]
    fn two_seals_of_one_message_differ_by_their_random_nonce() {
        let k = keys(3);
        let a = k
            .seal(MlsKind::KeyPackage, 0, &[1; 16], b"kp")
            .expect("randomness");
        let b = k
            .seal(MlsKind::KeyPackage, 0, &[1; 16], b"kp")
            .expect("randomness");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    }

    #[test]
    fn the_group_code_is_thirty_zero_padded_digits_in_six_groups_of_five() {
        let code = GroupCode(42);
        assert_eq!(code.digits(), "000000000000000000000000000042");
        assert_eq!(code.to_string(), "00000 00000 00000 00000 00000 00042");
        let other = GroupCode::from_epoch_authenticator(&[9; 32]);
        assert_eq!(other.digits().len(), 30);
        assert_ne!(other, GroupCode::from_epoch_authenticator(&[8; 32]));
    }
}
