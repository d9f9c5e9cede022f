// Messages and files with one peer over the pair's data channel (PROTOCOL.md §3.6): the
// browser's mirror of the terminal client's client/src/conversation.rs, with the same rules and
// the same tests. Sans-IO: sealed bytes from the channel and the user's requests go in; sealed
// bytes for the channel and events for the user come out through `onOutput`, in order. The shell
// (messages.js) owns the files: it reads an outgoing file one chunk at a time when wantsChunk()
// asks (and the channel's buffer has room), and writes each incoming chunk where a `file-data`
// event says. Hashing, ids, the transfer rules and every check of the peer's messages live here.
// Pure: no DOM.
//
// Sealing and opening are WebCrypto, so asynchronous; every request and every received message
// runs through one queue, one at a time, in the order they came: seals are made in that order
// (the sends come out in seq order) and no message is looked at while another is half-handled.

import { equal, utf8 } from './crypto/bytes.js';
import { DataTampered, MAX_CHUNK, MAX_NAME, MAX_TEXT, MessageMalformed, REASON, decode, encode } from './crypto/data.js';
import { safeFileName } from './peer-signal.js';
import { Sha256 } from './crypto/sha256.js';

/** How many offered or incoming files the receiver keeps under way at once (PROTOCOL.md §3.6). */
export const MAX_INCOMING = 16;
/** Ids of finished or stopped files remembered, so messages that crossed a stop are ignored. */
const ENDED_MEMORY = 64;
/** Texts remembered until their receipt arrives. */
const PENDING_TEXTS = 1024;
/** File chunks sealed at once (at most 128 KB beside what the channel holds). */
const SEALING_AHEAD = 8;

/** A request this side cannot make; `code` is 'text-length', 'name-length', 'no-such-file' or
 *  'channel-closed', the message says it to the person. */
export class Refused extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'Refused';
    this.code = code;
  }
}

const textLength = () => new Refused('text-length', `a message is 1 to ${MAX_TEXT} bytes`);
const nameLength = () => new Refused('name-length', `a file name is 1 to ${MAX_NAME} bytes`);
const noSuchFile = (id) => new Refused('no-such-file', `no file ${id} to do that with`);
const channelClosed = () => new Refused('channel-closed', 'messages are off: the channel was tampered with');

// What data.js's fault codes say, worded as sotto-e2ee's MessageFault says them (`kind` is the
// message's first byte), so both clients report a bad message alike.
const kindHex = (kind) => `0x${kind.toString(16).padStart(2, '0')}`;
const FAULTS = {
  empty: () => 'empty message',
  'unknown-kind': (kind) => `unknown message kind ${kindHex(kind)}`,
  'wrong-length': (kind) => `message of kind ${kindHex(kind)} has the wrong length`,
  'invalid-utf8': () => 'text that is not UTF-8',
  'empty-text': () => 'empty text',
  'text-too-long': () => `text over ${MAX_TEXT} bytes`,
  'empty-name': () => 'file offer without a name',
  'empty-chunk': () => 'empty file chunk',
  'chunk-too-long': () => 'file chunk over 16,000 bytes',
};

function remember(ring, id, cap) {
  if (ring.length === cap) ring.shift();
  ring.push(id);
}

/** One pair's messages and files. */
export class Conversation {
  #seal;
  #limits;
  #onOutput;
  #open = true;
  #nextText = 0;
  #nextFile = 0;
  #pendingTexts = [];
  // id -> { state: 'awaiting-answer', size } | { state: 'sending', size, sent, hash }
  //       | { state: 'awaiting-receipt' }
  #outgoing = new Map();
  // id -> { state: 'awaiting-decision', size } | { state: 'receiving', size, received, hash }
  #incoming = new Map();
  #endedOutgoing = [];
  #endedIncoming = [];
  #queue = Promise.resolve();
  // Messages go out in this order (see #send).
  #outputs = Promise.resolve();
  // File chunks being sealed and not yet out; wantsChunk() asks for no more than SEALING_AHEAD.
  #sealing = 0;

  /**
   * @param {import('./crypto/data.js').DataSeal} seal  the pair's sealed channel
   * @param {{ acceptBelow: number, maxSize: number }} limits  files up to `acceptBelow` bytes
   *   are taken without asking; above `maxSize` they are declined as too large
   * @param {(output: object) => void} onOutput  `{ type: 'send', bytes }`,
   *   `{ type: 'close-channel' }` or `{ type: 'event', event }`, in order
   */
  constructor(seal, limits, onOutput) {
    this.#seal = seal;
    this.#limits = limits;
    this.#onOutput = onOutput;
  }

  /** Whether the channel still works (it closes for good after tampering). */
  isOpen() {
    return this.#open;
  }

  #run(task) {
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => {});
    return result;
  }

  #event(event) {
    this.#onOutput({ type: 'event', event });
  }

  /** Seals `msg` and hands it out; resolves once it is out. Its sequence number is taken now,
   *  and the sealing starts now, beside that of the messages before it (WebCrypto works off
   *  the page's thread: waiting for each message in turn left the channel idle between them),
   *  but messages go out in the order they were sent. */
  #send(msg) {
    if (!this.#open) return Promise.reject(channelClosed());
    // Every message built here is within the limits encode() checks (callers check the
    // person's input first), and a channel never runs out of its 2^64 sequence numbers.
    const sealed = this.#seal.seal(encode(msg));
    sealed.catch(() => {}); // handled in turn below
    const out = this.#outputs.then(async () => {
      let bytes;
      try {
        bytes = await sealed;
      } catch {
        throw channelClosed();
      }
      this.#onOutput({ type: 'send', bytes });
    });
    this.#outputs = out.catch(() => {});
    return out;
  }

  /** Resolves once every message sent so far is out (file chunks are not waited for). */
  settled() {
    return this.#outputs;
  }

  // For answers and stops: if the channel is gone, there is no one to tell.
  #sendQuietly(msg) {
    return this.#send(msg).catch(() => {});
  }

  /** Tells the peer whether this side's microphone and camera are on (PROTOCOL.md §3.6). */
  sendMediaState(microphone, camera) {
    return this.#run(() => this.#sendQuietly({ kind: 'media-state', microphone: Boolean(microphone), camera: Boolean(camera) }));
  }

  /** Sends a text; resolves to its id (for the later `delivered` event). */
  sendText(text) {
    return this.#run(async () => {
      if (typeof text !== 'string') throw new TypeError('a message is a string');
      const length = utf8(text).length;
      if (length === 0 || length > MAX_TEXT) throw textLength();
      const id = this.#nextText;
      await this.#send({ kind: 'text', id, text });
      this.#nextText = (id + 1) >>> 0;
      remember(this.#pendingTexts, id, PENDING_TEXTS);
      return id;
    });
  }

  /** Offers a file of `size` bytes called `name`; resolves to its id. Its chunks are asked for
   *  once the peer accepts. */
  offerFile(name, size) {
    return this.#run(async () => {
      if (typeof name !== 'string') throw new TypeError('a file name is a string');
      if (!Number.isSafeInteger(size) || size < 0) throw new TypeError('a file size is a whole number of bytes');
      const length = utf8(name).length;
      if (length === 0 || length > MAX_NAME) throw nameLength();
      const id = this.#nextFile;
      await this.#send({ kind: 'file-offer', id, size, name });
      this.#nextFile = (id + 1) >>> 0;
      this.#outgoing.set(id, { state: 'awaiting-answer', size });
      return id;
    });
  }

  /** The next chunk the shell should read and hand to sendChunk(): `{ id, offset, max }` (the
   *  most bytes to read), lowest id first; null while nothing accepted is left unsent, or while
   *  SEALING_AHEAD chunks are still being sealed (the next outgoing `file-progress` event says
   *  when to ask again). It reads the state as of the requests that have completed: await
   *  sendChunk() before asking again. */
  wantsChunk() {
    if (this.#sealing >= SEALING_AHEAD) return null;
    let want = null;
    for (const [id, f] of this.#outgoing) {
      // `sent < size`: a file whose last chunk is being sealed has nothing more to give.
      if (f.state === 'sending' && f.sent < f.size && !f.failed && (want === null || id < want.id)) {
        want = { id, offset: f.sent, max: Math.min(f.size - f.sent, MAX_CHUNK) };
      }
    }
    return want;
  }

  /** Sends the next chunk of file `id` (exactly what wantsChunk() asked for, or less); after its
   *  last byte, the file's end with its SHA-256. */
  sendChunk(id, data) {
    return this.#run(async () => {
      const f = this.#outgoing.get(id);
      if (f?.state !== 'sending') throw noSuchFile(id);
      const { size, sent: offset } = f;
      if (data.length === 0 || data.length > MAX_CHUNK || data.length > size - offset) {
        // The file changed under us (it grew, or shrank and we got nothing): stop it.
        await this.#stopOutgoing(id, REASON.couldNotStore);
        throw noSuchFile(id);
      }
      f.hash.update(data);
      f.sent += data.length;
      const done = f.sent;
      // Not waited for: the next chunk is read and sealed while this one is. Its progress
      // (which is also when the shell may be asked for more) follows once it is out.
      this.#sealing += 1;
      this.#send({ kind: 'file-chunk', id, offset, data }).then(
        () => {
          this.#sealing -= 1;
          this.#event({ type: 'file-progress', id, direction: 'outgoing', done, size });
        },
        () => {
          this.#sealing -= 1;
        },
      );
      if (done === size) await this.#finishSending(id);
    });
  }

  /** The shell could not read file `id` any further (it vanished, a read failed): stop it. The
   *  file leaves wantsChunk() at once; the abort and the event follow in turn. */
  sendingFailed(id) {
    const f = this.#outgoing.get(id);
    if (!f) return Promise.resolve();
    // A shell that asks again before this is handled must not be handed the same chunk.
    f.failed = true;
    return this.#run(() => this.#stopOutgoing(id, REASON.couldNotStore));
  }

  async #finishSending(id) {
    const f = this.#outgoing.get(id);
    if (f?.state !== 'sending') return;
    this.#outgoing.set(id, { state: 'awaiting-receipt' });
    await this.#send({ kind: 'file-end', id, sha256: f.hash.digest() });
  }

  /** The person takes incoming file `id`. */
  accept(id) {
    return this.#run(() => this.#accept(id));
  }

  async #accept(id) {
    const f = this.#incoming.get(id);
    if (f?.state !== 'awaiting-decision') throw noSuchFile(id);
    await this.#send({ kind: 'file-accept', id });
    this.#incoming.set(id, { state: 'receiving', size: f.size, received: 0, hash: new Sha256() });
    if (f.size === 0) this.#event({ type: 'file-progress', id, direction: 'incoming', done: 0, size: 0 });
  }

  /** The person stops file `id`: one we send (`'outgoing'`, file-abort) or one the peer sends or
   *  offers (`'incoming'`, file-decline). */
  cancel(id, direction) {
    return this.#run(async () => {
      if (direction === 'outgoing' && this.#outgoing.has(id)) return this.#stopOutgoing(id, REASON.cancelled);
      if (direction === 'incoming' && this.#incoming.has(id)) return this.#stopIncoming(id, REASON.cancelled);
      throw noSuchFile(id);
    });
  }

  async #stopOutgoing(id, reason) {
    if (!this.#outgoing.delete(id)) return;
    remember(this.#endedOutgoing, id, ENDED_MEMORY);
    await this.#sendQuietly({ kind: 'file-abort', id, reason });
    this.#event({ type: 'file-stopped', id, direction: 'outgoing', by: 'us', reason });
  }

  async #stopIncoming(id, reason) {
    this.#incoming.delete(id);
    remember(this.#endedIncoming, id, ENDED_MEMORY);
    await this.#sendQuietly({ kind: 'file-decline', id, reason });
    this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'us', reason });
  }

  /** Bytes from the data channel (a Uint8Array, or the ArrayBuffer a channel delivers). */
  receive(bytes) {
    const msg = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    // Opening starts now, beside the handling of earlier messages; its result waits its turn.
    const opened = this.#seal.open(msg);
    opened.catch(() => {}); // handled in turn below
    return this.#run(async () => {
      if (!this.#open) return; // closed after tampering: nothing more is read
      let plain;
      try {
        plain = await opened;
      } catch (e) {
        this.#tampered(e);
        return;
      }
      let decoded;
      try {
        decoded = decode(plain);
      } catch (e) {
        const error =
          e instanceof MessageMalformed
            ? `the other side sent a bad message (${FAULTS[e.code]?.(plain[0]) ?? e.code}); it was dropped`
            : String(e?.message ?? e);
        this.#event({ type: 'peer-error', error });
        return;
      }
      await this.#handle(decoded);
    });
  }

  /** A text frame on the data channel: never sealed, so the same as a message that does not
   *  open (PROTOCOL.md §3.6). */
  receiveUnsealed() {
    return this.#run(async () => {
      if (this.#open) this.#tampered(new DataTampered('a text frame, which is never sealed'));
    });
  }

  #tampered(e) {
    this.#open = false;
    this.#onOutput({ type: 'close-channel' });
    this.#event({ type: 'tampered', error: String(e?.message ?? e) });
    // Nothing half-received may be presented: every unfinished file is dropped.
    for (const id of this.#incoming.keys()) {
      this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'peer', reason: REASON.protocolViolation });
    }
    this.#incoming.clear();
    for (const id of this.#outgoing.keys()) {
      this.#event({ type: 'file-stopped', id, direction: 'outgoing', by: 'peer', reason: REASON.protocolViolation });
    }
    this.#outgoing.clear();
  }

  async #peerBrokeRules(id, direction, what) {
    this.#event({ type: 'peer-error', error: `the other side broke the file rules: ${what}` });
    // Only a file this side knows is stopped; an id it never saw is reported, nothing more.
    if (direction === 'incoming' && this.#incoming.has(id)) await this.#stopIncoming(id, REASON.protocolViolation);
    else if (direction === 'outgoing' && this.#outgoing.has(id)) await this.#stopOutgoing(id, REASON.protocolViolation);
  }

  async #handle(msg) {
    const { id } = msg;
    switch (msg.kind) {
      case 'text':
        await this.#sendQuietly({ kind: 'delivered', id });
        this.#event({ type: 'text', id, text: msg.text });
        return;
      case 'delivered': {
        const at = this.#pendingTexts.indexOf(id);
        if (at >= 0) {
          this.#pendingTexts.splice(at, 1);
          this.#event({ type: 'delivered', id });
        } else {
          this.#event({ type: 'peer-error', error: `a receipt for message ${id}, which was never sent` });
        }
        return;
      }
      case 'file-offer':
        return this.#offered(id, msg.size, msg.name);
      case 'file-accept': {
        const f = this.#outgoing.get(id);
        if (f?.state === 'awaiting-answer') {
          this.#outgoing.set(id, { state: 'sending', size: f.size, sent: 0, hash: new Sha256() });
          if (f.size === 0) await this.#finishSending(id).catch(() => {});
        } else if (!this.#endedOutgoing.includes(id)) {
          await this.#peerBrokeRules(id, 'outgoing', 'an accept for a file not offered');
        }
        return;
      }
      case 'file-chunk':
        return this.#chunk(id, msg.offset, msg.data);
      case 'file-end':
        return this.#end(id, msg.sha256);
      case 'file-received':
        if (this.#outgoing.get(id)?.state === 'awaiting-receipt') {
          this.#outgoing.delete(id);
          remember(this.#endedOutgoing, id, ENDED_MEMORY);
          this.#event({ type: 'file-delivered', id });
        } else if (!this.#endedOutgoing.includes(id)) {
          await this.#peerBrokeRules(id, 'outgoing', 'a receipt for a file not sent');
        }
        return;
      case 'file-abort':
        if (this.#incoming.delete(id)) {
          remember(this.#endedIncoming, id, ENDED_MEMORY);
          this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'peer', reason: msg.reason });
        }
        return;
      case 'file-decline':
        if (this.#outgoing.delete(id)) {
          remember(this.#endedOutgoing, id, ENDED_MEMORY);
          this.#event({ type: 'file-stopped', id, direction: 'outgoing', by: 'peer', reason: msg.reason });
        }
        return;
      case 'media-state':
        this.#event({ type: 'peer-media', microphone: msg.microphone, camera: msg.camera });
        return;
      default:
        // decode() knows no other kinds; one added there without a rule here is reported.
        this.#event({ type: 'peer-error', error: `a ${msg.kind} message this side does not handle` });
    }
  }

  async #offered(id, size, name) {
    if (this.#incoming.has(id) || this.#endedIncoming.includes(id)) {
      this.#event({ type: 'peer-error', error: `file ${id} offered twice; the second offer was dropped` });
      return;
    }
    const safe = safeFileName(name);
    if (this.#incoming.size >= MAX_INCOMING) {
      remember(this.#endedIncoming, id, ENDED_MEMORY);
      this.#event({ type: 'file-offered', id, name: safe, size, accepted: false });
      await this.#sendQuietly({ kind: 'file-decline', id, reason: REASON.tooManyFiles });
      this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'us', reason: REASON.tooManyFiles });
      return;
    }
    if (size > this.#limits.maxSize) {
      remember(this.#endedIncoming, id, ENDED_MEMORY);
      this.#event({ type: 'file-offered', id, name: safe, size, accepted: false });
      await this.#sendQuietly({ kind: 'file-decline', id, reason: REASON.tooLarge });
      this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'us', reason: REASON.tooLarge });
      return;
    }
    this.#incoming.set(id, { state: 'awaiting-decision', size });
    const accepted = size <= this.#limits.acceptBelow;
    this.#event({ type: 'file-offered', id, name: safe, size, accepted });
    if (accepted) await this.#accept(id).catch(() => {});
  }

  async #chunk(id, offset, data) {
    const f = this.#incoming.get(id);
    if (f?.state !== 'receiving') {
      if (!this.#endedIncoming.includes(id)) await this.#peerBrokeRules(id, 'incoming', 'a chunk of a file not accepted');
      return;
    }
    if (offset !== f.received) return this.#peerBrokeRules(id, 'incoming', 'a chunk at the wrong offset');
    if (data.length > f.size - f.received) return this.#peerBrokeRules(id, 'incoming', 'a chunk past the announced size');
    f.hash.update(data);
    f.received += data.length;
    this.#event({ type: 'file-data', id, offset, data });
    this.#event({ type: 'file-progress', id, direction: 'incoming', done: f.received, size: f.size });
  }

  async #end(id, sha256) {
    const f = this.#incoming.get(id);
    if (f?.state === 'receiving') {
      if (f.received !== f.size) return this.#peerBrokeRules(id, 'incoming', 'the end of a file before all of it');
    } else if (this.#endedIncoming.includes(id)) {
      return;
    } else {
      return this.#peerBrokeRules(id, 'incoming', 'the end of a file not accepted');
    }
    this.#incoming.delete(id);
    remember(this.#endedIncoming, id, ENDED_MEMORY);
    if (equal(f.hash.digest(), sha256)) {
      await this.#sendQuietly({ kind: 'file-received', id });
      this.#event({ type: 'file-received', id });
    } else {
      await this.#sendQuietly({ kind: 'file-decline', id, reason: REASON.integrityFailed });
      this.#event({ type: 'file-stopped', id, direction: 'incoming', by: 'us', reason: REASON.integrityFailed });
    }
  }
}
