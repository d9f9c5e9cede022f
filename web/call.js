// The call with one person, its I/O: the pair's protocol (pair.js: handshake, sealed
// signaling, keys; the same rules as the native client's room.rs) drives three separate parts:
// the pair's *transport* (transport.js: its peer connection), the room's *key source*
// (frame-keys.js: the pair's frame keys, by sender), and the *person*'s conversation
// (messages.js: messages and files, and their microphone and camera states). The room
// (room.js) makes one of these for each person it meets and drops it when they go; the page
// (app.js) only shows what they report.

import { pairTransport } from './frame-keys.js';
import { Pair } from './pair.js';
import { Messages } from './messages.js';
import { RemoteSetupError, PairTransport } from './transport.js';

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

export class PeerCall {
  /**
   * @param {object} o
   * @param {Uint8Array} o.secret
   * @param {string} o.peer      the peer's relay id
   * @param {'offerer'|'answerer'} o.role
   * @param {import('./frame-keys.js').FrameKeys} o.keys   the room's key source
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
  constructor({ secret, peer, role, remade = false, keys, stream, ice, relayOnly = false, name = null, device = null, media = () => ({ microphone: true, camera: true }), now, send, onEvent }) {
    Object.assign(this, { peer, role, keys, media, send, onEvent });
    this.connected = false;
    this.closed = false;
    this.messages = null;
    this.via = pairTransport(peer);
    this.transport = new PairTransport({
      via: this.via,
      keys,
      stream,
      ice,
      relayOnly,
      onCandidate: (c) => this.pair.localCandidate(c),
      onState: (state) => {
        // Connected before it is said: whoever hears it counts this call among the connected.
        if (state === 'connected') {
          this.connected = true;
          this.pair.connectedNow();
        }
        // A failed connection ends the pair: the room's rules say so (room-core.js).
        this.setState(state);
      },
      onTrack: (track) => this.emit({ type: 'track', track }),
      onChannel: (channel) => {
        this.messages = new Messages(channel, (event) => {
          // Microphone and camera states travel on the channel (never through the relay): ours
          // goes as soon as it opens, theirs is the page's to show.
          if (event.type === 'messages-ready') this.sendMedia();
          if (event.type === 'peer-media') return this.emit({ type: 'media', microphone: event.microphone, camera: event.camera });
          this.emit({ type: 'chat', event });
        });
      },
    });
    // The protocol is the pair's (pair.js); what it asks for is done here, one at a time.
    this.pair = new Pair({ secret, peer, role, now, remade, name, device, output: (a) => this.act(a) });
    this.queue = Promise.resolve();
  }

  /** Their offer or answer carried a data channel (PROTOCOL.md §3.6 "No data channel"). */
  get peerHasData() {
    return this.transport.peerHasData;
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
    // What goes to the relay goes at once, in order; the keys go to the key source and the
    // conversation at once too (the pair waits for that before its answer); what touches the
    // peer connection waits for the work before it.
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
        return this.pair.offerCreated(await this.transport.offer());
      case 'create-answer':
        return this.pair.answerCreated(await this.transport.answer(a.sdp));
      case 'accept-answer':
        return this.transport.acceptAnswer(a.sdp);
      case 'add-candidate':
        return this.transport.addCandidate(a.candidate);
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

  /** The pair's keys: the frame keys to the key source (for this pair's transport, and for
   *  this person as a sender), the data keys to the conversation. */
  async setKeys({ media, data, room }) {
    await this.keys.pairwise(this.peer, this.via, media, this.role);
    await this.messages.start(room, data);
  }

  /** Tells the peer whether our microphone and camera are on (once the channel is open). */
  sendMedia() {
    if (!this.messages?.ready) return;
    const { microphone, camera } = this.media();
    this.messages.conversation.sendMediaState(microphone, camera);
  }

  /** The counters of the worker that opens this person's frames. */
  async workerStats() {
    if (this.closed) return {};
    return this.keys.statsOf(this.peer);
  }

  /** Hangs up: the peer is told (sealed `bye`) when the handshake got that far. */
  async hangUp() {
    if (!this.closed) await this.pair.hangUp();
    this.close();
  }

  /** Drops the transport, the keys the key source held for it, and the conversation. Nothing
   *  is reported after. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.pair.close();
    this.messages?.close();
    this.transport.close();
  }
}
