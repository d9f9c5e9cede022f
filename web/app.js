// The page: home ("New call") and the call view. It shows what the room (room.js) reports and
// never touches keys. No inline script, no innerHTML (the relay's CSP enforces Trusted Types).

import { b64u, fromB64u } from './crypto/bytes.js';
import { forgetDevice, knownDevices, knownName, rememberDevice, thisDevice } from './devices.js';
import { generateSecret, LinkError, parseFragment, relayBase } from './crypto/link.js';
import { missingFeatures } from './call.js';
import { Room } from './room.js';
import { Conference } from './conference.js';
import { ChatPanel } from './chat.js';
import { Tiles } from './tiles.js';
import { lobby, localMedia, tabChoices } from './lobby.js';
import { relayInfo } from './signaling.js';
import { AudioLevels } from './speaking.js';

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
  // Group sizes this relay takes (PROTOCOL.md §1: 3 to 50, up to its --max-peers; 7 and more
  // are conferences).
  const { max_peers: max } = await relayInfo();
  const sizes = [];
  for (let n = 3; n <= Math.min(max, 50); n++) {
    const o = document.createElement('option');
    o.textContent = String(n);
    o.selected = n === Math.min(max, 6);
    sizes.push(o);
  }
  $('group-size').replaceChildren(...sizes);
  if (sizes.length === 0) $('new-group').parentElement.hidden = true;
  await showKnownDevices();
}

/** The start of a device key, to tell devices apart (`a1b2 c3d4 e5f6 0718`, as `sotto known`). */
const fingerprint = (key) => [...fromB64u(key).slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('').match(/.{4}/g).join(' ');

/** The home page's list of known devices, each with its Forget button. */
async function showKnownDevices() {
  let devices = [];
  try {
    devices = await knownDevices();
  } catch {
    // No IndexedDB here (a private window may refuse it): nothing is known.
  }
  const items = devices.map((d) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = d.name;
    const key = document.createElement('span');
    key.className = 'small key';
    key.textContent = `key ${fingerprint(d.key)}`;
    const forget = document.createElement('button');
    forget.type = 'button';
    forget.textContent = 'Forget';
    forget.setAttribute('aria-label', `Forget ${d.name}`);
    forget.onclick = async () => {
      await forgetDevice(d.key);
      await showKnownDevices();
      $('known-title').focus?.();
    };
    li.append(name, key, forget);
    return li;
  });
  $('known-list').replaceChildren(...items);
  $('known-empty').hidden = items.length > 0;
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

/** The status line while a connection that dropped is made again (PROTOCOL.md §3.3). */
const DROPPED = 'Your connection dropped; reconnecting…';

/** The status line while the relay is tried again. */
const reconnecting = (e) => `Lost the relay; trying again in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt})…`;

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
    'hiding your IP address needs a TURN server, and this relay offers none': "Hiding your IP address needs a TURN server, and this relay offers none. Join without \u201cHide my IP address\u201d, or ask the relay's operator to add TURN (docs/relay.md).",
  };
  return words[reason] ?? `The call ended: ${reason}.`;
}

/** The call or preview on screen now: what `leave` must stop. */
let current = null;

function leave() {
  if (!current) return;
  clearInterval(current.statsTimer);
  current.lobby?.cancel();
  current.levels?.close();
  current.room?.hangUp();
  for (const t of current.stream?.getTracks() ?? []) t.stop();
  current = null;
}

// Closing or reloading the page sends no `bye`: the relay tells the others this page left, and
// they wait for it to come back (a reload is back in a moment, and goes straight into the call:
// this tab's choices are kept). Hanging up is the button.

/** A control button's words (its icon stays). */
function setLabel(id, text) {
  $(id).querySelector('.label').textContent = text;
}

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
  $('remember').hidden = true;
  $('people').hidden = true;
  $('group-code').hidden = true;
  $('pager').hidden = true;
  $('people-toggle').setAttribute('aria-expanded', 'false');
  $('link').value = location.href;
  $('local-video').srcObject = null;
  $('local-figure').classList.remove('camera-off');
  $('self-muted').hidden = true;
  for (const id of ['mute', 'camera', 'hangup']) $(id).disabled = false;
  setLabel('mute', 'Mute microphone');
  $('mute').setAttribute('aria-pressed', 'false');
  setLabel('camera', 'Turn camera off');
  $('camera').setAttribute('aria-pressed', 'false');
  $('camera').hidden = false;
  $('copy').textContent = 'Copy link';
}

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

/** A link opened: the preview first (once per tab), then the call. A page that cannot call
 *  says why and never opens the camera. */
async function openLink(secret, group) {
  leave();
  resetCallView();
  $('new-call-after').onclick = newCall;
  if (!window.isSecureContext) return cannotCall('This page cannot make a call.', INSECURE, { offerNewCall: false });
  const missing = await missingFeatures();
  if (missing) {
    return cannotCall(
      'This browser cannot make an encrypted call.',
      `Missing: ${missing.join(', ')}. Sotto never falls back to an unencrypted call; try a current Chromium or Firefox.`,
    );
  }
  const choices = tabChoices();
  if (choices) return call(secret, group, choices);
  const me = { lobby: lobby(group) };
  current = me;
  const joined = await me.lobby.joined;
  if (current !== me) return;
  call(secret, group, joined);
}

/** The call on `secret`'s link (`group`: its size, or null for one-to-one), with the choices
 *  of the preview (and its stream, or none: then the chosen devices are opened once the relay
 *  let us in, so a full room never turns the camera on). */
async function call(secret, group, { stream = null, name = null, relayOnly = false, incognito = false, camera = '', microphone = '' }) {
  leave();
  resetCallView();
  // This device's key signs each pair's transcript; none in incognito (and nothing stored).
  const device = incognito ? null : await thisDevice();
  // One tile per other person. A group shows each pair's code on its tile; one-to-one, the code
  // has its own panel and the other person fills the view.
  $('share').querySelector('p').textContent = group === null
    ? SHARE_ONE
    : `Send this link to the people you want to talk to (up to ${group} in all). Anyone who has it can join: share it privately.`;
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
  $('rejoin').onclick = () => call(secret, group, tabChoices() ?? { name, relayOnly, incognito, camera, microphone });
  $('new-call-after').onclick = newCall;
  $('rejoin').hidden = false;
  const events = [];
  const me = { room: null, stream: null, statsTimer: null, levels: null, redialing: false };
  current = me;
  $('tiles').removeAttribute('data-redialing');
  const tiles = new Tiles($('tiles'), $('people-list'), {
    single: group === null,
    onVerified: (peer) => {
      if (group === null) verify();
      askToRemember(peer);
    },
    onChange: (t) => {
      $('people-count').textContent = t.tiles.size ? String(t.tiles.size) : '';
    },
  });
  me.levels = new AudioLevels((peer, speaking) => {
    tiles.speaking(peer, speaking);
    if (speaking && me.room instanceof Conference) me.room.setSpeaker(peer);
  });
  const showStream = (s) => {
    me.stream = s;
    $('local-video').srcObject = s;
    $('camera').hidden = s.getVideoTracks().length === 0;
  };
  if (stream) showStream(stream);
  const conference = group !== null && group > 6;
  const Kind = conference ? Conference : Room;
  const room = new Kind({
    // The page's directory: its modules and the relay's /ws live there (PROTOCOL.md §1).
    base: relayBase(new URL('./', location.href).href),
    secret,
    group,
    name,
    device,
    relayOnly,
    getStream: async () => {
      if (me.stream) return me.stream;
      const s = await localMedia({ camera, microphone });
      if (current !== me) return s; // the room stops it
      showStream(s);
      return s;
    },
    onEvent: (e) => {
      if (current !== me) return;
      // The log holds no message text, file name, name or content: kinds and ids only.
      if (e.type === 'chat') events.push({ type: 'chat', kind: e.event.type, id: e.event.id, ...(e.peer && { peer: e.peer }), ...(e.event.direction && { direction: e.event.direction }), ...(e.event.accepted !== undefined && { accepted: e.event.accepted }) });
      else if (e.type === 'track') events.push({ type: 'track', kind: e.track.kind, peer: e.peer, ...(e.slot && { slot: e.slot }) });
      else if (e.type === 'speaker') return onEvent(e);
      else if (e.type === 'name') events.push({ type: 'name', peer: e.peer });
      else if (e.type === 'identity') return identify(e.peer, e.key);
      else events.push(e);
      onEvent(e);
    },
  });
  me.room = room;
  const ready = () => [...room.calls.values()].filter((c) => c.messages?.ready);
  // Every connected peer offered no data channel: waiting would not help (PROTOCOL.md §3.6).
  const noDataChannel = () => {
    const connected = [...room.calls.values()].filter((c) => c.connected);
    return connected.length > 0 && connected.every((c) => !c.peerHasData);
  };
  const chat = new ChatPanel(
    conference ? {
      // A conference's messages go to everyone in one MLS message (PROTOCOL.md §7.8).
      sendText: async (text) => {
        await room.sendText(text);
        return [];
      },
      sendFile: async () => {
        throw new Error('Files cannot be sent in conferences yet.');
      },
      accept: async () => {},
      cancel: async () => {},
      ready: () => room.member?.epoch !== null && room.member?.epoch !== undefined,
      noDataChannel: () => false,
    } : {
      sendText: async (text) => {
        const to = ready();
        if (to.length === 0) throw new Error('Messages work once the call is connected.');
        const sent = await Promise.allSettled(to.map(async (c) => ({ peer: c.peer, id: await c.messages.sendText(text) })));
        const ok = sent.filter((r) => r.status === 'fulfilled').map((r) => r.value);
        if (ok.length === 0) throw sent[0].reason;
        return ok;
      },
      sendFile: async (file) => {
        const to = ready();
        if (to.length === 0) throw new Error('Files work once the call is connected.');
        const sent = await Promise.allSettled(to.map((c) => c.messages.sendFile(file)));
        if (sent.every((r) => r.status === 'rejected')) throw sent[0].reason;
      },
      accept: async (peer, id) => room.calls.get(peer)?.messages?.accept(id),
      cancel: async (peer, id, direction) => room.calls.get(peer)?.messages?.cancel(id, direction),
      ready: () => ready().length > 0,
      noDataChannel,
    },
    { group: group !== null, conference, nameOf: (peer) => tiles.nameOf(peer) },
  );
  // The page's event log (states, and the safety code it shows), which the browser tests read.
  // Nothing else of the call is reachable from a page global: no key, SDP or candidate.
  window.sotto = { events };

  const connectedCount = () => [...room.calls.values()].filter((c) => c.connected).length;
  /** What the status line says in a group. */
  function groupStatus() {
    const n = connectedCount();
    $('status').textContent = n === 0 ? (tiles.tiles.size === 0 ? STATES['waiting-for-group'] : 'Connecting…') : `In the call with ${n} ${n === 1 ? 'other person' : 'others'}`;
  }
  /** One-to-one: the other person's code matches. */
  function verify() {
    badge('verified', 'Verified');
    $('sas-match').disabled = true;
    const t = tiles.first;
    if (t && !t.verified) tiles.verify(t.peer);
  }

  /** Their device's key signed this pair's transcript (or they sent none: `key` null): a
   *  device remembered here is verified at once, by the name given it; any other shows as not
   *  verified, with its code to compare. The log says which, never the name or key. */
  async function identify(peer, key) {
    let name = null;
    if (key && device) {
      try {
        name = await knownName(key);
      } catch {
        // No IndexedDB: nothing is known.
      }
    }
    if (current !== me || !tiles.tiles.has(peer)) return;
    showIdentity(peer, { status: key === null ? 'none' : name === null ? 'unknown' : 'known', name, key });
  }

  /** What is known of `peer`'s device, on their tile, in the log and (one-to-one) the badge. */
  function showIdentity(peer, { status, name, key }) {
    tiles.identity(peer, { status, name, key });
    events.push({ type: 'identity', peer, status });
    if (status === 'known' && group === null) knownOne(name);
  }

  /** One-to-one: the other person's device is one remembered here. */
  function knownOne(name) {
    badge('verified', `Verified: ${name} (known device)`);
    $('sas').hidden = true;
    $('sas-match').disabled = true;
  }

  /** The codes matched with `peer`: offer to remember their device (not in incognito, not a
   *  device that sent no key, not one already known). */
  function askToRemember(peer) {
    const t = tiles.tiles.get(peer);
    if (!device || t?.device?.status !== 'unknown') return;
    $('remember-who').textContent = group === null ? 'the other person' : tiles.nameOf(peer);
    $('remember-name').value = t.given ?? '';
    $('remember-error').hidden = true;
    $('remember').hidden = false;
    $('remember').dataset.peer = peer;
    $('remember-name').focus();
    $('remember-skip').onclick = () => {
      $('remember').hidden = true;
    };
    $('remember-form').onsubmit = async (ev) => {
      ev.preventDefault();
      try {
        const name = await rememberDevice(t.device.key, $('remember-name').value);
        if (current !== me) return;
        $('remember').hidden = true;
        if (tiles.tiles.get(peer) !== t) return;
        showIdentity(peer, { status: 'known', name, key: t.device.key });
      } catch (err) {
        $('remember-error').textContent = err.message;
        $('remember-error').hidden = false;
      }
    };
  }

  function onEvent(e) {
    if (conference) return onConferenceEvent(e);
    // What is about one person: their tile and row.
    if (e.peer !== undefined) {
      if (e.type === 'state' && e.state === 'handshake') tiles.add(e.peer);
      else if (e.type === 'state' && ['connected', 'disconnected', 'failed'].includes(e.state)) {
        tiles.connected(e.peer, e.state === 'connected');
        chat.setReady(ready().length > 0);
      }
      else if (e.type === 'sas') tiles.code(e.peer, e.code);
      else if (e.type === 'name') tiles.name(e.peer, e.name);
      else if (e.type === 'media') tiles.media(e.peer, e);
      else if (e.type === 'track') {
        tiles.track(e.peer, e.track);
        if (e.track.kind === 'audio') me.levels.watch(e.peer, e.track);
      } else if (e.type === 'chat') chat.onEvent(e.event, e.peer);
      else if (['call-reset', 'peer-gone'].includes(e.type)) {
        if ($('remember').dataset.peer === e.peer) $('remember').hidden = true;
        tiles.remove(e.peer);
        me.levels.unwatch(e.peer);
        chat.setReady(ready().length > 0);
      }
    }
    if (group !== null) return onGroupEvent(e);
    if (e.type === 'state' && e.peer === undefined) {
      $('status').textContent = STATES[e.state] ?? e.state;
      if (e.state === 'waiting-for-peer') $('share').hidden = false;
    } else if (e.type === 'peer-dropped') {
      // Until the pair is made again (through the relay again, when it was lost too), every
      // step of it says why it is happening.
      redialing(true);
    } else if (e.type === 'state') {
      if (e.state === 'connected') redialing(false);
      $('status').textContent = me.redialing ? DROPPED : (STATES[e.state] ?? e.state);
      if (e.state === 'connected') $('share').hidden = true;
    } else if (e.type === 'reconnecting') {
      $('status').textContent = me.redialing ? DROPPED : reconnecting(e);
    } else if (e.type === 'peer-lost-relay') {
      $('status').textContent = 'Connected (the other person lost the relay; the call goes on)';
    } else if (e.type === 'call-reset') {
      // The call with the peer is gone (they left, or the relay went before it connected): a
      // new one brings a new safety code, to be compared again.
      $('sas').hidden = true;
      $('sas-match').disabled = false;
      badge('', '');
    } else if (e.type === 'sas') {
      $('sas').hidden = false;
      $('sas-code').textContent = `${e.code.slice(0, 3)} ${e.code.slice(3)}`;
      $('sas-match').disabled = false;
      badge('encrypted', 'Not verified');
    } else if (e.type === 'ended') {
      ended(e);
    }
  }
  /** What a conference shows of an event: a tile per member, tracks moving between tiles as
   *  the view changes, the speaker large, and the one group code in the people panel. */
  function onConferenceEvent(e) {
    if (e.type === 'state' && e.peer !== undefined) {
      if (e.state === 'handshake') tiles.add(e.peer);
      else tiles.connected(e.peer, e.state === 'connected');
    } else if (e.type === 'state') {
      if (e.state === 'ended') return;
      const n = tiles.tiles.size;
      $('status').textContent = e.state === 'connected' && n > 0 ? `In the conference with ${n} ${n === 1 ? 'other person' : 'others'}` : (STATES[e.state] ?? e.state);
      $('share').hidden = n > 0;
    } else if (e.type === 'track') {
      // A slot now shows someone else: its track leaves the tile it was on.
      for (const t of tiles.tiles.values()) if (t.stream.getTracks().includes(e.track) && t.peer !== e.peer) tiles.untrack(t.peer, e.track);
      tiles.track(e.peer, e.track);
      if (e.track.kind === 'audio') me.levels.watch(e.peer, e.track);
    } else if (e.type === 'speaker') tiles.feature(e.peer);
    else if (e.type === 'page') {
      tiles.showOnly(e.shown);
      $('pager').hidden = e.pages <= 1;
      $('page-label').textContent = `Page ${e.page + 1} of ${e.pages}`;
      $('page-prev').disabled = e.page === 0;
      $('page-next').disabled = e.page >= e.pages - 1;
      $('page-prev').onclick = () => room.setPage(e.page - 1);
      $('page-next').onclick = () => room.setPage(e.page + 1);
    }
    else if (e.type === 'name') tiles.name(e.peer, e.name);
    else if (e.type === 'media') tiles.media(e.peer, e);
    else if (e.type === 'chat') chat.onEvent(e.event, e.peer);
    else if (e.type === 'peer-gone') {
      tiles.remove(e.peer);
      me.levels.unwatch(e.peer);
    } else if (e.type === 'group-code') {
      $('group-code').hidden = false;
      $('group-code-digits').textContent = e.code;
      $('group-code-match').disabled = false;
      $('group-code-match').textContent = 'Codes match';
      chat.setReady(true);
      badge('encrypted', 'Not verified');
    } else if (e.type === 'ended') ended(e);
  }
  $('group-code-match').onclick = () => {
    $('group-code-match').disabled = true;
    $('group-code-match').textContent = 'Verified';
    badge('verified', 'Verified');
    events.push({ type: 'group-verified' });
  };

  /** A dropped connection is being made again (or is again): the status and the empty call
   *  view say so. */
  function redialing(on) {
    me.redialing = on;
    $('tiles').toggleAttribute('data-redialing', on);
    if (on) $('status').textContent = DROPPED;
  }
  /** What a group call shows of an event. */
  function onGroupEvent(e) {
    if (e.type === 'state' && e.peer !== undefined && e.state === 'connected') $('share').hidden = tiles.tiles.size >= group - 1;
    if (e.type === 'state' && e.state === 'waiting-for-peer') $('share').hidden = false;
    if (e.type === 'reconnecting') {
      $('status').textContent = reconnecting(e);
      return;
    }
    if (e.type === 'ended') return ended(e);
    if (e.type === 'peer-dropped') {
      $('status').textContent = `Your connection with ${tiles.nameOf(e.peer)} dropped; reconnecting…`;
      return;
    }
    groupStatus();
  }
  function ended(e) {
    redialing(false);
    clearInterval(me.statsTimer);
    me.levels.close();
    chat.end();
    tiles.clear();
    $('status').textContent = 'Call ended';
    $('ended-reason').textContent = endedText(e.reason);
    $('ended').hidden = false;
    $('share').hidden = true;
    // Nothing of the call stays on screen: no code to compare, no frozen video.
    $('sas').hidden = true;
    $('remember').hidden = true;
    $('people').hidden = true;
    $('videos').hidden = true;
    $('sas-match').disabled = true;
    for (const id of ['mute', 'camera', 'hangup']) $(id).disabled = true;
    badge('', '');
    if (e.error && !/\(room full\)$/.test(e.reason)) error(endedText(e.reason));
    for (const t of me.stream?.getTracks() ?? []) t.stop();
    $('local-video').srcObject = null;
    $('rejoin').focus();
  }
  $('sas-match').onclick = verify;
  const media = () => ({
    microphone: (me.stream?.getAudioTracks() ?? []).some((t) => t.enabled),
    camera: (me.stream?.getVideoTracks() ?? []).some((t) => t.enabled),
  });
  $('mute').onclick = () => {
    const tracks = me.stream?.getAudioTracks() ?? [];
    const on = tracks.every((t) => !t.enabled);
    for (const t of tracks) t.enabled = on;
    $('mute').setAttribute('aria-pressed', String(!on));
    setLabel('mute', on ? 'Mute microphone' : 'Unmute microphone');
    $('self-muted').hidden = on;
    room.setMedia(media());
  };
  $('camera').onclick = () => {
    const tracks = me.stream?.getVideoTracks() ?? [];
    const on = tracks.every((t) => !t.enabled);
    for (const t of tracks) t.enabled = on;
    $('camera').setAttribute('aria-pressed', String(!on));
    setLabel('camera', on ? 'Turn camera off' : 'Turn camera on');
    $('local-figure').classList.toggle('camera-off', !on);
    room.setMedia(media());
  };
  $('hangup').onclick = () => room.hangUp();
  $('people-toggle').onclick = () => {
    const open = $('people').hidden;
    if (open && !$('chat').hidden) chat.toggle(false);
    $('people').hidden = !open;
    $('people-toggle').setAttribute('aria-expanded', String(open));
  };
  $('people-close').onclick = () => {
    $('people').hidden = true;
    $('people-toggle').setAttribute('aria-expanded', 'false');
    $('people-toggle').focus();
  };
  $('people').onkeydown = (e) => {
    if (e.key === 'Escape') $('people-close').click();
  };
  // One panel at a time: opening messages closes the people.
  $('chat-toggle').addEventListener('click', () => {
    if (!$('chat').hidden) {
      $('people').hidden = true;
      $('people-toggle').setAttribute('aria-expanded', 'false');
    }
  });
  // Frames that fail to authenticate turn the person's badge (one-to-one: the call's) to
  // "failing". One question to the workers at a time: a slow answer never piles up waiters.
  let asking = false;
  me.statsTimer = setInterval(async () => {
    if (room.ended || asking) return;
    asking = true;
    try {
      for (const [peer, c] of room.calls) {
        const stats = await c.workerStats();
        const t = tiles.tiles.get(peer);
        if (room.ended || !t || room.calls.get(peer) !== c) continue;
        const failing = Object.entries(stats).some(([k, s]) => k.startsWith('receive:') && s.failed > 0 && s.ok === 0);
        if (failing) tiles.setBadge(peer, 'failing', 'Failing: frames do not authenticate');
        else if (t.code.textContent) tiles.setBadge(peer, ...tiles.badgeOf(t));
        if (group === null) {
          if (failing) badge('failing', 'Failing: frames do not authenticate');
          else if (t.knownAs) knownOne(t.knownAs);
          else if (!$('sas').hidden) badge(...tiles.badgeOf(t));
        }
      }
    } finally {
      asking = false;
    }
  }, 1000);
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
  return openLink(link.secret, link.group);
}

window.addEventListener('hashchange', route);
route();
