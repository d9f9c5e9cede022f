// A laptop lid closed: a whole browser (Chromium or Firefox, every process of it) is stopped
// with SIGSTOP for longer than ICE takes to give up and than the relay's keepalive, then woken
// with SIGCONT. The call is made whole again within seconds of waking (PROTOCOL.md §3.3 "A
// connection that drops"): one-to-one with a terminal, and in a mesh group with two terminals.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, KINDS, launchChromium, launchFirefox, nativeCall, newSecret, openPage, startRelay, toneMicrophone, waitFn, waitForEvent } from './harness.js';

/** The freeze: longer than ICE's failure timeout (25-30 s in both stacks). */
const FROZEN_MS = 30_000;

let relay;
before(async () => {
  // The relay gives up a silent connection after 4 s here (2 s to its ping, 2 s for the
  // answer): the frozen browser is dropped from the room, as after 40 s with the defaults.
  relay = await startRelay('127.0.0.1:0', ['--ping-interval', '2s', '--pong-timeout', '2s']);
});
after(() => relay?.stop());

/** A browser of its own, so that stopping it stops nothing else, and its main process: the
 *  browser among this test's children that appeared with it. */
async function ownBrowser(kind) {
  const before = new Set(children(process.pid).map(([p]) => p));
  const browser = kind === 'chromium' ? await launchChromium() : await launchFirefox();
  const [pid] = children(process.pid)
    .filter(([p, name]) => !before.has(p) && /chrom|firefox/i.test(name))
    .map(([p]) => p);
  assert.ok(pid, `the ${kind} process`);
  return { browser, pid };
}

/** [pid, command name] of the processes whose parent is `pid`. */
function children(pid) {
  const ps = execFileSync('ps', ['-e', '-o', 'pid=', '-o', 'ppid=', '-o', 'comm='], { encoding: 'utf8' });
  return ps
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid]) => Number(ppid) === pid)
    .map(([p, , ...name]) => [Number(p), name.join(' ')]);
}

/** Stops or wakes a browser: its main process and every process below it. */
function signalGroup(pid, sig) {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]).map(([p]) => p));
  for (const p of all) {
    try {
      process.kill(p, sig);
    } catch {
      // Gone meanwhile (a helper process that exited).
    }
  }
}

/** A WAV file for a terminal's sound (there are no speakers here). */
const wav = () => path.join(mkdtempSync(path.join(tmpdir(), 'sotto-freeze-')), 'heard.wav');

const count = (page, match) => page.evaluate((m) => window.sotto.events.filter((e) => Object.entries(m).every(([k, v]) => e[k] === v)).length, match);

for (const kind of KINDS) {
  test(`${kind} frozen past the ICE timeout in a one-to-one call with a terminal: on waking it says so and the two meet again, a new code on both`, async () => {
    const { browser, pid } = await ownBrowser(kind);
    const link = `http://${relay.addr}/#${newSecret()}`;
    const term = nativeCall(link, ['--tone', '440', '--output', wav()]);
    try {
      await term.waitFor((e) => e.state === 'waiting-for-peer');
      // A steady tone (a browser's fake microphone is mostly silence, which Opus hardly sends).
      const page = await openPage(browser, link, { init: toneMicrophone, initArg: 880 });
      await waitForEvent(page, { state: 'connected' }, 30000);
      await term.waitFor((e) => e.state === 'receiving-audio');
      const codes = await count(page, { type: 'sas' });
      const before = term.events.length;

      const frozen = Date.now();
      signalGroup(pid, 'SIGSTOP');
      // The terminal gives the page up meanwhile and waits for it.
      await term.waitFor((e) => term.events.indexOf(e) >= before && e.state === 'waiting-for-peer', FROZEN_MS);
      // The freeze itself is what is tested: it lasts its time whatever the terminal does.
      await new Promise((r) => setTimeout(r, Math.max(0, FROZEN_MS - (Date.now() - frozen))));
      const after = term.events.length;
      signalGroup(pid, 'SIGCONT');
      const woke = Date.now();

      await waitForEvent(page, { type: 'peer-dropped' }, 20000);
      await page.screenshot({ path: path.join(ARTIFACTS, `browser-dropped-${kind}.png`) });
      const sas = await term.waitFor((e) => term.events.indexOf(e) >= after && e.event === 'sas', 20000);
      await waitFn(page, (n) => window.sotto.events.filter((e) => e.type === 'sas').length > n, codes, { timeout: 20000 });
      const pageCode = await page.evaluate(() => window.sotto.events.filter((e) => e.type === 'sas').at(-1).code);
      assert.equal(pageCode, sas.code, 'one new code on both sides');
      // Sound from the page again, and the page says it is connected.
      await term.waitFor((e) => term.events.indexOf(e) >= after && e.state === 'receiving-audio', 20000);
      await waitFn(page, () => document.getElementById('status').textContent === 'Connected', null, { timeout: 20000 });
      console.log(`# ${kind}: whole again ${((Date.now() - woke) / 1000).toFixed(1)} s after waking`);
    } finally {
      signalGroup(pid, 'SIGCONT');
      term.child.kill();
      await browser.close();
    }
  });
}

for (const kind of KINDS) {
  test(`${kind} frozen in a mesh group of three with two terminals: on waking it meets both again, and the terminals never lost each other`, async () => {
    const { browser, pid } = await ownBrowser(kind);
    const link = `http://${relay.addr}/#${newSecret()}.3`;
    const ada = nativeCall(link, ['--tone', '440', '--name', 'Ada', '--output', wav()]);
    let bea = null;
    try {
      await ada.waitFor((e) => e.state === 'waiting-for-peer');
      bea = nativeCall(link, ['--tone', '660', '--name', 'Bea', '--output', wav()]);
      const page = await openPage(browser, link, { init: toneMicrophone, initArg: 880 });
      // Everyone connected with everyone.
      for (const t of [ada, bea]) await t.waitFor(() => t.events.filter((e) => e.event === 'state' && e.state === 'connected' && e.peer).length >= 2);
      await waitFn(page, () => window.sotto.events.filter((e) => e.type === 'state' && e.state === 'connected' && e.peer).length >= 2, null, { timeout: 30000 });
      const [adaBefore, beaBefore] = [ada.events.length, bea.events.length];

      const frozen = Date.now();
      signalGroup(pid, 'SIGSTOP');
      for (const [t, n] of [[ada, adaBefore], [bea, beaBefore]]) {
        await t.waitFor((e) => t.events.indexOf(e) >= n && e.event === 'peer-gone', FROZEN_MS);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, FROZEN_MS - (Date.now() - frozen))));
      const [adaAfter, beaAfter] = [ada.events.length, bea.events.length];
      signalGroup(pid, 'SIGCONT');

      await waitForEvent(page, { type: 'peer-dropped' }, 20000);
      // Both terminals meet the woken page as a newcomer: two tiles again, each with its code.
      await waitFn(page, () => {
        const tiles = [...document.querySelectorAll('#tiles .tile')];
        return tiles.length === 2 && tiles.every((t) => t.querySelector('.code').textContent !== '');
      }, null, { timeout: 20000, polling: 250 }).catch(async () => {
        throw new Error(`the page did not meet both again: ${JSON.stringify(await page.evaluate(() => window.sotto.events.slice(-20)))}`);
      });
      // Each terminal meets the page again: a new code with it.
      for (const [t, n] of [[ada, adaAfter], [bea, beaAfter]]) {
        await t.waitFor((e) => t.events.indexOf(e) >= n && e.event === 'sas', 20000);
      }
      // Ada and Bea never lost each other: neither was told the other went, both still run.
      const idOf = (t, name) => t.events.find((e) => e.event === 'name' && e.name === name)?.peer;
      const [beaAtAda, adaAtBea] = [idOf(ada, 'Bea'), idOf(bea, 'Ada')];
      assert.ok(beaAtAda && adaAtBea, 'the terminals know each other by name');
      assert.equal(ada.events.filter((e) => e.event === 'peer-gone' && e.peer === beaAtAda).length, 0);
      assert.equal(bea.events.filter((e) => e.event === 'peer-gone' && e.peer === adaAtBea).length, 0);
      assert.equal(ada.child.exitCode, null);
      assert.equal(bea.child.exitCode, null);
    } finally {
      signalGroup(pid, 'SIGCONT');
      ada.child.kill();
      bea?.child.kill();
      await browser.close();
    }
  });
}
