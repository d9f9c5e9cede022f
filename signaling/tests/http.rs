//! The relay's HTTP side: the embedded web client, security headers, health, metrics, TLS.

mod common;

use common::*;
use sotto_signaling::Config;
use std::sync::Arc;

const CSP_MUST_HAVE: [&str; 6] = [
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
];

fn assert_strict_headers(res: &HttpResponse) {
    let csp = res.header("content-security-policy").expect("a CSP header");
    for rule in CSP_MUST_HAVE {
        assert!(csp.contains(rule), "CSP lacks {rule:?}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(
        !csp.contains("http:") && !csp.contains("https:") && !csp.contains('*'),
        "{csp}"
    );
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_no_referrer() {
    let relay = Relay::start(Config::default()).await;
    let res = http_get(relay.addr, "/").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(res.body.contains("<title>Sotto</title>"));
    assert_strict_headers(&res);
    // No inline script but the import map (allowed by its hash): every other <script> has a
    // relative src, on this origin (under whatever path the page is served).
    for tag in res.body.split("<script").skip(1) {
        let tag = &tag[..tag.find('>').unwrap()];
        let relative = tag
            .split("src=\"")
            .nth(1)
            .is_some_and(|src| !src.starts_with('/') && !src.contains(':'));
        assert!(
            relative || tag.contains("type=\"importmap\""),
            "inline or foreign script: <script{tag}>"
        );
    }
    // The served page is the repository's web/index.html with its two placeholders filled.
    let index =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/index.html")).unwrap();
    let map_start = res.body.find("<script type=\"importmap\">").unwrap();
    let map_end = map_start + res.body[map_start..].find("</script>").unwrap() + 9;
    let app_sri = res
        .body
        .split("integrity=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let filled = index
        .replace("<!-- sotto:importmap -->", &res.body[map_start..map_end])
        .replace("{{sri:/app.js}}", app_sri);
    assert_eq!(res.body, filled);
}

#[tokio::test]
async fn every_web_file_is_served_with_its_type_and_revalidates_by_etag() {
    let relay = Relay::start(Config::default()).await;
    for (path, ty) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/crypto/sframe.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let res = http_get(relay.addr, path).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(ty), "{path}");
        assert_eq!(res.header("cache-control"), Some("no-cache"), "{path}");
        assert_strict_headers(&res);
        let etag = res.header("etag").expect("an etag").to_owned();
        let again = http_request(relay.addr, "GET", path, &[("If-None-Match", &etag)]).await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
    }
}

#[tokio::test]
async fn the_page_has_an_icon_and_a_web_app_manifest_of_its_own_origin() {
    let relay = Relay::start(Config::default()).await;
    let page = http_get(relay.addr, "/").await;
    assert!(
        page.body
            .contains(r#"<link rel="icon" href="favicon.svg" type="image/svg+xml">"#)
    );
    assert!(
        page.body
            .contains(r#"<link rel="manifest" href="manifest.webmanifest">"#)
    );
    let icon = http_get(relay.addr, "/favicon.svg").await;
    assert_eq!(icon.status, 200);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert!(icon.body.starts_with("<svg"));
    let manifest = http_get(relay.addr, "/manifest.webmanifest").await;
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("content-type"),
        Some("application/manifest+json")
    );
    let m: serde_json::Value = serde_json::from_str(&manifest.body).expect("the manifest is JSON");
    assert_eq!(m["name"], "Sotto");
    // Relative to where the page is served: the relay may live under a path.
    assert_eq!(m["start_url"], "./");
    assert_eq!(m["icons"][0]["src"], "favicon.svg");
}

/// A relay built for use serves the key-source module with its media transform on; only the
/// `bench-no-e2ee` benchmark build turns it off (and that build is never tested as the relay).
#[cfg(not(feature = "bench-no-e2ee"))]
#[tokio::test]
async fn the_served_key_source_module_encrypts_media() {
    let relay = Relay::start(Config::default()).await;
    let res = http_get(relay.addr, "/frame-keys.js").await;
    assert_eq!(res.status, 200);
    assert!(res.body.contains("const MEDIA_TRANSFORM = true;"));
    assert!(!res.body.contains("MEDIA_TRANSFORM = false"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let relay = Relay::start(Config::default()).await;
    let res = http_get(relay.addr, "/../../etc/passwd").await;
    assert_eq!(res.status, 404);
    assert_strict_headers(&res);
    assert_eq!(http_get(relay.addr, "/nope.js").await.status, 404);
    let post = http_request(relay.addr, "POST", "/", &[("Content-Length", "0")]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn healthz_answers_ok_and_metrics_speak_prometheus() {
    let relay = Relay::start(Config::default()).await;
    let health = http_get(relay.addr, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let m = http_get(relay.addr, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(m.body.contains("# TYPE sotto_connections gauge\n"));
    assert_eq!(metric(&m.body, "sotto_connections"), 0);
}

#[tokio::test]
async fn relay_json_tells_the_page_the_largest_group_and_whether_turn_is_offered() {
    let relay = Relay::start(Config::default()).await;
    let res = http_get(relay.addr, "/relay.json").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.body, r#"{"max_peers":50,"turn":false}"#);
    // Without an SFU, no conference: at most a mesh of 6.
    let relay = Relay::start(Config {
        no_sfu: true,
        ..Config::default()
    })
    .await;
    let res = http_get(relay.addr, "/relay.json").await;
    assert_eq!(res.body, r#"{"max_peers":6,"turn":false}"#);
    let relay = Relay::start(Config {
        max_peers: 4,
        turn_urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
        turn_secret: Some(sotto_signaling::TurnSecret::from("s3cret".to_owned())),
        ..Config::default()
    })
    .await;
    let res = http_get(relay.addr, "/relay.json").await;
    assert_eq!(res.body, r#"{"max_peers":4,"turn":true}"#);
}

#[tokio::test]
async fn welcome_lists_the_configured_stun_and_turn_servers() {
    let relay = Relay::start(Config {
        stun: vec!["stun:stun.example.org:3478".into()],
        turn_urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
        turn_secret: Some(sotto_signaling::TurnSecret::from("s3cret".to_owned())),
        turn_ttl: std::time::Duration::from_secs(600),
        ..Config::default()
    })
    .await;
    let mut a = Client::connect(&relay).await;
    a.send(&sotto_proto::ClientMessage::Join {
        room: room(1),
        max: None,
    })
    .await;
    let sotto_proto::ServerMessage::Welcome { ice, .. } = a.recv().await else {
        panic!("expected welcome");
    };
    assert_eq!(ice.len(), 2);
    assert_eq!(ice[0].urls, vec!["stun:stun.example.org:3478"]);
    assert!(ice[0].username.is_none());
    let expiry: u64 = ice[1].username.as_deref().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "expiry {expiry}, now {now}"
    );
    assert!(!ice[1].credential.as_deref().unwrap().is_empty());
}

#[tokio::test]
async fn tls_serves_the_page_and_the_websocket() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("sotto-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let relay = Relay::start(Config {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Config::default()
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();

    // HTTPS GET /.
    let tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await; // ends with a close_notify or EOF
        let res = parse_http(&raw);
        assert_eq!(res.status, 200);
        assert_strict_headers(&res);
    }

    // WSS /ws: join and get a welcome.
    let tcp = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls)
        .await
        .unwrap();
    use futures_util::{SinkExt, StreamExt};
    let join = sotto_proto::ClientMessage::Join {
        room: room(1),
        max: None,
    }
    .encode();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(join.into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = reply.into_text().unwrap();
    assert!(matches!(
        sotto_proto::ServerMessage::decode(text.as_str()),
        Ok(Some(sotto_proto::ServerMessage::Welcome { .. }))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn every_script_is_pinned_by_subresource_integrity_and_the_csp_allows_only_the_import_map() {
    use base64::Engine;
    use sha2::Digest;
    let relay = Relay::start(Config::default()).await;
    let page = http_get(relay.addr, "/").await;
    let open_tag = "<script type=\"importmap\">";
    let map_start = page.body.find(open_tag).unwrap() + open_tag.len();
    let map_text =
        &page.body[map_start..map_start + page.body[map_start..].find("</script>").unwrap()];
    let map: serde_json::Value = serde_json::from_str(map_text).unwrap();
    let integrity = map["integrity"].as_object().unwrap();
    let b64 = |bytes: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
    };
    for script in [
        "/app.js",
        "/call.js",
        "/frame-keys.js",
        "/transport.js",
        "/crypto/sframe.js",
        "/crypto/handshake.js",
        "/worker.js",
    ] {
        let served = http_get(relay.addr, script).await;
        let want = format!("sha256-{}", b64(served.body.as_bytes()));
        // Relative keys: the page may be served under a path.
        let key = format!(".{script}");
        assert_eq!(integrity[&key].as_str(), Some(want.as_str()), "{script}");
    }
    // The entry script's own attribute, and the CSP's hash of the import map.
    assert!(page.body.contains(&format!(
        "src=\"app.js\" integrity=\"{}\"",
        integrity["./app.js"].as_str().unwrap()
    )));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!(
            "script-src 'self' 'sha256-{}'",
            b64(map_text.as_bytes())
        )),
        "{csp}"
    );
}
