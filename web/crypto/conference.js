// A conference's secrets from the link (PROTOCOL.md §7), the same as the native client's
// e2ee/src/conference.rs and pinned by tests/vectors/sotto-v2.json: the MLS group's external
// PSK (only link holders can be members), the key that seals every MLS message crossing the
// relay (it reads none and can move none to another kind, epoch, sender or room), and the
// 30-digit group code people compare. Pure: WebCrypto only, no DOM.

import { concat, u64be, utf8 } from './bytes.js';
import { hkdf } from './kdf.js';
import { roomId } from './link.js';

const subtle = globalThis.crypto.subtle;

export const NONCE_LEN = 12;
export const TAG_LEN = 16;
/** The shortest sealed message: a nonce and a tag around at least one byte. */
export const MIN_SEALED_LEN = NONCE_LEN + TAG_LEN + 1;

/** What a sealed MLS message carries, bound into its associated data. */
export const MLS_KIND = { 'key-package': 1, commit: 2, welcome: 3, application: 4 };

/** A sealed MLS message that did not open: the relay (or someone without the link) altered,
 *  moved or forged it. Dropped and counted. */
export class GroupTampered extends Error {}

export class ConferenceKeys {
  #seal;
  #room;

  /** The secrets of the conference on the link whose 32-byte secret is `secret`. The raw
   *  sealing key is not kept: only a non-extractable CryptoKey. */
  static async derive(secret) {
    const k = new ConferenceKeys();
    k.#room = await roomId(secret);
    k.pskId = concat(utf8('sotto v2 psk id'), k.#room);
    k.psk = await hkdf(new Uint8Array(0), secret, utf8('sotto v2 psk'), 32);
    const raw = await hkdf(new Uint8Array(0), secret, utf8('sotto v2 mls seal'), 32);
    k.#seal = await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    raw.fill(0);
    return k;
  }

  #aad(kind, epoch, sender) {
    const k = MLS_KIND[kind];
    if (!k) throw new TypeError(`unknown MLS message kind ${kind}`);
    if (!(sender instanceof Uint8Array) || sender.length !== 16) throw new TypeError('a sender is 16 bytes');
    return concat(utf8('sotto v2 mls'), this.#room, Uint8Array.of(k), u64be(epoch), sender);
  }

  /** Seals `message` (one TLS-encoded MLSMessage) of `kind`, sent in `epoch` (a number or
   *  BigInt) by `sender` (their 16-byte relay id). `nonce`: fresh random unless given (the
   *  vectors' way to pin every byte; never reuse one). */
  async seal(kind, epoch, sender, message, nonce = crypto.getRandomValues(new Uint8Array(NONCE_LEN))) {
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: this.#aad(kind, epoch, sender) }, this.#seal, message));
    return concat(nonce, ct);
  }

  /** Opens a sealed message of `kind` that the relay says `sender` sent in `epoch`. */
  async open(kind, epoch, sender, sealed) {
    if (sealed.length < MIN_SEALED_LEN) throw new GroupTampered('a sealed MLS message too short');
    const aad = this.#aad(kind, epoch, sender);
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: sealed.subarray(0, NONCE_LEN), additionalData: aad }, this.#seal, sealed.subarray(NONCE_LEN)));
    } catch {
      throw new GroupTampered('a sealed MLS message did not open');
    }
  }
}

const CODE_MODULUS = 10n ** 30n;

/** The group code of the epoch whose authenticator (RFC 9420 §8.7) this is: 30 digits,
 *  `{ digits, shown }` with `shown` in six groups of five. */
export async function groupCode(authenticator) {
  const bytes = await hkdf(new Uint8Array(0), authenticator, utf8('sotto v2 group code'), 16);
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  const digits = (n % CODE_MODULUS).toString().padStart(30, '0');
  return { digits, shown: digits.match(/.{5}/g).join(' ') };
}
