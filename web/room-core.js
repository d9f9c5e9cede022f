// The room's rules, without I/O: who is in the room, a pair for each other person, what the
// relay's messages and the pairs' fates mean, and when the call ends (PROTOCOL.md §2-3, DESIGN
// §4.9). The same rules as the native client's room.rs. The shell (room.js) feeds it relay
// messages and what happened to each pair; it answers through `output`, in order:
//
//   { type: 'join', max }                    join the room (max: the group size, or null)
//   { type: 'open-pair', peer, role, remade } start a pair with this person ('offerer': we
//                                            commit; 'answerer': we wait for their commit);
//                                            remade: made again after a drop, no set-up
//                                            deadline
//   { type: 'to-pair', peer, bytes }         bytes from the relay for that pair
//   { type: 'close-pair', peer }             that pair is over: close its connection
//   { type: 'state', state }                 'waiting-for-peer'
//   { type: 'peer-left', peer }              they left without hanging up (a reload, a crash)
//   { type: 'peer-gone', peer, end, reason } (groups) their pair ended: 'hung-up', 'tampered', ...
//   { type: 'peer-lost-relay', peer }        they left the relay, but media still flows
//   { type: 'peer-dropped', peer }           the connection with them, which worked, dropped:
//                                            it is being made again (PROTOCOL.md §3.3)
//   { type: 'reconnect', attempt, delayMs }  reach the relay again after this wait
//   { type: 'drop-relay' }                   close the relay connection now (it is stale)
//   { type: 'ended', reason, error }         the call is over; nothing comes after
//
// A one-to-one room (no group size) holds one pair, and its end is the call's; in a group a pair
// ends alone. Pure: no DOM, runs in the page and under node.

import { RECONNECT_ATTEMPTS, reconnectDelay } from './backoff.js';
import { COMMIT } from './crypto/handshake.js';

/** What a one-to-one call's end is, by how its one pair ended (room.rs `PairEnd::outcome`). */
const END_OF_CALL = { 'hung-up': 'peer-hung-up', tampered: 'tampered', 'wrong-link': 'wrong-link', failed: 'failed', 'timed-out': 'failed' };

/** How long a connection that worked may stay `disconnected` before it counts as dropped (room.rs
 *  DROP_AFTER): ICE recovers from shorter interruptions by itself. */
export const DROP_AFTER_MS = 4000;

export const CONNECTION_FAILED = 'could not reach the other side directly (ICE/DTLS failed); a TURN server on the relay would help';

export class RoomCore {
  /**
   * @param {object} o
   * @param {number|null} o.group   a group call for up to this many people, or null: one-to-one
   * @param {(action: object) => void} o.output
   */
  constructor({ group, output }) {
    this.group = group;
    this.output = output;
    /** 'awaiting-welcome' | 'awaiting-relay' | 'in-room' | 'ended' */
    this.state = 'awaiting-welcome';
    /** Reconnections since the last welcome (0 on the first connection). */
    this.attempt = 0;
    /** peer -> { role, connected (once), onRelay, disconnectedSince, restart }, oldest first. */
    this.pairs = new Map();
    /** False once the relay was lost while a pair was connected (until it is reached again). */
    this.onRelay = true;
  }

  get ended() {
    return this.state === 'ended';
  }

  /** True while media flows with at least one person. */
  get connected() {
    return [...this.pairs.values()].some((p) => p.connected);
  }

  /** Returns what the shell returns (a promise for `to-pair`, which the shell waits for). */
  emit(action) {
    if (!this.ended) return this.output(action);
    return undefined;
  }

  /** Connected to the relay (first time or again): join. */
  relayOpened() {
    if (this.ended) return;
    this.state = 'awaiting-welcome';
    this.emit({ type: 'join', max: this.group });
  }

  /** A message from the relay. For a signal, returns the pair's handling of it: the shell
   *  waits for it before the next message, so that a `bye` is read before the sender's
   *  peer-left that follows it. */
  relayMessage(msg) {
    if (this.ended) return undefined;
    switch (msg.type) {
      case 'welcome':
        return this.onWelcome(msg);
      case 'peer-joined':
        return this.onPeerJoined(msg.peer);
      case 'peer-left':
        return this.onPeerLeft(msg.peer);
      case 'signal': {
        const pair = this.pairs.get(msg.from);
        // A COMMIT from the pair's O once the pair had connected: the peer saw the connection
        // drop and asks for the pair to be made again (PROTOCOL.md §3.3). Taken only if the
        // connection does not work here either: a relay can forge a COMMIT, and must not be
        // able to tear down a working connection with one.
        if (pair?.connected && pair.role === 'answerer' && msg.bytes[0] === COMMIT) {
          if (pair.disconnectedSince === null) pair.restart = msg.bytes;
          else this.remake(msg.from, msg.bytes);
          return undefined;
        }
        if (pair) return this.emit({ type: 'to-pair', peer: msg.from, bytes: msg.bytes });
        // In a group, bytes from someone without a pair (one whose pair just ended) open
        // nothing and are dropped; in a one-to-one call there is no one else to talk to.
        if (this.group === null) this.end('a message from someone not in this call', true, 'protocol-violation');
        return undefined;
      }
      case 'error':
        return this.onError(msg);
      default:
      // Unknown relay messages are ignored (forward compatibility).
    }
  }

  onWelcome(msg) {
    if (this.state !== 'awaiting-welcome') return;
    this.attempt = 0;
    if (this.group === null && msg.peers.length > 1) return this.end('the relay put more than two people in this call', true, 'protocol-violation');
    this.state = 'in-room';
    this.onRelay = true;
    if (msg.peers.length === 0) this.emit({ type: 'state', state: 'waiting-for-peer' });
    // Those here first are O of their pair with us: each commits to us.
    for (const peer of msg.peers) this.open(peer, 'answerer');
  }

  onPeerJoined(peer) {
    if (this.state !== 'in-room') return;
    if (this.group === null) {
      const [old, pair] = [...this.pairs.entries()][0] ?? [];
      if (pair) {
        // While the peer is on the relay, a newcomer would be a third person.
        if (pair.onRelay) return this.end('a third person joined this call', true, 'protocol-violation');
        // The one who left the relay is back (a reload): a new pair with them.
        this.close(old);
      }
    }
    this.open(peer, 'offerer');
  }

  onPeerLeft(peer) {
    const pair = this.pairs.get(peer);
    if (!pair) return;
    if (pair.connected && pair.disconnectedSince === null) {
      // Media flows peer to peer: they may only have lost the relay. The pair goes on; it is
      // over when its connection drops, or when they join again. One already interrupted has
      // dropped with them.
      pair.onRelay = false;
      return this.emit({ type: 'peer-lost-relay', peer });
    }
    // Left without `bye`: reloaded, crashed or lost. They may come back on this link.
    this.gone(peer);
  }

  onError(msg) {
    // A signal in flight to a peer who just left: expected, and harmless.
    if (msg.code === 'unknown-peer') return;
    if (msg.code === 'room-full' && this.state === 'awaiting-welcome' && this.attempt > 0) {
      // Back after losing the relay, which still holds our old connection's place until its
      // keepalive fails: try again.
      this.emit({ type: 'drop-relay' });
      return this.retry();
    }
    if (msg.code === 'unavailable') {
      // A relay of several that lost the room store they share: it takes no join now, and
      // closes the connections it had in rooms. Tried again as a lost relay is; in a room, the
      // close that follows says what to do.
      if (this.state !== 'awaiting-welcome') return;
      this.emit({ type: 'drop-relay' });
      return this.retry();
    }
    const kind = `relay-error:${msg.code}`;
    if (msg.code === 'room-full') return this.end(this.group === null ? 'this call already has two people (room full)' : 'this call already has all its people (room full)', true, kind);
    if (msg.code === 'group-too-large') return this.end(`this relay does not hold calls that large: ${msg.message ?? ''}`.trim(), true, kind);
    this.end(`relay error ${msg.code}`, true, kind);
  }

  open(peer, role, remade = false) {
    this.pairs.set(peer, { role, connected: false, onRelay: true, disconnectedSince: null, restart: null });
    this.emit({ type: 'open-pair', peer, role, remade });
  }

  close(peer) {
    if (!this.pairs.delete(peer)) return;
    this.emit({ type: 'close-pair', peer });
  }

  /** They left without hanging up: their pair closes, and the room waits if no one is left. */
  gone(peer) {
    this.close(peer);
    this.emit({ type: 'peer-left', peer });
    this.waitOrReconnect();
  }

  /** No one left: wait for someone, or, off the relay with no connection left, reach the relay
   *  again (nothing can be set up from here). */
  waitOrReconnect() {
    if (this.reconnectIfStranded()) return;
    if (this.pairs.size === 0 && this.state === 'in-room') this.emit({ type: 'state', state: 'waiting-for-peer' });
  }

  /** Off the relay with no connected pair: the relay is reached again and the room joined
   *  afresh (PROTOCOL.md §3.3). True when that is what happens. */
  reconnectIfStranded() {
    if (this.state !== 'in-room' || this.onRelay || [...this.pairs.values()].some((p) => p.connected)) return false;
    for (const peer of [...this.pairs.keys()]) this.close(peer);
    this.retry();
    return true;
  }

  /** The connection with `peer`, which worked, dropped (PROTOCOL.md §3.3 "A connection that
   *  drops"): the pair closes and is made again with a fresh handshake in the same roles while
   *  both are on the relay; off the relay, this side rejoins it when no connection is left.
   *  `commit`: the peer's COMMIT that asked for it, for the new pair to take. */
  remake(peer, commit = null) {
    const pair = this.pairs.get(peer);
    if (!pair) return;
    this.close(peer);
    const stranded = !this.onRelay && ![...this.pairs.values()].some((p) => p.connected);
    if (!this.onRelay && !stranded) {
      // No relay to make it again through, and others still connected: gone for this side.
      this.emit({ type: 'peer-left', peer });
      return;
    }
    this.emit({ type: 'peer-dropped', peer });
    // Back on the relay first, as a newcomer everyone meets again.
    if (stranded) return this.reconnectIfStranded();
    // No set-up deadline: the peer may still be asleep; the relay says when they leave.
    this.open(peer, pair.role, true);
    if (commit) this.emit({ type: 'to-pair', peer, bytes: commit });
  }

  /** The clock (the shell's, in milliseconds) reached `now`: a connection `disconnected` for
   *  DROP_AFTER_MS counts as dropped. */
  tick(now) {
    for (const [peer, pair] of [...this.pairs]) {
      if (pair.disconnectedSince !== null && now - pair.disconnectedSince >= DROP_AFTER_MS) this.remake(peer);
    }
  }

  /** The pair with `peer` connected. */
  pairConnected(peer) {
    const pair = this.pairs.get(peer);
    if (pair) pair.connected = true;
  }

  /** The connection of `peer`'s pair changed state ('connected', 'disconnected', 'failed',
   *  'closed', ...) at `now` (the shell's clock, in milliseconds). */
  pairConnectionState(peer, state, now) {
    const pair = this.pairs.get(peer);
    if (!pair) return;
    if (state === 'connected') {
      pair.disconnectedSince = null;
      return;
    }
    // Off the relay and now off the connection too: they are gone.
    if (!pair.onRelay && ['disconnected', 'failed', 'closed'].includes(state)) return this.gone(peer);
    // A connection that never came up is not made again: what to try is said.
    if (!pair.connected) {
      if (state === 'failed') this.pairEnded(peer, 'failed', CONNECTION_FAILED);
      return;
    }
    // It worked and stopped: with the peer asking for a new pair, or no relay to wait for
    // recovery through, it is made again now; else after DROP_AFTER_MS unless it recovers.
    if (state === 'failed') return this.remake(peer, pair.restart);
    if (state === 'disconnected' && pair.disconnectedSince === null) {
      if (pair.restart) return this.remake(peer, pair.restart);
      if (!this.onRelay) return this.remake(peer);
      pair.disconnectedSince = now;
    }
  }

  /** `peer`'s pair ended ('hung-up', 'tampered', 'wrong-link', 'timed-out', 'failed'). One
   *  that is off the relay and fails is simply gone. In a one-to-one call the person is the
   *  call; in a group the room goes on. */
  pairEnded(peer, end, reason) {
    const pair = this.pairs.get(peer);
    if (!pair) return;
    if (!pair.onRelay && end === 'failed') return this.gone(peer);
    if (this.group === null) {
      // The person is the call: their pair's end is told, then the call's, as in room.rs.
      this.emit({ type: 'peer-gone', peer, end, reason });
      return this.end(end === 'hung-up' ? 'the other side hung up' : reason, end !== 'hung-up', END_OF_CALL[end]);
    }
    this.close(peer);
    this.emit({ type: 'peer-gone', peer, end, reason });
    this.waitOrReconnect();
  }

  /** The relay connection ended. Connected pairs go on without it (media is peer to peer);
   *  the others cannot finish. With none connected the relay is tried again. */
  relayClosed() {
    if (this.ended || this.state === 'awaiting-relay') return;
    if (this.connected) {
      // The connected go on; the others cannot finish without the relay. When the last
      // connection drops, the relay is reached again.
      this.onRelay = false;
      for (const [peer, pair] of [...this.pairs]) if (!pair.connected) this.gone(peer);
      return;
    }
    for (const peer of [...this.pairs.keys()]) this.close(peer);
    this.retry();
  }

  /** Reaching the relay again failed. */
  reconnectFailed() {
    if (this.state === 'awaiting-relay' || this.state === 'awaiting-welcome') this.retry();
  }

  retry() {
    this.attempt += 1;
    if (this.attempt > RECONNECT_ATTEMPTS) return this.end('lost the connection to the relay and could not reach it again', true, 'relay-lost');
    this.state = 'awaiting-relay';
    this.emit({ type: 'reconnect', attempt: this.attempt, delayMs: reconnectDelay(this.attempt) });
  }

  /** The call is over (the shell hangs up every pair first when it is ours). `kind` names the
   *  outcome for code (the scenarios, tests): 'hung-up' (we did), 'peer-hung-up', 'tampered',
   *  'wrong-link', 'failed', 'relay-lost', 'protocol-violation', 'relay-error:CODE', and
   *  'local-failure' for the page's own reasons; `reason` is the words for people. */
  end(reason, error, kind = 'local-failure') {
    if (this.ended) return;
    this.output({ type: 'ended', reason, error, kind });
    this.state = 'ended';
    this.pairs.clear();
  }
}
