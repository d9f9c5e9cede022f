// One call in the browser: the relay, the handshake, the peer connection and the transform
// worker. It follows the same rules as the native client's call.rs (PROTOCOL.md §3-4);
// the page (app.js) only shows what it reports.

import { b64u, utf8 } from './crypto/bytes.js';
import { Handshake, HandshakeError, generateKeyPair } from './crypto/handshake.js';
import { relayUrl, roomId } from './crypto/link.js';
import { dtlsFingerprint } from './crypto/sdp.js';
import { importBaseKey } from './crypto/sframe.js';
import { Relay } from './signaling.js';

const AUDIO_LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
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

/** Removes the audio-level header extension from an SDP (it would put loudness in clear). */
function withoutAudioLevel(sdp) {
  return sdp
    .split('\r\n')
    .filter((l) => !(l.startsWith('a=extmap:') && l.includes(AUDIO_LEVEL)))
    .join('\r\n');
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

export class Call {
  /**
   * @param {object} o
   * @param {string} o.base     the relay's base URL (the page's own, PROTOCOL.md §1)
   * @param {Uint8Array} o.secret
   * @param {MediaStream} o.stream   local camera/microphone
   * @param {(e: object) => void} o.onEvent
   */
  constructor({ base, secret, stream, onEvent }) {
    Object.assign(this, { base, secret, stream, onEvent });
    this.state = 'starting';
    this.pc = null;
    this.hs = null;
    this.peer = null;
    this.offer = null;
    this.ice = [];
    this.pendingCandidates = [];
    this.connected = false;
    this.ended = false;
    this.worker = new Worker(workerUrl(), { type: 'module' });
    this.statsWaiters = new Map();
    this.worker.onmessage = (e) => {
      if (e.data.type === 'stats') this.statsWaiters.get(e.data.id)?.(e.data.stats);
    };
    this.queue = Promise.resolve();
  }

  emit(e) {
    this.onEvent(e);
  }

  setState(state) {
    this.state = state;
    this.emit({ type: 'state', state });
  }

  async start() {
    this.keyPair = await generateKeyPair();
    this.relay = await Relay.open(
      relayUrl(this.base),
      // Relay messages are handled one at a time, in order.
      (msg) => (this.queue = this.queue.then(() => this.onRelay(msg)).catch((e) => this.fail(e))),
      () => {
        if (!this.connected) this.end('lost the connection to the relay', true);
      },
    );
    this.relay.join(b64u(await roomId(this.secret)));
    this.setState('joining');
  }

  fail(e) {
    if (e instanceof HandshakeError) {
      this.end(e.kind === 'wrong-link-or-tampered-relay' ? 'wrong link or tampered relay' : `call set-up tampered with: ${e.message}`, true);
    } else {
      this.end(String(e.message ?? e), true);
    }
  }

  async onRelay(msg) {
    if (this.ended) return;
    switch (msg.type) {
      case 'welcome':
        this.ice = msg.ice ?? [];
        if (msg.peers.length === 0) {
          this.setState('waiting-for-peer');
        } else if (msg.peers.length === 1) {
          this.peer = msg.peers[0];
          this.hs = await Handshake.answerer(this.secret, this.keyPair);
          this.setState('handshake');
        } else {
          this.end('the relay put more than two people in this call', true);
        }
        break;
      case 'peer-joined': {
        if (this.peer) return this.end('a third person joined this call', true);
        this.peer = msg.peer;
        const { hs, commit } = await Handshake.offerer(this.secret, this.keyPair);
        this.hs = hs;
        this.setState('handshake');
        this.relay.signal(this.peer, commit);
        break;
      }
      case 'peer-left':
        if (msg.peer === this.peer) this.end(this.connected ? 'the other side hung up' : 'the other side left before the call connected', !this.connected);
        break;
      case 'signal':
        if (msg.from !== this.peer) return this.end('a message from someone not in this call', true);
        await this.onPeerBytes(msg.bytes);
        break;
      case 'error':
        this.end(msg.code === 'room-full' ? 'this call already has two people (room full)' : `relay error ${msg.code}: ${msg.message}`, true);
        break;
      default:
      // Unknown relay messages are ignored (forward compatibility).
    }
  }

  async onPeerBytes(bytes) {
    const r = await this.hs.receive(bytes);
    if (r.keysReady) {
      if (r.reply) {
        this.relay.signal(this.peer, r.reply);
        await this.makeOffer();
      }
      return;
    }
    if (r.reply) return this.relay.signal(this.peer, r.reply);
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
      await this.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
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
        this.end('the other side hung up', false);
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
    this.relay.signal(this.peer, await this.hs.seal(utf8(JSON.stringify(obj))));
  }

  createPeerConnection() {
    const pc = new RTCPeerConnection({
      iceServers: this.ice.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    });
    pc.onicecandidate = (e) => {
      const q = () => (e.candidate ? this.seal({ t: 'candidate', candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex }) : this.seal({ t: 'end-of-candidates' }));
      this.queue = this.queue.then(q).catch((err) => this.fail(err));
    };
    pc.onconnectionstatechange = () => {
      this.setState(pc.connectionState);
      if (pc.connectionState === 'connected') this.connected = true;
      if (pc.connectionState === 'failed') this.end('the connection failed (ICE/DTLS)', true);
    };
    pc.ontrack = (e) => this.emit({ type: 'track', track: e.track });
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
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
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
      // Test hook (tests/browser): a page given a different key for the peer must drop every frame.
      receive: await importBaseKey(globalThis.__sottoTestWrongReceiveKey ? new Uint8Array(32).fill(9) : bytes.receive),
      role: this.hs.role,
      peerRole: this.hs.role === 'offerer' ? 'answerer' : 'offerer',
    };
    bytes.send.fill(0);
    bytes.receive.fill(0);
    this.worker.postMessage({ type: 'keys', keys });
    this.mediaKeysSet = true;
  }

  async workerStats() {
    const id = Math.random();
    return new Promise((resolve) => {
      this.statsWaiters.set(id, resolve);
      this.worker.postMessage({ type: 'stats', id });
    });
  }

  async hangUp() {
    if (this.ended) return;
    if (this.hs?.established) await this.seal({ t: 'bye' }).catch(() => {});
    this.end('you hung up', false);
  }

  end(reason, error) {
    if (this.ended) return;
    this.ended = true;
    this.relay?.leave();
    this.pc?.close();
    this.setState('ended');
    this.emit({ type: 'ended', reason, error });
  }
}
