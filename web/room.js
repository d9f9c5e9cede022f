// The room a link leads to: the relay connection, and the call with whoever else is in the room.
// The room outlives its calls and its relay connections (PROTOCOL.md §3.3): a peer who leaves
// without `bye` (a reload, a crash) is waited for, and whoever joins next starts a new call with
// fresh keys; a relay lost before the call connected is tried again with backoff and the room
// joined afresh; a connected call goes on without the relay, on either side: a peer the relay
// says left is gone only once its media stops too, or when it joins again. The page (app.js)
// shows what it reports.

import { b64u } from './crypto/bytes.js';
import { relayUrl, roomId } from './crypto/link.js';
import { PeerCall } from './call.js';
import { RECONNECT_ATTEMPTS, reconnectDelay } from './backoff.js';
import { Relay } from './signaling.js';

export class Room {
  /**
   * @param {object} o
   * @param {string} o.base     the relay's base URL (the page's own, PROTOCOL.md §1)
   * @param {Uint8Array} o.secret
   * @param {() => Promise<MediaStream>} o.getStream   camera and microphone, asked for only
   *   once the relay let us in (a full room never turns the camera on)
   * @param {(e: object) => void} o.onEvent   `state`, `reconnecting`, `peer-left`, `sas`,
   *   `track`, `ended` (with `reason` and `error`)
   */
  constructor({ base, secret, getStream, onEvent }) {
    Object.assign(this, { base, secret, getStream, onEvent });
    this.relay = null;
    this.call = null;
    this.stream = null;
    this.ice = [];
    this.ended = false;
    this.attempt = 0;
    this.timer = null;
    this.queue = Promise.resolve();
  }

  emit(e) {
    this.onEvent(e);
  }

  setState(state) {
    this.emit({ type: 'state', state });
  }

  async start() {
    this.room = b64u(await roomId(this.secret));
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
        .catch(() => this.end('something unexpected went wrong in this page', true));
    };
    relay = await Relay.open(
      relayUrl(this.base),
      (msg) => handle(() => this.onRelay(msg)),
      () => handle(() => this.onRelayClosed()),
    );
    if (this.ended) return relay.close();
    this.relay = relay;
    relay.join(this.room);
  }

  onRelayClosed() {
    this.relay = null;
    // Media flows peer to peer: a connected call needs the relay only to say goodbye.
    if (this.call?.connected) return;
    this.dropCall();
    this.retry();
  }

  retry() {
    this.attempt += 1;
    if (this.attempt > RECONNECT_ATTEMPTS) return this.end('lost the connection to the relay and could not reach it again', true);
    const delayMs = reconnectDelay(this.attempt);
    this.emit({ type: 'reconnecting', attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch(() => {
        if (!this.ended) this.retry();
      });
    }, delayMs);
  }

  /** Forgets the call with the peer (its connection, worker and keys); the page is told. */
  dropCall() {
    if (!this.call) return;
    this.call.close();
    this.call = null;
    this.emit({ type: 'call-reset' });
  }

  /** The peer is gone without hanging up: wait in the room for them to come back. */
  peerGone() {
    this.dropCall();
    this.emit({ type: 'peer-left' });
    this.setState('waiting-for-peer');
  }

  newCall(peer, role) {
    this.dropCall();
    const call = new PeerCall({
      secret: this.secret,
      peer,
      role,
      stream: this.stream,
      ice: this.ice,
      send: (to, bytes) => this.relay?.signal(to, bytes),
      onEvent: (e) => this.onCallEvent(call, e),
    });
    this.call = call;
    return call;
  }

  onCallEvent(call, e) {
    if (call !== this.call || this.ended) return;
    // Off the relay and now off the connection too: they are gone.
    if (call.peerLeftRelay && ((e.type === 'state' && ['disconnected', 'failed', 'closed'].includes(e.state)) || e.type === 'failed')) {
      return this.peerGone();
    }
    if (e.type === 'bye') return this.end('the other side hung up', false);
    if (e.type === 'failed') return this.end(e.reason, true);
    this.emit(e);
  }

  async onRelay(msg) {
    if (this.ended) return;
    switch (msg.type) {
      case 'welcome':
        this.attempt = 0;
        this.ice = msg.ice ?? [];
        if (!this.stream) {
          let stream;
          try {
            stream = await this.getStream();
          } catch (e) {
            return this.end(e.message, true);
          }
          if (this.ended) {
            // Ended while the browser asked for the camera: it goes off at once.
            for (const t of stream.getTracks()) t.stop();
            return;
          }
          this.stream = stream;
        }
        if (msg.peers.length === 0) {
          this.setState('waiting-for-peer');
        } else if (msg.peers.length === 1) {
          await this.newCall(msg.peers[0], 'answerer').start();
        } else {
          this.end('the relay put more than two people in this call', true);
        }
        break;
      case 'peer-joined':
        // Someone who left the relay joining again (a reload) starts a new call; while the
        // peer is on the relay, a newcomer would be a third person.
        if (this.call && !this.call.peerLeftRelay) return this.end('a third person joined this call', true);
        await this.newCall(msg.peer, 'offerer').start();
        break;
      case 'peer-left':
        if (msg.peer !== this.call?.peer) break;
        if (this.call.connected) {
          // Media flows peer to peer: they may only have lost the relay. The call goes on.
          this.call.peerLeftRelay = true;
          this.emit({ type: 'peer-lost-relay' });
        } else {
          // Left without `bye`: reloaded, crashed or lost. They may come back on this link.
          this.peerGone();
        }
        break;
      case 'signal':
        if (msg.from !== this.call?.peer) return this.end('a message from someone not in this call', true);
        await this.call.receive(msg.bytes);
        break;
      case 'error':
        // A signal in flight to a peer who just left: expected, and harmless.
        if (msg.code === 'unknown-peer') break;
        if (msg.code === 'room-full' && this.attempt > 0) {
          // Back after losing the relay, which still holds our old connection's place until its
          // keepalive fails: try again.
          const stale = this.relay;
          this.relay = null;
          stale.close();
          this.retry();
          break;
        }
        this.end(msg.code === 'room-full' ? 'this call already has two people (room full)' : `relay error ${msg.code}`, true);
        break;
      default:
      // Unknown relay messages are ignored (forward compatibility).
    }
  }

  /** Hangs up: the peer is told, the room is left. */
  async hangUp() {
    if (this.ended) return;
    await this.call?.hangUp();
    this.end('you hung up', false);
  }

  end(reason, error) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.relay?.leave();
    this.relay?.close();
    this.dropCall();
    this.setState('ended');
    this.emit({ type: 'ended', reason, error });
  }
}
