// Synthetic conference members for the conference view's screenshots at many tiles: each is a
// real member of the link's MLS group (web/conference-room.js on ts-mls, over its own WebSocket
// to the relay), with a name, but no media: its tile shows its initial and "Camera off". One
// JSON line on stdout per member when it reaches an epoch ({ name, epoch, code }). Run as
// `node --import ../../web/test/vendor-map.mjs synthetic-members.mjs URL NAME...`; it runs until
// killed.

import WebSocket from 'ws';
import { fromB64u } from '../../web/crypto/bytes.js';
import { roomId } from '../../web/crypto/link.js';
import { b64u } from '../../web/crypto/bytes.js';
import { ConferenceMember } from '../../web/conference-room.js';
import { hello } from '../../web/group-message.js';
import { parseServerMessage } from '../../web/relay-message.js';

const [url, ...names] = process.argv.slice(2);
const link = new URL(url);
const [secretText, size] = link.hash.slice(1).split('.');
const secret = fromB64u(secretText);
const room = b64u(await roomId(secret));

for (const name of names) {
  // The relay's /ws beside the page, under the page's path (PROTOCOL.md §1).
  const ws = new WebSocket(new URL('ws', `ws://${link.host}${link.pathname}`));
  let member = null;
  let queue = Promise.resolve();
  const send = (m) => ws.send(JSON.stringify(m));
  ws.on('open', () => send({ type: 'join', room, max: Number(size) }));
  ws.on('message', (data) => {
    queue = queue.then(async () => {
      const msg = parseServerMessage(String(data));
      if (!msg) return;
      if (msg.type === 'welcome') {
        const made = await ConferenceMember.create(secret, msg.you);
        member = made.member;
        return send(made.send);
      }
      if (!member) return;
      const step = await member.handle(msg);
      for (const m of step.send) send(m);
      for (const e of step.events) {
        if (e.type !== 'epoch') continue;
        process.stdout.write(`${JSON.stringify({ name, epoch: e.epoch, code: e.code.shown })}\n`);
        send(await member.send(hello(name, { microphone: true, camera: false })));
      }
    });
  });
  // One at a time, in order: each is in the room before the next asks.
  await new Promise((resolve) => ws.once('open', resolve));
}
