// The browser's pure modules against the shared vectors: RFC 9605's official ones and
// tests/vectors/sotto-v1.json, which the Rust crate generates and checks. Same inputs, same
// bytes: Rust and JavaScript provably agree. Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromHex, hex, b64u, utf8 } from '../crypto/bytes.js';
import { parseLink, linkText, relayUrl, roomId, LinkError } from '../crypto/link.js';
import { Handshake, keyPairFromPrivate } from '../crypto/handshake.js';
import * as sframe from '../crypto/sframe.js';
import { dtlsFingerprint } from '../crypto/sdp.js';
import * as data from '../crypto/data.js';
import { SignalMalformed, cleanName, decodeSignal, safeFileName } from '../peer-signal.js';
import { RelayMessageMalformed, parseServerMessage } from '../relay-message.js';

const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url)));
const rfc = vectors('sframe-rfc9605.json');
const v1 = vectors('sotto-v1.json');
const big = (s) => BigInt(s);

test('every RFC 9605 header vector encodes and parses', () => {
  assert.equal(rfc.header.length, 289);
  for (const t of rfc.header) {
    const [kid, ctr] = [big(t.kid), big(t.ctr)];
    assert.equal(hex(sframe.encodeHeader(kid, ctr)), t.header);
    const h = sframe.parseHeader(fromHex(t.header));
    assert.deepEqual([h.kid, h.ctr, h.length], [kid, ctr, t.header.length / 2]);
    assert.throws(() => sframe.parseHeader(fromHex(t.header).subarray(0, t.header.length / 2 - 1)));
  }
});

test('RFC 9605 SFrame vectors of suites 4 and 5 encrypt, decrypt and refuse tampering', async () => {
  const cases = rfc.sframe.filter((t) => t.cipher_suite === 4 || t.cipher_suite === 5);
  assert.equal(cases.length, 2);
  for (const t of cases) {
    const [base, meta, pt] = [fromHex(t.base_key), fromHex(t.metadata), fromHex(t.pt)];
    const ct = await sframe.encrypt(t.cipher_suite, base, big(t.kid), big(t.ctr), meta, pt);
    assert.equal(hex(ct), t.ct);
    const out = await sframe.decrypt(t.cipher_suite, base, meta, fromHex(t.ct));
    assert.equal(hex(out.plaintext), t.pt);
    const bad = fromHex(t.ct);
    bad[bad.length - 1] ^= 1;
    await assert.rejects(sframe.decrypt(t.cipher_suite, base, meta, bad));
    await assert.rejects(sframe.decrypt(t.cipher_suite, base, fromHex(t.metadata.replace(/^../, '00')), fromHex(t.ct)));
  }
});

test('links, room id and relay URL match the vectors', async () => {
  const { base, secret } = parseLink(v1.link.text);
  assert.equal(hex(secret), v1.inputs.secret);
  assert.equal(b64u(secret), v1.link.secret_b64u);
  assert.equal(linkText(base, secret), v1.link.text);
  assert.equal(relayUrl(base), v1.link.relay_url);
  // A relay served under a path keeps it (PROTOCOL.md §1).
  v1.inputs.relays.forEach((relay, i) => {
    const want = v1.relays[i];
    assert.equal(linkText(relay, secret), want.link, relay);
    assert.equal(parseLink(want.link).base, want.base);
    assert.equal(relayUrl(want.base), want.relay_url);
  });
  const room = await roomId(secret);
  assert.equal(hex(room), v1.link.room_id);
  assert.equal(b64u(room), v1.link.room_id_b64u);
  for (const bad of ['ftp://h/#' + v1.link.secret_b64u, 'https://h/#short', 'https://h/', `https://h/#${v1.link.secret_b64u.slice(0, 42)}B`, `https://h/a b/#${v1.link.secret_b64u}`, `https://h/../#${v1.link.secret_b64u}`, `https://h/a/%2E%2e/#${v1.link.secret_b64u}`]) {
    assert.throws(() => parseLink(bad), LinkError, bad);
  }
});

test('group links (#S.N) match the vectors: the same room, N from 3 to 50, nothing else', async () => {
  assert.ok(v1.group_links.some((g) => g.valid === false) && v1.group_links.some((g) => g.group >= 3));
  for (const want of v1.group_links) {
    if (want.valid === false) {
      assert.throws(() => parseLink(want.link), LinkError, want.link);
      continue;
    }
    const { base, secret, group } = parseLink(want.link);
    assert.equal(group, want.group, want.link);
    assert.equal(b64u(await roomId(secret)), want.room_id_b64u);
    assert.equal(relayUrl(base), want.relay_url);
    assert.equal(linkText(base, secret, group), want.link);
  }
});

test('the handshake, sealed messages, safety code and media keys match the vectors', async () => {
  const secret = fromHex(v1.inputs.secret);
  const oKeys = await keyPairFromPrivate(fromHex(v1.inputs.offerer_private));
  const aKeys = await keyPairFromPrivate(fromHex(v1.inputs.answerer_private));
  assert.equal(hex(oKeys.publicKey), v1.handshake.offerer_public);
  const { hs: o, commit } = await Handshake.offerer(secret, oKeys);
  const a = await Handshake.answerer(secret, aKeys);
  assert.equal(hex(commit), v1.handshake.commit);
  const { reply: key } = await a.receive(commit);
  assert.equal(hex(key), v1.handshake.key);
  const { reply: reveal } = await o.receive(key);
  assert.equal(hex(reveal), v1.handshake.reveal);
  await a.receive(reveal);
  assert.equal(hex(o.keys.th), v1.handshake.transcript_hash);
  assert.equal(hex(o.keys.prk), v1.handshake.prk);
  assert.equal(o.safetyCode(), v1.safety_code.digits);
  assert.equal(a.safetyCode(), v1.safety_code.digits);
  // Sealed messages in the file's order: each side seals what the vector says and the bytes
  // come out the same; the other side opens them.
  for (const m of v1.sealed) {
    const [from, to] = m.direction === 'O->A' ? [o, a] : [a, o];
    const sealed = await from.seal(utf8(m.plaintext));
    assert.equal(hex(sealed), m.message, `${m.direction} seq ${m.seq}`);
    const { message } = await to.receive(sealed);
    assert.equal(new TextDecoder().decode(message), m.plaintext);
  }
  const ko = await o.mediaKeyBytes(v1.inputs.fingerprint_offerer, v1.inputs.fingerprint_answerer);
  const ka = await a.mediaKeyBytes(v1.inputs.fingerprint_offerer, v1.inputs.fingerprint_answerer);
  assert.equal(hex(ko.th2), v1.media.th2);
  assert.equal(hex(ko.send), v1.media.media_o);
  assert.equal(hex(ka.send), v1.media.media_a);
  assert.equal(hex(ko.receive), v1.media.media_a);
});

test('media frames match the vectors and open on the receiving side', async () => {
  for (const f of v1.frames) {
    const role = f.sender === 'O' ? 'offerer' : 'answerer';
    const raw = fromHex(f.sender === 'O' ? v1.media.media_o : v1.media.media_a);
    const stream = sframe.STREAM[f.stream];
    const enc = new sframe.FrameEncryptor(await sframe.importBaseKey(raw), role, stream, BigInt(f.generation));
    enc.ctr = BigInt(f.ctr);
    const out = await enc.encrypt(fromHex(f.frame));
    assert.equal(hex(out), f.sealed, `${f.sender} ${f.stream} gen ${f.generation} ctr ${f.ctr}`);
    assert.equal(sframe.kidOf(f.generation, stream, role), BigInt(f.kid));
    const dec = new sframe.FrameDecryptor(await sframe.importBaseKey(raw), role, stream);
    const opened = await dec.decrypt(fromHex(f.sealed));
    assert.equal(hex(opened.frame), f.frame);
    await assert.rejects(dec.decrypt(fromHex(f.sealed)), /replayed/);
  }
});

test('receivers refuse the wrong role, the wrong stream and a tampered frame', async () => {
  const base = await sframe.importBaseKey(new Uint8Array(32).fill(1));
  const enc = new sframe.FrameEncryptor(base, 'answerer', sframe.STREAM.video);
  const frame = Uint8Array.from([0x31, 2, 0, 9, 9, 9]);
  const sealed = await enc.encrypt(frame);
  await assert.rejects(new sframe.FrameDecryptor(base, 'offerer', sframe.STREAM.video).decrypt(sealed), /wrong-role/);
  await assert.rejects(new sframe.FrameDecryptor(base, 'answerer', sframe.STREAM.screen).decrypt(sealed), /wrong-stream/);
  const bad = sealed.slice();
  bad[bad.length - 1] ^= 1;
  const dec = new sframe.FrameDecryptor(base, 'answerer', sframe.STREAM.video);
  await assert.rejects(dec.decrypt(bad), /authentication-failed/);
  assert.deepEqual((await dec.decrypt(sealed)).frame, frame);
  await assert.rejects(enc.encrypt(Uint8Array.of(0x30, 1, 2)), /too-short/);
});

test('the handshake refuses tampering like the Rust crate', async () => {
  const secret = new Uint8Array(32).fill(3);
  const { hs: o, commit } = await Handshake.offerer(secret, await keyPairFromPrivate(new Uint8Array(32).fill(1)));
  const a = await Handshake.answerer(secret, await keyPairFromPrivate(new Uint8Array(32).fill(2)));
  await assert.rejects(a.receive(commit.subarray(0, 32)), /33 bytes/);
  const a2 = await Handshake.answerer(secret, await keyPairFromPrivate(new Uint8Array(32).fill(2)));
  const { reply } = await a2.receive(commit);
  const forged = Uint8Array.of(3, ...new Uint8Array(32).fill(7));
  const { reply: reveal } = await o.receive(reply);
  assert.equal(reveal[0], 3);
  await assert.rejects(a2.receive(forged), /commitment/);
  // An all-zero peer key is refused.
  const { hs: o2 } = await Handshake.offerer(secret, await keyPairFromPrivate(new Uint8Array(32).fill(1)));
  await assert.rejects(o2.receive(Uint8Array.of(2, ...new Uint8Array(32))), /all-zero/);
});

test('the DTLS fingerprint is the first line, line ending removed', () => {
  assert.equal(dtlsFingerprint('v=0\r\na=fingerprint:sha-256 AB:CD\r\na=fingerprint:sha-256 EF\r\n'), 'sha-256 AB:CD');
  assert.equal(dtlsFingerprint('a=fingerprint:s\r\r\n'), 's\r');
  assert.equal(dtlsFingerprint('v=0\r\n'), null);
});

test('data channel keys, sealed messages of every kind, refused plaintexts and file names match the vectors', async () => {
  const secret = fromHex(v1.inputs.secret);
  const { hs: o, commit } = await Handshake.offerer(secret, await keyPairFromPrivate(fromHex(v1.inputs.offerer_private)));
  const a = await Handshake.answerer(secret, await keyPairFromPrivate(fromHex(v1.inputs.answerer_private)));
  await o.receive((await a.receive(commit)).reply).then(({ reply }) => a.receive(reply));
  await a.receive(await o.seal(utf8('offer')));
  await o.receive(await a.seal(utf8('answer')));
  const [fpO, fpA] = [v1.inputs.fingerprint_offerer, v1.inputs.fingerprint_answerer];
  const [ko, ka] = [await o.dataKeyBytes(fpO, fpA), await a.dataKeyBytes(fpO, fpA)];
  assert.equal(hex(ko.send), v1.data.data_o);
  assert.equal(hex(ka.send), v1.data.data_a);
  const room = fromHex(v1.link.room_id);
  const [so, sa] = [await data.DataSeal.create(room, ko), await data.DataSeal.create(room, ka)];
  const fromVector = (m) => ({ ...m, ...(m.data && { data: fromHex(m.data) }), ...(m.sha256 && { sha256: fromHex(m.sha256) }) });
  for (const m of v1.data_messages) {
    const [from, to] = m.direction === 'O->A' ? [so, sa] : [sa, so];
    const plain = data.encode(fromVector(m.message));
    assert.equal(hex(plain), m.plaintext, `${m.direction} seq ${m.seq}`);
    const sealed = await from.seal(plain);
    assert.equal(hex(sealed), m.sealed, `${m.direction} seq ${m.seq}`);
    assert.deepEqual(data.decode(await to.open(sealed)), fromVector(m.message));
  }
  for (const m of v1.data_malformed) {
    assert.throws(() => data.decode(fromHex(m.plaintext)), (e) => e instanceof data.MessageMalformed && e.code === m.fault, m.plaintext);
  }
  // media-state's flag bits a later version may use do not change what this one reads.
  assert.deepEqual(data.decode(Uint8Array.of(0x20, 0xfd)), { kind: 'media-state', microphone: true, camera: false });
});

test('names a peer gives lose what could hide or reorder what they show, as in Rust', () => {
  for (const { name, safe } of v1.file_names) assert.equal(safeFileName(name), safe, JSON.stringify(name));
  for (const { name, shown } of v1.display_names) assert.equal(cleanName(name), shown, JSON.stringify(name));
  assert.equal(safeFileName('photo\u202egpj.exe'), 'photogpj.exe');
});

test('every sealed plaintext decodes, is ignored or is malformed as in Rust', () => {
  assert.ok(v1.peer_signals.length >= 30);
  for (const v of v1.peer_signals) {
    const bytes = v.text !== undefined ? utf8(v.text) : fromHex(v.hex);
    const what = JSON.stringify(v.text ?? v.hex);
    if (v.decoded === 'malformed') assert.throws(() => decodeSignal(bytes), SignalMalformed, what);
    else if (v.decoded === 'ignored') assert.equal(decodeSignal(bytes), null, what);
    else assert.deepEqual(decodeSignal(bytes), v.decoded, what);
  }
});

test('a tampered, replayed or reflected data message closes the channel for good', async () => {
  const room = new Uint8Array(16);
  const [k1, k2] = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const mk = async () => [await data.DataSeal.create(room, { send: k1, receive: k2 }), await data.DataSeal.create(room, { send: k2, receive: k1 })];
  let [o, a] = await mk();
  const first = await o.seal(data.encode({ kind: 'delivered', id: 1 }));
  const bad = first.slice();
  bad[10] ^= 1;
  await assert.rejects(a.open(bad), (e) => e instanceof data.DataTampered && /authentication/.test(e.message));
  await assert.rejects(a.open(first), (e) => e instanceof data.DataTampered && /closed after tampering/.test(e.message));
  [o, a] = await mk();
  await a.open(first);
  await assert.rejects(a.open(first), (e) => e instanceof data.DataTampered && /out of sequence/.test(e.message));
  [o, a] = await mk();
  await assert.rejects(o.open(await o.seal(data.encode({ kind: 'delivered', id: 1 }))), data.DataTampered);
  assert.throws(() => data.encode({ kind: 'text', id: 1, text: 'a'.repeat(data.MAX_TEXT + 1) }), /1 to 4096 bytes/);
  assert.throws(() => data.encode({ kind: 'text', id: 1, text: '' }), /1 to 4096 bytes/);
});

test('every relay message decodes, is ignored or is malformed as in Rust', () => {
  assert.ok(v1.relay_messages.length >= 30);
  for (const { text, decoded } of v1.relay_messages) {
    if (decoded === 'malformed') assert.throws(() => parseServerMessage(text), RelayMessageMalformed, text);
    else if (decoded === 'ignored') assert.equal(parseServerMessage(text), null, text);
    else assert.deepEqual(parseServerMessage(text), decoded, text);
  }
});
