//! The relay must be unable to hold a key even by accident: it may not depend, directly or
//! through anything, on the crypto core or the WebRTC stack.

use std::process::Command;

/// A crate the relay must never link, by name or name prefix.
const FORBIDDEN: [&str; 7] = [
    "sotto-e2ee",
    "sotto-client",
    "aes-gcm",
    "x25519-dalek",
    "hkdf",
    "rtc",
    "webrtc",
];

/// The forbidden crates in `cargo tree --prefix none --format {p}` output.
fn forbidden_in(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            FORBIDDEN
                .iter()
                .any(|f| name == f || (*f == "webrtc" && name.starts_with("webrtc-")))
        })
        .collect()
}

#[test]
fn the_relay_depends_on_no_crypto_core_or_webrtc_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "tree",
            "--locked",
            "-p",
            "sotto-signaling",
            "-e",
            "normal,build",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.starts_with("sotto-signaling "),
        "unexpected tree:\n{tree}"
    );
    assert!(
        tree.contains("sotto-proto "),
        "the relay's one own dependency is missing"
    );
    let found = forbidden_in(&tree);
    assert!(found.is_empty(), "the relay depends on {found:?}");
}

#[test]
fn the_guard_recognises_every_forbidden_crate() {
    let tree = "sotto-signaling v0.1.0 (/x)\nsotto-e2ee v0.1.0 (/y)\nwebrtc-dtls v0.21.1\n\
                hkdf v0.12.4\nhkdf-extra v1.0.0\naes-gcm v0.10.3\nx25519-dalek v2.0.1\n\
                rtc v0.21.1\nrtcp-like v1.0.0\nsha2 v0.10.9\n";
    assert_eq!(
        forbidden_in(tree),
        vec![
            "sotto-e2ee",
            "webrtc-dtls",
            "hkdf",
            "aes-gcm",
            "x25519-dalek",
            "rtc"
        ]
    );
}
