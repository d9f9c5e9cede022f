// File transfer throughput between two browser pages: each page in its own browser context (so
// its own renderer process, as two people's browsers are), joined by the pair's negotiated data
// channel (label `sotto`, id 0, ordered and reliable) over loopback. A file crosses it either
// sealed, through the page's own messages.js on both ends (AES-256-GCM per message, SHA-256 of
// the whole file at the sender and at the receiver, its flow control and read-ahead; the
// receiver accepts it and gathers it into a Blob as in a call), or as raw 16,000-byte chunks
// with the same flow control. Rounds alternate the two ways; prints the
// median MB/s of each, per browser, as one `key=value` line (bench/table.py). Never part of
// the test suite.
//
//   node bench/file-transfer.mjs RELAY_BIN [MEGABYTES] [ROUNDS]

import { launchChromium, launchFirefox, openPage, startRelay } from '../tests/browser/harness.js';

const [relayBin, mbArg, roundsArg] = process.argv.slice(2);
if (!relayBin) {
  console.error('usage: node bench/file-transfer.mjs RELAY_BIN [MEGABYTES] [ROUNDS]');
  process.exit(2);
}
const megabytes = Number(mbArg ?? 64);
const rounds = Number(roundsArg ?? 3);

// What runs in the pages. Each keeps its end in `window.bench`; the clock is the wall clock
// (`performance.timeOrigin + performance.now()`), which two processes of one machine share.

/** Both pages: a peer connection with the negotiated channel; the offerer returns its offer. */
async function prepare(offerer) {
  const pc = new RTCPeerConnection();
  const channel = pc.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true });
  channel.binaryType = 'arraybuffer';
  channel.bufferedAmountLowThreshold = 256 * 1024;
  window.bench = { pc, channel };
  if (!offerer) return null;
  await pc.setLocalDescription();
  await gathered(pc);
  return pc.localDescription.toJSON();

  function gathered(p) {
    return p.iceGatheringState === 'complete'
      ? null
      : new Promise((r) => p.addEventListener('icegatheringstatechange', () => p.iceGatheringState === 'complete' && r()));
  }
}

/** The answerer: takes the offer, returns its answer (every candidate in it). */
async function answer(offer) {
  const { pc } = window.bench;
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription();
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()));
  }
  return pc.localDescription.toJSON();
}

/** The offerer: takes the answer. */
async function finish(desc) {
  await window.bench.pc.setRemoteDescription(desc);
}

/** Both pages: resolves once the channel is open. */
async function opened() {
  const { channel } = window.bench;
  if (channel.readyState !== 'open') await new Promise((r) => channel.addEventListener('open', r, { once: true }));
}

/** The receiver: arms itself for `bytes` (sealed under `keys`, or raw); `window.bench.done`
 *  resolves to the wall-clock time the file was complete (sealed: and its hash matched). */
async function receive([bytes, sealed, room, keys]) {
  const b = window.bench;
  let finished;
  b.done = new Promise((r) => {
    finished = r;
  });
  const now = () => performance.timeOrigin + performance.now();
  if (!sealed) {
    let received = 0;
    b.channel.onmessage = (e) => {
      received += e.data.byteLength;
      if (received === bytes) finished(now());
    };
    return;
  }
  const { Messages } = await import('./messages.js');
  const messages = new Messages(b.channel, (e) => {
    if (e.type === 'file-offered') messages.accept(e.id);
    else if (e.type === 'file-ready') {
      finished(now());
      URL.revokeObjectURL(e.url);
    }
  });
  await messages.start(new Uint8Array(room), { send: new Uint8Array(keys[1]), receive: new Uint8Array(keys[0]) });
}

/** The sender: makes `bytes` of random content (before the clock starts), then sends them;
 *  resolves to the wall-clock time it started. */
async function send([bytes, sealed, room, keys]) {
  const { channel } = window.bench;
  const CHUNK = 16000;
  const HIGH = 1024 * 1024;
  const drained = () => new Promise((r) => channel.addEventListener('bufferedamountlow', r, { once: true }));
  const content = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(content.subarray(i, Math.min(i + 65536, bytes)));
  const file = new Blob([content]);
  // Read as messages.js reads: 256 KiB of the Blob at a time, sent 16,000 bytes at a time.
  const READ_AHEAD = 256 * 1024;
  const { Messages } = await import('./messages.js');
  const messages = sealed && new Messages(channel, () => {});
  if (sealed) await messages.start(new Uint8Array(room), { send: new Uint8Array(keys[0]), receive: new Uint8Array(keys[1]) });
  const start = performance.timeOrigin + performance.now();
  if (sealed) {
    // The page's own shell: it reads, hashes, seals and paces the file as in a call.
    await messages.sendFile(file);
    return start;
  }
  for (let at = 0; at < bytes; at += READ_AHEAD) {
    const piece = new Uint8Array(await file.slice(at, at + READ_AHEAD).arrayBuffer());
    for (let offset = 0; offset < piece.length; offset += CHUNK) {
      if (channel.bufferedAmount > HIGH) await drained();
      channel.send(piece.subarray(offset, offset + CHUNK));
    }
  }
  return start;
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const random = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)));

process.env.SOTTO_RELAY_BIN = relayBin;
const relay = await startRelay('127.0.0.1:0', []);
try {
  for (const [kind, launch] of [['chromium', launchChromium], ['firefox', launchFirefox]]) {
    const browser = await launch();
    try {
      const url = `http://${relay.addr}/`;
      const [a, b] = [await openPage(browser, url), await openPage(browser, url)];
      const mbps = { raw: [], sealed: [] };
      const bytes = megabytes * 1_000_000;
      for (let r = 0; r < rounds; r++) {
        for (const mode of r % 2 ? ['sealed', 'raw'] : ['raw', 'sealed']) {
          // A fresh pair of peer connections per transfer, as every call has its own.
          const offer = await a.evaluate(prepare, true);
          await b.evaluate(prepare, false);
          await a.evaluate(finish, await b.evaluate(answer, offer));
          await Promise.all([a.evaluate(opened), b.evaluate(opened)]);
          const args = [bytes, mode === 'sealed', random(16), [random(32), random(32)]];
          await b.evaluate(receive, args);
          const start = await a.evaluate(send, args);
          const end = await b.evaluate(() => window.bench.done);
          mbps[mode].push(bytes / 1e6 / ((end - start) / 1000));
          if (process.env.BENCH_VERBOSE) console.error(kind, mode, mbps[mode].at(-1).toFixed(1));
          for (const p of [a, b]) await p.evaluate(() => window.bench.pc.close());
        }
      }
      const [raw, sealed] = [median(mbps.raw), median(mbps.sealed)];
      console.log(`scenario=file-transfer browser=${kind} megabytes=${megabytes} rounds=${rounds} raw_mbps=${raw.toFixed(1)} sealed_mbps=${sealed.toFixed(1)}`);
    } finally {
      await browser.close();
    }
  }
} finally {
  await relay.stop();
}
