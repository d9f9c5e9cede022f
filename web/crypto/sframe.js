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

/** The KID bits a conference gives a sender's leaf index and the group's epoch (PROTOCOL.md §7.6). */
export const LEAF_BITS = 8n;
export const EPOCH_BITS = 6n;

/** A pair's KIDs: generation << 3 | stream << 1 | role. */
export const pairLayout = (stream, role) => ({
  stream,
  shift: 3n,
  low: (BigInt(stream) << 1n) | ROLE_BIT[role],
  fault: (kid) => ((kid & 1n) !== ROLE_BIT[role] ? 'wrong-role' : 'wrong-stream'),
});

/** A conference sender's KIDs: generation << 16 | stream << 14 | leaf << 6 | epoch % 64. */
export const conferenceLayout = (stream, leaf, epoch) => {
  if (!(Number.isInteger(leaf) && leaf >= 0 && BigInt(leaf) < 1n << LEAF_BITS)) throw new FrameError('leaf-beyond-kid');
  return conferenceLayoutOf(stream, leaf, epoch);
};
const conferenceLayoutOf = (stream, leaf, epoch) => ({
  stream,
  shift: 2n + LEAF_BITS + EPOCH_BITS,
  low: (BigInt(stream) << (LEAF_BITS + EPOCH_BITS)) | (BigInt(leaf) << EPOCH_BITS) | (BigInt(epoch) % (1n << EPOCH_BITS)),
  fault: () => 'unknown-sender',
});

const kidIn = (layout, generation) => (BigInt(generation) << layout.shift) | layout.low;
const maxGeneration = (layout) => (1n << (64n - layout.shift)) - 1n;

/** KID = generation << 3 | stream << 1 | role. */
export const kidOf = (generation, stream, role) => kidIn(pairLayout(stream, role), generation);

/** Encrypts one stream's frames (PROTOCOL.md §4): a pair's (role) or, with `layout`, a
 *  conference member's (conferenceLayout). */
export class FrameEncryptor {
  constructor(baseKey, role, stream, generation = 0n, layout = pairLayout(stream, role)) {
    if (BigInt(generation) > maxGeneration(layout)) throw new FrameError('generations-exhausted');
    Object.assign(this, { baseKey, layout, stream, generation: BigInt(generation), ctr: 0n, kidKey: null });
  }

  async encrypt(frame) {
    const p = clearPrefixLength(this.stream, frame);
    if (p === null) throw new FrameError('too-short');
    if (this.ctr > MAX_CTR) {
      if (this.generation === maxGeneration(this.layout)) throw new FrameError('generations-exhausted');
      this.generation += 1n;
      this.ctr = 0n;
      this.kidKey = null;
    }
    const kid = kidIn(this.layout, this.generation);
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

/** Decrypts the frames of one of the peer's streams, enforcing every receiver rule: a pair's
 *  (the peer's role) or, with `layout`, one conference sender's. */
export class FrameDecryptor {
  constructor(baseKey, peerRole, stream, layout = pairLayout(stream, peerRole)) {
    Object.assign(this, { baseKey, layout, stream, gens: [] }); // oldest first, at most 2
  }

  /** Returns { frame: prefix || plaintext, generation, ctr }; throws FrameError otherwise. */
  async decrypt(data) {
    const p = clearPrefixLength(this.stream, data);
    if (p === null) throw new FrameError('too-short');
    const metadata = data.subarray(0, p);
    const rest = data.subarray(p);
    const h = parseHeader(rest);
    if ((h.kid & ((1n << this.layout.shift) - 1n)) !== this.layout.low) throw new FrameError(this.layout.fault(h.kid));
    if (h.ctr > MAX_CTR) throw new FrameError('counter-too-large');
    if (rest.length - h.length < TAG) throw new FrameError('too-short');
    const generation = h.kid >> this.layout.shift;
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

/** How long a receiver keeps the previous epoch's keys after moving to a new one, in ms. */
export const PREVIOUS_EPOCH_KEPT_MS = 10_000;

/** The frames a conference member receives (PROTOCOL.md §7.6), from every other member, on
 *  every stream: the current epoch's keys and, for PREVIOUS_EPOCH_KEPT_MS after a commit, the
 *  previous one's. The same rules as sotto-e2ee's ConferenceFrames. */
export class ConferenceFrames {
  #epochs = []; // { epoch (BigInt), baseKey, senders: Map<leaf, id>, until, decryptors: Map }

  /** The group moved to `epoch`, whose base key (imported) is `baseKey` and whose members are
   *  `members` ({ leaf, id }); `own` is this member's leaf. */
  setEpoch(epoch, baseKey, members, own, now) {
    epoch = BigInt(epoch);
    this.#epochs = this.#epochs.filter((e) => e.epoch + 1n === epoch);
    for (const e of this.#epochs) e.until = now + PREVIOUS_EPOCH_KEPT_MS;
    const senders = new Map(members.filter((m) => m.leaf !== own).map((m) => [m.leaf, m.id]));
    this.#epochs.push({ epoch, baseKey, senders, until: null, decryptors: new Map() });
  }

  /** Checks and opens one frame that arrived on a track of `stream` at time `now` (ms):
   *  { sender, leaf, epoch, frame, generation, ctr }, or throws FrameError. */
  async open(stream, data, now) {
    this.#epochs = this.#epochs.filter((e) => e.until === null || now < e.until);
    const p = clearPrefixLength(stream, data);
    if (p === null) throw new FrameError('too-short');
    const { kid } = parseHeader(data.subarray(p));
    const epochBits = kid % (1n << EPOCH_BITS);
    const leaf = Number((kid >> EPOCH_BITS) % (1n << LEAF_BITS));
    if (((kid >> (EPOCH_BITS + LEAF_BITS)) & 3n) !== BigInt(stream)) throw new FrameError('wrong-stream');
    const keys = this.#epochs.find((e) => e.epoch % (1n << EPOCH_BITS) === epochBits);
    if (!keys) throw new FrameError('unknown-epoch');
    const sender = keys.senders.get(leaf);
    if (!sender) throw new FrameError('unknown-sender');
    const slot = `${leaf}/${stream}`;
    let decryptor = keys.decryptors.get(slot);
    if (!decryptor) {
      decryptor = new FrameDecryptor(keys.baseKey, null, stream, conferenceLayout(stream, leaf, keys.epoch));
      keys.decryptors.set(slot, decryptor);
    }
    const opened = await decryptor.decrypt(data);
    return { sender, leaf, epoch: keys.epoch, ...opened };
  }
}
