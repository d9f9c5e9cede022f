// Browser video calls in Debian's chromium against the real relay: two browser contexts in one
// call with what the relay and the SDPs show, and a relay served under a path. The scenarios
// that run for each browser (wrong key, voice-only, missing APIs, room full) are in
// crossbrowser.test.js.

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

async function openCall(url) {
  const context = await probe(await env.browser.newContext());
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
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
