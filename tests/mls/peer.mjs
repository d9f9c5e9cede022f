// The JavaScript side of tests/tests/mls_interop.rs and tests/tests/conference.rs: conference
// members on ts-mls (web/crypto/member.js, and web/conference-room.js around it) driven over
// JSON lines on stdin and stdout, so that a Rust test can put them in one group with openmls
// members and compare every epoch byte for byte. Byte strings
// are hex; epochs are decimal strings. Run by that test as
// `node --import ./web/test/vendor-map.mjs tests/mls/peer.mjs`.

import { createInterface } from 'node:readline';
import { Member } from '../../web/crypto/member.js';
import { ConferenceMember } from '../../web/conference-room.js';
import { parseServerMessage } from '../../web/relay-message.js';
import { FrameEncryptor, STREAM, conferenceLayout, importBaseKey } from '../../web/crypto/sframe.js';

const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const members = new Map();
const get = (name) => {
  const m = members.get(name);
  if (!m) throw new Error(`no member ${name}`);
  return m;
};

/** Conference members (web/conference-room.js), fed the relay's text as the page would be. */
const conferences = new Map();
const conference = (name) => {
  const c = conferences.get(name);
  if (!c) throw new Error(`no conference member ${name}`);
  return c;
};
const event = (e) => {
  switch (e.type) {
    case 'epoch':
      return { type: 'epoch', epoch: e.epoch, code: e.code.digits, members: e.members };
    case 'message':
      return { type: 'message', from: e.from, text: new TextDecoder().decode(e.data) };
    case 'dropped':
      return { type: 'dropped', from: e.from, error: `${e.error?.name}: ${e.error?.message}` };
    default:
      return { type: e.type };
  }
};

/** What a member holds of its current epoch, as the Rust tests compare it (View in
 *  tests/src/node.rs). */
async function info(m) {
  return {
    epoch: String(m.epoch),
    exporter: hex(await m.sframeBaseKey()),
    authenticator: hex(m.epochAuthenticator()),
    code: (await m.groupCode()).digits,
    members: m.members().map((x) => `${x.leaf}:${hex(x.id)}`),
  };
}

const commands = {
  async 'conf-create'({ name, secret, me }) {
    const { member, send } = await ConferenceMember.create(bytes(secret), me);
    conferences.set(name, member);
    return { send: JSON.stringify(send) };
  },
  async 'conf-handle'({ name, text }) {
    const msg = parseServerMessage(text);
    if (!msg) return { send: [], events: [] };
    const step = await conference(name).handle(msg);
    return { send: step.send.map((m) => JSON.stringify(m)), events: step.events.map(event) };
  },
  async 'conf-send'({ name, text }) {
    return { send: JSON.stringify(await conference(name).send(new TextEncoder().encode(text))) };
  },
  async 'conf-update'({ name }) {
    return { send: JSON.stringify(await conference(name).update()) };
  },
  async 'conf-frame'({ name, frame }) {
    const c = conference(name);
    const m = c.member;
    const leaf = m.members().find((x) => hex(x.id) === hex(m.id)).leaf;
    const key = await importBaseKey(await m.sframeBaseKey());
    const enc = new FrameEncryptor(key, null, STREAM.audio, 0n, conferenceLayout(STREAM.audio, leaf, c.epoch));
    return { sealed: hex(await enc.encrypt(bytes(frame))) };
  },
  async 'conf-info'({ name }) {
    return info(conference(name).member);
  },
  async create({ name, secret, id }) {
    members.set(name, await Member.create(bytes(secret), bytes(id)));
    return {};
  },
  async 'key-package'({ name }) {
    return { sealed: hex(await get(name).keyPackage()) };
  },
  async 'create-group'({ name, group }) {
    await get(name).createGroup(bytes(group));
    return {};
  },
  async commit({ name, adds, removes }) {
    const c = await get(name).commit(
      adds.map((a) => ({ id: bytes(a.id), sealed: bytes(a.sealed) })),
      removes.map(bytes),
    );
    return { epoch: String(c.epoch), commit: hex(c.commit), welcome: c.welcome && hex(c.welcome), refused: c.refused.map(hex) };
  },
  async accepted({ name }) {
    return { epoch: String(get(name).commitAccepted()) };
  },
  async refused({ name }) {
    get(name).commitRefused();
    return {};
  },
  async 'receive-commit'({ name, from, epoch, sealed }) {
    const r = await get(name).receiveCommit(bytes(from), BigInt(epoch), bytes(sealed));
    return { outcome: String(r) };
  },
  async join({ name, from, epoch, sealed }) {
    return { epoch: String(await get(name).join(bytes(from), BigInt(epoch), bytes(sealed))) };
  },
  async send({ name, text }) {
    return { sealed: hex(await get(name).send(new TextEncoder().encode(text))) };
  },
  async receive({ name, from, epoch, sealed }) {
    return { text: new TextDecoder().decode(await get(name).receive(bytes(from), BigInt(epoch), bytes(sealed))) };
  },
  async info({ name }) {
    return info(get(name));
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const req = JSON.parse(line);
  let out;
  try {
    out = { ok: true, ...(await commands[req.cmd](req)) };
  } catch (e) {
    out = { ok: false, error: `${e?.name}: ${e?.message}${e?.cause ? ` (${e.cause?.name}: ${e.cause?.message})` : ''}` };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
