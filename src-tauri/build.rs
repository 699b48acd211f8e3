//! Embeds the UI bundle. `cargo xtask ui` writes it to `ui/dist`; when it is missing (a
//! plain `cargo build`), a page saying how to build it stands in, so the window explains
//! itself instead of staying blank.

use std::path::Path;

const MISSING_UI: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>left4me</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>The UI bundle was not built</h1>
<p>This app was compiled without its user interface. Build and start it with
<code>cargo xtask run</code>, or build the UI with <code>cargo xtask ui</code> and compile again.</p>
</body></html>
"#;

fn main() {
    let dist = Path::new("../ui/dist");
    let index = dist.join("index.html");
    if !index.exists() {
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(&index, MISSING_UI).expect("write ui/dist/index.html");
        println!(
            "cargo:warning=ui/dist has no UI bundle; run `cargo xtask ui` (or `cargo xtask run`)"
        );
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build();
}
