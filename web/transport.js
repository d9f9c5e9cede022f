// A transport: how frames and messages travel, kept apart from who they are for and whose keys
// seal them (frame-keys.js). A pair's transport is one RTCPeerConnection with the person: its
// audio and video transceivers, each with its key source's transform set before media flows,
// and its one data channel. A conference will have one transport for everyone, to the SFU.

import { AUDIO_LEVEL, carriesDataChannel, withoutAudioLevel, withoutStrayCodecLines } from './sdp.js';

/** Only Opus and VP8 on `transceiver` (PROTOCOL.md §4.1), and never the audio level in clear
 *  (a pair's transports and a conference's alike). */
export function pinCodecs(transceiver, kind) {
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

/** The other end's SDP was refused by this browser. */
export class RemoteSetupError extends Error {}

export class PairTransport {
  /**
   * @param {object} o
   * @param {string} o.via        its transport id (frame-keys.js `pairTransport`)
   * @param {import('./frame-keys.js').FrameKeys} o.keys   the room's key source
   * @param {MediaStream} o.stream   local camera/microphone
   * @param {object[]} o.ice     the relay's ICE servers
   * @param {boolean} [o.relayOnly]   through TURN only: the peer never learns our address
   * @param {(c: RTCIceCandidate|null) => void} o.onCandidate
   * @param {(state: string) => void} o.onState   the connection's state changes
   * @param {(track: MediaStreamTrack) => void} o.onTrack
   * @param {(channel: RTCDataChannel) => void} o.onChannel   its data channel, the moment it
   *   exists (before anything can arrive on it)
   */
  constructor({ via, keys, stream, ice, relayOnly = false, onCandidate, onState, onTrack, onChannel }) {
    Object.assign(this, { via, keys, stream, ice, relayOnly, onCandidate, onState, onTrack, onChannel });
    this.pc = null;
    this.pendingCandidates = [];
    this.closed = false;
    /** Their offer or answer carried a data channel (true until it arrives). */
    this.peerHasData = true;
    keys.openTransport(via);
  }

  /** Makes the connection and its one data channel (PROTOCOL.md §3.6), before the offer or
   *  answer so that both describe it: negotiated, id 0, ordered and reliable. */
  create() {
    // A transport closed while its handshake ran never makes a connection nobody would close.
    if (this.closed) throw new Error('closed');
    const pc = new RTCPeerConnection({
      iceServers: this.ice.map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
      // Relayed candidates only: no host or server-reflexive address reaches the peer.
      iceTransportPolicy: this.relayOnly ? 'relay' : 'all',
    });
    pc.onicecandidate = (e) => {
      if (!this.closed) this.onCandidate(e.candidate);
    };
    pc.onconnectionstatechange = () => {
      if (!this.closed) this.onState(pc.connectionState);
    };
    pc.ontrack = (e) => this.onTrack(e.track);
    this.onChannel(pc.createDataChannel('sotto', { negotiated: true, id: 0, ordered: true }));
    this.pc = pc;
    return pc;
  }

  /** Transforms are set when each transceiver is created, never in ontrack. */
  setReceiveTransform(transceiver) {
    const transform = this.keys.receiveTransform(this.via, transceiver.receiver.track.kind);
    if (transform && !transceiver.receiver.transform) transceiver.receiver.transform = transform;
  }

  setSendTransform(sender, kind) {
    const transform = this.keys.sendTransform(this.via, kind);
    if (transform) sender.transform = transform;
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

  /** Makes the connection and its offer; returns the offer's SDP as set. */
  async offer() {
    const pc = this.create();
    for (const track of this.stream.getTracks()) {
      const sender = pc.addTrack(track, this.stream);
      this.setSendTransform(sender, track.kind);
      this.setReceiveTransform(pc.getTransceivers().find((t) => t.sender === sender));
    }
    this.ensureBothKinds(pc);
    for (const t of pc.getTransceivers()) pinCodecs(t, t.receiver.track.kind);
    const offer = await pc.createOffer();
    await pc.setLocalDescription({ type: 'offer', sdp: withoutAudioLevel(offer.sdp) });
    return pc.localDescription.sdp;
  }

  /** Makes the connection, applies the offer and answers; returns the answer's SDP as set.
   *  Candidates that came early are added once the offer is applied. */
  async answer(offerSdp) {
    const pc = this.create();
    await this.takeRemote('offer', offerSdp);
    // Receivers of the transceivers the offer created get their transform now, before any
    // track event; then our tracks are added with addTrack (never replaceTrack: Chromium would
    // send those plaintext) and each returned sender gets its transform.
    for (const t of pc.getTransceivers()) this.setReceiveTransform(t);
    for (const track of this.stream.getTracks()) {
      const sender = pc.addTrack(track, this.stream);
      this.setSendTransform(sender, track.kind);
    }
    for (const t of pc.getTransceivers()) pinCodecs(t, t.receiver.track.kind);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription({ type: 'answer', sdp: withoutAudioLevel(answer.sdp) });
    await this.flushCandidates();
    return pc.localDescription.sdp;
  }

  /** The other end's answer. */
  async acceptAnswer(sdp) {
    await this.takeRemote('answer', sdp);
    await this.flushCandidates();
  }

  /** One of their candidates (kept until their description is applied). */
  addCandidate(candidate) {
    if (this.pc?.remoteDescription) return this.pc.addIceCandidate(candidate).catch(() => {});
    this.pendingCandidates.push(candidate);
  }

  /** Their offer or answer, cleaned of codec lines no browser needs (sdp.js). A description
   *  this browser still refuses is theirs, and is said so. */
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

  /** The connection closes, and its key source's worker with it. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc?.close();
    this.keys.closeTransport(this.via);
  }
}
