// One member's side of a conference's MLS group (PROTOCOL.md §7.5, "A client, in a conference
// room"): the relay's conference messages in (as relay-message.js decodes them), the messages
// to send back and what happened to the group out. The same machine as client/src/conference.rs;
// tests/tests/conference.rs puts both in one group through the real relay. The relay names who
// commits each batch of joins and leaves and delivers the winning commit to everyone, its maker
// included; every MLS rule is checked by the Member underneath. Pure: no DOM.

import { b64u, fromB64u } from './crypto/bytes.js';
import { Member } from './crypto/member.js';

/** What a member waits for. */
const AWAITING_GROUP = 'awaiting-group';
const IN_GROUP = 'in-group';
const OUT = 'out';

export class ConferenceMember {
  #member;
  #me;
  #state = AWAITING_GROUP;
  /** The epoch (a BigInt) our own commit was made in, while the relay has not delivered it. */
  #pending = null;
  /** Inputs run one at a time, in the order they came (each may wait for MLS work). */
  #queue = Promise.resolve();

  /** A member for the conference of `secret` (32 bytes) whose relay id is `me`, and the
   *  `key-package` message it publishes first. */
  static async create(secret, me) {
    const c = new ConferenceMember();
    c.#me = me;
    c.#member = await Member.create(secret, fromB64u(me));
    const data = b64u(await c.#member.keyPackage());
    return { member: c, send: { type: 'key-package', data } };
  }

  /** The group's epoch (a Number), once a member. */
  get epoch() {
    return this.#state === IN_GROUP ? Number(this.#member.epoch) : null;
  }

  /** The MLS member (its media keys, its code). */
  get member() {
    return this.#member;
  }

  /** A message from the relay: { send: [client messages], events: [...] }. Messages that are
   *  not the conference's change nothing. */
  handle(msg) {
    const run = this.#queue.then(() => this.#handle(msg));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A `group-message` carrying `plaintext` to everyone else. */
  send(plaintext) {
    const run = this.#queue.then(async () => {
      if (this.#state !== IN_GROUP) throw new Error('not in the group');
      const epoch = this.epoch;
      return { type: 'group-message', epoch, data: b64u(await this.#member.send(plaintext)) };
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A commit that gives this member fresh keys (the relay takes it when no task is open). */
  update() {
    const run = this.#queue.then(async () => {
      if (this.#state !== IN_GROUP || this.#pending !== null) throw new Error('not in the group, or a commit is pending');
      const step = { send: [], events: [] };
      await this.#commitTask(this.epoch, [], [], step);
      if (step.send.length) return step.send[0];
      throw step.events[0]?.error ?? new Error('no commit made');
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #handle(msg) {
    const step = { send: [], events: [] };
    switch (msg.type) {
      case 'create-group':
        if (this.#state !== AWAITING_GROUP) break;
        try {
          await this.#member.createGroup(crypto.getRandomValues(new Uint8Array(16)));
          await this.#entered(step);
        } catch (error) {
          this.#out(null, error, step);
        }
        break;
      case 'commit-task':
        await this.#commitTask(msg.epoch, msg.add.map((k) => ({ id: fromB64u(k.peer), sealed: fromB64u(k.data) })), msg.remove.map(fromB64u), step);
        break;
      case 'commit':
        await this.#commit(msg.from, msg.epoch, fromB64u(msg.data), step);
        break;
      case 'group-welcome':
        if (this.#state !== AWAITING_GROUP) break;
        try {
          await this.#member.join(fromB64u(msg.from), BigInt(msg.epoch), fromB64u(msg.data));
          await this.#entered(step);
        } catch (error) {
          step.events.push({ type: 'dropped', from: msg.from, error });
        }
        break;
      case 'group-message':
        if (this.#state !== IN_GROUP) break;
        try {
          const data = await this.#member.receive(fromB64u(msg.from), BigInt(msg.epoch), fromB64u(msg.data));
          step.events.push({ type: 'message', from: msg.from, data });
        } catch (error) {
          step.events.push({ type: 'dropped', from: msg.from, error });
        }
        break;
      case 'error':
        if (msg.code === 'refused-by-group') {
          this.#state = OUT;
          step.events.push({ type: 'refused' });
        }
        break;
      default:
        break;
    }
    return step;
  }

  async #commitTask(epoch, add, remove, step) {
    // Named for an epoch this member is not at, or with its own commit still pending: another
    // member will make it (the relay names the next one after a while).
    if (this.#state !== IN_GROUP || this.#pending !== null || this.epoch !== epoch) return;
    try {
      const c = await this.#member.commit(add, remove);
      step.send.push({
        type: 'commit',
        epoch: Number(c.epoch),
        data: b64u(c.commit),
        ...(c.welcome && { welcome: b64u(c.welcome) }),
        ...(c.refused.length && { refused: c.refused.map(b64u) }),
      });
      this.#pending = c.epoch;
    } catch (error) {
      step.events.push({ type: 'dropped', from: null, error });
    }
  }

  async #commit(from, epoch, sealed, step) {
    // Not this member's epoch (it joined after it): not for it.
    if (this.#state !== IN_GROUP || this.epoch !== epoch) return;
    if (from === this.#me && this.#pending === BigInt(epoch)) {
      try {
        this.#member.commitAccepted();
        this.#pending = null;
        await this.#entered(step);
      } catch (error) {
        this.#out(from, error, step);
      }
      return;
    }
    if (this.#pending !== null) {
      // Another commit won this epoch: ours is forgotten.
      this.#member.commitRefused();
      this.#pending = null;
    }
    try {
      const outcome = await this.#member.receiveCommit(fromB64u(from), BigInt(epoch), sealed);
      if (outcome === 'removed') {
        this.#state = OUT;
        step.events.push({ type: 'removed' });
      } else await this.#entered(step);
    } catch (error) {
      this.#out(from, error, step);
    }
  }

  /** In the group at a new epoch. */
  async #entered(step) {
    this.#state = IN_GROUP;
    const code = await this.#member.groupCode();
    const members = this.#member.members().map((m) => b64u(m.id));
    step.events.push({ type: 'epoch', epoch: this.epoch, code, members });
  }

  /** Out of step with the group: nothing more can be opened or committed here. */
  #out(from, error, step) {
    this.#state = OUT;
    step.events.push({ type: 'dropped', from, error });
  }
}
