// The room a link leads to, its I/O: the relay connection, and a call (call.js) with each other
// person in the room. What the relay's messages and the calls' fates mean is decided by the
// room's rules (room-core.js, pure, the same as the native client's room.rs): a peer who leaves
// without `bye` (a reload, a crash) is waited for, and whoever joins next starts a new call with
// fresh keys; a relay lost before anyone connected is tried again with backoff and the room
// joined afresh; a connected call goes on without the relay, on either side: a peer the relay
// says left is gone only once its media stops too, or when it joins again. The page (app.js)
// shows what it reports.

import { b64u } from './crypto/bytes.js';
import { relayUrl, roomId } from './crypto/link.js';
import { PeerCall } from './call.js';
import { FrameKeys } from './frame-keys.js';
import { RoomCore } from './room-core.js';
import { Relay } from './signaling.js';

/** How often pairs still setting up look at their deadline (pair.js: SETUP_TIMEOUT_MS). */
const TICK_MS = 1000;

export class Room {
  /**
   * @param {object} o
   * @param {string} o.base     the relay's base URL (the page's own, PROTOCOL.md §1)
   * @param {Uint8Array} o.secret
   * @param {number|null} [o.group]   a group call for up to this many people; null: one-to-one
   * @param {string|null} [o.name]    our name for the others (sealed `hello`s)
   * @param {CryptoKeyPair|null} [o.device]   our device key (sealed `identity`s); null:
   *   incognito
   * @param {boolean} [o.relayOnly]   through the relay's TURN server only (hides our address)
   * @param {() => Promise<MediaStream>} o.getStream   camera and microphone, asked for once the
   *   relay let us in (the preview's, or, on Rejoin and the next call, opened then)
   * @param {(e: object) => void} o.onEvent   `state`, `reconnecting`, `peer-left`,
   *   `peer-lost-relay`, `call-reset`, `sas`, `track`, `chat`, `name`, `identity`, `media`,
   *   `ended` (with
   *   `reason` and `error`); those about one person carry their `peer`
   */
  constructor({ base, secret, group = null, name = null, device = null, relayOnly = false, getStream, onEvent }) {
    Object.assign(this, { base, secret, name, device, relayOnly, getStream, onEvent });
    /** Whether our microphone and camera are on, as everyone is told. */
    this.media = { microphone: true, camera: true };
    this.relay = null;
    /** peer -> PeerCall, oldest first. */
    this.calls = new Map();
    /** The room's frame keys (by sender), for every call's transport. */
    this.keys = new FrameKeys();
    this.stream = null;
    this.ice = [];
    this.timer = null;
    this.ticker = null;
    this.queue = Promise.resolve();
    this.core = new RoomCore({ group, output: (a) => this.act(a) });
  }

  get ended() {
    return this.core.ended;
  }

  /** The call with the one other person of a one-to-one room (the first, in a group). */
  get call() {
    return this.calls.values().next().value ?? null;
  }

  emit(e) {
    this.onEvent(e);
  }

  setState(state) {
    this.emit({ type: 'state', state });
  }

  async start() {
    this.room = b64u(await roomId(this.secret));
    this.ticker = setInterval(() => {
      const now = performance.now();
      for (const call of this.calls.values()) call.tick(now);
      this.core.tick(now);
    }, TICK_MS);
    await this.connect();
  }

  /** Opens the relay and joins; a first failure is the caller's (the relay is not there). */
  async connect() {
    this.setState('joining');
    let relay = null;
    // Messages and the close are handled one at a time, in order, and only while `relay` is the
    // room's connection: what a closed connection still delivers never meets the next one.
    const handle = (f) => {
      this.queue = this.queue
        .then(() => (relay && relay === this.relay && !this.ended ? f() : undefined))
        .catch(() => this.core.end('something unexpected went wrong in this page', true));
    };
    relay = await Relay.open(
      relayUrl(this.base),
      (msg) => handle(() => this.onRelay(msg)),
      () =>
        handle(() => {
          this.relay = null;
          this.core.relayClosed();
        }),
    );
    if (this.ended) return relay.close();
    this.relay = relay;
    this.core.relayOpened();
  }

  async onRelay(msg) {
    if (msg.type === 'welcome') {
      this.ice = msg.ice ?? [];
      if (this.relayOnly && !this.ice.some((s) => [s.urls].flat().some((u) => /^turns?:/.test(u)))) {
        return this.core.end('hiding your IP address needs a TURN server, and this relay offers none', true);
      }
      if (!this.stream) {
        let stream;
        try {
          stream = await this.getStream();
        } catch (e) {
          return this.core.end(e.message, true);
        }
        if (this.ended) {
          // Ended while the browser asked for the camera: it goes off at once.
          for (const t of stream.getTracks()) t.stop();
          return;
        }
        this.stream = stream;
      }
    }
    // A signal is handled by its pair before the next relay message (room-core.js).
    await this.core.relayMessage(msg);
  }

  /** One action of the room's rules. */
  act(a) {
    switch (a.type) {
      case 'join':
        return this.relay?.join(this.room, a.max);
      case 'open-pair':
        return this.openCall(a.peer, a.role, a.remade);
      case 'to-pair':
        return this.calls.get(a.peer)?.receive(a.bytes);
      case 'close-pair':
        return this.dropCall(a.peer);
      case 'state':
        return this.setState(a.state);
      case 'reconnect':
        this.emit({ type: 'reconnecting', attempt: a.attempt, delayMs: a.delayMs });
        this.timer = setTimeout(() => {
          this.timer = null;
          this.connect().catch(() => {
            if (!this.ended) this.core.reconnectFailed();
          });
        }, a.delayMs);
        return;
      case 'drop-relay': {
        const stale = this.relay;
        this.relay = null;
        return stale?.close();
      }
      case 'ended':
        return this.finish(a.reason, a.error);
      default:
        // peer-left, peer-lost-relay, peer-gone: the page's to show.
        return this.emit(a);
    }
  }

  openCall(peer, role, remade) {
    const call = new PeerCall({
      secret: this.secret,
      peer,
      role,
      remade,
      keys: this.keys,
      stream: this.stream,
      ice: this.ice,
      relayOnly: this.relayOnly,
      name: this.name,
      device: this.device,
      media: () => this.media,
      now: performance.now(),
      send: (to, bytes) => this.relay?.signal(to, bytes),
      onEvent: (e) => this.onCallEvent(call, e),
    });
    this.calls.set(peer, call);
    // Whatever fails in there is reported as the call's `failed` event.
    call.start();
  }

  /** Forgets the call with `peer` (its connection, worker and keys); the page is told. */
  dropCall(peer) {
    const call = this.calls.get(peer);
    if (!call) return;
    this.calls.delete(peer);
    call.close();
    this.emit({ type: 'call-reset', peer });
  }

  onCallEvent(call, e) {
    if (this.calls.get(call.peer) !== call || this.ended) return;
    const peer = call.peer;
    if (e.type === 'bye') return this.core.pairEnded(peer, 'hung-up', 'the other side hung up');
    if (e.type === 'failed') return this.core.pairEnded(peer, e.end ?? 'failed', e.reason);
    if (e.type === 'state') {
      if (e.state === 'connected') this.core.pairConnected(peer);
      this.core.pairConnectionState(peer, e.state, performance.now());
      // Gone with that state change (it had left the relay): nothing more of it is shown.
      if (this.calls.get(peer) !== call || this.ended) return;
    }
    this.emit({ ...e, peer });
  }

  /** Our microphone or camera went on or off: everyone is told, over their data channel. */
  setMedia(media) {
    this.media = { ...this.media, ...media };
    for (const call of this.calls.values()) call.sendMedia();
  }

  /** Hangs up: every person is told, the room is left. */
  async hangUp() {
    if (this.ended) return;
    await Promise.all([...this.calls.values()].map((c) => c.hangUp()));
    this.core.end('you hung up', false, 'hung-up');
  }

  /** Ends the call for a reason of the page's (the relay could not be reached at all, ...). */
  end(reason, error) {
    this.core.end(reason, error);
  }

  /** The call is over: the relay is left, every call closes. */
  finish(reason, error) {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.relay?.leave();
    this.relay?.close();
    for (const peer of [...this.calls.keys()]) this.dropCall(peer);
    this.keys.close();
    this.setState('ended');
    this.emit({ type: 'ended', reason, error });
  }
}
