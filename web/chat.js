// The messages panel of the call page: texts and files with the others, beside the video. In a
// group every text and file goes to each person over their own pair (each encrypted for them
// alone): a text is one entry, delivered to each in turn; a file is an entry per person. It
// shows what each pair's messages (messages.js) report and turns the person's typing, file picks
// and drops into requests. Everything from the others is shown as text (textContent), never as
// markup.

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();
const MAX_TEXT = 4096;

const REASONS = ['cancelled', 'too large for the other side', 'the content did not match its checksum', 'the other side broke the rules', 'could not be read or stored', 'too many files at once'];

function size(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** The Save links of received files: they stay usable after the call ends, and are released
 *  when the page starts its next call. */
let savedUrls = [];

const clock = () => new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

export class ChatPanel {
  /**
   * @param {object} actions  { sendText(text) -> Promise<[{ peer, id }]> (one per person it
   *   went to), sendFile(File) -> Promise, accept(peer, id), cancel(peer, id, direction),
   *   ready() -> whether anything can be sent now }
   * @param {object} o
   * @param {boolean} o.group   several people: entries say who
   * @param {(peer: string) => string} o.nameOf
   */
  constructor(actions, { group = false, conference = false, nameOf = () => 'Them' } = {}) {
    Object.assign(this, { actions, group, nameOf });
    this.unread = 0;
    this.sent = new Map(); // `${peer}:${text id}` -> { state, to, delivered }
    this.files = new Map(); // `${peer}:${direction}:${id}` -> { item, progress, actions, state }
    $('chat-help').textContent = conference
      ? 'Enter sends, Shift+Enter starts a new line. Messages go to everyone in the conference, encrypted for the group; the relay and its media server never see them.'
      : group
      ? 'Enter sends, Shift+Enter starts a new line. Drop a file anywhere to send it. Messages and files go to everyone in the call, to each person encrypted for them alone; the relay never sees them.'
      : 'Enter sends, Shift+Enter starts a new line. Drop a file anywhere to send it. Messages and files go straight to the other person, encrypted; the relay never sees them.';
    for (const url of savedUrls.splice(0)) URL.revokeObjectURL(url);
    $('chat-log').replaceChildren();
    $('chat-error').hidden = true;
    this.setReady(false);
    this.setUnread(0);
    $('chat-toggle').onclick = () => this.toggle();
    $('chat-close').onclick = () => this.toggle(false);
    $('chat').onkeydown = (e) => {
      if (e.key === 'Escape') this.toggle(false);
    };
    $('chat-input').onkeydown = (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    };
    $('chat-form').onsubmit = (e) => {
      e.preventDefault();
      this.submit();
    };
    $('chat-file-button').onclick = () => $('chat-file').click();
    $('chat-file').onchange = () => {
      for (const f of $('chat-file').files) this.sendFile(f);
      $('chat-file').value = '';
    };
    // Drop a file anywhere on the call.
    const call = $('call');
    call.ondragover = (e) => {
      if ([...(e.dataTransfer?.types ?? [])].includes('Files')) e.preventDefault();
    };
    call.ondrop = (e) => {
      const files = [...(e.dataTransfer?.files ?? [])];
      if (!files.length) return;
      e.preventDefault();
      this.toggle(true);
      for (const f of files) this.sendFile(f);
    };
  }

  get open() {
    return !$('chat').hidden;
  }

  toggle(open = !this.open) {
    $('chat').hidden = !open;
    $('chat-toggle').setAttribute('aria-expanded', String(open));
    if (open) {
      this.setUnread(0);
      $('chat-input').focus();
    } else {
      $('chat-toggle').focus();
    }
  }

  setUnread(n) {
    this.unread = n;
    $('chat-unread').textContent = n ? String(n) : '';
    $('chat-unread').hidden = n === 0;
    $('chat-toggle').setAttribute('aria-label', n ? `Messages, ${n} unread` : 'Messages');
  }

  /** Messages can go (the data channel is open and keyed), or not. */
  setReady(ready) {
    for (const id of ['chat-send', 'chat-file-button']) $(id).disabled = !ready;
    $('chat-input').placeholder = ready
      ? 'Message'
      : this.actions?.noDataChannel?.()
        ? "The other side's app offered no data channel: no messages in this call"
        : 'Messages work once the call is connected';
  }

  error(text) {
    $('chat-error').textContent = text;
    $('chat-error').hidden = !text;
  }

  add(item) {
    const log = $('chat-log');
    log.append(item);
    log.scrollTop = log.scrollHeight;
    if (!this.open && item.classList.contains('theirs')) this.setUnread(this.unread + 1);
  }

  async submit() {
    const input = $('chat-input');
    const text = input.value;
    if (!text.trim()) return;
    const bytes = encoder.encode(text).length;
    if (bytes > MAX_TEXT) {
      this.error(`A message is at most ${MAX_TEXT} bytes; this one is ${bytes}. Send it in parts, or as a file.`);
      return;
    }
    try {
      const sent = await this.actions.sendText(text);
      this.error('');
      input.value = '';
      const state = el('span', { class: 'state' }, 'sent');
      const record = { state, to: sent.length, delivered: 0 };
      for (const { peer, id } of sent) this.sent.set(`${peer}:${id}`, record);
      const ids = sent.map((s) => s.id).join(' ');
      this.add(el('li', { class: 'msg mine', 'data-id': ids }, el('span', { class: 'who' }, 'You'), ' ', el('time', {}, clock()), ' ', state, el('p', { class: 'text' }, text)));
    } catch (e) {
      this.error(e.message);
    }
    input.focus();
  }

  async sendFile(file) {
    try {
      await this.actions.sendFile(file);
      this.error('');
    } catch (e) {
      this.error(e.message);
    }
  }

  fileItem(peer, direction, id, name, bytes, who) {
    const progress = el('progress', { max: Math.max(bytes, 1), value: 0 });
    progress.setAttribute('aria-label', `${name}: progress`);
    const state = el('span', { class: 'state' });
    const buttons = el('span', { class: 'file-actions' });
    const item = el(
      'li',
      { class: `file ${direction === 'outgoing' ? 'mine' : 'theirs'}`, 'data-file': `${direction}:${id}`, 'data-peer': peer },
      el('span', { class: 'who' }, who),
      ' ',
      el('time', {}, clock()),
      ' ',
      state,
      el('p', { class: 'text' }, el('span', { class: 'name' }, name), ` (${size(bytes)})`),
      progress,
      buttons,
    );
    const f = { item, progress, buttons, state, size: bytes, name };
    this.files.set(`${peer}:${direction}:${id}`, f);
    this.add(item);
    return f;
  }

  /** One event of the messages of the pair with `peer` (messages.js). */
  onEvent(e, peer) {
    const them = this.group ? this.nameOf(peer) : 'Them';
    switch (e.type) {
      case 'messages-ready':
        this.setReady(this.actions.ready());
        break;
      case 'text':
        this.add(el('li', { class: 'msg theirs', 'data-id': String(e.id), 'data-peer': peer }, el('span', { class: 'who' }, them), ' ', el('time', {}, clock()), el('p', { class: 'text' }, e.text)));
        break;
      case 'delivered': {
        const r = this.sent.get(`${peer}:${e.id}`);
        this.sent.delete(`${peer}:${e.id}`);
        if (!r) break;
        r.delivered += 1;
        r.state.textContent = r.to === 1 ? 'delivered' : r.delivered === r.to ? `delivered to all ${r.to}` : `delivered to ${r.delivered} of ${r.to}`;
        break;
      }
      case 'file-sent': {
        const f = this.fileItem(peer, 'outgoing', e.id, e.name, e.size, this.group ? `You → ${them}` : 'You');
        f.state.textContent = this.group ? `waiting for ${them} to accept` : 'waiting for them to accept';
        f.buttons.append(el('button', { type: 'button', onclick: () => this.actions.cancel(peer, e.id, 'outgoing') }, 'Cancel'));
        break;
      }
      case 'file-offered': {
        const f = this.fileItem(peer, 'incoming', e.id, e.name, e.size, them);
        if (e.accepted) {
          f.state.textContent = 'receiving';
          f.buttons.append(el('button', { type: 'button', onclick: () => this.actions.cancel(peer, e.id, 'incoming') }, 'Cancel'));
        } else {
          f.state.textContent = 'offered';
          f.buttons.append(
            el('button', { type: 'button', onclick: () => this.accept(peer, e.id) }, 'Accept'),
            el('button', { type: 'button', onclick: () => this.actions.cancel(peer, e.id, 'incoming') }, 'Decline'),
          );
        }
        break;
      }
      case 'file-progress': {
        const f = this.files.get(`${peer}:${e.direction}:${e.id}`);
        if (!f) break;
        f.progress.value = e.done;
        f.state.textContent = e.direction === 'outgoing' ? 'sending' : 'receiving';
        break;
      }
      case 'file-ready': {
        const f = this.files.get(`${peer}:incoming:${e.id}`);
        if (!f) break;
        savedUrls.push(e.url);
        f.state.textContent = 'received, checked';
        f.progress.value = f.progress.max;
        f.buttons.replaceChildren(el('a', { href: e.url, download: e.name, class: 'save' }, `Save ${e.name}`));
        break;
      }
      case 'file-delivered': {
        const f = this.files.get(`${peer}:outgoing:${e.id}`);
        if (!f) break;
        f.state.textContent = 'delivered';
        f.progress.value = f.progress.max;
        f.buttons.replaceChildren();
        break;
      }
      case 'file-stopped': {
        const f = this.files.get(`${peer}:${e.direction}:${e.id}`);
        if (!f) break;
        const reason = REASONS[e.reason] ?? REASONS[3];
        f.state.textContent = e.by === 'us' ? `stopped: ${reason}` : `stopped by ${this.group ? them : 'them'}: ${reason}`;
        f.progress.hidden = true;
        f.buttons.replaceChildren();
        break;
      }
      case 'peer-error':
        this.error(`From ${this.group ? them : 'the other side'}: ${e.error}`);
        break;
      case 'tampered':
        this.setReady(this.actions.ready());
        this.error(this.group
          ? `Messages with ${them} tampered with: messages and files with them are off for this call. The call itself goes on.`
          : 'Messages tampered with: messages and files are off for this call. The call itself goes on.');
        break;
      default:
    }
  }

  async accept(peer, id) {
    try {
      await this.actions.accept(peer, id);
      const f = this.files.get(`${peer}:incoming:${id}`);
      if (f) {
        f.state.textContent = 'receiving';
        f.buttons.replaceChildren(el('button', { type: 'button', onclick: () => this.actions.cancel(peer, id, 'incoming') }, 'Cancel'));
      }
    } catch (e) {
      this.error(e.message);
    }
  }

  /** The call ended: nothing more can be sent. */
  end() {
    this.setReady(false);
  }
}
