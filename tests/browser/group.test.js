// Group calls (DESIGN §4.9): a mesh of pairs. Chromium, Firefox and native clients in one room,
// every two of them with their own handshake, keys, connection and safety code; names and
// microphone and camera states over each pair; the grid at 1, 2, 4 and 5 others.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, nativeCall, newSecret, readWav, relayAndBrowsers, startRelay, text, tonePower, toneMicrophone, waitFn, waitForEvent, waitForLobby } from './harness.js';

const env = relayAndBrowsers();

/** The tiles a page shows: each person's id, name, whether their video decodes and plays, their
 *  audio tracks, the code, and what the tile says of them. */
const tiles = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('#tiles .tile')].map((t) => ({
      peer: t.dataset.peer,
      name: t.querySelector('.name').textContent,
      video: t.querySelector('video').videoWidth > 0,
      playing: !t.querySelector('video').paused,
      audio: t.querySelector('video').srcObject?.getAudioTracks().length ?? 0,
      code: t.querySelector('.code').textContent.replace(' ', ''),
      muted: !t.querySelector('.muted-icon').hidden,
      avatar: t.querySelector('.avatar').hidden ? null : t.querySelector('.why').textContent,
      speaking: t.classList.contains('speaking'),
    })),
  );

/** Waits until `page` shows `n` tiles, `videos` of them with video, all with a code. */
async function waitForTiles(page, n, videos, timeout = 45000) {
  await waitFn(
    page,
    ([n, videos]) => {
      const all = [...document.querySelectorAll('#tiles .tile')];
      return all.length === n && all.filter((t) => t.querySelector('video').videoWidth > 0).length === videos && all.every((t) => t.querySelector('.code').textContent);
    },
    [n, videos],
    { timeout, polling: 250 },
  ).catch(async (e) => {
    throw new Error(`${e.message}: ${n} tiles, ${videos} with video: ${JSON.stringify(await tiles(page))}`);
  });
}

/** Waits until the tile named `name` on `page` shows `what`: 'playing', 'speaking', 'muted',
 *  'camera-off' or 'video' (decoding, with its code). */
async function waitForTile(page, name, what, timeout = 20000) {
  await waitFn(page, ([name, what]) => {
    const t = [...document.querySelectorAll('#tiles .tile')].find((x) => x.querySelector('.name').textContent === name);
    const video = t?.querySelector('video');
    return t && {
      playing: () => !video.paused,
      speaking: () => t.classList.contains('speaking'),
      muted: () => !t.querySelector('.muted-icon').hidden,
      'camera-off': () => !t.querySelector('.avatar').hidden && t.querySelector('.why').textContent === 'Camera off',
      video: () => video.videoWidth > 0 && t.querySelector('.code').textContent !== '',
    }[what]();
  }, [name, what], { timeout, polling: 200 }).catch(async (e) => {
    throw new Error(`${e.message}: ${name} ${what}: ${JSON.stringify(await tiles(page))}`);
  });
}

/** Screenshots of `page`'s call at desktop and phone sizes, named for how many others it shows. */
async function grid(page, others, kind = 'chromium') {
  for (const [size, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
    await (page.setViewportSize ? page.setViewportSize(viewport) : page.setViewport(viewport));
    // The layout settles on the next frames.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: path.join(ARTIFACTS, `group-${kind}-${others}-others-${size}.png`) });
  }
  await (page.setViewportSize ? page.setViewportSize({ width: 1280, height: 800 }) : page.setViewport({ width: 1280, height: 800 }));
}

/** Opens `url` in `kind` with a microphone playing `hz`, joins under `name`. */
async function person(kind, url, name, hz, viewport) {
  const page = await env.open(kind, url, { init: toneMicrophone, initArg: hz, join: false, viewport });
  await waitForLobby(page);
  await page.type('#name', name);
  await page.click('#join');
  return page;
}

/** The tones each person plays, Hz, far apart for tonePower's 4 Hz-wide blocks. */
const TONES = { ada: 523, bea: 659, cy: 784, tom: 440, nia: 349, ozzy: 880, dee: 988 };
/** Frequencies no one plays, among and around the tones, clear of their sums and doubles: their
 *  mean power is the noise floor (Opus's, louder at low frequencies). */
const NO_ONE_HZ = [300, 400, 480, 600, 720, 830, 940, 1100, 1250];

/** Polls `fn` (async) every 200 ms until it returns something truthy, which it returns. */
async function until(fn, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('browsers and terminals in one group call: video, sound, names, states and a code per pair; five others on screen; one too many refused; one leaves, one joins', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-group-'));
  const natives = [];
  try {
    // The home page's "New group call", for up to six: the preview, a name, Join.
    const a = await env.open('chromium', `http://${env.relay.addr}/`, { init: toneMicrophone, initArg: TONES.ada });
    // The sizes this relay takes (its default --max-peers, 50: 7 and more are conferences).
    await waitFn(a, () => [...document.querySelectorAll('#group-size option')].map((o) => o.value).join() === Array.from({ length: 48 }, (_, i) => String(i + 3)).join());
    await a.selectOption('#group-size', '6');
    await a.click('#new-group');
    await waitForLobby(a);
    assert.equal(await text(a, '#lobby-title'), 'Join the group call (up to 6 people)');
    await a.fill('#name', ' Ada\u0007 ');
    await a.click('#join');
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const url = a.url();
    assert.match(url, /#[A-Za-z0-9_-]{43}\.6$/);
    assert.equal(await text(a, '#status'), 'Waiting for others to open the link…');

    const b = await person('firefox', url, 'Bea', TONES.bea);
    await waitForTiles(a, 1, 1);
    await waitForTile(a, 'Bea', 'playing');
    await grid(a, 1);
    const c = await person('chromium', url, 'Cy', TONES.cy, { width: 390, height: 844 });
    await waitForTiles(a, 2, 2);
    await grid(a, 2);

    const wav = path.join(dir, 'tom.wav');
    const tom = nativeCall(url, ['--tone', String(TONES.tom), '--name', 'Tom', '--output', wav, '--download-dir', dir], { stdin: true });
    natives.push(tom);
    const tomStarted = Date.now();
    for (const p of [a, b, c]) await waitForTiles(p, 3, 2);
    // Six pairs, each showing one code on both of its ends: twelve codes, six distinct.
    const tomCodes = [];
    for (let i = 0; i < 3; i++) tomCodes.push((await tom.waitFor((e) => e.event === 'sas' && e.peer && !tomCodes.includes(e.code))).code);
    const codes = [...(await Promise.all([a, b, c].map(tiles))).flat().map((t) => t.code), ...tomCodes].sort();
    assert.equal(codes.length, 12, codes.join(' '));
    for (let i = 0; i < 12; i += 2) assert.equal(codes[i], codes[i + 1], codes.join(' '));
    assert.equal(new Set(codes).size, 6, codes.join(' '));
    // Names arrive sealed, cleaned; everyone's sound plays on every page; the terminal's tile
    // is a voice tile, and it rings while its tone plays.
    for (const [p, others] of [[a, ['Bea', 'Cy', 'Tom']], [b, ['Ada', 'Cy', 'Tom']], [c, ['Ada', 'Bea', 'Tom']]]) {
      await waitFn(p, (n) => [...document.querySelectorAll('#tiles .tile .name')].map((x) => x.textContent).sort().join() === n.join(), others);
      // Each pair connects on its own time (the names come over the relay, before the
      // connection; a tile plays its sound before its pair says it is connected): wait until
      // every tile plays and the terminal's is a voice tile.
      const settled = (ts) => ts.every((t) => t.audio === 1 && t.playing) && ts.some((t) => t.avatar);
      const ts = await until(async () => { const ts = await tiles(p); return settled(ts) && ts; }, 20000)
        .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await tiles(p))}`); });
      assert.deepEqual(ts.filter((t) => t.avatar).map((t) => [t.name, t.avatar]), [['Tom', 'Voice only']]);
    }
    // Each page's three pairs (a worker each) authenticate audio frames for its decoder, and
    // none fails; the browsers' pairs video too.
    for (const p of [a, b, c]) {
      const workers = await waitFn(p, async () => {
        const all = await window.__test.allWorkerStats();
        return all.length === 3 && all.every((w) => w['receive:audio']?.ok > 20) && all;
      }, null, { timeout: 20000, polling: 500 });
      assert.equal(workers.filter((w) => w['receive:video']?.ok > 0).length, 2, JSON.stringify(workers));
      assert.ok(workers.every((w) => Object.entries(w).every(([k, v]) => !k.startsWith('receive:') || v.failed === 0)), JSON.stringify(workers));
    }
    for (const name of ['Ada', 'Bea', 'Cy']) await tom.waitFor((e) => e.event === 'name' && e.name === name);
    // From here until Bea mutes, the terminal hears Ada, Bea and Cy.
    const threeTalk = Date.now();
    const framesAtThree = tom.events.filter((x) => x.event === 'stats').at(-1)?.frames_received ?? 0;
    await waitForTile(a, 'Tom', 'speaking');
    assert.match(await text(a, '#status'), /^In the call with 3 others$/);
    // The people panel: each person with the code of your pair, and its own "Codes match".
    await a.click('#people-toggle');
    const people = await a.evaluate(() => [...document.querySelectorAll('#people-list li')].map((li) => [li.querySelector('.name').textContent, li.querySelector('.code').textContent.replace(' ', '')]));
    const aTiles = await tiles(a);
    assert.deepEqual(people.sort(), aTiles.map((t) => [t.name, t.code]).sort());
    // Every device identity verified, per pair; none known yet.
    for (const p of [a, b, c]) await waitFn(p, () => window.sotto.events.filter((e) => e.type === 'identity' && e.status === 'unknown').length === 3);
    await a.click('#people-list li:first-child button.match');
    const verified = await a.evaluate(() => document.querySelector('#people-list li:first-child').dataset.peer);
    assert.equal(await a.evaluate((p) => document.querySelector(`.tile[data-peer="${p}"] .badge`).textContent, verified), 'Verified');
    // The page offers to remember that person's device, by the name they gave.
    await waitFn(a, () => !document.getElementById('remember').hidden);
    const who = await text(a, '#remember-who');
    assert.equal(await a.evaluate(() => document.getElementById('remember-name').value), who);
    await a.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-people-panel-desktop.png') });
    await a.fill('#remember-name', `${who}'s device`);
    await a.click('#remember-save');
    await waitFn(a, ([p, n]) => document.querySelector(`.tile[data-peer="${p}"] .badge`).textContent === `Verified: ${n}'s device`, [verified, who]);
    // The terminal verifies one of its three by name.
    await tom.waitFor((e) => e.event === 'identity' && e.status === 'unknown');
    tom.type("/verify Ada = Ada's browser");
    const known = await tom.waitFor((e) => e.event === 'identity' && e.status === 'known');
    assert.equal(known.name, "Ada's browser");
    assert.match(known.peer, /^[A-Za-z0-9_-]{22}$/);
    await a.click('#people-close');

    // A message and a file to everyone: each goes over each pair, sealed for that pair alone.
    await a.click('#chat-toggle');
    await waitFn(a, () => !document.getElementById('chat-send').disabled);
    await a.fill('#chat-input', 'Hello, all');
    await a.press('#chat-input', 'Enter');
    const fromAda = (text) => [...document.querySelectorAll('#chat-log li.msg.theirs')].some((li) => li.querySelector('.who').textContent === 'Ada' && li.querySelector('.text').textContent === text);
    for (const p of [b, c]) await waitFn(p, fromAda, 'Hello, all');
    await tom.waitFor((x) => x.event === 'message' && x.text === 'Hello, all');
    await waitFn(a, () => document.querySelector('#chat-log li.msg.mine .state')?.textContent === 'delivered to all 3');
    tom.type('From the terminal');
    for (const p of [a, b, c]) await waitFn(p, () => [...document.querySelectorAll('#chat-log li.msg.theirs')].some((li) => li.querySelector('.who').textContent === 'Tom' && li.querySelector('.text').textContent === 'From the terminal'));
    await a.setInputFiles('#chat-file', { name: 'agenda.txt', mimeType: 'text/plain', buffer: Buffer.from('1. names\n2. codes\n') });
    for (const p of [b, c]) await waitFn(p, () => document.querySelector('#chat-log li.file.theirs a.save')?.textContent === 'Save agenda.txt');
    const saved = await tom.waitFor((x) => x.event === 'file-received');
    assert.equal(readFileSync(saved.path, 'utf8'), '1. names\n2. codes\n');
    await waitFn(a, () => [...document.querySelectorAll('#chat-log li.file.mine .state')].filter((s) => s.textContent === 'delivered').length === 3);
    await a.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-messages-desktop.png') });
    await a.click('#chat-close');

    // Bea mutes, then turns her camera off: told over each pair's data channel, never the relay.
    // (Once four seconds of their audio have reached the terminal.)
    await tom.waitFor((x) => x.event === 'stats' && x.frames_received >= framesAtThree + 3 * 50 * 4);
    const beaMutes = Date.now();
    await b.click('#mute');
    for (const p of [a, c]) await waitForTile(p, 'Bea', 'muted');
    await tom.waitFor((e) => e.event === 'media' && e.microphone === false);
    await b.click('#camera');
    for (const p of [a, c]) await waitForTile(p, 'Bea', 'camera-off');

    // Two more terminals: five others on screen.
    const nia = nativeCall(url, ['--tone', String(TONES.nia), '--name', 'Nia', '--output', path.join(dir, 'nia.wav')]);
    natives.push(nia);
    await waitForTiles(a, 4, 2);
    await grid(a, 4);
    const ozzy = nativeCall(url, ['--tone', String(TONES.ozzy), '--name', 'Ozzy', '--output', path.join(dir, 'ozzy.wav')]);
    natives.push(ozzy);
    await waitForTiles(a, 5, 2);
    await waitForTiles(c, 5, 2);
    // Everyone who plays a tone rings; Bea, muted, does not.
    for (const n of ['Cy', 'Tom', 'Nia', 'Ozzy']) await waitForTile(a, n, 'speaking');
    assert.equal((await tiles(a)).find((t) => t.name === 'Bea').speaking, false);
    await grid(a, 5);
    await c.screenshot({ path: path.join(ARTIFACTS, 'group-chromium-5-others-phone-own.png') });
    await b.screenshot({ path: path.join(ARTIFACTS, 'group-firefox-5-others-desktop.png') });

    // A seventh person: the link is for six, the room refuses them, clearly.
    const e = await env.open('firefox', url);
    await waitFn(e, () => !document.getElementById('ended').hidden);
    assert.match(await text(e, '#ended-reason'), /as many people as its link allows/);

    // Cy hangs up: their tile goes everywhere, the others keep decoding.
    await c.click('#hangup');
    await waitForTiles(a, 4, 1);
    await waitForTiles(b, 4, 1);
    for (const n of [tom, nia, ozzy]) await n.waitFor((x) => x.event === 'peer-gone' && x.reason === 'hung up');
    // (Bea's camera is off: Ada's video is what still moves, at Bea's.)
    const before = await b.evaluate(() => window.__test.framesDecodedAll());
    await waitFn(b, async (n) => (await window.__test.framesDecodedAll()) > n + 30, before, { polling: 250 });

    // Someone new joins mid-call: everyone gets them within seconds.
    const d = await person('firefox', url, 'Dee', TONES.dee);
    const joined = Date.now();
    for (const p of [a, b]) await waitForTile(p, 'Dee', 'video', 40000);
    await waitForTiles(d, 5, 2);
    await tom.waitFor((x) => x.event === 'name' && x.name === 'Dee');
    // From here the terminal hears Ada, Nia, Ozzy and Dee (Bea is muted, Cy gone).
    const fourTalk = Date.now();
    for (const n of [nia, ozzy]) await n.waitFor((x) => x.event === 'name' && x.name === 'Dee');
    console.log(`# the newcomer was with all five others ${((Date.now() - joined) / 1000).toFixed(1)} s after Join`);

    // The terminal's recording (written as the call goes, 20 ms at a time) holds, in each
    // stretch of the call, the tone of everyone who was talking then, well above the frequencies
    // no one plays, and not the tone of anyone muted or gone.
    // Once three seconds of everyone's audio, Dee's too, have reached the terminal.
    const since = tom.events.filter((x) => x.event === 'stats').at(-1)?.frames_received ?? 0;
    await tom.waitFor((x) => x.event === 'stats' && x.frames_received >= since + 5 * 50 * 3);
    const end = Date.now();
    tom.child.kill('SIGINT');
    assert.equal(await tom.exited, 0);
    const heard = readWav(wav, 0);
    console.log(`# the terminal recorded ${(heard.length / 48000).toFixed(1)} s in the ${((end - tomStarted) / 1000).toFixed(1)} s it ran`);
    // A stretch by the clock, counted back from the recording's end (a second after it began:
    // the first frames of a pair are its jitter buffer filling).
    const stretch = (from, to) => heard.subarray(Math.max(0, heard.length - Math.round(((end - from) / 1000 - 1) * 48000)), heard.length - Math.round(((end - to) / 1000) * 48000));
    for (const [from, to, talking, silent] of [
      [threeTalk, beaMutes, ['ada', 'bea', 'cy'], ['nia', 'ozzy', 'dee']],
      [fourTalk, end, ['ada', 'nia', 'ozzy', 'dee'], ['bea', 'cy']],
    ]) {
      const part = stretch(from, to);
      const floor = NO_ONE_HZ.reduce((sum, hz) => sum + tonePower(part, hz), 0) / NO_ONE_HZ.length;
      const said = () => `${(part.length / 48000).toFixed(1)} s: ${Object.entries(TONES).map(([who, hz]) => `${who} ${(tonePower(part, hz) / floor).toFixed(1)}`).join(', ')} times the floor`;
      assert.ok(part.length >= 48000, said());
      for (const who of talking) assert.ok(tonePower(part, TONES[who]) > 20 * floor, `${who} not heard: ${said()}`);
      for (const who of silent) assert.ok(tonePower(part, TONES[who]) < 5 * floor, `${who} heard: ${said()}`);
    }
  } finally {
    for (const n of natives) n.child.kill('SIGKILL');
  }
});

test('the home page offers the group sizes the relay takes: up to its --max-peers, none at 2', async () => {
  for (const [max, sizes] of [['4', '3,4'], ['2', '']]) {
    const relay = await startRelay('127.0.0.1:0', ['--max-peers', max]);
    try {
      const page = await env.open('firefox', `http://${relay.addr}/`);
      await waitFn(page, () => document.getElementById('relay-status').textContent === 'running');
      await waitFn(page, (want) => [...document.querySelectorAll('#group-size option')].map((o) => o.value).join() === want && (want === '') === document.getElementById('new-group').parentElement.hidden, sizes);
    } finally {
      await relay.stop();
    }
  }
});

test('five people who open the link at the same moment all meet: every pair sets up at once', async () => {
  // A browser and four terminals together: the browser is O of four pairs set up in the same
  // second, each with its handshake, offer, name and candidates through the relay.
  const a = await env.open('firefox', `http://${env.relay.addr}/#${newSecret()}.6`);
  await waitForEvent(a, { state: 'waiting-for-peer' });
  const url = a.url();
  const natives = ['Tom', 'Nia', 'Ozzy', 'Dee'].map((name, i) => nativeCall(url, ['--tone', String(300 + 100 * i), '--name', name, '--output', '/dev/null']));
  try {
    try {
      await waitFn(a, () => {
        const tiles = [...document.querySelectorAll('#tiles .tile.voice')];
        return tiles.length === 4 && tiles.every((t) => t.querySelector('.code').textContent);
      }, null, { timeout: 45000, polling: 250 });
    } catch (e) {
      // What each side saw, to tell a stuck pair from a slow one.
      await a.screenshot({ path: path.join(ARTIFACTS, 'group-firefox-five-at-once-failed.png') });
      const page = await a.evaluate(() => ({
        status: document.getElementById('status')?.textContent,
        tiles: [...document.querySelectorAll('#tiles .tile')].map((t) => t.textContent.replace(/\s+/g, ' ')),
        events: window.sotto?.events?.map((x) => x.type),
      }));
      const seen = natives.map((n) => n.events.filter((x) => x.event !== 'stats' && x.event !== 'candidate'));
      throw new Error(`${e.message}\npage: ${JSON.stringify(page)}\nterminals: ${JSON.stringify(seen)}`);
    }
    for (const n of natives) {
      const codes = new Set();
      await n.waitFor((e) => (e.event === 'sas' && codes.add(e.peer), codes.size === 4));
    }
    assert.equal(await text(a, '#status'), 'In the call with 4 others');
    assert.deepEqual(await a.evaluate(() => window.sotto.events.filter((e) => e.type === 'ended')), []);
  } finally {
    for (const n of natives) n.child.kill('SIGKILL');
  }
});
