// A conference member's media frames (PROTOCOL.md §7.6): web/crypto/sframe.js's conference KID
// layout and ConferenceFrames against tests/vectors/sotto-v2.json and the receiver's rules,
// the same as sotto-e2ee's conference/frames.rs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromHex, hex } from '../crypto/bytes.js';
import { ConferenceFrames, FrameEncryptor, PREVIOUS_EPOCH_KEPT_MS, STREAM, conferenceLayout, importBaseKey } from '../crypto/sframe.js';

const v2 = JSON.parse(readFileSync(new URL('../../tests/vectors/sotto-v2.json', import.meta.url)));
const OPUS = new TextEncoder().encode('\x78opus payload');

const sender = async (b, leaf, epoch, stream = STREAM.audio, generation = 0n) => new FrameEncryptor(await importBaseKey(new Uint8Array(16).fill(b)), null, stream, generation, conferenceLayout(stream, leaf, epoch));
const base = (b) => importBaseKey(new Uint8Array(16).fill(b));
const members = [
  { leaf: 0, id: 'ada' },
  { leaf: 1, id: 'bea' },
  { leaf: 2, id: 'cy' },
];
const fault = async (promise) => {
  try {
    await promise;
  } catch (e) {
    return e.fault;
  }
  return 'opened';
};

test('conference frames match the vectors and open for a member of their epoch', async () => {
  assert.equal(v2.frames.length, 4);
  for (const [i, f] of v2.frames.entries()) {
    const input = v2.inputs.frames[i];
    const stream = STREAM[input.stream];
    const key = await importBaseKey(fromHex(input.base_key));
    const enc = new FrameEncryptor(key, null, stream, BigInt(input.generation), conferenceLayout(stream, input.leaf, input.epoch));
    enc.ctr = BigInt(input.ctr);
    assert.equal(hex(await enc.encrypt(fromHex(input.frame))), f.sealed, `frame ${i}`);
    const rx = new ConferenceFrames();
    rx.setEpoch(input.epoch, key, [{ leaf: input.leaf, id: 'them' }, { leaf: 256, id: 'me' }], 256, 0);
    const got = await rx.open(stream, fromHex(f.sealed), 0);
    assert.equal(got.sender, 'them');
    assert.equal(hex(got.frame), input.frame);
    const layout = conferenceLayout(stream, input.leaf, input.epoch);
    assert.equal((BigInt(input.generation) << layout.shift) | layout.low, BigInt(f.kid));
  }
});

test('frames of no member, of another stream or of an epoch not held are refused', async () => {
  const rx = new ConferenceFrames();
  rx.setEpoch(7, await base(7), members, 2, 0);
  assert.equal(await fault(rx.open(STREAM.audio, await (await sender(7, 3, 7)).encrypt(OPUS), 0)), 'unknown-sender');
  assert.equal(await fault(rx.open(STREAM.audio, await (await sender(7, 2, 7)).encrypt(OPUS), 0)), 'unknown-sender');
  const delta = new TextEncoder().encode('\x31\x02\x00delta frame');
  assert.equal(await fault(rx.open(STREAM.video, await (await sender(7, 0, 7)).encrypt(delta), 0)), 'wrong-stream');
  assert.equal(await fault(rx.open(STREAM.audio, await (await sender(8, 0, 8)).encrypt(OPUS), 0)), 'unknown-epoch');
  assert.equal(await fault(rx.open(STREAM.audio, await (await sender(71, 0, 71)).encrypt(OPUS), 0)), 'authentication-failed');
  const ada = await (await sender(7, 0, 7)).encrypt(OPUS);
  assert.equal((await rx.open(STREAM.audio, ada, 0)).sender, 'ada');
  assert.equal(await fault(rx.open(STREAM.audio, ada, 0)), 'replayed');
  assert.throws(() => conferenceLayout(STREAM.audio, 256, 0), /leaf-beyond-kid/);
});

test('the previous epoch opens for ten seconds, a removed member only in it', async () => {
  const rx = new ConferenceFrames();
  rx.setEpoch(7, await base(7), members, 2, 0);
  const beaOld = await sender(7, 1, 7);
  rx.setEpoch(8, await base(8), [members[0], members[2]], 2, 0);
  assert.equal((await rx.open(STREAM.audio, await beaOld.encrypt(OPUS), PREVIOUS_EPOCH_KEPT_MS / 2)).sender, 'bea');
  assert.equal(await fault(rx.open(STREAM.audio, await (await sender(7, 1, 8)).encrypt(OPUS), 0)), 'unknown-sender');
  assert.equal((await rx.open(STREAM.audio, await (await sender(8, 0, 8)).encrypt(OPUS), 0)).sender, 'ada');
  assert.equal(await fault(rx.open(STREAM.audio, await beaOld.encrypt(OPUS), PREVIOUS_EPOCH_KEPT_MS)), 'unknown-epoch');
});
