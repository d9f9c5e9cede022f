// "Hide my IP address" on the preview: the call goes through the relay's TURN server (Debian's
// coturn) only, so the other side never learns this browser's address; a relay without TURN
// says so instead of calling with the address exposed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KINDS, TURN_SECRET, launchChromium, launchFirefox, newSecret, openPage, startCoturn, startRelay, text, waitFn, waitForEvent, waitForLobby } from './harness.js';

const env = {};
const closers = [];
before(async () => {
  env.coturn = await startCoturn();
  env.turnRelay = await startRelay('127.0.0.1:0', ['--turn-url', `turn:127.0.0.1:${env.coturn.port}?transport=udp`, '--turn-secret', TURN_SECRET]);
  env.plainRelay = await startRelay();
  [env.chromium, env.firefox] = await Promise.all([launchChromium(), launchFirefox()]);
});
after(async () => {
  for (const c of closers.splice(0)) await c().catch(() => {});
  await env.chromium?.close();
  await env.firefox?.close();
  await env.turnRelay?.stop();
  await env.plainRelay?.stop();
  await env.coturn?.stop();
});

const open = (kind, url, options) => openPage(env[kind], url, { ...options, closers });

/** Joins from the preview with "Hide my IP address" on. */
async function joinHidden(page) {
  await waitForLobby(page);
  await page.click('#relay-only');
  await page.click('#join');
}

/** The candidate types this page's peer connection gathered, and those of the pair in use. */
const candidates = (page) =>
  page.evaluate(async () => {
    const stats = [...(await window.__test.pc().getStats()).values()];
    const local = stats.filter((s) => s.type === 'local-candidate').map((s) => s.candidateType);
    const pair = stats.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected));
    const used = pair && stats.find((s) => s.id === pair.localCandidateId)?.candidateType;
    return { local: [...new Set(local)], used };
  });

for (const kind of KINDS) {
  test(`${kind} with "Hide my IP address" calls through TURN only: no other candidate, and the call works`, async () => {
    const url = `http://${env.turnRelay.addr}/#${newSecret()}`;
    const a = await open(kind, url, { join: false });
    await joinHidden(a);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(kind === 'chromium' ? 'firefox' : 'chromium', url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' }, 30000);
    await waitFn(a, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 20000 });
    const c = await candidates(a);
    assert.deepEqual(c.local, ['relay'], JSON.stringify(c));
    assert.equal(c.used, 'relay', JSON.stringify(c));
  });
}

test('a relay without TURN offers no "Hide my IP address"; forced on, the call ends with the reason before any connection', async () => {
  const url = `http://${env.plainRelay.addr}/#${newSecret()}`;
  const a = await open('chromium', url, { join: false });
  await waitFn(a, () => document.getElementById('relay-only').disabled);
  assert.match(await text(a, '#relay-only-help'), /offers no TURN server/);
  // As a page that still thinks TURN is there would: it fails closed, it never calls exposed.
  await a.evaluate(() => {
    const box = document.getElementById('relay-only');
    box.disabled = false;
    box.checked = true;
  });
  await a.click('#join');
  const ended = await waitForEvent(a, { type: 'ended' });
  assert.match(ended.reason, /needs a TURN server/);
  assert.match(await text(a, '#ended-reason'), /Hiding your IP address needs a TURN server, and this relay offers none/);
  assert.equal(await a.evaluate(() => window.__test.pc()), undefined, 'a peer connection was made');
});
