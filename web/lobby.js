// Before joining: your camera as the others will see it, which camera and microphone, your name,
// whether to hide your IP address (relay-only), and incognito (no device identity sent, nothing
// stored). What you chose is kept for this tab (a reload, Rejoin or the next call go straight in)
// and, name and the two switches, for next time.
// DOM only; no innerHTML (the relay's CSP enforces Trusted Types).

import { MAX_NAME, cleanName } from './peer-signal.js';
import { relayInfo } from './signaling.js';

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();

/** This tab's choices, once made: { name, relayOnly, incognito, camera, microphone } (device
 *  ids). */
const TAB_KEY = 'sotto-choices';
/** Remembered across visits: the name and the relay-only switch. */
const NAME_KEY = 'sotto-name';
const RELAY_ONLY_KEY = 'sotto-relay-only';
const INCOGNITO_KEY = 'sotto-incognito';
const RELAY_ONLY_HELP = "Connects only through the relay's TURN server, so the others never learn your address.";

/** The choices made in this tab, or null before the first Join. */
export function tabChoices() {
  try {
    return JSON.parse(sessionStorage.getItem(TAB_KEY) ?? 'null');
  } catch {
    return null;
  }
}

function remember(choices) {
  try {
    sessionStorage.setItem(TAB_KEY, JSON.stringify(choices));
    localStorage.setItem(NAME_KEY, choices.name ?? '');
    localStorage.setItem(RELAY_ONLY_KEY, String(choices.relayOnly));
    localStorage.setItem(INCOGNITO_KEY, String(choices.incognito));
  } catch {
    // Storage refused (a private window may): the choices hold for this call only.
  }
}

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Camera and microphone as chosen (device ids, or the browser's default); without a camera,
 *  the microphone alone. Throws an Error whose message says what to do. */
export async function localMedia({ camera = '', microphone = '' } = {}) {
  const audio = microphone ? { deviceId: { ideal: microphone } } : true;
  const video = camera ? { deviceId: { ideal: camera } } : true;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (e) {
    if (e.name === 'NotAllowedError') throw new Error('Camera or microphone access was denied. Allow it in the browser (the icon in the address bar), then try again.');
    // No camera: a voice-only call.
    try {
      return await navigator.mediaDevices.getUserMedia({ audio });
    } catch (e2) {
      if (e2.name === 'NotAllowedError') throw new Error('Microphone access was denied. Allow it in the browser (the icon in the address bar), then try again.');
      throw new Error(`No microphone could be opened (${e2.name}).`);
    }
  }
}

/** The device id a stream's track of `kind` uses, or ''. */
const deviceOf = (stream, kind) => stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId ?? '';

/**
 * Shows the preview for a call (`group`: its size, or null). `joined` resolves with the choices
 * and the stream when the person presses Join: { stream, name, relayOnly, incognito, camera,
 * microphone };
 * `cancel()` (the page moved on) turns the camera off, and `joined` never resolves.
 */
export function lobby(group) {
  for (const m of document.querySelectorAll('main')) m.hidden = m.id !== 'lobby';
  $('lobby-title').textContent = group === null ? 'Join the call' : `Join the group call (up to ${group} people)`;
  $('name').value = stored(NAME_KEY) ?? '';
  $('relay-only').checked = stored(RELAY_ONLY_KEY) === 'true';
  $('relay-only').disabled = false;
  $('incognito').checked = stored(INCOGNITO_KEY) === 'true';
  $('relay-only-help').textContent = RELAY_ONLY_HELP;
  // Offered only where it can work: a relay without TURN cannot hide anyone's address.
  relayInfo().then(({ turn }) => {
    if (turn) return;
    $('relay-only').checked = false;
    $('relay-only').disabled = true;
    $('relay-only-help').textContent = 'This relay offers no TURN server, so your IP address cannot be hidden from the others on it.';
  });
  $('join').disabled = true;
  let stream = null;
  let cancelled = false;

  const error = (message) => {
    $('lobby-error').textContent = message;
    $('lobby-error').hidden = !message;
  };
  const stop = () => {
    for (const t of stream?.getTracks() ?? []) t.stop();
    stream = null;
  };

  /** Fills a select with the devices of `kind`, the one in use selected. */
  const fill = (select, devices, kind, inUse) => {
    const options = devices.filter((d) => d.kind === kind).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`;
      o.selected = d.deviceId === inUse;
      return o;
    });
    if (options.length === 0) {
      const o = document.createElement('option');
      o.value = '';
      o.textContent = kind === 'videoinput' ? 'No camera' : 'No microphone';
      options.push(o);
    }
    select.replaceChildren(...options);
    select.disabled = options.length < 2;
  };

  /** Opens the chosen devices and shows them. */
  let opening = 0;
  const open = async (choice) => {
    stop();
    const mine = ++opening;
    $('join').disabled = true;
    let s;
    try {
      s = await localMedia(choice);
    } catch (e) {
      if (mine !== opening || cancelled) return;
      error(e.message);
      $('join').textContent = 'Try again';
      $('join').disabled = false;
      return;
    }
    // A newer choice, or the page moved on, while the browser opened these: they go off.
    if (mine !== opening || cancelled) {
      for (const t of s.getTracks()) t.stop();
      return;
    }
    stream = s;
    error('');
    $('join').textContent = 'Join';
    $('join').disabled = false;
    $('preview').srcObject = stream;
    $('preview-none').hidden = stream.getVideoTracks().length > 0;
    // Labels are given once the page may use the devices.
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    fill($('camera-select'), devices, 'videoinput', deviceOf(stream, 'video'));
    fill($('mic-select'), devices, 'audioinput', deviceOf(stream, 'audio'));
  };
  const chosen = () => ({ camera: $('camera-select').value, microphone: $('mic-select').value });
  $('camera-select').onchange = () => open(chosen());
  $('mic-select').onchange = () => open(chosen());
  open({});

  const joined = new Promise((resolve) => {
    $('lobby-form').onsubmit = async (e) => {
      e.preventDefault();
      if (!stream) return open(chosen());
      const typed = $('name').value;
      const name = cleanName(typed);
      if (encoder.encode(name ?? '').length > MAX_NAME) {
        error(`A name is at most ${MAX_NAME} bytes; this one is ${encoder.encode(name).length}.`);
        $('name').focus();
        return;
      }
      const choices = {
        name,
        relayOnly: $('relay-only').checked,
        incognito: $('incognito').checked,
        camera: deviceOf(stream, 'video'),
        microphone: deviceOf(stream, 'audio'),
      };
      remember(choices);
      $('preview').srcObject = null;
      const s = stream;
      stream = null;
      resolve({ ...choices, stream: s });
    };
  });
  return {
    joined,
    cancel() {
      cancelled = true;
      stop();
      $('preview').srcObject = null;
    },
  };
}
