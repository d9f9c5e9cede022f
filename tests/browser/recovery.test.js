// The page never strands anyone: a call that ends says why and offers a way on, a reload or a
// lost relay is ridden out, the controls and errors stay in view at desktop and phone sizes, and
// a page that cannot call says why before anything else.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, CHROMIUM_FLAGS, newSecret, relayAndChromium, startRelay, startTap, waitForEvent } from './harness.js';
import { chromium } from 'playwright-core';

const env = relayAndChromium();
const contexts = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});

async function open(url, viewport = { width: 1280, height: 800 }) {
  const context = await env.browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  return page;
}

/** How many of the room's events match `match` so far. */
const count = (page, match) => page.evaluate((m) => window.sotto.events.filter((e) => Object.entries(m).every(([k, v]) => e[k] === v)).length, match);

/** Waits until the page has reported `n` events matching `match`. */
const waitForCount = (page, match, n, timeout = 20000) =>
  page.waitForFunction(([m, k]) => window.sotto.events.filter((e) => Object.entries(m).every(([key, v]) => e[key] === v)).length >= k, [match, n], { timeout });

const remoteFrames = (page) => page.evaluate(() => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames);

async function connectedPair(url) {
  const a = await open(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await open(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  return [a, b];
}

/** True when the element is fully inside the window without scrolling. */
const inView = (page, selector) =>
  page.evaluate((s) => {
    const r = document.querySelector(s).getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth;
  }, selector);

test('after the other side hangs up the page says so, disables the call controls, clears the badge and offers Rejoin and New call', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const [a, b] = await connectedPair(url);
  await a.waitForFunction(() => document.getElementById('badge').textContent === 'Encrypted');
  await b.click('#hangup');
  await waitForEvent(a, { type: 'ended' });
  assert.equal(await a.textContent('#status'), 'Call ended');
  assert.match(await a.textContent('#ended-reason'), /The other person hung up/);
  for (const id of ['#hangup', '#mute', '#camera', '#sas-match']) assert.equal(await a.isDisabled(id), true, id);
  assert.equal(await a.textContent('#badge'), '');
  assert.equal(await a.isVisible('#sas'), false, 'an ended call shows no safety code');
  assert.equal(await a.isVisible('#remote-video'), false);
  assert.equal(await a.isVisible('#badge'), false);
  for (const p of [a, b]) {
    assert.ok(await inView(p, '#rejoin'));
    assert.ok(await inView(p, '#new-call-after'));
  }
  await a.screenshot({ path: path.join(ARTIFACTS, 'browser-ended.png') });
  // Both rejoin the same link and meet again, without a reload.
  await a.click('#rejoin');
  await waitForEvent(a, { state: 'waiting-for-peer' });
  await b.click('#rejoin');
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  assert.equal(await a.isDisabled('#hangup'), false);
  // New call: a fresh link, in place.
  const before = a.url();
  await a.click('#hangup');
  await a.click('#new-call-after');
  await waitForEvent(a, { state: 'waiting-for-peer' });
  assert.notEqual(a.url(), before);
  assert.equal(await a.inputValue('#link'), a.url());
});

test('a reload by either side lets the two meet again on the same link', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const [a, b] = await connectedPair(url);
  const firstCode = (await waitForEvent(a, { type: 'sas' })).code;
  await b.reload();
  // A is told B left the relay (the call would go on were it only that); B's return starts a
  // new call.
  await waitForEvent(a, { type: 'peer-lost-relay' });
  try {
    await waitForCount(a, { state: 'connected' }, 2);
  } catch (e) {
    console.error('A:', JSON.stringify(await a.evaluate(() => window.sotto.events)));
    console.error('B:', JSON.stringify(await b.evaluate(() => window.sotto?.events)));
    throw e;
  }
  assert.ok((await count(a, { type: 'call-reset' })) >= 1);
  await waitForEvent(b, { state: 'connected' });
  // A new handshake: new keys, and both show the new code.
  await waitForCount(a, { type: 'sas' }, 2);
  const codes = await a.evaluate(() => window.sotto.events.filter((e) => e.type === 'sas').map((e) => e.code));
  assert.equal((await waitForEvent(b, { type: 'sas' })).code, codes[1]);
  assert.equal(codes[0], firstCode);
  assert.notEqual(codes[1], codes[0], 'the same safety code twice: the keys were not new');
  await a.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
  // And the other way round.
  await a.reload();
  await waitForEvent(b, { type: 'peer-lost-relay' });
  await waitForCount(b, { state: 'connected' }, 2);
  await waitForEvent(a, { state: 'connected' });
  assert.equal(await count(b, { type: 'ended' }), 0);
});

test('waiting when the relay restarts: the page says so, reconnects and the call still happens', async () => {
  let relay = await startRelay();
  const { addr } = relay;
  const url = `http://${addr}/#${newSecret()}`;
  const a = await open(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  await relay.stop();
  await waitForEvent(a, { type: 'reconnecting' });
  await a.waitForFunction(() => /Lost the relay; trying again/.test(document.getElementById('status').textContent));
  relay = await startRelay(addr);
  try {
    await waitForCount(a, { state: 'waiting-for-peer' }, 2);
    const b = await open(url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    assert.equal(await count(a, { type: 'ended' }), 0);
  } finally {
    await relay.stop();
  }
});

test('a connected call goes on when the relay goes away', async () => {
  const relay = await startRelay();
  const url = `http://${relay.addr}/#${newSecret()}`;
  const a = await open(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await open(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  await relay.stop();
  for (const p of [a, b]) {
    const start = await remoteFrames(p);
    await p.waitForFunction((n) => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames >= n + 50, start, { timeout: 15000 });
    assert.equal(await count(p, { type: 'ended' }), 0);
    assert.equal(await p.textContent('#status'), 'Connected');
  }
});

test('when one side alone loses the relay, the connected call goes on for both', async () => {
  const tap = await startTap(env.relay.addr);
  const url = `${tap.url}/#${newSecret()}`;
  const a = await open(url);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await open(url);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  // B's network drops its relay connection only: A is told B left the relay.
  tap.cut(1);
  await waitForEvent(a, { type: 'peer-lost-relay' });
  for (const p of [a, b]) {
    const start = await remoteFrames(p);
    await p.waitForFunction((n) => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames >= n + 50, start, { timeout: 15000 });
    assert.equal(await count(p, { type: 'ended' }), 0);
    assert.equal(await count(p, { type: 'call-reset' }), 0);
  }
  // B hangs up: its goodbye cannot go through the relay, but its media stops, and A waits for
  // B to come back rather than calling it a failure.
  await b.click('#hangup');
  await waitForEvent(a, { type: 'peer-left' }, 40000);
  await waitForCount(a, { state: 'waiting-for-peer' }, 2);
  assert.equal(await count(a, { type: 'ended' }), 0);
  tap.stop();
});

test('hang-up, status and errors stay in view at desktop and phone sizes', async () => {
  for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(url, viewport);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(url, viewport);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    await a.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    for (const id of ['#hangup', '#mute', '#status']) assert.ok(await inView(a, id), `${name}: ${id} out of view`);
    await a.waitForFunction(() => document.getElementById('no-video').hidden, null, { timeout: 5000 });
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-call-${name}.png`) });
    // An invalid link: the reason is in view, the status says so, nothing to press but New call.
    const bad = await open(`http://${env.relay.addr}/#not-a-secret`, viewport);
    await bad.waitForFunction(() => !document.getElementById('error').hidden);
    assert.ok(await inView(bad, '#error'), `${name}: the error is out of view`);
    assert.equal(await bad.textContent('#status'), 'This link is not valid.');
    assert.equal(await bad.isVisible('#share'), false);
    assert.equal(await bad.isVisible('#hangup'), false);
    assert.ok(await inView(bad, '#new-call-after'));
    await bad.screenshot({ path: path.join(ARTIFACTS, `browser-bad-link-${name}.png`) });
  }
});

test('"Copy link" copies the link and says "Copied"', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}`;
  const a = await open(url);
  await a.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://${env.relay.addr}` });
  await waitForEvent(a, { state: 'waiting-for-peer' });
  await a.click('#copy');
  await a.waitForFunction(() => document.getElementById('copy').textContent === 'Copied');
  assert.equal(await a.evaluate(() => navigator.clipboard.readText()), url);
});

test('a page loaded without HTTPS under a real host name says why and offers no call', async () => {
  // A real host name that is not localhost: not a secure context.
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_FLAGS, '--host-resolver-rules=MAP sotto.test 127.0.0.1'],
  });
  try {
    const port = env.relay.addr.split(':')[1];
    const page = await (await browser.newContext()).newPage();
    await page.addInitScript(() => {
      window.mediaRequests = 0;
      const gum = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
      if (gum) navigator.mediaDevices.getUserMedia = (c) => ((window.mediaRequests += 1), gum(c));
    });
    await page.goto(`http://sotto.test:${port}/`);
    await page.waitForFunction(() => !document.getElementById('insecure').hidden);
    assert.match(await page.textContent('#insecure'), /HTTPS/);
    assert.equal(await page.isVisible('#new-call'), false);
    await page.goto(`http://sotto.test:${port}/#${newSecret()}`);
    await page.reload();
    await page.waitForFunction(() => !document.getElementById('error').hidden);
    const text = await page.textContent('#error');
    assert.match(text, /not loaded over HTTPS/);
    assert.doesNotMatch(text, /X25519/, 'the cause is the insecure context, not a missing API');
    assert.equal(await page.evaluate(() => window.mediaRequests), 0);
    assert.equal(await page.isVisible('#new-call-after'), false, 'a new call here would be just as insecure');
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-insecure.png') });
  } finally {
    await browser.close();
  }
});
