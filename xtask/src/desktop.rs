//! A clean Debian 12 desktop root for the package test: debootstrap's minbase with the
//! security and point-release sources a fresh install has, and nothing of left4me or of the
//! app's dependencies. The test unpacks a copy, installs the `.deb` into it with apt-get
//! (which fetches WebKitGTK and the rest from the Debian mirror) and runs the app there.

use crate::Result;
use crate::hosts;
use std::path::{Path, PathBuf};

/// Bump when [`customize`] changes: the cached image is keyed on it.
const IMAGE_REVISION: u32 = 1;

/// Builds the cached image unless it exists; returns its path.
pub fn image() -> Result<PathBuf> {
    let path = hosts::hosts_cache().join(format!("desktop-bookworm-r{IMAGE_REVISION}.tar.zst"));
    hosts::debootstrap_image(&path, "desktop", "ca-certificates", customize)
}

fn customize(root: &Path) -> Result {
    let mirror = hosts::mirror();
    hosts::write_file(
        &root.join("etc/apt/sources.list"),
        &format!(
            "deb {mirror} bookworm main\n\
             deb {mirror} bookworm-updates main\n\
             deb http://deb.debian.org/debian-security bookworm-security main\n"
        ),
    )?;
    // A desktop user's machine has a locale and a machine id; minbase writes neither.
    hosts::write_file(
        &root.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
}
