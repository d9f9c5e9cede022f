// One member of a conference's MLS group (RFC 9420, ciphersuite 1) on ts-mls 1.6.4, vendored
// (web/vendor/): the same rules and configuration as the native client's
// e2ee/src/conference/member.rs (PROTOCOL.md §7.3). Sealed bytes in, sealed bytes and new epochs
// out; no DOM. Every MLS message crosses the relay sealed under the link's key
// (conference.js); every commit carries the link's PSK.
//
// ts-mls pitfalls met here (DESIGN §5): its general processMessage() ignores the PSK table for
// encrypted messages (processPrivateMessage is called instead); createCommit() moves to the new
// epoch at once (the new state is kept apart until the relay delivers the commit back); it
// leaves the ratchet tree out of Welcomes unless asked; its PSK table is keyed by standard,
// padded base64 of the PSK id; defaultCapabilities() adds random GREASE values (explicit
// capabilities instead); an application message comes back without its sender (it is
// unprotected here, where the sender is known); and a commit that removes this member while
// adding someone into the leaf it vacates (openmls does, as RFC 9420 §12.1.1 says: adds fill
// the leftmost blank leaf) is not seen as a removal: ts-mls tries to decrypt the path and fails
// (found by tests/tests/mls_interop.rs). The removal is read from the commit's own proposals
// instead, with the commit authenticated as ts-mls' own removal branch does.

import {
  bytesToBase64,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
} from 'ts-mls';
// Two deep imports: processPrivateMessage() returns an application message without its sender,
// which must be checked against the relay's (PROTOCOL.md §7.3); and a joiner's KeyPackage is
// verified on its own, so that one bad KeyPackage refuses that joiner, not the whole commit.
import { verifyKeyPackage } from 'ts-mls/keyPackage.js';
import { unprotectPrivateMessage } from 'ts-mls/messageProtection.js';
import { equal } from './bytes.js';
import { ConferenceKeys, GroupTampered, groupCode } from './conference.js';

export const CIPHERSUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';
/** RFC 9605 §5.2: the exporter label of a conference's SFrame base key. */
export const SFRAME_EXPORTER_LABEL = 'SFrame 1.0 Base Key';
export const SFRAME_BASE_KEY_LEN = 16;

/** What this member's leaf says it supports: exactly what the group uses, no GREASE. */
const CAPABILITIES = { versions: ['mls10'], ciphersuites: [CIPHERSUITE], extensions: [], proposals: [], credentials: ['basic'] };

/** The MLS library refused an operation of this member's own. */
export class GroupFailed extends Error {}

let suite = null;
const impl = async () => (suite ??= await getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE)));

/** The 16-byte relay id a basic credential holds, or null. */
function identityOf(credential) {
  if (credential?.credentialType !== 'basic' || credential.identity?.length !== 16) return null;
  return credential.identity;
}

const decode = (bytes) => {
  let decoded;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch {
    throw new GroupTampered('not an MLS message');
  }
  // Exactly one message, nothing left over.
  if (!decoded || decoded[1] !== bytes.length) throw new GroupTampered('not an MLS message');
  return decoded[0];
};

const failed = (why) => (e) => {
  throw new GroupFailed(why, { cause: e });
};

export class Member {
  #keys;
  #psks;
  #own = null; // { publicPackage, privatePackage }
  #state = null;
  #pending = null; // the state our commit leads to, until the relay says

  /** A member-to-be with relay id `id` (16 bytes) on the link whose secret is `secret`. */
  static async create(secret, id) {
    const m = new Member();
    m.id = id;
    m.#keys = await ConferenceKeys.derive(secret);
    m.#psks = { [bytesToBase64(m.#keys.pskId)]: m.#keys.psk };
    return m;
  }

  #pskIndex(state = this.#state) {
    return makePskIndex(state, this.#psks);
  }

  #group() {
    if (!this.#state) throw new Error('not a member of the group yet');
    return this.#state;
  }

  get epoch() {
    return this.#state ? this.#state.groupContext.epoch : null;
  }

  /** A fresh sealed KeyPackage to publish on joining (a fresh signing key with it); the
   *  latest is the one a Welcome is opened with. */
  async keyPackage() {
    this.#own = await generateKeyPackage({ credentialType: 'basic', identity: this.id }, CAPABILITIES, defaultLifetime, [], await impl()).catch(failed('no key package'));
    const bytes = encodeMlsMessage({ keyPackage: this.#own.publicPackage, wireformat: 'mls_key_package', version: 'mls10' });
    return this.#keys.seal('key-package', 0n, this.id, bytes);
  }

  /** The group's first member makes it, at epoch 0. */
  async createGroup(groupId) {
    if (!this.#own) await this.keyPackage();
    this.#state = await createGroup(groupId, this.#own.publicPackage, this.#own.privatePackage, [], await impl()).catch(failed('group not made'));
  }

  /** A joiner's sealed KeyPackage, opened and checked, or null: ciphersuite 1, signed by its
   *  leaf's key, its credential that joiner's relay id, not someone already here. */
  async #joiner(who, sealed) {
    let message;
    try {
      message = decode(await this.#keys.open('key-package', 0n, who, sealed));
    } catch {
      return null;
    }
    if (message.wireformat !== 'mls_key_package') return null;
    const kp = message.keyPackage;
    const identity = identityOf(kp.leafNode.credential);
    if (kp.cipherSuite !== CIPHERSUITE || !identity || !equal(identity, who)) return null;
    if (!(await verifyKeyPackage(kp, (await impl()).signature).catch(() => false))) return null;
    return this.members().some((m) => equal(m.id, who)) ? null : kp;
  }

  /** The commit the relay asked for: `adds` ({ id, sealed } KeyPackages) in, `removes` (ids)
   *  out, and the link's PSK. Pending until the relay delivers it back. */
  async commit(adds, removes) {
    const state = this.#group();
    const epoch = state.groupContext.epoch;
    const proposals = [];
    const refused = [];
    const joiners = [];
    for (const { id, sealed } of adds) {
      const kp = joiners.some((j) => equal(j, id)) ? null : await this.#joiner(id, sealed);
      if (kp) {
        joiners.push(id);
        proposals.push({ proposalType: 'add', add: { keyPackage: kp } });
      } else refused.push(id);
    }
    const own = state.privatePath.leafIndex;
    for (const m of this.members()) {
      if (m.leaf !== own && removes.some((r) => equal(r, m.id))) proposals.push({ proposalType: 'remove', remove: { removed: m.leaf } });
    }
    const pskNonce = crypto.getRandomValues(new Uint8Array(32));
    proposals.push({ proposalType: 'psk', psk: { preSharedKeyId: { psktype: 'external', pskId: this.#keys.pskId, pskNonce } } });
    const r = await createCommit({ state, cipherSuite: await impl(), pskIndex: this.#pskIndex() }, { extraProposals: proposals, ratchetTreeExtension: true }).catch(failed('commit not built'));
    this.#pending = r.newState;
    const commit = await this.#keys.seal('commit', epoch, this.id, encodeMlsMessage(r.commit));
    const welcome = r.welcome ? await this.#keys.seal('welcome', epoch + 1n, this.id, encodeMlsMessage({ welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' })) : null;
    return { epoch, commit, welcome, refused };
  }

  /** The relay delivered this member's own commit: it is the group's next epoch. */
  commitAccepted() {
    if (!this.#pending) throw new Error('no commit of ours is pending');
    [this.#state, this.#pending] = [this.#pending, null];
    return this.#state.groupContext.epoch;
  }

  /** The relay refused this member's commit (another won the epoch): it is forgotten. */
  commitRefused() {
    this.#pending = null;
  }

  /** Opens a sealed PrivateMessage of `kind` from `from` in `epoch`, for this group. */
  async #privateMessage(kind, from, epoch, sealed) {
    const message = decode(await this.#keys.open(kind, epoch, from, sealed));
    if (message.wireformat !== 'mls_private_message') throw new GroupTampered('not a PrivateMessage');
    const pm = message.privateMessage;
    const state = this.#group();
    if (pm.epoch !== epoch || !equal(pm.groupId, state.groupContext.groupId)) throw new GroupTampered('another epoch or group than the relay said');
    return pm;
  }

  /** The relay id of the member at `leaf` of `tree`, or null. */
  #idAt(tree, leaf) {
    const node = tree[leaf * 2];
    return node?.nodeType === 'leaf' ? identityOf(node.leaf.credential) : null;
  }

  /** A commit from `from` for `epoch`: the link's PSK and nothing but adds, removes and that
   *  PSK, from `from`. Returns the new epoch, or 'removed'. */
  async receiveCommit(from, epoch, sealed) {
    const pm = await this.#privateMessage('commit', from, epoch, sealed);
    const state = this.#group();
    const ownLeaf = Number(state.privatePath.leafIndex);
    let fault = null;
    let removesMe = false;
    const check = (e) => {
      if (e.kind !== 'commit') return 'reject';
      const sender = this.#idAt(state.ratchetTree, e.senderLeafIndex);
      let psks = 0;
      for (const { proposal } of e.proposals) {
        if (proposal.proposalType === 'remove' && Number(proposal.remove.removed) === ownLeaf) removesMe = true;
        if (proposal.proposalType === 'add' || proposal.proposalType === 'remove') continue;
        if (proposal.proposalType !== 'psk') fault ??= 'a proposal a conference never makes';
        else {
          const id = proposal.psk.preSharedKeyId;
          if (id.psktype !== 'external' || !equal(id.pskId, this.#keys.pskId)) fault ??= "a PSK other than the link's";
          psks += 1;
        }
      }
      if (!sender || !equal(sender, from)) fault ??= 'a commit from someone else than the relay said';
      if (psks !== 1) fault ??= "a commit without the link's PSK";
      // Removed: nothing of the next epoch can be derived here; stop before ts-mls tries.
      return fault || removesMe ? 'reject' : 'accept';
    };
    let r;
    try {
      r = await processPrivateMessage(state, pm, this.#pskIndex(), await impl(), check);
    } catch (e) {
      throw new GroupTampered('the commit did not process', { cause: e });
    }
    if (fault) throw new GroupTampered(fault);
    if (removesMe) {
      this.#state = { ...state, groupActiveState: { kind: 'removedFromGroup' } };
      return 'removed';
    }
    if (r.actionTaken === 'reject' || r.kind !== 'newState') throw new GroupTampered('not a commit');
    this.#state = r.newState;
    if (r.newState.groupActiveState.kind === 'removedFromGroup') return 'removed';
    return r.newState.groupContext.epoch;
  }

  /** Joins from the sealed Welcome `from` made for `epoch`. */
  async join(from, epoch, sealed) {
    if (!this.#own) throw new Error('no key package published');
    const message = decode(await this.#keys.open('welcome', epoch, from, sealed));
    if (message.wireformat !== 'mls_welcome') throw new GroupTampered('not a Welcome');
    let state;
    try {
      state = await joinGroup(message.welcome, this.#own.publicPackage, this.#own.privatePackage, makePskIndex(undefined, this.#psks), await impl());
    } catch (e) {
      throw new GroupTampered('the Welcome did not open', { cause: e });
    }
    if (state.groupContext.epoch !== epoch) throw new GroupTampered('a Welcome for another epoch');
    this.#state = state;
    return state.groupContext.epoch;
  }

  /** An application message to everyone (sealed for the relay). */
  async send(plaintext) {
    const state = this.#group();
    const r = await createApplicationMessage(state, plaintext, await impl()).catch(failed('message not made'));
    this.#state = r.newState;
    const bytes = encodeMlsMessage({ privateMessage: r.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
    return this.#keys.seal('application', state.groupContext.epoch, this.id, bytes);
  }

  /** An application message from `from` in `epoch`: its plaintext, if it opens and its MLS
   *  sender is `from`. */
  async receive(from, epoch, sealed) {
    const pm = await this.#privateMessage('application', from, epoch, sealed);
    const state = this.#group();
    // As processPrivateMessage() does for an application message, keeping the sender: in the
    // current epoch, or in one the state still keeps (a message sent just before a commit).
    const current = pm.epoch === state.groupContext.epoch;
    const past = current ? null : state.historicalReceiverData.get(pm.epoch);
    if (!current && !past) throw new GroupTampered('an epoch this member no longer keeps');
    // The epoch's receiver data, shaped as ts-mls keeps a past epoch's.
    const at = current ? { senderDataSecret: state.keySchedule.senderDataSecret, secretTree: state.secretTree, ratchetTree: state.ratchetTree, groupContext: state.groupContext } : past;
    let r;
    try {
      r = await unprotectPrivateMessage(at.senderDataSecret, pm, at.secretTree, at.ratchetTree, at.groupContext, state.clientConfig.keyRetentionConfig, await impl());
    } catch (e) {
      throw new GroupTampered('the message did not open', { cause: e });
    }
    const content = r.content.content;
    if (content.contentType !== 'application') throw new GroupTampered('not an application message');
    const sender = content.sender.senderType === 'member' ? this.#idAt(at.ratchetTree, content.sender.leafIndex) : null;
    if (!sender || !equal(sender, from)) throw new GroupTampered('a message from someone else than the relay said');
    this.#state = current ? { ...state, secretTree: r.tree } : { ...state, historicalReceiverData: new Map(state.historicalReceiverData).set(pm.epoch, { ...past, secretTree: r.tree }) };
    return content.applicationData;
  }

  /** The epoch's SFrame base key: MLS-Exporter("SFrame 1.0 Base Key", "", 16). */
  async sframeBaseKey() {
    return mlsExporter(this.#group().keySchedule.exporterSecret, SFRAME_EXPORTER_LABEL, new Uint8Array(0), SFRAME_BASE_KEY_LEN, await impl());
  }

  /** The epoch authenticator (RFC 9420 §8.7). */
  epochAuthenticator() {
    return this.#group().keySchedule.epochAuthenticator;
  }

  /** The code everyone compares, for this epoch: { digits, shown }. */
  groupCode() {
    return groupCode(this.epochAuthenticator());
  }

  /** Everyone in the group: { leaf, id }. */
  members() {
    if (!this.#state) return [];
    const out = [];
    this.#state.ratchetTree.forEach((node, i) => {
      const id = i % 2 === 0 && node?.nodeType === 'leaf' ? identityOf(node.leaf.credential) : null;
      if (id) out.push({ leaf: i / 2, id });
    });
    return out;
  }
}
