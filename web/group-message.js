// What a conference's members say to each other (PROTOCOL.md §7.8): MLS application messages,
// sealed by the group and by the link's key, so neither the relay nor the SFU reads them. Each
// is one JSON object; decoded once here, strictly. Pure: no DOM.

import { MAX_NAME, cleanName, wellFormed } from './peer-signal.js';
import { MAX_TEXT } from './crypto/data.js';

/** A group message that breaks PROTOCOL.md §7.8: dropped and counted. */
export class GroupMessageMalformed extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** `hello`: who we are and whether our microphone and camera are on (sent on joining, and
 *  again to each newcomer's epoch). */
export const hello = (name, { microphone, camera }) => encoder.encode(JSON.stringify({ t: 'hello', name: name ?? null, microphone, camera }));

/** `media`: our microphone and camera, when they change. */
export const media = ({ microphone, camera }) => encoder.encode(JSON.stringify({ t: 'media', microphone, camera }));

/** `text`: a message to everyone. */
export function text(body) {
  const bytes = encoder.encode(body);
  if (bytes.length === 0 || bytes.length > MAX_TEXT) throw new Error(`a message is 1 to ${MAX_TEXT} bytes`);
  return encoder.encode(JSON.stringify({ t: 'text', text: body }));
}

const isBool = (v) => typeof v === 'boolean';

/** Decodes one opened application message: { t, ... } normalised, null for a kind this
 *  version does not know (ignored), or GroupMessageMalformed. */
export function parseGroupMessage(bytes) {
  let m;
  try {
    m = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new GroupMessageMalformed('not UTF-8 JSON');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m) || typeof m.t !== 'string') throw new GroupMessageMalformed('not an object with a kind');
  if (!wellFormed(m)) throw new GroupMessageMalformed('a lone surrogate');
  switch (m.t) {
    case 'hello':
      if (!(m.name === null || (typeof m.name === 'string' && encoder.encode(m.name).length <= MAX_NAME)) || !isBool(m.microphone) || !isBool(m.camera)) throw new GroupMessageMalformed('a hello of the wrong shape');
      return { t: 'hello', name: m.name === null ? null : cleanName(m.name), microphone: m.microphone, camera: m.camera };
    case 'media':
      if (!isBool(m.microphone) || !isBool(m.camera)) throw new GroupMessageMalformed('a media state of the wrong shape');
      return { t: 'media', microphone: m.microphone, camera: m.camera };
    case 'text': {
      if (typeof m.text !== 'string') throw new GroupMessageMalformed('a text without text');
      const n = encoder.encode(m.text).length;
      if (n === 0 || n > MAX_TEXT) throw new GroupMessageMalformed('a text of the wrong length');
      return { t: 'text', text: m.text };
    }
    default:
      return null;
  }
}
