//! The conference's test vectors (tests/vectors/sotto-v2.json): the secrets derived from the
//! link, sealed MLS messages, group codes and media frames, computed from fixed inputs for this crate and
//! for any other implementation (the browser's JavaScript runs the same file).
//!
//! `SOTTO_WRITE_VECTORS=1 cargo test -p sotto-e2ee conference_vectors` writes it; every other
//! run recomputes everything from the file's inputs and fails on the first value that differs.
//! MLS itself (RFC 9420) has its own vectors; what is pinned here is Sotto's layer around it.

use crate::BaseKey;
use crate::conference::{ConferenceKeys, GroupCode, MlsKind};
use crate::link::LinkSecret;
use crate::media::{FrameEncryptor, KidLayout, Stream};
use crate::rfc9605_vectors::hex;
use crate::sotto_vectors::{VectorFile, to_hex};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/sotto-v2.json"
);

fn default_inputs() -> Value {
    json!({
        "secret": to_hex(&core::array::from_fn::<u8, 32, _>(|i| i as u8)),
        "sealed": [
            {"kind": "key-package", "epoch": 0, "sender": "adadadadadadadadadadadadadadadad", "nonce": "000102030405060708090a0b", "message": "0001000500010020"},
            {"kind": "commit", "epoch": 7, "sender": "bebebebebebebebebebebebebebebebe", "nonce": "0c0d0e0f1011121314151617", "message": "000100020010a1a2a3a4a5a6a7a8a9aaabacadaeaf"},
            {"kind": "welcome", "epoch": 8, "sender": "bebebebebebebebebebebebebebebebe", "nonce": "18191a1b1c1d1e1f20212223", "message": "0001000301"},
            {"kind": "application", "epoch": 9007199254740991u64, "sender": "00000000000000000000000000000001", "nonce": "ffffffffffffffffffffffff", "message": "ff"}
        ],
        "frames": [
            {"base_key": "000102030405060708090a0b0c0d0e0f", "epoch": 0, "leaf": 0, "stream": "audio", "generation": 0, "ctr": 0, "frame": "78000102030405"},
            {"base_key": "f0e0d0c0b0a090807060504030201000", "epoch": 63, "leaf": 5, "stream": "video", "generation": 0, "ctr": 1, "frame": "1002009d012a8002e001aabbccdd"},
            {"base_key": "f0e0d0c0b0a090807060504030201000", "epoch": 64, "leaf": 255, "stream": "video", "generation": 1, "ctr": 4294967295u64, "frame": "310200ddeeff"},
            {"base_key": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", "epoch": 9007199254740991u64, "leaf": 49, "stream": "screen", "generation": 3, "ctr": 1000, "frame": "3102000102"}
        ],
        "epoch_authenticators": [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "9e3f1b2a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        ]
    })
}

fn kind(name: &str) -> MlsKind {
    match name {
        "key-package" => MlsKind::KeyPackage,
        "commit" => MlsKind::Commit,
        "welcome" => MlsKind::Welcome,
        "application" => MlsKind::Application,
        other => panic!("unknown kind {other}"),
    }
}

fn sender(v: &Value) -> [u8; 16] {
    hex(v.as_str().expect("hex")).try_into().expect("16 bytes")
}

fn build(inputs: &Value) -> Value {
    let secret = LinkSecret::from_bytes(
        hex(inputs["secret"].as_str().expect("hex"))
            .try_into()
            .expect("32 bytes"),
    );
    let keys = ConferenceKeys::new(&secret);
    let sealed: Vec<Value> = inputs["sealed"]
        .as_array()
        .expect("sealed inputs")
        .iter()
        .map(|t| {
            let (k, epoch, from) = (
                kind(t["kind"].as_str().expect("kind")),
                t["epoch"].as_u64().expect("epoch"),
                sender(&t["sender"]),
            );
            let message = hex(t["message"].as_str().expect("hex"));
            let nonce = hex(t["nonce"].as_str().expect("hex")).try_into().expect("12 bytes");
            let out = keys.seal_with_nonce(k, epoch, &from, &message, nonce);
            assert_eq!(keys.open(k, epoch, &from, &out).expect("opens"), message);
            json!({"kind": t["kind"], "epoch": epoch, "sender": t["sender"], "sealed": to_hex(&out)})
        })
        .collect();
    // The first sealed message presented otherwise: each must fail to open.
    let first = &sealed[0];
    let bytes = hex(first["sealed"].as_str().expect("hex"));
    let mut flipped = bytes.clone();
    flipped[12] ^= 0x80;
    let refused: Vec<Value> = [
        (
            "another kind",
            "commit",
            0,
            first["sender"].clone(),
            bytes.clone(),
        ),
        (
            "another epoch",
            "key-package",
            1,
            first["sender"].clone(),
            bytes.clone(),
        ),
        (
            "another sender",
            "key-package",
            0,
            json!("bebebebebebebebebebebebebebebebe"),
            bytes.clone(),
        ),
        (
            "a flipped bit",
            "key-package",
            0,
            first["sender"].clone(),
            flipped,
        ),
        (
            "truncated",
            "key-package",
            0,
            first["sender"].clone(),
            bytes[..bytes.len() - 1].to_vec(),
        ),
        (
            "too short",
            "key-package",
            0,
            first["sender"].clone(),
            bytes[..28].to_vec(),
        ),
    ]
    .into_iter()
    .map(|(why, k, epoch, from, sealed)| {
        assert!(
            keys.open(kind(k), epoch, &sender(&from), &sealed).is_err(),
            "{why}"
        );
        json!({"why": why, "kind": k, "epoch": epoch, "sender": from, "sealed": to_hex(&sealed)})
    })
    .collect();
    let frames: Vec<Value> = inputs["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            let stream = match f["stream"].as_str().expect("a stream") {
                "audio" => Stream::Audio,
                "video" => Stream::Video,
                "screen" => Stream::Screen,
                other => panic!("unknown stream {other}"),
            };
            let base: [u8; 16] = hex(f["base_key"].as_str().expect("hex"))
                .try_into()
                .expect("16 bytes");
            let layout = KidLayout::Conference {
                stream,
                leaf: u32::try_from(f["leaf"].as_u64().expect("a leaf")).expect("small"),
                epoch: f["epoch"].as_u64().expect("an epoch"),
            };
            let generation = f["generation"].as_u64().expect("a generation");
            let mut enc =
                FrameEncryptor::with_layout(BaseKey::from_exporter(&base), layout, generation)
                    .expect("an encryptor");
            enc.set_counter_for_test(f["ctr"].as_u64().expect("a counter"));
            let sealed = enc
                .encrypt(&hex(f["frame"].as_str().expect("hex")))
                .expect("sealed");
            json!({"kid": layout.kid(generation).to_string(), "sealed": to_hex(&sealed)})
        })
        .collect();
    let codes: Vec<Value> = inputs["epoch_authenticators"]
        .as_array()
        .expect("authenticators")
        .iter()
        .map(|a| {
            let code = GroupCode::from_epoch_authenticator(&hex(a.as_str().expect("hex")));
            json!({"epoch_authenticator": a, "digits": code.digits(), "shown": code.to_string()})
        })
        .collect();
    json!({
        "_about": {
            "description": "Sotto conference (protocol v2) test vectors: the secrets a conference derives from the link, sealed MLS messages and group codes (PROTOCOL.md section 7). Byte strings are lowercase hex.",
            "how_to_check": "From `inputs`, compute each value with the formula of PROTOCOL.md section 7; each of `sealed` opens with its kind, epoch and sender to the input message of the same index; each of `sealed_refused` must fail to open as the kind, epoch and sender it lists; each of `frames` is the input frame sealed (PROTOCOL.md sections 4 and 7.6) under its base key with the KID of its stream, leaf, epoch and generation (`kid`, decimal) and the counter `ctr`.",
            "source": "Generated by the sotto-e2ee crate (e2ee/src/conference_vectors.rs) with SOTTO_WRITE_VECTORS=1 cargo test -p sotto-e2ee conference_vectors; every test run recomputes the file from its inputs. The secret is the one of sotto-v1.json."
        },
        "inputs": inputs,
        "keys": {
            "room_id": to_hex(secret.room_id().as_bytes()),
            "psk_id": to_hex(&keys.psk_id()),
            "psk": to_hex(keys.psk()),
            "mls_seal": to_hex(keys.seal_key()),
        },
        "sealed": sealed,
        "sealed_refused": refused,
        "group_codes": codes,
        "frames": frames,
    })
}

const V2: VectorFile = VectorFile {
    path: PATH,
    build,
    inputs: default_inputs,
};

#[test]
fn conference_vectors_match_the_implementation() {
    V2.verify();
}

#[test]
fn the_conference_vector_check_catches_a_changed_value() {
    V2.assert_catches(&[
        ("/keys/psk", json!("00")),
        ("/sealed/1/sealed", json!("00")),
        ("/group_codes/2/digits", json!("0")),
        ("/frames/2/sealed", json!("00")),
    ]);
}
