// Browser-to-browser call set-up in headless Chromium (Debian's), through the real relay: the
// time from the second page pressing Join on the link's preview to the first remote video frame
// it presents. Run
// with the relay built for use (every frame through the SFrame transform: the first frame shown
// is the first one decrypted) and with the `bench-no-e2ee` build, calls interleaved. Prints one
// line per mode with the median. Never part of the test suite.
//
//   node bench/browser-setup.mjs E2EE_RELAY_BIN PLAIN_RELAY_BIN [CALLS]

import { joinIfAsked, launchChromium, newSecret, startRelay, waitForEvent } from '../tests/browser/harness.js';

const [e2eeBin, plainBin, callsArg] = process.argv.slice(2);
if (!e2eeBin || !plainBin) {
  console.error('usage: node bench/browser-setup.mjs E2EE_RELAY_BIN PLAIN_RELAY_BIN [CALLS]');
  process.exit(2);
}
const calls = Number(callsArg ?? 10);

async function relayFrom(bin) {
  process.env.SOTTO_RELAY_BIN = bin;
  return startRelay();
}

/** Records, in the page, when the remote video element presents its first frame. Installed
 *  before any page script runs, so it cannot miss the frame. */
function watchFirstRemoteFrame() {
  // The other person's video element is made when they arrive.
  new MutationObserver((_, observer) => {
    const video = document.getElementById('remote-video');
    if (!video) return;
    observer.disconnect();
    video.requestVideoFrameCallback((now) => {
      window.__firstRemoteFrameAt = performance.timeOrigin + now;
    });
  }).observe(document, { childList: true, subtree: true });
}

/** One call; milliseconds from the second page's Join to its first remote frame. */
async function oneCall(browser, base) {
  const url = `${base}/#${newSecret()}`;
  const contexts = [await browser.newContext(), await browser.newContext()];
  try {
    const first = await contexts[0].newPage();
    await first.goto(url);
    await joinIfAsked(first);
    await waitForEvent(first, { state: 'waiting-for-peer' });
    const second = await contexts[1].newPage();
    await second.addInitScript(watchFirstRemoteFrame);
    await second.goto(url);
    await second.waitForSelector('#join:not([disabled])');
    const opened = Date.now();
    await second.click('#join');
    const handle = await second.waitForFunction(() => window.__firstRemoteFrameAt, null, { timeout: 20000 });
    return (await handle.jsonValue()) - opened;
  } finally {
    for (const c of contexts) await c.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const relays = { e2ee: await relayFrom(e2eeBin), plain: await relayFrom(plainBin) };
const browser = await launchChromium();
const times = { e2ee: [], plain: [] };
try {
  // One call of each not counted: Chromium's first call also pays for loading its codecs.
  for (const mode of ['e2ee', 'plain']) await oneCall(browser, `http://${relays[mode].addr}`);
  for (let i = 0; i < calls; i++) {
    for (const mode of ['e2ee', 'plain']) times[mode].push(await oneCall(browser, `http://${relays[mode].addr}`));
  }
} finally {
  await browser.close();
  for (const r of Object.values(relays)) r.stop();
}
for (const mode of ['e2ee', 'plain']) {
  console.log(`scenario=call-setup kind=browser mode=${mode} calls=${calls} first_video_ms=${median(times[mode]).toFixed(0)} min_ms=${Math.min(...times[mode]).toFixed(0)} max_ms=${Math.max(...times[mode]).toFixed(0)}`);
}
