// Known devices (DESIGN §4.11, PROTOCOL.md §3.8): a long-term Ed25519 device key signs each
// call's handshake transcript, `sig = Ed25519(device key, "sotto v1 identity" || th)`, so that a
// peer who stored this device's public key after comparing a code once recognises it later,
// while a man in the middle cannot sign the real device's transcript. WebCrypto only; the page
// keeps its private key as a non-extractable CryptoKey.

import { concat, utf8 } from './bytes.js';

const LABEL = utf8('sotto v1 identity');
const ED25519 = { name: 'Ed25519' };

/** The peer's identity was refused: the call set-up ends as tampered with. */
export class IdentityRefused extends Error {}

/** A fresh device key pair; the private key cannot be exported. */
export function generateDeviceKey() {
  return crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
}

/** The private key whose RFC 8032 seed (32 bytes) this is, not extractable (vectors, tests). */
export function importDeviceSeed(seed) {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  // PKCS #8 for Ed25519 (RFC 8410): a fixed 16-byte prefix, then the seed.
  const prefix = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);
  return crypto.subtle.importKey('pkcs8', concat(prefix, seed), ED25519, false, ['sign']);
}

/** This device's `identity` over the transcript hash `th`: { key, sig } as bytes. */
export async function signIdentity({ privateKey, publicKey }, th) {
  const [key, sig] = await Promise.all([
    crypto.subtle.exportKey('raw', publicKey),
    crypto.subtle.sign(ED25519, privateKey, concat(LABEL, th)),
  ]);
  return { key: new Uint8Array(key), sig: new Uint8Array(sig) };
}

/** Checks a peer's identity against `th`; resolves to its 32-byte public key, or throws
 *  IdentityRefused with the rule it broke. */
export async function verifyIdentity(key, sig, th) {
  if (key.length !== 32) throw new IdentityRefused('a device key is 32 bytes');
  if (sig.length !== 64) throw new IdentityRefused('a device signature is 64 bytes');
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey('raw', key, ED25519, true, ['verify']);
  } catch {
    throw new IdentityRefused('the device key is not an Ed25519 public key');
  }
  if (!(await crypto.subtle.verify(ED25519, publicKey, sig, concat(LABEL, th)))) {
    throw new IdentityRefused('the device signature does not verify');
  }
  return Uint8Array.from(key);
}
