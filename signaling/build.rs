//! Embeds the web client (../web) into the relay binary, so the relay is one self-contained
//! file. For each file: its bytes, content type and an ETag; HTML pages get the import map
//! and the Subresource Integrity hashes of every script, all computed here at build time.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Files served to browsers: everything under web/ except dotfiles, node_modules and tests.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.')
            || name == "node_modules"
            || name == "test"
            || name.contains(".test.")
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The Content-Security-Policy of every response: the relay's own scripts (and the one inline
/// import map, by its hash), styles and WebSocket only; no eval, no third-party origin, no
/// framing, Trusted Types enforced.
fn csp(importmap_hash: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'sha256-{importmap_hash}'; style-src 'self'; \
         img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
         worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'; require-trusted-types-for 'script'"
    )
}

fn sri(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let web = manifest
        .join("../web")
        .canonicalize()
        .expect("web/ next to signaling/");
    println!("cargo:rerun-if-changed={}", web.display());
    let mut paths = Vec::new();
    collect(&web, &mut paths);
    let url_of = |path: &Path| {
        format!(
            "/{}",
            path.strip_prefix(&web)
                .expect("below web/")
                .to_string_lossy()
                .replace('\\', "/")
        )
    };
    let bench_no_e2ee = std::env::var_os("CARGO_FEATURE_BENCH_NO_E2EE").is_some();
    let files: Vec<(String, PathBuf, Vec<u8>)> = paths
        .into_iter()
        .map(|p| {
            let url = url_of(&p);
            let bytes = std::fs::read(&p).expect("readable web file");
            if bench_no_e2ee && url == "/frame-keys.js" {
                // The benchmark build: the one switch in frame-keys.js turned off, in a copy.
                let text = String::from_utf8(bytes).expect("UTF-8 frame-keys.js");
                let on = "const MEDIA_TRANSFORM = true;";
                assert!(
                    text.contains(on),
                    "frame-keys.js lost its MEDIA_TRANSFORM line"
                );
                let text = text.replace(on, "const MEDIA_TRANSFORM = false;");
                let copy = out_dir.join("web_frame_keys_bench_no_e2ee.js");
                std::fs::write(&copy, &text).expect("write the benchmark frame-keys.js");
                (url, copy, text.into_bytes())
            } else {
                (url, p, bytes)
            }
        })
        .collect();

    // Subresource Integrity for every module the page loads: the entry script by its
    // `integrity` attribute, every module it imports through the import map's "integrity".
    // Keys are relative ("./app.js"): the page may be served under a path (PROTOCOL.md §1), and
    // the browser resolves them against the page's URL as it does the modules' own URLs.
    let mut integrity = String::new();
    for (url, path, bytes) in &files {
        if path.extension().is_some_and(|e| e == "js") {
            if !integrity.is_empty() {
                integrity.push(',');
            }
            let key = format!(".{url}");
            write!(integrity, "{key:?}:\"sha256-{}\"", sri(bytes)).expect("write to String");
        }
    }
    // The vendored packages' bare specifiers ("ts-mls", ...): web/vendor/importmap.json, as
    // scripts/web-vendor/vendor.sh writes it (one flat JSON object of relative URLs).
    let vendor_map = web.join("vendor/importmap.json");
    println!("cargo:rerun-if-changed={}", vendor_map.display());
    let imports = std::fs::read_to_string(&vendor_map)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(""))
        .unwrap_or_else(|_| "{}".to_owned());
    let importmap = format!("{{\"imports\":{imports},\"integrity\":{{{integrity}}}}}");
    let importmap_hash = sri(importmap.as_bytes());

    let mut code = format!("pub(crate) const CSP: &str = {:?};\n", csp(&importmap_hash));
    code.push_str("pub(crate) static FILES: &[StaticFile] = &[\n");
    for (url, path, bytes) in &files {
        // HTML pages are templates: the import map and the entry script's hash go in here.
        let (file, bytes) = if path.extension().is_some_and(|e| e == "html") {
            let mut text = String::from_utf8(bytes.clone()).expect("UTF-8 HTML");
            text = text.replace(
                "<!-- sotto:importmap -->",
                &format!("<script type=\"importmap\">{importmap}</script>"),
            );
            for (u, _, b) in &files {
                text = text.replace(&format!("{{{{sri:{u}}}}}"), &format!("sha256-{}", sri(b)));
            }
            let generated = out_dir.join(format!("web{}", url.replace('/', "_")));
            std::fs::write(&generated, &text).expect("write generated page");
            (generated, text.into_bytes())
        } else {
            (path.clone(), bytes.clone())
        };
        let digest = Sha256::digest(&bytes);
        let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        writeln!(
            code,
            "    StaticFile {{ path: {url:?}, body: include_bytes!({file:?}), content_type: {ct:?}, etag: \"\\\"{etag}\\\"\" }},",
            file = file.display().to_string(),
            ct = content_type(path),
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("static_files.rs"), code).expect("write generated file");
}
