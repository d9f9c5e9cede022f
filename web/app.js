// The page: home ("New call") and the call view. It shows what the room (room.js) reports and
// never touches keys. No inline script, no innerHTML (the relay's CSP enforces Trusted Types).

import { b64u } from './crypto/bytes.js';
import { generateSecret, LinkError, parseFragment, relayBase } from './crypto/link.js';
import { missingFeatures } from './call.js';
import { Room } from './room.js';
import { ChatPanel } from './chat.js';
import { Tiles } from './tiles.js';

const $ = (id) => document.getElementById(id);

function show(id) {
  for (const m of document.querySelectorAll('main')) m.hidden = m.id !== id;
}

/** Browsers give WebCrypto's X25519 and encoded transforms to secure contexts only. */
const INSECURE = 'This page was not loaded over HTTPS, so the browser withholds what an encrypted call needs. '
  + 'Open it with https:// (run the relay behind TLS: docs/relay.md); http://localhost works for testing on one machine.';

function newCall() {
  location.hash = b64u(generateSecret());
}

/** What the share panel says in a one-to-one call (index.html's own words). */
const SHARE_ONE = 'Send this link to the person you want to talk to. Anyone who has it can join: share it privately.';

/** A group link: the same secret, and how many people the room is for (PROTOCOL.md §1). */
function newGroupCall() {
  location.hash = `${b64u(generateSecret())}.${$('group-size').value}`;
}

async function home() {
  show('home');
  $('new-call').onclick = newCall;
  $('new-group').onclick = newGroupCall;
  if (!window.isSecureContext) {
    $('new-call').hidden = true;
    $('new-group').parentElement.hidden = true;
    $('insecure').textContent = INSECURE;
    $('insecure').hidden = false;
  }
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
  el.hidden = !message;
}

function badge(kind, text) {
  const el = $('badge');
  el.className = kind ? `badge ${kind}` : 'badge';
  el.textContent = text;
}

const STATES = {
  joining: 'Connecting to the relay…',
  'waiting-for-peer': 'Waiting for the other person to open the link…',
  'waiting-for-group': 'Waiting for others to open the link…',
  handshake: 'Exchanging keys…',
  'keys-confirmed': 'Keys confirmed. Compare the safety code.',
  negotiating: 'Setting up the connection…',
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Connection interrupted…',
  ended: 'Call ended',
};

/** Why a call ended, as a sentence for the person in it. */
function endedText(reason) {
  const words = {
    'you hung up': 'You hung up.',
    'the other side hung up': 'The other person hung up.',
    'this call already has two people (room full)': 'This call already has two people. You can rejoin when one of them leaves.',
    'this call already has all its people (room full)': 'This group call already has as many people as its link allows. You can rejoin when someone leaves.',
    'wrong link or tampered relay': 'Wrong link or tampered relay: the other side does not hold the same secret, or the relay interfered. Nothing was sent.',
    'lost the connection to the relay and could not reach it again': 'Lost the connection to the relay and could not reach it again.',
    "the other browser's call set-up could not be read by this one": "The other browser's call set-up could not be read by this browser. A current Chromium or Firefox on both sides works.",
    'this browser could not set up the connection': 'This browser could not set up the connection. Rejoin to try again.',
  };
  return words[reason] ?? `The call ended: ${reason}.`;
}

async function localMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (e) {
    if (e.name === 'NotAllowedError') throw new Error('Camera or microphone access was denied. Allow it in the browser, then press Rejoin.');
    // No camera: a voice-only call.
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e2) {
      if (e2.name === 'NotAllowedError') throw new Error('Microphone access was denied. Allow it in the browser, then press Rejoin.');
      throw new Error(`No microphone could be opened (${e2.name}).`);
    }
  }
}

/** The call on screen now: what `leave` must stop. */
let current = null;

function leave() {
  if (!current) return;
  clearInterval(current.statsTimer);
  current.room.hangUp();
  for (const t of current.stream?.getTracks() ?? []) t.stop();
  current = null;
}

// Closing or reloading the page sends no `bye`: the relay tells the other side this page left,
// and they wait for it to come back (a reload is back in a moment). Hanging up is the button.

/** The call view as it is before anything happened. */
function resetCallView() {
  show('call');
  $('status').textContent = 'Starting…';
  badge('', '');
  error('');
  $('ended').hidden = true;
  $('share').hidden = false;
  $('videos').hidden = false;
  $('controls').hidden = false;
  $('ended-reason').hidden = false;
  $('new-call-after').hidden = false;
  $('sas').hidden = true;
  $('sas-match').disabled = false;
  $('link').value = location.href;
  $('remote-video').srcObject = null;
  $('remote-audio').srcObject = null;
  $('local-video').srcObject = null;
  for (const id of ['mute', 'camera', 'hangup']) $(id).disabled = false;
  $('mute').textContent = 'Mute microphone';
  $('mute').setAttribute('aria-pressed', 'false');
  $('camera').textContent = 'Turn camera off';
  $('camera').setAttribute('aria-pressed', 'false');
  $('camera').hidden = false;
  $('copy').textContent = 'Copy link';
  $('no-video').hidden = false;
}

// Their video, once it has a frame, hides the "no video" note; losing the peer shows it again.
$('remote-video').addEventListener('resize', () => {
  $('no-video').hidden = $('remote-video').videoWidth > 0;
});

/** The page when no call can happen here: the reason, and nothing to press but New call (and
 *  not even that where no page of this relay can call: an insecure context). */
function cannotCall(status, message, { offerNewCall = true } = {}) {
  $('status').textContent = status;
  error(message);
  $('share').hidden = true;
  $('sas').hidden = true;
  $('videos').hidden = true;
  $('controls').hidden = true;
  $('ended-reason').hidden = true;
  $('rejoin').hidden = true;
  $('new-call-after').hidden = !offerNewCall;
  $('ended').hidden = !offerNewCall;
}

async function call(secret, group = null) {
  leave();
  resetCallView();
  // A group call shows a tile per person and a safety code per pair; one-to-one, the other
  // person fills the view and the code panel is theirs.
  $('videos').classList.toggle('group', group !== null);
  $('tiles').hidden = group === null;
  $('remote-figure').hidden = group !== null;
  const tiles = group === null ? null : new Tiles($('tiles'));
  $('share').querySelector('p').textContent = SHARE_ONE;
  $('chat-toggle').hidden = false;
  if (group !== null) {
    $('share').querySelector('p').textContent = `Send this link to the people you want to talk to (up to ${group} in all). Anyone who has it can join: share it privately.`;
    // Messages and files in a group call come with their own view (each person's pair carries
    // its own): until then the button is not offered.
    $('chat-toggle').hidden = true;
  }
  $('copy').onclick = async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      $('copy').textContent = 'Copied';
    } catch {
      $('link').select();
      $('copy').textContent = 'Press Ctrl+C to copy';
    }
    setTimeout(() => ($('copy').textContent = 'Copy link'), 2500);
  };
  $('rejoin').onclick = () => call(secret, group);
  $('new-call-after').onclick = newCall;
  $('rejoin').hidden = false;
  if (!window.isSecureContext) return cannotCall('This page cannot make a call.', INSECURE, { offerNewCall: false });
  const missing = await missingFeatures();
  if (missing) {
    return cannotCall(
      'This browser cannot make an encrypted call.',
      `Missing: ${missing.join(', ')}. Sotto never falls back to an unencrypted call; try a current Chromium or Firefox.`,
    );
  }
  const events = [];
  const remote = new MediaStream();
  let verified = false;
  const me = { room: null, stream: null, statsTimer: null };
  const room = new Room({
    // The page's directory: its modules and the relay's /ws live there (PROTOCOL.md §1).
    base: relayBase(new URL('./', location.href).href),
    secret,
    group,
    getStream: async () => {
      const stream = await localMedia();
      if (current !== me) return stream; // the room stops it
      me.stream = stream;
      $('local-video').srcObject = me.stream;
      $('camera').hidden = me.stream.getVideoTracks().length === 0;
      return me.stream;
    },
    onEvent: (e) => {
      if (current !== me) return;
      // The log holds no message text, file name or content: kinds and ids only.
      if (e.type === 'chat') events.push({ type: 'chat', kind: e.event.type, id: e.event.id, ...(e.event.direction && { direction: e.event.direction }), ...(e.event.accepted !== undefined && { accepted: e.event.accepted }) });
      else events.push(e.type === 'track' ? { type: 'track', kind: e.track.kind } : e);
      onEvent(e);
    },
  });
  me.room = room;
  current = me;
  const messages = () => {
    const m = room.call?.messages;
    if (!m?.ready) throw new Error('Messages and files work once the call is connected.');
    return m;
  };
  const chat = new ChatPanel({
    sendText: async (text) => messages().sendText(text),
    sendFile: async (file) => messages().sendFile(file),
    accept: async (id) => messages().accept(id),
    cancel: async (id, direction) => messages().cancel(id, direction),
  });
  // The page's event log (states, and the safety code it shows), which the browser tests read.
  // Nothing else of the call is reachable from a page global: no key, SDP or candidate.
  window.sotto = { events };

  function onEvent(e) {
    if (tiles && onGroupEvent(e)) return;
    if (e.type === 'state') {
      $('status').textContent = STATES[e.state] ?? e.state;
      if (e.state === 'connected') $('share').hidden = true;
      if (e.state === 'waiting-for-peer') $('share').hidden = false;
    } else if (e.type === 'reconnecting') {
      $('status').textContent = `Lost the relay; trying again in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt})…`;
    } else if (e.type === 'peer-lost-relay') {
      $('status').textContent = 'Connected (the other person lost the relay; the call goes on)';
    } else if (e.type === 'call-reset') {
      chat.setReady(false);
      // The call with the peer is gone (they left, or the relay went before it connected): a
      // new one brings a new safety code, to be compared again.
      for (const t of remote.getTracks()) remote.removeTrack(t);
      $('remote-video').srcObject = null;
      $('no-video').hidden = false;
      $('sas').hidden = true;
      $('sas-match').disabled = false;
      verified = false;
      badge('', '');
    } else if (e.type === 'sas') {
      $('sas').hidden = false;
      $('sas-code').textContent = `${e.code.slice(0, 3)} ${e.code.slice(3)}`;
      badge('encrypted', 'Encrypted');
    } else if (e.type === 'chat') {
      chat.onEvent(e.event);
    } else if (e.type === 'track') {
      remote.addTrack(e.track);
      $(e.track.kind === 'video' ? 'remote-video' : 'remote-audio').srcObject = remote;
    } else if (e.type === 'ended') {
      clearInterval(me.statsTimer);
      chat.end();
      $('status').textContent = 'Call ended';
      $('ended-reason').textContent = endedText(e.reason);
      $('ended').hidden = false;
      $('share').hidden = true;
      // Nothing of the call stays on screen: no code to compare, no frozen video.
      $('sas').hidden = true;
      $('videos').hidden = true;
      $('sas-match').disabled = true;
      for (const id of ['mute', 'camera', 'hangup']) $(id).disabled = true;
      badge('', '');
      if (e.error && e.reason !== 'this call already has two people (room full)') error(endedText(e.reason));
      for (const t of me.stream?.getTracks() ?? []) t.stop();
      $('local-video').srcObject = null;
      $('remote-video').srcObject = null;
      $('rejoin').focus();
    }
  }
  /** What a group call shows differently; true when the event was handled here. */
  function onGroupEvent(e) {
    const others = () => tiles.tiles.size;
    const connected = () => [...room.calls.values()].filter((c) => c.connected).length;
    const status = () => {
      const n = connected();
      $('status').textContent = n === 0 ? (others() === 0 ? STATES['waiting-for-group'] : 'Connecting…') : `In the call with ${n} ${n === 1 ? 'other person' : 'others'}`;
    };
    if (e.peer !== undefined) {
      if (e.type === 'state' && e.state === 'handshake') tiles.add(e.peer);
      else if (e.type === 'sas') tiles.code(e.peer, e.code);
      else if (e.type === 'track') tiles.track(e.peer, e.track);
      else if (['call-reset', 'peer-gone', 'peer-left'].includes(e.type)) tiles.remove(e.peer);
      else if (e.type === 'chat') return true;
      if (e.type === 'state' && e.state === 'connected') $('share').hidden = others() >= group - 1;
      status();
      return true;
    }
    if (e.type === 'state' && e.state === 'waiting-for-peer') {
      $('share').hidden = false;
      status();
      return true;
    }
    if (e.type === 'ended') tiles.clear();
    return false;
  }
  $('sas-match').onclick = () => {
    verified = true;
    badge('verified', 'Verified');
    $('sas-match').disabled = true;
  };
  $('mute').onclick = () => {
    const tracks = me.stream?.getAudioTracks() ?? [];
    const on = tracks.every((t) => !t.enabled);
    for (const t of tracks) t.enabled = on;
    $('mute').setAttribute('aria-pressed', String(!on));
    $('mute').textContent = on ? 'Mute microphone' : 'Unmute microphone';
  };
  $('camera').onclick = () => {
    const tracks = me.stream?.getVideoTracks() ?? [];
    const on = tracks.every((t) => !t.enabled);
    for (const t of tracks) t.enabled = on;
    $('camera').setAttribute('aria-pressed', String(!on));
    $('camera').textContent = on ? 'Turn camera off' : 'Turn camera on';
  };
  $('hangup').onclick = () => room.hangUp();
  // Frames that fail to authenticate turn the badge to "failing".
  // One question to the worker at a time: a slow answer never piles up waiters.
  let asking = false;
  me.statsTimer = setInterval(async () => {
    if (tiles) return groupStats();
    const c = room.call;
    if (room.ended || !c || asking) return;
    asking = true;
    const stats = await c.workerStats().finally(() => {
      asking = false;
    });
    if (room.ended || c !== room.call) return;
    const failing = Object.entries(stats).some(([k, s]) => k.startsWith('receive:') && s.failed > 0 && s.ok === 0);
    if (failing) badge('failing', 'Failing: frames do not authenticate');
    else if ($('sas').hidden === false) badge(verified ? 'verified' : 'encrypted', verified ? 'Verified' : 'Encrypted');
  }, 1000);
  /** A group's badges: each pair's frames that fail to authenticate turn its tile "failing". */
  async function groupStats() {
    if (room.ended || asking) return;
    asking = true;
    try {
      for (const [peer, c] of room.calls) {
        const stats = await c.workerStats();
        const t = tiles.tiles.get(peer);
        if (room.ended || !t || room.calls.get(peer) !== c) continue;
        const failing = Object.entries(stats).some(([k, s]) => k.startsWith('receive:') && s.failed > 0 && s.ok === 0);
        if (failing) tiles.setBadge(peer, 'failing', 'Failing: frames do not authenticate');
        else if (t.code.textContent) tiles.setBadge(peer, t.verified ? 'verified' : 'encrypted', t.verified ? 'Verified' : 'Encrypted');
      }
    } finally {
      asking = false;
    }
  }
  try {
    await room.start();
  } catch (e) {
    room.end(e.message, true);
  }
}

function route() {
  // The relay serves its page at the directory; a link names the directory, never the file.
  if (location.pathname.endsWith('/index.html')) {
    history.replaceState(null, '', location.pathname.slice(0, -'index.html'.length) + location.hash);
  }
  const fragment = location.hash.slice(1);
  if (!fragment) {
    leave();
    return home();
  }
  let link;
  try {
    link = parseFragment(fragment);
  } catch (e) {
    leave();
    resetCallView();
    $('new-call-after').onclick = newCall;
    return cannotCall('This link is not valid.', `This link is not valid: ${e instanceof LinkError ? e.message : e}. Ask for the link again, or start a new call.`);
  }
  return call(link.secret, link.group);
}

window.addEventListener('hashchange', route);
route();
