// The browser's conference member (web/crypto/member.js, ts-mls) through whole group paths,
// sans-IO: the same rules as e2ee/src/conference/member.rs, whose tests these mirror. Run with
// the vendored modules mapped: `node --import ./web/test/vendor-map.mjs --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../crypto/bytes.js';
import { ConferenceKeys, GroupTampered } from '../crypto/conference.js';
import { Member } from '../crypto/member.js';

const id = (b) => new Uint8Array(16).fill(b);
const [ADA, BEA, CY] = [id(0xad), id(0xbe), id(0xc7)];
const link = (b) => new Uint8Array(32).fill(b);
const member = (who, secret = link(1)) => Member.create(secret, who);
const hexOf = (b) => Buffer.from(b).toString('hex');

/** Everyone holds the same epoch, SFrame key, authenticator and code; returns the epoch. */
async function sameEpoch(members) {
  const view = async (m) => [m.epoch, hexOf(await m.sframeBaseKey()), hexOf(m.epochAuthenticator()), (await m.groupCode()).digits];
  const first = await view(members[0]);
  for (const m of members) assert.deepEqual(await view(m), first);
  return first[0];
}

/** Ada makes the group and adds Bea and Cy, who join from the Welcome: epoch 1. */
async function three() {
  const [ada, bea, cy] = await Promise.all([member(ADA), member(BEA), member(CY)]);
  await ada.createGroup(id(7));
  const c = await ada.commit([{ id: BEA, sealed: await bea.keyPackage() }, { id: CY, sealed: await cy.keyPackage() }], []);
  assert.deepEqual([c.epoch, c.refused], [0n, []]);
  assert.equal(ada.commitAccepted(), 1n);
  assert.equal(await bea.join(ADA, 1n, c.welcome), 1n);
  assert.equal(await cy.join(ADA, 1n, c.welcome), 1n);
  return [ada, bea, cy];
}

test('members who join and leave share each epoch\'s keys and code, and the removed open nothing after', async () => {
  const [ada, bea, cy] = await three();
  assert.equal(await sameEpoch([ada, bea, cy]), 1n);
  const epoch1 = hexOf(await cy.sframeBaseKey());
  const c = await bea.commit([], [CY]);
  assert.equal(c.welcome, null);
  assert.equal(bea.commitAccepted(), 2n);
  assert.equal(await ada.receiveCommit(BEA, 1n, c.commit), 2n);
  assert.equal(await cy.receiveCommit(BEA, 1n, c.commit), 'removed');
  assert.equal(await sameEpoch([ada, bea]), 2n);
  assert.notEqual(hexOf(await ada.sframeBaseKey()), epoch1);
  assert.deepEqual(ada.members().map((m) => hexOf(m.id)), [hexOf(ADA), hexOf(BEA)]);
  const hello = await ada.send(utf8('{"t":"hello","name":"Ada"}'));
  assert.deepEqual(await bea.receive(ADA, 2n, hello), utf8('{"t":"hello","name":"Ada"}'));
  await assert.rejects(cy.receive(ADA, 2n, hello));
});

test('a joiner opens nothing sent before it joined', async () => {
  const [ada, bea] = await Promise.all([member(ADA), member(BEA)]);
  await ada.createGroup(id(7));
  const before = await ada.send(utf8('before'));
  const c = await ada.commit([{ id: BEA, sealed: await bea.keyPackage() }], []);
  ada.commitAccepted();
  await bea.join(ADA, 1n, c.welcome);
  await assert.rejects(bea.receive(ADA, 0n, before));
  assert.deepEqual(await bea.receive(ADA, 1n, await ada.send(utf8('after'))), utf8('after'));
});

test('two commits for one epoch end in one group', async () => {
  const [ada, bea, cy] = await three();
  const c = await ada.commit([], []);
  await bea.commit([], []);
  ada.commitAccepted();
  bea.commitRefused();
  for (const m of [bea, cy]) assert.equal(await m.receiveCommit(ADA, 1n, c.commit), 2n);
  assert.equal(await sameEpoch([ada, bea, cy]), 2n);
});

test('a key package or Welcome from another link is refused, and one presented as someone else\'s', async () => {
  const ada = await member(ADA);
  await ada.createGroup(id(7));
  const stranger = await member(BEA, link(2));
  const bea = await member(BEA);
  const kp = await bea.keyPackage();
  const c = await ada.commit([{ id: BEA, sealed: await stranger.keyPackage() }, { id: CY, sealed: kp }, { id: BEA, sealed: kp }, { id: BEA, sealed: kp }], []);
  assert.deepEqual(c.refused.map(hexOf), [BEA, CY, BEA].map(hexOf));
  ada.commitAccepted();
  await assert.rejects(stranger.join(ADA, 1n, c.welcome), GroupTampered);
  assert.equal(await bea.join(ADA, 1n, c.welcome), 1n);
});

test('a commit the relay moves to another epoch or sender, or presents as a message, does not open', async () => {
  const [ada, bea] = await three();
  const c = await ada.commit([], []);
  await assert.rejects(bea.receiveCommit(CY, 1n, c.commit), GroupTampered);
  await assert.rejects(bea.receiveCommit(ADA, 2n, c.commit), GroupTampered);
  await assert.rejects(bea.receive(ADA, 1n, c.commit), GroupTampered);
  // Still whole: the genuine delivery works.
  ada.commitAccepted();
  assert.equal(await bea.receiveCommit(ADA, 1n, c.commit), 2n);
});

test('a message someone else sealed in Ada\'s name is refused', async () => {
  const [ada, bea, cy] = await three();
  // Cy sends; the relay says it came from Ada: the seal binds the sender, so it does not open.
  const m = await cy.send(utf8('from Cy'));
  await assert.rejects(bea.receive(ADA, 1n, m), GroupTampered);
  assert.deepEqual(await bea.receive(CY, 1n, m), utf8('from Cy'));
  void ada;
});

test('a member who seals its own message in another member\'s name is refused by its MLS sender', async () => {
  const [ada, bea, cy] = await three();
  // Cy holds the link, so it can seal anything as anyone: only MLS' own sender tells.
  const keys = await ConferenceKeys.derive(link(1));
  const mls = await keys.open('application', 1n, CY, await cy.send(utf8('I am Ada')));
  const forged = await keys.seal('application', 1n, ADA, mls);
  await assert.rejects(bea.receive(ADA, 1n, forged), { message: 'a message from someone else than the relay said' });
  // The same for a commit.
  const c = await cy.commit([], []);
  const forgedCommit = await keys.seal('commit', 1n, ADA, await keys.open('commit', 1n, CY, c.commit));
  await assert.rejects(bea.receiveCommit(ADA, 1n, forgedCommit), { message: 'a commit from someone else than the relay said' });
  void ada;
});

test('a commit without the link\'s PSK is refused', async () => {
  // Mallory's client is faulty (or hostile): its own ts-mls group, commits without the PSK.
  const ts = await import('ts-mls');
  const impl = await ts.getCiphersuiteImpl(ts.getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
  const caps = { versions: ['mls10'], ciphersuites: ['MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'], extensions: [], proposals: [], credentials: ['basic'] };
  const mallory = await ts.generateKeyPackage({ credentialType: 'basic', identity: ADA }, caps, ts.defaultLifetime, [], impl);
  let state = await ts.createGroup(id(7), mallory.publicPackage, mallory.privatePackage, [], impl);
  const keys = await ConferenceKeys.derive(link(1));
  const bea = await member(BEA);
  const kp = ts.decodeMlsMessage(await keys.open('key-package', 0n, BEA, await bea.keyPackage()), 0)[0].keyPackage;
  const add = await ts.createCommit({ state, cipherSuite: impl }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: kp } }], ratchetTreeExtension: true });
  state = add.newState;
  await bea.join(ADA, 1n, await keys.seal('welcome', 1n, ADA, ts.encodeMlsMessage({ welcome: add.welcome, wireformat: 'mls_welcome', version: 'mls10' })));
  const update = await ts.createCommit({ state, cipherSuite: impl }, {});
  const sealed = await keys.seal('commit', 1n, ADA, ts.encodeMlsMessage(update.commit));
  await assert.rejects(bea.receiveCommit(ADA, 1n, sealed), { message: "a commit without the link's PSK" });
  assert.equal(bea.epoch, 1n, 'the refused commit changed nothing');
});

test('a key package whose signature does not verify refuses that joiner only', async () => {
  const [ada, bea, cy] = await Promise.all([member(ADA), member(BEA), member(CY)]);
  await ada.createGroup(id(7));
  const keys = await ConferenceKeys.derive(link(1));
  const kp = await keys.open('key-package', 0n, BEA, await bea.keyPackage());
  kp[kp.length - 1] ^= 1; // the signature's last byte
  const broken = await keys.seal('key-package', 0n, BEA, kp);
  const c = await ada.commit([{ id: BEA, sealed: broken }, { id: CY, sealed: await cy.keyPackage() }], []);
  assert.deepEqual(c.refused.map(hexOf), [hexOf(BEA)]);
  ada.commitAccepted();
  assert.equal(await cy.join(ADA, 1n, c.welcome), 1n);
});

test('a commit that removes a member and adds another into its leaf tells the removed one', async () => {
  const [ada, bea, cy] = await three();
  const dee = await member(id(0xde));
  const c = await ada.commit([{ id: id(0xde), sealed: await dee.keyPackage() }], [CY]);
  ada.commitAccepted();
  assert.equal(await cy.receiveCommit(ADA, 1n, c.commit), 'removed');
  assert.equal(await bea.receiveCommit(ADA, 1n, c.commit), 2n);
  assert.equal(await dee.join(ADA, 2n, c.welcome), 2n);
  assert.equal(await sameEpoch([ada, bea, dee]), 2n);
  // Dee took Cy's leaf (RFC 9420: the leftmost blank one), which ts-mls 1.6.4 alone misreads.
  assert.equal(ada.members().find((m) => hexOf(m.id) === hexOf(id(0xde))).leaf, 2);
});
