// SDP as this page hands it to its own browser. Pure: runs under node --test.

export const AUDIO_LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';

/** Removes the audio-level header extension from an SDP (it would put loudness in clear). */
export function withoutAudioLevel(sdp) {
  return sdp
    .split('\r\n')
    .filter((l) => !(l.startsWith('a=extmap:') && l.includes(AUDIO_LEVEL)))
    .join('\r\n');
}

/**
 * Drops, in each media section, the `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of payload types
 * its `m=` line does not list. Firefox leaves such lines behind when codec preferences narrow
 * its offer to one codec (e.g. `a=rtcp-fb:121 nack` with only 120 on the m-line), and
 * Chromium refuses the whole description ("Failed to parse codecs correctly"). The lines
 * describe codecs that are not offered, so nothing negotiated changes; the DTLS fingerprint
 * and every other line are kept byte for byte. Any peer's SDP goes through it before
 * setRemoteDescription.
 */
export function withoutStrayCodecLines(sdp) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  let listed = null; // payload types of the current m= line; null before the first one
  const out = [];
  for (const line of sdp.split(eol)) {
    if (line.startsWith('m=')) {
      listed = new Set(line.split(' ').slice(3));
    } else if (listed) {
      const m = /^a=(rtpmap|fmtp|rtcp-fb):(\S+)/.exec(line);
      // `a=rtcp-fb:*` applies to every payload type: kept.
      if (m && m[2] !== '*' && !listed.has(m[2])) continue;
    }
    out.push(line);
  }
  return out.join(eol);
}

/** Whether an SDP carries a data channel: an `m=application` section whose port is not 0 (port
 *  0 rejects it). Every Sotto client offers one (PROTOCOL.md §3.6 "No data channel"); another
 *  implementation may not, and then messages and files cannot reach it. */
export function carriesDataChannel(sdp) {
  return sdp.split(/\r?\n/).some((l) => /^m=application [1-9]/.test(l));
}
