// Calls in Debian's chromium (playwright-core) and firefox-esr (puppeteer-core) against the real
// relay, every scenario for each browser or each ordered pair of them: video and audio both
// ways with every frame through the transforms and none failing, the same safety code, VP8 and
// Opus only and no audio-level extension in any SDP, nothing of the call set-up on the relay;
// an unreadable set-up said in words; a wrong key, no camera, no encoded transforms, a full
// room; a relay served under a path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, KINDS, PAIRS, disabled, newSecret, other, relayAndBrowsers, shown, startTap, text, value, videoGoesOn, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();
const open = (kind, url, options) => env.open(kind, url, options);

const evaluate = (page, fn) => page.evaluate(fn);

const SETUP_SECRETS = ['v=0\r\n', 'a=fingerprint', 'candidate:', 'ice-ufrag', 'a=rtpmap'];

for (const [first, second] of PAIRS) {
  test(`${first} opens the link, ${second} joins: video and audio both ways, every frame encrypted, the same safety code, nothing of the set-up on the relay`, async () => {
    const tap = await startTap(env.relay.addr);
    const url = `${tap.url}/#${newSecret()}`;
    const a = await open(first, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(second, url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    const [sasA, sasB] = [await waitForEvent(a, { type: 'sas' }), await waitForEvent(b, { type: 'sas' })];
    assert.match(sasA.code, /^\d{6}$/);
    assert.equal(sasA.code, sasB.code);
    for (const [p, kind] of [[a, first], [b, second]]) {
      // Remote video renders and keeps advancing.
      await waitFn(p, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 20000 });
      await videoGoesOn(p);
      // Audio arrives (the receiver's statistics count its samples).
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
      for (const k of ['send:audio', 'send:video', 'receive:audio', 'receive:video']) assert.equal(w[k].failed, 0, `${kind} ${k}: ${JSON.stringify(w[k])}`);
      // The SDPs each side sent and took: VP8 only for video, Opus for audio, no audio level in
      // clear.
      const sdps = await evaluate(p, () => [window.__test.pc().localDescription.sdp, window.__test.pc().remoteDescription.sdp]);
      for (const sdp of sdps) {
        assert.ok(!sdp.includes('ssrc-audio-level'), `${kind}: audio-level negotiated`);
        const video = sdp.split('m=video')[1] ?? '';
        const codecs = [...video.matchAll(/a=rtpmap:\d+ ([^/]+)\//g)].map((m) => m[1].toUpperCase());
        assert.ok(codecs.includes('VP8') && codecs.every((c) => c === 'VP8'), `${kind}: video codecs ${codecs}`);
        assert.match(sdp, /a=rtpmap:\d+ opus\/48000/);
      }
      // The page's one global holds its event log only: no key, SDP or candidate.
      assert.deepEqual(await evaluate(p, () => Object.keys(window.sotto)), ['events']);
      const log = await evaluate(p, () => JSON.stringify(window.sotto.events));
      for (const s of SETUP_SECRETS) assert.ok(!log.includes(s), `${kind}: the page's event log holds ${JSON.stringify(s)}`);
    }
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-a.png`) });
    await b.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-b.png`) });
    // The relay saw no SDP, fingerprint or candidate: neither in its frames nor in the decoded
    // payloads.
    assert.ok(tap.record.length > 5);
    for (const { text: frame } of tap.record) {
      const msg = JSON.parse(frame);
      const bytes = msg.data ? Buffer.from(msg.data, 'base64url').toString('latin1') : '';
      for (const s of SETUP_SECRETS) assert.ok(!frame.includes(s) && !bytes.includes(s), `the relay saw ${JSON.stringify(s)}`);
    }
    await a.click('#hangup');
    await waitForEvent(b, { type: 'ended' });
    tap.stop();
  });
}

for (const kind of KINDS) {
  test(`${kind}: a relay served under a path: the page, its pinned modules and the call all use the path`, async () => {
    const tap = await startTap(env.relay.addr, { prefix: '/sub/' });
    const url = `${tap.url}/sub/#${newSecret()}`;
    const a = await open(kind, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(other(kind), url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    // The call went through the path's WebSocket (the proxy refuses any other).
    assert.ok(tap.record.some((r) => r.dir === 'up' && r.text.includes('"join"')));
    assert.equal(await value(a, '#link'), url);
    tap.stop();
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

for (const kind of KINDS) {
  test(`a call set-up ${kind} cannot read is said in words, and the badge goes`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind === 'chromium' ? 'firefox' : 'chromium', url, { init: mangleOwnSdp });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(kind, url);
    const ended = await waitForEvent(b, { type: 'ended' });
    assert.equal(ended.reason, "the other browser's call set-up could not be read by this one");
    assert.match(await text(b, '#ended-reason'), /could not be read/);
    const page = await evaluate(b, () => document.body.innerText);
    assert.doesNotMatch(page, /Failed to|setRemoteDescription|SessionDescription|Error/);
    assert.equal(await text(b, '#badge'), '');
    assert.equal(await shown(b, '#badge'), false);
  });
}

/** In a page: its transform worker is given another key for the peer's frames than the one
 *  the handshake made, so no frame of the peer can authenticate. */
function wrongReceiveKey() {
  const W = window.Worker;
  window.Worker = class extends W {
    postMessage(m, ...rest) {
      // The key that opens the peer's frames (frame-keys.js to worker.js).
      if (m?.type !== 'sender-key') return super.postMessage(m, ...rest);
      crypto.subtle
        .importKey('raw', new Uint8Array(32).fill(9), 'HKDF', false, ['deriveKey', 'deriveBits'])
        .then((key) => super.postMessage({ ...m, key }, ...rest));
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

for (const [sender, kind] of PAIRS) {
  test(`${kind} with a different key for its peer (${sender}) drops every frame, shows "failing" and never shows the video`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(sender, url);
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
    await b.screenshot({ path: path.join(ARTIFACTS, `browser-${kind}-wrong-key-from-${sender}.png`) });
  });

  test(`${kind} without a camera calls ${sender} voice-only and still sees them`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind, url, { init: noCamera });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(sender, url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    assert.equal(await shown(a, '#camera'), false);
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    await waitFn(b, async () => (await window.__test.workerStats())['receive:audio']?.ok > 20, null, { timeout: 15000, polling: 250 });
    const w = await evaluate(b, () => window.__test.workerStats());
    assert.equal(w['receive:audio'].failed, 0);
    assert.equal(w['receive:video']?.ok ?? 0, 0, 'a voice-only side sends no video');
  });
}

for (const kind of KINDS) {
  test(`${kind} without encoded transforms gets an error, never an unencrypted call`, async () => {
    const tap = await startTap(env.relay.addr);
    const page = await open(kind, `${tap.url}/#${newSecret()}`, { init: noTransform });
    await waitFn(page, () => !document.getElementById('error').hidden, null, { timeout: 10000 });
    const error = await text(page, '#error');
    assert.match(error, /RTCRtpScriptTransform/);
    assert.match(error, /never falls back to an unencrypted call/);
    // It never even joined the relay.
    assert.equal(tap.record.filter((r) => r.dir === 'up').length, 0);
    tap.stop();
  });

  test(`a third person in ${kind} is told the room is full, and their camera goes off`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open('chromium', url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open('firefox', url);
    await waitForEvent(b, { type: 'sas' });
    const c = await open(kind, url, { init: countMedia });
    const ended = await waitForEvent(c, { type: 'ended' });
    assert.match(ended.reason, /room full/);
    assert.match(await text(c, '#ended-reason'), /already has two people/);
    assert.equal(await shown(c, '#share'), false, 'no "send this link" on a full call');
    // The preview had the camera on; refused, nothing of it stays on.
    assert.ok(await evaluate(c, () => window.mediaTracks.length) > 0, 'the preview opened no camera');
    assert.deepEqual(await evaluate(c, () => window.mediaTracks.filter((t) => t.readyState !== 'ended').map((t) => t.kind)), []);
    for (const id of ['#hangup', '#mute', '#camera']) assert.equal(await disabled(c, id), true, id);
  });
}

/** In a page: keeps every camera and microphone track the page opens. */
function countMedia() {
  window.mediaTracks = [];
  if (!navigator.mediaDevices) return; // the blank page before the call's
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const stream = await gum(c);
    window.mediaTracks.push(...stream.getTracks());
    return stream;
  };
}
