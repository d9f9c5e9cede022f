//! The node process that hosts JavaScript conference members (`tests/mls/peer.mjs`: the
//! browser's `web/crypto/member.js` and `web/conference-room.js` on ts-mls), driven over JSON
//! lines on its standard input and output, so that a Rust test can put them in one group with
//! openmls members and compare them byte for byte.

use serde_json::{Value, json};
use sotto_e2ee::Member;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of lower-case hex.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The node process hosting the JavaScript members.
pub struct Js {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Js {
    /// Starts `node --import ./web/test/vendor-map.mjs tests/mls/peer.mjs` in the repository.
    pub fn start() -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut child = Command::new("node")
            .args([
                "--import",
                "./web/test/vendor-map.mjs",
                "tests/mls/peer.mjs",
            ])
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs (the test command installs it)");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// One command (`{"cmd": ..., "name": ...}`) and its answer; a command that failed in
    /// ts-mls fails the test with its error.
    pub fn call(&mut self, req: Value) -> Value {
        writeln!(self.stdin, "{req}").expect("node's stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("node's stdout");
        let out: Value = serde_json::from_str(&line).expect("a JSON line from node");
        assert_eq!(
            out["ok"],
            json!(true),
            "{} by {} failed in ts-mls: {}",
            req["cmd"],
            req["name"],
            out["error"]
        );
        out
    }
}

impl Drop for Js {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a member holds of its current epoch: every member of one group must hold the same.
#[derive(Debug, PartialEq, Eq)]
pub struct View {
    /// The epoch.
    pub epoch: u64,
    /// Its SFrame base key (the MLS exporter output), hex.
    pub exporter: String,
    /// Its epoch authenticator, hex.
    pub authenticator: String,
    /// Its group code's digits.
    pub code: String,
    /// The roster, `leaf:id-hex`.
    pub members: Vec<String>,
}

impl View {
    /// An openmls member's.
    pub fn of(m: &Member) -> Self {
        Self {
            epoch: m.epoch().expect("a member"),
            exporter: hex(m.sframe_base_key().expect("a key").as_ref()),
            authenticator: hex(&m.epoch_authenticator().expect("an authenticator")),
            code: m.group_code().expect("a code").digits(),
            members: m
                .members()
                .iter()
                .map(|(leaf, id)| format!("{leaf}:{}", hex(id)))
                .collect(),
        }
    }

    /// A ts-mls member's, as `peer.mjs` answers `info` or `conf-info`.
    pub fn from_js(r: &Value) -> Self {
        Self {
            epoch: r["epoch"]
                .as_str()
                .expect("epoch")
                .parse()
                .expect("a number"),
            exporter: r["exporter"].as_str().expect("hex").to_owned(),
            authenticator: r["authenticator"].as_str().expect("hex").to_owned(),
            code: r["code"].as_str().expect("digits").to_owned(),
            members: r["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| m.as_str().expect("text").to_owned())
                .collect(),
        }
    }
}
