// One pair's protocol (pair.js) with no I/O: two Pairs joined back to back, as the relay and two
// peer connections would join them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pair, SETUP_TIMEOUT_MS } from '../pair.js';
import { cleanName } from '../peer-signal.js';
import { b64u, hex } from '../crypto/bytes.js';
import { generateDeviceKey, signIdentity } from '../crypto/identity.js';

const secret = new Uint8Array(32).fill(7);
const sdp = (who) => `v=0\r\na=fingerprint:sha-256 ${Array.from({ length: 32 }, (_, i) => ((i * 7 + who.length * 13) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':')}\r\n`;

/** O and A, each with a log of what it asked for; `deliver` carries what they send. */
function pairOf(names = {}, devices = {}) {
  const sides = {};
  for (const [name, role] of [['o', 'offerer'], ['a', 'answerer']]) {
    const log = [];
    const side = { log, sent: [], keys: null, ended: null };
    side.pair = new Pair({
      secret,
      peer: name === 'o' ? 'peer-a' : 'peer-o',
      role,
      now: 0,
      name: names[name] ?? null,
      device: devices[name] ?? null,
      output: (x) => {
        log.push(x);
        if (x.type === 'send') side.sent.push(x.bytes);
        if (x.type === 'keys') side.keys = x;
        if (x.type === 'ended') side.ended = x;
        // The shell's part, as PeerCall does it.
        if (x.type === 'create-offer') queueMicrotask(() => side.pair.offerCreated(sdp('offer-of-o')));
        if (x.type === 'create-answer') queueMicrotask(() => side.pair.answerCreated(sdp('answer-of-a!')));
        return undefined;
      },
    });
    sides[name] = side;
  }
  return sides;
}

/** Delivers everything sent, both ways, until nothing more is. */
async function deliver({ o, a }) {
  for (;;) {
    await Promise.all([o.pair.queue, a.pair.queue]);
    await new Promise((r) => setTimeout(r, 0));
    await Promise.all([o.pair.queue, a.pair.queue]);
    if (o.sent.length === 0 && a.sent.length === 0) return;
    for (const b of o.sent.splice(0)) a.pair.receive(b);
    for (const b of a.sent.splice(0)) o.pair.receive(b);
  }
}

test('two pairs back to back agree: one safety code, each one\'s send key the other\'s receive key', async () => {
  const s = pairOf();
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  await deliver(s);
  const code = (side) => side.log.find((x) => x.type === 'sas')?.code;
  assert.match(code(s.o), /^\d{6}$/);
  assert.equal(code(s.o), code(s.a));
  assert.equal(hex(s.o.keys.media.send), hex(s.a.keys.media.receive));
  assert.equal(hex(s.a.keys.media.send), hex(s.o.keys.media.receive));
  assert.equal(hex(s.o.keys.data.send), hex(s.a.keys.data.receive));
  assert.notEqual(hex(s.o.keys.media.send), hex(s.o.keys.media.receive));
  // O applies A's answer; A answered O's offer.
  assert.equal(s.o.log.find((x) => x.type === 'accept-answer')?.sdp, sdp('answer-of-a!'));
  assert.equal(s.a.log.find((x) => x.type === 'create-answer')?.sdp, sdp('offer-of-o'));
  // Candidates flow sealed; a bye ends the other side's pair as hung up.
  s.o.pair.localCandidate({ candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
  await deliver(s);
  assert.deepEqual(s.a.log.find((x) => x.type === 'add-candidate')?.candidate, { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
  await s.o.pair.hangUp();
  await deliver(s);
  assert.deepEqual(s.a.ended, { type: 'ended', end: 'hung-up', reason: 'the other side hung up' });
});

test('names travel sealed after the offer or answer and arrive cleaned; too long is ignored', async () => {
  const s = pairOf({ o: ' Ada\u001b[31m\u0085 ', a: 'é'.repeat(33) });
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  await deliver(s);
  assert.deepEqual(s.a.log.filter((x) => x.type === 'name'), [{ type: 'name', name: 'Ada[31m' }]);
  // A's name is 66 bytes: it never leaves A.
  assert.deepEqual(s.o.log.filter((x) => x.type === 'name'), []);
  // Sent anyway by a peer that ignores the rule, or not a string: ignored; the pair goes on.
  await s.o.pair.seal({ t: 'hello', name: 'é'.repeat(33) });
  await s.o.pair.seal({ t: 'hello', name: 7 });
  await s.o.pair.seal({ t: 'hello', name: 'Grace' });
  await deliver(s);
  assert.deepEqual(s.a.log.filter((x) => x.type === 'name').map((x) => x.name), ['Ada[31m', 'Grace']);
  assert.equal(s.a.ended, null);
  assert.equal(cleanName('\u0007\t '), null);
  assert.equal(cleanName('Zoë 🎧'), 'Zoë 🎧');
});

test('a pair still setting up at its deadline is given up; a connected one never', async () => {
  const s = pairOf();
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  s.o.pair.tick(SETUP_TIMEOUT_MS - 1);
  assert.equal(s.o.ended, null);
  s.o.pair.tick(SETUP_TIMEOUT_MS);
  assert.equal(s.o.ended?.end, 'timed-out');
  assert.match(s.o.ended.reason, /within 30 s/);
  s.a.pair.connectedNow();
  s.a.pair.tick(10 * SETUP_TIMEOUT_MS);
  assert.equal(s.a.ended, null);
});

test('bytes the handshake refuses end the pair as tampered, and nothing comes after', async () => {
  const s = pairOf();
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  await s.o.pair.receive(new Uint8Array([0x02, 1, 2, 3]));
  assert.equal(s.o.ended?.end, 'tampered');
  const after = s.o.log.length;
  await s.o.pair.receive(new Uint8Array(33).fill(2));
  s.o.pair.tick(SETUP_TIMEOUT_MS);
  assert.equal(s.o.log.length, after);
});

const identities = (side) => side.log.filter((x) => x.type === 'identity').map((x) => (x.key ? hex(x.key) : null));
const publicKey = async (device) => hex(new Uint8Array(await crypto.subtle.exportKey('raw', device.publicKey)));

test('each device signs its pair\'s transcript after the offer or answer; one sent none, known at its first candidate', async () => {
  const device = await generateDeviceKey();
  const s = pairOf({ o: 'Ada' }, { o: device });
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  await deliver(s);
  // A verified O's device over their shared transcript (after O's hello).
  assert.deepEqual(identities(s.a), [await publicKey(device)]);
  // A is incognito: O does not know yet that nothing comes, until A's first candidate.
  assert.deepEqual(identities(s.o), []);
  s.a.pair.localCandidate({ candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 });
  await deliver(s);
  assert.deepEqual(identities(s.o), [null]);
  // Told once: the connection coming adds nothing.
  s.o.pair.connectedNow();
  await deliver(s);
  assert.deepEqual(identities(s.o), [null]);
  assert.equal(s.o.ended, null);
});

test('the connection coming before any identity says none was sent', async () => {
  const s = pairOf();
  await Promise.all([s.o.pair.start(), s.a.pair.start()]);
  await deliver(s);
  s.a.pair.connectedNow();
  await deliver(s);
  assert.deepEqual(identities(s.a), [null]);
});

test('a second identity, another call\'s signature or a key of the wrong length is tampering', async () => {
  const device = await generateDeviceKey();
  const other = pairOf();
  await Promise.all([other.o.pair.start(), other.a.pair.start()]);
  await deliver(other);
  const elsewhere = await signIdentity(device, other.o.pair.hs.transcriptHash);
  const cases = [
    ['a second device identity', async (o) => signIdentity(device, o.pair.hs.transcriptHash).then((id) => ({ t: 'identity', key: b64u(id.key), sig: b64u(id.sig) }))],
    ['the device signature does not verify', async () => ({ t: 'identity', key: b64u(elsewhere.key), sig: b64u(elsewhere.sig) })],
    ['a device key is 32 bytes', async () => ({ t: 'identity', key: b64u(elsewhere.key.slice(1)), sig: b64u(elsewhere.sig) })],
    ['the device signature is not base64url', async () => ({ t: 'identity', key: b64u(elsewhere.key), sig: 'AB=' })],
  ];
  for (const [why, message] of cases) {
    const s = pairOf({}, { o: why === 'a second device identity' ? device : null });
    await Promise.all([s.o.pair.start(), s.a.pair.start()]);
    await deliver(s);
    await s.o.pair.seal(await message(s.o));
    await deliver(s);
    assert.equal(s.a.ended?.end, 'tampered', why);
    assert.equal(s.a.ended.reason, `call set-up tampered with: ${why}`);
  }
});
