// The incremental SHA-256 against FIPS 180-4's examples and against WebCrypto's one-shot digest,
// fed in pieces of every size: however a file is chunked, its hash is the same.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, utf8 } from '../crypto/bytes.js';
import { Sha256 } from '../crypto/sha256.js';

const sha = (bytes) => hex(new Sha256().update(bytes).digest());
const webcrypto = async (bytes) => hex(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes)));

// Reproducible "random" bytes and piece sizes (mulberry32): a failure shows the same case again.
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function bytesOf(rand, n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rand() * 256;
  return out;
}

/** Hashes `bytes` in pieces of random sizes up to `most`, empty pieces included. */
function inPieces(bytes, rand, most) {
  const h = new Sha256();
  for (let at = 0; at < bytes.length; ) {
    const n = Math.floor(rand() * (most + 1));
    h.update(bytes.subarray(at, at + n));
    at += n;
  }
  return hex(h.update(new Uint8Array(0)).digest());
}

test('the FIPS 180-4 examples', () => {
  assert.equal(sha(utf8('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha(utf8('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    sha(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  // One million "a", in pieces of 1000 and at once.
  const piece = utf8('a'.repeat(1000));
  const h = new Sha256();
  for (let i = 0; i < 1000; i++) h.update(piece);
  assert.equal(hex(h.digest()), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  assert.equal(sha(utf8('a'.repeat(1_000_000))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('any chunking of any length gives what WebCrypto gives', async () => {
  const rand = prng(12);
  for (let n = 0; n <= 300; n++) {
    const bytes = bytesOf(rand, n);
    const want = await webcrypto(bytes);
    assert.equal(sha(bytes), want, `${n} bytes at once`);
    assert.equal(inPieces(bytes, rand, 70), want, `${n} bytes in pieces up to 70`);
    // Byte by byte: every position in the block buffer.
    const h = new Sha256();
    for (let i = 0; i < n; i++) h.update(bytes.subarray(i, i + 1));
    assert.equal(hex(h.digest()), want, `${n} bytes one at a time`);
  }
  for (const n of [4095, 4096, 16_000, 65_536, 1_000_003, 3_333_333]) {
    const bytes = bytesOf(rand, n);
    const want = await webcrypto(bytes);
    assert.equal(sha(bytes), want, `${n} bytes at once`);
    assert.equal(inPieces(bytes, rand, 20_000), want, `${n} bytes in pieces up to 20,000`);
    assert.equal(inPieces(bytes, rand, 200), want, `${n} bytes in pieces up to 200`);
  }
});

test('the check can fail: one bit of input changes the digest', async () => {
  const bytes = bytesOf(prng(7), 1000);
  const want = await webcrypto(bytes);
  for (const bit of [0, 7, 8 * 500 + 3, 8 * 999 + 7]) {
    const flipped = bytes.slice();
    flipped[bit >> 3] ^= 1 << (bit & 7);
    assert.notEqual(sha(flipped), want, `bit ${bit}`);
    assert.notEqual(inPieces(flipped, prng(bit), 90), want, `bit ${bit} in pieces`);
  }
  // And a missing byte at the end (the length is part of the hash).
  assert.notEqual(sha(bytes.subarray(0, 999)), want);
});

test('a finished hash refuses more input, and non-bytes are refused', () => {
  const h = new Sha256().update(utf8('abc'));
  assert.equal(h.digest().length, 32);
  assert.throws(() => h.update(utf8('d')), /finished/);
  assert.throws(() => h.digest(), /finished/);
  assert.throws(() => new Sha256().update('abc'), TypeError);
  assert.throws(() => new Sha256().update([1, 2, 3]), TypeError);
});
