//! Sotto v1's own test vectors (tests/vectors/sotto-v1.json): every value of the protocol
//! computed from fixed inputs, for this crate and for any other implementation (the browser's
//! JavaScript runs the same file).
//!
//! The file is made by this module: `SOTTO_WRITE_VECTORS=1 cargo test -p sotto-e2ee
//! sotto_vectors` writes it; every other run recomputes everything from the file's inputs and
//! fails on the first value that differs.

use crate::handshake::{Handshake, Received, Role};
use crate::kdf;
use crate::link::{Link, LinkSecret};
use crate::media::{FrameEncryptor, Stream, kid};
use crate::rfc9605_vectors::hex;
use crate::{BaseKey, DataMessage, DeviceKey, EphemeralKey, Error, StopReason};
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use sotto_proto::{PeerSignal, ServerMessage, clean_name, safe_file_name};
use x25519_dalek::{PublicKey, StaticSecret};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/sotto-v1.json"
);

pub(crate) fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The fixed inputs. The X25519 private keys are RFC 7748 §6.1's Alice (O) and Bob (A), so an
/// implementation can check its X25519 against that RFC too.
fn default_inputs() -> Value {
    let mut inputs = json!({
        "secret": to_hex(&core::array::from_fn::<u8, 32, _>(|i| i as u8)),
        "origin": "https://call.example.org",
        "relays": [
            "http://127.0.0.1:8080",
            "https://call.example.org:8443/sotto",
            "https://call.example.org/sub/dir/?lang=en"
        ],
        "offerer_private": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "answerer_private": "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        "device_seed_offerer": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "device_seed_answerer": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "fingerprint_offerer": "sha-256 5A:1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1:00:1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1",
        "fingerprint_answerer": "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0",
        "sealed_plaintexts_o_to_a": [
            "{\"t\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\n\"}",
            "{\"t\":\"candidate\",\"candidate\":\"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}",
            "{\"t\":\"end-of-candidates\"}",
            "",
            "{\"t\":\"hello\",\"name\":\"Ada Lovelace\"}"
        ],
        "sealed_plaintexts_a_to_o": [
            "{\"t\":\"answer\",\"sdp\":\"v=0\\r\\no=- 3 4 IN IP4 127.0.0.1\\r\\n\"}",
            "{\"t\":\"bye\"}"
        ],
        "frames": [
            {"sender": "O", "stream": "audio", "generation": 0, "ctr": 0, "frame": "7841c2e07d9f0a3b5c6d7e8f90a1b2c3d4e5f60718"},
            {"sender": "O", "stream": "video", "generation": 0, "ctr": 0, "frame": "1002009d012a8002e001000102030405060708090a0b0c0d0e0f"},
            {"sender": "O", "stream": "video", "generation": 0, "ctr": 1, "frame": "310200aabbccddeeff00112233"},
            {"sender": "A", "stream": "audio", "generation": 0, "ctr": 0, "frame": "fc"},
            {"sender": "A", "stream": "video", "generation": 3, "ctr": 74565, "frame": "3102000102"},
            {"sender": "O", "stream": "screen", "generation": 0, "ctr": 4294967295u64, "frame": "1002009d012a8002e001"}
        ],
        "data_messages_o_to_a": [
            {"kind": "text", "id": 1, "text": "Hi — the slides: https://example.org/s?a=1&b=<2>"},
            {"kind": "file-offer", "id": 1, "size": 20000, "name": "../../etc/passwd"},
            {"kind": "file-chunk", "id": 1, "offset": 0, "data": "00010203040506070809"},
            {"kind": "file-chunk", "id": 1, "offset": 10, "data": "ff"},
            {"kind": "file-end", "id": 1, "sha256": "5e8a2d0e6e1b2c49d3b1e5c7f0a9d8c6b4a3928170f6e5d4c3b2a19081726354"},
            {"kind": "file-abort", "id": 2, "reason": 0},
            {"kind": "delivered", "id": 4000000000u64},
            {"kind": "media-state", "microphone": true, "camera": false}
        ],
        "data_messages_a_to_o": [
            {"kind": "delivered", "id": 1},
            {"kind": "file-accept", "id": 1},
            {"kind": "file-received", "id": 1},
            {"kind": "file-decline", "id": 7, "reason": 5},
            {"kind": "text", "id": 0, "text": "x"},
            {"kind": "media-state", "microphone": false, "camera": true},
            {"kind": "media-state", "microphone": true, "camera": true}
        ],
        "data_malformed": [
            "", "7f", "01000000", "0100000001", "0100000001ff", "0200000001ff",
            "100000000100000000000000050000", "10000000010000000000000005036162",
            "12000000010000000000000000", "1300000001", "16000000", "20", "200300",
            // The order of the checks (PROTOCOL.md §3.6 "Faults, in order"): the kind before
            // any length, a field's own rule before UTF-8, UTF-8 before bytes left over.
            "7f00", "0100", "0200", "1000000001000000000000000301ff",
            "1000000001000000000000000201ff00", "1000000001000000000000000500aa",
            "1000000001000000000000000505ffff"
        ],
        // A text of 4097 bytes that is not UTF-8 either: too long is told, not the UTF-8.
        "data_malformed_long": [
            {"kind": 1, "id": 1, "byte": "ff", "count": 4097},
            {"kind": 18, "id": 1, "offset": 0, "byte": "00", "count": 16001}
        ],
        "group_fragments": [
            ".3", ".6", ".16", "", ".2", ".17", ".50", ".51", ".03", ".", ".6x", "..6", ".+6", ". 6", ".-3", ".100"
        ],
        "file_names": [
            "../../etc/passwd", "..\\..\\windows\\system.ini", "..", ".", "a/..", "", "/",
            ".hidden", "report. ", "bell\u{7}\u{1b}[31mred.txt", "line\nbreak\u{85}.txt",
            "photo 1.jpg", "naïve — ünïcode.txt",
            // Format characters: a right-to-left override would show this as "photoexe.jpg".
            "photo\u{202e}gpj.exe", "zero\u{200b}width\u{feff}\u{ad}.txt",
            "isolate\u{2067}d\u{2069}.pdf", "tag\u{e0041}\u{e007f}s.txt",
            "para\u{2029}graph\u{2028}.txt", "\u{202e}\u{200f}", "hieroglyph\u{13439}.txt"
        ],
        "display_names": [
            " Ada\u{1b}[31m Lovelace\u{85}\n", "\u{7}\t ", "Zoë 🎧", "Bob\u{202e}kcilC",
            "\u{200b}\u{2066}", "  Cy  ", "Dee\u{2028}Two"
        ]
    });
    // Apart: one json! this large passes the macro's recursion limit.
    inputs["peer_signals"] = peer_signal_inputs();
    inputs["relay_messages"] = relay_message_inputs();
    inputs
}

/// Relay messages as a client receives them, and what each decodes to (PROTOCOL.md §2 "Relay to
/// client"). Ids: 22 characters of canonical base64url.
fn relay_message_inputs() -> Value {
    let (id1, id2) = ("AQEBAQEBAQEBAQEBAQEBAQ", "AgICAgICAgICAgICAgICAg");
    let texts: Vec<String> = vec![
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[]}}"#),
        format!(
            r#"{{"type":"welcome","you":"{id1}","peers":["{id2}"],"ice":[{{"urls":["stun:stun.example.org:3478","turn:turn.example.org:3478?transport=udp"],"username":"1800000000","credential":"c2VjcmV0","extra":1}}],"max":6,"motd":"hi"}}"#
        ),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":16}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":17}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":50}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":51}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":1}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":-1}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"max":null,"ice":null}}"#),
        r#"{"type":"welcome","you":"AQEBAQEBAQEBAQEBAQEBA","peers":[]}"#.into(),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":["AQEBAQEBAQEBAQEBAQEBAR"]}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[5]}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}"}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"ice":[{{"urls":"stun:x"}}]}}"#),
        format!(r#"{{"type":"welcome","you":"{id1}","peers":[],"ice":[{{"username":"u"}}]}}"#),
        format!(r#"{{"type":"peer-joined","peer":"{id2}"}}"#),
        format!(r#"{{"type":"peer-left","peer":"{id2}","you":null}}"#),
        r#"{"type":"peer-left"}"#.into(),
        format!(r#"{{"type":"signal","from":"{id2}","data":"BAABAgM"}}"#),
        format!(r#"{{"type":"signal","from":"{id2}","data":""}}"#),
        format!(r#"{{"type":"signal","from":"{id2}","data":"AAF"}}"#),
        format!(r#"{{"type":"signal","from":"{id2}","data":"AAE="}}"#),
        format!(r#"{{"type":"signal","from":"{id2}"}}"#),
        r#"{"type":"error","code":"room-full","message":"this room is full"}"#.into(),
        r#"{"type":"error","code":"something-new"}"#.into(),
        r#"{"type":"error","code":5}"#.into(),
        r#"{"type":"error","message":"no code"}"#.into(),
        r#"{"type":"error","code":"x","message":"\ud800"}"#.into(),
        r#"{"type":"create-group"}"#.into(),
        format!(
            r#"{{"type":"commit-task","epoch":3,"add":[{{"peer":"{id2}","data":"AQID","x":1}}],"remove":["{id1}"]}}"#
        ),
        r#"{"type":"commit-task","epoch":0,"add":[],"remove":[]}"#.into(),
        format!(r#"{{"type":"commit-task","epoch":3,"add":[["{id2}","AQID"]],"remove":[]}}"#),
        format!(r#"{{"type":"commit-task","epoch":3,"add":[{{"peer":"{id2}"}}],"remove":[]}}"#),
        r#"{"type":"commit-task","epoch":3,"add":[]}"#.into(),
        r#"{"type":"commit-task","epoch":9007199254740992,"add":[],"remove":[]}"#.into(),
        format!(r#"{{"type":"commit","from":"{id2}","epoch":9007199254740991,"data":"AQID"}}"#),
        format!(r#"{{"type":"commit","from":"{id2}","data":"AQID"}}"#),
        format!(r#"{{"type":"commit","from":"{id2}","epoch":"1","data":"AQID"}}"#),
        format!(r#"{{"type":"group-welcome","from":"{id2}","epoch":1,"data":"BAU"}}"#),
        format!(r#"{{"type":"group-welcome","from":"{id2}","epoch":1,"data":"BAU="}}"#),
        format!(r#"{{"type":"group-message","from":"{id2}","epoch":0,"data":""}}"#),
        format!(r#"{{"type":"group-message","from":"{id2}","epoch":-1,"data":""}}"#),
        r#"{"type":"error","code":"stale-epoch","message":"another commit came first"}"#.into(),
        r#"{"type":"sfu-answer","sdp":"v=0\r\na=ice-lite\r\n"}"#.into(),
        r#"{"type":"sfu-answer"}"#.into(),
        r#"{"type":"sfu-answer","sdp":5}"#.into(),
        r#"{"type":"from-the-future","epoch":"x"}"#.into(),
        r#"{"type":"from-the-future","anything":[1,2]}"#.into(),
        r#"{"type":"from-the-future","peers":5}"#.into(),
        r#"{"type":5}"#.into(),
        "{}".into(),
        "[]".into(),
        "null".into(),
        r#""welcome""#.into(),
        "not json".into(),
        "\u{feff}{\"type\":\"peer-left\"}".into(),
        format!(r#"{{"type":"peer-joined","peer":"{id2}"}} x"#),
    ];
    Value::Array(texts.into_iter().map(|t| json!({ "text": t })).collect())
}

/// Sealed plaintexts and what each decodes to (PROTOCOL.md §3.3 "Plaintexts"): text, or hex for
/// bytes that are not UTF-8.
fn peer_signal_inputs() -> Value {
    let text = |t: &str| json!({ "text": t });
    Value::Array(vec![
        text("{\"t\":\"offer\",\"sdp\":\"v=0\\r\\n\"}"),
        text("{\"t\":\"answer\",\"sdp\":\"v=0\\r\\n\",\"extra\":[1,{\"a\":null}]}"),
        text("{\"t\":\"offer\"}"),
        text("{\"t\":\"offer\",\"sdp\":5}"),
        text("{\"t\":\"candidate\",\"candidate\":\"candidate:1 1 udp 1 127.0.0.1 5000 typ host\"}"),
        text("{\"t\":\"candidate\",\"candidate\":\"c\",\"sdpMid\":null,\"sdpMLineIndex\":65535}"),
        text("{\"t\":\"candidate\",\"candidate\":\"c\",\"sdpMLineIndex\":65536}"),
        text("{\"t\":\"candidate\",\"candidate\":\"c\",\"sdpMLineIndex\":-1}"),
        text("{\"t\":\"candidate\",\"candidate\":\"c\",\"sdpMid\":0}"),
        text("{\"t\":\"candidate\",\"sdpMid\":\"0\"}"),
        text("{\"t\":\"end-of-candidates\"}"),
        text("{\"t\":\"bye\",\"why\":\"done\"}"),
        text("{\"t\":\"identity\",\"key\":\"AAAA\",\"sig\":\"BBBB\"}"),
        text("{\"t\":\"identity\",\"key\":\"AAAA\"}"),
        text("{\"t\":\"hello\",\"name\":\"Ada\"}"),
        text("{\"t\":\"hello\",\"name\":7}"),
        text("{\"t\":\"hello\"}"),
        text(&format!(
            "{{\"t\":\"hello\",\"name\":\"{}\"}}",
            "é".repeat(33)
        )),
        text(&format!(
            "{{\"t\":\"hello\",\"name\":\"{}\"}}",
            "é".repeat(32)
        )),
        text("{\"t\":\"chat\",\"text\":\"hi\"}"),
        text("{\"t\":\"Offer\",\"sdp\":\"v=0\"}"),
        text("{}"),
        text("{\"t\":5}"),
        text("[\"offer\"]"),
        text("\"bye\""),
        text("null"),
        text(""),
        text(" {\"t\":\"bye\"}\n"),
        text("{\"t\":\"bye\"} {}"),
        text("\u{feff}{\"t\":\"bye\"}"),
        text("{\"t\":\"hello\",\"name\":\"\\ud800\"}"),
        text("{\"t\":\"chat\",\"x\":\"\\udc00\"}"),
        text("{\"t\":\"hello\",\"name\":\"\\ud83c\\udfa7\"}"),
        json!({"hex": "ff"}),
        json!({"hex": "7b2274223a2262796522ff7d"}),
    ])
}

fn bytes32(v: &Value) -> [u8; 32] {
    hex(v.as_str().expect("hex string"))
        .try_into()
        .expect("32 bytes")
}

fn stream(name: &str) -> Stream {
    match name {
        "audio" => Stream::Audio,
        "video" => Stream::Video,
        "screen" => Stream::Screen,
        other => panic!("unknown stream {other}"),
    }
}

/// Every output, computed from `inputs`.
fn build(inputs: &Value) -> Value {
    let secret_bytes = bytes32(&inputs["secret"]);
    let secret = LinkSecret::from_bytes(secret_bytes);
    let link = Link::new(inputs["origin"].as_str().unwrap(), secret.clone()).unwrap();
    let room = secret.room_id();
    let (o_priv, a_priv) = (
        bytes32(&inputs["offerer_private"]),
        bytes32(&inputs["answerer_private"]),
    );
    let (fp_o, fp_a) = (
        inputs["fingerprint_offerer"].as_str().unwrap(),
        inputs["fingerprint_answerer"].as_str().unwrap(),
    );

    // The handshake through the public API.
    let (mut o, commit) = Handshake::offerer(&secret, EphemeralKey::from_bytes(o_priv));
    let mut a = Handshake::answerer(&secret, EphemeralKey::from_bytes(a_priv));
    let Received::Reply(key) = a.receive(&commit).unwrap() else {
        panic!("KEY")
    };
    let Received::KeysReady {
        reply: Some(reveal),
    } = o.receive(&key).unwrap()
    else {
        panic!("REVEAL")
    };
    a.receive(&reveal).unwrap();

    // Intermediates straight from their definitions (PROTOCOL.md §3).
    let e_o = PublicKey::from(&StaticSecret::from(o_priv)).to_bytes();
    let e_a = PublicKey::from(&StaticSecret::from(a_priv)).to_bytes();
    let dh = StaticSecret::from(o_priv)
        .diffie_hellman(&PublicKey::from(e_a))
        .to_bytes();
    let th = kdf::sha256(&[b"sotto v1 transcript", room.as_bytes(), &e_o, &e_a]);
    let prk = kdf::extract_sha256(&secret_bytes, &dh);
    let k = |label: &[u8], th: &[u8; 32], len: usize| {
        let mut out = vec![0u8; len];
        kdf::expand_sha256(&prk, &[b"sotto v1 ", label, th], &mut out);
        out
    };
    let sas = k(b"sas", &th, 4);
    let code = o.safety_code().unwrap();
    assert_eq!(
        u32::from_be_bytes(sas.clone().try_into().unwrap()) % 1_000_000,
        code.value()
    );

    // Each device's identity over this handshake (RFC 8032 §7.1 TESTs 1 and 2's keys), each
    // verified by the other side; the signed bytes from their definition.
    let identity = |side: &Handshake, other: &Handshake, seed: &str| {
        let device = DeviceKey::from_seed(&bytes32(&inputs[seed]));
        let id = side.identity(&device).unwrap();
        assert_eq!(
            other.verify_identity(id.key.as_bytes(), &id.sig),
            Ok(device.id())
        );
        json!({"key": to_hex(id.key.as_bytes()), "sig": to_hex(&id.sig)})
    };
    // What A must refuse of O's identity, and why (the same words in every implementation):
    // a signature over another call's transcript (th with its first bit flipped), a key or a
    // signature of the wrong length, A's key with O's signature, a changed bit.
    let id_o = o
        .identity(&DeviceKey::from_seed(&bytes32(
            &inputs["device_seed_offerer"],
        )))
        .unwrap();
    let mut other_th = th;
    other_th[0] ^= 1;
    let elsewhere = ed25519_dalek::SigningKey::from_bytes(&bytes32(&inputs["device_seed_offerer"]))
        .sign(&[b"sotto v1 identity".as_slice(), &other_th].concat())
        .to_bytes();
    let id_a = a
        .identity(&DeviceKey::from_seed(&bytes32(
            &inputs["device_seed_answerer"],
        )))
        .unwrap();
    let mut flipped = id_o.sig;
    flipped[10] ^= 0x40;
    let refused: Vec<Value> = [
        (
            id_o.key.as_bytes().to_vec(),
            elsewhere.to_vec(),
            "the device signature does not verify",
        ),
        (
            id_o.key.as_bytes()[1..].to_vec(),
            id_o.sig.to_vec(),
            "a device key is 32 bytes",
        ),
        (
            id_o.key.as_bytes().to_vec(),
            id_o.sig[1..].to_vec(),
            "a device signature is 64 bytes",
        ),
        (
            id_a.key.as_bytes().to_vec(),
            id_o.sig.to_vec(),
            "the device signature does not verify",
        ),
        (
            id_o.key.as_bytes().to_vec(),
            flipped.to_vec(),
            "the device signature does not verify",
        ),
    ]
    .into_iter()
    .map(|(key, sig, why)| {
        assert_eq!(
            a.verify_identity(&key, &sig),
            Err(Error::IdentityRefused(why))
        );
        json!({"key": to_hex(&key), "sig": to_hex(&sig), "refused": why})
    })
    .collect();
    let identities = json!({
        "signed": to_hex(&[b"sotto v1 identity".as_slice(), &th].concat()),
        "offerer": identity(&o, &a, "device_seed_offerer"),
        "answerer": identity(&a, &o, "device_seed_answerer"),
        "refused_by_answerer": refused,
    });

    // Sealed messages in order, each side opening the other's.
    let mut sealed = Vec::new();
    let o_msgs: Vec<&str> = inputs["sealed_plaintexts_o_to_a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let a_msgs: Vec<&str> = inputs["sealed_plaintexts_a_to_o"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let first = o.seal(o_msgs[0].as_bytes()).unwrap();
    a.receive(&first).unwrap();
    sealed.push(
        json!({"direction": "O->A", "seq": 0, "plaintext": o_msgs[0], "message": to_hex(&first)}),
    );
    for (seq, p) in a_msgs.iter().enumerate() {
        let m = a.seal(p.as_bytes()).unwrap();
        assert!(matches!(o.receive(&m).unwrap(), Received::Message(_)));
        sealed
            .push(json!({"direction": "A->O", "seq": seq, "plaintext": p, "message": to_hex(&m)}));
    }
    for (seq, p) in o_msgs.iter().enumerate().skip(1) {
        let m = o.seal(p.as_bytes()).unwrap();
        assert!(matches!(a.receive(&m).unwrap(), Received::Message(_)));
        sealed
            .push(json!({"direction": "O->A", "seq": seq, "plaintext": p, "message": to_hex(&m)}));
    }

    // Media keys bound to the fingerprints.
    let fp_len = |fp: &str| (fp.len() as u16).to_be_bytes();
    let th2 = kdf::sha256(&[
        &th,
        b"dtls",
        &fp_len(fp_o),
        fp_o.as_bytes(),
        &fp_len(fp_a),
        fp_a.as_bytes(),
    ]);
    let media_o = k(b"media O", &th2, 32);
    let media_a = k(b"media A", &th2, 32);
    let keys_o = o.media_keys(fp_o, fp_a).unwrap();
    let keys_a = a.media_keys(fp_o, fp_a).unwrap();
    assert_eq!(
        (keys_o.send.0.to_vec(), keys_a.send.0.to_vec()),
        (media_o.clone(), media_a.clone())
    );

    // The data channel: O's messages, then A's, each side opening the other's.
    let mut data_o = o.data_channel(fp_o, fp_a).unwrap();
    let mut data_a = a.data_channel(fp_o, fp_a).unwrap();
    let mut data_messages = Vec::new();
    for (direction, list, o_sends) in [
        ("O->A", "data_messages_o_to_a", true),
        ("A->O", "data_messages_a_to_o", false),
    ] {
        let (from, to) = if o_sends {
            (&mut data_o, &mut data_a)
        } else {
            (&mut data_a, &mut data_o)
        };
        for (seq, m) in inputs[list].as_array().unwrap().iter().enumerate() {
            let msg = data_message(m);
            let plain = msg.encode().unwrap();
            let sealed = from.seal(&plain).unwrap();
            assert_eq!(
                DataMessage::decode(&to.open(&sealed).unwrap()).unwrap(),
                msg
            );
            data_messages.push(json!({
                "direction": direction, "seq": seq, "message": m,
                "plaintext": to_hex(&plain), "sealed": to_hex(&sealed),
            }));
        }
    }

    let frames: Vec<Value> = inputs["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let role = if f["sender"] == "O" {
                Role::Offerer
            } else {
                Role::Answerer
            };
            let base = if role == Role::Offerer {
                &media_o
            } else {
                &media_a
            };
            let s = stream(f["stream"].as_str().unwrap());
            let generation = f["generation"].as_u64().unwrap();
            let ctr = f["ctr"].as_u64().unwrap();
            let mut enc = FrameEncryptor::new(
                BaseKey::from_bytes(base.clone().try_into().unwrap()),
                role,
                s,
                generation,
            )
            .unwrap();
            enc.set_counter_for_test(ctr);
            let plain = hex(f["frame"].as_str().unwrap());
            let out = enc.encrypt(&plain).unwrap();
            let mut f = f.clone();
            f["kid"] = json!(kid(generation, s, role));
            f["sealed"] = json!(to_hex(&out));
            f
        })
        .collect();

    json!({
        "_about": {
            "description": "Sotto protocol v1 test vectors: every value of PROTOCOL.md computed from the fixed inputs. Byte strings are lowercase hex; texts are UTF-8 strings.",
            "source": "Generated by the sotto-e2ee crate (e2ee/src/sotto_vectors.rs) with SOTTO_WRITE_VECTORS=1 cargo test -p sotto-e2ee sotto_vectors; every test run recomputes the file from its inputs. The X25519 private keys are RFC 7748 section 6.1's Alice (offerer) and Bob (answerer).",
            "how_to_check": "From `inputs`, compute each other value with the formula its name points to in PROTOCOL.md; sealed messages are in the order they were sealed and opened (data messages: all of O's, then all of A's, each direction's seq from 0); each data_malformed plaintext is refused for the fault named, the first in PROTOCOL.md section 3.6's order; file_names and display_names are cleaned as PROTOCOL.md sections 3.6 and 3.7 say; each peer_signals plaintext (text, or hex when not UTF-8) decodes to `decoded` (the message re-encoded, absent optional fields as null), \"ignored\" or \"malformed\" (PROTOCOL.md section 3.3); each relay_messages text decodes to `decoded` (the message with its defaults filled in), \"ignored\" or \"malformed\" (PROTOCOL.md section 2); each frame is sealed by a fresh encryptor of its sender, stream and generation whose counter starts at `ctr`."
        },
        "inputs": inputs,
        "link": {
            "text": link.to_text().as_str(),
            "secret_b64u": secret.to_base64url().as_str(),
            "room_id": to_hex(room.as_bytes()),
            "room_id_b64u": room.to_base64url(),
            "relay_url": link.relay_url(),
        },
        "relays": inputs["relays"].as_array().unwrap().iter().map(|relay| {
            let link = Link::new(relay.as_str().unwrap(), secret.clone()).unwrap();
            json!({"link": link.to_text().as_str(), "base": link.base(), "relay_url": link.relay_url()})
        }).collect::<Vec<_>>(),
        "handshake": {
            "offerer_public": to_hex(&e_o),
            "answerer_public": to_hex(&e_a),
            "commit": to_hex(&commit),
            "key": to_hex(&key),
            "reveal": to_hex(&reveal),
            "dh": to_hex(&dh),
            "transcript_hash": to_hex(&th),
            "prk": to_hex(&prk),
            "seal_o_to_a": to_hex(&k(b"seal O->A", &th, 32)),
            "seal_a_to_o": to_hex(&k(b"seal A->O", &th, 32)),
        },
        "safety_code": {"sas": to_hex(&sas), "digits": code.digits(), "display": code.to_string()},
        "identity": identities,
        "sealed": sealed,
        "media": {"th2": to_hex(&th2), "media_o": to_hex(&media_o), "media_a": to_hex(&media_a)},
        "frames": frames,
        "data": {"data_o": to_hex(&k(b"data O", &th2, 32)), "data_a": to_hex(&k(b"data A", &th2, 32))},
        "data_messages": data_messages,
        "data_malformed": inputs["data_malformed"].as_array().unwrap().iter().map(|p| {
            let plain = hex(p.as_str().unwrap());
            let Err(Error::MessageMalformed(fault)) = DataMessage::decode(&plain) else {
                panic!("{p} must be malformed")
            };
            json!({"plaintext": p, "fault": fault.code()})
        }).chain(inputs["data_malformed_long"].as_array().unwrap().iter().map(|m| {
            let mut plain = vec![u8::try_from(m["kind"].as_u64().unwrap()).unwrap()];
            plain.extend_from_slice(&u32::try_from(m["id"].as_u64().unwrap()).unwrap().to_be_bytes());
            if let Some(offset) = m["offset"].as_u64() {
                plain.extend_from_slice(&offset.to_be_bytes());
            }
            let count = usize::try_from(m["count"].as_u64().unwrap()).unwrap();
            plain.extend(std::iter::repeat_n(hex(m["byte"].as_str().unwrap())[0], count));
            let Err(Error::MessageMalformed(fault)) = DataMessage::decode(&plain) else {
                panic!("{m} must be malformed")
            };
            json!({"plaintext": to_hex(&plain), "fault": fault.code()})
        })).collect::<Vec<_>>(),
        // A group link is the one-to-one link with `.N` after the secret: the same room.
        "group_links": inputs["group_fragments"].as_array().unwrap().iter().map(|f| {
            let text = format!("{}{}", link.to_text().as_str(), f.as_str().unwrap());
            match Link::parse(&text) {
                Ok(parsed) => json!({
                    "link": text,
                    "group": parsed.group(),
                    "room_id_b64u": parsed.secret().room_id().to_base64url(),
                    "relay_url": parsed.relay_url(),
                }),
                Err(_) => json!({"link": text, "valid": false}),
            }
        }).collect::<Vec<_>>(),
        "file_names": inputs["file_names"].as_array().unwrap().iter().map(|n| {
            json!({"name": n, "safe": safe_file_name(n.as_str().unwrap())})
        }).collect::<Vec<_>>(),
        "display_names": inputs["display_names"].as_array().unwrap().iter().map(|n| {
            json!({"name": n, "shown": clean_name(n.as_str().unwrap())})
        }).collect::<Vec<_>>(),
        "relay_messages": inputs["relay_messages"].as_array().unwrap().iter().map(|m| {
            let mut out = m.clone();
            out["decoded"] = match ServerMessage::decode(m["text"].as_str().unwrap()) {
                Ok(Some(msg)) => serde_json::to_value(&msg).unwrap(),
                Ok(None) => json!("ignored"),
                Err(_) => json!("malformed"),
            };
            out
        }).collect::<Vec<_>>(),
        "peer_signals": inputs["peer_signals"].as_array().unwrap().iter().map(|p| {
            let bytes = match p["text"].as_str() {
                Some(text) => text.as_bytes().to_vec(),
                None => hex(p["hex"].as_str().unwrap()),
            };
            let mut out = p.clone();
            out["decoded"] = match PeerSignal::decode(&bytes) {
                Ok(Some(signal)) => serde_json::from_slice(&signal.encode()).unwrap(),
                Ok(None) => json!("ignored"),
                Err(_) => json!("malformed"),
            };
            out
        }).collect::<Vec<_>>(),
    })
}

/// A data-channel message from its JSON form in the vectors' inputs.
fn data_message(v: &Value) -> DataMessage {
    if v["kind"] == "media-state" {
        return DataMessage::MediaState {
            microphone: v["microphone"].as_bool().unwrap(),
            camera: v["camera"].as_bool().unwrap(),
        };
    }
    let id = u32::try_from(v["id"].as_u64().unwrap()).unwrap();
    let reason = || StopReason::from_byte(u8::try_from(v["reason"].as_u64().unwrap()).unwrap());
    match v["kind"].as_str().unwrap() {
        "text" => DataMessage::Text {
            id,
            text: v["text"].as_str().unwrap().into(),
        },
        "delivered" => DataMessage::Delivered { id },
        "file-offer" => DataMessage::FileOffer {
            id,
            size: v["size"].as_u64().unwrap(),
            name: v["name"].as_str().unwrap().into(),
        },
        "file-accept" => DataMessage::FileAccept { id },
        "file-chunk" => DataMessage::FileChunk {
            id,
            offset: v["offset"].as_u64().unwrap(),
            data: hex(v["data"].as_str().unwrap()),
        },
        "file-end" => DataMessage::FileEnd {
            id,
            sha256: bytes32(&v["sha256"]),
        },
        "file-received" => DataMessage::FileReceived { id },
        "file-abort" => DataMessage::FileAbort {
            id,
            reason: reason(),
        },
        "file-decline" => DataMessage::FileDecline {
            id,
            reason: reason(),
        },
        other => panic!("unknown kind {other}"),
    }
}

/// The first JSON path at which `got` differs from `want`.
fn first_difference(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    None => return Some(format!("{p} missing")),
                    Some(gv) => {
                        if let Some(d) = first_difference(wv, gv, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys()
                .find(|k| !w.contains_key(*k))
                .map(|k| format!("{path}.{k} unexpected"))
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| first_difference(wv, gv, &format!("{path}[{i}]"))),
        _ if want == got => None,
        _ => Some(format!("{path}: expected {want}, file has {got}")),
    }
}

/// A vector file that a `build` makes from its fixed `inputs` and every test run recomputes.
pub(crate) struct VectorFile {
    pub(crate) path: &'static str,
    pub(crate) build: fn(&Value) -> Value,
    pub(crate) inputs: fn() -> Value,
}

impl VectorFile {
    /// Recomputes the whole file from its inputs: the first path that differs, if any.
    pub(crate) fn check(&self, file: &Value) -> Result<(), String> {
        match first_difference(&(self.build)(&file["inputs"]), file, "") {
            None => Ok(()),
            Some(d) => Err(d),
        }
    }

    pub(crate) fn load(&self) -> Value {
        let text = std::fs::read_to_string(self.path).expect("the vector file");
        serde_json::from_str(&text).expect("JSON")
    }

    /// Writes the file when SOTTO_WRITE_VECTORS is set; then checks that it has the fixed
    /// inputs and that every value agrees with the implementation.
    pub(crate) fn verify(&self) {
        if std::env::var_os("SOTTO_WRITE_VECTORS").is_some() {
            let text = serde_json::to_string_pretty(&(self.build)(&(self.inputs)())).expect("JSON");
            std::fs::write(self.path, text + "\n").expect("written");
        }
        let file = self.load();
        assert_eq!(
            file["inputs"],
            (self.inputs)(),
            "the file's inputs are the fixed ones"
        );
        if let Err(d) = self.check(&file) {
            panic!("{} disagrees with the implementation at {d}", self.path);
        }
    }

    /// Each value at a JSON pointer replaced, the check must fail there (first_difference's
    /// path: `/sealed/2/message` is `.sealed[2].message`).
    pub(crate) fn assert_catches(&self, changes: &[(&str, Value)]) {
        let file = self.load();
        for (pointer, replacement) in changes {
            let mut bad = file.clone();
            *bad.pointer_mut(pointer).expect("a value there") = replacement.clone();
            let err = self
                .check(&bad)
                .expect_err("a changed value must be caught");
            let path: String = pointer
                .split('/')
                .skip(1)
                .map(|part| match part.parse::<usize>() {
                    Ok(i) => format!("[{i}]"),
                    Err(_) => format!(".{part}"),
                })
                .collect();
            assert!(err.starts_with(&path), "{err}");
        }
    }
}

const V1: VectorFile = VectorFile {
    path: PATH,
    build,
    inputs: default_inputs,
};

#[test]
fn sotto_vectors_match_the_implementation() {
    V1.verify();
}

#[test]
fn the_vector_check_catches_a_changed_value() {
    V1.assert_catches(&[
        ("/safety_code/digits", json!("000000")),
        ("/handshake/commit", json!("00")),
        ("/sealed/2/message", json!("04")),
        ("/frames/4/sealed", json!("3102")),
        ("/media/media_a", json!("")),
        ("/identity/offerer/sig", json!("00")),
    ]);
}
