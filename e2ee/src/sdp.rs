//! The one thing the key schedule reads from an SDP: the DTLS fingerprint (PROTOCOL.md §3.5).

/// The DTLS fingerprint text of an SDP: everything after `a=fingerprint:` on the first such
/// line (session or media level, whichever comes first), with the line ending removed and
/// nothing else changed. `None` when the SDP has no fingerprint: such an SDP cannot set up
/// DTLS-SRTP and the call must not proceed.
pub fn dtls_fingerprint(sdp: &str) -> Option<&str> {
    sdp.split('\n')
        .find_map(|line| line.strip_prefix("a=fingerprint:"))
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_fingerprint_line_as_is() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=group:BUNDLE 0 1\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=fingerprint:sha-256 AB:CD:EF\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                   a=fingerprint:sha-256 11:22:33\r\n";
        assert_eq!(dtls_fingerprint(sdp), Some("sha-256 AB:CD:EF"));
        // LF-only line endings, trailing spaces kept, case kept.
        assert_eq!(
            dtls_fingerprint("v=0\na=fingerprint:SHA-256 ab:cd \n"),
            Some("SHA-256 ab:cd ")
        );
        assert_eq!(
            dtls_fingerprint("a=fingerprint:sha-256 AA"),
            Some("sha-256 AA")
        );
    }

    #[test]
    fn an_sdp_without_a_fingerprint_has_none() {
        assert_eq!(dtls_fingerprint("v=0\r\nm=audio 9 RTP/AVP 0\r\n"), None);
        // Not at the start of a line: not a fingerprint attribute.
        assert_eq!(
            dtls_fingerprint("v=0\r\nx a=fingerprint:sha-256 AA\r\n"),
            None
        );
    }
}
