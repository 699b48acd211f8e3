//! Integration tests of the project's tooling.

/// The test hosts that `cargo xtask test` boots: systemd, sshd, journald, overlayfs.
mod testhosts;
