// Known devices in Debian's chromium and firefox-esr (each with a profile of its own, so each a
// device of its own): the codes compared once and the other device remembered by name; after a
// reload the next call shows it verified at once, by that name, with no code to compare; the
// other browser's storage cleared (a new device) shows as not verified; the home page lists and
// forgets known devices; incognito sends no identity and stores nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, newSecret, relayAndBrowsers, shown, text, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();

/** Waits until `page`'s one tile's badge says `badge` (shown on the tile for a known device;
 *  one-to-one, an unverified pair's badge is the page's alone) and the page's says `top`. */
const showsBadges = (page, badge, top) =>
  waitFn(page, ([b, t]) => {
    const tile = document.querySelector('#tiles .tile .badge');
    return tile && tile.textContent === b && tile.hidden === !b.startsWith('Verified:') && document.getElementById('badge').textContent === t;
  }, [badge, top]);

/** Presses "Codes match", and remembers the other device as `name`. */
async function remember(page, name) {
  await page.click('#sas-match');
  await waitFn(page, () => !document.getElementById('remember').hidden);
  await page.evaluate((n) => {
    document.getElementById('remember-name').value = n;
  }, name);
  await page.click('#remember-save');
  await waitFn(page, () => document.getElementById('remember').hidden);
}

for (const [first, second] of [['chromium', 'firefox'], ['firefox', 'chromium']]) {
  test(`${first} and ${second}: a device remembered once is verified by name on the next call; a new device is not`, async () => {
    const base = `http://${env.relay.addr}/`;
    const url = `${base}#${newSecret()}`;
    const a = await env.open(first, url);
    await waitForEvent(a, { state: 'waiting-for-peer' });
    const b = await env.open(second, url);
    // Two devices that never met: each plainly not verified, with the code to compare.
    for (const p of [a, b]) {
      await waitForEvent(p, { type: 'identity', status: 'unknown' });
      assert.equal(await text(p, '#badge'), 'Not verified');
      assert.ok(await shown(p, '#sas'));
    }
    await remember(a, "Bea's browser");
    await waitForEvent(a, { type: 'identity', status: 'known' });
    await showsBadges(a, "Verified: Bea's browser", "Verified: Bea's browser (known device)");
    await remember(b, "Ada's browser");
    await showsBadges(b, "Verified: Ada's browser", "Verified: Ada's browser (known device)");
    await a.screenshot({ path: path.join(ARTIFACTS, `known-${first}-remembered.png`) });

    // Both reload: a new call, new keys, and each device recognised at once.
    await a.reload();
    await b.reload();
    await showsBadges(a, "Verified: Bea's browser", "Verified: Bea's browser (known device)");
    await showsBadges(b, "Verified: Ada's browser", "Verified: Ada's browser (known device)");
    for (const p of [a, b]) {
      await waitForEvent(p, { state: 'connected' });
      assert.ok(!(await shown(p, '#sas')), 'no code to compare with a known device');
    }
    await a.screenshot({ path: path.join(ARTIFACTS, `known-${first}-recognised.png`) });

    // The other browser's storage cleared: a new device, whatever it calls itself.
    await b.evaluate(() => new Promise((resolve, reject) => {
      const r = indexedDB.deleteDatabase('sotto');
      r.onsuccess = resolve;
      r.onerror = () => reject(r.error);
    }));
    await b.reload();
    await waitFn(a, () => (window.sotto?.events ?? []).filter((e) => e.type === 'identity').at(-1)?.status === 'unknown');
    await showsBadges(a, 'Not verified', 'Not verified');
    assert.ok(await shown(a, '#sas'));
    await a.screenshot({ path: path.join(ARTIFACTS, `known-${first}-new-device.png`) });

    // Incognito: no identity sent, nothing stored.
    const url2 = `${base}#${newSecret()}`;
    const c = await env.open(second, url2, { join: false });
    await waitFn(c, () => !document.getElementById('lobby').hidden && !document.getElementById('join').disabled);
    await c.click('#incognito');
    await c.click('#join');
    await waitForEvent(c, { state: 'waiting-for-peer' });
    await a.goto(url2);
    await waitForEvent(a, { type: 'identity', status: 'none' });
    await waitForEvent(c, { type: 'identity', status: 'unknown' });
    assert.equal(await c.evaluate(async () => (await indexedDB.databases()).some((d) => d.name === 'sotto')), false);

    // The home page lists what this browser remembered, and forgets it.
    await a.goto(base);
    await waitFn(a, () => document.querySelectorAll('#known-list li').length === 1);
    assert.match(await text(a, '#known-list li'), /^Bea's browserkey [0-9a-f]{4}( [0-9a-f]{4}){3}Forget$/);
    assert.ok(!(await shown(a, '#known-empty')));
    await a.screenshot({ path: path.join(ARTIFACTS, `known-${first}-home.png`) });
    await a.click('#known-list button');
    await waitFn(a, () => document.querySelectorAll('#known-list li').length === 0 && !document.getElementById('known-empty').hidden);
  });
}
