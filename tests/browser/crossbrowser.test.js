// Calls across browsers: Debian's chromium (playwright-core) and firefox-esr (puppeteer-core),
// each order, and Firefox with Firefox. Video and audio both ways, every frame through the
// transforms with no authentication failure, the same safety code, no audio-level extension
// in any SDP on the wire.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, newSecret, relayAndBrowsers, startTap, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();
const open = (kind, url, options) => env.open(kind, url, options);

const evaluate = (page, fn) => page.evaluate(fn);

for (const [first, second] of [['firefox', 'chromium'], ['chromium', 'firefox'], ['firefox', 'firefox']]) {
  test(`${first} opens the link, ${second} joins: video and audio both ways, every frame encrypted, the same safety code`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(first, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(second, url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    const [sasA, sasB] = [await waitForEvent(a, { type: 'sas' }), await waitForEvent(b, { type: 'sas' })];
    assert.equal(sasA.code, sasB.code);
    for (const [p, kind] of [[a, first], [b, second]]) {
      await waitFn(p, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 20000 });
      // Audio arrives (headless Firefox keeps its AudioContext suspended: getStats it is).
      await waitFn(p, async () => {
        const stats = await window.__test.pc().getStats();
        return [...stats.values()].some((s) => s.type === 'inbound-rtp' && s.kind === 'audio' && s.totalSamplesReceived > 0);
      }, null, { timeout: 15000, polling: 250 });
      // Frames went through the transforms both ways, none failed.
      await waitFn(p, async () => {
        const w = await window.__test.workerStats();
        return ['send:audio', 'send:video', 'receive:audio', 'receive:video'].every((k) => w[k]?.ok > 10);
      }, null, { timeout: 15000, polling: 250 });
      const w = await evaluate(p, () => window.__test.workerStats());
      for (const k of ['receive:audio', 'receive:video']) assert.equal(w[k].failed, 0, `${kind} ${k}: ${JSON.stringify(w[k])}`);
      // No SDP either side sent or took carries the audio level in clear.
      const sdps = await evaluate(p, () => [window.__test.pc().localDescription.sdp, window.__test.pc().remoteDescription.sdp]);
      for (const sdp of sdps) assert.ok(!sdp.includes('ssrc-audio-level'), `${kind}: audio-level negotiated`);
    }
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-a.png`) });
    await b.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-b.png`) });
    await a.click('#hangup');
    await waitForEvent(b, { type: 'ended' });
  });
}

/** In the sending page: the SDP it sends is mangled past any browser's parser (the DTLS
 *  fingerprint line kept, so the keys still agree). */
function mangleOwnSdp() {
  // The tests' probe may have put a subclass in front: the getter lives further up.
  let proto = RTCPeerConnection.prototype;
  while (!Object.getOwnPropertyDescriptor(proto, 'localDescription')) proto = Object.getPrototypeOf(proto);
  const get = Object.getOwnPropertyDescriptor(proto, 'localDescription').get;
  Object.defineProperty(proto, 'localDescription', {
    get() {
      const d = get.call(this);
      return d && { type: d.type, sdp: d.sdp.replace(/^m=audio \d+ /m, 'm=audio not-a-port ') };
    },
  });
}

for (const kind of ['chromium', 'firefox']) {
  test(`a call set-up ${kind} cannot read is said in words, and the badge goes`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind === 'chromium' ? 'firefox' : 'chromium', url, { init: mangleOwnSdp });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(kind, url);
    const ended = await waitForEvent(b, { type: 'ended' });
    assert.equal(ended.reason, "the other browser's call set-up could not be read by this one");
    const words = await evaluate(b, () => document.getElementById('ended-reason').textContent);
    assert.match(words, /could not be read/);
    const page = await evaluate(b, () => document.body.innerText);
    assert.doesNotMatch(page, /Failed to|setRemoteDescription|SessionDescription|Error/);
    assert.equal(await evaluate(b, () => document.getElementById('badge').textContent), '');
  });
}

/** In a page: its transform worker is given another key for the peer's frames than the one
 *  the handshake made, so no frame of the peer can authenticate. */
function wrongReceiveKey() {
  const W = window.Worker;
  window.Worker = class extends W {
    postMessage(m, ...rest) {
      if (m?.type !== 'keys') return super.postMessage(m, ...rest);
      crypto.subtle
        .importKey('raw', new Uint8Array(32).fill(9), 'HKDF', false, ['deriveKey', 'deriveBits'])
        .then((receive) => super.postMessage({ ...m, keys: { ...m.keys, receive } }, ...rest));
    }
  };
}

/** In a page: a machine without a camera; any request for video fails as it does there. */
function noCamera() {
  if (!navigator.mediaDevices) return; // the blank page before the call's
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => (c?.video ? Promise.reject(new DOMException('no camera', 'NotFoundError')) : gum(c));
}

/** In a page: a browser without WebRTC Encoded Transform. */
function noTransform() {
  delete window.RTCRtpScriptTransform;
}

const other = (kind) => (kind === 'chromium' ? 'firefox' : 'chromium');

for (const kind of ['chromium', 'firefox']) {
  test(`${kind} with a different key for its peer (${other(kind)}) drops every frame, shows "failing" and never shows the video`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(other(kind), url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(kind, url, { init: wrongReceiveKey });
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    await waitFn(b, async () => {
      const w = await window.__test.workerStats();
      return w['receive:video']?.failed > 20 && w['receive:audio']?.failed > 20;
    }, null, { timeout: 15000, polling: 250 });
    const w = await evaluate(b, () => window.__test.workerStats());
    assert.equal(w['receive:video'].ok, 0);
    assert.equal(w['receive:audio'].ok, 0);
    await waitFn(b, () => document.getElementById('badge').classList.contains('failing'), null, { timeout: 5000 });
    // Nothing reached the decoder: no video frame was ever rendered.
    assert.equal(await evaluate(b, () => document.getElementById('remote-video').videoWidth), 0);
    // The other side, with the right keys, is unaffected.
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    await b.screenshot({ path: path.join(ARTIFACTS, `browser-${kind}-wrong-key.png`) });
  });

  test(`${kind} without a camera calls ${other(kind)} voice-only and still sees them`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind, url, { init: noCamera });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(other(kind), url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    assert.equal(await evaluate(a, () => document.getElementById('camera').hidden), true);
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    await waitFn(b, async () => (await window.__test.workerStats())['receive:audio']?.ok > 20, null, { timeout: 15000, polling: 250 });
    const w = await evaluate(b, () => window.__test.workerStats());
    assert.equal(w['receive:audio'].failed, 0);
    assert.equal(w['receive:video']?.ok ?? 0, 0, 'a voice-only side sends no video');
  });

  test(`${kind} without encoded transforms gets an error, never an unencrypted call`, async () => {
    const tap = await startTap(env.relay.addr);
    const page = await open(kind, `${tap.url}/#${newSecret()}`, { init: noTransform });
    await waitFn(page, () => !document.getElementById('error').hidden, null, { timeout: 10000 });
    const text = await evaluate(page, () => document.getElementById('error').textContent);
    assert.match(text, /RTCRtpScriptTransform/);
    assert.match(text, /never falls back to an unencrypted call/);
    // It never even joined the relay.
    assert.equal(tap.record.filter((r) => r.dir === 'up').length, 0);
    tap.stop();
  });

  test(`a third person in ${kind} is told the room is full, and their camera never turns on`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open('chromium', url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open('firefox', url);
    await waitForEvent(b, { type: 'sas' });
    const c = await open(kind, url, { init: countMedia });
    const ended = await waitForEvent(c, { type: 'ended' });
    assert.match(ended.reason, /room full/);
    assert.match(await evaluate(c, () => document.getElementById('ended-reason').textContent), /already has two people/);
    assert.equal(await evaluate(c, () => document.getElementById('share').hidden), true, 'no "send this link" on a full call');
    assert.equal(await evaluate(c, () => window.mediaRequests), 0, 'the camera was asked for');
    for (const id of ['hangup', 'mute', 'camera']) assert.equal(await evaluate(c, new Function(`return document.getElementById('${id}').disabled`)), true, id);
  });
}

/** In a page: counts requests for camera and microphone. */
function countMedia() {
  window.mediaRequests = 0;
  if (!navigator.mediaDevices) return; // the blank page before the call's
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => {
    window.mediaRequests += 1;
    return gum(c);
  };
}
