// A conference's one transport (PROTOCOL.md §7.7): an RTCPeerConnection to the relay's SFU,
// which this page always offers. It sends our camera once (simulcast: a small and a full layer)
// and our microphone, and receives into a fixed set of slots: an audio slot for each other
// person the room can hold and a few video slots; the view (conference.js) says whose media
// goes in which. Every sender and receiver gets its key source's transform when it is created,
// before media flows (Chromium sends plaintext otherwise: DESIGN §5).

import { SFU_TRANSPORT } from './frame-keys.js';
import { withoutAudioLevel } from './sdp.js';
import { pinCodecs } from './transport.js';

export class SfuTransport {
  /**
   * @param {object} o
   * @param {import('./frame-keys.js').FrameKeys} o.keys   the room's key source
   * @param {MediaStream} o.stream   local camera/microphone
   * @param {number} o.audioSlots   receive slots for audio (one per other person)
   * @param {number} o.videoSlots   receive slots for video (the large tile and the small ones)
   * @param {(state: string) => void} o.onState   the connection's state changes
   */
  constructor({ keys, stream, audioSlots, videoSlots, onState }) {
    Object.assign(this, { keys, stream, audioSlots, videoSlots, onState });
    this.via = SFU_TRANSPORT;
    this.pc = null;
    this.closed = false;
    /** The receive slots, in order: { kind, index, mid, track }. */
    this.slots = [];
    keys.openTransport(this.via);
  }

  /** Makes the connection and its offer; returns the offer's SDP as set. */
  async offer() {
    if (this.closed) throw new Error('closed');
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc.onconnectionstatechange = () => {
      if (!this.closed) this.onState(pc.connectionState);
    };
    this.pc = pc;
    for (const track of this.stream.getTracks()) {
      const init = { direction: 'sendonly', streams: [this.stream] };
      // The camera goes once, as a small layer for small tiles and a full one for the large.
      if (track.kind === 'video') {
        init.sendEncodings = [
          { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
          { rid: 'h', maxBitrate: 1_200_000 },
        ];
      }
      const t = pc.addTransceiver(track, init);
      const transform = this.keys.sendTransform(this.via, track.kind);
      if (transform) t.sender.transform = transform;
      pinCodecs(t, track.kind);
    }
    const receive = (kind, n) => {
      for (let index = 0; index < n; index++) {
        const t = pc.addTransceiver(kind, { direction: 'recvonly' });
        const slot = `${kind[0]}${index}`;
        const transform = this.keys.receiveTransform(this.via, kind, slot);
        if (transform) t.receiver.transform = transform;
        pinCodecs(t, kind);
        this.slots.push({ kind, index, slot, transceiver: t, track: t.receiver.track, mid: null });
      }
    };
    receive('audio', this.audioSlots);
    receive('video', this.videoSlots);
    const offer = await pc.createOffer();
    await pc.setLocalDescription({ type: 'offer', sdp: withoutAudioLevel(offer.sdp) });
    for (const s of this.slots) s.mid = s.transceiver.mid;
    return pc.localDescription.sdp;
  }

  /** The SFU's answer. */
  async accept(sdp) {
    if (this.closed) return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  /** The connection closes, and its key source's worker with it. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc?.close();
    this.keys.closeTransport(this.via);
  }
}
