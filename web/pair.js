// The protocol of one pair, without I/O (PROTOCOL.md §3): the handshake with one other person,
// their sealed signaling, and when the media and data keys exist. The same rules as the native
// client's room.rs (`Pair`). Bytes from the peer and the shell's results go in; actions come out
// through `output`, in order:
//
//   { type: 'send', bytes }                 to the peer, through the relay
//   { type: 'create-offer' }                make the peer connection and its offer (we are O),
//                                           then call offerCreated(sdp)
//   { type: 'create-answer', sdp }          make the peer connection, apply this offer, answer
//                                           (we are A), then call answerCreated(sdp)
//   { type: 'accept-answer', sdp }          apply the peer's answer (O)
//   { type: 'add-candidate', candidate }    the peer's ICE candidate ({ candidate, sdpMid, sdpMLineIndex })
//   { type: 'keys', media, data, room }     the pair's key bytes: media { send, receive },
//                                           data { send, receive }; output may return a
//                                           promise, and the answer (A) or the accepted answer
//                                           (O) waits for it
//   { type: 'state', state }                'handshake', 'keys-confirmed', 'negotiating'
//   { type: 'sas', code }                   the pair's safety code, six digits
//   { type: 'name', name }                  the name the peer gave (cleaned); a later one
//                                           replaces it
//   { type: 'identity', key }               the peer's device key (32 bytes), which signed this
//                                           pair's transcript (PROTOCOL.md §3.8); key null:
//                                           they sent none (their candidates or the connection
//                                           came first); a later identity is told as well
//   { type: 'ended', end, reason }          the pair is over: end is 'hung-up', 'tampered',
//                                           'wrong-link' or 'timed-out'; nothing comes after
//
// Pure: no DOM, runs in the page and under node.

import { b64u, fromB64u, utf8 } from './crypto/bytes.js';
import { Handshake, HandshakeError, generateKeyPair } from './crypto/handshake.js';
import { IdentityRefused, signIdentity, verifyIdentity } from './crypto/identity.js';
import { dtlsFingerprint } from './crypto/sdp.js';
import { MAX_NAME, SignalMalformed, cleanName, decodeSignal } from './peer-signal.js';

/** How long a pair has from meeting to a working connection before it is given up (room.rs:
 *  SETUP_TIMEOUT): a peer that goes silent mid-handshake is dropped, not waited for forever. */
export const SETUP_TIMEOUT_MS = 30_000;

export class Pair {
  /**
   * @param {object} o
   * @param {Uint8Array} o.secret
   * @param {string} o.peer   the other person's relay id
   * @param {'offerer'|'answerer'} o.role
   * @param {number} o.now    milliseconds (performance.now() or Date.now(): one clock per room)
   * @param {boolean} [o.remade]   made again after the pair's connection dropped: no set-up deadline
   * @param {string|null} [o.name]   our name, sent in a `hello` after the offer or answer
   * @param {CryptoKeyPair|null} [o.device]   our device key (Ed25519), which signs the pair's
   *   transcript in an `identity` after the `hello`; null: incognito
   * @param {(action: object) => void} o.output
   */
  constructor({ secret, peer, role, now, remade = false, name = null, device = null, output }) {
    Object.assign(this, { secret, peer, role, device, output });
    /** The peer's identity: 'awaiting' it, 'absent' (they sent none), 'verified'. */
    this.identity = 'awaiting';
    this.name = name !== null && utf8(name).length <= MAX_NAME ? name : null;
    this.hs = null;
    this.offer = null;
    this.keysSent = false;
    this.connected = false;
    this.over = false;
    /** When the set-up is given up; null once connected. */
    // A pair made again after its connection dropped waits as long as the peer is on the
    // relay (they may still be asleep): no deadline (PROTOCOL.md §3.3).
    this.deadline = remade ? null : now + SETUP_TIMEOUT_MS;
    this.queue = Promise.resolve();
  }

  /** A fresh key for this pair; O commits to it at once. */
  start() {
    return this.run(async () => {
      const keyPair = await generateKeyPair();
      if (this.role === 'offerer') {
        const { hs, commit } = await Handshake.offerer(this.secret, keyPair);
        this.hs = hs;
        this.emit({ type: 'send', bytes: commit });
      } else {
        this.hs = await Handshake.answerer(this.secret, keyPair);
      }
      this.emit({ type: 'state', state: 'handshake' });
    });
  }

  /** Hands `action` to the shell; returns what the shell returns (a promise for `keys`). */
  emit(action) {
    return this.over ? undefined : this.output(action);
  }

  /** Runs `task` after everything before it; what it throws ends the pair, said in words. */
  run(task) {
    this.queue = this.queue.then(() => (this.over ? undefined : task())).catch((e) => this.fail(e));
    return this.queue;
  }

  fail(e) {
    if (this.over) return;
    if (e instanceof HandshakeError) {
      const wrong = e.kind === 'wrong-link-or-tampered-relay';
      this.end(wrong ? 'wrong-link' : 'tampered', wrong ? 'wrong link or tampered relay' : `call set-up tampered with: ${e.message}`);
    } else {
      this.end('tampered', 'the call set-up could not be completed');
    }
  }

  end(end, reason) {
    if (this.over) return;
    this.output({ type: 'ended', end, reason });
    this.over = true;
  }

  /** Bytes from the peer, handled one at a time, in order. */
  receive(bytes) {
    return this.run(() => this.onPeerBytes(bytes));
  }

  async onPeerBytes(bytes) {
    const r = await this.hs.receive(bytes);
    if (r.keysReady) {
      if (r.reply) {
        this.emit({ type: 'send', bytes: r.reply });
        // O: the handshake is done on this side; make the offer.
        this.emit({ type: 'create-offer' });
      }
      return;
    }
    if (r.reply) return this.emit({ type: 'send', bytes: r.reply });
    let m;
    try {
      m = decodeSignal(r.message);
    } catch (e) {
      // It opened, so the peer sent it; the set-up ends as for one that does not open.
      if (e instanceof SignalMalformed) throw new HandshakeError('tampered', e.message);
      throw e;
    }
    // A `t` this version does not know, or a `hello` whose name is unfit, changes nothing.
    if (m !== null) await this.onSealed(m);
  }

  async onSealed(m) {
    const first = this.offer === null || (this.role === 'offerer' && !this.keysSent);
    if (this.role === 'answerer' && m.t === 'offer' && this.offer === null) {
      this.confirmed();
      this.offer = m.sdp;
      return this.emit({ type: 'create-answer', sdp: m.sdp });
    }
    if (this.role === 'offerer' && m.t === 'answer' && first) {
      this.confirmed();
      await this.keys(this.offer, m.sdp);
      return this.emit({ type: 'accept-answer', sdp: m.sdp });
    }
    if (first) throw new HandshakeError('tampered', 'the first sealed message is not the offer/answer');
    switch (m.t) {
      case 'candidate':
        this.noIdentityBefore();
        this.emit({ type: 'add-candidate', candidate: { candidate: m.candidate, sdpMid: m.sdpMid, sdpMLineIndex: m.sdpMLineIndex } });
        break;
      case 'end-of-candidates':
        this.noIdentityBefore();
        break;
      case 'identity':
        await this.onIdentity(m);
        break;
      case 'bye':
        this.end('hung-up', 'the other side hung up');
        break;
      case 'hello': {
        const name = cleanName(m.name);
        if (name !== null) this.emit({ type: 'name', name });
        break;
      }
      case 'offer':
      case 'answer':
        throw new HandshakeError('tampered', 'a second offer or answer');
    }
  }

  /** The peer's device identity: refused (the set-up ends as tampered with) unless it is the
   *  first, its key and signature canonical base64url of 32 and 64 bytes, and the signature
   *  verifies over this pair's transcript. */
  async onIdentity(m) {
    if (this.identity === 'verified') throw new HandshakeError('tampered', 'a second device identity');
    const decode = (text, what) => {
      try {
        return fromB64u(text);
      } catch {
        throw new HandshakeError('tampered', `the device ${what} is not base64url`);
      }
    };
    const [key, sig] = [decode(m.key, 'key'), decode(m.sig, 'signature')];
    let verified;
    try {
      verified = await verifyIdentity(key, sig, this.hs.transcriptHash);
    } catch (e) {
      throw new HandshakeError('tampered', e instanceof IdentityRefused ? e.message : 'the device identity could not be checked');
    }
    this.identity = 'verified';
    this.emit({ type: 'identity', key: verified });
  }

  /** Their candidates (or the connection) came while their identity was awaited: they sent
   *  none, since it comes before them (PROTOCOL.md §3.8). */
  noIdentityBefore() {
    if (this.identity !== 'awaiting') return;
    this.identity = 'absent';
    this.emit({ type: 'identity', key: null });
  }

  confirmed() {
    this.emit({ type: 'state', state: 'keys-confirmed' });
    this.emit({ type: 'sas', code: this.hs.safetyCode() });
  }

  /** Both fingerprints are known: the pair's media and data keys. */
  async keys(offerSdp, answerSdp) {
    const fpO = dtlsFingerprint(offerSdp);
    const fpA = dtlsFingerprint(answerSdp);
    if (!fpO || !fpA) throw new HandshakeError('tampered', 'an SDP without a DTLS fingerprint');
    const media = await this.hs.mediaKeyBytes(fpO, fpA);
    const data = await this.hs.dataKeyBytes(fpO, fpA);
    this.keysSent = true;
    // Waited for: the keys are in place before the offer or answer that lets media flow.
    await this.emit({ type: 'keys', media, data, room: this.hs.room });
  }

  async seal(obj) {
    const sealed = await this.hs.seal(utf8(JSON.stringify(obj)));
    this.emit({ type: 'send', bytes: sealed });
  }

  /** O's offer exists: seal and send it. */
  offerCreated(sdp) {
    return this.run(async () => {
      this.offer = sdp;
      await this.seal({ t: 'offer', sdp });
      await this.introduce();
      this.emit({ type: 'state', state: 'negotiating' });
    });
  }

  /** A's answer exists: the keys can be made (both fingerprints are known); then the answer
   *  is sealed and sent. */
  answerCreated(sdp) {
    return this.run(async () => {
      await this.keys(this.offer, sdp);
      await this.seal({ t: 'answer', sdp });
      await this.introduce();
      this.emit({ type: 'state', state: 'negotiating' });
    });
  }

  /** Right after the offer or answer (the first sealed message), before any candidate: our
   *  name when we gave one, then our device's identity when we have a device key. A browser
   *  that cannot sign with Ed25519 sends none, as incognito does. */
  async introduce() {
    if (this.name !== null) await this.seal({ t: 'hello', name: this.name });
    if (this.device === null) return;
    let identity = null;
    try {
      identity = await signIdentity(this.device, this.hs.transcriptHash);
    } catch {
      // No Ed25519 here: not verified, never a failed call.
    }
    if (identity) await this.seal({ t: 'identity', key: b64u(identity.key), sig: b64u(identity.sig) });
  }

  /** A local candidate (null: gathering is complete), sealed to the peer. */
  localCandidate(c) {
    return this.run(() => (c ? this.seal({ t: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex }) : this.seal({ t: 'end-of-candidates' })));
  }

  /** The connection works: no more deadline. */
  connectedNow() {
    this.connected = true;
    this.deadline = null;
    this.run(async () => this.noIdentityBefore());
  }

  /** The clock reached `now`: a set-up past its deadline is given up. */
  tick(now) {
    if (!this.over && this.deadline !== null && now >= this.deadline) {
      this.end('timed-out', `the other side did not finish setting up the call within ${SETUP_TIMEOUT_MS / 1000} s`);
    }
  }

  /** Hangs up: the peer is told (sealed `bye`) when the handshake got that far. */
  async hangUp() {
    if (this.over) return;
    await this.queue;
    if (!this.over && this.hs?.established) await this.seal({ t: 'bye' }).catch(() => {});
    this.over = true;
  }

  /** Nothing more comes out. */
  close() {
    this.over = true;
  }
}
