// The data channel (PROTOCOL.md §3.6): every message sealed under the pair's data keys, and the
// messages inside (texts, receipts, files) decoded once at the edge. Pure: WebCrypto only, no
// DOM; the same vectors as the Rust crate (tests/vectors/sotto-v1.json).

import { concat, u64be, utf8 } from './bytes.js';

const subtle = globalThis.crypto.subtle;

/** The longest text, in bytes of UTF-8. */
export const MAX_TEXT = 4096;
/** The longest file name in an offer, in bytes of UTF-8. */
export const MAX_NAME = 255;
/** The most data one file chunk carries. */
export const MAX_CHUNK = 16000;
/** Bytes of a sealed message besides its plaintext: seq and tag. */
export const DATA_OVERHEAD = 24;
const MAX_PLAINTEXT = 1 + 4 + 8 + MAX_CHUNK;

/** A message did not open or came out of sequence: the channel must close ("messages tampered
 *  with"); the call goes on. */
export class DataTampered extends Error {
  constructor(why) {
    super(`messages tampered with (${why})`);
    this.name = 'DataTampered';
    this.why = why;
  }
}

/** An authenticated message that breaks the rules of its kind; `code` is the fault's stable name
 *  (the vectors' `data_malformed`). Dropped and reported; the channel stays open. */
export class MessageMalformed extends Error {
  constructor(code) {
    super(`message dropped: ${code}`);
    this.name = 'MessageMalformed';
    this.code = code;
  }
}

const nonce = (seq) => concat(new Uint8Array(4), u64be(seq));

/** Both directions of one pair's data channel. */
export class DataSeal {
  #room;
  #send;
  #receive;
  #seqOut = 0n;
  #seqIn = 0n;
  // A message arrived that cannot open: every later one is refused at once.
  #broken = false;
  // One of the results handed out so far failed: every later result fails too.
  #failed = false;
  // Results come out in order: each waits for the one before it.
  #opening = Promise.resolve();

  constructor(room, send, receive) {
    this.#room = room;
    this.#send = send;
    this.#receive = receive;
  }

  /** From the key bytes the handshake gives (`dataKeyBytes`): `send` seals what this side sends. */
  static async create(room, { send, receive }) {
    const imp = (raw, use) => subtle.importKey('raw', raw, 'AES-GCM', false, [use]);
    return new DataSeal(room, await imp(send, 'encrypt'), await imp(receive, 'decrypt'));
  }

  #aad(seq) {
    return concat(utf8('sotto v1 data'), this.#room, u64be(seq));
  }

  /** seq || ciphertext || tag. */
  async seal(plaintext) {
    if (plaintext.length > MAX_PLAINTEXT) throw new Error('data message longer than a full chunk');
    const seq = this.#seqOut;
    this.#seqOut += 1n;
    const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce(seq), additionalData: this.#aad(seq) }, this.#send, plaintext));
    return concat(u64be(seq), ct);
  }

  /** Opens the peer's next message; anything else is DataTampered, now and for every later one.
   *  Messages are taken in the order they arrive: the sequence number is checked at once and the
   *  decryption starts at once (so several run while earlier ones are handled), but results
   *  come out in order, and none after the first that fails. */
  open(msg) {
    let decrypted;
    try {
      if (this.#broken) throw new DataTampered('the channel was closed after tampering');
      if (msg.length < DATA_OVERHEAD) throw new DataTampered('message too short');
      if (msg.length > DATA_OVERHEAD + MAX_PLAINTEXT) throw new DataTampered('message longer than any the protocol sends');
      const seq = new DataView(msg.buffer, msg.byteOffset, 8).getBigUint64(0);
      if (seq !== this.#seqIn) throw new DataTampered('message out of sequence (dropped, replayed or reordered)');
      this.#seqIn += 1n;
      decrypted = subtle.decrypt({ name: 'AES-GCM', iv: nonce(seq), additionalData: this.#aad(seq) }, this.#receive, msg.subarray(8));
    } catch (e) {
      this.#broken = true;
      decrypted = Promise.reject(e);
    }
    // Unhandled until its turn comes: that is the chain below, not a lost rejection.
    decrypted.catch(() => {});
    const result = this.#opening.then(async () => {
      if (this.#failed) throw new DataTampered('the channel was closed after tampering');
      try {
        return new Uint8Array(await decrypted);
      } catch (e) {
        this.#broken = true;
        this.#failed = true;
        throw e instanceof DataTampered ? e : new DataTampered('message failed authentication');
      }
    });
    this.#opening = result.catch(() => {});
    return result;
  }
}

const KINDS = {
  text: 0x01,
  delivered: 0x02,
  'file-offer': 0x10,
  'file-accept': 0x11,
  'file-chunk': 0x12,
  'file-end': 0x13,
  'file-received': 0x14,
  'file-abort': 0x15,
  'file-decline': 0x16,
  'media-state': 0x20,
};
/** media-state flag bits; the others are sent as 0 and ignored (later versions may use them). */
const MICROPHONE_ON = 0x01;
const CAMERA_ON = 0x02;
const NAMES = Object.fromEntries(Object.entries(KINDS).map(([k, v]) => [v, k]));

/** The reason bytes of file-abort and file-decline. */
export const REASON = { cancelled: 0, tooLarge: 1, integrityFailed: 2, protocolViolation: 3, couldNotStore: 4, tooManyFiles: 5 };
const reasonOf = (b) => (b <= 5 && b !== 3 ? b : REASON.protocolViolation);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Encodes a message ({ kind, id, ... } as in the vectors; data and sha256 as Uint8Array). One
 *  this side may not send (a text or name empty or too long, a chunk empty or too long) throws. */
export function encode(m) {
  const kind = KINDS[m.kind];
  if (kind === undefined) throw new Error(`unknown message kind ${m.kind}`);
  if (m.kind === 'media-state') return Uint8Array.of(kind, (m.microphone ? MICROPHONE_ON : 0) | (m.camera ? CAMERA_ON : 0));
  if (!Number.isInteger(m.id) || m.id < 0 || m.id > 0xffffffff) throw new Error('ids are u32');
  const head = new Uint8Array(5);
  head[0] = kind;
  new DataView(head.buffer).setUint32(1, m.id);
  switch (m.kind) {
    case 'text': {
      const t = utf8(m.text);
      if (t.length === 0 || t.length > MAX_TEXT) throw new Error(`a message is 1 to ${MAX_TEXT} bytes`);
      return concat(head, t);
    }
    case 'file-offer': {
      const n = utf8(m.name);
      if (n.length === 0 || n.length > MAX_NAME) throw new Error(`a file name is 1 to ${MAX_NAME} bytes`);
      return concat(head, u64be(m.size), Uint8Array.of(n.length), n);
    }
    case 'file-chunk':
      if (m.data.length === 0 || m.data.length > MAX_CHUNK) throw new Error(`a chunk is 1 to ${MAX_CHUNK} bytes`);
      return concat(head, u64be(m.offset), m.data);
    case 'file-end':
      if (m.sha256.length !== 32) throw new Error('a SHA-256 is 32 bytes');
      return concat(head, m.sha256);
    case 'file-abort':
    case 'file-decline':
      return concat(head, Uint8Array.of(m.reason));
    default:
      return head;
  }
}

/** Decodes an opened plaintext into { kind, id, ... }; throws MessageMalformed naming the rule
 *  it broke. */
export function decode(p) {
  if (p.length === 0) throw new MessageMalformed('empty');
  const name = NAMES[p[0]];
  if (!name) throw new MessageMalformed('unknown-kind');
  const wrong = () => new MessageMalformed('wrong-length');
  if (name === 'media-state') {
    if (p.length !== 2) throw wrong();
    return { kind: name, microphone: (p[1] & MICROPHONE_ON) !== 0, camera: (p[1] & CAMERA_ON) !== 0 };
  }
  if (p.length < 5) throw wrong();
  const view = new DataView(p.buffer, p.byteOffset, p.length);
  const id = view.getUint32(1);
  const u64 = (at) => Number(view.getBigUint64(at));
  const exactly = (n) => {
    if (p.length !== n) throw wrong();
  };
  const text = (bytes) => {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new MessageMalformed('invalid-utf8');
    }
  };
  switch (name) {
    case 'text': {
      const t = p.subarray(5);
      if (t.length === 0) throw new MessageMalformed('empty-text');
      if (t.length > MAX_TEXT) throw new MessageMalformed('text-too-long');
      return { kind: name, id, text: text(t) };
    }
    case 'file-offer': {
      if (p.length < 14) throw wrong();
      const len = p[13];
      if (len === 0) throw new MessageMalformed('empty-name');
      if (p.length < 14 + len) throw wrong();
      const fileName = text(p.subarray(14, 14 + len));
      exactly(14 + len);
      return { kind: name, id, size: u64(5), name: fileName };
    }
    case 'file-chunk': {
      if (p.length < 13) throw wrong();
      const data = p.slice(13);
      if (data.length === 0) throw new MessageMalformed('empty-chunk');
      if (data.length > MAX_CHUNK) throw new MessageMalformed('chunk-too-long');
      return { kind: name, id, offset: u64(5), data };
    }
    case 'file-end':
      exactly(37);
      return { kind: name, id, sha256: p.slice(5) };
    case 'file-abort':
    case 'file-decline':
      exactly(6);
      return { kind: name, id, reason: reasonOf(p[5]) };
    default:
      exactly(5);
      return { kind: name, id };
  }
}
