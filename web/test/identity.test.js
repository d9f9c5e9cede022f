// Known devices (crypto/identity.js) against the shared vectors (tests/vectors/sotto-v1.json,
// made by the Rust e2ee crate from RFC 8032 §7.1 TESTs 1 and 2's keys): the same signatures,
// each verified, and what must be refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromHex, hex } from '../crypto/bytes.js';
import { IdentityRefused, generateDeviceKey, importDeviceSeed, signIdentity, verifyIdentity } from '../crypto/identity.js';

const v1 = JSON.parse(readFileSync(new URL('../../tests/vectors/sotto-v1.json', import.meta.url)));
const th = fromHex(v1.handshake.transcript_hash);

test('both devices sign this handshake exactly as the vectors say, and each verifies', async () => {
  assert.equal(v1.identity.signed, hex(new TextEncoder().encode('sotto v1 identity')) + v1.handshake.transcript_hash);
  for (const side of ['offerer', 'answerer']) {
    const privateKey = await importDeviceSeed(fromHex(v1.inputs[`device_seed_${side}`]));
    const publicKey = await crypto.subtle.importKey('raw', fromHex(v1.identity[side].key), { name: 'Ed25519' }, true, ['verify']);
    const { key, sig } = await signIdentity({ privateKey, publicKey }, th);
    assert.equal(hex(key), v1.identity[side].key, side);
    assert.equal(hex(sig), v1.identity[side].sig, side);
    assert.equal(hex(await verifyIdentity(key, sig, th)), v1.identity[side].key);
  }
});

test('another call, a wrong length, a swapped key or a changed bit is refused', async () => {
  const { key, sig } = v1.identity.offerer;
  const [k, s] = [fromHex(key), fromHex(sig)];
  const refused = (why) => (e) => e instanceof IdentityRefused && e.message === why;
  const otherTh = th.slice();
  otherTh[0] ^= 1;
  await assert.rejects(verifyIdentity(k, s, otherTh), refused('the device signature does not verify'));
  await assert.rejects(verifyIdentity(k.subarray(1), s, th), refused('a device key is 32 bytes'));
  await assert.rejects(verifyIdentity(k, s.subarray(1), th), refused('a device signature is 64 bytes'));
  await assert.rejects(verifyIdentity(fromHex(v1.identity.answerer.key), s, th), refused('the device signature does not verify'));
  const flipped = s.slice();
  flipped[10] ^= 0x40;
  await assert.rejects(verifyIdentity(k, flipped, th), refused('the device signature does not verify'));
});

test('what the shared vectors say the answerer refuses is refused, for the same reason', async () => {
  assert.ok(v1.identity.refused_by_answerer.length >= 5);
  for (const { key, sig, refused: why } of v1.identity.refused_by_answerer) {
    await assert.rejects(verifyIdentity(fromHex(key), fromHex(sig), th), (e) => e instanceof IdentityRefused && e.message === why, why);
  }
});

test('a fresh device key signs and verifies, and its private half cannot be exported', async () => {
  const device = await generateDeviceKey();
  assert.equal(device.privateKey.extractable, false);
  const { key, sig } = await signIdentity(device, th);
  assert.equal(key.length, 32);
  assert.deepEqual(await verifyIdentity(key, sig, th), key);
  await assert.rejects(crypto.subtle.exportKey('pkcs8', device.privateKey));
});
