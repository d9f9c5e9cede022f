//! Known devices (DESIGN §4.11, PROTOCOL.md §3.8): a long-term Ed25519 device key signs each
//! call's handshake transcript, so that a peer who stored this device's public key after
//! comparing a safety code once recognises it on later calls, while a man in the middle (who
//! cannot sign the real device's transcript) shows up as a stranger.
//!
//! `sig = Ed25519(device key, "sotto v1 identity" || th)`, `th` being the pair's handshake
//! transcript hash: a signature proves the device took part in this very handshake, never
//! another call's.

use crate::Error;
use crate::handshake::Handshake;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

const LABEL: &[u8] = b"sotto v1 identity";

/// A device's long-term signing key. Zeroized on drop (ed25519-dalek's `zeroize`); no Debug.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A fresh key from the operating system's random generator.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|_| Error::RandomnessUnavailable)?;
        Ok(Self::from_seed(&seed))
    }

    /// The key whose 32-byte seed (RFC 8032's private key) this is, e.g. read back from its file.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The seed, to store (mode 0600; it is the device's identity).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key others store under a name.
    pub fn id(&self) -> DeviceId {
        DeviceId(self.0.verifying_key().to_bytes())
    }
}

/// A device's public key: what a person stores under a name after comparing a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId([u8; 32]);

impl DeviceId {
    /// The 32 bytes of the Ed25519 public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public key as received; anything but 32 bytes is the peer's fault.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::IdentityRefused("a device key is 32 bytes"))
    }
}

/// What the `identity` message carries: the device's public key and its signature over this
/// handshake's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Ed25519 public key.
    pub key: DeviceId,
    /// `Ed25519(device key, "sotto v1 identity" || th)`.
    pub sig: [u8; 64],
}

impl Identity {
    /// `key` and `sig` as the `identity` message carries them (base64url, no padding).
    pub fn to_text(&self) -> (String, String) {
        (
            URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.sig),
        )
    }
}

fn signed(th: &[u8; 32]) -> Vec<u8> {
    [LABEL, th.as_slice()].concat()
}

impl Handshake {
    /// This device's `identity` for this handshake (once its keys exist).
    pub fn identity(&self, device: &DeviceKey) -> Result<Identity, Error> {
        let th = self.transcript_hash()?;
        Ok(Identity {
            key: device.id(),
            sig: device.0.sign(&signed(&th)).to_bytes(),
        })
    }

    /// Checks the peer's `identity` (its key and signature as received) against this
    /// handshake's transcript: the device that holds `key` took part in this very handshake.
    /// A key or signature of the wrong length, a key that is not a point, or a signature that
    /// does not verify is refused: the call set-up must end as tampered with.
    pub fn verify_identity(&self, key: &[u8], sig: &[u8]) -> Result<DeviceId, Error> {
        let th = self.transcript_hash()?;
        let id = DeviceId::from_slice(key)?;
        let sig = <[u8; 64]>::try_from(sig)
            .map_err(|_| Error::IdentityRefused("a device signature is 64 bytes"))?;
        let public = VerifyingKey::from_bytes(id.as_bytes())
            .map_err(|_| Error::IdentityRefused("the device key is not an Ed25519 public key"))?;
        public
            .verify(&signed(&th), &Signature::from_bytes(&sig))
            .map_err(|_| Error::IdentityRefused("the device signature does not verify"))?;
        Ok(id)
    }
}

impl Handshake {
    /// [`Handshake::verify_identity`] on `key` and `sig` as the message carries them
    /// (canonical base64url); text that is not is the peer's fault as much as a bad signature.
    pub fn verify_identity_text(&self, key: &str, sig: &str) -> Result<DeviceId, Error> {
        let decode = |text: &str, what| {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| Error::IdentityRefused(what))
        };
        let key = decode(key, "the device key is not base64url")?;
        let sig = decode(sig, "the device signature is not base64url")?;
        self.verify_identity(&key, &sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::tests::established;

    /// RFC 8032 §7.1 TEST 1's secret key.
    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];

    #[test]
    fn a_device_key_is_rfc_8032_ed25519() {
        // RFC 8032 §7.1 TEST 1: its public key.
        let public = DeviceKey::from_seed(&SEED).id();
        assert_eq!(
            public.as_bytes()[..4],
            [0xd7, 0x5a, 0x98, 0x01],
            "{public:?}"
        );
        assert_eq!(*DeviceKey::from_seed(&SEED).seed(), SEED);
    }

    #[test]
    fn each_side_verifies_the_other_device_over_their_shared_transcript() {
        let (o, a) = established();
        let (dev_o, dev_a) = (DeviceKey::from_seed(&SEED), DeviceKey::generate().unwrap());
        let id_o = o.identity(&dev_o).unwrap();
        assert_eq!(
            a.verify_identity(id_o.key.as_bytes(), &id_o.sig),
            Ok(dev_o.id())
        );
        let id_a = a.identity(&dev_a).unwrap();
        assert_eq!(
            o.verify_identity(id_a.key.as_bytes(), &id_a.sig),
            Ok(dev_a.id())
        );
    }

    #[test]
    fn another_calls_signature_a_wrong_length_or_a_swapped_key_is_refused() {
        let (o, a) = established();
        let (o2, _a2) = established_other();
        let dev = DeviceKey::from_seed(&SEED);
        // Signed over another handshake's transcript (a replay into this call).
        let other = o2.identity(&dev).unwrap();
        assert_eq!(
            a.verify_identity(other.key.as_bytes(), &other.sig),
            Err(Error::IdentityRefused(
                "the device signature does not verify"
            ))
        );
        let good = o.identity(&dev).unwrap();
        assert_eq!(
            a.verify_identity(&good.key.as_bytes()[..31], &good.sig),
            Err(Error::IdentityRefused("a device key is 32 bytes"))
        );
        assert_eq!(
            a.verify_identity(good.key.as_bytes(), &good.sig[..63]),
            Err(Error::IdentityRefused("a device signature is 64 bytes"))
        );
        // Someone else's key with this device's signature.
        let stranger = DeviceKey::generate().unwrap().id();
        assert_eq!(
            a.verify_identity(stranger.as_bytes(), &good.sig),
            Err(Error::IdentityRefused(
                "the device signature does not verify"
            ))
        );
    }

    #[test]
    fn the_message_text_round_trips_and_bad_base64url_is_refused() {
        let (o, a) = established();
        let id = o.identity(&DeviceKey::from_seed(&SEED)).unwrap();
        let (key, sig) = id.to_text();
        assert_eq!(key.len(), 43);
        assert_eq!(sig.len(), 86);
        assert_eq!(a.verify_identity_text(&key, &sig), Ok(id.key));
        assert_eq!(
            a.verify_identity_text(&format!("{key}="), &sig),
            Err(Error::IdentityRefused("the device key is not base64url"))
        );
        assert_eq!(
            a.verify_identity_text(&key, "!"),
            Err(Error::IdentityRefused(
                "the device signature is not base64url"
            ))
        );
    }

    #[test]
    fn no_identity_before_the_handshake_has_its_keys() {
        let secret = crate::LinkSecret::from_bytes([5; 32]);
        let a = Handshake::answerer(&secret, crate::EphemeralKey::from_bytes([6; 32]));
        assert!(matches!(
            a.identity(&DeviceKey::from_seed(&SEED)),
            Err(Error::CallerMisuse(_))
        ));
    }

    /// A second, unrelated handshake (other ephemeral keys, so another transcript).
    fn established_other() -> (Handshake, Handshake) {
        let secret = crate::LinkSecret::from_bytes([3; 32]);
        let (mut o, commit) = Handshake::offerer(&secret, crate::EphemeralKey::from_bytes([7; 32]));
        let mut a = Handshake::answerer(&secret, crate::EphemeralKey::from_bytes([8; 32]));
        let crate::Received::Reply(key) = a.receive(&commit).unwrap() else {
            unreachable!("A answers a commit with its key")
        };
        let crate::Received::KeysReady {
            reply: Some(reveal),
        } = o.receive(&key).unwrap()
        else {
            unreachable!("O answers a key with its reveal")
        };
        a.receive(&reveal).unwrap();
        (o, a)
    }
}
