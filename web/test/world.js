// A world without I/O for the room's rules (room-core.js) and the pairs' protocol (pair.js): a
// relay stand-in with the real relay's rules (capacity, order, peer-joined and peer-left), a
// clock, and a WebRTC stand-in that connects every pair whose two ends have their keys. The
// room-core tests and the shared scenarios (tests/vectors/scenarios.json) run in it; room.rs's
// tests hold the same world for the native client.

import assert from 'node:assert/strict';
import { RoomCore } from '../room-core.js';
import { Pair } from '../pair.js';
import { hex } from '../crypto/bytes.js';

const secret = new Uint8Array(32).fill(9);
/** An SDP with only what the pair reads of it: a DTLS fingerprint of `who`'s end with `to`. */
const sdp = (who, to) => `v=0\r\na=fingerprint:sha-256 ${Array.from({ length: 32 }, (_, i) => (((who + to).charCodeAt(i % (who + to).length) * (i + 1)) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':')}\r\n`;

/** What a room's action tells its person, in the scenarios' words (null: nothing to tell). */
function told(a) {
  switch (a.type) {
    case 'state':
      return a.state === 'waiting-for-peer' ? ['waiting'] : null;
    case 'open-pair':
      return ['found', a.peer, a.role];
    case 'peer-lost-relay':
      return ['lost-relay', a.peer];
    case 'peer-left':
      return ['gone', a.peer, 'left'];
    case 'peer-dropped':
      return ['dropped', a.peer];
    case 'peer-gone':
      return ['gone', a.peer, a.end];
    case 'reconnect':
      return ['reconnect', a.attempt];
    case 'ended':
      return ['ended', a.kind];
    default:
      return null;
  }
}

/** People, a relay with their room, and their pairs. */
export class World {
  constructor(capacity = 6) {
    this.capacity = capacity;
    this.members = [];
    this.people = new Map();
    this.inFlight = [];
    this.now = 0;
    /** People whose messages wait from the moment they join. */
    this.holding = new Set();
  }

  join(id, group) {
    const person = { id, pairs: new Map(), log: [], events: [], ended: null, held: this.holding.has(id) ? [] : null };
    person.core = new RoomCore({ group, output: (a) => this.act(person, a) });
    this.people.set(id, person);
    person.core.relayOpened();
    return person;
  }

  act(person, a) {
    person.log.push(a);
    const event = told(a);
    if (event) person.events.push(event);
    switch (a.type) {
      case 'join': {
        const cap = Math.min(this.capacity, a.max ?? 2);
        if (this.members.length >= (this.roomCap ?? cap)) return this.inFlight.push([person.id, { type: 'error', code: 'room-full' }]);
        this.roomCap ??= cap;
        for (const m of this.members) this.inFlight.push([m, { type: 'peer-joined', peer: person.id }]);
        this.inFlight.push([person.id, { type: 'welcome', you: person.id, peers: [...this.members], ice: [], max: this.roomCap }]);
        this.members.push(person.id);
        return;
      }
      case 'open-pair': {
        const side = { keys: null, code: null, connected: false };
        side.pair = new Pair({
          secret,
          peer: a.peer,
          role: a.role,
          remade: a.remade,
          now: this.now,
          output: (x) => {
            if (x.type === 'send') this.inFlight.push([a.peer, { type: 'signal', from: person.id, bytes: x.bytes }]);
            if (x.type === 'keys') side.keys = x;
            if (x.type === 'sas') side.code = x.code;
            if (x.type === 'create-offer') queueMicrotask(() => side.pair.offerCreated(sdp(person.id, a.peer)));
            if (x.type === 'create-answer') queueMicrotask(() => side.pair.answerCreated(sdp(person.id, a.peer)));
            if (x.type === 'ended') queueMicrotask(() => person.core.pairEnded(a.peer, x.end, x.reason));
          },
        });
        person.pairs.set(a.peer, side);
        side.pair.start();
        return;
      }
      case 'to-pair':
        return person.pairs.get(a.peer)?.pair.receive(a.bytes);
      case 'close-pair':
        person.pairs.get(a.peer)?.pair.close();
        return person.pairs.delete(a.peer);
      case 'ended':
        person.ended = a;
        this.leave(person.id);
        return;
      default:
    }
  }

  /** The relay sees `id`'s connection go (a leave, or a lost connection). */
  leave(id) {
    if (!this.members.includes(id)) return;
    this.members = this.members.filter((m) => m !== id);
    for (const m of this.members) this.inFlight.push([m, { type: 'peer-left', peer: id }]);
  }

  /** Hangs up as room.js does: `bye` to every pair that got that far, then the room ends. */
  async hangUp(id) {
    const p = this.people.get(id);
    await Promise.all([...p.pairs.values()].map((s) => s.pair.hangUp()));
    p.core.end('you hung up', false, 'hung-up');
  }

  /** The relay loses `id`'s connection: what was on its way to them is lost. */
  loseRelay(id) {
    this.leave(id);
    this.inFlight = this.inFlight.filter(([to]) => to !== id);
    const p = this.people.get(id);
    if (p.held) p.held = [];
    p.core.relayClosed();
  }

  /** Messages to `id` wait until `release(id)` (a frozen or unreachable client). */
  hold(id) {
    const p = this.people.get(id);
    if (p) p.held ??= [];
    else this.holding.add(id);
  }

  release(id) {
    this.holding.delete(id);
    const p = this.people.get(id);
    const waiting = p.held ?? [];
    p.held = null;
    this.inFlight.unshift(...waiting.map((m) => [id, m]));
  }

  /** `seconds` pass on everyone's clock. */
  tick(seconds) {
    this.now += seconds * 1000;
    for (const p of this.people.values()) {
      for (const side of p.pairs.values()) side.pair.tick(this.now);
      p.core.tick(this.now);
    }
  }

  /** Delivers everything, lets the pairs work, connects pairs whose two ends have keys. */
  async settle() {
    // Idle only after several quiet rounds: a pair's WebCrypto work resolves across tasks.
    let quiet = 0;
    for (let round = 0; round < 400; round++) {
      await new Promise((r) => setTimeout(r, 0));
      for (const p of this.people.values()) await Promise.all([...p.pairs.values()].map((s) => s.pair.queue));
      const batch = this.inFlight.splice(0);
      for (const [to, msg] of batch) {
        const p = this.people.get(to);
        // One at a time, as room.js does: a signal's handling by its pair is over before the
        // next relay message (a `bye`, then the sender's peer-left).
        if (p?.held) p.held.push(msg);
        else await p?.core.relayMessage(msg);
      }
      let connected = false;
      for (const p of this.people.values()) {
        for (const [other, side] of p.pairs) {
          const back = this.people.get(other)?.pairs.get(p.id);
          if (side.keys && back?.keys && !side.connected) {
            side.connected = true;
            side.pair.connectedNow();
            p.core.pairConnected(other);
            connected = true;
          }
        }
      }
      quiet = batch.length === 0 && !connected ? quiet + 1 : 0;
      if (quiet === 5) return;
    }
    throw new Error('the world did not settle');
  }

  assertPairsWork(ids) {
    for (const a of ids) {
      for (const b of ids) {
        if (a === b) continue;
        const [sa, sb] = [this.people.get(a).pairs.get(b), this.people.get(b).pairs.get(a)];
        assert.ok(sa?.connected && sb?.connected, `${a} and ${b} are not connected`);
        assert.match(sa.code, /^\d{6}$/);
        assert.equal(sa.code, sb.code, `${a} and ${b} see different codes`);
        assert.equal(hex(sa.keys.media.send), hex(sb.keys.media.receive));
      }
    }
  }
}
