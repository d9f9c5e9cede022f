// The relay: its connection (JSON messages on /ws, PROTOCOL.md §2, payloads as bytes) and what
// it says of itself over HTTP before a call.

import { b64u, fromB64u } from './crypto/bytes.js';
import { parseServerMessage } from './relay-message.js';

export class Relay {
  /** Opens the WebSocket; `onMessage(msg)` sees every relay message, `onClose()` its end. */
  static open(url, onMessage, onClose) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const relay = new Relay(ws);
      ws.onopen = () => resolve(relay);
      ws.onerror = () => reject(new Error(`cannot reach the relay at ${url}`));
      ws.onclose = () => onClose();
      ws.onmessage = (e) => {
        // A relay is not trusted: what breaks PROTOCOL.md §2 ends the connection (the room
        // then treats it as lost), and a type this version does not know is ignored.
        let msg;
        try {
          msg = parseServerMessage(e.data);
        } catch {
          ws.close();
          return;
        }
        if (msg === null) return;
        if (msg.type === 'signal') msg.bytes = fromB64u(msg.data);
        onMessage(msg);
      };
    });
  }

  constructor(ws) {
    this.ws = ws;
  }

  /** Joins `room`; `max`: a group link's size (the room is made for that many), else none. */
  join(room, max = null) {
    this.send(max === null ? { type: 'join', room } : { type: 'join', room, max });
  }

  signal(to, bytes) {
    this.send({ type: 'signal', to, data: b64u(bytes) });
  }

  leave() {
    this.send({ type: 'leave' });
  }

  send(msg) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  close() {
    this.ws.close();
  }
}

/** What the relay says of itself (`relay.json`, beside the page): { max_peers, turn }. A relay
 *  that does not answer is taken as one-to-one without TURN (the call then says what is
 *  wrong). */
export async function relayInfo() {
  try {
    const res = await fetch('relay.json', { cache: 'no-store' });
    if (res.ok) {
      const info = await res.json();
      return { max_peers: Number(info.max_peers) || 2, turn: info.turn === true };
    }
  } catch {
    // below
  }
  return { max_peers: 2, turn: false };
}
