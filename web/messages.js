// Messages and files with one peer: the I/O shell around the pure conversation
// (conversation.js). It owns the pair's data channel: sealed bytes go out in order, and only
// while the channel's buffer has room; files are read one chunk at a time from the File the
// person picked; a received file is kept as Blob pieces (which the browser may hold on disk)
// and offered for download only once its SHA-256 matched. No DOM: the page shows the events.

import { Conversation } from './conversation.js';
import { DataSeal } from './crypto/data.js';

/** Keep at most this much queued in the channel before reading the next chunk. */
const HIGH_WATER = 1024 * 1024;
/** Resume sending when the channel's queue drains below this. */
const LOW_WATER = 256 * 1024;
/** A file is read this much at a time (and sent 16,000 bytes at a time from it): each read
 *  of a Blob is a round trip to the browser's blob store, which cost 5% of the throughput when
 *  every chunk made one (bench/file-transfer.mjs). */
const READ_AHEAD = 256 * 1024;
/** Received bytes gathered into one Blob piece at a time. */
const PIECE = 4 * 1024 * 1024;

/** Files up to this size are taken without asking; above the limit they are declined. */
export const LIMITS = { acceptBelow: 10_000_000, maxSize: 2_000_000_000 };

export class Messages {
  /**
   * @param {RTCDataChannel} channel  the pair's negotiated channel (id 0)
   * @param {(e: object) => void} onEvent  the conversation's events, plus `file-ready`
   *   ({ id, name, url }) when a received file can be saved
   */
  constructor(channel, onEvent) {
    this.channel = channel;
    this.onEvent = onEvent;
    this.conversation = null;
    this.waiting = []; // sealed bytes made before the channel opened
    this.sending = new Map(); // id -> File
    this.receiving = new Map(); // id -> { name, pieces: Blob[], part: Uint8Array[], size }
    this.pumping = false;
    this.readAhead = null; // { id, offset, bytes }: what was read of an outgoing file and not yet sent
    this.closed = false;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener('open', () => {
      for (const bytes of this.waiting.splice(0)) this.channel.send(bytes);
      this.emit({ type: 'messages-ready' });
      this.pump();
    });
    channel.addEventListener('message', (e) => {
      // Before the keys exist nothing can open it (the peer sent too early): tampering.
      if (!this.conversation) {
        this.emit({ type: 'tampered', error: 'messages tampered with (a message before the keys)' });
        this.channel.close();
        return;
      }
      // A text frame is never sealed: tampering too (PROTOCOL.md §3.6).
      if (typeof e.data === 'string') this.conversation.receiveUnsealed();
      else this.conversation.receive(new Uint8Array(e.data)).then(() => this.pump());
    });
  }

  /** The data keys exist: the conversation starts. */
  async start(room, keyBytes) {
    const seal = await DataSeal.create(room, keyBytes);
    keyBytes.send.fill(0);
    keyBytes.receive.fill(0);
    this.conversation = new Conversation(seal, LIMITS, (o) => this.output(o));
  }

  emit(e) {
    if (!this.closed) this.onEvent(e);
  }

  get ready() {
    return Boolean(this.conversation) && this.channel.readyState === 'open' && this.conversation.isOpen();
  }

  output(o) {
    if (this.closed) return;
    if (o.type === 'send') {
      if (this.channel.readyState === 'open') this.channel.send(o.bytes);
      else if (this.channel.readyState === 'connecting') this.waiting.push(o.bytes);
    } else if (o.type === 'close-channel') {
      this.channel.close();
    } else {
      this.event(o.event);
    }
  }

  event(e) {
    switch (e.type) {
      case 'file-offered':
        this.receiving.set(e.id, { name: e.name, pieces: [], part: [], partSize: 0 });
        break;
      case 'file-data': {
        const r = this.receiving.get(e.id);
        if (!r) return;
        r.part.push(e.data);
        r.partSize += e.data.length;
        if (r.partSize >= PIECE) {
          r.pieces.push(new Blob(r.part));
          r.part = [];
          r.partSize = 0;
        }
        return; // progress follows as its own event
      }
      case 'file-received': {
        const r = this.receiving.get(e.id);
        this.receiving.delete(e.id);
        if (r) {
          const blob = new Blob([...r.pieces, ...r.part], { type: 'application/octet-stream' });
          this.emit(e);
          this.emit({ type: 'file-ready', id: e.id, name: r.name, size: blob.size, url: URL.createObjectURL(blob) });
          return;
        }
        break;
      }
      case 'file-stopped':
        if (e.direction === 'incoming') this.receiving.delete(e.id);
        else this.sending.delete(e.id);
        break;
      case 'file-delivered':
        this.sending.delete(e.id);
        break;
      case 'file-progress':
        // A chunk went out: the conversation may want the next one.
        if (e.direction === 'outgoing') queueMicrotask(() => this.pump());
        break;
      default:
    }
    this.emit(e);
  }

  /** Sends a text; resolves to its id, or throws a clear error. */
  async sendText(text) {
    if (!this.conversation) throw new Error('messages go once the call is connected');
    return this.conversation.sendText(text);
  }

  /** Offers a File; its chunks go once the other side accepts. */
  async sendFile(file) {
    if (!this.conversation) throw new Error('files go once the call is connected');
    const id = await this.conversation.offerFile(file.name || 'file', file.size);
    this.sending.set(id, file);
    this.emit({ type: 'file-sent', id, name: file.name || 'file', size: file.size });
    return id;
  }

  accept(id) {
    return this.conversation?.accept(id);
  }

  /** Stops a file either way ('outgoing' or 'incoming'). */
  cancel(id, direction) {
    return this.conversation?.cancel(id, direction);
  }

  /** Sends chunks while the conversation wants them and the channel has room. */
  async pump() {
    if (this.pumping || this.closed || !this.conversation) return;
    this.pumping = true;
    try {
      for (;;) {
        const want = this.conversation.wantsChunk();
        if (!want || this.closed || this.channel.readyState !== 'open') return;
        if (this.channel.bufferedAmount > HIGH_WATER) {
          await new Promise((resolve) => {
            const done = () => {
              this.channel.removeEventListener('bufferedamountlow', done);
              this.channel.removeEventListener('close', done);
              resolve();
            };
            this.channel.addEventListener('bufferedamountlow', done);
            this.channel.addEventListener('close', done);
          });
          continue;
        }
        const file = this.sending.get(want.id);
        if (!file) {
          this.conversation.sendingFailed(want.id);
          continue;
        }
        let data;
        try {
          data = await this.read(file, want);
        } catch {
          this.conversation.sendingFailed(want.id);
          continue;
        }
        try {
          await this.conversation.sendChunk(want.id, data);
        } catch {
          // The file changed under us (the conversation stopped it and said so).
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The `want.max` bytes of `file` at `want.offset` (fewer if the file ended early). */
  async read(file, { id, offset, max }) {
    let r = this.readAhead;
    if (!r || r.id !== id || offset < r.offset || offset + max > r.offset + r.bytes.length) {
      const bytes = new Uint8Array(await file.slice(offset, offset + Math.max(max, READ_AHEAD)).arrayBuffer());
      r = this.readAhead = { id, offset, bytes };
    }
    return r.bytes.subarray(offset - r.offset, offset - r.offset + max);
  }

  /** The call is over: nothing more is sent or shown; unfinished files are dropped. */
  close() {
    this.closed = true;
    this.readAhead = null;
    this.receiving.clear();
    this.sending.clear();
  }
}
