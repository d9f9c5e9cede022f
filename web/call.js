// The call with one peer, its I/O: the peer connection, the transform worker that holds the
// pair's media keys, and the messages. The protocol (handshake, sealed signaling, keys) is the
// pair's (pair.js), which follows the same rules as the native client's room.rs. The room (room.js)
// owns the relay connection, makes one of these for each peer it meets and drops it when the
// peer goes; the page (app.js) only shows what they report.

import { importBaseKey } from './crypto/sframe.js';
import { Pair } from './pair.js';
import { AUDIO_LEVEL, carriesDataChannel, withoutAudioLevel, withoutStrayCodecLines } from './sdp.js';
import { Messages } from './messages.js';

/** Always true in a relay built for use. Only the relay's `bench-no-e2ee` build, which the set-up
 *  benchmark compares against, rewrites this line (bench/README.md). */
const MEDIA_TRANSFORM = true;

/** What this browser lacks for an encrypted call, or null. Never falls back to plaintext. */
export async function missingFeatures() {
  const missing = [];
  if (typeof RTCRtpScriptTransform === 'undefined') missing.push('RTCRtpScriptTransform (WebRTC Encoded Transform)');
  try {
    await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
  } catch {
    missing.push('X25519 in WebCrypto');
  }
  return missing.length ? missing : null;
}

/** Trusted Types: the one script URL this page loads as a worker. */
function workerUrl() {
  // Relative to this module: the page may be served under a path (PROTOCOL.md §1).
  const url = new URL('./worker.js', import.meta.url).href;
  if (globalThis.trustedTypes) {
    const policy = globalThis.trustedTypes.createPolicy('sotto-worker', {
      createScriptURL: (u) => {
        if (u !== url) throw new Error('unexpected worker URL');
        return u;
      },
    });
    return policy.createScriptURL(url);
  }
  return url;
}

/** The peer's SDP was refused by this browser. */
class RemoteSetupError extends Error {}

export class PeerCall {
  /**
   * @param {object} o
   * @param {Uint8Array} o.secret
   * @param {string} o.peer      the peer's relay id
   * @param {'offerer'|'answerer'} o.role
   * @param {MediaStream} o.stream   local camera/microphone
   * @param {object[]} o.ice     the relay's ICE servers
   * @param {boolean} [o.relayOnly]   through TURN only: the peer never learns our address
   * @param {string|null} [o.name]    our name for the peer (a sealed `hello`)
   * @param {CryptoKeyPair|null} [o.device]   our device key, signing the pair's transcript (a
   *   sealed `identity`); null: incognito
   * @param {() => {microphone: boolean, camera: boolean}} [o.media]   whether our microphone
   *   and camera are on now, told to the peer once the data channel opens
   * @param {number} o.now       the room's clock (performance.now())
   * @param {(peer: string, bytes: Uint8Array) => void} o.send   to the relay
   * @param {(e: object) => void} o.onEvent   `state`, `sas`, `track`, `bye`, `failed` (with
   *   `reason`, and `end`: 'tampered', 'wrong-link', 'timed-out' or 'failed'), and `chat`
   *   ({ event }) for messages and files (messages.js), `name` ({ name }), `identity`
   *   ({ key }: their device key, which signed this pair's transcript, or null: none sent),
   *   `media` ({ microphone, camera }: theirs, told over the data channel)
   */
  constructor({ secret, peer, role, remade = false, stream, ice, relayOnly = false, name = null, device = null, media = () => ({ microphone: true, camera: true }), now, send, onEvent }) {
    Object.assign(this, { peer, role, stream, ice, relayOnly, media, send, onEvent });
    this.pc = null;
    this.pendingCandidates = [];
    this.connected = false;
    this.closed = false;
    /** Their offer or answer carried a data channel (true until it arrives). */
    this.peerHasData = true;
    this.worker = new Worker(workerUrl(), { type: 'module' });
    this.statsWaiters = new Map();
    this.worker.onmessage = (e) => {
      if (e.data.type === 'stats') this.statsWaiters.get(e.data.id)?.(e.data.stats);
    };
    // The protocol is the pair's (pair.js); what it asks for is done here, one at a time.
    this.pair = new Pair({ secret, peer, role, now, remade, name, device, output: (a) => this.act(a) });
    this.queue = Promise.resolve();
  }

  emit(e) {
    if (!this.closed) this.onEvent(e);
  }

  setState(state) {
    this.emit({ type: 'state', state });
  }

  start() {
    return this.pair.start();
  }

  /** Bytes from the peer. */
  receive(bytes) {
    return this.pair.receive(bytes);
  }

  /** The room's clock reached `now`: a set-up past its deadline ends the pair. */
  tick(now) {
    this.pair.tick(now);
  }

  /** One action of the pair's, after the ones before it. */
  act(a) {
    // What goes to the relay goes at once, in order; the keys go to the worker at once too
    // (the pair waits for that before its answer); what touches the peer connection waits for
    // the work before it.
    if (a.type === 'send') return this.send(this.peer, a.bytes);
    if (a.type === 'keys') return this.closed ? undefined : this.setKeys(a);
    // What the page is told goes at once too, in the pair's order: behind the queue a step of
    // the set-up would be told after the connection it led to.
    if (a.type === 'state') return this.setState(a.state);
    if (a.type === 'sas') return this.emit({ type: 'sas', code: a.code });
    if (a.type === 'name') return this.emit({ type: 'name', name: a.name });
    if (a.type === 'identity') return this.emit({ type: 'identity', key: a.key });
    this.queue = this.queue.then(() => (this.closed ? undefined : this.carryOut(a))).catch((e) => this.localFailure(e));
  }

  async carryOut(a) {
    switch (a.type) {
      case 'create-offer':
        return this.pair.offerCreated(await this.makeOffer());
      case 'create-answer':
        return this.pair.answerCreated(await this.makeAnswer(a.sdp));
      case 'accept-answer':
        await this.takeRemote('answer', a.sdp);
        return this.flushCandidates();
      case 'add-candidate':
        if (this.pc?.remoteDescription) return this.pc.addIceCandidate(a.candidate).catch(() => {});
        return this.pendingCandidates.push(a.candidate);
      case 'ended':
        if (a.end === 'hung-up') return this.emit({ type: 'bye' });
        return this.emit({ type: 'failed', end: a.end, reason: a.reason });
      default:
    }
  }

  /** This browser could not do its part. The browser's own error texts can quote the SDP they
   *  choke on: fixed words stand in. */
  localFailure(e) {
    if (this.closed) return;
    this.pair.close();
    const reason = e instanceof RemoteSetupError ? "the other browser's call set-up could not be read by this one" : 'this browser could not set up the connection';
    this.emit({ type: 'failed', reason });
  }

  /** The peer's offer or answer, cleaned of codec lines no browser needs (sdp.js). A
   *  description this browser still refuses is the peer's, and is said so. */
  async takeRemote(type, sdp) {
    // Without one, messages and files cannot reach them: the page says so instead of "once
    // connected" (PROTOCOL.md §3.6 "No data channel").
    this.peerHasData = carriesDataChannel(sdp);
    try {
      await this.pc.setRemoteDescription({ type, sdp: withoutStrayCodecLines(sdp) });
    } catch {
      if (!this.closed) throw new RemoteSetupError();
    }
  }

  async flushCandidates() {
    for (const c of this.pendingCandidates.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
  }

  createPeerConnection() {
    // A call closed while its handshake ran never makes a connection nobody would close.
    if (this.closed) throw new Error('closed');
    const pc = new RTCPeerConnection({
      iceServers: this.ice.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
      // Relayed candidates only: no host or server-reflexive address reaches the peer.
      iceTransportPolicy: this.relayOnly ? 'relay' : 'all',
    });
    pc.onicecandidate = (e) => {
      if (!this.closed) this.pair.localCandidate(e.candidate);
    };
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      // Connected before it is said: whoever hears it counts this call among the connected.
      if (pc.connectionState === 'connected') {
        this.connected = true;
        this.pair.connectedNow();
      }
      // A failed connection ends the pair: the room's rules say so (room-core.js).
      this.setState(pc.connectionState);
    };
    pc.ontrack = (e) => this.emit({ type: 'track', track: e.track });
    // The pair's one data channel (PROTOCOL.md §3.6), made before the offer or answer so that
    // both describe it: negotiated, id 0, ordered and reliable.
    const channel = pc.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true });
    this.messages = new Messages(channel, (event) => {
      // Microphone and camera states travel on the channel (never through the relay): ours
      // goes as soon as it opens, theirs is the page's to show.
      if (event.type === 'messages-ready') this.sendMedia();
      if (event.type === 'peer-media') return this.emit({ type: 'media', microphone: event.microphone, camera: event.camera });
      this.emit({ type: 'chat', event });
    });
    this.pc = pc;
    return pc;
  }
  /** Transforms are set when each transceiver is created, never in ontrack. */
  setReceiveTransform(transceiver) {
    if (!MEDIA_TRANSFORM) return;
    const kind = transceiver.receiver.track.kind;
    if (!transceiver.receiver.transform) transceiver.receiver.transform = new RTCRtpScriptTransform(this.worker, { side: 'receive', kind });
  }

  setSendTransform(sender, kind) {
    if (!MEDIA_TRANSFORM) return;
    sender.transform = new RTCRtpScriptTransform(this.worker, { side: 'send', kind });
  }

  pinCodecs(transceiver) {
    const kind = transceiver.receiver.track.kind;
    const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
    const want = kind === 'video' ? 'video/vp8' : 'audio/opus';
    const pinned = caps.filter((c) => c.mimeType.toLowerCase() === want);
    if (pinned.length) transceiver.setCodecPreferences(pinned);
    if (transceiver.setHeaderExtensionsToNegotiate && transceiver.getHeaderExtensionsToNegotiate) {
      const exts = transceiver.getHeaderExtensionsToNegotiate().map((x) => (x.uri === AUDIO_LEVEL ? { ...x, direction: 'stopped' } : x));
      try {
        transceiver.setHeaderExtensionsToNegotiate(exts);
      } catch {
        // The SDP is filtered as well (withoutAudioLevel).
      }
    }
  }

  ensureBothKinds(pc) {
    // A voice-only side still receives video: one audio and one video section always.
    for (const kind of ['audio', 'video']) {
      if (!pc.getTransceivers().some((t) => t.receiver.track.kind === kind)) {
        const t = pc.addTransceiver(kind, { direction: 'recvonly' });
        this.setReceiveTransform(t);
      }
    }
  }

  /** Makes the peer connection and its offer; returns the offer's SDP as set. */
  async makeOffer() {
    const pc = this.createPeerConnection();
    for (const track of this.stream.getTracks()) {
      const sender = pc.addTrack(track, this.stream);
      this.setSendTransform(sender, track.kind);
      this.setReceiveTransform(pc.getTransceivers().find((t) => t.sender === sender));
    }
    this.ensureBothKinds(pc);
    for (const t of pc.getTransceivers()) this.pinCodecs(t);
    const offer = await pc.createOffer();
    await pc.setLocalDescription({ type: 'offer', sdp: withoutAudioLevel(offer.sdp) });
    return pc.localDescription.sdp;
  }

  /** Makes the peer connection, applies the offer and answers; returns the answer's SDP as
   *  set. Candidates that came early are added once the offer is applied. */
  async makeAnswer(offerSdp) {
    const pc = this.createPeerConnection();
    await this.takeRemote('offer', offerSdp);
    // Receivers of the transceivers the offer created get their transform now, before any
    // track event; then our tracks are added with addTrack (never replaceTrack: Chromium would
    // send those plaintext) and each returned sender gets its transform.
    for (const t of pc.getTransceivers()) this.setReceiveTransform(t);
    for (const track of this.stream.getTracks()) {
      const sender = pc.addTrack(track, this.stream);
      this.setSendTransform(sender, track.kind);
    }
    for (const t of pc.getTransceivers()) this.pinCodecs(t);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription({ type: 'answer', sdp: withoutAudioLevel(answer.sdp) });
    await this.flushCandidates();
    return pc.localDescription.sdp;
  }

  /** The pair's keys: the media keys to the worker (which holds them; they are zeroed here),
   *  the data keys to the messages. */
  async setKeys({ media, data, room }) {
    const keys = {
      send: await importBaseKey(media.send),
      receive: await importBaseKey(media.receive),
      role: this.role,
      peerRole: this.role === 'offerer' ? 'answerer' : 'offerer',
    };
    media.send.fill(0);
    media.receive.fill(0);
    this.worker.postMessage({ type: 'keys', keys });
    await this.messages.start(room, data);
  }

  /** Tells the peer whether our microphone and camera are on (once the channel is open). */
  sendMedia() {
    if (!this.messages?.ready) return;
    const { microphone, camera } = this.media();
    this.messages.conversation.sendMediaState(microphone, camera);
  }

  async workerStats() {
    if (this.closed) return {};
    const id = Math.random();
    return new Promise((resolve) => {
      this.statsWaiters.set(id, (stats) => {
        this.statsWaiters.delete(id);
        resolve(stats);
      });
      this.worker.postMessage({ type: 'stats', id });
    });
  }

  /** Hangs up: the peer is told (sealed `bye`) when the handshake got that far. */
  async hangUp() {
    if (!this.closed) await this.pair.hangUp();
    this.close();
  }

  /** Drops the peer connection, the worker and the keys it holds. Nothing is reported after. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.pair.close();
    this.messages?.close();
    this.pc?.close();
    this.worker.terminate();
    for (const w of this.statsWaiters.values()) w({});
    this.statsWaiters.clear();
  }
}
