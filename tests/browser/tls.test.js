// A self-hosted relay with its own TLS certificate, as a deployment runs it: Chromium or Firefox
// on https:// under a real host name (a secure context, not localhost) and the terminal client
// over wss:// with --ca-file call each other.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, KINDS, TEST_HOST as HOST, joinIfAsked, launchChromium, launchFirefox, nativeCall, openPage, startRelay, value, waitFn, waitForEvent } from './harness.js';

/** A private CA, and a relay certificate it signed for HOST (the browser's name for the relay)
 *  and localhost (the terminal's), made with openssl. */
function pki() {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-pki-'));
  const f = (name) => path.join(dir, name);
  const openssl = (args, input) => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=Sotto test CA', '-keyout', f('ca-key.pem'), '-out', f('ca.pem')]);
  openssl(['req', ...ec, '-subj', `/CN=${HOST}`, '-keyout', f('relay-key.pem'), '-out', f('relay.csr')]);
  writeFileSync(f('relay.ext'), `subjectAltName=DNS:${HOST},DNS:localhost\nbasicConstraints=CA:FALSE\n`);
  openssl(['x509', '-req', '-in', f('relay.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f('relay.ext'), '-out', f('relay.pem')]);
  return { dir, ca: f('ca.pem'), cert: f('relay.pem'), key: f('relay-key.pem') };
}

/** base64 SHA-256 of a certificate's public key, as Chromium's SPKI allow-list wants it. */
function spkiHash(certFile) {
  const pub = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-pubkey']);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
  return execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString('base64');
}

/** A Firefox profile whose certificate store trusts `caFile` for web sites, as a deployment's
 *  Firefox trusts its public CAs (NSS certutil, the tool Firefox's own store is managed with). */
function firefoxProfileTrusting(caFile) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-firefox-'));
  execFileSync('certutil', ['-N', '-d', `sql:${dir}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${dir}`, '-n', 'Sotto test CA', '-t', 'C,,', '-i', caFile]);
  return dir;
}

let relay;
let browser;
after(async () => {
  await browser?.close();
  await relay?.stop();
});

for (const kind of KINDS) test(`over the relay's own TLS, ${kind} on https:// and the terminal client call each other`, async () => {
  await browser?.close();
  await relay?.stop();
  const p = pki();
  relay = await startRelay('127.0.0.1:0', ['--tls-cert', p.cert, '--tls-key', p.key]);
  const port = relay.addr.split(':')[1];
  // The browser trusts the relay's certificate as a deployment's browser trusts its public CA.
  browser = kind === 'chromium'
    ? await launchChromium([`--ignore-certificate-errors-spki-list=${spkiHash(p.cert)}`])
    : await launchFirefox({ userDataDir: firefoxProfileTrusting(p.ca) });
  const page = await openPage(browser, `https://${HOST}:${port}/`);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  await page.click('#new-call');
  await joinIfAsked(page);
  await waitForEvent(page, { state: 'waiting-for-peer' });
  const link = await value(page, '#link');
  assert.match(link, new RegExp(`^https://${HOST}:${port}/#[A-Za-z0-9_-]{43}$`));

  // The terminal side resolves the same name to the same relay: --ca-file with the private CA.
  const out = path.join(p.dir, 'out.wav');
  const native = nativeCall(link.replace(HOST, 'localhost'), ['--tone', '440', '--output', out, '--ca-file', p.ca]);
  const relayEvent = await native.waitFor((e) => e.event === 'relay');
  assert.equal(relayEvent.url, `wss://localhost:${port}/ws`);
  const nativeSas = await native.waitFor((e) => e.event === 'sas');
  assert.equal((await waitForEvent(page, { type: 'sas' })).code, nativeSas.code);
  await native.waitFor((e) => e.event === 'state' && e.state === 'receiving-audio');
  await waitForEvent(page, { state: 'connected' });
  // The terminal sends no video: its tile is a voice tile, not a black box.
  await waitFn(page, () => document.querySelector('.tile.voice .why')?.textContent === 'Voice only');
  await page.screenshot({ path: path.join(ARTIFACTS, `browser-https-native-${kind}.png`) });
  // Two seconds of the browser's audio reach the terminal, then the browser hangs up.
  await native.waitFor((e) => e.event === 'stats' && e.frames_received >= 100);
  await page.click('#hangup');
  const ended = await native.waitFor((e) => e.event === 'ended');
  assert.equal(await native.exited, 0);
  assert.equal(ended.counters.frames_failed, 0, JSON.stringify(ended));
});
