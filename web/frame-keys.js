// The room's frame keys, kept apart from the transports that carry frames and from the people
// who send them: "the key for sender X" is never "the key of this connection". Today every key
// is a pair's (PROTOCOL.md §3.5): what goes out on the transport to a person is sealed with the
// pair's send key, and what comes in on it is that person's, opened with the pair's receive
// key. A conference will have one transport carrying everyone's frames, each opened with its
// sender's key from the group; the transports ask this key source for their transforms the
// same way either way.
//
// The keys live in transform workers (worker.js), one per transport so that several pairs'
// frames are sealed in parallel; a worker holds the send key of its transport and the receive
// key of each sender whose frames it carries. CryptoKeys are imported non-extractable here and
// the raw bytes zeroed.

import { importBaseKey } from './crypto/sframe.js';

/** Always true in a relay built for use. Only the relay's `bench-no-e2ee` build, which the set-up
 *  benchmark compares against, rewrites this line (bench/README.md). */
const MEDIA_TRANSFORM = true;

/** Trusted Types: the one script URL this page loads as a worker. */
function workerUrl() {
  // Relative to this module: the page may be served under a path (PROTOCOL.md §1).
  const url = new URL('./worker.js', import.meta.url).href;
  if (globalThis.trustedTypes) {
    policy ??= globalThis.trustedTypes.createPolicy('sotto-worker', {
      createScriptURL: (u) => {
        if (u !== url) throw new Error('unexpected worker URL');
        return u;
      },
    });
    return policy.createScriptURL(url);
  }
  return url;
}
let policy = null;

/** The transport id of the pair with `peer`. */
export const pairTransport = (peer) => `pair:${peer}`;

/** The transport id of a conference's one connection, to the SFU. */
export const SFU_TRANSPORT = 'sfu';

/** One transport's worker and what it holds. */
class Lane {
  constructor() {
    this.worker = new Worker(workerUrl(), { type: 'module' });
    this.statsWaiters = new Map();
    this.worker.onmessage = (e) => {
      if (e.data.type === 'stats') this.statsWaiters.get(e.data.id)?.(e.data.stats, e.data.seen);
    };
  }

  /** The worker's frame counters; with `withSeen`, also { stats, seen }: the sender last
   *  opened on each receive slot of a conference. */
  stats(withSeen = false) {
    const id = Math.random();
    return new Promise((resolve) => {
      this.statsWaiters.set(id, (stats, seen) => {
        this.statsWaiters.delete(id);
        resolve(withSeen ? { stats, seen: seen ?? {} } : stats);
      });
      this.worker.postMessage({ type: 'stats', id });
    });
  }

  close() {
    this.worker.terminate();
    for (const w of this.statsWaiters.values()) w({});
    this.statsWaiters.clear();
  }
}

export class FrameKeys {
  constructor() {
    /** transport id -> Lane */
    this.lanes = new Map();
    /** sender -> the transport whose worker opens their frames */
    this.senders = new Map();
  }

  /** A transport opens: its frames get a worker of their own. */
  openTransport(via) {
    if (!this.lanes.has(via)) this.lanes.set(via, new Lane());
  }

  /** The transform that seals what `via` sends of `kind` (null in the no-e2ee benchmark
   *  build). Set before media flows: Chromium sends plaintext otherwise (DESIGN §5). */
  sendTransform(via, kind) {
    if (!MEDIA_TRANSFORM) return null;
    return new RTCRtpScriptTransform(this.lanes.get(via).worker, { side: 'send', kind });
  }

  /** The transform that opens what comes in on `via` of `kind`, attributing it to its sender;
   *  `slot` names a conference's receive slot (its sender is read from each frame's KID). */
  receiveTransform(via, kind, slot = null) {
    if (!MEDIA_TRANSFORM) return null;
    return new RTCRtpScriptTransform(this.lanes.get(via).worker, { side: 'receive', kind, ...(slot !== null && { slot }) });
  }

  /** A conference's group is at `epoch`: what goes out on `via` is sealed with `baseKey` (the
   *  epoch's exporter output) under our leaf `own`, and every other member of `members` ({ leaf,
   *  id }) opens with it (PROTOCOL.md §7.6). The raw bytes are zeroed once imported. */
  async conferenceEpoch(via, { epoch, baseKey, members, own }) {
    const lane = this.lanes.get(via);
    const key = await importBaseKey(baseKey);
    baseKey.fill(0);
    if (!lane || this.lanes.get(via) !== lane) return;
    lane.worker.postMessage({ type: 'conference-epoch', epoch, key, members, own });
    for (const m of members) this.senders.set(m.id, via);
  }

  /** The frame counters of `via`'s worker and the sender it last opened on each slot. */
  async transportStats(via) {
    const lane = this.lanes.get(via);
    return lane ? lane.stats(true) : { stats: {}, seen: {} };
  }

  /** The pair with `peer` has keys: what goes out on its transport `via` is sealed with
   *  `media.send`; what `peer` sends, which comes in on `via` only, opens with `media.receive`.
   *  The raw key bytes are zeroed once imported. */
  async pairwise(peer, via, media, role) {
    const lane = this.lanes.get(via);
    const send = await importBaseKey(media.send);
    const receive = await importBaseKey(media.receive);
    media.send.fill(0);
    media.receive.fill(0);
    if (!lane || this.lanes.get(via) !== lane) return;
    const peerRole = role === 'offerer' ? 'answerer' : 'offerer';
    lane.worker.postMessage({ type: 'send-key', key: send, role });
    lane.worker.postMessage({ type: 'sender-key', sender: peer, key: receive, role: peerRole, only: true });
    this.senders.set(peer, via);
  }

  /** The frame counters of the worker that opens `sender`'s frames ({} when there is none). */
  async statsOf(sender) {
    const lane = this.lanes.get(this.senders.get(sender));
    return lane ? lane.stats() : {};
  }

  /** The transport `via` closed: its worker goes, and with it every key it held. */
  closeTransport(via) {
    this.lanes.get(via)?.close();
    this.lanes.delete(via);
    for (const [sender, v] of this.senders) if (v === via) this.senders.delete(sender);
  }

  /** Every key goes. */
  close() {
    for (const via of [...this.lanes.keys()]) this.closeTransport(via);
  }
}
