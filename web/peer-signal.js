// What one peer says to another inside a sealed message (PROTOCOL.md §3.3), decoded once at the
// edge, and the rules for the texts a peer gives that a person will see (names, file names).
// Pure: no DOM, no I/O. The Rust twin is proto/src/peer.rs; both run the same vectors
// (tests/vectors/sotto-v1.json: peer_signals, display_names, file_names).

/** The longest name a `hello` may carry, in bytes of UTF-8 (DESIGN §4.9). */
export const MAX_NAME = 64;

// Control characters (Cc), format characters (Cf, Unicode 15.1) and the line and paragraph
// separators, as [first, last] code points: listed here rather than taken from the engine's
// Unicode tables (`\p{Cf}`) so that every implementation removes exactly the same set.
const INVISIBLE = [
  [0x0, 0x1f], [0x7f, 0x9f], [0xad, 0xad], [0x600, 0x605], [0x61c, 0x61c], [0x6dd, 0x6dd],
  [0x70f, 0x70f], [0x890, 0x891], [0x8e2, 0x8e2], [0x180e, 0x180e], [0x200b, 0x200f],
  [0x2028, 0x202e], [0x2060, 0x2064], [0x2066, 0x206f], [0xfeff, 0xfeff], [0xfff9, 0xfffb],
  [0x110bd, 0x110bd], [0x110cd, 0x110cd], [0x13430, 0x1343f], [0x1bca0, 0x1bca3],
  [0x1d173, 0x1d17a], [0xe0001, 0xe0001], [0xe0020, 0xe007f],
];

/** Whether a code point shows nothing of its own or changes how others show (PROTOCOL.md §3.6
 *  "Names"): removed from every name a peer gives, so `photo\u202egpj.exe` cannot pose as
 *  "photoexe.jpg". */
export function isInvisible(cp) {
  return INVISIBLE.some(([first, last]) => cp >= first && cp <= last);
}

const visible = (text) => [...text].filter((c) => !isInvisible(c.codePointAt(0))).join('');

/** A name from a `hello`, made fit to show (PROTOCOL.md §3.7 "Names"): invisible characters
 *  removed, white space trimmed; null when nothing is left. */
export function cleanName(name) {
  const trimmed = visible(name).trim();
  return trimmed === '' ? null : trimmed;
}

/** A received file name made safe to save and to show (PROTOCOL.md §3.6 "Names"). */
export function safeFileName(name) {
  const base = name.split(/[/\\]/).at(-1);
  const trimmed = visible(base).replace(/^[. ]+|[. ]+$/g, '');
  return trimmed === '' ? 'file' : trimmed;
}

/** A sealed plaintext that breaks PROTOCOL.md §3.3 "Plaintexts": the pair's set-up ends, as
 *  for a message that does not open. */
export class SignalMalformed extends Error {
  constructor(why) {
    super(`a sealed message is malformed (${why})`);
    this.name = 'SignalMalformed';
  }
}

// Strict UTF-8 that keeps a byte order mark (which is then not JSON), as a JSON parser of bytes
// does.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Every string in a parsed JSON value, keys too, is well-formed UTF-16: JSON.parse accepts a
 *  lone surrogate escape (`"\ud800"`), which no UTF-8 text can hold. */
export function wellFormed(value) {
  if (typeof value === 'string') return value.isWellFormed();
  if (Array.isArray(value)) return value.every(wellFormed);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v));
  }
  return true;
}

const isString = (v) => typeof v === 'string';
const optional = (v, test) => v === undefined || v === null || test(v);
const isLineIndex = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffff;

/** The fields each known `t` needs, and what it decodes to. */
const KNOWN = {
  offer: (m) => isString(m.sdp) && { t: 'offer', sdp: m.sdp },
  answer: (m) => isString(m.sdp) && { t: 'answer', sdp: m.sdp },
  candidate: (m) =>
    isString(m.candidate) &&
    optional(m.sdpMid, isString) &&
    optional(m.sdpMLineIndex, isLineIndex) && { t: 'candidate', candidate: m.candidate, sdpMid: m.sdpMid ?? null, sdpMLineIndex: m.sdpMLineIndex ?? null },
  'end-of-candidates': () => ({ t: 'end-of-candidates' }),
  bye: () => ({ t: 'bye' }),
  identity: (m) => isString(m.key) && isString(m.sig) && { t: 'identity', key: m.key, sig: m.sig },
};

/** Decodes a sealed plaintext (PROTOCOL.md §3.3 "Plaintexts"): the message with only the fields
 *  of its `t` (absent optional ones as null); null for a `t` this version does not know and for
 *  a `hello` whose name is not a string of at most 64 bytes (both ignored); SignalMalformed for
 *  anything else. */
export function decodeSignal(bytes) {
  let m;
  try {
    m = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    throw new SignalMalformed('not UTF-8 JSON');
  }
  if (!wellFormed(m)) throw new SignalMalformed('a string with a lone surrogate');
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new SignalMalformed('not a JSON object');
  if (!isString(m.t)) throw new SignalMalformed('no string t');
  if (m.t === 'hello') {
    return isString(m.name) && new TextEncoder().encode(m.name).length <= MAX_NAME ? { t: 'hello', name: m.name } : null;
  }
  if (!Object.hasOwn(KNOWN, m.t)) return null;
  const decoded = KNOWN[m.t](m);
  if (!decoded) throw new SignalMalformed(`a ${m.t} without its fields`);
  return decoded;
}
