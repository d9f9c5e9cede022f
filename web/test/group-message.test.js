// What a conference's members say to each other (PROTOCOL.md §7.8): encoded and decoded by
// web/group-message.js, strictly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupMessageMalformed, hello, media, parseGroupMessage, text } from '../group-message.js';

const bytes = (s) => new TextEncoder().encode(s);

test('hello, media and text round trip, names are cleaned, unknown kinds are ignored', () => {
  assert.deepEqual(parseGroupMessage(hello(' Ada\u200b ', { microphone: true, camera: false })), { t: 'hello', name: 'Ada', microphone: true, camera: false });
  assert.deepEqual(parseGroupMessage(hello(null, { microphone: false, camera: true })), { t: 'hello', name: null, microphone: false, camera: true });
  assert.deepEqual(parseGroupMessage(media({ microphone: false, camera: false })), { t: 'media', microphone: false, camera: false });
  assert.deepEqual(parseGroupMessage(text('hello all')), { t: 'text', text: 'hello all' });
  assert.equal(parseGroupMessage(bytes('{"t":"from-the-future","x":1}')), null);
  assert.throws(() => text(''), /1 to 4096 bytes/);
});

test('anything else is malformed', () => {
  for (const bad of [
    'not json',
    '[]',
    'null',
    '{"t":5}',
    '{"t":"hello","name":5,"microphone":true,"camera":true}',
    `{"t":"hello","name":"${'x'.repeat(65)}","microphone":true,"camera":true}`,
    '{"t":"hello","name":"Ada","microphone":"yes","camera":true}',
    '{"t":"media","microphone":true}',
    '{"t":"text","text":""}',
    `{"t":"text","text":"${'x'.repeat(4097)}"}`,
    '{"t":"text","text":"\\ud800"}',
  ]) {
    assert.throws(() => parseGroupMessage(bytes(bad)), GroupMessageMalformed, bad);
  }
  assert.throws(() => parseGroupMessage(Uint8Array.of(0xff, 0xfe)), GroupMessageMalformed);
});
