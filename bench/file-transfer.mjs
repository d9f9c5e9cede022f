// File transfer throughput in the browser: the same negotiated data channel (label `sotto`,
// id 0, ordered and reliable) between two peer connections of one page, carrying a file
// either sealed (the page's own conversation.js and DataSeal: AES-256-GCM per message, SHA-256
// of the whole file on both sides, the same flow control as messages.js) or as raw 16,000-byte
// chunks with that same flow control. Both ends run on the page's one thread, so each figure
// pays for sending and receiving. Rounds alternate the two ways; prints the median MB/s of
// each, per browser, as one `key=value` line (bench/table.py). Never part of the test suite.
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

/** In the page: connects two peer connections over their negotiated channels, then moves
 *  `bytes` sealed or raw; resolves to the seconds it took, from the first byte read to the
 *  file complete (and, sealed, checked) at the receiver. */
async function transfer([bytes, sealed]) {
  const [{ DataSeal }, { Conversation }] = await Promise.all([import('./crypto/data.js'), import('./conversation.js')]);
  const CHUNK = 16000;
  const HIGH = 1024 * 1024;
  const LOW = 256 * 1024;
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const ca = a.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true });
  const cb = b.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true });
  for (const c of [ca, cb]) {
    c.binaryType = 'arraybuffer';
    c.bufferedAmountLowThreshold = LOW;
  }
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  await Promise.all([ca, cb].map((c) => (c.readyState === 'open' ? null : new Promise((r) => c.addEventListener('open', r, { once: true })))));
  const drained = () => new Promise((r) => ca.addEventListener('bufferedamountlow', r, { once: true }));
  // The file's content: made before the clock starts, read chunk by chunk as a File is.
  const content = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(content.subarray(i, Math.min(i + 65536, bytes)));
  const file = new Blob([content]);
  let seconds;
  if (!sealed) {
    let received = 0;
    const done = new Promise((resolve) => {
      cb.onmessage = (e) => {
        received += e.data.byteLength;
        if (received === bytes) resolve(performance.now());
      };
    });
    const start = performance.now();
    for (let offset = 0; offset < bytes; offset += CHUNK) {
      if (ca.bufferedAmount > HIGH) await drained();
      ca.send(new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer()));
    }
    seconds = ((await done) - start) / 1000;
  } else {
    const room = crypto.getRandomValues(new Uint8Array(16));
    const [k1, k2] = [crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(32))];
    const sa = await DataSeal.create(room, { send: k1, receive: k2 });
    const sb = await DataSeal.create(room, { send: k2, receive: k1 });
    let finished;
    const done = new Promise((resolve) => {
      finished = resolve;
    });
    const limits = { acceptBelow: Number.MAX_SAFE_INTEGER, maxSize: Number.MAX_SAFE_INTEGER };
    const sender = new Conversation(sa, limits, (o) => o.type === 'send' && ca.send(o.bytes));
    const receiver = new Conversation(sb, limits, (o) => {
      if (o.type === 'send') cb.send(o.bytes);
      else if (o.type === 'event' && o.event.type === 'file-received') finished(performance.now());
    });
    cb.onmessage = (e) => receiver.receive(new Uint8Array(e.data));
    ca.onmessage = (e) => sender.receive(new Uint8Array(e.data));
    const start = performance.now();
    const id = await sender.offerFile('bench.bin', bytes);
    for (;;) {
      const want = sender.wantsChunk();
      if (!want) {
        if (await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), 5))])) break;
        continue;
      }
      if (ca.bufferedAmount > HIGH) await drained();
      await sender.sendChunk(id, new Uint8Array(await file.slice(want.offset, want.offset + want.max).arrayBuffer()));
    }
    seconds = ((await done) - start) / 1000;
  }
  a.close();
  b.close();
  return seconds;
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

process.env.SOTTO_RELAY_BIN = relayBin;
const relay = await startRelay('127.0.0.1:0', []);
try {
  for (const [kind, launch] of [['chromium', launchChromium], ['firefox', launchFirefox]]) {
    const browser = await launch();
    try {
      const page = await openPage(browser, `http://${relay.addr}/`);
      const mbps = { raw: [], sealed: [] };
      const bytes = megabytes * 1_000_000;
      for (let r = 0; r < rounds; r++) {
        for (const mode of r % 2 ? ['sealed', 'raw'] : ['raw', 'sealed']) {
          const s = await page.evaluate(transfer, [bytes, mode === 'sealed']);
          mbps[mode].push(bytes / 1e6 / s);
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
