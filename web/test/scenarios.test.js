// The shared scenarios (tests/vectors/scenarios.json) in the browser's cores: the same steps,
// the same things told to each person, as room.rs's run of the same file. Run with
// `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { World } from './world.js';

const { scenarios } = JSON.parse(readFileSync(new URL('../../tests/vectors/scenarios.json', import.meta.url)));

/** Runs one step; returns after the world settled. */
async function step(w, group, s) {
  const times = s.times ?? 1;
  for (let i = 0; i < times; i++) {
    if (s.join) w.join(s.join, group);
    else if (s['hang-up']) await w.hangUp(s['hang-up']);
    else if (s['lose-relay']) w.loseRelay(s['lose-relay']);
    else if (s['relay-back']) w.people.get(s['relay-back']).core.relayOpened();
    else if (s['relay-refuses']) w.people.get(s['relay-refuses']).core.reconnectFailed();
    else if (s.connection) {
      const [who, other, state] = s.connection;
      w.people.get(who).core.pairConnectionState(other, state, w.now);
    } else if (s.forge) {
      const [to, from] = s.forge;
      w.inFlight.push([to, { type: 'signal', from, bytes: Uint8Array.of(0x09) }]);
    } else if (s['forge-commit']) {
      const [to, from] = s['forge-commit'];
      const commit = new Uint8Array(33);
      commit[0] = 0x01;
      w.inFlight.push([to, { type: 'signal', from, bytes: commit }]);
    } else if (s['relay-says']) w.inFlight.push([s['relay-says'].to, s['relay-says'].message]);
    else if (s.hold) w.hold(s.hold);
    else if (s.release) w.release(s.release);
    else if (s.tick !== undefined) w.tick(s.tick);
    else throw new Error(`unknown step ${JSON.stringify(s)}`);
    await w.settle();
  }
}

function check(w, expect, at) {
  for (const [id, p] of w.people) {
    const want = expect[id] ?? { events: [] };
    assert.deepEqual(p.events.splice(0), want.events, `${at}: what ${id} was told`);
    if (want.pairs) assert.deepEqual([...p.core.pairs.keys()].sort(), want.pairs, `${at}: ${id}'s pairs`);
    if (want.connected) {
      const connected = [...p.pairs].filter(([, s]) => s.connected).map(([other]) => other).sort();
      assert.deepEqual(connected, want.connected, `${at}: whom ${id} is connected to`);
      // Every two connected people show one code and share keys.
      w.assertPairsWork([id]);
      for (const other of connected) if (w.people.get(other).pairs.get(id)?.connected) w.assertPairsWork([id, other]);
    }
  }
  for (const id of Object.keys(expect)) assert.ok(w.people.has(id), `${at}: ${id} never joined`);
}

for (const scenario of scenarios) {
  test(`scenario: ${scenario.name}`, async () => {
    const w = new World(scenario.capacity ?? 6);
    let expects = 0;
    for (const [i, s] of scenario.steps.entries()) {
      if (s.expect) check(w, s.expect, `step ${i + 1} (expect ${++expects})`);
      else await step(w, scenario.group, s);
    }
    assert.ok(expects > 0, 'a scenario checks something');
  });
}

test('the scenarios cover every step and event they define, and a wrong expectation fails', async () => {
  const file = JSON.parse(readFileSync(new URL('../../tests/vectors/scenarios.json', import.meta.url)));
  const used = new Set(scenarios.flatMap((s) => s.steps.flatMap((x) => Object.keys(x))));
  for (const kind of Object.keys(file._about.steps)) assert.ok(used.has(kind), `no scenario uses ${kind}`);
  const told = new Set(scenarios.flatMap((s) => s.steps.flatMap((x) => Object.values(x.expect ?? {}).flatMap((p) => p.events.map((e) => e[0])))));
  for (const kind of Object.keys(file._about.events)) assert.ok(told.has(kind), `no scenario expects ${kind}`);
  // The first scenario with its first expectation changed.
  const w = new World();
  await step(w, null, { join: 'A' });
  assert.throws(() => check(w, { A: { events: [['found', 'B', 'offerer']] } }, 'changed'), /what A was told/);
});
