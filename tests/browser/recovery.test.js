// The page never strands anyone, in Chromium and in Firefox and with either as the other side: a
// call that ends says why and offers a way on, a reload or a lost relay is ridden out, the
// controls and errors stay in view at desktop and phone sizes, and a page that cannot call says
// why before anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, KINDS, PAIRS, TEST_HOST, disabled, inView, newSecret, other, relayAndBrowsers, shown, startRelay, startTap, text, value, videoGoesOn, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();
const open = (kind, url, options) => env.open(kind, url, options);

/** How many of the room's events match `match` so far. */
const count = (page, match) => page.evaluate((m) => window.sotto.events.filter((e) => Object.entries(m).every(([k, v]) => e[k] === v)).length, match);

/** Waits until the page has reported `n` events matching `match`. */
const waitForCount = (page, match, n, timeout = 20000) =>
  waitFn(page, ([m, k]) => window.sotto.events.filter((e) => Object.entries(m).every(([key, v]) => e[key] === v)).length >= k, [match, n], { timeout });

/** Runs `act`, which starts a new call in the page, and waits until the page's event log is
 *  that call's (every call has its own). */
async function newCallOf(page, act) {
  await page.evaluate(() => {
    window.__previousLog = window.sotto;
  });
  await act();
  await waitFn(page, () => window.sotto !== window.__previousLog);
}

async function connectedPair(url, [first, second], options) {
  const a = await open(first, url, options);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const b = await open(second, url, options);
  for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
  return [a, b];
}

for (const pair of PAIRS) {
  const [first, second] = pair;
  const them = `${first} and ${second}`;

  test(`${them}: after the other side hangs up the page says so, disables the call controls, clears the badge and offers Rejoin and New call`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const [a, b] = await connectedPair(url, pair);
    await waitFn(a, () => document.getElementById('badge').textContent === 'Not verified');
    await b.click('#hangup');
    await waitForEvent(a, { type: 'ended' });
    assert.equal(await text(a, '#status'), 'Call ended');
    assert.match(await text(a, '#ended-reason'), /The other person hung up/);
    for (const id of ['#hangup', '#mute', '#camera', '#sas-match']) assert.equal(await disabled(a, id), true, id);
    assert.equal(await text(a, '#badge'), '');
    assert.equal(await shown(a, '#sas'), false, 'an ended call shows no safety code');
    assert.equal(await shown(a, '#remote-video'), false);
    assert.equal(await shown(a, '#badge'), false);
    for (const p of [a, b]) {
      assert.ok(await inView(p, '#rejoin'));
      assert.ok(await inView(p, '#new-call-after'));
    }
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-ended-${first}.png`) });
    // Both rejoin the same link and meet again, without a reload.
    await newCallOf(a, () => a.click('#rejoin'));
    await waitForEvent(a, { state: 'waiting-for-peer' });
    await newCallOf(b, () => b.click('#rejoin'));
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    assert.equal(await disabled(a, '#hangup'), false);
    // New call: a fresh link, in place.
    const before = a.url();
    await a.click('#hangup');
    await newCallOf(a, () => a.click('#new-call-after'));
    await waitForEvent(a, { state: 'waiting-for-peer' });
    assert.notEqual(a.url(), before);
    assert.equal(await value(a, '#link'), a.url());
  });

  test(`${them}: a reload by either side lets the two meet again on the same link`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const [a, b] = await connectedPair(url, pair);
    const firstCode = (await waitForEvent(a, { type: 'sas' })).code;
    await b.reload();
    // A is told B left the relay (the call would go on were it only that); B's return starts a
    // new call.
    await waitForEvent(a, { type: 'peer-lost-relay' });
    await waitForCount(a, { state: 'connected' }, 2);
    assert.ok((await count(a, { type: 'call-reset' })) >= 1);
    await waitForEvent(b, { state: 'connected' });
    // A new handshake: new keys, and both show the new code.
    await waitForCount(a, { type: 'sas' }, 2);
    const codes = await a.evaluate(() => window.sotto.events.filter((e) => e.type === 'sas').map((e) => e.code));
    assert.equal((await waitForEvent(b, { type: 'sas' })).code, codes[1]);
    assert.equal(codes[0], firstCode);
    assert.notEqual(codes[1], codes[0], 'the same safety code twice: the keys were not new');
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
    // And the other way round.
    await a.reload();
    await waitForEvent(b, { type: 'peer-lost-relay' });
    await waitForCount(b, { state: 'connected' }, 2);
    await waitForEvent(a, { state: 'connected' });
    assert.equal(await count(b, { type: 'ended' }), 0);
  });

  test(`${them}: a connected call goes on when the relay goes away`, async () => {
    const relay = await startRelay();
    try {
      const [a, b] = await connectedPair(`http://${relay.addr}/#${newSecret()}`, pair);
      await relay.stop();
      for (const p of [a, b]) {
        await videoGoesOn(p);
        assert.equal(await count(p, { type: 'ended' }), 0);
        assert.equal(await text(p, '#status'), 'Connected');
      }
    } finally {
      await relay.stop();
    }
  });

  test(`${them}: when one side alone loses the relay, the connected call goes on for both`, async () => {
    const tap = await startTap(env.relay.addr);
    const [a, b] = await connectedPair(`${tap.url}/#${newSecret()}`, pair);
    // B's network drops its relay connection only: A is told B left the relay.
    tap.cut(1);
    await waitForEvent(a, { type: 'peer-lost-relay' });
    for (const p of [a, b]) {
      await videoGoesOn(p);
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
}

for (const kind of KINDS) {
  test(`${kind}: waiting when the relay restarts, the page says so, reconnects and the call still happens`, async () => {
    let relay = await startRelay();
    const { addr } = relay;
    const url = `http://${addr}/#${newSecret()}`;
    const a = await open(kind, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    await relay.stop();
    await waitForEvent(a, { type: 'reconnecting' });
    await waitFn(a, () => /Lost the relay; trying again/.test(document.getElementById('status').textContent));
    relay = await startRelay(addr);
    try {
      await waitForCount(a, { state: 'waiting-for-peer' }, 2);
      const b = await open(other(kind), url);
      for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
      assert.equal(await count(a, { type: 'ended' }), 0);
    } finally {
      await relay.stop();
    }
  });

  test(`${kind}: hang-up, status and errors stay in view at desktop and phone sizes`, async () => {
    for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
      const url = `http://${env.relay.addr}/#${newSecret()}`;
      const [a] = await connectedPair(url, [kind, kind], { viewport });
      await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15000 });
      for (const id of ['#hangup', '#mute', '#status']) assert.ok(await inView(a, id), `${name}: ${id} out of view`);
      await waitFn(a, () => document.getElementById('no-video').hidden, null, { timeout: 5000 });
      await a.screenshot({ path: path.join(ARTIFACTS, `browser-call-${kind}-${name}.png`) });
      // An invalid link: the reason is in view, the status says so, nothing to press but New call.
      const bad = await open(kind, `http://${env.relay.addr}/#not-a-secret`, { viewport });
      await waitFn(bad, () => !document.getElementById('error').hidden);
      assert.ok(await inView(bad, '#error'), `${name}: the error is out of view`);
      assert.equal(await text(bad, '#status'), 'This link is not valid.');
      assert.equal(await shown(bad, '#share'), false);
      assert.equal(await shown(bad, '#hangup'), false);
      assert.ok(await inView(bad, '#new-call-after'));
      await bad.screenshot({ path: path.join(ARTIFACTS, `browser-bad-link-${kind}-${name}.png`) });
    }
  });

  test(`${kind}: "Copy link" copies the link and says "Copied"`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind, url);
    if (kind === 'chromium') await a.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://${env.relay.addr}` });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    await a.click('#copy');
    await waitFn(a, () => document.getElementById('copy').textContent === 'Copied');
    assert.equal(await a.evaluate(() => navigator.clipboard.readText()), url);
  });

  test(`${kind}: a page loaded without HTTPS under a real host name says why and offers no call`, async () => {
    // A real host name that is not localhost: not a secure context.
    const port = env.relay.addr.split(':')[1];
    const page = await open(kind, `http://${TEST_HOST}:${port}/`, { init: countMedia });
    await waitFn(page, () => !document.getElementById('insecure').hidden);
    assert.match(await text(page, '#insecure'), /HTTPS/);
    assert.equal(await shown(page, '#new-call'), false);
    await page.goto(`http://${TEST_HOST}:${port}/#${newSecret()}`);
    await page.reload();
    await waitFn(page, () => !document.getElementById('error').hidden);
    const error = await text(page, '#error');
    assert.match(error, /not loaded over HTTPS/);
    assert.doesNotMatch(error, /X25519/, 'the cause is the insecure context, not a missing API');
    assert.equal(await page.evaluate(() => window.mediaRequests), 0);
    assert.equal(await shown(page, '#new-call-after'), false, 'a new call here would be just as insecure');
    await page.screenshot({ path: path.join(ARTIFACTS, `browser-insecure-${kind}.png`) });
  });
}

/** In a page: counts requests for camera and microphone (an insecure page has no mediaDevices
 *  to ask). */
function countMedia() {
  window.mediaRequests = 0;
  const gum = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
  if (gum) navigator.mediaDevices.getUserMedia = (c) => ((window.mediaRequests += 1), gum(c));
}
