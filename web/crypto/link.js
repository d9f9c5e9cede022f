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

/**
 * The relay's base `scheme://authority/path/` of an `http(s)://authority[/path][?query]` URL
 * (PROTOCOL.md §1): the path is the directory the relay is served under and always ends in `/`.
 */
export function relayBase(url) {
  const m = /^(https?):\/\/([^/?#]*)([^?#]*)/.exec(url);
  if (!m) throw new LinkError('the link must start with https:// or http://');
  const [, scheme, authority, rawPath] = m;
  if (!authority) throw new LinkError('the link has no host');
  if (!/^[A-Za-z0-9.\-_:[\]]+$/.test(authority)) throw new LinkError("the link's host has characters a host cannot have");
  const path = rawPath || '/';
  if (!/^[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$/.test(path)) throw new LinkError("the link's path has characters a URL path cannot have");
  // Browsers read "%2e" as "." in a path: such segments are dot segments too.
  const dot = (s) => ['.', '..'].includes(s.toLowerCase().replaceAll('%2e', '.'));
  if (path.split('/').some(dot)) throw new LinkError("the link's path has a . or .. segment");
  return `${scheme}://${authority}${path}${path.endsWith('/') ? '' : '/'}`;
}

/** The fewest and the most people a group link may name (`#S.N`); 2 is a one-to-one link. */
export const MIN_GROUP = 3;
export const MAX_GROUP = 50;

/** The `N` of `#S.N`: decimal without sign or leading zero, 3 to 50 (7 and more: a conference). */
export function parseGroup(n) {
  const value = /^[1-9][0-9]?$/.test(n) ? Number(n) : NaN;
  if (!(value >= MIN_GROUP && value <= MAX_GROUP)) throw new LinkError('the group size after the secret must be a number from 3 to 50');
  return value;
}

/** Parses a link's fragment, `S` or `S.N`; returns { secret, group } (group null for `S`). */
export function parseFragment(fragment) {
  const dot = fragment.indexOf('.');
  const group = dot < 0 ? null : parseGroup(fragment.slice(dot + 1));
  return { secret: parseSecret(dot < 0 ? fragment : fragment.slice(0, dot)), group };
}

/** Parses a link; returns { base, secret, group } (group: N for `#S.N`, null for one-to-one). */
export function parseLink(text) {
  const t = text.trim();
  const hash = t.indexOf('#');
  if (hash < 0) throw new LinkError('no #secret at the end of the link');
  return { base: relayBase(t.slice(0, hash)), ...parseFragment(t.slice(hash + 1)) };
}

/** `BASE#S`, or `BASE#S.N` for a group of up to N people. */
export function linkText(base, secret, group = null) {
  return `${relayBase(base)}#${b64u(secret)}${group === null ? '' : `.${parseGroup(String(group))}`}`;
}

/** wss://HOST[:PORT]/[PATH/]ws, or ws:// for an http:// base. */
export function relayUrl(base) {
  const b = relayBase(base);
  return b.startsWith('http://') ? `ws://${b.slice(7)}ws` : `wss://${b.slice(8)}ws`;
}

/** room_id_raw = HKDF-SHA256(salt = empty, ikm = S, info = "sotto v1 room id", L = 16). */
export function roomId(secret) {
  return hkdf(new Uint8Array(0), secret, utf8('sotto v1 room id'), 16);
}
