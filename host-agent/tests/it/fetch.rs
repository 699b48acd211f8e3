//! Fetching steamcmd when a host has none, from a local file server.

use l4d2_agent::install::fetch_steamcmd;
use std::os::unix::fs::PermissionsExt;
use testkit::FileServer;

/// A steamcmd-shaped tarball: `steamcmd.sh` and `linux32/steamcmd` at its root.
fn tarball(with_script: bool) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    };
    if with_script {
        add(
            "steamcmd.sh",
            b"#!/bin/sh\nexec linux32/steamcmd \"$@\"\n",
            0o755,
        );
    }
    add("linux32/steamcmd", b"\x7fELF", 0o755);
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn steamcmd_is_fetched_and_unpacked() {
    let server = FileServer::start("127.0.0.1", "/steamcmd_linux.tar.gz", Some(tarball(true)));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("steamcmd/current");
    let script = fetch_steamcmd(&home, &server.url).unwrap();
    assert_eq!(script, home.join("steamcmd.sh"));
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(home.join("linux32/steamcmd").is_file());
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_failed_fetch_says_why_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("steamcmd/current");
    let missing = FileServer::start("127.0.0.1", "/steamcmd_linux.tar.gz", None);
    let err = fetch_steamcmd(&home, &missing.url).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot fetch steamcmd from {}", missing.url)),
        "{err}"
    );
    assert!(!home.exists());

    let wrong = FileServer::start("127.0.0.1", "/steamcmd_linux.tar.gz", Some(tarball(false)));
    let err = l4d2_agent::error::chain(&fetch_steamcmd(&home, &wrong.url).unwrap_err());
    assert!(err.contains("the archive has no steamcmd.sh"), "{err}");
    assert!(!home.exists());
}
