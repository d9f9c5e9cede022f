// The room's rules (room-core.js) with the pairs' protocol (pair.js), no I/O: a relay stand-in
// with the real relay's rules joins whole rooms of two and three people.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomCore } from '../room-core.js';
import { hex } from '../crypto/bytes.js';
import { World } from './world.js';

test('two people on a one-to-one link connect with one safety code', async () => {
  const w = new World();
  const a = w.join('A', null);
  await w.settle();
  assert.ok(a.log.some((x) => x.type === 'state' && x.state === 'waiting-for-peer'));
  w.join('B', null);
  await w.settle();
  w.assertPairsWork(['A', 'B']);
  assert.deepEqual(a.log.find((x) => x.type === 'join'), { type: 'join', max: null });
});

test('three people in a group: a pair each, its own keys and code; a fourth is refused', async () => {
  const w = new World();
  for (const id of ['A', 'B', 'C']) {
    w.join(id, 3);
    await w.settle();
  }
  w.assertPairsWork(['A', 'B', 'C']);
  const keysAB = hex(w.people.get('A').pairs.get('B').keys.media.send);
  const keysAC = hex(w.people.get('A').pairs.get('C').keys.media.send);
  assert.notEqual(keysAB, keysAC);
  const d = w.join('D', 3);
  await w.settle();
  assert.equal(d.ended?.reason, 'this call already has all its people (room full)');
});

test('in a group, one who hangs up is gone for the others, who go on; a newcomer meets everyone', async () => {
  const w = new World();
  for (const id of ['A', 'B', 'C']) {
    w.join(id, 4);
    await w.settle();
  }
  const c = w.people.get('C');
  await Promise.all([...c.pairs.values()].map((s) => s.pair.hangUp()));
  c.core.end('you hung up', false);
  await w.settle();
  for (const id of ['A', 'B']) {
    const p = w.people.get(id);
    assert.ok(p.log.some((x) => x.type === 'peer-gone' && x.peer === 'C' && x.end === 'hung-up'), id);
    assert.equal(p.ended, null);
    assert.ok(!p.pairs.has('C'));
  }
  w.assertPairsWork(['A', 'B']);
  w.join('D', 4);
  await w.settle();
  w.assertPairsWork(['A', 'B', 'D']);
});

test('one-to-one: the other hanging up ends the call; a third person is refused', async () => {
  const w = new World(6);
  const a = w.join('A', null);
  await w.settle();
  w.join('B', null);
  await w.settle();
  a.core.relayMessage({ type: 'peer-joined', peer: 'X' });
  assert.deepEqual(a.ended, { type: 'ended', reason: 'a third person joined this call', error: true, kind: 'protocol-violation' });
  const w2 = new World(6);
  const c = w2.join('C', null);
  await w2.settle();
  const d = w2.join('D', null);
  await w2.settle();
  await d.pairs.get('C').pair.hangUp();
  await w2.settle();
  assert.deepEqual(c.ended, { type: 'ended', reason: 'the other side hung up', error: false, kind: 'peer-hung-up' });
});

test('someone who leaves before connecting is waited for; one who only lost the relay stays', async () => {
  const core = (group) => {
    const log = [];
    const c = new RoomCore({ group, output: (a) => log.push(a) });
    c.relayOpened();
    c.relayMessage({ type: 'welcome', you: 'me', peers: [], ice: [] });
    return { c, log };
  };
  const { c, log } = core(null);
  c.relayMessage({ type: 'peer-joined', peer: 'P' });
  c.relayMessage({ type: 'peer-left', peer: 'P' });
  assert.deepEqual(log.slice(-3), [{ type: 'close-pair', peer: 'P' }, { type: 'peer-left', peer: 'P' }, { type: 'state', state: 'waiting-for-peer' }]);
  c.relayMessage({ type: 'peer-joined', peer: 'Q' });
  c.pairConnected('Q');
  c.relayMessage({ type: 'peer-left', peer: 'Q' });
  assert.deepEqual(log.at(-1), { type: 'peer-lost-relay', peer: 'Q' });
  // Back with a new id (a reload): a new pair replaces the old one.
  c.relayMessage({ type: 'peer-joined', peer: 'Q2' });
  assert.deepEqual(log.slice(-2), [{ type: 'close-pair', peer: 'Q' }, { type: 'open-pair', peer: 'Q2', role: 'offerer', remade: false }]);
  // A lost relay with no one connected is tried again; a stale place is tried again too.
  c.relayClosed();
  assert.deepEqual(log.slice(-2), [{ type: 'close-pair', peer: 'Q2' }, { type: 'reconnect', attempt: 1, delayMs: 500 }]);
  c.relayOpened();
  c.relayMessage({ type: 'error', code: 'room-full' });
  assert.deepEqual(log.slice(-2), [{ type: 'drop-relay' }, { type: 'reconnect', attempt: 2, delayMs: 1000 }]);
  assert.equal(c.ended, false);
});

test('a group link too large for the relay ends with the relay\'s reason', () => {
  const log = [];
  const c = new RoomCore({ group: 8, output: (a) => log.push(a) });
  c.relayOpened();
  assert.deepEqual(log[0], { type: 'join', max: 8 });
  c.relayMessage({ type: 'error', code: 'group-too-large', message: 'at most 6 people' });
  assert.deepEqual(log.at(-1), { type: 'ended', reason: 'this relay does not hold calls that large: at most 6 people', error: true, kind: 'relay-error:group-too-large' });
});

test('a relay that cannot reach the room store it shares with other relays is tried again, as a lost one is', () => {
  const log = [];
  const c = new RoomCore({ group: null, output: (a) => log.push(a) });
  c.relayOpened();
  c.relayMessage({ type: 'error', code: 'unavailable', message: 'try again shortly' });
  assert.deepEqual(log.slice(-2), [{ type: 'drop-relay' }, { type: 'reconnect', attempt: 1, delayMs: 500 }]);
  assert.equal(c.ended, false);
  // Back, and this time let in.
  c.relayOpened();
  c.relayMessage({ type: 'welcome', you: 'P', peers: [], max: 2 });
  assert.deepEqual(log.at(-1), { type: 'state', state: 'waiting-for-peer' });
  // In a room, the error changes nothing: the close that follows does.
  c.relayMessage({ type: 'error', code: 'unavailable' });
  assert.equal(c.ended, false);
});
