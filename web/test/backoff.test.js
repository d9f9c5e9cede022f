import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECONNECT_ATTEMPTS, reconnectDelay } from '../backoff.js';

test('a lost relay is tried again after 0.5 s, doubling to 15 s, for about four minutes', () => {
  // The same schedule as client/src/call.rs (its test asserts the same figures).
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 30].map(reconnectDelay), [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  let total = 0;
  for (let a = 1; a <= RECONNECT_ATTEMPTS; a++) total += reconnectDelay(a);
  assert.equal(RECONNECT_ATTEMPTS, 20);
  assert.ok(total > 120000 && total < 300000, `${total} ms`);
});
