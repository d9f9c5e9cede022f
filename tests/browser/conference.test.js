// Conferences (DESIGN §4.13, PROTOCOL.md §7): an `#S.8` link through the real relay, its MLS
// delivery service and its SFU. Chromium, Firefox and Chromium each send their camera and
// microphone once, over one connection to the SFU, decode the other two's video and sound, show
// the same group code, and exchange a message; a fourth joins and a third leaves, and the code
// changes everywhere and stays equal. The SFU drops no frame as clear: every frame was sealed.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { createInterface } from 'node:readline';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, ROOT, launchChromium, launchFirefox, newSecret, openPage, startRelay, startTap, toneMicrophone, waitFn, waitForLobby } from './harness.js';

const env = {};
const closers = [];
before(async () => {
  // Firefox sends no media to a loopback address (not even with its loopback preference): the
  // SFU listens on this machine's own address (docs/relay.md).
  const host = Object.values(networkInterfaces()).flat().find((i) => i.family === 'IPv4' && !i.internal)?.address;
  assert.ok(host, 'this machine has a non-loopback IPv4 address for the SFU');
  env.relay = await startRelay('127.0.0.1:0', ['--sfu-udp', `${host}:0`]);
  [env.chromium, env.firefox] = await Promise.all([launchChromium(), launchFirefox()]);
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => {});
});
after(async () => {
  await env.chromium?.close();
  await env.firefox?.close();
  await env.relay?.stop();
});

const TONES = { ada: 523, bea: 659, cy: 784, dee: 988 };

/** Opens the conference `url` in `kind` with a microphone playing `hz`, joins as `name`. */
async function person(kind, url, name, hz, viewport) {
  const page = await openPage(env[kind], url, { init: toneMicrophone, initArg: hz, join: false, viewport, closers });
  await waitForLobby(page);
  await page.type('#name', name);
  await page.click('#join');
  return page;
}

/** What a page shows: its tiles (name, decoding video, audio tracks) and the group code. */
const view = (page) =>
  page.evaluate(() => ({
    tiles: [...document.querySelectorAll('#tiles .tile')].map((t) => ({
      name: t.querySelector('.name').textContent,
      video: t.querySelector('video').videoWidth > 0,
      audio: t.querySelector('video').srcObject?.getAudioTracks().length ?? 0,
      featured: t.classList.contains('featured'),
    })),
    code: document.getElementById('group-code-digits').textContent,
    status: document.getElementById('status').textContent,
  }));

/** Waits until `page` shows exactly `names`, each with video and sound, and a group code. */
async function waitForPeople(page, names, timeout = 45000) {
  await waitFn(
    page,
    (names) => {
      const tiles = [...document.querySelectorAll('#tiles .tile')];
      const shown = tiles.map((t) => t.querySelector('.name').textContent).sort();
      return (
        JSON.stringify(shown) === JSON.stringify([...names].sort()) &&
        tiles.every((t) => t.querySelector('video').videoWidth > 0 && (t.querySelector('video').srcObject?.getAudioTracks().length ?? 0) > 0) &&
        document.getElementById('group-code-digits').textContent !== ''
      );
    },
    names,
    { timeout, polling: 250 },
  ).catch(async (e) => {
    throw new Error(`${e.message}: want ${names}: ${JSON.stringify(await view(page))}`);
  });
}

/** Waits until every page shows one and the same code, other than `not`; returns it. */
async function sameCode(pages, not = null) {
  let code = null;
  await waitFn(pages[0], () => true);
  const deadline = Date.now() + 20000;
  for (;;) {
    const codes = await Promise.all(pages.map((p) => p.evaluate(() => document.getElementById('group-code-digits').textContent)));
    if (codes[0] && codes[0] !== not && codes.every((c) => c === codes[0])) {
      code = codes[0];
      break;
    }
    if (Date.now() > deadline) throw new Error(`codes differ: ${codes.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return code;
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `conference-${name}.png`) });
}

test('three browsers in one #S.8 conference see and hear each other through the SFU, with one group code; a fourth joins, one leaves; the relay sees no name or message', async () => {
  // Through a tap that records everything the relay is sent and sends.
  const tap = await startTap(env.relay.addr);
  closers.push(async () => tap.stop());
  const url = `${tap.url}/#${newSecret()}.8`;
  // Names and a message with spaces: no base64url text can hold one by chance.
  const [A, B, C, D] = ['Ada Lovelace', 'Bea Müller', 'Cy Young', 'Dee Dee'];
  const ada = await person('chromium', url, A, TONES.ada);
  const bea = await person('firefox', url, B, TONES.bea);
  const cy = await person('chromium', url, C, TONES.cy);
  await waitForPeople(ada, [B, C]);
  await waitForPeople(bea, [A, C]);
  await waitForPeople(cy, [A, B]);
  const code = await sameCode([ada, bea, cy]);
  assert.match(code, /^(\d{5} ){5}\d{5}$/);
  await sizes(ada, 'chromium-2-others');
  await sizes(bea, 'firefox-2-others');

  // A message to everyone, sealed by the group.
  await bea.evaluate(() => document.getElementById('chat-toggle').click());
  await bea.type('#chat-input', 'hello from Bea, sealed');
  await bea.keyboard.press('Enter');
  for (const p of [ada, cy]) {
    await waitFn(p, () => [...document.querySelectorAll('#chat-log .msg.theirs .text')].some((e) => e.textContent === 'hello from Bea, sealed'), null, { timeout: 15000 });
  }

  // Dee joins: a new epoch, a new code, the same everywhere; everyone sees everyone.
  const dee = await person('chromium', url, D, TONES.dee);
  await waitForPeople(dee, [A, B, C]);
  await waitForPeople(ada, [B, C, D]);
  const withDee = await sameCode([ada, bea, cy, dee], code);
  // Cy leaves: the others go on, with yet another code.
  await cy.click('#hangup');
  await waitForPeople(ada, [B, D]);
  await waitForPeople(bea, [A, D]);
  await sameCode([ada, bea, dee], withDee);

  // The relay saw message kinds, epochs and sealed bytes, and the SFU's SDP (which it must):
  // never a name, the message or the group code.
  const seen = tap.record.map((r) => r.text).join('\n');
  assert.ok(tap.record.some((r) => r.text.includes('"type":"commit"')) && tap.record.some((r) => r.text.includes('"type":"group-message"')), 'the tap saw the group at work');
  for (const secret of [A, B, C, D, 'Lovelace', 'Müller', 'hello from Bea', code.replaceAll(' ', ''), code]) assert.ok(!seen.includes(secret), `the relay saw ${secret}`);

  // Every frame that reached the SFU carried an SFrame header.
  const metrics = await (await fetch(`http://${env.relay.addr}/metrics`)).text();
  const value = (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
  assert.ok(value('sotto_sfu_frames_forwarded_total') > 100, metrics);
  assert.equal(value('sotto_sfu_frames_clear_dropped_total'), 0);
});

/** Synthetic members (synthetic-members.mjs) joining `url` one by one: real members of the
 *  MLS group, without media. `codes` holds each one's latest group code. */
function synthetic(url, names) {
  const child = spawn(process.execPath, ['--import', path.join(ROOT, 'web/test/vendor-map.mjs'), path.join(ROOT, 'tests/browser/synthetic-members.mjs'), url, ...names], { stdio: ['ignore', 'pipe', 'inherit'] });
  closers.push(async () => child.kill());
  const codes = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    const { name, code } = JSON.parse(line);
    codes.set(name, code);
  });
  return codes;
}

/** Screenshots of `page` (Chromium's or Firefox's) at desktop and phone sizes. */
async function sizes(page, name) {
  const resize = (v) => (page.setViewportSize ? page.setViewportSize(v) : page.setViewport(v));
  for (const [size, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
    await resize(viewport);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await screenshot(page, `${name}-${size}`);
  }
  await resize({ width: 1280, height: 800 });
}

test('the conference view at 7, 12 and 30 others, desktop and phone; 30 synthetic members and the page share one code', async () => {
  const url = `http://${env.relay.addr}/#${newSecret()}.31`;
  const ada = await person('chromium', url, 'Ada', TONES.ada);
  await waitFn(ada, () => document.getElementById('group-code-digits').textContent !== '', null, { timeout: 20000 }).catch(async (e) => { throw new Error(e.message + await ada.evaluate(() => document.getElementById('ended-reason').textContent)); });
  const names = ['Bea', 'Cy', 'Dee', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo', 'Kai', 'Lou', 'Max', 'Ned', 'Ola', 'Pia', 'Quin', 'Ray', 'Sam', 'Tia', 'Uma', 'Vic', 'Wes', 'Xan', 'Yas', 'Zoe', 'Abe', 'Bo', 'Cal', 'Dru', 'Eli'];
  const steps = [7, 12, 30];
  let joined = 0;
  for (const n of steps) {
    const more = synthetic(url, names.slice(joined, n));
    joined = n;
    await waitFn(ada, (n) => document.querySelectorAll('#tiles .tile').length === n && [...document.querySelectorAll('#tiles .tile .name')].every((e) => !e.textContent.startsWith('Person')), n, { timeout: 60000, polling: 250 });
    await sizes(ada, `chromium-${n}-others`);
    // Everyone, the page and each member, shows the same code.
    await waitFn(ada, () => document.getElementById('group-code-digits').textContent !== '');
    const shown = await ada.evaluate(() => document.getElementById('group-code-digits').textContent);
    const deadline = Date.now() + 20000;
    for (;;) {
      const all = [...more.values()];
      if (all.length === n - (steps[steps.indexOf(n) - 1] ?? 0) && all.every((c) => c === shown)) break;
      if (Date.now() > deadline) throw new Error(`codes differ from the page's ${shown}: ${JSON.stringify([...more])}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // Thirty others: the speaker and eight more on screen, the rest a page away; every page
  // shows nine, and paging changes who.
  const visible = () => ada.evaluate(() => [...document.querySelectorAll('#tiles .tile:not([hidden]) .name')].map((e) => e.textContent));
  await waitFn(ada, () => document.getElementById('page-label').textContent === 'Page 1 of 4' && !document.getElementById('pager').hidden);
  const first = await visible();
  assert.equal(first.length, 9, first.join());
  await ada.click('#page-next');
  await waitFn(ada, () => document.getElementById('page-label').textContent === 'Page 2 of 4');
  const second = await visible();
  assert.equal(second.length, 9, second.join());
  assert.equal(second[0], first[0], 'the speaker stays');
  assert.equal(second.slice(1).filter((n) => first.includes(n)).length, 0, `${first} / ${second}`);
  await sizes(ada, 'chromium-30-others-page-2');
});

/** A relay in the middle that holds the link: pages under `/fork/` are put, unknowing, in
 *  another room of the real relay (every `join` they send is rewritten), so that the
 *  conference splits in two groups. Everything else passes unchanged. */
async function forkingProxy(relayAddr) {
  const [host, port] = relayAddr.split(':');
  const otherRoom = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
  const server = createServer((req, res) => {
    const path = req.url.startsWith('/fork/') ? req.url.slice('/fork'.length) : req.url;
    const up = request({ host, port, path, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (client, req) => {
    const fork = req.url.startsWith('/fork/');
    const relay = new WebSocket(`ws://${relayAddr}/ws`);
    const pending = [];
    relay.on('open', () => pending.splice(0).forEach((m) => relay.send(m)));
    client.on('message', (data) => {
      let text = data.toString();
      if (fork && text.includes('"type":"join"')) text = JSON.stringify({ ...JSON.parse(text), room: otherRoom });
      if (relay.readyState === WebSocket.OPEN) relay.send(text);
      else pending.push(text);
    });
    relay.on('message', (data) => client.send(data.toString()));
    client.on('close', () => relay.close());
    relay.on('close', () => client.close());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${server.address().port}`;
}

test('a relay holding the link that forks the conference is caught by the group code: each side sees the names it expects and another code', async () => {
  const proxy = await forkingProxy(env.relay.addr);
  const secret = newSecret();
  const [A, B, C] = ['Ada Lovelace', 'Bea Müller', 'Cy Young'];
  const ada = await person('chromium', `${proxy}/#${secret}.8`, A, TONES.ada);
  const bea = await person('chromium', `${proxy}/#${secret}.8`, B, TONES.bea);
  const cy = await person('chromium', `${proxy}/fork/#${secret}.8`, C, TONES.cy);
  // The proxy, holding the link, joins each side as the person missing there.
  synthetic(`${proxy}/#${secret}.8`, [C]);
  synthetic(`${proxy}/fork/#${secret}.8`, [A, B]);
  const names = (page) => page.evaluate(() => [...document.querySelectorAll('#tiles .tile .name')].map((e) => e.textContent).sort());
  for (const [page, want] of [[ada, [B, C]], [bea, [A, C]], [cy, [A, B]]]) {
    await waitFn(page, (want) => JSON.stringify([...document.querySelectorAll('#tiles .tile .name')].map((e) => e.textContent).sort()) === JSON.stringify(want) && document.getElementById('group-code-digits').textContent !== '', want, { timeout: 30000 }).catch(async (e) => {
      throw new Error(`${e.message}: ${await names(page)}`);
    });
  }
  // Every page shows the names it expects; the codes tell the two groups apart.
  const code = (p) => p.evaluate(() => document.getElementById('group-code-digits').textContent);
  const side = await sameCode([ada, bea]);
  assert.notEqual(await code(cy), side, 'a forked group shows another code');
});

