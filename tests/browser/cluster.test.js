// Two relays sharing their rooms through Debian's redis-server (`--redis`): people sent to
// different relays meet in the same call. Two terminals, each on its own relay, hear each
// other's tone; a browser on one relay and a terminal on the other see the same safety code and
// hear each other.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, launchChromium, nativeCall, newSecret, openPage, readWav, startRedis, startRelay, tonePower, waitFn, waitForEvent } from './harness.js';

const env = {};
before(async () => {
  env.redis = await startRedis();
  env.relays = await Promise.all([startRelay('127.0.0.1:0', ['--redis', env.redis.url]), startRelay('127.0.0.1:0', ['--redis', env.redis.url])]);
  env.chromium = await launchChromium();
});
after(async () => {
  await env.chromium?.close();
  for (const r of env.relays ?? []) await r.stop();
  await env.redis?.stop();
});

test('two terminals on two relays call each other and hear each other\'s tone', async () => {
  const secret = newSecret();
  const [one, two] = env.relays.map((r) => `http://${r.addr}/#${secret}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-cluster-'));
  const [outA, outB] = [path.join(dir, 'a.wav'), path.join(dir, 'b.wav')];
  const a = nativeCall(one, ['--tone', '440', '--output', outA, '--duration', '3']);
  await a.waitFor((e) => e.event === 'state' && e.state === 'waiting-for-peer');
  const b = nativeCall(two, ['--tone', '880', '--output', outB, '--duration', '3']);
  const [sasA, sasB] = [await a.waitFor((e) => e.event === 'sas'), await b.waitFor((e) => e.event === 'sas')];
  assert.equal(sasA.code, sasB.code);
  assert.equal(await a.exited, 0);
  assert.equal(await b.exited, 0);
  // Each heard the other's tone, not its own.
  const [heardA, heardB] = [readWav(outA), readWav(outB)];
  assert.ok(tonePower(heardA, 880) > 100 * tonePower(heardA, 440), 'a heard b');
  assert.ok(tonePower(heardB, 440) > 100 * tonePower(heardB, 880), 'b heard a');
});

test('a browser on one relay and a terminal on the other: one call, one safety code, sound both ways', async () => {
  const secret = newSecret();
  const [one, two] = env.relays.map((r) => `http://${r.addr}/#${secret}`);
  const closers = [];
  const page = await openPage(env.chromium, one, { closers });
  try {
    await waitForEvent(page, { state: 'waiting-for-peer' });
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'sotto-cluster-')), 'heard.wav');
    const native = nativeCall(two, ['--tone', '440', '--output', out]);
    const nativeSas = await native.waitFor((e) => e.event === 'sas');
    assert.equal((await waitForEvent(page, { type: 'sas' })).code, nativeSas.code);
    await waitForEvent(page, { state: 'connected' });
    // The terminal's tone arrives and authenticates in the browser; the browser's sound
    // arrives at the terminal.
    await waitFn(page, async () => (await window.__test.workerStats())['receive:audio']?.ok > 100, null, { timeout: 15000, polling: 250 });
    await native.waitFor((e) => e.event === 'stats' && e.frames_received >= 100);
    await page.screenshot({ path: path.join(ARTIFACTS, 'cluster-chromium-native.png') });
    await page.click('#hangup');
    const ended = await native.waitFor((e) => e.event === 'ended');
    assert.equal(await native.exited, 0);
    assert.equal(ended.counters.frames_failed, 0, JSON.stringify(ended));
    assert.ok(readWav(out).length > 48000);
  } finally {
    for (const c of closers) await c();
  }
});
