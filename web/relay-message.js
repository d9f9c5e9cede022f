// What the relay says (PROTOCOL.md §2 "Relay to client"), decoded once at the edge into typed
// messages, by the same rules as proto/src/server.rs (`ServerMessage::decode`); both run the
// vectors' `relay_messages`. A relay is not trusted: a message that breaks these rules ends
// the connection (the room then treats it as a lost relay), and nothing malformed reaches the
// room's rules. Pure: no DOM.

import { wellFormed } from './peer-signal.js';

/** A relay message that breaks PROTOCOL.md §2. */
export class RelayMessageMalformed extends Error {
  constructor(why) {
    super(`the relay sent a malformed message (${why})`);
    this.name = 'RelayMessageMalformed';
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Canonical base64url without padding: the alphabet only, no length of 1 mod 4, and no bits
 *  set past the last whole byte. */
export function isCanonicalBase64url(s) {
  if (typeof s !== 'string') return false;
  if (s.length % 4 === 1) return false;
  for (const c of s) if (!ALPHABET.includes(c)) return false;
  if (s.length === 0) return true;
  const last = ALPHABET.indexOf(s.at(-1));
  if (s.length % 4 === 2) return (last & 0x0f) === 0;
  if (s.length % 4 === 3) return (last & 0x03) === 0;
  return true;
}

/** A peer id: 16 bytes, so 22 characters of canonical base64url. */
const isId = (s) => typeof s === 'string' && s.length === 22 && isCanonicalBase64url(s);
const isString = (v) => typeof v === 'string';
const absent = (v) => v === undefined || v === null;
/** A JSON number the relay's u64 fields can hold (`max`). */
const isU64 = (v) => Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
const isIce = (s) => s !== null && typeof s === 'object' && !Array.isArray(s) && Array.isArray(s.urls) && s.urls.every(isString) && (absent(s.username) || isString(s.username)) && (absent(s.credential) || isString(s.credential));
const ice = (s) => ({ urls: s.urls, ...(isString(s.username) && { username: s.username }), ...(isString(s.credential) && { credential: s.credential }) });

/** The type every field any relay message may carry must have when present (and not null),
 *  whatever the message's type: a newer relay may add fields, never change these. */
const FIELDS = {
  you: isString,
  peers: (v) => Array.isArray(v) && v.every(isString),
  ice: (v) => Array.isArray(v) && v.every(isIce),
  max: isU64,
  peer: isString,
  from: isString,
  data: isString,
  code: isString,
  message: isString,
  epoch: isU64,
  add: Array.isArray,
  remove: (v) => Array.isArray(v) && v.every(isString),
  sdp: isString,
};

/** The largest group a link may name (PROTOCOL.md §1); 2 is a one-to-one room. */
const MAX_GROUP = 50;

/** Decodes one text frame from the relay: the message (its fields normalised as the vectors
 *  show them), null for a type this version does not know (ignored: forward compatibility),
 *  or RelayMessageMalformed. */
export function parseServerMessage(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    throw new RelayMessageMalformed('not JSON');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new RelayMessageMalformed('not a JSON object');
  if (!wellFormed(m)) throw new RelayMessageMalformed('a string with a lone surrogate');
  if (!isString(m.type)) throw new RelayMessageMalformed('no string type');
  for (const [field, ok] of Object.entries(FIELDS)) {
    if (!absent(m[field]) && !ok(m[field])) throw new RelayMessageMalformed(`${field} of the wrong type`);
  }
  const id = (field) => {
    if (!isId(m[field])) throw new RelayMessageMalformed(`no valid ${field}`);
    return m[field];
  };
  const payload = (v) => {
    if (absent(v) || !isCanonicalBase64url(v)) throw new RelayMessageMalformed('data that is not canonical base64url');
    return v;
  };
  const epoch = () => {
    if (absent(m.epoch)) throw new RelayMessageMalformed('no epoch');
    return m.epoch;
  };
  const sealed = () => ({ type: m.type, from: id('from'), epoch: epoch(), data: payload(m.data) });
  switch (m.type) {
    case 'welcome': {
      const you = id('you');
      if (absent(m.peers)) throw new RelayMessageMalformed('no peers');
      if (!m.peers.every(isId)) throw new RelayMessageMalformed('a peer id that is not one');
      const max = absent(m.max) ? 2 : m.max;
      if (max < 2 || max > MAX_GROUP) throw new RelayMessageMalformed('a room size out of range');
      return { type: 'welcome', you, peers: m.peers, ice: (m.ice ?? []).map(ice), max };
    }
    case 'peer-joined':
    case 'peer-left':
      return { type: m.type, peer: id('peer') };
    case 'signal':
      return { type: 'signal', from: id('from'), data: payload(m.data) };
    // The conference's delivery service (PROTOCOL.md §7.5).
    case 'create-group':
      return { type: 'create-group' };
    case 'commit-task': {
      const e = epoch();
      if (absent(m.add) || absent(m.remove)) throw new RelayMessageMalformed('a commit task without add or remove');
      const add = m.add.map((k) => {
        if (k === null || typeof k !== 'object' || Array.isArray(k)) throw new RelayMessageMalformed('an add item that is not an object');
        if (!isId(k.peer)) throw new RelayMessageMalformed('an add item without a valid peer');
        return { peer: k.peer, data: payload(k.data) };
      });
      if (!m.remove.every(isId)) throw new RelayMessageMalformed('a peer id that is not one');
      return { type: 'commit-task', epoch: e, add, remove: m.remove };
    }
    case 'sfu-answer':
      if (absent(m.sdp)) throw new RelayMessageMalformed('no sdp');
      return { type: 'sfu-answer', sdp: m.sdp };
    case 'commit':
    case 'group-welcome':
    case 'group-message':
      return sealed();
    case 'error':
      if (absent(m.code)) throw new RelayMessageMalformed('no code');
      return { type: 'error', code: m.code, message: m.message ?? '' };
    default:
      return null;
  }
}
