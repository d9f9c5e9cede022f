// The DTLS fingerprint of an SDP: everything after "a=fingerprint:" on the first such line,
// line ending (LF or CRLF) removed, nothing else changed (PROTOCOL.md §3.5).
export function dtlsFingerprint(sdp) {
  for (const line of sdp.split('\n')) {
    if (line.startsWith('a=fingerprint:')) {
      const rest = line.slice('a=fingerprint:'.length);
      return rest.endsWith('\r') ? rest.slice(0, -1) : rest;
    }
  }
  return null;
}
