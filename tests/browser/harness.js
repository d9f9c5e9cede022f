// Shared by the browser tests: the real relay binary on a free port, a recording proxy in front
// of it (HTTP and WebSocket), Debian's chromium through playwright-core and firefox-esr through
// puppeteer-core, opened the same way so a scenario is written once for any pair of browsers.

import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { before, after, afterEach } from 'node:test';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import WebSocket, { WebSocketServer } from 'ws';

export const ROOT = path.resolve(fileURLToPath(import.meta.url), '../../..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** Starts `sotto-relay` (built by `cargo test`) on `listen` (a free port by default) with any
 *  more flags; resolves to { addr, stop }, `stop()` resolving once the process exited. */
export async function startRelay(listen = '127.0.0.1:0', args = []) {
  const bin = process.env.SOTTO_RELAY_BIN ?? path.join(ROOT, 'target/debug/sotto-relay');
  const child = spawn(bin, ['--listen', listen, '--log-format', 'text', ...args], { env: { ...process.env, NO_COLOR: '1' } });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`relay exited ${code}: ${log}`)));
    child.stderr.on('data', (d) => {
      log += d;
      const m = /relay listening on https?:\/\/(\S+)/.exec(log);
      if (m) resolve(m[1]);
    });
  });
  return {
    addr,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The shared secret of the test coturn (`use-auth-secret`), as tests/src/lib.rs's. */
export const TURN_SECRET = 'north-wind-turn-secret';

/** Debian's coturn on loopback with `use-auth-secret` on a free port; resolves to { port, stop }
 *  once it serves. */
export async function startCoturn() {
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-coturn-'));
  const child = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    '--use-auth-secret', `--static-auth-secret=${TURN_SECRET}`, '--realm=sotto.test',
    '--no-tls', '--no-dtls', '--no-cli', '--allow-loopback-peers', '--simple-log', '--log-file=stdout',
    `--userdb=${path.join(dir, 'turndb')}`, `--pidfile=${path.join(dir, 'turn.pid')}`,
  ], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Ready once it has opened its database, the last step of its start-up.
  await new Promise((resolve, reject) => {
    let log = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`turnserver exited ${code}: ${log}`)));
    child.stdout.on('data', (d) => {
      log += d;
      if (log.includes('DB connection success')) resolve();
    });
  });
  child.stdout.resume();
  return {
    port,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Debian's redis-server on a free loopback port, no persistence (relays that share rooms:
 *  `--redis`); resolves to { url, stop } once it answers. */
export async function startRedis() {
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise((resolve, reject) => {
    let log = '';
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${log}`)));
    child.stdout.on('data', (d) => {
      log += d;
      if (log.includes('Ready to accept connections')) resolve();
    });
  });
  child.stdout.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A proxy in front of the relay: serves its pages and forwards /ws, recording every frame.
 *  With `prefix` (e.g. '/sub/') it serves the relay under that path only, as a reverse proxy
 *  that strips it does: anything else is 404, the WebSocket is `${prefix}ws`. */
export async function startTap(relayAddr, { prefix = '/' } = {}) {
  const record = [];
  const server = createServer((req, res) => {
    if (!req.url.startsWith(prefix)) {
      res.writeHead(404).end();
      return;
    }
    const upPath = `/${req.url.slice(prefix.length)}`;
    const up = request({ host: relayAddr.split(':')[0], port: relayAddr.split(':')[1], path: upPath, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  const wss = new WebSocketServer(prefix === '/' ? { server } : { server, path: `${prefix}ws` });
  const conns = [];
  wss.on('connection', (client) => {
    const relay = new WebSocket(`ws://${relayAddr}/ws`);
    conns.push({ client, relay });
    const pending = [];
    relay.on('open', () => pending.splice(0).forEach((m) => relay.send(m)));
    client.on('message', (data) => {
      const text = data.toString();
      record.push({ dir: 'up', text });
      if (relay.readyState === WebSocket.OPEN) relay.send(text);
      else pending.push(text);
    });
    relay.on('message', (data) => {
      const text = data.toString();
      record.push({ dir: 'down', text });
      client.send(text);
    });
    client.on('close', () => relay.close());
    relay.on('close', () => client.close());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  // `cut(i)` drops the i-th client connection at once, as a lost network does: the page sees
  // its WebSocket fail, the relay sees its peer go.
  const cut = (i) => {
    conns[i].client.terminate();
    conns[i].relay.terminate();
  };
  const stop = () => {
    taps.delete(tap);
    for (const c of conns) {
      c.client.terminate();
      c.relay.terminate();
    }
    wss.close();
    server.closeAllConnections();
    server.close();
  };
  const tap = { url: `http://127.0.0.1:${port}`, record, cut, stop };
  taps.add(tap);
  return tap;
}

/** The taps not yet stopped: a test that failed half-way leaves its tap to the harness, which
 *  stops it when the test ends (an open server would keep the test file's process alive). */
const taps = new Set();

export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** The host name of a relay that is not localhost (so not a secure context over http://): both
 *  browsers resolve it to 127.0.0.1. */
export const TEST_HOST = 'sotto.test';

export function launchChromium(args = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_FLAGS, `--host-resolver-rules=MAP ${TEST_HOST} 127.0.0.1`, ...args],
  });
}

/** A sound card for the browsers: Debian's PulseAudio (the test command installs it) with one
 *  null sink, started on first use and ended with this process. Firefox's Web Audio runs only
 *  with an output device: on a machine without one its AudioContext stays suspended, and a
 *  microphone made with Web Audio (toneMicrophone) sends silence. Returns the environment that
 *  points a program at it. */
let sound;
export function soundCard() {
  sound ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sotto-pulse-'));
    const env = { PULSE_SERVER: `unix:${path.join(dir, 'native')}`, PULSE_RUNTIME_PATH: dir };
    const server = spawn('pulseaudio', [
      '--daemonize=no', '-n', '--use-pid-file=no', '--disallow-exit',
      // Should this process die without its exit handler, the server ends by itself.
      '--exit-idle-time=20', '--log-target=stderr', '--log-level=error',
      `--load=module-native-protocol-unix auth-anonymous=1 socket=${path.join(dir, 'native')}`,
      '--load=module-null-sink sink_name=browsers rate=48000',
    ], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    process.on('exit', () => server.kill());
    const exited = once(server, 'exit').then(([code]) => ({ exited: code }));
    const deadline = Date.now() + 20000;
    for (;;) {
      const info = spawn('pactl', ['info'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const answer = await Promise.race([once(info, 'exit'), exited]);
      if ('exited' in answer) throw new Error(`pulseaudio exited (${answer.exited}) before it answered`);
      if (answer[0] === 0) return env;
      if (Date.now() > deadline) throw new Error('PulseAudio did not answer in 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return sound;
}

/** Debian's firefox-esr, headless, through puppeteer-core over WebDriver BiDi (playwright-core's
 *  Firefox mode does not work with this Firefox), with fake camera and microphone; in
 *  `userDataDir` when given (a profile prepared beforehand, e.g. trusting a CA). */
export async function launchFirefox({ userDataDir } = {}) {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: true,
    userDataDir,
    env: { ...process.env, ...(await soundCard()) },
    extraPrefsFirefox: {
      'network.dns.localDomains': TEST_HOST,
      // The page may read what "Copy link" wrote without a paste prompt no one can answer.
      'dom.events.testing.asyncClipboard': true,
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.autoplay.default': 0,
      // A native peer on this machine offers loopback candidates only (`--loopback`): Firefox
      // leaves loopback out of ICE, and hides host addresses behind mDNS names, unless told.
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
    },
  });
}

/** Waits until `fn(arg)` (which may be async) is truthy in the page, in a Chromium
 *  (playwright) or a Firefox (puppeteer) page alike; returns its value. Polled from here:
 *  playwright's waitForFunction takes the promise of an async function for a truthy value. */
export async function waitFn(page, fn, arg, { timeout = 20000, polling = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    let value;
    try {
      value = await page.evaluate(fn, arg);
    } catch (e) {
      // The page navigated meanwhile (a reload): ask the new one.
      if (!/context|destroyed|navigat|detached/i.test(e.message)) throw e;
    }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeout} ms for ${fn.name || fn.toString().slice(0, 120)}`);
    await new Promise((resolve) => setTimeout(resolve, polling));
  }
}

/** Waits until the page's peer connection has decoded `n` more frames of the other side's
 *  video: its media still flows. (Firefox counts no frames in getVideoPlaybackQuality for a
 *  MediaStream; both browsers count them in getStats.) */
export async function videoGoesOn(page, n = 50, timeout = 15000) {
  const start = await page.evaluate(() => window.__test.framesDecoded());
  await waitFn(page, async (goal) => (await window.__test.framesDecoded()) >= goal, start + n, { timeout, polling: 250 });
}

/** A fresh call secret, base64url. */
export function newSecret() {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
}

/** Waits until the page's call reported an event with every field of `match`; returns it.
 *  (A function, not a string: the page's CSP forbids eval, and the tests keep that CSP.) */
export async function waitForEvent(page, match, timeout = 20000) {
  return waitFn(page, (m) => (window.sotto?.events ?? []).find((e) => Object.entries(m).every(([k, v]) => e[k] === v)), match, { timeout });
}

/** The browsers a scenario runs in, and every ordered pair of them. */
export const KINDS = ['chromium', 'firefox'];
export const PAIRS = KINDS.flatMap((a) => KINDS.map((b) => [a, b]));
export const other = (kind) => (kind === 'chromium' ? 'firefox' : 'chromium');

/** Registers a relay, Chromium and Firefox for the calling test file. `env.open(kind, url,
 *  { init, viewport })` opens a probed page of 'chromium' or 'firefox' in a profile of its own
 *  (running `init` before the page's scripts), closed when the test ends; the same scenario
 *  runs for any pair of browsers. */
export function relayAndBrowsers() {
  const env = {};
  const closers = [];
  before(async () => {
    env.relay = await startRelay();
    [env.chromium, env.firefox] = await Promise.all([launchChromium(), launchFirefox()]);
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c().catch(() => {});
    for (const tap of [...taps]) tap.stop();
  });
  after(async () => {
    await env.chromium?.close();
    await env.firefox?.close();
    await env.relay?.stop();
  });
  env.open = (kind, url, options) => openPage({ chromium: env.chromium, firefox: env.firefox }[kind], url, { ...options, closers });
  return env;
}

/** Waits until the page shows its preview with Join ready to press. */
export const waitForLobby = (page) =>
  waitFn(page, () => !document.getElementById('lobby').hidden && !document.getElementById('join').disabled);

/** Presses Join on the page's preview, if it shows one (a call link's first opening in a tab);
 *  returns at once when the page went straight to its call view (or to an invalid link's
 *  reason). */
export async function joinIfAsked(page, timeout = 20000) {
  const where = await waitFn(page, () => {
    if (!document.getElementById('call').hidden) return 'call';
    return !document.getElementById('lobby').hidden && !document.getElementById('join').disabled && 'lobby';
  }, null, { timeout });
  if (where === 'lobby') await page.click('#join');
}

/** Opens `url` in a new profile of `browser` (a playwright Chromium or a puppeteer Firefox),
 *  probed (see probe), with `init(initArg)` run before the page's own scripts, at `viewport`; the
 *  profile's closer goes to `closers`. A call link goes past the preview (Join), unless
 *  `join` is false. */
export async function openPage(browser, url, { init, initArg, viewport = { width: 1280, height: 800 }, closers = [], join = true } = {}) {
  let page;
  const kind = isPlaywright(browser) ? 'chromium' : 'firefox';
  if (kind === 'chromium') {
    const context = await probe(await browser.newContext({ viewport }));
    closers.push(() => context.close());
    if (init) await context.addInitScript(init, initArg);
    page = await context.newPage();
  } else {
    const context = await browser.createBrowserContext();
    closers.push(() => context.close());
    page = await probeFirefoxPage(await context.newPage());
    await page.setViewport(viewport);
    if (init) await page.evaluateOnNewDocument(init, initArg);
  }
  page.on('pageerror', (e) => console.error(`${kind} page error:`, e.message));
  await page.goto(url);
  if (join && new URL(url).hash.length > 1) await joinIfAsked(page);
  return page;
}

const isPlaywright = (browser) => typeof browser.newContext === 'function';

// What the tests read of a page, the same for a playwright and a puppeteer page.

/** The text of the element `selector`. */
export const text = (page, selector) => page.evaluate((s) => document.querySelector(s).textContent, selector);
/** The value of the input `selector`. */
export const value = (page, selector) => page.evaluate((s) => document.querySelector(s).value, selector);
/** Whether the control `selector` is disabled. */
export const disabled = (page, selector) => page.evaluate((s) => document.querySelector(s).disabled, selector);
/** Whether the element `selector` takes up room on the page and is not hidden (as playwright's
 *  isVisible). */
export const shown = (page, selector) =>
  page.evaluate((s) => {
    const e = document.querySelector(s);
    const r = e?.getBoundingClientRect();
    return Boolean(r && r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden');
  }, selector);
/** Whether the element `selector` is fully inside the window, without scrolling. */
export const inView = (page, selector) =>
  page.evaluate((s) => {
    const r = document.querySelector(s).getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth;
  }, selector);

/** Runs `sotto call`; resolves events as they come. With `stdin`, `type(line)` types a line
 *  into it (a message or a command); `dataHome` is its XDG_DATA_HOME (a fresh one if not
 *  given). */
export function nativeCall(link, args, { stdin = false, dataHome } = {}) {
  const bin = process.env.SOTTO_BIN ?? path.join(ROOT, 'target/debug/sotto');
  // Each terminal is a device of its own (its key and known devices), never the home's.
  const data = dataHome ?? mkdtempSync(path.join(tmpdir(), 'sotto-data-'));
  const child = spawn(bin, ['call', link, '--json', '--loopback', ...args], {
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    env: { ...process.env, XDG_DATA_HOME: data },
  });
  const events = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const e = JSON.parse(line);
    events.push(e);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = async (pred, ms = 30000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = events.find(pred);
      if (e) return e;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`native client: no matching event in ${JSON.stringify(events)}`);
      const gone = await Promise.race([new Promise((r) => waiters.push(r)), exited.then(() => 'exited'), new Promise((r) => setTimeout(r, left))]);
      if (gone === 'exited' && !events.find(pred)) throw new Error(`native client exited without a matching event: ${JSON.stringify(events)}`);
    }
  };
  const type = (line) => child.stdin.write(`${line}\n`);
  return { child, events, waitFor, exited, type };
}


/** The tests' own window on a page's peer connection and transform worker: the page exposes
 *  neither (no key, SDP or candidate in a page global), so every page the tests open records
 *  the ones it makes. `window.__test.pc()` is the newest peer connection,
 *  `window.__test.framesDecoded()` the video frames it decoded, and
 *  `window.__test.workerStats()` asks the newest worker for its frame counters. */
export async function probe(context) {
  await context.addInitScript(PROBE);
  return context;
}

/** The same probe for a Firefox (puppeteer) page, before it loads anything. */
export async function probeFirefoxPage(page) {
  await page.evaluateOnNewDocument(PROBE);
  return page;
}

/** Records the page's peer connections and workers (see probe). */
function PROBE() {
  const pcs = [];
  const workers = [];
  const PC = window.RTCPeerConnection;
  if (PC) {
    window.RTCPeerConnection = class extends PC {
      constructor(...args) {
        super(...args);
        pcs.push(this);
      }
    };
  }
  const W = window.Worker;
  window.Worker = class extends W {
    constructor(...args) {
      super(...args);
      workers.push(this);
    }
  };
  /** A worker's frame counters, or {} when it does not answer within 2 s (terminated). */
  const ask = (w) => {
    if (!w) return Promise.resolve({});
    const id = Math.random();
    return new Promise((resolve) => {
      const on = (e) => {
        if (e.data?.type !== 'stats' || e.data.id !== id) return;
        w.removeEventListener('message', on);
        resolve(e.data.stats);
      };
      w.addEventListener('message', on);
      w.postMessage({ type: 'stats', id });
      setTimeout(() => resolve({}), 2000);
    });
  };
  window.__test = {
    pc: () => pcs.at(-1),
    // Each open peer connection's incoming video (a group has one per person): frames per
    // second, height and frames decoded so far.
    videoIn: async () => {
      const out = [];
      for (const pc of pcs.filter((p) => p.connectionState !== 'closed')) {
        for (const s of (await pc.getStats()).values()) {
          if (s.type === 'inbound-rtp' && s.kind === 'video') out.push({ fps: s.framesPerSecond ?? 0, height: s.frameHeight ?? 0, decoded: s.framesDecoded ?? 0 });
        }
      }
      return out;
    },
    // The video frames decoded so far by every peer connection still open.
    framesDecodedAll: async () => (await window.__test.videoIn()).reduce((sum, v) => sum + v.decoded, 0),
    // The video frames the newest peer connection decoded so far.
    framesDecoded: async () => {
      const stats = (await pcs.at(-1)?.getStats()) ?? new Map();
      return [...stats.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'video')?.framesDecoded ?? 0;
    },
    // A terminated worker never answers: after 2 s the answer is "nothing".
    workerStats: () => ask(workers.at(-1)),
    // Every worker's counters (a group's: one worker per pair), those that answer.
    allWorkerStats: async () => (await Promise.all(workers.map(ask))).filter((s) => Object.keys(s).length > 0),
  };
}

/** An init script: the page's microphone is a sine tone of `hz` (an oscillator in place of the
 *  fake device's sound), so that a listener can tell who it hears. */
export function toneMicrophone(hz) {
  const gum = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
  if (!gum) return; // the blank page before the call's
  navigator.mediaDevices.getUserMedia = async (c) => {
    const stream = await gum(c);
    if (!c?.audio) return stream;
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = hz;
    const gain = ctx.createGain();
    gain.gain.value = 0.3;
    const out = ctx.createMediaStreamDestination();
    osc.connect(gain).connect(out);
    osc.start();
    for (const t of stream.getAudioTracks()) {
      stream.removeTrack(t);
      t.stop();
    }
    stream.addTrack(out.stream.getAudioTracks()[0]);
    return stream;
  };
}

/** The samples (-1..1) of a 48 kHz mono 16-bit WAV the native client wrote, after its first
 *  `skip` seconds. */
export function readWav(file, skip = 1) {
  const data = readFileSync(file).subarray(44);
  const n = Math.floor(data.length / 2);
  const out = new Float32Array(Math.max(0, n - skip * 48000));
  for (let i = skip * 48000; i < n; i++) out[i - skip * 48000] = data.readInt16LE(i * 2) / 32768;
  return out;
}

/** The power of `samples` (48 kHz) at `hz`: the mean over quarter-second blocks of each
 *  Hann-windowed block's Goertzel power. Blocks make a tone count however often the call's
 *  audio skips or conceals a frame (its phase jumps) and however far the sender's clock has the
 *  tone from `hz` (up to about 2 Hz); the window keeps a loud tone from leaking into the
 *  frequencies measured as the noise floor. */
export function tonePower(samples, hz) {
  const BLOCK = 12000;
  const c = 2 * Math.cos((2 * Math.PI * hz) / 48000);
  let sum = 0;
  let blocks = 0;
  for (let start = 0; start + BLOCK <= samples.length; start += BLOCK) {
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < BLOCK; i++) {
      const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (BLOCK - 1));
      const s0 = samples[start + i] * hann + c * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    sum += (s1 * s1 + s2 * s2 - c * s1 * s2) / BLOCK;
    blocks++;
  }
  return blocks ? sum / blocks : 0;
}

/** The root mean square of `samples`. */
export const rms = (samples) => Math.sqrt(samples.reduce((a, x) => a + x * x, 0) / Math.max(samples.length, 1));
