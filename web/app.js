// The page: home ("New call") and the call view. It shows what call.js reports and never
// touches keys. No inline script, no innerHTML (the relay's CSP enforces Trusted Types).

import { b64u } from './crypto/bytes.js';
import { generateSecret, LinkError, parseSecret, relayBase } from './crypto/link.js';
import { Call, missingFeatures } from './call.js';

const $ = (id) => document.getElementById(id);

function show(id) {
  for (const m of document.querySelectorAll('main')) m.hidden = m.id !== id;
}

async function home() {
  show('home');
  $('new-call').onclick = () => {
    location.hash = b64u(generateSecret());
  };
  try {
    const res = await fetch('healthz', { cache: 'no-store' });
    $('relay-status').textContent = res.ok ? 'running' : `unhealthy (${res.status})`;
  } catch (e) {
    $('relay-status').textContent = `unreachable (${e.message})`;
  }
}

function error(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = false;
}

function badge(kind, text) {
  const el = $('badge');
  el.className = `badge ${kind}`;
  el.textContent = text;
}

const STATES = {
  joining: 'Connecting to the relay…',
  'waiting-for-peer': 'Waiting for the other person to open the link…',
  handshake: 'Exchanging keys…',
  'keys-confirmed': 'Keys confirmed. Compare the safety code.',
  negotiating: 'Setting up the connection…',
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Connection interrupted…',
  ended: 'Call ended',
};

async function localMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (e) {
    if (e.name === 'NotAllowedError') throw new Error('Camera or microphone access was denied. Allow it in the browser and reload.');
    // No camera: a voice-only call.
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e2) {
      if (e2.name === 'NotAllowedError') throw new Error('Microphone access was denied. Allow it in the browser and reload.');
      throw new Error(`No microphone could be opened (${e2.name}).`);
    }
  }
}

async function call(secret) {
  show('call');
  $('link').value = location.href;
  $('copy').onclick = () => navigator.clipboard?.writeText(location.href);
  const missing = await missingFeatures();
  if (missing) {
    $('status').textContent = 'This browser cannot make an encrypted call.';
    error(`Missing: ${missing.join(', ')}. Sotto never falls back to an unencrypted call; try a current Chromium or Firefox.`);
    return;
  }
  let stream;
  try {
    stream = await localMedia();
  } catch (e) {
    $('status').textContent = 'No call';
    error(e.message);
    return;
  }
  $('local-video').srcObject = stream;
  const events = [];
  const c = new Call({
    base: relayBase(location.origin + location.pathname),
    secret,
    stream,
    onEvent: (e) => {
      events.push(e.type === 'track' ? { type: 'track', kind: e.track.kind } : e);
      onEvent(e);
    },
  });
  // For the browser tests: the call and what it reported.
  window.sotto = { call: c, events };
  const remote = new MediaStream();
  let verified = false;
  function onEvent(e) {
    if (e.type === 'state') {
      $('status').textContent = STATES[e.state] ?? e.state;
      if (e.state === 'connected') $('share').hidden = true;
    } else if (e.type === 'sas') {
      $('sas').hidden = false;
      $('sas-code').textContent = `${e.code.slice(0, 3)} ${e.code.slice(3)}`;
      badge('encrypted', 'Encrypted');
    } else if (e.type === 'track') {
      remote.addTrack(e.track);
      $(e.track.kind === 'video' ? 'remote-video' : 'remote-audio').srcObject = remote;
    } else if (e.type === 'ended') {
      $('status').textContent = `Call ended: ${e.reason}`;
      if (e.error) error(e.reason === 'wrong link or tampered relay' ? 'Wrong link or tampered relay: the other side does not hold the same secret, or the relay interfered. Nothing was sent.' : e.reason);
      for (const t of stream.getTracks()) t.stop();
    }
  }
  $('sas-match').onclick = () => {
    verified = true;
    badge('verified', 'Verified');
    $('sas-match').disabled = true;
  };
  $('mute').onclick = () => {
    const on = stream.getAudioTracks().every((t) => !t.enabled);
    for (const t of stream.getAudioTracks()) t.enabled = on;
    $('mute').setAttribute('aria-pressed', String(!on));
    $('mute').textContent = on ? 'Mute microphone' : 'Unmute microphone';
  };
  $('camera').onclick = () => {
    const on = stream.getVideoTracks().every((t) => !t.enabled);
    for (const t of stream.getVideoTracks()) t.enabled = on;
    $('camera').setAttribute('aria-pressed', String(!on));
    $('camera').textContent = on ? 'Turn camera off' : 'Turn camera on';
  };
  $('camera').hidden = stream.getVideoTracks().length === 0;
  $('hangup').onclick = () => c.hangUp();
  // Frames that fail to authenticate turn the badge to "failing".
  setInterval(async () => {
    if (c.ended) return;
    const stats = await c.workerStats();
    const failing = Object.entries(stats).some(([k, s]) => k.startsWith('receive:') && s.failed > 0 && s.ok === 0);
    if (failing) badge('failing', 'Failing: frames do not authenticate');
    else if ($('sas').hidden === false) badge(verified ? 'verified' : 'encrypted', verified ? 'Verified' : 'Encrypted');
  }, 1000);
  window.addEventListener('beforeunload', () => c.hangUp());
  try {
    await c.start();
  } catch (e) {
    $('status').textContent = 'No call';
    error(e.message);
  }
}

function route() {
  const fragment = location.hash.slice(1);
  if (!fragment) return home();
  let secret;
  try {
    secret = parseSecret(fragment);
  } catch (e) {
    show('call');
    error(`This link is not valid: ${e instanceof LinkError ? e.message : e}`);
    return;
  }
  return call(secret);
}

window.addEventListener('hashchange', () => location.reload());
route();
