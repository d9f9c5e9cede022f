// A browser and the native `sotto` client in one call: each hears the other, both show the same
// safety code and verify each other's device identity, every frame authenticates on both sides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, KINDS, nativeCall, newSecret, readWav, relayAndBrowsers, rms, waitFn, waitForEvent } from './harness.js';

const env = relayAndBrowsers();

for (const kind of KINDS) for (const nativeFirst of [false, true]) test(`${nativeFirst ? `the native client opens the link, ${kind} joins` : `${kind} opens the link, the native client joins`}: they hear each other with the same safety code`, async () => {
  const link = `http://${env.relay.addr}/#${newSecret()}`;
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'sotto-')), 'out.wav');
  const startNative = () => nativeCall(link, ['--tone', '440', '--output', out]);
  // The first one waits and makes the offer; the other answers.
  let native;
  if (nativeFirst) {
    native = startNative();
    await native.waitFor((e) => e.event === 'state' && e.state === 'waiting-for-peer');
  }
  const page = await env.open(kind, link);
  if (!nativeFirst) {
    await waitForEvent(page, { state: 'waiting-for-peer' });
    native = startNative();
  }

  const nativeSas = await native.waitFor((e) => e.event === 'sas');
  const pageSas = await waitForEvent(page, { type: 'sas' });
  assert.equal(pageSas.code, nativeSas.code);
  // Each verified the other's device identity over their shared transcript (PROTOCOL.md §3.8:
  // a signature either side made differently would end the set-up as tampered with); neither
  // device is known to the other yet.
  await waitForEvent(page, { type: 'identity', status: 'unknown' });
  assert.deepEqual(await native.waitFor((e) => e.event === 'identity'), { event: 'identity', status: 'unknown' });
  await waitForEvent(page, { state: 'connected' });
  // Neither the browser's SDP nor the native client's carries the audio level in clear.
  const sdps = await page.evaluate(() => [window.__test.pc().localDescription.sdp, window.__test.pc().remoteDescription.sdp]);
  for (const sdp of sdps) assert.ok(!sdp.includes('ssrc-audio-level'), `audio-level negotiated: ${sdp}`);
  assert.match(sdps[1], /a=rtpmap:\d+ opus\/48000/);

  // The browser's inbound audio carries the native tone: the analyser's peak is at 440 Hz.
  const peakHz = await page.evaluate(async () => {
    const ctx = new AudioContext();
    await ctx.resume();
    const stream = document.getElementById('remote-video').srcObject;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the analyser fills in real time
      analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let b = 1; b < bins.length; b++) if (bins[b] > bins[best]) best = b;
      const hz = (best * ctx.sampleRate) / analyser.fftSize;
      if (bins[best] > -60 && Math.abs(hz - 440) < 15) return hz;
    }
    return null;
  });
  assert.ok(peakHz, 'no 440 Hz peak in the browser\'s inbound audio');
  // A second of samples arrives (and keeps energy: the tone, not silence).
  await waitFn(page, async () => {
    const stats = await window.__test.pc().getStats();
    const a = [...stats.values()].find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
    // Firefox reports no audio energy: there, mostly real (not concealed) samples it is.
    const heard = a?.totalAudioEnergy === undefined ? a?.concealedSamples < a?.totalSamplesReceived / 2 : a.totalAudioEnergy > 0.05;
    return a && a.totalSamplesReceived > 48000 && heard;
  }, null, { timeout: 15000, polling: 250 });

  // Read while the call runs: when it ends, the call's worker is terminated.
  await waitFn(page, async () => (await window.__test.workerStats())['receive:audio']?.ok > 100, null, { timeout: 15000, polling: 250 });
  const w = await page.evaluate(() => window.__test.workerStats());
  assert.equal(w['receive:audio'].failed, 0, JSON.stringify(w));

  // Four seconds of the browser's audio reach the native side (Firefox's fake microphone
  // sometimes starts seconds after the call connects), then the browser hangs up.
  await native.waitFor((e) => e.event === 'stats' && e.frames_received >= 200);
  await page.click('#hangup');
  const ended = await native.waitFor((e) => e.event === 'ended');
  assert.equal(await native.exited, 0);
  assert.equal(ended.counters.frames_failed, 0, JSON.stringify(ended));
  assert.ok(ended.counters.frames_received >= 200, JSON.stringify(ended));
  // The native output holds the browser's audio (the browsers' fake microphones: a beep, a tone).
  const wav = readWav(out);
  assert.ok(wav.length / 48000 > 2.5, `only ${wav.length / 48000 + 1} s written`);
  assert.ok(rms(wav) > 0.01, `the native output is silent (rms ${rms(wav)})`);
  await page.screenshot({ path: path.join(ARTIFACTS, `browser-${kind}-native-interop${nativeFirst ? '-answering' : ''}.png`), fullPage: true });
});
