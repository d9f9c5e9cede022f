//! Call links (PROTOCOL.md §1): `https://HOST[:PORT]/#S`, the room they lead to, and the relay
//! URL they imply.

use crate::Error;
use crate::kdf;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// The 32-byte secret of a call, carried in the link's fragment. Zeroized on drop; no Debug.
#[derive(Clone)]
pub struct LinkSecret(Zeroizing<[u8; 32]>);

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

/// A parsed call link.
#[derive(Clone)]
pub struct Link {
    /// `https://HOST[:PORT]` or `http://HOST[:PORT]`, without path.
    origin: String,
    secret: LinkSecret,
}

/// Shows the origin only: the secret is the call.
impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({}/#<secret>)", self.origin)
    }
}

impl Link {
    /// A new link on the relay at `origin` (`https://host[:port]`, any path is dropped).
    pub fn new(origin: &str, secret: LinkSecret) -> Result<Self, Error> {
        let (scheme, authority) = split_origin(origin)?;
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            secret,
        })
    }

    /// Parses `https://HOST[:PORT][/path]#S` (or `http://`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (before, fragment) = text
            .split_once('#')
            .ok_or(Error::LinkMalformed("no #secret at the end of the link"))?;
        let secret = LinkSecret::parse(fragment)?;
        Self::new(before, secret)
    }

    /// The link as text: `ORIGIN/#S`. Contains the secret: share it, never log it.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}/#{}",
            self.origin,
            self.secret.to_base64url().as_str()
        ))
    }

    /// `https://HOST[:PORT]` (or `http://`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The relay's WebSocket URL: `wss://HOST[:PORT]/ws` (`ws://` for `http://` links).
    pub fn relay_url(&self) -> String {
        // `origin` was built by `new` from a checked scheme.
        let (scheme, authority) = split_origin(&self.origin).unwrap_or(("https", ""));
        let ws = if scheme == "http" { "ws" } else { "wss" };
        format!("{ws}://{authority}/ws")
    }

    /// The call's secret.
    pub fn secret(&self) -> &LinkSecret {
        &self.secret
    }
}

/// `(scheme, authority)` of an `http(s)://authority[/path]` URL, checked.
fn split_origin(url: &str) -> Result<(&'static str, &str), Error> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(Error::LinkMalformed(
            "the link must start with https:// or http://",
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::LinkMalformed("the link has no host"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if !authority.chars().all(allowed) {
        return Err(Error::LinkMalformed(
            "the link's host has characters a host cannot have",
        ));
    }
    Ok((scheme, authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn parses_a_link_and_derives_its_relay_url() {
        let link = Link::parse(&format!("https://call.example.org/#{S}")).unwrap();
        assert_eq!(link.origin(), "https://call.example.org");
        assert_eq!(link.relay_url(), "wss://call.example.org/ws");
        assert_eq!(
            link.to_text().as_str(),
            format!("https://call.example.org/#{S}")
        );
        // Any path is dropped; ports and plain http are kept.
        let link = Link::parse(&format!("http://127.0.0.1:8080/some/path?x=1#{S}")).unwrap();
        assert_eq!(link.relay_url(), "ws://127.0.0.1:8080/ws");
        assert_eq!(link.secret().bytes()[31], 31);
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
