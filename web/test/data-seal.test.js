// The data channel's sealing (PROTOCOL.md §3.6) when many messages are in flight at once:
// opening starts as each message arrives, results come out in arrival order, and nothing
// after the first message that fails is ever handed out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataSeal, DataTampered } from '../crypto/data.js';

async function pair() {
  const room = crypto.getRandomValues(new Uint8Array(16));
  const [k1, k2] = [crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(32))];
  const tx = await DataSeal.create(room, { send: k1.slice(), receive: k2.slice() });
  const rx = await DataSeal.create(room, { send: k2.slice(), receive: k1.slice() });
  return { tx, rx };
}

const settle = (promises) => Promise.allSettled(promises);
const plain = (i) => new Uint8Array([0x01, i, i, i]);

test('messages sealed and opened all at once come out in order', async () => {
  const { tx, rx } = await pair();
  const sealed = await Promise.all(Array.from({ length: 20 }, (_, i) => tx.seal(plain(i))));
  const opened = await Promise.all(sealed.map((m) => rx.open(m)));
  assert.deepEqual(opened, Array.from({ length: 20 }, (_, i) => plain(i)));
});

test('a tampered message in the middle of many in flight: those before open, none after', async () => {
  const { tx, rx } = await pair();
  const sealed = await Promise.all(Array.from({ length: 6 }, (_, i) => tx.seal(plain(i))));
  sealed[3][12] ^= 1; // a ciphertext byte
  const results = await settle(sealed.map((m) => rx.open(m)));
  assert.deepEqual(
    results.slice(0, 3).map((r) => r.value),
    [0, 1, 2].map(plain),
  );
  for (const r of results.slice(3)) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof DataTampered);
  }
  assert.match(results[3].reason.message, /failed authentication/);
  // And later ones, arriving afterwards, too.
  await assert.rejects(rx.open(await tx.seal(plain(9))), DataTampered);
});

test('a message out of sequence among many in flight ends the channel there', async () => {
  const { tx, rx } = await pair();
  const sealed = await Promise.all(Array.from({ length: 4 }, (_, i) => tx.seal(plain(i))));
  const results = await settle([sealed[0], sealed[2], sealed[1], sealed[3]].map((m) => rx.open(m)));
  assert.deepEqual(results[0].value, plain(0));
  assert.match(results[1].reason.message, /out of sequence/);
  for (const r of results.slice(1)) assert.ok(r.reason instanceof DataTampered);
});
