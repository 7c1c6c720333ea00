//! Lists the dashboard folder for `src/dashboard.rs`: every file in it but the page is
//! served under `/assets/`, so a new module needs no line of Rust.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the dashboard folder")
        .map(|e| e.expect("a dashboard file").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "index.html"))
        .collect();
    files.sort();
    let mut out = String::from("const ASSETS: &[Asset] = &[\n");
    for path in files {
        let name = path
            .file_name()
            .unwrap()
            .to_str()
            .expect("an ASCII file name");
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => panic!("dashboard/{name}: no content type for this kind of file"),
        };
        writeln!(
            out,
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, body: include_bytes!({:?}) }},",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("dashboard_assets.rs");
    std::fs::write(target, out).expect("write the asset list");
}
