// Group calls (DESIGN §4.9): a mesh of pairs. Chromium, Firefox and the native client in one
// room, every two of them with their own handshake, keys, connection and safety code.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, nativeCall, relayAndBrowsers, text, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();

/** The tiles a page shows: each person's id, whether their video decodes, and the code. */
const tiles = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('#tiles .tile')].map((t) => ({
      peer: t.dataset.peer,
      video: t.querySelector('video').videoWidth > 0,
      audio: t.querySelector('video').srcObject?.getAudioTracks().length ?? 0,
      code: t.querySelector('.code').textContent.replace(' ', ''),
    })),
  );

/** Waits until `page` shows `n` tiles, those of browsers (`videos` of them) with video. */
async function waitForTiles(page, n, videos, timeout = 45000) {
  await waitFn(
    page,
    ([n, videos]) => {
      const all = [...document.querySelectorAll('#tiles .tile')];
      return all.length === n && all.filter((t) => t.querySelector('video').videoWidth > 0).length === videos && all.every((t) => t.querySelector('.code').textContent);
    },
    [n, videos],
    { timeout, polling: 250 },
  );
}

test('three browsers and the terminal in one group call: video and a code per pair; one leaves, one joins, one too many is refused', async () => {
  // The home page's "New group call", for up to four.
  const a = await env.open('chromium', `http://${env.relay.addr}/`);
  await a.selectOption('#group-size', '4');
  await a.click('#new-group');
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const url = a.url();
  assert.match(url, /#[A-Za-z0-9_-]{43}\.4$/);
  assert.equal(await text(a, '#status'), 'Waiting for others to open the link…');
  const b = await env.open('firefox', url);
  const c = await env.open('chromium', url, { viewport: { width: 390, height: 844 } });
  const native = nativeCall(url, ['--tone', '440']);
  try {
    await scenario(url, [a, b, c], native);
  } finally {
    native.child.kill('SIGKILL');
  }
});

async function scenario(url, [a, b, c], native) {
  for (const p of [a, b, c]) await waitForTiles(p, 3, 2);
  // Six pairs, each showing one code on both of its ends: twelve codes, six distinct.
  const nativeCodes = [];
  for (let i = 0; i < 3; i++) nativeCodes.push((await native.waitFor((e) => e.event === 'sas' && e.peer && !nativeCodes.includes(e.code))).code);
  const codes = [...(await Promise.all([a, b, c].map(tiles))).flat().map((t) => t.code), ...nativeCodes].sort();
  assert.equal(codes.length, 12, codes.join(' '));
  for (let i = 0; i < 12; i += 2) assert.equal(codes[i], codes[i + 1], codes.join(' '));
  assert.equal(new Set(codes).size, 6, codes.join(' '));
  // Everyone's sound reaches every page; the terminal's tile is a voice tile.
  for (const p of [a, b, c]) {
    const ts = await tiles(p);
    assert.ok(ts.every((t) => t.audio === 1), JSON.stringify(ts));
    assert.equal(ts.filter((t) => !t.video).length, 1);
  }
  assert.match(await text(a, '#status'), /^In the call with 3 others$/);
  await a.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-3-others-desktop.png') });
  await c.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-3-others-phone.png') });
  await b.screenshot({ path: path.join(ARTIFACTS, 'group-firefox-3-others-desktop.png') });

  // A fifth person: the link is for four, the room refuses them, clearly.
  const e = await env.open('firefox', url);
  await waitFn(e, () => !document.getElementById('ended').hidden);
  assert.match(await text(e, '#ended-reason'), /as many people as its link allows/);

  // C hangs up: their tile goes everywhere, the others keep their video.
  await c.click('#hangup');
  for (const p of [a, b]) await waitForTiles(p, 2, 1);
  await native.waitFor((x) => x.event === 'peer-gone' && x.reason === 'hung up');
  await a.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-2-others-desktop.png') });

  // Someone new joins mid-call: everyone gets them within seconds.
  const d = await env.open('firefox', url);
  for (const p of [a, b, d]) await waitForTiles(p, 3, 2);
  assert.ok(native.events.filter((x) => x.event === 'sas').length >= 4);
}
