//! Short-lived TURN credentials in coturn's `use-auth-secret` scheme (also called the TURN REST
//! API): the user name is the expiry time in Unix seconds, the password is
//! `base64(HMAC-SHA1(secret, username))`. coturn recomputes the HMAC with its
//! `static-auth-secret` and refuses names whose time has passed, so nothing is stored anywhere.

use crate::config::TurnSecret;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sotto_proto::IceServer;
use std::time::Duration;

/// The user name and password valid until `now_unix + ttl`.
pub(crate) fn credentials(secret: &TurnSecret, now_unix: u64, ttl: Duration) -> (String, String) {
    let username = now_unix.saturating_add(ttl.as_secs()).to_string();
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

/// The ICE servers one connection is offered: each STUN URL, then the TURN URLs with fresh
/// credentials when TURN is configured.
pub(crate) fn ice_servers(
    stun: &[String],
    turn_urls: &[String],
    secret: Option<&TurnSecret>,
    now_unix: u64,
    ttl: Duration,
) -> Vec<IceServer> {
    let mut out: Vec<IceServer> = stun
        .iter()
        .map(|url| IceServer {
            urls: vec![url.clone()],
            username: None,
            credential: None,
        })
        .collect();
    if let (Some(secret), false) = (secret, turn_urls.is_empty()) {
        let (username, password) = credentials(secret, now_unix, ttl);
        out.push(IceServer {
            urls: turn_urls.to_vec(),
            username: Some(username),
            credential: Some(password),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_coturns_hmac_scheme() {
        // Expected value computed independently with Python's standard library:
        //   base64.b64encode(hmac.new(b"north", b"1700086400", hashlib.sha1).digest())
        let (user, pass) = credentials(
            &TurnSecret::from("north".to_owned()),
            1_700_000_000,
            Duration::from_secs(86_400),
        );
        assert_eq!(user, "1700086400");
        assert_eq!(pass, "K+RlgFj3QLvB7WAVHfjfgMgyBeA=");
    }

    #[test]
    fn ice_servers_list_stun_then_turn_with_credentials() {
        let secret = TurnSecret::from("s".to_owned());
        let ice = ice_servers(
            &["stun:a".into()],
            &["turn:b".into(), "turn:c?transport=udp".into()],
            Some(&secret),
            10,
            Duration::from_secs(5),
        );
        assert_eq!(ice.len(), 2);
        assert_eq!(ice[0].urls, vec!["stun:a"]);
        assert_eq!(ice[0].credential, None);
        assert_eq!(ice[1].urls.len(), 2);
        assert_eq!(ice[1].username.as_deref(), Some("15"));
        assert!(ice_servers(&[], &[], None, 0, Duration::ZERO).is_empty());
    }
}
