// Known devices in this browser (DESIGN §4.11): this device's Ed25519 key, made on first use and
// kept as a non-extractable CryptoKey (the page can sign with it, never read it), and the other
// devices whose safety code this person compared and chose to remember, by name. Both live in
// IndexedDB, which stores a CryptoKey as it is. Nothing here is touched in incognito mode.

import { b64u, utf8 } from './crypto/bytes.js';
import { generateDeviceKey } from './crypto/identity.js';
import { MAX_NAME, cleanName } from './peer-signal.js';

const DB = 'sotto';
const SELF = 'device';
const KNOWN = 'known';

/** The longest device name, in bytes of UTF-8: as a `hello` name (and the terminal's). */
export const MAX_DEVICE_NAME = MAX_NAME;

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let opened = null;
function open() {
  opened ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore(SELF);
      r.result.createObjectStore(KNOWN, { keyPath: 'key' });
    };
    r.onsuccess = () => {
      // Another tab deleting or upgrading the database: this one lets go, and opens it again
      // when next asked.
      r.result.onversionchange = () => {
        r.result.close();
        opened = null;
      };
      resolve(r.result);
    };
    r.onerror = () => {
      opened = null;
      reject(r.error);
    };
  });
  return opened;
}

async function store(name, mode) {
  return (await open()).transaction(name, mode).objectStore(name);
}

/** This device's key pair, made and stored on first use; null where the browser cannot (no
 *  Ed25519, no IndexedDB): then no identity is sent, and the call goes on unverified. */
export async function thisDevice() {
  try {
    const mine = await request((await store(SELF, 'readonly')).get('key'));
    if (mine) return mine;
    const made = await generateDeviceKey();
    // `add`: a key another tab stored meanwhile is kept, and used.
    try {
      await request((await store(SELF, 'readwrite')).add(made, 'key'));
      return made;
    } catch {
      return (await request((await store(SELF, 'readonly')).get('key'))) ?? null;
    }
  } catch {
    return null;
  }
}

/** The devices this person remembered: [{ key (base64url), name, added (ms) }], oldest first. */
export async function knownDevices() {
  const all = await request((await store(KNOWN, 'readonly')).getAll());
  return all.sort((x, y) => x.added - y.added);
}

/** The name this person gave the device with public key `key` (bytes), or null. */
export async function knownName(key) {
  const found = await request((await store(KNOWN, 'readonly')).get(b64u(key)));
  return found?.name ?? null;
}

/** A name a person may give a device: trimmed, 1 to 64 bytes, no control characters; else
 *  null. */
export function deviceName(text) {
  const name = text.trim();
  // What a `hello` name may be (pair.js), and nothing cleaning would change.
  return name !== '' && cleanName(name) === name && utf8(name).length <= MAX_DEVICE_NAME ? name : null;
}

/** Remembers the device with public key `key` (bytes) under `name`; a device remembered before
 *  gets the new name. A name already given to another device is refused (Error, in words). */
export async function rememberDevice(key, name) {
  const clean = deviceName(name);
  if (clean === null) throw new Error('A device name is 1 to 64 bytes, without control characters.');
  const id = b64u(key);
  const taken = (await knownDevices()).some((d) => d.name === clean && d.key !== id);
  if (taken) throw new Error(`\u201c${clean}\u201d already names another device: choose another name, or forget that one first.`);
  await request((await store(KNOWN, 'readwrite')).put({ key: id, name: clean, added: Date.now() }));
  return clean;
}

/** Forgets the device with public key `key` (base64url). */
export async function forgetDevice(key) {
  await request((await store(KNOWN, 'readwrite')).delete(key));
}
