// Property-based fuzzing of the browser's parsers of bytes from peers (web/), the JavaScript
// side of fuzz/: whatever arrives, each parser returns a typed value or throws its own declared
// error, never anything else (a TypeError would be a crash in the page), and what it accepts
// encodes back to the same bytes. Inputs are random bytes and random mutations of valid
// messages, so the generators reach past the first check. Each property runs for
// SOTTO_FUZZ_SECONDS / 4 seconds at most (the test command sets it, as for cargo fuzz).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../web/crypto/bytes.js';
import * as data from '../../web/crypto/data.js';
import { ConferenceFrames, FrameDecryptor, FrameError, encodeHeader, importBaseKey, parseHeader } from '../../web/crypto/sframe.js';
import { GroupMessageMalformed, parseGroupMessage } from '../../web/group-message.js';
import { Handshake, HandshakeError, keyPairFromPrivate } from '../../web/crypto/handshake.js';
import { LinkError, parseLink } from '../../web/crypto/link.js';
import { ConferenceKeys, GroupTampered } from '../../web/crypto/conference.js';
import { SignalMalformed, decodeSignal } from '../../web/peer-signal.js';
import { RelayMessageMalformed, parseServerMessage } from '../../web/relay-message.js';
import { RoomCore } from '../../web/room-core.js';

const SECONDS = Number(process.env.SOTTO_FUZZ_SECONDS ?? 30);
/** Runs until the budget or the count is spent; a failure is shrunk and reported with its seed. */
const budget = { numRuns: 1_000_000, interruptAfterTimeLimit: (SECONDS * 1000) / 4, markInterruptAsFailure: false };
const quick = { ...budget, interruptAfterTimeLimit: (SECONDS * 1000) / 16 };

/** Bytes: random ones, or a valid message with bytes flipped, cut or added. */
const mutated = (valid) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 8 })).map(
      ([bytes, flips, cut, extra]) => {
        const out = Uint8Array.from(bytes);
        for (const [at, v] of flips) if (out.length) out[at % out.length] = v;
        const kept = out.subarray(0, out.length ? cut % (out.length + 1) : 0);
        return cut % 3 === 0 ? Uint8Array.from([...out, ...extra]) : kept;
      },
    ),
  );

const expectOnly = (ErrorType, f) => {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof ErrorType)) throw new Error(`threw ${e?.name}: ${e?.message}`, { cause: e });
    return undefined;
  }
};

const SIGNALS = [
  '{"t":"offer","sdp":"v=0\\r\\n"}',
  '{"t":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}',
  '{"t":"end-of-candidates"}',
  '{"t":"bye"}',
  '{"t":"hello","name":"Ada"}',
  '{"t":"identity","key":"AAAA","sig":"BBBB"}',
].map(utf8);

test('sealed plaintexts: any bytes or JSON decode to a message, null or SignalMalformed; a message decodes again to itself', () => {
  const anyJson = fc.jsonValue().map((v) => utf8(JSON.stringify(v)));
  const withT = fc
    .record({ t: fc.constantFrom('offer', 'answer', 'candidate', 'end-of-candidates', 'bye', 'hello', 'identity', 'x'), rest: fc.dictionary(fc.constantFrom('sdp', 'candidate', 'sdpMid', 'sdpMLineIndex', 'name', 'key', 'sig'), fc.jsonValue()) })
    .map(({ t, rest }) => utf8(JSON.stringify({ ...rest, t })));
  fc.assert(
    fc.property(fc.oneof(mutated(SIGNALS), anyJson, withT), (bytes) => {
      const m = expectOnly(SignalMalformed, () => decodeSignal(bytes));
      if (m === undefined || m === null) return;
      assert.equal(typeof m.t, 'string');
      assert.deepEqual(decodeSignal(utf8(JSON.stringify(m))), m);
    }),
    budget,
  );
});

const MESSAGES = [
  { kind: 'text', id: 1, text: 'hi' },
  { kind: 'delivered', id: 7 },
  { kind: 'file-offer', id: 1, size: 20000, name: 'a.txt' },
  { kind: 'file-accept', id: 1 },
  { kind: 'file-chunk', id: 1, offset: 10, data: Uint8Array.of(1, 2, 3) },
  { kind: 'file-end', id: 1, sha256: new Uint8Array(32).fill(9) },
  { kind: 'file-received', id: 1 },
  { kind: 'file-abort', id: 2, reason: 0 },
  { kind: 'file-decline', id: 3, reason: 5 },
  { kind: 'media-state', microphone: true, camera: false },
].map(data.encode);

test('data-channel plaintexts: any bytes decode or are MessageMalformed with a named fault; what decodes encodes to the same bytes', () => {
  const FAULTS = new Set(['empty', 'unknown-kind', 'wrong-length', 'invalid-utf8', 'empty-text', 'text-too-long', 'empty-name', 'empty-chunk', 'chunk-too-long']);
  fc.assert(
    fc.property(mutated(MESSAGES), (bytes) => {
      let m;
      try {
        m = data.decode(bytes);
      } catch (e) {
        assert.ok(e instanceof data.MessageMalformed && FAULTS.has(e.code), `threw ${e?.name} ${e?.code ?? e?.message}`);
        return;
      }
      // A size or offset past 2^53 - 1 (8 PiB) is a JavaScript number only approximately, but
      // never below 2^53: larger than any file a receiver takes (so declined) and than any
      // offset it expects (so a broken rule), never mistaken for a real one.
      for (const v of [m.size, m.offset]) if (v !== undefined && !Number.isSafeInteger(v)) return assert.ok(v >= 2 ** 53);
      // media-state ignores the flag bits it does not know; file-abort and -decline read an
      // unknown reason as 3. Everything else encodes back to exactly its bytes.
      assert.deepEqual(data.decode(data.encode(m)), m);
      if (!['media-state', 'file-abort', 'file-decline'].includes(m.kind)) assert.deepEqual(data.encode(m), bytes);
    }),
    budget,
  );
});

test('sealed data messages: any bytes are refused as DataTampered, and the channel stays closed after', async () => {
  const room = new Uint8Array(16);
  const [k1, k2] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const sender = await data.DataSeal.create(room, { send: k1, receive: k2 });
  const valid = [await sender.seal(MESSAGES[0]), await sender.seal(MESSAGES[1])];
  await fc.assert(
    fc.asyncProperty(mutated(valid), async (bytes) => {
      const receiver = await data.DataSeal.create(room, { send: k2, receive: k1 });
      try {
        await receiver.open(bytes);
      } catch (e) {
        assert.ok(e instanceof data.DataTampered, `threw ${e?.name}: ${e?.message}`);
        await assert.rejects(receiver.open(valid[0]), data.DataTampered);
        return;
      }
      // Only the genuine first message opens.
      assert.deepEqual(bytes, valid[0]);
    }),
    quick,
  );
});

test('sealed MLS messages: any bytes, as any kind, epoch and sender, are refused as GroupTampered unless they are the genuine one', async () => {
  const keys = await ConferenceKeys.derive(new Uint8Array(32).fill(5));
  const ada = new Uint8Array(16).fill(0xad);
  const message = Uint8Array.of(0, 1, 0, 2, 0x10, 9, 9, 9);
  const valid = [await keys.seal('commit', 7n, ada, message)];
  const kinds = ['key-package', 'commit', 'welcome', 'application'];
  await fc.assert(
    fc.asyncProperty(mutated(valid), fc.constantFrom(...kinds), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.uint8Array({ minLength: 16, maxLength: 16 }), async (bytes, kind, epoch, sender) => {
      try {
        const opened = await keys.open(kind, epoch, sender, bytes);
        // Only the genuine message, as what it was sealed as, opens.
        assert.deepEqual([opened, bytes, kind, epoch, sender], [message, valid[0], 'commit', 7n, ada]);
      } catch (e) {
        assert.ok(e instanceof GroupTampered, `threw ${e?.name}: ${e?.message}`);
      }
    }),
    quick,
  );
  // And the genuine one still opens as itself.
  assert.deepEqual(await keys.open('commit', 7n, ada, valid[0]), message);
});

test('MLS messages: a member fed any bytes as a commit, a message or a Welcome, sealed under the link, refuses them as GroupTampered or takes them, never anything else', async () => {
  // The conference member loads ts-mls through the page's import map (web/vendor/).
  await import('../../web/test/vendor-map.mjs');
  const { Member } = await import('../../web/crypto/member.js');
  const secret = new Uint8Array(32).fill(5);
  const keys = await ConferenceKeys.derive(secret);
  const [ADA, BEA, CY] = [0xad, 0xbe, 0xc7].map((b) => new Uint8Array(16).fill(b));
  const [ada, bea] = [await Member.create(secret, ADA), await Member.create(secret, BEA)];
  await ada.createGroup(new Uint8Array(16).fill(9));
  const c = await ada.commit([{ id: BEA, sealed: await bea.keyPackage() }], []);
  ada.commitAccepted();
  await bea.join(ADA, 1n, c.welcome);
  // Valid MLS messages to mutate: a commit, an application message, a Welcome.
  const mls = async (kind, epoch, sealed) => keys.open(kind, epoch, ADA, sealed);
  const update = await ada.commit([], []);
  ada.commitRefused();
  const valid = [await mls('commit', 1n, update.commit), await mls('application', 1n, await ada.send(utf8('hi'))), await mls('welcome', 1n, c.welcome)];
  const joiner = await Member.create(secret, CY);
  await joiner.keyPackage();
  await fc.assert(
    fc.asyncProperty(mutated(valid), fc.constantFrom('commit', 'application', 'welcome'), async (bytes, kind) => {
      const sealed = await keys.seal(kind, 1n, ADA, bytes);
      const take = { commit: () => bea.receiveCommit(ADA, 1n, sealed), application: () => bea.receive(ADA, 1n, sealed), welcome: () => joiner.join(ADA, 1n, sealed) }[kind];
      try {
        await take();
      } catch (e) {
        assert.ok(e instanceof GroupTampered, `threw ${e?.name}: ${e?.message}`);
      }
    }),
    quick,
  );
});

test('SFrame headers: any bytes parse to a minimal header within them or FrameError; every header parses back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20 }), (bytes) => {
      const h = expectOnly(FrameError, () => parseHeader(bytes));
      if (h === undefined) return;
      assert.ok(h.length <= bytes.length);
      assert.deepEqual(encodeHeader(h.kid, h.ctr), bytes.subarray(0, h.length));
    }),
    budget,
  );
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  fc.assert(
    fc.property(u64, u64, (kid, ctr) => {
      const bytes = encodeHeader(kid, ctr);
      assert.deepEqual(parseHeader(bytes), { kid, ctr, length: bytes.length });
    }),
    quick,
  );
});

test('SFrame frames: any bytes are refused with FrameError by a receiver', async () => {
  const key = await importBaseKey(new Uint8Array(16).fill(3));
  const decryptor = new FrameDecryptor(key, 'offerer', 1);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 80 }), async (bytes) => {
      await assert.rejects(decryptor.decrypt(bytes), (e) => e instanceof FrameError);
    }),
    quick,
  );
});

test('conference frames: any bytes on any stream are refused with FrameError', async () => {
  const rx = new ConferenceFrames();
  const key = await importBaseKey(new Uint8Array(16).fill(3));
  rx.setEpoch(0, key, [{ leaf: 0, id: 'a' }, { leaf: 1, id: 'b' }, { leaf: 2, id: 'me' }], 2, 0);
  rx.setEpoch(1, key, [{ leaf: 0, id: 'a' }, { leaf: 2, id: 'me' }], 2, 0);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 2 }), fc.uint8Array({ maxLength: 80 }), async (stream, bytes) => {
      await assert.rejects(rx.open(stream, bytes, 0), (e) => e instanceof FrameError);
    }),
    quick,
  );
});

test('conference group messages: any bytes decode or are refused with GroupMessageMalformed', () => {
  const json = fc.oneof(
    fc.json().map((j) => new TextEncoder().encode(j)),
    fc.record({ t: fc.constantFrom('hello', 'media', 'text', 'x'), name: fc.option(fc.string()), microphone: fc.oneof(fc.boolean(), fc.integer()), camera: fc.boolean(), text: fc.string() }, { requiredKeys: ['t'] }).map((o) => new TextEncoder().encode(JSON.stringify(o))),
    fc.uint8Array({ maxLength: 200 }),
  );
  fc.assert(
    fc.property(json, (bytes) => {
      try {
        const m = parseGroupMessage(bytes);
        assert.ok(m === null || ['hello', 'media', 'text'].includes(m.t));
      } catch (e) {
        assert.ok(e instanceof GroupMessageMalformed, `threw ${e?.name}: ${e?.message}`);
      }
    }),
    budget,
  );
});

test('handshake messages: any bytes in any state are refused with HandshakeError', async () => {
  const secret = new Uint8Array(32).fill(7);
  const oKeys = await keyPairFromPrivate(new Uint8Array(32).fill(1));
  const aKeys = await keyPairFromPrivate(new Uint8Array(32).fill(2));
  const { commit } = await Handshake.offerer(secret, oKeys);
  await fc.assert(
    fc.asyncProperty(mutated([commit]), fc.boolean(), async (bytes, asOfferer) => {
      const hs = asOfferer ? (await Handshake.offerer(secret, oKeys)).hs : await Handshake.answerer(secret, aKeys);
      try {
        await hs.receive(bytes);
      } catch (e) {
        assert.ok(e instanceof HandshakeError, `threw ${e?.name}: ${e?.message}`);
      }
    }),
    quick,
  );
});

test('links: any text parses to a link or LinkError', () => {
  const valid = 'https://call.example.org/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8';
  const texts = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 120 }),
    fc.tuple(fc.nat(valid.length), fc.string({ maxLength: 6 })).map(([at, s]) => valid.slice(0, at) + s + valid.slice(at)),
    fc.string({ maxLength: 4 }).map((s) => `${valid}.${s}`),
  );
  fc.assert(fc.property(texts, (text) => void expectOnly(LinkError, () => parseLink(text))), budget);
});

test('relay messages: any text or JSON is a message, null or RelayMessageMalformed, and what parses never breaks the room', () => {
  const id = fc.constantFrom('AQEBAQEBAQEBAQEBAQEBAQ', 'AgICAgICAgICAgICAgICAg', 'AQEBAQEBAQEBAQEBAQEBAR', 'x', '');
  const fields = fc.record(
    {
      type: fc.constantFrom('welcome', 'peer-joined', 'peer-left', 'signal', 'error', 'x'),
      you: fc.oneof(id, fc.jsonValue()),
      peers: fc.oneof(fc.array(id, { maxLength: 3 }), fc.jsonValue()),
      ice: fc.oneof(fc.array(fc.record({ urls: fc.oneof(fc.array(fc.string()), fc.string()), username: fc.jsonValue() }, { requiredKeys: [] }), { maxLength: 2 }), fc.jsonValue()),
      max: fc.oneof(fc.integer({ min: -2, max: 60 }), fc.jsonValue()),
      peer: fc.oneof(id, fc.jsonValue()),
      from: fc.oneof(id, fc.jsonValue()),
      data: fc.oneof(fc.constantFrom('', 'AAE', 'AAF', 'BAABAgM', 'AA=='), fc.jsonValue()),
      code: fc.oneof(fc.constantFrom('room-full', 'unknown-peer', 'unavailable'), fc.jsonValue()),
      message: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );
  const texts = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.jsonValue().map((v) => JSON.stringify(v)), fields.map((v) => JSON.stringify(v)));
  fc.assert(
    fc.property(texts, (text) => {
      const m = expectOnly(RelayMessageMalformed, () => parseServerMessage(text));
      if (!m) return;
      assert.deepEqual(parseServerMessage(JSON.stringify(m)), m);
      // What parses, the room's rules take in any state without throwing.
      for (const group of [null, 3]) {
        const core = new RoomCore({ group, output: () => {} });
        core.relayOpened();
        core.relayMessage(m.type === 'signal' ? { ...m, bytes: new Uint8Array(0) } : m);
        core.relayMessage(m.type === 'signal' ? { ...m, bytes: Uint8Array.of(1) } : m);
      }
    }),
    budget,
  );
});
