//! HTTP: the embedded web client, `/healthz`, `/relay.json`, `/metrics`, and the security
//! headers every response carries.

use crate::shared::Shared;
use crate::ws;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// One embedded file of web/.
#[derive(Debug)]
pub(crate) struct StaticFile {
    /// URL path, starting with `/`.
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Quoted, for the ETag header.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// Headers added to every response, HTML or not.
const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CSP),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()",
    ),
];

/// The relay's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/relay.json", get(relay_json))
        .route("/metrics", get(metrics))
        .fallback(static_file)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(shared)
}

async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if shared.rooms.cluster().is_some_and(|c| !c.is_up()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "redis unreachable: taking no joins\n",
        )
            .into_response()
    } else {
        (no_store(), "ok\n").into_response()
    }
}

/// What the page asks before a call: the largest group a link may ask for (so "New group call"
/// offers no size the relay refuses) and whether a TURN server is handed out (so "Hide my IP
/// address" is offered only where it can work). Nothing about rooms or people.
async fn relay_json(State(shared): State<Arc<Shared>>) -> Response {
    // Two plain values: written out, no JSON library needed.
    let body = format!(
        r#"{{"max_peers":{},"turn":{}}}"#,
        shared.config.max_group(),
        !shared.config.turn_urls.is_empty()
    );
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let rooms = shared.room_count();
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        shared.metrics.render(rooms)
            + &shared
                .rooms
                .cluster()
                .map(|c| c.render())
                .unwrap_or_default()
            + &shared.sfu.as_ref().map(|s| s.render()).unwrap_or_default(),
    )
        .into_response()
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

fn find(path: &str) -> Option<&'static StaticFile> {
    let path = if path == "/" { "/index.html" } else { path };
    FILES.iter().find(|f| f.path == path)
}

async fn static_file(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(file) = find(uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let cache = [
        (header::ETAG, file.etag),
        // Revalidate every time: a changed relay must never serve stale client code.
        (header::CACHE_CONTROL, "no-cache"),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == file.etag.as_bytes());
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(header::CONTENT_TYPE, file.content_type)],
        file.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_client_is_embedded() {
        let index = find("/").expect("index.html embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(FILES.iter().all(|f| f.path.starts_with('/')));
        assert!(find("/../Cargo.toml").is_none());
    }
}
