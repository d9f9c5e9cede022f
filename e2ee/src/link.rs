//! Call links (PROTOCOL.md §1): `https://HOST[:PORT]/#S`, the room they lead to, and the relay
//! URL they imply.

use crate::Error;
use crate::kdf;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// The 32-byte secret of a call, carried in the link's fragment. Zeroized on drop; no Debug.
#[derive(Clone)]
pub struct LinkSecret(pub(crate) Zeroizing<[u8; 32]>);

impl LinkSecret {
    /// A fresh secret from the operating system's random generator.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| Error::RandomnessUnavailable)?;
        Ok(Self(bytes))
    }

    /// The secret with these bytes (tests and vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Parses the fragment of a link: canonical base64url of exactly 32 bytes.
    pub fn parse(fragment: &str) -> Result<Self, Error> {
        if fragment.len() != 43 {
            return Err(Error::LinkMalformed(
                "the secret after # must be 43 base64url characters (32 bytes)",
            ));
        }
        let decoded =
            Zeroizing::new(URL_SAFE_NO_PAD.decode(fragment).map_err(|_| {
                Error::LinkMalformed("the secret after # is not canonical base64url")
            })?);
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| Error::LinkMalformed("the secret after # is not 32 bytes"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The secret as it appears in a link (base64url, 43 characters).
    pub fn to_base64url(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0.as_ref()))
    }

    /// The room this secret leads to: `HKDF-SHA256(salt = empty, ikm = S, info = "sotto v1
    /// room id", L = 16)`. One-way: the relay learns the room, not the secret.
    pub fn room_id(&self) -> RoomId {
        let mut raw = [0u8; 16];
        kdf::hkdf_sha256(&[], self.0.as_ref(), &[b"sotto v1 room id"], &mut raw);
        RoomId(raw)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A room id: 16 bytes derived from the link's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId(pub(crate) [u8; 16]);

impl RoomId {
    /// The 16 raw bytes (they enter the transcript and every seal's AAD).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id as the relay protocol writes it: base64url, 22 characters.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// The fewest people a group link may name (a call of 2 is a one-to-one link).
pub const MIN_GROUP: u8 = 3;
/// The most people a group link may name (7 and more: a conference, PROTOCOL.md §7).
pub const MAX_GROUP: u8 = 50;

/// A parsed call link.
#[derive(Clone)]
pub struct Link {
    /// `https://HOST[:PORT]/[PATH/]` (or `http://`): the relay's base, always ending in `/`.
    base: String,
    secret: LinkSecret,
    /// `#S.N`: a group call for up to N people; `None` for a one-to-one link (`#S`).
    group: Option<u8>,
}

/// The `N` of `#S.N`: decimal without sign or leading zero, 3 to 50.
fn parse_group(n: &str) -> Result<u8, Error> {
    let bad = Error::LinkMalformed("the group size after the secret must be a number from 3 to 50");
    if n.is_empty() || n.len() > 2 || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match n.parse::<u8>() {
        Ok(n) if (MIN_GROUP..=MAX_GROUP).contains(&n) => Ok(n),
        _ => Err(bad),
    }
}

/// Shows the relay's base only: the secret is the call.
impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({}#<secret>)", self.base)
    }
}

impl Link {
    /// A new link on the relay at `relay` (`https://host[:port][/path]`). A path is kept as the
    /// directory the relay is served under (`/sub` and `/sub/` both give `/sub/`); a query is
    /// dropped.
    pub fn new(relay: &str, secret: LinkSecret) -> Result<Self, Error> {
        Ok(Self {
            base: relay_base(relay)?,
            secret,
            group: None,
        })
    }

    /// The same call as a group call for up to `n` people (3 to 50), or one-to-one (`None`).
    pub fn with_group(mut self, n: Option<u8>) -> Result<Self, Error> {
        self.group = match n {
            None => None,
            Some(n) => Some(parse_group(&n.to_string())?),
        };
        Ok(self)
    }

    /// Parses `https://HOST[:PORT][/PATH]#S` or, for a group call, `...#S.N` (or `http://`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (before, fragment) = text
            .split_once('#')
            .ok_or(Error::LinkMalformed("no #secret at the end of the link"))?;
        let (secret, group) = match fragment.split_once('.') {
            Some((secret, n)) => (secret, Some(parse_group(n)?)),
            None => (fragment, None),
        };
        let secret = LinkSecret::parse(secret)?;
        Ok(Self {
            group,
            ..Self::new(before, secret)?
        })
    }

    /// The link as text: `BASE#S`, or `BASE#S.N` for a group. Contains the secret: share it,
    /// never log it.
    pub fn to_text(&self) -> Zeroizing<String> {
        let group = self.group.map(|n| format!(".{n}")).unwrap_or_default();
        Zeroizing::new(format!(
            "{}#{}{group}",
            self.base,
            self.secret.to_base64url().as_str()
        ))
    }

    /// `Some(N)` for a group call of up to N people; `None` for a one-to-one call.
    pub fn group(&self) -> Option<u8> {
        self.group
    }

    /// `https://HOST[:PORT]/[PATH/]` (or `http://`): where the relay serves its page.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The relay's WebSocket URL: `wss://HOST[:PORT]/[PATH/]ws` (`ws://` for `http://` links).
    pub fn relay_url(&self) -> String {
        match self.base.strip_prefix("http://") {
            Some(rest) => format!("ws://{rest}ws"),
            // `base` was built by `relay_base`: it starts with one of the two schemes.
            None => format!("wss://{}ws", self.base.trim_start_matches("https://")),
        }
    }

    /// The relay's host and port, as written in the link.
    pub fn authority(&self) -> &str {
        let rest = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }

    /// The call's secret.
    pub fn secret(&self) -> &LinkSecret {
        &self.secret
    }
}

/// The relay's base `scheme://authority/path/` of an `http(s)://authority[/path][?query]` URL,
/// checked: the path keeps only characters a URL path may hold, has no `.` or `..` segment, and
/// ends in `/`.
fn relay_base(url: &str) -> Result<String, Error> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(Error::LinkMalformed(
            "the link must start with https:// or http://",
        ));
    };
    let rest = rest.split('?').next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(Error::LinkMalformed("the link has no host"));
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if !authority.chars().all(host_char) {
        return Err(Error::LinkMalformed(
            "the link's host has characters a host cannot have",
        ));
    }
    // RFC 3986 pchar and "/": unreserved, percent-encoded, sub-delims, ":" and "@".
    let path_char = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:@/".contains(c);
    if !path.chars().all(path_char) {
        return Err(Error::LinkMalformed(
            "the link's path has characters a URL path cannot have",
        ));
    }
    // Browsers read "%2e" as "." in a path: such segments are dot segments too.
    let dot_segment = |s: &str| {
        let s = s.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    if path.split('/').any(dot_segment) {
        return Err(Error::LinkMalformed(
            "the link's path has a . or .. segment",
        ));
    }
    let slash = if path.ends_with('/') { "" } else { "/" };
    Ok(format!("{scheme}://{authority}{path}{slash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn parses_a_link_and_derives_its_relay_url() {
        let link = Link::parse(&format!("https://call.example.org/#{S}")).unwrap();
        assert_eq!(link.base(), "https://call.example.org/");
        assert_eq!(link.authority(), "call.example.org");
        assert_eq!(link.relay_url(), "wss://call.example.org/ws");
        assert_eq!(
            link.to_text().as_str(),
            format!("https://call.example.org/#{S}")
        );
        assert_eq!(link.secret().bytes()[31], 31);
    }

    #[test]
    fn a_relay_under_a_path_keeps_it() {
        // The path is the directory the relay is served under; a query is dropped; ports and
        // plain http are kept.
        for (text, base, ws) in [
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/",
                "ws://127.0.0.1:8080/ws",
            ),
            ("https://h/sub/", "https://h/sub/", "wss://h/sub/ws"),
            ("https://h/sub", "https://h/sub/", "wss://h/sub/ws"),
            (
                "https://h:8443/a/b/?x=1",
                "https://h:8443/a/b/",
                "wss://h:8443/a/b/ws",
            ),
        ] {
            let link = Link::parse(&format!("{text}#{S}")).unwrap();
            assert_eq!(
                (link.base(), link.relay_url().as_str()),
                (base, ws),
                "{text}"
            );
            assert_eq!(link.to_text().as_str(), format!("{base}#{S}"));
            let made = Link::new(text, link.secret().clone()).unwrap();
            assert_eq!(made.base(), base);
        }
    }

    #[test]
    fn rejects_malformed_links_with_a_reason() {
        let long = format!("{S}A");
        let cases = [
            format!("ftp://h/#{S}"),
            format!("https:///#{S}"),
            "https://h/".to_owned(),
            "https://h/#".to_owned(),
            format!("https://h/#{}", &S[..42]),
            format!("https://h/#{long}"),
            // Non-zero trailing bits: not the canonical encoding of any 32 bytes.
            format!("https://h/#{}B", &S[..42]),
            format!("https://h/#{}=", &S[..42]),
            format!("https://h/#{}", S.replace('A', "+")),
            format!("https://us@er@h/#{S}"),
            format!("https://h/a b/#{S}"),
            format!("https://h/../#{S}"),
            format!("https://h/a/./#{S}"),
            format!("https://h/a/%2E%2e/#{S}"),
            format!("https://h/.%2e/#{S}"),
            format!("127.0.0.1:8080/#{S}"),
        ];
        for case in cases {
            assert!(
                matches!(Link::parse(&case), Err(Error::LinkMalformed(_))),
                "{case} should be rejected"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let link = Link::parse(&format!("https://h/#{S}")).unwrap();
        assert!(!format!("{link:?}").contains(S));
    }

    #[test]
    fn generated_secrets_differ_and_round_trip() {
        let a = LinkSecret::generate().unwrap();
        let b = LinkSecret::generate().unwrap();
        assert_ne!(a.bytes(), b.bytes());
        let again = LinkSecret::parse(&a.to_base64url()).unwrap();
        assert_eq!(again.bytes(), a.bytes());
        assert_eq!(a.room_id().to_base64url().len(), 22);
    }
}
