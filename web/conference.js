// A conference (links `#S.N`, N from 7 to 50; PROTOCOL.md §7), its I/O: the relay connection,
// this page's member of the group's MLS (conference-room.js, the same machine as the terminal's),
// one connection to the relay's SFU (sfu-transport.js) and the group's frame keys (frame-keys.js).
// It reports to the page the same kinds of events as a mesh room (room.js) where they mean the
// same (`state`, `track`, `name`, `media`, `chat`, `peer-gone`, `ended`), and `group-code`
// for the one code everyone compares.
//
// The view: every other member's audio has a slot; the video slots show the active speaker
// large (layer h) and the next people small (layer l), in the order they joined. A member's
// frames open only under the group's keys and are credited to the member their KID names.

import { b64u } from './crypto/bytes.js';
import { relayUrl, roomId } from './crypto/link.js';
import { ConferenceMember } from './conference-room.js';
import { FrameKeys, SFU_TRANSPORT } from './frame-keys.js';
import { GroupMessageMalformed, hello, media as mediaMessage, parseGroupMessage, text as textMessage } from './group-message.js';
import { SfuTransport } from './sfu-transport.js';
import { Relay } from './signaling.js';

/** Video slots: the large tile and up to this many small ones. */
export const VIDEO_SLOTS = 9;

export class Conference {
  /**
   * @param {object} o
   * @param {string} o.base     the relay's base URL
   * @param {Uint8Array} o.secret
   * @param {number} o.group    the conference's size (7 to 50)
   * @param {string|null} [o.name]   our name for the others
   * @param {() => Promise<MediaStream>} o.getStream
   * @param {(e: object) => void} o.onEvent
   */
  constructor({ base, secret, group, name = null, getStream, onEvent }) {
    Object.assign(this, { base, secret, group, name, getStream, onEvent });
    this.media = { microphone: true, camera: true };
    this.relay = null;
    this.ended = false;
    this.me = null;
    this.member = null;
    this.keys = new FrameKeys();
    this.sfu = null;
    this.stream = null;
    /** Relay ids of the people in the room (from the relay), oldest first. */
    this.present = [];
    /** Relay ids of the group's other members at the current epoch. */
    this.members = [];
    /** Who is shown in each receive slot: slot -> peer. */
    this.shown = new Map();
    /** Whom we told the page about (a tile each). */
    this.known = new Set();
    this.speaker = null;
    /** Which page of the others the video slots show (the speaker is always shown). */
    this.page = 0;
    this.queue = Promise.resolve();
    this.dropped = 0;
    /** For app.js: a conference has no pairs. */
    this.calls = new Map();
  }

  emit(e) {
    this.onEvent(e);
  }

  async start() {
    this.room = b64u(await roomId(this.secret));
    this.emit({ type: 'state', state: 'joining' });
    let relay = null;
    const handle = (f) => {
      this.queue = this.queue
        .then(() => (relay && relay === this.relay && !this.ended ? f() : undefined))
        .catch((e) => this.end(`something unexpected went wrong in this page (${e?.message ?? e})`, true));
    };
    relay = await Relay.open(
      relayUrl(this.base),
      (msg) => handle(() => this.onRelay(msg)),
      () => handle(() => this.end('the connection to the relay was lost', true)),
    );
    if (this.ended) return relay.close();
    this.relay = relay;
    relay.join(this.room, this.group);
  }

  send(msg) {
    this.relay?.send(msg);
  }

  async onRelay(msg) {
    switch (msg.type) {
      case 'welcome': {
        if (msg.max <= 6) return this.end('this link is for a conference, but the relay made a mesh room for it', true);
        this.me = msg.you;
        this.present = [...msg.peers];
        this.stream = await this.getStream();
        if (this.ended) return;
        const { member, send } = await ConferenceMember.create(this.secret, this.me);
        this.member = member;
        this.send(send);
        this.sfu = new SfuTransport({
          keys: this.keys,
          stream: this.stream,
          audioSlots: msg.max - 1,
          videoSlots: Math.min(VIDEO_SLOTS, msg.max - 1),
          onState: (state) => this.onSfuState(state),
        });
        const sdp = await this.sfu.offer();
        this.send({ type: 'sfu-offer', sdp });
        this.emit({ type: 'state', state: this.present.length ? 'connecting' : 'waiting-for-group' });
        return;
      }
      case 'peer-joined':
        if (!this.present.includes(msg.peer)) this.present.push(msg.peer);
        return;
      case 'peer-left':
        this.present = this.present.filter((p) => p !== msg.peer);
        return;
      case 'sfu-answer':
        return this.sfu?.accept(msg.sdp);
      case 'error':
        if (msg.code === 'refused-by-group' || ['room-full', 'group-too-large', 'unavailable'].includes(msg.code)) return this.end(msg.message || msg.code, true);
        return;
      default:
        break;
    }
    if (!this.member) return;
    const step = await this.member.handle(msg);
    for (const m of step.send) this.send(m);
    for (const e of step.events) await this.onGroupEvent(e);
  }

  async onGroupEvent(e) {
    switch (e.type) {
      case 'epoch': {
        const m = this.member.member;
        const own = m.members().find((x) => b64u(x.id) === this.me)?.leaf;
        const members = m.members().map((x) => ({ leaf: x.leaf, id: b64u(x.id) }));
        await this.keys.conferenceEpoch(SFU_TRANSPORT, { epoch: e.epoch, baseKey: await m.sframeBaseKey(), members, own });
        const before = new Set(this.members);
        this.members = e.members.filter((p) => p !== this.me);
        this.emit({ type: 'group-code', epoch: e.epoch, code: e.code.shown, digits: e.code.digits });
        for (const p of before) if (!this.members.includes(p)) this.forget(p);
        for (const p of this.members) {
          if (!this.known.has(p)) {
            this.known.add(p);
            this.emit({ type: 'state', peer: p, state: 'handshake' });
          }
        }
        // Someone new: everyone says who they are again, under the new epoch.
        if (this.members.some((p) => !before.has(p))) await this.sendGroup(hello(this.name, this.media));
        this.view();
        this.status();
        return;
      }
      case 'message': {
        let m;
        try {
          m = parseGroupMessage(e.data);
        } catch (err) {
          if (err instanceof GroupMessageMalformed) {
            this.dropped += 1;
            return;
          }
          throw err;
        }
        if (m === null) return;
        if (m.t === 'hello') {
          if (m.name !== null) this.emit({ type: 'name', peer: e.from, name: m.name });
          this.emit({ type: 'media', peer: e.from, microphone: m.microphone, camera: m.camera });
        } else if (m.t === 'media') this.emit({ type: 'media', peer: e.from, microphone: m.microphone, camera: m.camera });
        else if (m.t === 'text') this.emit({ type: 'chat', peer: e.from, event: { type: 'text', id: Math.random(), text: m.text } });
        return;
      }
      case 'removed':
        return this.end('you were removed from the conference', true);
      case 'refused':
        return this.end('the conference refused to add you', true);
      case 'dropped':
        // A message that did not open or broke the group's rules: dropped and counted.
        this.dropped += 1;
        return;
      default:
        return undefined;
    }
  }

  /** Someone left the group: their tile goes. */
  forget(peer) {
    this.known.delete(peer);
    for (const [slot, p] of this.shown) if (p === peer) this.shown.delete(slot);
    if (this.speaker === peer) this.speaker = null;
    this.emit({ type: 'peer-gone', peer });
  }

  onSfuState(state) {
    if (this.ended) return;
    if (state === 'failed') return this.end('could not reach the relay\'s media server (its UDP port may be blocked)', true);
    this.sfuState = state;
    this.status();
  }

  /** The page's status and each person's tile state. */
  status() {
    const up = this.sfuState === 'connected';
    for (const p of this.members) this.emit({ type: 'state', peer: p, state: up ? 'connected' : 'connecting' });
    if (up) this.emit({ type: 'state', state: this.members.length ? 'connected' : 'waiting-for-group' });
  }

  /** Shows page `page` of the others (clamped to the pages there are). */
  setPage(page) {
    this.page = Math.max(0, page);
    this.view();
  }

  /** `peer` is speaking (the page hears it in their audio): they take the large tile. */
  setSpeaker(peer) {
    if (this.speaker === peer || !this.members.includes(peer)) return;
    this.speaker = peer;
    this.view();
  }

  /** Assigns the slots and tells the SFU: everyone's audio, and video for the speaker (large,
   *  layer h) and as many others as there are slots (small, layer l). Whoever is shown keeps
   *  their slot; a slot that changes hands is reported with the person it now shows. */
  view() {
    if (!this.sfu || this.sfu.slots.some((s) => s.mid === null)) return;
    const speaker = this.speaker ?? this.members[0] ?? null;
    const perPage = Math.max(this.sfu.videoSlots - 1, 1);
    const others = this.members.filter((p) => p !== speaker);
    const pages = Math.max(Math.ceil(others.length / perPage), 1);
    this.page = Math.min(this.page, pages - 1);
    const onPage = others.slice(this.page * perPage, (this.page + 1) * perPage);
    const video = speaker ? [speaker, ...onPage] : [];
    const slots = [];
    for (const [kind, wanted] of [['audio', this.members], ['video', video]]) {
      const mine = this.sfu.slots.filter((s) => s.kind === kind);
      const shown = wanted.slice(0, mine.length);
      const free = mine.filter((s) => !shown.includes(this.shown.get(s.slot)));
      for (const s of free) this.shown.delete(s.slot);
      for (const peer of shown) {
        let slot = mine.find((s) => this.shown.get(s.slot) === peer);
        if (!slot) {
          slot = free.shift();
          this.shown.set(slot.slot, peer);
          this.emit({ type: 'track', peer, track: slot.track, slot: slot.slot });
        }
        slots.push({ mid: slot.mid, peer, layer: kind === 'video' && peer === speaker ? 'h' : 'l' });
      }
    }
    this.emit({ type: 'speaker', peer: speaker });
    this.emit({ type: 'page', page: this.page, pages, shown: video });
    this.send({ type: 'sfu-view', slots });
  }

  async sendGroup(bytes) {
    if (!this.member || this.member.epoch === null) return;
    this.send(await this.member.send(bytes));
  }

  /** A message to everyone (sealed by the group). */
  async sendText(body) {
    if (!this.member || this.member.epoch === null) throw new Error('Messages work once you are in the conference.');
    await this.sendGroup(textMessage(body));
  }

  /** Our microphone or camera went on or off: everyone is told. */
  setMedia(m) {
    this.media = { ...this.media, ...m };
    this.sendGroup(mediaMessage(this.media)).catch(() => {});
  }

  /** The frame counters and the sender last seen in each slot. */
  stats() {
    return this.keys.transportStats(SFU_TRANSPORT);
  }

  async hangUp() {
    this.end('you hung up', false);
  }

  end(reason, error) {
    if (this.ended) return;
    this.ended = true;
    this.relay?.leave();
    this.relay?.close();
    this.sfu?.close();
    this.keys.close();
    this.emit({ type: 'state', state: 'ended' });
    this.emit({ type: 'ended', reason, error });
  }
}
