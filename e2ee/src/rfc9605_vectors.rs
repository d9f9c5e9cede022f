//! RFC 9605's official test vectors (tests/vectors/sframe-rfc9605.json, Appendix C of the RFC;
//! the file's `_about` names its sources): every header vector, and every SFrame vector of
//! the suites implemented here, encrypting and decrypting, intermediates included.

use crate::FrameFault;
use crate::sframe::{self, CipherSuite, Header, KidKey};
use serde_json::Value;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("0x-prefixed hex")
}

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/sframe-rfc9605.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("JSON")
}

#[test]
fn every_rfc_header_vector_encodes_and_parses() {
    let v = load();
    let headers = v["header"].as_array().expect("header vectors");
    assert_eq!(headers.len(), 289);
    for t in headers {
        let (kid, ctr) = (
            hex_u64(t["kid"].as_str().unwrap()),
            hex_u64(t["ctr"].as_str().unwrap()),
        );
        let want = hex(t["header"].as_str().unwrap());
        assert_eq!(
            Header { kid, ctr }.encode(),
            want,
            "encode kid {kid:#x} ctr {ctr:#x}"
        );
        assert_eq!(Header::parse(&want), Ok((Header { kid, ctr }, want.len())));
        // Truncated by one byte: refused.
        assert_eq!(
            Header::parse(&want[..want.len() - 1]),
            Err(FrameFault::MalformedHeader)
        );
    }
}

struct Vector {
    suite: CipherSuite,
    kid: u64,
    ctr: u64,
    base_key: Vec<u8>,
    metadata: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    raw: Value,
}

fn gcm_vectors() -> Vec<Vector> {
    let v = load();
    let all = v["sframe"].as_array().expect("sframe vectors");
    let out: Vec<Vector> = all
        .iter()
        .filter_map(|t| {
            let suite = CipherSuite::from_id(u16::try_from(t["cipher_suite"].as_u64()?).ok()?)?;
            let h = |k: &str| hex(t[k].as_str().expect("hex field"));
            Some(Vector {
                suite,
                kid: hex_u64(t["kid"].as_str()?),
                ctr: hex_u64(t["ctr"].as_str()?),
                base_key: h("base_key"),
                metadata: h("metadata"),
                pt: h("pt"),
                ct: h("ct"),
                raw: t.clone(),
            })
        })
        .collect();
    assert_eq!(out.len(), 2, "suites 0x0004 and 0x0005");
    out
}

#[test]
fn rfc_sframe_vectors_of_suites_4_and_5_encrypt_and_decrypt() {
    for t in gcm_vectors() {
        assert_eq!(
            sframe::encrypt(t.suite, &t.base_key, t.kid, t.ctr, &t.metadata, &t.pt),
            t.ct,
            "encrypt, suite {:?}",
            t.suite
        );
        let (header, pt) = sframe::decrypt(t.suite, &t.base_key, &t.metadata, &t.ct).unwrap();
        assert_eq!((header.kid, header.ctr, pt), (t.kid, t.ctr, t.pt.clone()));
    }
}

#[test]
fn rfc_intermediates_match_key_salt_and_nonce() {
    for t in gcm_vectors() {
        let key = KidKey::derive(t.suite, &t.base_key, t.kid);
        let h = |k: &str| hex(t.raw[k].as_str().unwrap());
        let (salt, nonce) = key.salt_and_nonce_for_test(t.ctr);
        assert_eq!(salt.to_vec(), h("sframe_salt"));
        assert_eq!(nonce.to_vec(), h("nonce"));
        // The key itself is checked through its output: the same ciphertext under a key
        // built from the vector's sframe_key.
        assert_eq!(
            KidKey::from_raw_for_test(t.suite, &h("sframe_key"), &h("sframe_salt")).seal_for_test(
                t.ctr,
                &h("aad"),
                &t.pt
            ),
            t.ct[t.ct.len() - t.pt.len() - 16..].to_vec()
        );
    }
}

#[test]
fn tampered_rfc_frames_are_refused() {
    for t in gcm_vectors() {
        let open = |meta: &[u8], ct: &[u8]| sframe::decrypt(t.suite, &t.base_key, meta, ct);
        let hlen = Header::parse(&t.ct).unwrap().1;
        // Header bytes, tag, ciphertext.
        for i in [1, hlen - 1, hlen, t.ct.len() - 1] {
            let mut bad = t.ct.clone();
            bad[i] ^= 1;
            assert!(open(&t.metadata, &bad).is_err(), "flip at {i}");
        }
        // Metadata.
        let mut meta = t.metadata.clone();
        meta[0] ^= 1;
        assert_eq!(open(&meta, &t.ct), Err(FrameFault::AuthenticationFailed));
        // Another KID or CTR with the same body.
        for header in [
            Header {
                kid: t.kid + 1,
                ctr: t.ctr,
            },
            Header {
                kid: t.kid,
                ctr: t.ctr + 1,
            },
        ] {
            let forged = [header.encode(), t.ct[hlen..].to_vec()].concat();
            assert_eq!(
                open(&t.metadata, &forged),
                Err(FrameFault::AuthenticationFailed)
            );
        }
    }
}
