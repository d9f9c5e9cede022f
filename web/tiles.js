// The people of a group call on screen: a tile per person (their video and sound, a label, the
// badge of their pair, and the safety code you share with them, with its own "Codes match"),
// laid out as a grid that suits how many there are. DOM only: what it shows comes from the room.
// No innerHTML (the relay's CSP enforces Trusted Types).

/** How a person is named until names exist: "Person" and the first characters of their id. */
export const label = (peer) => `Person ${peer.slice(0, 6)}`;

export class Tiles {
  /** @param {HTMLElement} grid  the container; its `data-count` drives the CSS layout */
  constructor(grid) {
    this.grid = grid;
    /** peer -> { figure, video, stream, code, match, badge, verified } */
    this.tiles = new Map();
    this.update();
  }

  tile(peer) {
    let t = this.tiles.get(peer);
    if (t) return t;
    const figure = document.createElement('figure');
    figure.className = 'tile';
    figure.dataset.peer = peer;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute('aria-label', label(peer));
    const none = document.createElement('p');
    none.className = 'no-video';
    none.textContent = 'Voice only, or not connected yet';
    video.addEventListener('resize', () => {
      none.hidden = video.videoWidth > 0;
    });
    const caption = document.createElement('figcaption');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label(peer);
    const badge = document.createElement('span');
    badge.className = 'badge';
    const code = document.createElement('span');
    code.className = 'code';
    const match = document.createElement('button');
    match.type = 'button';
    match.textContent = 'Codes match';
    match.hidden = true;
    match.setAttribute('aria-label', `Codes match with ${label(peer)}`);
    caption.append(name, badge, code, match);
    figure.append(video, none, caption);
    this.grid.append(figure);
    t = { figure, video, none, stream: new MediaStream(), code, match, badge, verified: false };
    video.srcObject = t.stream;
    match.onclick = () => {
      t.verified = true;
      match.disabled = true;
      this.setBadge(peer, 'verified', 'Verified');
    };
    this.tiles.set(peer, t);
    this.update();
    return t;
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

  track(peer, track) {
    const t = this.tile(peer);
    t.stream.addTrack(track);
  }

  /** Their pair's safety code. */
  code(peer, code) {
    const t = this.tile(peer);
    t.code.textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
    t.match.hidden = false;
    t.match.disabled = false;
    t.verified = false;
    this.setBadge(peer, 'encrypted', 'Encrypted');
  }

  /** Their pair is over: their tile goes. */
  remove(peer) {
    const t = this.tiles.get(peer);
    if (!t) return;
    for (const track of t.stream.getTracks()) t.stream.removeTrack(track);
    t.video.srcObject = null;
    t.figure.remove();
    this.tiles.delete(peer);
    this.update();
  }

  clear() {
    for (const peer of [...this.tiles.keys()]) this.remove(peer);
  }

  update() {
    this.grid.dataset.count = String(this.tiles.size);
  }
}
