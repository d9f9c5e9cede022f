// A group call as a mesh, in Debian's Chromium, through the real relay: each participant is a
// browser of its own (as on four computers), all on this machine. Measured, for 2, 3 and 4 people
// in the call: the CPU each participant's browser uses (all its processes: the page's renderer
// encodes its camera once per other person and decodes each of theirs), and its memory (PSS,
// which splits shared pages fairly); and the time from a newcomer pressing Join to the moment
// it decodes video from everyone already there, and everyone from it. Prints one line per
// round per size, and one of medians. Never part of the test suite.
//
//   node bench/group-mesh.mjs RELAY_BIN [ROUNDS] [SECONDS]

import { readFileSync, readdirSync } from 'node:fs';
import { launchChromium, newSecret, probe, startRelay, waitFn, waitForLobby } from '../tests/browser/harness.js';

const [relayBin, roundsArg, secondsArg] = process.argv.slice(2);
if (!relayBin) {
  console.error('usage: node bench/group-mesh.mjs RELAY_BIN [ROUNDS] [SECONDS]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const seconds = Number(secondsArg ?? 15);
const PEOPLE = 4;

/** Every process of this machine: pid -> { ppid, cpu (s), pss (KiB, filled on demand) }. */
function processes() {
  const all = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // state is rest[0], ppid rest[1], utime rest[11], stime rest[12] (USER_HZ = 100).
      all.set(Number(d), { ppid: Number(rest[1]), cpu: (Number(rest[11]) + Number(rest[12])) / 100 });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/** `root` and every process below it. */
function tree(root, all = processes()) {
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, p] of all) if (p.ppid === out[i]) out.push(pid);
  return out.filter((pid) => all.has(pid));
}

const cpuOf = (pids, all) => pids.reduce((s, pid) => s + (all.get(pid)?.cpu ?? 0), 0);

function pssKib(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      sum += Number(m?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

/** A Chromium of its own for one participant, and the pid its processes hang from. */
async function participant() {
  const before = new Set([...processes()].filter(([, p]) => p.ppid === process.pid).map(([pid]) => pid));
  const browser = await launchChromium();
  const root = [...processes()].find(([pid, p]) => p.ppid === process.pid && !before.has(pid))?.[0];
  if (!root) throw new Error('could not find the browser process');
  const page = await (await probe(await browser.newContext({ viewport: { width: 1280, height: 800 } }))).newPage();
  return { browser, root, page };
}

/** Opens `url` on the participant's page and waits until Join can be pressed. */
async function preview(p, url) {
  await p.page.goto(url);
  await waitForLobby(p.page);
}

/** Resolves when the page decodes video from `n` others. */
const seesVideo = (page, n) =>
  waitFn(page, (n) => [...document.querySelectorAll('#tiles .tile video')].filter((v) => v.videoWidth > 0).length >= n, n, { timeout: 60000, polling: 50 });

/** CPU share (cores) and PSS of each participant over `seconds` of the call as it is, and the
 *  frame rate and height of the video each receives at the end. */
async function measure(people) {
  const startAll = processes();
  const trees = people.map((p) => tree(p.root, startAll));
  const start = trees.map((t) => cpuOf(t, startAll));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const endAll = processes();
  const elapsed = (performance.now() - t0) / 1000;
  const video = (await Promise.all(people.map((p) => p.page.evaluate(() => window.__test.videoIn())))).flat();
  return people.map((p, i) => {
    const t = tree(p.root, endAll);
    return { cpu: (cpuOf(t, endAll) - start[i]) / elapsed, pss: pssKib(t), video };
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

process.env.SOTTO_RELAY_BIN = relayBin;
const relay = await startRelay();
const results = { 2: [], 3: [], 4: [], joinSees: [], joinSeen: [] };
try {
  for (let round = 0; round < rounds; round++) {
    const url = `http://${relay.addr}/#${newSecret()}.${PEOPLE}`;
    const people = [];
    try {
      for (let i = 0; i < PEOPLE; i++) people.push(await participant());
      for (let n = 1; n <= PEOPLE; n++) {
        const p = people[n - 1];
        await preview(p, url);
        const joined = performance.now();
        await p.page.click('#join');
        if (n > 1) {
          await seesVideo(p.page, n - 1);
          const sees = performance.now() - joined;
          await Promise.all(people.slice(0, n - 1).map((q) => seesVideo(q.page, n - 1)));
          const seen = performance.now() - joined;
          if (n === PEOPLE) {
            results.joinSees.push(sees);
            results.joinSeen.push(seen);
          }
          // Settle, then measure the call as it is with n people.
          await new Promise((r) => setTimeout(r, 3000));
          const m = await measure(people.slice(0, n));
          results[n].push(...m);
          const fps = median(m[0].video.map((v) => v.fps));
          const height = median(m[0].video.map((v) => v.height));
          console.log(`scenario=group-mesh round=${round + 1} people=${n} cpu=${m.map((x) => x.cpu.toFixed(2)).join(',')} pss_mib=${m.map((x) => (x.pss / 1024).toFixed(0)).join(',')} video_in_fps=${fps} video_in_height=${height} newcomer_sees_ms=${sees.toFixed(0)} everyone_sees_newcomer_ms=${seen.toFixed(0)}`);
          results[`video${n}`] = [...(results[`video${n}`] ?? []), ...m[0].video];
        }
      }
    } finally {
      for (const p of people) await p.browser.close().catch(() => {});
    }
  }
} finally {
  await relay.stop();
}
const summary = [2, 3, 4].map((n) => `people${n}_cpu=${median(results[n].map((x) => x.cpu)).toFixed(2)} people${n}_pss_mib=${(median(results[n].map((x) => x.pss)) / 1024).toFixed(0)} people${n}_fps=${median(results[`video${n}`].map((v) => v.fps))} people${n}_height=${median(results[`video${n}`].map((v) => v.height))}`).join(' ');
console.log(`scenario=group-mesh-summary rounds=${rounds} seconds=${seconds} ${summary} newcomer_sees_ms=${median(results.joinSees).toFixed(0)} everyone_sees_newcomer_ms=${median(results.joinSeen).toFixed(0)}`);
