// The encoded-transform worker of one transport: SFrame on every outgoing and incoming audio
// and video frame. It holds the transport's send key and the receive key of each sender whose
// frames come in on it (frame-keys.js), as non-extractable CryptoKeys. A frame that comes in is
// opened with its sender's key: on a pair's transport every frame is that one person's; on a
// conference's transport (to the SFU) the frame's KID names its sender, whose key in the
// group's epoch opens it (PROTOCOL.md §7.6). Fail closed: a sender without its key drops
// frames; a frame that does not open is dropped and counted, never passed on, and a video
// receiver asks for a key frame after a drop.

import { ConferenceFrames, FrameDecryptor, FrameEncryptor, STREAM, conferenceLayout } from './crypto/sframe.js';

/** { key: CryptoKey, role }: what this transport sends is sealed with it. */
let send = null;
/** sender -> { key: CryptoKey, role }: their frames open with it. */
const senders = new Map();
/** The one sender whose frames come in on this transport (a pair's), once known. */
let only = null;
const generations = { audio: 0n, video: 0n };
const stats = {};
const stat = (name) => (stats[name] ??= { frames: 0, ok: 0, failed: 0, empty: 0, noKey: 0, lastFault: null });

/** Whose key opens this incoming frame: on a pair's transport, the pair's person. */
const senderOf = () => only;

/** A conference's keys, once the group has an epoch: `frames` opens every member's frames,
 *  `send` ({ key, leaf, epoch }) seals ours; `seen` is the sender last opened on each receive
 *  slot (the page shows it there). */
let conference = null;

/** Seals or opens one conference frame. */
async function conferenceFrame(side, kind, slot, data, state) {
  const stream = STREAM[kind];
  if (side === 'send') {
    const send = conference.send;
    if (state.epoch !== send.epoch || state.key !== send.key) {
      // A new epoch (or key): a new encryptor, generations counted afresh under the new key.
      state.encryptor = new FrameEncryptor(send.key, null, stream, conference.generations[kind]++, conferenceLayout(stream, send.leaf, send.epoch));
      Object.assign(state, { epoch: send.epoch, key: send.key });
    }
    return state.encryptor.encrypt(data);
  }
  const opened = await conference.frames.open(stream, data, performance.now());
  conference.seen[slot] = opened.sender;
  return opened.frame;
}

function transformFor({ side, kind, slot = null }, transformer) {
  const s = stat(`${side}:${kind}`);
  const stream = STREAM[kind];
  let encryptor = null;
  /** sender -> FrameDecryptor, made on their first frame. */
  const decryptors = new Map();
  const state = { epoch: null, key: null, encryptor: null };

  /** What seals or opens this frame, or null when its key is not here (yet). A conference's
   *  frames go through its group keys; a pair's through its send key and its person's key. */
  function crypt() {
    if (conference !== null || slot !== null) {
      if (conference === null || (side === 'send' && !conference.send)) return null;
      return (data) => conferenceFrame(side, kind, slot, data, state);
    }
    const sender = side === 'send' ? null : senderOf();
    const key = side === 'send' ? send : senders.get(sender);
    if (!key) return null;
    if (side === 'send') {
      // A re-created sender transform moves to the next generation: its counter starts at 0
      // again, under a new key.
      if (!encryptor) {
        encryptor = new FrameEncryptor(key.key, key.role, stream, generations[kind]);
        generations[kind] += 1n;
      }
      return (data) => encryptor.encrypt(data);
    }
    if (!decryptors.has(sender)) decryptors.set(sender, new FrameDecryptor(key.key, key.role, stream));
    const decryptor = decryptors.get(sender);
    return async (data) => (await decryptor.decrypt(data)).frame;
  }

  return new TransformStream({
    async transform(frame, controller) {
      s.frames++;
      const f = crypt();
      if (!f) {
        s.noKey++;
        return; // no key yet: drop (fail closed)
      }
      if (frame.data.byteLength === 0) {
        // Chromium hands receive transforms the odd empty frame (no payload at all): nothing
        // to decrypt and nothing to play. Dropped and counted apart from failures.
        s.empty++;
        return;
      }
      try {
        frame.data = (await f(new Uint8Array(frame.data))).buffer;
        s.ok++;
        controller.enqueue(frame);
      } catch (e) {
        s.failed++;
        s.lastFault = `${e.fault ?? String(e)} (${frame.data.byteLength} bytes)`;
        if (side === 'receive' && kind === 'video') transformer.sendKeyFrameRequest?.().catch(() => {});
      }
    },
  });
}

self.onrtctransform = (event) => {
  const t = event.transformer;
  t.readable.pipeThrough(transformFor(t.options, t)).pipeTo(t.writable).catch((e) => {
    stat(`${t.options.side}:${t.options.kind}`).pipeError = String(e);
  });
};

self.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'send-key') send = { key: m.key, role: m.role };
  if (m.type === 'sender-key') {
    senders.set(m.sender, { key: m.key, role: m.role });
    if (m.only) only = m.sender;
  }
  if (m.type === 'conference-epoch') {
    conference ??= { frames: new ConferenceFrames(), send: null, seen: {}, generations: { audio: 0n, video: 0n } };
    conference.frames.setEpoch(m.epoch, m.key, m.members, m.own, performance.now());
    conference.send = { key: m.key, leaf: m.own, epoch: m.epoch };
    conference.generations = { audio: 0n, video: 0n };
  }
  if (m.type === 'stats') self.postMessage({ type: 'stats', id: m.id, stats, seen: conference?.seen ?? {} });
};
