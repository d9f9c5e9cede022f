// The conversation's rules, the tests of client/src/conversation.rs ported one for one (two
// honest ends, and an honest end facing a peer that seals its own rule-breaking messages), plus
// what only the asynchronous JavaScript side has to show: order kept under concurrent calls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conversation, MAX_INCOMING, Refused } from '../conversation.js';
import { DataSeal, MAX_CHUNK, MAX_TEXT, REASON, decode, encode } from '../crypto/data.js';

const LIMITS = { acceptBelow: 100_000, maxSize: 10_000_000 };

// What each conversation put out since it was last asked.
const outputs = new WeakMap();
const take = (conv) => outputs.get(conv).splice(0);

/** The two sealed ends of one channel, from fixed keys. */
async function seals() {
  const room = new Uint8Array(16).fill(9);
  const [k1, k2] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  return [await DataSeal.create(room, { send: k1, receive: k2 }), await DataSeal.create(room, { send: k2, receive: k1 })];
}

function conversation(seal) {
  const out = [];
  const conv = new Conversation(seal, LIMITS, (o) => out.push(o));
  outputs.set(conv, out);
  return conv;
}

async function pair() {
  const [o, a] = await seals();
  return [conversation(o), conversation(a)];
}

/** Hands every send of `out` to `to`; returns the events of `out` and what `to` put out. */
async function deliver(out, to) {
  const events = [];
  for (const o of out) {
    if (o.type === 'send') await to.receive(o.bytes);
    else if (o.type === 'event') events.push(o.event);
  }
  return { events, reply: take(to) };
}

const eventsOf = (out) => out.filter((o) => o.type === 'event').map((o) => o.event);

/** Runs the sender's file to the end: reads from `content` whenever asked, delivering
 *  everything both ways; returns the receiver's and the sender's events. */
async function run(tx, rx, content, first) {
  const [txEvents, rxEvents] = [[], []];
  let toRx = first;
  for (;;) {
    const { events: e1, reply: toTx } = await deliver(toRx, rx);
    txEvents.push(...e1);
    const { events: e2, reply: more } = await deliver(toTx, tx);
    rxEvents.push(...e2);
    toRx = more;
    if (toRx.length === 0) {
      const want = tx.wantsChunk();
      if (!want) break;
      await tx.sendChunk(want.id, content.subarray(want.offset, want.offset + want.max));
      await tx.settled();
      toRx = take(tx);
    }
  }
  return { rx: rxEvents, tx: txEvents };
}

function receivedBytes(events) {
  const parts = [];
  let length = 0;
  for (const e of events) {
    if (e.type === 'file-data') {
      assert.equal(e.offset, length);
      parts.push(e.data);
      length += e.data.length;
    }
  }
  return Buffer.concat(parts);
}

const refused = (code) => (e) => e instanceof Refused && e.code === code;

test('texts go both ways and come back as delivered', async () => {
  const [o, a] = await pair();
  const id = await o.sendText('hello <b>there</b>');
  const { reply } = await deliver(take(o), a);
  assert.deepEqual(eventsOf(reply), [{ type: 'text', id, text: 'hello <b>there</b>' }]);
  const { reply: back } = await deliver(reply, o);
  assert.deepEqual(eventsOf(back), [{ type: 'delivered', id }]);
  const id2 = await a.sendText('hi');
  const { reply: r2 } = await deliver(take(a), o);
  assert.deepEqual(eventsOf(r2), [{ type: 'text', id: id2, text: 'hi' }]);
  await assert.rejects(o.sendText(''), refused('text-length'));
  await assert.rejects(o.sendText('x'.repeat(MAX_TEXT + 1)), (e) => refused('text-length')(e) && /1 to 4096 bytes/.test(e.message));
  // Bytes of UTF-8 count, not characters: 1366 three-byte characters are 4098 bytes.
  await assert.rejects(o.sendText('€'.repeat(1366)), refused('text-length'));
  assert.equal(take(o).length, 0, 'a refused text sends nothing');
});

test('microphone and camera states reach the peer as they change, with no answer', async () => {
  const [o, a] = await pair();
  await o.sendMediaState(false, true);
  await o.sendMediaState(true, false);
  const { reply } = await deliver(take(o), a);
  assert.deepEqual(eventsOf(reply), [
    { type: 'peer-media', microphone: false, camera: true },
    { type: 'peer-media', microphone: true, camera: false },
  ]);
  assert.equal(reply.filter((r) => r.type === 'send').length, 0);
});

test('a small file is taken at once, arrives whole and is reported delivered', async () => {
  const [o, a] = await pair();
  const content = Uint8Array.from({ length: 50_000 }, (_, i) => i * 7);
  const id = await o.offerFile('notes.txt', content.length);
  const { rx, tx } = await run(o, a, content, take(o));
  assert.deepEqual(rx[0], { type: 'file-offered', id, name: 'notes.txt', size: 50_000, accepted: true });
  assert.deepEqual(receivedBytes(rx), Buffer.from(content));
  assert.deepEqual(rx.at(-1), { type: 'file-received', id });
  assert.ok(rx.some((e) => e.type === 'file-progress' && e.id === id && e.direction === 'incoming' && e.done === 50_000 && e.size === 50_000));
  assert.deepEqual(tx.at(-1), { type: 'file-delivered', id });
  assert.ok(tx.some((e) => e.type === 'file-progress' && e.id === id && e.direction === 'outgoing' && e.done === 50_000 && e.size === 50_000));
  assert.equal(o.wantsChunk(), null);
});

test('an empty file has no chunks and still arrives', async () => {
  const [o, a] = await pair();
  const id = await o.offerFile('empty', 0);
  const { rx, tx } = await run(o, a, new Uint8Array(0), take(o));
  assert.ok(rx.some((e) => e.type === 'file-received' && e.id === id));
  assert.ok(!rx.some((e) => e.type === 'file-data'));
  assert.deepEqual(tx.at(-1), { type: 'file-delivered', id });
});

test('a large file waits for the receiver, who may take it or decline it', async () => {
  const [o, a] = await pair();
  const id = await o.offerFile('big.bin', 200_000);
  const { reply } = await deliver(take(o), a);
  assert.deepEqual(eventsOf(reply), [{ type: 'file-offered', id, name: 'big.bin', size: 200_000, accepted: false }]);
  assert.equal(o.wantsChunk(), null, 'nothing is sent before the answer');
  await a.accept(id);
  await deliver(take(a), o);
  assert.deepEqual(o.wantsChunk(), { id, offset: 0, max: MAX_CHUNK });
  // A second file, declined.
  const id2 = await o.offerFile('other.bin', 300_000);
  await deliver(take(o), a);
  take(a);
  await a.cancel(id2, 'incoming');
  const { reply: back } = await deliver(take(a), o);
  assert.deepEqual(eventsOf(back), [{ type: 'file-stopped', id: id2, direction: 'outgoing', by: 'peer', reason: REASON.cancelled }]);
  assert.equal(o.wantsChunk()?.id, id);
  await assert.rejects(a.accept(id2), refused('no-such-file'));
  await assert.rejects(a.accept(99), (e) => refused('no-such-file')(e) && /no file 99/.test(e.message));
});

test('either side cancels midway and nothing half-received is presented', async () => {
  for (const senderCancels of [true, false]) {
    const [o, a] = await pair();
    const id = await o.offerFile('f', 64_000);
    const rxEvents = [];
    const { reply: toTx } = await deliver(take(o), a);
    await deliver(toTx, o);
    for (let i = 0; i < 2; i++) {
      const { offset, max } = o.wantsChunk();
      await o.sendChunk(id, new Uint8Array(max).fill(1));
      await o.settled();
      assert.equal(offset % MAX_CHUNK, 0);
      const { reply } = await deliver(take(o), a);
      rxEvents.push(...eventsOf(reply));
    }
    if (senderCancels) {
      await o.cancel(id, 'outgoing');
      const { reply } = await deliver(take(o), a);
      rxEvents.push(...eventsOf(reply));
      assert.ok(rxEvents.some((e) => e.type === 'file-stopped' && e.id === id && e.direction === 'incoming' && e.by === 'peer' && e.reason === REASON.cancelled));
    } else {
      await a.cancel(id, 'incoming');
      const out = take(a);
      rxEvents.push(...eventsOf(out));
      const { reply: back } = await deliver(out, o);
      assert.deepEqual(eventsOf(back), [{ type: 'file-stopped', id, direction: 'outgoing', by: 'peer', reason: REASON.cancelled }]);
    }
    assert.ok(!rxEvents.some((e) => e.type === 'file-received'));
    assert.equal(o.wantsChunk(), null);
  }
});

/** A peer that writes its own messages: sealed with the real keys, breaking the rules. */
async function hostile() {
  const [peer, mine] = await seals();
  return [peer, conversation(mine)];
}

// What the honest end sent the hostile peer and the peer has not read yet (it must open every
// message, in order, to open any).
const unread = new WeakMap();

async function sendRaw(from, to, msg) {
  await to.receive(await from.seal(encode(msg)));
  const out = take(to);
  unread.set(from, [...(unread.get(from) ?? []), ...out.filter((o) => o.type === 'send').map((o) => o.bytes)]);
  return out;
}

/** The messages the honest end sent the hostile peer since it last looked, decoded. */
async function heard(peer) {
  const got = [];
  for (const bytes of unread.get(peer) ?? []) got.push(decode(await peer.open(bytes)));
  unread.set(peer, []);
  return got;
}

test('pending texts are bounded: the oldest receipt beyond 1024 reads as never sent', async () => {
  const [o, a] = await pair();
  for (let i = 0; i <= 1024; i++) await o.sendText(`t${i}`);
  const { reply } = await deliver(take(o), a);
  const ev = eventsOf((await deliver(reply, o)).reply);
  assert.deepEqual(ev[0], { type: 'peer-error', error: 'a receipt for message 0, which was never sent' });
  assert.deepEqual(ev.slice(1).map((e) => e.id), Array.from({ length: 1024 }, (_, i) => i + 1));
  assert.ok(ev.slice(1).every((e) => e.type === 'delivered'));
});

test('a file whose bytes do not match its hash is discarded', async () => {
  const [peer, me] = await hostile();
  await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 3, name: 'a' });
  await sendRaw(peer, me, { kind: 'file-chunk', id: 1, offset: 0, data: Uint8Array.of(97, 98, 99) });
  const out = await sendRaw(peer, me, { kind: 'file-end', id: 1, sha256: new Uint8Array(32) });
  assert.deepEqual(eventsOf(out), [{ type: 'file-stopped', id: 1, direction: 'incoming', by: 'us', reason: REASON.integrityFailed }]);
  // And the peer is told: file-decline, reason 2.
  assert.deepEqual(await heard(peer), [
    { kind: 'file-accept', id: 1 },
    { kind: 'file-decline', id: 1, reason: REASON.integrityFailed },
  ]);
});

test('the right hash is presented and answered with file-received', async () => {
  const [peer, me] = await hostile();
  const data = Uint8Array.of(97, 98, 99);
  const sha256 = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data));
  await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 3, name: 'a' });
  await sendRaw(peer, me, { kind: 'file-chunk', id: 1, offset: 0, data });
  const out = await sendRaw(peer, me, { kind: 'file-end', id: 1, sha256 });
  assert.deepEqual(eventsOf(out), [{ type: 'file-received', id: 1 }]);
  assert.deepEqual(await heard(peer), [
    { kind: 'file-accept', id: 1 },
    { kind: 'file-received', id: 1 },
  ]);
});

test('rule-breaking file messages stop that file only and keep the channel', async () => {
  const [peer, me] = await hostile();
  await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 10, name: 'a' });
  await sendRaw(peer, me, { kind: 'file-offer', id: 2, size: 10, name: 'b' });
  await sendRaw(peer, me, { kind: 'file-chunk', id: 2, offset: 0, data: new Uint8Array(4).fill(5) });
  // Past the announced size.
  let ev = eventsOf(await sendRaw(peer, me, { kind: 'file-chunk', id: 1, offset: 0, data: new Uint8Array(11) }));
  assert.equal(ev[0].type, 'peer-error');
  assert.match(ev[0].error, /past the announced size/);
  assert.deepEqual(ev[1], { type: 'file-stopped', id: 1, direction: 'incoming', by: 'us', reason: REASON.protocolViolation });
  // An unknown id for a chunk, an end and an accept.
  for (const [msg, what] of [
    [{ kind: 'file-chunk', id: 3, offset: 0, data: Uint8Array.of(1) }, /not accepted/],
    [{ kind: 'file-end', id: 9, sha256: new Uint8Array(32) }, /not accepted/],
    [{ kind: 'file-accept', id: 4 }, /not offered/],
    [{ kind: 'file-received', id: 4 }, /not sent/],
  ]) {
    ev = eventsOf(await sendRaw(peer, me, msg));
    assert.equal(ev[0].type, 'peer-error', msg.kind);
    assert.match(ev[0].error, what);
  }
  // The wrong offset.
  ev = eventsOf(await sendRaw(peer, me, { kind: 'file-chunk', id: 2, offset: 9, data: Uint8Array.of(1) }));
  assert.equal(ev[0].type, 'peer-error');
  assert.match(ev[0].error, /wrong offset/);
  // An end before the whole file.
  await sendRaw(peer, me, { kind: 'file-offer', id: 5, size: 10, name: 'c' });
  await sendRaw(peer, me, { kind: 'file-chunk', id: 5, offset: 0, data: Uint8Array.of(1) });
  ev = eventsOf(await sendRaw(peer, me, { kind: 'file-end', id: 5, sha256: new Uint8Array(32) }));
  assert.match(ev[0].error, /before all of it/);
  assert.deepEqual(ev[1], { type: 'file-stopped', id: 5, direction: 'incoming', by: 'us', reason: REASON.protocolViolation });
  // A chunk of file 1 after it was stopped: crossed the stop, ignored.
  assert.deepEqual(await sendRaw(peer, me, { kind: 'file-chunk', id: 1, offset: 0, data: Uint8Array.of(1) }), []);
  // A malformed message and an unknown receipt: reported, dropped.
  await me.receive(await peer.seal(Uint8Array.of(0x7f)));
  ev = eventsOf(take(me));
  assert.equal(ev[0].type, 'peer-error');
  assert.match(ev[0].error, /unknown message kind 0x7f/);
  await me.receive(await peer.seal(Uint8Array.of(0x02, 0, 0, 0, 1, 0)));
  assert.match(eventsOf(take(me))[0].error, /kind 0x02 has the wrong length/);
  ev = eventsOf(await sendRaw(peer, me, { kind: 'delivered', id: 8 }));
  assert.match(ev[0].error, /message 8, which was never sent/);
  // The channel still works.
  assert.ok(me.isOpen());
  ev = eventsOf(await sendRaw(peer, me, { kind: 'text', id: 5, text: 'still here' }));
  assert.deepEqual(ev, [{ type: 'text', id: 5, text: 'still here' }]);
});

test('hostile names land as plain names, too large or too many files are declined', async () => {
  const [peer, me] = await hostile();
  let ev = eventsOf(await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 1, name: '../../etc/passwd' }));
  assert.deepEqual(ev[0], { type: 'file-offered', id: 1, name: 'passwd', size: 1, accepted: true });
  ev = eventsOf(await sendRaw(peer, me, { kind: 'file-offer', id: 2, size: LIMITS.maxSize + 1, name: 'x' }));
  assert.deepEqual(ev[1], { type: 'file-stopped', id: 2, direction: 'incoming', by: 'us', reason: REASON.tooLarge });
  assert.deepEqual(await heard(peer), [
    { kind: 'file-accept', id: 1 },
    { kind: 'file-decline', id: 2, reason: REASON.tooLarge },
  ]);
  // File 1 and 15 more make 16 under way; the 17th is declined, and the person told so.
  let last;
  for (let id = 3; id < 3 + MAX_INCOMING; id++) last = await sendRaw(peer, me, { kind: 'file-offer', id, size: 1_000_000, name: 'x' });
  const lastId = 2 + MAX_INCOMING;
  assert.deepEqual(eventsOf(last), [
    { type: 'file-offered', id: lastId, name: 'x', size: 1_000_000, accepted: false },
    { type: 'file-stopped', id: lastId, direction: 'incoming', by: 'us', reason: REASON.tooManyFiles },
  ], 'bounded');
  assert.deepEqual((await heard(peer)).at(-1), { kind: 'file-decline', id: lastId, reason: REASON.tooManyFiles });
  await assert.rejects(me.accept(lastId), refused('no-such-file'));
  await me.accept(lastId - 1);
  // An id offered again is dropped; a name with nothing safe in it becomes "file".
  ev = eventsOf(await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 1, name: 'dup' }));
  assert.match(ev[0].error, /offered twice/);
  await me.cancel(3, 'incoming');
  assert.deepEqual(eventsOf(take(me)), [{ type: 'file-stopped', id: 3, direction: 'incoming', by: 'us', reason: REASON.cancelled }]);
  ev = eventsOf(await sendRaw(peer, me, { kind: 'file-offer', id: 40, size: 1, name: '/ ..\u0007' }));
  assert.deepEqual(ev[0], { type: 'file-offered', id: 40, name: 'file', size: 1, accepted: true });
  // Our side refuses names the wire cannot carry.
  const [o] = await pair();
  await assert.rejects(o.offerFile('', 1), refused('name-length'));
  await assert.rejects(o.offerFile('é'.repeat(128), 1), refused('name-length'));
  await assert.rejects(o.offerFile('a', -1), TypeError);
});

test('a tampered message closes the channel and drops every unfinished file', async () => {
  const [peer, me] = await hostile();
  await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 10, name: 'a' });
  const bytes = await peer.seal(encode({ kind: 'text', id: 1, text: 'x' }));
  bytes[9] ^= 0x40;
  await me.receive(bytes);
  const out = take(me);
  assert.deepEqual(out[0], { type: 'close-channel' });
  assert.equal(out[1].event.type, 'tampered');
  assert.match(out[1].event.error, /^messages tampered with/);
  assert.deepEqual(out[2], { type: 'event', event: { type: 'file-stopped', id: 1, direction: 'incoming', by: 'peer', reason: REASON.protocolViolation } });
  assert.ok(!me.isOpen());
  await assert.rejects(me.sendText('hi'), refused('channel-closed'));
  // Genuine messages after it are not read.
  await me.receive(await peer.seal(encode({ kind: 'text', id: 2, text: 'y' })));
  assert.deepEqual(take(me), []);
});

test('a text frame closes the channel as tampering and drops every unfinished file, as in Rust', async () => {
  const [peer, me] = await hostile();
  await sendRaw(peer, me, { kind: 'file-offer', id: 1, size: 10, name: 'a' });
  await me.receiveUnsealed();
  const out = take(me);
  assert.deepEqual(out[0], { type: 'close-channel' });
  assert.deepEqual(out[1].event, { type: 'tampered', error: 'messages tampered with (a text frame, which is never sealed)' });
  assert.equal(out[2].event.type, 'file-stopped');
  assert.ok(!me.isOpen());
  // A second one finds the channel closed already: nothing more is said.
  await me.receiveUnsealed();
  assert.deepEqual(take(me), []);
});

test('our own unfinished files are dropped too when the channel is tampered with', async () => {
  const [o, a] = await pair();
  const id = await o.offerFile('f', 200_000);
  await a.sendText('x');
  const [{ bytes: bad }] = take(a);
  bad[bad.length - 1] ^= 1;
  await o.receive(bad);
  const ev = eventsOf(take(o));
  assert.equal(ev[0].type, 'tampered');
  assert.deepEqual(ev[1], { type: 'file-stopped', id, direction: 'outgoing', by: 'peer', reason: REASON.protocolViolation });
  assert.equal(o.wantsChunk(), null);
  await assert.rejects(o.cancel(id, 'outgoing'), refused('no-such-file'));
});

test('calls made without waiting still seal and arrive in order, one at a time', async () => {
  const [o, a] = await pair();
  // Nothing awaited between them: the queue keeps the seq order the channel demands.
  const calls = [o.sendText('1'), o.offerFile('f', 5), o.sendText(''), o.sendText('2'), o.sendText('3')];
  const results = await Promise.all(calls.map((p) => p.catch((e) => e)));
  assert.deepEqual([results[0], results[1], results[3], results[4]], [0, 0, 1, 2]);
  assert.ok(results[2] instanceof Refused, 'a refusal in the middle does not stop the others');
  // The receiver is handed them all at once, too, as the ArrayBuffers a data channel delivers.
  const out = take(o);
  await Promise.all(out.filter((x) => x.type === 'send').map((x) => a.receive(x.bytes.buffer)));
  const ev = eventsOf(take(a));
  assert.deepEqual(ev.map((e) => e.type), ['text', 'file-offered', 'text', 'text']);
  assert.deepEqual(ev.filter((e) => e.type === 'text').map((e) => e.text), ['1', '2', '3']);
  assert.ok(a.isOpen());
});

test('the lowest file goes first; a file the shell cannot read is stopped, one that changed too', async () => {
  const [o, a] = await pair();
  const ids = [await o.offerFile('a', 120_000), await o.offerFile('b', 120_000), await o.offerFile('c', 120_000)];
  await deliver(take(o), a);
  for (const id of [ids[2], ids[1], ids[0]]) await a.accept(id);
  await deliver(take(a), o);
  assert.deepEqual(o.wantsChunk(), { id: ids[0], offset: 0, max: MAX_CHUNK });
  // The shell cannot read file 0: it leaves wantsChunk() at once, the abort follows.
  const failed = o.sendingFailed(ids[0]);
  assert.equal(o.wantsChunk().id, ids[1]);
  await failed;
  const out = take(o);
  assert.deepEqual(eventsOf(out), [{ type: 'file-stopped', id: ids[0], direction: 'outgoing', by: 'us', reason: REASON.couldNotStore }]);
  const { reply } = await deliver(out, a);
  assert.deepEqual(eventsOf(reply), [{ type: 'file-stopped', id: ids[0], direction: 'incoming', by: 'peer', reason: REASON.couldNotStore }]);
  // File 1 grew: more than asked for stops it.
  await assert.rejects(o.sendChunk(ids[1], new Uint8Array(MAX_CHUNK + 1)), refused('no-such-file'));
  assert.deepEqual(eventsOf(take(o)), [{ type: 'file-stopped', id: ids[1], direction: 'outgoing', by: 'us', reason: REASON.couldNotStore }]);
  // File 2 goes; its last chunk is asked for as exactly what is left, and a file that shrank
  // (the shell read nothing) is stopped.
  for (let i = 0; i < 7; i++) await o.sendChunk(ids[2], new Uint8Array(MAX_CHUNK));
  assert.deepEqual(o.wantsChunk(), { id: ids[2], offset: 7 * MAX_CHUNK, max: 120_000 - 7 * MAX_CHUNK });
  await assert.rejects(o.sendChunk(ids[2], new Uint8Array(0)), refused('no-such-file'));
  assert.equal(o.wantsChunk(), null);
});
