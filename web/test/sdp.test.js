import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtlsFingerprint } from '../crypto/sdp.js';
import { carriesDataChannel, withoutAudioLevel, withoutStrayCodecLines } from '../sdp.js';

// The video section of an offer Firefox ESR 153 made with codec preferences pinned to VP8
// (captured in this project's cross-browser test); Chromium 156 refused it whole with "Failed
// to parse codecs correctly".
const FIREFOX_OFFER = [
  'v=0',
  'o=mozilla...THIS_IS_SDPARTA-99.0 3913366418398752064 0 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=fingerprint:sha-256 9C:30:B5:49:F7:F0:9C:49:BC:14:62:5C:D6:8E:85:55:0F:D4:8C:27:51:A2:AD:AB:6A:B7:41:A7:4F:45:31:92',
  'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 120',
  'c=IN IP4 0.0.0.0',
  'a=fmtp:120 max-fs=12288;max-fr=60',
  'a=mid:0',
  'a=rtcp-fb:120 nack',
  'a=rtcp-fb:120 nack pli',
  'a=rtcp-fb:121 nack',
  'a=rtcp-fb:121 transport-cc',
  'a=rtcp-fb:99 nack pli',
  'a=rtcp-fb:* ccm fir',
  'a=rtcp-mux',
  'a=rtpmap:120 VP8/90000',
  'a=fmtp:126 profile-level-id=42e01f',
  'a=rtpmap:126 H264/90000',
  '',
].join('\r\n');

test('codec lines of payload types the m-line does not offer are dropped, nothing else', () => {
  const clean = withoutStrayCodecLines(FIREFOX_OFFER);
  const lines = clean.split('\r\n');
  for (const pt of ['121', '99', '126']) assert.ok(!lines.some((l) => l.includes(`:${pt} `)), pt);
  const kept = FIREFOX_OFFER.split('\r\n').filter((l) => !/^a=(rtcp-fb|fmtp|rtpmap):(121|99|126) /.test(l));
  assert.deepEqual(lines, kept);
  assert.ok(lines.includes('a=rtcp-fb:* ccm fir'));
  assert.equal(dtlsFingerprint(clean), dtlsFingerprint(FIREFOX_OFFER));
  // Already clean SDP (Chromium's, the native client's) passes unchanged, LF or CRLF.
  assert.equal(withoutStrayCodecLines(clean), clean);
  const lf = clean.replaceAll('\r\n', '\n');
  assert.equal(withoutStrayCodecLines(lf), lf);
});

test('a session-level line before the first m= line is never touched', () => {
  const sdp = 'v=0\r\na=rtpmap:5 x/1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 opus/48000/2\r\n';
  assert.equal(withoutStrayCodecLines(sdp), sdp);
});

test('the audio-level extension is removed, other extensions kept', () => {
  const sdp = 'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n';
  assert.equal(withoutAudioLevel(sdp), 'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n');
});

test('an SDP without an application section, or with it rejected, carries no data channel', () => {
  const audio = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
  assert.equal(carriesDataChannel(audio), false);
  assert.equal(carriesDataChannel(`${audio}m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n`), false);
  assert.equal(carriesDataChannel(`${audio}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n`), true);
});
