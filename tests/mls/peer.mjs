// The JavaScript side of e2ee/tests/mls_interop.rs: conference members on ts-mls
// (web/crypto/member.js) driven over JSON lines on stdin and stdout, so that a Rust test can put
// them in one group with openmls members and compare every epoch byte for byte. Byte strings
// are hex; epochs are decimal strings. Run by that test as
// `node --import ./web/test/vendor-map.mjs tests/mls/peer.mjs`.

import { createInterface } from 'node:readline';
import { Member } from '../../web/crypto/member.js';

const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const members = new Map();
const get = (name) => {
  const m = members.get(name);
  if (!m) throw new Error(`no member ${name}`);
  return m;
};

const commands = {
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
    const m = get(name);
    return {
      epoch: String(m.epoch),
      exporter: hex(await m.sframeBaseKey()),
      authenticator: hex(m.epochAuthenticator()),
      code: (await m.groupCode()).digits,
      members: m.members().map((x) => `${x.leaf}:${hex(x.id)}`),
    };
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
