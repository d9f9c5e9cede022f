// Call links (PROTOCOL.md §1): https://HOST[:PORT]/#S, the room and the relay URL.

import { b64u, fromB64u, utf8 } from './bytes.js';
import { hkdf } from './kdf.js';

export class LinkError extends Error {}

export function generateSecret() {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

export function parseSecret(fragment) {
  if (fragment.length !== 43) throw new LinkError('the secret after # must be 43 base64url characters (32 bytes)');
  try {
    return fromB64u(fragment);
  } catch {
    throw new LinkError('the secret after # is not canonical base64url');
  }
}

function splitOrigin(url) {
  const m = /^(https?):\/\/([^/?#]*)/.exec(url);
  if (!m) throw new LinkError('the link must start with https:// or http://');
  if (!m[2]) throw new LinkError('the link has no host');
  if (!/^[A-Za-z0-9.\-_:[\]]+$/.test(m[2])) throw new LinkError("the link's host has characters a host cannot have");
  return { scheme: m[1], authority: m[2] };
}

/** Parses a link; returns { origin, secret }. */
export function parseLink(text) {
  const t = text.trim();
  const hash = t.indexOf('#');
  if (hash < 0) throw new LinkError('no #secret at the end of the link');
  const secret = parseSecret(t.slice(hash + 1));
  const { scheme, authority } = splitOrigin(t.slice(0, hash));
  return { origin: `${scheme}://${authority}`, secret };
}

export function linkText(origin, secret) {
  const { scheme, authority } = splitOrigin(origin);
  return `${scheme}://${authority}/#${b64u(secret)}`;
}

/** wss://HOST[:PORT]/ws, or ws:// for an http:// origin. */
export function relayUrl(origin) {
  const { scheme, authority } = splitOrigin(origin);
  return `${scheme === 'http' ? 'ws' : 'wss'}://${authority}/ws`;
}

/** room_id_raw = HKDF-SHA256(salt = empty, ikm = S, info = "sotto v1 room id", L = 16). */
export function roomId(secret) {
  return hkdf(new Uint8Array(0), secret, utf8('sotto v1 room id'), 16);
}
