//! Embeds the web client (../web) into the relay binary, so the relay is one self-contained
//! file. For each file: its bytes, content type, an ETag and its Subresource Integrity hash,
//! all computed here at build time.

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

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest
        .join("../web")
        .canonicalize()
        .expect("web/ next to signaling/");
    println!("cargo:rerun-if-changed={}", web.display());
    let mut files = Vec::new();
    collect(&web, &mut files);
    let mut code = String::from("pub(crate) static FILES: &[StaticFile] = &[\n");
    for path in files {
        let bytes = std::fs::read(&path).expect("readable web file");
        let digest = Sha256::digest(&bytes);
        let sri = base64::engine::general_purpose::STANDARD.encode(digest);
        let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let url = format!(
            "/{}",
            path.strip_prefix(&web)
                .expect("below web/")
                .to_string_lossy()
                .replace('\\', "/")
        );
        writeln!(
            code,
            "    StaticFile {{ path: {url:?}, body: include_bytes!({file:?}), content_type: {ct:?}, etag: \"\\\"{etag}\\\"\", sri: \"sha256-{sri}\" }},",
            file = path.display().to_string(),
            ct = content_type(&path),
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("static_files.rs");
    std::fs::write(out, code).expect("write generated file");
}
