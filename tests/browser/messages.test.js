// Messages and files in the call, in Chromium and Firefox and with the native client: typed in
// the page's messages panel (Enter sends), files dropped on the call, received files checked by
// their SHA-256 before they can be saved; the relay (a recording proxy in front of it) never
// sees a word or a byte of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, KINDS, PAIRS, inView, nativeCall, newSecret, other, relayAndBrowsers, startTap, text, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();

/** In a page: keeps every Blob the page makes a download link for (the page's CSP lets
 *  nothing fetch them), so the test can read a received file. */
function keepBlobs() {
  window.__blobs = new Map();
  const create = URL.createObjectURL;
  URL.createObjectURL = (b) => {
    const url = create(b);
    window.__blobs.set(url, b);
    return url;
  };
}

/** Opens the panel and sends a text by typing it and pressing Enter. */
async function typeMessage(page, message) {
  if (await page.evaluate(() => document.getElementById('chat').hidden)) await page.click('#chat-toggle');
  await page.focus('#chat-input');
  await page.keyboard.type(message);
  await page.keyboard.press('Enter');
}

/** The other side's texts shown so far. */
const theirTexts = (page) => page.evaluate(() => [...document.querySelectorAll('#chat-log li.msg.theirs .text')].map((p) => p.textContent));

/** In a page: drops a file of `size` pseudo-random bytes called `name` on the call, as a person
 *  dragging it there would; resolves to the hex SHA-256 of its content. */
function dropFile([name, size, seed]) {
  const bytes = new Uint8Array(size);
  let x = (seed * 2654435761) | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name));
  document.getElementById('call').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  return crypto.subtle.digest('SHA-256', bytes).then((d) => [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join(''));
}

/** In a page: the hex SHA-256 and size of the received file behind its Save link. */
async function savedFile(fileKey) {
  const link = document.querySelector(`#chat-log li[data-file="${fileKey}"] a.save`);
  if (!link) return null;
  const blob = window.__blobs.get(link.href);
  const d = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return { name: link.download, size: blob.size, sha256: [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('') };
}

for (const [first, second] of PAIRS) {
  test(`${first} and ${second}: texts both ways turn delivered, 5 MB files each way arrive intact, the relay sees none of it`, async () => {
    const tap = await startTap(env.relay.addr);
    const url = `${tap.url}/#${newSecret()}`;
    const a = await env.open(first, url, { init: keepBlobs });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await env.open(second, url, { init: keepBlobs });
    for (const p of [a, b]) await waitForEvent(p, { type: 'chat', kind: 'messages-ready' });

    const hello = 'Hello <b>there</b> & welcome';
    await typeMessage(a, hello);
    await waitFn(b, (t) => [...document.querySelectorAll('#chat-log li.msg.theirs .text')].some((p) => p.textContent === t), hello);
    // Shown as text, never as markup.
    assert.equal(await b.evaluate(() => document.querySelectorAll('#chat-log b').length), 0);
    await waitFn(a, () => document.querySelector('#chat-log li.msg.mine .state')?.textContent === 'delivered');
    // The panel was closed on B: the toggle counts what is unread.
    assert.equal(await text(b, '#chat-unread'), '1');
    // Shift+Enter starts a new line; Enter sends both lines as one message.
    await b.click('#chat-toggle');
    await b.focus('#chat-input');
    await b.keyboard.type('Line one');
    await b.keyboard.down('Shift');
    await b.keyboard.press('Enter');
    await b.keyboard.up('Shift');
    await b.keyboard.type('line two');
    await b.keyboard.press('Enter');
    await waitFn(a, () => document.querySelectorAll('#chat-log li.msg.theirs .text').length === 1);
    assert.deepEqual(await theirTexts(a), ['Line one\nline two']);
    assert.equal(await b.evaluate(() => document.getElementById('chat-input').value), '', 'the box empties once sent');
    assert.equal(await b.evaluate(() => document.getElementById('chat-unread').hidden), true, 'opening the panel read them');
    assert.equal(await b.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Message');

    // 5 MB each way at once, dropped on the call.
    const [sumA, sumB] = await Promise.all([a.evaluate(dropFile, ['from-a.bin', 5_000_000, 1]), b.evaluate(dropFile, ['from-b.bin', 5_000_000, 2])]);
    const atB = await waitFn(b, savedFile, 'incoming:0', { timeout: 60000, polling: 250 });
    const atA = await waitFn(a, savedFile, 'incoming:0', { timeout: 60000, polling: 250 });
    assert.deepEqual(atB, { name: 'from-a.bin', size: 5_000_000, sha256: sumA });
    assert.deepEqual(atA, { name: 'from-b.bin', size: 5_000_000, sha256: sumB });
    await waitFn(a, () => document.querySelector('#chat-log li[data-file="outgoing:0"] .state')?.textContent === 'delivered');
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-messages-${first}-${second}.png`) });

    // Nothing of it passed the relay: no text, no file name.
    for (const { text: frame } of tap.record) {
      const bytes = JSON.parse(frame).data ? Buffer.from(JSON.parse(frame).data, 'base64url').toString('latin1') : '';
      for (const s of ['Hello', 'Line one', 'from-a.bin', 'from-b.bin']) assert.ok(!frame.includes(s) && !bytes.includes(s), `the relay saw ${s}`);
    }
  });
}

for (const kind of KINDS) {
  test(`${kind}: a file above the threshold waits for Accept, and a cancel midway leaves nothing to save`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await env.open(kind, url, { init: keepBlobs });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await env.open(other(kind), url, { init: keepBlobs });
    for (const p of [a, b]) await waitForEvent(p, { type: 'chat', kind: 'messages-ready' });
    await a.evaluate(dropFile, ['big.bin', 40_000_000, 3]);
    await waitForEvent(b, { type: 'chat', kind: 'file-offered', accepted: false });
    await b.click('#chat-toggle');
    await b.click('#chat-log li[data-file="incoming:0"] .file-actions button'); // Accept
    await waitForEvent(b, { type: 'chat', kind: 'file-progress', direction: 'incoming' });
    await b.click('#chat-log li[data-file="incoming:0"] .file-actions button'); // Cancel
    await waitFn(a, () => /stopped by them/.test(document.querySelector('#chat-log li[data-file="outgoing:0"] .state')?.textContent ?? ''));
    assert.match(await text(b, '#chat-log li[data-file="incoming:0"] .state'), /stopped: cancelled/);
    assert.equal(await b.evaluate(() => document.querySelectorAll('#chat-log a.save').length), 0);
    // The call and its messages go on.
    await typeMessage(a, 'still here');
    await waitFn(b, () => [...document.querySelectorAll('#chat-log li.msg.theirs .text')].some((p) => p.textContent === 'still here'));
  });

  test(`${kind} and the native client: texts both ways with receipts, files both ways, a hostile name lands as a plain one`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const page = await env.open(kind, url, { init: keepBlobs });
    await waitForEvent(page, { state: 'waiting-for-peer' });
    const dir = mkdtempSync(path.join(tmpdir(), 'sotto-dl-'));
    // What it hears goes to a file: this is about messages, and a fresh machine has no speakers.
    const native = nativeCall(url, ['--tone', '440', '--output', path.join(mkdtempSync(path.join(tmpdir(), 'sotto-')), 'heard.wav'), '--download-dir', dir], { stdin: true });
    await native.waitFor((e) => e.event === 'messages-ready');
    await waitForEvent(page, { type: 'chat', kind: 'messages-ready' });

    await typeMessage(page, 'hi terminal');
    assert.equal((await native.waitFor((e) => e.event === 'message')).text, 'hi terminal');
    await waitFn(page, () => document.querySelector('#chat-log li.msg.mine .state')?.textContent === 'delivered');
    native.type('hi browser');
    await waitFn(page, () => [...document.querySelectorAll('#chat-log li.msg.theirs .text')].some((p) => p.textContent === 'hi browser'));
    await native.waitFor((e) => e.event === 'message-delivered');

    // The page sends a file whose name tries to climb out of the download directory.
    const sum = await page.evaluate(dropFile, ['../../etc/passwd', 300_000, 4]);
    const got = await native.waitFor((e) => e.event === 'file-received', 60000);
    assert.equal(got.path, path.join(dir, 'passwd'));
    assert.equal(createHash('sha256').update(readFileSync(got.path)).digest('hex'), sum);
    assert.deepEqual(readdirSync(dir), ['passwd']);

    // And the terminal sends one back.
    const src = path.join(dir, 'passwd');
    native.type(`/send ${src}`);
    const back = await waitFn(page, savedFile, 'incoming:0', { timeout: 60000, polling: 250 });
    assert.deepEqual(back, { name: 'passwd', size: 300_000, sha256: sum });
    native.type('/quit');
    assert.equal(await native.exited, 0);
  });
}

for (const kind of KINDS) {
  test(`${kind}: the messages panel fits the call at desktop and phone sizes, the message box and hang-up in reach`, async () => {
    for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
      const url = `http://${env.relay.addr}/#${newSecret()}`;
      const a = await env.open(kind, url, { init: keepBlobs, viewport });
      await waitForEvent(a, { state: 'waiting-for-peer' });
      const b = await env.open(other(kind), url, { init: keepBlobs, viewport });
      for (const p of [a, b]) await waitForEvent(p, { type: 'chat', kind: 'messages-ready' });
      await typeMessage(b, 'Can you see the slides? https://example.org/slides?id=42');
      await b.evaluate(dropFile, ['slides.pdf', 120_000, 5]);
      await waitForEvent(a, { type: 'chat', kind: 'file-received' });
      assert.equal(await text(a, '#chat-unread'), '2');
      await a.click('#chat-toggle');
      await typeMessage(a, 'Yes, thanks!');
      for (const id of ['#chat-input', '#chat-send', '#hangup']) assert.ok(await inView(a, id), `${name}: ${id} out of view`);
      await a.screenshot({ path: path.join(ARTIFACTS, `browser-messages-${kind}-${name}.png`) });
    }
  });
}
