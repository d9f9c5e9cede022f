// The encoded-transform worker: SFrame on every outgoing and incoming audio and video frame.
// Keys arrive from the page as non-extractable CryptoKeys. Fail closed: a sender without its
// key drops frames; a frame that does not open is dropped and counted, never passed on, and a
// video receiver asks for a key frame after a drop.

import { FrameDecryptor, FrameEncryptor, STREAM } from './crypto/sframe.js';

let keys = null; // { send: CryptoKey, receive: CryptoKey, role, peerRole }
const generations = { audio: 0n, video: 0n };
const stats = {};
const stat = (name) => (stats[name] ??= { frames: 0, ok: 0, failed: 0, empty: 0, noKey: 0, lastFault: null });

function transformFor({ side, kind }, transformer) {
  const s = stat(`${side}:${kind}`);
  const stream = STREAM[kind];
  let crypto = null;
  return new TransformStream({
    async transform(frame, controller) {
      s.frames++;
      if (!keys) {
        s.noKey++;
        return; // no key yet: drop (fail closed)
      }
      if (frame.data.byteLength === 0) {
        // Chromium hands receive transforms the odd empty frame (no payload at all): nothing
        // to decrypt and nothing to play. Dropped and counted apart from failures.
        s.empty++;
        return;
      }
      if (!crypto) {
        if (side === 'send') {
          // A re-created sender transform moves to the next generation: its counter starts at
          // 0 again, under a new key.
          crypto = new FrameEncryptor(keys.send, keys.role, stream, generations[kind]);
          generations[kind] += 1n;
        } else {
          crypto = new FrameDecryptor(keys.receive, keys.peerRole, stream);
        }
      }
      try {
        const data = new Uint8Array(frame.data);
        frame.data = side === 'send' ? (await crypto.encrypt(data)).buffer : (await crypto.decrypt(data)).frame.buffer;
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
  if (m.type === 'keys') keys = m.keys;
  if (m.type === 'stats') self.postMessage({ type: 'stats', id: m.id, stats });
};
