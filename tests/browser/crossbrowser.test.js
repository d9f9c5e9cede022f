// Calls across browsers: Debian's chromium (playwright-core) and firefox-esr (puppeteer-core),
// each order, and Firefox with Firefox. Video and audio both ways, every frame through the
// transforms with no authentication failure, the same safety code, no audio-level extension
// in any SDP on the wire.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, newSecret, relayAndBrowsers, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();
const open = (kind, url, options) => env.open(kind, url, options);

const evaluate = (page, fn) => page.evaluate(fn);

for (const [first, second] of [['firefox', 'chromium'], ['chromium', 'firefox'], ['firefox', 'firefox']]) {
  test(`${first} opens the link, ${second} joins: video and audio both ways, every frame encrypted, the same safety code`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(first, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(second, url);
    for (const p of [a, b]) await waitForEvent(p, { state: 'connected' });
    const [sasA, sasB] = [await waitForEvent(a, { type: 'sas' }), await waitForEvent(b, { type: 'sas' })];
    assert.equal(sasA.code, sasB.code);
    for (const [p, kind] of [[a, first], [b, second]]) {
      await waitFn(p, () => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 20000 });
      // Audio arrives (headless Firefox keeps its AudioContext suspended: getStats it is).
      await waitFn(p, async () => {
        const stats = await window.__test.pc().getStats();
        return [...stats.values()].some((s) => s.type === 'inbound-rtp' && s.kind === 'audio' && s.totalSamplesReceived > 0);
      }, null, { timeout: 15000, polling: 250 });
      // Frames went through the transforms both ways, none failed.
      await waitFn(p, async () => {
        const w = await window.__test.workerStats();
        return ['send:audio', 'send:video', 'receive:audio', 'receive:video'].every((k) => w[k]?.ok > 10);
      }, null, { timeout: 15000, polling: 250 });
      const w = await evaluate(p, () => window.__test.workerStats());
      for (const k of ['receive:audio', 'receive:video']) assert.equal(w[k].failed, 0, `${kind} ${k}: ${JSON.stringify(w[k])}`);
      // No SDP either side sent or took carries the audio level in clear.
      const sdps = await evaluate(p, () => [window.__test.pc().localDescription.sdp, window.__test.pc().remoteDescription.sdp]);
      for (const sdp of sdps) assert.ok(!sdp.includes('ssrc-audio-level'), `${kind}: audio-level negotiated`);
    }
    await a.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-a.png`) });
    await b.screenshot({ path: path.join(ARTIFACTS, `browser-${first}-${second}-b.png`) });
    await a.click('#hangup');
    await waitForEvent(b, { type: 'ended' });
  });
}

/** In the sending page: the SDP it sends is mangled past any browser's parser (the DTLS
 *  fingerprint line kept, so the keys still agree). */
function mangleOwnSdp() {
  // The tests' probe may have put a subclass in front: the getter lives further up.
  let proto = RTCPeerConnection.prototype;
  while (!Object.getOwnPropertyDescriptor(proto, 'localDescription')) proto = Object.getPrototypeOf(proto);
  const get = Object.getOwnPropertyDescriptor(proto, 'localDescription').get;
  Object.defineProperty(proto, 'localDescription', {
    get() {
      const d = get.call(this);
      return d && { type: d.type, sdp: d.sdp.replace(/^m=audio \d+ /m, 'm=audio not-a-port ') };
    },
  });
}

for (const kind of ['chromium', 'firefox']) {
  test(`a call set-up ${kind} cannot read is said in words, and the badge goes`, async () => {
    const url = `http://${env.relay.addr}/#${newSecret()}`;
    const a = await open(kind === 'chromium' ? 'firefox' : 'chromium', url, { init: mangleOwnSdp });
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await open(kind, url);
    const ended = await waitForEvent(b, { type: 'ended' });
    assert.equal(ended.reason, "the other browser's call set-up could not be read by this one");
    const words = await evaluate(b, () => document.getElementById('ended-reason').textContent);
    assert.match(words, /could not be read/);
    const page = await evaluate(b, () => document.body.innerText);
    assert.doesNotMatch(page, /Failed to|setRemoteDescription|SessionDescription|Error/);
    assert.equal(await evaluate(b, () => document.getElementById('badge').textContent), '');
  });
}
