// Browser video calls in Debian's chromium against the real relay: two browser contexts in one
// call, a page with the wrong key, and a browser calling the native `sotto` client.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, newSecret, probe, relayAndChromium, startTap, waitForEvent } from './harness.js';

const env = relayAndChromium();
// Each test's pages go when it ends, so calls of one test never load the next.
const contexts = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

const SETUP_SECRETS = ['v=0\r\n', 'a=fingerprint', 'candidate:', 'ice-ufrag', 'a=rtpmap'];

async function openCall(url, { wrongKey = false, noCamera = false, noTransform = false, countMedia = false } = {}) {
  const context = await probe(await env.browser.newContext());
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  if (wrongKey) {
    // The page's worker, altered on the way in, opens frames with another key than the peer's.
    // (The worker is loaded by URL: no integrity hash stops this, which is why the test can.)
    await context.route('**/worker.js', async (route) => {
      const res = await route.fetch();
      const original = await res.text();
      const body = original
        .replace("import { FrameDecryptor, FrameEncryptor, STREAM } from './crypto/sframe.js';", "import { FrameDecryptor, FrameEncryptor, STREAM, importBaseKey } from './crypto/sframe.js';")
        .replace('self.onmessage = (e) => {', 'self.onmessage = async (e) => {')
        .replace("if (m.type === 'keys') keys = m.keys;", "if (m.type === 'keys') keys = { ...m.keys, receive: await importBaseKey(new Uint8Array(32).fill(9)) };");
      assert.equal(body.split('importBaseKey').length, 3, 'worker.js changed: update the wrong-key test');
      await route.fulfill({ response: res, body });
    });
  }
  if (noTransform) await page.addInitScript(() => { delete window.RTCRtpScriptTransform; });
  if (countMedia) {
    await page.addInitScript(() => {
      window.mediaRequests = 0;
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => {
        window.mediaRequests += 1;
        return gum(c);
      };
    });
  }
  if (noCamera) {
    // A machine without a camera: any request for video fails as it does there.
    await page.addInitScript(() => {
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => (c?.video ? Promise.reject(new DOMException('no camera', 'NotFoundError')) : gum(c));
    });
  }
  await page.goto(url);
  return page;
}

const workerStats = (page) => page.evaluate(() => window.__test.workerStats());
const remoteFrames = (page) => page.evaluate(() => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames);

test('two browsers see and hear each other, every frame encrypted, and show the same safety code', async () => {
  const tap = await startTap(env.relay.addr);
  const url = `${tap.url}/#${newSecret()}`;
  const a = await openCall(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await openCall(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  const [sasA, sasB] = [await waitForEvent(a, { type: 'sas' }), await waitForEvent(b, { type: 'sas' })];
  assert.match(sasA.code, /^\d{6}$/);
  assert.equal(sasA.code, sasB.code);

  for (const p of [a, b]) {
    // Remote video renders and keeps advancing.
    await p.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 20000 });
    const start = await remoteFrames(p);
    await p.waitForFunction((n) => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames >= n + 50, start, { timeout: 15000 });
    // The remote audio track delivers samples.
    await p.waitForFunction(async () => {
      const stats = await window.__test.pc().getStats();
      return [...stats.values()].some((s) => s.type === 'inbound-rtp' && s.kind === 'audio' && s.totalSamplesReceived > 0);
    }, null, { timeout: 15000, polling: 200 });
    // Every frame went through the transforms, none failed.
    const w = await workerStats(p);
    for (const k of ['send:audio', 'send:video', 'receive:audio', 'receive:video']) {
      assert.ok(w[k]?.ok > 10, `${k}: ${JSON.stringify(w[k])}`);
      assert.equal(w[k].failed, 0, `${k} failures: ${JSON.stringify(w[k])}`);
    }
  }
  // The SDPs both sides sent: VP8 only for video, Opus for audio, no audio-level extension.
  for (const p of [a, b]) {
    const sdps = await p.evaluate(() => [window.__test.pc().localDescription.sdp, window.__test.pc().remoteDescription.sdp]);
    for (const sdp of sdps) {
      assert.ok(!sdp.includes('ssrc-audio-level'), 'audio-level header extension negotiated');
      const video = sdp.split('m=video')[1] ?? '';
      const codecs = [...video.matchAll(/a=rtpmap:\d+ ([^/]+)\//g)].map((m) => m[1].toUpperCase());
      assert.ok(codecs.includes('VP8') && codecs.every((c) => c === 'VP8'), `video codecs ${codecs}`);
      assert.match(sdp, /a=rtpmap:\d+ opus\/48000/);
    }
  }
  // The page's one global holds its event log only: no key, SDP or candidate.
  for (const p of [a, b]) {
    assert.deepEqual(await p.evaluate(() => Object.keys(window.sotto)), ['events']);
    const log = await p.evaluate(() => JSON.stringify(window.sotto.events));
    for (const s of SETUP_SECRETS) assert.ok(!log.includes(s), `the page's event log holds ${JSON.stringify(s)}`);
  }
  await a.screenshot({ path: path.join(ARTIFACTS, 'browser-call-a.png'), fullPage: true });
  await b.screenshot({ path: path.join(ARTIFACTS, 'browser-call-b.png'), fullPage: true });

  // The relay saw no SDP, fingerprint or candidate: neither in its frames nor in the decoded
  // payloads.
  assert.ok(tap.record.length > 5);
  for (const { text } of tap.record) {
    const msg = JSON.parse(text);
    const bytes = msg.data ? Buffer.from(msg.data, 'base64url').toString('latin1') : '';
    for (const s of SETUP_SECRETS) {
      assert.ok(!text.includes(s) && !bytes.includes(s), `the relay saw ${JSON.stringify(s)}`);
    }
  }
  await a.click('#hangup');
  await waitForEvent(b, { type: 'ended' });
  tap.stop();
});

test('a page with a different key for its peer drops every frame, shows "failing" and never shows the video', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const a = await openCall(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await openCall(url, { wrongKey: true });
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  // B's receive transforms see frames and authenticate none of them.
  await b.waitForFunction(async () => {
    const w = await window.__test.workerStats();
    return w['receive:video']?.failed > 20 && w['receive:audio']?.failed > 20;
  }, null, { timeout: 15000, polling: 250 });
  const w = await workerStats(b);
  assert.equal(w['receive:video'].ok, 0);
  assert.equal(w['receive:audio'].ok, 0);
  await b.waitForFunction(() => document.getElementById('badge').classList.contains('failing'), null, { timeout: 5000 });
  // Nothing reached B's decoder: no video frame was ever rendered.
  assert.equal(await b.evaluate(() => document.getElementById('remote-video').videoWidth), 0);
  assert.equal(await remoteFrames(b), 0);
  // A, with the right keys, is unaffected.
  await a.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
  await b.screenshot({ path: path.join(ARTIFACTS, 'browser-wrong-key.png'), fullPage: true });
});

test('without a camera the call runs voice-only and still shows the other side', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const a = await openCall(url, { noCamera: true });
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await openCall(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  assert.equal(await a.evaluate(() => document.getElementById('camera').hidden), true);
  await a.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
  await b.waitForFunction(async () => {
    const w = await window.__test.workerStats();
    return w['receive:audio']?.ok > 20;
  }, null, { timeout: 15000, polling: 250 });
  const w = await workerStats(b);
  assert.equal(w['receive:audio'].failed, 0);
  assert.equal(w['receive:video']?.ok ?? 0, 0, 'a voice-only side sends no video');
});

test('a browser without encoded transforms gets an error, never an unencrypted call', async () => {
  const tap = await startTap(env.relay.addr);
  const page = await openCall(`${tap.url}/#${newSecret()}`, { noTransform: true });
  await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 10000 });
  const text = await page.textContent('#error');
  assert.match(text, /RTCRtpScriptTransform/);
  assert.match(text, /never falls back to an unencrypted call/);
  // It never even joined the relay.
  assert.equal(tap.record.filter((r) => r.dir === 'up').length, 0);
  tap.stop();
});

test('a relay served under a path: the page, its pinned modules and the call all use the path', async () => {
  const tap = await startTap(env.relay.addr, { prefix: '/sub/' });
  const url = `${tap.url}/sub/#${newSecret()}`;
  const a = await openCall(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await openCall(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  await a.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
  // The call went through the path's WebSocket (the proxy refuses any other).
  assert.ok(tap.record.some((r) => r.dir === 'up' && r.text.includes('"join"')));
  assert.equal(await a.inputValue('#link'), url);
  tap.stop();
});

test('a third person is told the room is full, is not asked to share the link, and their camera never turns on', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const a = await openCall(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await openCall(url);
  await waitForEvent(b, { type: 'sas' });
  const c = await openCall(url, { countMedia: true });
  const ended = await waitForEvent(c, { type: 'ended' });
  assert.match(ended.reason, /room full/);
  assert.match(await c.textContent('#ended-reason'), /already has two people/);
  assert.equal(await c.isVisible('#share'), false, 'no "send this link" on a full call');
  assert.equal(await c.isVisible('#rejoin'), true);
  assert.equal(await c.isVisible('#new-call-after'), true);
  assert.equal(await c.evaluate(() => window.mediaRequests), 0, 'the camera was asked for');
  for (const id of ['#hangup', '#mute', '#camera']) assert.equal(await c.isDisabled(id), true, id);
});
