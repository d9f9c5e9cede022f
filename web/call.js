// The call with one peer: its handshake, its peer connection and its transform worker. It
// follows the same rules as the native client's call.rs (PROTOCOL.md §3-4). The room (room.js)
// owns the relay connection, makes one of these for each peer it meets and drops it when the
// peer goes; the page (app.js) only shows what they report.

import { utf8 } from './crypto/bytes.js';
import { Handshake, HandshakeError, generateKeyPair } from './crypto/handshake.js';
import { dtlsFingerprint } from './crypto/sdp.js';
import { importBaseKey } from './crypto/sframe.js';
import { AUDIO_LEVEL, withoutAudioLevel, withoutStrayCodecLines } from './sdp.js';
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
   * @param {(peer: string, bytes: Uint8Array) => void} o.send   to the relay
   * @param {(e: object) => void} o.onEvent   `state`, `sas`, `track`, `bye`, `failed`, and
   *   `chat` ({ event }) for messages and files (messages.js)
   */
  constructor({ secret, peer, role, stream, ice, send, onEvent }) {
    Object.assign(this, { secret, peer, role, stream, ice, send, onEvent });
    this.pc = null;
    this.hs = null;
    this.offer = null;
    this.pendingCandidates = [];
    this.connected = false;
    this.closed = false;
    // Set by the room when the relay says the peer left while connected (room.js).
    this.peerLeftRelay = false;
    this.mediaKeysSet = false;
    this.worker = new Worker(workerUrl(), { type: 'module' });
    this.statsWaiters = new Map();
    this.worker.onmessage = (e) => {
      if (e.data.type === 'stats') this.statsWaiters.get(e.data.id)?.(e.data.stats);
    };
    this.queue = Promise.resolve();
  }

  emit(e) {
    if (!this.closed) this.onEvent(e);
  }

  setState(state) {
    this.emit({ type: 'state', state });
  }

  /** A fresh key for this peer; the offerer commits to it at once. */
  async start() {
    const keyPair = await generateKeyPair();
    if (this.role === 'offerer') {
      const { hs, commit } = await Handshake.offerer(this.secret, keyPair);
      this.hs = hs;
      if (this.closed) return;
      this.send(this.peer, commit);
    } else {
      this.hs = await Handshake.answerer(this.secret, keyPair);
    }
    this.setState('handshake');
  }

  /** Everything that can fail in here is the peer's or the relay's doing: said, not thrown.
   *  The browser's own error texts can quote the SDP they choke on: fixed words stand in. */
  fail(e) {
    if (this.closed) return;
    let reason;
    if (e instanceof HandshakeError) {
      reason = e.kind === 'wrong-link-or-tampered-relay' ? 'wrong link or tampered relay' : `call set-up tampered with: ${e.message}`;
    } else if (e instanceof RemoteSetupError) {
      reason = "the other browser's call set-up could not be read by this one";
    } else {
      reason = 'this browser could not set up the connection';
    }
    this.emit({ type: 'failed', reason });
  }

  /** The peer's offer or answer, cleaned of codec lines no browser needs (sdp.js). A
   *  description this browser still refuses is the peer's, and is said so. */
  async takeRemote(type, sdp) {
    try {
      await this.pc.setRemoteDescription({ type, sdp: withoutStrayCodecLines(sdp) });
    } catch {
      if (!this.closed) throw new RemoteSetupError();
    }
  }

  /** Bytes from the peer, handled one at a time, in order. */
  receive(bytes) {
    this.queue = this.queue.then(() => this.onPeerBytes(bytes)).catch((e) => this.fail(e));
    return this.queue;
  }

  async onPeerBytes(bytes) {
    if (this.closed) return;
    const r = await this.hs.receive(bytes);
    if (this.closed) return;
    if (r.keysReady) {
      if (r.reply) {
        this.send(this.peer, r.reply);
        await this.makeOffer();
      }
      return;
    }
    if (r.reply) return this.send(this.peer, r.reply);
    let m;
    try {
      m = JSON.parse(new TextDecoder().decode(r.message));
    } catch {
      throw new HandshakeError('tampered', 'a sealed message is not JSON');
    }
    await this.onSealed(m);
  }

  async onSealed(m) {
    const first = this.offer === null || (this.hs.role === 'offerer' && !this.mediaKeysSet);
    if (this.hs.role === 'answerer' && m.t === 'offer' && this.offer === null) {
      this.confirmed();
      this.offer = m.sdp;
      return this.makeAnswer(m.sdp);
    }
    if (this.hs.role === 'offerer' && m.t === 'answer' && first) {
      this.confirmed();
      await this.setMediaKeys(this.offer, m.sdp);
      await this.takeRemote('answer', m.sdp);
      return this.flushCandidates();
    }
    if (first) throw new HandshakeError('tampered', 'the first sealed message is not the offer/answer');
    switch (m.t) {
      case 'candidate':
        if (this.pc?.remoteDescription) await this.pc.addIceCandidate(m).catch(() => {});
        else this.pendingCandidates.push(m);
        break;
      case 'end-of-candidates':
        break;
      case 'bye':
        this.emit({ type: 'bye' });
        break;
      case 'offer':
      case 'answer':
        throw new HandshakeError('tampered', 'a second offer or answer');
      default:
      // Unknown `t` values are ignored.
    }
  }

  async flushCandidates() {
    for (const c of this.pendingCandidates.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
  }

  confirmed() {
    this.setState('keys-confirmed');
    this.emit({ type: 'sas', code: this.hs.safetyCode() });
  }

  async seal(obj) {
    if (this.closed) return;
    const sealed = await this.hs.seal(utf8(JSON.stringify(obj)));
    // Closed meanwhile: nothing more goes to that peer.
    if (!this.closed) this.send(this.peer, sealed);
  }

  createPeerConnection() {
    // A call closed while its handshake ran never makes a connection nobody would close.
    if (this.closed) throw new Error('closed');
    const pc = new RTCPeerConnection({
      iceServers: this.ice.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    });
    pc.onicecandidate = (e) => {
      const q = () => (e.candidate ? this.seal({ t: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex }) : this.seal({ t: 'end-of-candidates' }));
      this.queue = this.queue.then(q).catch((err) => this.fail(err));
    };
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      this.setState(pc.connectionState);
      if (pc.connectionState === 'connected') this.connected = true;
      if (pc.connectionState === 'failed') this.emit({ type: 'failed', reason: 'could not reach the other side directly (ICE/DTLS failed); a TURN server on the relay would help' });
    };
    pc.ontrack = (e) => this.emit({ type: 'track', track: e.track });
    // The pair's one data channel (PROTOCOL.md §3.6), made before the offer or answer so that
    // both describe it: negotiated, id 0, ordered and reliable.
    const channel = pc.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true });
    this.messages = new Messages(channel, (event) => this.emit({ type: 'chat', event }));
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
    const sdp = withoutAudioLevel(offer.sdp);
    await pc.setLocalDescription({ type: 'offer', sdp });
    this.offer = pc.localDescription.sdp;
    await this.seal({ t: 'offer', sdp: this.offer });
    this.setState('negotiating');
  }

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
    const mine = pc.localDescription.sdp;
    await this.setMediaKeys(offerSdp, mine);
    await this.seal({ t: 'answer', sdp: mine });
    await this.flushCandidates();
    this.setState('negotiating');
  }

  async setMediaKeys(offerSdp, answerSdp) {
    const fpO = dtlsFingerprint(offerSdp);
    const fpA = dtlsFingerprint(answerSdp);
    if (!fpO || !fpA) throw new HandshakeError('tampered', 'an SDP without a DTLS fingerprint');
    const bytes = await this.hs.mediaKeyBytes(fpO, fpA);
    const keys = {
      send: await importBaseKey(bytes.send),
      receive: await importBaseKey(bytes.receive),
      role: this.hs.role,
      peerRole: this.hs.role === 'offerer' ? 'answerer' : 'offerer',
    };
    bytes.send.fill(0);
    bytes.receive.fill(0);
    this.worker.postMessage({ type: 'keys', keys });
    this.mediaKeysSet = true;
    await this.messages.start(this.hs.room, await this.hs.dataKeyBytes(fpO, fpA));
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
    if (!this.closed && this.hs?.established) await this.seal({ t: 'bye' }).catch(() => {});
    this.close();
  }

  /** Drops the peer connection, the worker and the keys it holds. Nothing is reported after. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.messages?.close();
    this.pc?.close();
    this.worker.terminate();
    for (const w of this.statsWaiters.values()) w({});
    this.statsWaiters.clear();
  }
}
