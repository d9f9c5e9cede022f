// The messages panel of the call page: texts and files with the other person, beside the video.
// It shows what the call's messages (messages.js) report and turns the person's typing, file
// picks and drops into requests. Everything from the other side is shown as text
// (textContent), never as markup.

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
   * @param {object} actions  { sendText(text) -> Promise<id>, sendFile(File) -> Promise<id>,
   *   accept(id), cancel(id, direction) }
   */
  constructor(actions) {
    this.actions = actions;
    this.unread = 0;
    this.sent = new Map(); // text id -> its state element
    this.files = new Map(); // `${direction}:${id}` -> { item, progress, actions, state }
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
    $('chat-input').placeholder = ready ? 'Message' : 'Messages work once the call is connected';
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
      const id = await this.actions.sendText(text);
      this.error('');
      input.value = '';
      const state = el('span', { class: 'state' }, 'sent');
      this.sent.set(id, state);
      this.add(el('li', { class: 'msg mine', 'data-id': String(id) }, el('span', { class: 'who' }, 'You'), ' ', el('time', {}, clock()), ' ', state, el('p', { class: 'text' }, text)));
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

  fileItem(direction, id, name, bytes, who) {
    const progress = el('progress', { max: Math.max(bytes, 1), value: 0 });
    progress.setAttribute('aria-label', `${name}: progress`);
    const state = el('span', { class: 'state' });
    const buttons = el('span', { class: 'file-actions' });
    const item = el(
      'li',
      { class: `file ${who === 'You' ? 'mine' : 'theirs'}`, 'data-file': `${direction}:${id}` },
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
    this.files.set(`${direction}:${id}`, f);
    this.add(item);
    return f;
  }

  /** One event of the call's messages (messages.js). */
  onEvent(e) {
    switch (e.type) {
      case 'messages-ready':
        this.setReady(true);
        break;
      case 'text':
        this.add(el('li', { class: 'msg theirs', 'data-id': String(e.id) }, el('span', { class: 'who' }, 'Them'), ' ', el('time', {}, clock()), el('p', { class: 'text' }, e.text)));
        break;
      case 'delivered': {
        const s = this.sent.get(e.id);
        if (s) s.textContent = 'delivered';
        this.sent.delete(e.id);
        break;
      }
      case 'file-sent': {
        const f = this.fileItem('outgoing', e.id, e.name, e.size, 'You');
        f.state.textContent = 'waiting for them to accept';
        f.buttons.append(el('button', { type: 'button', onclick: () => this.actions.cancel(e.id, 'outgoing') }, 'Cancel'));
        break;
      }
      case 'file-offered': {
        const f = this.fileItem('incoming', e.id, e.name, e.size, 'Them');
        if (e.accepted) {
          f.state.textContent = 'receiving';
          f.buttons.append(el('button', { type: 'button', onclick: () => this.actions.cancel(e.id, 'incoming') }, 'Cancel'));
        } else {
          f.state.textContent = 'offered';
          f.buttons.append(
            el('button', { type: 'button', onclick: () => this.accept(e.id) }, 'Accept'),
            el('button', { type: 'button', onclick: () => this.actions.cancel(e.id, 'incoming') }, 'Decline'),
          );
        }
        break;
      }
      case 'file-progress': {
        const f = this.files.get(`${e.direction}:${e.id}`);
        if (!f) break;
        f.progress.value = e.done;
        f.state.textContent = e.direction === 'outgoing' ? 'sending' : 'receiving';
        break;
      }
      case 'file-ready': {
        const f = this.files.get(`incoming:${e.id}`);
        if (!f) break;
        savedUrls.push(e.url);
        f.state.textContent = 'received, checked';
        f.progress.value = f.progress.max;
        f.buttons.replaceChildren(el('a', { href: e.url, download: e.name, class: 'save' }, `Save ${e.name}`));
        break;
      }
      case 'file-delivered': {
        const f = this.files.get(`outgoing:${e.id}`);
        if (!f) break;
        f.state.textContent = 'delivered';
        f.progress.value = f.progress.max;
        f.buttons.replaceChildren();
        break;
      }
      case 'file-stopped': {
        const f = this.files.get(`${e.direction}:${e.id}`);
        if (!f) break;
        const reason = REASONS[e.reason] ?? REASONS[3];
        f.state.textContent = e.by === 'us' ? `stopped: ${reason}` : `stopped by them: ${reason}`;
        f.progress.hidden = true;
        f.buttons.replaceChildren();
        break;
      }
      case 'peer-error':
        this.error(`From the other side: ${e.error}`);
        break;
      case 'tampered':
        this.setReady(false);
        this.error('Messages tampered with: messages and files are off for this call. The call itself goes on.');
        break;
      default:
    }
  }

  async accept(id) {
    try {
      await this.actions.accept(id);
      const f = this.files.get(`incoming:${id}`);
      if (f) {
        f.state.textContent = 'receiving';
        f.buttons.replaceChildren(el('button', { type: 'button', onclick: () => this.actions.cancel(id, 'incoming') }, 'Cancel'));
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
