// SHA-256, HMAC and HKDF (RFC 5869) on WebCrypto. HKDF-Extract and -Expand are separate here,
// because the protocol keeps one PRK and expands it twice (PROTOCOL.md §3.2, §3.5).

import { concat } from './bytes.js';

const subtle = globalThis.crypto.subtle;

export async function sha256(...parts) {
  return new Uint8Array(await subtle.digest('SHA-256', concat(...parts)));
}

async function hmac(hash, key, data) {
  const k = await subtle.importKey('raw', key.length ? key : new Uint8Array(hash === 'SHA-512' ? 128 : 64), { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}

/** HKDF-Extract: an empty salt is HashLen zeros (RFC 5869 §2.2). */
export function extract(salt, ikm, hash = 'SHA-256') {
  const len = hash === 'SHA-512' ? 64 : 32;
  return hmac(hash, salt.length ? salt : new Uint8Array(len), ikm);
}

/** HKDF-Expand of `prk` with `info` to `length` bytes. */
export async function expand(prk, info, length, hash = 'SHA-256') {
  const out = new Uint8Array(length);
  let t = new Uint8Array(0);
  for (let i = 1, at = 0; at < length; i++) {
    t = await hmac(hash, prk, concat(t, info, Uint8Array.of(i)));
    out.set(t.subarray(0, Math.min(t.length, length - at)), at);
    at += t.length;
  }
  return out;
}

export async function hkdf(salt, ikm, info, length, hash = 'SHA-256') {
  return expand(await extract(salt, ikm, hash), info, length, hash);
}
