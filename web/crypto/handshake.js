// The handshake (commit, key, reveal) and the sealed channel it opens (PROTOCOL.md §3),
// mirroring sotto-e2ee's handshake.rs: same states, same rules, same bytes.

import { concat, equal, u64be, utf8 } from './bytes.js';
import { expand, extract, sha256 } from './kdf.js';
import { roomId } from './link.js';

const subtle = globalThis.crypto.subtle;

export const COMMIT = 1;
export const KEY = 2;
export const REVEAL = 3;
export const SEALED = 4;

/** Why the set-up must stop; `kind` is one of the Rust crate's error kinds. */
export class HandshakeError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind; // 'tampered' | 'wrong-link-or-tampered-relay' | 'misuse'
  }
}
const tampered = (m) => new HandshakeError('tampered', m);
export const WRONG_LINK = 'wrong link or tampered relay';

/** A fresh, non-extractable X25519 key pair with its raw public key. */
export async function generateKeyPair() {
  const pair = await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
  const pub = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: pub };
}

/** The key pair with this private scalar (tests and vectors). */
export async function keyPairFromPrivate(scalar) {
  const pkcs8 = concat(Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]), scalar);
  const privateKey = await subtle.importKey('pkcs8', pkcs8, { name: 'X25519' }, true, ['deriveBits']);
  const jwk = await subtle.exportKey('jwk', privateKey);
  const pubKey = await subtle.importKey('jwk', { kty: 'OKP', crv: 'X25519', x: jwk.x }, { name: 'X25519' }, true, []);
  return { privateKey, publicKey: new Uint8Array(await subtle.exportKey('raw', pubKey)) };
}

const commitment = (eO) => sha256(utf8('sotto v1 commit'), eO);
const message = (kind, body) => concat(Uint8Array.of(kind), body);

function body(msg, kind) {
  if (msg.length === 0) throw tampered('empty message');
  if (msg[0] === kind) {
    if (msg.length !== 33) throw tampered('handshake message is not 33 bytes');
    return msg.subarray(1);
  }
  if (msg[0] >= COMMIT && msg[0] <= SEALED) throw tampered('message out of order');
  throw tampered('unknown message kind');
}

function nonce(seq) {
  return concat(new Uint8Array(4), u64be(seq));
}

export class Handshake {
  /** O's side: returns { hs, commit }. */
  static async offerer(secret, keyPair) {
    const hs = new Handshake('offerer', secret, keyPair, await roomId(secret));
    hs.state = 'awaiting-key';
    return { hs, commit: message(COMMIT, await commitment(keyPair.publicKey)) };
  }

  /** A's side: waits for COMMIT. */
  static async answerer(secret, keyPair) {
    const hs = new Handshake('answerer', secret, keyPair, await roomId(secret));
    hs.state = 'awaiting-commit';
    return hs;
  }

  constructor(role, secret, keyPair, room) {
    this.role = role;
    this.secret = secret;
    this.own = keyPair;
    this.room = room;
    this.state = null;
    this.keys = null;
  }

  get established() {
    return this.state === 'established';
  }

  /** The transcript hash th (PROTOCOL.md §3.2) once the keys exist: what a device's identity
   *  signs (§3.8). */
  get transcriptHash() {
    if (!this.keys) throw new HandshakeError('misuse', 'no transcript before the keys exist');
    return this.keys.th;
  }

  async #derive(peerPublic) {
    const peer = await subtle.importKey('raw', peerPublic, { name: 'X25519' }, false, []);
    let dh;
    try {
      dh = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: peer }, this.own.privateKey, 256));
    } catch {
      // WebCrypto refuses an all-zero result (a small-order peer key).
      throw tampered("the peer's key gives an all-zero shared secret");
    }
    if (dh.every((b) => b === 0)) throw tampered("the peer's key gives an all-zero shared secret");
    const [eO, eA] = this.role === 'offerer' ? [this.own.publicKey, peerPublic] : [peerPublic, this.own.publicKey];
    const th = await sha256(utf8('sotto v1 transcript'), this.room, eO, eA);
    const prk = await extract(this.secret, dh);
    dh.fill(0);
    this.own = { publicKey: this.own.publicKey }; // the private key is not used again
    const K = (label, length) => expand(prk, concat(utf8('sotto v1 '), utf8(label), th), length);
    const sealKey = async (label, usage) => {
      const raw = await K(label, 32);
      const key = await subtle.importKey('raw', raw, 'AES-GCM', false, [usage]);
      raw.fill(0);
      return key;
    };
    const [out, inn] = this.role === 'offerer' ? ['seal O->A', 'seal A->O'] : ['seal A->O', 'seal O->A'];
    this.keys = {
      prk,
      th,
      sealOut: await sealKey(out, 'encrypt'),
      sealIn: await sealKey(inn, 'decrypt'),
      seqOut: 0n,
      seqIn: 0n,
      sas: await K('sas', 4),
    };
  }

  /** Handles one message from the peer. Returns { reply } / { keysReady, reply } / { message }. */
  async receive(msg) {
    if (this.state === 'failed') throw new HandshakeError('misuse', 'the handshake already failed');
    const state = this.state;
    this.state = 'failed';
    try {
      const out = await this.#step(state, msg);
      return out;
    } catch (e) {
      this.state = 'failed';
      throw e;
    }
  }

  async #step(state, msg) {
    switch (state) {
      case 'awaiting-key': {
        const eA = body(msg, KEY);
        const reveal = message(REVEAL, this.own.publicKey);
        await this.#derive(eA);
        this.state = 'awaiting-confirmation';
        return { keysReady: true, reply: reveal };
      }
      case 'awaiting-commit': {
        this.commitment = body(msg, COMMIT).slice();
        this.state = 'awaiting-reveal';
        return { reply: message(KEY, this.own.publicKey) };
      }
      case 'awaiting-reveal': {
        const eO = body(msg, REVEAL);
        if (!equal(await commitment(eO), this.commitment)) throw tampered('the revealed key does not match its commitment');
        await this.#derive(eO.slice());
        this.state = 'awaiting-confirmation';
        return { keysReady: true, reply: null };
      }
      case 'awaiting-confirmation': {
        if (msg[0] >= COMMIT && msg[0] <= REVEAL) throw tampered('a handshake message after the keys');
        let plain;
        try {
          plain = await this.#open(msg);
        } catch {
          throw new HandshakeError('wrong-link-or-tampered-relay', WRONG_LINK);
        }
        this.state = 'established';
        return { message: plain };
      }
      case 'established': {
        const plain = await this.#open(msg);
        this.state = 'established';
        return { message: plain };
      }
      default:
        throw new HandshakeError('misuse', 'the handshake already failed');
    }
  }

  #aad(seq) {
    return concat(utf8('sotto v1 seal'), this.room, u64be(seq));
  }

  async #open(msg) {
    const k = this.keys;
    if (msg[0] >= COMMIT && msg[0] <= REVEAL) throw tampered('a handshake message after the handshake');
    if (msg[0] !== SEALED) throw tampered('not a sealed message');
    if (msg.length < 25) throw tampered('sealed message too short');
    const seq = new DataView(msg.buffer, msg.byteOffset + 1, 8).getBigUint64(0);
    if (seq !== k.seqIn) throw tampered('sealed message out of sequence (dropped, replayed or reordered)');
    let plain;
    try {
      plain = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce(seq), additionalData: this.#aad(seq) }, k.sealIn, msg.subarray(9)));
    } catch {
      throw tampered('sealed message failed authentication');
    }
    k.seqIn += 1n;
    return plain;
  }

  /** Seals a plaintext for the peer: 04 || seq || ciphertext || tag. */
  async seal(plaintext) {
    const allowed = this.state === 'established' || (this.state === 'awaiting-confirmation' && this.role === 'offerer');
    if (!allowed) throw new HandshakeError('misuse', 'nothing may be sealed before the handshake allows it');
    const k = this.keys;
    const seq = k.seqOut;
    k.seqOut += 1n;
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce(seq), additionalData: this.#aad(seq) }, k.sealOut, plaintext));
    return concat(Uint8Array.of(SEALED), u64be(seq), ct);
  }

  /** The six digits, zero-padded, once the keys exist. */
  safetyCode() {
    if (!this.keys) return null;
    const v = new DataView(this.keys.sas.buffer).getUint32(0) % 1000000;
    return String(v).padStart(6, '0');
  }

  /** The SFrame base keys' bytes { send, receive, th2 }, bound to both DTLS fingerprints. */
  mediaKeyBytes(fpO, fpA) {
    return this.#boundPair(fpO, fpA, 'media O', 'media A');
  }

  /** The data channel's keys' bytes { send, receive, th2 } (PROTOCOL.md §3.6), bound to both
   *  DTLS fingerprints like the media keys. */
  dataKeyBytes(fpO, fpA) {
    return this.#boundPair(fpO, fpA, 'data O', 'data A');
  }

  /** M(labelO) and M(labelA) under th2, as what this side sends and what the peer sends. */
  async #boundPair(fpO, fpA, labelO, labelA) {
    if (this.state !== 'established') throw new HandshakeError('misuse', 'media and data keys exist only after the peer confirmed the keys');
    const k = this.keys;
    const len = (b) => Uint8Array.of(b.length >> 8, b.length & 0xff);
    const [o, a] = [utf8(fpO), utf8(fpA)];
    if (o.length > 65535 || a.length > 65535) throw new HandshakeError('misuse', 'fingerprint too long');
    const th2 = await sha256(k.th, utf8('dtls'), len(o), o, len(a), a);
    const M = (label) => expand(k.prk, concat(utf8('sotto v1 '), utf8(label), th2), 32);
    const [ofO, ofA] = [await M(labelO), await M(labelA)];
    return this.role === 'offerer' ? { send: ofO, receive: ofA, th2 } : { send: ofA, receive: ofO, th2 };
  }
}
