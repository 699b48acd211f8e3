//! Embeds the floor's page; `cargo xtask bench ui` builds it into `../floor-ui/dist`. Without
//! it (a plain `cargo build`), a static page stands in so the crate still builds.

use std::path::Path;

fn main() {
    let dist = Path::new("../floor-ui/dist");
    let index = dist.join("index.html");
    if !index.exists() {
        std::fs::create_dir_all(dist).expect("create floor-ui/dist");
        std::fs::write(
            &index,
            "<!doctype html><title>floor</title><p>run cargo xtask bench ui</p>",
        )
        .expect("write floor-ui/dist/index.html");
    }
    println!("cargo:rerun-if-changed=../floor-ui/dist");
    tauri_build::build();
}
