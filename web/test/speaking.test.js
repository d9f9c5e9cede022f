// The speaking ring's rule (speaking.js): on at a clear level at once, off only after a quiet
// spell, and steady in between.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOLD_MS, OFF_LEVEL, ON_LEVEL, SpeakingDetector, rms } from '../speaking.js';

test('rms of a full-scale square wave is 1, of silence 0', () => {
  assert.equal(rms([1, -1, 1, -1]), 1);
  assert.equal(rms(new Float32Array(64)), 0);
  assert.equal(rms([]), 0);
});

test('speaking starts at once and stops only after the level stayed low for the hold time', () => {
  const d = new SpeakingDetector();
  assert.equal(d.level(OFF_LEVEL / 2, 0), false);
  assert.equal(d.level((ON_LEVEL + OFF_LEVEL) / 2, 100), false, 'between the thresholds is not enough to start');
  assert.equal(d.level(ON_LEVEL, 200), true);
  assert.equal(d.level((ON_LEVEL + OFF_LEVEL) / 2, 300), true, 'between the thresholds keeps it on');
  assert.equal(d.level(0, 400), true);
  assert.equal(d.level(0, 400 + HOLD_MS - 1), true);
  // A word in the pause starts the hold again.
  assert.equal(d.level(0.5, 900), true);
  assert.equal(d.level(0, 1000), true);
  assert.equal(d.level(0, 1000 + HOLD_MS), false);
});
