// The people of a call on screen: a tile per person (their video and sound, their name, the
// badge of their pair, microphone and camera states, a ring while they speak) laid out as a grid
// that suits how many there are, and a row per person in the people panel with the safety code
// you share with them and its own "Codes match". A device remembered here (known devices) says
// "Verified: NAME" at once; any other says it is not verified until the codes are compared.
// DOM only: what it shows comes from the room.
// No innerHTML (the relay's CSP enforces Trusted Types).

/** How a person is named until they give a name: "Person" and the first characters of their id. */
export const label = (peer) => `Person ${peer.slice(0, 6)}`;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Tiles {
  /**
   * @param {HTMLElement} grid  the tiles' container; its `data-count` drives the CSS layout
   * @param {HTMLElement} list  the people panel's list
   * @param {object} o
   * @param {boolean} [o.single]   one-to-one: the page's own safety-code panel and badge show the
   *   pair's code (a group shows each on its tile); the one tile's video is `#remote-video`,
   *   its note `#no-video`
   * @param {(peer: string) => void} [o.onVerified]   someone's code was confirmed to match
   * @param {() => void} [o.onChange]   someone came, went or was renamed
   */
  constructor(grid, list, { single = false, onVerified = () => {}, onChange = () => {} }) {
    Object.assign(this, { grid, list, single, onVerified, onChange });
    /** peer -> the tile's parts and the person's state */
    this.tiles = new Map();
    grid.replaceChildren();
    list.replaceChildren();
    this.update();
  }

  tile(peer) {
    let t = this.tiles.get(peer);
    if (t) return t;
    const figure = el('figure', 'tile');
    figure.dataset.peer = peer;
    const video = el('video');
    video.autoplay = true;
    video.playsInline = true;
    const none = el('p', 'no-video', 'Not connected yet');
    if (this.single) [video.id, none.id] = ['remote-video', 'no-video'];
    const avatar = el('div', 'avatar');
    const initial = el('span', 'initial');
    initial.setAttribute('aria-hidden', 'true');
    const why = el('span', 'why');
    avatar.append(initial, why);
    avatar.hidden = true;
    const caption = el('figcaption');
    const name = el('span', 'name');
    const muted = el('span', 'muted-icon', 'microphone off');
    muted.hidden = true;
    const badge = el('span', 'badge');
    const code = el('span', 'code');
    const match = el('button', 'match', 'Codes match');
    match.type = 'button';
    match.hidden = true;
    caption.append(name, muted, badge, code, match);
    figure.append(video, avatar, none, caption);
    this.grid.append(figure);

    // Their row in the people panel.
    const row = el('li');
    row.dataset.peer = peer;
    const rowName = el('span', 'name');
    const rowCode = el('span', 'code');
    const rowMatch = el('button', 'match', 'Codes match');
    rowMatch.type = 'button';
    rowMatch.hidden = true;
    const rowState = el('span', 'state', 'connecting');
    row.append(rowName, rowCode, rowMatch, rowState);
    this.list.append(row);

    t = {
      figure, video, none, avatar, initial, why, name, muted, badge, code, match,
      row, rowName, rowCode, rowMatch, rowState,
      stream: new MediaStream(),
      peer,
      given: null, // the name they gave
      verified: false,
      device: null, // { status: 'known'|'unknown'|'none', name, key }: their device identity
      knownAs: null, // the name this person gave their device, when it is a known one
      microphone: true,
      camera: true,
      connected: false,
    };
    video.srcObject = t.stream;
    video.addEventListener('resize', () => this.render(t));
    for (const b of [match, rowMatch]) b.onclick = () => this.verify(peer);
    this.tiles.set(peer, t);
    this.render(t);
    this.update();
    return t;
  }

  /** What a tile and its row say, from the person's state. */
  render(t) {
    const who = this.nameOf(t.peer);
    t.name.textContent = who;
    t.rowName.textContent = who;
    t.video.setAttribute('aria-label', who);
    t.match.setAttribute('aria-label', `Codes match with ${who}`);
    t.rowMatch.setAttribute('aria-label', `Codes match with ${who}`);
    t.initial.textContent = [...who][0]?.toUpperCase() ?? '?';
    const hasVideo = t.stream.getVideoTracks().length > 0;
    const showing = t.video.videoWidth > 0;
    // A voice tile for someone who sends no video at all (a terminal caller); a camera turned
    // off says so. Either way their sound goes on playing from the hidden video element.
    const voiceOnly = t.connected && !hasVideo;
    t.avatar.hidden = !(voiceOnly || (hasVideo && !t.camera));
    t.why.textContent = voiceOnly ? 'Voice only' : 'Camera off';
    t.none.hidden = showing || !t.avatar.hidden;
    t.muted.hidden = t.microphone;
    t.figure.classList.toggle('voice', voiceOnly);
    const code = t.code.textContent;
    t.code.hidden = this.single;
    // One-to-one, the page's panel and badge speak for the pair, but a known device is named on
    // its tile too.
    t.badge.hidden = this.single && !t.knownAs;
    t.match.hidden = this.single || !code || t.verified;
    t.rowMatch.hidden = !code;
    t.match.disabled = t.rowMatch.disabled = t.verified;
    t.rowMatch.textContent = t.knownAs ? `Verified: ${t.knownAs}` : t.verified ? 'Verified' : 'Codes match';
    const states = [t.connected ? 'connected' : 'connecting'];
    if (!t.microphone) states.push('microphone off');
    if (voiceOnly) states.push('voice only');
    else if (hasVideo && !t.camera) states.push('camera off');
    t.rowState.textContent = states.join(' · ');
  }

  setBadge(peer, kind, text) {
    const t = this.tiles.get(peer);
    if (!t) return;
    t.badge.className = kind ? `badge ${kind}` : 'badge';
    t.badge.textContent = text;
  }

  /** Someone is here (their pair started). */
  add(peer) {
    this.tile(peer);
  }

  /** The first tile (the other person of a one-to-one call), or null. */
  get first() {
    return this.tiles.values().next().value ?? null;
  }

  track(peer, track) {
    const t = this.tile(peer);
    t.stream.addTrack(track);
    // An element whose stream had no track yet does not start by itself when one comes (a
    // voice tile would stay silent): it is told to play.
    if (t.video.paused) t.video.play().catch(() => {});
    this.render(t);
  }

  /** A track of theirs moved to someone else's tile (a conference's view changed). */
  untrack(peer, track) {
    const t = this.tiles.get(peer);
    if (!t) return;
    t.stream.removeTrack(track);
    this.render(t);
  }

  /** A conference's page: only these people's tiles show (the speaker and one page of the
   *  others; the rest are in People). */
  showOnly(peers) {
    for (const t of this.tiles.values()) t.figure.hidden = !peers.includes(t.peer);
    this.grid.dataset.count = String(Math.min(peers.length, this.tiles.size));
  }

  /** A conference's active speaker: their tile is the large one. */
  feature(peer) {
    for (const t of this.tiles.values()) t.figure.classList.toggle('featured', t.peer === peer);
  }

  connected(peer, yes) {
    const t = this.tiles.get(peer);
    if (!t) return;
    t.connected = yes;
    this.render(t);
  }

  /** The name they gave. */
  name(peer, name) {
    const t = this.tile(peer);
    t.given = name;
    this.render(t);
    this.onChange(this);
  }

  /** Whether their microphone and camera are on, as they told us. */
  media(peer, { microphone, camera }) {
    const t = this.tiles.get(peer);
    if (!t) return;
    Object.assign(t, { microphone, camera });
    this.render(t);
  }

  speaking(peer, yes) {
    this.tiles.get(peer)?.figure.classList.toggle('speaking', yes);
  }

  /** Their pair's safety code: to compare, not yet verified. */
  code(peer, code) {
    const t = this.tile(peer);
    const text = `${code.slice(0, 3)} ${code.slice(3)}`;
    t.code.textContent = text;
    t.rowCode.textContent = text;
    t.verified = false;
    t.device = null;
    t.knownAs = null;
    this.setBadge(peer, ...this.badgeOf(t));
    this.render(t);
  }

  /** What their badge says when their frames authenticate: [class, text]. */
  badgeOf(t) {
    if (t.knownAs) return ['verified', `Verified: ${t.knownAs}`];
    return t.verified ? ['verified', 'Verified'] : ['encrypted', 'Not verified'];
  }

  /** Their device's identity: `known` (remembered here as `name`: verified, no code to
   *  compare), `unknown` or `none` (not verified until the codes are compared). */
  identity(peer, { status, name = null, key = null }) {
    const t = this.tiles.get(peer);
    if (!t) return;
    t.device = { status, name, key };
    t.knownAs = status === 'known' ? name : null;
    if (t.knownAs) t.verified = true;
    this.setBadge(peer, ...this.badgeOf(t));
    this.render(t);
  }

  /** Their code was compared and matches. */
  verify(peer) {
    const t = this.tiles.get(peer);
    if (!t) return;
    t.verified = true;
    this.setBadge(peer, ...this.badgeOf(t));
    this.render(t);
    this.onVerified(peer);
  }

  /** Their pair is over: their tile and row go. */
  remove(peer) {
    const t = this.tiles.get(peer);
    if (!t) return;
    for (const track of t.stream.getTracks()) t.stream.removeTrack(track);
    t.video.srcObject = null;
    t.figure.remove();
    t.row.remove();
    this.tiles.delete(peer);
    this.update();
  }

  clear() {
    for (const peer of [...this.tiles.keys()]) this.remove(peer);
  }

  /** What a person is called here: the name they gave; else, one-to-one, "The other
   *  person", and in a group "Person" and the start of their id. */
  nameOf(peer) {
    const t = this.tiles.get(peer);
    return t?.given ?? (this.single ? 'The other person' : label(peer));
  }

  update() {
    this.grid.dataset.count = String(this.tiles.size);
    this.onChange(this);
  }
}
