// The conference's layer around MLS (PROTOCOL.md §7) against tests/vectors/sotto-v2.json, which
// the Rust crate generates and checks: the same secrets, sealed bytes and group codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromHex, hex } from '../crypto/bytes.js';
import { ConferenceKeys, GroupTampered, groupCode } from '../crypto/conference.js';

const v2 = JSON.parse(readFileSync(new URL('../../tests/vectors/sotto-v2.json', import.meta.url)));
const secret = fromHex(v2.inputs.secret);

test('the PSK id and PSK derive from the link as the vectors say', async () => {
  const k = await ConferenceKeys.derive(secret);
  assert.equal(hex(k.pskId), v2.keys.psk_id);
  assert.equal(hex(k.psk), v2.keys.psk);
});

test('every vector seals to the same bytes and opens back to its message', async () => {
  const k = await ConferenceKeys.derive(secret);
  assert.equal(v2.sealed.length, 4);
  for (const [i, t] of v2.sealed.entries()) {
    const input = v2.inputs.sealed[i];
    const sealed = await k.seal(t.kind, BigInt(t.epoch), fromHex(t.sender), fromHex(input.message), fromHex(input.nonce));
    assert.equal(hex(sealed), t.sealed, `${t.kind}`);
    assert.equal(hex(await k.open(t.kind, BigInt(t.epoch), fromHex(t.sender), fromHex(t.sealed))), input.message);
  }
});

test('a sealed message presented as another kind, epoch or sender, altered or cut, does not open', async () => {
  const k = await ConferenceKeys.derive(secret);
  assert.equal(v2.sealed_refused.length, 6);
  for (const t of v2.sealed_refused) {
    await assert.rejects(k.open(t.kind, BigInt(t.epoch), fromHex(t.sender), fromHex(t.sealed)), GroupTampered, t.why);
  }
  // Another link's secret.
  const other = await ConferenceKeys.derive(new Uint8Array(32).fill(7));
  const t = v2.sealed[0];
  await assert.rejects(other.open(t.kind, 0n, fromHex(t.sender), fromHex(t.sealed)), GroupTampered);
});

test('the group code is the vectors\' 30 digits, shown in six groups of five', async () => {
  assert.equal(v2.group_codes.length, 3);
  for (const t of v2.group_codes) {
    assert.deepEqual(await groupCode(fromHex(t.epoch_authenticator)), { digits: t.digits, shown: t.shown });
  }
});
