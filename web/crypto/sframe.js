// SFrame (RFC 9605) and Sotto's media-frame rules (PROTOCOL.md §4), mirroring sotto-e2ee's
// sframe.rs and media.rs: header, per-KID keys, the KID scheme, codec prefixes, the replay
// window. Pure: runs in the page, the transform worker and node.

import { concat, u64be, utf8 } from './bytes.js';

const subtle = globalThis.crypto.subtle;

export const SUITE_AES128_GCM = 4;
export const SUITE_AES256_GCM = 5;
export const TAG = 16;
export const MAX_CTR = (1n << 32n) - 1n;
export const MAX_GEN = (1n << 61n) - 1n;
export const REPLAY_WINDOW = 128n;
export const STREAM = { audio: 0, video: 1, screen: 2 };
const ROLE_BIT = { offerer: 0n, answerer: 1n };

export class FrameError extends Error {
  constructor(fault) {
    super(fault);
    this.fault = fault; // 'too-short' | 'malformed-header' | 'wrong-role' | 'wrong-stream' | ...
  }
}

const minLen = (v) => {
  let n = 0;
  for (let x = v; x > 0n; x >>= 8n) n++;
  return n;
};

function beBytes(v, n) {
  const out = new Uint8Array(n);
  for (let i = n - 1, x = v; i >= 0; i--, x >>= 8n) out[i] = Number(x & 0xffn);
  return out;
}

/** RFC 9605 §4.3 header of (kid, ctr), values as BigInt. */
export function encodeHeader(kid, ctr) {
  let config = 0;
  const tail = [];
  for (const [v, shift] of [[kid, 4], [ctr, 0]]) {
    if (v < 8n) config |= Number(v) << shift;
    else {
      const n = minLen(v);
      config |= (0x8 | (n - 1)) << shift;
      tail.push(beBytes(v, n));
    }
  }
  return concat(Uint8Array.of(config), ...tail);
}

/** Parses a header at the start of `bytes`: { kid, ctr, length }. Minimal encodings only. */
export function parseHeader(bytes) {
  if (bytes.length < 1) throw new FrameError('malformed-header');
  const config = bytes[0];
  let pos = 1;
  const field = (nibble) => {
    if ((nibble & 0x8) === 0) return BigInt(nibble);
    const n = (nibble & 0x7) + 1;
    if (bytes.length < pos + n) throw new FrameError('malformed-header');
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[pos + i]);
    pos += n;
    if (v < 8n || minLen(v) !== n) throw new FrameError('malformed-header');
    return v;
  };
  const kid = field(config >> 4);
  const ctr = field(config & 0x0f);
  return { kid, ctr, length: pos };
}

/** Imports raw base-key bytes as a non-extractable HKDF key. */
export function importBaseKey(raw) {
  return subtle.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
}

/** RFC 9605 §4.4.2: the AES-GCM key and the salt of one KID. */
export async function deriveKidKey(baseKey, kid, suite = SUITE_AES128_GCM) {
  const hash = suite === SUITE_AES256_GCM ? 'SHA-512' : 'SHA-256';
  const length = suite === SUITE_AES256_GCM ? 256 : 128;
  const label = (s) => concat(utf8(s), u64be(kid), Uint8Array.of(0, suite));
  const params = (s) => ({ name: 'HKDF', hash, salt: new Uint8Array(0), info: label(s) });
  const key = await subtle.deriveKey(params('SFrame 1.0 Secret key '), baseKey, { name: 'AES-GCM', length }, false, ['encrypt', 'decrypt']);
  const salt = new Uint8Array(await subtle.deriveBits(params('SFrame 1.0 Secret salt '), baseKey, 96));
  return { key, salt };
}

function nonce(salt, ctr) {
  const out = salt.slice();
  const c = beBytes(ctr, 8);
  for (let i = 0; i < 8; i++) out[4 + i] ^= c[i];
  return out;
}

/** RFC 9605 encryption: header || ciphertext || tag, aad = header || metadata. */
export async function encrypt(suite, baseKeyRaw, kid, ctr, metadata, plaintext) {
  const { key, salt } = await deriveKidKey(await importBaseKey(baseKeyRaw), kid, suite);
  const header = encodeHeader(kid, ctr);
  const ct = await subtle.encrypt({ name: 'AES-GCM', iv: nonce(salt, ctr), additionalData: concat(header, metadata) }, key, plaintext);
  return concat(header, new Uint8Array(ct));
}

/** RFC 9605 decryption: { kid, ctr, plaintext }. */
export async function decrypt(suite, baseKeyRaw, metadata, frame) {
  const h = parseHeader(frame);
  if (frame.length - h.length < TAG) throw new FrameError('too-short');
  const { key, salt } = await deriveKidKey(await importBaseKey(baseKeyRaw), h.kid, suite);
  try {
    const pt = await subtle.decrypt({ name: 'AES-GCM', iv: nonce(salt, h.ctr), additionalData: concat(frame.subarray(0, h.length), metadata) }, key, frame.subarray(h.length));
    return { kid: h.kid, ctr: h.ctr, plaintext: new Uint8Array(pt) };
  } catch {
    throw new FrameError('authentication-failed');
  }
}

/** Clear prefix of a frame: Opus 1 byte (RFC 6716 §3.1); VP8 10 bytes for a key frame, 3 for
 *  a delta frame, from the P bit of the first byte (RFC 6386 §9.1). null when too short. */
export function clearPrefixLength(stream, frame) {
  let n = 1;
  if (stream !== STREAM.audio) {
    if (frame.length < 1) return null;
    n = (frame[0] & 1) === 0 ? 10 : 3;
  }
  return frame.length >= n ? n : null;
}

/** KID = generation << 3 | stream << 1 | role. */
export const kidOf = (generation, stream, role) => (BigInt(generation) << 3n) | (BigInt(stream) << 1n) | ROLE_BIT[role];

/** Encrypts one stream's frames (PROTOCOL.md §4). */
export class FrameEncryptor {
  constructor(baseKey, role, stream, generation = 0n) {
    if (BigInt(generation) > MAX_GEN) throw new FrameError('generations-exhausted');
    Object.assign(this, { baseKey, role, stream, generation: BigInt(generation), ctr: 0n, kidKey: null });
  }

  async encrypt(frame) {
    const p = clearPrefixLength(this.stream, frame);
    if (p === null) throw new FrameError('too-short');
    if (this.ctr > MAX_CTR) {
      if (this.generation === MAX_GEN) throw new FrameError('generations-exhausted');
      this.generation += 1n;
      this.ctr = 0n;
      this.kidKey = null;
    }
    const kid = kidOf(this.generation, this.stream, this.role);
    this.kidKey ??= await deriveKidKey(this.baseKey, kid);
    const ctr = this.ctr++;
    const header = encodeHeader(kid, ctr);
    const metadata = frame.subarray(0, p);
    const ct = await subtle.encrypt({ name: 'AES-GCM', iv: nonce(this.kidKey.salt, ctr), additionalData: concat(header, metadata) }, this.kidKey.key, frame.subarray(p));
    return concat(metadata, header, new Uint8Array(ct));
  }
}

class ReplayWindow {
  top = null;
  seen = 0n;
  allows(ctr) {
    if (this.top === null || ctr > this.top) return true;
    const age = this.top - ctr;
    return age < REPLAY_WINDOW && ((this.seen >> age) & 1n) === 0n;
  }
  record(ctr) {
    if (this.top === null) {
      this.top = ctr;
      this.seen = 1n;
    } else if (ctr <= this.top) {
      this.seen |= 1n << (this.top - ctr);
    } else {
      const shift = ctr - this.top;
      this.seen = shift >= 128n ? 1n : ((this.seen << shift) | 1n) & ((1n << 128n) - 1n);
      this.top = ctr;
    }
  }
}

/** Decrypts the frames of one of the peer's streams, enforcing every receiver rule. */
export class FrameDecryptor {
  constructor(baseKey, peerRole, stream) {
    Object.assign(this, { baseKey, peerRole, stream, gens: [] }); // oldest first, at most 2
  }

  /** Returns { frame: prefix || plaintext, generation, ctr }; throws FrameError otherwise. */
  async decrypt(data) {
    const p = clearPrefixLength(this.stream, data);
    if (p === null) throw new FrameError('too-short');
    const metadata = data.subarray(0, p);
    const rest = data.subarray(p);
    const h = parseHeader(rest);
    if ((h.kid & 1n) !== ROLE_BIT[this.peerRole]) throw new FrameError('wrong-role');
    if (((h.kid >> 1n) & 3n) !== BigInt(this.stream)) throw new FrameError('wrong-stream');
    if (h.ctr > MAX_CTR) throw new FrameError('counter-too-large');
    if (rest.length - h.length < TAG) throw new FrameError('too-short');
    const generation = h.kid >> 3n;
    let g = this.gens.find((x) => x.generation === generation);
    if (!g && this.gens.length === 2 && generation < this.gens[0].generation) throw new FrameError('stale-generation');
    if (g && !g.window.allows(h.ctr)) throw new FrameError('replayed');
    const kidKey = g ? g.kidKey : await deriveKidKey(this.baseKey, h.kid);
    let pt;
    try {
      pt = await subtle.decrypt({ name: 'AES-GCM', iv: nonce(kidKey.salt, h.ctr), additionalData: concat(rest.subarray(0, h.length), metadata) }, kidKey.key, rest.subarray(h.length));
    } catch {
      throw new FrameError('authentication-failed');
    }
    if (!g) {
      g = { generation, kidKey, window: new ReplayWindow() };
      this.gens.push(g);
      this.gens.sort((a, b) => (a.generation < b.generation ? -1 : 1));
      if (this.gens.length > 2) this.gens.shift();
    }
    g.window.record(h.ctr);
    return { frame: concat(metadata, new Uint8Array(pt)), generation, ctr: h.ctr };
  }
}
